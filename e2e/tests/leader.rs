//! Leader election between operator processes on the local control plane: one leader, the
//! others stand by without running controllers; a killed leader is replaced within the lease
//! duration plus a renew period; a leader stopped with SIGTERM hands over at once.
//! The measured times are printed (cargo test -- --nocapture shows them).

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use vitess_operator_e2e::{
    FakeTopology, METRICS_ADDRESS, Operator, TestNamespace, apply_yaml, client, condition, dynamic,
    http_address, http_get, identity_of, install_crds, lease_holder, wait_for, workspace_dir,
};

const LEASE: &str = "vitess-operator-leader-e2e";
/// Lease duration (15 s) + renew period (5 s): the longest a takeover may take.
const TAKEOVER_BOUND: Duration = Duration::from_secs(20);
/// A SIGTERM handover is one follower retry (2 s) plus an API round trip; this is generous.
const HANDOVER_BOUND: Duration = Duration::from_secs(5);

fn start(ns: &str, name: &str, vtctld: &FakeTopology) -> Result<Operator> {
    Operator::start(
        &format!("leader-{name}-{ns}"),
        &[
            "run",
            "--namespace",
            ns,
            "--vtctld-address",
            &vtctld.vtctld_address(),
            METRICS_ADDRESS,
            "--leader-elect",
            "--leader-election-lease-name",
            LEASE,
        ],
    )
}

/// `vitess_operator_leader` and the sum of `vitess_operator_reconciles_total` on `/metrics`.
async fn leader_metrics(address: &str) -> Result<(i64, u64)> {
    let (code, body) = http_get(address, "/metrics").await?;
    if code != 200 {
        bail!("/metrics answered {code}");
    }
    let mut leader = -1;
    let mut reconciles = 0;
    for line in body.lines() {
        if let Some(v) = line.strip_prefix("vitess_operator_leader ") {
            leader = v.trim().parse()?;
        }
        if line.starts_with("vitess_operator_reconciles_total{") {
            reconciles += line
                .rsplit(' ')
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0) as u64;
        }
    }
    Ok((leader, reconciles))
}

