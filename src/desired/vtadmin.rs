//! From a VitessCluster's `spec.vtadmin` to vtadmin, as the Go operator runs it: per vtadmin
//! cell one Deployment whose pods run vtadmin-api (`/vt/bin/vtadmin`) and vtadmin-web (the
//! image's nginx), both from `images.vtadmin`; the three files they read, each in a Secret of
//! the Go operator's name (the discovery file naming the cluster's vtctld and the cell's
//! vtgate, the cluster configuration pointing at it, the web UI's `config.js` with the API
//! address browsers use); and one cluster-wide Service over the web and API ports.
//!
//! Without `images.vtadmin` nothing is built (no default image holds vtadmin-web; the Go
//! operator does the same, and `validate` warns).

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Container, EnvVar, PodSpec, PodTemplateSpec, Secret, Service, VolumeMount,
};
use kube::api::ObjectMeta;

use super::podspec::{self, WEB_PORT_NAME};
use super::{Error, cluster_name, defaults, meta};
use crate::api::cluster::{VitessCluster, VtAdminSpec};
use crate::api::shared::SecretSource;
use crate::domain::labels;
use crate::domain::names;

/// vtadmin-api's port and its name, as the Go operator declares them.
pub const API_PORT: u16 = 15001;
pub const API_PORT_NAME: &str = "api";
/// Where vtadmin-web's image serves the UI from its `config.js`.
const WEB_CONFIG_DIR: &str = "/var/www/config";
const WEB_CONFIG_KEY: &str = "config.js";
const DISCOVERY_KEY: &str = "discovery.json";
const CLUSTER_CONFIG_KEY: &str = "cluster-config.yaml";
/// Compute the Go operator gives each vtadmin container when the spec names none.
const CPU: &str = "100m";
const MEMORY: &str = "128Mi";

/// vtadmin of a cluster.
#[derive(Clone, Debug, Default)]
pub struct VtadminObjects {
    /// Per vtadmin cell, its Deployment and the Secrets its pods mount (applied after the
    /// Deployment, which owns them).
    pub cells: Vec<(Deployment, Vec<Secret>)>,
    /// The cluster-wide Service; `None` when vtadmin is not run.
    pub service: Option<Service>,
}

/// Builds vtadmin for `cluster` (nothing when `spec.vtadmin` or `images.vtadmin` is unset).
pub fn build(cluster: &VitessCluster) -> Result<VtadminObjects, Error> {
    let name = cluster_name(cluster)?;
    let spec = &cluster.spec;
    let (Some(vtadmin), Some(image)) = (
        spec.vtadmin.as_ref(),
        spec.images.as_ref().and_then(|i| i.vtadmin.clone()),
    ) else {
        return Ok(VtadminObjects::default());
    };
    let cells: Vec<String> = match &vtadmin.cells {
        Some(cells) => cells.clone(),
        None => spec.cells.iter().map(|c| c.name.clone()).collect(),
    };
    let namespace = cluster.metadata.namespace.clone();
    let parts = Parts {
        name,
        namespace: &namespace,
        cluster,
        vtadmin,
        image,
    };
    let mut out = Vec::with_capacity(cells.len());
    for (index, cell) in cells.iter().enumerate() {
        let template =
            spec.cells
                .iter()
                .find(|c| &c.name == cell)
                .ok_or_else(|| Error::UnknownCell {
                    cluster: name.into(),
                    cell: cell.clone(),
                })?;
        // One address for every cell, or one per cell (validate checks the count).
        let address = vtadmin
            .api_addresses
            .get(if vtadmin.api_addresses.len() > 1 {
                index
            } else {
                0
            })
            .cloned()
            .unwrap_or_default();
        out.push(parts.cell(cell, template.zone.as_deref(), &address)?);
    }
    Ok(VtadminObjects {
        cells: out,
        service: Some(parts.service()),
    })
}

/// The name of the vtadmin Deployment of `cell`.
pub fn deployment_name(cluster: &str, cell: &str) -> String {
    names::join(&[cluster, cell, labels::component::VTADMIN])
}

/// The name of the cluster's vtadmin Service.
pub fn service_name(cluster: &str) -> String {
    names::join_service(&[cluster, labels::component::VTADMIN])
}

/// The labels of every vtadmin object of the cluster.
fn own(cluster: &str) -> BTreeMap<String, String> {
    labels::set(&[
        (labels::COMPONENT, labels::component::VTADMIN),
        (labels::CLUSTER, cluster),
    ])
}

/// What every vtadmin object is built from.
struct Parts<'a> {
    name: &'a str,
    namespace: &'a Option<String>,
    cluster: &'a VitessCluster,
    vtadmin: &'a VtAdminSpec,
    image: String,
}

