//! Types shared by several kinds: secret references, lockserver parameters, images, service
//! overrides, topology reconciliation switches, the update strategy and status conditions.
//!
//! JSON names follow the Go operator's `planetscale.com/v2` API exactly, so its YAML applies.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, Container, EnvVar, LocalObjectReference, PersistentVolumeClaimSpec,
    ResourceRequirements, Toleration, TopologySpreadConstraint, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::KubeSchema;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// Free-form `flag: value` pairs passed to a Vitess binary as `--flag=value`.
pub type Flags = BTreeMap<String, String>;
/// Labels or annotations.
pub type StringMap = BTreeMap<String, String>;

/// Schema for an embedded Kubernetes object (Affinity, Lifecycle, a VolumeSource) that the API
/// server keeps as given. Like the Go operator's CRDs, we do not repeat core schemas here: they
/// would make the CRDs megabytes large; the objects are checked when the pods are created.
pub fn preserve_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

/// Reads `null` as the empty value, as Go's JSON decoding does for lists and maps: the Go
/// operator's own YAML writes `keyspaces:` with nothing after it.
pub fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Schema for a list of embedded Kubernetes objects (Containers, Volumes, Tolerations, ...).
pub fn preserve_list(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "items": {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true
        }
    })
}

/// Schema of an embedded core Kubernetes type (resources, env, mounts, volume claims) with
/// each description cut to its first sentence: the full texts repeat in every place the type
/// is used and would triple the size of the CRDs; `kubectl explain` still says what each is.
pub fn core<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = T::json_schema(generator);
    if let Some(map) = schema.as_object_mut() {
        map.values_mut().for_each(shorten_descriptions);
    }
    schema
}

/// A Kubernetes quantity greater than zero (`10Gi`, `500M`, `1.5Ti`, `1e9`): no sign but `+`,
/// and some digit that is not 0. The API server's CEL budget is too small for quantity()
/// comparisons on every amount, so this is a pattern.
pub const POSITIVE_QUANTITY: &str = r"^\+?([0-9]*[1-9][0-9]*(\.[0-9]*)?|[0-9]*\.[0-9]*[1-9][0-9]*)([KMGTPE]i|[numkMGTPE]|[eE][-+]?[0-9]+)?$";

/// The access modes core/v1 knows; any other is refused by the API server only when the claim
/// is made, long after the spec was accepted.
const ACCESS_MODES: [&str; 4] = [
    "ReadWriteOnce",
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOncePod",
];

/// Schema of a data volume claim template: core/v1's (see [`core`]), with the mistakes that
/// would otherwise show only when the claim is made refused at apply time: an access mode that
/// does not exist, and a storage amount that is not a positive quantity.
pub fn volume_claim(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = core::<Option<PersistentVolumeClaimSpec>>(generator);
    tighten_claim(schema.as_object_mut());
    schema
}

fn tighten_claim(map: Option<&mut serde_json::Map<String, serde_json::Value>>) {
    let Some(map) = map else { return };
    // Option<T> may come as the object itself or as one branch of an anyOf.
    for branch in ["anyOf", "oneOf"] {
        if let Some(serde_json::Value::Array(items)) = map.get_mut(branch) {
            items
                .iter_mut()
                .for_each(|item| tighten_claim(item.as_object_mut()));
        }
    }
    let Some(properties) = map.get_mut("properties").and_then(|p| p.as_object_mut()) else {
        return;
    };
    if let Some(items) = properties
        .get_mut("accessModes")
        .and_then(|m| m.get_mut("items"))
        .and_then(|i| i.as_object_mut())
    {
        items.insert("enum".into(), serde_json::json!(ACCESS_MODES));
    }
    let amounts = properties
        .get_mut("resources")
        .and_then(|r| r.get_mut("properties"))
        .and_then(|p| p.as_object_mut());
    for amounts in amounts.into_iter().flat_map(|p| p.values_mut()) {
        let Some(amounts) = amounts.as_object_mut() else {
            continue;
        };
        amounts.insert("maxProperties".into(), serde_json::json!(8));
        if let Some(amount) = amounts
            .get_mut("additionalProperties")
            .and_then(|a| a.as_object_mut())
        {
            amount.insert("maxLength".into(), serde_json::json!(64));
            amount.insert("pattern".into(), serde_json::json!(POSITIVE_QUANTITY));
            amount.insert("minimum".into(), serde_json::json!(1));
        }
    }
}

fn shorten_descriptions(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::String(text)) = map.get_mut("description") {
                *text = first_sentence(text);
            }
            map.values_mut().for_each(shorten_descriptions);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(shorten_descriptions),
        _ => {}
    }
}

fn first_sentence(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    match line.find(". ") {
        Some(end) => line[..=end].to_string(),
        None => line.to_string(),
    }
}

