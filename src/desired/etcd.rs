//! From an EtcdLockserver to the etcd cluster that serves it: three member Pods, each with its
//! own PVC, a client Service, a headless peer Service and a PodDisruptionBudget. The members
//! bootstrap statically (every member knows the others' names up front), like the Go operator's.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, Container, EnvVar, ExecAction, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimVolumeSource, Pod, PodAntiAffinity, PodSpec, Probe, Service, Volume,
    VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::flags::FlagSet;
use super::podspec::{self, HOSTNAME_LABEL, ZONE_LABEL};
use super::{Error, defaults, meta};
use crate::api::etcd::{EtcdLockserver, EtcdLockserverTemplate};
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
    let parts = Parts::of(lockserver)?;
    let spec = parts.spec;
    let members: Vec<u32> = match spec.local_member_index {
        Some(index) => vec![index.clamp(1, defaults::ETCD_MEMBERS as i32) as u32],
        None => (1..=defaults::ETCD_MEMBERS).collect(),
    };
    let mut objects = EtcdObjects::default();
    for index in members {
        let (pod, pvc) = parts.member(index);
        objects.pvcs.push(pvc);
        objects.pods.push(pod);
    }
    if spec.create_client_service != Some(false) {
        objects.client_service = Some(parts.client_service());
    }
    if spec.create_peer_service != Some(false) {
        objects.peer_service = Some(parts.peer_service());
    }
    if spec.create_pdb != Some(false) {
        objects.pdb = Some(parts.pdb());
    }
    // Services are labelled like the PDB, with the cluster, so they are found as ours.
    for svc in [&mut objects.client_service, &mut objects.peer_service]
        .into_iter()
        .flatten()
    {
        svc.metadata.labels = Some(parts.common.clone());
    }
    Ok(objects)
}

/// What every part of one lockserver is built from.
struct Parts<'a> {
    lockserver: &'a EtcdLockserver,
    name: &'a str,
    namespace: &'a Option<String>,
    /// The namespace in member URLs.
    ns: &'a str,
    spec: &'a EtcdLockserverTemplate,
    /// Selects every member; Services and the PDB use it, pods add their index.
    selector: BTreeMap<String, String>,
    /// The selector and the cluster label.
    common: BTreeMap<String, String>,
    /// Every member's peer URL, by index - 1.
    peer_urls: Vec<String>,
    /// `--initial-cluster`: every member's name and peer URL.
    initial_cluster: String,
}

impl<'a> Parts<'a> {
    fn of(lockserver: &'a EtcdLockserver) -> Result<Self, Error> {
        let name = lockserver
            .metadata
            .name
            .as_deref()
            .ok_or(Error::MissingName("EtcdLockserver"))?;
        let cluster = super::label(&lockserver.metadata, "EtcdLockserver", labels::CLUSTER)?;
        let namespace = &lockserver.metadata.namespace;
        let spec = &lockserver.spec.template;
        let selector = selector_labels(name);
        let mut common = selector.clone();
        common.insert(labels::CLUSTER.into(), cluster.to_string());
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
        Ok(Self {
            lockserver,
            name,
            namespace,
            ns,
            spec,
            selector,
            common,
            peer_urls,
            initial_cluster,
        })
    }

