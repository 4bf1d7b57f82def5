//! Talking to Vitess: the vtctld client (the `vtctld-client` crate, re-exported here) and where
//! each cluster's vtctld is.
//!
//! The operator never writes the topology itself; everything goes through vtctld (DESIGN §5).
//! The fake vtctld the tests use is the dev-only `vtctld-fake` crate.

pub mod endpoints;

pub use endpoints::{Clients, Endpoints};
pub use vtctld_client::{
    Alias, BackupInfo, BackupOutcome, BackupStatus, CellInfo, Code, Error, Keyspace, Shard, Tablet,
    TabletType, Tls, Vtctld, Workflow, client, proto,
};
