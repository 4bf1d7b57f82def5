//! VitessCluster (`vt`): the one kind people write. Everything else is made from it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Affinity;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::backupstorage::{VitessBackupLocation, VitessBackupSubcontrollerSpec};
use super::cell::VitessCellTemplate;
use super::keyspace::VitessKeyspaceTemplate;
use super::shared::{
    ConditionStatus, Conditions, Flags, ImagePullSecrets, LockserverSpec, LockserverStatus,
    OrphanStatus, PodOverrides, Resources, SecretSource, ServiceOverrides, StringMap,
    TopoReconcileConfig, VitessClusterUpdateStrategy, VitessImagePullPolicies, VitessImages, core,
    preserve_object,
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
    /// vtadmin (API and web UI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vtadmin: Option<VtAdminSpec>,
    /// Cells (failure domains, usually zones). Tablet pools and vtctld refer to them by name.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    #[schemars(length(max = 50))]
    pub cells: Vec<VitessCellTemplate>,
    /// Keyspaces (logical databases) and how each is sharded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
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
    /// Scheduled backups, each a CronJob whose Jobs ask vtctld for BackupShard; names are
    /// unique.
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
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VitessBackupScheduleTemplate {
    /// Schedule name, unique in the cluster.
    #[schemars(
        length(min = 1),
        regex(pattern = r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$")
    )]
    pub name: String,
    /// Cron expression, e.g. `0 2 * * *`.
    pub schedule: String,
    /// What to back up: shards, keyspaces or the whole cluster, one after the other in one
    /// Job.
    #[schemars(length(min = 1, max = 100))]
    pub strategies: Vec<VitessBackupScheduleStrategy>,
    /// Compute resources of each backup job's pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "core::<Option<Resources>>")]
    pub resources: Option<Resources>,
    /// Successful jobs to keep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub successful_jobs_history_limit: Option<i32>,
    /// Failed jobs to keep.
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
    /// Accepted for compatibility with the Go operator and ignored: Kubernetes' CronJob
    /// controller has no such setting (after more than 100 missed runs it warns with Event
    /// `TooManyMissedTimes` and starts the latest); `startingDeadlineSeconds` bounds how far
    /// back it looks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub allowed_missed_run: Option<i32>,
    /// Minutes a backup job may run before it is stopped (default 10; 0 means the default).
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
