//! Reconciles a VitessShard: one Pod and data PVC per tablet, its vtorc, its primary and
//! drains through vtctld, its first backup, and a status of tablets running and ready.
//!
//! The pipeline: `tablets` (read the tablet pods and claims, create the missing ones),
//! `vtorc` (its Deployments), `vitess` (what vtctld says), `backups` (inventory, first backup), `plan` (the drain
//! state machine of `controller::drain`), `drains` (carry the plan out), `status`.

mod adopt;
mod backups;
mod drains;
#[cfg(test)]
mod reconcile_tests;
mod status;
#[cfg(test)]
mod tests;
mod vitess;
mod volumes;
mod vtorc;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::ResourceExt;
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::watcher;

use super::backupinit;
use super::condition::{self, Readiness};
use super::drain::{self, Rollout, Step, Wanted};
use super::vtctld::VtctldError;
use super::{Context, Error, POLL, REQUEUE, WAIT};
use crate::api::shard::TabletPoolType;
use crate::api::shard::{ShardBackupLocationStatus, VitessShardStatus, VitessTabletStatus};
use crate::api::shared::{ConditionStatus, OrphanStatus};
use crate::api::{VitessBackup, VitessShard};
use crate::desired::vtbackup::VtbackupInit;
use crate::k8s::applier::Applier;
use crate::vitess::{Alias, TabletType};
use crate::{desired, domain::labels, domain::names, k8s::apply, k8s::events};
use kube::core::PartialObjectMeta;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;

use backups::*;
use drains::*;
pub use status::pod_ready;
use status::*;
use vitess::*;
use vtorc::*;

pub async fn run(ctx: Arc<Context>) {
    Controller::new(ctx.api::<VitessShard>(), watcher::Config::default())
        .owns(ctx.api::<PartialObjectMeta<Pod>>(), super::children())
        // vtorc's Deployments: their availability is in the shard's status.
        .owns(
            ctx.api::<PartialObjectMeta<k8s_openapi::api::apps::v1::Deployment>>(),
            super::children(),
        )
        // A shard's backups (inventory entries and its own first-backup request) carry its
        // labels: their changes update its backup counts and BackupInitialized promptly.
        .watches(
            ctx.api::<PartialObjectMeta<VitessBackup>>(),
            watcher::Config::default().labels(labels::SHARD),
            |backup| shard_of(backup.labels(), backup.namespace()),
        )
        .with_config(super::config())
        .trigger_backoff(super::backoff::WatchBackoff::default())
        .shutdown_on_signal()
        .run(reconcile, super::error_policy, ctx.clone())
        .for_each(|result| super::report(&ctx, result))
        .await;
}

/// The VitessShard a child with the shard labels belongs to.
pub(super) fn shard_of(
    own: &BTreeMap<String, String>,
    namespace: Option<String>,
) -> Option<ObjectRef<VitessShard>> {
    let (cluster, keyspace, shard) = (
        own.get(labels::CLUSTER)?,
        own.get(labels::KEYSPACE)?,
        own.get(labels::SHARD)?,
    );
    let name = names::cluster::shard(cluster, keyspace, shard);
    Some(match namespace {
        Some(namespace) => ObjectRef::new(&name).within(&namespace),
        None => ObjectRef::new(&name),
    })
}

/// One tablet the spec wants, as it now is on the server.
pub(super) struct Observed {
    pub(super) alias: String,
    pub(super) pod: Pod,
    pub(super) claim: Option<PersistentVolumeClaim>,
    /// The storage its pool's claim template asks for (`None` without a claim).
    pub(super) want_storage: Option<Quantity>,
    pub(super) wanted: Wanted,
}

/// What vtctld says about the shard.
#[derive(Default)]
pub(super) struct VitessView {
    pub(super) primary: Option<String>,
    pub(super) serving: bool,
    /// Vitess tablet type by alias, of the tablets Vitess records for the shard.
    pub(super) types: BTreeMap<String, TabletType>,
    /// The cells whose serving graph routes to the shard (Vitess' serving cells of a shard);
    /// `None` when vtctld could not say.
    pub(super) serving_cells: Option<BTreeSet<String>>,
}

