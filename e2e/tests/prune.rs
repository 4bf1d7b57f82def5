//! Pruning on a real API server, with its data-safety guards: a scale-down keeps the extra
//! tablet while vtctld cannot be asked to drain it (reported in orphanedTablets and a
//! ScaleDownBlocked condition) and deletes it once the operator drained it,
//! a keyspace with `turndownPolicy: Immediate` goes with its shards and pods, one with
//! `RequireIdle` stays (orphanedKeyspaces), a cell still used by a kept keyspace stays
//! (orphanedCells), and no PVC is ever deleted.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use serde_json::Value;
use vitess_operator_e2e::{
    Operator, SharedFake, apply_yaml, condition, dynamic, set_fake_mode, wait_for, with_fake_vtctld,
};
use vtctld_fake::Mode;

/// Generous: a loaded CI machine is slow; a healthy run converges in seconds.
const TIMEOUT: Duration = Duration::from_secs(120);

const CLUSTER: &str = "prune";
const KEYSPACE_LABEL: &str = "planetscale.com/keyspace";
/// Tablet pods only (a keyspace's vtorc pods carry its label too).
const TABLET_PODS: &str = "planetscale.com/component=vttablet";

/// A small cluster: `commerce` stays (its zone1 pool scales 2 -> 1), `fast` (Immediate) and
/// `slow` (RequireIdle) live in zone2 and are removed, and so is zone2.
fn cluster_yaml(commerce_replicas: u32, full: bool) -> String {
    let pool = |cell: &str, replicas: u32| {
        format!(
            r#"
          tabletPools:
          - cell: {cell}
            type: replica
            replicas: {replicas}
            vttablet: {{}}
            mysqld: {{}}
            dataVolumeClaimTemplate:
              accessModes: ["ReadWriteOnce"]
              resources:
                requests: {{storage: 1Gi}}"#
        )
    };
    let keyspace = |name: &str, policy: &str, cell: &str, replicas: u32| {
        format!(
            r#"
  - name: {name}
    durabilityPolicy: none
    turndownPolicy: {policy}
    partitionings:
    - equal:
        parts: 1
        shardTemplate:
          databaseInitScriptSecret: {{name: prune-config, key: init_db.sql}}{}"#,
            pool(cell, replicas)
        )
    };
    let mut cells = String::from("\n  - name: zone1\n    gateway: {replicas: 1}");
    let mut keyspaces = keyspace("commerce", "RequireIdle", "zone1", commerce_replicas);
    if full {
        cells.push_str("\n  - name: zone2\n    gateway: {replicas: 1}");
        keyspaces.push_str(&keyspace("fast", "Immediate", "zone2", 1));
        keyspaces.push_str(&keyspace("slow", "RequireIdle", "zone2", 1));
    }
    format!(
        r#"apiVersion: v1
kind: Secret
metadata:
  name: prune-config
stringData:
  init_db.sql: "SELECT 1;"
---
apiVersion: planetscale.com/v2
kind: VitessCluster
metadata:
  name: {CLUSTER}
spec:
  images:
    vtctld: vitess/lite:v24.0.3
    vtgate: vitess/lite:v24.0.3
    vttablet: vitess/lite:v24.0.3
    mysqld:
      mysql80Compatible: vitess/lite:v24.0.3
  vitessDashboard:
    cells: [zone1]
    replicas: 1
  cells:{cells}
  keyspaces:{keyspaces}
"#
    )
}

async fn names<K>(api: &Api<K>, selector: &str) -> Result<BTreeSet<String>>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    Ok(api
        .list(&ListParams::default().labels(selector))
        .await?
        .into_iter()
        .filter(|o| o.meta().deletion_timestamp.is_none())
        .map(|o| o.name_any())
        .collect())
}

#[tokio::test]
async fn pruning_keeps_data_and_undrained_tablets() -> Result<()> {
    with_fake_vtctld("prune", async |client, ns, operator, fake, _| {
        prune_and_check(client, ns, operator, fake).await
    })
    .await
}

