//! Reconciles a VitessKeyspace: one VitessShard per shard of its partitionings, and rolls up
//! their tablet counts.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::StreamExt;
use kube::ResourceExt;
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::watcher;

use super::condition::{self, Readiness};
use super::resharding;
use super::{Context, Error, REQUEUE, WAIT};
use crate::api::keyspace::{
    TurndownPolicy, VitessKeyspacePartitioningStatus, VitessKeyspaceShardStatus,
    VitessKeyspaceStatus,
};
use crate::api::shared::OrphanStatus;
use crate::api::{VitessKeyspace, VitessShard};
use crate::k8s::applier::Applier;
use crate::{cli::validate, desired, domain::labels, k8s::apply};

pub async fn run(ctx: Arc<Context>) {
    Controller::new(ctx.api::<VitessKeyspace>(), watcher::Config::default())
        .owns(ctx.api::<VitessShard>(), watcher::Config::default())
        .with_config(super::config())
        .trigger_backoff(super::backoff::WatchBackoff::default())
        .shutdown_on_signal()
        .run(reconcile, super::error_policy, ctx.clone())
        .for_each(|result| super::report(&ctx, result))
        .await;
}

/// One shard as applied, with the number of tablets its spec asks for.
struct Observed {
    shard: VitessShard,
    desired_tablets: usize,
}

#[tracing::instrument(skip_all, fields(keyspace = %keyspace.name_any()))]
async fn reconcile(keyspace: Arc<VitessKeyspace>, ctx: Arc<Context>) -> Result<Action, Error> {
    if crate::controller::adopt::awaiting_parent(keyspace.as_ref()) {
        tracing::info!(
            "not applied by its parent's controller yet (made by another writer): waiting for it"
        );
        return Ok(Action::await_change());
    }
    let client = &ctx.client;
    let applier = Applier::new(client, &ctx.events, keyspace.as_ref()).with_cache(&ctx.applied);
    // One list instead of one apply per shard: a shard whose desired state this process
    // already applied, unchanged since, is not applied again (`Applier::unless_unchanged`).
    let mut existing: BTreeMap<String, VitessShard> =
        apply::children_full::<VitessShard, _>(client, keyspace.as_ref(), &shards_of(&keyspace))
            .await?
            .into_iter()
            .map(|s| (s.name_any(), s))
            .collect();
    let mut observed = Vec::new();
    for shard in desired::keyspace::shards(&keyspace)? {
        // Counted from the same builder the shard controller uses, so "desired" agrees.
        let desired_tablets = desired::vttablet::build(&shard)?.len();
        let current = existing.remove(&shard.name_any());
        let shard = applier.unless_unchanged(shard, current).await?;
        observed.push(Observed {
            shard,
            desired_tablets,
        });
    }
    // What is left is no longer desired (those being deleted are on their way out).
    let unwanted: Vec<VitessShard> = existing
        .into_values()
        .filter(|s| s.metadata.deletion_timestamp.is_none())
        .collect();
    let orphans = prune_shards(&ctx, &applier, unwanted).await?;
    let mut status = status(&keyspace, &observed);
    status.orphaned_shards = orphans;
    reshardings(&ctx, &keyspace, &mut status).await;
    apply::status(client, keyspace.as_ref(), keyspace.status.as_ref(), &status).await?;
    ctx.events
        .blocked(
            keyspace.as_ref(),
            crate::k8s::events::TURNDOWN_BLOCKED,
            &[(
                "shard",
                keyspace.status.as_ref().map(|s| &s.orphaned_shards),
                &status.orphaned_shards,
            )],
        )
        .await;
    // Vitess' serving graph is not watched: a shard waiting to go idle is looked at again soon.
    Ok(Action::requeue(if status.orphaned_shards.is_empty() {
        REQUEUE
    } else {
        WAIT
    }))
}

