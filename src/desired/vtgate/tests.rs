//! The tests of [`super`].

use super::*;
use crate::api::cell::{
    AutoscalerSpec, VitessCellGatewaySpec, VitessCellSpec, VitessCellTemplate,
    VitessGatewayAuthentication, VitessGatewaySecureTransport, VitessGatewayStaticAuthentication,
    VitessGatewayTlsSecureTransport,
};
use crate::api::shared::{SecretSource, ServiceOverrides, VitessLockserverParams};
use k8s_openapi::api::apps::v1::DeploymentStrategy;

fn cell(gateway: VitessCellGatewaySpec) -> VitessCell {
    let mut cell = VitessCell::new(
        "example-zone1-5abb61ae",
        VitessCellSpec {
            template: VitessCellTemplate {
                name: "zone1".into(),
                zone: Some("us-east-1a".into()),
                gateway: Some(gateway),
                ..VitessCellTemplate::default()
            },
            global_lockserver: VitessLockserverParams {
                implementation: "etcd2".into(),
                address: "etcd:2379".into(),
                root_path: "/vitess/example/global".into(),
            },
            all_cells: vec!["zone1".into(), "zone2".into()],
            ..VitessCellSpec::default()
        },
    );
    cell.metadata.namespace = Some("ns".into());
    cell.metadata.labels = Some(labels::set(&[
        (labels::CLUSTER, "example"),
        (labels::CELL, "zone1"),
    ]));
    cell
}

fn pod(objects: &VtgateObjects) -> PodSpec {
    objects
        .deployment
        .spec
        .clone()
        .unwrap()
        .template
        .spec
        .unwrap()
}

fn args(objects: &VtgateObjects) -> Vec<String> {
    pod(objects).containers[0].args.clone().unwrap()
}

fn secret(name: &str, key: &str) -> Option<SecretSource> {
    Some(SecretSource {
        name: Some(name.into()),
        volume_name: None,
        key: key.into(),
    })
}

#[test]
fn deployment_defaults() {
    let objects = build(&cell(VitessCellGatewaySpec::default())).unwrap();
    let d = &objects.deployment;
    assert_eq!(
        d.metadata.name.as_deref(),
        Some("example-zone1-vtgate-bc6cde92")
    );
    let spec = d.spec.as_ref().unwrap();
    assert_eq!(spec.replicas, Some(2));
    let labels = d.metadata.labels.as_ref().unwrap();
    assert_eq!(labels["planetscale.com/component"], "vtgate");
    assert_eq!(labels["planetscale.com/cell"], "zone1");
    assert_eq!(labels["planetscale.com/cluster"], "example");

    let args = args(&objects);
    for want in [
        "--cell=zone1",
        "--cells-to-watch=zone1,zone2",
        "--tablet-types-to-wait=PRIMARY,REPLICA",
        "--service-map=grpc-vtgateservice",
        "--topo-global-server-address=etcd:2379",
        "--topo-global-root=/vitess/example/global",
        "--topo-implementation=etcd2",
        "--mysql-server-port=3306",
        // The Go operator's reparent buffer and message size, so that its vtgates are taken
        // over unchanged.
        "--enable-buffer=true",
        "--buffer-size=1000",
        "--buffer-max-failover-duration=10s",
        "--buffer-min-time-between-failovers=20s",
        "--grpc-max-message-size=67108864",
    ] {
        assert!(args.contains(&want.to_string()), "{want} missing: {args:?}");
    }
    assert!(
        !args
            .iter()
            .any(|a| a.starts_with("--mysql-auth-server-impl"))
    );
    // No shard, no mysqld image on the cell: no MySQL version to report.
    assert!(!args.iter().any(|a| a.starts_with("--mysql-server-version")));
    let mut with_shards = cell(VitessCellGatewaySpec::default());
    with_shards.spec.images.mysqld = Some(crate::api::shared::MysqldImage {
        mysql80_compatible: Some("mysql:9.7".into()),
        ..Default::default()
    });
    let shard_args = self::args(&build(&with_shards).unwrap());
    assert!(shard_args.contains(&"--mysql-server-version=9.7-Vitess".to_string()));
    let c = &pod(&objects).containers[0];
    assert_eq!(
        c.lifecycle, None,
        "an empty lifecycle is none, as the Go operator leaves it"
    );
    let ports: Vec<i32> = c
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .map(|p| p.container_port)
        .collect();
    assert_eq!(ports, [15000, 15999, 3306]);
    let requests = c.resources.as_ref().unwrap().requests.clone().unwrap();
    assert_eq!(requests["cpu"].0, "500m");
    assert_eq!(requests["memory"].0, "1Gi");
    assert!(objects.autoscaler.is_none());
    assert!(pod(&objects).affinity.unwrap().node_affinity.is_some());

    let svc = &objects.service;
    assert_eq!(
        svc.metadata.name.as_deref(),
        Some(names::join_service(&["example", "zone1", "vtgate"]).as_str())
    );
    assert_eq!(svc.spec.as_ref().unwrap().selector.as_ref(), Some(labels));
}

