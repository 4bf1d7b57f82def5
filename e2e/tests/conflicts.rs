//! Conflicting writers (issue 18, item 5): a person (or a GitOps tool) edits what the
//! operator owns, deletes its children, strips its annotation from a tablet pod, and edits the
//! cluster's spec under a field manager of their own. The operator puts back what is its own
//! (the fields it sets, the children it makes), keeps what is theirs (their labels and
//! annotations on its children), replaces no tablet pod and moves no primary for it, follows
//! the spec the other manager wrote without ever writing the spec itself, and then goes quiet
//! (no write for a while: no flapping with the other writer).
//!
//! On KWOK pods with the fake vtctld standing in for Vitess.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;
use vitess_operator::k8s::apply::FIELD_MANAGER as OPERATOR;
use vitess_operator_e2e::requests;
use vitess_operator_e2e::{
    Operator, SharedFake, apply_yaml, dynamic, fake_primary, http_address, is_ready,
    one_shard_cluster_yaml, tablet_pods, wait_for, with_fake_vtctld,
};

const TIMEOUT: Duration = Duration::from_secs(120);
/// How long the operator must stay quiet once it has repaired everything.
const QUIET: Duration = Duration::from_secs(20);
const CLUSTER: &str = "conflicts";
const KEYSPACE: &str = "conflictsks";
/// The field manager of the person editing by hand (what `kubectl edit` records).
const PERSON: &str = "kubectl-edit";
/// The field manager of the GitOps tool that edits the cluster's spec.
const GITOPS: &str = "gitops-bot";
const THEIRS: &str = "example.com/owner";
const HASH: &str = "planetscale.com/desired-state-hash";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_writers_get_theirs_kept_and_ours_repaired_without_flapping() -> Result<()> {
    with_fake_vtctld("conflicts", async |client, ns, operator, fake, _| {
        let yaml = one_shard_cluster_yaml(CLUSTER, KEYSPACE, 2, "External", "vitess/lite:v24.0.3");
        apply_yaml(client, ns, &yaml).await?;
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        let primary = converged(&pods, fake, operator).await?;
        let tablets = tablet_pods(&pods, Some(CLUSTER)).await?;
        let children = Children::new(client, ns);
        let vtgate = children.one::<Deployment>("vtgate").await?;
        let vtctld = children.one::<Deployment>("vtctld").await?;
        let vtgate_services = children.all::<Service>("vtgate").await?;
        let pdbs = children.all::<PodDisruptionBudget>("etcd").await?;
        ensure!(
            !vtgate_services.is_empty() && !pdbs.is_empty(),
            "expected vtgate Services and an etcd PodDisruptionBudget, got {vtgate_services:?} \
             and {pdbs:?}"
        );

        // 1. A person scales the vtgate Deployment and labels and annotates it for their own
        //    use; deletes the vtctld Deployment, the vtgate Services and the etcd
        //    PodDisruptionBudget; strips the desired-state hash from a replica's pod and
        //    annotates it.
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
        let by_hand = PatchParams {
            field_manager: Some(PERSON.into()),
            ..PatchParams::default()
        };
        deployments
            .patch(
                &vtgate.name_any(),
                &by_hand,
                &Patch::Merge(json!({
                    "metadata": {"labels": {THEIRS: "payments"}, "annotations": {THEIRS: "payments"}},
                    "spec": {"replicas": 3},
                })),
            )
            .await
            .context("scaling the vtgate Deployment by hand")?;
        deployments
            .delete(&vtctld.name_any(), &DeleteParams::default())
            .await
            .context("deleting the vtctld Deployment")?;
        let services: Api<Service> = Api::namespaced(client.clone(), ns);
        for service in &vtgate_services {
            services.delete(service, &DeleteParams::default()).await?;
        }
        let budgets: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), ns);
        for pdb in &pdbs {
            budgets.delete(pdb, &DeleteParams::default()).await?;
        }
        let (replica_alias, replica) = tablets
            .iter()
            .find(|(alias, _)| **alias != primary)
            .context("a replica tablet")?;
        pods.patch(
            &replica.name_any(),
            &by_hand,
            &Patch::Merge(json!({"metadata": {"annotations": {HASH: null, THEIRS: "payments"}}})),
        )
        .await
        .context("stripping the desired-state hash from a replica's pod")?;

        // 2. The operator puts back what is its own, keeps theirs, replaces no pod.
        let vtgate_uid = vtgate.uid();
        wait_for(
            "the children repaired and the person's edits that are theirs kept",
            TIMEOUT,
            async |seen: &mut String| {
                operator.check_running()?;
                let gate = deployments.get(&vtgate.name_any()).await?;
                let replicas = gate.spec.as_ref().and_then(|s| s.replicas);
                let kept = gate.labels().get(THEIRS).is_some()
                    && gate.annotations().get(THEIRS).is_some();
                let ctld = deployments.get_opt(&vtctld.name_any()).await?;
                let services_back = children.all::<Service>("vtgate").await?;
                let pdbs_back = children.all::<PodDisruptionBudget>("etcd").await?;
                let pod = pods.get(&replica.name_any()).await?;
                let hash = pod.annotations().get(HASH).cloned();
                *seen = format!(
                    "vtgate replicas {replicas:?} (their label and annotation kept: {kept}), \
                     vtctld Deployment {}, vtgate Services {services_back:?}, etcd PDBs \
                     {pdbs_back:?}, {}'s hash {hash:?}",
                    if ctld.is_some() { "back" } else { "missing" },
                    replica.name_any(),
                );
                // What must never happen ends the wait at once (an error would be retried).
                if gate.uid() != vtgate_uid {
                    return Ok(Some(Err(anyhow::anyhow!(
                        "the vtgate Deployment was replaced"
                    ))));
                }
                if pod.uid() != replica.uid() {
                    return Ok(Some(Err(anyhow::anyhow!(
                        "{} was replaced after its hash annotation was removed",
                        replica.name_any()
                    ))));
                }
                Ok((replicas == Some(1)
                    && kept
                    && ctld.is_some()
                    && services_back == vtgate_services
                    && pdbs_back == pdbs
                    && hash.is_some())
                .then_some(Ok(())))
            },
        )
        .await??;
        let pod = pods.get(&replica.name_any()).await?;
        ensure!(
            pod.annotations().get(THEIRS).is_some(),
            "the person's annotation on {} was removed",
            replica.name_any()
        );

        // 3. Then quiet: no write for a while, while the person's edits stay.
        quiet(operator).await?;

        // 4. A GitOps tool, a field manager of its own, sets the vtgate count in the spec:
        //    followed; the operator never writes the spec.
        let clusters = dynamic(client, ns, "VitessCluster");
        clusters
            .patch(
                CLUSTER,
                &PatchParams {
                    field_manager: Some(GITOPS.into()),
                    ..PatchParams::default()
                },
                &Patch::Merge(json!({
                    "spec": {"cells": [{"name": "zone1", "gateway": {"replicas": 2}}]}
                })),
            )
            .await
            .context("editing the cluster's spec as another field manager")?;
        wait_for(
            "the vtgate Deployment to follow the spec (2 replicas)",
            TIMEOUT,
            async |seen: &mut String| {
                operator.check_running()?;
                let gate = deployments.get(&vtgate.name_any()).await?;
                let replicas = gate.spec.as_ref().and_then(|s| s.replicas);
                *seen = format!("replicas {replicas:?}");
                Ok((replicas == Some(2)).then_some(()))
            },
        )
        .await?;
        quiet(operator).await?;
        let cluster = clusters.get(CLUSTER).await?;
        let spec_writers: Vec<String> = cluster
            .managed_fields()
            .iter()
            .filter(|m| m.subresource.as_deref() != Some("status"))
            .filter(|m| m.manager.as_deref().is_some_and(|n| n.starts_with(OPERATOR)))
            .map(|m| format!("{:?} {:?}", m.manager, m.operation))
            .collect();
        ensure!(
            spec_writers.is_empty(),
            "the operator wrote the VitessCluster beyond its status: {spec_writers:?}"
        );

        // 5. Nothing of the above cost a tablet pod or a primary.
        let after = tablet_pods(&pods, Some(CLUSTER)).await?;
        let replaced: Vec<&String> = tablets
            .iter()
            .filter(|(alias, pod)| after.get(*alias).and_then(|p| p.uid()) != pod.uid())
            .map(|(alias, _)| alias)
            .collect();
        ensure!(replaced.is_empty(), "tablet pods replaced: {replaced:?}");
        let changes = {
            let guard = fake.lock().await;
            guard
                .as_ref()
                .map(|f| f.reparents(KEYSPACE, "-"))
                .unwrap_or_default()
        };
        ensure!(
            changes.len() == 1,
            "the primary should have been elected once and never moved ({replica_alias} was \
             edited, {primary} the primary): Vitess' changes of primary {changes:?}"
        );
        Ok(())
    })
    .await
}

