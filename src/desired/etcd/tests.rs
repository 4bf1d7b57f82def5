//! The tests of [`super`].

use super::*;
use crate::api::etcd::{EtcdLockserverSpec, EtcdLockserverTemplate};
use crate::api::shared::ServiceOverrides;

fn lockserver(template: EtcdLockserverTemplate, zone: Option<&str>) -> EtcdLockserver {
    let mut ls = EtcdLockserver::new(
        "example-etcd-faf13de3",
        EtcdLockserverSpec {
            template,
            zone: zone.map(Into::into),
        },
    );
    ls.metadata.namespace = Some("ns".into());
    ls.metadata.labels = Some(labels::set(&[(labels::CLUSTER, "example")]));
    ls
}

fn args(pod: &Pod) -> Vec<String> {
    pod.spec.as_ref().unwrap().containers[0]
        .args
        .clone()
        .unwrap()
}

#[test]
fn three_members_with_static_bootstrap() {
    let objects = build(&lockserver(EtcdLockserverTemplate::default(), None)).unwrap();
    let names: Vec<&str> = objects
        .pods
        .iter()
        .map(|p| p.metadata.name.as_deref().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "example-etcd-faf13de3-1",
            "example-etcd-faf13de3-2",
            "example-etcd-faf13de3-3"
        ]
    );
    let args = args(&objects.pods[1]);
    let ls = "example-etcd-faf13de3";
    let url = |i: u32| format!("http://{ls}-{i}.{ls}-peer.ns.svc:2380");
    assert!(args.contains(&format!(
        "--initial-cluster={ls}-1={},{ls}-2={},{ls}-3={}",
        url(1),
        url(2),
        url(3)
    )));
    assert!(args.contains(&"--initial-cluster-state=new".to_string()));
    assert!(args.contains(&format!("--initial-cluster-token={ls}")));
    assert!(args.contains(&format!("--name={ls}-2")));
    assert!(args.contains(&format!("--initial-advertise-peer-urls={}", url(2))));
    assert!(args.contains(&format!(
        "--advertise-client-urls=http://{ls}-2.{ls}-peer.ns.svc:2379"
    )));

    let labels = objects.pods[2].metadata.labels.as_ref().unwrap();
    assert_eq!(labels["planetscale.com/component"], "etcd");
    assert_eq!(labels["etcd.planetscale.com/lockserver"], ls);
    assert_eq!(labels["etcd.planetscale.com/index"], "3");
    assert_eq!(labels["planetscale.com/cluster"], "example");

    // One PVC per member, named like it, 1Gi RWO by default.
    assert_eq!(objects.pvcs.len(), 3);
    assert_eq!(objects.pvcs[0].metadata.name.as_deref(), Some(names[0]));
    let claim = objects.pvcs[0].spec.as_ref().unwrap();
    assert_eq!(
        claim.access_modes.as_deref(),
        Some(&["ReadWriteOnce".to_string()][..])
    );
    assert_eq!(
        claim.resources.as_ref().unwrap().requests.as_ref().unwrap()["storage"].0,
        "1Gi"
    );
    let pod_spec = objects.pods[0].spec.as_ref().unwrap();
    assert_eq!(
        pod_spec.volumes.as_ref().unwrap()[0]
            .persistent_volume_claim
            .as_ref()
            .unwrap()
            .claim_name,
        names[0]
    );
    let resources = pod_spec.containers[0].resources.as_ref().unwrap();
    assert_eq!(resources.requests.as_ref().unwrap()["cpu"].0, "100m");
    assert_eq!(resources.requests.as_ref().unwrap()["memory"].0, "256Mi");
    assert_eq!(
        pod_spec.containers[0].image.as_deref(),
        Some(defaults::ETCD_IMAGE)
    );
}

