//! The shard's vtorc step: its Deployments (one per cell with a replica pool, see
//! `desired::vtorc`) applied when changed, those no longer wanted pruned, their availability.

use k8s_openapi::api::apps::v1::Deployment;

use super::*;
use crate::api::shard::VitessOrchestratorStatus;
use crate::k8s::applier::Applier;

/// The shard's vtorc: its Deployments applied (an unchanged one is not applied again, see
/// `Applier::unless_unchanged`), those of cells it no longer has pruned. One list a reconcile. Available
/// when any one is, as the Go operator reports it (somebody answers), else what they say.
pub(super) async fn vtorc(
    ctx: &Context,
    shard: &VitessShard,
) -> Result<VitessOrchestratorStatus, Error> {
    let client = &ctx.client;
    let applier = Applier::new(client, &ctx.events, shard).with_cache(&ctx.applied);
    let selector = crate::controller::selector(
        shard,
        labels::component::VTORC,
        &[labels::CLUSTER, labels::KEYSPACE, labels::SHARD],
    );
    let namespace = shard.namespace().unwrap_or_default();
    let owner = crate::controller::describe(shard);
    let uid = shard.uid().unwrap_or_default();
    // One list: it gives the applies their current objects and the prune what is there.
    let listed: Vec<Deployment> =
        apply::labelled::<Deployment>(client, &namespace, &selector, &owner)
            .await?
            .into_iter()
            .filter(|d| apply::controlled_by(&d.metadata, &uid))
            .collect();
    let mut available = ConditionStatus::Unknown;
    let mut desired = BTreeSet::new();
    for deployment in desired::vtorc::build(shard)? {
        let name = deployment.name_any();
        let now = listed.iter().find(|d| d.name_any() == name).cloned();
        let applied = applier.unless_unchanged(deployment, now).await?;
        desired.insert(name);
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
    // Ours and no longer wanted: a cell's last replica pool went away.
    applier
        .prune_listed::<Deployment>(listed.into_iter().map(|d| d.metadata).collect(), &desired)
        .await?;
    Ok(VitessOrchestratorStatus {
        available,
        service_name: None,
    })
}
