//! Reconciles a VitessShard: one Pod and data PVC per tablet, and counts the tablets that are
//! running and ready.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
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
use crate::api::shared::{ConditionStatus, OrphanStatus, UpdateStrategyType};
use crate::api::{VitessBackup, VitessShard};
use crate::desired::vtbackup::VtbackupInit;
use crate::vitess::{Alias, TabletType};
use crate::{desired, domain::labels, domain::names, k8s::apply, k8s::events};
use kube::core::PartialObjectMeta;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;

pub async fn run(ctx: Arc<Context>) {
    Controller::new(ctx.api::<VitessShard>(), watcher::Config::default())
        .owns(ctx.api::<PartialObjectMeta<Pod>>(), super::children())
        // A shard's backups (inventory entries and its own first-backup request) carry its
        // labels: their changes update its backup counts and BackupInitialized promptly.
        .watches(
            ctx.api::<PartialObjectMeta<VitessBackup>>(),
            watcher::Config::default().labels(labels::SHARD),
            |backup| shard_of(backup.labels(), backup.namespace()),
        )
        .with_config(super::config())
        .shutdown_on_signal()
        .run(reconcile, super::error_policy, ctx.clone())
        .for_each(|result| super::report(&ctx, result))
        .await;
}

/// The VitessShard a child with the shard labels belongs to.
fn shard_of(
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
struct Observed {
    alias: String,
    pod: Pod,
    claim: Option<PersistentVolumeClaim>,
    wanted: Wanted,
}

/// What vtctld says about the shard.
#[derive(Default)]
struct VitessView {
    primary: Option<String>,
    serving: bool,
    /// Vitess tablet type by alias, of the tablets Vitess records for the shard.
    types: BTreeMap<String, TabletType>,
}

#[tracing::instrument(skip_all, fields(shard = %shard.name_any()))]
async fn reconcile(shard: Arc<VitessShard>, ctx: Arc<Context>) -> Result<Action, Error> {
    let client = &ctx.client;
    let namespace = shard.namespace().unwrap_or_default();
    let selector = super::selector(
        shard.as_ref(),
        labels::component::VTTABLET,
        &[labels::CLUSTER, labels::KEYSPACE, labels::SHARD],
    );
    // One list each for pods and claims instead of one request per tablet; a pod that exists
    // is never patched (pods are mostly immutable): an out-of-date one is replaced by a drain.
    let mut pods: BTreeMap<String, Pod> =
        apply::children_full::<Pod, _>(client, shard.as_ref(), &selector)
            .await?
            .into_iter()
            .map(|p| (p.name_any(), p))
            .collect();
    let owner = super::describe(shard.as_ref());
    let claims: BTreeMap<String, PersistentVolumeClaim> =
        apply::labelled::<PersistentVolumeClaim>(client, &namespace, &selector, &owner)
            .await?
            .into_iter()
            .map(|c| (c.name_any(), c))
            .collect();
    let mut observed = Vec::new();
    for tablet in desired::vttablet::build(&shard)? {
        let name = tablet.pod.name_any();
        let (pod, claim) = match pods.remove(&name) {
            Some(pod) => (pod, claims.get(&name).cloned()),
            None => {
                // The claim first: a pod whose volume claim is missing cannot be scheduled.
                let claim = match tablet.pvc {
                    Some(pvc) => Some(apply::claim(client, pvc).await?),
                    None => None,
                };
                let pod = apply::owned(client, shard.as_ref(), tablet.pod.clone()).await?;
                (pod, claim)
            }
        };
        let wanted = if hash_of(&pod) == hash_of(&tablet.pod) {
            Wanted::Current
        } else {
            Wanted::Outdated
        };
        observed.push(Observed {
            alias: tablet.alias,
            pod,
            claim,
            wanted,
        });
    }
    // What is left is no longer wanted (pods already being deleted are on their way out).
    let unwanted: Vec<Pod> = pods
        .into_values()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();

    let vitess = vitess_view(&ctx, &shard).await;
    let (backups, init) = backups(&ctx, &shard, &observed, &unwanted, vitess.as_ref().ok()).await?;
    let mut view = drain_view(&shard, &observed, &unwanted, vitess.as_ref().ok());
    if let Backups::Known { decision, .. } = &backups {
        view.hold_election.clone_from(&decision.hold);
    }
    let mut plan = drain::plan(&view);
    if vitess.is_err() {
        // Without vtctld nothing moves forward: only aborts are cleaned up and pods someone
        // already drained are deleted.
        plan.steps.retain(|step| match step {
            Step::Annotate { set, .. } => set.is_empty(),
            Step::Delete { .. } => true,
            Step::Reparent { .. } | Step::ElectPrimary { .. } => false,
        });
        plan.blocked = None;
        plan.election = None;
    }
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
    let status = status(
        &shard, &observed, orphans, &vitess, &plan, &outcome, &backups,
    );
    apply::status(client, shard.as_ref(), shard.status.as_ref(), &status).await?;
    publish_blocked(&ctx, &shard, &status).await;
    // A drain or reparent in progress is followed closely; vtctld not answering, less so
    // (each look costs two lists and two vtctld calls).
    let busy = !plan.steps.is_empty() || plan.blocked.is_some() || !plan.draining.is_empty();
    // An election held for the vtbackup-init pod waits for that pod's events (it is watched),
    // not for a fast poll; the slow one keeps the tablets' registration in status current.
    let held = matches!(&backups, Backups::Known { decision, .. } if decision.hold.is_some());
    Ok(Action::requeue(if busy {
        POLL
    } else if vitess.is_err() || (held && status.primary_alias.is_none()) {
        WAIT
    } else if status.primary_alias.is_none() {
        election_poll(&observed, SystemTime::now())
    } else {
        REQUEUE
    }))
}

/// The shard's backups, for its status and its first backup.
enum Backups {
    /// The shard has no backup locations.
    None,
    /// vtctld cannot say whether the shard has a primary: the status keeps what it said.
    Unknown,
    Known {
        locations: Vec<ShardBackupLocationStatus>,
        decision: backupinit::Decision,
        fresh: Option<Readiness>,
    },
}

/// Reads the shard's backups and decides how it gets its first one; also returns the init
/// pod the shard would get.
async fn backups(
    ctx: &Context,
    shard: &VitessShard,
    observed: &[Observed],
    unwanted: &[Pod],
    vitess: Option<&VitessView>,
) -> Result<(Backups, Option<VtbackupInit>), Error> {
    let locations = shard.spec.backup_locations.clone().unwrap_or_default();
    if locations.is_empty() {
        return Ok((Backups::None, None));
    }
    let Some(view) = vitess else {
        return Ok((Backups::Unknown, None));
    };
    let init = desired::vtbackup::init(shard)?;
    let seen = backupinit::observe(ctx, shard, init.as_ref(), view.primary.as_deref()).await?;
    let statuses = backupinit::location_status(&locations, &seen.backups);
    let settled = unwanted.is_empty()
        && observed.iter().all(|o| {
            pod_ready(&o.pod) && !o.pod.annotations().contains_key(labels::drain::STARTED)
        });
    let decision = backupinit::decide(&backupinit::Inputs {
        configured: true,
        init_wanted: init.is_some(),
        primary: view.primary.clone(),
        settled,
        counts: backupinit::counts(&statuses),
        init_pod: seen.init_pod,
        request: seen.request,
    });
    let fresh = backupinit::freshness(&locations, &statuses, SystemTime::now());
    if let Some(latest) = statuses
        .iter()
        .filter_map(|l| l.latest_complete_backup_time.as_ref())
        .map(|t| t.0.as_second())
        .max()
    {
        crate::process::metrics::global().set_last_backup(
            &shard.namespace().unwrap_or_default(),
            &shard.name_any(),
            latest as f64,
        );
    }
    Ok((
        Backups::Known {
            locations: statuses,
            decision,
            fresh,
        },
        init,
    ))
}

/// How soon a shard without a primary looks again. While a tablet pod is not Ready, its
/// Ready event wakes the shard (pods are watched): no poll. Once all are, only Vitess knows
/// when their tablets register, which no event tells: a short poll while the last pod became
/// Ready recently (a vttablet registers as it starts), then the slow one.
fn election_poll(tablets: &[Observed], now: SystemTime) -> Duration {
    if tablets.iter().any(|t| !pod_ready(&t.pod)) {
        return REQUEUE;
    }
    let last_ready = tablets.iter().filter_map(|t| ready_since(&t.pod)).max();
    match last_ready.and_then(|t| now.duration_since(t).ok()) {
        Some(ago) if ago < REGISTER_WINDOW => REGISTER_POLL,
        _ => WAIT,
    }
}

/// When a pod's Ready condition last turned true.
fn ready_since(pod: &Pod) -> Option<SystemTime> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")?
        .last_transition_time
        .as_ref()
        .map(|t| SystemTime::from(t.0))
}

