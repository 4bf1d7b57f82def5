//! Real backups and restores on the real node, with Vitess' `builtin` engine and MySQL 9.7, to
//! each kind of store a user tries: a server of Google Cloud Storage's JSON API
//! (fake-gcs-server), a server of the S3 API (gofakes3), both started by `e2e/cluster up`, and
//! a `volume` location (a hostPath directory of the real node).
//!
//! The example cluster, changed only as a user would change it: a `backup.locations[]` entry;
//! for GCS a bucket, a key prefix, an `authSecret` holding Application Default Credentials and
//! `STORAGE_EMULATOR_HOST` in the `extraEnv` of the tablets and vtctld (a private endpoint);
//! for S3 the `endpoint`, `forcePathStyle`, a region and a shared credentials file. Then, for
//! each store, as a user would check it:
//!
//! 1. The new shard gets its `vtbackup-init` pod, which uploads the first backup: its MANIFEST
//!    is listed through the store's own API. No primary is elected before that pod succeeds.
//! 2. The tablets restore from it (their logs name it), the first primary is elected, rows
//!    are written through vtgate.
//! 3. A VitessBackup request makes one real `BackupShard`: a second backup with a MANIFEST
//!    appears in the store, and in the inventory as a VitessBackup. (GCS) A schedule added to
//!    the cluster with `backupMethod: vtbackup`: its VitessBackupSchedule's Job runs vtbackup
//!    on the real node (the latest backup restored on a volume of its own, caught up with the
//!    primary, uploaded) and a third backup appears; the schedule is removed again.
//! 4. A lost disk: a replica's pod and PVC are deleted; the operator makes them again, the new
//!    tablet restores from the latest backup (its log names that one), catches up, and has every
//!    row the primary has.
//!
//! Deleting the VitessBackup objects and then the namespace leaves every backup in the store.
//!
//! A second cluster meets a user's mistakes one by one, each reported by the shard's
//! `BackupInitialized` condition, and while any lasts no primary is elected onto an empty
//! database that should have been restored: applied without its credentials' Secret (which
//! Secret of which location is missing); then with it, naming a bucket that does not exist
//! (the init pod fails, the condition and a Warning Event repeat what the store answered, no
//! volume is deleted); then with the bucket fixed but a pasted PEM key for credentials (the
//! failing init pod is replaced, and the new one says the credentials are wrong); then fixed:
//! the first backup is uploaded, the tablets started from the mistaken spec are replaced and
//! restore it, a primary is elected and takes a row through vtgate. A third cluster names an
//! S3 endpoint that refuses connections, and is told so.
//!
//! The only fake is Google's OAuth token service ([`FakeGoogleOAuth`]): Vitess asks it for a
//! token before every session with the GCS store, and it cannot run here. The stores' tests run
//! one at a time (each is a whole cluster on a 2-core machine).
//!
//! Figures (backup sizes, upload and restore times) go to
//! `target/e2e-figures/real-backups-<store>.json`.
//! Without the node this test skips, except under `CI=true`, where it fails.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, LogParams};
use kube::{Client, ResourceExt};
use mysql_async::prelude::Queryable;
use vitess_operator_e2e::sql::{
    connect_when_serving, ids_on_tablet, missing_on_tablet, vtgate_address,
};
use vitess_operator_e2e::stores::gcs::{self, FakeGoogleOAuth, gcs_endpoint};
use vitess_operator_e2e::stores::{StoredObject, complete_backups, list_directory, s3};
use vitess_operator_e2e::{
    Operator, TestNamespace, client, condition_detail, dynamic, install_crds, is_ready, kubectl,
    kubectl_with_stdin, on_real_node, primary_of, real_node, real_node_name, wait_for,
    workspace_dir, write_figures,
};

const CLUSTER: &str = "example";
const SHARD: &str = "example-commerce-x-x-0f5afee6";
/// The Go operator's name of the shard's first-backup pod.
const INIT_POD: &str = "example-commerce-x-x-vtbackup-init-c6db73c9";
const KEY_PREFIX: &str = "e2e";
const APP_USER: &str = "app";
const TABLET_DB: &str = "vt_commerce";
const ROWS: u64 = 200;
/// From apply to a serving primary, the first backup included (a bound for a loaded machine).
const CONVERGE: Duration = Duration::from_secs(900);
/// Where `volume` locations live on the real node (this machine).
const VOLUME_ROOT: &str = "/tmp/e2e-backups";

/// One whole cluster at a time: the stores' tests take turns.
static ONE_CLUSTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Where a test's backups go, made ready for one test namespace.
enum Store {
    Gcs {
        bucket: String,
        oauth: FakeGoogleOAuth,
    },
    S3 {
        bucket: String,
    },
    Volume {
        dir: PathBuf,
    },
}

