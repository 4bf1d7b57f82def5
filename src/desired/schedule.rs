//! From a VitessCluster to its scheduled backups (`spec.backup.schedules[]`): one batch/v1
//! CronJob per schedule, whose Jobs ask the cluster's vtctld for `BackupShard` of every shard
//! the schedule's strategies cover, with `vtctldclient` from the cluster's vtctld image.
//!
//! The Go operator runs schedules from a kind of its own (VitessBackupSchedule) and a
//! controller that creates the Jobs itself; here Kubernetes' own CronJob controller does the
//! timing, so history limits, `suspend`, `concurrencyPolicy` and `startingDeadlineSeconds`
//! mean exactly what they mean on a CronJob. `allowedMissedRun` has no CronJob equivalent and
//! is ignored (the field's doc says why).
//!
//! Long because its tests sit beside the builder.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, JobSpec, JobTemplateSpec};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec, Volume, VolumeMount};
use kube::api::ObjectMeta;

use super::cluster::{children, resolved_images};
use super::flags::FlagSet;
use super::{Error, cluster_name, defaults, keyspace, meta, podspec};
use crate::api::cluster::{
    BackupScope, ConcurrencyPolicy, VitessBackupScheduleTemplate, VitessCluster, VtctldClientTls,
};
use crate::api::shared::{Flags, SecretSource};
use crate::domain::keyrange::KeyRange;
use crate::{domain::labels, domain::names};

/// Minutes a backup Job may run when the schedule does not say (`jobTimeoutMinute`).
pub const DEFAULT_JOB_TIMEOUT_MINUTES: i32 = 10;
/// Retries of a failed backup step within one Job. The pod restarts only the step that failed
/// (`restartPolicy: OnFailure`), so shards already backed up in this run are not backed up
/// again; each retry of a step that failed after vtctld started it may leave one more backup
/// behind, which is cheaper than a shard without one. `activeDeadlineSeconds` bounds it all.
pub const BACKOFF_LIMIT: i32 = 3;
/// Where vtctldclient is in the vitess/lite image.
const VTCTLDCLIENT: &str = "/vt/bin/vtctldclient";

/// One shard a schedule backs up, with the BackupShard flags of the strategy that named it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub keyspace: String,
    /// Vitess form (`-`, `-80`).
    pub shard: String,
    pub extra_flags: Option<Flags>,
}

