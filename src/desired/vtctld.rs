//! From a VitessCluster to vtctld, Vitess' control daemon (the operator's own way into Vitess):
//! one Deployment per dashboard cell and one cluster-wide Service in front of them all.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec, Service};
use kube::api::ObjectMeta;

use super::backup;
use super::cluster::resolved_images;
use super::flags::FlagSet;
use super::podspec::{self, GRPC_PORT_NAME, WEB_PORT_NAME};
use super::{Error, cluster_name, defaults, meta};
use crate::api::cell::VitessCellTemplate;
use crate::api::cluster::{VitessCluster, VitessClusterSpec, VitessDashboardSpec};
use crate::api::shared::{VitessImages, VitessLockserverParams};
use crate::domain::labels;
use crate::domain::names;

/// vtctld of a cluster.
#[derive(Clone, Debug)]
pub struct VtctldObjects {
    /// One per dashboard cell, in the order the spec lists the cells.
    pub deployments: Vec<Deployment>,
    /// The cluster-wide Service over every vtctld.
    pub service: Service,
}

/// Builds vtctld for `cluster`, which reaches its topology through `topo`.
pub fn build(
    cluster: &VitessCluster,
    topo: &VitessLockserverParams,
) -> Result<VtctldObjects, Error> {
    let name = cluster_name(cluster)?;
    let spec = &cluster.spec;
    let dashboard = spec.vitess_dashboard.clone().unwrap_or_default();
    let cells: Vec<String> = match &dashboard.cells {
        Some(cells) => cells.clone(),
        None => spec.cells.iter().map(|c| c.name.clone()).collect(),
    };
    let parts = Parts {
        name,
        namespace: &cluster.metadata.namespace,
        spec,
        topo,
        images: resolved_images(spec.images.as_ref()),
        storage: storage(cluster, name)?,
        dashboard,
    };
    let mut deployments = Vec::with_capacity(cells.len());
    for cell in &cells {
        let template =
            spec.cells
                .iter()
                .find(|c| &c.name == cell)
                .ok_or_else(|| Error::UnknownCell {
                    cluster: name.into(),
                    cell: cell.clone(),
                })?;
        deployments.push(parts.deployment(cell, template));
    }
    Ok(VtctldObjects {
        deployments,
        service: parts.service(),
    })
}

/// vtctld answers GetBackups and BackupShard from one location: the unnamed one, else the
/// first.
fn storage(cluster: &VitessCluster, name: &str) -> Result<backup::BackupStorage, Error> {
    let locations = cluster
        .spec
        .backup
        .as_ref()
        .map(|b| b.locations.as_slice())
        .unwrap_or_default();
    Ok(
        match locations
            .iter()
            .find(|l| l.name.is_empty())
            .or(locations.first())
        {
            Some(location) => backup::storage(location, name, &format!("VitessCluster/{name}"))?,
            None => backup::BackupStorage::default(),
        },
    )
}

/// What every vtctld Deployment and the Service are built from.
struct Parts<'a> {
    name: &'a str,
    namespace: &'a Option<String>,
    spec: &'a VitessClusterSpec,
    topo: &'a VitessLockserverParams,
    dashboard: VitessDashboardSpec,
    images: VitessImages,
    storage: backup::BackupStorage,
}