impl Store {
    /// A bucket (or directory) of `namespace`'s own in the store `kind` names.
    async fn new(kind: &str, namespace: &str) -> Result<Self> {
        let bucket = format!("vitess-{namespace}");
        Ok(match kind {
            "gcs" => {
                let oauth = FakeGoogleOAuth::start(&node_ip()?).await?;
                gcs::create_bucket(&bucket)
                    .await
                    .context("the GCS server of `e2e/cluster up` (component gcs) must run")?;
                Store::Gcs { bucket, oauth }
            }
            "s3" => {
                s3::create_bucket(&bucket)
                    .await
                    .context("the S3 server of `e2e/cluster up` (component s3) must run")?;
                Store::S3 { bucket }
            }
            _ => {
                // The tablets run as the vitess user (999): a hostPath is not chowned for them.
                let dir = PathBuf::from(VOLUME_ROOT).join(namespace);
                std::fs::create_dir_all(&dir)?;
                for path in [PathBuf::from(VOLUME_ROOT), dir.clone()] {
                    std::fs::set_permissions(
                        &path,
                        std::os::unix::fs::PermissionsExt::from_mode(0o777),
                    )?;
                }
                Store::Volume { dir }
            }
        })
    }

    /// The location, the Secret it reads, and the environment its clients need.
    fn location(
        &self,
    ) -> (
        serde_json::Value,
        Option<serde_json::Value>,
        serde_json::Value,
    ) {
        let secret = |key: &str, value: String| {
            serde_json::json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "backup-auth"},
                "stringData": {key: value},
            })
        };
        match self {
            Store::Gcs { bucket, oauth } => (
                serde_json::json!({"gcs": {
                    "bucket": bucket,
                    "keyPrefix": KEY_PREFIX,
                    "authSecret": {"name": "backup-auth", "key": "gcs_key.json"},
                }}),
                Some(secret("gcs_key.json", oauth.credentials_json())),
                serde_json::json!([{"name": "STORAGE_EMULATOR_HOST", "value": gcs_endpoint()}]),
            ),
            Store::S3 { bucket } => (
                serde_json::json!({"s3": {
                    "bucket": bucket,
                    "region": s3::REGION,
                    "endpoint": format!("http://{}", s3::s3_endpoint()),
                    "forcePathStyle": true,
                    "keyPrefix": KEY_PREFIX,
                    "authSecret": {"name": "backup-auth", "key": "credentials"},
                }}),
                Some(secret("credentials", s3::credentials_file())),
                serde_json::json!([]),
            ),
            Store::Volume { dir } => (
                serde_json::json!({"volume": {"hostPath": {
                    "path": dir.to_string_lossy(),
                    "type": "Directory",
                }}}),
                None,
                serde_json::json!([]),
            ),
        }
    }

    /// Where the shard `commerce/-` of the example keeps its backups in [`Store::list`]'s names.
    fn shard_dir(&self) -> String {
        match self {
            Store::Volume { .. } => format!("{CLUSTER}/commerce/-/"),
            _ => format!("{KEY_PREFIX}/{CLUSTER}/commerce/-/"),
        }
    }

    /// Everything the store holds of the cluster.
    async fn list(&self) -> Result<Vec<StoredObject>> {
        match self {
            Store::Gcs { bucket, .. } => gcs::list_objects(bucket, KEY_PREFIX).await,
            Store::S3 { bucket } => s3::list_objects(bucket, KEY_PREFIX).await,
            Store::Volume { dir } => list_directory(dir),
        }
    }

    fn describe(&self) -> String {
        match self {
            Store::Gcs { bucket, .. } => format!("gs://{bucket} (fake-gcs-server, GCS JSON API)"),
            Store::S3 { bucket } => format!("s3://{bucket} (gofakes3, S3 API)"),
            Store::Volume { dir } => format!("volume hostPath {}", dir.display()),
        }
    }
}

/// The real node's address (where the stores listen), from the GCS endpoint.
fn node_ip() -> Result<String> {
    gcs_endpoint()
        .rsplit_once(':')
        .map(|(ip, _)| ip.to_string())
        .context("E2E_GCS_ENDPOINT is not host:port")
}

#[tokio::test]
async fn backups_go_to_a_gcs_api_and_a_lost_replica_is_restored_from_them() -> Result<()> {
    backups_and_a_lost_replica("gcs").await
}

#[tokio::test]
async fn backups_go_to_an_s3_api_and_a_lost_replica_is_restored_from_them() -> Result<()> {
    backups_and_a_lost_replica("s3").await
}

#[tokio::test]
async fn backups_go_to_a_volume_and_a_lost_replica_is_restored_from_them() -> Result<()> {
    backups_and_a_lost_replica("volume").await
}

