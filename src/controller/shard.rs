//! Reconciles a VitessShard: one Pod and data PVC per tablet, and counts the tablets that are
//! running and ready.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::ResourceExt;
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::watcher;

use super::condition::{self, Readiness};
use super::{Context, Error, REQUEUE};
use crate::api::VitessShard;
use crate::api::shard::{VitessShardStatus, VitessTabletStatus};
use crate::api::shared::{ConditionStatus, OrphanStatus};
use crate::{apply, build, events, labels};
use kube::core::PartialObjectMeta;
use kube::runtime::events::EventType;

pub async fn run(ctx: Arc<Context>) {
    Controller::new(ctx.api::<VitessShard>(), watcher::Config::default())
        .owns(ctx.api::<PartialObjectMeta<Pod>>(), super::children())
        .with_config(super::config())
        .shutdown_on_signal()
        .run(reconcile, super::error_policy, ctx.clone())
        .for_each(|result| super::report(&ctx, result))
        .await;
}

/// One tablet as it now is on the server.
struct Observed {
    alias: String,
    pod: Pod,
    claim: Option<PersistentVolumeClaim>,
}

#[tracing::instrument(skip_all, fields(shard = %shard.name_any()))]
async fn reconcile(shard: Arc<VitessShard>, ctx: Arc<Context>) -> Result<Action, Error> {
    let client = &ctx.client;
    let tablets = build::vttablet::build(&shard)?;
    let mut observed = Vec::with_capacity(tablets.len());
    for tablet in tablets {
        // The claim first: a pod whose volume claim is missing cannot be scheduled.
        let claim = match tablet.pvc {
            Some(pvc) => Some(apply::claim(client, pvc).await?),
            None => None,
        };
        let pod = apply::owned(client, shard.as_ref(), tablet.pod).await?;
        observed.push(Observed {
            alias: tablet.alias,
            pod,
            claim,
        });
    }
    let orphans = prune_tablets(&ctx, &shard, &observed).await?;
    let status = status(&shard, &observed, orphans);
    apply::status(client, shard.as_ref(), shard.status.as_ref(), &status).await?;
    ctx.events
        .blocked(
            shard.as_ref(),
            events::SCALE_DOWN_BLOCKED,
            &[(
                "tablet",
                shard.status.as_ref().map(|s| &s.orphaned_tablets),
                &status.orphaned_tablets,
            )],
        )
        .await;
    Ok(Action::requeue(REQUEUE))
}

/// The condition that says a scale-down waits for drains, for `kubectl describe`.
pub const SCALE_DOWN_BLOCKED: &str = "ScaleDownBlocked";

/// Deletes the tablet pods this shard no longer wants (scale-down, removed pool) that have
/// finished draining, and returns the others by alias: deleting a tablet that still serves
/// could take away the primary or the last replica (DESIGN §7). Their PVCs are never touched.
async fn prune_tablets(
    ctx: &Context,
    shard: &VitessShard,
    observed: &[Observed],
) -> Result<BTreeMap<String, OrphanStatus>, Error> {
    let desired: BTreeSet<String> = observed.iter().map(|t| t.pod.name_any()).collect();
    let selector = super::selector(
        shard,
        labels::component::VTTABLET,
        &[labels::CLUSTER, labels::KEYSPACE, labels::SHARD],
    );
    let mut orphans = BTreeMap::new();
    for pod in apply::children::<Pod, _>(&ctx.client, shard, &selector).await? {
        let name = pod.name_any();
        if desired.contains(&name) {
            continue;
        }
        if pod.annotations().contains_key(labels::drain::FINISHED) {
            if apply::delete(&ctx.client, &pod).await? {
                let alias = orphan_alias(pod.labels()).unwrap_or_else(|| name.clone());
                ctx.events
                    .publish(
                        shard,
                        EventType::Normal,
                        events::TABLET_REMOVED,
                        &format!(
                            "deleted Pod {name} of tablet {alias}: drained and no longer in \
                             the spec (its PVC is kept)"
                        ),
                    )
                    .await;
            }
        } else {
            orphans.insert(orphan_alias(pod.labels()).unwrap_or(name), not_drained());
        }
    }
    Ok(orphans)
}

