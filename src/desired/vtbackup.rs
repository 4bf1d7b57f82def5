//! The `vtbackup-init` pod of a new shard (DESIGN §8): it initialises an empty database and
//! uploads it as the shard's first backup, so that the tablets can restore from it. Built only
//! for a shard with backups and `replication.initializeBackup` not false; whether the shard
//! needs one (no complete backup, no primary) is the shard controller's call.
//!
//! Also the pod of a scheduled backup with `backupMethod: vtbackup` ([`scheduled`]): the same
//! vtbackup, which restores the latest backup into a volume of its own, catches up with the
//! primary and uploads a new backup, so that no serving tablet does the copying (the Go
//! operator's `update` backup).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, EnvVar, EphemeralVolumeSource, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimTemplate, PersistentVolumeClaimVolumeSource, Pod, PodSpec, Volume,
    VolumeMount,
};

use super::backup;
use super::flags::FlagSet;
use super::mycnf::{self, Overrides};
use super::vttablet::{self, MysqldFlavour};
use super::{Error, ShardIdentity, defaults, meta, podspec};
use crate::api::VitessBackup;
use crate::api::backup::VitessBackupSpec;
use crate::api::shard::{VitessShard, VitessShardTabletPool};
use crate::{domain::labels, domain::names};

/// The container that runs vtbackup (the Go operator's name).
pub const CONTAINER: &str = "vtbackup";
/// The init pod's data volume (its claim, of the pod's name), when it has one.
const DATA_VOLUME: &str = "vtdataroot";
/// The `backup.planetscale.com/type` of the init pod (the Go operator's label and value).
const TYPE_INIT: &str = "init";
/// Where the init container leaves the Vitess image's CA bundle, mounted over the mysqld
/// image's: the storage's HTTPS is checked with it, and a stock MySQL image may have none.
const CA_DIR: &str = "/etc/ssl/certs";

/// vtbackup runs in the mysqld image, as mysqlctld does in a tablet (it starts a mysqld of its
/// own), so this copies vtbackup, the my.cnf fragments and the CA bundle from the Vitess image
/// into the shared volume. Its mysqld only loads and copies an empty database: it may skip
/// flushing to disk (`vtbackup.cnf`).
const INIT_VTBACKUP_SCRIPT: &str = r#"set -ex
mkdir -p /mnt/vt/bin /mnt/vt/config/mycnf /mnt/vt/socket /mnt/vt/vtdataroot /mnt/vt/certs
cp -f /vt/bin/vtbackup /mnt/vt/bin/
if [ -d /vt/config/mycnf ]; then cp -Rf /vt/config/mycnf/. /mnt/vt/config/mycnf/; fi
ln -sf /dev/stderr /mnt/vt/config/stderr.symlink
echo "log-error = /vt/config/stderr.symlink" > /mnt/vt/config/mycnf/log-error.cnf
echo "binlog_format=row" > /mnt/vt/config/mycnf/rbr.cnf
echo "socket = /vt/socket/mysql.sock" > /mnt/vt/config/mycnf/socket.cnf
printf 'sync_binlog=0\ninnodb_flush_log_at_trx_commit=0\n' > /mnt/vt/config/mycnf/vtbackup.cnf
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then cp -f /etc/ssl/certs/ca-certificates.crt /mnt/vt/certs/; fi
"#;

/// The init pod and, unless it uses an emptyDir, its data volume claim (same name).
#[derive(Clone, Debug)]
pub struct VtbackupInit {
    pub pod: Pod,
    pub pvc: Option<PersistentVolumeClaim>,
}

/// The `vtbackup-init` pod of `shard`, or `None` when the shard has no backups or opted out.
pub fn init(shard: &VitessShard) -> Result<Option<VtbackupInit>, Error> {
    Ok(parts(shard, true)?.map(|parts| parts.build()))
}