/// The whole story of the module's doc on the store `kind` (`gcs`, `s3`, `volume`).
async fn backups_and_a_lost_replica(kind: &str) -> Result<()> {
    let test = format!("backups_and_a_lost_replica({kind})");
    let client = client().await?;
    if real_node(&client, &test).await?.is_none() {
        return Ok(());
    }
    let _turn = ONE_CLUSTER.lock().await;
    install_crds().await?;
    let ns = TestNamespace::create(&client, &format!("backups-{kind}")).await?;
    let name = ns.name().to_string();
    let store = Store::new(kind, &name).await?;
    let dir = store.shard_dir();

    let mut operator = Operator::start_with_cluster_dns(
        "real-backups",
        &[
            "run",
            "--namespace",
            &name,
            "--metrics-address",
            "127.0.0.1:0",
        ],
    )?;
    let cluster_yaml = cluster_with_backups(&store)?;
    let applied = Instant::now();
    kubectl_with_stdin(&["-n", &name, "apply", "-f", "-"], Some(&cluster_yaml)).await?;

    // 1. The init pod uploads the first backup; nobody is elected before it has.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &name);
    let shards = dynamic(&client, &name, "VitessShard");
    init_pod_succeeds(&mut operator, &shards, &pods).await?;
    let uploaded_in = applied.elapsed();
    let first = complete_backups(&store.list().await?, &dir);
    ensure!(
        first.len() == 1,
        "after {INIT_POD} succeeded, {} should hold one backup with a MANIFEST under {dir}; it \
         holds {first:?}",
        store.describe()
    );
    let (first_backup, first_size) = first[0].clone();
    eprintln!("first backup {first_backup} ({first_size} bytes) in {uploaded_in:.0?} after apply");

    // 2. The tablets restore from it; the first primary is elected; rows are written.
    let primary = primary_elected(&mut operator, &shards).await?;
    restored_from(&pods, &tablet_pods(&client, &name).await?, &first_backup).await?;
    let vtgate = vtgate_address(&client, &name, CLUSTER).await?;
    let mut conn = connect_when_serving(&vtgate, APP_USER, "commerce", CONVERGE).await?;
    create_orders_table(&mut conn).await?;
    for id in 1..=ROWS {
        conn.exec_drop(
            "INSERT INTO corder (id, note) VALUES (?, ?)",
            (id, format!("order {id}")),
        )
        .await
        .with_context(|| format!("INSERT {id} through vtgate"))?;
    }
    let written: Vec<u64> = conn.query("SELECT id FROM corder ORDER BY id").await?;
    ensure!(
        written == (1..=ROWS).collect::<Vec<_>>(),
        "the primary has {} rows",
        written.len()
    );

    // 3. A VitessBackup request: one real BackupShard, a second backup in the store and in
    // the inventory.
    let backups = dynamic(&client, &name, "VitessBackup");
    let request = serde_json::json!({
        "apiVersion": "planetscale.com/v2",
        "kind": "VitessBackup",
        "metadata": {"name": "before-the-lost-disk"},
        "spec": {"keyspace": "commerce", "shard": "-"},
    });
    kubectl_with_stdin(
        &["-n", &name, "apply", "-f", "-"],
        Some(&request.to_string()),
    )
    .await?;
    let requested = Instant::now();
    let outcome = wait_for(
        "the VitessBackup request to finish",
        Duration::from_secs(600),
        async |seen: &mut String| {
            let backup = backups.get("before-the-lost-disk").await?;
            let complete = condition_detail(&backup, "Complete");
            *seen = format!("{complete:?}");
            Ok(complete.filter(|(_, reason, _)| {
                ["BackupComplete", "BackupFailed", "Interrupted"].contains(&reason.as_str())
            }))
        },
    )
    .await?;
    let backup_took = requested.elapsed();
    ensure!(
        outcome.0 == "True",
        "the backup request ended {outcome:?}, not complete"
    );
    let stored = store.list().await?;
    let after_request = complete_backups(&stored, &dir);
    ensure!(
        after_request.len() == 2 && after_request[0].0 == first_backup,
        "after the request {} should hold the first backup and one more under {dir}, each \
         with a MANIFEST; it holds {after_request:?}",
        store.describe()
    );
    let (latest_backup, latest_size) = after_request[1].clone();
    let inventory = wait_for(
        &format!("the inventory to list {latest_backup}"),
        Duration::from_secs(300),
        async |seen: &mut String| {
            let list = backups.list(&ListParams::default()).await?;
            let names: Vec<String> = list
                .items
                .iter()
                .filter_map(|b| b.data["status"]["storageName"].as_str().map(String::from))
                .collect();
            *seen = format!("{names:?}");
            // An inventory entry, not the request (which names the backup it made too).
            Ok(list.items.into_iter().find(|b| {
                b.data["spec"]["keyspace"].is_null()
                    && b.data["status"]["storageName"] == latest_backup.as_str()
            }))
        },
    )
    .await?;
    ensure!(
        inventory.data["status"]["startTime"].is_string(),
        "the inventory entry of {latest_backup} has no start time: {}",
        inventory.data["status"]
    );
    eprintln!(
        "BackupShard made {latest_backup} ({latest_size} bytes) in {backup_took:.0?}; \
         inventory entry {}",
        inventory.name_any()
    );
    // 3b. (GCS) A schedule, added as GitOps would add it: its Job runs vtbackup on the real
    // node, and one more backup is in the store. Then it is removed
    // again, so nothing backs up behind the next steps' counts.
    let (mut latest_backup, mut stored) = (latest_backup, stored);
    let mut scheduled = serde_json::Value::Null;
    if matches!(store, Store::Gcs { .. }) {
        let took = Instant::now();
        let with_schedule = cluster_with_backups_and(&store, true)?;
        kubectl_with_stdin(&["-n", &name, "apply", "-f", "-"], Some(&with_schedule)).await?;
        let jobs: Api<Job> = Api::namespaced(client.clone(), &name);
        let succeeded = wait_for(
            "a Job of the backup schedule to succeed",
            Duration::from_secs(300),
            async |seen: &mut String| {
                let list = jobs
                    .list(&ListParams::default().labels("planetscale.com/backup-schedule"))
                    .await?;
                *seen = list
                    .items
                    .iter()
                    .map(|j| format!("{} {:?}", j.name_any(), j.status))
                    .collect::<Vec<_>>()
                    .join("; ");
                Ok(list
                    .items
                    .into_iter()
                    .find(|j| j.status.as_ref().and_then(|s| s.succeeded).unwrap_or(0) > 0))
            },
        )
        .await;
        let job = match succeeded {
            Ok(job) => job,
            Err(err) => {
                // What vtbackup said, pod by pod.
                let mut logs = String::new();
                let selector = "planetscale.com/backup-schedule";
                for pod in pods
                    .list(&ListParams::default().labels(selector))
                    .await?
                    .items
                {
                    let params = LogParams {
                        container: Some("vtbackup".into()),
                        tail_lines: Some(40),
                        ..LogParams::default()
                    };
                    let log = pods
                        .logs(&pod.name_any(), &params)
                        .await
                        .unwrap_or_default();
                    logs.push_str(&format!("--- {} ---\n{log}\n", pod.name_any()));
                }
                return Err(err.context(logs));
            }
        };
        let job_pods = pods
            .list(&ListParams::default().labels(&format!("job-name={}", job.name_any())))
            .await?;
        ensure!(
            job_pods
                .items
                .iter()
                .all(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref())
                    == Some(real_node_name().as_str())),
            "the schedule's Job ran off the real node (or has no pod left): nothing really \
             backed up: {:?}",
            job_pods
                .items
                .iter()
                .map(|p| p.spec.as_ref().and_then(|s| s.node_name.clone()))
                .collect::<Vec<_>>()
        );
        ensure!(
            !job_pods.items.is_empty(),
            "the schedule's Job {} has no pod",
            job.name_any()
        );
        kubectl_with_stdin(&["-n", &name, "apply", "-f", "-"], Some(&cluster_yaml)).await?;
        stored = store.list().await?;
        let now = complete_backups(&stored, &dir);
        ensure!(
            now.len() == 3,
            "after the scheduled backup {} should hold three backups under {dir}; it holds {now:?}",
            store.describe()
        );
        latest_backup = now[2].0.clone();
        scheduled = serde_json::json!({
            "backup": latest_backup,
            "bytes": now[2].1,
            "apply_to_job_succeeded_s": took.elapsed().as_secs_f64(),
        });
        eprintln!("the schedule's Job {} made {latest_backup}", job.name_any());
    }

    // 4. A lost disk: the replica's pod and PVC go; the new tablet restores the latest backup.
    let replica = tablet_pods(&client, &name)
        .await?
        .into_iter()
        .find(|p| tablet_alias(p).as_deref() != Some(primary.as_str()))
        .context("no replica tablet pod")?;
    let replica_name = replica.name_any();
    let old_uid = replica.uid();
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &name);
    let old_claim_uid = claims.get(&replica_name).await?.uid();
    let lost = Instant::now();
    claims
        .delete(&replica_name, &DeleteParams::default())
        .await?;
    pods.delete(&replica_name, &DeleteParams::default()).await?;
    wait_for(
        &format!("a new pod {replica_name} on a new claim to be Ready"),
        Duration::from_secs(600),
        async |seen: &mut String| {
            operator.check_running()?;
            let pod = pods.get_opt(&replica_name).await?;
            let claim = claims.get_opt(&replica_name).await?;
            let new_pod = pod.as_ref().filter(|p| p.uid() != old_uid);
            let new_claim = claim.as_ref().filter(|c| c.uid() != old_claim_uid);
            *seen = format!(
                "new pod {}, ready {}, new claim {}",
                new_pod.is_some(),
                new_pod.is_some_and(is_ready),
                new_claim.is_some()
            );
            Ok((new_pod.is_some_and(is_ready) && new_claim.is_some()).then_some(()))
        },
    )
    .await?;
    let restored_in = lost.elapsed();
    let log = vttablet_log(&pods, &replica_name).await?;
    ensure!(
        log.contains(&format!("full:{latest_backup}")),
        "the new tablet {replica_name} did not restore the latest backup {latest_backup}"
    );
    let missing = missing_on_tablet(
        &name,
        &replica_name,
        TABLET_DB,
        "corder",
        &written,
        Duration::from_secs(120),
    )
    .await?;
    ensure!(
        missing.is_empty(),
        "the restored replica {replica_name} lacks {} of {ROWS} rows, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    let primary_pod = tablet_pods(&client, &name)
        .await?
        .into_iter()
        .find(|p| tablet_alias(p).as_deref() == Some(primary.as_str()))
        .context("no primary tablet pod")?;
    let on_primary = ids_on_tablet(&name, &primary_pod.name_any(), TABLET_DB, "corder").await?;
    let on_replica = ids_on_tablet(&name, &replica_name, TABLET_DB, "corder").await?;
    ensure!(
        on_primary == on_replica,
        "the restored replica has {} rows, the primary {}",
        on_replica.len(),
        on_primary.len()
    );
    eprintln!(
        "lost disk: {replica_name} restored {latest_backup} and was Ready in {restored_in:.0?}, \
         {} rows as on the primary",
        on_replica.len()
    );

    // Deleting the inventory and the cluster deletes nothing in storage.
    drop(conn);
    operator.stop().await?;
    backups
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await?;
    ns.delete_now(Duration::from_secs(600)).await?;
    let left = store.list().await?;
    ensure!(
        stored == left,
        "deleting the VitessBackups and the namespace changed the store: before {stored:?}, \
         after {left:?}"
    );
    if let Store::Gcs { oauth, .. } = &store {
        ensure!(
            oauth.tokens_issued() > 0,
            "no token was asked of the fake OAuth endpoint: did anything reach the store with \
             the mounted credentials?"
        );
    }
    if let Store::Volume { dir } = &store {
        std::fs::remove_dir_all(dir)?;
    }
    write_figures(
        &format!("real-backups-{kind}"),
        &serde_json::json!({
            "engine": "builtin",
            "store": store.describe(),
            "apply_to_first_backup_s": uploaded_in.as_secs_f64(),
            "first_backup_bytes": first_size,
            "backup_shard_s": backup_took.as_secs_f64(),
            "backup_bytes": latest_size,
            "rows": ROWS,
            "lost_disk_to_restored_ready_s": restored_in.as_secs_f64(),
            "scheduled_backup": scheduled,
        }),
    )?;
    Ok(())
}

