//! A primary lost outright (issue 18, item 6): the node that runs the primary's tablet pod
//! disappears, and the pod with it (deleted at once, as the pod garbage collector does for a
//! node that is gone). On KWOK nodes of the test's own (two; the tablets are kept on them,
//! one per node, by the pool's `affinity`), with the fake vtctld and no vtorc.
//!
//! What the operator does, and what is checked: it creates the pod again at once, with the
//! same name, on the same claim (the PVC is never deleted or replaced); the pod cannot be
//! scheduled (its node is gone, the other one holds the replica), and the shard says so:
//! `Ready` False, `PrimaryNotReady`, naming the primary and who can move it. The operator does
//! not elect another primary by itself — Vitess still names the lost tablet, no
//! PlannedReparentShard is sent and the replica is left alone — because a primary that is
//! only unreachable may still hold writes no replica has; that decision is vtorc's, or a
//! person's (`vtctldclient EmergencyReparentShard`; the real node's suite shows vtorc making
//! it). Once a node is there for it (a replacement node joins), the pod starts on its claim,
//! the tablet comes back as the primary Vitess still names, and the shard serves again with
//! no change of primary. Recovery is from the replacement node's arrival to the shard
//! serving.

use super::*;
use k8s_openapi::api::core::v1::Node;
use kube::api::PostParams;
use vitess_operator_e2e::condition_detail;

/// The label that keeps a run's tablets on the run's own nodes.
const GROUP: &str = "e2e.vitess.io/lost-primary";

impl Suite<'_> {
    /// A cluster of 2 tablets on 2 nodes of its own; the primary's node and pod are lost,
    /// then a replacement node joins.
    pub(super) async fn lost_primary(&mut self, run: usize) -> Result<Survived> {
        self.ready_for_a_run().await?;
        let name = format!("lost{run}");
        let group = format!("{}-{name}", self.ns);
        let nodes = Nodes {
            api: Api::all(self.client.clone()),
            group: group.clone(),
        };
        nodes.remove_all().await?;
        let result = async {
            nodes.add("a").await?;
            nodes.add("b").await?;
            self.lose_the_primary(&name, &nodes).await
        }
        .await;
        // Done with it: the cluster goes (its PVCs stay), then the nodes.
        let cleaned = async {
            dynamic(self.client, self.ns, "VitessCluster")
                .delete(&name, &DeleteParams::background())
                .await
                .with_context(|| format!("deleting VitessCluster {name}"))?;
            let pods = self.pods();
            let cluster = name.as_str();
            until("the cluster's tablet pods to go", async || {
                Ok(tablet_pods(&pods, Some(cluster)).await?.is_empty())
            })
            .await?;
            nodes.remove_all().await
        }
        .await;
        let survived = result?;
        cleaned?;
        Ok(survived)
    }

    async fn lose_the_primary(&mut self, name: &str, nodes: &Nodes) -> Result<Survived> {
        let keyspace = format!("{name}ks");
        let mut witness = Witness::new(self.client, self.ns, name);
        apply_yaml(
            self.client,
            self.ns,
            &lost_primary_yaml(name, &keyspace, &nodes.group)?,
        )
        .await?;
        let (primary, before) = self
            .converged((name, &keyspace), 2, None, Some(&mut witness))
            .await?;
        let changes_before = reparents(self.fake, &keyspace).await.len();
        let lost = before[&primary].clone();
        let lost_pod = lost.name_any();
        let lost_node = lost
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .context("the primary's pod has no node")?;
        let (replica, replica_pod) = before
            .iter()
            .find(|(alias, _)| **alias != primary)
            .map(|(alias, pod)| (alias.clone(), pod.clone()))
            .context("no replica")?;
        witness.observe().await?;

        // The node goes, and its pod with it.
        nodes
            .api
            .delete(&lost_node, &DeleteParams::default())
            .await
            .with_context(|| format!("deleting node {lost_node}"))?;
        let pods = self.pods();
        pods.delete(
            &lost_pod,
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..DeleteParams::default()
            },
        )
        .await
        .with_context(|| format!("deleting pod {lost_pod}"))?;

        // The operator puts the pod back on its claim and says why the shard does not serve.
        let shards = dynamic(self.client, self.ns, "VitessShard");
        let fake = self.fake;
        let cluster_label = format!("{CLUSTER_LABEL}={name}");
        let operator = &mut *self.operator;
        let message = wait_for(
            &format!("{lost_pod} created again and the shard saying its primary is not ready"),
            TIMEOUT,
            async |seen: &mut String| {
                operator.check_running()?;
                witness.observe().await?;
                let pod = pods.get_opt(&lost_pod).await?;
                let shard = shards
                    .list(&ListParams::default().labels(&cluster_label))
                    .await?
                    .items
                    .into_iter()
                    .next();
                let ready = shard.as_ref().and_then(|s| condition_detail(s, "Ready"));
                *seen = format!(
                    "{lost_pod}: uid {:?}, node {:?}; shard Ready {ready:?}",
                    pod.as_ref().and_then(|p| p.uid()),
                    pod.as_ref()
                        .and_then(|p| p.spec.as_ref())
                        .and_then(|s| s.node_name.clone())
                );
                let again = pod.is_some_and(|p| p.uid() != lost.uid());
                Ok(match ready {
                    Some((status, reason, message))
                        if again && status == "False" && reason == "PrimaryNotReady" =>
                    {
                        Some(message)
                    }
                    _ => None,
                })
            },
        )
        .await?;
        ensure!(
            message.contains(&primary),
            "the shard's Ready message does not name the primary {primary}: {message}"
        );
        // A while without the primary: nothing is elected in its place, the replica is left
        // alone.
        let outage = OUTAGE_AT_LEAST + self.rng.duration(OUTAGE_AT_LEAST);
        tokio::time::sleep(outage).await;
        let vitess = fake_primary(self.fake, &keyspace, SHARD).await;
        let changes = reparents(self.fake, &keyspace).await;
        ensure!(
            vitess.as_deref() == Some(primary.as_str()) && changes.len() == changes_before,
            "a primary was chosen while {primary} was lost: Vitess' primary {vitess:?}, \
             changes {:?}",
            &changes[changes_before.min(changes.len())..]
        );
        let replica_now = pods.get(&replica_pod.name_any()).await?;
        ensure!(
            replica_now.uid() == replica_pod.uid()
                && !has(&replica_now, STARTED)
                && !has(&replica_now, FINISHED),
            "the replica {replica} was touched while the primary was lost: {:?}",
            replica_now.annotations()
        );
        let prs = prs_calls(fake, &keyspace).await;
        witness.check().await?;

        // A replacement node joins: the pod starts there and the tablet is the primary again.
        nodes.add("c").await?;
        let joined = Instant::now();
        let (primary_after, after) = self
            .converged((name, &keyspace), 2, None, Some(&mut witness))
            .await?;
        let recovered = joined.elapsed();
        let changes = reparents(self.fake, &keyspace).await;
        ensure!(
            primary_after == primary && changes.len() == changes_before,
            "the primary changed: {primary} -> {primary_after}, changes {:?}",
            &changes[changes_before.min(changes.len())..]
        );
        ensure!(
            prs_calls(self.fake, &keyspace).await == prs,
            "PlannedReparentShard sent after the replacement node joined"
        );
        ensure!(
            after.get(&replica).and_then(|p| p.uid()) == replica_pod.uid(),
            "the replica's pod was replaced"
        );
        witness.check().await?;
        Ok(Survived {
            recovered,
            how: format!("{primary}'s node {lost_node} lost, {outage:?} without a primary"),
        })
    }
}

