//! From a VitessCluster to its scheduled backups (`spec.backup.schedules[]`): one batch/v1
//! CronJob per schedule, whose Jobs ask the cluster's vtctld for `BackupShard` of every shard
//! the schedule's strategies cover, with `vtctldclient` from the cluster's vtctld image.
//!
//! The Go operator runs schedules from a kind of its own (VitessBackupSchedule) and a
//! controller that creates the Jobs itself; here Kubernetes' own CronJob controller does the
//! timing, so history limits, `suspend`, `concurrencyPolicy` and `startingDeadlineSeconds`
//! mean exactly what they mean on a CronJob. `allowedMissedRun` has no CronJob equivalent and
//! is ignored (the field's doc says why).

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
/// order) but those with a schedule of their own ([`own_schedules`]). A shard named twice is backed up once, with the flags of the first strategy that
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
    let excluded = own_schedules(cluster);
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
/// The keyspaces that a schedule in force (not suspended) backs up with scope `Keyspace`: as
/// in the Go operator, scope `Cluster` leaves them out, so a keyspace with a schedule of its
/// own is not backed up twice.
fn own_schedules(cluster: &VitessCluster) -> BTreeSet<&str> {
    cluster
        .spec
        .backup
        .iter()
        .flat_map(|b| b.schedules.iter())
        .filter(|s| s.suspend != Some(true))
        .flat_map(|s| s.strategies.iter())
        .filter(|t| t.scope == Some(BackupScope::Keyspace) && !t.keyspace.is_empty())
        .map(|t| t.keyspace.as_str())
        .collect()
}

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
    let own = labels::set(&[
        (labels::COMPONENT, labels::component::VTBACKUP_SCHEDULE),
        (labels::CLUSTER, name),
        (labels::BACKUP_SCHEDULE, &schedule.name),
    ]);
    let tls = Tls::of(
        cluster
            .spec
            .vitess_dashboard
            .as_ref()
            .and_then(|d| d.client_tls.as_ref()),
        name,
    )?;
    let steps = steps(cluster, schedule, &tls)?;
    let pod = pod(cluster, schedule, &own, steps, tls);
    let timeout = match schedule.job_timeout_minute {
        Some(minutes) if minutes > 0 => minutes,
        _ => DEFAULT_JOB_TIMEOUT_MINUTES,
    };
    let concurrency = match schedule.concurrency_policy.unwrap_or_default() {
        ConcurrencyPolicy::Allow => "Allow",
        ConcurrencyPolicy::Forbid => "Forbid",
    };
    Ok(CronJob {
        metadata: meta(
            names::cluster::backup_schedule(name, &schedule.name),
            &cluster.metadata.namespace,
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

/// vtctldclient's global flags (the connection), which come before the command.
fn global_flags(cluster: &VitessCluster, name: &str, tls: &Tls) -> FlagSet {
    let service = names::cluster::vtctld_service(name);
    let server = match &cluster.metadata.namespace {
        Some(ns) => format!("{service}.{ns}.svc:{}", defaults::GRPC_PORT),
        // Offline `render` of a file without a namespace: the Job runs next to the Service.
        None => format!("{service}:{}", defaults::GRPC_PORT),
    };
    let mut global = FlagSet::vitess();
    global.set("server", &server);
    for (flag, value) in &tls.flags {
        global.set(flag, value);
    }
    global
}

/// One `vtctldclient BackupShard` container per shard the schedule covers, in order.
fn steps(
    cluster: &VitessCluster,
    schedule: &VitessBackupScheduleTemplate,
    tls: &Tls,
) -> Result<Vec<Container>, Error> {
    let name = cluster_name(cluster)?;
    let spec = &cluster.spec;
    let images = resolved_images(spec.images.as_ref());
    let pull_policy = spec.image_pull_policies.as_ref().and_then(|p| p.vtctld);
    let global = global_flags(cluster, name, tls);
    Ok(targets(cluster, schedule)?
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
        .collect())
}

/// The Job's pod: every step but the last an init container, run one after the other.
fn pod(
    cluster: &VitessCluster,
    schedule: &VitessBackupScheduleTemplate,
    own: &BTreeMap<String, String>,
    mut steps: Vec<Container>,
    tls: Tls,
) -> PodTemplateSpec {
    let last = steps.pop().into_iter().collect();
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(own.clone()),
            annotations: schedule.annotations.clone(),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            init_containers: (!steps.is_empty()).then_some(steps),
            containers: last,
            restart_policy: Some("OnFailure".into()),
            volumes: (!tls.volumes.is_empty()).then_some(tls.volumes),
            affinity: schedule.affinity.clone(),
            // Unset: vtctld's tolerations, as the Go operator gives its vtctldclient jobs; an
            // empty list clears them.
            tolerations: schedule.tolerations.clone().or_else(|| {
                cluster
                    .spec
                    .vitess_dashboard
                    .as_ref()
                    .and_then(|d| d.pod.tolerations.clone())
            }),
            image_pull_secrets: cluster.spec.image_pull_secrets.clone(),
            security_context: Some(podspec::vitess_pod_security()),
            priority_class_name: defaults::vitess_priority_class(),
            ..PodSpec::default()
        }),
    }
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
mod tests;
