//! VitessCluster (`vt`): the one kind people write. Everything else is made from it.
//!
//! Long because it is the whole schema users write: every field the Go operator's
//! VitessCluster accepts, each with the doc comment `kubectl explain` shows, and the CEL
//! rules that refuse bad input at apply time. Splitting it would scatter one YAML document
//! over files; the shared parts of pods and services are in `shared.rs` already.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Affinity, Toleration};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::backupstorage::{VitessBackupLocation, VitessBackupSubcontrollerSpec};
use super::cell::VitessCellTemplate;
use super::keyspace::VitessKeyspaceTemplate;
use super::shared::{
    ConditionStatus, Conditions, Flags, ImagePullSecrets, LockserverSpec, LockserverStatus,
    OrphanStatus, PodOverrides, Resources, SecretSource, ServiceOverrides, StringMap,
    TopoReconcileConfig, VitessClusterUpdateStrategy, VitessImagePullPolicies, VitessImages, core,
    null_as_default, preserve_object,
};

/// A whole Vitess cluster: cells, keyspaces, lockserver, vtctld, backups.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "planetscale.com",
    version = "v2",
    kind = "VitessCluster",
    plural = "vitessclusters",
    shortname = "vt",
    namespaced,
    status = "VitessClusterStatus",
    doc = "A Vitess cluster. The operator creates and keeps its etcd, vtctld, vtgate and vttablet pods, registers its topology with Vitess and reports progress in status.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Keyspaces", type_ = "string", json_path = ".status.summary"),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct VitessClusterSpec {
    /// Container images per component (default: the operator's pinned Vitess release).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<VitessImages>,
    /// Image pull policies per component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policies: Option<VitessImagePullPolicies>,
    /// Image pull secrets for every pod of the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "core::<Option<ImagePullSecrets>>")]
    pub image_pull_secrets: Option<ImagePullSecrets>,
    /// Backup storage, engine and schedules. Strongly recommended: without backups a tablet
    /// that loses its volume cannot be rebuilt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<ClusterBackupSpec>,
    /// The global topology store: deploy etcd (default) or use an existing lockserver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_lockserver: Option<LockserverSpec>,
    /// vtctld (Vitess' control daemon and web dashboard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vitess_dashboard: Option<VitessDashboardSpec>,
    /// vtadmin (API and web UI), per cell, from `images.vtadmin` (without that image nothing
    /// is run, and `validate` warns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vtadmin: Option<VtAdminSpec>,
    /// Cells (failure domains, usually zones). Tablet pools and vtctld refer to them by name.
    #[serde(default, deserialize_with = "null_as_default")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"], "nullable" = true))]
    #[schemars(length(max = 50))]
    pub cells: Vec<VitessCellTemplate>,
    /// Keyspaces (logical databases) and how each is sharded. `null` (a bare `keyspaces:`, as
    /// the Go operator's teardown example writes it) means none, also with server-side apply.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"], "nullable" = true))]
    #[schemars(length(max = 200))]
    pub keyspaces: Vec<VitessKeyspaceTemplate>,
    /// Flags for every vtgate, vtctld, vtorc and vttablet, `flag: value`; component flags win.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_vitess_flags: Option<Flags>,
    /// Which parts of the Vitess topology the operator registers and prunes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology_reconciliation: Option<TopoReconcileConfig>,
    /// vtgate's `--tablet_refresh_interval` (e.g. `60s`); tablets count as available after
    /// 1.5 times this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+([.][0-9]+)?(s|m|h))+$"))]
    pub tablet_refresh_interval: Option<String>,
    /// How changes reach running pods: `External` (default) or `Immediate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_strategy: Option<VitessClusterUpdateStrategy>,
    /// Changes to the cluster-wide vtgate Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_service: Option<ServiceOverrides>,
    /// Changes to the cluster-wide headless vttablet Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tablet_service: Option<ServiceOverrides>,
}

