//! Scheduled backups on the local control plane: a schedule in `spec.backup.schedules` makes
//! a VitessBackupSchedule (the Go operator's name, owned by the cluster), whose controller
//! starts one Job per shard at each due time, named and labelled as the Go operator's, whose
//! pod runs `vtctldclient --server=<vtctld Service> BackupShard commerce/-` (KWOK plays the
//! pod, so nothing really calls vtctld: `real_backups.rs` runs one on the real node); the
//! status says what ran and what is next. A schedule a user writes, suspended past more runs
//! than its `allowedMissedRun`, starts no stale backup when resumed and says so. Removing the
//! schedule from the spec deletes its VitessBackupSchedule, and the garbage collector its
//! Jobs.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use vitess_operator::api::VitessBackupSchedule;
use vitess_operator::domain::names;
use vitess_operator_e2e::{apply_yaml, wait_for, with_operator};

/// A run is due at the first minute boundary after the schedule exists (at most 60 s away);
/// the controller wakes for it a second later; then the Job controller makes the pod.
const RUN_TIMEOUT: Duration = Duration::from_secs(100);
const TIMEOUT: Duration = Duration::from_secs(60);
const SCHEDULE: &str = "every-minute";

fn cluster_yaml(with_schedule: bool) -> String {
    let schedules = if with_schedule {
        format!(
            r#"
    schedules:
    - name: {SCHEDULE}
      schedule: "* * * * *"
      backupMethod: vtctldclient
      successfulJobsHistoryLimit: 2
      jobTimeoutMinute: 5
      strategies:
      - name: BackupShard
        keyspace: commerce
        shard: "-"
        extraFlags: {{allow_primary: "true"}}"#
        )
    } else {
        String::new()
    };
    format!(
        r#"apiVersion: v1
kind: Secret
metadata:
  name: example-cluster-config
stringData:
  init_db.sql: "SELECT 1;"
---
apiVersion: planetscale.com/v2
kind: VitessCluster
metadata:
  name: example
spec:
  images:
    vtctld: vitess/lite:v24.0.3
    vtgate: vitess/lite:v24.0.3
    vttablet: vitess/lite:v24.0.3
    mysqld:
      mysql80Compatible: vitess/lite:v24.0.3
  backup:
    locations:
    - gcs:
        bucket: my-vitess-backup-bucket{schedules}
  vitessDashboard:
    cells: [zone1]
    replicas: 1
  cells:
  - name: zone1
    gateway: {{replicas: 1}}
  keyspaces:
  - name: commerce
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
            replicas: 1
            vttablet: {{}}
            mysqld: {{}}
            dataVolumeClaimTemplate:
              accessModes: [ReadWriteOnce]
              resources: {{requests: {{storage: 1Gi}}}}
"#
    )
}

/// The Jobs of VitessBackupSchedule `owner` (by controller owner reference).
async fn jobs_of(client: &Client, ns: &str, owner: &str) -> Result<Vec<Job>> {
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    Ok(jobs
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|j| {
            j.owner_references().iter().any(|r| {
                r.kind == "VitessBackupSchedule" && r.name == owner && r.controller == Some(true)
            })
        })
        .collect())
}

/// A schedule a user writes for cluster `example`, suspended, with no missed run allowed.
fn standalone_yaml(suspend: bool) -> String {
    format!(
        r#"apiVersion: planetscale.com/v2
kind: VitessBackupSchedule
metadata:
  name: by-hand
spec:
  cluster: example
  name: by-hand
  schedule: "* * * * *"
  suspend: {suspend}
  allowedMissedRun: 0
  resources: {{}}
  strategies:
  - name: BackupShard
    keyspace: commerce
    shard: "-"
"#
    )
}