/// Waits until the Lease names `holder`; returns how long that took from `since`.
async fn wait_holder(ns: &str, holder: &str, since: Instant, within: Duration) -> Result<Duration> {
    let client = client().await?;
    loop {
        let now = lease_holder(&client, ns, LEASE).await?;
        if now.as_deref() == Some(holder) {
            return Ok(since.elapsed());
        }
        if since.elapsed() > within + Duration::from_secs(10) {
            bail!(
                "the lease is held by {now:?}, not {holder}, {:?} later",
                since.elapsed()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn one_leader_writes_takeover_after_kill_and_handover_on_sigterm() -> Result<()> {
    install_crds().await?;
    let client = client().await?;
    let ns = TestNamespace::create(&client, "leader").await?;
    let ns_name = ns.name().to_string();
    // The shards' primaries come from a fake vtctld that registers the Ready tablet pods.
    let vtctld = FakeTopology::start(&client, &ns_name).await?;

    let mut a = start(&ns_name, "a", &vtctld)?;
    let a_id = identity_of(&a)?;
    let a_http = http_address(&mut a).await?;
    wait_holder(&ns_name, &a_id, Instant::now(), Duration::from_secs(20)).await?;
    let mut b = start(&ns_name, "b", &vtctld)?;
    let b_id = identity_of(&b)?;
    let b_http = http_address(&mut b).await?;

    // Only the leader works: the example becomes Ready, the follower reconciled nothing.
    let text = std::fs::read_to_string(workspace_dir().join("examples/initial-cluster.yaml"))?;
    apply_yaml(&client, &ns_name, &text).await?;
    let clusters = dynamic(&client, &ns_name, "VitessCluster");
    wait_for(
        "VitessCluster example to be Ready",
        Duration::from_secs(120),
        async |seen: &mut String| {
            let cluster = clusters.get("example").await?;
            let ready = condition(&cluster, "Ready");
            *seen = format!("Ready={ready:?}");
            Ok((ready.as_deref() == Some("True")).then_some(()))
        },
    )
    .await?;
    let (a_leader, a_reconciles) = leader_metrics(&a_http).await?;
    let (b_leader, b_reconciles) = leader_metrics(&b_http).await?;
    assert_eq!((a_leader, b_leader), (1, 0), "leader gauges of a and b");
    assert!(a_reconciles > 0, "the leader reconciled nothing");
    assert_eq!(b_reconciles, 0, "the follower reconciled");
    let b_log = b.log_contents()?;
    assert!(b_log.contains("waiting to become the leader"), "{b_log}");
    assert!(!b_log.contains("became the leader"), "{b_log}");
    let (_, metrics) = http_get(&a_http, "/metrics").await?;
    assert!(
        metrics
            .contains(r#"vitess_operator_reconcile_duration_seconds_count{kind="VitessCluster"}"#),
        "the leader times its reconciles:\n{metrics}"
    );
    let (code, _) = http_get(&b_http, "/readyz").await?;
    assert_eq!(code, 200, "a follower is ready (standing by)");
    eprintln!("leader: a={a_id} leads with {a_reconciles} reconciles; b={b_id} waits with 0");

    // A third process, so that b's SIGTERM has someone to hand over to.
    let mut c = start(&ns_name, "c", &vtctld)?;
    let c_id = identity_of(&c)?;
    let c_http = http_address(&mut c).await?;

    // kill -9 the leader: no release, the lease must expire.
    let pid = a.pid().map(|p| p.to_string()).unwrap_or_default();
    let killed = Instant::now();
    Command::new("kill").args(["-KILL", &pid]).status()?;
    let client2 = client.clone();
    let takeover = {
        let start = Instant::now();
        let holder = loop {
            let holder = lease_holder(&client2, &ns_name, LEASE).await?;
            if holder.as_deref().is_some_and(|h| h == b_id || h == c_id) {
                break holder.unwrap_or_default();
            }
            if start.elapsed() > TAKEOVER_BOUND + Duration::from_secs(10) {
                bail!("nobody took over from the killed leader: {holder:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        (holder, killed.elapsed())
    };
    eprintln!(
        "leader: after kill -9 of the leader, {} took over in {:.1} s (bound {:?})",
        takeover.0,
        takeover.1.as_secs_f64(),
        TAKEOVER_BOUND
    );
    assert!(
        takeover.1 <= TAKEOVER_BOUND,
        "takeover took {:?}",
        takeover.1
    );
    let (mut new_leader, new_http, mut other, other_id) = if takeover.0 == b_id {
        (b, b_http, c, c_id)
    } else {
        (c, c_http, b, b_id)
    };
    // A settled leader: its controllers run (they resync the example at start).
    wait_for(
        "the new leader to reconcile",
        Duration::from_secs(60),
        async |seen: &mut String| {
            let (leader, reconciles) = leader_metrics(&new_http).await?;
            *seen = format!("leader={leader} reconciles={reconciles}");
            Ok((leader == 1 && reconciles > 0).then_some(()))
        },
    )
    .await?;

    // SIGTERM the new leader: it stops its controllers and clears the lease.
    let stopping = Instant::now();
    new_leader.stop().await?;
    let handover = wait_holder(&ns_name, &other_id, stopping, HANDOVER_BOUND).await?;
    eprintln!(
        "leader: after SIGTERM of the leader, {other_id} took over in {:.1} s (bound {HANDOVER_BOUND:?})",
        handover.as_secs_f64()
    );
    assert!(handover <= HANDOVER_BOUND, "handover took {handover:?}");
    let log = new_leader.log_contents()?;
    assert!(log.contains("released the lease"), "{log}");

    // The last one stops cleanly, and so releases the lease.
    other.stop().await?;
    assert_eq!(lease_holder(&client, &ns_name, LEASE).await?, None);
    drop(a);
    vtctld.stop().await;
    ns.delete(Duration::from_secs(120)).await
}
