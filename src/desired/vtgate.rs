//! From a VitessCell to its vtgates (the MySQL-speaking query routers): a Deployment, the
//! cell's Service and, when autoscaled, a HorizontalPodAutoscaler; plus the cluster-wide vtgate
//! Service over every cell's vtgates.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec,
};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec, Service, VolumeMount};
use kube::api::ObjectMeta;

use super::flags::FlagSet;
use super::podspec::{self, GRPC_PORT_NAME, MYSQL_PORT_NAME, SecretFile, WEB_PORT_NAME};
use super::{Error, cluster_name, defaults, meta, vttablet};
use crate::api::cell::{VitessCell, VitessCellGatewaySpec, VitessCellSpec};
use crate::api::cluster::VitessCluster;
use crate::domain::labels;
use crate::domain::names;

/// The vtgates of a cell.
#[derive(Clone, Debug)]
pub struct VtgateObjects {
    pub deployment: Deployment,
    /// The cell's own vtgate Service.
    pub service: Service,
    /// Present when `gateway.autoscaler` is set.
    pub autoscaler: Option<HorizontalPodAutoscaler>,
}

/// The vtgate count of a cell: its `gateway.replicas` (which an autoscaler keeps once it runs),
/// else the autoscaler's minimum, else the default.
pub fn replicas(gateway: &VitessCellGatewaySpec) -> i32 {
    gateway
        .replicas
        .or_else(|| gateway.autoscaler.as_ref().and_then(|a| a.min_replicas))
        .unwrap_or(defaults::VTGATE_REPLICAS)
}

/// Builds the vtgates of `cell`.
pub fn build(cell: &VitessCell) -> Result<VtgateObjects, Error> {
    let parts = Parts::of(cell)?;
    let mut flags = parts.flags();
    let files = parts.secret_files(&mut flags)?;
    // The MySQL version of the cell's shards (see `desired::cluster`); none without shards.
    if let Some(mysqld) = parts.spec.images.mysqld.as_ref() {
        flags.mysql_server_version(&vttablet::mysqld_image(Some(mysqld)));
    }
    flags
        .extend(parts.spec.extra_vitess_flags.as_ref())
        .extend(parts.gateway.extra_flags.as_ref());
    Ok(VtgateObjects {
        deployment: parts.deployment(&flags, &files),
        service: parts.service(),
        autoscaler: parts.autoscaler(),
    })
}

/// What every part of one cell's vtgates is built from.
struct Parts<'a> {
    cluster: &'a str,
    namespace: &'a Option<String>,
    spec: &'a VitessCellSpec,
    cell_name: &'a str,
    gateway: VitessCellGatewaySpec,
    /// `VitessCell/<name>`, for errors.
    object: String,
    own: BTreeMap<String, String>,
    deployment_name: String,
    /// The VitessCell's own name, which its HPA takes and scales.
    cell_object: &'a str,
}

impl<'a> Parts<'a> {
    fn of(cell: &'a VitessCell) -> Result<Self, Error> {
        let object_name = cell
            .metadata
            .name
            .as_deref()
            .ok_or(Error::MissingName("VitessCell"))?;
        let cluster = super::label(&cell.metadata, "VitessCell", labels::CLUSTER)?;
        let spec = &cell.spec;
        let cell_name = &spec.template.name;
        let own = labels::set(&[
            (labels::COMPONENT, labels::component::VTGATE),
            (labels::CLUSTER, cluster),
            (labels::CELL, cell_name),
        ]);
        Ok(Self {
            cluster,
            namespace: &cell.metadata.namespace,
            spec,
            cell_name,
            gateway: spec.template.gateway.clone().unwrap_or_default(),
            object: format!("VitessCell/{object_name}"),
            own,
            deployment_name: names::cluster::vtgate_deployment(cluster, cell_name),
            cell_object: object_name,
        })
    }

