//! Reconciles a VitessCell: its vtgate Deployment, Service and (when autoscaled) HPA, its own
//! etcd when `lockserver.etcd` asks for one, and reports whether the gateway is available.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::watcher;

use super::condition::{self, Readiness};
use super::drain::Rollout;
use super::{Context, Error, REQUEUE};
use crate::api::cell::{VitessCellGatewayStatus, VitessCellStatus};
use crate::api::shared::LockserverStatus;
use crate::api::{EtcdLockserver, VitessCell};
use crate::k8s::applier::Applier;
use crate::{desired, domain::labels, k8s::apply};
use kube::core::PartialObjectMeta;

pub async fn run(ctx: Arc<Context>) {
    Controller::new(ctx.api::<VitessCell>(), watcher::Config::default())
        .owns(
            ctx.api::<PartialObjectMeta<Deployment>>(),
            super::children(),
        )
        .owns(ctx.api::<PartialObjectMeta<Service>>(), super::children())
        .owns(
            ctx.api::<PartialObjectMeta<HorizontalPodAutoscaler>>(),
            super::children(),
        )
        // Its own etcd's status is the cell's `status.lockserver`: watched whole (three per
        // cell at most, and only cells with their own etcd have one).
        .owns(ctx.api::<EtcdLockserver>(), super::children())
        .with_config(super::config())
        .trigger_backoff(super::backoff::WatchBackoff::default())
        .shutdown_on_signal()
        .run(reconcile, super::error_policy, ctx.clone())
        .for_each(|result| super::report(&ctx, result))
        .await;
}

#[tracing::instrument(skip_all, fields(cell = %cell.name_any()))]
async fn reconcile(cell: Arc<VitessCell>, ctx: Arc<Context>) -> Result<Action, Error> {
    if crate::controller::adopt::awaiting_parent(cell.as_ref()) {
        tracing::info!(
            "not applied by its parent's controller yet (made by another writer): waiting for it"
        );
        return Ok(Action::await_change());
    }
    let owner = cell.as_ref();
    let desired::vtgate::VtgateObjects {
        deployment,
        service,
        autoscaler,
    } = desired::vtgate::build(owner)?;
    // The vtgate Deployment and Service only go with the cell (garbage collection), or when
    // their names change; the autoscaler goes when `gateway.autoscaler` is removed.
    let desired_services = BTreeSet::from([service.name_any()]);
    let desired_hpas: BTreeSet<String> = autoscaler.iter().map(|h| h.name_any()).collect();
    let applier = Applier::new(&ctx.client, &ctx.events, owner);
    let selector = super::selector(
        owner,
        labels::component::VTGATE,
        &[labels::CLUSTER, labels::CELL],
    );
    let service = applier.owned(service).await?;
    // One full list of the cell's Deployments: a vtgate another writer made keeps its pods
    // when it already runs ours (`adopt`), and the list serves the prune. Under the cluster's
    // `External` strategy a changed template waits for a release, on the Deployment or on
    // this VitessCell (where the Go operator holds vtgate's changes).
    let rollout = cluster_rollout(&ctx, owner).await?;
    let released = owner.annotations().contains_key(labels::rollout::RELEASED);
    let deployment =
        super::adopt::deployments(&applier, &selector, vec![deployment], rollout, released)
            .await?
            .remove(0);
    pending_on_cell(&ctx, owner, &deployment).await?;
    applier.all(autoscaler).await?;
    // A cell's own etcd: applied, never deleted by the operator (as the global one; its data
    // is the cell's topology), so removing `lockserver.etcd` leaves it to a person.
    let etcd = match desired::lockserver::local_etcd(owner)? {
        Some(etcd) => Some(applier.owned(etcd).await?),
        None => None,
    };
    applier
        .prune::<HorizontalPodAutoscaler>(&selector, &desired_hpas)
        .await?;
    applier
        .prune::<Service>(&selector, &desired_services)
        .await?;
    let mut status = status(&cell, &deployment, &service.name_any());
    if let Some(etcd) = etcd {
        // Until its controller reports (availability Unknown), as the Go operator starts it.
        status.lockserver = Some(LockserverStatus {
            etcd: Some(etcd.status.unwrap_or_default()),
        });
    }
    apply::status(&ctx.client, owner, cell.status.as_ref(), &status).await?;
    tracing::debug!(requests = applier.requests(), "applied");
    Ok(Action::requeue(REQUEUE))
}