#[tracing::instrument(skip_all, fields(shard = %shard.name_any()))]
async fn reconcile(shard: Arc<VitessShard>, ctx: Arc<Context>) -> Result<Action, Error> {
    if crate::controller::adopt::awaiting_parent(shard.as_ref()) {
        tracing::info!(
            "not applied by its parent's controller yet (made by another writer): waiting for it"
        );
        return Ok(Action::await_change());
    }
    let namespace = shard.namespace().unwrap_or_default();
    let Tablets {
        observed,
        unwanted,
        awaiting_claim,
    } = tablets(&ctx, &shard).await?;
    // Larger data volumes are asked for before anything else can fail the reconcile; a
    // refusal is reported, not returned.
    let mut resizes = volumes::plan(&shard, &observed);
    volumes::grow(&ctx.client, &namespace, &mut resizes).await;
    let orchestrator = vtorc(&ctx, &shard).await?;
    let vitess = vitess_view(&ctx, &shard).await;
    let (backups, init) = backups(&ctx, &shard, &observed, &unwanted, vitess.as_ref().ok()).await?;
    let plan = plan(&shard, &observed, &unwanted, &vitess, &backups);
    crate::process::metrics::global().set_drains_in_progress(
        &namespace,
        &shard.name_any(),
        i64::try_from(plan.draining.len()).unwrap_or(i64::MAX),
    );
    let all_pods: Vec<&Pod> = observed.iter().map(|o| &o.pod).chain(&unwanted).collect();
    let outcome = execute(&ctx, &shard, &all_pods, &plan, vitess.as_ref().ok()).await?;
    if let Backups::Known { decision, .. } = &backups {
        backupinit::execute(&ctx, &shard, init, decision).await?;
    }

    let orphans = orphans(&unwanted, &plan, vitess.as_ref().err());
    let mut status = status(
        &shard, &observed, orphans, &vitess, &plan, &outcome, &backups,
    );
    status.vitess_orchestrator = Some(orchestrator);
    status.conditions = condition::with_condition(
        &status.conditions,
        volumes::DATA_VOLUME_RESIZE_PENDING,
        volumes::condition(&resizes).as_ref(),
        shard.metadata.generation,
    );
    apply::status(&ctx.client, shard.as_ref(), shard.status.as_ref(), &status).await?;
    publish_blocked(&ctx, &shard, &status).await;
    // A drain or reparent in progress is followed closely; vtctld not answering, less so
    // (each look costs two lists and two vtctld calls).
    // A tablet waiting for its old claim to go is made again as soon as it has gone (claims
    // are not watched: they have no owner).
    let busy = !plan.steps.is_empty()
        || plan.blocked.is_some()
        || !plan.draining.is_empty()
        || !awaiting_claim.is_empty();
    // Claims are not watched: a volume being expanded is looked at again soon.
    let expanding = resizes
        .iter()
        .any(|r| r.pending == Some(volumes::Pending::Expanding));
    // An election held for the vtbackup-init pod waits for that pod's events (it is watched),
    // not for a fast poll; the slow one keeps the tablets' registration in status current.
    let held = matches!(&backups, Backups::Known { decision, .. } if decision.hold.is_some());
    Ok(Action::requeue(if busy {
        POLL
    } else if vitess.is_err() || expanding || (held && status.primary_alias.is_none()) {
        WAIT
    } else if status.primary_alias.is_none() {
        election_poll(&observed, SystemTime::now())
    } else {
        REQUEUE
    }))
}

/// The shard's tablets as [`tablets`] found and made them.
struct Tablets {
    /// The tablets the spec wants, each with its pod.
    observed: Vec<Observed>,
    /// Pods no longer wanted that are not already going.
    unwanted: Vec<Pod>,
    /// Tablets without a pod whose claim is being deleted: made again once it has gone.
    awaiting_claim: Vec<String>,
}

