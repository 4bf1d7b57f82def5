//! The shard's drains: the view the drain state machine plans from, the steps it plans
//! carried out (annotations, reparents, deletions), and the tablets kept until drained.

use super::*;

/// The desired-state hash annotation of a pod (empty when it has none).
pub(super) fn hash_of(pod: &Pod) -> &str {
    pod.annotations()
        .get(labels::rollout::DESIRED_STATE_HASH)
        .map(String::as_str)
        .unwrap_or_default()
}

/// Why the operator elects no first primary for `shard`: its `replication.initializeMaster`
/// is false (as in the Go operator, someone else elects it; everything else still runs).
pub(super) fn election_disabled(shard: &VitessShard) -> Option<String> {
    let disabled = shard
        .spec
        .template
        .replication
        .as_ref()
        .and_then(|r| r.initialize_master)
        == Some(false);
    disabled.then(|| {
        let (keyspace, name) = vitess_names(shard);
        let how = if uses_external_datastore(shard) {
            "tell Vitess which tablet fronts the primary with `vtctldclient \
             TabletExternallyReparented <tablet>`"
                .to_string()
        } else {
            format!("elect one with `vtctldclient PlannedReparentShard {keyspace}/{name} --new-primary <tablet>`")
        };
        format!(
            "spec.replication.initializeMaster is false: the operator elects no first primary; \
             {how}"
        )
    })
}

