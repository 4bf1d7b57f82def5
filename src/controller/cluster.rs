//! Reconciles a VitessCluster: its child custom resources (lockserver, cells, keyspaces,
//! backup storages), vtctld, the cluster-wide Services and the backup schedules' CronJobs;
//! rolls up the children's readiness.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::watcher;

use super::condition::{self, Readiness};
use super::{Context, Error, REQUEUE, topology};
use crate::api::cluster::{
    ServiceStatus, VitessClusterCellStatus, VitessClusterKeyspaceStatus, VitessClusterStatus,
};
use crate::api::keyspace::{TurndownPolicy, VitessKeyspaceTemplate};
use crate::api::shared::{ConditionStatus, LockserverStatus, OrphanStatus};
use crate::api::{EtcdLockserver, VitessBackupStorage, VitessCell, VitessCluster, VitessKeyspace};
use crate::k8s::applier::Applier;
use crate::vitess::Vtctld;
use crate::{desired, domain::labels, k8s::apply, k8s::events};
use kube::core::PartialObjectMeta;
use kube::runtime::events::EventType;

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
        // A CronJob's status changes on every run, which wakes the cluster for nothing; the
        // watch is still worth it: a CronJob deleted or edited by hand is put back at once
        // rather than at the next periodic requeue, and a steady reconcile writes nothing.
        .owns(ctx.api::<PartialObjectMeta<CronJob>>(), super::children())
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
        let message = problems.join("; ");
        let previous = cluster
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == condition::READY))
            .map(|c| (c.reason.as_str(), c.message.as_str()));
        let new = events::invalid_spec_is_new(previous, &message);
        let readiness = Readiness::new(false, events::INVALID_SPEC, message.clone());
        let mut status = cluster.status.clone().unwrap_or_default();
        status.observed_generation = cluster.metadata.generation;
        status.conditions =
            condition::with_ready(&status.conditions, &readiness, cluster.metadata.generation);
        apply::status(client, owner, cluster.status.as_ref(), &status).await?;
        if new {
            ctx.events
                .publish(owner, EventType::Warning, events::INVALID_SPEC, &message)
                .await;
        }
        return Ok(Action::await_change());
    }

    let desired::bundle::ClusterBundle {
        children:
            desired::cluster::ClusterChildren {
                etcd,
                cells,
                keyspaces,
                backup_storages,
            },
        vtctld:
            desired::vtctld::VtctldObjects {
                deployments: vtctld_deployments,
                service: vtctld_service,
            },
        gateway_service,
        tablet_service,
        schedules,
    } = desired::bundle::cluster(owner)?;

    let desired_cells: BTreeSet<String> = cells.iter().map(|c| c.name_any()).collect();
    let desired_keyspaces: BTreeSet<String> = keyspaces.iter().map(|k| k.name_any()).collect();
    let desired_storages: BTreeSet<String> = backup_storages.iter().map(|b| b.name_any()).collect();
    let desired_vtctlds: BTreeSet<String> =
        vtctld_deployments.iter().map(|d| d.name_any()).collect();
    let desired_services: BTreeSet<String> = [
        vtctld_service.name_any(),
        gateway_service.name_any(),
        tablet_service.name_any(),
    ]
    .into();
    let desired_schedules: BTreeSet<String> = schedules.iter().map(|c| c.name_any()).collect();
    let applier = Applier::new(client, &ctx.events, owner);
    // An EtcdLockserver is never pruned, even when the spec switched to an external
    // lockserver: it holds the topology, which only a person may decide to drop (DESIGN §7).
    let etcd = applier.all(etcd).await?.pop();
    let cells = applier.all(cells).await?;
    let keyspaces = applier.all(keyspaces).await?;
    applier.all(backup_storages).await?;
    let vtctld_service = applier.owned(vtctld_service).await?.name_any();
    let vtctlds = applier.all(vtctld_deployments).await?;
    let gateway_service = applier.owned(gateway_service).await?.name_any();
    applier.owned(tablet_service).await?;
    applier.all(schedules).await?;

    // Vitess' side: how vtctld is reached (the children need it too), then what it should know.
    let name = owner.name_any();
    let namespace = owner.namespace().unwrap_or_default();
    let tls = topology::tls(&ctx, owner).await;
    ctx.set_vtctld_tls(&namespace, &name, tls.clone());
    let vtctld = tls.and_then(|_| ctx.vtctld_of(&namespace, &name).map_err(|e| e.to_string()));
    let registered = match &vtctld {
        Ok(vtctld) => topology::register(vtctld, owner).await,
        Err(why) => Err(why.clone()),
    };
    if let Ok(changes) = &registered
        && !changes.is_empty()
    {
        ctx.events
            .publish(
                owner,
                EventType::Normal,
                events::TOPOLOGY_REGISTERED,
                &format!("registered in Vitess: {}", changes.join("; ")),
            )
            .await;
    }
    // Pruning the topology needs vtctld to have answered; without it, nothing is pruned.
    let vtctld = vtctld.ok().filter(|_| registered.is_ok());

    let ours = [(labels::CLUSTER, name.as_str())];
    applier
        .prune::<Deployment>(
            &super::selector(owner, labels::component::VTCTLD, &[labels::CLUSTER]),
            &desired_vtctlds,
        )
        .await?;
    applier
        .prune::<Service>(
            &apply::selector(&ours, &[labels::COMPONENT]),
            &desired_services,
        )
        .await?;
    applier
        .prune::<VitessBackupStorage>(&apply::selector(&ours, &[]), &desired_storages)
        .await?;
    // The CronJob of a removed schedule goes, with its Jobs and pods (background propagation);
    // backups already taken stay in storage.
    applier
        .prune::<CronJob>(
            &apply::selector(
                &[
                    (labels::COMPONENT, labels::component::VTBACKUP_SCHEDULE),
                    (labels::CLUSTER, name.as_str()),
                ],
                &[],
            ),
            &desired_schedules,
        )
        .await?;
    let orphaned_keyspaces =
        prune_keyspaces(&ctx, owner, &desired_keyspaces, vtctld.as_ref()).await?;
    let mut in_use: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for keyspace in owner.spec.keyspaces.iter().chain(&orphaned_keyspaces.kept) {
        for cell in pool_cells(keyspace) {
            in_use
                .entry(cell)
                .or_default()
                .insert(keyspace.name.clone());
        }
    }
    let orphaned_cells = prune_cells(&ctx, owner, &desired_cells, &in_use, vtctld.as_ref()).await?;

    let observed = Observed {
        etcd,
        cells,
        keyspaces,
        vtctlds,
        vtctld_service,
        gateway_service,
    };
    let mut status = status(owner, &observed);
    status.orphaned_keyspaces = orphaned_keyspaces.orphans;
    status.orphaned_cells = orphaned_cells;
    let topology = match &registered {
        Ok(_) => Readiness::new(
            true,
            "Registered",
            "vtctld knows the cells, cells alias and keyspaces of the spec",
        ),
        Err(why) => Readiness::new(false, "VtctldUnavailable", why.clone()),
    };
    status.conditions = condition::with_condition(
        &status.conditions,
        TOPOLOGY_REGISTERED,
        Some(&topology),
        cluster.metadata.generation,
    );
    apply::status(client, owner, cluster.status.as_ref(), &status).await?;
    let was_registered = cluster
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == TOPOLOGY_REGISTERED))
        .map(|c| (c.status.clone(), c.message.clone()));
    if let Err(why) = &registered
        && was_registered != Some(("False".into(), why.clone()))
    {
        ctx.events
            .publish(owner, EventType::Warning, events::VTCTLD_UNREACHABLE, why)
            .await;
    }
    let before = cluster.status.as_ref();
    ctx.events
        .blocked(
            owner,
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
    Ok(Action::requeue(if registered.is_ok() {
        REQUEUE
    } else {
        super::TOPOLOGY_RETRY
    }))
}