/// The pod a scheduled backup of `shard` runs with `backupMethod: vtbackup` (its Job's
/// template: `restartPolicy: Never`), or `None` when the shard has no backups or opted out of
/// them (`replication.initializeBackup: false`, as in the Go operator). Its data lives on an
/// ephemeral volume from the claim template of the shard's `vtbackup` or first pool (an
/// emptyDir without one): the claim is made for the pod and goes with it, so nothing is left
/// behind when the Job goes.
pub fn scheduled(shard: &VitessShard) -> Result<Option<ScheduledVtbackup>, Error> {
    Ok(parts(shard, false)?.map(|parts| parts.scheduled()))
}

/// The pod template of a scheduled vtbackup.
#[derive(Clone, Debug)]
pub struct ScheduledVtbackup {
    pub spec: PodSpec,
    /// The pod's annotations (the pool's my.cnf overrides, the location's annotations).
    pub annotations: BTreeMap<String, String>,
}

/// What both vtbackup pods are built from, or `None` (see [`init`]); `initial`: the init pod.
fn parts(shard: &VitessShard, initial: bool) -> Result<Option<Parts<'_>>, Error> {
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
        vttablet::DB_INIT_SCRIPT_DIR,
        object,
        "spec.databaseInitScriptSecret",
    )?;
    Ok(Some(Parts {
        shard,
        first_pool,
        identity,
        location: location.name.clone(),
        storage,
        init_script,
        flavour: MysqldFlavour::of(spec.images.mysqld.as_ref()),
        initial,
    }))
}

/// What the init pod and its claim are built from: the shard's first pool, as if it were one
/// more tablet of it (the Go operator's shape: the pool's resources, placement and
/// environment, the tablet's mounts).
struct Parts<'a> {
    shard: &'a VitessShard,
    first_pool: &'a VitessShardTabletPool,
    identity: ShardIdentity<'a>,
    /// The backup location's name (empty: the unnamed one).
    location: String,
    storage: backup::BackupStorage,
    init_script: podspec::SecretFile,
    flavour: MysqldFlavour,
    /// The init pod (an empty database, uploaded); else a scheduled backup (the latest
    /// restored, caught up, uploaded).
    initial: bool,
}

/// Where vtbackup's data goes.
enum Data {
    /// The claim of this name.
    Claim(String),
    /// A claim made for the pod from this template, gone with the pod.
    Ephemeral(Box<PersistentVolumeClaimSpec>),
    /// The pod's shared emptyDir.
    Shared,
}

