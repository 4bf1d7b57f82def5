//! Reconciles a VitessCluster: its child custom resources (lockserver, cells, keyspaces,
//! backup storages), vtctld and the cluster-wide Services; rolls up the children's readiness.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::watcher;

use super::condition::{self, Readiness};
use super::{Context, Error, REQUEUE};
use crate::api::cluster::{
    ServiceStatus, VitessClusterCellStatus, VitessClusterKeyspaceStatus, VitessClusterStatus,
};
use crate::api::shared::LockserverStatus;
use crate::api::{EtcdLockserver, VitessBackupStorage, VitessCell, VitessCluster, VitessKeyspace};
use crate::{apply, build};
use kube::core::PartialObjectMeta;

pub async fn run(ctx: Arc<Context>) {
    Controller::new(ctx.api::<VitessCluster>(), watcher::Config::default())
        .owns(ctx.api::<VitessCell>(), watcher::Config::default())
        .owns(ctx.api::<VitessKeyspace>(), watcher::Config::default())
        .owns(ctx.api::<EtcdLockserver>(), watcher::Config::default())
        .owns(ctx.api::<VitessBackupStorage>(), watcher::Config::default())
        .owns(
            ctx.api::<PartialObjectMeta<Deployment>>(),
            super::children(),
        )
        .owns(ctx.api::<PartialObjectMeta<Service>>(), super::children())
        .with_config(super::config())
        .shutdown_on_signal()
        .run(reconcile, super::error_policy, ctx.clone())
        .for_each(|result| super::report(&ctx, result))
        .await;
}

/// The applied children the status is computed from.
struct Observed {
    etcd: Option<EtcdLockserver>,
    cells: Vec<VitessCell>,
    keyspaces: Vec<VitessKeyspace>,
    vtctlds: Vec<Deployment>,
    vtctld_service: String,
    gateway_service: String,
}

#[tracing::instrument(skip_all, fields(cluster = %cluster.name_any()))]
async fn reconcile(cluster: Arc<VitessCluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    let client = &ctx.client;
    let owner = cluster.as_ref();

    let problems = super::validate(&ctx, owner)?;
    if !problems.is_empty() {
        // Bad input changes nothing that runs (DESIGN §7); it is reported and waits for an edit.
        let readiness = Readiness::new(false, "InvalidSpec", problems.join("; "));
        let mut status = cluster.status.clone().unwrap_or_default();
        status.observed_generation = cluster.metadata.generation;
        status.conditions =
            condition::with_ready(&status.conditions, &readiness, cluster.metadata.generation);
        apply::status(client, owner, cluster.status.as_ref(), &status).await?;
        return Ok(Action::await_change());
    }

    let children = build::cluster::children(owner)?;
    let topo = build::lockserver::global(owner)?;
    let vtctld = build::vtctld::build(owner, &topo)?;
    let gateway_service = build::vtgate::cluster_service(owner)?;
    let tablet_service = build::vttablet::cluster_service(owner)?;

    let etcd = match children.etcd {
        Some(etcd) => Some(apply::owned(client, owner, etcd).await?),
        None => None,
    };
    let mut cells = Vec::with_capacity(children.cells.len());
    for cell in children.cells {
        cells.push(apply::owned(client, owner, cell).await?);
    }
    let mut keyspaces = Vec::with_capacity(children.keyspaces.len());
    for keyspace in children.keyspaces {
        keyspaces.push(apply::owned(client, owner, keyspace).await?);
    }
    for storage in children.backup_storages {
        apply::owned(client, owner, storage).await?;
    }
    let vtctld_service = apply::owned(client, owner, vtctld.service)
        .await?
        .name_any();
    let mut vtctlds = Vec::with_capacity(vtctld.deployments.len());
    for deployment in vtctld.deployments {
        vtctlds.push(apply::owned(client, owner, deployment).await?);
    }
    let gateway_service = apply::owned(client, owner, gateway_service)
        .await?
        .name_any();
    apply::owned(client, owner, tablet_service).await?;

    let observed = Observed {
        etcd,
        cells,
        keyspaces,
        vtctlds,
        vtctld_service,
        gateway_service,
    };
    let status = status(owner, &observed);
    apply::status(client, owner, cluster.status.as_ref(), &status).await?;
    Ok(Action::requeue(REQUEUE))
}

