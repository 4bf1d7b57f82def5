//! The cluster's status: the Go operator's roll-ups per cell and keyspace from the applied
//! children, and Ready when the lockserver, vtctld, every cell and every keyspace are.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;

use super::{FIELDS_ACTED_ON, TOPOLOGY_REGISTERED};
use crate::api::cluster::{
    ServiceStatus, VitessClusterCellStatus, VitessClusterKeyspaceStatus, VitessClusterStatus,
};
use crate::api::shared::{LockserverStatus, OrphanStatus};
use crate::api::{EtcdLockserver, VitessCell, VitessCluster, VitessKeyspace};
use crate::controller::condition::{self, Readiness};
use crate::controller::topology::TopologyError;
use crate::controller::{Context, Error};
use crate::domain::labels;
use crate::k8s::apply;
use crate::k8s::events;
use kube::ResourceExt;
use kube::runtime::events::EventType;

/// The applied children the status is computed from.
pub(super) struct Observed {
    pub(super) etcd: Option<EtcdLockserver>,
    pub(super) cells: Vec<VitessCell>,
    pub(super) keyspaces: Vec<VitessKeyspace>,
    pub(super) vtctlds: Vec<Deployment>,
    pub(super) vtctld_service: String,
    pub(super) gateway_service: String,
    /// vtadmin's Deployments (none without `spec.vtadmin`).
    pub(super) vtadmins: Vec<Deployment>,
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

fn vtctld_available(observed: &Observed) -> bool {
    !observed.vtctlds.is_empty() && observed.vtctlds.iter().all(deployment_available)
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

fn lockserver_ready(etcd: &EtcdLockserver) -> bool {
    let status = etcd.status.as_ref();
    child_ready(
        status.map(|s| &s.conditions),
        status.and_then(|s| s.observed_generation),
        etcd.metadata.generation,
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

/// Per cell: whether its vtgates are available and what they wait for.
fn cell_rollups(observed: &Observed) -> BTreeMap<String, VitessClusterCellStatus> {
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
                // What its vtgate waits for under `External` (the cell controller copies it).
                pending_changes: cell.annotations().get(labels::rollout::SCHEDULED).cloned(),
                gateway_available: gateway,
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
/// the cluster serves: its own lockserver (when it has one) and vtctld are available, and
/// every cell (vtgates) and keyspace (shards with a serving primary) is Ready.
pub(super) fn status(cluster: &VitessCluster, observed: &Observed) -> VitessClusterStatus {
    let mut status = cluster.status.clone().unwrap_or_default();
    status.observed_generation = cluster.metadata.generation;
    status.global_lockserver = observed.etcd.as_ref().map(|etcd| LockserverStatus {
        etcd: etcd.status.clone(),
    });
    status.gateway_service_name = Some(observed.gateway_service.clone());
    status.vitess_dashboard = Some(ServiceStatus {
        available: condition::status_of(vtctld_available(observed)),
        service_name: Some(observed.vtctld_service.clone()),
    });
    // vtadmin, when run: available when any of its Deployments is (somebody answers), as
    // the Go operator reports it; not part of Ready (a cluster serves without it).
    status.vtadmin = (!observed.vtadmins.is_empty()).then(|| ServiceStatus {
        available: condition::status_of(observed.vtadmins.iter().any(deployment_available)),
        service_name: Some(crate::desired::vtadmin::service_name(&cluster.name_any())),
    });
    status.cells = cell_rollups(observed);
    status.keyspaces = keyspace_rollups(observed);

    let desired = observed.keyspaces.len();
    let ready = observed
        .keyspaces
        .iter()
        .filter(|k| keyspace_ready(k))
        .count();
    status.summary = Some(format!("{ready}/{desired}"));
    let mut waiting: Vec<String> = observed
        .etcd
        .iter()
        .filter(|etcd| !lockserver_ready(etcd))
        .map(|etcd| format!("EtcdLockserver {}", etcd.name_any()))
        .collect();
    if !vtctld_available(observed) {
        waiting.push(format!("vtctld (Service {})", observed.vtctld_service));
    }
    waiting.extend(
        observed
            .cells
            .iter()
            .filter(|c| !cell_ready(c))
            .map(|c| format!("cell {}", c.spec.template.name)),
    );
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
                "lockserver and vtctld available, {} cells and {desired} keyspaces ready",
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
    status.conditions = condition::with_condition(
        &status.conditions,
        FIELDS_ACTED_ON,
        Some(&fields_acted_on(cluster)),
        cluster.metadata.generation,
    );
    status
}

/// Whether the operator acts on every field the spec sets; False names each one it does not
/// (the warnings of `vitess-operator validate`), so a field is never silently ignored.
fn fields_acted_on(cluster: &VitessCluster) -> Readiness {
    let mut warnings = Vec::new();
    crate::cli::validate::cluster_warnings(&cluster.spec, &mut warnings);
    if warnings.is_empty() {
        return Readiness::new(true, "AllActedOn", "every field set is acted on");
    }
    let lines: Vec<String> = warnings
        .iter()
        .map(|w| format!("{}: {}", w.path, w.message))
        .collect();
    Readiness::new(false, "NotActedOn", lines.join("; "))
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
    let was_registered = state_of(cluster.status.as_ref(), TOPOLOGY_REGISTERED);
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
    if let Some((state, message)) = state_of(Some(&status), FIELDS_ACTED_ON)
        && state == "False"
        && state_of(cluster.status.as_ref(), FIELDS_ACTED_ON) != Some((state, message.clone()))
    {
        ctx.events
            .publish(
                cluster,
                EventType::Warning,
                events::FIELDS_NOT_ACTED_ON,
                &message,
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

/// Condition `type_` of `status` as (status, message), to tell a new situation from a known one.
fn state_of(status: Option<&VitessClusterStatus>, type_: &str) -> Option<(String, String)> {
    status
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_))
        .map(|c| (c.status.clone(), c.message.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ready(status: &str) -> serde_json::Value {
        json!({"observedGeneration": 1, "conditions": [{"type": "Ready", "status": status,
            "reason": "R", "message": "", "lastTransitionTime": "2026-12-02T00:00:00Z"}]})
    }

    fn child<T: serde::de::DeserializeOwned>(kind: &str, spec: serde_json::Value, up: bool) -> T {
        serde_json::from_value(json!({
            "apiVersion": "planetscale.com/v2", "kind": kind,
            "metadata": {"name": "example-x", "generation": 1},
            "spec": spec,
            "status": ready(if up { "True" } else { "False" }),
        }))
        .expect("a valid child")
    }

    fn lockserver() -> serde_json::Value {
        json!({"implementation": "etcd2", "address": "example-etcd:2379", "rootPath": "/vitess"})
    }

    fn vtctld(available: i32) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "example-zone1-vtctld-1", "generation": 1},
            "spec": {"replicas": 1, "selector": {}, "template": {}},
            "status": {"observedGeneration": 1, "availableReplicas": available},
        }))
        .expect("a valid Deployment")
    }

    fn observed(etcd: bool, vtctld_up: i32, keyspace: bool) -> Observed {
        Observed {
            etcd: Some(child("EtcdLockserver", json!({}), etcd)),
            cells: vec![child(
                "VitessCell",
                json!({"name": "zone1", "globalLockserver": lockserver()}),
                true,
            )],
            keyspaces: vec![child(
                "VitessKeyspace",
                json!({"name": "commerce", "partitionings": [], "globalLockserver": lockserver()}),
                keyspace,
            )],
            vtctlds: vec![vtctld(vtctld_up)],
            vtctld_service: "example-vtctld-625ee430".into(),
            gateway_service: "example-vtgate-ae7df4b6".into(),
            vtadmins: vec![],
        }
    }

    /// vtadmin is reported when run (available when any of its Deployments is), and is no
    /// part of Ready.
    #[test]
    fn vtadmin_is_reported_when_run_and_does_not_hold_ready() {
        let cluster: VitessCluster = serde_json::from_value(json!({
            "apiVersion": "planetscale.com/v2", "kind": "VitessCluster",
            "metadata": {"name": "example", "generation": 1}, "spec": {},
        }))
        .expect("a valid cluster");
        let mut seen = observed(true, 1, true);
        assert_eq!(status(&cluster, &seen).vtadmin, None);
        seen.vtadmins = vec![vtctld(0), vtctld(1)];
        let reported = status(&cluster, &seen).vtadmin.expect("vtadmin status");
        assert_eq!(
            reported.available,
            crate::api::shared::ConditionStatus::True
        );
        assert_eq!(
            reported.service_name.as_deref(),
            Some(crate::desired::vtadmin::service_name("example").as_str())
        );
        seen.vtadmins = vec![vtctld(0)];
        let reported = status(&cluster, &seen).vtadmin.expect("vtadmin status");
        assert_eq!(
            reported.available,
            crate::api::shared::ConditionStatus::False
        );
        assert_eq!(ready_condition(&seen).0, "True");
    }

    fn ready_condition(observed: &Observed) -> (String, String) {
        let cluster: VitessCluster = serde_json::from_value(json!({
            "apiVersion": "planetscale.com/v2", "kind": "VitessCluster",
            "metadata": {"name": "example", "generation": 1}, "spec": {},
        }))
        .expect("a valid cluster");
        let status = status(&cluster, observed);
        let ready = status
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .expect("a Ready condition");
        (ready.status.clone(), ready.message.clone())
    }

    /// Every part a client needs is waited for, by name; Ready only when all serve.
    #[test]
    fn ready_waits_for_lockserver_vtctld_cells_and_keyspaces() {
        let (status, message) = ready_condition(&observed(false, 0, false));
        assert_eq!(status, "False");
        assert_eq!(
            message,
            "waiting for EtcdLockserver example-x, vtctld (Service example-vtctld-625ee430), \
             keyspace commerce"
        );
        let (status, message) = ready_condition(&observed(true, 0, true));
        assert_eq!(
            (status.as_str(), message.as_str()),
            (
                "False",
                "waiting for vtctld (Service example-vtctld-625ee430)"
            )
        );
        let (status, _) = ready_condition(&observed(true, 1, true));
        assert_eq!(status, "True");
        let mut external = observed(true, 1, true);
        external.etcd = None;
        assert_eq!(ready_condition(&external).0, "True");
    }

    /// A field set and not acted on is named in FieldsActedOn, never silently ignored.
    #[test]
    fn fields_not_acted_on_are_named_in_a_condition() {
        let condition = |spec: serde_json::Value| {
            let cluster: VitessCluster = serde_json::from_value(json!({
                "apiVersion": "planetscale.com/v2", "kind": "VitessCluster",
                "metadata": {"name": "example", "generation": 1}, "spec": spec,
            }))
            .expect("a valid cluster");
            let status = status(&cluster, &observed(true, 1, true));
            let found = status
                .conditions
                .iter()
                .find(|c| c.type_ == FIELDS_ACTED_ON)
                .expect("a FieldsActedOn condition")
                .clone();
            (found.status, found.reason, found.message)
        };
        assert_eq!(condition(json!({})).0, "True");
        let (state, reason, message) = condition(json!({
            "vtadmin": {"apiAddresses": ["http://localhost:14001"]},
            "topologyReconciliation": {"pruneSrvKeyspaces": true},
        }));
        assert_eq!((state.as_str(), reason.as_str()), ("False", "NotActedOn"));
        assert!(
            message.starts_with("spec.vtadmin: not acted on: "),
            "{message}"
        );
        assert!(
            message.contains("; spec.topologyReconciliation.pruneSrvKeyspaces: not acted on: "),
            "{message}"
        );
    }
}