/// How long after its tablets became Ready a shard without a primary polls fast.
const REGISTER_WINDOW: Duration = Duration::from_secs(60);
/// The fast poll: every tablet is Ready, their registration is awaited.
const REGISTER_POLL: Duration = Duration::from_secs(1);

/// The desired-state hash annotation of a pod (empty when it has none).
fn hash_of(pod: &Pod) -> &str {
    pod.annotations()
        .get(labels::rollout::DESIRED_STATE_HASH)
        .map(String::as_str)
        .unwrap_or_default()
}

/// Asks vtctld for the shard's primary and tablets. `Err`: why vtctld cannot say.
async fn vitess_view(ctx: &Context, shard: &VitessShard) -> Result<VitessView, VtctldError> {
    let vtctld = ctx.vtctld(shard)?;
    let (keyspace, name) = vitess_names(shard);
    let record = vtctld.shard(&keyspace, &name).await?;
    let tablets = vtctld.tablets(&keyspace, &name).await?;
    Ok(VitessView {
        primary: record
            .as_ref()
            .and_then(|r| r.primary.as_ref())
            .map(ToString::to_string),
        serving: record.is_some_and(|r| r.is_primary_serving),
        types: tablets
            .into_iter()
            .map(|t| (t.alias.to_string(), t.tablet_type))
            .collect(),
    })
}

