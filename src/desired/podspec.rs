//! Pieces every component's pods and Services share: pull policies, probes, ports, default
//! resources, zone affinity, mounted secret files, env and label merging, and the user's
//! [`PodOverrides`] applied to a pod the operator built.
//!
//! Long because its tests sit beside the helpers.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::api::core::v1::{
    Affinity, ContainerPort, EnvVar, HTTPGetAction, KeyToPath, NodeAffinity, NodeSelector,
    NodeSelectorRequirement, NodeSelectorTerm, PodAffinityTerm, PodAntiAffinity,
    PodSecurityContext, Probe, ResourceRequirements, SecretVolumeSource, Service, ServicePort,
    ServiceSpec, Volume, VolumeMount, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::ObjectMeta;

use super::{Error, defaults, meta};
use crate::api::shared::{
    PodOverrides, PullPolicy, Resources, SecretSource, ServiceOverrides, StringMap,
};

/// Node label of the zone a node is in.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
/// Node label of a node's host name.
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";
/// Names of the ports, as Services target them.
pub const WEB_PORT_NAME: &str = "web";
pub const GRPC_PORT_NAME: &str = "grpc";
pub const MYSQL_PORT_NAME: &str = "mysql";

/// The Kubernetes spelling of a pull policy; unset lets Kubernetes choose from the tag.
pub fn pull_policy(policy: Option<PullPolicy>) -> Option<String> {
    policy.map(|p| {
        match p {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        }
        .to_string()
    })
}

/// A named TCP container port.
pub fn container_port(name: &str, port: u16) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        container_port: i32::from(port),
        protocol: Some("TCP".into()),
        ..ContainerPort::default()
    }
}

/// A Service port that targets the container port of the same name, so pods decide numbers.
pub fn service_port(name: &str, port: u16) -> ServicePort {
    ServicePort {
        name: Some(name.into()),
        port: i32::from(port),
        protocol: Some("TCP".into()),
        target_port: Some(IntOrString::String(name.into())),
        ..ServicePort::default()
    }
}

/// An HTTP GET probe on the named port.
pub fn http_probe(path: &str, port_name: &str) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String(port_name.into()),
            ..HTTPGetAction::default()
        }),
        ..Probe::default()
    }
}

/// A liveness probe that gives a slow start five minutes and then tolerates a long outage:
/// restarting a Vitess server that is busy (restoring, catching up) only makes things worse.
pub fn patient_liveness(path: &str, port_name: &str) -> Probe {
    Probe {
        initial_delay_seconds: Some(300),
        failure_threshold: Some(30),
        ..http_probe(path, port_name)
    }
}

/// The given resources, or a CPU and memory request with the memory also as limit.
pub fn resources_or(given: Option<&Resources>, cpu: &str, memory: &str) -> ResourceRequirements {
    given.cloned().unwrap_or_else(|| ResourceRequirements {
        requests: Some(quantities(&[("cpu", cpu), ("memory", memory)])),
        limits: Some(quantities(&[("memory", memory)])),
        ..ResourceRequirements::default()
    })
}

/// A resource list from `(name, quantity)` pairs.
pub fn quantities(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
    pairs
        .iter()
        .map(|(name, q)| (name.to_string(), Quantity(q.to_string())))
        .collect()
}

/// The pod's affinity: what the user gave, else `spread`; and when the pods belong to a zone,
/// a required node affinity for it unless the user's affinity already says where to run.
pub fn affinity(
    user: Option<&Affinity>,
    zone: Option<&str>,
    spread: Option<PodAntiAffinity>,
) -> Option<Affinity> {
    let mut affinity = match user {
        Some(given) => given.clone(),
        None => Affinity {
            pod_anti_affinity: spread,
            ..Affinity::default()
        },
    };
    if let Some(zone) = zone.filter(|z| !z.is_empty())
        && affinity.node_affinity.is_none()
    {
        affinity.node_affinity = Some(NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                node_selector_terms: vec![NodeSelectorTerm {
                    match_expressions: Some(vec![NodeSelectorRequirement {
                        key: ZONE_LABEL.into(),
                        operator: "In".into(),
                        values: Some(vec![zone.into()]),
                    }]),
                    ..NodeSelectorTerm::default()
                }],
            }),
            ..NodeAffinity::default()
        });
    }
    (affinity != Affinity::default()).then_some(affinity)
}