/// The update strategy of the cell's cluster (`External`, the default, when the cluster
/// cannot be found: nothing rolls on a guess).
async fn cluster_rollout(ctx: &Context, cell: &VitessCell) -> Result<Rollout, Error> {
    let namespace = cell.namespace().unwrap_or_default();
    let Some(name) = cell.labels().get(labels::CLUSTER) else {
        return Ok(Rollout::External);
    };
    let cluster = ctx
        .cluster(&namespace, name)
        .await
        .map_err(|source| Error::Get {
            what: format!("VitessCluster {namespace}/{name}"),
            source: Box::new(source),
        })?;
    Ok(Rollout::of(
        cluster
            .as_ref()
            .and_then(|c| c.spec.update_strategy.as_ref()),
    ))
}

/// The cell says what its vtgate waits for as the Go operator's VitessCell did
/// (`rollout.planetscale.com/scheduled`, which the cluster's `status.cells[].pendingChanges`
/// shows), and a release on it is used up once the vtgate runs ours.
async fn pending_on_cell(
    ctx: &Context,
    cell: &VitessCell,
    deployment: &Deployment,
) -> Result<(), Error> {
    let pending = deployment.annotations().get(labels::rollout::SCHEDULED);
    let said = cell.annotations().get(labels::rollout::SCHEDULED);
    let mut set = std::collections::BTreeMap::new();
    let mut remove = Vec::new();
    match pending {
        Some(note) if said != Some(note) => {
            set.insert(labels::rollout::SCHEDULED.to_string(), note.clone());
        }
        Some(_) => {}
        None => {
            if said.is_some() {
                remove.push(labels::rollout::SCHEDULED.to_string());
            }
            if cell.annotations().contains_key(labels::rollout::RELEASED) {
                remove.push(labels::rollout::RELEASED.to_string());
            }
        }
    }
    if set.is_empty() && remove.is_empty() {
        return Ok(());
    }
    apply::annotate::<VitessCell>(&ctx.client, &cell.metadata, &set, &remove).await?;
    Ok(())
}