    /// Member `index`'s Pod and its data claim.
    fn member(&self, index: u32) -> (Pod, PersistentVolumeClaim) {
        let (name, namespace, spec) = (self.name, self.namespace, self.spec);
        let member = member_name(name, index);
        let mut own = self.common.clone();
        own.insert(labels::ETCD_INDEX.into(), index.to_string());
        let pvc = PersistentVolumeClaim {
            metadata: meta(member.clone(), namespace, own.clone(), None),
            spec: Some(
                spec.data_volume_claim_template
                    .clone()
                    .unwrap_or_else(default_claim),
            ),
            status: None,
        };
        let mut pod_meta = meta(member.clone(), namespace, own, None);
        let mut pod_spec = PodSpec {
            // hostname + subdomain give each member the DNS name the URLs use.
            hostname: Some(member.clone()),
            subdomain: Some(peer_service_name(name)),
            containers: vec![self.container(index, &member)],
            volumes: Some(vec![Volume {
                name: DATA_VOLUME.into(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: member.clone(),
                    ..PersistentVolumeClaimVolumeSource::default()
                }),
                ..Volume::default()
            }]),
            affinity: self.affinity(),
            image_pull_secrets: spec.image_pull_secrets.clone(),
            priority_class_name: defaults::vitess_priority_class(),
            ..PodSpec::default()
        };
        podspec::apply_overrides(&mut pod_meta, &mut pod_spec, &["etcd"], &spec.pod);
        let mut pod = Pod {
            metadata: pod_meta,
            spec: Some(pod_spec),
            status: None,
        };
        // The spec the member was built from: a member pod of ours whose hash differs is out
        // of date and is recreated in a rolling update, never applied over (a pod's spec is
        // immutable; see controller::etcd). Labels and annotations are applied in place.
        let hash = super::content_hash(&pod.spec);
        pod.metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(labels::rollout::DESIRED_STATE_HASH.into(), hash);
        (pod, pvc)
    }

    /// Member `index`'s etcd flags: static bootstrap from the member URLs.
    fn flags(&self, index: u32, member: &str) -> FlagSet {
        let (name, ns) = (self.name, self.ns);
        let mut flags = FlagSet::plain();
        flags
            .set("name", member)
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
                &self.peer_urls[index as usize - 1],
            )
            .set("initial-cluster", &self.initial_cluster)
            // initial-* flags only matter on the first start; later starts read the data dir.
            .set("initial-cluster-state", "new")
            .set("initial-cluster-token", name)
            .extend(self.spec.extra_flags.as_ref());
        flags
    }

    /// Member `index`'s etcd container.
    fn container(&self, index: u32, member: &str) -> Container {
        let spec = self.spec;
        Container {
            name: "etcd".into(),
            image: Some(
                spec.image
                    .clone()
                    .unwrap_or_else(|| defaults::ETCD_IMAGE.into()),
            ),
            image_pull_policy: podspec::pull_policy(spec.image_pull_policy),
            command: Some(vec!["/usr/local/bin/etcd".into()]),
            args: Some(self.flags(index, member).args()),
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
        }
    }

    /// Spread members over nodes, and over zones when not pinned to one.
    fn affinity(&self) -> Option<Affinity> {
        let zone = self
            .lockserver
            .spec
            .zone
            .as_deref()
            .filter(|z| !z.is_empty());
        let mut spread = vec![podspec::spread_term(2, &self.selector, HOSTNAME_LABEL)];
        if zone.is_none() {
            spread.push(podspec::spread_term(1, &self.selector, ZONE_LABEL));
        }
        podspec::affinity(
            self.spec.pod.affinity.as_ref(),
            zone,
            Some(PodAntiAffinity {
                preferred_during_scheduling_ignored_during_execution: Some(spread),
                ..PodAntiAffinity::default()
            }),
        )
    }

    /// The Service Vitess connects to.
    fn client_service(&self) -> Service {
        podspec::service(
            client_service_name(self.name),
            self.namespace,
            self.selector.clone(),
            vec![podspec::service_port(
                CLIENT_PORT_NAME,
                defaults::ETCD_CLIENT_PORT,
            )],
            self.spec.client_service.as_ref(),
            false,
        )
    }

    /// The headless Service that gives each member its DNS name.
    fn peer_service(&self) -> Service {
        // Always headless: a cluster IP would give the members no DNS names of their own.
        let annotations_only = self.spec.peer_service.as_ref().map(|o| {
            let mut o = o.clone();
            o.cluster_ip = None;
            o
        });
        let mut peer = podspec::service(
            peer_service_name(self.name),
            self.namespace,
            self.selector.clone(),
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
        peer
    }

    /// Keeps a quorum of members up through voluntary disruptions.
    fn pdb(&self) -> PodDisruptionBudget {
        PodDisruptionBudget {
            metadata: meta(
                pdb_name(self.name),
                self.namespace,
                self.common.clone(),
                None,
            ),
            spec: Some(PodDisruptionBudgetSpec {
                min_available: Some(IntOrString::Int(defaults::ETCD_QUORUM)),
                selector: Some(podspec::selector(&self.selector)),
                ..PodDisruptionBudgetSpec::default()
            }),
            status: None,
        }
    }
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
