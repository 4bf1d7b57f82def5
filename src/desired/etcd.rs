//! From an EtcdLockserver to the etcd cluster that serves it: three member Pods, each with its
//! own PVC, a client Service, a headless peer Service and a PodDisruptionBudget. The members
//! bootstrap statically (every member knows the others' names up front), like the Go operator's.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, EnvVar, ExecAction, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimVolumeSource, Pod, PodAntiAffinity, PodSpec, Probe, Service, Volume,
    VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::flags::FlagSet;
use super::podspec::{self, HOSTNAME_LABEL, ZONE_LABEL};
use super::{Error, defaults, meta};
use crate::api::etcd::EtcdLockserver;
use crate::domain::labels;

const CLIENT_PORT_NAME: &str = "client";
const PEER_PORT_NAME: &str = "peer";
const DATA_VOLUME: &str = "data";
const DATA_DIR: &str = "/var/etcd";

/// Everything an EtcdLockserver is made of.
#[derive(Clone, Debug, Default)]
pub struct EtcdObjects {
    /// Member pods, by index.
    pub pods: Vec<Pod>,
    /// One data volume claim per member pod, named like it.
    pub pvcs: Vec<PersistentVolumeClaim>,
    pub client_service: Option<Service>,
    pub peer_service: Option<Service>,
    pub pdb: Option<PodDisruptionBudget>,
}

/// The pod (and PVC) of member `index` (1-based).
pub fn member_name(lockserver: &str, index: u32) -> String {
    format!("{lockserver}-{index}")
}

/// The Service Vitess connects to.
pub fn client_service_name(lockserver: &str) -> String {
    format!("{lockserver}-client")
}

/// The headless Service that gives each member a DNS name.
pub fn peer_service_name(lockserver: &str) -> String {
    format!("{lockserver}-peer")
}

/// The PodDisruptionBudget of a lockserver (the Go operator's name for it).
pub fn pdb_name(lockserver: &str) -> String {
    format!("etcd-lockserver-{lockserver}")
}