/// A PEM private key, as a user pastes it where the JSON credentials file belongs.
const PASTED_KEY: &str =
    "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n";

#[tokio::test]
async fn backup_mistakes_are_reported_one_by_one_and_once_fixed_the_shard_comes_up_restored()
-> Result<()> {
    let test = "backup_mistakes_are_reported_one_by_one_and_once_fixed_the_shard_comes_up_restored";
    let client = client().await?;
    if real_node(&client, test).await?.is_none() {
        return Ok(());
    }
    // The whole test takes its turn with the stores' tests: in a CI run where its first steps
    // shared the 2 cores with a whole cluster of another test, the init pod of step 3 (a
    // pasted key for credentials) ran vtbackup for 900 s without failing; alone it fails at
    // once, as it did in earlier runs. The cause is not known yet.
    let _turn = ONE_CLUSTER.lock().await;
    install_crds().await?;
    let ns = TestNamespace::create(&client, "backup-mistakes").await?;
    let name = ns.name().to_string();
    let oauth = FakeGoogleOAuth::start(&node_ip()?).await?;
    let mut operator = start_operator("backup-mistakes", &name)?;
    // Never created: the store answers that it does not exist.
    let mut store = Store::Gcs {
        bucket: format!("missing-{name}"),
        oauth,
    };
    let yaml = cluster_with_backups(&store)?;

    // 1. Without the credentials' Secret, as a user who forgot it: the init pod cannot start,
    // and the shard says which Secret of which location is missing.
    let (secret, cluster): (Vec<&str>, Vec<&str>) = yaml.split("\n---\n").partition(|doc| {
        serde_json::from_str::<serde_json::Value>(doc)
            .is_ok_and(|d| d["kind"] == "Secret" && d["metadata"]["name"] == "backup-auth")
    });
    kubectl_with_stdin(
        &["-n", &name, "apply", "-f", "-"],
        Some(&cluster.join("\n---\n")),
    )
    .await?;
    let shards = dynamic(&client, &name, "VitessShard");
    let pods: Api<Pod> = Api::namespaced(client.clone(), &name);
    let forgotten = init_condition(
        &mut operator,
        &shards,
        &pods,
        "the backup Secret is missing",
        |(_, _, message)| message.contains("backup-auth"),
    )
    .await?;
    ensure!(
        forgotten.2.contains("does not exist") && forgotten.2.contains("gcs.authSecret"),
        "BackupInitialized should say the Secret of gcs.authSecret does not exist: {forgotten:?}"
    );
    eprintln!("missing Secret: {}", forgotten.2);
    ensure!(
        secret.len() == 1,
        "the cluster YAML has no backup-auth Secret"
    );
    kubectl_with_stdin(&["-n", &name, "apply", "-f", "-"], Some(secret[0])).await?;

    // 2. A bucket that does not exist: the init pod fails, the shard and an Event repeat what
    // the store said, no primary is elected onto an empty database, no volume is deleted.
    let (status, _, message) = init_condition(
        &mut operator,
        &shards,
        &pods,
        "its init pod fails on the bucket",
        |(_, reason, _)| reason == "InitPodFailing",
    )
    .await?;
    ensure!(
        status == "False",
        "BackupInitialized is {status}: {message}"
    );
    ensure!(
        message.contains("bucket doesn't exist") && message.contains(INIT_POD),
        "BackupInitialized should name the init pod and repeat what the store said about the \
         bucket: {message}"
    );
    let events = event_messages(&name, "BackupInitFailing").await?;
    ensure!(
        events.contains("bucket doesn't exist"),
        "no BackupInitFailing Event repeats the store's answer: {events:?}"
    );
    // A while later: still no primary, every tablet's volume still there.
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &name);
    let claim_uids = async || -> Result<Vec<String>> {
        Ok(claims
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .map(|c| c.uid().unwrap_or_default())
            .collect())
    };
    let before = claim_uids().await?;
    tokio::time::sleep(Duration::from_secs(20)).await;
    let shard = shards.get(SHARD).await?;
    ensure!(primary_of(&shard).is_none(), "a primary was elected later");
    let after = claim_uids().await?;
    ensure!(
        before.iter().all(|uid| after.contains(uid)),
        "volumes were deleted: before {before:?}, after {after:?}"
    );
    eprintln!("wrong bucket: {message}");

    // 3. The user fixes the bucket and, in the same apply, points the location at a Secret
    // holding a pasted PEM key instead of the credentials file: the failing init pod is
    // replaced, and the new one's failure names the credentials.
    let Store::Gcs { bucket, .. } = &mut store else {
        unreachable!("the store is GCS")
    };
    *bucket = format!("vitess-{name}");
    gcs::create_bucket(bucket)
        .await
        .context("the GCS server of `e2e/cluster up` (component gcs) must run")?;
    let fixed = cluster_with_backups(&store)?;
    let pasted = with_auth_secret(&fixed, "backup-auth-pasted", PASTED_KEY)?;
    kubectl_with_stdin(&["-n", &name, "apply", "-f", "-"], Some(&pasted)).await?;
    let (_, _, message) = init_condition(
        &mut operator,
        &shards,
        &pods,
        "its init pod fails on the credentials",
        |(_, reason, message)| reason == "InitPodFailing" && message.contains("credentials"),
    )
    .await?;
    let replaced = event_messages(&name, "BackupInitReplaced").await?;
    ensure!(
        replaced.contains(INIT_POD),
        "no BackupInitReplaced Event names {INIT_POD}: {replaced:?}"
    );
    ensure!(
        primary_of(&shards.get(SHARD).await?).is_none(),
        "a primary was elected with unusable credentials"
    );
    eprintln!("pasted key: {message}");

    // 4. The location fixed: the init pod is replaced and uploads the first backup; the
    // tablets, started from the mistaken spec, are replaced and restore from it; the first
    // primary is elected only after that, and rows go through vtgate.
    let stale: Vec<String> = tablet_pods(&client, &name)
        .await?
        .iter()
        .map(|p| p.uid().unwrap_or_default())
        .collect();
    let fixed_at = Instant::now();
    kubectl_with_stdin(&["-n", &name, "apply", "-f", "-"], Some(&fixed)).await?;
    init_pod_succeeds(&mut operator, &shards, &pods).await?;
    let uploaded_in = fixed_at.elapsed();
    let dir = store.shard_dir();
    let first = complete_backups(&store.list().await?, &dir);
    ensure!(
        first.len() == 1,
        "{} should hold one backup with a MANIFEST under {dir}; it holds {first:?}",
        store.describe()
    );
    let backup = first[0].0.clone();
    let primary = primary_elected(&mut operator, &shards).await?;
    let elected_in = fixed_at.elapsed();
    let tablets = tablet_pods(&client, &name).await?;
    for pod in &tablets {
        let uid = pod.uid().unwrap_or_default();
        ensure!(
            !stale.contains(&uid),
            "tablet pod {} was started from the mistaken spec and never replaced",
            pod.name_any()
        );
    }
    restored_from(&pods, &tablets, &backup).await?;
    let vtgate = vtgate_address(&client, &name, CLUSTER).await?;
    let mut conn = connect_when_serving(&vtgate, APP_USER, "commerce", CONVERGE).await?;
    create_orders_table(&mut conn).await?;
    conn.exec_drop(
        "INSERT INTO corder (id, note) VALUES (?, ?)",
        (1, "after the mistakes"),
    )
    .await
    .context("INSERT through vtgate")?;
    let rows: Vec<u64> = conn.query("SELECT id FROM corder").await?;
    ensure!(rows == vec![1], "the primary has rows {rows:?}, not [1]");
    eprintln!(
        "fixed: {backup} uploaded {uploaded_in:.0?} and primary {primary} elected \
         {elected_in:.0?} after the fix"
    );
    write_figures(
        "real-backups-mistakes",
        &serde_json::json!({
            "fix_to_first_backup_s": uploaded_in.as_secs_f64(),
            "fix_to_primary_s": elected_in.as_secs_f64(),
            "tablets_replaced": tablets.len(),
        }),
    )?;
    drop(conn);
    operator.stop().await?;
    ns.delete_now(Duration::from_secs(600)).await?;
    Ok(())
}

