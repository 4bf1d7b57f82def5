//! The vitess-operator library. `api/` holds the kinds; `domain/` the Go operator's naming
//! facts; `desired/` the pure builders of child objects; `controller/` one reconciler per kind;
//! `k8s/` the Kubernetes API side (apply, prune, Events); `vitess/` where vtctld is; `process/`
//! the `run` process (HTTP, metrics, logs); `cli/` the offline subcommands. The binary in
//! `main.rs` is a thin command line over it.

// kube's `printcolumn(...)` arguments repeat `type_ =` by design; clippy reads them as duplicates.
#[allow(clippy::duplicated_attributes)]
pub mod api;
pub mod cli;
pub mod controller;
pub mod desired;
pub mod domain;
pub mod k8s;
pub mod process;
pub mod vitess;
