//! A shard's first backup, end to end: a real API server, KWOK pods, the operator as a
//! process, and the fake vtctld (`vtctld_fake`) with a tablet agent standing
//! in for vttablets (they need MySQL). KWOK finishes a vtbackup-init pod when the test
//! annotates it `e2e.vitess.io/complete=true` (e2e/kwok/stages.yaml), as vtbackup exits 0
//! once it has uploaded the backup.
//!
//! - A new cluster with backups gets one vtbackup-init pod (and its PVC) per shard, and no
//!   shard gets a primary before its own init pod has succeeded.
//! - Backups added to a serving cluster make no init pod; the operator asks vtctld for one
//!   BackupShard, of a replica.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use vitess_operator_e2e::{
    Operator, SharedFake, apply_yaml, dynamic, fake_primary, wait_for, with_fake_vtctld,
};

const TIMEOUT: Duration = Duration::from_secs(120);
const KEYSPACE: &str = "commerce";
const INIT_PODS: &str = "planetscale.com/component=vtbackup";

const BACKUP: &str = r#"
  backup:
    engine: xtrabackup
    locations:
    - gcs:
        bucket: my-vitess-backup-bucket
        authSecret: {name: gcs-auth, key: gcs_key.json}"#;

fn cluster_yaml(name: &str, parts: u32, backup: bool) -> String {
    let backup = if backup { BACKUP } else { "" };
    format!(
        r#"
apiVersion: v1
kind: Secret
metadata:
  name: {name}-config
stringData:
  init_db.sql: "CREATE DATABASE IF NOT EXISTS vt_commerce;"
---
apiVersion: v1
kind: Secret
metadata:
  name: gcs-auth
stringData:
  gcs_key.json: "{{}}"
---
apiVersion: planetscale.com/v2
kind: VitessCluster
metadata:
  name: {name}
spec:{backup}
  cells:
  - name: zone1
    gateway: {{replicas: 1}}
  keyspaces:
  - name: {KEYSPACE}
    durabilityPolicy: none
    turndownPolicy: Immediate
    partitionings:
    - equal:
        parts: {parts}
        shardTemplate:
          databaseInitScriptSecret: {{name: {name}-config, key: init_db.sql}}
          tabletPools:
          - cell: zone1
            type: replica
            replicas: 2
            vttablet: {{}}
            mysqld: {{}}
            dataVolumeClaimTemplate:
              accessModes: ["ReadWriteOnce"]
              resources:
                requests: {{storage: 1Gi}}
"#
    )
}

/// A fresh fake vtctld, the tablet agent and an operator on a new namespace; then `body`.
async fn with_fake<F>(test: &str, body: F) -> Result<()>
where
    F: AsyncFnOnce(&Client, &str, &mut Operator, &SharedFake) -> Result<()>,
{
    with_fake_vtctld(test, async |client, ns, operator, shared, _| {
        body(client, ns, operator, shared).await
    })
    .await
}

/// The VitessShards' statuses by their Vitess shard name (`-80`).
async fn shard_statuses(shards: &Api<DynamicObject>) -> Result<BTreeMap<String, Value>> {
    Ok(shards
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter_map(|s| {
            let name = s.data["spec"]["name"].as_str()?.to_string();
            Some((name, s.data["status"].clone()))
        })
        .collect())
}

/// The (status, reason, message) of a condition in a status.
fn condition(status: &Value, type_: &str) -> Option<(String, String, String)> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .map(|c| {
            let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (text("status"), text("reason"), text("message"))
        })
}

async fn count(fake: &SharedFake, method: &str) -> usize {
    fake.lock()
        .await
        .as_ref()
        .map(|f| f.count(method))
        .unwrap_or_default()
}