#[test]
fn services_and_pdb() {
    let objects = build(&lockserver(
        EtcdLockserverTemplate {
            client_service: Some(ServiceOverrides {
                annotations: Some([("lb".to_string(), "internal".to_string())].into()),
                cluster_ip: None,
            }),
            ..EtcdLockserverTemplate::default()
        },
        None,
    ))
    .unwrap();
    let client = objects.client_service.unwrap();
    assert_eq!(
        client.metadata.name.as_deref(),
        Some("example-etcd-faf13de3-client")
    );
    assert_eq!(client.metadata.annotations.unwrap()["lb"], "internal");
    let spec = client.spec.unwrap();
    assert_eq!(spec.ports.unwrap()[0].port, 2379);
    assert_eq!(spec.cluster_ip, None);
    assert_eq!(
        spec.selector.unwrap(),
        selector_labels("example-etcd-faf13de3")
    );

    let peer = objects.peer_service.unwrap().spec.unwrap();
    assert_eq!(peer.ports.unwrap()[0].port, 2380);
    assert_eq!(peer.cluster_ip.as_deref(), Some("None"));
    assert_eq!(peer.publish_not_ready_addresses, Some(true));

    let pdb = objects.pdb.unwrap();
    assert_eq!(
        pdb.metadata.name.as_deref(),
        Some("etcd-lockserver-example-etcd-faf13de3")
    );
    assert_eq!(pdb.spec.unwrap().min_available, Some(IntOrString::Int(2)));
}

#[test]
fn switches_local_member_and_overrides() {
    let objects = build(&lockserver(
        EtcdLockserverTemplate {
            create_pdb: Some(false),
            create_client_service: Some(false),
            create_peer_service: Some(false),
            local_member_index: Some(2),
            advertise_peer_urls: Some(vec![
                "http://a:2380".into(),
                "http://b:2380".into(),
                "http://c:2380".into(),
            ]),
            extra_flags: Some(
                [(
                    "--initial-cluster-state".to_string(),
                    "existing".to_string(),
                )]
                .into(),
            ),
            image: Some("etcd:mine".into()),
            ..EtcdLockserverTemplate::default()
        },
        Some("zone-a"),
    ))
    .unwrap();
    assert!(objects.pdb.is_none());
    assert!(objects.client_service.is_none());
    assert!(objects.peer_service.is_none());
    assert_eq!(objects.pods.len(), 1);
    assert_eq!(objects.pvcs.len(), 1);
    let pod = &objects.pods[0];
    assert_eq!(
        pod.metadata.name.as_deref(),
        Some("example-etcd-faf13de3-2")
    );
    let args = args(pod);
    assert!(args.contains(&"--initial-cluster-state=existing".to_string()));
    assert!(!args.contains(&"--initial-cluster-state=new".to_string()));
    assert!(args.contains(&"--initial-advertise-peer-urls=http://b:2380".to_string()));
    let ls = "example-etcd-faf13de3";
    assert!(args.contains(&format!(
        "--initial-cluster={ls}-1=http://a:2380,{ls}-2=http://b:2380,{ls}-3=http://c:2380"
    )));
    let spec = pod.spec.as_ref().unwrap();
    assert_eq!(spec.containers[0].image.as_deref(), Some("etcd:mine"));
    let node = spec
        .affinity
        .as_ref()
        .unwrap()
        .node_affinity
        .as_ref()
        .unwrap();
    let req = &node
        .required_during_scheduling_ignored_during_execution
        .as_ref()
        .unwrap()
        .node_selector_terms[0]
        .match_expressions
        .as_ref()
        .unwrap()[0];
    assert_eq!(req.key, "topology.kubernetes.io/zone");
    assert_eq!(req.values.as_deref(), Some(&["zone-a".to_string()][..]));
}

#[test]
fn requires_the_cluster_label() {
    let mut ls = lockserver(EtcdLockserverTemplate::default(), None);
    ls.metadata.labels = None;
    assert_eq!(
        build(&ls).unwrap_err(),
        Error::MissingLabel {
            kind: "EtcdLockserver",
            label: labels::CLUSTER
        }
    );
}