/// Deletes the VitessShards this keyspace no longer wants when its turndown policy is
/// `Immediate`, or, under `RequireIdle`, once Vitess' serving graph (each cell's SrvKeyspace)
/// no longer references the shard (a resharding switched its traffic away: the Go operator's
/// `idle`); returns the others by Vitess shard name, with why they are kept. Tablet PVCs are
/// kept either way.
async fn prune_shards(
    ctx: &Context,
    applier: &Applier<'_, VitessKeyspace>,
    unwanted: Vec<VitessShard>,
) -> Result<BTreeMap<String, OrphanStatus>, Error> {
    let keyspace = applier.owner();
    let immediate = keyspace.spec.template.turndown_policy == Some(TurndownPolicy::Immediate);
    let mut orphans = BTreeMap::new();
    // Asked once, and only when a shard waits for it.
    let serving = if immediate || unwanted.is_empty() {
        None
    } else {
        Some(serving_shards(ctx, keyspace).await)
    };
    for shard in unwanted {
        let name = shard.name_any();
        let shard_name = shard
            .labels()
            .get(labels::SHARD)
            .map(|safe| vitess_shard_name(safe))
            .unwrap_or_else(|| name.clone());
        let kept = match &serving {
            None => None,
            Some(Ok(serving)) => idle_or_serving(serving, &shard_name),
            Some(Err(why)) => Some(OrphanStatus {
                reason: "TurndownRequiresIdle".into(),
                message: format!(
                    "the shard is no longer in the spec and is kept until Vitess shows it \
                     serves nothing (turndownPolicy RequireIdle), which cannot be told now: \
                     {why}"
                ),
            }),
        };
        if let Some(orphan) = kept {
            orphans.insert(shard_name, orphan);
        } else if let Err(orphan) = forget_shard(ctx, keyspace, &shard_name).await {
            orphans.insert(shard_name, orphan);
        } else {
            // Past its guard: deleted through the Applier (forgotten, a `Pruned` Event).
            let listed = vec![shard.metadata.clone()];
            applier
                .prune_listed::<VitessShard>(listed, &BTreeSet::new())
                .await?;
        }
    }
    Ok(orphans)
}

/// The keyspace's serving shards by cell, as vtctld reads Vitess' serving graph.
async fn serving_shards(
    ctx: &Context,
    keyspace: &VitessKeyspace,
) -> Result<BTreeMap<String, BTreeSet<String>>, String> {
    let vtctld = ctx.vtctld(keyspace).await.map_err(|why| why.to_string())?;
    vtctld
        .serving_shards(&keyspace.spec.template.name)
        .await
        .map_err(|why| why.to_string())
}

/// The keyspace's resharding in `status` (`status.resharding` and the conditions
/// `ReshardingActive`, `ReshardingInSync`), from vtctld's active workflows; while vtctld cannot
/// say, both conditions are Unknown and the last known workflow stays.
async fn reshardings(ctx: &Context, keyspace: &VitessKeyspace, status: &mut VitessKeyspaceStatus) {
    let asked = async {
        let vtctld = ctx.vtctld(keyspace).await?;
        Ok::<_, crate::controller::vtctld::VtctldError>(
            vtctld.workflows(&keyspace.spec.template.name).await?,
        )
    }
    .await;
    let (active, in_sync) = match asked {
        Ok(workflows) => {
            let report = resharding::report(&workflows, status.resharding.as_ref());
            status.resharding = report.status;
            (report.active, report.in_sync)
        }
        Err(why) => {
            let unknown = Readiness::unknown(why.reason(), format!("vtctld cannot say: {why}"));
            (unknown.clone(), unknown)
        }
    };
    let generation = keyspace.metadata.generation;
    for (type_, state) in [
        (resharding::RESHARDING_ACTIVE, active),
        (resharding::RESHARDING_IN_SYNC, in_sync),
    ] {
        status.conditions =
            condition::with_condition(&status.conditions, type_, Some(&state), generation);
    }
}

/// `None` when `shard` serves in no cell (idle: it may go), else why it is kept.
fn idle_or_serving(
    serving: &BTreeMap<String, BTreeSet<String>>,
    shard: &str,
) -> Option<OrphanStatus> {
    let cells: Vec<&str> = serving
        .iter()
        .filter(|(_, shards)| shards.contains(shard))
        .map(|(cell, _)| cell.as_str())
        .collect();
    (!cells.is_empty()).then(|| OrphanStatus {
        reason: "TurndownRequiresIdle".into(),
        message: format!(
            "the shard is no longer in the spec and is kept while it serves: Vitess' serving \
             graph routes to it in cells {} (turndownPolicy RequireIdle); it goes once traffic \
             is switched away from it, or now with turndownPolicy: Immediate on the keyspace \
             (its PVCs are kept)",
            cells.join(", ")
        ),
    })
}