/// Waits until every shard's tablets are ready and known to Vitess as REPLICAs, and its first
/// primary is held back by its vtbackup-init pod.
async fn wait_held(
    operator: &mut Operator,
    shards: &Api<DynamicObject>,
    want: usize,
) -> Result<()> {
    wait_for(
        "every shard ready, registered and held back by its vtbackup-init pod",
        TIMEOUT,
        async |seen: &mut String| {
            operator.check_running()?;
            let statuses = shard_statuses(shards).await?;
            let held: Vec<&String> = statuses
                .iter()
                .filter(|(_, s)| {
                    let registered = s["tablets"].as_object().is_some_and(|t| {
                        t.len() == 2 && t.values().all(|t| t["type"] == "REPLICA")
                    });
                    let waiting = condition(s, "PrimaryElected").is_some_and(|(st, r, m)| {
                        st == "False" && r == "Waiting" && m.contains("vtbackup-init")
                    });
                    s["summary"] == "2/2" && registered && waiting
                })
                .map(|(name, _)| name)
                .collect();
            // What each shard shows: pods ready, tablet types, the election's condition.
            let shown: Vec<String> = statuses
                .iter()
                .map(|(name, s)| {
                    let types: Vec<&str> = s["tablets"]
                        .as_object()
                        .map(|t| {
                            t.values()
                                .map(|t| t["type"].as_str().unwrap_or("?"))
                                .collect()
                        })
                        .unwrap_or_default();
                    format!(
                        "{name}: {} {types:?} {:?}",
                        s["summary"],
                        condition(s, "PrimaryElected")
                    )
                })
                .collect();
            *seen = format!("held: {held:?}; {shown:?}");
            Ok((held.len() == want).then_some(()))
        },
    )
    .await
}

