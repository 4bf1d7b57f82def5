//! Talking to the Kubernetes API: server-side apply and pruning of children, Events, the
//! request counter on the kube `Client`, Lease leader election, and the RBAC table.

pub mod applier;
pub mod apply;
pub mod events;
pub mod leader;
#[cfg(test)]
pub mod mock;
pub mod rbac;
pub mod requests;
