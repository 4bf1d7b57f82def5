//! The shard's reconcile against the stand-in API server and the fake vtctld.

use super::*;
use crate::controller::testing::{self, requests, writes};

#[tokio::test]
async fn a_new_shard_gets_its_tablets_then_a_steady_one_writes_nothing() {
    let (vtctld, ctx, server, shard) = testing::example_shard().await;

    reconcile(Arc::new(shard.clone()), ctx.clone())
        .await
        .expect("first reconcile");
    let first = server.take_calls();
    let tablets = [
        "apply persistentvolumeclaims/example-vttablet-zone1-2548885007-46a852d0",
        "apply pods/example-vttablet-zone1-2548885007-46a852d0",
        "apply persistentvolumeclaims/example-vttablet-zone1-2469782763-bfadd780",
        "apply pods/example-vttablet-zone1-2469782763-bfadd780",
    ];
    // vtorc: its Deployments are listed, the missing one applied.
    let vtorc = "apply deployments/example-commerce-x-x-zone1-vtorc-c13ef6ff";
    let status = "status vitessshards/example-commerce-x-x-0f5afee6";
    let lists = ["list pods", "list persistentvolumeclaims"];
    // Asking vtctld starts with reading the cluster, for its TLS settings.
    let cluster_read = "get vitessclusters/example";
    let expected: Vec<&str> = lists
        .iter()
        .chain(&tablets)
        .chain([&"list deployments", &vtorc, &cluster_read, &status])
        .copied()
        .collect();
    assert_eq!(requests(&first), expected);
    let expected: Vec<&str> = tablets.iter().chain([&vtorc, &status]).copied().collect();
    assert_eq!(writes(&first), expected);
    let rpcs: Vec<String> = vtctld.calls().iter().map(ToString::to_string).collect();
    assert_eq!(
        rpcs,
        [
            "GetShard commerce/-",
            "GetTablets commerce/- cells=",
            "GetSrvKeyspaces commerce"
        ]
    );

    // Steady: the pods, claims and vtorc Deployment this process applied, unchanged, are not
    // applied again.
    let shard = server.object_like(&shard).expect("still there");
    reconcile(Arc::new(shard), ctx.clone())
        .await
        .expect("second reconcile");
    let steady: Vec<&str> = lists
        .iter()
        .chain(&["list deployments", cluster_read])
        .copied()
        .collect();
    assert_eq!(requests(&server.take_calls()), steady);
    let again: Vec<String> = vtctld.calls()[rpcs.len()..]
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(again, rpcs);
}

#[tokio::test]
async fn a_lost_disk_is_made_again_on_a_new_claim_only_once_the_old_one_has_gone() {
    let (_vtctld, ctx, server, shard) = testing::example_shard().await;
    reconcile(Arc::new(shard.clone()), ctx.clone())
        .await
        .expect("first reconcile");
    server.take_calls();
    let name = "example-vttablet-zone1-2548885007-46a852d0";

    let claim = testing::lose_disk(&server, name);

    // A pod made now would hold the old claim forever: nothing is made, and soon looked at again.
    let shard = server.object_like(&shard).expect("still there");
    let action = reconcile(Arc::new(shard.clone()), ctx.clone())
        .await
        .expect("reconcile while the claim goes");
    let calls = server.take_calls();
    assert!(
        !writes(&calls).iter().any(|w| w.contains(name)),
        "{:?}",
        writes(&calls)
    );
    assert_eq!(action, Action::requeue(POLL));

    // Once the old claim has gone, the claim and then the pod are made again.
    server.remove_like(&claim);
    reconcile(Arc::new(shard), ctx.clone())
        .await
        .expect("reconcile once the claim has gone");
    let calls = server.take_calls();
    let remade: Vec<&str> = writes(&calls)
        .into_iter()
        .filter(|w| w.contains(name))
        .collect();
    assert_eq!(
        remade,
        [
            format!("apply persistentvolumeclaims/{name}"),
            format!("apply pods/{name}")
        ]
    );
}