/// The keyspace and shard names in Vitess.
fn vitess_names(shard: &VitessShard) -> (String, String) {
    let keyspace = shard
        .labels()
        .get(labels::KEYSPACE)
        .cloned()
        .unwrap_or_default();
    (keyspace, shard.spec.name.clone())
}

/// The drain planner's view of the shard.
fn drain_view(
    shard: &VitessShard,
    observed: &[Observed],
    unwanted: &[Pod],
    vitess: Option<&VitessView>,
) -> drain::Shard {
    let tablet = |alias: String, pod: &Pod, wanted: Wanted| {
        let vitess_type = vitess.and_then(|v| v.types.get(&alias)).copied();
        let pod_labels = pod.labels();
        drain::Tablet {
            pod: pod.name_any(),
            cell: pod_labels.get(labels::CELL).cloned().unwrap_or_default(),
            ready: pod_ready(pod),
            replica_pool: pod_labels.get(labels::TABLET_TYPE).map(String::as_str)
                == Some(TabletPoolType::Replica.as_str()),
            vitess_replica: vitess_type == Some(TabletType::Replica),
            registered: vitess_type.is_some(),
            wanted,
            annotations: pod.annotations().clone(),
            alias,
        }
    };
    let mut tablets: Vec<drain::Tablet> = observed
        .iter()
        .map(|o| tablet(o.alias.clone(), &o.pod, o.wanted))
        .collect();
    tablets.extend(unwanted.iter().map(|pod| {
        let alias = orphan_alias(pod.labels()).unwrap_or_else(|| pod.name_any());
        tablet(alias, pod, Wanted::Unwanted)
    }));
    drain::Shard {
        tablets,
        primary: vitess.and_then(|v| v.primary.clone()),
        rollout: rollout(shard),
        hold_election: None,
    }
}

/// How out-of-date tablet pods are replaced: `updateStrategy.type` (default External).
fn rollout(shard: &VitessShard) -> Rollout {
    match shard.spec.update_strategy.as_ref().and_then(|u| u.type_) {
        Some(UpdateStrategyType::Immediate) => Rollout::Immediate,
        Some(UpdateStrategyType::External) | None => Rollout::External,
    }
}

/// What carrying out a plan changed, for status.
#[derive(Default)]
struct Outcome {
    /// The primary a reparent or election just moved to.
    primary: Option<String>,
    /// Why a reparent or election vtctld was asked for failed.
    failed: Option<String>,
}

/// Carries out `plan`'s steps in order. A failed vtctld call is reported (Event, condition)
/// and retried on the next poll, not returned as an error: the shard's other work goes on.
async fn execute(
    ctx: &Context,
    shard: &VitessShard,
    pods: &[&Pod],
    plan: &drain::Plan,
    vitess: Option<&VitessView>,
) -> Result<Outcome, Error> {
    let mut outcome = Outcome::default();
    let pod_named = |name: &str| pods.iter().find(|p| p.name_any() == name).copied();
    let (keyspace, name) = vitess_names(shard);
    for step in &plan.steps {
        match step {
            Step::Annotate { pod, set, remove } => {
                if let Some(pod) = pod_named(pod) {
                    apply::annotate::<Pod>(&ctx.client, &pod.metadata, set, remove).await?;
                    if set.contains_key(labels::drain::FINISHED) {
                        ctx.events
                            .publish(
                                shard,
                                EventType::Normal,
                                events::DRAIN_FINISHED,
                                &format!("pod {} is drained and safe to delete", pod.name_any()),
                            )
                            .await;
                    }
                }
            }
            Step::Reparent { to, .. } | Step::ElectPrimary { to } if vitess.is_some() => {
                let from = match step {
                    Step::Reparent { from, .. } => Some(from),
                    _ => None,
                };
                let result = reparent(ctx, shard, &keyspace, &name, to, from).await;
                match result {
                    Ok(primary) => {
                        let (reason, note) = match from {
                            Some(from) => (
                                events::REPARENTED,
                                format!(
                                    "PlannedReparentShard {keyspace}/{name}: primary moved \
                                     from {from} to {primary} so that {from} can drain"
                                ),
                            ),
                            None => (
                                events::PRIMARY_ELECTED,
                                format!(
                                    "PlannedReparentShard {keyspace}/{name}: {primary} is the \
                                     shard's first primary"
                                ),
                            ),
                        };
                        ctx.events
                            .publish(shard, EventType::Normal, reason, &note)
                            .await;
                        outcome.primary = Some(primary);
                    }
                    Err(message) => {
                        ctx.events
                            .publish(shard, EventType::Warning, events::REPARENT_FAILED, &message)
                            .await;
                        outcome.failed = Some(message);
                    }
                }
            }
            Step::Reparent { .. } | Step::ElectPrimary { .. } => {}
            Step::Delete { pod, alias, wanted } => {
                let Some(pod) = pod_named(pod) else { continue };
                if !apply::delete_meta::<Pod>(&ctx.client, &pod.metadata).await? {
                    continue;
                }
                let note = match wanted {
                    Wanted::Outdated => format!(
                        "deleted drained Pod {} of tablet {alias} to roll out the new spec; \
                         it is created again with the same data volume",
                        pod.name_any()
                    ),
                    _ => format!(
                        "deleted drained Pod {} of tablet {alias}: no longer in the spec (its \
                         PVC is kept)",
                        pod.name_any()
                    ),
                };
                let reason = match wanted {
                    Wanted::Outdated => events::TABLET_REPLACED,
                    _ => events::TABLET_REMOVED,
                };
                ctx.events
                    .publish(shard, EventType::Normal, reason, &note)
                    .await;
                if *wanted == Wanted::Unwanted && vitess.is_some() && prune_tablets(shard) {
                    forget_tablet(ctx, shard, alias).await;
                }
            }
        }
    }
    Ok(outcome)
}