/// The shards `schedule` backs up, in the order of its strategies: scope `Shard` names one,
/// `Keyspace` stands for every shard the keyspace's partitionings make, `Cluster` for every
/// shard of every keyspace of the spec (in spec order, each keyspace's shards in key-range
/// order) except keyspaces a schedule backs up with scope `Keyspace`. A shard named twice is backed up once, with the flags of the first strategy that
/// names it. Shards come from the spec (as the VitessShards are built), not from Vitess.
pub fn targets(
    cluster: &VitessCluster,
    schedule: &VitessBackupScheduleTemplate,
) -> Result<Vec<Target>, Error> {
    let mut shards: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for ks in children(cluster)?.keyspaces {
        let name = ks.spec.template.name.clone();
        let names = keyspace::shards(&ks)?
            .into_iter()
            .map(|s| s.spec.name)
            .collect();
        order.push(name.clone());
        shards.insert(name, names);
    }
    let of_keyspace = |ks: &str| shards.get(ks).cloned().unwrap_or_default();
    // As in the Go operator, a keyspace that a schedule in force (this one or another of the
    // cluster's, not suspended) backs up with scope Keyspace is left out of scope Cluster: a
    // keyspace with a schedule of its own is not backed up twice.
    let excluded: BTreeSet<&str> = cluster
        .spec
        .backup
        .iter()
        .flat_map(|b| b.schedules.iter())
        .filter(|s| s.suspend != Some(true))
        .flat_map(|s| s.strategies.iter())
        .filter(|t| t.scope == Some(BackupScope::Keyspace) && !t.keyspace.is_empty())
        .map(|t| t.keyspace.as_str())
        .collect();
    let mut out: Vec<Target> = Vec::new();
    for strategy in &schedule.strategies {
        let pairs: Vec<(String, String)> = match strategy.scope.unwrap_or_default() {
            BackupScope::Shard => vec![(strategy.keyspace.clone(), strategy.shard.clone())],
            BackupScope::Keyspace => of_keyspace(&strategy.keyspace)
                .into_iter()
                .map(|s| (strategy.keyspace.clone(), s))
                .collect(),
            BackupScope::Cluster => order
                .iter()
                .filter(|ks| !excluded.contains(ks.as_str()))
                .flat_map(|ks| of_keyspace(ks).into_iter().map(|s| (ks.clone(), s)))
                .collect(),
        };
        for (keyspace, shard) in pairs {
            if !out
                .iter()
                .any(|t| t.keyspace == keyspace && t.shard == shard)
            {
                out.push(Target {
                    keyspace,
                    shard,
                    extra_flags: strategy.extra_flags.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// One CronJob per schedule of `cluster`, in spec order (none without `spec.backup`).
pub fn build(cluster: &VitessCluster) -> Result<Vec<CronJob>, Error> {
    let schedules = cluster
        .spec
        .backup
        .as_ref()
        .map(|b| b.schedules.as_slice())
        .unwrap_or_default();
    schedules
        .iter()
        .enumerate()
        .map(|(index, s)| cron_job(cluster, index, s))
        .collect()
}

/// The CronJob of one schedule.
///
/// Its pod runs one container per shard, each `vtctldclient --server=<vtctld Service>:15999
/// BackupShard [extraFlags] <keyspace>/<shard>`. All but the last are init containers: Kubernetes
/// runs those one at a time, in order, each only after the previous succeeded, so the shards
/// are backed up one after the other (as the Go operator's one shell command does) without a
/// shell (no quoting of user flags) and with the pod's resources counted once, not per shard.
fn cron_job(
    cluster: &VitessCluster,
    index: usize,
    schedule: &VitessBackupScheduleTemplate,
) -> Result<CronJob, Error> {
    let name = cluster_name(cluster)?;
    let cron = schedule.cron(name).map_err(|message| Error::Schedule {
        cluster: name.into(),
        index,
        name: schedule.name.clone(),
        message,
    })?;
    let namespace = &cluster.metadata.namespace;
    let spec = &cluster.spec;
    let images = resolved_images(spec.images.as_ref());
    let pull_policy = spec.image_pull_policies.as_ref().and_then(|p| p.vtctld);
    let own = labels::set(&[
        (labels::COMPONENT, labels::component::VTBACKUP_SCHEDULE),
        (labels::CLUSTER, name),
        (labels::BACKUP_SCHEDULE, &schedule.name),
    ]);

    let tls = Tls::of(
        spec.vitess_dashboard
            .as_ref()
            .and_then(|d| d.client_tls.as_ref()),
        name,
    )?;
    // vtctldclient's global flags (the connection) come before the command.
    let service = names::cluster::vtctld_service(name);
    let server = match namespace {
        Some(ns) => format!("{service}.{ns}.svc:{}", defaults::GRPC_PORT),
        // Offline `render` of a file without a namespace: the Job runs next to the Service.
        None => format!("{service}:{}", defaults::GRPC_PORT),
    };
    let mut global = FlagSet::vitess();
    global.set("server", &server);
    for (flag, value) in &tls.flags {
        global.set(flag, value);
    }

    let mut containers: Vec<Container> = targets(cluster, schedule)?
        .iter()
        .map(|target| {
            let mut args = global.args();
            args.push("BackupShard".into());
            args.extend(FlagSet::vitess().extend(target.extra_flags.as_ref()).args());
            args.push(format!("{}/{}", target.keyspace, target.shard));
            Container {
                name: container_name(&target.keyspace, &target.shard),
                image: images.vtctld.clone(),
                image_pull_policy: podspec::pull_policy(pull_policy),
                command: Some(vec![VTCTLDCLIENT.into()]),
                args: Some(args),
                resources: schedule.resources.clone(),
                volume_mounts: (!tls.mounts.is_empty()).then(|| tls.mounts.clone()),
                ..Container::default()
            }
        })
        .collect();
    let last = containers.pop().into_iter().collect();

    let timeout = match schedule.job_timeout_minute {
        Some(minutes) if minutes > 0 => minutes,
        _ => DEFAULT_JOB_TIMEOUT_MINUTES,
    };
    let pod = PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(own.clone()),
            annotations: schedule.annotations.clone(),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            init_containers: (!containers.is_empty()).then_some(containers),
            containers: last,
            restart_policy: Some("OnFailure".into()),
            volumes: (!tls.volumes.is_empty()).then_some(tls.volumes),
            affinity: schedule.affinity.clone(),
            tolerations: schedule.tolerations.clone().or_else(|| {
                spec.vitess_dashboard
                    .as_ref()
                    .and_then(|d| d.pod.tolerations.clone())
            }),
            image_pull_secrets: spec.image_pull_secrets.clone(),
            security_context: Some(podspec::vitess_pod_security()),
            ..PodSpec::default()
        }),
    };
    let concurrency = match schedule.concurrency_policy.unwrap_or_default() {
        ConcurrencyPolicy::Allow => "Allow",
        ConcurrencyPolicy::Forbid => "Forbid",
    };
    Ok(CronJob {
        metadata: meta(
            names::cluster::backup_schedule(name, &schedule.name),
            namespace,
            own.clone(),
            None,
        ),
        spec: Some(CronJobSpec {
            schedule: cron,
            suspend: Some(schedule.suspend.unwrap_or(false)),
            concurrency_policy: Some(concurrency.into()),
            starting_deadline_seconds: schedule.starting_deadline_seconds,
            successful_jobs_history_limit: schedule.successful_jobs_history_limit,
            failed_jobs_history_limit: schedule.failed_jobs_history_limit,
            job_template: JobTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(own),
                    ..ObjectMeta::default()
                }),
                spec: Some(JobSpec {
                    active_deadline_seconds: Some(i64::from(timeout) * 60),
                    backoff_limit: Some(BACKOFF_LIMIT),
                    template: pod,
                    ..JobSpec::default()
                }),
            },
            ..CronJobSpec::default()
        }),
        status: None,
    })
}

