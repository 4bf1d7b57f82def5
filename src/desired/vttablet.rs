//! From a VitessShard to its tablets: for every pool and index a Pod (vttablet, mysqld via
//! mysqlctld, mysqld-exporter) and a PVC of the same name for MySQL's data; plus the
//! cluster-wide headless vttablet Service. Names, UIDs and labels are the Go operator's, so its
//! tablets are recognised.
//!
//! Long because a tablet pod is one literal object (three containers, their flags, volumes and
//! probes) built in one place, with the Go operator's name and flag vectors tested beside it.

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
use super::podspec::{self, GRPC_PORT_NAME, HOSTNAME_LABEL, MYSQL_PORT_NAME, WEB_PORT_NAME};
use super::{Error, ShardIdentity, cluster_name, defaults, meta};
use crate::api::cluster::{BackupEngine, VitessCluster};
use crate::api::shard::{TabletPoolType, VitessShard, VitessShardSpec, VitessShardTabletPool};
use crate::api::shared::{MysqldImage, PullPolicy, VitessImagePullPolicies};
use crate::domain::keyrange::KeyRange;
use crate::domain::labels;
use crate::domain::names;

/// Volume shared by the init container, vttablet and mysqld: the Vitess files mysqld needs
/// (the mysqld image may be a stock MySQL one) and the MySQL socket directory.
const VT_ROOT_VOLUME: &str = "vt-root";
/// The tablet's PVC, as a pod volume (the Go operator's name).
const DATA_VOLUME: &str = "persistent-volume-claim";
const VT_DATA_ROOT: &str = "/vt/vtdataroot";
const SOCKET_DIR: &str = "/vt/socket";
const MYSQL_SOCKET: &str = "/vt/socket/mysql.sock";
const MYSQLCTL_SOCKET: &str = "/vt/vtdataroot/mysqlctl.sock";
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
/// The exporter's login file written above: user vt_dba (no password) over the socket.
const EXPORTER_MY_CNF: &str = "/vt/config/mycnf/client.cnf";
/// The fragments above, in the order mysqlctl reads them.
const EXTRA_MY_CNF: &str =
    "/vt/config/mycnf/rbr.cnf:/vt/config/mycnf/log-error.cnf:/vt/config/mycnf/socket.cnf";

