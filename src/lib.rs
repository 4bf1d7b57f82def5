//! The vitess-operator library: API types, naming, builders, offline validation and rendering,
//! and the controllers that apply what the builders make.
//! The binary in `main.rs` is a thin command line over it.

// kube's `printcolumn(...)` arguments repeat `type_ =` by design; clippy reads them as duplicates.
#[allow(clippy::duplicated_attributes)]
pub mod api;
pub mod apply;
pub mod build;
pub mod controller;
pub mod crd;
pub mod events;
pub mod http;
pub mod keyrange;
pub mod labels;
pub mod leader;
pub mod metrics;
pub mod names;
pub mod operate;
pub mod rbac;
pub mod render;
pub mod requests;
pub mod validate;
pub mod vitess;
pub mod yaml;