#[test]
fn static_auth_and_tls_are_mounted() {
    let objects = build(&cell(VitessCellGatewaySpec {
        authentication: Some(VitessGatewayAuthentication {
            static_: Some(VitessGatewayStaticAuthentication {
                secret: secret("users", "users.json"),
            }),
        }),
        secure_transport: Some(VitessGatewaySecureTransport {
            required: Some(true),
            tls: Some(VitessGatewayTlsSecureTransport {
                client_ca_cert_secret: secret("ca", "ca.pem"),
                cert_secret: secret("tls", "tls.crt"),
                key_secret: Some(SecretSource {
                    name: None,
                    volume_name: Some("my-keys".into()),
                    key: "tls.key".into(),
                }),
            }),
        }),
        ..VitessCellGatewaySpec::default()
    }))
    .unwrap();
    let args = args(&objects);
    for want in [
        "--mysql-auth-server-impl=static",
        "--mysql-auth-server-static-file=/vt/secrets/vtgate-static-auth/users.json",
        "--mysql-server-ssl-cert=/vt/secrets/vtgate-tls-cert/tls.crt",
        "--mysql-server-ssl-key=/vt/secrets/vtgate-tls-key/tls.key",
        "--mysql-server-ssl-ca=/vt/secrets/vtgate-tls-ca-cert/ca.pem",
        "--mysql-server-require-secure-transport=true",
    ] {
        assert!(args.contains(&want.to_string()), "{want} missing: {args:?}");
    }
    let pod = pod(&objects);
    let volumes: Vec<String> = pod.volumes.unwrap().into_iter().map(|v| v.name).collect();
    // The key comes from a volume the pod already has: no new volume for it.
    assert_eq!(
        volumes,
        [
            "vtgate-static-auth-secret",
            "vtgate-tls-cert-secret",
            "vtgate-tls-ca-cert-secret"
        ]
    );
    let mounts: Vec<String> = pod.containers[0]
        .volume_mounts
        .clone()
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert!(mounts.contains(&"my-keys".to_string()));
}

#[test]
fn an_autoscaled_gateway_scales_its_cell_as_the_go_operator_does() {
    let objects = build(&cell(VitessCellGatewaySpec {
        replicas: Some(5),
        autoscaler: Some(AutoscalerSpec {
            min_replicas: Some(2),
            max_replicas: 8,
            ..AutoscalerSpec::default()
        }),
        strategy: Some(DeploymentStrategy {
            type_: Some("Recreate".into()),
            ..DeploymentStrategy::default()
        }),
        extra_flags: Some([("tablet_types_to_wait".to_string(), "REPLICA".to_string())].into()),
        service: Some(ServiceOverrides {
            annotations: None,
            cluster_ip: Some("10.0.0.9".into()),
        }),
        ..VitessCellGatewaySpec::default()
    }))
    .unwrap();
    let spec = objects.deployment.spec.as_ref().unwrap();
    // The cell's count, which the HPA keeps through the VitessCell's scale subresource.
    assert_eq!(spec.replicas, Some(5));
    assert_eq!(
        spec.strategy.as_ref().unwrap().type_.as_deref(),
        Some("Recreate")
    );
    let hpa = objects.autoscaler.clone().unwrap();
    assert_eq!(hpa.metadata.name.as_deref(), Some("example-zone1-5abb61ae"));
    let hpa = hpa.spec.unwrap();
    assert_eq!(hpa.scale_target_ref.name, "example-zone1-5abb61ae");
    assert_eq!(hpa.scale_target_ref.kind, "VitessCell");
    assert_eq!(
        hpa.scale_target_ref.api_version.as_deref(),
        Some("planetscale.com/v2")
    );
    assert_eq!((hpa.min_replicas, hpa.max_replicas), (Some(2), 8));
    let args = args(&objects);
    assert!(args.contains(&"--tablet-types-to-wait=REPLICA".to_string()));
    assert_eq!(
        objects.service.spec.unwrap().cluster_ip.as_deref(),
        Some("10.0.0.9")
    );
}

#[test]
fn cluster_wide_service() {
    let mut cluster = VitessCluster::new("example", Default::default());
    cluster.spec.gateway_service = Some(ServiceOverrides {
        annotations: Some([("a".to_string(), "b".to_string())].into()),
        cluster_ip: None,
    });
    let svc = cluster_service(&cluster).unwrap();
    assert_eq!(
        svc.metadata.name.as_deref(),
        Some(names::join_service(&["example", "vtgate"]).as_str())
    );
    assert_eq!(svc.metadata.annotations.unwrap()["a"], "b");
    assert_eq!(
        svc.spec.unwrap().selector.unwrap(),
        labels::set(&[
            ("planetscale.com/component", "vtgate"),
            ("planetscale.com/cluster", "example")
        ])
    );
}
