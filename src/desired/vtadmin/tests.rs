use super::*;
use crate::controller::testing::example_cluster;

/// The example cluster with its vtadmin and images replaced by `yaml`'s.
fn with_vtadmin(yaml: &str) -> VitessCluster {
    let mut cluster = example_cluster();
    cluster.spec.vtadmin = None;
    if let Some(images) = cluster.spec.images.as_mut() {
        images.vtadmin = None;
    }
    let mut value = serde_json::to_value(&cluster).expect("value");
    let extra: serde_json::Value = serde_saphyr::from_str(yaml).expect("yaml");
    for (key, item) in extra.as_object().expect("object") {
        match (value["spec"].get_mut(key), item) {
            (Some(serde_json::Value::Object(have)), serde_json::Value::Object(more)) => {
                have.extend(more.clone());
            }
            _ => value["spec"][key] = item.clone(),
        }
    }
    cluster = serde_json::from_value(value).expect("cluster");
    cluster
}

fn args(d: &Deployment, container: &str) -> Vec<String> {
    let pod = d
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("pod");
    let c = pod
        .containers
        .iter()
        .find(|c| c.name == container)
        .expect("container");
    c.args.clone().unwrap_or_default()
}

fn text(secret: &Secret) -> String {
    let data = secret.data.as_ref().expect("data");
    let bytes = &data.values().next().expect("one key").0;
    String::from_utf8(bytes.clone()).expect("utf-8")
}

#[test]
fn nothing_without_the_spec_or_an_image() {
    let mut cluster = example_cluster();
    cluster.spec.vtadmin = None;
    let built = build(&cluster).expect("build");
    assert!(built.cells.is_empty() && built.service.is_none());
    let no_image = with_vtadmin("vtadmin: {apiAddresses: ['http://a']}");
    let built = build(&no_image).expect("build");
    assert!(built.cells.is_empty() && built.service.is_none());
}

#[test]
fn one_deployment_per_cell_with_its_files_named_as_the_go_operator_names_them() {
    let cluster = with_vtadmin(
        "vtadmin: {apiAddresses: ['http://api.example:14001'], readOnly: true, \
         rbac: {name: rbac-secret, key: rbac.yaml}, extraFlags: {lame-duck-duration: 9s}}\n\
         images: {vtadmin: 'vitess/vtadmin:v24.0.3'}",
    );
    let built = build(&cluster).expect("build");
    assert_eq!(built.cells.len(), 1);
    let (deployment, secrets) = &built.cells[0];
    assert_eq!(
        deployment.metadata.name.as_deref(),
        Some(deployment_name("example", "zone1").as_str())
    );
    assert_eq!(
        deployment_name("example", "zone1"),
        names::join(&["example", "zone1", "vtadmin"])
    );
    let names: Vec<&str> = secrets
        .iter()
        .map(|s| s.metadata.name.as_deref().expect("name"))
        .collect();
    assert_eq!(
        names,
        [
            names::join(&["example", "zone1", "vtadmin", "discovery"]),
            names::join(&["example", "zone1", "vtadmin", "clusterConfig"]),
            names::join(&["example", "zone1", "vtadmin", "webConfig"]),
        ]
    );
    let api = args(deployment, "vtadmin-api");
    for flag in [
        "--addr=:15001",
        "--rbac=true",
        "--rbac-config=/vt/secrets/rbac-config/rbac.yaml",
        "--cluster-config=/vt/secrets/cluster-config/cluster-config.yaml",
        "--lame-duck-duration=9s",
    ] {
        assert!(api.contains(&flag.to_string()), "{flag} not in {api:?}");
    }
    assert!(!api.iter().any(|a| a.starts_with("--no-rbac")));
    // The files say what vtadmin needs.
    let discovery: serde_json::Value = serde_json::from_str(&text(&secrets[0])).expect("json");
    let vtctld = names::cluster::vtctld_service("example");
    assert_eq!(
        discovery["vtctlds"][0]["host"]["hostname"],
        format!("{vtctld}.default.svc:15999")
    );
    assert!(
        discovery["vtgates"][0]["host"]["hostname"]
            .as_str()
            .is_some_and(|h| h.ends_with(".default.svc:15999"))
    );
    assert!(
        text(&secrets[1])
            .contains("discovery-staticfile-path: /vt/secrets/discovery-config/discovery.json")
    );
    let web = text(&secrets[2]);
    assert!(web.starts_with("window.env = {"), "{web}");
    assert!(
        web.contains(r#""VITE_VTADMIN_API_ADDRESS":"http://api.example:14001""#),
        "{web}"
    );
    assert!(web.contains(r#""REACT_APP_READONLY_MODE":true"#), "{web}");
    // The web UI reads its config where the image serves it.
    let pod = deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("pod");
    let web_mounts = pod.containers[1].volume_mounts.as_ref().expect("mounts");
    assert_eq!(web_mounts[0].mount_path, "/var/www/config");
    let volumes: Vec<&str> = pod
        .volumes
        .iter()
        .flatten()
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(
        volumes,
        [
            "rbac-config-secret",
            "discovery-config-secret",
            "cluster-config-secret",
            "config-js-secret"
        ]
    );
    let service = built.service.expect("service");
    assert_eq!(
        service.metadata.name.as_deref(),
        Some(names::join_service(&["example", "vtadmin"]).as_str())
    );
}

#[test]
fn without_rbac_it_says_no_rbac_and_one_address_per_cell_is_used_in_order() {
    let cluster = with_vtadmin(
        "vtadmin: {apiAddresses: ['http://one', 'http://two']}\n\
         images: {vtadmin: 'vitess/vtadmin:v24.0.3'}",
    );
    let mut cluster = cluster;
    let mut second = cluster.spec.cells[0].clone();
    second.name = "zone2".into();
    cluster.spec.cells.push(second);
    let built = build(&cluster).expect("build");
    assert_eq!(built.cells.len(), 2);
    assert!(args(&built.cells[0].0, "vtadmin-api").contains(&"--no-rbac=true".to_string()));
    for (i, address) in ["http://one", "http://two"].iter().enumerate() {
        assert!(text(&built.cells[i].1[2]).contains(address), "cell {i}");
    }
}
