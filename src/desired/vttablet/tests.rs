//! The tests of [`super`]: the Go operator's names, UIDs and flag vectors of every container,
//! one case per pool shape. Long because each case spells out the pod it expects.

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
        "--mysqlctl-socket=/vt/socket/mysqlctl.sock".into(),
        "--mycnf-socket-file=/vt/socket/mysql.sock".into(),
        "--topo-implementation=etcd2".into(),
        "--topo-global-server-address=etcd:2379".into(),
        "--topo-global-root=/vitess/example/global".into(),
        // The Go operator's query-server sizing, users and checks of a local mysqld.
        "--logtostderr=true".into(),
        "--grpc-max-message-size=67108864".into(),
        "--health-check-interval=5s".into(),
        "--queryserver-config-max-result-size=100000".into(),
        "--queryserver-config-query-timeout=900s".into(),
        "--queryserver-config-pool-size=96".into(),
        "--queryserver-config-stream-pool-size=96".into(),
        "--queryserver-config-transaction-cap=300".into(),
        "--builtinbackup-incremental-restore-path=/vt/vtdataroot".into(),
        "--db-charset=utf8mb4".into(),
        "--db-app-user=vt_app".into(),
        "--db-dba-user=vt_dba".into(),
        "--db-repl-user=vt_repl".into(),
        "--db-filtered-user=vt_filtered".into(),
        "--enforce-strict-trans-tables=true".into(),
        "--enable-replication-reporter=true".into(),
        "--mysql-server-version=8.0.40-Vitess".into(),
    ] {
        assert!(has(&args, &want), "{want} missing: {args:?}");
    }
    assert_eq!(args.len(), 31, "no other flag: {args:?}");
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
    assert_eq!(spec.priority_class_name.as_deref(), Some("vitess"));
    let volumes: Vec<&str> = spec
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(
        volumes,
        [
            "vt-root",
            "persistent-volume-claim",
            "db-init-script-secret"
        ]
    );
    // Every container sees the init script, the config, the socket and the data; mysqld and
    // the exporter also the copied binaries.
    for (name, extra) in [
        ("vttablet", None),
        ("mysqld", Some("/vt/bin")),
        ("mysqld-exporter", Some("/vt/bin")),
    ] {
        let mut paths: Vec<&str> = container(pod, name)
            .unwrap()
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| m.mount_path.as_str())
            .collect();
        paths.sort();
        let mut want = vec![
            "/vt/config",
            "/vt/secrets/db-init-script",
            "/vt/socket",
            "/vt/vtdataroot",
        ];
        want.extend(extra);
        want.sort();
        assert_eq!(paths, want, "{name}");
    }
    // With a data volume, a second init container points old my.cnf files at the socket.
    let inits: Vec<&str> = spec
        .init_containers
        .as_ref()
        .unwrap()
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(inits, ["init-vt-root", "init-mysql-socket"]);
    let socket_init = &spec.init_containers.as_ref().unwrap()[1];
    assert_eq!(
        socket_init.volume_mounts.as_ref().unwrap()[0].name,
        "persistent-volume-claim"
    );
    let requests = socket_init
        .resources
        .as_ref()
        .unwrap()
        .requests
        .as_ref()
        .unwrap();
    assert_eq!(requests["cpu"].0, "100m");
    assert_eq!(requests["memory"].0, "32Mi");
    for name in ["vttablet", "mysqld"] {
        let env = container(pod, name).unwrap().env.clone().unwrap();
        let flavour = env.iter().find(|e| e.name == "MYSQL_FLAVOR").unwrap();
        assert_eq!(flavour.value.as_deref(), Some("MySQL80"), "{name}");
        assert!(env.iter().any(|e| e.name == "POD_IP"), "{name}");
    }
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

fn external(mut p: VitessShardTabletPool, name: &str) -> VitessShardTabletPool {
    p.name = name.into();
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
    p
}

#[test]
fn vttablet_and_mysqlctld_report_the_mysqld_images_version() {
    let tablets = build(&shard(
        vec![pool("zone1", TabletPoolType::Replica, 1)],
        ("", ""),
    ))
    .unwrap();
    let pod = &tablets[0].pod;
    let version = format!(
        "--mysql-server-version={}-Vitess",
        defaults::MYSQLD_IMAGE.split_once(':').unwrap().1
    );
    assert!(has(&args(pod, "vttablet"), &version));
    assert!(has(&args(pod, "mysqld"), &version));
}

#[test]
fn a_named_local_pool_keeps_the_go_operators_tablet_names() {
    // The Go operator hashes a pool's name into the UID only with externalDatastore: a named
    // local pool it made must keep its tablets (and their PVCs) after a takeover.
    let mut fast = pool("zone1", TabletPoolType::Replica, 1);
    fast.name = "fast-storage".into();
    let tablets = build(&shard(vec![fast], ("", ""))).unwrap();
    let uid = names::tablet_uid("zone1", "commerce", "-", "replica", 1);
    assert_eq!(tablets[0].alias, format!("zone1-{uid}"));
    let labels = tablets[0].pod.metadata.labels.as_ref().unwrap();
    assert_eq!(labels["planetscale.com/pool-name"], "fast-storage");
}

