//! Pure builders: from a validated spec to the objects the operator wants to exist. They never
//! touch the API, so `render` prints exactly what the controllers apply.

pub mod backup;
pub mod bundle;
pub mod cluster;
pub mod defaults;
pub mod equivalent;
pub mod etcd;
pub mod flags;
pub mod keyspace;
pub mod lockserver;
pub mod mycnf;
pub mod podspec;
pub mod schedule;
pub mod vtadmin;
pub mod vtbackup;
pub mod vtctld;
pub mod vtgate;
pub mod vtorc;
pub mod vttablet;

use std::collections::BTreeMap;

use kube::api::ObjectMeta;

/// The MD5 (hex) of `object`'s JSON as the builders render it: what changes when any field
/// of it does.
pub fn content_hash<T: serde::Serialize>(object: &T) -> String {
    use md5::{Digest, Md5};
    let json = serde_json::to_vec(object).unwrap_or_default();
    Md5::digest(&json)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("{0} has no metadata.name")]
    MissingName(&'static str),
    #[error("{kind} has no {label} label; it was not made by a VitessCluster")]
    MissingLabel {
        kind: &'static str,
        label: &'static str,
    },
    #[error("{object}: {field} names neither a Secret (name) nor a pod volume (volumeName)")]
    SecretSource { object: String, field: String },
    #[error(
        "VitessCluster/{cluster}: spec.vitessDashboard.cells lists {cell:?}, which is not one of spec.cells"
    )]
    UnknownCell { cluster: String, cell: String },
    #[error("{object}: {field} names backup location {name:?}, which spec.backup.locations lacks")]
    UnknownBackupLocation {
        object: String,
        field: String,
        name: String,
    },
    #[error(
        "{object}: spec.tabletPools[{first}] and spec.tabletPools[{second}] are both {pool_type} \
         pools of cell {cell} with a local mysqld; their tablets would get the same names (a pool's \
         name is part of the tablet name only with externalDatastore, as in the Go operator): \
         merge them or give them different cells"
    )]
    SamePoolTablets {
        object: String,
        first: usize,
        second: usize,
        cell: String,
        pool_type: String,
    },
    #[error("VitessCluster/{cluster}: spec.backup.schedules[{index}] ({name}): {message}")]
    Schedule {
        cluster: String,
        index: usize,
        name: String,
        message: String,
    },
    #[error("{object}: backup location {name:?}: volume is not a core/v1 VolumeSource: {message}")]
    BackupVolume {
        object: String,
        name: String,
        message: String,
    },
}

/// The name of a cluster, which every child's name starts with.
pub fn cluster_name(cluster: &crate::api::VitessCluster) -> Result<&str, Error> {
    cluster
        .metadata
        .name
        .as_deref()
        .ok_or(Error::MissingName("VitessCluster"))
}

/// Label `key` of a child object of kind `kind` (one the operator made carries its cluster's,
/// keyspace's, ... labels); an error naming both when it is missing.
pub fn label<'a>(
    meta: &'a ObjectMeta,
    kind: &'static str,
    key: &'static str,
) -> Result<&'a str, Error> {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map(String::as_str)
        .ok_or(Error::MissingLabel { kind, label: key })
}

/// What identifies a VitessShard to the builders of its pods: its cluster and keyspace (from
/// the labels the keyspace controller puts on it), its key range, and `VitessShard/<name>`
/// for error messages.
pub struct ShardIdentity<'a> {
    pub object: String,
    pub cluster: &'a str,
    pub keyspace: &'a str,
    pub range: crate::domain::keyrange::KeyRange,
}

impl<'a> ShardIdentity<'a> {
    pub fn of(shard: &'a crate::api::VitessShard) -> Result<Self, Error> {
        let name = shard
            .metadata
            .name
            .as_deref()
            .ok_or(Error::MissingName("VitessShard"))?;
        let label = |key: &'static str| label(&shard.metadata, "VitessShard", key);
        Ok(Self {
            object: format!("VitessShard/{name}"),
            cluster: label(crate::domain::labels::CLUSTER)?,
            keyspace: label(crate::domain::labels::KEYSPACE)?,
            range: crate::domain::keyrange::KeyRange {
                start: shard.spec.key_range.start.clone(),
                end: shard.spec.key_range.end.clone(),
            },
        })
    }
}

/// Metadata of a child object, before the controller adds its owner reference.
fn meta(
    name: String,
    namespace: &Option<String>,
    labels: BTreeMap<String, String>,
    annotations: Option<BTreeMap<String, String>>,
) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: namespace.clone(),
        labels: Some(labels),
        annotations,
        ..ObjectMeta::default()
    }
}