/// Builds the members, Services and PDB of `lockserver`.
pub fn build(lockserver: &EtcdLockserver) -> Result<EtcdObjects, Error> {
    let name = lockserver
        .metadata
        .name
        .as_deref()
        .ok_or(Error::MissingName("EtcdLockserver"))?;
    let cluster = lockserver
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(labels::CLUSTER))
        .ok_or(Error::MissingLabel {
            kind: "EtcdLockserver",
            label: labels::CLUSTER,
        })?;
    let namespace = &lockserver.metadata.namespace;
    let spec = &lockserver.spec.template;

    // Selects every member; Services and the PDB use it, pods add their index.
    let selector = selector_labels(name);
    let mut common = selector.clone();
    common.insert(labels::CLUSTER.into(), cluster.clone());

    let members: Vec<u32> = match spec.local_member_index {
        Some(index) => vec![index.clamp(1, defaults::ETCD_MEMBERS as i32) as u32],
        None => (1..=defaults::ETCD_MEMBERS).collect(),
    };
    let ns = namespace.as_deref().unwrap_or("default");
    let peer_urls: Vec<String> = (1..=defaults::ETCD_MEMBERS)
        .map(|index| {
            spec.advertise_peer_urls
                .as_ref()
                .and_then(|urls| urls.get(index as usize - 1).cloned())
                .unwrap_or_else(|| member_url(name, index, ns, defaults::ETCD_PEER_PORT))
        })
        .collect();
    let initial_cluster = peer_urls
        .iter()
        .zip(1..)
        .map(|(url, index)| format!("{}={url}", member_name(name, index)))
        .collect::<Vec<_>>()
        .join(",");

    let mut objects = EtcdObjects::default();
    for index in members {
        let member = member_name(name, index);
        let mut own = common.clone();
        own.insert(labels::ETCD_INDEX.into(), index.to_string());

        let mut flags = FlagSet::plain();
        flags
            .set("name", &member)
            .set("data-dir", DATA_DIR)
            .set(
                "listen-peer-urls",
                format!("http://0.0.0.0:{}", defaults::ETCD_PEER_PORT),
            )
            .set(
                "listen-client-urls",
                format!("http://0.0.0.0:{}", defaults::ETCD_CLIENT_PORT),
            )
            .set(
                "advertise-client-urls",
                member_url(name, index, ns, defaults::ETCD_CLIENT_PORT),
            )
            .set(
                "initial-advertise-peer-urls",
                &peer_urls[index as usize - 1],
            )
            .set("initial-cluster", &initial_cluster)
            // initial-* flags only matter on the first start; later starts read the data dir.
            .set("initial-cluster-state", "new")
            .set("initial-cluster-token", name)
            .extend(spec.extra_flags.as_ref());

        let etcd = Container {
            name: "etcd".into(),
            image: Some(
                spec.image
                    .clone()
                    .unwrap_or_else(|| defaults::ETCD_IMAGE.into()),
            ),
            image_pull_policy: podspec::pull_policy(spec.image_pull_policy),
            command: Some(vec!["/usr/local/bin/etcd".into()]),
            args: Some(flags.args()),
            ports: Some(vec![
                podspec::container_port(CLIENT_PORT_NAME, defaults::ETCD_CLIENT_PORT),
                podspec::container_port(PEER_PORT_NAME, defaults::ETCD_PEER_PORT),
            ]),
            env: Some(base_env()),
            resources: Some(podspec::resources_or(
                spec.resources.as_ref(),
                defaults::ETCD_CPU,
                defaults::ETCD_MEMORY,
            )),
            readiness_probe: Some(etcdctl_probe("health", 1, 3)),
            liveness_probe: Some(etcdctl_probe("status", 300, 30)),
            volume_mounts: Some(vec![VolumeMount {
                name: DATA_VOLUME.into(),
                mount_path: DATA_DIR.into(),
                sub_path: Some("etcd".into()),
                ..VolumeMount::default()
            }]),
            ..Container::default()
        };

        // Spread members over nodes, and over zones when not pinned to one.
        let zone = lockserver.spec.zone.as_deref().filter(|z| !z.is_empty());
        let mut spread = vec![podspec::spread_term(2, &selector, HOSTNAME_LABEL)];
        if zone.is_none() {
            spread.push(podspec::spread_term(1, &selector, ZONE_LABEL));
        }
        let affinity = podspec::affinity(
            spec.pod.affinity.as_ref(),
            zone,
            Some(PodAntiAffinity {
                preferred_during_scheduling_ignored_during_execution: Some(spread),
                ..PodAntiAffinity::default()
            }),
        );

        objects.pvcs.push(PersistentVolumeClaim {
            metadata: meta(member.clone(), namespace, own.clone(), None),
            spec: Some(
                spec.data_volume_claim_template
                    .clone()
                    .unwrap_or_else(default_claim),
            ),
            status: None,
        });
        let mut pod_meta = meta(member.clone(), namespace, own, None);
        let mut pod_spec = PodSpec {
            // hostname + subdomain give each member the DNS name the URLs above use.
            hostname: Some(member.clone()),
            subdomain: Some(peer_service_name(name)),
            containers: vec![etcd],
            volumes: Some(vec![Volume {
                name: DATA_VOLUME.into(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: member.clone(),
                    ..PersistentVolumeClaimVolumeSource::default()
                }),
                ..Volume::default()
            }]),
            affinity,
            image_pull_secrets: spec.image_pull_secrets.clone(),
            ..PodSpec::default()
        };
        podspec::apply_overrides(&mut pod_meta, &mut pod_spec, &["etcd"], &spec.pod);
        objects.pods.push(Pod {
            metadata: pod_meta,
            spec: Some(pod_spec),
            status: None,
        });
    }

    if spec.create_client_service != Some(false) {
        objects.client_service = Some(podspec::service(
            client_service_name(name),
            namespace,
            selector.clone(),
            vec![podspec::service_port(
                CLIENT_PORT_NAME,
                defaults::ETCD_CLIENT_PORT,
            )],
            spec.client_service.as_ref(),
            false,
        ));
    }
    if spec.create_peer_service != Some(false) {
        // Always headless: a cluster IP would give the members no DNS names of their own.
        let annotations_only = spec.peer_service.as_ref().map(|o| {
            let mut o = o.clone();
            o.cluster_ip = None;
            o
        });
        let mut peer = podspec::service(
            peer_service_name(name),
            namespace,
            selector.clone(),
            vec![podspec::service_port(
                PEER_PORT_NAME,
                defaults::ETCD_PEER_PORT,
            )],
            annotations_only.as_ref(),
            true,
        );
        if let Some(spec) = peer.spec.as_mut() {
            // Members must find each other before any of them is ready.
            spec.publish_not_ready_addresses = Some(true);
        }
        objects.peer_service = Some(peer);
    }
    if spec.create_pdb != Some(false) {
        objects.pdb = Some(PodDisruptionBudget {
            metadata: meta(pdb_name(name), namespace, common.clone(), None),
            spec: Some(PodDisruptionBudgetSpec {
                min_available: Some(IntOrString::Int(defaults::ETCD_QUORUM)),
                selector: Some(podspec::selector(&selector)),
                ..PodDisruptionBudgetSpec::default()
            }),
            status: None,
        });
    }
    // Services are labelled like the PDB, with the cluster, so they are found as ours.
    for svc in [&mut objects.client_service, &mut objects.peer_service]
        .into_iter()
        .flatten()
    {
        svc.metadata.labels = Some(common.clone());
    }
    Ok(objects)
}

