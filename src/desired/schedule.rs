//! From a VitessCluster to its backup schedules (`spec.backup.schedules[]`): one
//! VitessBackupSchedule per schedule, with the Go operator's name, and what its controller
//! starts at each due time: one batch/v1 Job per shard, whose pod runs the shard's vtbackup
//! (`backupMethod: vtbackup`, the default) or asks the cluster's vtctld for `BackupShard` with
//! `vtctldclient` from the schedule's image (the cluster's vtctld image). The timing is
//! `controller::backupschedule`'s; this module only builds.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec, Volume, VolumeMount};
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::api::ObjectMeta;

use super::cluster::{children, resolved_images};
use super::flags::FlagSet;
use super::{Error, cluster_name, defaults, keyspace, meta, podspec};
use crate::api::VitessShard;
use crate::api::backupschedule::{VitessBackupSchedule, VitessBackupScheduleSpec};
use crate::api::cluster::{
    BackupScope, VitessBackupScheduleTemplate, VitessCluster, VtctldClientTls,
};
use crate::api::shared::{Flags, SecretSource};
use crate::domain::keyrange::KeyRange;
use crate::{domain::labels, domain::names};

/// Minutes a backup Job may run when the schedule does not say (`jobTimeoutMinute`).
const DEFAULT_JOB_TIMEOUT_MINUTES: i32 = 10;

/// Minutes a Job of `schedule` may run: `jobTimeoutMinute`, or the default when it is unset
/// or 0.
pub fn job_timeout_minutes(schedule: &VitessBackupScheduleTemplate) -> i32 {
    match schedule.job_timeout_minute {
        Some(minutes) if minutes > 0 => minutes,
        _ => DEFAULT_JOB_TIMEOUT_MINUTES,
    }
}

/// Retries of a failed backup within one Job (each a new pod: `restartPolicy: Never`, as the
/// Go operator's). A retry of a backup that failed after vtctld started it may leave one
/// more backup behind, which is cheaper than a shard without one; `activeDeadlineSeconds`
/// (the job timeout) bounds them all.
pub const BACKOFF_LIMIT: i32 = 3;
/// Where vtctldclient is in the vitess/lite image.
const VTCTLDCLIENT: &str = "/vt/bin/vtctldclient";
/// The annotation on each Job with the time it was due (RFC 3339), the Go operator's.
pub const SCHEDULED_AT: &str = "planetscale.com/backup-scheduled-at";
/// The label with a Job's backup method, the Go operator's.
pub const BACKUP_METHOD: &str = "planetscale.com/backup-method";

/// One shard a schedule backs up, with the BackupShard flags of the strategy that named it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub keyspace: String,
    /// Vitess form (`-`, `-80`).
    pub shard: String,
    /// The per-shard strategy name, the key of the schedule's status maps: the strategy's
    /// own for scope `Shard`, `<strategy>-<keyspace>-<safe shard>` for the others (as the
    /// Go operator names them).
    pub strategy: String,
    pub extra_flags: Option<Flags>,
}

impl Target {
    /// The shard in the form of names and labels (`x-80`); a shard not named by key range
    /// (`0`) is taken as written.
    pub fn safe_shard(&self) -> String {
        KeyRange::parse(&self.shard)
            .map(|r| r.safe_name())
            .unwrap_or_else(|_| self.shard.clone())
    }
}

/// The shards `schedule` backs up, in the order of its strategies: scope `Shard` names one,
/// `Keyspace` stands for every shard the keyspace's partitionings make, `Cluster` for every
/// shard of every keyspace of the spec (in spec order, each keyspace's shards in key-range
/// order) but those of `excluded` (keyspaces another schedule in force backs up with scope
/// `Keyspace`, as the Go operator leaves them out; see [`keyspace_scoped`]). A shard named
/// twice is backed up once, with the flags of the first strategy that names it. Shards come
/// from the spec (as the VitessShards are built), not from Vitess.
pub fn targets(
    cluster: &VitessCluster,
    schedule: &VitessBackupScheduleTemplate,
    excluded: &BTreeSet<String>,
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
    let mut out: Vec<Target> = Vec::new();
    for strategy in &schedule.strategies {
        let scope = strategy.scope.unwrap_or_default();
        let pairs: Vec<(String, String)> = match scope {
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
            if out
                .iter()
                .any(|t| t.keyspace == keyspace && t.shard == shard)
            {
                continue;
            }
            let mut target = Target {
                keyspace,
                shard,
                strategy: strategy.name.clone(),
                extra_flags: strategy.extra_flags.clone(),
            };
            if scope != BackupScope::Shard {
                target.strategy = format!(
                    "{}-{}-{}",
                    strategy.name,
                    target.keyspace,
                    target.safe_shard()
                );
            }
            out.push(target);
        }
    }
    Ok(out)
}

