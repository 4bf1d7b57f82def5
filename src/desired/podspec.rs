//! Pieces every component's pods and Services share: pull policies, probes, ports, default
//! resources, zone affinity, mounted secret files, env and label merging, and the user's
//! [`PodOverrides`] applied to a pod the operator built.

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

/// A CPU quantity in whole cores, rounded up as Kubernetes rounds it (`1500m` and `1.5` are 2,
/// `100m` is 1, `0` is 0); `None` when it is not a plain or milli quantity.
pub fn whole_cpus(quantity: &Quantity) -> Option<u64> {
    let text = quantity.0.trim();
    if let Some(millis) = text.strip_suffix('m') {
        return millis.parse::<u64>().ok().map(|m| m.div_ceil(1000));
    }
    let cores: f64 = text.parse().ok()?;
    (cores.is_finite() && cores >= 0.0).then(|| cores.ceil() as u64)
}

/// A storage quantity in bytes (`5Gi`, `500M`, `1.5Gi`, `1e9`, `1073741824`), rounded up to
/// a whole byte as Kubernetes compares them; `None` when it is not a quantity.
pub fn bytes(quantity: &Quantity) -> Option<u128> {
    let text = quantity.0.trim();
    let (number, factor): (&str, u128) = [
        ("Ki", 1u128 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("Pi", 1 << 50),
        ("Ei", 1 << 60),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
        ("P", 1_000_000_000_000_000),
        ("E", 1_000_000_000_000_000_000),
    ]
    .iter()
    .find_map(|(suffix, factor)| text.strip_suffix(suffix).map(|n| (n, *factor)))
    .unwrap_or((text, 1));
    if let Some((whole, fraction)) = number.split_once('.') {
        // Exactly, in units of 10^-digits: `1.5Gi` is 15 × 2^30 / 10.
        let digits = u32::try_from(fraction.len()).ok()?;
        let scale = 10u128.checked_pow(digits)?;
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        let fraction: u128 = if fraction.is_empty() {
            0
        } else {
            fraction.parse().ok()?
        };
        let scaled = whole.checked_mul(scale)?.checked_add(fraction)?;
        return Some(scaled.checked_mul(factor)?.div_ceil(scale));
    }
    if let Some((mantissa, exponent)) = number.split_once(['e', 'E']) {
        let power = 10u128.checked_pow(exponent.parse().ok()?)?;
        return mantissa
            .parse::<u128>()
            .ok()?
            .checked_mul(power)?
            .checked_mul(factor);
    }
    number.parse::<u128>().ok()?.checked_mul(factor)
}

/// Mode of secret files: read-only, for every user.
const SECRET_FILE_MODE: i32 = 0o444;

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
/// `<name>-secret` (the Go operator's name) holding only that key, readable by all (mode 0444:
/// the containers run as another user than the kubelet's); a `volumeName` reuses that volume
/// of the pod (from extraVolumes). `field` names the spec field in errors.
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
                name: format!("{name}-secret"),
                secret: Some(SecretVolumeSource {
                    secret_name: Some(secret.clone()),
                    default_mode: Some(SECRET_FILE_MODE),
                    items: Some(vec![KeyToPath {
                        key: source.key.clone(),
                        path: source.key.clone(),
                        ..KeyToPath::default()
                    }]),
                    ..SecretVolumeSource::default()
                }),
                ..Volume::default()
            }),
            format!("{name}-secret"),
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
mod tests;
