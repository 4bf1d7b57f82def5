//! Talking to Vitess: a typed gRPC client for vtctld (`vtctlservice.Vtctld`), where each
//! cluster's vtctld is, and a fake vtctld for tests.
//!
//! The operator never writes the topology itself; everything goes through vtctld (DESIGN §5).
//! [`Vtctld`] wraps the generated stubs in [`proto`] with deadlines, retries of idempotent calls,
//! mutual TLS, and errors that name the vtctld and the RPC.

pub mod client;
pub mod endpoints;
pub mod fake;
pub mod proto;

pub use client::{
    Alias, BackupInfo, BackupOutcome, BackupStatus, CellInfo, Error, Keyspace, Shard, Tablet,
    TabletType, Tls, Vtctld,
};
pub use endpoints::{Clients, Endpoints};
/// gRPC status codes, as in [`Error::code`].
pub use tonic::Code;