/// A preferred anti-affinity term: keep pods matching `labels` apart across `topology_key`.
pub fn spread_term(
    weight: i32,
    labels: &BTreeMap<String, String>,
    topology_key: &str,
) -> WeightedPodAffinityTerm {
    WeightedPodAffinityTerm {
        weight,
        pod_affinity_term: PodAffinityTerm {
            label_selector: Some(LabelSelector {
                match_labels: Some(labels.clone()),
                ..LabelSelector::default()
            }),
            topology_key: topology_key.into(),
            ..PodAffinityTerm::default()
        },
    }
}

/// Pod security of Vitess pods: the images' `vitess` user, never root, volumes writable by it.
pub fn vitess_pod_security() -> PodSecurityContext {
    PodSecurityContext {
        run_as_user: Some(defaults::VITESS_RUN_AS_USER),
        run_as_non_root: Some(true),
        fs_group: Some(defaults::VITESS_FS_GROUP),
        ..PodSecurityContext::default()
    }
}

/// Our environment with the user's on top: a user variable replaces ours of the same name.
pub fn merge_env(ours: Vec<EnvVar>, extra: Option<&Vec<EnvVar>>) -> Vec<EnvVar> {
    let mut env = ours;
    for var in extra.into_iter().flatten() {
        match env.iter_mut().find(|e| e.name == var.name) {
            Some(existing) => *existing = var.clone(),
            None => env.push(var.clone()),
        }
    }
    env
}

/// The user's extra labels with ours on top: the labels that say who owns a pod cannot be
/// overridden, or the operator would lose track of it.
pub fn merge_labels(
    ours: &BTreeMap<String, String>,
    extra: Option<&StringMap>,
) -> BTreeMap<String, String> {
    let mut labels = extra.cloned().unwrap_or_default();
    labels.extend(ours.iter().map(|(k, v)| (k.clone(), v.clone())));
    labels
}

/// Applies the user's `overrides` to a pod (or pod template) that holds only the operator's own
/// settings, the same way for every component:
///
/// - `extraEnv` is merged by name into each container named in `main_containers` (a user
///   variable replaces ours, see [`merge_env`]) and `extraVolumeMounts` is appended to them;
///   other containers (exporters, the user's sidecars) get neither;
/// - `extraVolumes`, `initContainers` (after ours), `sidecarContainers` (after ours),
///   `tolerations` and `topologySpreadConstraints` are appended to the pod's lists;
/// - `extraLabels` and `annotations` are merged with the pod's own; ours win on both (the
///   labels say who owns the pod, annotations like `drain.planetscale.com/supported` are the
///   operator's promises).
///
/// Only what the user set is touched: a field that is `None` on the pod and not given stays
/// `None`, so rendered objects stay minimal. `affinity` is not applied here: callers combine it
/// with the zone and their default spreading through [`affinity`], because the user's affinity
/// replaces the spreading rather than adding to it.
pub fn apply_overrides(
    meta: &mut ObjectMeta,
    spec: &mut PodSpec,
    main_containers: &[&str],
    overrides: &PodOverrides,
) {
    fn extend<T: Clone>(list: &mut Option<Vec<T>>, extra: Option<&Vec<T>>) {
        if let Some(extra) = extra {
            list.get_or_insert_with(Vec::new)
                .extend(extra.iter().cloned());
        }
    }

    for container in spec
        .containers
        .iter_mut()
        .filter(|c| main_containers.contains(&c.name.as_str()))
    {
        if let Some(extra) = &overrides.extra_env {
            let ours = container.env.take().unwrap_or_default();
            container.env = Some(merge_env(ours, Some(extra)));
        }
        extend(
            &mut container.volume_mounts,
            overrides.extra_volume_mounts.as_ref(),
        );
    }
    extend(&mut spec.volumes, overrides.extra_volumes.as_ref());
    extend(
        &mut spec.init_containers,
        overrides.init_containers.as_ref(),
    );
    if let Some(sidecars) = &overrides.sidecar_containers {
        spec.containers.extend(sidecars.iter().cloned());
    }
    extend(&mut spec.tolerations, overrides.tolerations.as_ref());
    extend(
        &mut spec.topology_spread_constraints,
        overrides.topology_spread_constraints.as_ref(),
    );

    if let Some(extra) = &overrides.extra_labels {
        let ours = meta.labels.take().unwrap_or_default();
        meta.labels = Some(merge_labels(&ours, Some(extra)));
    }
    if let Some(extra) = &overrides.annotations {
        let ours = meta.annotations.take().unwrap_or_default();
        meta.annotations = Some(merge_labels(&ours, Some(extra)));
    }
}

