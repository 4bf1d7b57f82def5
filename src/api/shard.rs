//! VitessShard (`vts`): one key range of a keyspace, its tablet pools, primary and drains.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Lifecycle, PersistentVolumeClaimSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::backupstorage::VitessBackupLocation;
use super::cluster::BackupEngine;
use super::keyspace::VitessOrchestratorSpec;
use super::shared::{
    ConditionStatus, Conditions, Flags, ImagePullSecrets, OrphanStatus, PodOverrides, Resources,
    SecretSource, StringMap, TopoReconcileConfig, VitessClusterUpdateStrategy,
    VitessImagePullPolicies, VitessKeyspaceImages, VitessLockserverParams, core, preserve_object,
    volume_claim,
};

/// A key range in hex; empty bounds are unbounded. `-80` is `{end: "80"}`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.start) || !has(self.end) || self.start == '' || self.end == '' || self.start < self.end").message("start must be below end"))]
#[x_kube(validation = Rule::new("(!has(self.start) || self.start == '' ? 1 : size(self.start)) + (!has(self.end) || self.end == '' ? 1 : size(self.end)) <= 62").message("start and end together may have at most 62 hex digits: the shard's name <start>-<end> (x for an empty bound) is a label value of at most 63 characters"))]
pub struct VitessKeyRange {
    /// Inclusive lower bound, lower-case hex with an even number of digits; empty: the start.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 64), regex(pattern = r"^([0-9a-f][0-9a-f])*$"))]
    pub start: String,
    /// Exclusive upper bound, lower-case hex with an even number of digits; empty: the end.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 64), regex(pattern = r"^([0-9a-f][0-9a-f])*$"))]
    pub end: String,
}

/// Kind of tablets in a pool.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TabletPoolType {
    /// Tablets that may become primary and serve replica reads.
    #[default]
    Replica,
    /// Read-only tablets for analytics and batch work; never primary.
    Rdonly,
    /// A tablet in front of an externally managed primary.
    Externalmaster,
    /// A tablet in front of an externally managed replica.
    Externalreplica,
    /// A tablet in front of an externally managed read-only replica.
    Externalrdonly,
}

impl TabletPoolType {
    /// The lower-case name used in labels and in the tablet UID.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Replica => "replica",
            Self::Rdonly => "rdonly",
            Self::Externalmaster => "externalmaster",
            Self::Externalreplica => "externalreplica",
            Self::Externalrdonly => "externalrdonly",
        }
    }
}

/// Settings shared by every shard a partitioning makes.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VitessShardTemplate {
    /// Groups of tablets of the shard; at most one per (cell, type, name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type", "cell", "name"]))]
    #[schemars(length(min = 1, max = 16))]
    pub tablet_pools: Vec<VitessShardTabletPool>,
    /// Scratch space of vtbackup pods (the first backup of a new shard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vtbackup: Option<VitessShardVtbackup>,
    /// SQL script run once on a fresh database (users, grants, `_vt`).
    pub database_init_script_secret: SecretSource,
    /// Replication set-up of new shards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication: Option<VitessReplicationSpec>,
    /// Annotations of the VitessShard object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<StringMap>,
}

/// How a new shard's replication is set up.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VitessReplicationSpec {
    /// Elect a first primary when the shard is new and all its tablets are ready (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initialize_master: Option<bool>,
    /// Take a first (empty) backup of a new shard before electing a primary, so tablets can
    /// restore (default true; needs spec.backup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initialize_backup: Option<bool>,
    /// The Go operator's switch for repairing replication after a primary restarts; read by
    /// neither operator: the shard's vtorc does that repair. `false` has no effect (`validate`
    /// warns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recover_restarted_master: Option<bool>,
    /// Deprecated and ignored: set `durabilityPolicy` on the keyspace. Accepted so that YAML
    /// written for older operator releases still applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforce_semi_sync: Option<bool>,
}

/// Scratch space for vtbackup pods.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.useEmptyDirForInitialBackup) && self.useEmptyDirForInitialBackup && has(self.dataVolumeClaimTemplate))").message("useEmptyDirForInitialBackup and dataVolumeClaimTemplate are mutually exclusive"))]
pub struct VitessShardVtbackup {
    /// Use an emptyDir instead of a volume claim for the first backup of a new shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_empty_dir_for_initial_backup: Option<bool>,
    /// Volume claim of the vtbackup pod (default: the first tablet pool's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "volume_claim")]
    pub data_volume_claim_template: Option<PersistentVolumeClaimSpec>,
}

