//! Reconciles an EtcdLockserver: three member Pods with their PVCs, the client and peer
//! Services and the disruption budget; available when every member is ready. A member whose
//! spec changed is recreated when released, one at a time (see [`roll`]).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::ResourceExt;
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::watcher;

use super::adopt;
use super::condition::{self, Readiness};
use super::shard::pod_ready;
use super::{Context, Error, REQUEUE};
use crate::api::EtcdLockserver;
use crate::api::etcd::EtcdLockserverStatus;
use crate::k8s::applier::Applier;
use crate::{desired, domain::labels, k8s::apply};
use kube::core::PartialObjectMeta;

pub async fn run(ctx: Arc<Context>) {
    Controller::new(ctx.api::<EtcdLockserver>(), watcher::Config::default())
        .owns(ctx.api::<PartialObjectMeta<Pod>>(), super::children())
        .owns(ctx.api::<PartialObjectMeta<Service>>(), super::children())
        .owns(
            ctx.api::<PartialObjectMeta<PodDisruptionBudget>>(),
            super::children(),
        )
        .with_config(super::config())
        .trigger_backoff(super::backoff::WatchBackoff::default())
        .shutdown_on_signal()
        .run(reconcile, super::error_policy, ctx.clone())
        .for_each(|result| super::report(&ctx, result))
        .await;
}

#[tracing::instrument(skip_all, fields(etcd = %lockserver.name_any()))]
async fn reconcile(lockserver: Arc<EtcdLockserver>, ctx: Arc<Context>) -> Result<Action, Error> {
    let owner = lockserver.as_ref();
    let desired::etcd::EtcdObjects {
        pods,
        pvcs,
        client_service,
        peer_service,
        pdb,
    } = desired::etcd::build(owner)?;
    // Only the Services and the disruption budget are ever pruned (when their create* switch
    // went off); member pods and their PVCs hold the topology and are never deleted here.
    let desired_services: BTreeSet<String> = peer_service
        .iter()
        .chain(&client_service)
        .map(|s| s.name_any())
        .collect();
    let desired_pdbs: BTreeSet<String> = pdb.iter().map(|p| p.name_any()).collect();
    let applier = Applier::new(&ctx.client, &ctx.events, owner);
    applier.all(peer_service).await?;
    let client_service = applier
        .all(client_service)
        .await?
        .first()
        .map(|s| s.name_any());
    applier.all(pdb).await?;
    // A claim being deleted (a lost disk replaced by hand) keeps its volume until no pod uses
    // it: its member is made again only once it has gone, on a new claim.
    let mut claims_going = BTreeSet::new();
    for claim in pvcs {
        let applied = applier.claim(claim).await?;
        if applied.metadata.deletion_timestamp.is_some() {
            claims_going.insert(applied.name_any());
        }
    }
    let name = owner.name_any();
    let selector = apply::selector(
        &[
            (labels::COMPONENT, labels::component::ETCD),
            (labels::ETCD_LOCKSERVER, &name),
        ],
        &[],
    );
    let (pods, rolling) = members(&applier, &ctx, owner, &selector, pods, &claims_going).await?;
    applier
        .prune::<Service>(&selector, &desired_services)
        .await?;
    applier
        .prune::<PodDisruptionBudget>(&selector, &desired_pdbs)
        .await?;
    let status = status(owner, &pods, client_service);
    apply::status(&ctx.client, owner, owner.status.as_ref(), &status).await?;
    tracing::debug!(requests = applier.requests(), "applied");
    Ok(Action::requeue(if rolling { ROLL_POLL } else { REQUEUE }))
}

