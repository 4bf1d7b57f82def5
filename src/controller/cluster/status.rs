//! The cluster's status: the Go operator's roll-ups per cell and keyspace from the applied
//! children, and Ready when every cell and keyspace is.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;

use super::TOPOLOGY_REGISTERED;
use crate::api::cluster::{
    ServiceStatus, VitessClusterCellStatus, VitessClusterKeyspaceStatus, VitessClusterStatus,
};
use crate::api::shared::{LockserverStatus, OrphanStatus};
use crate::api::{EtcdLockserver, VitessCell, VitessCluster, VitessKeyspace};
use crate::controller::condition::{self, Readiness};
use crate::controller::topology::TopologyError;
use crate::controller::{Context, Error};
use crate::k8s::apply;
use crate::k8s::events;
use kube::runtime::events::EventType;

/// The applied children the status is computed from.
pub(super) struct Observed {
    pub(super) etcd: Option<EtcdLockserver>,
    pub(super) cells: Vec<VitessCell>,
    pub(super) keyspaces: Vec<VitessKeyspace>,
    pub(super) vtctlds: Vec<Deployment>,
    pub(super) vtctld_service: String,
    pub(super) gateway_service: String,
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

/// Per cell: whether its vtgates are available (other fields as they were).
fn cell_rollups(
    status: &VitessClusterStatus,
    observed: &Observed,
) -> BTreeMap<String, VitessClusterCellStatus> {
    observed
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
        .collect()
}

/// Per keyspace: the Go operator's shard and tablet counts from its own status.
fn keyspace_rollups(observed: &Observed) -> BTreeMap<String, VitessClusterKeyspaceStatus> {
    observed
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
        .collect()
}

/// The cluster's status: the Go operator's roll-ups per cell and keyspace, and Ready when
/// every cell and keyspace is.
pub(super) fn status(cluster: &VitessCluster, observed: &Observed) -> VitessClusterStatus {
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
    status.cells = cell_rollups(&status, observed);
    status.keyspaces = keyspace_rollups(observed);

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

/// The children no longer in the spec that are kept, with why, by Vitess name.
pub(super) struct Orphans {
    pub(super) keyspaces: BTreeMap<String, OrphanStatus>,
    pub(super) cells: BTreeMap<String, OrphanStatus>,
}

/// Writes the status (only when it changed) and publishes what blocks the cluster: vtctld
/// unreachable (once per message), kept keyspaces and cells (once per situation).
pub(super) async fn report(
    ctx: &Context,
    cluster: &VitessCluster,
    observed: &Observed,
    orphans: Orphans,
    registered: &Result<Vec<String>, TopologyError>,
) -> Result<(), Error> {
    let mut status = status(cluster, observed);
    status.orphaned_keyspaces = orphans.keyspaces;
    status.orphaned_cells = orphans.cells;
    let topology = match registered {
        Ok(_) => Readiness::new(
            true,
            "Registered",
            "vtctld knows the cells, cells alias and keyspaces of the spec",
        ),
        Err(why) => Readiness::new(false, why.reason(), why.to_string()),
    };
    status.conditions = condition::with_condition(
        &status.conditions,
        TOPOLOGY_REGISTERED,
        Some(&topology),
        cluster.metadata.generation,
    );
    apply::status(&ctx.client, cluster, cluster.status.as_ref(), &status).await?;
    let was_registered = cluster
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == TOPOLOGY_REGISTERED))
        .map(|c| (c.status.clone(), c.message.clone()));
    if let Err(why) = registered
        && was_registered != Some(("False".into(), why.to_string()))
    {
        ctx.events
            .publish(
                cluster,
                EventType::Warning,
                events::VTCTLD_UNREACHABLE,
                &why.to_string(),
            )
            .await;
    }
    let before = cluster.status.as_ref();
    ctx.events
        .blocked(
            cluster,
            events::TURNDOWN_BLOCKED,
            &[
                (
                    "keyspace",
                    before.map(|s| &s.orphaned_keyspaces),
                    &status.orphaned_keyspaces,
                ),
                (
                    "cell",
                    before.map(|s| &s.orphaned_cells),
                    &status.orphaned_cells,
                ),
            ],
        )
        .await;
    Ok(())
}