#[tokio::test]
async fn a_vtorc_deployment_no_longer_wanted_is_pruned_from_the_one_list() {
    let (_vtctld, ctx, server, shard) = testing::example_shard().await;
    reconcile(Arc::new(shard.clone()), ctx.clone())
        .await
        .expect("first reconcile");
    server.take_calls();

    // A vtorc Deployment of a cell the shard no longer has, as an earlier spec left it.
    let wanted = crate::desired::vtorc::build(&shard)
        .expect("vtorc")
        .remove(0);
    let applied = server.object_like(&wanted).expect("applied");
    let mut gone = applied.clone();
    gone.metadata.name = Some("example-commerce-x-x-zone2-vtorc-00000000".into());
    gone.metadata.uid = None;
    gone.metadata.resource_version = None;
    server.insert_object(&gone);

    let shard = server.object_like(&shard).expect("still there");
    reconcile(Arc::new(shard), ctx.clone())
        .await
        .expect("second reconcile");
    let calls = server.take_calls();
    let delete = "delete deployments/example-commerce-x-x-zone2-vtorc-00000000";
    // One list of Deployments serves both the applies and the prune.
    let lists: Vec<&str> = requests(&calls)
        .into_iter()
        .filter(|r| r.starts_with("list deployments"))
        .collect();
    assert_eq!(lists, ["list deployments"]);
    assert_eq!(writes(&calls), [delete, "create events"]);
    assert!(server.object_like(&gone).is_none());
    assert!(server.object_like(&applied).is_some());
}

#[tokio::test]
async fn a_go_made_tablet_pod_that_runs_our_spec_is_adopted_and_one_that_does_not_is_kept_outdated()
{
    let (_vtctld, ctx, server, shard) = testing::example_shard().await;
    reconcile(Arc::new(shard.clone()), ctx.clone())
        .await
        .expect("first reconcile");
    server.take_calls();

    // As the Go operator leaves them: its own hash, no server-side apply of ours, and flags
    // spelled with underscores; the second also runs another vttablet image.
    let desired = crate::desired::vttablet::build(&shard).expect("tablets");
    let go_made = |tablet: &crate::desired::vttablet::Tablet, image: Option<&str>| {
        let mut pod = server.object_like(&tablet.pod).expect("created");
        pod.metadata.managed_fields = None;
        pod.annotations_mut()
            .insert(labels::rollout::DESIRED_STATE_HASH.into(), "go-hash".into());
        let spec = pod.spec.as_mut().expect("spec");
        let vttablet = &mut spec.containers[0];
        for arg in vttablet.args.iter_mut().flatten() {
            if let Some((name, value)) = arg.split_once('=') {
                *arg = format!("{}={value}", name.replace('-', "_").replacen("__", "--", 1));
            }
        }
        if let Some(image) = image {
            vttablet.image = Some(image.into());
        }
        server.insert_object(&pod)
    };
    let same = go_made(&desired[0], None);
    let other = go_made(&desired[1], Some("vitess/lite:v23.0.0"));

    let shard = server.object_like(&shard).expect("still there");
    reconcile(Arc::new(shard), ctx.clone())
        .await
        .expect("second reconcile");
    let calls = server.take_calls();
    let adopted = format!("apply pods/{}", same.name_any());
    assert!(writes(&calls).contains(&adopted.as_str()), "{calls:?}");
    let hash = |pod: &Pod| hash_of(&server.object_like(pod).expect("kept")).to_string();
    assert_eq!(hash(&same), hash_of(&desired[0].pod));
    assert_eq!(hash(&other), "go-hash");
    // Neither was replaced: adopting writes only the annotation, and the outdated one waits
    // for its rollout (updateStrategy External by default).
    assert_eq!(
        server.object_like(&same).expect("kept").spec,
        same.spec,
        "the adopted pod's spec is untouched"
    );
    assert!(!writes(&calls).iter().any(|w| w.starts_with("delete pods")));
}

