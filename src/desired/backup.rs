//! Backup settings of Vitess pods (DESIGN §8): the flags, volumes, mounts and environment that
//! let vttablet, vtbackup and vtctld reach one backup location, and the engine flags of the
//! pods that take or restore backups. Secrets are only ever mounted as files: no flag or
//! environment value carries a secret's content.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EnvVar, Volume, VolumeMount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;

use super::flags::FlagSet;
use super::{Error, meta, podspec};
use crate::api::backup::{VitessBackup, VitessBackupSpec, VitessBackupStatus};
use crate::api::backupstorage::VitessBackupLocation;
use crate::api::cluster::BackupEngine;
use crate::api::shared::SecretSource;
use crate::domain::keyrange::KeyRange;
use crate::vitess::BackupInfo;
use crate::{domain::labels, domain::names};

/// Where a `volume` location is mounted; its root is `<this>/<cluster>`.
pub const VOLUME_MOUNT_PATH: &str = "/vt/backups";
/// Name of the pod volume of a `volume` location.
const VOLUME_NAME: &str = "vitess-backups";
/// The MySQL user xtrabackup connects as (the tablet's DBA user).
const XTRABACKUP_USER: &str = "vt_dba";
/// Stripes of an xtrabackup stream: parallel upload and restore.
const XTRABACKUP_STRIPES: u32 = 8;

/// What a pod needs to use one backup location.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BackupStorage {
    /// Flags, by name, in the order they are set.
    pub flags: Vec<(String, String)>,
    pub volumes: Vec<Volume>,
    pub mounts: Vec<VolumeMount>,
    pub env: Vec<EnvVar>,
    /// The location's `annotations`, for every pod that uses it (a cloud's workload identity
    /// annotation, say); they win over the pool's own on the same key, as in the Go operator.
    pub annotations: BTreeMap<String, String>,
}

impl BackupStorage {
    /// Adds the location's annotations to a pod's.
    pub fn annotate(&self, metadata: &mut ObjectMeta) {
        if self.annotations.is_empty() {
            return;
        }
        let annotations = metadata.annotations.get_or_insert_with(BTreeMap::new);
        for (key, value) in &self.annotations {
            annotations.insert(key.clone(), value.clone());
        }
    }
}

impl BackupStorage {
    /// Adds the storage flags to `flags`.
    pub fn apply_flags(&self, flags: &mut FlagSet) {
        for (name, value) in &self.flags {
            flags.set(name, value);
        }
    }

    fn flag(&mut self, name: &str, value: impl ToString) {
        self.flags.push((name.into(), value.to_string()));
    }

    fn env(&mut self, name: &str, value: &str) {
        self.env.push(EnvVar {
            name: name.into(),
            value: Some(value.into()),
            ..EnvVar::default()
        });
    }

    /// Mounts the auth secret of a `backend` location read-only, at
    /// `/vt/secrets/<backend>-backup-auth/` (the Go operator's path), and returns the path of
    /// its file.
    fn auth(
        &mut self,
        backend: &str,
        source: &crate::api::shared::SecretSource,
        object: &str,
        field: &str,
    ) -> Result<String, Error> {
        let dir = format!("{backend}-backup-auth");
        let file = podspec::secret_file(source, &dir, object, field)?;
        self.volumes.extend(file.volume);
        self.mounts.push(file.mount);
        Ok(file.path)
    }
}

/// The root of a cluster's backups in a bucket: `<keyPrefix>/<cluster>`.
fn root(key_prefix: Option<&str>, cluster: &str) -> String {
    match key_prefix.map(|p| p.trim_matches('/')) {
        Some(prefix) if !prefix.is_empty() => format!("{prefix}/{cluster}"),
        _ => cluster.to_string(),
    }
}

/// The location called `name` (empty: the unnamed one) among `locations`.
pub fn location<'a>(
    locations: &'a [VitessBackupLocation],
    name: Option<&str>,
    object: &str,
    field: &str,
) -> Result<&'a VitessBackupLocation, Error> {
    let name = name.unwrap_or_default();
    locations
        .iter()
        .find(|l| l.name == name)
        .ok_or_else(|| Error::UnknownBackupLocation {
            object: object.into(),
            field: field.into(),
            name: name.into(),
        })
}