/// Whether vtctld knows what the spec says (cells, cells alias, keyspaces).
pub const TOPOLOGY_REGISTERED: &str = "TopologyRegistered";

/// Removes a keyspace or cell from Vitess before its child object goes, when the switch is on.
/// `Err` is the orphan status that keeps the child until it can be done.
async fn forget<F, Fut>(
    enabled: bool,
    vtctld: Option<&Vtctld>,
    what: &str,
    call: F,
) -> Result<(), OrphanStatus>
where
    F: FnOnce(Vtctld) -> Fut,
    Fut: std::future::Future<Output = Result<(), crate::vitess::Error>>,
{
    if !enabled {
        return Ok(());
    }
    let Some(vtctld) = vtctld else {
        return Err(OrphanStatus {
            reason: "VtctldUnavailable".into(),
            message: format!(
                "{what} is removed from Vitess before its object is deleted, and vtctld cannot \
                 be reached now; see the TopologyRegistered condition"
            ),
        });
    };
    call(vtctld.clone()).await.map_err(|e| OrphanStatus {
        reason: "TopologyPruneFailed".into(),
        message: format!("cannot remove {what} from Vitess: {e}"),
    })
}

/// The keyspaces no longer in the spec that are kept, with why.
struct KeptKeyspaces {
    /// By keyspace name, for the status.
    orphans: BTreeMap<String, OrphanStatus>,
    /// Their last templates: their tablets still run, so their cells are still in use.
    kept: Vec<VitessKeyspaceTemplate>,
}