#[tokio::test]
async fn our_tablet_pod_stripped_of_its_hash_gets_it_back_and_one_with_another_hash_stays_outdated()
{
    let (_vtctld, ctx, server, shard) = testing::example_shard().await;
    reconcile(Arc::new(shard.clone()), ctx.clone())
        .await
        .expect("first reconcile");
    server.take_calls();
    let desired = crate::desired::vttablet::build(&shard).expect("tablets");

    // Another writer removes the hash from the first pod (it still runs our spec) and
    // changes it on the second (as if built from another spec of ours).
    let mut stripped = server.object_like(&desired[0].pod).expect("created");
    stripped
        .annotations_mut()
        .remove(labels::rollout::DESIRED_STATE_HASH);
    let stripped = server.insert_object(&stripped);
    let mut other = server.object_like(&desired[1].pod).expect("created");
    other
        .annotations_mut()
        .insert(labels::rollout::DESIRED_STATE_HASH.into(), "older".into());
    let other = server.insert_object(&other);

    let shard = server.object_like(&shard).expect("still there");
    reconcile(Arc::new(shard), ctx.clone())
        .await
        .expect("second reconcile");
    let calls = server.take_calls();
    let restored = format!("patch pods/{}", stripped.name_any());
    assert!(writes(&calls).contains(&restored.as_str()), "{calls:?}");
    let hash = |pod: &Pod| hash_of(&server.object_like(pod).expect("kept")).to_string();
    assert_eq!(hash(&stripped), hash_of(&desired[0].pod));
    assert_eq!(hash(&other), "older", "another hash is not overwritten");
    assert_eq!(
        server.object_like(&stripped).expect("kept").spec,
        stripped.spec,
        "the pod's spec is untouched"
    );
    // The other is rolled (the example's updateStrategy is Immediate: its drain starts); the
    // stripped one is not.
    let drains = |pod: &Pod| {
        server
            .object_like(pod)
            .expect("kept")
            .annotations()
            .contains_key(labels::drain::STARTED)
    };
    assert!(drains(&other));
    assert!(!drains(&stripped));
}

/// With the cluster controller's store shared, a shard finds its cluster (for vtctld's TLS
/// settings) there: no GET of the VitessCluster per reconcile.
#[tokio::test]
async fn the_shared_cluster_cache_saves_the_cluster_get() {
    let (vtctld, ctx, server, shard) = testing::example_shard().await;
    let cluster = server
        .object_like(&testing::example_cluster())
        .expect("the example cluster is stored");
    let (store, mut writer) = kube::runtime::reflector::store();
    writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(cluster));
    ctx.share_clusters(store);
    reconcile(Arc::new(shard.clone()), ctx.clone())
        .await
        .expect("first reconcile");
    let calls = server.take_calls();
    assert!(
        !requests(&calls).contains(&"get vitessclusters/example"),
        "{:?}",
        requests(&calls)
    );
    // vtctld was still asked, through the cached cluster's settings.
    let rpcs: Vec<String> = vtctld.calls().iter().map(ToString::to_string).collect();
    assert_eq!(
        rpcs,
        [
            "GetShard commerce/-",
            "GetTablets commerce/- cells=",
            "GetSrvKeyspaces commerce"
        ]
    );
}

#[tokio::test]
async fn a_drained_primary_is_reparented_once_marked_finished_then_steady() {
    use crate::vitess::{Alias, TabletType};
    let (vtctld, ctx, server, shard) = testing::example_shard().await;
    reconcile(Arc::new(shard.clone()), ctx.clone())
        .await
        .expect("first reconcile");
    server.take_calls();
    let (primary_pod, replica_pod) = (
        "example-vttablet-zone1-2469782763-bfadd780",
        "example-vttablet-zone1-2548885007-46a852d0",
    );
    let (primary, replica): (Alias, Alias) = (
        "zone1-2469782763".parse().expect("alias"),
        "zone1-2548885007".parse().expect("alias"),
    );
    for pod in [primary_pod, replica_pod] {
        testing::change_pod(&server, pod, |p| testing::ready_since(p, 60));
    }
    vtctld.register_tablet(primary.clone(), "commerce", "-", TabletType::Primary);
    vtctld.register_tablet(replica.clone(), "commerce", "-", TabletType::Replica);

    // A user (or node-drain tooling) asks for the primary's pod to be drained.
    testing::change_pod(&server, primary_pod, |pod| {
        pod.annotations_mut()
            .insert(labels::drain::STARTED.into(), "by a test".into());
    });

    // The primary moves through vtctld, then the pod is marked finished; a few reconciles
    // may go to it (acknowledge, reparent, finish), each polled.
    let mut reconciles = 0;
    let finished = || {
        testing::stored_pod(&server, primary_pod)
            .annotations()
            .contains_key(labels::drain::FINISHED)
    };
    while !finished() {
        reconciles += 1;
        assert!(reconciles <= 5, "not finished after 5 reconciles");
        let shard = server.object_like(&shard).expect("still there");
        reconcile(Arc::new(shard), ctx.clone())
            .await
            .expect("drain reconcile");
    }
    assert_eq!(vtctld.primary("commerce", "-"), Some(replica.clone()));
    assert_eq!(vtctld.count("PlannedReparentShard"), 1);
    let calls = server.take_calls();
    assert!(
        !writes(&calls).iter().any(|w| w.starts_with("delete")),
        "a drained pod the spec still wants is not deleted: {:?}",
        writes(&calls)
    );

    // Steady: the finished drain is neither repeated nor written again.
    let shard = server.object_like(&shard).expect("still there");
    reconcile(Arc::new(shard.clone()), ctx.clone())
        .await
        .expect("steady reconcile");
    let shard = server.object_like(&shard).expect("still there");
    reconcile(Arc::new(shard), ctx.clone())
        .await
        .expect("second steady reconcile");
    assert_eq!(writes(&server.take_calls()), Vec::<&str>::new());
    assert_eq!(vtctld.count("PlannedReparentShard"), 1);
}

