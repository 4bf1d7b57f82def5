//! Reconciles a VitessShard: one Pod and data PVC per tablet, and counts the tablets that are
//! running and ready.

use std::collections::BTreeSet;
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
use crate::api::shared::ConditionStatus;
use crate::{apply, build, labels};
use kube::core::PartialObjectMeta;

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
    let status = status(&shard, &observed);
    apply::status(client, shard.as_ref(), shard.status.as_ref(), &status).await?;
    Ok(Action::requeue(REQUEUE))
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
fn status(shard: &VitessShard, tablets: &[Observed]) -> VitessShardStatus {
    let mut status = shard.status.clone().unwrap_or_default();
    status.observed_generation = shard.metadata.generation;
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
        let status = status(&shard, &[tablet("zone1-1", true), tablet("zone1-2", false)]);
        assert_eq!(status.summary.as_deref(), Some("1/2"));
        assert!(!condition::is_ready(&status.conditions));
        assert!(status.conditions[0].message.contains("zone1-2"));
        assert_eq!(status.cells, vec!["zone1".to_string()]);
        let one = &status.tablets["zone1-1"];
        assert_eq!(one.pod_name.as_deref(), Some("pod-zone1-1"));
        assert_eq!(one.ready, ConditionStatus::True);
        assert_eq!(one.running, ConditionStatus::True);
        assert_eq!(one.index, Some(1));

        let status = super::status(&shard, &[tablet("zone1-1", true), tablet("zone1-2", true)]);
        assert_eq!(status.summary.as_deref(), Some("2/2"));
        assert!(condition::is_ready(&status.conditions));
    }
}
