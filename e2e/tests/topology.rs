//! What Vitess knows, end to end against the REAL vtctld (Vitess v24) of the local control
//! plane: after the two-keyspace example is applied, `vtctldclient` lists its cells and its
//! keyspaces with their durability policies; a keyspace removed from the spec is removed from
//! Vitess with `pruneKeyspaces` on, and left there with it off.
//!
//! The keyspace names get a unique suffix: the real vtctld's topology outlives test runs.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use kube::api::ListParams;
use vitess_operator_e2e::{
    Operator, apply_yaml, condition, dynamic, unique_suffix, vtctld_addr, vtctldclient, wait_for,
    with_operator_at, workspace_dir,
};

const TIMEOUT: Duration = Duration::from_secs(120);
/// The local control plane's etcd (e2e/cluster's ETCD_CLIENT_PORT), reachable by vtctld.
const CELL_TOPO: &str = "127.0.0.1:23790";

/// The two-keyspace example with suffixed keyspace names, `commerce` turned down at once
/// (`Immediate`), `customer` with `customer_policy`, and the keyspaces in `keep` only.
fn example(suffix: &str, customer_policy: &str, prune: bool, keep: &[&str]) -> Result<String> {
    let path = workspace_dir().join("examples/two-keyspaces.yaml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text)?;
    for doc in &mut docs {
        if doc["kind"] != "VitessCluster" {
            continue;
        }
        let keyspaces = doc["spec"]["keyspaces"]
            .as_array_mut()
            .context("the example has no keyspaces")?;
        keyspaces.retain(|k| keep.iter().any(|n| k["name"] == *n));
        for keyspace in keyspaces.iter_mut() {
            if keyspace["name"] == "customer" {
                keyspace["turndownPolicy"] = customer_policy.into();
            }
            let name = format!("{}{suffix}", keyspace["name"].as_str().unwrap_or_default());
            keyspace["name"] = name.into();
        }
        doc["spec"]["topologyReconciliation"] = serde_json::json!({"pruneKeyspaces": prune});
        // vtctld visits every cell's topology when it creates or deletes a keyspace, so the
        // cells must point at an etcd it can reach: the local control plane's (e2e/cluster).
        doc["spec"]["globalLockserver"] = serde_json::json!({"cellInfoAddress": CELL_TOPO});
    }
    let yaml: Vec<String> = docs
        .iter()
        .map(serde_saphyr::to_string)
        .collect::<Result<_, _>>()?;
    Ok(yaml.join("---\n"))
}

async fn keyspaces() -> Result<String> {
    vtctldclient(&["GetKeyspaces"]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vitess_knows_the_cells_and_keyspaces_of_the_spec() -> Result<()> {
    let suffix = unique_suffix().replace('-', "");
    let commerce = format!("commerce{suffix}");
    let customer = format!("customer{suffix}");
    with_operator_at(
        "topology",
        None,
        &vtctld_addr(),
        async |client, ns, operator| {
            let clusters = dynamic(client, ns, "VitessCluster");
            let registered = async |operator: &mut Operator| {
                wait_for(
                    "TopologyRegistered True",
                    TIMEOUT,
                    async |seen: &mut String| {
                        operator.check_running()?;
                        let cluster = clusters.get("example").await?;
                        let registered = condition(&cluster, "TopologyRegistered");
                        *seen = format!("{registered:?}: {}", cluster.data["status"]["conditions"]);
                        Ok((registered.as_deref() == Some("True")).then_some(()))
                    },
                )
                .await
            };

            apply_yaml(
                client,
                ns,
                &example(&suffix, "RequireIdle", true, &["commerce", "customer"])?,
            )
            .await?;
            registered(operator).await?;
            let cells = vtctldclient(&["GetCellInfoNames"]).await?;
            ensure!(
                cells.lines().any(|l| l.trim() == "zone1")
                    && cells.lines().any(|l| l.trim() == "zone2"),
                "GetCellInfoNames does not list zone1 and zone2: {cells}"
            );
            let listed = keyspaces().await?;
            ensure!(
                listed.contains(&format!("\"{commerce}\""))
                    && listed.contains(&format!("\"{customer}\"")),
                "GetKeyspaces lacks {commerce} or {customer}: {listed}"
            );
            for (keyspace, policy) in [(&commerce, "none"), (&customer, "semi_sync")] {
                let record = vtctldclient(&["GetKeyspace", keyspace]).await?;
                ensure!(
                    record.contains(&format!("\"durability_policy\": \"{policy}\"")),
                    "keyspace {keyspace} should have durability policy {policy}: {record}"
                );
            }

            // Pruning on: commerce (Immediate) leaves the spec, and Vitess.
            apply_yaml(
                client,
                ns,
                &example(&suffix, "RequireIdle", true, &["customer"])?,
            )
            .await?;
            wait_for(
                &format!("{commerce} to leave Vitess"),
                TIMEOUT,
                async |seen: &mut String| {
                    operator.check_running()?;
                    let listed = keyspaces().await?;
                    *seen = listed.clone();
                    Ok((!listed.contains(&format!("\"{commerce}\""))).then_some(()))
                },
            )
            .await?;
            ensure!(
                keyspaces().await?.contains(&format!("\"{customer}\"")),
                "{customer} was removed too"
            );

            // Pruning off: customer (now Immediate) leaves the spec and its VitessKeyspace goes,
            // but Vitess keeps the keyspace.
            apply_yaml(
                client,
                ns,
                &example(&suffix, "Immediate", false, &["customer"])?,
            )
            .await?;
            let vtks = dynamic(client, ns, "VitessKeyspace");
            // The policy that counts is the VitessKeyspace's: wait until the cluster handed
            // it down before removing the keyspace.
            wait_for(
                "customer's VitessKeyspace to be Immediate",
                TIMEOUT,
                async |seen: &mut String| {
                    operator.check_running()?;
                    let policies: Vec<String> = vtks
                        .list(&ListParams::default())
                        .await?
                        .items
                        .iter()
                        .map(|k| k.data["spec"]["turndownPolicy"].to_string())
                        .collect();
                    *seen = format!("{policies:?}");
                    Ok((policies == ["\"Immediate\""]).then_some(()))
                },
            )
            .await?;
            apply_yaml(client, ns, &example(&suffix, "Immediate", false, &[])?).await?;
            wait_for(
                "the VitessKeyspaces to be deleted",
                TIMEOUT,
                async |seen: &mut String| {
                    operator.check_running()?;
                    let left: Vec<String> = vtks
                        .list(&ListParams::default())
                        .await?
                        .items
                        .iter()
                        .filter(|k| k.metadata.deletion_timestamp.is_none())
                        .filter_map(|k| k.metadata.name.clone())
                        .collect();
                    *seen = format!("{left:?}");
                    Ok(left.is_empty().then_some(()))
                },
            )
            .await?;
            let listed = keyspaces().await?;
            ensure!(
                listed.contains(&format!("\"{customer}\"")),
                "{customer} was removed from Vitess with pruneKeyspaces off: {listed}"
            );
            vtctldclient(&["DeleteKeyspace", "--recursive", &customer]).await?;
            Ok(())
        },
    )
    .await
}
