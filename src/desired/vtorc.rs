//! vtorc, Vitess' orchestrator, for one shard: a Deployment per cell that has a replica pool
//! of the shard. vtorc repairs what breaks between reparents: a primary that came back
//! read-only after its pod was replaced, replicas still pointing at a primary's old address,
//! a dead primary (EmergencyReparentShard). As in the Go operator, every shard gets one:
//! Vitess treats vtorc as a mandatory component, so `vitessOrchestrator` only tunes it.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use kube::api::ObjectMeta;

use super::flags::FlagSet;
use super::podspec::{self, WEB_PORT_NAME};
use super::{Error, ShardIdentity, defaults, meta};
use crate::api::keyspace::VitessOrchestratorSpec;
use crate::api::shard::TabletPoolType;
use crate::api::shard::VitessShard;
use crate::domain::{labels, names};

/// The vtorc Deployments of `shard`, one per cell with a replica pool, in pool order.
pub fn build(shard: &VitessShard) -> Result<Vec<Deployment>, Error> {
    let id = ShardIdentity::of(shard)?;
    let spec = &shard.spec;
    let mut cells: Vec<&str> = Vec::new();
    for pool in &spec.template.tablet_pools {
        if pool.type_ == TabletPoolType::Replica && !cells.contains(&pool.cell.as_str()) {
            cells.push(&pool.cell);
        }
    }
    let parts = Parts {
        shard,
        vtorc: spec.vitess_orchestrator.clone().unwrap_or_default(),
        safe: id.range.safe_name(),
        id: &id,
    };
    Ok(cells
        .into_iter()
        .map(|cell| parts.deployment(cell))
        .collect())
}

/// What every vtorc Deployment of a shard is built from.
struct Parts<'a> {
    shard: &'a VitessShard,
    vtorc: VitessOrchestratorSpec,
    /// The shard's name in object names.
    safe: String,
    id: &'a ShardIdentity<'a>,
}

