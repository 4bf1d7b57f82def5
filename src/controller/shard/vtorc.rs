//! The shard's vtorc step: its Deployments (one per cell with a replica pool, see
//! `desired::vtorc`) applied when changed, those no longer wanted pruned, their availability.

use k8s_openapi::api::apps::v1::Deployment;

use super::*;
use crate::api::shard::VitessOrchestratorStatus;

/// The shard's vtorc: its Deployments applied (an unchanged one is not applied again, see
/// `apply::Applied`), those of cells it no longer has pruned. One list a reconcile. Available
/// when any one is, as the Go operator reports it (somebody answers), else what they say.
pub(super) async fn vtorc(
    ctx: &Context,
    shard: &VitessShard,
) -> Result<VitessOrchestratorStatus, Error> {
    let client = &ctx.client;
    let selector = crate::controller::selector(
        shard,
        labels::component::VTORC,
        &[labels::CLUSTER, labels::KEYSPACE, labels::SHARD],
    );
    let namespace = shard.namespace().unwrap_or_default();
    let owner = crate::controller::describe(shard);
    let uid = shard.uid().unwrap_or_default();
    let mut current: BTreeMap<String, Deployment> =
        apply::labelled::<Deployment>(client, &namespace, &selector, &owner)
            .await?
            .into_iter()
            .filter(|d| apply::controlled_by(&d.metadata, &uid))
            .map(|d| (d.name_any(), d))
            .collect();
    let mut available = ConditionStatus::Unknown;
    for deployment in desired::vtorc::build(shard)? {
        let now = current.remove(&deployment.name_any());
        let applied = ctx.applied.owned(client, shard, deployment, now).await?;
        let said = applied
            .status
            .and_then(|s| s.conditions)
            .into_iter()
            .flatten()
            .find(|c| c.type_ == "Available")
            .map(|c| c.status);
        match said.as_deref() {
            Some("True") => available = ConditionStatus::True,
            Some("False") if available == ConditionStatus::Unknown => {
                available = ConditionStatus::False;
            }
            _ => {}
        }
    }
    // What is left is ours and no longer wanted (a cell's last replica pool went away).
    let mut pruned = Vec::new();
    for (name, deployment) in current {
        if apply::delete_meta::<Deployment>(client, &deployment.metadata).await? {
            ctx.applied.forget::<Deployment>(&deployment.metadata);
            pruned.push(name);
        }
    }
    ctx.events.pruned::<Deployment, _>(shard, &pruned).await;
    Ok(VitessOrchestratorStatus {
        available,
        service_name: None,
    })
}