/// What every component's pods may add or change (the Go operator repeats these fields on
/// each component; here they are one struct, flattened, so the YAML is the same).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodOverrides {
    /// Extra environment variables of the component's main containers (for tablets: vttablet
    /// and mysqld); a variable of the same name replaces the operator's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "core::<Option<Vec<EnvVar>>>")]
    pub extra_env: Option<Vec<EnvVar>>,
    /// Extra pod volumes (core/v1 Volume).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_list")]
    pub extra_volumes: Option<Vec<Volume>>,
    /// Extra mounts in the component's main containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "core::<Option<Vec<VolumeMount>>>")]
    pub extra_volume_mounts: Option<Vec<VolumeMount>>,
    /// Init containers added to the pods (core/v1 Container).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_list")]
    pub init_containers: Option<Vec<Container>>,
    /// Sidecar containers added to the pods (core/v1 Container).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_list")]
    pub sidecar_containers: Option<Vec<Container>>,
    /// Affinity of the pods (core/v1 Affinity); replaces the operator's default spreading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_object")]
    pub affinity: Option<Affinity>,
    /// Annotations of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<StringMap>,
    /// Extra labels of the pods; the operator's own labels win.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_labels: Option<StringMap>,
    /// Tolerations of the pods (core/v1 Toleration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_list")]
    pub tolerations: Option<Vec<Toleration>>,
    /// Topology spread constraints of the pods (core/v1 TopologySpreadConstraint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_list")]
    pub topology_spread_constraints: Option<Vec<TopologySpreadConstraint>>,
}

/// A file taken from a Secret key, or from a volume the pod already has.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.name) || has(self.volumeName)").message("set name (a Secret) or volumeName (an existing pod volume)"))]
pub struct SecretSource {
    /// Name of a Secret in the same namespace as the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub name: Option<String>,
    /// Name of a volume already on the pod (from extraVolumes); wins over `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub volume_name: Option<String>,
    /// Key within the Secret, or file name within the volume.
    #[schemars(length(min = 1))]
    pub key: String,
}

/// Where to reach a lockserver (topology store) that Vitess should use.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VitessLockserverParams {
    /// Vitess topology plugin, e.g. `etcd2`.
    #[schemars(length(min = 1))]
    pub implementation: String,
    /// Client address of the lockserver, `host:port`.
    #[schemars(length(min = 1))]
    pub address: String,
    /// Path prefix for this cluster inside the lockserver, e.g. `/vitess/example/global`.
    #[schemars(length(min = 1))]
    pub root_path: String,
}

/// A lockserver: an existing one (`external`) or an etcd cluster the operator deploys (`etcd`).
/// With neither set, the operator deploys etcd with defaults.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.external) && has(self.etcd))").message("set at most one of external and etcd"))]
pub struct LockserverSpec {
    /// Use an existing lockserver; the operator deploys none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<VitessLockserverParams>,
    /// Deploy an etcd cluster (3 members) with these settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd: Option<crate::api::etcd::EtcdLockserverTemplate>,
    /// `host:port` written into the Vitess cell info, when clients must reach the lockserver
    /// through another address than its client Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cell_info_address: Option<String>,
}

/// Status of a deployed lockserver.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LockserverStatus {
    /// Status of the etcd cluster the operator deployed, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd: Option<crate::api::etcd::EtcdLockserverStatus>,
}

/// Images for each flavour of MySQL; set exactly one.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.mysql56Compatible) ? 1 : 0) + (has(self.mysql80Compatible) ? 1 : 0) + (has(self.mariadbCompatible) ? 1 : 0) + (has(self.mariadb103Compatible) ? 1 : 0) <= 1").message("set only one mysqld flavour"))]
pub struct MysqldImage {
    /// Image compatible with Vitess' MySQL 5.6 flavour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mysql56_compatible: Option<String>,
    /// Image compatible with Vitess' MySQL 8.0 flavour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mysql80_compatible: Option<String>,
    /// Image compatible with Vitess' MariaDB flavour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mariadb_compatible: Option<String>,
    /// Image compatible with Vitess' MariaDB 10.3 flavour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mariadb103_compatible: Option<String>,
}

/// Container images of the cluster's components; unset ones take the operator's defaults.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VitessImages {
    /// vtctld image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vtctld: Option<String>,
    /// vtadmin image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vtadmin: Option<String>,
    /// vtorc image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vtorc: Option<String>,
    /// vtgate image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vtgate: Option<String>,
    /// vttablet image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vttablet: Option<String>,
    /// Image whose vtbackup binary runs in backup pods (beside the mysqld image).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vtbackup: Option<String>,
    /// mysqld image, by MySQL flavour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mysqld: Option<MysqldImage>,
    /// mysqld-exporter (Prometheus) image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mysqld_exporter: Option<String>,
}