#[tokio::test]
async fn an_unreachable_s3_endpoint_is_reported_and_no_primary_is_elected() -> Result<()> {
    let test = "an_unreachable_s3_endpoint_is_reported_and_no_primary_is_elected";
    let client = client().await?;
    if real_node(&client, test).await?.is_none() {
        return Ok(());
    }
    install_crds().await?;
    let ns = TestNamespace::create(&client, "s3-refused").await?;
    let name = ns.name().to_string();
    let mut operator = start_operator("s3-refused", &name)?;
    let store = Store::S3 {
        bucket: format!("vitess-{name}"),
    };
    // Port 1 of the node: nothing listens, every connection is refused.
    let refused = format!("http://{}:1", node_ip()?);
    let yaml = edit_clusters(&cluster_with_backups(&store)?, |spec| {
        spec["backup"]["locations"][0]["s3"]["endpoint"] = refused.clone().into();
        Ok(())
    })?;
    kubectl_with_stdin(&["-n", &name, "apply", "-f", "-"], Some(&yaml)).await?;
    let shards = dynamic(&client, &name, "VitessShard");
    let pods: Api<Pod> = Api::namespaced(client.clone(), &name);
    let (status, _, message) = init_condition(
        &mut operator,
        &shards,
        &pods,
        "its init pod fails on the endpoint",
        |(_, reason, _)| reason == "InitPodFailing",
    )
    .await?;
    ensure!(
        status == "False" && message.contains("connection refused") && message.contains(INIT_POD),
        "BackupInitialized should name the init pod and say the endpoint refused it: {message}"
    );
    let events = event_messages(&name, "BackupInitFailing").await?;
    ensure!(
        events.contains("connection refused"),
        "no BackupInitFailing Event says the endpoint refused the connection: {events:?}"
    );
    ensure!(
        primary_of(&shards.get(SHARD).await?).is_none(),
        "a primary was elected although no backup could be uploaded"
    );
    eprintln!("refused S3 endpoint: {message}");
    operator.stop().await?;
    ns.delete_now(Duration::from_secs(600)).await?;
    Ok(())
}

