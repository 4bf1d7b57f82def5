//! From a VitessShard to its tablets: for every pool and index a Pod (vttablet, mysqld via
//! mysqlctld, mysqld-exporter) and a PVC of the same name for MySQL's data; plus the
//! cluster-wide headless vttablet Service. Names, UIDs and labels are the Go operator's, so its
//! tablets are recognised.
//!
//! Long because a tablet pod is one literal object (three containers, their flags, volumes and
//! probes) built in one place; the Go operator's name and flag vectors are tested in
//! `vttablet/tests.rs`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, EnvVar, EnvVarSource, ObjectFieldSelector,
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodAntiAffinity, PodSpec, Probe,
    ResourceRequirements, Service, TCPSocketAction, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use md5::{Digest, Md5};

use super::backup::{self, BackupStorage};
use super::flags::FlagSet;
use super::mycnf::{self, Overrides};
use super::podspec::{self, GRPC_PORT_NAME, HOSTNAME_LABEL, MYSQL_PORT_NAME, WEB_PORT_NAME};
use super::{Error, ShardIdentity, cluster_name, defaults, meta};
use crate::api::cluster::{BackupEngine, VitessCluster};
use crate::api::shard::{
    ExternalDatastore, TabletPoolType, VitessShard, VitessShardSpec, VitessShardTabletPool,
};
use crate::api::shared::{MysqldImage, PullPolicy, VitessImagePullPolicies};
use crate::domain::keyrange::KeyRange;
use crate::domain::labels;
use crate::domain::names;

/// Volume shared by the init container, vttablet and mysqld: the Vitess files mysqld needs
/// (the mysqld image may be a stock MySQL one) and the MySQL socket directory.
pub(super) const VT_ROOT_VOLUME: &str = "vt-root";
/// The tablet's PVC, as a pod volume (the Go operator's name).
const DATA_VOLUME: &str = "persistent-volume-claim";
pub(super) const VT_DATA_ROOT: &str = "/vt/vtdataroot";
pub(super) const SOCKET_DIR: &str = "/vt/socket";
pub(super) const MYSQL_SOCKET: &str = "/vt/socket/mysql.sock";
const MYSQLCTL_SOCKET: &str = "/vt/socket/mysqlctl.sock";
/// Directory (under `/vt/secrets/`) of the database init script; its volume is this name with
/// `-secret` (see [`podspec::secret_file`]).
pub(super) const DB_INIT_SCRIPT_DIR: &str = "db-init-script";
/// Directories of an external datastore's credentials and CA certificate.
const EXTERNAL_CREDENTIALS_DIR: &str = "external-datastore-credentials";
const EXTERNAL_CA_DIR: &str = "external-datastore-ca-cert";
/// vttablet's `--db-flags` bit asking for TLS to the database (MySQL's CLIENT_SSL).
const CLIENT_SSL_FLAG: u32 = 2048;
/// The MySQL users of a tablet's own mysqld (made by the database init script).
pub(super) const DBA_USER: &str = "vt_dba";
const METRICS_PORT_NAME: &str = "metrics";
/// What the drain annotation says: the operator honours drains of this pod.
const DRAIN_SUPPORTED: &str = "ensure that the tablet is not a primary";

/// Copies what mysqlctld needs from the vttablet image into the shared volume, and writes the
/// my.cnf fragments the tablet relies on (logs to the container log, a fixed socket path,
/// row-based binlogs), and the `[client]` file mysqld-exporter logs in with (it reads no
/// DATA_SOURCE_NAME since v0.15, and the tablet's my.cnf has no `[client]` user). Init
/// containers only rerun when the whole pod restarts, so nothing copied here is in use;
/// overwriting (`-f`) keeps the script idempotent on every coreutils.
const INIT_VT_ROOT_SCRIPT: &str = r#"set -ex
mkdir -p /mnt/vt/bin /mnt/vt/config/mycnf /mnt/vt/socket /mnt/vt/vtdataroot
cp -f /vt/bin/mysqlctld /mnt/vt/bin/
if [ -d /vt/config/mycnf ]; then cp -Rf /vt/config/mycnf/. /mnt/vt/config/mycnf/; fi
ln -sf /dev/stderr /mnt/vt/config/stderr.symlink
echo "log-error = /vt/config/stderr.symlink" > /mnt/vt/config/mycnf/log-error.cnf
echo "binlog_format=row" > /mnt/vt/config/mycnf/rbr.cnf
echo "socket = /vt/socket/mysql.sock" > /mnt/vt/config/mycnf/socket.cnf
printf '[client]\nuser=vt_dba\nsocket=/vt/socket/mysql.sock\n' > /mnt/vt/config/mycnf/client.cnf
"#;
/// Points every tablet my.cnf already on the data volume at the socket path above: a data
/// directory set up with another socket path (an older layout, or another operator's) would
/// otherwise start a mysqld that vttablet cannot reach. Nothing to do on a new volume.
const INIT_MYSQL_SOCKET_SCRIPT: &str = r#"set -ex
for cnf in /vt/vtdataroot/vt_*/my.cnf; do
  [ -f "$cnf" ] || continue
  sed -i 's|^socket[[:space:]]*=.*$|socket = /vt/socket/mysql.sock|' "$cnf"