impl Parts<'_> {
    /// The data volume claim template: the shard's `vtbackup` one, else its first pool's.
    fn claim_template(&self) -> Option<PersistentVolumeClaimSpec> {
        self.shard
            .spec
            .template
            .vtbackup
            .as_ref()
            .and_then(|v| v.data_volume_claim_template.clone())
            .or_else(|| self.first_pool.data_volume_claim_template.clone())
    }

    fn scheduled(&self) -> ScheduledVtbackup {
        let data = match self.claim_template() {
            Some(claim) => Data::Ephemeral(Box::new(claim)),
            None => Data::Shared,
        };
        let pod = self.pod("", BTreeMap::new(), data);
        let mut spec = pod.spec.unwrap_or_default();
        // Once: a failed run is the Job's to retry, in a new pod on a new volume.
        spec.restart_policy = Some("Never".into());
        let annotations = pod.metadata.annotations.unwrap_or_default();
        ScheduledVtbackup { spec, annotations }
    }

    fn build(&self) -> VtbackupInit {
        let ShardIdentity {
            cluster,
            keyspace,
            range,
            ..
        } = &self.identity;
        let (cluster, keyspace) = (*cluster, *keyspace);
        let safe = range.safe_name();
        let name = names::cluster::vtbackup_init_pod(cluster, keyspace, &safe);
        let own = labels::set(&[
            (labels::COMPONENT, labels::component::VTBACKUP),
            (labels::CLUSTER, cluster),
            (labels::KEYSPACE, keyspace),
            (labels::SHARD, &safe),
            (labels::BACKUP_LOCATION, &self.location),
            (labels::BACKUP_TYPE, TYPE_INIT),
        ]);
        let vtbackup = self
            .shard
            .spec
            .template
            .vtbackup
            .clone()
            .unwrap_or_default();
        let empty_dir = vtbackup.use_empty_dir_for_initial_backup == Some(true);
        let claim = self.claim_template();
        let namespace = &self.shard.metadata.namespace;
        let data = if claim.is_some() && !empty_dir {
            Data::Claim(name.clone())
        } else {
            Data::Shared
        };
        let mut pod = self.pod(&name, own.clone(), data);
        if let Some(spec) = pod.spec.as_mut() {
            // Retried in place until the first backup is uploaded; then it stays Succeeded.
            spec.restart_policy = Some("OnFailure".into());
        }
        // A failing init pod whose spec changed is replaced (see `controller::backupinit`).
        let hash = super::content_hash(&pod);
        pod.metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(labels::rollout::DESIRED_STATE_HASH.into(), hash);
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

    /// vtbackup's flags: initialise an empty database and upload it (the init pod), or
    /// restore the latest backup, catch up and upload a new one (a scheduled backup).
    fn flags(&self) -> FlagSet {
        let spec = &self.shard.spec;
        let ShardIdentity {
            keyspace, range, ..
        } = &self.identity;
        let mut flags = FlagSet::vitess();
        flags
            .global_topo(&spec.global_lockserver)
            .set("logtostderr", true)
            .set("concurrency", defaults::BACKUP_CONCURRENCY)
            .set("init-keyspace", *keyspace)
            .set("init-shard", range.to_string())
            .set(
                "init-db-name-override",
                spec.database_name
                    .clone()
                    .unwrap_or_else(|| format!("vt_{keyspace}")),
            )
            // The init pod: an empty database, uploaded only if the shard has no backup yet.
            // Scheduled: the latest backup restored and brought up to date; no old backup
            // pruned (no minimum retention time), as the Go operator runs it.
            .set("initial-backup", self.initial)
            .set("init-db-sql-file", &self.init_script.path)
            .set("db-dba-user", vttablet::DBA_USER)
            .set("db-charset", self.flavour.charset)
            .set("mysql-socket", vttablet::MYSQL_SOCKET)
            // Binlogs a restore applies are staged on the data volume, not the container's.
            .set(
                "builtinbackup-incremental-restore-path",
                vttablet::VT_DATA_ROOT,
            );
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
            .mysql_server_version(&self.flavour.image)
            .extend(spec.extra_vitess_flags.as_ref())
            .extend(self.first_pool.vttablet.vtbackup_extra_flags.as_ref());
        flags
    }

    /// vtbackup's environment: a tablet's, its own home, the storage's; the pool's
    /// `extraEnv` goes on top (see [`Self::pod`]).
    fn env(&self) -> Vec<EnvVar> {
        let overrides = Overrides::of(self.first_pool).is_some();
        let mut env = vttablet::tablet_env(&self.flavour, mycnf::extra_my_cnf(overrides, true));
        env.push(EnvVar {
            name: "HOME".into(),
            value: Some(vttablet::VT_DATA_ROOT.into()),
            ..EnvVar::default()
        });
        env.extend(self.storage.env.iter().cloned());
        env
    }

    /// The pod `name`: vtbackup in the mysqld image with what the init container copied; its
    /// data where `data` says.
    fn pod(&self, name: &str, own: BTreeMap<String, String>, data: Data) -> Pod {
        let (spec, pool) = (&self.shard.spec, self.first_pool);
        let mut volumes = vec![Volume {
            name: vttablet::VT_ROOT_VOLUME.into(),
            empty_dir: Some(Default::default()),
            ..Volume::default()
        }];
        let on_volume = !matches!(data, Data::Shared);
        match data {
            Data::Claim(claim_name) => volumes.push(Volume {
                name: DATA_VOLUME.into(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name,
                    ..PersistentVolumeClaimVolumeSource::default()
                }),
                ..Volume::default()
            }),
            Data::Ephemeral(spec) => volumes.push(Volume {
                name: DATA_VOLUME.into(),
                ephemeral: Some(EphemeralVolumeSource {
                    volume_claim_template: Some(PersistentVolumeClaimTemplate {
                        metadata: None,
                        spec: *spec,
                    }),
                }),
                ..Volume::default()
            }),
            Data::Shared => {}
        }
        volumes.extend(self.init_script.volume.clone());
        volumes.extend(self.storage.volumes.iter().cloned());
        let overrides = Overrides::of(pool);
        if overrides.is_some() {
            volumes.push(Overrides::volume());
        }
        let mut mounts = vec![
            vttablet::vt_root_mount("/vt/bin", "bin", true),
            vttablet::vt_root_mount("/vt/config", "config", true),
            vttablet::vt_root_mount(vttablet::SOCKET_DIR, "socket", false),
            vttablet::vt_root_mount(CA_DIR, "certs", true),
            vttablet::data_mount(if on_volume {
                DATA_VOLUME
            } else {
                vttablet::VT_ROOT_VOLUME
            }),
            self.init_script.mount.clone(),
        ];
        mounts.extend(self.storage.mounts.iter().cloned());
        if overrides.is_some() {
            mounts.push(Overrides::mount());
        }
        let mut init = vttablet::init_container(
            spec,
            pool,
            "init-vt-root",
            INIT_VTBACKUP_SCRIPT,
            VolumeMount {
                name: vttablet::VT_ROOT_VOLUME.into(),
                mount_path: "/mnt/vt".into(),
                ..VolumeMount::default()
            },
        );
        // vtbackup is copied from the vtbackup image, with its pull policy (the Go operator's
        // choice); a cluster that names none gets the same Vitess image as the tablets.
        init.image = Some(
            spec.images
                .vtbackup
                .clone()
                .unwrap_or_else(|| vttablet::vitess_image(spec)),
        );
        init.image_pull_policy =
            podspec::pull_policy(spec.image_pull_policies.as_ref().and_then(|p| p.vtbackup));
        let container = Container {
            name: CONTAINER.into(),
            image: Some(self.flavour.image.clone()),
            image_pull_policy: podspec::pull_policy(
                spec.image_pull_policies.as_ref().and_then(|p| p.mysqld),
            ),
            command: Some(vec!["/vt/bin/vtbackup".into()]),
            args: Some(self.flags().args()),
            env: Some(self.env()),
            resources: pool.mysqld.as_ref().and_then(|m| m.resources.clone()),
            volume_mounts: Some(mounts),
            // The end of its log becomes the termination message of a failed run, which the
            // shard's BackupInitialized condition and Events repeat (a wrong bucket, say).
            termination_message_policy: Some("FallbackToLogsOnError".into()),
            ..Container::default()
        };
        // The pool's my.cnf overrides reach vtbackup's mysqld as they reach the tablets'.
        let annotations = overrides.map(|overrides| {
            let mut annotations = BTreeMap::new();
            overrides.annotate(&mut annotations);
            annotations
        });
        let mut metadata = meta(
            name.to_string(),
            &self.shard.metadata.namespace,
            own,
            annotations,
        );
        let mut pod_spec = PodSpec {
            init_containers: Some(vec![init]),
            containers: vec![container],
            volumes: Some(volumes),
            affinity: podspec::affinity(
                pool.pod.affinity.as_ref(),
                spec.zone_map.get(&pool.cell).map(String::as_str),
                None,
            ),
            image_pull_secrets: spec.image_pull_secrets.clone(),
            security_context: Some(podspec::vitess_pod_security()),
            priority_class_name: defaults::vitess_priority_class(),
            ..PodSpec::default()
        };
        podspec::apply_overrides(&mut metadata, &mut pod_spec, &[CONTAINER], &pool.pod);
        self.storage.annotate(&mut metadata);
        Pod {
            metadata,
            spec: Some(pod_spec),
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
    use crate::api::shared::{PullPolicy, VitessImagePullPolicies};
    use PersistentVolumeClaimSpec;
    use k8s_openapi::api::core::v1::PodSpec;

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
        let credentials = env
            .iter()
            .find(|e| e.name == "GOOGLE_APPLICATION_CREDENTIALS")
            .and_then(|e| e.value.as_deref());
        assert_eq!(
            credentials,
            Some("/vt/secrets/gcs-backup-auth/gcs_key.json")
        );
        let labels = init.pod.metadata.labels.unwrap();
        assert_eq!(labels[labels::COMPONENT], "vtbackup");
        assert_eq!(labels[labels::BACKUP_TYPE], "init");
        assert_eq!(labels[labels::BACKUP_LOCATION], "");
    }

    /// vtbackup starts a mysqld of its own: it runs in the mysqld image (the Vitess image has
    /// no MySQL since v19), with vtbackup copied in by an init container of the Vitess image,
    /// placed and given the environment of the pool it is a tablet of.
    #[test]
    fn vtbackup_runs_in_the_mysqld_image_placed_like_the_first_pool() {
        let mut shard = shard(true);
        shard.spec.images.mysqld = Some(crate::api::shared::MysqldImage {
            mysql80_compatible: Some("mysql:9.7".into()),
            ..Default::default()
        });
        shard.spec.zone_map = [("zone1".to_string(), "az-1".to_string())].into();
        let pool = &mut shard.spec.template.tablet_pools[0];
        pool.pod.tolerations = Some(vec![k8s_openapi::api::core::v1::Toleration {
            key: Some("dedicated".into()),
            operator: Some("Exists".into()),
            ..Default::default()
        }]);
        pool.pod.extra_env = Some(vec![EnvVar {
            name: "STORAGE_EMULATOR_HOST".into(),
            value: Some("gcs.example:4443".into()),
            ..EnvVar::default()
        }]);
        let spec = init(&shard).unwrap().unwrap().pod.spec.unwrap();
        let vtbackup = &spec.containers[0];
        assert_eq!(vtbackup.image.as_deref(), Some("mysql:9.7"));
        assert_eq!(
            vtbackup.command.as_deref(),
            Some(&["/vt/bin/vtbackup".to_string()][..])
        );
        let init_container = &spec.init_containers.as_ref().unwrap()[0];
        assert_eq!(
            init_container.image.as_deref(),
            Some(defaults::VITESS_IMAGE)
        );
        let script = &init_container.args.as_ref().unwrap()[0];
        assert!(
            script.contains("cp -f /vt/bin/vtbackup /mnt/vt/bin/"),
            "{script}"
        );
        let mounts = vtbackup.volume_mounts.as_ref().unwrap();
        for path in [
            "/vt/bin",
            "/vt/config",
            "/vt/socket",
            "/vt/vtdataroot",
            CA_DIR,
        ] {
            assert!(
                mounts.iter().any(|m| m.mount_path == path),
                "{path}: {mounts:?}"
            );
        }
        let env = vtbackup.env.as_ref().unwrap();
        let value = |name: &str| {
            env.iter()
                .find(|e| e.name == name)
                .and_then(|e| e.value.clone())
        };
        assert_eq!(
            value("STORAGE_EMULATOR_HOST").as_deref(),
            Some("gcs.example:4443")
        );
        assert_eq!(value("MYSQL_FLAVOR").as_deref(), Some("MySQL80"));
        assert!(value("EXTRA_MY_CNF").unwrap().ends_with("vtbackup.cnf"));
        let args = vtbackup.args.as_ref().unwrap();
        assert!(
            args.iter()
                .any(|a| a == "--mysql-socket=/vt/socket/mysql.sock"),
            "{args:?}"
        );
        assert_eq!(
            spec.tolerations.as_ref().unwrap()[0].key.as_deref(),
            Some("dedicated")
        );
        let zone = spec.affinity.unwrap().node_affinity.unwrap();
        let term = &zone
            .required_during_scheduling_ignored_during_execution
            .unwrap()
            .node_selector_terms[0];
        assert_eq!(
            term.match_expressions.as_ref().unwrap()[0].values,
            Some(vec!["az-1".to_string()])
        );
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

    /// The first pool's my.cnf overrides are in the first backup's mysqld too (a setting such
    /// as `lower_case_table_names` must match the data), before vtbackup's own fragment.
    #[test]
    fn vtbackup_is_copied_from_the_vtbackup_image_with_its_pull_policy() {
        let mut shard = shard(true);
        let pod = |shard: &VitessShard| init(shard).unwrap().unwrap().pod.spec.unwrap();
        let copier = |spec: &PodSpec| spec.init_containers.as_ref().unwrap()[0].clone();
        let tablets_image = vttablet::vitess_image(&shard.spec);
        assert_eq!(copier(&pod(&shard)).image.unwrap(), tablets_image);
        shard.spec.images.vtbackup = Some("registry.example/vitess/lite:backup".into());
        shard.spec.image_pull_policies = Some(VitessImagePullPolicies {
            vtbackup: Some(PullPolicy::Always),
            vttablet: Some(PullPolicy::Never),
            ..VitessImagePullPolicies::default()
        });
        let spec = pod(&shard);
        let copier = copier(&spec);
        assert_eq!(
            copier.image.as_deref(),
            Some("registry.example/vitess/lite:backup")
        );
        assert_eq!(copier.image_pull_policy.as_deref(), Some("Always"));
    }

    #[test]
    fn the_locations_annotations_reach_vtbackup() {
        let mut shard = shard(true);
        shard.spec.backup_locations.as_mut().unwrap()[0].annotations = Some(BTreeMap::from([(
            "iam.example.com/role".to_string(),
            "backups".to_string(),
        )]));
        let pod = init(&shard).unwrap().unwrap().pod;
        assert_eq!(
            pod.metadata.annotations.as_ref().unwrap()["iam.example.com/role"],
            "backups"
        );
    }

    #[test]
    fn the_first_pools_config_overrides_reach_vtbackup() {
        let mut shard = shard(true);
        let text = "[mysqld]\nlower_case_table_names = 1\n";
        shard.spec.template.tablet_pools[0].mysqld = Some(MysqldSpec {
            config_overrides: Some(text.into()),
            ..MysqldSpec::default()
        });
        let pod = init(&shard).unwrap().unwrap().pod;
        assert_eq!(
            pod.metadata.annotations.as_ref().unwrap()[mycnf::OVERRIDES_ANNOTATION],
            text
        );
        let spec = pod.spec.unwrap();
        assert!(
            spec.volumes
                .as_ref()
                .unwrap()
                .iter()
                .any(|v| v.name == "pod-config")
        );
        let vtbackup = &spec.containers[0];
        assert!(
            vtbackup
                .volume_mounts
                .as_ref()
                .unwrap()
                .iter()
                .any(|m| m.mount_path == "/pod-config")
        );
        let extra = vtbackup
            .env
            .as_ref()
            .unwrap()
            .iter()
            .find(|e| e.name == "EXTRA_MY_CNF")
            .and_then(|e| e.value.clone())
            .unwrap();
        assert!(
            extra.ends_with("/pod-config/mysqld-config-overrides:/vt/config/mycnf/vtbackup.cnf"),
            "{extra}"
        );
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