/// The read and apply steps: the shard's tablet pods and claims (one list each), the missing
/// ones created (claim first), and the pods no longer wanted that are not already going.
async fn tablets(ctx: &Context, shard: &VitessShard) -> Result<Tablets, Error> {
    let client = &ctx.client;
    let namespace = shard.namespace().unwrap_or_default();
    let selector = super::selector(
        shard,
        labels::component::VTTABLET,
        &[labels::CLUSTER, labels::KEYSPACE, labels::SHARD],
    );
    // One list each for pods and claims instead of one request per tablet; a pod that exists
    // is never patched (pods are mostly immutable): an out-of-date one is replaced by a drain.
    let mut pods: BTreeMap<String, Pod> = apply::children_full::<Pod, _>(client, shard, &selector)
        .await?
        .into_iter()
        .map(|p| (p.name_any(), p))
        .collect();
    let owner = super::describe(shard);
    let claims: BTreeMap<String, PersistentVolumeClaim> =
        apply::labelled::<PersistentVolumeClaim>(client, &namespace, &selector, &owner)
            .await?
            .into_iter()
            .map(|c| (c.name_any(), c))
            .collect();
    // Only missing pods and claims are applied: pods are never patched.
    let applier = Applier::new(client, &ctx.events, shard);
    let mut observed = Vec::new();
    let mut awaiting_claim = Vec::new();
    for tablet in desired::vttablet::build(shard)? {
        let name = tablet.pod.name_any();
        let want_storage = tablet
            .pvc
            .as_ref()
            .and_then(|pvc| pvc.spec.as_ref()?.resources.as_ref()?.requests.as_ref())
            .and_then(|requests| requests.get("storage").cloned());
        let (pod, claim) = match pods.remove(&name) {
            Some(pod) => (pod, claims.get(&name).cloned()),
            // A lost disk replaced by hand (its pod and claim deleted): the old claim stays
            // until no pod uses it, so a pod made now would hold it forever and never be
            // scheduled. The tablet is made again, on a new claim, once the old one has gone.
            None if tablet.pvc.is_some() && claims.get(&name).is_some_and(being_deleted) => {
                tracing::info!(
                    tablet = %name,
                    "waiting for the tablet's claim, being deleted, to go before making it again"
                );
                awaiting_claim.push(name);
                continue;
            }
            None => {
                // The claim first: a pod whose volume claim is missing cannot be scheduled.
                let claim = match tablet.pvc {
                    Some(pvc) => Some(applier.claim(pvc).await?),
                    None => None,
                };
                let pod = applier.owned(tablet.pod.clone()).await?;
                (pod, claim)
            }
        };
        let (pod, wanted) = if hash_of(&pod) == hash_of(&tablet.pod) {
            (pod, Wanted::Current)
        } else {
            match adopt::tablet(ctx, shard, &pod, &tablet.pod).await? {
                Some(adopted) => (adopted, Wanted::Current),
                None => (pod, Wanted::Outdated),
            }
        };
        observed.push(Observed {
            alias: tablet.alias,
            pod,
            claim,
            want_storage,
            wanted,
        });
    }
    // What is left is no longer wanted (pods already being deleted are on their way out).
    let unwanted: Vec<Pod> = pods
        .into_values()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    Ok(Tablets {
        observed,
        unwanted,
        awaiting_claim,
    })
}

fn being_deleted(claim: &PersistentVolumeClaim) -> bool {
    claim.metadata.deletion_timestamp.is_some()
}

/// The drain state machine's plan for this reconcile. Without vtctld nothing moves forward:
/// only aborts are cleaned up and pods someone already drained are deleted.
fn plan(
    shard: &VitessShard,
    observed: &[Observed],
    unwanted: &[Pod],
    vitess: &Result<VitessView, VtctldError>,
    backups: &Backups,
) -> drain::Plan {
    let mut view = drain_view(shard, observed, unwanted, vitess.as_ref().ok());
    if let Backups::Known { decision, .. } = backups
        && view.hold_election.is_none()
    {
        view.hold_election.clone_from(&decision.hold);
    }
    let mut plan = drain::plan(&view);
    if vitess.is_err() {
        plan.steps.retain(|step| match step {
            Step::Annotate { set, .. } => set.is_empty(),
            Step::Delete { .. } => true,
            Step::Reparent { .. } | Step::ElectPrimary { .. } => false,
        });
        plan.blocked = None;
        plan.election = None;
    }
    plan
}

/// The condition that says a scale-down waits for drains, for `kubectl describe`.
pub const SCALE_DOWN_BLOCKED: &str = "ScaleDownBlocked";
/// Whether vtctld answered this reconcile's questions.
pub const VTCTLD_REACHABLE: &str = "VtctldReachable";
/// Whether Vitess records a primary for the shard.
pub const PRIMARY_ELECTED: &str = "PrimaryElected";
/// Whether a drain is in progress, and what it waits for.
pub const DRAINING: &str = "Draining";