/// The member pods, from one list: each of `desired` applied, unless the listed pod of its
/// name is another writer's (the Go operator's, before a takeover), which is kept as it is
/// ([`adopt::member`]: marked adopted when it runs what ours would, else left running and
/// its differences logged), or ours but built from an older spec, which is rolled
/// ([`roll`]). Returns the pods as the server has them, and whether a released member waits
/// for its turn or for its old claim to go (to be looked at again soon).
async fn members(
    applier: &Applier<'_, EtcdLockserver>,
    ctx: &Context,
    owner: &EtcdLockserver,
    selector: &str,
    desired: Vec<Pod>,
    claims_going: &BTreeSet<String>,
) -> Result<(Vec<Pod>, bool), Error> {
    let namespace = owner.namespace().unwrap_or_default();
    let described = format!("EtcdLockserver {namespace}/{}", owner.name_any());
    let listed: Vec<Pod> = apply::labelled(&ctx.client, &namespace, selector, &described).await?;
    // A rolling update deletes one member at a time, and only while every other one is up,
    // each long enough for its peers to find it again.
    let mut may_roll = listed.len() == desired.len()
        && listed.iter().all(|p| {
            p.metadata.deletion_timestamp.is_none() && ready_for(p, SystemTime::now()) >= SETTLE
        });
    let mut out = Vec::with_capacity(desired.len());
    let mut waiting = false;
    for wanted in desired {
        let name = wanted.name_any();
        let now = listed.iter().find(|p| p.name_any() == name);
        match (adopt::member(&wanted, now), now) {
            // Going already (rolled, or deleted by someone): made again once it is gone.
            (_, Some(pod)) if pod.metadata.deletion_timestamp.is_some() => out.push(pod.clone()),
            (adopt::Member::Keep, Some(pod)) => out.push(pod.clone()),
            (adopt::Member::Adopt(hash), Some(pod)) => {
                let adopted =
                    apply::adopt(&ctx.client, pod, labels::rollout::ADOPTED_FOR, &hash).await?;
                tracing::info!(pod = %name, "adopted etcd member pod: it already runs what ours would");
                adopt::publish_adopted(ctx, owner, &name).await;
                out.push(adopted);
            }
            (adopt::Member::Differs(differences), Some(pod)) => {
                tracing::info!(
                    pod = %name,
                    %differences,
                    "etcd member pod made by another writer differs from ours: kept as it is \
                     (delete it to have ours made, one member at a time)"
                );
                out.push(pod.clone());
            }
            (adopt::Member::Outdated(differences), Some(pod)) => {
                match roll(ctx, owner, pod, &differences, may_roll).await? {
                    Roll::Deleted => may_roll = false,
                    Roll::Waits => waiting = true,
                    Roll::Scheduled => {}
                }
                out.push(pod.clone());
            }
            (_, Some(pod)) if pod.annotations().contains_key(labels::rollout::SCHEDULED) => {
                // Up to date again (the spec went back): nothing is scheduled any more.
                let unscheduled = [labels::rollout::SCHEDULED.to_string()];
                apply::annotate::<Pod>(
                    &ctx.client,
                    &pod.metadata,
                    &Default::default(),
                    &unscheduled,
                )
                .await?;
                out.push(applier.owned(wanted).await?);
            }
            // A pod made now would hold the old claim forever and never be scheduled.
            (_, None) if claims_of(&wanted).any(|c| claims_going.contains(c)) => {
                tracing::info!(
                    pod = %name,
                    "waiting for the member's claim, being deleted, to go before making it again"
                );
                waiting = true;
            }
            _ => out.push(applier.owned(wanted).await?),
        }
    }
    Ok((out, waiting))
}

/// The names of the claims `pod` mounts.
fn claims_of(pod: &Pod) -> impl Iterator<Item = &str> {
    pod.spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter_map(|v| v.persistent_volume_claim.as_ref())
        .map(|c| c.claim_name.as_str())
}

/// What [`roll`] did with an outdated member.
enum Roll {
    /// Scheduled only: nobody released it yet.
    Scheduled,
    /// Released, waiting until every other member is up and settled.
    Waits,
    /// Deleted, to be made again from the new spec.
    Deleted,
}

/// How long every member must have been Ready before a released one goes: a new member pod
/// has a new address, which its peers learn from its DNS name (the peer Service's endpoints,
/// then the cluster DNS's 5 s TTL). Ready alone says it reached the leader, not that the
/// leader reaches it.
const SETTLE: Duration = Duration::from_secs(20);
/// How soon a released member that waits for [`SETTLE`] is looked at again.
const ROLL_POLL: Duration = Duration::from_secs(5);

