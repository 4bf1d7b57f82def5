//! Tablet pods another writer made (the Go operator, before a takeover): one whose spec already
//! runs what ours would ([`crate::desired::equivalent`]) is adopted as it is — our
//! desired-state hash applied to it, no drain, no restart — instead of being rolled because
//! the Go operator computes its hash another way. A pod this operator has applied is never
//! judged this way: for it only the hash counts, so a field a user removes still rolls it.

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use super::{Context, Error, hash_of};
use crate::api::VitessShard;
use crate::desired::equivalent;
use crate::domain::labels;
use crate::k8s::apply;

/// Whether `observed` (whose hash is not `desired`'s) is adopted: made by another writer and
/// already equivalent to `desired`. Adopting costs one apply of the hash annotation, once.
pub(super) async fn tablet(
    ctx: &Context,
    shard: &VitessShard,
    observed: &Pod,
    desired: &Pod,
) -> Result<Option<Pod>, Error> {
    if apply::applied_by_us(&observed.metadata) || observed.metadata.deletion_timestamp.is_some() {
        return Ok(None);
    }
    let name = observed.name_any();
    let differences = crate::controller::adopt::running_pod_differences(observed, desired);
    if !differences.is_empty() {
        tracing::info!(
            pod = %name,
            shard = %shard.name_any(),
            differences = %equivalent::describe(&differences),
            "tablet pod made by another writer differs from ours: it will be replaced by the rollout"
        );
        return Ok(None);
    }
    let adopted = apply::adopt(
        &ctx.client,
        observed,
        labels::rollout::DESIRED_STATE_HASH,
        hash_of(desired),
    )
    .await?;
    tracing::info!(pod = %name, shard = %shard.name_any(), "adopted tablet pod: its spec already runs what ours would");
    crate::controller::adopt::publish_adopted(ctx, shard, &name).await;
    Ok(Some(adopted))
}