    /// vtgate's flags, before the secret files and the user's extra flags.
    fn flags(&self) -> FlagSet {
        let spec = self.spec;
        let cells_to_watch = if spec.all_cells.is_empty() {
            self.cell_name.to_string()
        } else {
            spec.all_cells.join(",")
        };
        let mut flags = FlagSet::vitess();
        flags
            .vitess_common(&spec.global_lockserver)
            .set("cell", self.cell_name)
            .set("cells-to-watch", cells_to_watch)
            .set("tablet-types-to-wait", "PRIMARY,REPLICA")
            .set("service-map", "grpc-vtgateservice")
            .set("mysql-server-port", defaults::MYSQL_PORT)
            // Queries to a primary wait through a reparent (drains, rolling updates) instead of
            // failing: the Go operator's buffer settings, so that its vtgates are taken over
            // unchanged.
            .set("enable-buffer", true)
            .set("buffer-size", defaults::VTGATE_BUFFER_SIZE)
            .set(
                "buffer-max-failover-duration",
                defaults::VTGATE_BUFFER_MAX_FAILOVER,
            )
            .set(
                "buffer-min-time-between-failovers",
                defaults::VTGATE_BUFFER_MIN_BETWEEN,
            )
            .set("grpc-max-message-size", defaults::GRPC_MAX_MESSAGE_SIZE);
        if let Some(interval) = &spec.tablet_refresh_interval {
            flags.set("tablet-refresh-interval", interval);
        }
        flags
    }

    /// The static authentication file and the TLS files vtgate reads, with their flags.
    fn secret_files(&self, flags: &mut FlagSet) -> Result<Vec<SecretFile>, Error> {
        let (gateway, object) = (&self.gateway, &self.object);
        let mut files: Vec<SecretFile> = Vec::new();
        let static_secret = gateway
            .authentication
            .as_ref()
            .and_then(|a| a.static_.as_ref())
            .and_then(|s| s.secret.as_ref());
        if let Some(secret) = static_secret {
            let file = podspec::secret_file(
                secret,
                "vtgate-static-auth",
                object,
                "spec.gateway.authentication.static.secret",
            )?;
            flags
                .set("mysql-auth-server-impl", "static")
                .set("mysql-auth-server-static-file", &file.path);
            files.push(file);
        }
        let transport = gateway.secure_transport.clone().unwrap_or_default();
        let tls = transport.tls.clone().unwrap_or_default();
        // Certificate and key come together; one without the other would not start vtgate.
        if let (Some(cert), Some(key)) = (&tls.cert_secret, &tls.key_secret) {
            let field = "spec.gateway.secureTransport.tls";
            let cert = podspec::secret_file(cert, "vtgate-tls-cert", object, field)?;
            let key = podspec::secret_file(key, "vtgate-tls-key", object, field)?;
            // As in the Go operator, the same certificate serves gRPC: with TLS on, all of
            // vtgate's traffic is encrypted.
            flags
                .set("mysql-server-ssl-cert", &cert.path)
                .set("mysql-server-ssl-key", &key.path)
                .set("grpc-cert", &cert.path)
                .set("grpc-key", &key.path)
                .set(
                    "mysql-server-require-secure-transport",
                    transport.required.unwrap_or(false),
                );
            files.extend([cert, key]);
            if let Some(ca) = &tls.client_ca_cert_secret {
                let ca = podspec::secret_file(ca, "vtgate-tls-ca-cert", object, field)?;
                flags
                    .set("mysql-server-ssl-ca", &ca.path)
                    .set("grpc-ca", &ca.path);
                files.push(ca);
            }
        }
        Ok(files)
    }

    /// The vtgate container, mounting `mounts`.
    fn container(&self, flags: &FlagSet, mounts: Vec<VolumeMount>) -> Container {
        let (spec, gateway) = (self.spec, &self.gateway);
        Container {
            name: "vtgate".into(),
            image: Some(
                spec.images
                    .vtgate
                    .clone()
                    .unwrap_or_else(|| defaults::VITESS_IMAGE.into()),
            ),
            image_pull_policy: podspec::pull_policy(
                spec.image_pull_policies.as_ref().and_then(|p| p.vtgate),
            ),
            command: Some(vec!["/vt/bin/vtgate".into()]),
            args: Some(flags.args()),
            ports: Some(vec![
                podspec::container_port(WEB_PORT_NAME, defaults::WEB_PORT),
                podspec::container_port(GRPC_PORT_NAME, defaults::GRPC_PORT),
                podspec::container_port(MYSQL_PORT_NAME, defaults::MYSQL_PORT),
            ]),
            resources: Some(podspec::resources_or(
                gateway.resources.as_ref(),
                defaults::VTGATE_CPU,
                defaults::VTGATE_MEMORY,
            )),
            readiness_probe: Some(podspec::http_probe("/debug/health", WEB_PORT_NAME)),
            liveness_probe: Some(podspec::patient_liveness("/debug/status", WEB_PORT_NAME)),
            volume_mounts: (!mounts.is_empty()).then_some(mounts),
            // An empty lifecycle is none (as the Go operator leaves it), not `{}`.
            lifecycle: gateway
                .lifecycle
                .clone()
                .filter(|l| l != &Default::default()),
            ..Container::default()
        }
    }