/// Deletes the VitessKeyspaces no longer in the spec that may go: those whose turndown policy
/// is `Immediate` or that report themselves idle. The others may still serve and are kept
/// (DESIGN §7). Their shards and tablets go with them through garbage collection; the PVCs,
/// which have no owner, stay.
async fn prune_keyspaces(
    ctx: &Context,
    cluster: &VitessCluster,
    desired: &BTreeSet<String>,
    vtctld: Option<&Vtctld>,
) -> Result<KeptKeyspaces, Error> {
    let prune_topology = topology::enabled(cluster.spec.topology_reconciliation.as_ref(), |c| {
        c.prune_keyspaces
    });
    let name = cluster.name_any();
    let selector = apply::selector(&[(labels::CLUSTER, &name)], &[labels::KEYSPACE]);
    let api = ctx.api_in::<VitessKeyspace>(cluster);
    let mut kept = KeptKeyspaces {
        orphans: BTreeMap::new(),
        kept: Vec::new(),
    };
    for meta in apply::children::<VitessKeyspace, _>(&ctx.client, cluster, &selector).await? {
        if desired.contains(&meta.name_any()) {
            continue;
        }
        // The metadata list does not carry the policy and idleness; orphans are rare, so one
        // GET each is cheap. Gone meanwhile: nothing to decide.
        let Some(keyspace) =
            api.get_opt(&meta.name_any())
                .await
                .map_err(|source| apply::Error::Get {
                    object: format!("VitessKeyspace {}", meta.name_any()),
                    source: Box::new(source),
                })?
        else {
            continue;
        };
        let template = &keyspace.spec.template;
        let immediate = template.turndown_policy == Some(TurndownPolicy::Immediate);
        let idle = keyspace.status.as_ref().map(|s| s.idle) == Some(ConditionStatus::True);
        let forgotten = if immediate || idle {
            let ks = template.name.clone();
            forget(
                prune_topology,
                vtctld,
                &format!("keyspace {ks}"),
                |v| async move { v.delete_keyspace(&ks, true).await },
            )
            .await
        } else {
            Ok(())
        };
        if let Err(orphan) = forgotten {
            kept.orphans.insert(template.name.clone(), orphan);
            kept.kept.push(template.clone());
        } else if immediate || idle {
            if apply::delete(&ctx.client, &meta).await? {
                ctx.events
                    .pruned::<VitessKeyspace, _>(cluster, &[meta.name_any()])
                    .await;
            }
        } else {
            kept.orphans.insert(
                template.name.clone(),
                OrphanStatus {
                    reason: "TurndownRequiresIdle".into(),
                    message: format!(
                        "keyspace {} was removed from the spec but is kept because it may still \
                         serve (turndownPolicy RequireIdle); set turndownPolicy: Immediate on \
                         VitessKeyspace {} (or re-add the keyspace with it and remove it again) \
                         to delete it now, or wait until it is idle; its PVCs are kept either way",
                        template.name,
                        keyspace.name_any()
                    ),
                },
            );
            kept.kept.push(template.clone());
        }
    }
    Ok(kept)
}