done
"#;
/// The exporter's login file written above: user vt_dba (no password) over the socket.
const EXPORTER_MY_CNF: &str = "/vt/config/mycnf/client.cnf";

/// The hex MD5 of a pod's JSON as the builder makes it (labels, annotations, spec). JSON of
/// these types is deterministic (maps are ordered), so equal pods have equal hashes.
pub fn desired_state_hash(pod: &Pod) -> String {
    super::content_hash(pod)
}

/// One tablet: its pod and, with a local mysqld, its data volume claim.
#[derive(Clone, Debug)]
pub struct Tablet {
    pub alias: String,
    pub pod: Pod,
    pub pvc: Option<PersistentVolumeClaim>,
}

/// A tablet's UID. Pools of a local mysqld use the Go operator's original formula (see
/// [`names::tablet_uid`]) whatever their name; a named pool of an external datastore appends
/// its name to the hashed line, as the Go operator's `UIDWithPoolName` does, so two such pools
/// of one cell and type get distinct tablets. (The Go operator hashes the name only with
/// `externalDatastore`; doing so for local pools too would rename their tablets on takeover.)
pub fn tablet_uid(
    cell: &str,
    keyspace: &str,
    key_range: &str,
    pool_type: &str,
    index: u32,
    pool_name: &str,
) -> u32 {
    if pool_name.is_empty() {
        return names::tablet_uid(cell, keyspace, key_range, pool_type, index);
    }
    let line = format!("{cell} {keyspace} {key_range} {pool_type} {index} {pool_name}\n");
    let digest = Md5::digest(line.as_bytes());
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// The pool name that goes into its tablets' UIDs: only an external datastore's.
fn uid_pool_name(pool: &VitessShardTabletPool) -> &str {
    if pool.external_datastore.is_some() {
        &pool.name
    } else {
        ""
    }
}

/// Refuses two pools whose tablets would get the same UIDs: the same cell and type, and no
/// pool name in the UID (a local mysqld).
fn distinct_local_pools(pools: &[VitessShardTabletPool], object: &str) -> Result<(), Error> {
    for (second, b) in pools.iter().enumerate() {
        let clash = pools[..second].iter().position(|a| {
            a.cell == b.cell && a.type_ == b.type_ && uid_pool_name(a) == uid_pool_name(b)
        });
        if let Some(first) = clash {
            return Err(Error::SamePoolTablets {
                object: object.to_string(),
                first,
                second,
                cell: b.cell.clone(),
                pool_type: b.type_.as_str().to_string(),
            });
        }
    }
    Ok(())
}

/// Builds every tablet of `shard`, pool by pool, index by index.
pub fn build(shard: &VitessShard) -> Result<Vec<Tablet>, Error> {
    let ShardIdentity {
        object,
        cluster,
        keyspace,
        range,
    } = ShardIdentity::of(shard)?;
    let spec = &shard.spec;
    let init_script = podspec::secret_file(
        &spec.template.database_init_script_secret,
        DB_INIT_SCRIPT_DIR,
        &object,
        "spec.databaseInitScriptSecret",
    )?;

    distinct_local_pools(&spec.template.tablet_pools, &object)?;
    let flavour = MysqldFlavour::of(spec.images.mysqld.as_ref());
    let locations = spec.backup_locations.as_deref().unwrap_or_default();
    let mut tablets = Vec::new();
    for (pool_index, pool) in spec.template.tablet_pools.iter().enumerate() {
        // A location without a backend (rejected by the schema) gives no flags: then nothing
        // may restore either, or every new tablet would fail to start. A tablet of an external
        // datastore neither backs up nor restores: its MySQL is someone else's.
        let backup = if locations.is_empty() || pool.external_datastore.is_some() {
            None
        } else {
            let location = backup::location(
                locations,
                pool.backup_location_name.as_deref(),
                &object,
                &format!("spec.tabletPools[{pool_index}].backupLocationName"),
            )?;
            let storage = backup::storage(location, cluster, &object)?;
            (!storage.flags.is_empty()).then(|| TabletBackup {
                storage,
                engine: spec.backup_engine.unwrap_or_default(),
            })
        };
        let external = pool
            .external_datastore
            .as_ref()
            .map(|datastore| ExternalFiles::of(datastore, &object, pool_index))
            .transpose()?;
        for index in 1..=pool.replicas.max(0).unsigned_abs() {
            let uid = tablet_uid(
                &pool.cell,
                keyspace,
                &range.to_string(),
                pool.type_.as_str(),
                index,
                uid_pool_name(pool),
            );
            let ctx = TabletContext {
                namespace: &shard.metadata.namespace,
                cluster,
                keyspace,
                range: &range,
                spec,
                pool,
                index,
                uid,
                alias: names::tablet_alias(&pool.cell, uid),
                init_script: &init_script,
                backup: backup.as_ref(),
                external: external.as_ref(),
                overrides: Overrides::of(pool),
                flavour: &flavour,
            };
            tablets.push(ctx.tablet());
        }
    }
    Ok(tablets)
}

/// Everything one tablet's objects are made from.
struct TabletContext<'a> {
    namespace: &'a Option<String>,
    cluster: &'a str,
    keyspace: &'a str,
    range: &'a KeyRange,
    spec: &'a VitessShardSpec,
    pool: &'a VitessShardTabletPool,
    index: u32,
    uid: u32,
    alias: String,
    init_script: &'a podspec::SecretFile,
    backup: Option<&'a TabletBackup>,
    external: Option<&'a ExternalFiles>,
    /// The pool's `mysqld.configOverrides`.
    overrides: Option<Overrides<'a>>,
    /// The shard's MySQL image and flavour.
    flavour: &'a MysqldFlavour,
}