/// The drain planner's view of the shard.
pub(super) fn drain_view(
    shard: &VitessShard,
    observed: &[Observed],
    unwanted: &[Pod],
    vitess: Option<&VitessView>,
) -> drain::Shard {
    let external = uses_external_datastore(shard);
    let tablet = |alias: String, pod: &Pod, wanted: Wanted| {
        let vitess_type = vitess.and_then(|v| v.types.get(&alias)).copied();
        let pod_labels = pod.labels();
        let pool = pod_labels.get(labels::TABLET_TYPE).map(String::as_str);
        drain::Tablet {
            pod: pod.name_any(),
            cell: pod_labels.get(labels::CELL).cloned().unwrap_or_default(),
            ready: pod_ready(pod),
            running: pod_running(pod),
            can_be_primary: can_be_primary(external, pool, vitess_type),
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
        hold_election: election_disabled(shard),
        external,
    }
}

/// Whether the shard's tablets run against a MySQL the operator does not run: any pool with
/// `externalDatastore` (as the Go operator decides it for the whole shard).
pub(super) fn uses_external_datastore(shard: &VitessShard) -> bool {
    shard
        .spec
        .template
        .tablet_pools
        .iter()
        .any(|p| p.external_datastore.is_some())
}

/// Whether Vitess may make a tablet of pool type `pool` and Vitess type `vitess_type` the
/// primary. Local MySQL: a REPLICA of a `replica` pool (PlannedReparentShard sets up
/// replication to it). External: a SPARE of an `externalmaster` pool (the type such tablets
/// start as; the MySQL behind them is the primary, Vitess is only told so), or one that
/// already thinks it is PRIMARY — as the Go operator chooses.
fn can_be_primary(external: bool, pool: Option<&str>, vitess_type: Option<TabletType>) -> bool {
    if external {
        pool == Some(TabletPoolType::Externalmaster.as_str())
            && matches!(vitess_type, Some(TabletType::Spare | TabletType::Primary))
    } else {
        pool == Some(TabletPoolType::Replica.as_str()) && vitess_type == Some(TabletType::Replica)
    }
}

/// How out-of-date tablet pods are replaced: `updateStrategy.type` (default External).
pub(super) fn rollout(shard: &VitessShard) -> Rollout {
    Rollout::of(shard.spec.update_strategy.as_ref())
}

/// What carrying out a plan changed, for status.
#[derive(Default)]
pub(super) struct Outcome {
    /// The primary a reparent or election just moved to.
    pub(super) primary: Option<String>,
    /// Why a reparent or election vtctld was asked for failed.
    pub(super) failed: Option<VtctldError>,
}

/// Carries out `plan`'s steps in order. A failed vtctld call is reported (Event, condition)
/// and retried on the next poll, not returned as an error: the shard's other work goes on.
pub(super) async fn execute(
    ctx: &Context,
    shard: &VitessShard,
    pods: &[&Pod],
    plan: &drain::Plan,
    vitess: Option<&VitessView>,
) -> Result<Outcome, Error> {
    let mut outcome = Outcome::default();
    let pod_named = |name: &str| pods.iter().find(|p| p.name_any() == name).copied();
    for step in &plan.steps {
        match step {
            Step::Annotate { pod, set, remove } => {
                if let Some(pod) = pod_named(pod) {
                    annotate(ctx, shard, pod, set, remove).await?;
                }
            }
            Step::Reparent { to, .. } | Step::ElectPrimary { to } if vitess.is_some() => {
                let from = match step {
                    Step::Reparent { from, .. } => Some(from),
                    _ => None,
                };
                match move_primary(ctx, shard, to, from).await {
                    Ok(primary) => outcome.primary = Some(primary),
                    Err(message) => outcome.failed = Some(message),
                }
            }
            Step::Reparent { .. } | Step::ElectPrimary { .. } => {}
            Step::Delete { pod, alias, wanted } => {
                if let Some(pod) = pod_named(pod) {
                    delete_drained(ctx, shard, pod, alias, *wanted, vitess.is_some()).await?;
                }
            }
        }
    }
    Ok(outcome)
}

/// Sets and removes a pod's drain annotations; `DrainFinished` when it is marked finished.
async fn annotate(
    ctx: &Context,
    shard: &VitessShard,
    pod: &Pod,
    set: &BTreeMap<String, String>,
    remove: &[String],
) -> Result<(), Error> {
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
    Ok(())
}

/// Reparents the shard to `to` (away from `from`, or its first election when `None`), with
/// the Event that says so; returns the new primary, or why vtctld failed.
async fn move_primary(
    ctx: &Context,
    shard: &VitessShard,
    to: &str,
    from: Option<&String>,
) -> Result<String, VtctldError> {
    let (keyspace, name) = vitess_names(shard);
    let (moved, method) = if uses_external_datastore(shard) {
        let moved = externally_reparent(ctx, shard, &keyspace, &name, to, from).await;
        (moved, "TabletExternallyReparented")
    } else {
        let moved = reparent(ctx, shard, &keyspace, &name, to, from).await;
        (moved, "PlannedReparentShard")
    };
    match moved {
        Ok(primary) => {
            let (reason, note) = match from {
                Some(from) => (
                    events::REPARENTED,
                    format!(
                        "{method} {keyspace}/{name}: primary moved \
                         from {from} to {primary} so that {from} can drain"
                    ),
                ),
                None => (
                    events::PRIMARY_ELECTED,
                    format!(
                        "{method} {keyspace}/{name}: {primary} is the \
                         shard's first primary"
                    ),
                ),
            };
            ctx.events
                .publish(shard, EventType::Normal, reason, &note)
                .await;
            Ok(primary)
        }
        Err(failed) => {
            ctx.events
                .publish(
                    shard,
                    EventType::Warning,
                    events::REPARENT_FAILED,
                    &failed.to_string(),
                )
                .await;
            Err(failed)
        }
    }
}

/// Deletes a drained pod the operator wants gone, with its Event; an unwanted tablet is then
/// forgotten by Vitess (when vtctld is reachable and the shard prunes tablets).
async fn delete_drained(
    ctx: &Context,
    shard: &VitessShard,
    pod: &Pod,
    alias: &str,
    wanted: Wanted,
    reachable: bool,
) -> Result<(), Error> {
    if !apply::delete_meta::<Pod>(&ctx.client, &pod.metadata).await? {
        return Ok(());
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
    if wanted == Wanted::Unwanted && reachable && prune_tablets(shard) {
        forget_tablet(ctx, shard, alias).await;
    }
    Ok(())
}

/// Pods no longer in the spec that are still there, and why.
pub(super) fn orphans(
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
pub(super) async fn publish_blocked(
    ctx: &Context,
    shard: &VitessShard,
    status: &VitessShardStatus,
) {
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

/// The Vitess alias `<cell>-<uid>` from a tablet pod's labels (the UID label is zero-padded
/// exactly as in aliases).
pub(super) fn orphan_alias(pod_labels: &BTreeMap<String, String>) -> Option<String> {
    let cell = pod_labels.get(labels::CELL)?;
    let uid = pod_labels.get(labels::TABLET_UID)?;
    Some(format!("{cell}-{uid}"))
}
