//! Label and annotation keys, exactly the Go operator's, so its objects are recognised as ours.

use std::collections::BTreeMap;

pub const COMPONENT: &str = "planetscale.com/component";
pub const CLUSTER: &str = "planetscale.com/cluster";
pub const CELL: &str = "planetscale.com/cell";
pub const KEYSPACE: &str = "planetscale.com/keyspace";
/// Shard key range in its safe form (`x-80`).
pub const SHARD: &str = "planetscale.com/shard";
pub const TABLET_UID: &str = "planetscale.com/tablet-uid";
pub const TABLET_TYPE: &str = "planetscale.com/tablet-type";
pub const TABLET_INDEX: &str = "planetscale.com/tablet-index";
pub const POOL_NAME: &str = "planetscale.com/pool-name";
/// The backup location (name, empty for the unnamed one) of a VitessBackup.
pub const BACKUP_LOCATION: &str = "backup.planetscale.com/location";
/// What a vtbackup pod is for (`init`: a new shard's first backup).
pub const BACKUP_TYPE: &str = "backup.planetscale.com/type";
/// The VitessBackupSchedule (its object name, as in the Go operator) a Job and its pod run.
pub const BACKUP_SCHEDULE: &str = "planetscale.com/backup-schedule";
pub const ETCD_LOCKSERVER: &str = "etcd.planetscale.com/lockserver";
pub const ETCD_INDEX: &str = "etcd.planetscale.com/index";

/// Values of [`COMPONENT`].
pub mod component {
    pub const VTCTLD: &str = "vtctld";
    pub const VTGATE: &str = "vtgate";
    pub const VTTABLET: &str = "vttablet";
    pub const VTBACKUP: &str = "vtbackup";
    /// The VitessBackupSchedules the cluster makes from `spec.backup.schedules` (ours; and the
    /// CronJobs that schedules were in older versions of this operator, pruned).
    pub const VTBACKUP_SCHEDULE: &str = "vtbackup-schedule";
    pub const ETCD: &str = "etcd";
    pub const VTORC: &str = "vtorc";
    pub const VTADMIN: &str = "vtadmin";
}

/// Drain annotations on tablet pods.
pub mod drain {
    pub const SUPPORTED: &str = "drain.planetscale.com/supported";
    pub const STARTED: &str = "drain.planetscale.com/started";
    pub const ACKNOWLEDGED: &str = "drain.planetscale.com/acknowledged";
    pub const FINISHED: &str = "drain.planetscale.com/finished";
}

/// Rolling-update annotations on pods (the Go operator's keys).
pub mod rollout {
    /// Hash of everything the operator sets on a pod; a pod whose hash differs from the
    /// builder's is out of date and is replaced through a drain, never patched in place.
    pub const DESIRED_STATE_HASH: &str = "planetscale.com/desired-state-hash";
    /// Set by the operator (update strategy `External`) on a pod that waits for a release.
    pub const SCHEDULED: &str = "rollout.planetscale.com/scheduled";
    /// Set by someone else to let a scheduled pod roll now.
    pub const RELEASED: &str = "rollout.planetscale.com/released";
    /// On a Deployment another writer made whose pod template was kept as it was: the hash of
    /// the template ours would have had then. While ours is still that, the kept one stays.
    pub const ADOPTED_FOR: &str = "vitess.io/adopted-template-for";
}

/// A label set built up key by key.
pub fn set(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
