//! Scheduled backups on the local control plane: a schedule in `spec.backup.schedules` makes
//! a CronJob; the real kube-controller-manager's CronJob controller makes a Job from it at the
//! next minute, whose pod runs `vtctldclient --server=<vtctld Service> BackupShard commerce/-`
//! (KWOK plays the pod, so nothing really calls vtctld); removing the schedule from the spec
//! deletes the CronJob, and the garbage collector its Jobs.

use std::time::Duration;

use anyhow::{Result, ensure};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use vitess_operator::domain::names;
use vitess_operator_e2e::{apply_yaml, wait_for, with_operator};

/// The CronJob controller starts a run at the first minute boundary after the CronJob exists
/// (at most 60 s away) and checks every 10 s or so; then the Job controller makes the pod.
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

/// The Jobs of CronJob `owner` (by controller owner reference).
async fn jobs_of(client: &Client, ns: &str, owner: &str) -> Result<Vec<Job>> {
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    Ok(jobs
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|j| {
            j.owner_references()
                .iter()
                .any(|r| r.kind == "CronJob" && r.name == owner && r.controller == Some(true))
        })
        .collect())
}

#[tokio::test]
async fn a_schedule_makes_a_cron_job_whose_job_runs_backup_shard() -> Result<()> {
    with_operator("schedules", None, async |client, ns, _operator| {
        apply_yaml(client, ns, &cluster_yaml(true)).await?;
        let name = names::cluster::backup_schedule("example", SCHEDULE);
        let cron_jobs: Api<CronJob> = Api::namespaced(client.clone(), ns);
        let cron_job = wait_for("the schedule's CronJob", TIMEOUT, async |seen| {
            let found = cron_jobs.get_opt(&name).await?;
            *seen = format!("{:?}", found.as_ref().map(|c| c.name_any()));
            Ok(found)
        })
        .await?;
        let labels = cron_job.labels();
        ensure!(
            labels.get("planetscale.com/component").map(String::as_str)
                == Some("vtbackup-schedule")
                && labels.get("planetscale.com/cluster").map(String::as_str) == Some("example")
                && labels
                    .get("planetscale.com/backup-schedule")
                    .map(String::as_str)
                    == Some(SCHEDULE),
            "labels: {labels:?}"
        );
        ensure!(
            cron_job
                .owner_references()
                .iter()
                .any(|r| r.kind == "VitessCluster"
                    && r.name == "example"
                    && r.controller == Some(true)),
            "owner: {:?}",
            cron_job.owner_references()
        );
        let spec = cron_job.spec.clone().unwrap_or_default();
        ensure!(spec.schedule == "* * * * *" && spec.suspend == Some(false));
        ensure!(spec.concurrency_policy.as_deref() == Some("Forbid"));
        ensure!(spec.successful_jobs_history_limit == Some(2));

        // The real CronJob controller runs it; the Job controller makes its pod.
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        let (job, pod) = wait_for(
            "a Job of the CronJob and its pod",
            RUN_TIMEOUT,
            async |seen| {
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
        let want = [
            "/vt/bin/vtctldclient",
            server.as_str(),
            "BackupShard",
            "--allow-primary=true",
            "commerce/-",
        ];
        ensure!(line == want, "pod {} runs {line:?}", pod.name_any());
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

        // Removing the schedule prunes the CronJob; its Jobs go with it.
        apply_yaml(client, ns, &cluster_yaml(false)).await?;
        wait_for(
            "the CronJob and its Jobs to be gone",
            TIMEOUT,
            async |seen| {
                let cron_job = cron_jobs.get_opt(&name).await?;
                let jobs = jobs_of(client, ns, &name).await?;
                *seen = format!(
                    "cronjob {:?}, jobs {:?}",
                    cron_job.map(|c| c.name_any()),
                    jobs.iter().map(|j| j.name_any()).collect::<Vec<_>>()
                );
                Ok((seen.starts_with("cronjob None") && jobs.is_empty()).then_some(()))
            },
        )
        .await?;
        Ok(())
    })
    .await
}