fn deployment_available(deployment: &Deployment) -> bool {
    let desired = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let status = deployment.status.clone().unwrap_or_default();
    status.observed_generation >= deployment.metadata.generation
        && status.available_replicas.unwrap_or(0) >= desired
}

/// Ready as its own controller reported it for the spec it last saw.
fn child_ready(
    conditions: Option<&crate::api::shared::Conditions>,
    observed: Option<i64>,
    generation: Option<i64>,
) -> bool {
    conditions.is_some_and(condition::is_ready) && observed == generation
}

fn cell_ready(cell: &VitessCell) -> bool {
    let status = cell.status.as_ref();
    child_ready(
        status.map(|s| &s.conditions),
        status.and_then(|s| s.observed_generation),
        cell.metadata.generation,
    )
}

fn keyspace_ready(keyspace: &VitessKeyspace) -> bool {
    let status = keyspace.status.as_ref();
    child_ready(
        status.map(|s| &s.conditions),
        status.and_then(|s| s.observed_generation),
        keyspace.metadata.generation,
    )
}

/// The cluster's status: the Go operator's roll-ups per cell and keyspace, and Ready when
/// every cell and keyspace is.
fn status(cluster: &VitessCluster, observed: &Observed) -> VitessClusterStatus {
    let mut status = cluster.status.clone().unwrap_or_default();
    status.observed_generation = cluster.metadata.generation;
    status.global_lockserver = observed.etcd.as_ref().map(|etcd| LockserverStatus {
        etcd: etcd.status.clone(),
    });
    status.gateway_service_name = Some(observed.gateway_service.clone());
    status.vitess_dashboard = Some(ServiceStatus {
        available: condition::status_of(
            !observed.vtctlds.is_empty() && observed.vtctlds.iter().all(deployment_available),
        ),
        service_name: Some(observed.vtctld_service.clone()),
    });
    status.cells = observed
        .cells
        .iter()
        .map(|cell| {
            let gateway = cell
                .status
                .as_ref()
                .map(|s| s.gateway.available)
                .unwrap_or_default();
            let entry = VitessClusterCellStatus {
                gateway_available: gateway,
                ..status
                    .cells
                    .get(&cell.spec.template.name)
                    .cloned()
                    .unwrap_or_default()
            };
            (cell.spec.template.name.clone(), entry)
        })
        .collect();
    status.keyspaces = observed
        .keyspaces
        .iter()
        .map(|keyspace| {
            let ks = keyspace.status.clone().unwrap_or_default();
            let shards = ks.shards.values();
            let mut cells: Vec<String> = shards.clone().flat_map(|s| s.cells.clone()).collect();
            cells.sort();
            cells.dedup();
            let entry = VitessClusterKeyspaceStatus {
                pending_changes: None,
                desired_shards: ks.partitionings.iter().map(|p| p.desired_shards).sum(),
                shards: i32::try_from(ks.shards.len()).unwrap_or(i32::MAX),
                ready_shards: ks.partitionings.iter().map(|p| p.ready_shards).sum(),
                updated_shards: 0,
                desired_tablets: shards.clone().map(|s| s.desired_tablets).sum(),
                tablets: shards.clone().map(|s| s.tablets).sum(),
                ready_tablets: shards.clone().map(|s| s.ready_tablets).sum(),
                updated_tablets: 0,
                cells,
            };
            (keyspace.spec.template.name.clone(), entry)
        })
        .collect();

    let desired = observed.keyspaces.len();
    let ready = observed
        .keyspaces
        .iter()
        .filter(|k| keyspace_ready(k))
        .count();
    status.summary = Some(format!("{ready}/{desired}"));
    let mut waiting: Vec<String> = observed
        .cells
        .iter()
        .filter(|c| !cell_ready(c))
        .map(|c| format!("cell {}", c.spec.template.name))
        .collect();
    waiting.extend(
        observed
            .keyspaces
            .iter()
            .filter(|k| !keyspace_ready(k))
            .map(|k| format!("keyspace {}", k.spec.template.name)),
    );
    let readiness = if waiting.is_empty() {
        Readiness::new(
            true,
            "AllReady",
            format!(
                "{} cells and {desired} keyspaces ready",
                observed.cells.len()
            ),
        )
    } else {
        Readiness::new(
            false,
            "NotReady",
            format!("waiting for {}", waiting.join(", ")),
        )
    };
    status.conditions =
        condition::with_ready(&status.conditions, &readiness, cluster.metadata.generation);
    status
}
