//! The `vtbackup-init` pod of a new shard (DESIGN §8): it initialises an empty database and
//! uploads it as the shard's first backup, so that the tablets can restore from it. Built only
//! for a shard with backups and `replication.initializeBackup` not false; whether the shard
//! needs one (no complete backup, no primary) is the shard controller's call.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod,
    PodSpec, Volume, VolumeMount,
};

use super::backup;
use super::flags::FlagSet;
use super::{Error, ShardIdentity, defaults, meta, podspec, vttablet};
use crate::api::VitessBackup;
use crate::api::backup::VitessBackupSpec;
use crate::api::shard::{VitessShard, VitessShardTabletPool};
use crate::{domain::labels, domain::names};

const DATA_VOLUME: &str = "vtdataroot";
const VT_DATA_ROOT: &str = "/vt/vtdataroot";

/// The init pod and, unless it uses an emptyDir, its data volume claim (same name).
#[derive(Clone, Debug)]
pub struct VtbackupInit {
    pub pod: Pod,
    pub pvc: Option<PersistentVolumeClaim>,
}

/// The `vtbackup-init` pod of `shard`, or `None` when the shard has no backups or opted out.
pub fn init(shard: &VitessShard) -> Result<Option<VtbackupInit>, Error> {
    let spec = &shard.spec;
    let locations = spec.backup_locations.as_deref().unwrap_or_default();
    let wanted = spec
        .template
        .replication
        .as_ref()
        .and_then(|r| r.initialize_backup)
        .unwrap_or(true);
    let Some(first_pool) = spec.template.tablet_pools.first() else {
        return Ok(None);
    };
    if locations.is_empty() || !wanted {
        return Ok(None);
    }
    let identity = ShardIdentity::of(shard)?;
    let (object, cluster) = (&identity.object, identity.cluster);
    let location = backup::location(
        locations,
        first_pool.backup_location_name.as_deref(),
        object,
        "spec.tabletPools[0].backupLocationName",
    )?;
    let storage = backup::storage(location, cluster, object)?;
    if storage.flags.is_empty() {
        return Ok(None);
    }
    let init_script = podspec::secret_file(
        &spec.template.database_init_script_secret,
        "db-init-script",
        object,
        "spec.databaseInitScriptSecret",
    )?;
    let parts = Parts {
        shard,
        first_pool,
        identity: &identity,
        storage,
        init_script,
    };
    Ok(Some(parts.build()))
}

/// What the init pod and its claim are built from.
struct Parts<'a> {
    shard: &'a VitessShard,
    first_pool: &'a VitessShardTabletPool,
    identity: &'a ShardIdentity<'a>,
    storage: backup::BackupStorage,
    init_script: podspec::SecretFile,
}