/// Images a keyspace's tablets use, as handed down to keyspaces and shards.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VitessKeyspaceImages {
    /// vttablet image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vttablet: Option<String>,
    /// vtorc image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vtorc: Option<String>,
    /// vtbackup image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vtbackup: Option<String>,
    /// mysqld image, by MySQL flavour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mysqld: Option<MysqldImage>,
    /// mysqld-exporter image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mysqld_exporter: Option<String>,
}

/// Image pull policy for one image.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

/// Image pull policies per component.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VitessImagePullPolicies {
    /// Pull policy of the vtctld image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vtctld: Option<PullPolicy>,
    /// Pull policy of the vtadmin image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vtadmin: Option<PullPolicy>,
    /// Pull policy of the vtorc image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vtorc: Option<PullPolicy>,
    /// Pull policy of the vtgate image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vtgate: Option<PullPolicy>,
    /// Pull policy of the vttablet image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vttablet: Option<PullPolicy>,
    /// Pull policy of the vtbackup image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vtbackup: Option<PullPolicy>,
    /// Pull policy of the mysqld image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mysqld: Option<PullPolicy>,
    /// Pull policy of the mysqld-exporter image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mysqld_exporter: Option<PullPolicy>,
}

/// Image pull secrets for every pod of the cluster.
pub type ImagePullSecrets = Vec<LocalObjectReference>;

/// Changes to a Service the operator creates.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceOverrides {
    /// Annotations added to the Service (for load balancers, service meshes, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<StringMap>,
    /// Cluster IP to request; only honoured when the Service is first created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "clusterIP")]
    pub cluster_ip: Option<String>,
}

/// Which parts of the Vitess topology the operator registers and prunes. Every switch is on
/// unless set to false.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopoReconcileConfig {
    /// Register the cluster's cells as a cells alias in the topology.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub register_cells_aliases: Option<bool>,
    /// Register each cell's info (lockserver address and root) in the topology.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub register_cells: Option<bool>,
    /// Remove cells from the topology that the spec no longer has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune_cells: Option<bool>,
    /// Remove keyspaces from the topology that the spec no longer has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune_keyspaces: Option<bool>,
    /// Remove serving keyspace records of cells the spec no longer has. Not acted on yet
    /// (they are never removed); an explicit `true` is warned about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune_srv_keyspaces: Option<bool>,
    /// Remove shards from the topology that the spec no longer has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune_shards: Option<bool>,
    /// Remove cells from shard records when the shard no longer has tablets there. Not acted
    /// on yet (they are never removed); an explicit `true` is warned about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune_shard_cells: Option<bool>,
    /// Remove tablet records whose pods the spec no longer has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune_tablets: Option<bool>,
}

/// How changes reach running pods.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum UpdateStrategyType {
    /// Pods that need changes are only marked (`rollout.planetscale.com/scheduled`) until
    /// something external releases them.
    #[default]
    External,
    /// Changes roll out now: tablets one at a time per shard through a drain, primary last.
    Immediate,
}

/// How spec changes are rolled out to running pods.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VitessClusterUpdateStrategy {
    /// `External` (default) or `Immediate`.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "type")]
    pub type_: Option<UpdateStrategyType>,
    /// Options for the External strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalUpdateStrategyOptions>,
}

/// Options for the External update strategy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalUpdateStrategyOptions {
    /// Resource changes applied without waiting for release; only `storage` is supported: a
    /// larger data volume request grows the tablets' claims in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_resource_changes: Option<Vec<String>>,
}

/// A Kubernetes-style tri-state, as the Go operator reports availability.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum ConditionStatus {
    True,
    False,
    #[default]
    Unknown,
}

impl From<bool> for ConditionStatus {
    fn from(value: bool) -> Self {
        if value { Self::True } else { Self::False }
    }
}

/// Why an object the operator no longer wants could not be turned down yet.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrphanStatus {
    /// CamelCase reason.
    pub reason: String,
    /// What is blocking, for people.
    pub message: String,
}

/// Compute resources, as on a container.
pub type Resources = ResourceRequirements;

/// Standard conditions, listed by type (`Ready`, ...), as every kind reports them.
pub type Conditions = Vec<Condition>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_sentence_only() {
        assert_eq!(
            first_sentence("Limits are max. More info: x"),
            "Limits are max."
        );
        assert_eq!(first_sentence("One line\nsecond"), "One line");
        assert_eq!(first_sentence("No stop"), "No stop");
    }

    #[test]
    fn condition_status_from_bool() {
        assert_eq!(ConditionStatus::from(true), ConditionStatus::True);
        assert_eq!(ConditionStatus::from(false), ConditionStatus::False);
    }
}
