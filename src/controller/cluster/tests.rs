//! The cluster's reconcile against the stand-in API server and the fake vtctld.

use std::collections::BTreeMap;

use super::*;
use crate::api::keyspace::TurndownPolicy;
use crate::api::shared::OrphanStatus;
use crate::controller::condition;
use crate::controller::testing::{self, requests, writes};
use crate::controller::topology;
use crate::k8s::events;
use vtctld_fake::FakeVtctld;

/// The cluster's children (the vtctld Deployments after their one list, which also serves
/// their prune), then the other prunes' lists (no VitessBackupStorage, VitessBackupSchedule or
/// CronJob is desired, so nothing is deleted), in the order of every reconcile.
const APPLYING: &[&str] = &[
    "apply etcdlockservers/example-etcd-faf13de3",
    "apply vitesscells/example-zone1-5abb61ae",
    "apply vitesskeyspaces/example-commerce-fb9b866a",
    "apply services/example-vtctld-625ee430",
    "list deployments",
    "apply deployments/example-zone1-vtctld-1d4dcad0",
    "apply services/example-vtgate-ae7df4b6",
    "apply services/example-vttablet-08646a59",
    // vtadmin: its Service, its Deployment, then the three files the Deployment owns.
    "apply services/example-vtadmin-72eaf1ba",
    "list deployments",
    "apply deployments/example-zone1-vtadmin-c03d7eae",
    "apply secrets/example-zone1-vtadmin-discovery-26fba126",
    "apply secrets/example-zone1-vtadmin-clusterconfig-a6b6280c",
    "apply secrets/example-zone1-vtadmin-webconfig-1c814ad7",
];
/// The writes of [`APPLYING`].
fn applies() -> Vec<&'static str> {
    APPLYING
        .iter()
        .copied()
        .filter(|r| r.starts_with("apply "))
        .collect()
}
const LISTS: &[&str] = &[
    "list services",
    "list vitessbackupstorages",
    "list vitessbackupschedules",
    // Left by an operator that ran schedules as CronJobs.
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
    let expected: Vec<&str> = APPLYING
        .iter()
        .copied()
        .chain(["create events"]) // TopologyRegistered
        .chain(LISTS.iter().copied())
        .chain(["status vitessclusters/example"])
        .collect();
    assert_eq!(requests(&first), expected);
    let mut expected_writes = applies();
    expected_writes.extend(["create events", "status vitessclusters/example"]);
    assert_eq!(writes(&first), expected_writes);
    let registered = vtctld.calls();
    assert_eq!(
        methods(&registered),
        [
            "GetCellsAliases ",
            "UpdateCellsAlias planetscale_operator_default zone1",
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
    let expected: Vec<&str> = APPLYING.iter().chain(LISTS).copied().collect();
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
async fn a_keyspace_is_created_with_its_sidecar_database_name() {
    let vtctld = FakeVtctld::start(([127, 0, 0, 1], 0).into())
        .await
        .expect("fake vtctld");
    let address = vtctld.local_addr().to_string();
    let (ctx, server) = testing::context(Some(&address));
    let mut cluster = testing::example_cluster();
    cluster.spec.keyspaces[0].sidecar_db_name = Some("_vt_commerce".into());
    let cluster = server.insert_object(&cluster);
    reconcile(Arc::new(cluster), ctx)
        .await
        .expect("first reconcile");
    assert!(
        methods(&vtctld.calls())
            .contains(&"CreateKeyspace commerce durability=semi_sync sidecar=_vt_commerce".into()),
        "{:?}",
        methods(&vtctld.calls())
    );
}

#[tokio::test]
async fn the_alias_an_earlier_version_named_after_the_cluster_gives_way_to_the_go_operators() {
    let vtctld = FakeVtctld::start(([127, 0, 0, 1], 0).into())
        .await
        .expect("fake vtctld");
    let address = vtctld.local_addr().to_string();
    let client = crate::vitess::Vtctld::connect_lazy(&address, None).expect("client");
    client
        .update_cells_alias("example", &["zone1".to_string()])
        .await
        .expect("the earlier alias");
    // Vitess refuses a second alias over the same cell.
    let refused = client
        .update_cells_alias(topology::CELLS_ALIAS, &["zone1".to_string()])
        .await;
    assert!(refused.is_err(), "{refused:?}");

    let (ctx, server) = testing::context(Some(&address));
    let cluster = server.insert_object(&testing::example_cluster());
    reconcile(Arc::new(cluster), ctx.clone())
        .await
        .expect("reconcile");
    let calls = methods(&vtctld.calls());
    let alias_calls: Vec<&str> = calls
        .iter()
        .map(String::as_str)
        .filter(|c| c.contains("CellsAlias ") && !c.starts_with("GetCellsAliases"))
        .collect();
    assert_eq!(
        alias_calls,
        [
            "UpdateCellsAlias example zone1",
            "UpdateCellsAlias planetscale_operator_default zone1",
            "DeleteCellsAlias example",
            "UpdateCellsAlias planetscale_operator_default zone1",
        ]
    );
    let aliases = client.cells_aliases().await.expect("aliases");
    assert_eq!(
        aliases,
        BTreeMap::from([(topology::CELLS_ALIAS.to_string(), vec!["zone1".to_string()])])
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

/// The TopologyRegistered condition of the stored cluster: status and reason.
fn topology_condition(
    server: &crate::k8s::mock::ApiServer,
    cluster: &VitessCluster,
) -> (String, String) {
    let stored = server.object_like(cluster).expect("still there");
    let conditions = stored.status.map(|s| s.conditions).unwrap_or_default();
    let c = conditions
        .iter()
        .find(|c| c.type_ == TOPOLOGY_REGISTERED)
        .expect("a TopologyRegistered condition");
    (c.status.clone(), c.reason.clone())
}

#[tokio::test]
async fn a_vtctld_that_refuses_is_told_from_one_that_cannot_be_reached() {
    let vtctld = FakeVtctld::start(([127, 0, 0, 1], 0).into())
        .await
        .expect("fake vtctld");
    let address = vtctld.local_addr().to_string();
    let (ctx, server) = testing::context(Some(&address));
    // vtctld answers CreateKeyspace with an error for a policy it has not registered (the
    // schema lets through only those stock Vitess knows; this one was built without it).
    vtctld.forget_policy("semi_sync_with_rdonly_ack");
    let mut cluster = testing::example_cluster();
    cluster.spec.keyspaces[0].durability_policy = Some("semi_sync_with_rdonly_ack".into());
    let cluster = server.insert_object(&cluster);
    reconcile(Arc::new(cluster.clone()), ctx.clone())
        .await
        .expect("reconcile");
    assert_eq!(
        topology_condition(&server, &cluster),
        ("False".into(), "VtctldRejected".into())
    );

    // Nothing listens at this address any more.
    let gone = FakeVtctld::start(([127, 0, 0, 1], 0).into())
        .await
        .expect("fake vtctld");
    let address = gone.local_addr().to_string();
    gone.stop().await;
    let (ctx, server) = testing::context(Some(&address));
    let cluster = server.insert_object(&testing::example_cluster());
    reconcile(Arc::new(cluster.clone()), ctx.clone())
        .await
        .expect("reconcile");
    assert_eq!(
        topology_condition(&server, &cluster),
        ("False".into(), "VtctldUnavailable".into())
    );
}

#[tokio::test]
async fn an_autoscaled_cell_gets_its_first_count_once_and_then_keeps_the_hpas() {
    let vtctld = FakeVtctld::start(([127, 0, 0, 1], 0).into())
        .await
        .expect("fake vtctld");
    let address = vtctld.local_addr().to_string();
    let (ctx, server) = testing::context(Some(&address));
    let mut cluster = serde_json::to_value(testing::example_cluster()).expect("json");
    cluster["spec"]["cells"][0]["gateway"] = serde_json::json!({
        "replicas": 3,
        "autoscaler": { "minReplicas": 2, "maxReplicas": 6 },
    });
    let cluster: VitessCluster = serde_json::from_value(cluster).expect("a cluster");
    let cluster = server.insert_object(&cluster);
    let cell_name = "example-zone1-5abb61ae";
    let replicas = |server: &crate::k8s::mock::ApiServer| {
        server
            .get(
                "planetscale.com",
                "vitesscells",
                testing::NAMESPACE,
                cell_name,
            )
            .expect("the VitessCell")["spec"]["gateway"]["replicas"]
            .clone()
    };

    reconcile(Arc::new(cluster.clone()), ctx.clone())
        .await
        .expect("first reconcile");
    let first = server.take_calls();
    let cell_applies = |calls: &[crate::k8s::mock::Call]| {
        requests(calls)
            .iter()
            .filter(|r| **r == format!("apply vitesscells/{cell_name}"))
            .count()
    };
    // The cell without a count, then its first count (the spec's) under the other manager.
    assert_eq!(cell_applies(&first), 2);
    assert_eq!(replicas(&server), serde_json::json!(3));

    // The HPA scales the cell (through its scale subresource): the cluster leaves the count.
    let mut cell = server
        .get(
            "planetscale.com",
            "vitesscells",
            testing::NAMESPACE,
            cell_name,
        )
        .expect("the VitessCell");
    cell["spec"]["gateway"]["replicas"] = serde_json::json!(5);
    server.insert("planetscale.com", "vitesscells", cell);
    let cluster = server.object_like(&cluster).expect("still there");
    reconcile(Arc::new(cluster), ctx.clone())
        .await
        .expect("second reconcile");
    let second = server.take_calls();
    assert_eq!(cell_applies(&second), 1);
    assert_eq!(writes(&second), Vec::<&str>::new());
    assert_eq!(replicas(&server), serde_json::json!(5));
}
