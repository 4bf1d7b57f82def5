//! The fault suite's outages (issue 18, items 3 and 4): what the operator does when what it
//! talks to goes away while it works, the operator itself left running.
//!
//! - vtctld out during a drain of the primary: down (every call refused) or hanging (no
//!   answer at all) when the drain starts, or going down while the drain's
//!   PlannedReparentShard is in flight. While vtctld is out the drain waits and the shard
//!   says why (`VtctldReachable` False); nothing is finished and the primary stays. Once
//!   vtctld serves again the drain completes and the primary moves exactly once.
//! - vtctld out while a new cluster registers its topology: down or hanging. The cluster says
//!   why (`TopologyRegistered` False), its keyspace does not get its durability policy and no
//!   primary is elected; once vtctld serves, the keyspace is registered with its policy, the
//!   cluster says so, and the first primary is elected once.
//! - the API server, or its etcd, killed with SIGKILL and started again during a drain of
//!   the primary: at rest before the drain is asked for (the drain is then seen only through
//!   a watch that resumed: the operator looks at a shard at rest every 5 minutes, longer
//!   than the test waits), right after `started`, or while the drain's reparent is in flight
//!   (its answer arriving while the component is still coming back). The drain completes,
//!   the primary moves once, no pod is replaced, nothing is lost.
//!
//! Recovery is from the end of the outage (vtctld serving again, the component healthy
//! again) to the drain done or the shard converged.

use super::*;
use vitess_operator_e2e::{condition_detail, crash_component};

/// How long an outage lasts at least once the operator has said why it waits; a little
/// more is drawn at random.
const OUTAGE: Duration = Duration::from_secs(2);

/// How vtctld is out.
#[derive(Clone, Copy)]
enum Outage {
    /// Every call refused (UNAVAILABLE), as when its process is gone.
    Down,
    /// No answer at all until the outage ends (the operator's deadlines expire).
    Hanging,
}

impl Outage {
    fn mode(self) -> Mode {
        match self {
            Outage::Down => Mode::Fail,
            Outage::Hanging => Mode::Hang,
        }
    }

    fn text(self) -> &'static str {
        match self {
            Outage::Down => "down",
            Outage::Hanging => "hanging",
        }
    }
}

