//! Backup settings of Vitess pods (DESIGN §8): the flags, volumes, mounts and environment that
//! let vttablet, vtbackup and vtctld reach one backup location, and the engine flags of the
//! pods that take or restore backups. Secrets are only ever mounted as files: no flag or
//! environment value carries a secret's content.

use k8s_openapi::api::core::v1::{EnvVar, Volume, VolumeMount};

use super::Error;
use super::flags::FlagSet;
use super::podspec;
use crate::api::backupstorage::VitessBackupLocation;
use crate::api::cluster::BackupEngine;

/// Where a `volume` location is mounted; its root is `<this>/<cluster>`.
pub const VOLUME_MOUNT_PATH: &str = "/vt/backups";
/// Name of the pod volume of a `volume` location.
const VOLUME_NAME: &str = "vitess-backups";
/// Name of the pod volume (and `/vt/secrets/<name>` directory) of a location's auth secret.
const AUTH_VOLUME: &str = "backup-auth";
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

    /// Mounts the auth secret read-only and returns the path of its file.
    fn auth(
        &mut self,
        source: &crate::api::shared::SecretSource,
        object: &str,
        field: &str,
    ) -> Result<String, Error> {
        let file = podspec::secret_file(source, AUTH_VOLUME, object, field)?;
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

/// The flags, volumes, mounts and env of `location` for a pod of `cluster`. `object` names the
/// object the location came from, for errors.
pub fn storage(
    location: &VitessBackupLocation,
    cluster: &str,
    object: &str,
) -> Result<BackupStorage, Error> {
    let mut out = BackupStorage::default();
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
            let path = out.auth(secret, object, &field("gcs"))?;
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
        if s3.force_path_style == Some(true) {
            out.flag("s3-backup-force-path-style", true);
        }
        if let Some(secret) = &s3.auth_secret {
            let path = out.auth(secret, object, &field("s3"))?;
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
        let path = out.auth(&azblob.auth_secret, object, &field("azblob"))?;
        out.flag("azblob-backup-account-key-file", path);
    } else if let Some(ceph) = &location.ceph {
        out.flag("backup-storage-implementation", "ceph");
        let path = out.auth(&ceph.auth_secret, object, &field("ceph"))?;
        out.flag("ceph-backup-storage-config", path);
    } else if let Some(volume) = &location.volume {
        let source = serde_json::Value::Object(volume.clone());
        let mut pod_volume: Volume =
            serde_json::from_value(source).map_err(|e| Error::BackupVolume {
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

/// Engine flags of the pods that take backups (vttablet, vtbackup).
pub fn engine_flags(engine: BackupEngine, flags: &mut FlagSet) {
    flags.set("backup-engine-implementation", engine.as_str());
    if engine == BackupEngine::Xtrabackup {
        flags
            .set("xtrabackup-user", XTRABACKUP_USER)
            .set("xtrabackup-stream-mode", "xbstream")
            .set("xtrabackup-stripes", XTRABACKUP_STRIPES)
            .set("xtrabackup-backup-flags", "--parallel=2")
            .set("xbstream-restore-flags", "--parallel=2");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::backupstorage::{GcsBackupLocation, S3BackupLocation};
    use crate::api::shared::SecretSource;

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
            Some("/vt/secrets/backup-auth/credentials")
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