/// Asks vtctld for a PlannedReparentShard to `to` (from `from`, which must still be the
/// primary). Returns the new primary or why it failed.
async fn reparent(
    ctx: &Context,
    shard: &VitessShard,
    keyspace: &str,
    name: &str,
    to: &str,
    from: Option<&String>,
) -> Result<String, String> {
    let vtctld = ctx.vtctld(shard).map_err(|e| e.to_string())?;
    let parse = |alias: &str| {
        alias
            .parse::<Alias>()
            .map_err(|e| format!("tablet alias {alias}: {e}"))
    };
    let to_alias = parse(to)?;
    let from_alias = from.map(|f| parse(f)).transpose()?;
    tracing::info!(%keyspace, shard = %name, to, from = ?from, "PlannedReparentShard");
    vtctld
        .planned_reparent(keyspace, name, &to_alias, from_alias.as_ref())
        .await
        .map(|primary| primary.to_string())
        .map_err(|e| e.to_string())
}

/// Whether tablet records of removed tablets are deleted from Vitess.
fn prune_tablets(shard: &VitessShard) -> bool {
    shard
        .spec
        .topology_reconciliation
        .as_ref()
        .and_then(|t| t.prune_tablets)
        != Some(false)
}

/// Deletes a removed tablet's record from Vitess (its pod is gone). Failures are logged and
/// reported; the record is harmless meanwhile and the next removal retries nothing, so the
/// Event says what to run by hand.
async fn forget_tablet(ctx: &Context, shard: &VitessShard, alias: &str) {
    let result = match (ctx.vtctld(shard), alias.parse::<Alias>()) {
        (Ok(vtctld), Ok(parsed)) => vtctld
            .delete_tablets(&[parsed])
            .await
            .map_err(|e| e.to_string()),
        (Err(e), _) => Err(e.to_string()),
        (_, Err(e)) => Err(format!("tablet alias {alias}: {e}")),
    };
    match result {
        Ok(()) => {
            ctx.events
                .publish(
                    shard,
                    EventType::Normal,
                    events::TOPOLOGY_PRUNED,
                    &format!("deleted the record of tablet {alias} from the Vitess topology"),
                )
                .await
        }
        Err(message) => {
            tracing::warn!(alias, "cannot delete the tablet record: {message}");
            ctx.events
                .publish(
                    shard,
                    EventType::Warning,
                    events::TOPOLOGY_PRUNED,
                    &format!(
                        "cannot delete the record of tablet {alias} from the Vitess topology \
                         ({message}); run `vtctldclient DeleteTablets {alias}`"
                    ),
                )
                .await
        }
    }
}