/// The Secret `location` reads its credentials from, and the field that names it (as
/// [`storage`] names it in errors); `None` for a location without one, or whose credentials
/// come from a volume the pod already has.
pub fn auth_secret(location: &VitessBackupLocation) -> Option<(&SecretSource, String)> {
    let (backend, source) = if let Some(gcs) = &location.gcs {
        ("gcs", gcs.auth_secret.as_ref()?)
    } else if let Some(s3) = &location.s3 {
        ("s3", s3.auth_secret.as_ref()?)
    } else if let Some(azblob) = &location.azblob {
        ("azblob", &azblob.auth_secret)
    } else {
        ("ceph", &location.ceph.as_ref()?.auth_secret)
    };
    (source.volume_name.is_none() && source.name.is_some()).then(|| {
        (
            source,
            format!("backup location {:?}: {backend}.authSecret", location.name),
        )
    })
}

/// The flags, volumes, mounts and env of `location` for a pod of `cluster`. `object` names the
/// object the location came from, for errors.
pub fn storage(
    location: &VitessBackupLocation,
    cluster: &str,
    object: &str,
) -> Result<BackupStorage, Error> {
    let mut out = BackupStorage {
        annotations: location.annotations.clone().unwrap_or_default(),
        ..BackupStorage::default()
    };
    let field =
        |backend: &str| format!("backup location {:?}: {backend}.authSecret", location.name);
    if let Some(gcs) = &location.gcs {
        out.flag("backup-storage-implementation", "gcs");
        out.flag("gcs-backup-storage-bucket", &gcs.bucket);
        out.flag(
            "gcs-backup-storage-root",
            root(gcs.key_prefix.as_deref(), cluster),
        );
        if let Some(secret) = &gcs.auth_secret {
            let path = out.auth("gcs", secret, object, &field("gcs"))?;
            out.env("GOOGLE_APPLICATION_CREDENTIALS", &path);
        }
    } else if let Some(s3) = &location.s3 {
        out.flag("backup-storage-implementation", "s3");
        out.flag("s3-backup-aws-region", &s3.region);
        out.flag("s3-backup-storage-bucket", &s3.bucket);
        out.flag(
            "s3-backup-storage-root",
            root(s3.key_prefix.as_deref(), cluster),
        );
        if let Some(endpoint) = &s3.endpoint {
            out.flag("s3-backup-aws-endpoint", endpoint);
        }
        out.flag(
            "s3-backup-force-path-style",
            s3.force_path_style.unwrap_or(false),
        );
        if let Some(size) = s3.min_part_size.filter(|&size| size > 0) {
            out.flag("s3-backup-aws-min-partsize", size);
        }
        if let Some(secret) = &s3.auth_secret {
            let path = out.auth("s3", secret, object, &field("s3"))?;
            out.env("AWS_SHARED_CREDENTIALS_FILE", &path);
        }
    } else if let Some(azblob) = &location.azblob {
        out.flag("backup-storage-implementation", "azblob");
        out.flag("azblob-backup-account-name", &azblob.account);
        out.flag("azblob-backup-container-name", &azblob.container);
        out.flag(
            "azblob-backup-storage-root",
            root(azblob.key_prefix.as_deref(), cluster),
        );
        let path = out.auth("azblob", &azblob.auth_secret, object, &field("azblob"))?;
        out.flag("azblob-backup-account-key-file", path);
    } else if let Some(ceph) = &location.ceph {
        out.flag("backup-storage-implementation", "ceph");
        let path = out.auth("ceph", &ceph.auth_secret, object, &field("ceph"))?;
        out.flag("ceph-backup-storage-config", &path);
        out.env("CEPH_CREDENTIALS_FILE", &path);
    } else if let Some(volume) = &location.volume {
        let mut pod_volume = location_volume(volume).map_err(|e| Error::BackupVolume {
            object: object.into(),
            name: location.name.clone(),
            message: e.to_string(),
        })?;
        pod_volume.name = VOLUME_NAME.into();
        out.volumes.push(pod_volume);
        out.mounts.push(VolumeMount {
            name: VOLUME_NAME.into(),
            mount_path: VOLUME_MOUNT_PATH.into(),
            sub_path: location.volume_sub_path.clone(),
            ..VolumeMount::default()
        });
        out.flag("backup-storage-implementation", "file");
        out.flag(
            "file-backup-storage-root",
            format!("{VOLUME_MOUNT_PATH}/{cluster}"),
        );
    }
    Ok(out)
}

