//! Tablet pods another writer made (the Go operator, before a takeover): one whose spec already
//! runs what ours would ([`crate::desired::equivalent`]) is adopted as it is — our
//! desired-state hash applied to it, no drain, no restart — instead of being rolled because
//! the Go operator computes its hash another way. A pod this operator has applied is judged
//! by its hash alone while it has one (a spec of ours that changed rolls it); one whose hash
//! annotation another writer removed is judged by what it runs, and gets the annotation back
//! if that is ours: removing an annotation must not restart a tablet.

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use super::{Context, Error, hash_of};
use crate::api::VitessShard;
use crate::desired::equivalent;
use crate::domain::labels;
use crate::k8s::apply;

/// Whether `observed` (whose hash is not `desired`'s) is kept as current: made by another
/// writer, or ours stripped of its hash annotation, and already equivalent to `desired`.
/// Adopting costs one apply of the hash annotation, once; restoring one merge patch.
pub(super) async fn tablet(
    ctx: &Context,
    shard: &VitessShard,
    observed: &Pod,
    desired: &Pod,
) -> Result<Option<Pod>, Error> {
    let ours = apply::applied_by_us(&observed.metadata);
    let hashed = observed
        .annotations()
        .contains_key(labels::rollout::DESIRED_STATE_HASH);
    if (ours && hashed) || observed.metadata.deletion_timestamp.is_some() {
        return Ok(None);
    }
    let name = observed.name_any();
    let differences = crate::controller::adopt::running_pod_differences(observed, desired);
    if !differences.is_empty() {
        let whose = if ours {
            "tablet pod whose desired-state hash was removed"
        } else {
            "tablet pod made by another writer"
        };
        tracing::info!(
            pod = %name,
            shard = %shard.name_any(),
            differences = %equivalent::describe(&differences),
            "{whose} differs from ours: it will be replaced by the rollout"
        );
        return Ok(None);
    }
    if ours {
        return restore_hash(ctx, shard, observed, desired).await.map(Some);
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

/// Puts the desired-state hash back on our own pod `observed`, which another writer stripped
/// of it and which still runs `desired`: a merge patch of that one annotation (guarded by the
/// pod's uid), as a server-side apply of the annotation alone would give up every other field
/// the operator applied to the pod. Returns the pod as it now is.
async fn restore_hash(
    ctx: &Context,
    shard: &VitessShard,
    observed: &Pod,
    desired: &Pod,
) -> Result<Pod, Error> {
    let hash = hash_of(desired).to_string();
    let set = [(
        labels::rollout::DESIRED_STATE_HASH.to_string(),
        hash.clone(),
    )]
    .into();
    apply::annotate::<Pod>(&ctx.client, &observed.metadata, &set, &[]).await?;
    let name = observed.name_any();
    tracing::info!(
        pod = %name,
        shard = %shard.name_any(),
        "tablet pod had lost its desired-state hash annotation and runs our spec: annotation restored, pod kept"
    );
    ctx.events
        .publish(
            shard,
            kube::runtime::events::EventType::Normal,
            crate::k8s::events::HASH_RESTORED,
            &format!(
                "Pod {name} had lost its {} annotation (removed by another writer) and still runs this spec: the annotation is restored, the pod kept",
                labels::rollout::DESIRED_STATE_HASH
            ),
        )
        .await;
    let mut restored = observed.clone();
    restored
        .annotations_mut()
        .insert(labels::rollout::DESIRED_STATE_HASH.into(), hash);
    Ok(restored)
}
