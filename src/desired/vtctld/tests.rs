//! The tests of [`super`].

use super::*;
use crate::api::cell::VitessCellTemplate;
use crate::api::cluster::VitessDashboardSpec;
use crate::api::shared::{PodOverrides, PullPolicy, VitessImagePullPolicies};
use crate::desired::lockserver;
use k8s_openapi::api::core::v1::{EnvVar, TopologySpreadConstraint};

fn cluster(dashboard: Option<VitessDashboardSpec>) -> VitessCluster {
    let mut cluster = VitessCluster::new("example", Default::default());
    cluster.metadata.namespace = Some("default".into());
    cluster.spec.cells = vec![
        VitessCellTemplate {
            name: "zone1".into(),
            zone: Some("us-east-1a".into()),
            ..VitessCellTemplate::default()
        },
        VitessCellTemplate {
            name: "zone2".into(),
            ..VitessCellTemplate::default()
        },
    ];
    cluster.spec.vitess_dashboard = dashboard;
    cluster.spec.extra_vitess_flags = Some(
        [
            ("grpc_max_message_size".to_string(), "1".to_string()),
            ("cell".to_string(), "cluster-wide".to_string()),
        ]
        .into(),
    );
    cluster
}

fn built(cluster: &VitessCluster) -> VtctldObjects {
    build(cluster, &lockserver::global(cluster).unwrap()).unwrap()
}

fn container(deployment: &Deployment) -> &Container {
    &deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
}

#[test]
fn backup_storage_reaches_vtctld() {
    use crate::api::backupstorage::{GcsBackupLocation, VitessBackupLocation};
    use crate::api::cluster::ClusterBackupSpec;
    use crate::api::shared::SecretSource;
    let mut c = cluster(None);
    assert!(
        !container(&built(&c).deployments[0])
            .args
            .as_ref()
            .unwrap()
            .iter()
            .any(|a| a.contains("backup"))
    );
    c.spec.backup = Some(ClusterBackupSpec {
        locations: vec![VitessBackupLocation {
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
        }],
        ..ClusterBackupSpec::default()
    });
    let objects = built(&c);
    let deployment = &objects.deployments[0];
    let vtctld = container(deployment);
    let args = vtctld.args.as_ref().unwrap();
    let backup: Vec<&String> = args.iter().filter(|a| a.contains("backup")).collect();
    assert_eq!(
        backup,
        [
            "--backup-engine-implementation=builtin",
            "--backup-storage-implementation=gcs",
            "--gcs-backup-storage-bucket=bkt",
            "--gcs-backup-storage-root=example",
        ]
    );
    let env = vtctld.env.as_ref().unwrap();
    assert_eq!(env[0].name, "GOOGLE_APPLICATION_CREDENTIALS");
    assert_eq!(
        vtctld.volume_mounts.as_ref().unwrap()[0].read_only,
        Some(true)
    );
    let pod = deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap();
    assert_eq!(
        pod.volumes.as_ref().unwrap()[0]
            .secret
            .as_ref()
            .unwrap()
            .secret_name
            .as_deref(),
        Some("gcs-auth")
    );
}

#[test]
fn one_deployment_per_cell_by_default() {
    let objects = built(&cluster(None));
    let names: Vec<&str> = objects
        .deployments
        .iter()
        .map(|d| d.metadata.name.as_deref().unwrap())
        .collect();
    assert_eq!(names[0], "example-zone1-vtctld-1d4dcad0");
    assert_eq!(names.len(), 2);
    let d = &objects.deployments[0];
    let spec = d.spec.as_ref().unwrap();
    assert_eq!(spec.replicas, Some(1));
    let labels = d.metadata.labels.as_ref().unwrap();
    assert_eq!(labels["planetscale.com/component"], "vtctld");
    assert_eq!(labels["planetscale.com/cluster"], "example");
    assert_eq!(labels["planetscale.com/cell"], "zone1");
    assert_eq!(spec.selector.match_labels.as_ref(), Some(labels));

    let c = container(d);
    let args = c.args.as_ref().unwrap();
    for want in [
        "--topo-implementation=etcd2",
        "--topo-global-server-address=example-etcd-faf13de3-client.default.svc:2379",
        "--topo-global-root=/vitess/example/global",
        "--port=15000",
        "--grpc-port=15999",
        "--service-map=grpc-vtctl,grpc-vtctld",
        "--logtostderr=true",
        // extraVitessFlags, normalised to Vitess' dashed spelling.
        "--grpc-max-message-size=1",
        // extraVitessFlags apply over the operator's own flags.
        "--cell=cluster-wide",
    ] {
        assert!(
            args.contains(&want.to_string()),
            "{want} missing from {args:?}"
        );
    }
    assert_eq!(c.image.as_deref(), Some(defaults::VITESS_IMAGE));
    let ports: Vec<i32> = c
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .map(|p| p.container_port)
        .collect();
    assert_eq!(ports, [15000, 15999]);
    let probe = c
        .readiness_probe
        .as_ref()
        .unwrap()
        .http_get
        .as_ref()
        .unwrap();
    assert_eq!(probe.path.as_deref(), Some("/debug/health"));
    let requests = c.resources.as_ref().unwrap().requests.clone().unwrap();
    assert_eq!(requests["cpu"].0, "100m");
    assert_eq!(requests["memory"].0, "128Mi");

    // zone1 has a zone, zone2 none.
    let pod = |i: usize| {
        objects.deployments[i]
            .spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .clone()
            .unwrap()
    };
    assert!(pod(0).affinity.unwrap().node_affinity.is_some());
    assert!(pod(1).affinity.is_none());
    assert_eq!(pod(0).priority_class_name.as_deref(), Some("vitess"));
}