#[test]
fn named_external_pools_get_their_own_uids() {
    let a = external(pool("zone1", TabletPoolType::Externalreplica, 1), "a");
    let b = external(pool("zone1", TabletPoolType::Externalreplica, 1), "b");
    let tablets = build(&shard(vec![a, b], ("", ""))).unwrap();
    let uid = tablet_uid("zone1", "commerce", "-", "externalreplica", 1, "b");
    assert_eq!(tablets[1].alias, format!("zone1-{uid}"));
    assert_ne!(tablets[0].alias, tablets[1].alias);
}

#[test]
fn two_local_pools_of_one_cell_and_type_are_refused_not_merged() {
    let mut fast = pool("zone1", TabletPoolType::Replica, 1);
    fast.name = "fast-storage".into();
    let err = build(&shard(
        vec![pool("zone1", TabletPoolType::Replica, 1), fast],
        ("", ""),
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains(
            "spec.tabletPools[0] and spec.tabletPools[1] are both replica pools of cell zone1"
        ),
        "{err}"
    );
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
    let mut p = pool("zone1", TabletPoolType::Replica, 1);
    // xtrabackup restores with a thread per requested core (rounded up) of mysqld and
    // vttablet: 2 + 1.
    let cpu = |q: &str| ResourceRequirements {
        requests: Some(podspec::quantities(&[("cpu", q)])),
        ..ResourceRequirements::default()
    };
    p.mysqld = Some(MysqldSpec {
        resources: Some(cpu("1500m")),
        ..MysqldSpec::default()
    });
    p.vttablet.resources = Some(cpu("1"));
    let mut s = shard(vec![p], ("", ""));
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
            "--backup-storage-compress=true",
            "--backup-storage-implementation=gcs",
            "--gcs-backup-storage-bucket=my-vitess-backup-bucket",
            "--gcs-backup-storage-root=prod/example",
            "--restore-concurrency=10",
            "--restore-from-backup=true",
            "--wait-for-backup-interval=10s",
            "--xbstream-restore-flags=--parallel=3",
            "--xtrabackup-backup-flags=--parallel=1",
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
        .find(|m| m.name == "gcs-backup-auth-secret")
        .unwrap();
    assert_eq!(mount.mount_path, "/vt/secrets/gcs-backup-auth");
    assert_eq!(mount.read_only, Some(true));
    let env = vttablet.env.as_ref().unwrap();
    let creds = env
        .iter()
        .find(|e| e.name == "GOOGLE_APPLICATION_CREDENTIALS")
        .unwrap();
    assert_eq!(
        creds.value.as_deref(),
        Some("/vt/secrets/gcs-backup-auth/gcs_key.json")
    );
    let volume = pod
        .spec
        .as_ref()
        .unwrap()
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find(|v| v.name == "gcs-backup-auth-secret")
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
            .any(|m| m.name == "gcs-backup-auth-secret")
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
            "--restore-concurrency=10",
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
        Some("/vt/secrets/s3-backup-auth/credentials")
    );
    let mounts = vttablet.volume_mounts.as_ref().unwrap();
    let auth = mounts
        .iter()
        .find(|m| m.name == "s3-backup-auth-secret")
        .unwrap();
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
fn a_locations_annotations_reach_the_pods_that_use_it_and_win_over_the_pools() {
    let mut with_own = pool("zone1", TabletPoolType::Replica, 1);
    with_own.backup_location_name = Some("second".into());
    with_own.pod.annotations = Some(BTreeMap::from([
        ("team".to_string(), "pool".to_string()),
        ("shared".to_string(), "pool".to_string()),
    ]));
    let mut s = shard(
        vec![pool("zone1", TabletPoolType::Rdonly, 1), with_own],
        ("", ""),
    );
    let mut second = gcs("second", "second-bucket");
    second.annotations = Some(BTreeMap::from([
        ("iam.example.com/role".to_string(), "backups".to_string()),
        ("shared".to_string(), "location".to_string()),
    ]));
    s.spec.backup_locations = Some(vec![gcs("", "first-bucket"), second]);
    let tablets = build(&s).unwrap();
    let annotations = |i: usize| tablets[i].pod.metadata.annotations.clone().unwrap();
    assert!(!annotations(0).contains_key("iam.example.com/role"));
    let second = annotations(1);
    assert_eq!(second["iam.example.com/role"], "backups");
    assert_eq!(second["shared"], "location");
    assert_eq!(second["team"], "pool");
}

#[test]
fn external_datastore_has_no_mysqld_and_no_pvc() {
    let p = external(pool("zone1", TabletPoolType::Externalmaster, 1), "");
    let tablets = build(&shard(vec![p], ("", ""))).unwrap();
    let pod = &tablets[0].pod;
    assert!(tablets[0].pvc.is_none());
    assert!(container(pod, "mysqld").is_none());
    assert!(container(pod, "mysqld-exporter").is_none());
    let args = args(pod, "vttablet");
    for want in [
        "--db-host=db.example.com",
        "--db-port=3306",
        "--init-db-name-override=shop",
        "--unmanaged=true",
        "--restore-from-backup=false",
        "--enable-replication-reporter=false",
        "--enforce-strict-trans-tables=false",
        // An externalmaster tablet starts SPARE, as in the Go operator: it never serves
        // REPLICA reads of the primary MySQL it points at.
        "--init-tablet-type=spare",
        "--db-app-user=app",
        "--db-dba-user=app",
        "--db-repl-user=app",
        "--db-credentials-file=/vt/secrets/external-datastore-credentials/creds.json",
    ] {
        assert!(has(&args, want), "{want} missing: {args:?}");
    }
    assert!(!args.iter().any(|a| a.starts_with("--mysqlctl-socket")));
    // The credentials file the flag names is there: the Secret is mounted.
    let mounts = container(pod, "vttablet")
        .unwrap()
        .volume_mounts
        .clone()
        .unwrap();
    let creds = mounts
        .iter()
        .find(|m| m.mount_path == "/vt/secrets/external-datastore-credentials")
        .unwrap();
    assert_eq!(creds.name, "external-datastore-credentials-secret");
    let volumes = pod.spec.as_ref().unwrap().volumes.clone().unwrap();
    let volume = volumes.iter().find(|v| v.name == creds.name).unwrap();
    assert_eq!(
        volume.secret.as_ref().unwrap().secret_name.as_deref(),
        Some("creds")
    );

    // A CA certificate turns on TLS to the database.
    let mut p = external(pool("zone1", TabletPoolType::Externalmaster, 1), "");
    if let Some(datastore) = p.external_datastore.as_mut() {
        datastore.server_ca_cert_secret = Some(SecretSource {
            name: Some("ca".into()),
            volume_name: None,
            key: "ca.pem".into(),
        });
    }
    let tablets = build(&shard(vec![p], ("", ""))).unwrap();
    let args = self::args(&tablets[0].pod, "vttablet");
    assert!(has(
        &args,
        "--db-ssl-ca=/vt/secrets/external-datastore-ca-cert/ca.pem"
    ));
    assert!(has(&args, "--db-flags=2048"));
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

fn env_value(pod: &Pod, container_name: &str, var: &str) -> Option<String> {
    container(pod, container_name)?
        .env
        .as_ref()?
        .iter()
        .find(|e| e.name == var)?
        .value
        .clone()
}

#[test]
fn config_overrides_reach_every_mysqld_reader_and_a_change_rolls_the_pod() {
    let with = |text: Option<&str>| {
        let mut p = pool("zone1", TabletPoolType::Replica, 1);
        p.mysqld = Some(MysqldSpec {
            config_overrides: text.map(str::to_string),
            ..MysqldSpec::default()
        });
        build(&shard(vec![p], ("", ""))).expect("tablets")[0]
            .pod
            .clone()
    };
    let text = "[mysqld]\nmax_connections = 321\n";
    let pod = with(Some(text));
    let annotations = pod.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations.get("planetscale.com/mysqld-config-overrides"),
        Some(&text.to_string())
    );
    let volumes = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.clone())
        .unwrap_or_default();
    assert!(
        volumes
            .iter()
            .any(|v| v.name == "pod-config" && v.downward_api.is_some()),
        "{volumes:?}"
    );
    for name in ["vttablet", "mysqld", "mysqld-exporter"] {
        let mounts = container(&pod, name)
            .and_then(|c| c.volume_mounts.clone())
            .unwrap_or_default();
        assert!(
            mounts
                .iter()
                .any(|m| m.mount_path == "/pod-config" && m.name == "pod-config"),
            "{name}: {mounts:?}"
        );
    }
    for name in ["vttablet", "mysqld"] {
        let extra = env_value(&pod, name, "EXTRA_MY_CNF").unwrap_or_default();
        assert!(
            extra.ends_with(":/pod-config/mysqld-config-overrides:/vt/config/mycnf/vtbackup.cnf"),
            "{name}: {extra}"
        );
    }

    // Without overrides (absent or empty): the pod it always was.
    let plain = with(None);
    assert_eq!(plain, with(Some("")));
    assert!(
        !serde_json::to_string(&plain)
            .unwrap()
            .contains("pod-config")
    );
    assert_eq!(
        env_value(&plain, "mysqld", "EXTRA_MY_CNF").as_deref(),
        Some("/vt/config/mycnf/rbr.cnf:/vt/config/mycnf/log-error.cnf:/vt/config/mycnf/socket.cnf")
    );

    // A changed text is a changed pod: the rollout replaces it (mysqlctld writes my.cnf anew
    // at start).
    let hash = |pod: &Pod| {
        pod.metadata.annotations.as_ref().unwrap()["planetscale.com/desired-state-hash"].clone()
    };
    let other = with(Some("[mysqld]\nmax_connections = 322\n"));
    assert_ne!(hash(&pod), hash(&other));
    assert_ne!(hash(&pod), hash(&plain));
}