/// At least this long with the primary lost before a replacement node joins (a little more
/// at random).
const OUTAGE_AT_LEAST: Duration = Duration::from_secs(3);

/// A run's own KWOK nodes, `<group>-<suffix>`, labelled with the group.
struct Nodes {
    api: Api<Node>,
    group: String,
}

impl Nodes {
    /// Adds a node (managed by KWOK: `type=kwok`) and waits until it is Ready.
    async fn add(&self, suffix: &str) -> Result<()> {
        let name = format!("{}-{suffix}", self.group);
        let node: Node = serde_json::from_value(json!({
            "metadata": {
                "name": name,
                "labels": {
                    "type": "kwok",
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    GROUP: self.group,
                },
                "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
            },
            "status": {
                "allocatable": {"cpu": "16", "memory": "64Gi", "pods": "110"},
                "capacity": {"cpu": "16", "memory": "64Gi", "pods": "110"},
            },
        }))?;
        self.api
            .create(&PostParams::default(), &node)
            .await
            .with_context(|| format!("creating node {name}"))?;
        let api = &self.api;
        until(&format!("node {name} to be Ready"), async || {
            Ok(api.get(&name).await?.status.is_some_and(|s| {
                s.conditions
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            }))
        })
        .await
    }

    /// Deletes every node of the group (a failed earlier run may have left some).
    async fn remove_all(&self) -> Result<()> {
        let mine = ListParams::default().labels(&format!("{GROUP}={}", self.group));
        for node in self.api.list(&mine).await?.items {
            self.api
                .delete(&node.name_any(), &DeleteParams::default())
                .await
                .with_context(|| format!("deleting node {}", node.name_any()))?;
        }
        Ok(())
    }
}

/// A cluster of one shard with 2 tablets that run only on the nodes labelled with `group`,
/// never two on one node, as JSON documents.
fn lost_primary_yaml(name: &str, keyspace: &str, group: &str) -> Result<String> {
    let yaml = one_shard_cluster_yaml(name, keyspace, 2, "External", IMAGES[0]);
    let mut docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&yaml)?;
    let pool = docs
        .iter_mut()
        .find(|d| d["kind"] == "VitessCluster")
        .and_then(|d| {
            d.pointer_mut("/spec/keyspaces/0/partitionings/0/equal/shardTemplate/tabletPools/0")
        })
        .context("no tablet pool")?;
    pool["affinity"] = json!({
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [
                {"key": GROUP, "operator": "In", "values": [group]},
            ]}],
        }},
        "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
            "topologyKey": "kubernetes.io/hostname",
            "labelSelector": {"matchLabels": {
                CLUSTER_LABEL: name,
                "planetscale.com/component": "vttablet",
            }},
        }]},
    });
    json_documents(&docs)
}
