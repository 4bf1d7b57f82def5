//! An etcd member spec changed on the real node, as a user would change it (one more
//! environment variable under `globalLockserver.etcd`): the operator applies nothing over the
//! running members (the API server would refuse it, and taking it in place would restart all
//! three at once) but marks each `rollout.planetscale.com/scheduled`. Two members are released
//! at once; the operator recreates them one at a time, each back (Ready, and settled for its
//! peers to find it) before the next goes, on their volumes: afterwards etcd has its three
//! members healthy, every key it held before, and each recreated member reads a key written
//! before the roll from its own store. The member not released is left as it was.
//!
//! The cluster is `examples/initial-cluster.yaml` without its keyspace (no MySQL: a lockserver,
//! vtctld and vtgate are what this needs). Figures go to `target/e2e-figures/etcd-rollout.json`.
//!
//! Without the node this test skips, except under `CI=true`, where it fails.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use vitess_operator_e2e::{
    dynamic, is_ready, kubectl, kubectl_with_stdin, on_real_node, start_on_real_node, wait_for,
    workspace_dir, write_figures,
};

const LOCKSERVER: &str = "example-etcd-faf13de3";
const CONVERGE: Duration = Duration::from_secs(300);
const SCHEDULED: &str = "rollout.planetscale.com/scheduled";
const RELEASED: &str = "rollout.planetscale.com/released";
/// The variable the changed spec adds to every member.
const ROLLED_ENV: &str = "E2E_ETCD_ROLLED";

fn member(index: u32) -> String {
    format!("{LOCKSERVER}-{index}")
}

/// The example on the real node, without keyspaces; with `rolled`, its etcd members get
/// [`ROLLED_ENV`].
fn cluster_yaml(rolled: bool) -> Result<String> {
    let example = std::fs::read_to_string(workspace_dir().join("examples/initial-cluster.yaml"))?;
    let mut out = Vec::new();
    for doc in on_real_node(&example)?.split("\n---\n") {
        let mut doc: serde_json::Value = serde_json::from_str(doc)?;
        if doc["kind"] == "VitessCluster" {
            doc["spec"]["keyspaces"] = serde_json::json!([]);
            if rolled {
                doc["spec"]["globalLockserver"]["etcd"]["extraEnv"] =
                    serde_json::json!([{"name": ROLLED_ENV, "value": "1"}]);
            }
        }
        out.push(serde_json::to_string(&doc)?);
    }
    Ok(out.join("\n---\n"))
}

/// The member pods by name.
async fn members(pods: &Api<Pod>) -> Result<BTreeMap<String, Pod>> {
    let selector = format!("etcd.planetscale.com/lockserver={LOCKSERVER}");
    Ok(pods
        .list(&ListParams::default().labels(&selector))
        .await?
        .items
        .into_iter()
        .map(|p| (p.name_any(), p))
        .collect())
}

fn uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

fn has_rolled_env(pod: &Pod) -> bool {
    pod.spec.as_ref().is_some_and(|s| {
        s.containers
            .iter()
            .flat_map(|c| c.env.iter().flatten())
            .any(|e| e.name == ROLLED_ENV)
    })
}

/// etcdctl in member `index`'s pod, against that member.
async fn etcdctl(ns: &str, index: u32, args: &[&str]) -> Result<String> {
    let pod = member(index);
    let mut command = vec!["exec", "-n", ns, &pod, "-c", "etcd", "--", "etcdctl"];
    command.extend_from_slice(args);
    kubectl(&command).await
}