/// Backup engine.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BackupEngine {
    /// Vitess' file copy of a stopped replica (the default).
    #[default]
    Builtin,
    /// Percona XtraBackup: online, from a serving replica.
    Xtrabackup,
    /// MySQL Shell dump.
    Mysqlshell,
}

impl BackupEngine {
    /// The name Vitess uses (`--backup_engine_implementation`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Builtin => "builtin",
            Self::Xtrabackup => "xtrabackup",
            Self::Mysqlshell => "mysqlshell",
        }
    }
}

/// Backups of the cluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterBackupSpec {
    /// Where backups are stored; tablet pools pick one by `backupLocationName`.
    #[schemars(length(min = 1, max = 10))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub locations: Vec<VitessBackupLocation>,
    /// Backup engine: builtin (default), xtrabackup or mysqlshell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<BackupEngine>,
    /// Accepted for compatibility with the Go operator; nothing runs from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subcontroller: Option<VitessBackupSubcontrollerSpec>,
    /// Scheduled backups, each a VitessBackupSchedule whose Jobs back up its shards; names
    /// are unique.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub schedules: Vec<VitessBackupScheduleTemplate>,
}

/// Whether a scheduled backup may start while the previous one still runs.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum ConcurrencyPolicy {
    /// Runs may overlap.
    Allow,
    /// Skip a run while the previous one is still going (the default).
    #[default]
    Forbid,
}

/// A backup schedule.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.schedule) && self.schedule != '') != (has(self.frequency) && self.frequency != '')").message("set exactly one of schedule (a cron expression) and frequency (e.g. 1h)"))]
pub struct VitessBackupScheduleTemplate {
    /// Schedule name, unique in the cluster. Its VitessBackupSchedule is named
    /// `<cluster>-vbsc-<name>-<hash>`, which its Jobs carry as a label value: that must fit
    /// 63 characters (`validate` and the operator refuse a longer one).
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$")
    )]
    pub name: String,
    /// Cron expression, e.g. `0 2 * * *`. Set this or `frequency`, not both.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub schedule: String,
    /// How often to back up, as a Go duration that cron can express exactly: `1m`, `5m`,
    /// `15m`, `30m`, `1h`, `2h`, `4h`, `6h`, `12h` or `24h` (a minute count dividing an hour,
    /// an hour count dividing a day, or one day). Set this or `schedule`, not both. Each shard
    /// runs once per period at an offset within it derived from its identity (the Go
    /// operator's rule), so the shards do not all start at once
    /// (`status.generatedSchedules` of the VitessBackupSchedule shows each).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub frequency: String,
    /// How backups are taken: `vtbackup` (the default, as in the Go operator) runs vtbackup in
    /// a Job of its own, which restores the latest backup on a volume of its own, catches up
    /// with the primary and uploads a new backup, so no serving tablet copies (it waits for
    /// the shard's first backup); `vtctldclient` has a Job ask vtctld for `BackupShard`, which
    /// has a serving replica (not the primary, unless `allow-primary`) take the backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_method: Option<BackupMethod>,
    /// What to back up: shards, keyspaces or the whole cluster; each shard gets a Job of its
    /// own at each due time.
    #[schemars(length(min = 1, max = 100))]
    pub strategies: Vec<VitessBackupScheduleStrategy>,
    /// Compute resources of each vtctldclient Job's pod (a vtbackup pod has its pool's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "core::<Option<Resources>>")]
    pub resources: Option<Resources>,
    /// Successful Jobs to keep per shard (unset: all); older ones are deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub successful_jobs_history_limit: Option<i32>,
    /// Failed Jobs to keep per shard (unset: all); older ones are deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub failed_jobs_history_limit: Option<i32>,
    /// Pause the schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    /// Seconds after the scheduled time within which a late run may still start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub starting_deadline_seconds: Option<i64>,
    /// `Allow` or `Forbid` (default) overlapping runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_policy: Option<ConcurrencyPolicy>,
    /// Runs that may have been missed (the operator down, a clock jump) besides the latest,
    /// for that one still to start (default 100). More: none starts, a Warning Event
    /// `TooManyMissedRuns` says so, and the schedule goes on from its next due time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub allowed_missed_run: Option<i32>,
    /// Minutes a backup Job may run before Kubernetes stops it (its `activeDeadlineSeconds`;
    /// default 10; 0 means the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub job_timeout_minute: Option<i32>,
    /// Annotations of the backup job pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<StringMap>,
    /// Affinity of the backup job pods (core/v1 Affinity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_object")]
    pub affinity: Option<Affinity>,
    /// Tolerations of the backup job pods. Unset: vtctld's (`spec.vitessDashboard.tolerations`),
    /// as the Go operator does for its vtctldclient jobs; an empty list clears them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "core::<Option<Vec<Toleration>>>")]
    pub tolerations: Option<Vec<Toleration>>,
}