/// The secret files of an external datastore, as its tablets mount them.
struct ExternalFiles {
    credentials: podspec::SecretFile,
    ca: Option<podspec::SecretFile>,
}

impl ExternalFiles {
    fn of(datastore: &ExternalDatastore, object: &str, pool_index: usize) -> Result<Self, Error> {
        let field = |name: &str| format!("spec.tabletPools[{pool_index}].externalDatastore.{name}");
        Ok(Self {
            credentials: podspec::secret_file(
                &datastore.credentials_secret,
                EXTERNAL_CREDENTIALS_DIR,
                object,
                &field("credentialsSecret"),
            )?,
            ca: datastore
                .server_ca_cert_secret
                .as_ref()
                .map(|ca| {
                    podspec::secret_file(ca, EXTERNAL_CA_DIR, object, &field("serverCACertSecret"))
                })
                .transpose()?,
        })
    }

    fn all(&self) -> impl Iterator<Item = &podspec::SecretFile> {
        std::iter::once(&self.credentials).chain(self.ca.as_ref())
    }
}

/// The backup location and engine of a tablet pool.
struct TabletBackup {
    storage: BackupStorage,
    engine: BackupEngine,
}

impl TabletContext<'_> {
    fn tablet(&self) -> Tablet {
        let spec = self.spec;
        let pool = self.pool;
        let name = names::cluster::vttablet_pod(self.cluster, &self.alias);
        let namespace = self.namespace;
        let own = self.labels();
        let local_mysqld = pool.external_datastore.is_none();
        let has_pvc = local_mysqld && pool.data_volume_claim_template.is_some();

        let volumes = self.volumes(&name, has_pvc);
        let mut containers = vec![self.vttablet(has_pvc, local_mysqld)];
        if local_mysqld {
            containers.push(self.mysqld(has_pvc));
            if let Some(exporter) = self.mysqld_exporter(has_pvc) {
                containers.push(exporter);
            }
        }

        let mut annotations = BTreeMap::from([(
            labels::drain::SUPPORTED.to_string(),
            DRAIN_SUPPORTED.to_string(),
        )]);
        if let Some(overrides) = self.overrides {
            overrides.annotate(&mut annotations);
        }
        let mut pod_meta = meta(name.clone(), namespace, own.clone(), Some(annotations));
        let mut init_containers = vec![self.init_vt_root()];
        if has_pvc {
            init_containers.push(self.init_mysql_socket());
        }
        let mut pod_spec = PodSpec {
            init_containers: Some(init_containers),
            containers,
            volumes: Some(volumes),
            affinity: podspec::affinity(
                pool.pod.affinity.as_ref(),
                spec.zone_map.get(&pool.cell).map(String::as_str),
                Some(spread(&own)),
            ),
            termination_grace_period_seconds: Some(
                pool.vttablet
                    .termination_grace_period_seconds
                    .unwrap_or(defaults::VTTABLET_TERMINATION_GRACE_SECONDS),
            ),
            image_pull_secrets: spec.image_pull_secrets.clone(),
            security_context: Some(podspec::vitess_pod_security()),
            priority_class_name: defaults::vitess_priority_class(),
            ..PodSpec::default()
        };
        podspec::apply_overrides(
            &mut pod_meta,
            &mut pod_spec,
            &["vttablet", "mysqld"],
            &pool.pod,
        );
        if let Some(backup) = self.backup {
            backup.storage.annotate(&mut pod_meta);
        }
        // The user's environment reaches the exporter too (its mounts do not).
        if let Some(extra) = &pool.pod.extra_env {
            for exporter in pod_spec
                .containers
                .iter_mut()
                .filter(|c| c.name == "mysqld-exporter")
            {
                let ours = exporter.env.take().unwrap_or_default();
                exporter.env = Some(podspec::merge_env(ours, Some(extra)));
            }
        }
        let mut pod = Pod {
            metadata: pod_meta,
            spec: Some(pod_spec),
            status: None,
        };
        let hash = desired_state_hash(&pod);
        pod.metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(labels::rollout::DESIRED_STATE_HASH.into(), hash);
        let pvc = has_pvc.then(|| PersistentVolumeClaim {
            metadata: meta(name.clone(), namespace, own.clone(), None),
            spec: pool.data_volume_claim_template.clone(),
            status: None,
        });
        Tablet {
            alias: self.alias.clone(),
            pod,
            pvc,
        }
    }

    /// The pod's volumes: the shared root, the data claim if any, the init script, an
    /// external datastore's secrets and the backup storage's.
    fn volumes(&self, name: &str, has_pvc: bool) -> Vec<Volume> {
        let mut volumes = vec![Volume {
            name: VT_ROOT_VOLUME.into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        }];
        if has_pvc {
            volumes.push(Volume {
                name: DATA_VOLUME.into(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: name.to_string(),
                    ..PersistentVolumeClaimVolumeSource::default()
                }),
                ..Volume::default()
            });
        }
        volumes.extend(self.init_script.volume.clone());
        for file in self.external.into_iter().flat_map(ExternalFiles::all) {
            volumes.extend(file.volume.clone());
        }
        if let Some(backup) = self.backup {
            volumes.extend(backup.storage.volumes.iter().cloned());
        }
        if self.overrides.is_some() {
            volumes.push(Overrides::volume());
        }
        volumes
    }

    fn labels(&self) -> BTreeMap<String, String> {
        // The UID label is zero-padded to 10 digits like Vitess' own UID strings (and the Go
        // operator's current label), so labels sort and compare as text.
        let uid = format!("{:010}", self.uid);
        let index = self.index.to_string();
        let safe = self.range.safe_name();
        let mut set = labels::set(&[
            (labels::COMPONENT, labels::component::VTTABLET),
            (labels::CLUSTER, self.cluster),
            (labels::CELL, &self.pool.cell),
            (labels::KEYSPACE, self.keyspace),
            (labels::SHARD, &safe),
            (labels::TABLET_UID, &uid),
            (labels::TABLET_TYPE, self.pool.type_.as_str()),
            (labels::TABLET_INDEX, &index),
        ]);
        if !self.pool.name.is_empty() {
            set.insert(labels::POOL_NAME.into(), self.pool.name.clone());
        }
        set
    }

    fn vttablet_image(&self) -> String {
        vitess_image(self.spec)
    }

    fn pull_policy(
        &self,
        pick: fn(&VitessImagePullPolicies) -> Option<PullPolicy>,
    ) -> Option<String> {
        podspec::pull_policy(self.spec.image_pull_policies.as_ref().and_then(pick))
    }

    fn init_container(&self, name: &str, script: &str, mount: VolumeMount) -> Container {
        init_container(self.spec, self.pool, name, script, mount)
    }

    fn init_vt_root(&self) -> Container {
        let mount = VolumeMount {
            name: VT_ROOT_VOLUME.into(),
            mount_path: "/mnt/vt".into(),
            ..VolumeMount::default()
        };
        self.init_container("init-vt-root", INIT_VT_ROOT_SCRIPT, mount)
    }

    fn init_mysql_socket(&self) -> Container {
        let mount = data_mount(DATA_VOLUME);
        self.init_container("init-mysql-socket", INIT_MYSQL_SOCKET_SCRIPT, mount)
    }

    /// Mounts every container of the tablet shares: config and socket from the shared
    /// volume, the data directory from the PVC (or the shared volume when there is none), the
    /// database init script, an external datastore's secrets and the pool's my.cnf overrides.
    fn shared_mounts(&self, has_pvc: bool) -> Vec<VolumeMount> {
        let mut mounts = vec![
            vt_root_mount("/vt/config", "config", true),
            vt_root_mount(SOCKET_DIR, "socket", false),
            data_mount(if has_pvc { DATA_VOLUME } else { VT_ROOT_VOLUME }),
            self.init_script.mount.clone(),
        ];
        for file in self.external.into_iter().flat_map(ExternalFiles::all) {
            mounts.push(file.mount.clone());
        }
        if self.overrides.is_some() {
            mounts.push(Overrides::mount());
        }
        mounts
    }

    /// mysqld's (and mysqld-exporter's) mounts: the shared ones and the Vitess binaries the
    /// init container copied.
    fn mysqld_mounts(&self, has_pvc: bool) -> Vec<VolumeMount> {
        let mut mounts = vec![vt_root_mount("/vt/bin", "bin", true)];
        mounts.extend(self.shared_mounts(has_pvc));
        mounts
    }

    /// The environment vttablet and mysqld share.
    fn base_env(&self) -> Vec<EnvVar> {
        tablet_env(
            self.flavour,
            mycnf::extra_my_cnf(self.overrides.is_some(), false),
        )
    }

    /// vttablet's flags before backups and the user's: the Go operator's set, and how to
    /// reach the tablet's MySQL (its own mysqld, or an external datastore).
    fn vttablet_flags(&self, local_mysqld: bool) -> FlagSet {
        let spec = self.spec;
        let pool = self.pool;
        let flavour = self.flavour;
        let mut flags = FlagSet::vitess();
        flags
            .vitess_common(&spec.global_lockserver)
            .set("grpc-max-message-size", defaults::GRPC_MAX_MESSAGE_SIZE)
            .set(
                "service-map",
                "grpc-queryservice,grpc-tabletmanager,grpc-updatestream",
            )
            .set("tablet-path", &self.alias)
            // Expanded by Kubernetes from the env below: no shell needed.
            .set("tablet-hostname", "$(POD_IP)")
            .set("init-keyspace", self.keyspace)
            .set("init-shard", self.range.to_string())
            .set("init-tablet-type", init_tablet_type(pool.type_))
            .set("health-check-interval", "5s")
            .set(
                "queryserver-config-max-result-size",
                defaults::VTTABLET_MAX_RESULT_SIZE,
            )
            .set(
                "queryserver-config-query-timeout",
                defaults::VTTABLET_QUERY_TIMEOUT,
            )
            .set("queryserver-config-pool-size", defaults::VTTABLET_POOL_SIZE)
            .set(
                "queryserver-config-stream-pool-size",
                defaults::VTTABLET_STREAM_POOL_SIZE,
            )
            .set(
                "queryserver-config-transaction-cap",
                defaults::VTTABLET_TRANSACTION_CAP,
            )
            // Incremental restores stage binlogs in the data volume, not the container's disk.
            .set("builtinbackup-incremental-restore-path", VT_DATA_ROOT);
        match self.external.zip(pool.external_datastore.as_ref()) {
            Some((files, external)) => external_datastore_flags(&mut flags, external, files),
            None if local_mysqld => {
                flags
                    .set("db-charset", flavour.charset)
                    .set("db-app-user", "vt_app")
                    .set("db-dba-user", DBA_USER)
                    .set("db-repl-user", "vt_repl")
                    .set("db-filtered-user", "vt_filtered")
                    .set(
                        "init-db-name-override",
                        spec.database_name
                            .clone()
                            .unwrap_or_else(|| format!("vt_{}", self.keyspace)),
                    )
                    .set("enforce-strict-trans-tables", true)
                    .set("enable-replication-reporter", true)
                    .set("mysqlctl-socket", MYSQLCTL_SOCKET)
                    .set("mycnf-socket-file", MYSQL_SOCKET);
            }
            None => {}
        }
        flags
    }

    fn vttablet(&self, has_pvc: bool, local_mysqld: bool) -> Container {
        let spec = self.spec;
        let pool = self.pool;
        let flavour = self.flavour;
        let mut flags = self.vttablet_flags(local_mysqld);
        let mut mounts = self.shared_mounts(has_pvc);
        let mut env = self.base_env();
        if let Some(backup) = self.backup {
            backup.storage.apply_flags(&mut flags);
            // xtrabackup on a tablet restores with a thread per requested core of the pod's
            // two busy containers, and backs up with one (the tablet is serving).
            let restore_threads =
                cpu_count(pool.mysqld.as_ref().and_then(|m| m.resources.as_ref()))
                    + cpu_count(pool.vttablet.resources.as_ref());
            backup::engine_flags(backup.engine, 1, restore_threads, &mut flags);
            // A new tablet starts from the latest backup instead of an empty database, and
            // waits for the first backup (vtbackup-init's, or the operator's first BackupShard)
            // rather than start empty: an empty tablet in the serving graph would make the
            // initial backup refuse to run.
            flags
                .set("restore-from-backup", true)
                .set("restore-concurrency", defaults::BACKUP_CONCURRENCY)
                .set("wait-for-backup-interval", "10s");
            mounts.extend(backup.storage.mounts.iter().cloned());
            env.extend(backup.storage.env.iter().cloned());
        }
        flags
            .mysql_server_version(&flavour.image)
            .extend(spec.extra_vitess_flags.as_ref())
            .extend(pool.vttablet.extra_flags.as_ref());
        // Go's runtime sizes itself to the node's cores, not to the container's CPU limit.
        if let Some(procs) = cpu_limit(pool.vttablet.resources.as_ref()) {
            env.push(EnvVar {
                name: "GOMAXPROCS".into(),
                value: Some(procs.to_string()),
                ..EnvVar::default()
            });
        }

        Container {
            name: "vttablet".into(),
            image: Some(self.vttablet_image()),
            image_pull_policy: self.pull_policy(|p| p.vttablet),
            command: Some(vec!["/vt/bin/vttablet".into()]),
            args: Some(flags.args()),
            ports: Some(vec![
                podspec::container_port(WEB_PORT_NAME, defaults::WEB_PORT),
                podspec::container_port(GRPC_PORT_NAME, defaults::GRPC_PORT),
            ]),
            env: Some(env),
            resources: pool.vttablet.resources.clone(),
            // vttablet's /debug/health mixes readiness and liveness; /healthz is readiness.
            readiness_probe: Some(podspec::http_probe("/healthz", WEB_PORT_NAME)),
            liveness_probe: Some(podspec::patient_liveness("/debug/status", WEB_PORT_NAME)),
            // An empty lifecycle is none (as the Go operator leaves it), not `{}`.
            lifecycle: pool
                .vttablet
                .lifecycle
                .clone()
                .filter(|l| l != &Default::default()),
            volume_mounts: Some(mounts),
            ..Container::default()
        }
    }

    fn mysqld(&self, has_pvc: bool) -> Container {
        let pool = self.pool;
        let flavour = self.flavour;
        let mut flags = FlagSet::vitess();
        flags
            .set("logtostderr", true)
            .set("tablet-uid", self.uid)
            .set("socket-file", MYSQLCTL_SOCKET)
            .set("mysql-socket", MYSQL_SOCKET)
            .set("db-dba-user", DBA_USER)
            .set("db-charset", flavour.charset)
            .set("init-db-sql-file", &self.init_script.path)
            // Crash recovery of a large database takes long; restarting it helps nobody.
            .set("wait-time", "2h0m0s")
            .mysql_server_version(&flavour.image);
        Container {
            name: "mysqld".into(),
            image: Some(flavour.image.clone()),
            image_pull_policy: self.pull_policy(|p| p.mysqld),
            command: Some(vec!["/vt/bin/mysqlctld".into()]),
            args: Some(flags.args()),
            ports: Some(vec![podspec::container_port(
                MYSQL_PORT_NAME,
                defaults::MYSQL_PORT,
            )]),
            env: Some(self.base_env()),
            resources: pool.mysqld.as_ref().and_then(|m| m.resources.clone()),
            readiness_probe: Some(Probe {
                tcp_socket: Some(TCPSocketAction {
                    port: IntOrString::Int(i32::from(defaults::MYSQL_PORT)),
                    ..TCPSocketAction::default()
                }),
                period_seconds: Some(2),
                ..Probe::default()
            }),
            volume_mounts: Some(self.mysqld_mounts(has_pvc)),
            ..Container::default()
        }
    }

    fn mysqld_exporter(&self, has_pvc: bool) -> Option<Container> {
        let image = self.spec.images.mysqld_exporter.clone()?;
        let exporter = self.pool.mysqld_exporter.clone().unwrap_or_default();
        let mut flags = FlagSet::kingpin();
        flags
            .set("config.my-cnf", EXPORTER_MY_CNF)
            // The default (`*`) makes one time series per user table, which overwhelms
            // Prometheus on large schemas.
            .set("collect.info_schema.tables.databases", "sys,_vt")
            .extend(exporter.extra_flags.as_ref());
        let resources = exporter.resources.unwrap_or_else(|| ResourceRequirements {
            requests: Some(podspec::quantities(&[
                ("cpu", defaults::MYSQLD_EXPORTER_CPU_REQUEST),
                ("memory", defaults::MYSQLD_EXPORTER_MEMORY_REQUEST),
            ])),
            limits: Some(podspec::quantities(&[
                ("cpu", defaults::MYSQLD_EXPORTER_CPU_LIMIT),
                ("memory", defaults::MYSQLD_EXPORTER_MEMORY_LIMIT),
            ])),
            ..Default::default()
        });
        Some(Container {
            name: "mysqld-exporter".into(),
            image: Some(image),
            image_pull_policy: self.pull_policy(|p| p.mysqld_exporter),
            command: Some(vec!["/bin/mysqld_exporter".into()]),
            args: Some(flags.args()),
            env: Some(vec![EnvVar {
                name: "DATA_SOURCE_NAME".into(),
                value: Some(format!("{DBA_USER}@unix({MYSQL_SOCKET})/")),
                ..EnvVar::default()
            }]),
            ports: Some(vec![podspec::container_port(
                METRICS_PORT_NAME,
                defaults::MYSQLD_EXPORTER_PORT,
            )]),
            resources: Some(resources),
            volume_mounts: Some(self.mysqld_mounts(has_pvc)),
            ..Container::default()
        })
    }
}