/// Pods no longer in the spec that are still there, and why.
fn orphans(
    unwanted: &[Pod],
    plan: &drain::Plan,
    unreachable: Option<&VtctldError>,
) -> BTreeMap<String, OrphanStatus> {
    unwanted
        .iter()
        .map(|pod| {
            let alias = orphan_alias(pod.labels()).unwrap_or_else(|| pod.name_any());
            let status = match (unreachable, &plan.blocked) {
                (Some(why), _) => OrphanStatus {
                    reason: "NotDrained".into(),
                    message: format!(
                        "the tablet is no longer in the spec; its pod is kept until it is \
                         drained, and drains wait for vtctld ({why}); a pod annotated {} and \
                         {} is deleted (its PVC is kept)",
                        labels::drain::STARTED,
                        labels::drain::FINISHED
                    ),
                },
                (None, Some(blocked)) => OrphanStatus {
                    reason: "DrainBlocked".into(),
                    message: blocked.clone(),
                },
                (None, None) => OrphanStatus {
                    reason: "Draining".into(),
                    message: "the tablet is no longer in the spec; its pod is being drained \
                              and then deleted (its PVC is kept)"
                        .into(),
                },
            };
            (alias, status)
        })
        .collect()
}

/// Publishes `DrainBlocked` when a drain's blocker changed, and `VtctldUnreachable` when
/// vtctld became unreachable (the conditions say the same, for `kubectl describe`).
async fn publish_blocked(ctx: &Context, shard: &VitessShard, status: &VitessShardStatus) {
    let before = shard.status.as_ref().map(|s| &s.conditions);
    let find = |conditions: Option<&crate::api::shared::Conditions>, type_: &str| {
        conditions
            .and_then(|c| c.iter().find(|c| c.type_ == type_))
            .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
    };
    let draining = find(Some(&status.conditions), DRAINING);
    if let Some((_, reason, message)) = &draining
        && reason == "Blocked"
        && find(before, DRAINING) != draining
    {
        ctx.events
            .publish(shard, EventType::Warning, events::DRAIN_BLOCKED, message)
            .await;
    }
    let reachable = find(Some(&status.conditions), VTCTLD_REACHABLE);
    if let Some((state, _, message)) = &reachable
        && state == "False"
        && find(before, VTCTLD_REACHABLE).map(|c| c.0) != Some("False".into())
    {
        ctx.events
            .publish(
                shard,
                EventType::Warning,
                events::VTCTLD_UNREACHABLE,
                message,
            )
            .await;
    }
}

/// The condition that says a scale-down waits for drains, for `kubectl describe`.
pub const SCALE_DOWN_BLOCKED: &str = "ScaleDownBlocked";
/// Whether vtctld answered this reconcile's questions.
pub const VTCTLD_REACHABLE: &str = "VtctldReachable";
/// Whether Vitess records a primary for the shard.
pub const PRIMARY_ELECTED: &str = "PrimaryElected";
/// Whether a drain is in progress, and what it waits for.
pub const DRAINING: &str = "Draining";

/// The Vitess alias `<cell>-<uid>` from a tablet pod's labels (the UID label is zero-padded
/// exactly as in aliases).
fn orphan_alias(pod_labels: &BTreeMap<String, String>) -> Option<String> {
    let cell = pod_labels.get(labels::CELL)?;
    let uid = pod_labels.get(labels::TABLET_UID)?;
    Some(format!("{cell}-{uid}"))
}

/// Whether a pod's `Ready` condition is true.
pub fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn pod_running(pod: &Pod) -> bool {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
}