/// A group of identical tablets of one type in one cell.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.mysqld) && has(self.externalDatastore))").message("set mysqld (a local MySQL) or externalDatastore, not both"))]
#[x_kube(validation = Rule::new("!has(self.mysqld) || has(self.dataVolumeClaimTemplate)").message("a tablet pool with a local mysqld needs dataVolumeClaimTemplate for its data"))]
pub struct VitessShardTabletPool {
    /// Cell the tablets run in; must be one of the cluster's cells.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[A-Za-z0-9]([_.A-Za-z0-9]*[A-Za-z0-9])?$")
    )]
    pub cell: String,
    /// Tablet type: replica, rdonly, externalmaster, externalreplica or externalrdonly.
    #[serde(rename = "type")]
    pub type_: TabletPoolType,
    /// Name distinguishing pools of the same cell and type (part of the tablet UID when set).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(
        length(max = 63),
        regex(pattern = r"^([A-Za-z0-9]([A-Za-z0-9-_.]*[A-Za-z0-9])?)?$")
    )]
    #[schemars(extend("default" = ""))]
    pub name: String,
    /// Number of tablets (0 or more).
    #[schemars(range(min = 0))]
    pub replicas: i32,
    /// Volume claim of each tablet's MySQL data; required with `mysqld`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "volume_claim")]
    pub data_volume_claim_template: Option<PersistentVolumeClaimSpec>,
    /// Backup location (by name) this pool backs up to and restores from (default: unnamed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_location_name: Option<String>,
    /// The vttablet container.
    pub vttablet: VttabletSpec,
    /// A local MySQL (mysqld container) for each tablet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mysqld: Option<MysqldSpec>,
    /// The mysqld-exporter (Prometheus) container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mysqld_exporter: Option<MysqldExporterSpec>,
    /// An externally managed MySQL instead of a local one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_datastore: Option<ExternalDatastore>,
    /// Pod settings: extraEnv, extraVolumes, extraVolumeMounts, initContainers,
    /// sidecarContainers, affinity, annotations, extraLabels, tolerations,
    /// topologySpreadConstraints.
    #[serde(flatten)]
    pub pod: PodOverrides,
}

/// The vttablet container.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VttabletSpec {
    /// Compute resources of the vttablet container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "core::<Option<Resources>>")]
    pub resources: Option<Resources>,
    /// Extra vttablet flags, `flag: value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_flags: Option<Flags>,
    /// Extra flags for vtbackup only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vtbackup_extra_flags: Option<Flags>,
    /// Lifecycle hooks of the vttablet container (core/v1 Lifecycle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_object")]
    pub lifecycle: Option<Lifecycle>,
    /// Grace period of tablet pods on deletion, in seconds (default: long, for a clean
    /// shutdown of MySQL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub termination_grace_period_seconds: Option<i64>,
}

/// A local MySQL container.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MysqldSpec {
    /// Compute resources of the mysqld container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "core::<Option<Resources>>")]
    pub resources: Option<Resources>,
    /// A my.cnf fragment mysqld reads after Vitess' own (also vtbackup's, for the first
    /// pool). Carried in the pod annotation `planetscale.com/mysqld-config-overrides`: a
    /// change replaces the pool's tablets under the update strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_overrides: Option<String>,
}

/// The mysqld-exporter container.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MysqldExporterSpec {
    /// Extra mysqld_exporter flags, `flag: value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_flags: Option<Flags>,
    /// Compute resources of the exporter container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "core::<Option<Resources>>")]
    pub resources: Option<Resources>,
}

/// An externally managed MySQL that the tablets front.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalDatastore {
    /// MySQL user.
    #[schemars(length(min = 1))]
    pub user: String,
    /// MySQL host, without port.
    #[schemars(length(min = 1))]
    pub host: String,
    /// MySQL port.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// Database name.
    #[schemars(length(min = 1))]
    pub database: String,
    /// Credentials file, JSON `{"user": ["password"]}`.
    pub credentials_secret: SecretSource,
    /// CA certificate that signs the server's certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "serverCACertSecret")]
    pub server_ca_cert_secret: Option<SecretSource>,
}