impl Parts<'_> {
    /// vtctld's flags in `cell`.
    fn flags(&self, cell: &str) -> FlagSet {
        let mut flags = FlagSet::vitess();
        flags
            .vitess_common(self.topo)
            .set("cell", cell)
            .set("service-map", "grpc-vtctl,grpc-vtctld");
        self.storage.apply_flags(&mut flags);
        flags
            .extend(self.spec.extra_vitess_flags.as_ref())
            .extend(self.dashboard.extra_flags.as_ref());
        flags
    }

    /// The vtctld container of `cell`.
    fn container(&self, cell: &str) -> Container {
        let (dashboard, storage) = (&self.dashboard, &self.storage);
        let pull_policy = self
            .spec
            .image_pull_policies
            .as_ref()
            .and_then(|p| p.vtctld);
        Container {
            name: "vtctld".into(),
            image: self.images.vtctld.clone(),
            image_pull_policy: podspec::pull_policy(pull_policy),
            command: Some(vec!["/vt/bin/vtctld".into()]),
            args: Some(self.flags(cell).args()),
            ports: Some(vec![
                podspec::container_port(WEB_PORT_NAME, defaults::WEB_PORT),
                podspec::container_port(GRPC_PORT_NAME, defaults::GRPC_PORT),
            ]),
            resources: Some(podspec::resources_or(
                dashboard.resources.as_ref(),
                defaults::VTCTLD_CPU,
                defaults::VTCTLD_MEMORY,
            )),
            readiness_probe: Some(podspec::http_probe("/debug/health", WEB_PORT_NAME)),
            liveness_probe: Some(podspec::patient_liveness("/debug/status", WEB_PORT_NAME)),
            env: (!storage.env.is_empty()).then(|| storage.env.clone()),
            volume_mounts: (!storage.mounts.is_empty()).then(|| storage.mounts.clone()),
            ..Container::default()
        }
    }

    /// The vtctld Deployment of `cell`.
    fn deployment(&self, cell: &str, template: &VitessCellTemplate) -> Deployment {
        let (name, dashboard) = (self.name, &self.dashboard);
        let own = labels::set(&[
            (labels::COMPONENT, labels::component::VTCTLD),
            (labels::CLUSTER, name),
            (labels::CELL, cell),
        ]);
        let mut pod_meta = ObjectMeta {
            labels: Some(own.clone()),
            ..ObjectMeta::default()
        };
        let mut pod_spec = PodSpec {
            containers: vec![self.container(cell)],
            volumes: (!self.storage.volumes.is_empty()).then(|| self.storage.volumes.clone()),
            affinity: podspec::affinity(
                dashboard.pod.affinity.as_ref(),
                template.zone.as_deref(),
                None,
            ),
            image_pull_secrets: self.spec.image_pull_secrets.clone(),
            security_context: Some(podspec::vitess_pod_security()),
            ..PodSpec::default()
        };
        podspec::apply_overrides(&mut pod_meta, &mut pod_spec, &["vtctld"], &dashboard.pod);
        Deployment {
            metadata: meta(
                names::cluster::vtctld_deployment(name, cell),
                self.namespace,
                own.clone(),
                None,
            ),
            spec: Some(DeploymentSpec {
                replicas: Some(dashboard.replicas.unwrap_or(defaults::VTCTLD_REPLICAS)),
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

    /// The cluster-wide Service over every vtctld.
    fn service(&self) -> Service {
        podspec::service(
            names::cluster::vtctld_service(self.name),
            self.namespace,
            labels::set(&[
                (labels::COMPONENT, labels::component::VTCTLD),
                (labels::CLUSTER, self.name),
            ]),
            vec![
                podspec::service_port(WEB_PORT_NAME, defaults::WEB_PORT),
                podspec::service_port(GRPC_PORT_NAME, defaults::GRPC_PORT),
            ],
            self.dashboard.service.as_ref(),
            false,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::cell::VitessCellTemplate;
    use crate::api::cluster::VitessDashboardSpec;
    use crate::api::shared::{PodOverrides, PullPolicy, VitessImagePullPolicies};
    use crate::desired::lockserver;
    use k8s_openapi::api::core::v1::{EnvVar, TopologySpreadConstraint};

    fn cluster(dashboard: Option<VitessDashboardSpec>) -> VitessCluster {
        let mut cluster = VitessCluster::new("example", Default::default());
        cluster.metadata.namespace = Some("default".into());
        cluster.spec.cells = vec![
            VitessCellTemplate {
                name: "zone1".into(),
                zone: Some("us-east-1a".into()),
                ..VitessCellTemplate::default()
            },
            VitessCellTemplate {
                name: "zone2".into(),
                ..VitessCellTemplate::default()
            },
        ];
        cluster.spec.vitess_dashboard = dashboard;
        cluster.spec.extra_vitess_flags = Some(
            [
                ("grpc_max_message_size".to_string(), "1".to_string()),
                ("cell".to_string(), "cluster-wide".to_string()),
            ]
            .into(),
        );
        cluster
    }

    fn built(cluster: &VitessCluster) -> VtctldObjects {
        build(cluster, &lockserver::global(cluster).unwrap()).unwrap()
    }

    fn container(deployment: &Deployment) -> &Container {
        &deployment
            .spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers[0]
    }

    #[test]
    fn backup_storage_reaches_vtctld() {
        use crate::api::backupstorage::{GcsBackupLocation, VitessBackupLocation};
        use crate::api::cluster::ClusterBackupSpec;
        use crate::api::shared::SecretSource;
        let mut c = cluster(None);
        assert!(
            !container(&built(&c).deployments[0])
                .args
                .as_ref()
                .unwrap()
                .iter()
                .any(|a| a.contains("backup"))
        );
        c.spec.backup = Some(ClusterBackupSpec {
            locations: vec![VitessBackupLocation {
                gcs: Some(GcsBackupLocation {
                    bucket: "bkt".into(),
                    key_prefix: None,
                    auth_secret: Some(SecretSource {
                        name: Some("gcs-auth".into()),
                        volume_name: None,
                        key: "gcs_key.json".into(),
                    }),
                }),
                ..VitessBackupLocation::default()
            }],
            ..ClusterBackupSpec::default()
        });
        let objects = built(&c);
        let deployment = &objects.deployments[0];
        let vtctld = container(deployment);
        let args = vtctld.args.as_ref().unwrap();
        let backup: Vec<&String> = args.iter().filter(|a| a.contains("backup")).collect();
        assert_eq!(
            backup,
            [
                "--backup-storage-implementation=gcs",
                "--gcs-backup-storage-bucket=bkt",
                "--gcs-backup-storage-root=example",
            ]
        );
        let env = vtctld.env.as_ref().unwrap();
        assert_eq!(env[0].name, "GOOGLE_APPLICATION_CREDENTIALS");
        assert_eq!(
            vtctld.volume_mounts.as_ref().unwrap()[0].read_only,
            Some(true)
        );
        let pod = deployment
            .spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap();
        assert_eq!(
            pod.volumes.as_ref().unwrap()[0]
                .secret
                .as_ref()
                .unwrap()
                .secret_name
                .as_deref(),
            Some("gcs-auth")
        );
    }

    #[test]
    fn one_deployment_per_cell_by_default() {
        let objects = built(&cluster(None));
        let names: Vec<&str> = objects
            .deployments
            .iter()
            .map(|d| d.metadata.name.as_deref().unwrap())
            .collect();
        assert_eq!(names[0], "example-zone1-vtctld-1d4dcad0");
        assert_eq!(names.len(), 2);
        let d = &objects.deployments[0];
        let spec = d.spec.as_ref().unwrap();
        assert_eq!(spec.replicas, Some(1));
        let labels = d.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["planetscale.com/component"], "vtctld");
        assert_eq!(labels["planetscale.com/cluster"], "example");
        assert_eq!(labels["planetscale.com/cell"], "zone1");
        assert_eq!(spec.selector.match_labels.as_ref(), Some(labels));

        let c = container(d);
        let args = c.args.as_ref().unwrap();
        for want in [
            "--topo-implementation=etcd2",
            "--topo-global-server-address=example-etcd-faf13de3-client.default.svc:2379",
            "--topo-global-root=/vitess/example/global",
            "--port=15000",
            "--grpc-port=15999",
            "--service-map=grpc-vtctl,grpc-vtctld",
            "--logtostderr=true",
            // extraVitessFlags, normalised to Vitess' dashed spelling.
            "--grpc-max-message-size=1",
            // extraVitessFlags apply over the operator's own flags.
            "--cell=cluster-wide",
        ] {
            assert!(
                args.contains(&want.to_string()),
                "{want} missing from {args:?}"
            );
        }
        assert_eq!(c.image.as_deref(), Some(defaults::VITESS_IMAGE));
        let ports: Vec<i32> = c
            .ports
            .as_ref()
            .unwrap()
            .iter()
            .map(|p| p.container_port)
            .collect();
        assert_eq!(ports, [15000, 15999]);
        let probe = c
            .readiness_probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap();
        assert_eq!(probe.path.as_deref(), Some("/debug/health"));
        let requests = c.resources.as_ref().unwrap().requests.clone().unwrap();
        assert_eq!(requests["cpu"].0, "100m");
        assert_eq!(requests["memory"].0, "128Mi");

        // zone1 has a zone, zone2 none.
        let pod = |i: usize| {
            objects.deployments[i]
                .spec
                .as_ref()
                .unwrap()
                .template
                .spec
                .clone()
                .unwrap()
        };
        assert!(pod(0).affinity.unwrap().node_affinity.is_some());
        assert!(pod(1).affinity.is_none());
        assert!(pod(0).priority_class_name.is_none());
    }

    #[test]
    fn dashboard_settings_win() {
        let objects = built(&cluster(Some(VitessDashboardSpec {
            cells: Some(vec!["zone2".into()]),
            replicas: Some(3),
            extra_flags: Some(
                [
                    ("cell".to_string(), "mine".to_string()),
                    ("security_policy".to_string(), "read-only".to_string()),
                ]
                .into(),
            ),
            ..VitessDashboardSpec::default()
        })));
        assert_eq!(objects.deployments.len(), 1);
        let d = &objects.deployments[0];
        assert_eq!(d.spec.as_ref().unwrap().replicas, Some(3));
        let args = container(d).args.clone().unwrap();
        assert!(args.contains(&"--cell=mine".to_string()));
        assert!(args.contains(&"--security-policy=read-only".to_string()));
        assert_eq!(args.iter().filter(|a| a.starts_with("--cell=")).count(), 1);
    }

    #[test]
    fn pod_overrides_reach_the_deployment() {
        let objects = built(&cluster(Some(VitessDashboardSpec {
            pod: PodOverrides {
                topology_spread_constraints: Some(vec![TopologySpreadConstraint {
                    max_skew: 1,
                    topology_key: "topology.kubernetes.io/zone".into(),
                    when_unsatisfiable: "ScheduleAnyway".into(),
                    ..TopologySpreadConstraint::default()
                }]),
                extra_env: Some(vec![EnvVar {
                    name: "FOO".into(),
                    value: Some("bar".into()),
                    ..EnvVar::default()
                }]),
                ..PodOverrides::default()
            },
            ..VitessDashboardSpec::default()
        })));
        let d = &objects.deployments[0];
        let pod = d.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
        let constraints = pod.topology_spread_constraints.as_ref().unwrap();
        assert_eq!(constraints.len(), 1);
        assert_eq!(constraints[0].topology_key, "topology.kubernetes.io/zone");
        assert_eq!(constraints[0].when_unsatisfiable, "ScheduleAnyway");
        let env = container(d).env.as_ref().unwrap();
        assert_eq!(env[0].name, "FOO");
    }

    #[test]
    fn service_and_pull_policy() {
        let mut c = cluster(None);
        c.spec.image_pull_policies = Some(VitessImagePullPolicies {
            vtctld: Some(PullPolicy::Always),
            ..VitessImagePullPolicies::default()
        });
        let objects = built(&c);
        assert_eq!(
            container(&objects.deployments[0])
                .image_pull_policy
                .as_deref(),
            Some("Always")
        );
        let svc = objects.service;
        assert_eq!(
            svc.metadata.name.as_deref(),
            Some(names::cluster::vtctld_service("example").as_str())
        );
        let spec = svc.spec.unwrap();
        assert_eq!(
            spec.selector.unwrap(),
            labels::set(&[
                ("planetscale.com/component", "vtctld"),
                ("planetscale.com/cluster", "example")
            ])
        );
        let ports: Vec<(String, i32)> = spec
            .ports
            .unwrap()
            .into_iter()
            .map(|p| (p.name.unwrap(), p.port))
            .collect();
        assert_eq!(
            ports,
            [("web".to_string(), 15000), ("grpc".to_string(), 15999)]
        );
    }

    #[test]
    fn unknown_dashboard_cell_is_an_error() {
        let c = cluster(Some(VitessDashboardSpec {
            cells: Some(vec!["mars".into()]),
            ..VitessDashboardSpec::default()
        }));
        let err = build(&c, &lockserver::global(&c).unwrap()).unwrap_err();
        assert_eq!(
            err,
            Error::UnknownCell {
                cluster: "example".into(),
                cell: "mars".into()
            }
        );
    }
}