/// The label selector of the keyspace's VitessShards (its cluster and keyspace labels, and a
/// shard label).
fn shards_of(keyspace: &VitessKeyspace) -> String {
    let own = keyspace.labels();
    let mut equal = Vec::new();
    for key in [labels::CLUSTER, labels::KEYSPACE] {
        if let Some(value) = own.get(key) {
            equal.push((key, value.as_str()));
        }
    }
    apply::selector(&equal, &[labels::SHARD])
}

/// Removes shard `shard` (and its tablet records) from Vitess before its VitessShard goes, if
/// `pruneShards` is on. `Err` keeps the VitessShard, with why.
async fn forget_shard(
    ctx: &Context,
    keyspace: &VitessKeyspace,
    shard: &str,
) -> Result<(), OrphanStatus> {
    let config = keyspace.spec.topology_reconciliation.as_ref();
    if !super::topology::enabled(config, |c| c.prune_shards) {
        return Ok(());
    }
    let name = &keyspace.spec.template.name;
    let vtctld = ctx.vtctld(keyspace).await.map_err(|why| OrphanStatus {
        reason: "VtctldUnavailable".into(),
        message: format!(
            "shard {name}/{shard} is removed from Vitess before its object is deleted: {why}"
        ),
    })?;
    vtctld
        .delete_shards(name, &[shard.to_string()], true)
        .await
        .map_err(|e| OrphanStatus {
            reason: "TopologyPruneFailed".into(),
            message: format!("cannot remove shard {name}/{shard} from Vitess: {e}"),
        })
}

/// The Vitess shard name (`-80`) from its label-safe form (`x-80`).
fn vitess_shard_name(safe: &str) -> String {
    safe.split('-')
        .map(|end| if end == "x" { "" } else { end })
        .collect::<Vec<_>>()
        .join("-")
}

fn shard_status(observed: &Observed) -> VitessKeyspaceShardStatus {
    let current = observed.shard.status.clone().unwrap_or_default();
    let ready_tablets = current
        .tablets
        .values()
        .filter(|t| t.ready == crate::api::shared::ConditionStatus::True)
        .count();
    VitessKeyspaceShardStatus {
        has_master: current.has_master,
        serving_writes: current.serving_writes,
        desired_tablets: count(observed.desired_tablets),
        tablets: count(current.tablets.len()),
        ready_tablets: count(ready_tablets),
        updated_tablets: 0,
        pending_changes: None,
        cells: current.cells,
    }
}

