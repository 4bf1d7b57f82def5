//! The shard's status: tablets running and ready, what Vitess says, the conditions.

use super::*;
use crate::api::shared::Conditions;

/// Whether a pod's `Ready` condition is true.
pub fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

pub(super) fn pod_running(pod: &Pod) -> bool {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
}

/// The shard's status from its tablets and what vtctld said. Fields other controllers will
/// own (backups) are kept as they are.
pub(super) fn status(
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
    let blocked = scale_down_blocked(&orphans);
    status.orphaned_tablets = orphans;
    let view = vitess.as_ref().ok();
    status.tablets = tablet_statuses(shard, tablets, &status.tablets, view);
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
        // The Go operator's `idle`: in no cell's serving graph (a turndown may take it).
        status.idle = view
            .serving_cells
            .as_ref()
            .map_or(ConditionStatus::Unknown, |cells| {
                condition::status_of(cells.is_empty())
            });
        if let Some(to) = &outcome.primary
            && let Some(t) = status.tablets.get_mut(to)
        {
            t.type_ = Some(TabletType::Primary.as_str().into());
        }
    }
    let ready = tablets.iter().filter(|t| pod_ready(&t.pod)).count();
    status.summary = Some(format!("{ready}/{}", tablets.len()));
    let readiness = readiness(tablets, status.primary_alias.as_deref());
    let mut conditions = condition::with_ready(&status.conditions, &readiness, generation);
    conditions = condition::with_condition(
        &conditions,
        SCALE_DOWN_BLOCKED,
        blocked.as_ref(),
        generation,
    );
    let primary = status.primary_alias.as_ref();
    let disabled = election_disabled(shard).is_some();
    conditions = vitess_conditions(
        conditions, vitess, primary, plan, outcome, generation, disabled,
    );
    status.conditions = backup_conditions(&mut status, conditions, backups, generation);
    status
}

/// `ScaleDownBlocked` while tablets no longer desired wait for their drain.
fn scale_down_blocked(orphans: &BTreeMap<String, OrphanStatus>) -> Option<Readiness> {
    (!orphans.is_empty()).then(|| {
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
    })
}