/// A container name (a DNS label) for the step that backs up `keyspace`/`shard`, readable
/// in `kubectl logs -c`, e.g. `backup-commerce-x-x-<hash>`.
fn container_name(keyspace: &str, shard: &str) -> String {
    // Shards named by key range (`-80`) use the safe form of names and labels (`x-80`); a
    // shard named otherwise (`0`) is taken as written.
    let safe = KeyRange::parse(shard)
        .map(|r| r.safe_name())
        .unwrap_or_else(|_| shard.to_string());
    names::join_service(&["backup", keyspace, &safe])
}

/// vtctldclient's TLS settings from `spec.vitessDashboard.clientTLS`: each Secret key mounted
/// read-only as a file and named by a flag; no secret value is ever in a flag.
#[derive(Default)]
struct Tls {
    flags: Vec<(&'static str, String)>,
    volumes: Vec<Volume>,
    mounts: Vec<VolumeMount>,
}

impl Tls {
    fn of(spec: Option<&VtctldClientTls>, cluster: &str) -> Result<Self, Error> {
        let mut out = Self::default();
        let Some(spec) = spec else {
            return Ok(out);
        };
        let object = format!("VitessCluster/{cluster}");
        let files = [
            (
                "vtctld-grpc-ca",
                "vtctld-tls-ca",
                "caSecret",
                Some(&spec.ca_secret),
            ),
            (
                "vtctld-grpc-cert",
                "vtctld-tls-cert",
                "certSecret",
                spec.cert_secret.as_ref(),
            ),
            (
                "vtctld-grpc-key",
                "vtctld-tls-key",
                "keySecret",
                spec.key_secret.as_ref(),
            ),
        ];
        for (flag, volume, field, secret) in files {
            let Some(secret) = secret else { continue };
            let source = SecretSource {
                name: Some(secret.name.clone()),
                volume_name: None,
                key: secret.key.clone(),
            };
            let file = podspec::secret_file(
                &source,
                volume,
                &object,
                &format!("spec.vitessDashboard.clientTLS.{field}"),
            )?;
            out.volumes.extend(file.volume);
            out.mounts.push(file.mount);
            out.flags.push((flag, file.path));
        }
        if let Some(server_name) = &spec.server_name {
            out.flags
                .push(("vtctld-grpc-server-name", server_name.clone()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Affinity;

    fn cluster(yaml: &str) -> VitessCluster {
        serde_saphyr::from_str(yaml).unwrap()
    }

    fn example() -> VitessCluster {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/scheduled-backups.yaml"
        );
        let mut cluster = cluster(&std::fs::read_to_string(path).unwrap());
        cluster.metadata.namespace = Some("prod".into());
        cluster
    }

    fn pod_of(job: &CronJob) -> PodSpec {
        let spec = job.spec.clone().unwrap();
        spec.job_template.spec.unwrap().template.spec.unwrap()
    }

    /// Every step of the pod, in the order it runs: (container name, command + args).
    fn steps(job: &CronJob) -> Vec<(String, Vec<String>)> {
        let pod = pod_of(job);
        pod.init_containers
            .unwrap_or_default()
            .into_iter()
            .chain(pod.containers)
            .map(|c| {
                let mut line = c.command.unwrap();
                line.extend(c.args.unwrap());
                (c.name, line)
            })
            .collect()
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    const SERVER: &str = "--server=example-vtctld-625ee430.prod.svc:15999";

    #[test]
    fn one_cron_job_per_schedule_that_runs_backup_shard() {
        let jobs = build(&example()).unwrap();
        assert_eq!(jobs.len(), 2);

        let nightly = &jobs[0];
        assert_eq!(
            nightly.metadata.name.as_deref(),
            Some(names::cluster::backup_schedule("example", "nightly-commerce").as_str())
        );
        assert!(nightly.metadata.name.as_ref().unwrap().len() <= 52);
        assert_eq!(nightly.metadata.namespace.as_deref(), Some("prod"));
        let want = labels::set(&[
            ("planetscale.com/component", "vtbackup-schedule"),
            ("planetscale.com/cluster", "example"),
            ("planetscale.com/backup-schedule", "nightly-commerce"),
        ]);
        assert_eq!(nightly.metadata.labels.as_ref(), Some(&want));
        let spec = nightly.spec.as_ref().unwrap();
        assert_eq!(spec.schedule, "30 2 * * *");
        assert_eq!(spec.suspend, Some(false));
        assert_eq!(spec.concurrency_policy.as_deref(), Some("Forbid"));
        assert_eq!(spec.successful_jobs_history_limit, Some(3));
        assert_eq!(spec.failed_jobs_history_limit, Some(5));
        assert_eq!(spec.starting_deadline_seconds, None);
        let job = spec.job_template.spec.as_ref().unwrap();
        assert_eq!(job.active_deadline_seconds, Some(30 * 60));
        assert_eq!(job.backoff_limit, Some(BACKOFF_LIMIT));
        let template = spec.job_template.metadata.as_ref().unwrap();
        assert_eq!(template.labels.as_ref(), Some(&want));
        let pod_meta = job.template.metadata.as_ref().unwrap();
        assert_eq!(pod_meta.labels.as_ref(), Some(&want));

        assert_eq!(
            steps(nightly),
            [(
                names::join_service(&["backup", "commerce", "x-x"]),
                strings(&["/vt/bin/vtctldclient", SERVER, "BackupShard", "commerce/-"])
            )]
        );
        let pod = pod_of(nightly);
        assert!(pod.init_containers.is_none());
        assert_eq!(pod.restart_policy.as_deref(), Some("OnFailure"));
        let container = &pod.containers[0];
        // The image vtctld runs (the operator's default here), which has vtctldclient.
        assert_eq!(container.image.as_deref(), Some(defaults::VITESS_IMAGE));
        let resources = container.resources.as_ref().unwrap();
        assert_eq!(
            resources.requests.as_ref().unwrap()["memory"].0,
            "512Mi".to_string()
        );
        assert!(pod.volumes.is_none() && container.volume_mounts.is_none());

        // Two shards: the first as an init container, so they run one after the other.
        let customer = &jobs[1];
        let spec = customer.spec.as_ref().unwrap();
        assert_eq!(spec.schedule, "0 */6 * * *");
        assert_eq!(spec.successful_jobs_history_limit, None);
        let job = spec.job_template.spec.as_ref().unwrap();
        assert_eq!(job.active_deadline_seconds, Some(600), "default 10 minutes");
        let steps = steps(customer);
        assert_eq!(
            steps
                .iter()
                .map(|(_, line)| line.clone())
                .collect::<Vec<_>>(),
            [
                strings(&[
                    "/vt/bin/vtctldclient",
                    SERVER,
                    "BackupShard",
                    "customer/-80"
                ]),
                strings(&[
                    "/vt/bin/vtctldclient",
                    SERVER,
                    "BackupShard",
                    "customer/80-"
                ]),
            ]
        );
        assert_eq!(pod_of(customer).init_containers.unwrap().len(), 1);
        assert_ne!(steps[0].0, steps[1].0);
    }

    const SCOPES: &str = r#"
apiVersion: planetscale.com/v2
kind: VitessCluster
metadata: {name: example, namespace: default}
spec:
  cells: [{name: zone1}]
  vitessDashboard:
    clientTLS:
      caSecret: {name: vtctld-ca, key: ca.pem}
      certSecret: {name: vtctld-client, key: tls.crt}
      keySecret: {name: vtctld-client, key: tls.key}
      serverName: vtctld.example
  backup:
    locations: [{volume: {emptyDir: {}}}]
    schedules:
    - name: everything
      schedule: "* * * * *"
      suspend: true
      concurrencyPolicy: Allow
      startingDeadlineSeconds: 30
      allowedMissedRun: 5
      jobTimeoutMinute: 0
      annotations: {team: dba}
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
            - matchExpressions: [{key: backups, operator: Exists}]
      strategies:
      - name: customer-first
        scope: Keyspace
        keyspace: customer
        extraFlags: {allow_primary: "true", upgrade-safe: "true"}
      - name: the-rest
        scope: Cluster
      - name: again
        keyspace: commerce
        shard: "-"
  keyspaces:
  - name: commerce
    partitionings:
    - equal: {parts: 1, shardTemplate: {databaseInitScriptSecret: {name: init, key: init.sql}}}
  - name: customer
    partitionings:
    - equal: {parts: 2, shardTemplate: {databaseInitScriptSecret: {name: init, key: init.sql}}}
"#;

    /// The Go operator's own test YAML (102_initial_cluster_keyspace_backup_schedule): a
    /// cluster-wide schedule and one for a keyspace, both by `frequency`.
    const GO_FREQUENCY: &str = r#"
apiVersion: planetscale.com/v2
kind: VitessCluster
metadata: {name: example, namespace: default}
spec:
  cells: [{name: zone1}]
  vitessDashboard:
    tolerations: [{key: dedicated, operator: Exists}]
  backup:
    locations: [{volume: {emptyDir: {}}}]
    schedules:
    - name: cluster-every-day
      frequency: 24h
      strategies: [{name: all, scope: Cluster}]
    - name: customer-every-two-hours
      frequency: 2h
      backupMethod: vtctldclient
      tolerations: []
      strategies: [{name: customer-all, scope: Keyspace, keyspace: customer}]
  keyspaces:
  - name: commerce
    partitionings:
    - equal: {parts: 1, shardTemplate: {databaseInitScriptSecret: {name: init, key: init.sql}}}
  - name: customer
    partitionings:
    - equal: {parts: 2, shardTemplate: {databaseInitScriptSecret: {name: init, key: init.sql}}}
"#;

    #[test]
    fn frequency_tolerations_and_keyspaces_with_their_own_schedule() {
        let cluster = cluster(GO_FREQUENCY);
        let jobs = build(&cluster).unwrap();
        let crons: Vec<String> = jobs
            .iter()
            .map(|j| j.spec.as_ref().unwrap().schedule.clone())
            .collect();
        // Fixed offsets within the period, from the cluster's and the schedule's names.
        let schedules = &cluster.spec.backup.as_ref().unwrap().schedules;
        assert_eq!(crons[0], schedules[0].cron("example").unwrap());
        assert_eq!(crons[1], schedules[1].cron("example").unwrap());
        let daily: Vec<&str> = crons[0].split(' ').collect();
        assert_eq!(daily[2..], ["*", "*", "*"], "{}", crons[0]);
        assert!(daily[0].parse::<u32>().unwrap() < 60 && daily[1].parse::<u32>().unwrap() < 24);
        assert!(crons[1].contains("/2 * * *"), "{}", crons[1]);
        // Another cluster or schedule name gives another offset, the same names the same one.
        assert_eq!(schedules[0].cron("example"), schedules[0].cron("example"));

        // customer has a schedule of its own, so the cluster-wide one leaves it out.
        let got: Vec<String> = targets(&cluster, &schedules[0])
            .unwrap()
            .iter()
            .map(|t| format!("{}/{}", t.keyspace, t.shard))
            .collect();
        assert_eq!(got, ["commerce/-"]);

        // Unset tolerations: vtctld's; an empty list clears them.
        let tolerations = pod_of(&jobs[0]).tolerations.unwrap();
        assert_eq!(tolerations[0].key.as_deref(), Some("dedicated"));
        assert_eq!(pod_of(&jobs[1]).tolerations, Some(vec![]));

        // A frequency cron cannot express is the operator's error, naming the field.
        let mut bad = cluster.clone();
        bad.spec.backup.as_mut().unwrap().schedules[1].frequency = "7m".into();
        let err = build(&bad).unwrap_err().to_string();
        assert!(
            err.contains("spec.backup.schedules[1] (customer-every-two-hours)")
                && err.contains("\"7m\" cannot be run exactly by cron"),
            "{err}"
        );
    }

    #[test]
    fn scopes_expand_to_shards_each_backed_up_once() {
        let cluster = cluster(SCOPES);
        let schedule = &cluster.spec.backup.as_ref().unwrap().schedules[0];
        let got: Vec<String> = targets(&cluster, schedule)
            .unwrap()
            .iter()
            .map(|t| format!("{}/{}", t.keyspace, t.shard))
            .collect();
        assert_eq!(got, ["customer/-80", "customer/80-", "commerce/-"]);
    }

    #[test]
    fn tls_flags_name_mounted_files_and_schedule_settings_pass_through() {
        let jobs = build(&cluster(SCOPES)).unwrap();
        let job = &jobs[0];
        let spec = job.spec.as_ref().unwrap();
        assert_eq!(spec.suspend, Some(true));
        assert_eq!(spec.concurrency_policy.as_deref(), Some("Allow"));
        assert_eq!(spec.starting_deadline_seconds, Some(30));
        let job_spec = spec.job_template.spec.as_ref().unwrap();
        assert_eq!(job_spec.active_deadline_seconds, Some(600));
        let pod_meta = job_spec.template.metadata.as_ref().unwrap();
        assert_eq!(
            pod_meta.annotations.as_ref().unwrap().get("team"),
            Some(&"dba".to_string())
        );
        let pod = pod_of(job);
        let affinity: &Affinity = pod.affinity.as_ref().unwrap();
        assert!(affinity.node_affinity.is_some());

        let global = [
            "/vt/bin/vtctldclient",
            "--server=example-vtctld-625ee430.default.svc:15999",
            "--vtctld-grpc-ca=/vt/secrets/vtctld-tls-ca/ca.pem",
            "--vtctld-grpc-cert=/vt/secrets/vtctld-tls-cert/tls.crt",
            "--vtctld-grpc-key=/vt/secrets/vtctld-tls-key/tls.key",
            "--vtctld-grpc-server-name=vtctld.example",
            "BackupShard",
        ];
        let with = |extra: &[&str], target: &str| {
            let mut line = strings(&global);
            line.extend(strings(extra));
            line.push(target.into());
            line
        };
        let flags = ["--allow-primary=true", "--upgrade-safe=true"];
        assert_eq!(
            steps(job)
                .into_iter()
                .map(|(_, line)| line)
                .collect::<Vec<_>>(),
            [
                with(&flags, "customer/-80"),
                with(&flags, "customer/80-"),
                with(&[], "commerce/-"),
            ]
        );

        // Each file is its Secret's one key, mounted read-only into every step.
        let volumes = pod.volumes.clone().unwrap();
        let secrets: Vec<(String, String, String)> = volumes
            .iter()
            .map(|v| {
                let secret = v.secret.as_ref().unwrap();
                let item = &secret.items.as_ref().unwrap()[0];
                (
                    v.name.clone(),
                    secret.secret_name.clone().unwrap(),
                    item.key.clone(),
                )
            })
            .collect();
        assert_eq!(
            secrets,
            [
                ("vtctld-tls-ca".into(), "vtctld-ca".into(), "ca.pem".into()),
                (
                    "vtctld-tls-cert".into(),
                    "vtctld-client".into(),
                    "tls.crt".into()
                ),
                (
                    "vtctld-tls-key".into(),
                    "vtctld-client".into(),
                    "tls.key".into()
                ),
            ]
        );
        let all = pod
            .init_containers
            .clone()
            .unwrap()
            .into_iter()
            .chain(pod.containers.clone());
        for container in all {
            let mounts = container.volume_mounts.unwrap();
            assert_eq!(mounts.len(), 3);
            assert!(mounts.iter().all(|m| m.read_only == Some(true)));
        }
        // No secret content anywhere in the pod spec, only paths.
        let text = serde_json::to_string(&pod).unwrap();
        assert!(!text.contains("BEGIN"));
    }

    #[test]
    fn removing_a_schedule_leaves_the_other_cron_job_as_it_was() {
        // The controller prunes the owned, labelled CronJobs whose names are not built any
        // more: the removed schedule's, and only it.
        let before = build(&example()).unwrap();
        let mut cluster = example();
        cluster.spec.backup.as_mut().unwrap().schedules.remove(0);
        let after = build(&cluster).unwrap();
        assert_eq!(after.len(), 1);
        assert_eq!(after[0], before[1]);
        assert!(
            after
                .iter()
                .all(|c| c.metadata.name != before[0].metadata.name)
        );
    }

    #[test]
    fn no_backup_or_no_schedules_make_no_cron_jobs() {
        let mut cluster = example();
        cluster.spec.backup.as_mut().unwrap().schedules.clear();
        assert!(build(&cluster).unwrap().is_empty());
        cluster.spec.backup = None;
        assert!(build(&cluster).unwrap().is_empty());
    }

    #[test]
    fn cron_job_names_fit_with_long_cluster_and_schedule_names() {
        let mut cluster = example();
        cluster.metadata.name = Some("a-very-long-cluster-name-for-production".into());
        cluster.spec.backup.as_mut().unwrap().schedules[0].name =
            "nightly-commerce-and-then-some-more-words".into();
        for job in build(&cluster).unwrap() {
            let name = job.metadata.name.unwrap();
            assert!(name.len() <= 52, "{name}");
        }
    }
}
