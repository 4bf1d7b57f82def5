//! EtcdLockserver (`etcdls`): a 3-member etcd cluster used as a Vitess topology store.

use k8s_openapi::api::core::v1::PersistentVolumeClaimSpec;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::shared::{
    ConditionStatus, Conditions, Flags, ImagePullSecrets, PodOverrides, PullPolicy, Resources,
    ServiceOverrides, core, volume_claim,
};

/// Settings of an etcd cluster the operator deploys.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.peerService) || !has(self.peerService.clusterIP) || self.peerService.clusterIP == 'None'").message("not supported: the peer Service is headless (clusterIP None); members find each other by its DNS names").field_path(".peerService.clusterIP"))]
pub struct EtcdLockserverTemplate {
    /// etcd image (default: the operator's pinned etcd 3.5 image).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Pull policy of the etcd image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<PullPolicy>,
    /// Pull secrets for the etcd pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "core::<Option<ImagePullSecrets>>")]
    pub image_pull_secrets: Option<ImagePullSecrets>,
    /// Compute resources of each member (default 100m CPU, 256Mi memory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "core::<Option<Resources>>")]
    pub resources: Option<Resources>,
    /// Volume claim of each member's data (default 1Gi).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "volume_claim")]
    pub data_volume_claim_template: Option<PersistentVolumeClaimSpec>,
    /// Extra etcd flags, `flag: value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_flags: Option<Flags>,
    /// Pod settings: extraEnv, extraVolumes, extraVolumeMounts, initContainers,
    /// sidecarContainers, affinity, annotations, extraLabels, tolerations,
    /// topologySpreadConstraints.
    #[serde(flatten)]
    pub pod: PodOverrides,
    /// Create a PodDisruptionBudget (minAvailable 2); default true.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "createPDB")]
    pub create_pdb: Option<bool>,
    /// Create the client Service; default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_client_service: Option<bool>,
    /// Create the headless peer Service; default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_peer_service: Option<bool>,
    /// Peer URLs to advertise, one per member (index 1, 2, 3), for members spread over
    /// Kubernetes clusters.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "advertisePeerURLs"
    )]
    #[schemars(length(min = 3, max = 3))]
    pub advertise_peer_urls: Option<Vec<String>>,
    /// Deploy only this member (1-3) here; the others run elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3))]
    pub local_member_index: Option<i32>,
    /// Changes to the client Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_service: Option<ServiceOverrides>,
    /// Changes to the peer Service (its clusterIP can only be `None`: it is headless).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_service: Option<ServiceOverrides>,
}

/// An etcd cluster of three members, made by a VitessCluster (global) or VitessCell (local).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "planetscale.com",
    version = "v2",
    kind = "EtcdLockserver",
    plural = "etcdlockservers",
    shortname = "etcdls",
    namespaced,
    status = "EtcdLockserverStatus",
    doc = "An etcd cluster (3 members) that Vitess uses as a topology store. Made by the operator from a VitessCluster or VitessCell; edit those instead.",
    printcolumn(name = "Available", type_ = "string", json_path = ".status.available"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct EtcdLockserverSpec {
    #[serde(flatten)]
    pub template: EtcdLockserverTemplate,
    /// Zone (node label `topology.kubernetes.io/zone`) the members run in; empty: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 63),
        regex(pattern = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
    )]
    pub zone: Option<String>,
}

/// Observed state of an EtcdLockserver.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EtcdLockserverStatus {
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Whether the client Service has ready endpoints.
    #[serde(default)]
    pub available: ConditionStatus,
    /// Name of the client Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_service_name: Option<String>,
    /// Standard conditions (`Ready`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Conditions,
}