/// An init container of the vttablet image running `script` with `mount`, asking for a little
/// CPU and memory under what `pool` gives vttablet.
pub(super) fn init_container(
    spec: &VitessShardSpec,
    pool: &VitessShardTabletPool,
    name: &str,
    script: &str,
    mount: VolumeMount,
) -> Container {
    let mut resources = ResourceRequirements {
        requests: Some(podspec::quantities(&[
            ("cpu", defaults::INIT_CPU_REQUEST),
            ("memory", defaults::INIT_MEMORY_REQUEST),
        ])),
        ..ResourceRequirements::default()
    };
    if let Some(given) = &pool.vttablet.resources {
        for (ours, theirs) in [
            (&mut resources.requests, &given.requests),
            (&mut resources.limits, &given.limits),
        ] {
            if let Some(theirs) = theirs {
                ours.get_or_insert_with(BTreeMap::new)
                    .extend(theirs.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
    }
    Container {
        name: name.into(),
        image: Some(vitess_image(spec)),
        image_pull_policy: podspec::pull_policy(
            spec.image_pull_policies.as_ref().and_then(|p| p.vttablet),
        ),
        command: Some(vec!["bash".into(), "-c".into()]),
        args: Some(vec![script.into()]),
        resources: Some(resources),
        volume_mounts: Some(vec![mount]),
        ..Container::default()
    }
}

/// The Vitess image tablets run (vttablet, and where init containers copy Vitess files from).
pub(super) fn vitess_image(spec: &VitessShardSpec) -> String {
    spec.images
        .vttablet
        .clone()
        .unwrap_or_else(|| defaults::VITESS_IMAGE.into())
}

/// A mount of the shared `vt-root` volume's `sub` directory at `path`.
pub(super) fn vt_root_mount(path: &str, sub: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: VT_ROOT_VOLUME.into(),
        mount_path: path.into(),
        sub_path: Some(sub.into()),
        read_only: read_only.then_some(true),
        ..VolumeMount::default()
    }
}

/// The environment of every process of a tablet pod that runs Vitess or mysqld code (and of
/// vtbackup): Vitess' directories, the MySQL flavour, the my.cnf fragments (`extra_my_cnf`,
/// see [`mycnf::extra_my_cnf`]) and the pod's IP.
pub(super) fn tablet_env(flavour: &MysqldFlavour, extra_my_cnf: String) -> Vec<EnvVar> {
    let var = |name: &str, value: &str| EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..EnvVar::default()
    };
    let mut env = vec![
        var("VTROOT", "/vt"),
        var("VTDATAROOT", VT_DATA_ROOT),
        var("VT_MYSQL_ROOT", "/usr"),
        var("EXTRA_MY_CNF", &extra_my_cnf),
        EnvVar {
            name: "POD_IP".into(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: "status.podIP".into(),
                    ..ObjectFieldSelector::default()
                }),
                ..EnvVarSource::default()
            }),
            ..EnvVar::default()
        },
    ];
    if let Some(name) = flavour.name {
        env.push(var("MYSQL_FLAVOR", name));
    }
    env
}