#[tokio::test]
async fn a_new_shard_with_backups_gets_its_vtbackup_init_pod_once_and_elects_nobody_meanwhile() {
    let (vtctld, ctx, server, shard) =
        testing::shard_in(include_str!("../../../examples/backup-gcs.yaml")).await;
    let init = crate::desired::vtbackup::init(&shard)
        .expect("builds")
        .expect("a shard with backups gets an init pod");
    let init_pod = format!("apply pods/{}", init.pod.name_any());

    reconcile(Arc::new(shard.clone()), ctx.clone())
        .await
        .expect("first reconcile");
    let first = server.take_calls();
    assert!(
        writes(&first).contains(&init_pod.as_str()),
        "{:?}",
        writes(&first)
    );
    if let Some(pvc) = &init.pvc {
        let claim = format!("apply persistentvolumeclaims/{}", pvc.name_any());
        assert!(
            writes(&first).contains(&claim.as_str()),
            "{:?}",
            writes(&first)
        );
    }
    assert!(writes(&first).contains(&"create events"));
    assert_eq!(vtctld.count("PlannedReparentShard"), 0);

    // The next reconcile sees the init pod it made: at most the status says so.
    let now = server.object_like(&shard).expect("still there");
    reconcile(Arc::new(now), ctx.clone())
        .await
        .expect("second reconcile");
    let second = server.take_calls();
    let status = format!("status vitessshards/{}", shard.name_any());
    assert!(
        writes(&second).iter().all(|w| *w == status),
        "{:?}",
        writes(&second)
    );
    // While the init pod runs: it is not made again, nothing is written, nobody elected.
    for _ in 0..2 {
        let now = server.object_like(&shard).expect("still there");
        reconcile(Arc::new(now), ctx.clone())
            .await
            .expect("reconcile while the init pod runs");
    }
    let calls = server.take_calls();
    assert_eq!(writes(&calls), Vec::<&str>::new());
    assert!(!requests(&calls).contains(&init_pod.as_str()));
    assert_eq!(vtctld.count("PlannedReparentShard"), 0);
}

