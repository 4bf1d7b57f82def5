//! VitessBackupStorage (`vtbs`): one per backup location of a cluster, and the location types
//! (GCS, S3, Azure blob, Ceph, a volume) shared by clusters, keyspaces and shards.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::shared::{Conditions, SecretSource, StringMap, preserve_object};

/// Where backups are stored. Exactly one backend (gcs, s3, azblob, ceph, volume) is set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.gcs) ? 1 : 0) + (has(self.s3) ? 1 : 0) + (has(self.azblob) ? 1 : 0) + (has(self.ceph) ? 1 : 0) + (has(self.volume) ? 1 : 0) == 1").message("set exactly one backup backend: gcs, s3, azblob, ceph or volume"))]
pub struct VitessBackupLocation {
    /// Name that tablet pools use in `backupLocationName`; empty for the default location.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(
        length(max = 63),
        regex(pattern = r"^([A-Za-z0-9]([A-Za-z0-9-_.]*[A-Za-z0-9])?)?$")
    )]
    #[schemars(extend("default" = ""))]
    pub name: String,
    /// Google Cloud Storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcs: Option<GcsBackupLocation>,
    /// Amazon S3 or an S3-compatible store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3BackupLocation>,
    /// Azure Blob Storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azblob: Option<AzblobBackupLocation>,
    /// Ceph (through its S3 interface).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ceph: Option<CephBackupLocation>,
    /// A volume mounted into every pod that reads or writes backups (core/v1 VolumeSource:
    /// nfs, persistentVolumeClaim, hostPath, ...). Kept as given: it becomes a pod Volume when
    /// the pods are built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_object")]
    pub volume: Option<serde_json::Map<String, serde_json::Value>>,
    /// Sub-path within `volume`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_sub_path: Option<String>,
    /// Annotations added to pods that use this location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<StringMap>,
    /// How old a shard's latest complete backup here may be (`26h`, `90m`, `1h30m`) before
    /// the shard's `BackupsFresh` condition turns False. Unset: no such condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(h|m|s))+$"))]
    pub max_backup_age: Option<String>,
}

/// A Google Cloud Storage bucket.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GcsBackupLocation {
    /// Bucket name, as Google allows it: 3 to 222 characters of lower-case letters, digits,
    /// `-`, `_` and `.`, beginning and ending with a letter or digit.
    #[schemars(
        length(min = 3, max = 222),
        regex(pattern = r"^[a-z0-9][-a-z0-9_.]*[a-z0-9]$")
    )]
    pub bucket: String,
    /// Prefix for all objects; the root is `<keyPrefix>/<cluster>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256), regex(pattern = r"^[^\r\n]*$"))]
    pub key_prefix: Option<String>,
    /// Service account key file (JSON); without it, the node's credentials are used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_secret: Option<SecretSource>,
}

/// An S3 bucket.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct S3BackupLocation {
    /// Region of the bucket.
    #[schemars(length(min = 1))]
    pub region: String,
    /// Bucket name: 3 to 255 ASCII letters, digits, `-`, `_` and `.`, beginning and ending
    /// with a letter or digit (looser than AWS' rule for new buckets: S3-compatible stores and
    /// older buckets allow upper case and `_`).
    #[schemars(
        length(min = 3, max = 255),
        regex(pattern = r"^[A-Za-z0-9][-A-Za-z0-9_.]*[A-Za-z0-9]$")
    )]
    pub bucket: String,
    /// Endpoint `host:port`, for S3-compatible stores (default: the region's AWS endpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Address the bucket by path (`endpoint/bucket`) instead of by virtual host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_path_style: Option<bool>,
    /// Smallest part of a multipart upload, in bytes (Vitess' default is 5 MiB; larger parts
    /// for very large backups); 0 or unset: Vitess' default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub min_part_size: Option<i64>,
    /// Prefix for all objects; the root is `<keyPrefix>/<cluster>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256), regex(pattern = r"^[^\r\n]*$"))]
    pub key_prefix: Option<String>,
    /// Credentials file in `~/.aws/credentials` format; without it, the pod's environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_secret: Option<SecretSource>,
}

/// An Azure Blob Storage container.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzblobBackupLocation {
    /// Storage account name.
    #[schemars(length(min = 1))]
    pub account: String,
    /// Container name.
    #[schemars(length(min = 1))]
    pub container: String,
    /// Prefix for all objects; the root is `<keyPrefix>/<cluster>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256), regex(pattern = r"^[^\r\n]*$"))]
    pub key_prefix: Option<String>,
    /// File holding the storage account key.
    pub auth_secret: SecretSource,
}

/// A Ceph object store.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CephBackupLocation {
    /// Vitess' Ceph backup configuration file (JSON).
    pub auth_secret: SecretSource,
}

/// One backup location of a cluster, as the operator inventories it. Made by the operator from
/// `VitessCluster.spec.backup.locations`; edit the cluster instead.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "planetscale.com",
    version = "v2",
    kind = "VitessBackupStorage",
    plural = "vitessbackupstorages",
    shortname = "vtbs",
    namespaced,
    status = "VitessBackupStorageStatus",
    doc = "A backup location of a VitessCluster, whose backups the operator lists as VitessBackup objects. Made by the operator; edit the VitessCluster instead.",
    printcolumn(
        name = "Backups",
        type_ = "integer",
        json_path = ".status.totalBackupCount"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct VitessBackupStorageSpec {
    /// The location, as given in the cluster spec.
    pub location: VitessBackupLocation,
    /// Settings of what lists the backups (kept for compatibility; the operator itself lists
    /// backups through vtctld, so no pod runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subcontroller: Option<VitessBackupSubcontrollerSpec>,
}

/// Settings of the Go operator's backup subcontroller pod; accepted for compatibility.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VitessBackupSubcontrollerSpec {
    /// Service account of the subcontroller pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
}

/// Observed state of a VitessBackupStorage.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VitessBackupStorageStatus {
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Backups found in this location, over all keyspaces and shards.
    #[serde(default)]
    pub total_backup_count: i32,
    /// Standard conditions (`Ready`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Conditions,
}