impl Parts<'_> {
    /// vtorc's container in `cell`.
    fn container(&self, cell: &str) -> Container {
        let (spec, vtorc, id) = (&self.shard.spec, &self.vtorc, self.id);
        let image = spec
            .images
            .vtorc
            .clone()
            .unwrap_or_else(|| defaults::VITESS_IMAGE.into());
        let pull_policy = spec.image_pull_policies.as_ref().and_then(|p| p.vtorc);
        let mut flags = FlagSet::vitess();
        flags
            .global_topo(&spec.global_lockserver)
            .set("port", defaults::WEB_PORT)
            .set("cell", cell)
            .set("clusters-to-watch", format!("{}/{}", id.keyspace, id.range))
            .set("logtostderr", true)
            .extend(spec.extra_vitess_flags.as_ref())
            .extend(vtorc.extra_flags.as_ref());
        Container {
            name: "vtorc".into(),
            image: Some(image),
            image_pull_policy: podspec::pull_policy(pull_policy),
            command: Some(vec!["/vt/bin/vtorc".into()]),
            args: Some(flags.args()),
            ports: Some(vec![podspec::container_port(
                WEB_PORT_NAME,
                defaults::WEB_PORT,
            )]),
            resources: Some(podspec::resources_or(
                vtorc.resources.as_ref(),
                defaults::VTORC_CPU,
                defaults::VTORC_MEMORY,
            )),
            readiness_probe: Some(podspec::http_probe("/debug/health", WEB_PORT_NAME)),
            liveness_probe: Some(podspec::patient_liveness("/debug/liveness", WEB_PORT_NAME)),
            ..Container::default()
        }
    }

    /// vtorc's Deployment in `cell`.
    fn deployment(&self, cell: &str) -> Deployment {
        let (spec, vtorc, id, safe) = (&self.shard.spec, &self.vtorc, self.id, &self.safe);
        let own = labels::set(&[
            (labels::COMPONENT, labels::component::VTORC),
            (labels::CLUSTER, id.cluster),
            (labels::KEYSPACE, id.keyspace),
            (labels::SHARD, safe),
            (labels::CELL, cell),
        ]);
        let mut pod_meta = ObjectMeta {
            labels: Some(own.clone()),
            ..ObjectMeta::default()
        };
        let mut pod_spec = PodSpec {
            containers: vec![self.container(cell)],
            affinity: podspec::affinity(
                vtorc.pod.affinity.as_ref(),
                spec.zone_map.get(cell).map(String::as_str),
                None,
            ),
            image_pull_secrets: spec.image_pull_secrets.clone(),
            security_context: Some(podspec::vitess_pod_security()),
            priority_class_name: defaults::vitess_priority_class(),
            ..PodSpec::default()
        };
        podspec::apply_overrides(&mut pod_meta, &mut pod_spec, &["vtorc"], &vtorc.pod);
        Deployment {
            metadata: meta(
                names::cluster::vtorc_deployment(id.cluster, id.keyspace, safe, cell),
                &self.shard.metadata.namespace,
                own.clone(),
                None,
            ),
            spec: Some(DeploymentSpec {
                // Old ReplicaSets are never rolled back to by the operator; keep none.
                revision_history_limit: Some(0),
                selector: podspec::selector(&own),
                template: PodTemplateSpec {
                    metadata: Some(pod_meta),
                    spec: Some(pod_spec),
                },
                ..DeploymentSpec::default()
            }),
            status: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::keyspace::VitessOrchestratorSpec;
    use crate::api::shard::VitessShardTabletPool;
    use crate::api::shared::VitessLockserverParams;

    fn shard(pools: &[(&str, TabletPoolType)]) -> VitessShard {
        let mut shard = VitessShard::new("example-commerce-x-80-0f5afee6", Default::default());
        shard.metadata.namespace = Some("default".into());
        shard.metadata.labels = Some(labels::set(&[
            (labels::CLUSTER, "example"),
            (labels::KEYSPACE, "commerce"),
        ]));
        shard.spec.name = "-80".into();
        shard.spec.key_range.end = "80".into();
        shard.spec.global_lockserver = VitessLockserverParams {
            implementation: "etcd2".into(),
            address: "example-etcd-faf13de3-client.default.svc:2379".into(),
            root_path: "/vitess/example/global".into(),
        };
        shard.spec.zone_map = [("zone1".to_string(), "us-east-1a".to_string())].into();
        shard.spec.template.tablet_pools = pools
            .iter()
            .map(|(cell, type_)| VitessShardTabletPool {
                cell: (*cell).into(),
                type_: *type_,
                replicas: 1,
                ..VitessShardTabletPool::default()
            })
            .collect();
        shard
    }

    fn args(d: &Deployment) -> Vec<String> {
        d.spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers[0]
            .args
            .clone()
            .unwrap()
    }

    #[test]
    fn one_per_cell_with_a_replica_pool_with_the_go_operator_name() {
        let built = build(&shard(&[
            ("zone1", TabletPoolType::Replica),
            ("zone1", TabletPoolType::Rdonly),
            ("zone1", TabletPoolType::Replica),
            ("zone2", TabletPoolType::Rdonly),
            ("zone3", TabletPoolType::Replica),
        ]))
        .unwrap();
        let names: Vec<String> = built
            .iter()
            .map(|d| d.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                names::join(&["example", "commerce", "x-80", "zone1", "vtorc"]),
                names::join(&["example", "commerce", "x-80", "zone3", "vtorc"]),
            ]
        );
        assert!(names[0].starts_with("example-commerce-x-80-zone1-vtorc-"));
        let labels = built[0].metadata.labels.as_ref().unwrap();
        assert_eq!(labels[labels::COMPONENT], "vtorc");
        assert_eq!(labels[labels::SHARD], "x-80");
        assert_eq!(labels[labels::CELL], "zone1");
    }

    #[test]
    fn watches_its_shard_through_the_global_topology() {
        let mut s = shard(&[("zone1", TabletPoolType::Replica)]);
        s.spec.vitess_orchestrator = Some(VitessOrchestratorSpec {
            extra_flags: Some([("instance-poll-time".to_string(), "1s".to_string())].into()),
            ..VitessOrchestratorSpec::default()
        });
        let built = build(&s).unwrap();
        let args = args(&built[0]);
        for want in [
            "--topo-implementation=etcd2",
            "--topo-global-server-address=example-etcd-faf13de3-client.default.svc:2379",
            "--topo-global-root=/vitess/example/global",
            "--port=15000",
            "--cell=zone1",
            "--clusters-to-watch=commerce/-80",
            "--instance-poll-time=1s",
        ] {
            assert!(args.iter().any(|a| a == want), "{want} not in {args:?}");
        }
        let pod = built[0]
            .spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap();
        // The cell's zone, as for every other Vitess pod of the cell.
        let affinity = serde_json::to_string(&pod.affinity).unwrap();
        assert!(affinity.contains("us-east-1a"), "{affinity}");
        let resources = pod.containers[0].resources.as_ref().unwrap();
        assert_eq!(resources.requests.as_ref().unwrap()["cpu"].0, "100m");
        assert_eq!(resources.limits.as_ref().unwrap()["memory"].0, "128Mi");
    }

    #[test]
    fn a_shard_without_replica_pools_has_none() {
        assert!(
            build(&shard(&[("zone1", TabletPoolType::Rdonly)]))
                .unwrap()
                .is_empty()
        );
    }
}
