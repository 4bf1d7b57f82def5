//! The operator killed during a turndown (issue 18, item 1): a keyspace with
//! `turndownPolicy: Immediate` removed from the spec of a cluster that keeps another one. The
//! operator first asks Vitess to forget it (`DeleteKeyspace`, recursive), then deletes its
//! VitessKeyspace, whose shards and tablet pods go with it; its PVCs stay (the operator never
//! deletes a claim). Kill points, in turn: right after the apply, while `DeleteKeyspace` is in
//! flight, once Vitess forgot the keyspace but before the operator read the answer, once the
//! VitessKeyspace is gone, once its tablet pods are being deleted.
//!
//! Checked after the restart: Vitess no longer has the keyspace, nothing of it is left in
//! Kubernetes but its claims, the cluster keeps no orphan; the other keyspace's pods were not
//! replaced and its primary never moved; no PVC, etcd member or EtcdLockserver was lost.

use super::*;

/// The cluster of the turndown runs, and the keyspace it keeps.
const TURNDOWN: &str = "tdown";
const KEPT: &str = "keptks";

impl Suite<'_> {
    /// Adds keyspace `gone<run>` to the `tdown` cluster, waits for its primary, removes it
    /// again and kills the operator at kill point `run` (of 5, in turn).
    pub(super) async fn turndown(&mut self, run: usize) -> Result<Survived> {
        self.ready_for_a_run().await?;
        let gone = format!("gone{run}");
        let mut witness = Witness::new(self.client, self.ns, TURNDOWN);
        apply_yaml(self.client, self.ns, &turndown_yaml(Some(&gone))?).await?;
        let kept_before = self.keyspace_serving(KEPT, 2, &mut witness).await?;
        self.keyspace_serving(&gone, 1, &mut witness).await?;
        let changes_before = reparents(self.fake, KEPT).await.len();
        let point = run % 5;
        if point == 1 || point == 2 {
            set_fake_mode(self.fake, Mode::HangMethod("DeleteKeyspace")).await;
        }
        apply_yaml(self.client, self.ns, &turndown_yaml(None)?).await?;
        let fake = self.fake;
        let mine = format!("{CLUSTER_LABEL}={TURNDOWN},planetscale.com/keyspace={gone}");
        let at = match point {
            0 => "right after the apply",
            1 | 2 => {
                until("DeleteKeyspace to be sent", async || {
                    Ok(deletes(fake, &gone).await > 0)
                })
                .await?;
                if point == 1 {
                    "while DeleteKeyspace was in flight"
                } else {
                    set_fake_mode(fake, Mode::Serve).await;
                    until("Vitess to forget the keyspace", async || {
                        Ok(!in_vitess(fake, &gone).await)
                    })
                    .await?;
                    "once Vitess forgot the keyspace, before the operator saw the answer"
                }
            }
            3 => {
                let keyspaces = dynamic(self.client, self.ns, "VitessKeyspace");
                until("the VitessKeyspace to go", async || {
                    Ok(keyspaces
                        .list(&ListParams::default().labels(&mine))
                        .await?
                        .items
                        .iter()
                        .all(|k| k.metadata.deletion_timestamp.is_some()))
                })
                .await?;
                "once the VitessKeyspace was deleted"
            }
            _ => {
                let pods = self.pods();
                until("its tablet pods to be deleted", async || {
                    Ok(pods
                        .list(&ListParams::default().labels(&mine))
                        .await?
                        .items
                        .iter()
                        .all(|p| p.metadata.deletion_timestamp.is_some()))
                })
                .await?;
                "once its tablet pods were being deleted"
            }
        };
        let how = if point == 2 {
            at.to_string()
        } else {
            format!("{at} (+{:?})", self.jitter().await)
        };
        witness.observe().await?;
        let restarted = self.kill_and_restart().await?;

        let clusters = dynamic(self.client, self.ns, "VitessCluster");
        let (client, ns, operator) = (self.client, self.ns, &mut *self.operator);
        wait_for(
            &format!("keyspace {gone} turned down"),
            TIMEOUT,
            async |seen: &mut String| {
                operator.check_running()?;
                witness.observe().await?;
                let left = leftovers(client, ns, &mine).await?;
                let vitess = in_vitess(fake, &gone).await;
                let cluster = clusters.get(TURNDOWN).await?;
                let orphans = &cluster.data["status"]["orphanedKeyspaces"];
                *seen = format!(
                    "left in Kubernetes: {left:?}; in Vitess: {vitess}; orphaned keyspaces: \
                     {orphans}"
                );
                let no_orphans = orphans.as_object().is_none_or(|o| o.is_empty());
                Ok((left.is_empty() && !vitess && no_orphans).then_some(()))
            },
        )
        .await?;
        let recovered = restarted.elapsed();
        let sent = deletes(self.fake, &gone).await;
        ensure!(
            (1..=2).contains(&sent),
            "DeleteKeyspace {gone} was sent {sent} times (once, or once more after the restart)"
        );
        let kept_after = self.keyspace_serving(KEPT, 2, &mut witness).await?;
        same_pods(&kept_before.1, &kept_after.1)?;
        let changes = reparents(self.fake, KEPT).await;
        ensure!(
            changes.len() == changes_before && kept_after.0 == kept_before.0,
            "the kept keyspace's primary moved during the turndown: {:?}",
            &changes[changes_before.min(changes.len())..]
        );
        // Its claims stay, as for every removed tablet: the witness fails on a lost one.
        witness.check().await?;
        Ok(Survived { recovered, how })
    }

    /// Waits until `keyspace` of the `tdown` cluster has `tablets` Ready tablet pods and a
    /// primary among them in Vitess; returns the primary and the pods by alias.
    async fn keyspace_serving(
        &mut self,
        keyspace: &str,
        tablets: usize,
        witness: &mut Witness<'_>,
    ) -> Result<(String, BTreeMap<String, Pod>)> {
        let pods = self.pods();
        let (fake, operator) = (self.fake, &mut *self.operator);
        let selector = format!(
            "planetscale.com/component=vttablet,{CLUSTER_LABEL}={TURNDOWN},\
             planetscale.com/keyspace={keyspace}"
        );
        wait_for(
            &format!("keyspace {keyspace}: {tablets} Ready tablets and a primary"),
            TIMEOUT,
            async |seen: &mut String| {
                operator.check_running()?;
                witness.observe().await?;
                let all: BTreeMap<String, Pod> = pods
                    .list(&ListParams::default().labels(&selector))
                    .await?
                    .items
                    .into_iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                    .filter_map(|p| tablet_of(&p).map(|t| (t.alias.to_string(), p)))
                    .collect();
                let ready = all.values().filter(|p| is_ready(p)).count();
                let primary = fake_primary(fake, keyspace, SHARD).await;
                *seen = format!(
                    "{} pods, {ready} Ready, Vitess' primary {primary:?}",
                    all.len()
                );
                Ok(match primary {
                    Some(p) if all.len() == tablets && ready == tablets && all.contains_key(&p) => {
                        Some((p, all))
                    }
                    _ => None,
                })
            },
        )
        .await
    }
}