/// The shard's status from its tablets and what vtctld said. Fields other controllers will
/// own (backups) are kept as they are.
fn status(
    shard: &VitessShard,
    tablets: &[Observed],
    orphans: BTreeMap<String, OrphanStatus>,
    vitess: &Result<VitessView, VtctldError>,
    plan: &drain::Plan,
    outcome: &Outcome,
    backups: &Backups,
) -> VitessShardStatus {
    let mut status = shard.status.clone().unwrap_or_default();
    let generation = shard.metadata.generation;
    status.observed_generation = generation;
    let blocked = (!orphans.is_empty()).then(|| {
        let reasons: BTreeSet<&str> = orphans.values().map(|o| o.reason.as_str()).collect();
        Readiness::new(
            true,
            if reasons.contains("NotDrained") {
                "NotDrained"
            } else {
                "Draining"
            },
            format!(
                "tablets {} are no longer desired and wait for their drain; see \
                 status.orphanedTablets",
                orphans.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        )
    });
    status.orphaned_tablets = orphans;
    let view = vitess.as_ref().ok();
    status.tablets = tablets
        .iter()
        .map(|t| {
            let labels = t.pod.labels();
            let previous = status.tablets.get(&t.alias).cloned().unwrap_or_default();
            let tablet = VitessTabletStatus {
                pool_type: labels.get(labels::TABLET_TYPE).cloned(),
                index: labels
                    .get(labels::TABLET_INDEX)
                    .and_then(|i| i.parse().ok()),
                pod_name: Some(t.pod.name_any()),
                running: condition::status_of(pod_running(&t.pod)),
                ready: condition::status_of(pod_ready(&t.pod)),
                data_volume_bound: match &t.claim {
                    Some(claim) => condition::status_of(
                        claim.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound"),
                    ),
                    None => ConditionStatus::Unknown,
                },
                // Unknown while vtctld cannot be asked: keep what it said last.
                type_: match view {
                    Some(v) => v.types.get(&t.alias).map(|t| t.as_str().to_string()),
                    None => previous.type_.clone(),
                },
                pending_changes: pending_changes(shard, t),
                ..previous
            };
            (t.alias.clone(), tablet)
        })
        .collect();
    status.cells = tablets
        .iter()
        .filter_map(|t| t.pod.labels().get(labels::CELL).cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if let Some(view) = view {
        let primary = outcome.primary.clone().or_else(|| view.primary.clone());
        status.has_master = condition::status_of(primary.is_some());
        status.serving_writes = condition::status_of(view.serving || outcome.primary.is_some());
        status.master_alias.clone_from(&primary);
        status.primary_alias = primary;
        if let Some(to) = &outcome.primary
            && let Some(t) = status.tablets.get_mut(to)
        {
            t.type_ = Some(TabletType::Primary.as_str().into());
        }
    }
    let desired = tablets.len();
    let ready = tablets.iter().filter(|t| pod_ready(&t.pod)).count();
    status.summary = Some(format!("{ready}/{desired}"));
    let readiness = if ready == desired {
        Readiness::new(
            true,
            "AllTabletsReady",
            format!("{ready}/{desired} tablets ready"),
        )
    } else {
        let waiting: Vec<&str> = tablets
            .iter()
            .filter(|t| !pod_ready(&t.pod))
            .map(|t| t.alias.as_str())
            .collect();
        Readiness::new(
            false,
            "TabletsNotReady",
            format!(
                "{ready}/{desired} tablets ready; waiting for {}",
                waiting.join(", ")
            ),
        )
    };
    let mut conditions = condition::with_ready(&status.conditions, &readiness, generation);
    conditions = condition::with_condition(
        &conditions,
        SCALE_DOWN_BLOCKED,
        blocked.as_ref(),
        generation,
    );
    let reachable = match vitess {
        Ok(_) => Readiness::new(true, "Answered", "vtctld answered GetShard and GetTablets"),
        Err(why) => Readiness::new(false, why.reason(), why.to_string()),
    };
    conditions =
        condition::with_condition(&conditions, VTCTLD_REACHABLE, Some(&reachable), generation);
    if vitess.is_ok() {
        let elected = match (&status.primary_alias, &outcome.failed, &plan.election) {
            (Some(primary), _, _) => Readiness::new(true, "Elected", format!("primary {primary}")),
            (None, Some(failed), _) => Readiness::new(false, "ElectionFailed", failed.clone()),
            (None, None, Some(why)) => Readiness::new(false, "Waiting", why.clone()),
            (None, None, None) => Readiness::new(false, "Electing", "asking vtctld to elect one"),
        };
        conditions =
            condition::with_condition(&conditions, PRIMARY_ELECTED, Some(&elected), generation);
    }
    let draining = match (&plan.blocked, &outcome.failed, plan.draining.is_empty()) {
        (Some(why), _, _) => Some(Readiness::new(true, "Blocked", why.clone())),
        (None, Some(failed), false) => Some(Readiness::new(true, "Blocked", failed.clone())),
        (None, _, false) => Some(Readiness::new(
            true,
            "InProgress",
            format!("draining {}", plan.draining.join(", ")),
        )),
        (None, _, true) => None,
    };
    conditions = condition::with_condition(&conditions, DRAINING, draining.as_ref(), generation);
    match backups {
        Backups::None => {
            status.backup_locations.clear();
            status.has_initial_backup = ConditionStatus::Unknown;
            for type_ in [backupinit::BACKUP_INITIALIZED, backupinit::BACKUPS_FRESH] {
                conditions = condition::with_condition(&conditions, type_, None, generation);
            }
        }
        Backups::Unknown => {}
        Backups::Known {
            locations,
            decision,
            fresh,
        } => {
            status.backup_locations.clone_from(locations);
            status.has_initial_backup = decision
                .condition
                .as_ref()
                .map_or(ConditionStatus::Unknown, |c| condition::status_of(c.ready));
            conditions = condition::with_condition(
                &conditions,
                backupinit::BACKUP_INITIALIZED,
                decision.condition.as_ref(),
                generation,
            );
            conditions = condition::with_condition(
                &conditions,
                backupinit::BACKUPS_FRESH,
                fresh.as_ref(),
                generation,
            );
        }
    }
    status.conditions = conditions;
    status
}

/// What a tablet waits for to get the current spec, for `kubectl get -o yaml`.
fn pending_changes(shard: &VitessShard, tablet: &Observed) -> Option<String> {
    if tablet.wanted != Wanted::Outdated {
        return None;
    }
    Some(if rollout(shard) == Rollout::Immediate {
        "the pod was built from an older spec; it is replaced through a drain, one tablet \
         at a time, the primary last"
            .into()
    } else {
        format!(
            "the pod was built from an older spec; update strategy External: annotate it {} \
             to replace it through a drain",
            labels::rollout::RELEASED
        )
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};

    use super::*;

    fn tablet(alias: &str, ready: bool) -> Observed {
        Observed {
            alias: alias.into(),
            pod: Pod {
                metadata: kube::api::ObjectMeta {
                    name: Some(format!("pod-{alias}")),
                    labels: Some(labels::set(&[
                        (labels::CELL, "zone1"),
                        (labels::TABLET_TYPE, "replica"),
                        (labels::TABLET_INDEX, "1"),
                    ])),
                    ..Default::default()
                },
                spec: None,
                status: Some(PodStatus {
                    phase: Some("Running".into()),
                    conditions: Some(vec![PodCondition {
                        type_: "Ready".into(),
                        status: if ready { "True" } else { "False" }.into(),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
            },
            claim: None,
            wanted: Wanted::Current,
        }
    }

    fn find<'a>(status: &'a VitessShardStatus, type_: &str) -> Option<(&'a str, &'a str)> {
        status
            .conditions
            .iter()
            .find(|c| c.type_ == type_)
            .map(|c| (c.status.as_str(), c.reason.as_str()))
    }

    fn shard() -> VitessShard {
        VitessShard::new("example-commerce-x-x-0f5afee6", Default::default())
    }

    /// vtctld refused the connection.
    fn refused() -> VtctldError {
        VtctldError::Vitess(crate::vitess::Error::Unavailable {
            address: "10.0.0.1:15999".into(),
            method: "GetShard".into(),
            target: "commerce/-".into(),
            message: "connection refused".into(),
        })
    }

    #[test]
    fn counts_ready_tablets() {
        let unreachable = Err(refused());
        let plan = drain::Plan::default();
        let outcome = Outcome::default();
        let status = status(
            &shard(),
            &[tablet("zone1-1", true), tablet("zone1-2", false)],
            BTreeMap::new(),
            &unreachable,
            &plan,
            &outcome,
            &Backups::None,
        );
        assert_eq!(status.summary.as_deref(), Some("1/2"));
        assert!(!condition::is_ready(&status.conditions));
        assert!(status.conditions[0].message.contains("zone1-2"));
        assert_eq!(status.cells, vec!["zone1".to_string()]);
        let one = &status.tablets["zone1-1"];
        assert_eq!(one.pod_name.as_deref(), Some("pod-zone1-1"));
        assert_eq!(one.ready, ConditionStatus::True);
        assert_eq!(one.running, ConditionStatus::True);
        assert_eq!(one.index, Some(1));
        assert_eq!(
            find(&status, VTCTLD_REACHABLE),
            Some(("False", "Unreachable"))
        );
        // Without vtctld nothing is claimed about the primary.
        assert_eq!(find(&status, PRIMARY_ELECTED), None);
        assert_eq!(status.has_master, ConditionStatus::Unknown);

        let view = Ok(VitessView {
            primary: Some("zone1-1".into()),
            serving: true,
            types: BTreeMap::from([
                ("zone1-1".to_string(), TabletType::Primary),
                ("zone1-2".to_string(), TabletType::Replica),
            ]),
        });
        let status = super::status(
            &shard(),
            &[tablet("zone1-1", true), tablet("zone1-2", true)],
            BTreeMap::new(),
            &view,
            &plan,
            &outcome,
            &Backups::None,
        );
        assert_eq!(status.summary.as_deref(), Some("2/2"));
        assert!(condition::is_ready(&status.conditions));
        assert_eq!(find(&status, SCALE_DOWN_BLOCKED), None);
        assert_eq!(find(&status, VTCTLD_REACHABLE), Some(("True", "Answered")));
        assert_eq!(find(&status, PRIMARY_ELECTED), Some(("True", "Elected")));
        assert_eq!(status.master_alias.as_deref(), Some("zone1-1"));
        assert_eq!(status.primary_alias.as_deref(), Some("zone1-1"));
        assert_eq!(status.has_master, ConditionStatus::True);
        assert_eq!(status.serving_writes, ConditionStatus::True);
        assert_eq!(status.tablets["zone1-2"].type_.as_deref(), Some("REPLICA"));
    }

    #[test]
    fn a_shard_without_primary_polls_fast_only_while_its_tablets_just_became_ready() {
        let now = SystemTime::now();
        let at = |ago: u64| {
            let mut t = tablet("zone1-1", true);
            let since =
                k8s_openapi::jiff::Timestamp::try_from(now - Duration::from_secs(ago)).unwrap();
            t.pod.status.as_mut().unwrap().conditions.as_mut().unwrap()[0].last_transition_time =
                Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(since));
            t
        };
        // A pod not Ready yet: its Ready event wakes the shard.
        assert_eq!(
            election_poll(&[at(1), tablet("zone1-2", false)], now),
            REQUEUE
        );
        assert_eq!(election_poll(&[at(1), at(3)], now), REGISTER_POLL);
        assert_eq!(election_poll(&[at(600), at(300)], now), WAIT);
    }

    #[test]
    fn undrained_orphans_block_scale_down() {
        let alias = orphan_alias(&labels::set(&[
            (labels::CELL, "zone1"),
            (labels::TABLET_UID, "0123456789"),
        ]));
        assert_eq!(alias.as_deref(), Some("zone1-0123456789"));
        let mut pod = tablet("x", true).pod;
        pod.metadata.labels = Some(labels::set(&[
            (labels::CELL, "zone1"),
            (labels::TABLET_UID, "0123456789"),
        ]));
        let error = refused();
        let why = error.to_string();
        let orphans = orphans(&[pod], &drain::Plan::default(), Some(&error));
        assert_eq!(orphans["zone1-0123456789"].reason, "NotDrained");
        assert!(orphans["zone1-0123456789"].message.contains(&why));
        let status = status(
            &shard(),
            &[tablet("zone1-1", true)],
            orphans,
            &Err(error),
            &drain::Plan::default(),
            &Outcome::default(),
            &Backups::None,
        );
        assert_eq!(
            find(&status, SCALE_DOWN_BLOCKED),
            Some(("True", "NotDrained"))
        );
        // Still Ready: the desired tablets are; the orphan is reported on its own.
        assert!(condition::is_ready(&status.conditions));
    }

    #[test]
    fn a_blocked_drain_is_a_condition() {
        let plan = drain::Plan {
            blocked: Some("primary zone1-1 is draining but no other tablet can take over".into()),
            draining: vec!["zone1-1".into()],
            ..drain::Plan::default()
        };
        let view = Ok(VitessView {
            primary: Some("zone1-1".into()),
            ..VitessView::default()
        });
        let status = status(
            &shard(),
            &[tablet("zone1-1", true)],
            BTreeMap::new(),
            &view,
            &plan,
            &Outcome::default(),
            &Backups::None,
        );
        assert_eq!(find(&status, DRAINING), Some(("True", "Blocked")));
        let mut outdated = tablet("zone1-1", true);
        outdated.wanted = Wanted::Outdated;
        assert!(
            pending_changes(&shard(), &outdated)
                .unwrap()
                .contains(labels::rollout::RELEASED)
        );
    }
}

#[cfg(test)]
/// The reconcile against the stand-in API server and the fake vtctld.
mod reconcile_tests {
    use super::*;
    use crate::controller::testing::{self, requests, writes};
    use vtctld_fake::FakeVtctld;

    #[tokio::test]
    async fn a_new_shard_gets_its_tablets_then_a_steady_one_writes_nothing() {
        let vtctld = FakeVtctld::start(([127, 0, 0, 1], 0).into())
            .await
            .expect("fake vtctld");
        let address = vtctld.local_addr().to_string();
        let (ctx, server) = testing::context(Some(&address));
        ctx.set_vtctld_tls(testing::NAMESPACE, "example", Ok(None));
        let cluster = testing::example_cluster();
        let children = crate::desired::cluster::children(&cluster).expect("children");
        let shard = crate::desired::keyspace::shards(&children.keyspaces[0])
            .expect("shards")
            .remove(0);
        let shard = server.insert_object(&shard);

        reconcile(Arc::new(shard.clone()), ctx.clone())
            .await
            .expect("first reconcile");
        let first = server.take_calls();
        let tablets = [
            "apply persistentvolumeclaims/example-vttablet-zone1-2548885007-46a852d0",
            "apply pods/example-vttablet-zone1-2548885007-46a852d0",
            "apply persistentvolumeclaims/example-vttablet-zone1-2469782763-bfadd780",
            "apply pods/example-vttablet-zone1-2469782763-bfadd780",
        ];
        let status = "status vitessshards/example-commerce-x-x-0f5afee6";
        let lists = ["list pods", "list persistentvolumeclaims"];
        let expected: Vec<&str> = lists
            .iter()
            .chain(&tablets)
            .chain([&status])
            .copied()
            .collect();
        assert_eq!(requests(&first), expected);
        let expected: Vec<&str> = tablets.iter().chain([&status]).copied().collect();
        assert_eq!(writes(&first), expected);
        let rpcs: Vec<String> = vtctld.calls().iter().map(ToString::to_string).collect();
        assert_eq!(
            rpcs,
            ["GetShard commerce/-", "GetTablets commerce/- cells="]
        );

        // Steady: the pods and claims this process applied, unchanged, are not applied again.
        let shard = server.object_like(&shard).expect("still there");
        reconcile(Arc::new(shard), ctx.clone())
            .await
            .expect("second reconcile");
        assert_eq!(requests(&server.take_calls()), lists);
        let again: Vec<String> = vtctld.calls()[rpcs.len()..]
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(again, rpcs);
    }
}