#[tokio::test]
async fn a_schedule_starts_a_job_per_shard_and_due_time_that_runs_backup_shard() -> Result<()> {
    with_operator("schedules", None, async |client, ns, operator| {
        // Written first, suspended, so that runs pass while the rest goes on.
        apply_yaml(client, ns, &standalone_yaml(true)).await?;
        apply_yaml(client, ns, &cluster_yaml(true)).await?;
        let name = names::cluster::backup_schedule("example", SCHEDULE);
        let schedules: Api<VitessBackupSchedule> = Api::namespaced(client.clone(), ns);
        let schedule = wait_for("the VitessBackupSchedule", TIMEOUT, async |seen| {
            let found = schedules.get_opt(&name).await?;
            *seen = format!("{:?}", found.as_ref().map(|c| c.name_any()));
            Ok(found)
        })
        .await?;
        let labels = schedule.labels();
        ensure!(
            labels.get("planetscale.com/cluster").map(String::as_str) == Some("example"),
            "labels: {labels:?}"
        );
        ensure!(
            schedule
                .owner_references()
                .iter()
                .any(|r| r.kind == "VitessCluster"
                    && r.name == "example"
                    && r.controller == Some(true)),
            "owner: {:?}",
            schedule.owner_references()
        );
        ensure!(schedule.spec.cluster == "example" && schedule.spec.template.name == SCHEDULE);
        ensure!(schedule.spec.template.successful_jobs_history_limit == Some(2));

        // The operator starts the Job at the next minute; the Job controller makes its pod.
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        let (job, pod) = wait_for(
            "a Job of the schedule and its pod",
            RUN_TIMEOUT,
            async |seen| {
                operator.check_running()?;
                let jobs = jobs_of(client, ns, &name).await?;
                *seen = format!(
                    "jobs {:?}",
                    jobs.iter().map(|j| j.name_any()).collect::<Vec<_>>()
                );
                let Some(job) = jobs.into_iter().next() else {
                    return Ok(None);
                };
                let selector = format!("job-name={}", job.name_any());
                let pod = pods
                    .list(&ListParams::default().labels(&selector))
                    .await?
                    .items
                    .into_iter()
                    .next();
                Ok(pod.map(|pod| (job, pod)))
            },
        )
        .await?;
        let due: Timestamp = job
            .annotations()
            .get("planetscale.com/backup-scheduled-at")
            .context("the Job has no planetscale.com/backup-scheduled-at")?
            .parse()?;
        ensure!(
            due.as_second() % 60 == 0,
            "due at {due}, not a whole minute"
        );
        ensure!(
            job.name_any() == names::cluster::backup_job(&name, "commerce", "x-x", due.as_second()),
            "Job name {}",
            job.name_any()
        );
        let want: BTreeMap<&str, &str> = [
            ("planetscale.com/backup-schedule", name.as_str()),
            ("planetscale.com/cluster", "example"),
            ("planetscale.com/keyspace", "commerce"),
            ("planetscale.com/shard", "x-x"),
            ("planetscale.com/backup-method", "vtctldclient"),
        ]
        .into();
        for (key, value) in &want {
            ensure!(
                job.labels().get(*key).map(String::as_str) == Some(*value),
                "Job labels {:?} lack {key}={value}",
                job.labels()
            );
        }
        let job_spec = job.spec.clone().unwrap_or_default();
        ensure!(
            job_spec.active_deadline_seconds == Some(300),
            "{job_spec:?}"
        );
        let containers = pod.spec.clone().unwrap_or_default().containers;
        ensure!(containers.len() == 1, "{containers:?}");
        let mut line = containers[0].command.clone().unwrap_or_default();
        line.extend(containers[0].args.clone().unwrap_or_default());
        let server = format!(
            "--server={}.{ns}.svc:15999",
            names::cluster::vtctld_service("example")
        );
        let want_line = [
            "/vt/bin/vtctldclient",
            server.as_str(),
            "BackupShard",
            "--allow-primary=true",
            "commerce/-",
        ];
        ensure!(line == want_line, "pod {} runs {line:?}", pod.name_any());
        ensure!(
            containers[0].image.as_deref() == Some("vitess/lite:v24.0.3"),
            "{:?}",
            containers[0].image
        );
        eprintln!(
            "job {} pod {} runs {line:?}",
            job.name_any(),
            pod.name_any()
        );

        // The status: what ran, what is next, the running Job.
        let status = wait_for("the schedule's status", TIMEOUT, async |seen| {
            let status = schedules.get(&name).await?.status.unwrap_or_default();
            *seen = format!("{status:?}");
            Ok(status
                .last_scheduled_times
                .get("BackupShard")
                .is_some_and(|t| t.0 == due)
                .then_some(status))
        })
        .await?;
        let next = status
            .next_scheduled_times
            .get("BackupShard")
            .context("no nextScheduledTimes.BackupShard")?;
        ensure!(
            next.0.as_second() >= due.as_second() + 60,
            "next {} after due {due}",
            next.0
        );
        ensure!(status.last_scheduled_time.as_ref().map(|t| t.0) == Some(due));
        // `active` lists the Job while it runs, and no more once it ended (KWOK may end it).
        let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
        let job_name = job.name_any();
        let state = wait_for("status.active to follow the Job", TIMEOUT, async |seen| {
            let now = jobs.get(&job_name).await?;
            let ended = now
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| {
                    c.iter().any(|c| {
                        (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True"
                    })
                });
            let status = schedules.get(&name).await?.status.unwrap_or_default();
            let listed = status
                .active
                .iter()
                .any(|r| r.name.as_deref() == Some(job_name.as_str()));
            *seen = format!("Job ended {ended}, listed as active {listed}");
            Ok((ended != listed).then_some(seen.clone()))
        })
        .await?;
        eprintln!("{state}");

        // The schedule written by hand: resumed after more runs than allowedMissedRun (0)
        // passed since it was made, it starts no Job for them and says so.
        let by_hand = schedules.get("by-hand").await?;
        let made = by_hand
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0)
            .context("no creationTimestamp")?;
        let second_boundary = (made.as_second() / 60 + 2) * 60;
        let wait = second_boundary + 1 - Timestamp::now().as_second();
        if wait > 0 {
            tokio::time::sleep(Duration::from_secs(u64::try_from(wait)?)).await;
        }
        schedules
            .patch(
                "by-hand",
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"spec": {"suspend": false}})),
            )
            .await?;
        let events: Api<Event> = Api::namespaced(client.clone(), ns);
        let (skipped, note) = wait_for(
            "the resumed schedule to skip its missed runs",
            TIMEOUT,
            async |seen| {
                let status = schedules.get("by-hand").await?.status.unwrap_or_default();
                let note = events
                    .list(&ListParams::default())
                    .await?
                    .items
                    .into_iter()
                    .filter(|e| {
                        e.reason.as_deref() == Some("TooManyMissedRuns")
                            && e.regarding.as_ref().and_then(|r| r.name.as_deref())
                                == Some("by-hand")
                    })
                    .find_map(|e| e.note);
                *seen = format!("status {status:?}, event {note:?}");
                Ok(status
                    .last_skipped_times
                    .get("BackupShard")
                    .map(|t| t.0)
                    .zip(note))
            },
        )
        .await?;
        ensure!(
            skipped.as_second() >= second_boundary,
            "skipped the run due at {skipped}, before the second boundary after creation"
        );
        ensure!(
            note.contains("more than allowedMissedRun (0)"),
            "event: {note}"
        );
        let stale: Vec<String> = jobs_of(client, ns, "by-hand")
            .await?
            .iter()
            .map(|j| j.name_any())
            .collect();
        ensure!(stale.is_empty(), "stale runs started: {stale:?}");
        eprintln!("resumed schedule: {note}");

        // Removing the schedule prunes its VitessBackupSchedule; its Jobs go with it.
        apply_yaml(client, ns, &cluster_yaml(false)).await?;
        wait_for(
            "the schedule and its Jobs to be gone",
            TIMEOUT,
            async |seen| {
                let schedule = schedules.get_opt(&name).await?;
                let jobs = jobs_of(client, ns, &name).await?;
                *seen = format!(
                    "schedule {:?}, jobs {:?}",
                    schedule.map(|c| c.name_any()),
                    jobs.iter().map(|j| j.name_any()).collect::<Vec<_>>()
                );
                Ok((seen.starts_with("schedule None") && jobs.is_empty()).then_some(()))
            },
        )
        .await?;
        // The one written by hand is the user's: the cluster leaves it.
        ensure!(schedules.get_opt("by-hand").await?.is_some());
        Ok(())
    })
    .await
}