/// Every key etcd holds, read through member 1.
async fn keys(ns: &str) -> Result<BTreeSet<String>> {
    Ok(etcdctl(ns, 1, &["get", "--prefix", "--keys-only", ""])
        .await?
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

#[tokio::test]
async fn a_changed_etcd_spec_rolls_released_members_one_at_a_time_keeping_the_quorum() -> Result<()>
{
    const TEST: &str =
        "a_changed_etcd_spec_rolls_released_members_one_at_a_time_keeping_the_quorum";
    let Some((client, ns, mut operator)) = start_on_real_node(TEST, "etcd-rollout").await? else {
        return Ok(());
    };
    let name = ns.name().to_string();
    kubectl_with_stdin(
        &["-n", &name, "apply", "-f", "-"],
        Some(&cluster_yaml(false)?),
    )
    .await?;

    // Three members Ready, and the cells registered in the topology they hold.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &name);
    let clusters = dynamic(&client, &name, "VitessCluster");
    wait_for(
        &format!(
            "three etcd members Ready and the topology registered (operator log: {})",
            operator.log_path().display()
        ),
        CONVERGE,
        async |seen: &mut String| {
            operator.check_running()?;
            let ready = members(&pods)
                .await?
                .values()
                .filter(|p| is_ready(p))
                .count();
            let registered = clusters
                .get_opt("example")
                .await?
                .and_then(|c| vitess_operator_e2e::condition(&c, "TopologyRegistered"));
            *seen = format!("{ready} members Ready, TopologyRegistered {registered:?}");
            Ok((ready == 3 && registered.as_deref() == Some("True")).then_some(()))
        },
    )
    .await?;
    let keys_before = keys(&name).await?;
    ensure!(
        !keys_before.is_empty(),
        "etcd holds no key: nothing to keep"
    );
    // And one of ours, to read back from the recreated members' own stores.
    let marker = format!("rolled-at-{}", vitess_operator_e2e::unique_suffix());
    etcdctl(&name, 1, &["put", "/e2e/etcd-rollout", &marker]).await?;
    let before: BTreeMap<String, String> = members(&pods)
        .await?
        .iter()
        .map(|(n, p)| (n.clone(), uid(p)))
        .collect();

    // The changed spec: scheduled on every member, none replaced.
    kubectl_with_stdin(
        &["-n", &name, "apply", "-f", "-"],
        Some(&cluster_yaml(true)?),
    )
    .await?;
    let notes = wait_for(
        "every member marked rollout.planetscale.com/scheduled",
        CONVERGE,
        async |seen: &mut String| {
            operator.check_running()?;
            let now = members(&pods).await?;
            let notes: Vec<String> = now
                .values()
                .filter_map(|p| p.annotations().get(SCHEDULED).cloned())
                .collect();
            *seen = format!("{notes:?}");
            Ok((notes.len() == 3).then_some(notes))
        },
    )
    .await?;
    ensure!(
        notes.iter().all(|n| n.contains(ROLLED_ENV)),
        "the notes do not say what differs: {notes:?}"
    );
    let scheduled = members(&pods).await?;
    for (member, pod) in &scheduled {
        ensure!(
            uid(pod) == before[member],
            "{member} was replaced before its release"
        );
        ensure!(!has_rolled_env(pod), "{member} took the new spec in place");
    }

    // Two released at once: one at a time, each Ready again before the next goes.
    for index in [2, 3] {
        kubectl(&[
            "annotate",
            "-n",
            &name,
            "pod",
            &member(index),
            &format!("{RELEASED}=true"),
        ])
        .await?;
    }
    let released = Instant::now();
    let mut most_down = 0;
    let mut down_seen = BTreeSet::new();
    let deadline = released + CONVERGE;
    loop {
        operator.check_running()?;
        let now = members(&pods).await?;
        let down: Vec<String> = (1..=3)
            .map(member)
            .filter(|m| {
                now.get(m)
                    .is_none_or(|p| !is_ready(p) || p.metadata.deletion_timestamp.is_some())
            })
            .collect();
        most_down = most_down.max(down.len());
        down_seen.extend(down.iter().cloned());
        let rolled = [2, 3].iter().all(|&i| {
            now.get(&member(i))
                .is_some_and(|p| uid(p) != before[&member(i)] && has_rolled_env(p))
        });
        if rolled && down.is_empty() {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "members 2 and 3 not rolled in {CONVERGE:?}: down {down:?}, operator log {}",
            operator.log_path().display()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let rolled_in = released.elapsed();
    ensure!(most_down <= 1, "{most_down} members were down at once");
    ensure!(
        down_seen.contains(&member(2)) && down_seen.contains(&member(3)),
        "the roll was not seen: down {down_seen:?}"
    );
    let after = members(&pods).await?;
    let first = &after[&member(1)];
    ensure!(
        uid(first) == before[&member(1)],
        "member 1 (not released) was replaced"
    );
    ensure!(
        first.annotations().contains_key(SCHEDULED),
        "member 1 is no longer scheduled"
    );
    for index in [2, 3] {
        let pod = &after[&member(index)];
        ensure!(
            !pod.annotations().contains_key(SCHEDULED),
            "{}",
            member(index)
        );
    }

    // The quorum is whole and kept its data: three healthy members, every key still there.
    // (The last member's new address reaches the cluster DNS a few seconds after it is Ready.)
    wait_for(
        "etcd to report three healthy members",
        Duration::from_secs(60),
        async |seen: &mut String| {
            let health = etcdctl(&name, 1, &["endpoint", "health", "--cluster"])
                .await
                .unwrap_or_else(|e| format!("{e:#}"));
            let healthy = health.lines().filter(|l| l.contains("is healthy")).count();
            *seen = health;
            Ok((healthy == 3).then_some(()))
        },
    )
    .await?;
    let keys_after = keys(&name).await?;
    let lost: Vec<&String> = keys_before.difference(&keys_after).collect();
    ensure!(lost.is_empty(), "keys lost in the roll: {lost:?}");
    // A serializable read answers from the member's own store: each recreated one has it.
    for index in [2, 3] {
        let read = [
            "get",
            "/e2e/etcd-rollout",
            "--consistency=s",
            "--print-value-only",
        ];
        let value = etcdctl(&name, index, &read).await?;
        ensure!(
            value.trim() == marker,
            "member {index} reads {value:?}, not {marker}"
        );
    }
    eprintln!(
        "etcd rollout: 2 members rolled in {:.0} s, at most {most_down} down at once, {} keys kept",
        rolled_in.as_secs_f64(),
        keys_before.len()
    );

    let figures = serde_json::json!({
        "released_to_rolled_s": rolled_in.as_secs_f64(),
        "most_members_down_at_once": most_down,
        "keys_kept": keys_before.len(),
        "keys_lost": lost.len(),
    });
    write_figures("etcd-rollout", &figures)?;

    operator.stop().await?;
    ns.delete(Duration::from_secs(300)).await?;
    Ok(())
}