    /// The vtgate Deployment.
    fn deployment(&self, flags: &FlagSet, files: &[SecretFile]) -> Deployment {
        let (spec, gateway, own) = (self.spec, &self.gateway, &self.own);
        let volumes: Vec<_> = files.iter().filter_map(|f| f.volume.clone()).collect();
        let mounts: Vec<_> = files.iter().map(|f| f.mount.clone()).collect();
        let mut pod_meta = ObjectMeta {
            labels: Some(own.clone()),
            ..ObjectMeta::default()
        };
        let mut pod_spec = PodSpec {
            containers: vec![self.container(flags, mounts)],
            volumes: (!volumes.is_empty()).then_some(volumes),
            affinity: podspec::affinity(
                gateway.pod.affinity.as_ref(),
                spec.template.zone.as_deref(),
                None,
            ),
            termination_grace_period_seconds: gateway.termination_grace_period_seconds,
            image_pull_secrets: spec.image_pull_secrets.clone(),
            security_context: Some(podspec::vitess_pod_security()),
            priority_class_name: defaults::vitess_priority_class(),
            ..PodSpec::default()
        };
        podspec::apply_overrides(&mut pod_meta, &mut pod_spec, &["vtgate"], &gateway.pod);
        Deployment {
            metadata: meta(
                self.deployment_name.clone(),
                self.namespace,
                own.clone(),
                None,
            ),
            spec: Some(DeploymentSpec {
                // The cell's count, which with an autoscaler the HPA keeps (through the
                // VitessCell's scale subresource, as with the Go operator).
                replicas: Some(replicas(gateway)),
                revision_history_limit: Some(0),
                selector: podspec::selector(own),
                strategy: gateway.strategy.clone(),
                template: PodTemplateSpec {
                    metadata: Some(pod_meta),
                    spec: Some(pod_spec),
                },
                ..DeploymentSpec::default()
            }),
            status: None,
        }
    }

    /// The cell's own vtgate Service.
    fn service(&self) -> Service {
        podspec::service(
            names::join_service(&[self.cluster, self.cell_name, labels::component::VTGATE]),
            self.namespace,
            self.own.clone(),
            gateway_ports(),
            self.gateway.service.as_ref(),
            false,
        )
    }

    /// The HorizontalPodAutoscaler of the cell, when `gateway.autoscaler` is set: named as the
    /// VitessCell and scaling it, as the Go operator's does, so a takeover finds one HPA, not
    /// two fighting over the vtgates.
    fn autoscaler(&self) -> Option<HorizontalPodAutoscaler> {
        let name = self.cell_object;
        self.gateway
            .autoscaler
            .as_ref()
            .map(|hpa| HorizontalPodAutoscaler {
                metadata: meta(name.to_string(), self.namespace, self.own.clone(), None),
                spec: Some(HorizontalPodAutoscalerSpec {
                    scale_target_ref: CrossVersionObjectReference {
                        api_version: Some("planetscale.com/v2".into()),
                        kind: "VitessCell".into(),
                        name: name.to_string(),
                    },
                    min_replicas: hpa.min_replicas,
                    max_replicas: hpa.max_replicas,
                    metrics: hpa.metrics.clone(),
                    behavior: hpa.behavior.clone(),
                }),
                status: None,
            })
    }
}

/// The cluster-wide vtgate Service: every vtgate of every cell behind one address.
pub fn cluster_service(cluster: &VitessCluster) -> Result<Service, Error> {
    let name = cluster_name(cluster)?;
    Ok(podspec::service(
        names::join_service(&[name, labels::component::VTGATE]),
        &cluster.metadata.namespace,
        labels::set(&[
            (labels::COMPONENT, labels::component::VTGATE),
            (labels::CLUSTER, name),
        ]),
        gateway_ports(),
        cluster.spec.gateway_service.as_ref(),
        false,
    ))
}

fn gateway_ports() -> Vec<k8s_openapi::api::core::v1::ServicePort> {
    vec![
        podspec::service_port(WEB_PORT_NAME, defaults::WEB_PORT),
        podspec::service_port(GRPC_PORT_NAME, defaults::GRPC_PORT),
        podspec::service_port(MYSQL_PORT_NAME, defaults::MYSQL_PORT),
    ]
}

#[cfg(test)]
mod tests;
