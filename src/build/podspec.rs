//! Pieces every component's pods and Services share: pull policies, probes, ports, default
//! resources, zone affinity, mounted secret files, env and label merging.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, ContainerPort, EnvVar, HTTPGetAction, KeyToPath, NodeAffinity, NodeSelector,
    NodeSelectorRequirement, NodeSelectorTerm, PodAffinityTerm, PodAntiAffinity,
    PodSecurityContext, Probe, ResourceRequirements, SecretVolumeSource, Service, ServicePort,
    ServiceSpec, Volume, VolumeMount, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Error, defaults, meta};
use crate::api::shared::{PullPolicy, Resources, SecretSource, ServiceOverrides, StringMap};

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
        let ours = crate::labels::set(&[("planetscale.com/component", "vtgate")]);
        let extra: StringMap = [
            ("planetscale.com/component".to_string(), "mine".to_string()),
            ("team".to_string(), "db".to_string()),
        ]
        .into();
        let got = merge_labels(&ours, Some(&extra));
        assert_eq!(got["planetscale.com/component"], "vtgate");
        assert_eq!(got["team"], "db");
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