impl VitessBackupScheduleTemplate {
    /// The cron expression one shard of this schedule runs on: `schedule` as written, or,
    /// with `frequency`, one that runs once per period at an offset within it derived from
    /// the shard's identity (the Go operator's: SHA-256 of `cluster|keyspace|shard|strategy`,
    /// its first 8 bytes big-endian modulo the period in minutes), so that the shards of one
    /// schedule do not all start at once, and a schedule the Go operator ran keeps its times.
    /// `strategy` is the per-shard strategy name. `Err` says what is wrong with `frequency`
    /// (or that neither or both are set).
    pub fn cron_for(
        &self,
        cluster: &str,
        keyspace: &str,
        shard: &str,
        strategy: &str,
    ) -> Result<String, String> {
        match (self.schedule.is_empty(), self.frequency.is_empty()) {
            (false, true) => Ok(self.schedule.clone()),
            (true, false) => {
                let period = frequency_minutes(&self.frequency)?;
                let digest =
                    Sha256::digest(format!("{cluster}|{keyspace}|{shard}|{strategy}").as_bytes());
                let mut head = [0u8; 8];
                head.copy_from_slice(&digest[..8]);
                let offset = u64::from_be_bytes(head) % u64::from(period);
                // `offset < period <= 1440`, so it fits.
                Ok(staggered_cron(period, u32::try_from(offset).unwrap_or(0)))
            }
            (false, false) => Err("set either schedule or frequency, not both".into()),
            (true, true) => Err("set schedule (a cron expression) or frequency (e.g. 1h)".into()),
        }
    }
}

/// Minutes in a backup `frequency`, a Go duration (`30m`, `1h`, `1h30m`, `90s`...), when cron
/// can express it exactly: whole minutes that divide an hour, whole hours that divide a day,
/// or one day (as the Go operator requires).
pub fn frequency_minutes(text: &str) -> Result<u32, String> {
    const EXAMPLES: &str = "1m, 5m, 15m, 30m, 1h, 2h, 4h, 6h, 12h, 24h";
    let nanos = go_duration_nanos(text)
        .ok_or_else(|| format!("{text:?} is not a duration such as 30m or 1h"))?;
    const MINUTE: u128 = 60_000_000_000;
    if nanos < MINUTE {
        return Err(format!("{text:?} is less than 1 minute"));
    }
    if nanos % MINUTE != 0 {
        return Err(format!("{text:?} is not a whole number of minutes"));
    }
    let minutes = nanos / MINUTE;
    let exact = match minutes {
        m if m < 60 => 60 % m == 0,
        m if m < 1440 => m % 60 == 0 && 24 % (m / 60) == 0,
        m => m == 1440,
    };
    if !exact {
        return Err(format!(
            "{text:?} cannot be run exactly by cron; use one of {EXAMPLES}"
        ));
    }
    u32::try_from(minutes).map_err(|_| format!("{text:?} is too long"))
}