/// One shard of a keyspace and its tablets. Made by the operator from a VitessKeyspace; edit
/// the VitessCluster instead.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "planetscale.com",
    version = "v2",
    kind = "VitessShard",
    plural = "vitessshards",
    shortname = "vts",
    namespaced,
    status = "VitessShardStatus",
    doc = "One shard (key range) of a Vitess keyspace: its tablet pods, first primary and drains. Made by the operator; edit the VitessCluster instead.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Primary", type_ = "string", json_path = ".status.masterAlias"),
    printcolumn(name = "Tablets", type_ = "string", json_path = ".status.summary"),
    printcolumn(
        name = "Reason",
        type_ = "string",
        priority = 1,
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct VitessShardSpec {
    #[serde(flatten)]
    pub template: VitessShardTemplate,
    /// Vitess shard name: the key range in Vitess form (`-`, `-80`, `80-`).
    pub name: String,
    /// MySQL database name (default `vt_<keyspace>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_name: Option<String>,
    /// Zone of each cell of the cluster.
    #[serde(default)]
    pub zone_map: StringMap,
    /// Images of the tablets.
    #[serde(default)]
    pub images: VitessKeyspaceImages,
    /// Pull policies of the images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policies: Option<VitessImagePullPolicies>,
    /// Pull secrets of the tablet pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "core::<Option<ImagePullSecrets>>")]
    pub image_pull_secrets: Option<ImagePullSecrets>,
    /// The key range the shard serves.
    #[serde(default)]
    pub key_range: VitessKeyRange,
    /// Where the global topology is.
    pub global_lockserver: VitessLockserverParams,
    /// vtorc for this shard's keyspace, inherited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vitess_orchestrator: Option<VitessOrchestratorSpec>,
    /// Backup locations of the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 10))]
    pub backup_locations: Option<Vec<VitessBackupLocation>>,
    /// Backup engine of the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_engine: Option<BackupEngine>,
    /// Flags for every Vitess component, inherited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_vitess_flags: Option<Flags>,
    /// Topology reconciliation switches, inherited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology_reconciliation: Option<TopoReconcileConfig>,
    /// Update strategy, inherited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_strategy: Option<VitessClusterUpdateStrategy>,
    /// vtgate's tablet refresh interval, inherited (e.g. `60s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tablet_refresh_interval: Option<String>,
}

/// Observed state of one tablet.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VitessTabletStatus {
    /// Pool type of the tablet (replica, rdonly, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_type: Option<String>,
    /// Index of the tablet in its pool, from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<i32>,
    /// Name of the tablet's pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_name: Option<String>,
    /// Whether the pod is running.
    #[serde(default)]
    pub running: ConditionStatus,
    /// Whether the pod is ready.
    #[serde(default)]
    pub ready: ConditionStatus,
    /// Whether the pod has been ready long enough for vtgate to see it.
    #[serde(default)]
    pub available: ConditionStatus,
    /// Whether the data volume claim is bound.
    #[serde(default)]
    pub data_volume_bound: ConditionStatus,
    /// Tablet type Vitess reports (PRIMARY, REPLICA, RDONLY, ...).
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "type")]
    pub type_: Option<String>,
    /// Changes waiting to be rolled out to this tablet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_changes: Option<String>,
}

/// Backups of this shard in one location.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShardBackupLocationStatus {
    /// Location name (empty: the unnamed location).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Complete backups.
    #[serde(default)]
    pub complete_backups: i32,
    /// Incomplete backups (in progress or failed).
    #[serde(default)]
    pub incomplete_backups: i32,
    /// Backups vtctld lists without saying whether they are complete (Vitess v0.24 says it
    /// of none): counted neither complete nor incomplete.
    #[serde(default)]
    pub unknown_backups: i32,
    /// Finish time of the latest complete backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_complete_backup_time: Option<Time>,
    /// Finish time (start time where the finish is unknown) of the latest backup, complete or
    /// not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_backup_time: Option<Time>,
}

/// Availability of a keyspace's vtorc.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VitessOrchestratorStatus {
    /// Whether vtorc is available.
    #[serde(default)]
    pub available: ConditionStatus,
    /// Name of vtorc's Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
}

/// Observed state of a VitessShard.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VitessShardStatus {
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Tablets by alias (`zone1-2469782763`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tablets: BTreeMap<String, VitessTabletStatus>,
    /// Tablets that exist but are no longer wanted, and why they are kept.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub orphaned_tablets: BTreeMap<String, OrphanStatus>,
    /// Cells with tablets of this shard.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cells: Vec<String>,
    /// vtorc availability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vitess_orchestrator: Option<VitessOrchestratorStatus>,
    /// Whether Vitess records a primary for the shard.
    #[serde(default)]
    pub has_master: ConditionStatus,
    /// Whether the shard has a first backup.
    #[serde(default)]
    pub has_initial_backup: ConditionStatus,
    /// Whether the shard serves writes for its key range.
    #[serde(default)]
    pub serving_writes: ConditionStatus,
    /// Whether the shard is in no serving partitioning (safe to turn down).
    #[serde(default)]
    pub idle: ConditionStatus,
    /// Alias of the primary tablet, as Vitess records it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_alias: Option<String>,
    /// Alias of the primary tablet (the same as masterAlias, in today's word).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_alias: Option<String>,
    /// Backups per location.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backup_locations: Vec<ShardBackupLocationStatus>,
    /// Oldest shard generation any tablet pod was built from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lowest_pod_generation: Option<i64>,
    /// `ready/desired` tablets, for `kubectl get vts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Standard conditions (`Ready`, `PrimaryElected`, `Draining`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Conditions,
}