/// Each desired tablet's status from its pod, claim and what vtctld said (what it said last
/// while it cannot be asked).
fn tablet_statuses(
    shard: &VitessShard,
    tablets: &[Observed],
    previous: &BTreeMap<String, VitessTabletStatus>,
    view: Option<&VitessView>,
) -> BTreeMap<String, VitessTabletStatus> {
    tablets
        .iter()
        .map(|t| {
            let labels = t.pod.labels();
            let previous = previous.get(&t.alias).cloned().unwrap_or_default();
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
        .collect()
}

/// Ready when the shard serves: every desired tablet's pod is Ready (vttablet's `/healthz`
/// answers only while it serves queries) and one of them is the primary Vitess knows (the
/// last one it named while vtctld cannot be asked). Pods that are Ready without a primary
/// are not a database a client can write to, so GitOps tools must not see them as healthy.
fn readiness(tablets: &[Observed], primary: Option<&str>) -> Readiness {
    let desired = tablets.len();
    let ready = tablets.iter().filter(|t| pod_ready(&t.pod)).count();
    if ready != desired {
        let waiting: Vec<&str> = tablets
            .iter()
            .filter(|t| !pod_ready(&t.pod))
            .map(|t| t.alias.as_str())
            .collect();
        if let Some(primary) = primary.filter(|p| waiting.contains(p)) {
            return Readiness::new(
                false,
                "PrimaryNotReady",
                format!(
                    "the primary {primary} is not ready ({ready}/{desired} tablets ready): \
                     writes to the shard fail until it serves again; the operator keeps its \
                     pod on its claim and never elects another primary by itself (vtorc, \
                     or `vtctldclient EmergencyReparentShard`, does)"
                ),
            );
        }
        return Readiness::new(
            false,
            "TabletsNotReady",
            format!(
                "{ready}/{desired} tablets ready; waiting for {}",
                waiting.join(", ")
            ),
        );
    }
    let Some(primary) = primary else {
        return Readiness::new(
            false,
            "NoPrimary",
            format!(
                "{ready}/{desired} tablets ready but Vitess has no primary for the shard; see \
                 condition PrimaryElected"
            ),
        );
    };
    if !tablets.iter().any(|t| t.alias == primary) {
        return Readiness::new(
            false,
            "PrimaryNotDesired",
            format!(
                "{ready}/{desired} tablets ready but the primary {primary} is not one of the \
                 shard's desired tablets"
            ),
        );
    }
    Readiness::new(
        true,
        "Serving",
        format!("primary {primary} and {ready}/{desired} tablets serving"),
    )
}

/// `VtctldReachable`, `PrimaryElected` (only when vtctld answered; `ElectionDisabled` when
/// `election_disabled`, see [`election_disabled`]) and `Draining`.
fn vitess_conditions(
    mut conditions: Conditions,
    vitess: &Result<VitessView, VtctldError>,
    primary: Option<&String>,
    plan: &drain::Plan,
    outcome: &Outcome,
    generation: Option<i64>,
    election_disabled: bool,
) -> Conditions {
    let reachable = match vitess {
        Ok(_) => Readiness::new(true, "Answered", "vtctld answered GetShard and GetTablets"),
        Err(why) => Readiness::new(false, why.reason(), why.to_string()),
    };
    conditions =
        condition::with_condition(&conditions, VTCTLD_REACHABLE, Some(&reachable), generation);
    if vitess.is_ok() {
        let elected = match (primary, &outcome.failed, &plan.election) {
            (Some(primary), _, _) => Readiness::new(true, "Elected", format!("primary {primary}")),
            (None, Some(failed), _) => {
                // vtctld refused the election, or it was never asked (not reached).
                let reason = if failed.reason() == crate::controller::vtctld::REJECTED {
                    "ElectionRejected"
                } else {
                    "ElectionUnreachable"
                };
                Readiness::new(false, reason, failed.to_string())
            }
            (None, None, Some(why)) if election_disabled => {
                Readiness::new(false, "ElectionDisabled", why.clone())
            }
            (None, None, Some(why)) => Readiness::new(false, "Waiting", why.clone()),
            (None, None, None) => Readiness::new(false, "Electing", "asking vtctld to elect one"),
        };
        conditions =
            condition::with_condition(&conditions, PRIMARY_ELECTED, Some(&elected), generation);
    }
    let draining = match (&plan.blocked, &outcome.failed, plan.draining.is_empty()) {
        (Some(why), _, _) => Some(Readiness::new(true, "Blocked", why.clone())),
        (None, Some(failed), false) => Some(Readiness::new(true, "Blocked", failed.to_string())),
        (None, _, false) => Some(Readiness::new(
            true,
            "InProgress",
            format!("draining {}", plan.draining.join(", ")),
        )),
        (None, _, true) => None,
    };
    condition::with_condition(&conditions, DRAINING, draining.as_ref(), generation)
}

/// The backup inventory's fields and conditions (`BackupInitialized`, `BackupsFresh`); kept
/// as they were while the inventory is unknown.
fn backup_conditions(
    status: &mut VitessShardStatus,
    mut conditions: Conditions,
    backups: &Backups,
    generation: Option<i64>,
) -> Conditions {
    match backups {
        Backups::None => {
            status.backup_locations.clear();
            status.has_initial_backup = ConditionStatus::Unknown;
            for type_ in [backupinit::BACKUP_INITIALIZED, backupinit::BACKUPS_FRESH] {
                conditions = condition::with_condition(&conditions, type_, None, generation);
            }
        }
        Backups::Unknown { missing_secret } => {
            if missing_secret.is_some() {
                conditions = condition::with_condition(
                    &conditions,
                    backupinit::BACKUP_INITIALIZED,
                    missing_secret.as_ref(),
                    generation,
                );
            }
        }
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
    conditions
}

/// What a tablet waits for to get the current spec, for `kubectl get -o yaml`.
pub(super) fn pending_changes(shard: &VitessShard, tablet: &Observed) -> Option<String> {
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