async fn complete(pods: &Api<Pod>, name: &str) -> Result<()> {
    let patch = json!({"metadata": {"annotations": {"e2e.vitess.io/complete": "true"}}});
    pods.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .with_context(|| format!("annotating {name} to complete"))?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_shard_elects_its_first_primary_only_after_its_vtbackup_init_pod() -> Result<()> {
    with_fake("first-backup-init", async |client, ns, operator, fake| {
        apply_yaml(client, ns, &cluster_yaml("init", 2, true)).await?;
        let shards = dynamic(client, ns, "VitessShard");
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        wait_held(operator, &shards, 2).await?;
        ensure!(
            count(fake, "PlannedReparentShard").await == 0,
            "a primary was elected before any vtbackup-init pod succeeded"
        );

        // One init pod per shard, with the Go operator's names and a claim of its own.
        let init: Vec<Pod> = pods
            .list(&ListParams::default().labels(INIT_PODS))
            .await?
            .items;
        let mut names: Vec<String> = init.iter().map(|p| p.name_any()).collect();
        names.sort();
        ensure!(names.len() == 2, "init pods: {names:?}");
        ensure!(
            names[0].starts_with("init-commerce-80-x-vtbackup-init-")
                && names[1].starts_with("init-commerce-x-80-vtbackup-init-"),
            "init pod names: {names:?}"
        );
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
        for name in &names {
            claims
                .get(name)
                .await
                .with_context(|| format!("the data claim of {name}"))?;
        }
        for (shard, status) in shard_statuses(&shards).await? {
            let initialized = condition(&status, "BackupInitialized");
            ensure!(
                initialized
                    .as_ref()
                    .is_some_and(|c| c.0 == "False" && c.1 == "InitPodRunning"),
                "{shard}: BackupInitialized {initialized:?}"
            );
        }

        // The -80 shard's init pod finishes: that shard, and only that one, gets a primary.
        complete(&pods, &names[1]).await?;
        wait_for("a primary for -80", TIMEOUT, async |seen: &mut String| {
            operator.check_running()?;
            let primary = fake_primary(fake, KEYSPACE, "-80").await;
            *seen = format!("-80 primary {primary:?}");
            Ok(primary.map(|_| ()))
        })
        .await?;
        ensure!(
            fake_primary(fake, KEYSPACE, "80-").await.is_none(),
            "80- got a primary while its vtbackup-init pod still runs"
        );
        ensure!(count(fake, "PlannedReparentShard").await == 1);

        complete(&pods, &names[0]).await?;
        wait_for(
            "both shards elected and initialized",
            TIMEOUT,
            async |seen: &mut String| {
                operator.check_running()?;
                let statuses = shard_statuses(&shards).await?;
                let done: Vec<&String> = statuses
                    .iter()
                    .filter(|(_, s)| {
                        s["masterAlias"].is_string()
                            && condition(s, "BackupInitialized")
                                .is_some_and(|c| c.0 == "True" && c.1 == "InitialBackupUploaded")
                    })
                    .map(|(name, _)| name)
                    .collect();
                *seen = format!("done: {done:?}");
                Ok((done.len() == 2).then_some(()))
            },
        )
        .await?;
        ensure!(fake_primary(fake, KEYSPACE, "80-").await.is_some());
        ensure!(
            count(fake, "BackupShard").await == 0,
            "no BackupShard for new shards"
        );
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_added_to_a_serving_shard_take_one_backup_of_a_replica() -> Result<()> {
    with_fake(
        "first-backup-serving",
        async |client, ns, operator, fake| {
            apply_yaml(client, ns, &cluster_yaml("seed", 1, false)).await?;
            let shards = dynamic(client, ns, "VitessShard");
            let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
            let primary = wait_for("the first primary", TIMEOUT, async |seen: &mut String| {
                operator.check_running()?;
                let primary = fake_primary(fake, KEYSPACE, "-").await;
                *seen = format!("primary {primary:?}");
                Ok(primary)
            })
            .await?;

            // The seed scenario: the user adds backups and re-applies.
            apply_yaml(client, ns, &cluster_yaml("seed", 1, true)).await?;
            let mut init_seen = Vec::new();
            let status = wait_for(
                "the first backup of the serving shard",
                TIMEOUT,
                async |seen: &mut String| {
                    operator.check_running()?;
                    let init = pods
                        .list(&ListParams::default().labels(INIT_PODS))
                        .await?
                        .items;
                    init_seen.extend(init.iter().map(|p| p.name_any()));
                    let status = shard_statuses(&shards)
                        .await?
                        .remove("-")
                        .unwrap_or_default();
                    let initialized = condition(&status, "BackupInitialized");
                    *seen = format!("BackupInitialized {initialized:?}");
                    Ok(initialized.filter(|c| c.0 == "True").map(|_| status))
                },
            )
            .await?;
            ensure!(
                init_seen.is_empty(),
                "a serving shard got init pods: {init_seen:?}"
            );
            let calls: Vec<String> = fake
                .lock()
                .await
                .as_ref()
                .map(|f| {
                    f.calls()
                        .into_iter()
                        .filter(|c| c.method == "BackupShard")
                        .map(|c| c.to_string())
                        .collect()
                })
                .unwrap_or_default();
            ensure!(
                calls == [format!("BackupShard {KEYSPACE}/- allow_primary=false")],
                "BackupShard calls: {calls:?}"
            );
            let backups = fake
                .lock()
                .await
                .as_ref()
                .map(|f| f.backups(KEYSPACE, "-"))
                .unwrap_or_default();
            ensure!(
                backups.len() == 1 && !backups[0].ends_with(&primary),
                "the backup {backups:?} must come from a replica, not the primary {primary}"
            );
            let (_, reason, message) = condition(&status, "BackupInitialized").unwrap_or_default();
            ensure!(
                reason == "BackupTaken" || reason == "BackupExists",
                "{reason}: {message}"
            );
            ensure!(
                status["hasInitialBackup"] == "True",
                "hasInitialBackup: {}",
                status["hasInitialBackup"]
            );

            // Nothing asks again: a later reconcile (a label on the shard triggers one) finds the
            // request or the backup.
            let api = dynamic(client, ns, "VitessShard");
            let name = api.list(&ListParams::default()).await?.items[0].name_any();
            let patch = json!({"metadata": {"labels": {"e2e.vitess.io/poke": "1"}}});
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
            tokio::time::sleep(Duration::from_secs(6)).await;
            ensure!(
                count(fake, "BackupShard").await == 1,
                "a second BackupShard was sent"
            );
            Ok(())
        },
    )
    .await
}