/// Engine flags of the pods that take or restore backups (vttablet, vtbackup). xtrabackup
/// copies with `backup_threads` and restores with `restore_threads` (each at least one), the
/// Go operator's sizing from the pod's CPU requests; its stream is compressed.
pub fn engine_flags(
    engine: BackupEngine,
    backup_threads: u64,
    restore_threads: u64,
    flags: &mut FlagSet,
) {
    flags.set("backup-engine-implementation", engine.as_str());
    if engine == BackupEngine::Xtrabackup {
        flags
            .set("xtrabackup-user", XTRABACKUP_USER)
            .set("xtrabackup-stream-mode", "xbstream")
            .set("xtrabackup-stripes", XTRABACKUP_STRIPES)
            .set(
                "xtrabackup-backup-flags",
                format!("--parallel={}", backup_threads.max(1)),
            )
            .set(
                "xbstream-restore-flags",
                format!("--parallel={}", restore_threads.max(1)),
            )
            .set("backup-storage-compress", true);
    }
}

/// One inventory entry: the VitessBackup object of a backup vtctld listed (empty spec: it is
/// not a request) and the status it should report.
#[derive(Clone, Debug)]
pub struct InventoryEntry {
    pub backup: VitessBackup,
    pub status: VitessBackupStatus,
}

/// The inventory entry of `info`, a backup of `keyspace`/`range` in the location `location`
/// (empty: unnamed) of `cluster`. Named as the Go operator names it when vtctld could parse
/// the backup's time and tablet from its name; otherwise by a hash of the backup's name.
pub fn inventory_entry(
    cluster: &str,
    namespace: &Option<String>,
    location: &str,
    keyspace: &str,
    range: &KeyRange,
    info: &BackupInfo,
) -> InventoryEntry {
    let safe = range.safe_name();
    let started = info
        .time
        .and_then(|t| Timestamp::try_from(t).ok())
        .and_then(|t| Timestamp::from_second(t.as_second()).ok());
    let name = match (started, &info.tablet) {
        (Some(time), Some(tablet)) => names::cluster::backup(
            cluster,
            location,
            keyspace,
            &safe,
            &time.strftime("%Y%m%d-%H%M%S").to_string(),
            tablet.uid,
        ),
        _ => names::join(&[cluster, location, keyspace, &safe, &info.name]),
    };
    let own = labels::set(&[
        (labels::CLUSTER, cluster),
        (labels::KEYSPACE, keyspace),
        (labels::SHARD, &safe),
        (labels::BACKUP_LOCATION, location),
    ]);
    let backup = VitessBackup {
        metadata: meta(name, namespace, own, None),
        spec: VitessBackupSpec::default(),
        status: None,
    };
    let status = VitessBackupStatus {
        start_time: started.map(Time),
        // vtctld says whether a backup is complete only when its engine reports it (v0.24
        // never does); unknown counts as not complete, so nothing restores from it on our word.
        complete: info.status.complete().unwrap_or(false),
        vtctld_status: Some(info.status.name().to_string()),
        engine: (!info.engine.is_empty()).then(|| info.engine.clone()),
        storage_directory: Some(format!("{keyspace}/{range}")),
        storage_name: Some(info.name.clone()),
        ..VitessBackupStatus::default()
    };
    InventoryEntry { backup, status }
}

