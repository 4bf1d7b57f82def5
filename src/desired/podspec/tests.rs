//! The tests of [`super`].

use super::*;
use k8s_openapi::api::core::v1::{Container, Toleration, TopologySpreadConstraint};

fn zone_of(affinity: &Affinity) -> Option<String> {
    let term = &affinity
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms[0];
    let req = &term.match_expressions.as_ref()?[0];
    assert_eq!(req.key, ZONE_LABEL);
    assert_eq!(req.operator, "In");
    req.values.as_ref()?.first().cloned()
}

#[test]
fn zone_affinity_added_unless_user_placed_pods() {
    let got = affinity(None, Some("z1"), None).unwrap();
    assert_eq!(zone_of(&got).as_deref(), Some("z1"));
    assert!(affinity(None, Some(""), None).is_none());
    assert!(affinity(None, None, None).is_none());

    let user = Affinity {
        node_affinity: Some(NodeAffinity::default()),
        ..Affinity::default()
    };
    let got = affinity(Some(&user), Some("z1"), None).unwrap();
    assert_eq!(got, user, "the user's node affinity wins");
}

#[test]
fn user_env_replaces_ours_by_name() {
    let ours = vec![
        EnvVar {
            name: "A".into(),
            value: Some("1".into()),
            ..EnvVar::default()
        },
        EnvVar {
            name: "B".into(),
            value: Some("2".into()),
            ..EnvVar::default()
        },
    ];
    let extra = vec![
        EnvVar {
            name: "B".into(),
            value: Some("x".into()),
            ..EnvVar::default()
        },
        EnvVar {
            name: "C".into(),
            value: Some("3".into()),
            ..EnvVar::default()
        },
    ];
    let env = merge_env(ours, Some(&extra));
    let pairs: Vec<(&str, &str)> = env
        .iter()
        .map(|e| (e.name.as_str(), e.value.as_deref().unwrap()))
        .collect();
    assert_eq!(pairs, [("A", "1"), ("B", "x"), ("C", "3")]);
}

#[test]
fn our_labels_win_over_extra_labels() {
    let ours = crate::domain::labels::set(&[("planetscale.com/component", "vtgate")]);
    let extra: StringMap = [
        ("planetscale.com/component".to_string(), "mine".to_string()),
        ("team".to_string(), "db".to_string()),
    ]
    .into();
    let got = merge_labels(&ours, Some(&extra));
    assert_eq!(got["planetscale.com/component"], "vtgate");
    assert_eq!(got["team"], "db");
}

fn var(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..EnvVar::default()
    }
}

fn named<T>(items: &Option<Vec<T>>, name: fn(&T) -> &str) -> Vec<String> {
    items
        .iter()
        .flatten()
        .map(|i| name(i).to_string())
        .collect()
}

/// A pod as a builder makes it: our init container, a main container with env and a
/// mount, a helper container, one volume, our labels and annotation.
fn operator_pod() -> (ObjectMeta, PodSpec) {
    let container = |name: &str| Container {
        name: name.into(),
        env: Some(vec![var("A", "1"), var("B", "2")]),
        volume_mounts: Some(vec![VolumeMount {
            name: "ours".into(),
            mount_path: "/ours".into(),
            ..VolumeMount::default()
        }]),
        ..Container::default()
    };
    let meta = ObjectMeta {
        labels: Some(crate::domain::labels::set(&[(
            "planetscale.com/component",
            "vtgate",
        )])),
        annotations: Some(crate::domain::labels::set(&[(
            "drain.planetscale.com/supported",
            "ours",
        )])),
        ..ObjectMeta::default()
    };
    let spec = PodSpec {
        init_containers: Some(vec![Container {
            name: "init-ours".into(),
            ..Container::default()
        }]),
        containers: vec![container("main"), container("helper")],
        volumes: Some(vec![Volume {
            name: "ours".into(),
            ..Volume::default()
        }]),
        ..PodSpec::default()
    };
    (meta, spec)
}