/// A Go `time.ParseDuration` text in nanoseconds (no sign; `None` when it is not one).
pub(crate) fn go_duration_nanos(text: &str) -> Option<u128> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(number_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() {
            return None;
        }
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        let mut part = whole.checked_mul(scale)?;
        let mut unit_of_digit = scale;
        for digit in fraction.chars() {
            unit_of_digit /= 10;
            part += u128::from(digit.to_digit(10)?) * unit_of_digit;
        }
        total = total.checked_add(part)?;
        rest = tail;
    }
    Some(total)
}

/// A cron expression that runs every `period` minutes (as `frequency_minutes` allows), starting
/// `offset` minutes into the period.
fn staggered_cron(period: u32, offset: u32) -> String {
    if period >= 1440 {
        format!("{} {} * * *", offset % 60, offset / 60 % 24)
    } else if period >= 60 {
        let step = period / 60;
        if step == 1 {
            format!("{} * * * *", offset % 60)
        } else {
            format!("{} {}/{step} * * *", offset % 60, offset / 60 % step)
        }
    } else {
        format!("{}/{period} * * * *", offset % period)
    }
}

/// How a schedule takes its backups (`backupMethod`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BackupMethod {
    /// vtbackup in a Job of its own (the default, as in the Go operator).
    Vtbackup,
    /// A Job asks vtctld for BackupShard.
    Vtctldclient,
}

/// What one strategy of a schedule backs up.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum BackupScope {
    /// One shard: `keyspace` and `shard` (the default).
    #[default]
    Shard,
    /// Every shard of `keyspace`, as its partitionings in the spec make them.
    Keyspace,
    /// Every shard of every keyspace of the cluster.
    Cluster,
}

/// One shard, one keyspace or the whole cluster that a schedule backs up (`scope`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.scope) && self.scope == 'Cluster') != (has(self.keyspace) && self.keyspace != '')").message("set keyspace for scope Shard (the default) and Keyspace, and not for scope Cluster"))]
#[x_kube(validation = Rule::new("(!has(self.scope) || self.scope == 'Shard') == (has(self.shard) && self.shard != '')").message("set shard for scope Shard (the default), and not for scope Keyspace or Cluster"))]
pub struct VitessBackupScheduleStrategy {
    /// Name of the strategy, e.g. `BackupShard` (a label for people; every strategy runs
    /// vtctldclient BackupShard).
    #[schemars(length(min = 1))]
    pub name: String,
    /// `Shard` (default): the one shard `keyspace`/`shard`; `Keyspace`: every shard of
    /// `keyspace`; `Cluster`: every shard of the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<BackupScope>,
    /// Keyspace to back up (scopes Shard and Keyspace).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 256))]
    pub keyspace: String,
    /// Shard to back up, in Vitess form (`-`, `-80`); scope Shard only.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 256))]
    pub shard: String,
    /// Flags of vtctldclient BackupShard, `flag: value` (e.g. `allow-primary: "true"`,
    /// `upgrade-safe: "true"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_flags: Option<Flags>,
}

/// vtctld settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VitessDashboardSpec {
    /// Cells to run vtctld in (default: every cell).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cells: Option<Vec<String>>,
    /// vtctld pods per cell (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub replicas: Option<i32>,
    /// Compute resources of each vtctld (default 100m CPU, 128Mi memory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "core::<Option<Resources>>")]
    pub resources: Option<Resources>,
    /// Extra vtctld flags, `flag: value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_flags: Option<Flags>,
    /// Pod settings: extraEnv, extraVolumes, extraVolumeMounts, initContainers,
    /// sidecarContainers, affinity, annotations, extraLabels, tolerations,
    /// topologySpreadConstraints.
    #[serde(flatten)]
    pub pod: PodOverrides,
    /// Changes to the vtctld Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceOverrides>,
    /// TLS the operator uses to call vtctld's gRPC port; unset: plaintext. vtctld's own
    /// server side is set with its flags (`grpc-cert`, `grpc-key`, `grpc-ca`) and volumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "clientTLS")]
    pub client_tls: Option<VtctldClientTls>,
}