/// Waits for 2 Ready tablets and a primary Vitess has; returns its alias.
async fn converged(pods: &Api<Pod>, fake: &SharedFake, operator: &mut Operator) -> Result<String> {
    wait_for(
        "2 Ready tablets and a primary",
        TIMEOUT,
        async |seen: &mut String| {
            operator.check_running()?;
            let tablets = tablet_pods(pods, Some(CLUSTER)).await?;
            let ready = tablets.values().filter(|p| is_ready(p)).count();
            let primary = fake_primary(fake, KEYSPACE, "-").await;
            *seen = format!("{ready}/2 tablets Ready, primary {primary:?}");
            Ok(primary.filter(|p| ready == 2 && tablets.contains_key(p)))
        },
    )
    .await
}

/// The operator's write requests so far (create, update, patch, delete), from its metrics.
async fn writes(operator: &mut Operator) -> Result<u64> {
    let address = http_address(operator).await?;
    Ok(requests::mutating(&requests::requests(&address).await?))
}

/// Fails if the operator writes anything during [`QUIET`].
async fn quiet(operator: &mut Operator) -> Result<()> {
    // Status and Events that follow the repairs may still be on their way.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before = writes(operator).await?;
    tokio::time::sleep(QUIET).await;
    operator.check_running()?;
    let after = writes(operator).await?;
    ensure!(
        after == before,
        "the operator made {} write requests in {QUIET:?} after repairing (flapping with \
         another writer?)",
        after - before
    );
    Ok(())
}