impl Parts<'_> {
    fn build(&self) -> VtbackupInit {
        let ShardIdentity {
            cluster,
            keyspace,
            range,
            ..
        } = self.identity;
        let (cluster, keyspace) = (*cluster, *keyspace);
        let safe = range.safe_name();
        let name = names::cluster::vtbackup_init_pod(cluster, keyspace, &safe);
        let own = labels::set(&[
            (labels::COMPONENT, labels::component::VTBACKUP),
            (labels::CLUSTER, cluster),
            (labels::KEYSPACE, keyspace),
            (labels::SHARD, &safe),
        ]);
        let vtbackup = self
            .shard
            .spec
            .template
            .vtbackup
            .clone()
            .unwrap_or_default();
        let empty_dir = vtbackup.use_empty_dir_for_initial_backup == Some(true);
        let claim = vtbackup
            .data_volume_claim_template
            .or_else(|| self.first_pool.data_volume_claim_template.clone());
        let namespace = &self.shard.metadata.namespace;
        let pod = self.pod(&name, own.clone(), claim.is_some() && !empty_dir);
        let pvc = match (claim, empty_dir) {
            (Some(claim), false) => Some(PersistentVolumeClaim {
                metadata: meta(name, namespace, own, None),
                spec: Some(claim),
                status: None,
            }),
            _ => None,
        };
        VtbackupInit { pod, pvc }
    }

    /// vtbackup's flags: initialise an empty database and upload it.
    fn flags(&self) -> FlagSet {
        let spec = &self.shard.spec;
        let ShardIdentity {
            keyspace, range, ..
        } = self.identity;
        let mut flags = FlagSet::vitess();
        flags
            .global_topo(&spec.global_lockserver)
            .set("logtostderr", true)
            .set("init-keyspace", *keyspace)
            .set("init-shard", range.to_string())
            .set(
                "init-db-name-override",
                spec.database_name
                    .clone()
                    .unwrap_or_else(|| format!("vt_{keyspace}")),
            )
            // An empty database, uploaded only if the shard has no backup yet.
            .set("initial-backup", true)
            .set("init-db-sql-file", &self.init_script.path)
            .set("db-dba-user", "vt_dba")
            .set("mysql-socket", format!("{VT_DATA_ROOT}/mysql.sock"));
        self.storage.apply_flags(&mut flags);
        // xtrabackup copies and prepares with a thread per core requested for mysqld (at least
        // one: `engine_flags`).
        let mysqld = self.first_pool.mysqld.as_ref();
        let threads = vttablet::cpu_count(mysqld.and_then(|m| m.resources.as_ref()));
        backup::engine_flags(
            spec.backup_engine.unwrap_or_default(),
            threads,
            threads,
            &mut flags,
        );
        // Not the pool's vttablet `extraFlags`: vtbackup has few of vttablet's flags and exits
        // on one it lacks (`--queryserver-config-pool-size`, say). The Go operator gives it
        // only `vtbackupExtraFlags` too.
        flags
            .mysql_server_version(&vttablet::mysqld_image(spec.images.mysqld.as_ref()))
            .extend(spec.extra_vitess_flags.as_ref())
            .extend(self.first_pool.vttablet.vtbackup_extra_flags.as_ref());
        flags
    }

    /// The pod `name`, its data on the claim of the same name when `on_claim`, else in an
    /// emptyDir.
    fn pod(&self, name: &str, own: BTreeMap<String, String>, on_claim: bool) -> Pod {
        let (spec, storage, init_script) = (&self.shard.spec, &self.storage, &self.init_script);
        let data = if on_claim {
            Volume {
                name: DATA_VOLUME.into(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: name.to_string(),
                    ..PersistentVolumeClaimVolumeSource::default()
                }),
                ..Volume::default()
            }
        } else {
            Volume {
                name: DATA_VOLUME.into(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Volume::default()
            }
        };
        let mut volumes = vec![data];
        volumes.extend(init_script.volume.clone());
        volumes.extend(storage.volumes.iter().cloned());
        let mut mounts = vec![
            VolumeMount {
                name: DATA_VOLUME.into(),
                mount_path: VT_DATA_ROOT.into(),
                ..VolumeMount::default()
            },
            init_script.mount.clone(),
        ];
        mounts.extend(storage.mounts.iter().cloned());
        let image = spec
            .images
            .vtbackup
            .clone()
            .or_else(|| spec.images.vttablet.clone())
            .unwrap_or_else(|| defaults::VITESS_IMAGE.into());
        let container = Container {
            name: "vtbackup".into(),
            image: Some(image),
            image_pull_policy: podspec::pull_policy(
                spec.image_pull_policies.as_ref().and_then(|p| p.vtbackup),
            ),
            command: Some(vec!["/vt/bin/vtbackup".into()]),
            args: Some(self.flags().args()),
            env: (!storage.env.is_empty()).then(|| storage.env.clone()),
            resources: self
                .first_pool
                .mysqld
                .as_ref()
                .and_then(|m| m.resources.clone()),
            volume_mounts: Some(mounts),
            ..Container::default()
        };
        Pod {
            metadata: meta(name.to_string(), &self.shard.metadata.namespace, own, None),
            spec: Some(PodSpec {
                containers: vec![container],
                volumes: Some(volumes),
                // Retried in place until the first backup is uploaded; then it stays Succeeded.
                restart_policy: Some("OnFailure".into()),
                image_pull_secrets: spec.image_pull_secrets.clone(),
                security_context: Some(podspec::vitess_pod_security()),
                ..PodSpec::default()
            }),
            status: None,
        }
    }
}