/// The Vitess alias `<cell>-<uid>` from a tablet pod's labels (the UID label is zero-padded
/// exactly as in aliases).
fn orphan_alias(pod_labels: &BTreeMap<String, String>) -> Option<String> {
    let cell = pod_labels.get(labels::CELL)?;
    let uid = pod_labels.get(labels::TABLET_UID)?;
    Some(format!("{cell}-{uid}"))
}

fn not_drained() -> OrphanStatus {
    OrphanStatus {
        reason: "NotDrained".into(),
        message: format!(
            "the tablet is no longer in the spec but its pod is kept until it is drained; \
             annotate the pod {} to drain it, or wait for the drain support (next issue); \
             pods annotated {} are deleted (their PVCs are kept)",
            labels::drain::STARTED,
            labels::drain::FINISHED
        ),
    }
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

/// The shard's status from its applied tablets. Fields other controllers will own (primary,
/// backups, drains) are kept as they are.
fn status(
    shard: &VitessShard,
    tablets: &[Observed],
    orphans: BTreeMap<String, OrphanStatus>,
) -> VitessShardStatus {
    let mut status = shard.status.clone().unwrap_or_default();
    status.observed_generation = shard.metadata.generation;
    let blocked = (!orphans.is_empty()).then(|| {
        Readiness::new(
            true,
            "NotDrained",
            format!(
                "tablets {} are no longer desired but not drained; see status.orphanedTablets",
                orphans.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        )
    });
    status.orphaned_tablets = orphans;
    status.tablets = tablets
        .iter()
        .map(|t| {
            let labels = t.pod.labels();
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
                ..status.tablets.get(&t.alias).cloned().unwrap_or_default()
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
    status.conditions =
        condition::with_ready(&status.conditions, &readiness, shard.metadata.generation);
    status.conditions = condition::with_condition(
        &status.conditions,
        SCALE_DOWN_BLOCKED,
        blocked.as_ref(),
        shard.metadata.generation,
    );
    status
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
        }
    }

    #[test]
    fn counts_ready_tablets() {
        let shard = VitessShard::new("example-commerce-x-x-0f5afee6", Default::default());
        let status = status(
            &shard,
            &[tablet("zone1-1", true), tablet("zone1-2", false)],
            BTreeMap::new(),
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

        let status = super::status(
            &shard,
            &[tablet("zone1-1", true), tablet("zone1-2", true)],
            BTreeMap::new(),
        );
        assert_eq!(status.summary.as_deref(), Some("2/2"));
        assert!(condition::is_ready(&status.conditions));
        assert!(
            status
                .conditions
                .iter()
                .all(|c| c.type_ != SCALE_DOWN_BLOCKED)
        );
    }

    #[test]
    fn undrained_orphans_block_scale_down() {
        let shard = VitessShard::new("example-commerce-x-x-0f5afee6", Default::default());
        let alias = orphan_alias(&labels::set(&[
            (labels::CELL, "zone1"),
            (labels::TABLET_UID, "0123456789"),
        ]));
        assert_eq!(alias.as_deref(), Some("zone1-0123456789"));
        let orphans = BTreeMap::from([("zone1-0123456789".to_string(), not_drained())]);
        let status = status(&shard, &[tablet("zone1-1", true)], orphans);
        assert_eq!(
            status.orphaned_tablets["zone1-0123456789"].reason,
            "NotDrained"
        );
        let blocked = status
            .conditions
            .iter()
            .find(|c| c.type_ == SCALE_DOWN_BLOCKED)
            .map(|c| (c.status.as_str(), c.reason.as_str()));
        assert_eq!(blocked, Some(("True", "NotDrained")));
        // Still Ready: the desired tablets are; the orphan is reported on its own.
        assert!(condition::is_ready(&status.conditions));
    }
}
