//! The shard's vtorc step: its Deployments (one per cell with a replica pool, see
//! `desired::vtorc`) applied when changed, those no longer wanted pruned, their availability.

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
    let mut available = ConditionStatus::Unknown;
    let desired = desired::vtorc::build(shard)?;
    let rollout = drains::rollout(shard);
    let applied =
        crate::controller::adopt::deployments(&applier, &selector, desired, rollout, false).await?;
    for applied in applied {
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
    Ok(VitessOrchestratorStatus {
        available,
        service_name: None,
    })
}