/// The operator, watching only `namespace`, with the cluster DNS its vtctld dials through.
fn start_operator(log: &str, namespace: &str) -> Result<Operator> {
    Operator::start_with_cluster_dns(
        log,
        &[
            "run",
            "--namespace",
            namespace,
            "--metrics-address",
            "127.0.0.1:0",
        ],
    )
}

/// Waits for the shard's `vtbackup-init` pod to succeed; fails if the shard reports a primary
/// before it has (read before the pod: a primary seen while the pod had not succeeded was
/// elected before the first backup).
async fn init_pod_succeeds(
    operator: &mut Operator,
    shards: &Api<DynamicObject>,
    pods: &Api<Pod>,
) -> Result<()> {
    let mut elected_early = None;
    wait_for(
        &format!(
            "vtbackup-init pod {INIT_POD} to succeed (operator log: {})",
            operator.log_path().display()
        ),
        CONVERGE,
        async |seen: &mut String| {
            operator.check_running()?;
            let primary = shards.get_opt(SHARD).await?.as_ref().and_then(primary_of);
            let pod = pods.get_opt(INIT_POD).await?;
            let phase = pod
                .as_ref()
                .and_then(|p| p.status.as_ref()?.phase.clone())
                .unwrap_or_default();
            if let Some(primary) = primary.filter(|_| phase != "Succeeded") {
                elected_early.get_or_insert(primary);
            }
            *seen = pod.as_ref().map(describe_pod).unwrap_or_default();
            Ok((phase == "Succeeded").then_some(()))
        },
    )
    .await?;
    match elected_early {
        Some(primary) => {
            anyhow::bail!(
                "primary {primary} was elected before {INIT_POD} uploaded the first backup"
            )
        }
        None => Ok(()),
    }
}