fn user_overrides() -> PodOverrides {
    let container = |name: &str| Container {
        name: name.into(),
        ..Container::default()
    };
    PodOverrides {
        extra_env: Some(vec![var("B", "x"), var("C", "3")]),
        extra_volumes: Some(vec![Volume {
            name: "theirs".into(),
            ..Volume::default()
        }]),
        extra_volume_mounts: Some(vec![VolumeMount {
            name: "theirs".into(),
            mount_path: "/theirs".into(),
            ..VolumeMount::default()
        }]),
        init_containers: Some(vec![container("init-theirs")]),
        sidecar_containers: Some(vec![container("sidecar")]),
        affinity: Some(Affinity {
            node_affinity: Some(NodeAffinity::default()),
            ..Affinity::default()
        }),
        annotations: Some(crate::domain::labels::set(&[
            ("drain.planetscale.com/supported", "theirs"),
            ("a", "b"),
        ])),
        extra_labels: Some(crate::domain::labels::set(&[
            ("planetscale.com/component", "theirs"),
            ("team", "db"),
        ])),
        tolerations: Some(vec![Toleration {
            key: Some("k".into()),
            ..Toleration::default()
        }]),
        topology_spread_constraints: Some(vec![TopologySpreadConstraint {
            max_skew: 1,
            topology_key: "zone".into(),
            ..TopologySpreadConstraint::default()
        }]),
    }
}

#[test]
fn overrides_apply_to_main_containers_and_after_ours() {
    let (mut meta, mut spec) = operator_pod();
    apply_overrides(&mut meta, &mut spec, &["main"], &user_overrides());

    let main = &spec.containers[0];
    let env: Vec<(&str, &str)> = main
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.as_str(), e.value.as_deref().unwrap()))
        .collect();
    assert_eq!(env, [("A", "1"), ("B", "x"), ("C", "3")]);
    assert_eq!(named(&main.volume_mounts, |m| &m.name), ["ours", "theirs"]);
    let helper = &spec.containers[1];
    assert_eq!(
        helper.env.as_ref().unwrap().len(),
        2,
        "not a main container"
    );
    assert_eq!(named(&helper.volume_mounts, |m| &m.name), ["ours"]);

    let containers: Vec<&str> = spec.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(containers, ["main", "helper", "sidecar"]);
    assert_eq!(
        named(&spec.init_containers, |c| &c.name),
        ["init-ours", "init-theirs"]
    );
    assert_eq!(named(&spec.volumes, |v| &v.name), ["ours", "theirs"]);
    assert_eq!(spec.tolerations.as_ref().unwrap().len(), 1);
    assert_eq!(
        spec.topology_spread_constraints.as_ref().unwrap()[0].topology_key,
        "zone"
    );
    assert!(spec.affinity.is_none(), "affinity is left to the callers");

    let labels = meta.labels.unwrap();
    assert_eq!(labels["planetscale.com/component"], "vtgate");
    assert_eq!(labels["team"], "db");
    let annotations = meta.annotations.unwrap();
    assert_eq!(annotations["drain.planetscale.com/supported"], "ours");
    assert_eq!(annotations["a"], "b");
}

#[test]
fn no_overrides_change_nothing_and_none_stays_none() {
    let (meta, spec) = operator_pod();
    let (mut got_meta, mut got_spec) = (meta.clone(), spec.clone());
    apply_overrides(
        &mut got_meta,
        &mut got_spec,
        &["main"],
        &PodOverrides::default(),
    );
    assert_eq!((got_meta, got_spec), (meta, spec));

    let mut meta = ObjectMeta::default();
    let mut spec = PodSpec {
        containers: vec![Container {
            name: "main".into(),
            ..Container::default()
        }],
        ..PodSpec::default()
    };
    apply_overrides(&mut meta, &mut spec, &["main"], &PodOverrides::default());
    assert_eq!(meta, ObjectMeta::default());
    assert!(spec.volumes.is_none());
    assert!(spec.init_containers.is_none());
    assert!(spec.tolerations.is_none());
    assert!(spec.topology_spread_constraints.is_none());
    assert!(spec.containers[0].env.is_none());
    assert!(spec.containers[0].volume_mounts.is_none());

    // A pod with nothing of its own takes the user's lists as they are.
    apply_overrides(&mut meta, &mut spec, &["main"], &user_overrides());
    assert_eq!(named(&spec.volumes, |v| &v.name), ["theirs"]);
    assert_eq!(named(&spec.containers[0].env, |e| &e.name), ["B", "C"]);
    assert_eq!(meta.labels.unwrap()["planetscale.com/component"], "theirs");
}