/// The hex MD5 of a pod's JSON as the builder makes it (labels, annotations, spec). JSON of
/// these types is deterministic (maps are ordered), so equal pods have equal hashes.
pub fn desired_state_hash(pod: &Pod) -> String {
    let json = serde_json::to_vec(pod).unwrap_or_default();
    Md5::digest(&json)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One tablet: its pod and, with a local mysqld, its data volume claim.
#[derive(Clone, Debug)]
pub struct Tablet {
    pub alias: String,
    pub pod: Pod,
    pub pvc: Option<PersistentVolumeClaim>,
}

/// A tablet's UID. Unnamed pools use the Go operator's original formula (see
/// [`names::tablet_uid`]); a named pool appends its name to the hashed line, as the Go
/// operator's `UIDWithPoolName` does, so two pools of one cell and type get distinct tablets.
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
        "db-init-script",
        &object,
        "spec.databaseInitScriptSecret",
    )?;

    let locations = spec.backup_locations.as_deref().unwrap_or_default();
    let mut tablets = Vec::new();
    for (pool_index, pool) in spec.template.tablet_pools.iter().enumerate() {
        // A location without a backend (rejected by the schema) gives no flags: then nothing
        // may restore either, or every new tablet would fail to start.
        let backup = if locations.is_empty() {
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
        for index in 1..=pool.replicas.max(0).unsigned_abs() {
            let uid = tablet_uid(
                &pool.cell,
                keyspace,
                &range.to_string(),
                pool.type_.as_str(),
                index,
                &pool.name,
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

        let mut volumes = vec![Volume {
            name: VT_ROOT_VOLUME.into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        }];
        if has_pvc {
            volumes.push(Volume {
                name: DATA_VOLUME.into(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: name.clone(),
                    ..PersistentVolumeClaimVolumeSource::default()
                }),
                ..Volume::default()
            });
        }
        if local_mysqld {
            volumes.extend(self.init_script.volume.clone());
        }
        if let Some(backup) = self.backup {
            volumes.extend(backup.storage.volumes.iter().cloned());
        }

        let mut containers = vec![self.vttablet(has_pvc, local_mysqld)];
        if local_mysqld {
            containers.push(self.mysqld(has_pvc));
            if let Some(exporter) = self.mysqld_exporter(has_pvc) {
                containers.push(exporter);
            }
        }

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
        // Prefer nodes without another tablet of the shard, then of the same pool: a node
        // failure then costs the shard as few tablets as possible.
        let spread = PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                podspec::spread_term(2, &shard_labels, HOSTNAME_LABEL),
                podspec::spread_term(1, &pool_labels, HOSTNAME_LABEL),
            ]),
            ..PodAntiAffinity::default()
        };

        let annotations = BTreeMap::from([(
            labels::drain::SUPPORTED.to_string(),
            DRAIN_SUPPORTED.to_string(),
        )]);
        let mut pod_meta = meta(name.clone(), namespace, own.clone(), Some(annotations));
        let mut pod_spec = PodSpec {
            init_containers: Some(vec![self.init_vt_root()]),
            containers,
            volumes: Some(volumes),
            affinity: podspec::affinity(
                pool.pod.affinity.as_ref(),
                spec.zone_map.get(&pool.cell).map(String::as_str),
                Some(spread),
            ),
            termination_grace_period_seconds: Some(
                pool.vttablet
                    .termination_grace_period_seconds
                    .unwrap_or(defaults::VTTABLET_TERMINATION_GRACE_SECONDS),
            ),
            image_pull_secrets: spec.image_pull_secrets.clone(),
            security_context: Some(podspec::vitess_pod_security()),
            ..PodSpec::default()
        };
        podspec::apply_overrides(
            &mut pod_meta,
            &mut pod_spec,
            &["vttablet", "mysqld"],
            &pool.pod,
        );
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
        self.spec
            .images
            .vttablet
            .clone()
            .unwrap_or_else(|| defaults::VITESS_IMAGE.into())
    }

    fn pull_policy(
        &self,
        pick: fn(&VitessImagePullPolicies) -> Option<PullPolicy>,
    ) -> Option<String> {
        podspec::pull_policy(self.spec.image_pull_policies.as_ref().and_then(pick))
    }

    fn init_vt_root(&self) -> Container {
        Container {
            name: "init-vt-root".into(),
            image: Some(self.vttablet_image()),
            image_pull_policy: self.pull_policy(|p| p.vttablet),
            command: Some(vec!["bash".into(), "-c".into()]),
            args: Some(vec![INIT_VT_ROOT_SCRIPT.into()]),
            volume_mounts: Some(vec![VolumeMount {
                name: VT_ROOT_VOLUME.into(),
                mount_path: "/mnt/vt".into(),
                ..VolumeMount::default()
            }]),
            ..Container::default()
        }
    }

    /// Mounts vttablet and mysqld share: config and socket from the shared volume, the data
    /// directory from the PVC (or the shared volume when there is none).
    fn shared_mounts(&self, has_pvc: bool) -> Vec<VolumeMount> {
        let mount = |name: &str, path: &str, sub: &str, read_only: bool| VolumeMount {
            name: name.into(),
            mount_path: path.into(),
            sub_path: Some(sub.into()),
            read_only: read_only.then_some(true),
            ..VolumeMount::default()
        };
        let data_volume = if has_pvc { DATA_VOLUME } else { VT_ROOT_VOLUME };
        vec![
            mount(VT_ROOT_VOLUME, "/vt/config", "config", true),
            mount(VT_ROOT_VOLUME, SOCKET_DIR, "socket", false),
            // A subdirectory, so the volume's root can hold other data later.
            mount(data_volume, VT_DATA_ROOT, "vtdataroot", false),
        ]
    }

    fn base_env(&self) -> Vec<EnvVar> {
        let var = |name: &str, value: &str| EnvVar {
            name: name.into(),
            value: Some(value.into()),
            ..EnvVar::default()
        };
        vec![
            var("VTROOT", "/vt"),
            var("VTDATAROOT", VT_DATA_ROOT),
            var("VT_MYSQL_ROOT", "/usr"),
            var("EXTRA_MY_CNF", EXTRA_MY_CNF),
        ]
    }

    fn vttablet(&self, has_pvc: bool, local_mysqld: bool) -> Container {
        let spec = self.spec;
        let pool = self.pool;
        let mut flags = FlagSet::vitess();
        flags
            .vitess_common(&spec.global_lockserver)
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
            .set(
                "init-db-name-override",
                spec.database_name
                    .clone()
                    .unwrap_or_else(|| format!("vt_{}", self.keyspace)),
            )
            .set("health-check-interval", "5s");
        if local_mysqld {
            flags
                .set("mysqlctl-socket", MYSQLCTL_SOCKET)
                .set("db-socket", MYSQL_SOCKET);
        }
        let mut mounts = self.shared_mounts(has_pvc);
        if let Some(backup) = self.backup {
            backup.storage.apply_flags(&mut flags);
            backup::engine_flags(backup.engine, &mut flags);
            // A new tablet starts from the latest backup instead of an empty database, and
            // waits for the first backup (vtbackup-init's, or the operator's first BackupShard)
            // rather than start empty: an empty tablet in the serving graph would make the
            // initial backup refuse to run.
            flags
                .set("restore-from-backup", true)
                .set("wait-for-backup-interval", "10s");
            mounts.extend(backup.storage.mounts.iter().cloned());
        }
        if let Some(external) = &pool.external_datastore {
            flags
                .set("db-host", &external.host)
                .set("db-port", external.port)
                .set("init-db-name-override", &external.database);
            for user in ["app", "dba", "repl", "filtered", "allprivs"] {
                flags.set(&format!("db-{user}-user"), &external.user);
            }
            // Paths only: the controller that resolves these secrets mounts them (later issue).
            flags.set("db-credentials-server", "file").set(
                "db-credentials-file",
                format!(
                    "/vt/secrets/external-datastore/{}",
                    external.credentials_secret.key
                ),
            );
            if let Some(ca) = &external.server_ca_cert_secret {
                flags.set(
                    "db-ssl-ca",
                    format!("/vt/secrets/external-datastore-ca/{}", ca.key),
                );
            }
        }
        flags
            .extend(spec.extra_vitess_flags.as_ref())
            .extend(pool.vttablet.extra_flags.as_ref());

        let mut env = vec![EnvVar {
            name: "POD_IP".into(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: "status.podIP".into(),
                    ..ObjectFieldSelector::default()
                }),
                ..EnvVarSource::default()
            }),
            ..EnvVar::default()
        }];
        env.extend(self.base_env());
        if let Some(backup) = self.backup {
            env.extend(backup.storage.env.iter().cloned());
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
            lifecycle: pool.vttablet.lifecycle.clone(),
            volume_mounts: Some(mounts),
            ..Container::default()
        }
    }

    fn mysqld(&self, has_pvc: bool) -> Container {
        let pool = self.pool;
        let mut flags = FlagSet::vitess();
        flags
            .set("logtostderr", true)
            .set("tablet-uid", self.uid)
            .set("socket-file", MYSQLCTL_SOCKET)
            .set("mysql-socket", MYSQL_SOCKET)
            .set("db-dba-user", "vt_dba")
            .set("db-charset", "utf8mb4")
            .set("init-db-sql-file", &self.init_script.path)
            // Crash recovery of a large database takes long; restarting it helps nobody.
            .set("wait-time", "2h0m0s");
        let mut mounts = vec![VolumeMount {
            name: VT_ROOT_VOLUME.into(),
            mount_path: "/vt/bin".into(),
            sub_path: Some("bin".into()),
            read_only: Some(true),
            ..VolumeMount::default()
        }];
        mounts.extend(self.shared_mounts(has_pvc));
        mounts.push(self.init_script.mount.clone());
        Container {
            name: "mysqld".into(),
            image: Some(mysqld_image(self.spec.images.mysqld.as_ref())),
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
            volume_mounts: Some(mounts),
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
                value: Some(format!("vt_dba@unix({MYSQL_SOCKET})/")),
                ..EnvVar::default()
            }]),
            ports: Some(vec![podspec::container_port(
                METRICS_PORT_NAME,
                defaults::MYSQLD_EXPORTER_PORT,
            )]),
            resources: Some(resources),
            volume_mounts: Some(self.shared_mounts(has_pvc)),
            ..Container::default()
        })
    }
}

