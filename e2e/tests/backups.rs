//! Backup inventory on the local control plane: a cluster with a backup location gets one
//! VitessBackupStorage whose VitessBackup objects follow the backups vtctld lists, within one
//! listing period (set to 2 s here), and go when the backups go; the storage counts them.
//!
//! Against the fake vtctld (backups put into and taken out of its storage by the test) and
//! against the real vtctld of `e2e/cluster`, whose `file` backup storage is a directory on this
//! machine where the test lays out backups as Vitess writes them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use vitess_operator::api::{VitessBackup, VitessBackupStorage, VitessShard};
use vitess_operator::vitess::{Alias, BackupStatus, TabletType, Vtctld};
use vitess_operator_e2e::{
    METRICS_ADDRESS, Operator, TestNamespace, apply_yaml, client, install_crds, state_dir,
    unique_suffix, vtctld_addr, wait_for,
};
use vtctld_fake::FakeVtctld;

const TIMEOUT: Duration = Duration::from_secs(90);
/// The unnamed location's VitessBackupStorage of cluster `example` (DESIGN §3).
const STORAGE: &str = "example-90089e05";

fn cluster_yaml(ns: &str, keyspace: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Secret
metadata:
  name: example-cluster-config
  namespace: {ns}
stringData:
  init_db.sql: "SELECT 1;"
---
apiVersion: planetscale.com/v2
kind: VitessCluster
metadata:
  name: example
  namespace: {ns}
spec:
  images:
    vtctld: vitess/lite:v24.0.3
    vtgate: vitess/lite:v24.0.3
    vttablet: vitess/lite:v24.0.3
    mysqld:
      mysql80Compatible: vitess/lite:v24.0.3
  backup:
    engine: xtrabackup
    locations:
    - gcs:
        bucket: my-vitess-backup-bucket
        authSecret:
          name: gcs-auth
          key: gcs_key.json
  vitessDashboard:
    cells: [zone1]
    replicas: 1
  cells:
  - name: zone1
    gateway: {{replicas: 1}}
  keyspaces:
  - name: {keyspace}
    durabilityPolicy: none
    turndownPolicy: Immediate
    partitionings:
    - equal:
        parts: 1
        shardTemplate:
          databaseInitScriptSecret:
            name: example-cluster-config
            key: init_db.sql
          tabletPools:
          - cell: zone1
            type: replica
            replicas: 2
            vttablet: {{}}
            mysqld: {{}}
            dataVolumeClaimTemplate:
              accessModes: [ReadWriteOnce]
              resources: {{requests: {{storage: 1Gi}}}}
"#
    )
}

/// What the real-vtctld test applies: a cluster that writes nothing into the shared topology
/// (no keyspaces, no cell registration: creating a keyspace makes vtctld rebuild the serving
/// VSchema of every cell, and cells other tests registered point at unreachable lockservers,
/// which crashes vtctld v0.24.3 with "close of closed channel"), and one shard of `keyspace`
/// as a keyspace would have made it, so that the shard's backups get listed.
fn topology_free_yaml(ns: &str, keyspace: &str) -> String {
    format!(
        r#"apiVersion: planetscale.com/v2
kind: VitessCluster
metadata:
  name: example
  namespace: {ns}
spec:
  topologyReconciliation:
    registerCellsAliases: false
    registerCells: false
  backup:
    locations:
    - gcs:
        bucket: my-vitess-backup-bucket
  vitessDashboard:
    cells: [zone1]
    replicas: 1
  cells:
  - name: zone1
    gateway: {{replicas: 1}}
---
apiVersion: planetscale.com/v2
kind: VitessShard
metadata:
  name: example-{keyspace}-x-x
  namespace: {ns}
  labels:
    planetscale.com/cluster: example
    planetscale.com/keyspace: {keyspace}
    planetscale.com/shard: x-x
spec:
  name: "-"
  keyRange: {{}}
  databaseInitScriptSecret: {{name: none, key: init_db.sql}}
  globalLockserver: {{implementation: etcd2, address: 127.0.0.1:1, rootPath: /vitess/global}}
  backupLocations:
  - maxBackupAge: 1h
    gcs:
      bucket: my-vitess-backup-bucket
"#
    )
}

