//! VitessKeyspace (`vtk`): a logical database, split into shards by its partitionings.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::backupstorage::VitessBackupLocation;
use super::cluster::BackupEngine;
use super::shard::{VitessKeyRange, VitessShardTemplate};
use super::shared::{
    ConditionStatus, Conditions, Flags, ImagePullSecrets, OrphanStatus, PodOverrides, Resources,
    ServiceOverrides, StringMap, TopoReconcileConfig, VitessClusterUpdateStrategy,
    VitessImagePullPolicies, VitessKeyspaceImages, VitessLockserverParams, core,
};

/// What happens when a keyspace is removed from the cluster spec.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum TurndownPolicy {
    /// Turn down only once no partitioning of the keyspace serves (the default).
    #[default]
    RequireIdle,
    /// Turn down at once. Volumes are still kept.
    Immediate,
}

/// A keyspace as written in the cluster spec.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VitessKeyspaceTemplate {
    /// Keyspace name in Vitess; never rename a keyspace that holds data.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[A-Za-z0-9]([A-Za-z0-9-_.]*[A-Za-z0-9])?$")
    )]
    pub name: String,
    /// MySQL database name (default `vt_<keyspace>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_name: Option<String>,
    /// Vitess durability policy: one Vitess (v0.24) registers (`none`, `semi_sync`,
    /// `cross_cell`, `semi_sync_with_rdonly_ack`, `cross_cell_with_rdonly_ack`, `test`);
    /// unset or empty: Vitess' default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = [
        "",
        "none",
        "semi_sync",
        "cross_cell",
        "semi_sync_with_rdonly_ack",
        "cross_cell_with_rdonly_ack",
        "test"
    ]))]
    pub durability_policy: Option<String>,
    /// Deploy vtorc (automated failure detection and repair) for this keyspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vitess_orchestrator: Option<VitessOrchestratorSpec>,
    /// How the keyspace is split into shards: one partitioning, or two while resharding.
    #[schemars(length(min = 1, max = 2))]
    pub partitionings: Vec<VitessKeyspacePartitioning>,
    /// What happens when the keyspace is removed from the spec: `RequireIdle` or `Immediate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turndown_policy: Option<TurndownPolicy>,
    /// Annotations of the VitessKeyspace object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<StringMap>,
    /// Images of this keyspace's tablets, overriding the cluster's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<VitessKeyspaceImages>,
    /// Name of the Vitess sidecar database (default `_vt`), given to CreateKeyspace when the
    /// operator creates the keyspace; a keyspace that exists keeps its own (as in the Go
    /// operator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sidecar_db_name: Option<String>,
}

/// One way of splitting the keyspace; set exactly one of `equal` and `custom`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.equal) != has(self.custom)").message("set exactly one of equal and custom"))]
pub struct VitessKeyspacePartitioning {
    /// Split into a number of equal key ranges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equal: Option<VitessKeyspaceEqualPartitioning>,
    /// Split into key ranges listed one by one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<VitessKeyspaceCustomPartitioning>,
}

/// Equal key ranges sharing one shard template.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.hexWidth) || self.parts <= 2 || self.hexWidth <= 31").message("with more than 2 parts hexWidth may be at most 31: a middle shard's name <start>-<end> is a label value of at most 63 characters").field_path(".hexWidth"))]
pub struct VitessKeyspaceEqualPartitioning {
    /// Number of shards (1 = unsharded); changing it later means resharding.
    #[schemars(range(min = 1, max = 65536))]
    pub parts: i32,
    /// Hex digits of each bound (0: as few as tell the parts apart). Must be even; at most 61
    /// (31 with more than 2 parts), as shard names are label values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 61))]
    pub hex_width: Option<i32>,
    /// Settings of every shard.
    pub shard_template: VitessShardTemplate,
}

/// Key ranges listed one by one. The schema checks what one pass over the list can (exactly one
/// shard starts at the beginning and one ends at the end); overlaps and gaps compare shards
/// pairwise, too costly for a CRD rule, and are refused by `config/admission`'s policy and
/// `vitess-operator validate`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.shards.filter(s, !has(s.keyRange.start) || s.keyRange.start == '').size() == 1").message("exactly one shard must have an empty keyRange.start (the beginning of the keyspace)").field_path(".shards"))]
#[x_kube(validation = Rule::new("self.shards.filter(s, !has(s.keyRange.end) || s.keyRange.end == '').size() == 1").message("exactly one shard must have an empty keyRange.end (the end of the keyspace)").field_path(".shards"))]
pub struct VitessKeyspaceCustomPartitioning {
    /// The shards; their key ranges must cover the keyspace without overlap.
    #[schemars(length(min = 1, max = 256))]
    pub shards: Vec<VitessKeyspaceKeyRangeShard>,
}