/// The type a new tablet of the pool registers as; external pools front a MySQL whose role
/// is managed elsewhere, and start as the nearest Vitess type.
fn init_tablet_type(pool_type: TabletPoolType) -> &'static str {
    match pool_type {
        TabletPoolType::Replica
        | TabletPoolType::Externalmaster
        | TabletPoolType::Externalreplica => "replica",
        TabletPoolType::Rdonly | TabletPoolType::Externalrdonly => "rdonly",
    }
}

/// The image of whichever MySQL flavour is set, or the operator's default.
fn mysqld_image(image: Option<&MysqldImage>) -> String {
    image
        .and_then(|i| {
            i.mysql80_compatible
                .clone()
                .or_else(|| i.mysql56_compatible.clone())
                .or_else(|| i.mariadb_compatible.clone())
                .or_else(|| i.mariadb103_compatible.clone())
        })
        .unwrap_or_else(|| defaults::MYSQLD_IMAGE.into())
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
mod tests {
    use super::*;
    use crate::api::backupstorage::{GcsBackupLocation, S3BackupLocation, VitessBackupLocation};
    use crate::api::shard::{
        ExternalDatastore, MysqldExporterSpec, MysqldSpec, VitessKeyRange, VitessShardTemplate,
        VttabletSpec,
    };
    use crate::api::shared::{SecretSource, VitessKeyspaceImages, VitessLockserverParams};
    use k8s_openapi::api::core::v1::PersistentVolumeClaimSpec;

    fn pool(cell: &str, type_: TabletPoolType, replicas: i32) -> VitessShardTabletPool {
        VitessShardTabletPool {
            cell: cell.into(),
            type_,
            replicas,
            data_volume_claim_template: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec!["ReadWriteOnce".into()]),
                ..PersistentVolumeClaimSpec::default()
            }),
            mysqld: Some(MysqldSpec::default()),
            ..VitessShardTabletPool::default()
        }
    }

    fn shard(pools: Vec<VitessShardTabletPool>, range: (&str, &str)) -> VitessShard {
        let safe = KeyRange {
            start: range.0.into(),
            end: range.1.into(),
        }
        .safe_name();
        let mut shard = VitessShard::new(
            "example-commerce-x-x-0f5afee6",
            VitessShardSpec {
                template: VitessShardTemplate {
                    tablet_pools: pools,
                    database_init_script_secret: SecretSource {
                        name: Some("example-cluster-config".into()),
                        volume_name: None,
                        key: "init_db.sql".into(),
                    },
                    ..VitessShardTemplate::default()
                },
                key_range: VitessKeyRange {
                    start: range.0.into(),
                    end: range.1.into(),
                },
                zone_map: [
                    ("zone1".to_string(), "us-east-1a".to_string()),
                    ("zone2".to_string(), String::new()),
                ]
                .into(),
                images: VitessKeyspaceImages {
                    vttablet: Some("vitess/lite:test".into()),
                    mysqld_exporter: Some("prom/mysqld-exporter:test".into()),
                    ..VitessKeyspaceImages::default()
                },
                global_lockserver: VitessLockserverParams {
                    implementation: "etcd2".into(),
                    address: "etcd:2379".into(),
                    root_path: "/vitess/example/global".into(),
                },
                ..VitessShardSpec::default()
            },
        );
        shard.metadata.namespace = Some("ns".into());
        shard.metadata.labels = Some(labels::set(&[
            (labels::CLUSTER, "example"),
            (labels::KEYSPACE, "commerce"),
            (labels::SHARD, &safe),
        ]));
        shard
    }

    fn container<'a>(pod: &'a Pod, name: &str) -> Option<&'a Container> {
        pod.spec
            .as_ref()
            .unwrap()
            .containers
            .iter()
            .find(|c| c.name == name)
    }

    fn args(pod: &Pod, name: &str) -> Vec<String> {
        container(pod, name).unwrap().args.clone().unwrap()
    }

    fn has(args: &[String], want: &str) -> bool {
        args.iter().any(|a| a == want)
    }

    #[test]
    fn tablets_have_go_operator_names_and_a_pvc_each() {
        let tablets = build(&shard(
            vec![pool("zone1", TabletPoolType::Replica, 2)],
            ("", ""),
        ))
        .unwrap();
        let names: Vec<&str> = tablets
            .iter()
            .map(|t| t.pod.metadata.name.as_deref().unwrap())
            .collect();
        assert_eq!(names[1], "example-vttablet-zone1-2469782763-bfadd780");
        assert!(names[0].starts_with("example-vttablet-zone1-2548885007-"));
        for tablet in &tablets {
            let pvc = tablet.pvc.as_ref().unwrap();
            assert_eq!(pvc.metadata.name, tablet.pod.metadata.name);
            assert_eq!(pvc.metadata.namespace.as_deref(), Some("ns"));
            let claim = tablet.pod.spec.as_ref().unwrap().volumes.as_ref().unwrap()[1]
                .persistent_volume_claim
                .clone()
                .unwrap();
            assert_eq!(Some(claim.claim_name), tablet.pod.metadata.name);
        }

        let pod = &tablets[1].pod;
        let labels = pod.metadata.labels.as_ref().unwrap();
        for (key, value) in [
            ("planetscale.com/component", "vttablet"),
            ("planetscale.com/cluster", "example"),
            ("planetscale.com/cell", "zone1"),
            ("planetscale.com/keyspace", "commerce"),
            ("planetscale.com/shard", "x-x"),
            ("planetscale.com/tablet-uid", "2469782763"),
            ("planetscale.com/tablet-type", "replica"),
            ("planetscale.com/tablet-index", "2"),
        ] {
            assert_eq!(labels[key], value, "{key}");
        }
        assert!(!labels.contains_key("planetscale.com/pool-name"));
        assert_eq!(
            pod.metadata.annotations.as_ref().unwrap()["drain.planetscale.com/supported"],
            DRAIN_SUPPORTED
        );
    }

    #[test]
    fn vttablet_flags() {
        let tablets = build(&shard(
            vec![pool("zone1", TabletPoolType::Rdonly, 1)],
            ("", "80"),
        ))
        .unwrap();
        let pod = &tablets[0].pod;
        let args = args(pod, "vttablet");
        let uid = names::tablet_uid("zone1", "commerce", "-80", "rdonly", 1);
        for want in [
            format!("--tablet-path=zone1-{uid}"),
            "--tablet-hostname=$(POD_IP)".into(),
            "--init-keyspace=commerce".into(),
            "--init-shard=-80".into(),
            "--init-tablet-type=rdonly".into(),
            "--init-db-name-override=vt_commerce".into(),
            "--port=15000".into(),
            "--grpc-port=15999".into(),
            "--service-map=grpc-queryservice,grpc-tabletmanager,grpc-updatestream".into(),
            "--mysqlctl-socket=/vt/vtdataroot/mysqlctl.sock".into(),
            "--db-socket=/vt/socket/mysql.sock".into(),
            "--topo-implementation=etcd2".into(),
            "--topo-global-server-address=etcd:2379".into(),
            "--topo-global-root=/vitess/example/global".into(),
        ] {
            assert!(has(&args, &want), "{want} missing: {args:?}");
        }
        assert!(!args.iter().any(|a| a.starts_with("--restore-from-backup")));
        assert_eq!(
            pod.metadata.labels.as_ref().unwrap()["planetscale.com/shard"],
            "x-80"
        );
        let env = container(pod, "vttablet").unwrap().env.clone().unwrap();
        let pod_ip = env.iter().find(|e| e.name == "POD_IP").unwrap();
        assert_eq!(
            pod_ip
                .value_from
                .as_ref()
                .unwrap()
                .field_ref
                .as_ref()
                .unwrap()
                .field_path,
            "status.podIP"
        );
    }

    #[test]
    fn mysqld_exporter_init_and_pod_settings() {
        let mut p = pool("zone1", TabletPoolType::Replica, 1);
        p.mysqld_exporter = Some(MysqldExporterSpec {
            extra_flags: Some(
                [(
                    "collect.info_schema.tables.databases".to_string(),
                    "*".to_string(),
                )]
                .into(),
            ),
            resources: None,
        });
        let tablets = build(&shard(vec![p], ("", ""))).unwrap();
        let pod = &tablets[0].pod;
        let spec = pod.spec.as_ref().unwrap();
        let mysqld = args(pod, "mysqld");
        assert!(has(
            &mysqld,
            "--init-db-sql-file=/vt/secrets/db-init-script/init_db.sql"
        ));
        assert!(has(&mysqld, "--tablet-uid=2548885007"));
        assert!(has(&mysqld, "--mysql-socket=/vt/socket/mysql.sock"));
        assert_eq!(
            container(pod, "mysqld").unwrap().image.as_deref(),
            Some(defaults::MYSQLD_IMAGE)
        );
        let exporter = args(pod, "mysqld-exporter");
        assert!(
            has(&exporter, "--collect.info_schema.tables.databases=*"),
            "{exporter:?}"
        );
        assert!(has(
            &exporter,
            "--config.my-cnf=/vt/config/mycnf/client.cnf"
        ));
        let init = &spec.init_containers.as_ref().unwrap()[0];
        assert_eq!(init.name, "init-vt-root");
        assert_eq!(init.image.as_deref(), Some("vitess/lite:test"));
        // The file the exporter is pointed at is written, with a [client] user, by the init.
        let script = [init.command.clone(), init.args.clone()]
            .into_iter()
            .flatten()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            script.contains(r"'[client]\nuser=vt_dba\nsocket=/vt/socket/mysql.sock\n' > /mnt/vt/config/mycnf/client.cnf"),
            "{script}"
        );
        assert_eq!(spec.termination_grace_period_seconds, Some(1800));
        let security = spec.security_context.as_ref().unwrap();
        assert_eq!(security.run_as_user, Some(999));
        assert_eq!(security.fs_group, Some(999));
        assert_eq!(security.run_as_non_root, Some(true));
        assert!(spec.priority_class_name.is_none());
        let volumes: Vec<&str> = spec
            .volumes
            .as_ref()
            .unwrap()
            .iter()
            .map(|v| v.name.as_str())
            .collect();
        assert_eq!(
            volumes,
            ["vt-root", "persistent-volume-claim", "db-init-script"]
        );
        // zone1 maps to a zone: required node affinity; the default spreading stays.
        let affinity = spec.affinity.as_ref().unwrap();
        let req = &affinity
            .node_affinity
            .as_ref()
            .unwrap()
            .required_during_scheduling_ignored_during_execution
            .as_ref()
            .unwrap()
            .node_selector_terms[0]
            .match_expressions
            .as_ref()
            .unwrap()[0];
        assert_eq!(req.key, "topology.kubernetes.io/zone");
        assert_eq!(req.values.as_deref(), Some(&["us-east-1a".to_string()][..]));
        assert!(affinity.pod_anti_affinity.is_some());
    }

    #[test]
    fn empty_zone_means_no_node_affinity() {
        let tablets = build(&shard(
            vec![pool("zone2", TabletPoolType::Replica, 1)],
            ("", ""),
        ))
        .unwrap();
        let affinity = tablets[0]
            .pod
            .spec
            .as_ref()
            .unwrap()
            .affinity
            .clone()
            .unwrap();
        assert!(affinity.node_affinity.is_none());
    }

    #[test]
    fn overrides_win() {
        let mut p = pool("zone1", TabletPoolType::Replica, 1);
        p.vttablet = VttabletSpec {
            extra_flags: Some([("init_tablet_type".to_string(), "spare".to_string())].into()),
            termination_grace_period_seconds: Some(60),
            ..VttabletSpec::default()
        };
        p.pod.extra_labels = Some(
            [
                ("team".to_string(), "db".to_string()),
                (labels::COMPONENT.to_string(), "x".to_string()),
            ]
            .into(),
        );
        let mut s = shard(vec![p], ("", ""));
        s.spec.extra_vitess_flags = Some(
            [
                ("init_tablet_type".to_string(), "rdonly".to_string()),
                ("queryserver-config-pool-size".to_string(), "8".to_string()),
            ]
            .into(),
        );
        s.spec.database_name = Some("commerce_db".into());
        let pod = &build(&s).unwrap()[0].pod;
        let args = args(pod, "vttablet");
        assert!(
            has(&args, "--init-tablet-type=spare"),
            "pool flags win: {args:?}"
        );
        assert!(has(&args, "--queryserver-config-pool-size=8"));
        assert!(has(&args, "--init-db-name-override=commerce_db"));
        assert_eq!(
            pod.spec.as_ref().unwrap().termination_grace_period_seconds,
            Some(60)
        );
        let labels = pod.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["team"], "db");
        assert_eq!(labels[labels::COMPONENT], "vttablet");
    }

    #[test]
    fn named_pools_get_their_own_uids_and_label() {
        let mut fast = pool("zone1", TabletPoolType::Replica, 1);
        fast.name = "fast-storage".into();
        let tablets = build(&shard(
            vec![pool("zone1", TabletPoolType::Replica, 1), fast],
            ("", ""),
        ))
        .unwrap();
        assert_eq!(tablets.len(), 2);
        assert_ne!(tablets[0].alias, tablets[1].alias);
        let uid = tablet_uid("zone1", "commerce", "-", "replica", 1, "fast-storage");
        assert_eq!(tablets[1].alias, format!("zone1-{uid}"));
        assert_ne!(uid, tablet_uid("zone1", "commerce", "-", "replica", 1, ""));
        let labels = tablets[1].pod.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["planetscale.com/pool-name"], "fast-storage");
    }

    #[test]
    fn no_restore_until_backup_storage_flags_exist() {
        // Restoring needs the storage flags and credentials of the backups work (DESIGN §8);
        // a restore flag without them would make every new tablet fail to start.
        let mut s = shard(vec![pool("zone1", TabletPoolType::Replica, 1)], ("", ""));
        s.spec.backup_locations = Some(vec![VitessBackupLocation::default()]);
        let tablets = build(&s).unwrap();
        let vttablet = args(&tablets[0].pod, "vttablet");
        assert!(
            !vttablet.iter().any(|a| a.contains("restore-from-backup")),
            "{vttablet:?}"
        );
    }

    fn gcs(name: &str, bucket: &str) -> VitessBackupLocation {
        VitessBackupLocation {
            name: name.into(),
            gcs: Some(GcsBackupLocation {
                bucket: bucket.into(),
                key_prefix: Some("prod".into()),
                auth_secret: Some(SecretSource {
                    name: Some("gcs-auth".into()),
                    volume_name: None,
                    key: "gcs_key.json".into(),
                }),
            }),
            ..VitessBackupLocation::default()
        }
    }

    /// The vttablet arguments that are not about backups, so tests can compare the rest exactly.
    fn backup_args(args: &[String]) -> Vec<String> {
        let plain = build(&shard(
            vec![pool("zone1", TabletPoolType::Replica, 1)],
            ("", ""),
        ))
        .unwrap();
        let plain = self::args(&plain[0].pod, "vttablet");
        args.iter()
            .filter(|a| !plain.contains(a))
            .cloned()
            .collect()
    }

    #[test]
    fn gcs_and_xtrabackup_flags_mounts_and_env() {
        let mut s = shard(vec![pool("zone1", TabletPoolType::Replica, 1)], ("", ""));
        s.spec.backup_locations = Some(vec![gcs("", "my-vitess-backup-bucket")]);
        s.spec.backup_engine = Some(BackupEngine::Xtrabackup);
        let tablets = build(&s).unwrap();
        let pod = &tablets[0].pod;
        let mut got = backup_args(&args(pod, "vttablet"));
        got.sort();
        assert_eq!(
            got,
            [
                "--backup-engine-implementation=xtrabackup",
                "--backup-storage-implementation=gcs",
                "--gcs-backup-storage-bucket=my-vitess-backup-bucket",
                "--gcs-backup-storage-root=prod/example",
                "--restore-from-backup=true",
                "--wait-for-backup-interval=10s",
                "--xbstream-restore-flags=--parallel=2",
                "--xtrabackup-backup-flags=--parallel=2",
                "--xtrabackup-stream-mode=xbstream",
                "--xtrabackup-stripes=8",
                "--xtrabackup-user=vt_dba",
            ]
        );
        let vttablet = container(pod, "vttablet").unwrap();
        let mount = vttablet
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.name == "backup-auth")
            .unwrap();
        assert_eq!(mount.mount_path, "/vt/secrets/backup-auth");
        assert_eq!(mount.read_only, Some(true));
        let env = vttablet.env.as_ref().unwrap();
        let creds = env
            .iter()
            .find(|e| e.name == "GOOGLE_APPLICATION_CREDENTIALS")
            .unwrap();
        assert_eq!(
            creds.value.as_deref(),
            Some("/vt/secrets/backup-auth/gcs_key.json")
        );
        let volume = pod
            .spec
            .as_ref()
            .unwrap()
            .volumes
            .as_ref()
            .unwrap()
            .iter()
            .find(|v| v.name == "backup-auth")
            .unwrap();
        let secret = volume.secret.as_ref().unwrap();
        assert_eq!(secret.secret_name.as_deref(), Some("gcs-auth"));
        // mysqld never sees the credentials.
        let mysqld = container(pod, "mysqld").unwrap();
        assert!(
            !mysqld
                .volume_mounts
                .as_ref()
                .unwrap()
                .iter()
                .any(|m| m.name == "backup-auth")
        );
    }

    #[test]
    fn s3_and_builtin_flags_mounts_and_env() {
        let mut s = shard(vec![pool("zone1", TabletPoolType::Replica, 1)], ("", ""));
        s.spec.backup_locations = Some(vec![VitessBackupLocation {
            s3: Some(S3BackupLocation {
                region: "eu-west-1".into(),
                bucket: "bkt".into(),
                endpoint: Some("minio:9000".into()),
                force_path_style: Some(true),
                min_part_size: Some(16 << 20),
                key_prefix: None,
                auth_secret: Some(SecretSource {
                    name: Some("s3-auth".into()),
                    volume_name: None,
                    key: "credentials".into(),
                }),
            }),
            ..VitessBackupLocation::default()
        }]);
        let tablets = build(&s).unwrap();
        let pod = &tablets[0].pod;
        let mut got = backup_args(&args(pod, "vttablet"));
        got.sort();
        assert_eq!(
            got,
            [
                "--backup-engine-implementation=builtin",
                "--backup-storage-implementation=s3",
                "--restore-from-backup=true",
                "--s3-backup-aws-endpoint=minio:9000",
                "--s3-backup-aws-min-partsize=16777216",
                "--s3-backup-aws-region=eu-west-1",
                "--s3-backup-force-path-style=true",
                "--s3-backup-storage-bucket=bkt",
                "--s3-backup-storage-root=example",
                "--wait-for-backup-interval=10s",
            ]
        );
        let vttablet = container(pod, "vttablet").unwrap();
        let env = vttablet.env.as_ref().unwrap();
        let creds = env
            .iter()
            .find(|e| e.name == "AWS_SHARED_CREDENTIALS_FILE")
            .unwrap();
        assert_eq!(
            creds.value.as_deref(),
            Some("/vt/secrets/backup-auth/credentials")
        );
        let mounts = vttablet.volume_mounts.as_ref().unwrap();
        let auth = mounts.iter().find(|m| m.name == "backup-auth").unwrap();
        assert_eq!(auth.read_only, Some(true));
        // The secret's name appears only as a volume source, never in a flag or env value.
        for arg in args(pod, "vttablet") {
            assert!(!arg.contains("s3-auth"), "{arg}");
        }
        assert!(
            !env.iter()
                .any(|e| e.value.as_deref().unwrap_or("").contains("s3-auth"))
        );
    }

    #[test]
    fn pool_backup_location_name_picks_the_location() {
        let mut named = pool("zone1", TabletPoolType::Replica, 1);
        named.backup_location_name = Some("second".into());
        let mut s = shard(
            vec![pool("zone1", TabletPoolType::Rdonly, 1), named],
            ("", ""),
        );
        s.spec.backup_locations = Some(vec![
            gcs("", "first-bucket"),
            gcs("second", "second-bucket"),
        ]);
        let tablets = build(&s).unwrap();
        assert!(has(
            &args(&tablets[0].pod, "vttablet"),
            "--gcs-backup-storage-bucket=first-bucket"
        ));
        assert!(has(
            &args(&tablets[1].pod, "vttablet"),
            "--gcs-backup-storage-bucket=second-bucket"
        ));

        s.spec.template.tablet_pools[1].backup_location_name = Some("missing".into());
        let err = build(&s).unwrap_err();
        assert!(
            err.to_string()
                .contains("spec.tabletPools[1].backupLocationName"),
            "{err}"
        );
    }

    #[test]
    fn external_datastore_has_no_mysqld_and_no_pvc() {
        let mut p = pool("zone1", TabletPoolType::Externalmaster, 1);
        p.mysqld = None;
        p.external_datastore = Some(ExternalDatastore {
            user: "app".into(),
            host: "db.example.com".into(),
            port: 3306,
            database: "shop".into(),
            credentials_secret: SecretSource {
                name: Some("creds".into()),
                volume_name: None,
                key: "creds.json".into(),
            },
            server_ca_cert_secret: None,
        });
        let tablets = build(&shard(vec![p], ("", ""))).unwrap();
        let pod = &tablets[0].pod;
        assert!(tablets[0].pvc.is_none());
        assert!(container(pod, "mysqld").is_none());
        assert!(container(pod, "mysqld-exporter").is_none());
        let args = args(pod, "vttablet");
        assert!(has(&args, "--db-host=db.example.com"));
        assert!(has(&args, "--init-db-name-override=shop"));
        assert!(!args.iter().any(|a| a.starts_with("--db-socket")));
    }

    #[test]
    fn zero_replicas_and_missing_keyspace_label() {
        assert!(
            build(&shard(
                vec![pool("zone1", TabletPoolType::Replica, 0)],
                ("", "")
            ))
            .unwrap()
            .is_empty()
        );
        let mut s = shard(vec![], ("", ""));
        s.metadata.labels.as_mut().unwrap().remove(labels::KEYSPACE);
        assert_eq!(
            build(&s).unwrap_err(),
            Error::MissingLabel {
                kind: "VitessShard",
                label: labels::KEYSPACE
            }
        );
    }

    #[test]
    fn cluster_wide_tablet_service_is_headless() {
        let cluster = VitessCluster::new("example", Default::default());
        let svc = cluster_service(&cluster).unwrap();
        assert_eq!(
            svc.metadata.name.as_deref(),
            Some(names::join_service(&["example", "vttablet"]).as_str())
        );
        let spec = svc.spec.unwrap();
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
        assert_eq!(
            spec.selector.unwrap(),
            labels::set(&[
                ("planetscale.com/component", "vttablet"),
                ("planetscale.com/cluster", "example")
            ])
        );
    }
}