/// The keyspaces `schedule`, when in force (not suspended), backs up with scope `Keyspace`:
/// scope `Cluster` of every schedule of the same cluster leaves them out, so a keyspace with
/// a schedule of its own is not backed up twice.
pub fn keyspace_scoped(schedule: &VitessBackupScheduleTemplate) -> BTreeSet<String> {
    if schedule.suspend == Some(true) {
        return BTreeSet::new();
    }
    schedule
        .strategies
        .iter()
        .filter(|t| t.scope == Some(BackupScope::Keyspace) && !t.keyspace.is_empty())
        .map(|t| t.keyspace.clone())
        .collect()
}

/// One VitessBackupSchedule per schedule of `cluster`, in spec order (none without
/// `spec.backup`): the Go operator's name (`<cluster>-vbsc-<schedule>-<hash>`), the schedule
/// as written, the cluster's vtctld image for its Jobs.
pub fn build(cluster: &VitessCluster) -> Result<Vec<VitessBackupSchedule>, Error> {
    let name = cluster_name(cluster)?;
    let schedules = cluster
        .spec
        .backup
        .as_ref()
        .map(|b| b.schedules.as_slice())
        .unwrap_or_default();
    let images = resolved_images(cluster.spec.images.as_ref());
    let pull_policy = cluster
        .spec
        .image_pull_policies
        .as_ref()
        .and_then(|p| p.vtctld);
    let own = labels::set(&[
        (labels::COMPONENT, labels::component::VTBACKUP_SCHEDULE),
        (labels::CLUSTER, name),
    ]);
    Ok(schedules
        .iter()
        .map(|schedule| VitessBackupSchedule {
            metadata: meta(
                names::cluster::backup_schedule(name, &schedule.name),
                &cluster.metadata.namespace,
                own.clone(),
                None,
            ),
            spec: VitessBackupScheduleSpec {
                template: schedule.clone(),
                cluster: name.to_string(),
                image: images.vtctld.clone(),
                image_pull_policy: pull_policy,
            },
            status: None,
        })
        .collect())
}

/// How a Job takes its backup (`backupMethod`), with what that needs.
pub enum Method<'a> {
    /// `vtctldclient BackupShard`: a serving replica takes it.
    Vtctldclient,
    /// vtbackup in a pod of its own, built from the shard's VitessShard (the default).
    Vtbackup(&'a VitessShard),
}

impl Method<'_> {
    fn label(&self) -> &'static str {
        match self {
            Method::Vtctldclient => "vtctldclient",
            Method::Vtbackup(_) => "vtbackup",
        }
    }
}