/// The children of the cluster by component, found by their labels.
struct Children<'a> {
    client: &'a Client,
    ns: &'a str,
}

impl<'a> Children<'a> {
    fn new(client: &'a Client, ns: &'a str) -> Self {
        Self { client, ns }
    }

    /// The names of the `K`s of `component`, sorted.
    async fn all<K>(&self, component: &str) -> Result<Vec<String>>
    where
        K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), self.ns);
        let selector =
            format!("planetscale.com/component={component},planetscale.com/cluster={CLUSTER}");
        let mut names: Vec<String> = api
            .list(&ListParams::default().labels(&selector))
            .await
            .with_context(|| format!("listing {} labelled {selector}", K::kind(&())))?
            .items
            .iter()
            .filter(|o| o.meta().deletion_timestamp.is_none())
            .map(ResourceExt::name_any)
            .collect();
        names.sort();
        Ok(names)
    }

    /// The one `K` of `component`.
    async fn one<K>(&self, component: &str) -> Result<K>
    where
        K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
    {
        let names = self.all::<K>(component).await?;
        let [name] = names.as_slice() else {
            anyhow::bail!(
                "expected one {} of {component}, found {names:?}",
                K::kind(&())
            );
        };
        let api: Api<K> = Api::namespaced(self.client.clone(), self.ns);
        Ok(api.get(name).await?)
    }
}
