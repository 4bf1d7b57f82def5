//! The `planetscale.com/v2` kinds, one file each, with the Go operator's JSON names, so YAML
//! written for the Go operator applies unchanged.

pub mod backup;
pub mod backupschedule;
pub mod backupstorage;
pub mod cell;
pub mod cluster;
pub mod etcd;
pub mod keyspace;
pub mod shard;
pub mod shared;
mod tighten;

pub use backup::VitessBackup;
pub use backupschedule::VitessBackupSchedule;
pub use backupstorage::VitessBackupStorage;
pub use cell::VitessCell;
pub use cluster::VitessCluster;
pub use etcd::EtcdLockserver;
pub use keyspace::VitessKeyspace;
pub use shard::VitessShard;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// API group of every kind.
pub const GROUP: &str = "planetscale.com";
/// API version of every kind.
pub const VERSION: &str = "v2";
/// `apiVersion` as written in YAML.
pub const API_VERSION: &str = "planetscale.com/v2";

/// Every CRD the operator serves, in a stable order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    let mut crds = vec![
        VitessCluster::crd(),
        VitessCell::crd(),
        VitessKeyspace::crd(),
        VitessShard::crd(),
        EtcdLockserver::crd(),
        VitessBackupStorage::crd(),
        VitessBackup::crd(),
        VitessBackupSchedule::crd(),
    ];
    crds.iter_mut().for_each(tighten::tighten);
    crds
}
