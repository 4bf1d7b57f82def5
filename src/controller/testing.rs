//! What the reconcile tests share: a [`Context`] over the stand-in API server of
//! [`crate::k8s::mock`], and the example cluster a user would apply.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, PodCondition, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::Context;
use crate::api::VitessCluster;
use crate::cli::yaml;
use crate::k8s::mock::{ApiServer, Call};
use crate::vitess::{Clients, Endpoints};
use vtctld_fake::FakeVtctld;

/// The example cluster's zone1 vtgate Deployment, as built.
pub fn example_vtgate() -> k8s_openapi::api::apps::v1::Deployment {
    let cell = crate::desired::cluster::children(&example_cluster())
        .expect("children")
        .cells
        .remove(0);
    crate::desired::vtgate::build(&cell)
        .expect("vtgate")
        .deployment
}

/// The namespace every test object lives in.
pub const NAMESPACE: &str = "default";

/// A context whose client talks to a fresh stand-in API server, with every cluster's vtctld at
/// `vtctld` (`HOST:PORT`), or the default in-cluster address when `None`.
pub fn context(vtctld: Option<&str>) -> (Arc<Context>, ApiServer) {
    let (client, server) = ApiServer::start();
    let overrides: Vec<String> = vtctld.map(|a| format!("*={a}")).into_iter().collect();
    let endpoints = Endpoints::parse(&overrides).expect("vtctld address");
    let ctx = Context::new(client, Some(NAMESPACE.into()), Clients::new(endpoints));
    (Arc::new(ctx), server)
}

/// `examples/initial-cluster.yaml`'s VitessCluster, in [`NAMESPACE`].
pub fn example_cluster() -> VitessCluster {
    cluster_in(include_str!("../../examples/initial-cluster.yaml"))
}

/// The VitessCluster of a YAML file's text, in [`NAMESPACE`].
pub fn cluster_in(text: &str) -> VitessCluster {
    let docs = yaml::parse_documents(text).expect("the example parses");
    let doc = docs
        .into_iter()
        .find(|d| d["kind"] == "VitessCluster")
        .expect("the example has a VitessCluster");
    let mut cluster: VitessCluster = serde_json::from_value(doc).expect("a VitessCluster");
    cluster.metadata.namespace = Some(NAMESPACE.into());
    cluster
}

/// The requests, as `verb plural/name`.
pub fn requests(calls: &[Call]) -> Vec<&str> {
    calls.iter().map(|c| c.what.as_str()).collect()
}

/// The requests that changed what the server stores.
pub fn writes(calls: &[Call]) -> Vec<&str> {
    calls
        .iter()
        .filter(|c| c.wrote)
        .map(|c| c.what.as_str())
        .collect()
}

/// A fake vtctld, a context whose clusters use it, the example cluster stored (shards read
/// it for vtctld's TLS settings), and its first keyspace's first shard stored. Keep the
/// vtctld: it stops when dropped.
pub async fn example_shard() -> (FakeVtctld, Arc<Context>, ApiServer, crate::api::VitessShard) {
    shard_of(example_cluster()).await
}

/// [`example_shard`] for the cluster of a YAML file's text.
pub async fn shard_in(
    text: &str,
) -> (FakeVtctld, Arc<Context>, ApiServer, crate::api::VitessShard) {
    shard_of(cluster_in(text)).await
}

async fn shard_of(
    cluster: VitessCluster,
) -> (FakeVtctld, Arc<Context>, ApiServer, crate::api::VitessShard) {
    let vtctld = FakeVtctld::start(([127, 0, 0, 1], 0).into())
        .await
        .expect("fake vtctld");
    let address = vtctld.local_addr().to_string();
    let (ctx, server) = context(Some(&address));
    server.insert_object(&cluster);
    let children = crate::desired::cluster::children(&cluster).expect("children");
    let shard = crate::desired::keyspace::shards(&children.keyspaces[0])
        .expect("shards")
        .remove(0);
    let shard = server.insert_object(&shard);
    (vtctld, ctx, server, shard)
}

/// Pod `name` as the stand-in API server stores it.
pub fn stored_pod(server: &ApiServer, name: &str) -> Pod {
    let stored = server
        .get("", "pods", NAMESPACE, name)
        .expect("the pod was made");
    serde_json::from_value(stored).expect("a pod")
}

/// Stores pod `name` changed by `change` (its status as kubelet would report it, the
/// annotations a user sets), and returns it as stored.
pub fn change_pod(server: &ApiServer, name: &str, change: impl FnOnce(&mut Pod)) -> Pod {
    let mut pod = stored_pod(server, name);
    change(&mut pod);
    server.insert_object(&pod)
}

/// A lost disk replaced by hand: the claim of pod `name` deleted (kept, marked as being
/// deleted, as the pvc-protection finalizer keeps it while its pod runs), then the pod, which
/// goes. Returns the claim, to be removed when the test lets it go.
pub fn lose_disk(server: &ApiServer, name: &str) -> PersistentVolumeClaim {
    let pod = stored_pod(server, name);
    let stored = server
        .get("", "persistentvolumeclaims", NAMESPACE, name)
        .expect("the claim was made");
    let mut claim: PersistentVolumeClaim = serde_json::from_value(stored).expect("a claim");
    claim.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
    server.insert_object(&claim);
    server.remove_like(&pod);
    claim
}

/// `pod` Running and Ready since `ago` seconds, as kubelet reports it.
pub fn ready_since(pod: &mut Pod, ago: i64) {
    let since = Timestamp::now()
        .checked_sub(SignedDuration::from_secs(ago))
        .expect("a time");
    pod.status = Some(PodStatus {
        phase: Some("Running".into()),
        conditions: Some(vec![PodCondition {
            type_: "Ready".into(),
            status: "True".into(),
            last_transition_time: Some(Time(since)),
            ..Default::default()
        }]),
        ..Default::default()
    });
}