/// The cell's status from its applied vtgate Deployment.
fn status(cell: &VitessCell, deployment: &Deployment, service_name: &str) -> VitessCellStatus {
    let desired = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let observed = deployment.status.clone().unwrap_or_default();
    let available = observed.available_replicas.unwrap_or(0);
    // A Deployment that has not yet seen its latest spec reports the old rollout.
    let current = observed.observed_generation >= deployment.metadata.generation;
    let ready =
        current && available >= desired && observed.updated_replicas.unwrap_or(0) >= desired;
    let selector = deployment
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.as_ref())
        .map(|labels| {
            labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        });

    let mut status = cell.status.clone().unwrap_or_default();
    status.observed_generation = cell.metadata.generation;
    status.gateway = VitessCellGatewayStatus {
        available: condition::status_of(ready),
        service_name: Some(service_name.to_string()),
        label_selector: selector,
        replicas: observed.replicas.unwrap_or(0),
    };
    let readiness = if ready {
        Readiness::new(
            true,
            "GatewayAvailable",
            format!("{available}/{desired} vtgates available"),
        )
    } else {
        Readiness::new(
            false,
            "GatewayUnavailable",
            format!(
                "{available}/{desired} vtgates of Deployment {} available",
                deployment.name_any()
            ),
        )
    };
    status.conditions =
        condition::with_ready(&status.conditions, &readiness, cell.metadata.generation);
    status
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::{DeploymentSpec, DeploymentStatus};

    use super::*;

    fn deployment(available: i32) -> Deployment {
        Deployment {
            metadata: kube::api::ObjectMeta {
                name: Some("example-zone1-vtgate-bc6cde92".into()),
                generation: Some(1),
                ..Default::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(2),
                selector: desired::podspec::selector(&crate::domain::labels::set(&[("a", "b")])),
                ..Default::default()
            }),
            status: Some(DeploymentStatus {
                observed_generation: Some(1),
                replicas: Some(2),
                available_replicas: Some(available),
                updated_replicas: Some(2),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn ready_when_every_vtgate_is_available() {
        let cell = VitessCell::new("example-zone1-5abb61ae", Default::default());
        let status = status(&cell, &deployment(1), "svc");
        assert!(!condition::is_ready(&status.conditions));
        assert_eq!(status.gateway.label_selector.as_deref(), Some("a=b"));
        let status = status_ready(&cell);
        assert!(condition::is_ready(&status.conditions));
        assert_eq!(status.gateway.replicas, 2);
        assert_eq!(status.gateway.service_name.as_deref(), Some("svc"));
    }

    fn status_ready(cell: &VitessCell) -> VitessCellStatus {
        status(cell, &deployment(2), "svc")
    }
}

#[cfg(test)]
/// The reconcile against the stand-in API server.
mod reconcile_tests {
    use super::*;
    use crate::controller::testing::{self, requests, writes};

    #[tokio::test]
    async fn a_cell_gets_its_vtgate_then_a_steady_one_writes_nothing() {
        let (ctx, server) = testing::context(None);
        let children = desired::cluster::children(&testing::example_cluster()).expect("children");
        let cell = server.insert_object(&children.cells[0]);
        let vtgate = crate::domain::names::cluster::vtgate_deployment("example", "zone1");

        reconcile(Arc::new(cell.clone()), ctx.clone())
            .await
            .expect("first reconcile");
        let first = server.take_calls();
        let deployment = format!("apply deployments/{vtgate}");
        let status = format!("status vitesscells/{}", cell.name_any());
        let reqs = requests(&first);
        assert!(reqs[0].starts_with("apply services/"), "{reqs:?}");
        // The cluster's update strategy (a GET here, where no cluster controller shares its
        // cache); the Deployments' one list serves the apply (a template another writer made
        // may be kept) and the prune.
        assert_eq!(
            reqs[1..],
            [
                "get vitessclusters/example",
                "list deployments",
                deployment.as_str(),
                "list horizontalpodautoscalers",
                "list services",
                status.as_str()
            ]
        );
        assert_eq!(writes(&first), [reqs[0], reqs[3], status.as_str()]);

        let cell = server.object_like(&cell).expect("still there");
        reconcile(Arc::new(cell), ctx.clone())
            .await
            .expect("second reconcile");
        let second = server.take_calls();
        assert_eq!(requests(&second), reqs[..reqs.len() - 1]);
        assert_eq!(writes(&second), Vec::<&str>::new());
    }

    /// `lockserver.etcd` gives the cell an EtcdLockserver of its own, in its zone, whose status
    /// the cell reports; a steady cell applies it again without a write.
    #[tokio::test]
    async fn a_cell_with_its_own_etcd_gets_an_etcd_lockserver_in_its_zone() {
        use crate::api::shared::LockserverSpec;
        let (ctx, server) = testing::context(None);
        let mut cluster = testing::example_cluster();
        cluster.spec.cells[0].zone = Some("zone-a".into());
        cluster.spec.cells[0].lockserver = Some(LockserverSpec {
            etcd: Some(Default::default()),
            ..LockserverSpec::default()
        });
        let children = desired::cluster::children(&cluster).expect("children");
        let cell = server.insert_object(&children.cells[0]);
        let etcd = crate::domain::names::cluster::local_etcd("example", "zone1");

        reconcile(Arc::new(cell.clone()), ctx.clone())
            .await
            .expect("first reconcile");
        let applied = format!("apply etcdlockservers/{etcd}");
        assert!(
            writes(&server.take_calls()).contains(&applied.as_str()),
            "no {applied}"
        );
        let mut probe = EtcdLockserver::new(&etcd, Default::default());
        probe.metadata.namespace = Some(testing::NAMESPACE.into());
        let stored = server.object_like(&probe).expect("the cell's etcd");
        assert_eq!(stored.spec.zone.as_deref(), Some("zone-a"));
        assert_eq!(stored.labels()[labels::CELL], "zone1");
        let owner = &stored.metadata.owner_references.as_ref().expect("an owner")[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str()),
            ("VitessCell", cell.name_any().as_str())
        );
        let status = server
            .object_like(&cell)
            .and_then(|c| c.status)
            .expect("a status");
        assert!(status.lockserver.is_some_and(|l| l.etcd.is_some()));

        let cell = server.object_like(&cell).expect("still there");
        reconcile(Arc::new(cell), ctx.clone())
            .await
            .expect("second reconcile");
        assert_eq!(writes(&server.take_calls()), Vec::<&str>::new());
    }
}