/// A pod whose Secret volume cannot be mounted stays `ContainerCreating` and its status says
/// nothing; the shard looks for the Secret itself and says what is wrong, then stops saying
/// it once the Secret is there.
#[tokio::test]
async fn an_init_pod_waiting_for_a_missing_secret_says_which_and_where() {
    let (_vtctld, ctx, server, shard) =
        testing::shard_in(include_str!("../../../examples/backup-gcs.yaml")).await;
    let init = crate::desired::vtbackup::init(&shard)
        .expect("builds")
        .expect("an init pod");
    reconcile(Arc::new(shard.clone()), ctx.clone())
        .await
        .expect("first reconcile");
    testing::change_pod(&server, &init.pod.name_any(), |pod| {
        pod.status = Some(k8s_openapi::api::core::v1::PodStatus {
            phase: Some("Pending".into()),
            ..Default::default()
        });
    });
    let initialized = |server: &crate::k8s::mock::ApiServer| {
        let now = server.object_like(&shard).expect("still there");
        now.status
            .unwrap_or_default()
            .conditions
            .into_iter()
            .find(|c| c.type_ == backupinit::BACKUP_INITIALIZED)
            .expect("BackupInitialized")
    };
    let now = server.object_like(&shard).expect("still there");
    reconcile(Arc::new(now), ctx.clone())
        .await
        .expect("reconcile with the pod pending");
    let condition = initialized(&server);
    assert_eq!(condition.reason, "InitPodFailing");
    assert!(
        condition.message.contains(
            "Secret default/gcs-auth (backup location \"\": gcs.authSecret) does not exist"
        ),
        "{}",
        condition.message
    );
    server.take_calls();

    let mut secret = k8s_openapi::api::core::v1::Secret::default();
    secret.metadata.name = Some("gcs-auth".into());
    secret.metadata.namespace = Some(testing::NAMESPACE.into());
    secret.data = Some(
        [(
            "gcs_key.json".to_string(),
            k8s_openapi::ByteString(b"{}".to_vec()),
        )]
        .into(),
    );
    server.insert_object(&secret);
    let now = server.object_like(&shard).expect("still there");
    reconcile(Arc::new(now), ctx.clone())
        .await
        .expect("reconcile with the Secret there");
    let condition = initialized(&server);
    assert_eq!(condition.reason, "InitPodRunning", "{}", condition.message);
}

/// vtctld mounts the location's Secret too, so without it vtctld does not start and the shard
/// cannot ask Vitess anything: it still says which Secret is missing.
#[tokio::test]
async fn a_missing_backup_secret_is_reported_while_vtctld_cannot_be_reached() {
    let cluster = testing::cluster_in(include_str!("../../../examples/backup-gcs.yaml"));
    // Nothing listens there: vtctld is unreachable.
    let (ctx, server) = testing::context(Some("127.0.0.1:1"));
    server.insert_object(&cluster);
    let children = crate::desired::cluster::children(&cluster).expect("children");
    let shard = crate::desired::keyspace::shards(&children.keyspaces[0])
        .expect("shards")
        .remove(0);
    let shard = server.insert_object(&shard);
    reconcile(Arc::new(shard.clone()), ctx.clone())
        .await
        .expect("reconcile");
    let now = server.object_like(&shard).expect("still there");
    let condition = now
        .status
        .unwrap_or_default()
        .conditions
        .into_iter()
        .find(|c| c.type_ == backupinit::BACKUP_INITIALIZED)
        .expect("BackupInitialized");
    assert_eq!(
        (condition.status.as_str(), condition.reason.as_str()),
        ("False", "BackupSecretMissing")
    );
    assert!(
        condition.message.contains("Secret default/gcs-auth"),
        "{}",
        condition.message
    );
}

/// `replication.initializeMaster: false` (the Go operator's field): the tablets are made and
/// registered, and the shard says it elects nobody and how to; set back, it elects.
#[tokio::test]
async fn initialize_master_false_elects_nobody_and_says_so_until_set_back() {
    use crate::api::shard::VitessReplicationSpec;
    use crate::vitess::{Alias, TabletType};
    let (vtctld, ctx, server, mut shard) = testing::example_shard().await;
    let with = |shard: &mut VitessShard, initialize: Option<bool>| {
        shard.spec.template.replication = Some(VitessReplicationSpec {
            initialize_master: initialize,
            ..VitessReplicationSpec::default()
        });
    };
    with(&mut shard, Some(false));
    let shard = server.insert_object(&shard);
    reconcile(Arc::new(shard.clone()), ctx.clone())
        .await
        .expect("first reconcile");
    for (pod, alias) in [
        (
            "example-vttablet-zone1-2469782763-bfadd780",
            "zone1-2469782763",
        ),
        (
            "example-vttablet-zone1-2548885007-46a852d0",
            "zone1-2548885007",
        ),
    ] {
        testing::change_pod(&server, pod, |p| testing::ready_since(p, 60));
        let alias: Alias = alias.parse().expect("alias");
        vtctld.register_tablet(alias, "commerce", "-", TabletType::Replica);
    }
    for _ in 0..2 {
        let now = server.object_like(&shard).expect("still there");
        reconcile(Arc::new(now), ctx.clone())
            .await
            .expect("reconcile with every tablet ready");
    }
    assert_eq!(vtctld.count("PlannedReparentShard"), 0);
    assert_eq!(vtctld.primary("commerce", "-"), None);
    let now = server.object_like(&shard).expect("still there");
    let elected = now
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == PRIMARY_ELECTED))
        .cloned()
        .expect("PrimaryElected");
    assert_eq!(
        (elected.status.as_str(), elected.reason.as_str()),
        ("False", "ElectionDisabled")
    );
    assert!(
        elected
            .message
            .contains("spec.replication.initializeMaster is false")
            && elected
                .message
                .contains("vtctldclient PlannedReparentShard commerce/-"),
        "{}",
        elected.message
    );

    // Unset (the default, true): the first primary is elected.
    let mut now = now;
    with(&mut now, None);
    let now = server.insert_object(&now);
    reconcile(Arc::new(now), ctx.clone())
        .await
        .expect("reconcile with elections allowed");
    assert!(vtctld.primary("commerce", "-").is_some());
}