async fn prune_and_check(
    client: &Client,
    ns: &str,
    operator: &mut Operator,
    fake: &SharedFake,
) -> Result<()> {
    let clusters = dynamic(client, ns, "VitessCluster");
    let keyspaces = dynamic(client, ns, "VitessKeyspace");
    let shards = dynamic(client, ns, "VitessShard");
    let cells = dynamic(client, ns, "VitessCell");
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);

    apply_yaml(client, ns, &cluster_yaml(2, true)).await?;
    let start = Instant::now();
    wait_for(
        "VitessCluster Ready True with 4 tablet pods",
        TIMEOUT,
        async |seen: &mut String| {
            operator.check_running()?;
            let cluster = clusters.get(CLUSTER).await?;
            let tablets = names(&pods, "planetscale.com/component=vttablet").await?;
            let ready = condition(&cluster, "Ready");
            *seen = format!(
                "Ready {ready:?}, tablet pods {tablets:?}, conditions {}",
                cluster.data["status"]["conditions"]
            );
            Ok((ready.as_deref() == Some("True") && tablets.len() == 4).then_some(()))
        },
    )
    .await?;
    let commerce_pods = names(&pods, &format!("{TABLET_PODS},{KEYSPACE_LABEL}=commerce")).await?;
    let fast_pods = names(&pods, &format!("{TABLET_PODS},{KEYSPACE_LABEL}=fast")).await?;
    let all_claims = names(&claims, "planetscale.com/component=vttablet").await?;
    ensure!(
        commerce_pods.len() == 2 && fast_pods.len() == 1 && all_claims.len() == 4,
        "before the scale-down: commerce pods {commerce_pods:?}, fast pods {fast_pods:?}, \
         claims {all_claims:?}"
    );
    eprintln!("converged {:?} after applying", start.elapsed());

    // Same field manager as the first apply: the removed keyspaces and cell leave the object
    // rather than staying owned by another manager.
    apply_yaml(client, ns, &cluster_yaml(2, false)).await?;

    // Immediate: the keyspace, its shards and its pods go; its PVC stays.
    wait_for(
        "keyspace fast (Immediate) with its shards and pods to be deleted",
        TIMEOUT,
        async |seen: &mut String| {
            operator.check_running()?;
            let selector = format!("{KEYSPACE_LABEL}=fast");
            let left_keyspaces = names(&keyspaces, &selector).await?;
            let left_shards = names(&shards, &selector).await?;
            let left_pods = names(&pods, &format!("{TABLET_PODS},{selector}")).await?;
            *seen =
                format!("keyspaces {left_keyspaces:?}, shards {left_shards:?}, pods {left_pods:?}");
            Ok(
                (left_keyspaces.is_empty() && left_shards.is_empty() && left_pods.is_empty())
                    .then_some(()),
            )
        },
    )
    .await?;

    // RequireIdle: kept and reported; so is zone2, which the kept keyspace still uses.
    wait_for(
        "orphanedKeyspaces.slow TurndownRequiresIdle and orphanedCells.zone2 CellInUse",
        TIMEOUT,
        async |seen: &mut String| {
            let status = clusters.get(CLUSTER).await?.data["status"].clone();
            *seen = format!(
                "orphanedKeyspaces {}, orphanedCells {}",
                status["orphanedKeyspaces"], status["orphanedCells"]
            );
            Ok(
                (status["orphanedKeyspaces"]["slow"]["reason"] == "TurndownRequiresIdle"
                    && status["orphanedCells"]["zone2"]["reason"] == "CellInUse")
                    .then_some(()),
            )
        },
    )
    .await?;
    let slow = names(&keyspaces, &format!("{KEYSPACE_LABEL}=slow")).await?;
    ensure!(slow.len() == 1, "keyspace slow was not kept: {slow:?}");
    let slow_pods = names(&pods, &format!("{TABLET_PODS},{KEYSPACE_LABEL}=slow")).await?;
    ensure!(
        slow_pods.len() == 1,
        "keyspace slow lost its pod: {slow_pods:?}"
    );
    let zone2 = names(&cells, "planetscale.com/cell=zone2").await?;
    ensure!(zone2.len() == 1, "cell zone2 was not kept: {zone2:?}");

    // Scale-down while vtctld cannot be asked: the extra pod stays, undrained, named in the
    // shard's status with why.
    set_fake_mode(fake, Mode::Fail).await;
    apply_yaml(client, ns, &cluster_yaml(1, false)).await?;
    let commerce_shard = names(&shards, &format!("{KEYSPACE_LABEL}=commerce")).await?;
    let shard_name = commerce_shard
        .first()
        .context("the commerce VitessShard is missing")?
        .clone();
    let orphan_pod: String = wait_for(
        "commerce shard to report one NotDrained orphan and ScaleDownBlocked True",
        TIMEOUT,
        async |seen: &mut String| {
            operator.check_running()?;
            let shard = shards.get(&shard_name).await?;
            let status = &shard.data["status"];
            let orphans = status["orphanedTablets"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            let blocked = condition(&shard, "ScaleDownBlocked");
            let desired: BTreeSet<String> = status["tablets"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(_, t)| t["podName"].as_str().map(str::to_string))
                .collect();
            let present = names(&pods, &format!("{TABLET_PODS},{KEYSPACE_LABEL}=commerce")).await?;
            *seen = format!(
                "orphanedTablets {orphans:?}, ScaleDownBlocked {blocked:?}, desired pods \
                 {desired:?}, present {present:?}"
            );
            let extra: Vec<&String> = present.difference(&desired).collect();
            let ok = orphans.len() == 1
                && orphans.values().all(|o| o["reason"] == "NotDrained")
                && blocked.as_deref() == Some("True")
                && desired.len() == 1
                && extra.len() == 1;
            Ok(ok.then(|| extra[0].clone()))
        },
    )
    .await?;
    ensure!(
        commerce_pods.contains(&orphan_pod),
        "orphan {orphan_pod} is not one of the original pods {commerce_pods:?}"
    );

    // vtctld answers again: the operator drains the tablet (a replica leaves at once, a
    // primary after a reparent) and deletes the pod; its PVC stays.
    set_fake_mode(fake, Mode::Serve).await;
    wait_for(
        &format!("drained pod {orphan_pod} to be deleted and ScaleDownBlocked False"),
        TIMEOUT,
        async |seen: &mut String| {
            operator.check_running()?;
            let pod = pods.get_opt(&orphan_pod).await?;
            let shard = shards.get(&shard_name).await?;
            let orphans = shard.data["status"]["orphanedTablets"].clone();
            let blocked = condition(&shard, "ScaleDownBlocked");
            *seen = format!(
                "pod exists {}, orphanedTablets {orphans}, ScaleDownBlocked {blocked:?}",
                pod.is_some()
            );
            let no_orphans = orphans.is_null() || orphans == Value::Object(Default::default());
            Ok((pod.is_none() && no_orphans && blocked.as_deref() == Some("False")).then_some(()))
        },
    )
    .await?;

    // No data was deleted: every tablet PVC of the first apply is still there.
    let left_claims = names(&claims, "planetscale.com/component=vttablet").await?;
    let lost: Vec<&String> = all_claims.difference(&left_claims).collect();
    ensure!(
        lost.is_empty(),
        "PVCs deleted: {lost:?} (left {left_claims:?})"
    );
    Ok(())
}