/// Runs the operator in a fresh namespace against the vtctld at `vtctld`, listing backups
/// every 2 s, applies `yaml(namespace)` and runs `body`; the operator log is shown on failure.
async fn with_cluster<F>(
    test: &str,
    vtctld: &str,
    yaml: impl FnOnce(&str) -> String,
    body: F,
) -> Result<()>
where
    F: AsyncFnOnce(&Client, &str) -> Result<()>,
{
    install_crds().await?;
    let client = client().await?;
    let ns = TestNamespace::create(&client, test).await?;
    let address = format!("*={vtctld}");
    let mut operator = Operator::start(
        test,
        &[
            "run",
            "--namespace",
            ns.name(),
            "--vtctld-address",
            &address,
            "--backup-list-period-seconds",
            "2",
            METRICS_ADDRESS,
        ],
    )?;
    let result = async {
        apply_yaml(&client, ns.name(), &yaml(ns.name())).await?;
        body(&client, ns.name()).await
    }
    .await;
    let stopped = operator.stop().await;
    if let Err(err) = result {
        let log = operator.log_contents().unwrap_or_default();
        anyhow::bail!(
            "{err:#}\n--- operator log ({}) ---\n{log}",
            operator.log_path().display()
        );
    }
    stopped?;
    ns.delete(TIMEOUT).await
}

/// The VitessBackups of the namespace: storage name -> complete.
async fn inventory(api: &Api<VitessBackup>) -> Result<BTreeMap<String, bool>> {
    Ok(api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter_map(|b| {
            let status = b.status?;
            Some((status.storage_name?, status.complete))
        })
        .collect())
}

/// Waits until the inventory is exactly `want` and the storage counts it.
async fn wait_inventory(client: &Client, ns: &str, want: &BTreeMap<String, bool>) -> Result<()> {
    let backups: Api<VitessBackup> = Api::namespaced(client.clone(), ns);
    let storages: Api<VitessBackupStorage> = Api::namespaced(client.clone(), ns);
    wait_for(
        &format!("VitessBackups {want:?}"),
        TIMEOUT,
        async |seen: &mut String| {
            let got = inventory(&backups).await?;
            let count = storages
                .get(STORAGE)
                .await?
                .status
                .map(|s| s.total_backup_count)
                .unwrap_or(-1);
            *seen = format!("{got:?}, storage count {count}");
            Ok((&got == want && usize::try_from(count).ok() == Some(want.len())).then_some(()))
        },
    )
    .await
}

/// Waits until the shard counts (complete, incomplete, unknown) backups in its one location
/// and its `BackupsFresh` condition has `status`.
async fn wait_freshness(
    client: &Client,
    ns: &str,
    shard: &str,
    counts: (i32, i32, i32),
    status: &str,
) -> Result<()> {
    let shards: Api<VitessShard> = Api::namespaced(client.clone(), ns);
    wait_for(
        &format!("{shard}: backups {counts:?}, BackupsFresh {status}"),
        TIMEOUT,
        async |seen: &mut String| {
            let got = shards.get(shard).await?.status.unwrap_or_default();
            let location = got
                .backup_locations
                .first()
                .map(|l| (l.complete_backups, l.incomplete_backups, l.unknown_backups));
            let fresh = got.conditions.iter().find(|c| c.type_ == "BackupsFresh");
            *seen = format!("{location:?}, {fresh:?}");
            Ok(
                (location == Some(counts) && fresh.is_some_and(|c| c.status == status))
                    .then_some(()),
            )
        },
    )
    .await
}