/// A label selector matching exactly `labels`.
pub fn selector(labels: &BTreeMap<String, String>) -> LabelSelector {
    LabelSelector {
        match_labels: Some(labels.clone()),
        ..LabelSelector::default()
    }
}

/// A file taken from a [`SecretSource`], as a container sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct SecretFile {
    /// The pod volume to add; `None` when the source names a volume the pod already has.
    pub volume: Option<Volume>,
    /// Where the container mounts it.
    pub mount: VolumeMount,
    /// Path of the file inside the container.
    pub path: String,
}

/// Mounts the file of `source` at `/vt/secrets/<name>/<key>`. A Secret becomes a volume called
/// `name` holding only that key; a `volumeName` reuses that volume of the pod (from
/// extraVolumes). `field` names the spec field in errors.
pub fn secret_file(
    source: &SecretSource,
    name: &str,
    object: &str,
    field: &str,
) -> Result<SecretFile, Error> {
    let dir = format!("/vt/secrets/{name}");
    let path = format!("{dir}/{}", source.key);
    let (volume, volume_name) = match (&source.volume_name, &source.name) {
        (Some(existing), _) => (None, existing.clone()),
        (None, Some(secret)) => (
            Some(Volume {
                name: name.into(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some(secret.clone()),
                    items: Some(vec![KeyToPath {
                        key: source.key.clone(),
                        path: source.key.clone(),
                        ..KeyToPath::default()
                    }]),
                    ..SecretVolumeSource::default()
                }),
                ..Volume::default()
            }),
            name.to_string(),
        ),
        (None, None) => {
            return Err(Error::SecretSource {
                object: object.into(),
                field: field.into(),
            });
        }
    };
    Ok(SecretFile {
        volume,
        mount: VolumeMount {
            name: volume_name,
            mount_path: dir,
            read_only: Some(true),
            ..VolumeMount::default()
        },
        path,
    })
}

/// A Service for `selector`, with the user's annotations and cluster IP. A headless Service
/// keeps `None` as cluster IP unless the user asked for another.
pub fn service(
    name: String,
    namespace: &Option<String>,
    labels: BTreeMap<String, String>,
    ports: Vec<ServicePort>,
    overrides: Option<&ServiceOverrides>,
    headless: bool,
) -> Service {
    let overrides = overrides.cloned().unwrap_or_default();
    let cluster_ip = overrides
        .cluster_ip
        .or_else(|| headless.then(|| "None".to_string()));
    Service {
        metadata: meta(name, namespace, labels.clone(), overrides.annotations),
        spec: Some(ServiceSpec {
            selector: Some(labels),
            ports: Some(ports),
            cluster_ip,
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
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
        assert_eq!(volume.name, "static-auth");
        assert_eq!(
            volume.secret.unwrap().secret_name.as_deref(),
            Some("s"),
            "the Secret is mounted"
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
}
