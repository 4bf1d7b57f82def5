//! From a VitessCluster to vtctld, Vitess' control daemon (the operator's own way into Vitess):
//! one Deployment per dashboard cell and one cluster-wide Service in front of them all.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec, Service};
use kube::api::ObjectMeta;

use super::backup;
use super::cluster::resolved_images;
use super::flags::FlagSet;
use super::podspec::{self, GRPC_PORT_NAME, WEB_PORT_NAME};
use super::{Error, cluster_name, defaults, meta, vttablet};
use crate::api::cell::VitessCellTemplate;
use crate::api::cluster::{BackupEngine, VitessCluster, VitessClusterSpec, VitessDashboardSpec};
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
        // With a backup location, the engine its backups are made with (as the Go operator
        // sets it, so that a vtctld it made is taken over unchanged).
        if let Some(backup) = self
            .spec
            .backup
            .as_ref()
            .filter(|b| !b.locations.is_empty())
        {
            let engine = backup.engine.unwrap_or_default();
            flags.set("backup-engine-implementation", engine.as_str());
            if engine == BackupEngine::Xtrabackup {
                flags.set("backup-storage-compress", true);
            }
        }
        flags
            .mysql_server_version(&vttablet::mysqld_image(self.images.mysqld.as_ref()))
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
            priority_class_name: defaults::vitess_priority_class(),
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
mod tests;