impl Parts<'_> {
    /// A Secret of `cell` holding `key`, named as the Go operator names it.
    fn secret(&self, cell: &str, what: &str, key: &str, content: String) -> Secret {
        let mut labels = own(self.name);
        labels.insert(labels::CELL.into(), cell.into());
        Secret {
            metadata: meta(
                names::join(&[self.name, cell, labels::component::VTADMIN, what]),
                self.namespace,
                labels,
                None,
            ),
            type_: Some("Opaque".into()),
            data: Some([(key.to_string(), ByteString(content.into_bytes()))].into()),
            ..Secret::default()
        }
    }

    /// The discovery file: the cluster's vtctld Service and the cell's vtgate Service, by
    /// their DNS names (the Go operator writes their cluster IPs, which it reads first).
    fn discovery(&self, cell: &str) -> String {
        let ns = self.namespace.as_deref().unwrap_or("default");
        let vtctld = format!("{}.{ns}.svc", names::cluster::vtctld_service(self.name));
        let vtgate = format!(
            "{}.{ns}.svc",
            names::join_service(&[self.name, cell, labels::component::VTGATE])
        );
        let (web, grpc) = (defaults::WEB_PORT, defaults::GRPC_PORT);
        serde_json::json!({
            "vtctlds": [{"host": {"fqdn": format!("{vtctld}:{web}"), "hostname": format!("{vtctld}:{grpc}")}}],
            "vtgates": [{"host": {"hostname": format!("{vtgate}:{grpc}")}}],
        })
        .to_string()
    }

    /// vtadmin-api's cluster configuration: one cluster, found through the discovery file.
    fn cluster_config(&self, discovery_path: &str) -> String {
        let name = self.name;
        format!(
            "clusters:\n  {name}:\n    name: {name}\n    discovery: staticfile\n    \
             discovery-staticfile-path: {discovery_path}\n"
        )
    }

    /// vtadmin-web's `config.js`: where browsers reach vtadmin-api, under both the current
    /// (`VITE_`) and the older (`REACT_APP_`) names the UI has read.
    fn web_config(&self, address: &str) -> String {
        let credentials = self.vtadmin.fetch_credentials.as_deref().unwrap_or("omit");
        let read_only = self.vtadmin.read_only.unwrap_or(false);
        let mut env = serde_json::Map::new();
        for prefix in ["VITE", "REACT_APP"] {
            let mut set = |key: &str, value: serde_json::Value| {
                env.insert(format!("{prefix}_{key}"), value);
            };
            set("VTADMIN_API_ADDRESS", address.into());
            set("FETCH_CREDENTIALS", credentials.into());
            set("ENABLE_EXPERIMENTAL_TABLET_DEBUG_VARS", false.into());
            set("BUGSNAG_API_KEY", "".into());
            set("DOCUMENT_TITLE", "".into());
            set("READONLY_MODE", read_only.into());
        }
        format!("window.env = {};\n", serde_json::Value::Object(env))
    }

    /// The Deployment of `cell` and the Secrets its pods mount.
    fn cell(
        &self,
        cell: &str,
        zone: Option<&str>,
        address: &str,
    ) -> Result<(Deployment, Vec<Secret>), Error> {
        let object = format!("VitessCluster/{}", self.name);
        let source = |secret: &Secret, key: &str| SecretSource {
            name: secret.metadata.name.clone(),
            key: key.into(),
            volume_name: None,
        };
        let discovery = self.secret(cell, "discovery", DISCOVERY_KEY, self.discovery(cell));
        let discovery_file = podspec::secret_file(
            &source(&discovery, DISCOVERY_KEY),
            "discovery-config",
            &object,
            "",
        )?;
        let config = self.secret(
            cell,
            "clusterConfig",
            CLUSTER_CONFIG_KEY,
            self.cluster_config(&discovery_file.path),
        );
        let config_file = podspec::secret_file(
            &source(&config, CLUSTER_CONFIG_KEY),
            "cluster-config",
            &object,
            "",
        )?;
        let web = self.secret(cell, "webConfig", WEB_CONFIG_KEY, self.web_config(address));
        let mut web_file =
            podspec::secret_file(&source(&web, WEB_CONFIG_KEY), "config-js", &object, "")?;
        web_file.mount.mount_path = WEB_CONFIG_DIR.into();
        let rbac = self
            .vtadmin
            .rbac
            .as_ref()
            .map(|rbac| podspec::secret_file(rbac, "rbac-config", &object, "spec.vtadmin.rbac"))
            .transpose()?;

        let mut flags = super::flags::FlagSet::vitess();
        flags
            .set("addr", format!(":{API_PORT}"))
            .set("http-origin", "*")
            .set("tracer", "opentracing-jaeger")
            .set("grpc-tracing", true)
            .set("http-tracing", true)
            .set("logtostderr", true)
            .set("alsologtostderr", true);
        match &rbac {
            Some(rbac) => flags.set("rbac", true).set("rbac-config", &rbac.path),
            None => flags.set("no-rbac", true),
        };
        flags
            .set("cluster-config", &config_file.path)
            .extend(self.vtadmin.extra_flags.as_ref());

        let mut api_mounts: Vec<VolumeMount> = rbac.iter().map(|r| r.mount.clone()).collect();
        api_mounts.extend([discovery_file.mount.clone(), config_file.mount.clone()]);
        let pull_policy = podspec::pull_policy(
            self.cluster
                .spec
                .image_pull_policies
                .as_ref()
                .and_then(|p| p.vtadmin),
        );
        let api = Container {
            name: "vtadmin-api".into(),
            image: Some(self.image.clone()),
            image_pull_policy: pull_policy.clone(),
            command: Some(vec!["/vt/bin/vtadmin".into()]),
            args: Some(flags.args()),
            ports: Some(vec![podspec::container_port(API_PORT_NAME, API_PORT)]),
            resources: Some(podspec::resources_or(
                self.vtadmin.api_resources.as_ref(),
                CPU,
                MEMORY,
            )),
            readiness_probe: Some(podspec::http_probe("/health", API_PORT_NAME)),
            liveness_probe: Some(podspec::patient_liveness("/health", API_PORT_NAME)),
            volume_mounts: Some(api_mounts),
            ..Container::default()
        };
        let web_container = Container {
            name: "vtadmin-web".into(),
            image: Some(self.image.clone()),
            image_pull_policy: pull_policy,
            command: Some(vec!["/docker-entrypoint.sh".into()]),
            args: Some(vec!["nginx".into(), "-g".into(), "daemon off;".into()]),
            ports: Some(vec![podspec::container_port(
                WEB_PORT_NAME,
                defaults::WEB_PORT,
            )]),
            env: Some(vec![EnvVar {
                name: "VTADMIN_WEB_PORT".into(),
                value: Some(defaults::WEB_PORT.to_string()),
                value_from: None,
            }]),
            resources: Some(podspec::resources_or(
                self.vtadmin.web_resources.as_ref(),
                CPU,
                MEMORY,
            )),
            readiness_probe: Some(podspec::http_probe("/", WEB_PORT_NAME)),
            liveness_probe: Some(podspec::patient_liveness("/", WEB_PORT_NAME)),
            volume_mounts: Some(vec![web_file.mount.clone()]),
            ..Container::default()
        };
        let mut own = own(self.name);
        own.insert(labels::CELL.into(), cell.into());
        let mut pod_meta = ObjectMeta {
            labels: Some(own.clone()),
            ..ObjectMeta::default()
        };
        let volumes = [
            &rbac,
            &Some(discovery_file),
            &Some(config_file),
            &Some(web_file),
        ]
        .into_iter()
        .flatten()
        .filter_map(|f| f.volume.clone())
        .collect();
        let pod = &self.vtadmin.pod;
        let mut pod_spec = PodSpec {
            containers: vec![api, web_container],
            volumes: Some(volumes),
            affinity: podspec::affinity(pod.affinity.as_ref(), zone, None),
            image_pull_secrets: self.cluster.spec.image_pull_secrets.clone(),
            security_context: Some(podspec::vitess_pod_security()),
            priority_class_name: defaults::vitess_priority_class(),
            ..PodSpec::default()
        };
        podspec::apply_overrides(
            &mut pod_meta,
            &mut pod_spec,
            &["vtadmin-api", "vtadmin-web"],
            pod,
        );
        let deployment = Deployment {
            metadata: meta(
                deployment_name(self.name, cell),
                self.namespace,
                own.clone(),
                None,
            ),
            spec: Some(DeploymentSpec {
                replicas: Some(self.vtadmin.replicas.unwrap_or(1)),
                revision_history_limit: Some(0),
                selector: podspec::selector(&own),
                template: PodTemplateSpec {
                    metadata: Some(pod_meta),
                    spec: Some(pod_spec),
                },
                ..DeploymentSpec::default()
            }),
            status: None,
        };
        Ok((deployment, vec![discovery, config, web]))
    }

    /// The cluster-wide Service over every vtadmin pod: the web UI and the API.
    fn service(&self) -> Service {
        podspec::service(
            service_name(self.name),
            self.namespace,
            own(self.name),
            vec![
                podspec::service_port(WEB_PORT_NAME, defaults::WEB_PORT),
                podspec::service_port(API_PORT_NAME, API_PORT),
            ],
            self.vtadmin.service.as_ref(),
            false,
        )
    }
}

#[cfg(test)]
mod tests;