#[tokio::test]
async fn inventory_follows_the_backups_vtctld_lists() -> Result<()> {
    let fake = FakeVtctld::start(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let vtctld = fake.local_addr().to_string();
    let (a, b, c) = (
        "2026-01-01.000000.zone1-0000000100",
        "2026-01-02.000000.zone1-0000000101",
        "2026-01-03.000000.zone1-0000000102",
    );
    fake.add_backup("commerce", "-", a, BackupStatus::Complete);
    fake.add_backup("commerce", "-", b, BackupStatus::Incomplete);
    let yaml = |ns: &str| cluster_yaml(ns, "commerce");
    with_cluster("backups-fake", &vtctld, yaml, async |client, ns| {
        let mut want = BTreeMap::from([(a.to_string(), true), (b.to_string(), false)]);
        wait_inventory(client, ns, &want).await?;

        // Go operator names: cluster, keyspace, shard, start time, tablet uid in hex.
        let api: Api<VitessBackup> = Api::namespaced(client.clone(), ns);
        let names: Vec<String> = api
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .map(ResourceExt::name_any)
            .collect();
        ensure!(
            names
                .iter()
                .any(|n| n.starts_with("example-commerce-x-x-20260101-000000-64-")),
            "names: {names:?}"
        );

        fake.add_backup("commerce", "-", c, BackupStatus::Complete);
        want.insert(c.to_string(), true);
        wait_inventory(client, ns, &want).await?;

        ensure!(
            fake.remove_backup("commerce", "-", a),
            "backup {a} was not there"
        );
        want.remove(a);
        wait_inventory(client, ns, &want).await?;
        // Deleting objects never deletes data: the fake's storage lost only what the test took.
        ensure!(
            fake.backups("commerce", "-") == [b, c],
            "{:?}",
            fake.backups("commerce", "-")
        );
        ensure!(
            fake.count("BackupShard") == 0,
            "listing must never take a backup"
        );
        Ok(())
    })
    .await
}

/// Where the real vtctld of `e2e/cluster` keeps `file` backups (`start_vtctld`).
fn file_backup_root() -> PathBuf {
    state_dir().join("vtdataroot").join("backups")
}

/// Lays out a backup as Vitess' builtin engine writes it: a directory with a MANIFEST (a
/// complete backup) or without one (still uploading, or failed).
fn write_backup(dir: &Path, name: &str, complete: bool) -> Result<()> {
    let path = dir.join(name);
    std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
    std::fs::write(path.join("0"), b"data")?;
    if complete {
        std::fs::write(
            path.join("MANIFEST"),
            br#"{"BackupMethod":"builtin","Position":"","FileEntries":[]}"#,
        )?;
    }
    Ok(())
}

#[tokio::test]
async fn inventory_follows_the_real_vtctld_file_storage() -> Result<()> {
    let address = vtctld_addr();
    let vtctld = Vtctld::connect_lazy(&address, None)?;
    let root = file_backup_root();
    // The shared vtctld must have been started with `--backup-storage-implementation file
    // --file-backup-storage-root <root>` (e2e/cluster does); without it, GetBackups fails.
    match vtctld.backups("probe-keyspace", "-", 1).await {
        Ok(_) => {}
        Err(err) if err.is_unavailable() => {
            anyhow::bail!(
                "vtctld at {address} is not running ({err}); start it with `e2e/cluster up`"
            )
        }
        Err(err) => {
            eprintln!(
                "SKIPPED: vtctld at {address} has no file backup storage ({err}); restart it with e2e/cluster to run this test"
            );
            return Ok(());
        }
    }
    if !root.is_dir() {
        eprintln!(
            "SKIPPED: {} does not exist; vtctld's file backup root is elsewhere",
            root.display()
        );
        return Ok(());
    }
    let keyspace = format!("bk{}", unique_suffix());
    let shard_dir = root.join(&keyspace).join("-");
    let (a, b) = (
        "2026-01-01.000000.zone1-0000000100",
        "2026-01-02.000000.zone1-0000000101",
    );
    write_backup(&shard_dir, a, true)?;
    write_backup(&shard_dir, b, false)?;
    let yaml = |ns: &str| topology_free_yaml(ns, &keyspace);
    let result = with_cluster("backups-real", &address, yaml, async |client, ns| {
        // vtctld v0.24 reports no backup status (GetBackups leaves it UNKNOWN whatever the
        // engine), so the operator cannot tell complete from incomplete: both are not complete.
        let mut want = BTreeMap::from([(a.to_string(), false), (b.to_string(), false)]);
        wait_inventory(client, ns, &want).await?;
        // Both are months old: whether complete or not, nothing is younger than maxBackupAge.
        let shard = format!("example-{keyspace}-x-x");
        wait_freshness(client, ns, &shard, (0, 0, 2), "False").await?;

        // A backup started now, which vtctld does not describe either: freshness is unknown.
        let c = format!(
            "{}.zone1-0000000102",
            k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%d.%H%M%S")
        );
        write_backup(&shard_dir, &c, true)?;
        want.insert(c.clone(), false);
        wait_inventory(client, ns, &want).await?;
        wait_freshness(client, ns, &shard, (0, 0, 3), "Unknown").await?;

        std::fs::remove_dir_all(shard_dir.join(a))?;
        want.remove(a);
        wait_inventory(client, ns, &want).await?;
        ensure!(shard_dir.join(b).is_dir() && shard_dir.join(c).is_dir());

        let api: Api<VitessBackup> = Api::namespaced(client.clone(), ns);
        let list = api.list(&ListParams::default()).await?.items;
        for backup in list {
            let status = backup.status.unwrap_or_default();
            ensure!(
                status.storage_directory.as_deref() == Some(&format!("{keyspace}/-")[..]),
                "{status:?}"
            );
            ensure!(status.start_time.is_some(), "{status:?}");
            ensure!(
                status.vtctld_status.as_deref() == Some("UNKNOWN"),
                "{status:?}"
            );
        }
        Ok(())
    })
    .await;
    // Leave the shared storage as it was (the topology was never written).
    let _ = std::fs::remove_dir_all(root.join(&keyspace));
    result
}

#[tokio::test]
async fn a_backup_request_makes_one_backup_shard_call_and_ends_complete() -> Result<()> {
    let fake = FakeVtctld::start(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    fake.register_tablet(Alias::new("zone1", 1), "commerce", "-", TabletType::Primary);
    fake.register_tablet(Alias::new("zone1", 2), "commerce", "-", TabletType::Replica);
    // An older backup: the serving shard needs no first backup of its own, so the only
    // BackupShard is the request's.
    const OLDER: &str = "2020-01-01.000000.zone1-0000000002";
    fake.add_backup("commerce", "-", OLDER, BackupStatus::Complete);
    let vtctld = fake.local_addr().to_string();
    let yaml = |ns: &str| cluster_yaml(ns, "commerce");
    with_cluster("backups-request", &vtctld, yaml, async |client, ns| {
        apply_yaml(
            client,
            ns,
            "apiVersion: planetscale.com/v2\nkind: VitessBackup\nmetadata:\n  name: on-demand\nspec:\n  keyspace: commerce\n  shard: \"-\"\n",
        )
        .await?;
        let api: Api<VitessBackup> = Api::namespaced(client.clone(), ns);
        let status = wait_for(
            "the request to complete",
            TIMEOUT,
            async |seen: &mut String| {
                let status = api.get("on-demand").await?.status.unwrap_or_default();
                *seen = format!("{status:?}");
                Ok(status.complete.then_some(status))
            },
        )
        .await?;
        let backups: Vec<String> = fake
            .backups("commerce", "-")
            .into_iter()
            .filter(|b| b != OLDER)
            .collect();
        let names: Vec<String> = api
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .map(|b| b.name_any())
            .collect();
        ensure!(
            backups.len() == 1,
            "new backups in storage: {backups:?}; VitessBackups: {names:?}"
        );
        ensure!(
            backups[0].ends_with(".zone1-0000000002"),
            "not taken by the replica: {backups:?}"
        );
        ensure!(
            status.storage_name.as_deref() == Some(backups[0].as_str()),
            "{status:?}"
        );
        ensure!(status.start_time.is_some() && status.finished_time.is_some());
        let complete = status.conditions.iter().find(|c| c.type_ == "Complete");
        ensure!(
            complete.is_some_and(|c| c.status == "True"),
            "{:?}",
            status.conditions
        );
        // The inventory lists the new backup too; the request stays a request.
        wait_inventory(
            client,
            ns,
            &BTreeMap::from([(backups[0].clone(), true), (OLDER.to_string(), true)]),
        )
        .await?;
        // Exactly once: later reconciles (the 5 s poll, the 2 s listing) send nothing more.
        tokio::time::sleep(Duration::from_secs(8)).await;
        let calls = fake.count("BackupShard");
        ensure!(calls == 1, "BackupShard calls: {calls}");
        ensure!(api.get_opt("on-demand").await?.is_some(), "the request was deleted");
        Ok(())
    })
    .await
}
