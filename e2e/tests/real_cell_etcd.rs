//! A cell with its own etcd, on the real node: `examples/initial-cluster.yaml` with
//! `lockserver: {etcd: {}}` on its cell `zone1`, applied as a user would. The operator runs the
//! cell's EtcdLockserver (three real etcd members) beside the global one and registers the
//! cell there; the real vttablets then keep their records in the cell's own etcd, and the
//! first primary is elected through the real vtctld, which finds the tablets there. The test
//! reads both etcds with `etcdctl`: the cell's holds the cell's tablet records, the global one
//! holds none of them.
//!
//! Figures (time from apply to the first primary) go to `target/e2e-figures/real-cell-etcd.json`.
//!
//! Without the node this test skips, except under `CI=true`, where it fails.

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use vitess_operator::domain::names;
use vitess_operator_e2e::{
    dynamic, kubectl, kubectl_with_stdin, on_real_node, start_on_real_node, wait_for_primary,
    workspace_dir, write_figures,
};

/// From apply to a primary: two etcd clusters, vtctld, vtgate and two MySQL tablets.
const CONVERGE: Duration = Duration::from_secs(600);
const CLUSTER: &str = "example";
const SHARD: &str = "example-commerce-x-x-0f5afee6";

/// The example on the real node, its cell `zone1` with an etcd of its own placed as the
/// global one is, its keyspace without semi-sync.
fn cluster_yaml() -> Result<String> {
    let example = std::fs::read_to_string(workspace_dir().join("examples/initial-cluster.yaml"))?;
    let mut out = Vec::new();
    for doc in on_real_node(&example)?.split("\n---\n") {
        let mut doc: serde_json::Value = serde_json::from_str(doc)?;
        if doc["kind"] == "VitessCluster" {
            let placement = doc["spec"]["globalLockserver"]["etcd"].clone();
            ensure!(placement.is_object(), "the global etcd has no placement");
            doc["spec"]["cells"][0]["lockserver"] = serde_json::json!({ "etcd": placement });
            // No semi-sync: deleting the namespace then stops the primary at once (a semi-sync
            // primary whose replica went first waits minutes to shut down).
            for keyspace in doc["spec"]["keyspaces"]
                .as_array_mut()
                .into_iter()
                .flatten()
            {
                keyspace["durabilityPolicy"] = "none".into();
            }
        }
        out.push(serde_json::to_string(&doc)?);
    }
    Ok(out.join("\n---\n"))
}

/// The keys under `prefix` in the etcd of EtcdLockserver `lockserver`, read through member 1.
async fn keys(ns: &str, lockserver: &str, prefix: &str) -> Result<Vec<String>> {
    let pod = format!("{lockserver}-1");
    let out = kubectl(&[
        "exec",
        "-n",
        ns,
        &pod,
        "-c",
        "etcd",
        "--",
        "etcdctl",
        "get",
        "--prefix",
        "--keys-only",
        prefix,
    ])
    .await?;
    Ok(out
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

#[tokio::test]
async fn a_cells_own_etcd_holds_its_tablets_and_the_first_primary_is_elected_from_it() -> Result<()>
{
    let test = "a_cells_own_etcd_holds_its_tablets_and_the_first_primary_is_elected_from_it";
    let Some((client, ns, mut operator)) = start_on_real_node(test, "real-cell-etcd").await? else {
        return Ok(());
    };
    let name = ns.name().to_string();
    let applied = Instant::now();
    kubectl_with_stdin(&["-n", &name, "apply", "-f", "-"], Some(&cluster_yaml()?)).await?;
    let shards = dynamic(&client, &name, "VitessShard");
    let primary = wait_for_primary(&shards, SHARD, &mut operator, CONVERGE).await?;
    let to_primary = applied.elapsed();

    let cell_etcd = names::cluster::local_etcd(CLUSTER, "zone1");
    let global_etcd = names::cluster::global_etcd(CLUSTER);
    let tablets = format!("/vitess/{CLUSTER}/local/zone1/tablets/");
    let in_cell = keys(&name, &cell_etcd, &tablets).await?;
    ensure!(
        in_cell.len() >= 2,
        "the cell's own etcd {cell_etcd} holds {in_cell:?} under {tablets}, not the two tablets"
    );
    let in_global = keys(&name, &global_etcd, &format!("/vitess/{CLUSTER}/local/")).await?;
    ensure!(
        in_global.is_empty(),
        "the global etcd holds cell records {in_global:?} although the cell has its own"
    );
    eprintln!(
        "a cell with its own etcd: first primary {primary} {:.0} s after apply; the cell's \
         etcd holds {} tablet keys, the global one none",
        to_primary.as_secs_f64(),
        in_cell.len()
    );
    write_figures(
        "real-cell-etcd",
        &serde_json::json!({
            "apply_to_first_primary_s": to_primary.as_secs_f64(),
            "primary": primary,
            "tablet_keys_in_cell_etcd": in_cell.len(),
        }),
    )?;
    operator.stop().await?;
    ns.delete_now(Duration::from_secs(600)).await?;
    Ok(())
}
