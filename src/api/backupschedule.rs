//! VitessBackupSchedule (`vbsc`): one backup schedule of a cluster, made by the operator from
//! `VitessCluster.spec.backup.schedules[]` (or written by a user for a cluster), whose
//! controller starts one Job per shard and due time (`controller::backupschedule`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::cluster::VitessBackupScheduleTemplate;
use super::shared::{Conditions, PullPolicy};

/// A backup schedule of one VitessCluster: every strategy's shards get a Job of their own at
/// each due time of the schedule (a per-shard staggered one with `frequency`).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "planetscale.com",
    version = "v2",
    kind = "VitessBackupSchedule",
    plural = "vitessbackupschedules",
    shortname = "vbsc",
    namespaced,
    status = "VitessBackupScheduleStatus",
    doc = "A backup schedule of a VitessCluster: one Job per shard and due time, taking the backup through vtctld (vtctldclient BackupShard) or in a pod of its own (vtbackup). Made by the operator from spec.backup.schedules of the cluster, or written by a user.",
    printcolumn(name = "Cluster", type_ = "string", json_path = ".spec.cluster"),
    printcolumn(name = "Schedule", type_ = "string", json_path = ".spec.schedule"),
    printcolumn(name = "Frequency", type_ = "string", json_path = ".spec.frequency"),
    printcolumn(name = "Suspend", type_ = "boolean", json_path = ".spec.suspend"),
    printcolumn(name = "Last", type_ = "date", json_path = ".status.lastScheduledTime"),
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
pub struct VitessBackupScheduleSpec {
    /// The schedule, as written in the cluster's `spec.backup.schedules[]`.
    #[serde(flatten)]
    pub template: VitessBackupScheduleTemplate,
    /// Name of the VitessCluster (same namespace) whose shards this schedule backs up.
    #[schemars(length(min = 1, max = 63))]
    pub cluster: String,
    /// Image of the `vtctldclient` Jobs (default: the cluster's vtctld image).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Pull policy of `image` (default: the cluster's vtctld pull policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<PullPolicy>,
}

/// What the schedule did and will do, per strategy: a strategy of scope `Keyspace` or
/// `Cluster` stands for one entry per shard, named `<strategy>-<keyspace>-<shard>` (the shard
/// in its safe form, `x-80`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VitessBackupScheduleStatus {
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The Jobs of this schedule still running.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub active: Vec<ObjectReference>,
    /// The latest time a Job of this schedule was due (of any strategy) and started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scheduled_time: Option<Time>,
    /// Per strategy: the time the latest Job started was due.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub last_scheduled_times: BTreeMap<String, Time>,
    /// Per strategy, with `frequency`: the cron expression it runs on, staggered within the
    /// period by the shard's identity.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub generated_schedules: BTreeMap<String, String>,
    /// Per strategy: when its next Job is due.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub next_scheduled_times: BTreeMap<String, Time>,
    /// Per strategy: the latest due time left without a Job because more runs than
    /// `allowedMissedRun` had been missed (the operator down, a clock jump); the schedule
    /// resumes from there instead of starting a stale backup.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub last_skipped_times: BTreeMap<String, Time>,
    /// Standard conditions (`Ready`: every strategy is scheduled; False names what is wrong).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Conditions,
}