/// How the operator reaches vtctld over TLS: vtctld's gRPC is usually mutually
/// authenticated (a server certificate, and one CA that checks both sides).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.certSecret) == has(self.keySecret)").message("set both certSecret and keySecret, or neither"))]
pub struct VtctldClientTls {
    /// CA certificate (PEM) that signed vtctld's server certificate.
    pub ca_secret: SecretKeyRef,
    /// Client certificate (PEM) the operator presents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_secret: Option<SecretKeyRef>,
    /// Private key (PEM) of the client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_secret: Option<SecretKeyRef>,
    /// Name to check in vtctld's certificate (default: the host of vtctld's address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
}

/// A key of a Secret in the cluster's namespace, read by the operator itself.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Secret name.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Key within the Secret.
    #[schemars(length(min = 1))]
    pub key: String,
}

/// vtadmin settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VtAdminSpec {
    /// RBAC configuration file; without it, RBAC is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rbac: Option<SecretSource>,
    /// Cells to run vtadmin in (default: every cell).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cells: Option<Vec<String>>,
    /// URLs of vtadmin-api as browsers reach them: one, or one per cell.
    #[schemars(length(min = 1))]
    pub api_addresses: Vec<String>,
    /// vtadmin pods per cell (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub replicas: Option<i32>,
    /// Compute resources of vtadmin-web.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "core::<Option<Resources>>")]
    pub web_resources: Option<Resources>,
    /// Compute resources of vtadmin-api.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "core::<Option<Resources>>")]
    pub api_resources: Option<Resources>,
    /// The browser's fetch `credentials` mode (default `omit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetch_credentials: Option<String>,
    /// Read-only web UI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// Extra vtadmin-api flags, `flag: value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_flags: Option<Flags>,
    /// Pod settings: extraEnv, extraVolumes, extraVolumeMounts, initContainers,
    /// sidecarContainers, affinity, annotations, extraLabels, tolerations,
    /// topologySpreadConstraints.
    #[serde(flatten)]
    pub pod: PodOverrides,
    /// Changes to the vtadmin Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceOverrides>,
}

/// Availability of a Service-fronted component.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    /// Whether the Service has ready endpoints.
    #[serde(default)]
    pub available: ConditionStatus,
    /// Name of the Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
}

/// A cell, as the cluster sees it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VitessClusterCellStatus {
    /// Changes waiting to be rolled out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_changes: Option<String>,
    /// Whether every vtgate of the cell is available.
    #[serde(default)]
    pub gateway_available: ConditionStatus,
}

/// A keyspace, as the cluster sees it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VitessClusterKeyspaceStatus {
    /// Changes waiting to be rolled out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_changes: Option<String>,
    /// Shards the spec asks for.
    #[serde(default)]
    pub desired_shards: i32,
    /// Shards that exist.
    #[serde(default)]
    pub shards: i32,
    /// Shards that are ready.
    #[serde(default)]
    pub ready_shards: i32,
    /// Shards without pending changes.
    #[serde(default)]
    pub updated_shards: i32,
    /// Tablets the spec asks for.
    #[serde(default)]
    pub desired_tablets: i32,
    /// Tablets that exist.
    #[serde(default)]
    pub tablets: i32,
    /// Tablets that are ready.
    #[serde(default)]
    pub ready_tablets: i32,
    /// Tablets without pending changes.
    #[serde(default)]
    pub updated_tablets: i32,
    /// Cells with tablets of the keyspace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cells: Vec<String>,
}