/// `http://<member>.<peer service>.<namespace>.svc:<port>`.
fn member_url(lockserver: &str, index: u32, namespace: &str, port: u16) -> String {
    format!(
        "http://{}.{}.{namespace}.svc:{port}",
        member_name(lockserver, index),
        peer_service_name(lockserver)
    )
}

/// etcd settings Vitess needs: compaction keeps the store small, the quotas leave room for
/// large topologies.
fn base_env() -> Vec<EnvVar> {
    let var = |name: &str, value: &str| EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..EnvVar::default()
    };
    vec![
        var("ETCD_AUTO_COMPACTION_MODE", "revision"),
        var("ETCD_AUTO_COMPACTION_RETENTION", "1000"),
        var("ETCD_QUOTA_BACKEND_BYTES", "8589934592"),
        var("ETCD_MAX_REQUEST_BYTES", "8388608"),
        var("ETCDCTL_API", "3"),
    ]
}

fn etcdctl_probe(what: &str, initial_delay: i32, failures: i32) -> Probe {
    Probe {
        exec: Some(ExecAction {
            command: Some(vec!["etcdctl".into(), "endpoint".into(), what.into()]),
        }),
        initial_delay_seconds: Some(initial_delay),
        period_seconds: Some(5),
        timeout_seconds: Some(5),
        failure_threshold: Some(failures),
        ..Probe::default()
    }
}

fn default_claim() -> PersistentVolumeClaimSpec {
    PersistentVolumeClaimSpec {
        access_modes: Some(vec!["ReadWriteOnce".into()]),
        resources: Some(VolumeResourceRequirements {
            requests: Some(podspec::quantities(&[("storage", defaults::ETCD_STORAGE)])),
            ..VolumeResourceRequirements::default()
        }),
        ..PersistentVolumeClaimSpec::default()
    }
}

/// The labels that select every member of the lockserver.
pub fn selector_labels(lockserver: &str) -> BTreeMap<String, String> {
    labels::set(&[
        (labels::COMPONENT, labels::component::ETCD),
        (labels::ETCD_LOCKSERVER, lockserver),
    ])
}

#[cfg(test)]
mod tests;