/// The VitessBackup request a shard that already serves makes for its first backup: the
/// backup request controller asks vtctld `BackupShard` of a replica, once (never the primary).
pub fn initial_backup_request(shard: &VitessShard) -> Result<VitessBackup, Error> {
    let ShardIdentity {
        cluster,
        keyspace,
        range,
        ..
    } = ShardIdentity::of(shard)?;
    let safe = range.safe_name();
    let own = labels::set(&[
        (labels::CLUSTER, cluster),
        (labels::KEYSPACE, keyspace),
        (labels::SHARD, &safe),
    ]);
    Ok(VitessBackup {
        metadata: meta(
            names::join(&[cluster, keyspace, &safe, "initial-backup"]),
            &shard.metadata.namespace,
            own,
            None,
        ),
        spec: VitessBackupSpec {
            keyspace: Some(keyspace.into()),
            shard: Some(range.to_string()),
            location: None,
            allow_primary: Some(false),
        },
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::backupstorage::{GcsBackupLocation, VitessBackupLocation};
    use crate::api::cluster::BackupEngine;
    use crate::api::shard::{
        MysqldSpec, TabletPoolType, VitessReplicationSpec, VitessShardSpec, VitessShardTabletPool,
        VitessShardTemplate,
    };
    use crate::api::shared::SecretSource;
    use k8s_openapi::api::core::v1::PersistentVolumeClaimSpec;

    fn shard(backups: bool) -> VitessShard {
        let mut shard = VitessShard::new(
            "example-commerce-x-x-0f5afee6",
            VitessShardSpec {
                template: VitessShardTemplate {
                    tablet_pools: vec![VitessShardTabletPool {
                        cell: "zone1".into(),
                        type_: TabletPoolType::Replica,
                        replicas: 2,
                        mysqld: Some(MysqldSpec::default()),
                        data_volume_claim_template: Some(PersistentVolumeClaimSpec {
                            access_modes: Some(vec!["ReadWriteOnce".into()]),
                            ..PersistentVolumeClaimSpec::default()
                        }),
                        ..VitessShardTabletPool::default()
                    }],
                    database_init_script_secret: SecretSource {
                        name: Some("example-cluster-config".into()),
                        volume_name: None,
                        key: "init_db.sql".into(),
                    },
                    ..VitessShardTemplate::default()
                },
                backup_locations: backups.then(|| {
                    vec![VitessBackupLocation {
                        gcs: Some(GcsBackupLocation {
                            bucket: "bkt".into(),
                            key_prefix: None,
                            auth_secret: Some(SecretSource {
                                name: Some("gcs-auth".into()),
                                volume_name: None,
                                key: "gcs_key.json".into(),
                            }),
                        }),
                        ..VitessBackupLocation::default()
                    }]
                }),
                backup_engine: Some(BackupEngine::Xtrabackup),
                ..VitessShardSpec::default()
            },
        );
        shard.metadata.namespace = Some("ns".into());
        shard.metadata.labels = Some(labels::set(&[
            (labels::CLUSTER, "example"),
            (labels::KEYSPACE, "commerce"),
            (labels::SHARD, "x-x"),
        ]));
        shard
    }

    #[test]
    fn init_pod_has_the_go_operator_name_storage_and_its_own_claim() {
        let init = init(&shard(true)).unwrap().unwrap();
        assert_eq!(
            init.pod.metadata.name.as_deref(),
            Some("example-commerce-x-x-vtbackup-init-c6db73c9")
        );
        let pvc = init.pvc.unwrap();
        assert_eq!(pvc.metadata.name, init.pod.metadata.name);
        let spec = init.pod.spec.unwrap();
        assert_eq!(spec.restart_policy.as_deref(), Some("OnFailure"));
        let args = spec.containers[0].args.clone().unwrap();
        for want in [
            "--initial-backup=true",
            "--init-keyspace=commerce",
            "--init-shard=-",
            "--backup-storage-implementation=gcs",
            "--gcs-backup-storage-root=example",
            "--backup-engine-implementation=xtrabackup",
            "--init-db-sql-file=/vt/secrets/db-init-script/init_db.sql",
        ] {
            assert!(args.iter().any(|a| a == want), "{want} missing: {args:?}");
        }
        assert!(!args.iter().any(|a| a.contains("gcs-auth")));
        let env = spec.containers[0].env.clone().unwrap();
        assert_eq!(env[0].name, "GOOGLE_APPLICATION_CREDENTIALS");
    }

    #[test]
    fn vtbackup_gets_its_own_extra_flags_not_vttablet_ones() {
        let mut shard = shard(true);
        let vttablet = &mut shard.spec.template.tablet_pools[0].vttablet;
        vttablet.extra_flags = Some([("queryserver-config-pool-size".into(), "8".into())].into());
        vttablet.vtbackup_extra_flags = Some([("xtrabackup_stripes".into(), "4".into())].into());
        let pod = init(&shard).unwrap().unwrap().pod;
        let args = pod.spec.unwrap().containers[0].args.clone().unwrap();
        assert!(
            args.iter().any(|a| a == "--xtrabackup-stripes=4"),
            "{args:?}"
        );
        assert!(!args.iter().any(|a| a.contains("queryserver")), "{args:?}");
    }

    #[test]
    fn a_serving_shard_requests_its_first_backup_of_a_replica() {
        let request = initial_backup_request(&shard(true)).unwrap();
        assert_eq!(request.spec.keyspace.as_deref(), Some("commerce"));
        assert_eq!(request.spec.shard.as_deref(), Some("-"));
        assert_eq!(request.spec.allow_primary, Some(false));
        let name = request.metadata.name.unwrap();
        assert!(
            name.starts_with("example-commerce-x-x-initial-backup-"),
            "{name}"
        );
        assert_eq!(request.metadata.labels.unwrap()[labels::SHARD], "x-x");
    }

    #[test]
    fn no_init_pod_without_backups_or_when_opted_out() {
        assert!(init(&shard(false)).unwrap().is_none());
        let mut opted_out = shard(true);
        opted_out.spec.template.replication = Some(VitessReplicationSpec {
            initialize_backup: Some(false),
            ..VitessReplicationSpec::default()
        });
        assert!(init(&opted_out).unwrap().is_none());
    }
}