/// How long `pod` has been Ready at `now` (zero when it is not).
fn ready_for(pod: &Pod, now: SystemTime) -> Duration {
    if !pod_ready(pod) {
        return Duration::ZERO;
    }
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .and_then(|c| c.last_transition_time.as_ref())
        .and_then(|t| now.duration_since(SystemTime::from(t.0)).ok())
        // Ready without a time (never from a kubelet): as good as settled.
        .unwrap_or(SETTLE)
}

/// One member pod of ours built from an older spec. Its spec cannot change in place, and
/// restarting a member costs the quorum a voter, so as in the Go operator it is only
/// scheduled (`rollout.planetscale.com/scheduled`, saying what differs, and an Event) until
/// someone releases it (`rollout.planetscale.com/released`). A released member is deleted
/// when `may_roll` (every member Ready for [`SETTLE`], none rolled in this reconcile) and made
/// again from our spec by the next reconcile, on its PVC: it rejoins with its data.
async fn roll(
    ctx: &Context,
    owner: &EtcdLockserver,
    pod: &Pod,
    differences: &str,
    may_roll: bool,
) -> Result<Roll, Error> {
    let name = pod.name_any();
    let annotations = pod.annotations();
    if !annotations.contains_key(labels::rollout::SCHEDULED) {
        let note = format!("the member's spec changed: {differences}");
        let set = [(labels::rollout::SCHEDULED.to_string(), note)].into();
        apply::annotate::<Pod>(&ctx.client, &pod.metadata, &set, &[]).await?;
        tracing::info!(pod = %name, %differences, "etcd member pod out of date: rolling update scheduled");
        ctx.events
            .publish(
                owner,
                EventType::Normal,
                crate::k8s::events::MEMBER_UPDATE_SCHEDULED,
                &format!(
                    "Pod {name} runs an older spec ({differences}); annotate it {}=true to have \
                     it recreated (one member at a time, while the others are Ready)",
                    labels::rollout::RELEASED
                ),
            )
            .await;
    }
    if !annotations.contains_key(labels::rollout::RELEASED) {
        return Ok(Roll::Scheduled);
    }
    if !may_roll {
        tracing::info!(
            pod = %name,
            "released etcd member waits until every member has been Ready for {}s",
            SETTLE.as_secs()
        );
        return Ok(Roll::Waits);
    }
    tracing::info!(pod = %name, %differences, "recreating released etcd member pod (rolling update)");
    let deleted = apply::delete_meta::<Pod>(&ctx.client, &pod.metadata).await?;
    if deleted {
        ctx.events
            .publish(
                owner,
                EventType::Normal,
                crate::k8s::events::MEMBER_RECREATED,
                &format!("Pod {name} deleted to be made again from the new spec, on its volume"),
            )
            .await;
    }
    Ok(if deleted { Roll::Deleted } else { Roll::Waits })
}

/// Available when every member this object runs is ready (etcd needs a quorum, but the
/// operator reports the full set, as the Go operator does).
fn status(
    lockserver: &EtcdLockserver,
    pods: &[Pod],
    client_service: Option<String>,
) -> EtcdLockserverStatus {
    let mut status = lockserver.status.clone().unwrap_or_default();
    status.observed_generation = lockserver.metadata.generation;
    let ready = pods.iter().filter(|p| pod_ready(p)).count();
    let available = !pods.is_empty() && ready == pods.len();
    status.available = condition::status_of(available);
    status.client_service_name = client_service;
    let readiness = if available {
        Readiness::new(
            true,
            "MembersReady",
            format!("{ready}/{} members ready", pods.len()),
        )
    } else {
        Readiness::new(
            false,
            "MembersNotReady",
            format!("{ready}/{} members ready", pods.len()),
        )
    };
    status.conditions = condition::with_ready(
        &status.conditions,
        &readiness,
        lockserver.metadata.generation,
    );
    status
}

#[cfg(test)]
mod tests;