#[test]
fn secret_files_from_secret_or_existing_volume() {
    let from_secret = SecretSource {
        name: Some("s".into()),
        volume_name: None,
        key: "users.json".into(),
    };
    let file = secret_file(&from_secret, "static-auth", "X", "f").unwrap();
    assert_eq!(file.path, "/vt/secrets/static-auth/users.json");
    let volume = file.volume.unwrap();
    assert_eq!(volume.name, "static-auth-secret");
    assert_eq!(file.mount.name, "static-auth-secret");
    let secret = volume.secret.unwrap();
    assert_eq!(
        secret.secret_name.as_deref(),
        Some("s"),
        "the Secret is mounted"
    );
    assert_eq!(
        secret.default_mode,
        Some(0o444),
        "readable by the Vitess user"
    );

    let from_volume = SecretSource {
        name: Some("ignored".into()),
        volume_name: Some("certs".into()),
        key: "tls.crt".into(),
    };
    let file = secret_file(&from_volume, "tls-cert", "X", "f").unwrap();
    assert!(file.volume.is_none());
    assert_eq!(file.mount.name, "certs");
    assert_eq!(file.path, "/vt/secrets/tls-cert/tls.crt");

    let neither = SecretSource {
        key: "k".into(),
        ..SecretSource::default()
    };
    assert_eq!(
        secret_file(&neither, "n", "VitessCell/a", "spec.x"),
        Err(Error::SecretSource {
            object: "VitessCell/a".into(),
            field: "spec.x".into()
        })
    );
}

#[test]
fn headless_unless_overridden() {
    let svc = service(
        "s".into(),
        &None,
        BTreeMap::new(),
        vec![],
        Some(&ServiceOverrides {
            annotations: Some([("a".to_string(), "b".to_string())].into()),
            cluster_ip: None,
        }),
        true,
    );
    assert_eq!(svc.spec.unwrap().cluster_ip.as_deref(), Some("None"));
    assert_eq!(svc.metadata.annotations.unwrap()["a"], "b");
}

#[test]
fn cpu_quantities_round_up_to_whole_cores() {
    let cores = |q: &str| whole_cpus(&Quantity(q.into()));
    assert_eq!(cores("1500m"), Some(2));
    assert_eq!(cores("100m"), Some(1));
    assert_eq!(cores("2"), Some(2));
    assert_eq!(cores("1.5"), Some(2));
    assert_eq!(cores("0"), Some(0));
    assert_eq!(cores("lots"), None);
}

#[test]
fn storage_quantities_in_bytes() {
    let bytes = |q: &str| bytes(&Quantity(q.into()));
    assert_eq!(bytes("5Gi"), Some(5 << 30));
    assert_eq!(bytes("1.5Gi"), Some(3 << 29));
    assert_eq!(bytes("500M"), Some(500_000_000));
    assert_eq!(bytes("1e9"), Some(1_000_000_000));
    assert_eq!(bytes("1073741824"), Some(1 << 30));
    assert_eq!(bytes("0.1"), Some(1), "rounded up to a whole byte");
    assert!(bytes("6Gi") > bytes("5Gi") && bytes("6G") < bytes("6Gi"));
    assert_eq!(bytes("lots"), None);
    assert_eq!(bytes("5Xi"), None);
}