/// Deletes the VitessCells no longer in the spec in which no keyspace (desired or kept) has a
/// tablet pool: their vtgates may be what those tablets are reached through. Returns the cells
/// kept, by cell name.
async fn prune_cells(
    ctx: &Context,
    cluster: &VitessCluster,
    desired: &BTreeSet<String>,
    in_use: &BTreeMap<String, BTreeSet<String>>,
    vtctld: Option<&Vtctld>,
) -> Result<BTreeMap<String, OrphanStatus>, Error> {
    let prune_topology = topology::enabled(cluster.spec.topology_reconciliation.as_ref(), |c| {
        c.prune_cells
    });
    let name = cluster.name_any();
    let selector = apply::selector(&[(labels::CLUSTER, &name)], &[labels::CELL]);
    let mut orphans = BTreeMap::new();
    for cell in apply::children::<VitessCell, _>(&ctx.client, cluster, &selector).await? {
        if desired.contains(&cell.name_any()) {
            continue;
        }
        let cell_name = cell
            .labels()
            .get(labels::CELL)
            .cloned()
            .unwrap_or_else(|| cell.name_any());
        match in_use.get(&cell_name) {
            Some(keyspaces) => {
                orphans.insert(
                    cell_name.clone(),
                    OrphanStatus {
                        reason: "CellInUse".into(),
                        message: format!(
                            "cell {cell_name} was removed from the spec but keyspaces {} still \
                             have tablet pools in it; remove those pools first",
                            keyspaces.iter().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    },
                );
            }
            None => {
                let name = cell_name.clone();
                let forgotten = forget(
                    prune_topology,
                    vtctld,
                    &format!("cell {name}"),
                    |v| async move { v.delete_cell_info(&name).await },
                )
                .await;
                match forgotten {
                    Err(orphan) => {
                        orphans.insert(cell_name.clone(), orphan);
                    }
                    Ok(()) => {
                        if apply::delete(&ctx.client, &cell).await? {
                            ctx.events
                                .pruned::<VitessCell, _>(cluster, &[cell.name_any()])
                                .await;
                        }
                    }
                }
            }
        }
    }
    Ok(orphans)
}

/// The cells in which `keyspace` has tablet pools.
fn pool_cells(keyspace: &VitessKeyspaceTemplate) -> BTreeSet<String> {
    keyspace
        .partitionings
        .iter()
        .flat_map(|p| {
            let equal = p.equal.iter().map(|e| &e.shard_template);
            let custom = p
                .custom
                .iter()
                .flat_map(|c| c.shards.iter().map(|s| &s.template));
            equal.chain(custom)
        })
        .flat_map(|t| t.tablet_pools.iter().map(|pool| pool.cell.clone()))
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::testing::{self, requests, writes};
    use vtctld_fake::FakeVtctld;

    /// The cluster's children, then the prunes' lists (no VitessBackupStorage or CronJob is
    /// desired, so nothing is deleted), in the order of every reconcile.
    const APPLIES: &[&str] = &[
        "apply etcdlockservers/example-etcd-faf13de3",
        "apply vitesscells/example-zone1-5abb61ae",
        "apply vitesskeyspaces/example-commerce-fb9b866a",
        "apply services/example-vtctld-625ee430",
        "apply deployments/example-zone1-vtctld-1d4dcad0",
        "apply services/example-vtgate-ae7df4b6",
        "apply services/example-vttablet-08646a59",
    ];
    const LISTS: &[&str] = &[
        "list deployments",
        "list services",
        "list vitessbackupstorages",
        "list cronjobs",
        "list vitesskeyspaces",
        "list vitesscells",
    ];

    fn methods(calls: &[vtctld_fake::Call]) -> Vec<String> {
        calls.iter().map(ToString::to_string).collect()
    }

    #[tokio::test]
    async fn a_new_cluster_is_applied_and_registered_then_a_steady_one_writes_nothing() {
        let vtctld = FakeVtctld::start(([127, 0, 0, 1], 0).into())
            .await
            .expect("fake vtctld");
        let address = vtctld.local_addr().to_string();
        let (ctx, server) = testing::context(Some(&address));
        let cluster = server.insert_object(&testing::example_cluster());

        reconcile(Arc::new(cluster.clone()), ctx.clone())
            .await
            .expect("first reconcile");
        let first = server.take_calls();
        let expected: Vec<&str> = APPLIES
            .iter()
            .copied()
            .chain(["create events"]) // TopologyRegistered
            .chain(LISTS.iter().copied())
            .chain(["status vitessclusters/example"])
            .collect();
        assert_eq!(requests(&first), expected);
        let mut expected_writes = APPLIES.to_vec();
        expected_writes.extend(["create events", "status vitessclusters/example"]);
        assert_eq!(writes(&first), expected_writes);
        let registered = vtctld.calls();
        assert_eq!(
            methods(&registered),
            [
                "GetCellsAliases ",
                "UpdateCellsAlias example zone1",
                "GetCellInfo zone1",
                "AddCellInfo zone1",
                "GetKeyspace commerce",
                "CreateKeyspace commerce durability=semi_sync",
            ]
        );

        let cluster = server.object_like(&cluster).expect("still there");
        reconcile(Arc::new(cluster), ctx.clone())
            .await
            .expect("second reconcile");
        let second = server.take_calls();
        let expected: Vec<&str> = APPLIES.iter().chain(LISTS).copied().collect();
        assert_eq!(requests(&second), expected);
        assert_eq!(writes(&second), Vec::<&str>::new());
        // vtctld is only read.
        assert_eq!(
            methods(&vtctld.calls()[registered.len()..]),
            [
                "GetCellsAliases ",
                "GetCellInfo zone1",
                "GetKeyspace commerce"
            ]
        );
    }

    #[tokio::test]
    async fn an_invalid_spec_applies_nothing_and_says_why_once() {
        let (ctx, server) = testing::context(None);
        let mut cluster = serde_json::to_value(testing::example_cluster()).expect("json");
        cluster["spec"]["keyspaces"][0]["partitionings"][0]["equal"]["shardTemplate"]["tabletPools"]
            [0]["cell"] = serde_json::json!("zone9");
        let cluster: VitessCluster = serde_json::from_value(cluster).expect("a cluster");
        let cluster = server.insert_object(&cluster);

        reconcile(Arc::new(cluster.clone()), ctx.clone())
            .await
            .expect("first reconcile");
        let first = server.take_calls();
        assert_eq!(
            requests(&first),
            ["status vitessclusters/example", "create events"]
        );
        let stored = server.object_like(&cluster).expect("still there");
        let ready = stored
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == condition::READY))
            .expect("a Ready condition");
        assert_eq!(ready.reason, events::INVALID_SPEC);
        assert!(ready.message.contains("zone9"), "{}", ready.message);

        reconcile(Arc::new(stored), ctx.clone())
            .await
            .expect("second reconcile");
        assert_eq!(server.take_calls(), []);
    }

    /// The example with a second cell, `zone2`, and a second keyspace, `customer`, a copy of
    /// `commerce` (which the example turns down `Immediate`) but `RequireIdle` and with its
    /// tablets in `zone2`.
    fn two_keyspaces() -> VitessCluster {
        let mut cluster = serde_json::to_value(testing::example_cluster()).expect("json");
        let mut zone2 = cluster["spec"]["cells"][0].clone();
        zone2["name"] = serde_json::json!("zone2");
        cluster["spec"]["cells"]
            .as_array_mut()
            .expect("cells")
            .push(zone2);
        let mut customer = cluster["spec"]["keyspaces"][0].clone();
        customer["name"] = serde_json::json!("customer");
        customer["turndownPolicy"] = serde_json::json!("RequireIdle");
        customer["partitionings"][0]["equal"]["shardTemplate"]["tabletPools"][0]["cell"] =
            serde_json::json!("zone2");
        cluster["spec"]["keyspaces"]
            .as_array_mut()
            .expect("keyspaces")
            .push(customer);
        serde_json::from_value(cluster).expect("a cluster")
    }

    fn orphans(cluster: &VitessCluster) -> (Vec<String>, Vec<String>) {
        let status = cluster.status.clone().unwrap_or_default();
        let reasons = |m: &BTreeMap<String, OrphanStatus>| {
            m.iter().map(|(k, o)| format!("{k}={}", o.reason)).collect()
        };
        (
            reasons(&status.orphaned_keyspaces),
            reasons(&status.orphaned_cells),
        )
    }

    #[tokio::test]
    async fn a_removed_keyspace_stays_until_immediate_and_a_cell_in_use_stays() {
        let vtctld = FakeVtctld::start(([127, 0, 0, 1], 0).into())
            .await
            .expect("fake vtctld");
        let address = vtctld.local_addr().to_string();
        let (ctx, server) = testing::context(Some(&address));
        let cluster = server.insert_object(&two_keyspaces());
        reconcile(Arc::new(cluster.clone()), ctx.clone())
            .await
            .expect("first reconcile");
        server.take_calls();
        let customer = crate::domain::names::cluster::keyspace("example", "customer");
        let zone2 = crate::domain::names::cluster::cell("example", "zone2");

        // The user removes `customer` and `zone2`, where the kept
        // `customer` has its tablets.
        let mut cluster = server.object_like(&cluster).expect("still there");
        cluster.spec.keyspaces.truncate(1);
        cluster.spec.cells.truncate(1);
        server.insert_object(&cluster);
        reconcile(Arc::new(cluster.clone()), ctx.clone())
            .await
            .expect("second reconcile");
        let calls = server.take_calls();
        assert!(
            !calls.iter().any(|c| c.what.starts_with("delete ")),
            "{calls:?}"
        );
        let get = format!("get vitesskeyspaces/{customer}");
        assert!(requests(&calls).contains(&get.as_str()), "{calls:?}");
        let stored = |plural: &str, name: &str| {
            server
                .get("planetscale.com", plural, testing::NAMESPACE, name)
                .is_some()
        };
        assert!(stored("vitesskeyspaces", &customer));
        assert!(stored("vitesscells", &zone2));
        let cluster = server.object_like(&cluster).expect("still there");
        assert_eq!(
            orphans(&cluster),
            (
                vec!["customer=TurndownRequiresIdle".to_string()],
                vec!["zone2=CellInUse".to_string()]
            )
        );
        assert_eq!(vtctld.count("DeleteKeyspace"), 0);
        assert_eq!(vtctld.count("DeleteCellInfo"), 0);

        // Then sets turndownPolicy: Immediate on the VitessKeyspace: it goes, from Vitess too,
        // and with it the last user of `zone2`, which goes as well.
        let mut keyspace: VitessKeyspace = serde_json::from_value(
            server
                .get(
                    "planetscale.com",
                    "vitesskeyspaces",
                    testing::NAMESPACE,
                    &customer,
                )
                .expect("kept"),
        )
        .expect("a VitessKeyspace");
        keyspace.spec.template.turndown_policy = Some(TurndownPolicy::Immediate);
        server.insert_object(&keyspace);
        reconcile(Arc::new(cluster.clone()), ctx.clone())
            .await
            .expect("third reconcile");
        let calls = server.take_calls();
        let deletes: Vec<&str> = writes(&calls)
            .into_iter()
            .filter(|w| w.starts_with("delete "))
            .collect();
        assert_eq!(
            deletes,
            [
                format!("delete vitesskeyspaces/{customer}"),
                format!("delete vitesscells/{zone2}")
            ]
        );
        assert_eq!(vtctld.count("DeleteKeyspace"), 1);
        assert_eq!(vtctld.count("DeleteCellInfo"), 1);
        let cluster = server.object_like(&cluster).expect("still there");
        assert_eq!(orphans(&cluster), (vec![], vec![]));
    }
}
