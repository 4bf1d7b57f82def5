//! The cluster's Vitess step: how its vtctld is reached (TLS from the spec's Secrets; the
//! children's reconciles read them alike, see `Context::vtctld`), then the topology registered (cells, cells alias,
//! keyspaces), with a `TopologyRegistered` Event when something changed.

use kube::ResourceExt;
use kube::runtime::events::EventType;

use crate::api::VitessCluster;
use crate::controller::Context;
use crate::controller::topology::{self, TopologyError};
use crate::controller::vtctld::VtctldError;
use crate::k8s::events;
use crate::vitess::Vtctld;

/// What registration did (`Err`: why it could not), and the vtctld client when vtctld
/// answered: pruning the topology needs that; without it, nothing is pruned.
pub(super) async fn register(
    ctx: &Context,
    cluster: &VitessCluster,
) -> (Result<Vec<String>, TopologyError>, Option<Vtctld>) {
    let name = cluster.name_any();
    let namespace = cluster.namespace().unwrap_or_default();
    let vtctld = topology::tls(ctx, cluster)
        .await
        .map_err(VtctldError::Tls)
        .and_then(|tls| ctx.vtctld_with(&namespace, &name, tls.as_ref()));
    let registered = match &vtctld {
        Ok(vtctld) => topology::register(vtctld, cluster).await,
        Err(why) => Err(TopologyError::Vtctld(why.clone())),
    };
    if let Ok(changes) = &registered
        && !changes.is_empty()
    {
        ctx.events
            .publish(
                cluster,
                EventType::Normal,
                events::TOPOLOGY_REGISTERED,
                &format!("registered in Vitess: {}", changes.join("; ")),
            )
            .await;
    }
    let vtctld = vtctld.ok().filter(|_| registered.is_ok());
    (registered, vtctld)
}