/// The data directory's mount: a sub-directory of `volume`, so the volume's root can hold
/// other data later.
pub(super) fn data_mount(volume: &str) -> VolumeMount {
    VolumeMount {
        name: volume.into(),
        mount_path: VT_DATA_ROOT.into(),
        sub_path: Some("vtdataroot".into()),
        ..VolumeMount::default()
    }
}

/// The whole CPUs of a container's limit, rounded up (`1500m` is 2); none without a limit.
fn cpu_limit(resources: Option<&ResourceRequirements>) -> Option<u64> {
    let limit = resources?.limits.as_ref()?.get("cpu")?;
    podspec::whole_cpus(limit)
}

/// The whole CPUs of a container's request, rounded up; 0 without one.
pub(super) fn cpu_count(resources: Option<&ResourceRequirements>) -> u64 {
    resources
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("cpu"))
        .and_then(podspec::whole_cpus)
        .unwrap_or(0)
}

/// A tablet's MySQL: the image, Vitess' name of its flavour and the connection charset.
pub(super) struct MysqldFlavour {
    pub image: String,
    pub name: Option<&'static str>,
    pub charset: &'static str,
}

impl MysqldFlavour {
    /// The first flavour set, in the Go operator's order (5.6, 8.0, MariaDB, MariaDB 10.3),
    /// or the operator's default MySQL 8.0 image when none is. The charset is `utf8mb4` when
    /// an 8.0-compatible image is given (Vitess' default since 8.0), `utf8` otherwise.
    pub fn of(image: Option<&MysqldImage>) -> Self {
        let Some(image) = image else {
            return Self::default_image();
        };
        let charset = if image.mysql80_compatible.is_some() {
            "utf8mb4"
        } else {
            "utf8"
        };
        let flavours = [
            (&image.mysql56_compatible, "MySQL56"),
            (&image.mysql80_compatible, "MySQL80"),
            (&image.mariadb_compatible, "MariaDB"),
            (&image.mariadb103_compatible, "MariaDB103"),
        ];
        match flavours
            .into_iter()
            .find_map(|(i, n)| i.clone().map(|i| (i, n)))
        {
            Some((image, name)) => Self {
                image,
                name: Some(name),
                charset,
            },
            None => Self::default_image(),
        }
    }