/// A larger storage request grows the existing claims in place, without replacing a pod, only
/// where the update strategy lets it; otherwise the shard says why it waits.
#[tokio::test]
async fn a_larger_data_volume_grows_the_claims_in_place_where_the_strategy_allows() {
    use crate::api::shared::{
        ExternalUpdateStrategyOptions, UpdateStrategyType, VitessClusterUpdateStrategy,
    };
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    let (_vtctld, ctx, server, shard) = testing::example_shard().await;
    reconcile(Arc::new(shard.clone()), ctx.clone())
        .await
        .expect("first reconcile");
    let names = [
        "example-vttablet-zone1-2469782763-bfadd780",
        "example-vttablet-zone1-2548885007-46a852d0",
    ];
    let claims = || -> Vec<(String, String)> {
        names
            .iter()
            .map(|name| {
                let stored = server
                    .get("", "persistentvolumeclaims", testing::NAMESPACE, name)
                    .expect("the claim was made");
                let claim: PersistentVolumeClaim = serde_json::from_value(stored).expect("a claim");
                let requests = claim.spec.and_then(|s| s.resources?.requests);
                (
                    name.to_string(),
                    requests.expect("a request")["storage"].0.clone(),
                )
            })
            .collect()
    };
    let before = claims();
    assert_eq!(before.len(), 2);
    let pods_before: Vec<String> = before
        .iter()
        .map(|(name, _)| testing::stored_pod(&server, name).metadata.uid.unwrap())
        .collect();
    let grow = |strategy: VitessClusterUpdateStrategy| {
        let mut now = server.object_like(&shard).expect("still there");
        now.spec.update_strategy = Some(strategy);
        for pool in &mut now.spec.template.tablet_pools {
            let template = pool
                .data_volume_claim_template
                .as_mut()
                .expect("a template");
            template
                .resources
                .get_or_insert_with(Default::default)
                .requests
                .get_or_insert_with(Default::default)
                .insert("storage".into(), Quantity("64Gi".into()));
        }
        server.insert_object(&now)
    };
    let pending = |shard: &VitessShard| {
        server
            .object_like(shard)
            .and_then(|s| s.status)
            .and_then(|s| {
                s.conditions
                    .into_iter()
                    .find(|c| c.type_ == volumes::DATA_VOLUME_RESIZE_PENDING)
            })
            .map(|c| (c.status, c.reason))
    };

    // External, storage not allowed: nothing grows, and the shard says why.
    let external = grow(VitessClusterUpdateStrategy {
        type_: Some(UpdateStrategyType::External),
        external: None,
    });
    reconcile(Arc::new(external.clone()), ctx.clone())
        .await
        .expect("reconcile under External");
    assert_eq!(claims(), before);
    assert_eq!(
        pending(&external),
        Some(("True".into(), "WaitingForRelease".into()))
    );

    // External with storage allowed: every claim asks for the new size, no pod is replaced.
    let allowed = grow(VitessClusterUpdateStrategy {
        type_: Some(UpdateStrategyType::External),
        external: Some(ExternalUpdateStrategyOptions {
            allow_resource_changes: Some(vec!["storage".into()]),
        }),
    });
    reconcile(Arc::new(allowed.clone()), ctx.clone())
        .await
        .expect("reconcile with storage allowed");
    assert!(
        claims().iter().all(|(_, storage)| storage == "64Gi"),
        "{:?}",
        claims()
    );
    let pods_after: Vec<String> = before
        .iter()
        .map(|(name, _)| testing::stored_pod(&server, name).metadata.uid.unwrap())
        .collect();
    assert_eq!(pods_after, pods_before, "a pod was replaced");
    assert_eq!(pending(&allowed), Some(("True".into(), "Expanding".into())));
}

