//! VitessCell (`vtc`): a failure domain (usually a zone) with its vtgates.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::DeploymentStrategy;
use k8s_openapi::api::autoscaling::v2::{HorizontalPodAutoscalerBehavior, MetricSpec};
use k8s_openapi::api::core::v1::Lifecycle;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::shared::{
    ConditionStatus, Conditions, Flags, ImagePullSecrets, LockserverSpec, LockserverStatus,
    MysqldImage, PodOverrides, Resources, SecretSource, ServiceOverrides, TopoReconcileConfig,
    VitessImagePullPolicies, VitessLockserverParams, core, preserve_object,
};

/// A cell as written in the cluster spec.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VitessCellTemplate {
    /// Cell name in Vitess; tablet pools refer to it.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[A-Za-z0-9]([_.A-Za-z0-9]*[A-Za-z0-9])?$")
    )]
    pub name: String,
    /// Zone (node label `topology.kubernetes.io/zone`) whose nodes run this cell's pods; empty:
    /// any node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 63),
        regex(pattern = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
    )]
    pub zone: Option<String>,
    /// A cell-local lockserver; default: the cell uses the global one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lockserver: Option<LockserverSpec>,
    /// The cell's vtgates (query routers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<VitessCellGatewaySpec>,
}

/// vtgate settings of a cell.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VitessCellGatewaySpec {
    /// Number of vtgate pods (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub replicas: Option<i32>,
    /// Scale vtgate with a HorizontalPodAutoscaler instead of a fixed `replicas`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaler: Option<AutoscalerSpec>,
    /// Compute resources of each vtgate (default 500m CPU, 1Gi memory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "core::<Option<Resources>>")]
    pub resources: Option<Resources>,
    /// How MySQL clients authenticate to vtgate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<VitessGatewayAuthentication>,
    /// TLS for MySQL clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure_transport: Option<VitessGatewaySecureTransport>,
    /// Extra vtgate flags, `flag: value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_flags: Option<Flags>,
    /// Pod settings: extraEnv, extraVolumes, extraVolumeMounts, initContainers,
    /// sidecarContainers, affinity, annotations, extraLabels, tolerations,
    /// topologySpreadConstraints.
    #[serde(flatten)]
    pub pod: PodOverrides,
    /// Changes to this cell's vtgate Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceOverrides>,
    /// Lifecycle hooks of the vtgate container (core/v1 Lifecycle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_object")]
    pub lifecycle: Option<Lifecycle>,
    /// Grace period of vtgate pods on deletion, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub termination_grace_period_seconds: Option<i64>,
    /// Deployment strategy of vtgate (apps/v1 DeploymentStrategy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_object")]
    pub strategy: Option<DeploymentStrategy>,
}

/// A HorizontalPodAutoscaler for vtgate.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.minReplicas) || self.minReplicas <= self.maxReplicas").message("minReplicas may not be above maxReplicas").field_path(".minReplicas"))]
pub struct AutoscalerSpec {
    /// Fewest vtgate pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub min_replicas: Option<i32>,
    /// Most vtgate pods.
    #[schemars(range(min = 1))]
    pub max_replicas: i32,
    /// What to scale on (autoscaling/v2 MetricSpec), checked at apply time as the HPA would.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "core::<Option<Vec<MetricSpec>>>")]
    pub metrics: Option<Vec<MetricSpec>>,
    /// Scaling behaviour (autoscaling/v2 HorizontalPodAutoscalerBehavior), checked at apply
    /// time as the HPA would.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "core::<Option<HorizontalPodAutoscalerBehavior>>")]
    pub behavior: Option<HorizontalPodAutoscalerBehavior>,
}

/// How MySQL clients authenticate to vtgate.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VitessGatewayAuthentication {
    /// Users and passwords from a static JSON file.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "static")]
    pub static_: Option<VitessGatewayStaticAuthentication>,
}

/// Static authentication.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VitessGatewayStaticAuthentication {
    /// The JSON users file (`mysql_auth_server_static_file`), e.g. key `users.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretSource>,
}

/// TLS between MySQL clients and vtgate.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VitessGatewaySecureTransport {
    /// Refuse clients that do not use TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
    /// Certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<VitessGatewayTlsSecureTransport>,
}

/// vtgate's TLS certificates.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct VitessGatewayTlsSecureTransport {
    /// CA that signs client certificates; when set, clients must present one.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "clientCACertSecret"
    )]
    pub client_ca_cert_secret: Option<SecretSource>,
    /// Server certificate (PEM).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "certSecret"
    )]
    pub cert_secret: Option<SecretSource>,
    /// Server private key (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "keySecret")]
    pub key_secret: Option<SecretSource>,
}

/// A cell and what the cluster hands down to it. Made by the operator from a VitessCluster;
/// edit the cluster instead.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "planetscale.com",
    version = "v2",
    kind = "VitessCell",
    plural = "vitesscells",
    shortname = "vtc",
    namespaced,
    status = "VitessCellStatus",
    scale(
        spec_replicas_path = ".spec.gateway.replicas",
        status_replicas_path = ".status.gateway.replicas",
        label_selector_path = ".status.gateway.labelSelector"
    ),
    doc = "A Vitess cell (failure domain) and its vtgates. Made by the operator; edit the VitessCluster instead.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Gateway",
        type_ = "string",
        json_path = ".status.gateway.available"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        priority = 1,
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct VitessCellSpec {
    #[serde(flatten)]
    pub template: VitessCellTemplate,
    /// Where the global topology is.
    pub global_lockserver: VitessLockserverParams,
    /// Every cell of the cluster.
    #[serde(default)]
    pub all_cells: Vec<String>,
    /// Images of the cell's components.
    #[serde(default)]
    pub images: VitessCellImages,
    /// Pull policies of the images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policies: Option<VitessImagePullPolicies>,
    /// Pull secrets of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "core::<Option<ImagePullSecrets>>")]
    pub image_pull_secrets: Option<ImagePullSecrets>,
    /// Flags for every Vitess component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_vitess_flags: Option<Flags>,
    /// Topology reconciliation switches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology_reconciliation: Option<TopoReconcileConfig>,
    /// vtgate's tablet refresh interval (e.g. `60s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tablet_refresh_interval: Option<String>,
}

/// Images of a cell's components.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VitessCellImages {
    /// vtgate image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vtgate: Option<String>,
    /// The cluster's mysqld image, whose tag gives the MySQL version vtgate reports
    /// (`--mysql-server-version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mysqld: Option<MysqldImage>,
}

/// Observed state of a cell's vtgates.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VitessCellGatewayStatus {
    /// Whether every vtgate pod is available.
    #[serde(default)]
    pub available: ConditionStatus,
    /// Name of the cell's vtgate Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// Selector of the vtgate pods (for autoscaling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
    /// Current number of vtgate pods.
    #[serde(default)]
    pub replicas: i32,
}

/// A keyspace as a cell sees it (no fields yet; its presence says the keyspace is here).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct VitessCellKeyspaceStatus {}

/// Observed state of a VitessCell.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VitessCellStatus {
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The cell-local lockserver, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lockserver: Option<LockserverStatus>,
    /// The cell's vtgates.
    #[serde(default)]
    pub gateway: VitessCellGatewayStatus,
    /// Keyspaces with tablets in this cell.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub keyspaces: BTreeMap<String, VitessCellKeyspaceStatus>,
    /// Whether no keyspace has tablets in this cell.
    #[serde(default)]
    pub idle: ConditionStatus,
    /// Standard conditions (`Ready`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Conditions,
}