    fn default_image() -> Self {
        Self {
            image: defaults::MYSQLD_IMAGE.into(),
            name: Some("MySQL80"),
            charset: "utf8mb4",
        }
    }
}

/// The type a new tablet of the pool registers as; external pools front a MySQL whose role
/// is managed elsewhere, and start as the nearest Vitess type.
/// Prefer nodes without another tablet of the shard, then of the same pool: a node failure
/// then costs the shard as few tablets as possible.
fn spread(own: &BTreeMap<String, String>) -> PodAntiAffinity {
    let shard_labels: BTreeMap<String, String> = [
        labels::COMPONENT,
        labels::CLUSTER,
        labels::KEYSPACE,
        labels::SHARD,
    ]
    .iter()
    .map(|k| (k.to_string(), own[*k].clone()))
    .collect();
    let mut pool_labels = shard_labels.clone();
    for key in [labels::CELL, labels::TABLET_TYPE] {
        pool_labels.insert(key.into(), own[key].clone());
    }
    PodAntiAffinity {
        preferred_during_scheduling_ignored_during_execution: Some(vec![
            podspec::spread_term(2, &shard_labels, HOSTNAME_LABEL),
            podspec::spread_term(1, &pool_labels, HOSTNAME_LABEL),
        ]),
        ..PodAntiAffinity::default()
    }
}