/// The Job of `schedule` that backs up `target`, due at `due`: named by schedule, shard and
/// due time (the Go operator's name), so that a due time makes at most one Job; labelled with
/// the schedule's labels and the shard's; run once per pod (`restartPolicy: Never`), within
/// `jobTimeoutMinute` (`activeDeadlineSeconds`: Kubernetes stops it, and the Job shows
/// `DeadlineExceeded`, even while the operator is down). With [`Method::Vtctldclient`] its pod
/// runs `vtctldclient --server=<vtctld Service>:15999 BackupShard [extraFlags]
/// <keyspace>/<shard>`; with [`Method::Vtbackup`], the shard's vtbackup
/// ([`super::vtbackup::scheduled`]; `Ok(None)` when the shard has no backup location). The
/// schedule's `affinity` and `tolerations` replace the pod's when set.
pub fn job(
    cluster: &VitessCluster,
    schedule: &VitessBackupSchedule,
    target: &Target,
    due: Timestamp,
    method: Method<'_>,
) -> Result<Option<Job>, Error> {
    let cluster_name = cluster_name(cluster)?;
    let schedule_name = schedule.metadata.name.clone().unwrap_or_default();
    let template = &schedule.spec.template;
    let safe = target.safe_shard();
    let mut own = schedule.metadata.labels.clone().unwrap_or_default();
    own.extend(labels::set(&[
        (labels::BACKUP_SCHEDULE, &schedule_name),
        (labels::CLUSTER, cluster_name),
        (labels::KEYSPACE, &target.keyspace),
        (labels::SHARD, &safe),
        (BACKUP_METHOD, method.label()),
    ]));
    let mut annotations = template.annotations.clone().unwrap_or_default();
    annotations.insert(
        SCHEDULED_AT.into(),
        due.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
    );
    let name = names::cluster::backup_job(&schedule_name, &target.keyspace, &safe, due.as_second());
    let mut metadata = meta(
        name,
        &schedule.metadata.namespace,
        own.clone(),
        Some(annotations.clone()),
    );
    metadata.owner_references = schedule.controller_owner_ref(&()).map(|r| vec![r]);
    let timeout = job_timeout_minutes(template);
    let pod = match method {
        Method::Vtctldclient => {
            let tls = Tls::of(
                cluster
                    .spec
                    .vitess_dashboard
                    .as_ref()
                    .and_then(|d| d.client_tls.as_ref()),
                cluster_name,
            )?;
            let container = step(cluster, schedule, target, &tls);
            pod(cluster, template, own, annotations, container, tls)
        }
        Method::Vtbackup(shard) => {
            let Some(vtbackup) = super::vtbackup::scheduled(shard)? else {
                return Ok(None);
            };
            let mut spec = vtbackup.spec;
            if template.affinity.is_some() {
                spec.affinity = template.affinity.clone();
            }
            if template.tolerations.is_some() {
                spec.tolerations = template.tolerations.clone();
            }
            let mut pod_annotations = vtbackup.annotations;
            pod_annotations.extend(annotations);
            PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(own),
                    annotations: Some(pod_annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(spec),
            }
        }
    };
    Ok(Some(Job {
        metadata,
        spec: Some(JobSpec {
            active_deadline_seconds: Some(i64::from(timeout) * 60),
            backoff_limit: Some(BACKOFF_LIMIT),
            template: pod,
            ..JobSpec::default()
        }),
        status: None,
    }))
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

/// The `vtctldclient BackupShard` container of one shard.
fn step(
    cluster: &VitessCluster,
    schedule: &VitessBackupSchedule,
    target: &Target,
    tls: &Tls,
) -> Container {
    let name = cluster.metadata.name.as_deref().unwrap_or_default();
    let spec = &cluster.spec;
    let image = schedule
        .spec
        .image
        .clone()
        .or_else(|| resolved_images(spec.images.as_ref()).vtctld);
    let pull_policy = schedule
        .spec
        .image_pull_policy
        .or_else(|| spec.image_pull_policies.as_ref().and_then(|p| p.vtctld));
    let mut args = global_flags(cluster, name, tls).args();
    args.push("BackupShard".into());
    args.extend(FlagSet::vitess().extend(target.extra_flags.as_ref()).args());
    args.push(format!("{}/{}", target.keyspace, target.shard));
    Container {
        name: "vtctldclient".into(),
        image,
        image_pull_policy: podspec::pull_policy(pull_policy),
        command: Some(vec![VTCTLDCLIENT.into()]),
        args: Some(args),
        resources: schedule.spec.template.resources.clone(),
        volume_mounts: (!tls.mounts.is_empty()).then(|| tls.mounts.clone()),
        ..Container::default()
    }
}

/// The Job's pod.
fn pod(
    cluster: &VitessCluster,
    schedule: &VitessBackupScheduleTemplate,
    own: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    container: Container,
    tls: Tls,
) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(own),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            containers: vec![container],
            restart_policy: Some("Never".into()),
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