impl Suite<'_> {
    /// Drains the shared cluster's primary while vtctld is out, at point `run` (of 3, in
    /// turn): down when the drain starts, hanging when it starts, going down while its
    /// reparent is in flight.
    pub(super) async fn vtctld_out_mid_drain(&mut self, run: usize) -> Result<Survived> {
        let DrainStart {
            mut witness,
            primary,
            before,
            changes_before,
            pod,
        } = self.drain_start().await?;
        let pods = self.pods();
        let point = run % 3;
        let how = match point {
            0 | 1 => {
                let outage = if point == 0 {
                    Outage::Down
                } else {
                    Outage::Hanging
                };
                set_fake_mode(self.fake, outage.mode()).await;
                annotate(&pods, &pod, STARTED, Some(&format!("outages run {run}"))).await?;
                format!("vtctld {} when the drain started", outage.text())
            }
            _ => {
                let sent = self.hold_reparents(SHARED_KEYSPACE).await;
                annotate(&pods, &pod, STARTED, Some(&format!("outages run {run}"))).await?;
                self.reparent_held(SHARED_KEYSPACE, sent).await?;
                let pause = self.jitter().await;
                // The held reparent fails as every other call does.
                set_fake_mode(self.fake, Mode::Fail).await;
                format!("vtctld down while the PlannedReparentShard was in flight (+{pause:?})")
            }
        };
        witness.observe().await?;
        let why = self.waits_and_says_why(&pod).await?;
        let changes = reparents(self.fake, SHARED_KEYSPACE).await;
        ensure!(
            changes.len() == changes_before,
            "the primary moved while vtctld was out: {:?}",
            &changes[changes_before.min(changes.len())..]
        );
        let back = Instant::now();
        set_fake_mode(self.fake, Mode::Serve).await;
        self.drain_completes(SHARED_PAIR, &primary, &before, changes_before, &mut witness)
            .await?;
        Ok(Survived {
            recovered: back.elapsed(),
            how: format!("{how}; the shard said: {why}"),
        })
    }

    /// While vtctld is out: waits until the shared shard says so (`VtctldReachable` False,
    /// with a message), then a little longer, checking all along that `pod` is not finished.
    /// Returns what the shard said.
    async fn waits_and_says_why(&mut self, pod: &str) -> Result<String> {
        let shards = dynamic(self.client, self.ns, "VitessShard");
        let pods = self.pods();
        let operator = &mut *self.operator;
        let why = wait_for(
            "the shard to say that vtctld cannot be reached",
            TIMEOUT,
            async |seen: &mut String| {
                operator.check_running()?;
                // A finished pod ends the wait at once (an error would only be retried).
                if has(&pods.get(pod).await?, FINISHED) {
                    return Ok(Some(Err(anyhow::anyhow!(
                        "{pod} was finished while vtctld was out"
                    ))));
                }
                let reachable = shard_condition(&shards, SHARED, VTCTLD_REACHABLE).await?;
                *seen = format!("VtctldReachable {reachable:?}");
                Ok(reachable
                    .filter(|(status, _, message)| status == "False" && !message.is_empty())
                    .map(Ok))
            },
        )
        .await??;
        let until = Instant::now() + OUTAGE + self.rng.duration(OUTAGE);
        while Instant::now() < until {
            let p = pods.get(pod).await?;
            ensure!(
                !has(&p, FINISHED),
                "{pod} was finished while vtctld was out"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Ok(format!("{}: {}", why.1, why.2))
    }

    /// A new cluster applied while vtctld is out (down in even runs, hanging in odd ones):
    /// it says why it is not registered, registers nothing and elects nothing; once vtctld
    /// serves, its keyspace is registered and its first primary elected once.
    pub(super) async fn vtctld_out_at_registration(&mut self, run: usize) -> Result<Survived> {
        self.ready_for_a_run().await?;
        let name = format!("reg{run}");
        let keyspace = format!("regks{run}");
        let outage = if run.is_multiple_of(2) {
            Outage::Down
        } else {
            Outage::Hanging
        };
        let mut witness = Witness::new(self.client, self.ns, &name);
        set_fake_mode(self.fake, outage.mode()).await;
        // A durability policy a starting vttablet would not give the keyspace it creates
        // (`none`): only the operator's registration sets it.
        let yaml = cluster_yaml(&name, &keyspace, 2).replace(
            "durabilityPolicy: none",
            &format!("durabilityPolicy: {POLICY}"),
        );
        apply_yaml(self.client, self.ns, &yaml).await?;
        let clusters = dynamic(self.client, self.ns, "VitessCluster");
        let operator = &mut *self.operator;
        let why = wait_for(
            &format!("cluster {name} to say it is not registered"),
            TIMEOUT,
            async |seen: &mut String| {
                operator.check_running()?;
                let cluster = clusters.get(&name).await?;
                let registered = condition_detail(&cluster, "TopologyRegistered");
                *seen = format!("TopologyRegistered {registered:?}");
                Ok(registered
                    .filter(|(status, _, message)| status == "False" && !message.is_empty()))
            },
        )
        .await?;
        witness.observe().await?;
        tokio::time::sleep(OUTAGE + self.rng.duration(OUTAGE)).await;
        let policy = {
            let guard = self.fake.lock().await;
            guard.as_ref().and_then(|f| f.durability_policy(&keyspace))
        };
        ensure!(
            policy.as_deref() != Some(POLICY),
            "keyspace {keyspace} was registered while vtctld was {}",
            outage.text()
        );
        ensure!(
            reparents(self.fake, &keyspace).await.is_empty(),
            "a primary was elected while vtctld was {}",
            outage.text()
        );

        let back = Instant::now();
        set_fake_mode(self.fake, Mode::Serve).await;
        let (primary, _) = self
            .converged((&name, &keyspace), 2, None, Some(&mut witness))
            .await?;
        let recovered = back.elapsed();
        let fake = self.fake;
        let clusters = dynamic(self.client, self.ns, "VitessCluster");
        wait_for(
            &format!(
                "keyspace {keyspace} registered in Vitess ({POLICY}) and the cluster saying so"
            ),
            TIMEOUT,
            async |seen: &mut String| {
                let policy = {
                    let guard = fake.lock().await;
                    guard.as_ref().and_then(|f| f.durability_policy(&keyspace))
                };
                let registered =
                    condition_detail(&clusters.get(&name).await?, "TopologyRegistered");
                *seen = format!("durability policy {policy:?}, TopologyRegistered {registered:?}");
                Ok((policy.as_deref() == Some(POLICY)
                    && registered.is_some_and(|(status, _, _)| status == "True"))
                .then_some(()))
            },
        )
        .await?;
        let changes = reparents(self.fake, &keyspace).await;
        ensure!(
            changes.len() == 1 && changes[0].1 == primary,
            "cluster {name}: the first primary should have been elected once ({primary}); \
             Vitess' changes of primary: {changes:?}"
        );
        witness.check().await?;
        dynamic(self.client, self.ns, "VitessCluster")
            .delete(&name, &DeleteParams::background())
            .await
            .with_context(|| format!("deleting VitessCluster {name}"))?;
        Ok(Survived {
            recovered,
            how: format!(
                "vtctld {}; the cluster said: {}: {}",
                outage.text(),
                why.1,
                why.2
            ),
        })
    }

    /// Drains the shared cluster's primary while `component` (`kube-apiserver` or `etcd`) is
    /// killed with SIGKILL and started again, at point `run` (of 3, in turn): at rest before
    /// the drain is asked for, right after `started`, while its reparent is in flight (the
    /// reparent answered while the component comes back).
    pub(super) async fn control_plane_crash(
        &mut self,
        run: usize,
        component: &str,
    ) -> Result<Survived> {
        let DrainStart {
            mut witness,
            primary,
            before,
            changes_before,
            pod,
        } = self.drain_start().await?;
        let pods = self.pods();
        let started = format!("outages run {run}");
        let (how, back) = match run % 3 {
            0 => {
                crash_component(component).await?;
                let back = Instant::now();
                self.api_answers().await?;
                annotate(&pods, &pod, STARTED, Some(&started)).await?;
                ("at rest, before the drain was asked for".to_string(), back)
            }
            1 => {
                annotate(&pods, &pod, STARTED, Some(&started)).await?;
                let pause = self.jitter().await;
                crash_component(component).await?;
                (format!("right after started (+{pause:?})"), Instant::now())
            }
            _ => {
                let sent = self.hold_reparents(SHARED_KEYSPACE).await;
                annotate(&pods, &pod, STARTED, Some(&started)).await?;
                self.reparent_held(SHARED_KEYSPACE, sent).await?;
                let fake = self.fake;
                let release = async {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    set_fake_mode(fake, Mode::Serve).await;
                };
                let (crashed, ()) = tokio::join!(crash_component(component), release);
                crashed?;
                (
                    "while the PlannedReparentShard was in flight, answered while it came back"
                        .to_string(),
                    Instant::now(),
                )
            }
        };
        self.api_answers().await?;
        self.drain_completes(SHARED_PAIR, &primary, &before, changes_before, &mut witness)
            .await?;
        Ok(Survived {
            recovered: back.elapsed(),
            how: format!("{component} {how}"),
        })
    }

    /// Returns once the API server answers again (after its etcd came back, it may not yet).
    async fn api_answers(&self) -> Result<()> {
        let pods = self.pods();
        until("the API server to answer", async || {
            Ok(pods.list(&ListParams::default().limit(1)).await.is_ok())
        })
        .await
    }
}

/// The condition `type_` of a cluster's one VitessShard: (status, reason, message).
async fn shard_condition(
    shards: &Api<DynamicObject>,
    cluster: &str,
    type_: &str,
) -> Result<Option<(String, String, String)>> {
    let list = shards
        .list(&ListParams::default().labels(&format!("{CLUSTER_LABEL}={cluster}")))
        .await?;
    Ok(list.items.first().and_then(|s| condition_detail(s, type_)))
}

/// The durability policy of the clusters made while vtctld is out.
const POLICY: &str = "semi_sync";

/// The shard condition that says whether vtctld answered.
const VTCTLD_REACHABLE: &str = "VtctldReachable";