/// How many DeleteKeyspace calls of `keyspace` the fake received.
async fn deletes(fake: &SharedFake, keyspace: &str) -> usize {
    calls(fake, "DeleteKeyspace", &format!("{keyspace} "))
        .await
        .len()
}

/// Whether the fake's topology still has the keyspace.
async fn in_vitess(fake: &SharedFake, keyspace: &str) -> bool {
    let guard = fake.lock().await;
    guard
        .as_ref()
        .is_some_and(|f| f.durability_policy(keyspace).is_some())
}

/// What is left of a removed keyspace (by `selector`) besides its claims: its VitessKeyspace,
/// VitessShards and pods, as kind/name.
async fn leftovers(client: &Client, ns: &str, selector: &str) -> Result<Vec<String>> {
    let params = ListParams::default().labels(selector);
    let mut left = Vec::new();
    for kind in ["VitessKeyspace", "VitessShard"] {
        for object in dynamic(client, ns, kind).list(&params).await?.items {
            left.push(format!("{kind}/{}", object.name_any()));
        }
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    for pod in pods.list(&params).await?.items {
        left.push(format!("Pod/{}", pod.name_any()));
    }
    Ok(left)
}

/// The `tdown` cluster: keyspace `keptks` of 2 tablets, and `gone` of one if given (both
/// `turndownPolicy: Immediate`), as JSON documents.
fn turndown_yaml(gone: Option<&str>) -> Result<String> {
    let yaml = one_shard_cluster_yaml(TURNDOWN, KEPT, 2, "External", IMAGES[0]);
    let mut docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&yaml)?;
    if let Some(gone) = gone {
        let cluster = docs
            .iter_mut()
            .find(|d| d["kind"] == "VitessCluster")
            .context("no VitessCluster")?;
        let mut keyspace = cluster["spec"]["keyspaces"][0].clone();
        keyspace["name"] = gone.into();
        *keyspace
            .pointer_mut("/partitionings/0/equal/shardTemplate/tabletPools/0/replicas")
            .context("no tablet pool")? = 1.into();
        if let Some(keyspaces) = cluster["spec"]["keyspaces"].as_array_mut() {
            keyspaces.push(keyspace);
        }
    }
    json_documents(&docs)
}