/// Waits for the shard to report its primary, and returns it.
async fn primary_elected(operator: &mut Operator, shards: &Api<DynamicObject>) -> Result<String> {
    wait_for(
        &format!("VitessShard {SHARD} to report a primary"),
        CONVERGE,
        async |seen: &mut String| {
            operator.check_running()?;
            let shard = shards.get(SHARD).await?;
            *seen = format!("{}", shard.data["status"]);
            Ok(primary_of(&shard))
        },
    )
    .await
}

/// Waits until the shard's `BackupInitialized` (status, reason, message) satisfies `done`;
/// no primary may be elected meanwhile. On a timeout the init pod's state is in the error.
async fn init_condition(
    operator: &mut Operator,
    shards: &Api<DynamicObject>,
    pods: &Api<Pod>,
    what: &str,
    done: impl Fn(&(String, String, String)) -> bool,
) -> Result<(String, String, String)> {
    let mut elected = None;
    let condition = wait_for(
        &format!(
            "VitessShard {SHARD} to say {what} (operator log: {})",
            operator.log_path().display()
        ),
        CONVERGE,
        async |seen: &mut String| {
            operator.check_running()?;
            let shard = shards.get(SHARD).await?;
            if let Some(primary) = primary_of(&shard) {
                elected.get_or_insert(primary);
            }
            let initialized = condition_detail(&shard, "BackupInitialized");
            let pod = pods.get_opt(INIT_POD).await?;
            *seen = format!(
                "{initialized:?}; init pod: {}",
                pod.as_ref().map(describe_pod).unwrap_or_default()
            );
            Ok(initialized.filter(|c| done(c)))
        },
    )
    .await;
    if let Err(timeout) = condition {
        let log = pods
            .logs(
                INIT_POD,
                &LogParams {
                    container: Some("vtbackup".into()),
                    tail_lines: Some(20),
                    ..LogParams::default()
                },
            )
            .await
            .unwrap_or_else(|e| format!("(cannot be read: {e})"));
        return Err(timeout.context(format!("the end of {INIT_POD}'s vtbackup log:\n{log}")));
    }
    if let Some(primary) = elected {
        anyhow::bail!("primary {primary} was elected although no backup could be uploaded");
    }
    condition
}

/// A pod's uid, phase, deletion and containers' states, for a message.
fn describe_pod(pod: &Pod) -> String {
    let status = pod.status.as_ref();
    let containers: Vec<String> = status
        .into_iter()
        .flat_map(|s| {
            let init = s.init_container_statuses.iter().flatten();
            init.chain(s.container_statuses.iter().flatten())
        })
        .map(|c| {
            format!(
                "{} restarts {} state {:?}",
                c.name,
                c.restart_count,
                serde_json::to_string(&c.state).unwrap_or_default()
            )
        })
        .collect();
    format!(
        "uid {} phase {:?} deleting {} [{}]",
        pod.uid().unwrap_or_default(),
        status.and_then(|s| s.phase.as_deref()),
        pod.metadata.deletion_timestamp.is_some(),
        containers.join("; ")
    )
}