/// A shard is ready when its own controller says so for the spec it last saw.
fn shard_ready(observed: &Observed) -> bool {
    let status = observed.shard.status.as_ref();
    status.is_some_and(|s| {
        condition::is_ready(&s.conditions)
            && s.observed_generation == observed.shard.metadata.generation
    })
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The keyspace's status from its applied shards.
fn status(keyspace: &VitessKeyspace, shards: &[Observed]) -> VitessKeyspaceStatus {
    let mut status = keyspace.status.clone().unwrap_or_default();
    status.observed_generation = keyspace.metadata.generation;
    status.shards = shards
        .iter()
        .map(|s| (s.shard.spec.name.clone(), shard_status(s)))
        .collect();
    let ready_names: BTreeSet<&str> = shards
        .iter()
        .filter(|s| shard_ready(s))
        .map(|s| s.shard.spec.name.as_str())
        .collect();
    status.partitionings = keyspace
        .spec
        .template
        .partitionings
        .iter()
        .map(|partitioning| {
            let mut names = validate::shard_names(partitioning);
            names.sort();
            let mut p = VitessKeyspacePartitioningStatus {
                desired_shards: count(names.len()),
                ready_shards: count(
                    names
                        .iter()
                        .filter(|n| ready_names.contains(n.as_str()))
                        .count(),
                ),
                ..Default::default()
            };
            for name in &names {
                if let Some(shard) = status.shards.get(name) {
                    p.desired_tablets += shard.desired_tablets;
                    p.tablets += shard.tablets;
                    p.ready_tablets += shard.ready_tablets;
                }
            }
            p.shard_names = names;
            p
        })
        .collect();
    // The Go operator's rule: a keyspace without tablets serves nothing, so it may be turned
    // down under RequireIdle (its pools are removed first, then the keyspace).
    status.idle = condition::status_of(shards.iter().all(|s| s.desired_tablets == 0));
    let desired = shards.len();
    let ready = ready_names.len();
    status.summary = Some(format!("{ready}/{desired}"));
    let readiness = if ready == desired && desired > 0 {
        Readiness::new(
            true,
            "AllShardsReady",
            format!("{ready}/{desired} shards ready"),
        )
    } else {
        let waiting: Vec<&str> = shards
            .iter()
            .filter(|s| !shard_ready(s))
            .map(|s| s.shard.spec.name.as_str())
            .collect();
        Readiness::new(
            false,
            "ShardsNotReady",
            format!(
                "{ready}/{desired} shards ready; waiting for {}",
                waiting.join(", ")
            ),
        )
    };
    status.conditions =
        condition::with_ready(&status.conditions, &readiness, keyspace.metadata.generation);
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_names_from_safe_labels() {
        assert_eq!(vitess_shard_name("x-x"), "-");
        assert_eq!(vitess_shard_name("x-80"), "-80");
        assert_eq!(vitess_shard_name("80-x"), "80-");
        assert_eq!(vitess_shard_name("40-80"), "40-80");
    }
}

#[cfg(test)]
/// The reconcile against the stand-in API server.
mod reconcile_tests {
    use super::*;
    use crate::controller::testing::{self, requests, writes};

    /// Stores shard `-80` of keyspace commerce as an earlier spec would have made it, owned
    /// and labelled like the shard `-` applied; returns it and its name.
    fn stale_shard(server: &crate::k8s::mock::ApiServer) -> (VitessShard, String) {
        let wanted = crate::domain::names::cluster::shard("example", "commerce", "x-x");
        let mut probe = VitessShard::new(&wanted, Default::default());
        probe.metadata.namespace = Some(testing::NAMESPACE.into());
        let mut old = server.object_like(&probe).expect("applied");
        let name = crate::domain::names::cluster::shard("example", "commerce", "x-80");
        old.metadata.name = Some(name.clone());
        old.metadata.uid = None;
        old.metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(labels::SHARD.into(), "x-80".into());
        (server.insert_object(&old), name)
    }

    /// A fake vtctld, a context whose clusters use it, the example cluster stored, and its
    /// keyspace as built (not stored).
    async fn with_fake_vtctld() -> (
        vtctld_fake::FakeVtctld,
        Arc<Context>,
        crate::k8s::mock::ApiServer,
        VitessKeyspace,
    ) {
        let vtctld = vtctld_fake::FakeVtctld::start(([127, 0, 0, 1], 0).into())
            .await
            .expect("fake vtctld");
        let (ctx, server) = testing::context(Some(&vtctld.local_addr().to_string()));
        let cluster = testing::example_cluster();
        server.insert_object(&cluster);
        let children = desired::cluster::children(&cluster).expect("children");
        let keyspace = children.keyspaces[0].clone();
        (vtctld, ctx, server, keyspace)
    }

    /// The read of the cluster for its vtctld, without a shared cache.
    const CLUSTER_READ: &str = "get vitessclusters/example";

    #[tokio::test]
    async fn a_keyspace_applies_its_shards_once_then_a_steady_one_only_lists() {
        let (ctx, server) = testing::context(None);
        let children = desired::cluster::children(&testing::example_cluster()).expect("children");
        let keyspace = server.insert_object(&children.keyspaces[0]);
        let shard = crate::domain::names::cluster::shard("example", "commerce", "x-x");

        reconcile(Arc::new(keyspace.clone()), ctx.clone())
            .await
            .expect("first reconcile");
        let first = server.take_calls();
        let applied = format!("apply vitessshards/{shard}");
        let status = format!("status vitesskeyspaces/{}", keyspace.name_any());
        // The cluster is read for its vtctld (the resharding workflows): a GET here, where no
        // cluster controller shares its cache; it is not there, so resharding is Unknown.
        assert_eq!(
            requests(&first),
            [
                "list vitessshards",
                applied.as_str(),
                CLUSTER_READ,
                status.as_str()
            ]
        );
        assert_eq!(writes(&first), [applied.as_str(), status.as_str()]);

        // Nothing changed: the shard this process applied is not applied again.
        let keyspace = server.object_like(&keyspace).expect("still there");
        reconcile(Arc::new(keyspace), ctx.clone())
            .await
            .expect("second reconcile");
        assert_eq!(
            requests(&server.take_calls()),
            ["list vitessshards", CLUSTER_READ]
        );
    }

    #[tokio::test]
    async fn an_unwanted_shard_of_an_immediate_keyspace_is_deleted_once_and_said() {
        let (ctx, server) = testing::context(None);
        let children = desired::cluster::children(&testing::example_cluster()).expect("children");
        let mut keyspace = children.keyspaces[0].clone();
        keyspace.spec.template.turndown_policy = Some(TurndownPolicy::Immediate);
        // Not in Vitess to forget first: the prune needs no vtctld.
        keyspace.spec.topology_reconciliation = Some(crate::api::shared::TopoReconcileConfig {
            prune_shards: Some(false),
            ..Default::default()
        });
        let keyspace = server.insert_object(&keyspace);
        reconcile(Arc::new(keyspace.clone()), ctx.clone())
            .await
            .expect("first reconcile");
        server.take_calls();

        // A shard an earlier spec wanted, owned and labelled like the one applied.
        let (_, gone_name) = stale_shard(&server);

        let keyspace = server.object_like(&keyspace).expect("still there");
        reconcile(Arc::new(keyspace.clone()), ctx.clone())
            .await
            .expect("second reconcile");
        let delete = format!("delete vitessshards/{gone_name}");
        let calls = server.take_calls();
        assert_eq!(
            requests(&calls),
            ["list vitessshards", &delete, "create events", CLUSTER_READ]
        );
        assert_eq!(writes(&calls), [delete.as_str(), "create events"]);

        // Steady again: only the list.
        let keyspace = server.object_like(&keyspace).expect("still there");
        reconcile(Arc::new(keyspace), ctx.clone())
            .await
            .expect("third reconcile");
        assert_eq!(
            requests(&server.take_calls()),
            ["list vitessshards", CLUSTER_READ]
        );
    }

    /// A resharding someone started in Vitess shows in the keyspace's status as in the Go
    /// operator: copying (not in sync), then caught up (in sync: traffic could be switched),
    /// then gone once completed; vtctld unreachable makes both conditions Unknown.
    #[tokio::test]
    async fn a_resharding_is_reported_through_its_phases() {
        use crate::vitess::{Alias, TabletType};
        let (vtctld, ctx, server, keyspace) = with_fake_vtctld().await;
        let keyspace = server.insert_object(&keyspace);
        for (alias, shard) in [("zone1-101", "-80"), ("zone1-102", "80-")] {
            let alias: Alias = alias.parse().expect("alias");
            vtctld.register_tablet(alias, "commerce", shard, TabletType::Primary);
        }
        let seen = |server: &crate::k8s::mock::ApiServer| {
            let status = server
                .object_like(&keyspace)
                .and_then(|k| k.status)
                .expect("a status");
            let state = |type_: &str| {
                status
                    .conditions
                    .iter()
                    .find(|c| c.type_ == type_)
                    .map(|c| (c.status.clone(), c.reason.clone()))
                    .expect("the condition")
            };
            (
                status
                    .resharding
                    .map(|r| (r.workflow, r.state, r.target_shards)),
                state(resharding::RESHARDING_ACTIVE),
                state(resharding::RESHARDING_IN_SYNC),
            )
        };
        let again = |ctx: Arc<Context>, server: &crate::k8s::mock::ApiServer| {
            let now = server.object_like(&keyspace).expect("still there");
            async move { reconcile(Arc::new(now), ctx).await.expect("reconcile") }
        };
        again(ctx.clone(), &server).await;
        let (status, active, _) = seen(&server);
        assert_eq!(status, None);
        assert_eq!(
            active,
            ("False".into(), "NoActiveReshardingWorkflow".into())
        );

        vtctld.start_reshard("commerce", "split", &["-"], &["-80", "80-"]);
        again(ctx.clone(), &server).await;
        let targets = vec!["-80".to_string(), "80-".to_string()];
        assert_eq!(
            seen(&server),
            (
                Some(("split".into(), "Copying".into(), targets.clone())),
                ("True".into(), "ActiveReshardingWorkflow".into()),
                ("False".into(), "Copying".into()),
            )
        );
        vtctld.copy_done("commerce", "split");
        again(ctx.clone(), &server).await;
        let (status, _, in_sync) = seen(&server);
        assert_eq!(status.map(|s| s.1), Some("Running".into()));
        assert_eq!(in_sync, ("True".into(), "CaughtUp".into()));

        vtctld.complete_workflow("commerce", "split");
        again(ctx.clone(), &server).await;
        let (status, active, in_sync) = seen(&server);
        assert_eq!(status, None);
        assert_eq!(active.0, "False");
        assert_eq!(in_sync.0, "False");

        vtctld.start_reshard("commerce", "split", &["-"], &["-80", "80-"]);
        again(ctx.clone(), &server).await;
        drop(vtctld);
        again(ctx.clone(), &server).await;
        let (status, active, in_sync) = seen(&server);
        assert_eq!(
            status.map(|s| s.0),
            Some("split".into()),
            "the last one known stays"
        );
        assert_eq!(
            (active.0.as_str(), in_sync.0.as_str()),
            ("Unknown", "Unknown")
        );
    }

    /// Under RequireIdle an unwanted shard stays while Vitess' serving graph routes to it, and
    /// goes (from Vitess, then its object) once traffic is switched away from it.
    #[tokio::test]
    async fn an_unwanted_shard_under_require_idle_goes_once_it_serves_nothing() {
        use crate::vitess::{Alias, CellInfo, TabletType};
        let (vtctld, ctx, server, mut keyspace) = with_fake_vtctld().await;
        let address = vtctld.local_addr().to_string();
        keyspace.spec.template.turndown_policy = Some(TurndownPolicy::RequireIdle);
        let keyspace = server.insert_object(&keyspace);
        reconcile(Arc::new(keyspace.clone()), ctx.clone())
            .await
            .expect("first reconcile");

        // A shard an earlier partitioning had, which Vitess still serves in zone1.
        let (old, _) = stale_shard(&server);
        crate::vitess::Vtctld::connect_lazy(&address, None)
            .expect("client")
            .add_cell_info(
                "zone1",
                &CellInfo {
                    server_address: "etcd:2379".into(),
                    root: "/vitess/example/local/zone1".into(),
                },
            )
            .await
            .expect("a cell");
        let alias: Alias = "zone1-101".parse().expect("alias");
        vtctld.register_tablet(alias, "commerce", "-80", TabletType::Primary);

        let kept = |server: &crate::k8s::mock::ApiServer| {
            let now = server.object_like(&keyspace).expect("still there");
            now.status
                .and_then(|s| s.orphaned_shards.get("-80").cloned())
        };
        for _ in 0..2 {
            let now = server.object_like(&keyspace).expect("still there");
            reconcile(Arc::new(now), ctx.clone())
                .await
                .expect("reconcile while it serves");
        }
        let orphan = kept(&server).expect("kept while it serves");
        assert_eq!(orphan.reason, "TurndownRequiresIdle");
        assert!(
            orphan.message.contains("in cells zone1"),
            "{}",
            orphan.message
        );
        assert!(server.object_like(&old).is_some());
        assert_eq!(vtctld.count("DeleteShards"), 0);

        vtctld.switch_traffic_away("commerce", "-80");
        let now = server.object_like(&keyspace).expect("still there");
        reconcile(Arc::new(now), ctx.clone())
            .await
            .expect("reconcile once idle");
        assert!(
            server.object_like(&old).is_none(),
            "the idle shard was kept"
        );
        assert_eq!(vtctld.count("DeleteShards"), 1);
        assert_eq!(kept(&server), None);
    }
}