#[test]
fn dashboard_settings_win() {
    let objects = built(&cluster(Some(VitessDashboardSpec {
        cells: Some(vec!["zone2".into()]),
        replicas: Some(3),
        extra_flags: Some(
            [
                ("cell".to_string(), "mine".to_string()),
                ("security_policy".to_string(), "read-only".to_string()),
            ]
            .into(),
        ),
        ..VitessDashboardSpec::default()
    })));
    assert_eq!(objects.deployments.len(), 1);
    let d = &objects.deployments[0];
    assert_eq!(d.spec.as_ref().unwrap().replicas, Some(3));
    let args = container(d).args.clone().unwrap();
    assert!(args.contains(&"--cell=mine".to_string()));
    assert!(args.contains(&"--security-policy=read-only".to_string()));
    assert_eq!(args.iter().filter(|a| a.starts_with("--cell=")).count(), 1);
}

#[test]
fn pod_overrides_reach_the_deployment() {
    let objects = built(&cluster(Some(VitessDashboardSpec {
        pod: PodOverrides {
            topology_spread_constraints: Some(vec![TopologySpreadConstraint {
                max_skew: 1,
                topology_key: "topology.kubernetes.io/zone".into(),
                when_unsatisfiable: "ScheduleAnyway".into(),
                ..TopologySpreadConstraint::default()
            }]),
            extra_env: Some(vec![EnvVar {
                name: "FOO".into(),
                value: Some("bar".into()),
                ..EnvVar::default()
            }]),
            ..PodOverrides::default()
        },
        ..VitessDashboardSpec::default()
    })));
    let d = &objects.deployments[0];
    let pod = d.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    let constraints = pod.topology_spread_constraints.as_ref().unwrap();
    assert_eq!(constraints.len(), 1);
    assert_eq!(constraints[0].topology_key, "topology.kubernetes.io/zone");
    assert_eq!(constraints[0].when_unsatisfiable, "ScheduleAnyway");
    let env = container(d).env.as_ref().unwrap();
    assert_eq!(env[0].name, "FOO");
}

#[test]
fn service_and_pull_policy() {
    let mut c = cluster(None);
    c.spec.image_pull_policies = Some(VitessImagePullPolicies {
        vtctld: Some(PullPolicy::Always),
        ..VitessImagePullPolicies::default()
    });
    let objects = built(&c);
    assert_eq!(
        container(&objects.deployments[0])
            .image_pull_policy
            .as_deref(),
        Some("Always")
    );
    let svc = objects.service;
    assert_eq!(
        svc.metadata.name.as_deref(),
        Some(names::cluster::vtctld_service("example").as_str())
    );
    let spec = svc.spec.unwrap();
    assert_eq!(
        spec.selector.unwrap(),
        labels::set(&[
            ("planetscale.com/component", "vtctld"),
            ("planetscale.com/cluster", "example")
        ])
    );
    let ports: Vec<(String, i32)> = spec
        .ports
        .unwrap()
        .into_iter()
        .map(|p| (p.name.unwrap(), p.port))
        .collect();
    assert_eq!(
        ports,
        [("web".to_string(), 15000), ("grpc".to_string(), 15999)]
    );
}

#[test]
fn unknown_dashboard_cell_is_an_error() {
    let c = cluster(Some(VitessDashboardSpec {
        cells: Some(vec!["mars".into()]),
        ..VitessDashboardSpec::default()
    }));
    let err = build(&c, &lockserver::global(&c).unwrap()).unwrap_err();
    assert_eq!(
        err,
        Error::UnknownCell {
            cluster: "example".into(),
            cell: "mars".into()
        }
    );
}