/// An external datastore (the Go operator's `externalDatastore`): the operator runs no MySQL
/// and sets up no replication, so the first primary and a drained primary's successor are
/// told to Vitess (TabletExternallyReparented), never reparented by it; the tablet that was
/// the primary is set aside as SPARE.
#[tokio::test]
async fn an_external_datastore_is_told_its_primary_never_reparented() {
    use crate::api::shard::ExternalDatastore;
    use crate::api::shared::SecretSource;
    use crate::vitess::{Alias, TabletType};
    let (vtctld, ctx, server, mut shard) = testing::example_shard().await;
    let pool = &mut shard.spec.template.tablet_pools[0];
    pool.type_ = TabletPoolType::Externalmaster;
    pool.mysqld = None;
    pool.mysqld_exporter = None;
    pool.data_volume_claim_template = None;
    pool.external_datastore = Some(ExternalDatastore {
        user: "app".into(),
        host: "db.example.com".into(),
        port: 3306,
        database: "commerce".into(),
        credentials_secret: SecretSource {
            name: Some("db-creds".into()),
            key: "creds.json".into(),
            ..SecretSource::default()
        },
        server_ca_cert_secret: None,
    });
    let shard = server.insert_object(&shard);
    reconcile(Arc::new(shard.clone()), ctx.clone())
        .await
        .expect("first reconcile");
    let pods: Vec<String> = writes(&server.take_calls())
        .iter()
        .filter_map(|w| w.strip_prefix("apply pods/"))
        .map(str::to_string)
        .collect();
    assert_eq!(pods.len(), 2, "{pods:?}");
    // example-vttablet-<cell>-<uid>-<hash>; each registers as its init type, SPARE.
    let alias_of = |pod: &str| -> Alias {
        let parts: Vec<&str> = pod.split('-').collect();
        format!("{}-{}", parts[2], parts[3]).parse().expect("alias")
    };
    for pod in &pods {
        testing::change_pod(&server, pod, |p| testing::ready_since(p, 60));
        vtctld.register_tablet(alias_of(pod), "commerce", "-", TabletType::Spare);
    }
    for _ in 0..2 {
        let now = server.object_like(&shard).expect("still there");
        reconcile(Arc::new(now), ctx.clone())
            .await
            .expect("reconcile with every tablet running");
    }
    assert_eq!(vtctld.count("PlannedReparentShard"), 0);
    assert_eq!(vtctld.count("TabletExternallyReparented"), 1);
    let first = vtctld.primary("commerce", "-").expect("a primary");
    assert_eq!(vtctld.tablet_type(&first), Some(TabletType::Primary));

    // `kubectl annotate` of the primary's pod: the other SPARE is told to Vitess as the
    // primary, the old one set to SPARE, and its drain finishes.
    let primary_pod = pods
        .iter()
        .find(|p| alias_of(p) == first)
        .expect("the primary's pod")
        .clone();
    testing::change_pod(&server, &primary_pod, |p| {
        p.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(labels::drain::STARTED.into(), "maintenance".into());
    });
    for _ in 0..4 {
        let now = server.object_like(&shard).expect("still there");
        reconcile(Arc::new(now), ctx.clone())
            .await
            .expect("reconcile during the drain");
    }
    assert_eq!(vtctld.count("PlannedReparentShard"), 0);
    assert_eq!(vtctld.count("TabletExternallyReparented"), 2);
    let second = vtctld.primary("commerce", "-").expect("a primary");
    assert_ne!(second, first);
    assert_eq!(vtctld.tablet_type(&first), Some(TabletType::Spare));
    let drained = testing::stored_pod(&server, &primary_pod);
    assert!(
        drained.annotations().contains_key(labels::drain::FINISHED),
        "{:?}",
        drained.annotations()
    );
}