/// A backup location's `volume` (a core/v1 VolumeSource, kept as given in the CRD) as the pod
/// Volume it becomes; `validate` calls it too, so what it accepts builds.
pub fn location_volume(
    volume: &serde_json::Map<String, serde_json::Value>,
) -> Result<Volume, serde_json::Error> {
    serde_json::from_value(serde_json::Value::Object(volume.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::backupstorage::{GcsBackupLocation, S3BackupLocation};
    use crate::api::shared::SecretSource;

    #[test]
    fn inventory_entries_have_go_operator_names() {
        use crate::vitess::{Alias, BackupStatus};
        use std::time::{Duration, UNIX_EPOCH};
        let info = BackupInfo {
            name: "2021-03-04.050607.zone1-0000000100".into(),
            directory: "commerce/-".into(),
            keyspace: "commerce".into(),
            shard: "-".into(),
            tablet: Some(Alias::new("zone1", 100)),
            time: Some(UNIX_EPOCH + Duration::from_secs(1_614_834_367)),
            engine: String::new(),
            status: BackupStatus::Complete,
        };
        let range = KeyRange::default();
        let ns = Some("ns".to_string());
        let entry = inventory_entry("example", &ns, "", "commerce", &range, &info);
        assert_eq!(
            entry.backup.metadata.name.as_deref(),
            Some(names::join(&["example", "commerce", "x-x", "20210304-050607", "64"]).as_str())
        );
        assert!(
            entry
                .backup
                .metadata
                .name
                .as_deref()
                .unwrap()
                .starts_with("example-commerce-x-x-20210304-050607-64-")
        );
        assert!(entry.status.complete);
        assert_eq!(
            entry.status.start_time.as_ref().unwrap().0.as_second(),
            1_614_834_367
        );
        assert_eq!(
            entry.status.storage_directory.as_deref(),
            Some("commerce/-")
        );
        assert_eq!(entry.status.engine, None);
        assert_eq!(entry.status.vtctld_status.as_deref(), Some("COMPLETE"));
        let labels = entry.backup.metadata.labels.as_ref().unwrap();
        assert_eq!(labels[labels::BACKUP_LOCATION], "");
        assert_eq!(labels[labels::SHARD], "x-x");

        let named = inventory_entry("example", &ns, "west", "commerce", &range, &info);
        assert!(
            named
                .backup
                .metadata
                .name
                .as_deref()
                .unwrap()
                .starts_with("example-west-commerce-x-x-20210304-050607-64-")
        );

        let unknown = BackupInfo {
            status: BackupStatus::Unknown,
            time: None,
            ..info.clone()
        };
        let entry = inventory_entry("example", &ns, "", "commerce", &range, &unknown);
        assert!(!entry.status.complete);
        assert_eq!(entry.status.vtctld_status.as_deref(), Some("UNKNOWN"));
        assert!(entry.status.start_time.is_none());
        assert_ne!(
            entry.backup.metadata.name,
            inventory_entry("example", &ns, "", "commerce", &range, &info)
                .backup
                .metadata
                .name
        );
    }

    #[test]
    fn root_is_prefix_then_cluster() {
        assert_eq!(root(None, "example"), "example");
        assert_eq!(root(Some(""), "example"), "example");
        assert_eq!(root(Some("/a/b/"), "example"), "a/b/example");
    }

    #[test]
    fn unknown_location_names_the_field() {
        let locations = vec![VitessBackupLocation::default()];
        assert!(location(&locations, None, "o", "f").is_ok());
        let err = location(&locations, Some("other"), "VitessShard/x", "pool").unwrap_err();
        assert!(err.to_string().contains("\"other\""), "{err}");
    }

    #[test]
    fn volume_location_mounts_the_volume_with_file_storage() {
        let location = VitessBackupLocation {
            volume: Some(
                serde_json::json!({"hostPath": {"path": "/backups", "type": "Directory"}})
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
            volume_sub_path: Some("sub".into()),
            ..VitessBackupLocation::default()
        };
        let out = storage(&location, "example", "VitessCluster/example").unwrap();
        assert_eq!(
            out.flags,
            [
                ("backup-storage-implementation".into(), "file".into()),
                (
                    "file-backup-storage-root".into(),
                    "/vt/backups/example".into()
                ),
            ]
        );
        assert_eq!(out.volumes[0].name, VOLUME_NAME);
        assert_eq!(
            out.volumes[0].host_path.as_ref().unwrap().path,
            "/backups".to_string()
        );
        assert_eq!(out.mounts[0].sub_path.as_deref(), Some("sub"));
    }

    #[test]
    fn secrets_become_files_never_flag_values() {
        let secret = SecretSource {
            name: Some("s3-auth".into()),
            volume_name: None,
            key: "credentials".into(),
        };
        let location = VitessBackupLocation {
            s3: Some(S3BackupLocation {
                region: "us-east-1".into(),
                bucket: "b".into(),
                auth_secret: Some(secret),
                ..S3BackupLocation::default()
            }),
            ..VitessBackupLocation::default()
        };
        let out = storage(&location, "example", "o").unwrap();
        assert_eq!(
            out.env[0].value.as_deref(),
            Some("/vt/secrets/s3-backup-auth/credentials")
        );
        assert!(out.mounts[0].read_only == Some(true));
        assert!(!out.flags.iter().any(|(_, v)| v.contains("s3-auth")));

        let gcs = VitessBackupLocation {
            gcs: Some(GcsBackupLocation {
                bucket: "b".into(),
                auth_secret: Some(SecretSource {
                    name: None,
                    volume_name: None,
                    key: "k".into(),
                }),
                ..GcsBackupLocation::default()
            }),
            ..VitessBackupLocation::default()
        };
        assert!(matches!(
            storage(&gcs, "example", "o"),
            Err(Error::SecretSource { .. })
        ));
    }
}