/// One shard of a custom partitioning.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VitessKeyspaceKeyRangeShard {
    /// The key range of the shard.
    pub key_range: VitessKeyRange,
    #[serde(flatten)]
    pub template: VitessShardTemplate,
}

/// vtorc settings for a keyspace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VitessOrchestratorSpec {
    /// Compute resources of vtorc (default 100m CPU, 128Mi memory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "core::<Option<Resources>>")]
    pub resources: Option<Resources>,
    /// Extra vtorc flags, `flag: value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_flags: Option<Flags>,
    /// Pod settings: extraEnv, extraVolumes, extraVolumeMounts, initContainers,
    /// sidecarContainers, affinity, annotations, extraLabels, tolerations,
    /// topologySpreadConstraints.
    #[serde(flatten)]
    pub pod: PodOverrides,
    /// Accepted and not acted on: vtorc has no Service (the Go operator makes none either).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceOverrides>,
}

/// A keyspace and what the cluster hands down to it. Made by the operator from a
/// VitessCluster; edit the cluster instead.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "planetscale.com",
    version = "v2",
    kind = "VitessKeyspace",
    plural = "vitesskeyspaces",
    shortname = "vtk",
    namespaced,
    status = "VitessKeyspaceStatus",
    doc = "A Vitess keyspace (logical database) and its shards. Made by the operator; edit the VitessCluster instead.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Shards", type_ = "string", json_path = ".status.summary"),
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
pub struct VitessKeyspaceSpec {
    #[serde(flatten)]
    pub template: VitessKeyspaceTemplate,
    /// Where the global topology is.
    pub global_lockserver: VitessLockserverParams,
    /// Images, the cluster's with the keyspace's overrides applied.
    #[serde(default)]
    pub images: VitessKeyspaceImages,
    /// Pull policies of the images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policies: Option<VitessImagePullPolicies>,
    /// Pull secrets of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "core::<Option<ImagePullSecrets>>")]
    pub image_pull_secrets: Option<ImagePullSecrets>,
    /// Zone of each cell of the cluster.
    #[serde(default)]
    pub zone_map: StringMap,
    /// Backup locations of the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 10))]
    pub backup_locations: Option<Vec<VitessBackupLocation>>,
    /// Backup engine of the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_engine: Option<BackupEngine>,
    /// Flags for every Vitess component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_vitess_flags: Option<Flags>,
    /// Topology reconciliation switches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology_reconciliation: Option<TopoReconcileConfig>,
    /// Update strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_strategy: Option<VitessClusterUpdateStrategy>,
    /// vtgate's tablet refresh interval (e.g. `60s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tablet_refresh_interval: Option<String>,
}

/// Observed state of one shard, as the keyspace sees it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VitessKeyspaceShardStatus {
    /// Whether the shard has a primary.
    #[serde(default)]
    pub has_master: ConditionStatus,
    /// Whether the shard serves writes.
    #[serde(default)]
    pub serving_writes: ConditionStatus,
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
    /// Changes waiting to be rolled out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_changes: Option<String>,
    /// Cells with tablets of the shard.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cells: Vec<String>,
}

/// Observed state of one partitioning.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VitessKeyspacePartitioningStatus {
    /// Vitess names of its shards, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shard_names: Vec<String>,
    /// Whether this partitioning serves writes.
    #[serde(default)]
    pub serving_writes: ConditionStatus,
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
    /// Shards the spec asks for.
    #[serde(default)]
    pub desired_shards: i32,
    /// Shards that are ready.
    #[serde(default)]
    pub ready_shards: i32,
}

/// Observed state of a VitessKeyspace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VitessKeyspaceStatus {
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Shards by Vitess name (`-80`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub shards: BTreeMap<String, VitessKeyspaceShardStatus>,
    /// Partitionings, in spec order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partitionings: Vec<VitessKeyspacePartitioningStatus>,
    /// Shards no longer wanted, and why they are kept.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub orphaned_shards: BTreeMap<String, OrphanStatus>,
    /// Whether no partitioning of the keyspace serves (safe to turn down).
    #[serde(default)]
    pub idle: ConditionStatus,
    /// `ready/desired` shards, for `kubectl get vtk`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Standard conditions (`Ready`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Conditions,
    /// The active resharding workflow (a VReplication workflow between this keyspace's own
    /// shards), as the Go operator reports it; see the conditions `ReshardingActive` and
    /// `ReshardingInSync`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resharding: Option<ReshardingStatus>,
}

/// A resharding workflow of a keyspace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReshardingStatus {
    /// Name of the VReplication workflow.
    pub workflow: String,
    /// `Running`, `Copying`, `Error` or `Unknown`.
    pub state: String,
    /// Shards copied from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_shards: Vec<String>,
    /// Shards copied to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_shards: Vec<String>,
    /// Percent copied: 100 once the copy is over, -1 while copying (this operator does not
    /// estimate it; the Go operator does from table sizes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_progress: Option<i64>,
}