/// Observed state of a VitessCluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VitessClusterStatus {
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The global lockserver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_lockserver: Option<LockserverStatus>,
    /// Name of the cluster-wide vtgate Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_service_name: Option<String>,
    /// vtctld.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vitess_dashboard: Option<ServiceStatus>,
    /// vtadmin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vtadmin: Option<ServiceStatus>,
    /// Cells by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cells: BTreeMap<String, VitessClusterCellStatus>,
    /// Keyspaces by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub keyspaces: BTreeMap<String, VitessClusterKeyspaceStatus>,
    /// Cells no longer in the spec that could not be turned down yet, and why.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub orphaned_cells: BTreeMap<String, OrphanStatus>,
    /// Keyspaces no longer in the spec that could not be turned down yet, and why.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub orphaned_keyspaces: BTreeMap<String, OrphanStatus>,
    /// `ready/desired` keyspaces, for `kubectl get vt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Standard conditions (`Ready`, `Valid`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Conditions,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frequencies_cron_can_express() {
        for (text, minutes) in [
            ("1m", 1),
            ("5m", 5),
            ("30m", 30),
            ("60s", 1),
            ("1h", 60),
            ("90m0s", 0),
            ("0.5h", 30),
            ("6h", 360),
            ("12h", 720),
            ("24h", 1440),
            ("1440m", 1440),
        ] {
            let got = frequency_minutes(text);
            if minutes == 0 {
                assert!(got.is_err(), "{text}: {got:?}");
            } else {
                assert_eq!(got, Ok(minutes), "{text}");
            }
        }
        for bad in [
            "", "7m", "90s", "5h", "48h", "1d", "m", "-1h", "1.5", "30sec",
        ] {
            assert!(frequency_minutes(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn staggered_crons_keep_the_period() {
        assert_eq!(staggered_cron(1, 0), "0/1 * * * *");
        assert_eq!(staggered_cron(15, 7), "7/15 * * * *");
        assert_eq!(staggered_cron(60, 42), "42 * * * *");
        assert_eq!(staggered_cron(360, 125), "5 2/6 * * *");
        assert_eq!(staggered_cron(1440, 61), "1 1 * * *");
    }

    #[test]
    fn schedule_or_frequency() {
        let mut schedule = VitessBackupScheduleTemplate {
            name: "nightly".into(),
            schedule: "0 2 * * *".into(),
            ..Default::default()
        };
        let cron =
            |s: &VitessBackupScheduleTemplate| s.cron_for("example", "commerce", "-", "nightly");
        assert_eq!(cron(&schedule).as_deref(), Ok("0 2 * * *"));
        schedule.frequency = "24h".into();
        assert!(cron(&schedule).is_err(), "both set");
        schedule.schedule.clear();
        // The Go operator's offsets for these identities (computed with its algorithm in Go).
        assert_eq!(cron(&schedule).as_deref(), Ok("14 0 * * *"));
        schedule.frequency = "1h".into();
        assert_eq!(
            schedule
                .cron_for("example", "commerce", "-80", "hourly-commerce-x-80")
                .as_deref(),
            Ok("46 * * * *")
        );
        schedule.frequency = "15m".into();
        assert_eq!(
            schedule
                .cron_for("example", "customer", "80-", "q")
                .as_deref(),
            Ok("7/15 * * * *")
        );
        schedule.frequency.clear();
        assert!(cron(&schedule).is_err(), "neither set");
    }

    /// The Go operator's `keyspaces:` with nothing after it (its 102_keyspace_teardown.yaml).
    #[test]
    fn null_lists_read_as_empty() {
        let cluster: VitessCluster = serde_json::from_value(serde_json::json!({
            "apiVersion": "planetscale.com/v2",
            "kind": "VitessCluster",
            "metadata": {"name": "example"},
            "spec": {"cells": null, "keyspaces": null}
        }))
        .unwrap();
        assert!(cluster.spec.keyspaces.is_empty() && cluster.spec.cells.is_empty());
    }
}