/// The messages of the namespace's Events with `reason`.
async fn event_messages(namespace: &str, reason: &str) -> Result<String> {
    kubectl(&[
        "-n",
        namespace,
        "get",
        "events",
        "--field-selector",
        &format!("reason={reason}"),
        "-o",
        "jsonpath={.items[*].message}",
    ])
    .await
}

/// `yaml` (JSON documents joined by `---`) with `edit` applied to the spec of each
/// VitessCluster in it.
fn edit_clusters(
    yaml: &str,
    mut edit: impl FnMut(&mut serde_json::Value) -> Result<()>,
) -> Result<String> {
    let docs: Vec<serde_json::Value> = yaml
        .split("\n---\n")
        .map(|doc| {
            let mut doc: serde_json::Value = serde_json::from_str(doc)?;
            if doc["kind"] == "VitessCluster" {
                edit(&mut doc["spec"])?;
            }
            Ok(doc)
        })
        .collect::<Result<_>>()?;
    Ok(docs
        .iter()
        .map(serde_json::Value::to_string)
        .collect::<Vec<_>>()
        .join("\n---\n"))
}

/// `yaml` whose GCS location reads a new Secret `secret`, holding `content` under the same
/// key; the Secret comes first, so it exists when the pods that mount it are made.
fn with_auth_secret(yaml: &str, secret: &str, content: &str) -> Result<String> {
    let yaml = edit_clusters(yaml, |spec| {
        spec["backup"]["locations"][0]["gcs"]["authSecret"]["name"] = secret.into();
        Ok(())
    })?;
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": secret},
        "stringData": {"gcs_key.json": content},
    });
    Ok(format!("{doc}\n---\n{yaml}"))
}

/// The example cluster on the real node, backing up to `store`.
fn cluster_with_backups(store: &Store) -> Result<String> {
    cluster_with_backups_and(store, false)
}

/// [`cluster_with_backups`], with a schedule that backs up `commerce/-` every minute when
/// `schedule`, its pods placed on the real node as vtctld's are.
fn cluster_with_backups_and(store: &Store, schedule: bool) -> Result<String> {
    let example = std::fs::read_to_string(workspace_dir().join("examples/initial-cluster.yaml"))?;
    let (location, secret, env) = store.location();
    let yaml = edit_clusters(&on_real_node(&example)?, |spec| {
        spec["backup"] = serde_json::json!({"engine": "builtin", "locations": [location]});
        if schedule {
            spec["backup"]["schedules"] = serde_json::json!([{
                "name": "every-minute",
                "schedule": "* * * * *",
                "jobTimeoutMinute": 5,
                "backupMethod": "vtbackup",
                "strategies": [{"name": "BackupShard", "keyspace": "commerce", "shard": "-"}],
                "affinity": spec["vitessDashboard"]["affinity"].clone(),
            }]);
        }
        if env.as_array().is_some_and(|e| !e.is_empty()) {
            spec["vitessDashboard"]["extraEnv"] = env.clone();
            let pool = spec
                .pointer_mut("/keyspaces/0/partitionings/0/equal/shardTemplate/tabletPools/0")
                .context("the example has no tablet pool")?;
            pool["extraEnv"] = env.clone();
        }
        Ok(())
    })?;
    Ok(match secret {
        Some(secret) => format!("{yaml}\n---\n{secret}"),
        None => yaml,
    })
}

async fn tablet_pods(client: &Client, ns: &str) -> Result<Vec<Pod>> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    Ok(pods
        .list(&ListParams::default().labels("planetscale.com/component=vttablet"))
        .await?
        .items)
}

/// `zone1-0123456789` of a tablet pod.
fn tablet_alias(pod: &Pod) -> Option<String> {
    let labels = pod.labels();
    let uid: u32 = labels.get("planetscale.com/tablet-uid")?.parse().ok()?;
    Some(format!("{}-{uid:010}", labels.get("planetscale.com/cell")?))
}

/// Fails unless each of `tablets` restored `backup` (its vttablet log names `full:<backup>`).
async fn restored_from(pods: &Api<Pod>, tablets: &[Pod], backup: &str) -> Result<()> {
    for pod in tablets {
        let log = vttablet_log(pods, &pod.name_any()).await?;
        ensure!(
            log.contains(&format!("full:{backup}")),
            "tablet pod {} did not restore {backup}; its vttablet log has no `full:{backup}`",
            pod.name_any()
        );
    }
    Ok(())
}

/// The application's table, made through vtgate.
async fn create_orders_table(conn: &mut mysql_async::Conn) -> Result<()> {
    conn.query_drop("CREATE TABLE corder (id BIGINT NOT NULL PRIMARY KEY, note VARCHAR(64))")
        .await
        .context("CREATE TABLE through vtgate")
}

/// The vttablet container's log of `pod`, from the real node's kubelet.
async fn vttablet_log(pods: &Api<Pod>, pod: &str) -> Result<String> {
    pods.logs(
        pod,
        &LogParams {
            container: Some("vttablet".into()),
            ..LogParams::default()
        },
    )
    .await
    .with_context(|| format!("reading the vttablet log of {pod}"))
}