/// vttablet's flags for a MySQL it does not run: where it is, who to log in as (the user
/// for every role), from which mounted file, and that it neither manages, restores nor
/// reports on that MySQL's replication.
fn external_datastore_flags(
    flags: &mut FlagSet,
    external: &ExternalDatastore,
    files: &ExternalFiles,
) {
    flags
        .set("unmanaged", true)
        .set("restore-from-backup", false)
        .set("db-host", &external.host)
        .set("db-port", external.port)
        .set("init-db-name-override", &external.database)
        .set("db-credentials-file", &files.credentials.path)
        .set("enable-replication-reporter", false)
        .set("enforce-strict-trans-tables", false);
    for user in ["app", "appdebug", "allprivs", "dba", "filtered", "repl"] {
        flags.set(&format!("db-{user}-user"), &external.user);
    }
    if let Some(ca) = &files.ca {
        flags
            .set("db-ssl-ca", &ca.path)
            .set("db-flags", CLIENT_SSL_FLAG);
    }
}

/// The type a tablet of the pool starts as. An `externalmaster` tablet starts SPARE (as in the
/// Go operator): its MySQL is a primary the operator does not run, so it must never serve
/// REPLICA reads; it becomes the primary when Vitess is told (TabletExternallyReparented).
fn init_tablet_type(pool_type: TabletPoolType) -> &'static str {
    match pool_type {
        TabletPoolType::Externalmaster => "spare",
        TabletPoolType::Replica | TabletPoolType::Externalreplica => "replica",
        TabletPoolType::Rdonly | TabletPoolType::Externalrdonly => "rdonly",
    }
}

/// The image of the MySQL flavour a tablet runs (see [`MysqldFlavour::of`]).
pub(super) fn mysqld_image(image: Option<&MysqldImage>) -> String {
    MysqldFlavour::of(image).image
}

/// The cluster-wide headless vttablet Service: one DNS record per tablet pod, for monitoring.
pub fn cluster_service(cluster: &VitessCluster) -> Result<Service, Error> {
    let name = cluster_name(cluster)?;
    Ok(podspec::service(
        names::join_service(&[name, labels::component::VTTABLET]),
        &cluster.metadata.namespace,
        labels::set(&[
            (labels::COMPONENT, labels::component::VTTABLET),
            (labels::CLUSTER, name),
        ]),
        vec![
            podspec::service_port(WEB_PORT_NAME, defaults::WEB_PORT),
            podspec::service_port(GRPC_PORT_NAME, defaults::GRPC_PORT),
            podspec::service_port(METRICS_PORT_NAME, defaults::MYSQLD_EXPORTER_PORT),
        ],
        cluster.spec.tablet_service.as_ref(),
        true,
    ))
}

#[cfg(test)]
mod tests;
