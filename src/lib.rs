//! The vitess-operator library: API types, naming, builders, offline validation and rendering.
//! The binary in `main.rs` is a thin command line over it.

// kube's `printcolumn(...)` arguments repeat `type_ =` by design; clippy reads them as duplicates.
#[allow(clippy::duplicated_attributes)]
pub mod api;
pub mod build;
pub mod crd;
pub mod keyrange;
pub mod labels;
pub mod names;
pub mod render;
pub mod validate;
pub mod yaml;
