//! A typed gRPC client of Vitess' vtctld (`vtctlservice.Vtctld`): deadlines, retries of
//! idempotent calls, mutual TLS, and errors that name the vtctld and the RPC.
//!
//! [`Vtctld`] wraps the stubs that `build.rs` generates from our own subset of Vitess' protos
//! ([`proto`]). The operator never writes the topology itself; everything goes through vtctld
//! (DESIGN §5). No server stubs live here: the fake vtctld of the tests has its own crate.

pub mod client;
pub mod observe;
pub mod proto;

pub use client::{
    Alias, BackupInfo, BackupOutcome, BackupStatus, CellInfo, Error, Keyspace, Shard, Tablet,
    TabletType, Tls, Vtctld, Workflow,
};
/// gRPC status codes, as in [`Error::code`].
pub use tonic::Code;
