//! VitessBackup (`vtb`): one backup found in storage (an inventory entry the operator keeps),
//! or, when a user creates one with `spec.keyspace` and `spec.shard`, a request for a backup.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::shared::Conditions;

/// A backup of one shard. Inventory entries have an empty spec; a user asks for an on-demand
/// backup by creating one that names `keyspace` and `shard`. Deleting a VitessBackup never
/// deletes data in storage.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "planetscale.com",
    version = "v2",
    kind = "VitessBackup",
    plural = "vitessbackups",
    shortname = "vtb",
    namespaced,
    status = "VitessBackupStatus",
    doc = "A backup of one Vitess shard: an entry of the operator's inventory of a backup location, or a user's request for an on-demand backup.",
    printcolumn(name = "Complete", type_ = "boolean", json_path = ".status.complete"),
    printcolumn(name = "Started", type_ = "date", json_path = ".status.startTime"),
    printcolumn(name = "Finished", type_ = "date", json_path = ".status.finishedTime"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct VitessBackupSpec {
    /// For an on-demand backup: the keyspace to back up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyspace: Option<String>,
    /// For an on-demand backup: the shard (Vitess form, e.g. `-` or `-80`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// For an on-demand backup: the backup location name (default: the unnamed location).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// For an on-demand backup: vtctld may back up from the primary when no replica can
    /// (default false: a backup never runs on the primary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_primary: Option<bool>,
}

/// What is known of a backup.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VitessBackupStatus {
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When the backup started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When the backup finished, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_time: Option<Time>,
    /// Whether the backup is complete and usable for a restore.
    #[serde(default)]
    pub complete: bool,
    /// For an inventory entry: the backup's status as vtctld's GetBackups reports it
    /// (`COMPLETE`, `INCOMPLETE`, `VALID`, `INVALID` or `UNKNOWN`). Vitess v0.24 reports
    /// `UNKNOWN` for every backup: `complete` is then false because nothing said the backup is
    /// complete, not because it is known to be incomplete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vtctld_status: Option<String>,
    /// Replication position (GTID set) of the backup, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<String>,
    /// Backup engine that took it (builtin, xtrabackup, mysqlshell).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// Directory of the backup in storage (`<keyspace>/<shard>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_directory: Option<String>,
    /// Name of the backup in storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_name: Option<String>,
    /// Standard conditions (`Complete` for on-demand requests).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Conditions,
}
