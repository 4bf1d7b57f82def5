//! The vitess-operator library: API types, naming, builders and controllers.
pub mod keyrange;
pub mod names;
