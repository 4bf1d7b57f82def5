//! The fault suite (issue 18, items 1 to 4). Operator crashes: the operator is killed with
//! SIGKILL at a kill point of an operation and started again (after up to 2 s); the kill points
//! are taken in turn, each run a little later (up to 300 ms) than the moment it waited for:
//!
//! - a new shard's first primary election: right after the apply, once the VitessShard
//!   exists, once the tablet pods exist, while its PlannedReparentShard is in flight, once
//!   Vitess made it but before the operator read the answer;
//! - a drain of the primary: right after `started`, once `acknowledged`, while the reparent
//!   is in flight, once Vitess moved the primary but before the operator read the answer, once
//!   the pod is `finished`;
//! - a scale-down from 3 tablets to 2, the removed one a replica or (made so by hand first)
//!   the primary: right after the apply, once its drain started, once it is finished, once
//!   its pod is deleted; then back to 3;
//! - a rolling update (`updateStrategy: Immediate`, a new vttablet image): right after the
//!   apply, once the first pod was replaced, while the primary's reparent is in flight, once
//!   the old primary's pod is finished;
//! - a backup request (a VitessBackup for one shard; `backup.rs`): right after it is
//!   created, once `BackupStarted` is persisted, while its BackupShard is in flight, once
//!   Vitess took the backup but before the operator read the answer, once it is complete;
//! - a turndown (`turndown.rs`): a keyspace with `turndownPolicy: Immediate` removed from
//!   the spec, right after the apply, while its DeleteKeyspace is in flight, once Vitess
//!   forgot it, once its VitessKeyspace is gone, once its tablet pods are being deleted;
//! - a drain of the primary with two operator replicas under leader election, the leader
//!   killed right after `started` or while the reparent is in flight, and left down: the
//!   other replica takes the Lease over and finishes the drain.
//!
//! Each run then checks what a user would: the shard converges again, its primary changed
//! exactly as often as it had to (the fake's record of every change of primary Vitess made),
//! no pod the operator had no reason to replace was replaced, no PVC, etcd member or
//! EtcdLockserver was deleted or replaced. On KWOK pods, with the fake vtctld standing in for
//! Vitess (it answers by rules, holds reparents in flight on demand, and records every change
//! of primary); there is no data to lose here.
//!
//! Outages (`outages.rs`): vtctld down or hanging during a drain and during topology
//! registration, the API server or its etcd SIGKILLed during a drain. A primary lost outright
//! with its node (`lost_primary.rs`, item 6): what the operator does and does not do.
//!
//! `FAULT_RUNS` runs of each crash scenario (default 5, which takes every kill point once;
//! `make faults` 20) and `FAULT_OUTAGE_RUNS` of each outage (default 3, every point once;
//! `make faults` 10), the small random delays from `FAULT_SEED` (printed). Every run is made; the
//! table (scenario, runs, survived, objects lost, time from the restart to converged) goes to
//! `target/e2e-figures/faults.{json,md}` and the test fails if any run did not survive. Time to
//! recover is from the restart, or from the end of the outage, to the shard converged.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use vitess_operator::vitess::{Alias, Vtctld};
use vitess_operator_e2e::{
    FakeTopology, METRICS_ADDRESS, Operator, Rng, SharedFake, TestNamespace, annotate, apply_yaml,
    dynamic, fake_primary, has_annotation as has, identity_of, is_ready, lease_holder,
    one_shard_cluster_yaml, set_fake_mode, tablet_of, tablet_pods, wait_for, with_fake_vtctld,
    workspace_dir, write_figures,
};
use vtctld_fake::Mode;

#[path = "faults/backup.rs"]
mod backup;
#[path = "faults/lost_primary.rs"]
mod lost_primary;
#[path = "faults/outages.rs"]
mod outages;
#[path = "faults/turndown.rs"]
mod turndown;

const TIMEOUT: Duration = Duration::from_secs(180);
const STARTED: &str = "drain.planetscale.com/started";
const ACKNOWLEDGED: &str = "drain.planetscale.com/acknowledged";
const FINISHED: &str = "drain.planetscale.com/finished";
const CLUSTER_LABEL: &str = "planetscale.com/cluster";
const SHARD: &str = "-";
const PRS: &str = "PlannedReparentShard";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_killed_at_random_points_loses_nothing() -> Result<()> {
    let runs = env_number("FAULT_RUNS", 5)?;
    ensure!(runs > 0, "FAULT_RUNS must be at least 1");
    let outage_runs = env_number("FAULT_OUTAGE_RUNS", 3)?;
    ensure!(outage_runs > 0, "FAULT_OUTAGE_RUNS must be at least 1");
    let seed = env_number("FAULT_SEED", now_seed())?;
    let settings = format!("FAULT_SEED={seed} FAULT_RUNS={runs} FAULT_OUTAGE_RUNS={outage_runs}");
    eprintln!("faults: {settings}");
    with_fake_vtctld("faults", async |client, ns, operator, fake, address| {
        let mut suite = Suite {
            client,
            ns,
            operator,
            fake,
            address,
            rng: Rng::new(seed),
        };
        let mut rows = Vec::new();
        let mut row = Row::new("first primary election");
        for i in 0..runs {
            row.record(i, suite.election(i).await);
        }
        rows.push(row);

        suite.shared_cluster().await?;
        let mut row = Row::new("drain of the primary");
        for i in 0..runs {
            row.record(i, suite.drain(i).await);
        }
        rows.push(row);
        let mut row = Row::new("scale-down 3 -> 2 tablets");
        for i in 0..runs {
            row.record(i, suite.scale_down(i).await);
        }
        rows.push(row);
        let mut row = Row::new("backup request (VitessBackup)");
        for i in 0..runs {
            row.record(i, suite.backup_request(i).await);
        }
        rows.push(row);
        let mut row = Row::new("rolling update (Immediate)");
        for i in 0..runs {
            row.record(i, suite.rolling_update(i).await);
        }
        rows.push(row);
        let mut row = Row::new("turndown of a keyspace");
        for i in 0..runs {
            row.record(i, suite.turndown(i).await);
        }
        rows.push(row);

        let mut row = Row::outage("vtctld down or hanging", "drain of the primary");
        for i in 0..outage_runs {
            row.record(i, suite.vtctld_out_mid_drain(i).await);
        }
        rows.push(row);
        let mut row = Row::outage("vtctld down or hanging", "topology registration");
        for i in 0..outage_runs {
            row.record(i, suite.vtctld_out_at_registration(i).await);
        }
        rows.push(row);
        for component in ["kube-apiserver", "etcd"] {
            let fault = match component {
                "etcd" => "the API server's etcd SIGKILLed",
                _ => "kube-apiserver SIGKILLed",
            };
            let mut row = Row::outage(fault, "drain of the primary");
            for i in 0..outage_runs {
                row.record(i, suite.control_plane_crash(i, component).await);
            }
            rows.push(row);
        }
        let mut row = Row::outage("the primary's node and pod lost", "at rest (no vtorc)");
        for i in 0..outage_runs {
            row.record(i, suite.lost_primary(i).await);
        }
        rows.push(row);
        let rng = Rng::new(suite.rng.draw());
        rows.push(leader_failover(client, runs, rng).await?);
        report(seed, &settings, &rows)
    })
    .await
}

/// What the scenarios share: the namespace, the operator, the fake, the random points.
struct Suite<'a> {
    client: &'a Client,
    ns: &'a str,
    operator: &'a mut Operator,
    fake: &'a SharedFake,
    /// The fake's address, for the reparents a test makes by hand.
    address: SocketAddr,
    rng: Rng,
}

/// The cluster the drain and scale-down runs share.
const SHARED: &str = "faults";
const SHARED_KEYSPACE: &str = "faultsks";
const SHARED_PAIR: (&str, &str) = (SHARED, SHARED_KEYSPACE);
/// The cluster of the rolling update runs (`updateStrategy: Immediate`), and the two images
/// each run changes between.
const ROLL: (&str, &str) = ("roll", "rollks");
const IMAGES: [&str; 2] = ["vitess/lite:v24.0.3", "vitess/lite:v24.0.4"];

/// Where a drain run of the shared cluster starts from.
struct DrainStart<'a> {
    /// Has seen the cluster converged.
    witness: Witness<'a>,
    /// The primary's alias, and its pod's name.
    primary: String,
    pod: String,
    /// The tablet pods by alias.
    before: BTreeMap<String, Pod>,
    /// How many changes of primary Vitess had made.
    changes_before: usize,
}

/// What one run that survived measured.
struct Survived {
    /// From the restart to the shard converged again.
    recovered: Duration,
    /// How the operator was killed, for the log.
    how: String,
}

impl<'a> Suite<'a> {
    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), self.ns)
    }

    /// Kills the operator, lets the fake serve again (a reparent left hanging ends: it is
    /// served if its caller's connection still stands, else dropped), and starts the
    /// operator again after up to 2 s; returns when it was started.
    async fn kill_and_restart(&mut self) -> Result<Instant> {
        self.operator.kill()?;
        set_fake_mode(self.fake, Mode::Serve).await;
        let pause = self.rng.duration(Duration::from_secs(2));
        tokio::time::sleep(pause).await;
        self.operator.restart()?;
        Ok(Instant::now())
    }

    /// Before a run: the operator runs (a failed run may have left it killed) and the fake
    /// serves.
    async fn ready_for_a_run(&mut self) -> Result<()> {
        set_fake_mode(self.fake, Mode::Serve).await;
        if self.operator.pid().is_none() {
            self.operator.restart()?;
        }
        self.operator.check_running()
    }

    /// Up to 300 ms more, so that the kill does not always land at the very moment seen.
    async fn jitter(&mut self) -> Duration {
        let pause = self.rng.duration(Duration::from_millis(300));
        tokio::time::sleep(pause).await;
        pause
    }

    /// From now on PlannedReparentShard is held in flight (the fake waits before it answers);
    /// returns how many `keyspace` had received, for [`Suite::reparent_held`]. Called before
    /// what makes the operator send one, so that none is missed.
    async fn hold_reparents(&self, keyspace: &str) -> usize {
        set_fake_mode(self.fake, Mode::HangReparents).await;
        prs_calls(self.fake, keyspace).await.len()
    }

    /// Returns once vtctld received a PlannedReparentShard of `keyspace` beyond the `sent`
    /// that [`Suite::hold_reparents`] counted.
    async fn reparent_held(&self, keyspace: &str, sent: usize) -> Result<()> {
        let fake = self.fake;
        until("a PlannedReparentShard to be sent", async || {
            Ok(prs_calls(fake, keyspace).await.len() > sent)
        })
        .await
    }

    /// Lets a held reparent through and returns as soon as Vitess made it, before the
    /// operator could act on the answer.
    async fn release_reparent(&self, keyspace: &str) -> Result<()> {
        let before = reparents(self.fake, keyspace).await.len();
        set_fake_mode(self.fake, Mode::Serve).await;
        let fake = self.fake;
        until("Vitess to make the held reparent", async || {
            Ok(reparents(fake, keyspace).await.len() > before)
        })
        .await
    }

    /// A new cluster; the operator is killed during its first election, at kill point
    /// `run` (of 5, in turn).
    async fn election(&mut self, run: usize) -> Result<Survived> {
        self.ready_for_a_run().await?;
        let name = format!("elect{run}");
        let keyspace = format!("ks{run}");
        let mut witness = Witness::new(self.client, self.ns, &name);
        let shards = dynamic(self.client, self.ns, "VitessShard");
        let pods = self.pods();
        let point = run % 5;
        let sent = if point >= 3 {
            self.hold_reparents(&keyspace).await
        } else {
            0
        };
        apply_yaml(self.client, self.ns, &cluster_yaml(&name, &keyspace, 2)).await?;
        let at = match point {
            0 => "right after the apply",
            1 => {
                let cluster = name.as_str();
                until("the VitessShard", async || {
                    Ok(shards
                        .list(&ListParams::default().labels(&format!("{CLUSTER_LABEL}={cluster}")))
                        .await?
                        .items
                        .len()
                        == 1)
                })
                .await?;
                "once the VitessShard existed"
            }
            2 => {
                let cluster = name.as_str();
                until("the tablet pods", async || {
                    Ok(tablet_pods(&pods, Some(cluster)).await?.len() == 2)
                })
                .await?;
                "once the tablet pods existed"
            }
            3 => {
                self.reparent_held(&keyspace, sent).await?;
                "while the first PlannedReparentShard was in flight"
            }
            _ => {
                self.reparent_held(&keyspace, sent).await?;
                self.release_reparent(&keyspace).await?;
                "once Vitess had elected, before the operator saw the answer"
            }
        };
        let how = if point == 4 {
            at.to_string()
        } else {
            format!("{at} (+{:?})", self.jitter().await)
        };
        witness.observe().await?;
        let restarted = self.kill_and_restart().await?;

        let (fake, operator) = (self.fake, &mut *self.operator);
        let primary = wait_for(
            &format!("cluster {name}'s first primary"),
            TIMEOUT,
            async |seen: &mut String| {
                operator.check_running()?;
                witness.observe().await?;
                let status = shard_status(&shards, &name, "masterAlias").await?;
                let vitess = fake_primary(fake, &keyspace, SHARD).await;
                let tablets = tablet_pods(&pods, Some(&name)).await?;
                let ready = tablets.values().filter(|p| is_ready(p)).count();
                *seen = format!(
                    "masterAlias {status:?}, Vitess' primary {vitess:?}, {ready}/2 tablets Ready"
                );
                Ok(match (status, vitess) {
                    (Some(s), Some(v)) if s == v && ready == 2 && tablets.contains_key(&s) => {
                        Some(s)
                    }
                    _ => None,
                })
            },
        )
        .await?;
        let recovered = restarted.elapsed();
        let changes = reparents(self.fake, &keyspace).await;
        ensure!(
            changes.len() == 1,
            "cluster {name}: Vitess' primary changed {} times, expected once: {changes:?}",
            changes.len()
        );
        ensure!(
            changes[0].1 == primary,
            "cluster {name}: elected {:?}, the shard says {primary}",
            changes[0]
        );
        witness.check().await?;
        // Done with it: the next run makes its own (its PVCs, which have no owner, stay).
        dynamic(self.client, self.ns, "VitessCluster")
            .delete(&name, &DeleteParams::background())
            .await
            .with_context(|| format!("deleting VitessCluster {name}"))?;
        Ok(Survived { recovered, how })
    }

    /// The cluster the drain and scale-down runs share: 3 tablets and their first primary.
    async fn shared_cluster(&mut self) -> Result<()> {
        self.ready_for_a_run().await?;
        apply_yaml(
            self.client,
            self.ns,
            &cluster_yaml(SHARED, SHARED_KEYSPACE, 3),
        )
        .await?;
        self.converged(SHARED_PAIR, 3, None, None).await.map(|_| ())
    }

    /// Before a drain or scale-down run: what a failed run may have left is undone (3
    /// tablets in the spec, no drain started); the run then waits for the cluster to
    /// converge.
    async fn reset_shared(&mut self) -> Result<()> {
        self.ready_for_a_run().await?;
        apply_yaml(
            self.client,
            self.ns,
            &cluster_yaml(SHARED, SHARED_KEYSPACE, 3),
        )
        .await?;
        let pods = self.pods();
        for pod in tablet_pods(&pods, Some(SHARED)).await?.values() {
            if has(pod, STARTED) {
                annotate(&pods, &pod.name_any(), STARTED, None).await?;
            }
        }
        Ok(())
    }

    /// Waits until `cluster` (whose keyspace is `keyspace`) has `tablets` Ready tablet pods,
    /// none of them being deleted or drained, all running `image` if given, and a primary
    /// among them that Vitess and the shard's status agree on; `witness` sees every poll.
    /// Returns the primary and the tablet pods.
    async fn converged(
        &mut self,
        (cluster, keyspace): (&str, &str),
        tablets: usize,
        image: Option<&str>,
        mut witness: Option<&mut Witness<'_>>,
    ) -> Result<(String, BTreeMap<String, Pod>)> {
        let shards = dynamic(self.client, self.ns, "VitessShard");
        let pods = self.pods();
        let (fake, operator) = (self.fake, &mut *self.operator);
        wait_for(
            &format!("cluster {cluster}: {tablets} Ready tablets and one primary"),
            TIMEOUT,
            async |seen: &mut String| {
                operator.check_running()?;
                if let Some(w) = witness.as_deref_mut() {
                    w.observe().await?;
                }
                let status = shard_status(&shards, cluster, "masterAlias").await?;
                let vitess = fake_primary(fake, keyspace, SHARD).await;
                let all = pods
                    .list(&ListParams::default().labels(&format!(
                        "planetscale.com/component=vttablet,{CLUSTER_LABEL}={cluster}"
                    )))
                    .await?
                    .items;
                let ready = all
                    .iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none() && is_ready(p))
                    .filter(|p| !has(p, STARTED) && !has(p, FINISHED))
                    .filter(|p| image.is_none() || vttablet_image(p) == image)
                    .count();
                let on = image.map(|i| format!(" on {i}")).unwrap_or_default();
                let listed = all.len();
                *seen = format!(
                    "{listed} tablet pods, {ready} Ready{on} and not draining; masterAlias \
                     {status:?}, Vitess' primary {vitess:?}"
                );
                let tablets_now: BTreeMap<String, Pod> = all
                    .into_iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                    .filter_map(|p| tablet_of(&p).map(|t| (t.alias.to_string(), p)))
                    .collect();
                Ok(match (status, vitess) {
                    (Some(s), Some(v))
                        if s == v
                            && listed == tablets
                            && ready == tablets
                            && tablets_now.contains_key(&s) =>
                    {
                        Some((s, tablets_now))
                    }
                    _ => None,
                })
            },
        )
        .await
    }

    /// Drains the shared cluster's primary; the operator is killed at kill point `run` (of
    /// 5, in turn): before, during or after the reparent, or once the pod was finished.
    async fn drain(&mut self, run: usize) -> Result<Survived> {
        let DrainStart {
            mut witness,
            primary,
            before,
            changes_before,
            pod,
        } = self.drain_start().await?;
        let pods = self.pods();
        let point = run % 5;
        let sent = if point == 2 || point == 3 {
            self.hold_reparents(SHARED_KEYSPACE).await
        } else {
            0
        };
        annotate(&pods, &pod, STARTED, Some(&format!("faults run {run}"))).await?;
        let at = match point {
            0 => "right after started",
            1 => {
                until_annotated(&pods, &pod, ACKNOWLEDGED).await?;
                "once acknowledged"
            }
            2 => {
                self.reparent_held(SHARED_KEYSPACE, sent).await?;
                "while its PlannedReparentShard was in flight"
            }
            3 => {
                self.reparent_held(SHARED_KEYSPACE, sent).await?;
                self.release_reparent(SHARED_KEYSPACE).await?;
                "once Vitess had moved the primary, before the operator saw the answer"
            }
            _ => {
                until_annotated(&pods, &pod, FINISHED).await?;
                "once finished"
            }
        };
        let how = if point == 3 {
            at.to_string()
        } else {
            format!("{at} (+{:?})", self.jitter().await)
        };
        witness.observe().await?;
        self.kill_and_restart().await?;
        let recovered = self
            .drain_completes(SHARED_PAIR, &primary, &before, changes_before, &mut witness)
            .await?;
        Ok(Survived { recovered, how })
    }

    /// Before a drain run: the shared cluster reset and converged (3 tablets, one primary).
    async fn drain_start(&mut self) -> Result<DrainStart<'a>> {
        self.reset_shared().await?;
        let mut witness = Witness::new(self.client, self.ns, SHARED);
        let (primary, before) = self
            .converged(SHARED_PAIR, 3, None, Some(&mut witness))
            .await?;
        witness.observe().await?;
        let changes_before = reparents(self.fake, SHARED_KEYSPACE).await.len();
        let pod = before[&primary].name_any();
        Ok(DrainStart {
            witness,
            primary,
            before,
            changes_before,
            pod,
        })
    }

    /// After a crash during the drain of `primary` (whose tablets were `before`): waits for
    /// its pod to be finished and the primary to have moved, checks that it moved exactly once
    /// since `changes_before`, that no pod was replaced and nothing was lost, then ends the
    /// drain. Returns how long the drain took to complete from the call.
    async fn drain_completes(
        &mut self,
        (cluster, keyspace): (&str, &str),
        primary: &str,
        before: &BTreeMap<String, Pod>,
        changes_before: usize,
        witness: &mut Witness<'_>,
    ) -> Result<Duration> {
        let called = Instant::now();
        let pods = self.pods();
        let pod = before[primary].name_any();
        let shards = dynamic(self.client, self.ns, "VitessShard");
        let (fake, operator) = (self.fake, &mut *self.operator);
        let new_primary = wait_for(
            &format!("{pod} finished and the primary moved"),
            TIMEOUT,
            async |seen: &mut String| {
                operator.check_running()?;
                witness.observe().await?;
                let p = pods.get(&pod).await?;
                let status = shard_status(&shards, cluster, "masterAlias").await?;
                let vitess = fake_primary(fake, keyspace, SHARD).await;
                *seen = format!(
                    "masterAlias {status:?}, Vitess' primary {vitess:?}, {pod}'s annotations {:?}",
                    p.annotations()
                );
                Ok(match (status, vitess) {
                    (Some(s), Some(v))
                        if s == v && s != primary && has(&p, ACKNOWLEDGED) && has(&p, FINISHED) =>
                    {
                        Some(s)
                    }
                    _ => None,
                })
            },
        )
        .await?;
        let took = called.elapsed();
        let changes = reparents(self.fake, keyspace).await;
        let this_run = &changes[changes_before.min(changes.len())..];
        ensure!(
            this_run == [(Some(primary.to_string()), new_primary.clone())],
            "the primary should have moved once, from {primary} to {new_primary}; Vitess' \
             changes of primary in this run: {this_run:?}"
        );
        let after = tablet_pods(&pods, Some(cluster)).await?;
        ensure!(
            !has(&after[&new_primary], FINISHED),
            "the new primary's pod was finished"
        );
        same_pods(before, &after)?;
        witness.check().await?;

        // The drain is over: `started` goes, and with it `acknowledged` and `finished`.
        annotate(&pods, &pod, STARTED, None).await?;
        let operator = &mut *self.operator;
        wait_for(
            &format!("{pod}'s drain annotations to go"),
            TIMEOUT,
            async |seen: &mut String| {
                operator.check_running()?;
                let p = pods.get(&pod).await?;
                *seen = format!("{:?}", p.annotations());
                Ok((!has(&p, ACKNOWLEDGED) && !has(&p, FINISHED)).then_some(()))
            },
        )
        .await?;
        Ok(took)
    }

    /// Scales the shared cluster's pool from 3 tablets to 2 (the last one, index 3, goes;
    /// in every other run it is first made the primary, with PlannedReparentShard as a
    /// person would), killing the operator at kill point `run` (of 4, in turn); then back
    /// to 3.
    async fn scale_down(&mut self, run: usize) -> Result<Survived> {
        self.reset_shared().await?;
        let mut witness = Witness::new(self.client, self.ns, SHARED);
        let (mut primary, before) = self
            .converged(SHARED_PAIR, 3, None, Some(&mut witness))
            .await?;
        let (removed, removed_pod) = before
            .iter()
            .max_by_key(|(_, p)| {
                p.labels()
                    .get("planetscale.com/tablet-index")
                    .and_then(|i| i.parse::<u32>().ok())
            })
            .map(|(a, p)| (a.clone(), p.name_any()))
            .context("no tablet pods")?;
        let of_primary = (run + run / 4).is_multiple_of(2);
        if of_primary && primary != removed {
            let vtctld = Vtctld::connect_lazy(&self.address.to_string(), None)?;
            let to: Alias = removed.parse().context("the tablet's alias")?;
            let from: Alias = primary.parse().context("the primary's alias")?;
            vtctld
                .planned_reparent(SHARED_KEYSPACE, SHARD, &to, Some(&from))
                .await
                .context("making the tablet to remove the primary")?;
            // The operator is not told: it reads Vitess' primary when it acts (its status
            // shows a primary moved behind its back only at its next look, up to 5 min).
            primary = removed.clone();
        }
        let changes_before = reparents(self.fake, SHARED_KEYSPACE).await.len();
        apply_yaml(
            self.client,
            self.ns,
            &cluster_yaml(SHARED, SHARED_KEYSPACE, 2),
        )
        .await?;
        let pods = self.pods();
        let at = match run % 4 {
            0 => "right after replicas 3 -> 2",
            1 => {
                until_annotated(&pods, &removed_pod, STARTED).await?;
                "once the removed tablet's drain started"
            }
            2 => {
                until_annotated(&pods, &removed_pod, FINISHED).await?;
                "once the removed tablet was finished"
            }
            _ => {
                until(&format!("{removed_pod} to be deleted"), async || {
                    Ok(pods
                        .get_opt(&removed_pod)
                        .await?
                        .is_none_or(|p| p.metadata.deletion_timestamp.is_some()))
                })
                .await?;
                "once the removed tablet's pod was deleted"
            }
        };
        let role = if of_primary { "primary" } else { "replica" };
        let how = format!(
            "{at} (+{:?}), the removed tablet a {role}",
            self.jitter().await
        );
        witness.observe().await?;
        let restarted = self.kill_and_restart().await?;
        let (new_primary, after) = self
            .converged(SHARED_PAIR, 2, None, Some(&mut witness))
            .await?;
        let recovered = restarted.elapsed();

        ensure!(
            !after.contains_key(&removed) && after.len() == 2,
            "expected {removed} removed, before {:?}, after {:?}",
            before.keys().collect::<Vec<_>>(),
            after.keys().collect::<Vec<_>>()
        );
        let changes = reparents(self.fake, SHARED_KEYSPACE).await;
        let this_run = &changes[changes_before.min(changes.len())..];
        if removed == primary {
            ensure!(
                this_run == [(Some(primary.clone()), new_primary.clone())],
                "the removed tablet {removed} was the primary: it should have moved once, to \
                 {new_primary}; Vitess' changes of primary: {this_run:?}"
            );
        } else {
            ensure!(
                this_run.is_empty() && new_primary == primary,
                "the removed tablet {removed} was a replica, yet the primary moved: {this_run:?}"
            );
        }
        let kept: BTreeMap<String, Pod> = before
            .iter()
            .filter(|(a, _)| **a != removed)
            .map(|(a, p)| (a.clone(), p.clone()))
            .collect();
        same_pods(&kept, &after)?;
        witness.check().await?;

        // Back to 3: the removed tablet returns on its old claim (the witness would see a new
        // one as the old one lost).
        apply_yaml(
            self.client,
            self.ns,
            &cluster_yaml(SHARED, SHARED_KEYSPACE, 3),
        )
        .await?;
        self.converged(SHARED_PAIR, 3, None, Some(&mut witness))
            .await?;
        witness.check().await?;
        Ok(Survived { recovered, how })
    }

    /// Changes the vttablet image of the `roll` cluster (`updateStrategy: Immediate`, 3
    /// tablets), killing the operator at kill point `run` (of 4, in turn): right after the
    /// apply, once the first pod was replaced, while the primary's reparent is in flight, once
    /// the old primary's pod is finished or gone.
    async fn rolling_update(&mut self, run: usize) -> Result<Survived> {
        self.ready_for_a_run().await?;
        let (cluster, keyspace) = ROLL;
        let mut witness = Witness::new(self.client, self.ns, cluster);
        // Where the previous run left it (the first run makes the cluster).
        let from = IMAGES[run % 2];
        let to = IMAGES[(run + 1) % 2];
        let yaml = |image| one_shard_cluster_yaml(cluster, keyspace, 3, "Immediate", image);
        apply_yaml(self.client, self.ns, &yaml(from)).await?;
        let (primary, before) = self
            .converged(ROLL, 3, Some(from), Some(&mut witness))
            .await?;
        let changes_before = reparents(self.fake, keyspace).await.len();
        let primary_pod = before[&primary].name_any();
        let primary_uid = before[&primary].uid();
        let point = run % 4;
        let sent = if point == 2 {
            self.hold_reparents(keyspace).await
        } else {
            0
        };
        apply_yaml(self.client, self.ns, &yaml(to)).await?;
        let pods = self.pods();
        let at = match point {
            0 => "right after the apply",
            1 => {
                until("the first tablet pod to be replaced", async || {
                    let now = tablet_pods(&pods, Some(cluster)).await?;
                    Ok(before
                        .iter()
                        .any(|(a, p)| now.get(a).is_none_or(|n| n.uid() != p.uid())))
                })
                .await?;
                "once the first pod was replaced"
            }
            2 => {
                self.reparent_held(keyspace, sent).await?;
                "while the primary's PlannedReparentShard was in flight"
            }
            _ => {
                until(
                    &format!("{primary_pod} to be finished or gone"),
                    async || {
                        Ok(match pods.get_opt(&primary_pod).await? {
                            Some(p) => p.uid() != primary_uid || has(&p, FINISHED),
                            None => true,
                        })
                    },
                )
                .await?;
                "once the old primary's pod was finished"
            }
        };
        let how = format!("{at} (+{:?})", self.jitter().await);
        witness.observe().await?;
        let restarted = self.kill_and_restart().await?;
        let (new_primary, after) = self
            .converged(ROLL, 3, Some(to), Some(&mut witness))
            .await?;
        let recovered = restarted.elapsed();

        let changes = reparents(self.fake, keyspace).await;
        let this_run = &changes[changes_before.min(changes.len())..];
        ensure!(
            this_run == [(Some(primary.clone()), new_primary.clone())],
            "the primary should have moved once, from {primary} to {new_primary}; Vitess' \
             changes of primary in this run: {this_run:?}"
        );
        let kept: Vec<String> = before
            .iter()
            .filter(|(a, p)| after.get(*a).and_then(|n| n.uid()) == p.uid())
            .map(|(_, p)| p.name_any())
            .collect();
        ensure!(
            kept.is_empty(),
            "pods not replaced by the rollout: {kept:?}"
        );
        witness.check().await?;
        Ok(Survived { recovered, how })
    }
}

/// The Lease the two operators of [`leader_failover`] share.
const LEASE: &str = "vitess-operator-leader-faults";
/// The cluster of the leader failover runs.
const LEAD: (&str, &str) = ("lead", "leadks");

/// Two operator replicas with leader election on a namespace of their own; in each run the
/// leader is SIGKILLed during a drain of the primary (at a random moment after `started`, or
/// while its PlannedReparentShard is in flight, in turn) and not started again until the
/// drain is done: the other replica takes the Lease over once it expires and finishes the
/// drain; the primary moves exactly once. Recovery is from the kill to the drain done.
async fn leader_failover(client: &Client, runs: usize, rng: Rng) -> Result<Row> {
    let mut row = Row::outage(
        "the leader of 2 operator replicas SIGKILLed",
        "drain of the primary",
    );
    let ns = TestNamespace::create(client, "faults-leader").await?;
    let topology = FakeTopology::start(client, ns.name()).await?;
    let start = |name: &str| {
        Operator::start(
            &format!("faults-leader-{name}"),
            &[
                "run",
                "--namespace",
                ns.name(),
                "--vtctld-address",
                &topology.vtctld_address(),
                METRICS_ADDRESS,
                "--leader-elect",
                "--leader-election-lease-name",
                LEASE,
            ],
        )
    };
    let mut first = start("a")?;
    let mut standby = start("b")?;
    let logs = format!(
        "the replicas' logs: {} and {}",
        first.log_path().display(),
        standby.log_path().display()
    );
    let mut suite = Suite {
        client,
        ns: ns.name(),
        operator: &mut first,
        fake: topology.shared(),
        address: topology.address(),
        rng,
    };
    let (cluster, keyspace) = LEAD;
    apply_yaml(client, ns.name(), &cluster_yaml(cluster, keyspace, 3)).await?;
    for run in 0..runs {
        let result = suite.leader_killed(run, &mut standby).await;
        row.record(run, result.with_context(|| logs.clone()));
    }
    let stopped = (first.stop().await, standby.stop().await);
    topology.stop().await;
    if row.failures.is_empty() {
        stopped.0?;
        stopped.1?;
        ns.delete(TIMEOUT).await?;
    }
    Ok(row)
}

impl Suite<'_> {
    /// One run of [`leader_failover`]: `self.operator` and `standby` are the two replicas;
    /// afterwards `self.operator` is the leader.
    async fn leader_killed(&mut self, run: usize, standby: &mut Operator) -> Result<Survived> {
        // Both run (the one killed last time comes back as the standby).
        self.ready_for_a_run().await?;
        if standby.pid().is_none() {
            standby.restart()?;
        }
        let mut witness = Witness::new(self.client, self.ns, LEAD.0);
        let (primary, before) = self.converged(LEAD, 3, None, Some(&mut witness)).await?;
        let holder = lease_holder(self.client, self.ns, LEASE).await?;
        let (mine, other) = (identity_of(self.operator)?, identity_of(standby)?);
        if holder.as_deref() == Some(other.as_str()) {
            std::mem::swap(self.operator, standby);
        } else if holder.as_deref() != Some(mine.as_str()) {
            bail!("the Lease {LEASE} is held by {holder:?}, neither {mine} nor {other}");
        }
        let changes_before = reparents(self.fake, LEAD.1).await.len();
        let pods = self.pods();
        let pod = before[&primary].name_any();
        let in_flight = run % 2 == 1;
        let sent = if in_flight {
            self.hold_reparents(LEAD.1).await
        } else {
            0
        };
        annotate(
            &pods,
            &pod,
            STARTED,
            Some(&format!("faults leader run {run}")),
        )
        .await?;
        let at = if in_flight {
            self.reparent_held(LEAD.1, sent).await?;
            "while its PlannedReparentShard was in flight"
        } else {
            "right after started"
        };
        let how = format!("the leader {at} (+{:?})", self.jitter().await);
        witness.observe().await?;
        self.operator.kill()?;
        set_fake_mode(self.fake, Mode::Serve).await;
        // The standby is the one left; the killed leader stays down until the drain is done.
        std::mem::swap(self.operator, standby);
        let killed = Instant::now();
        self.drain_completes(LEAD, &primary, &before, changes_before, &mut witness)
            .await?;
        let recovered = killed.elapsed();
        let holder = lease_holder(self.client, self.ns, LEASE).await?;
        let survivor = identity_of(self.operator)?;
        ensure!(
            holder.as_deref() == Some(survivor.as_str()),
            "the Lease is held by {holder:?}, not by the surviving replica {survivor}"
        );
        Ok(Survived { recovered, how })
    }
}

/// Returns once the pod has the annotation `key` (polled every 20 ms).
async fn until_annotated(pods: &Api<Pod>, pod: &str, key: &str) -> Result<()> {
    until(&format!("{pod} to be {key}"), async || {
        Ok(has(&pods.get(pod).await?, key))
    })
    .await
}

/// Polls `check` every 20 ms (kill points are short moments) until it is true; an error
/// counts as not yet.
async fn until<F>(what: &str, mut check: F) -> Result<()>
where
    F: AsyncFnMut() -> Result<bool>,
{
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < TIMEOUT {
        match check().await {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(err) => last = format!("; last error: {err:#}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("timed out after {TIMEOUT:?} waiting for {what}{last}")
}

/// Documents as one multi-document text for [`apply_yaml`] (JSON is YAML).
fn json_documents(docs: &[serde_json::Value]) -> Result<String> {
    let texts: Vec<String> = docs
        .iter()
        .map(serde_json::to_string)
        .collect::<Result<_, _>>()?;
    Ok(texts.join("\n---\n"))
}

fn cluster_yaml(name: &str, keyspace: &str, replicas: u32) -> String {
    one_shard_cluster_yaml(name, keyspace, replicas, "External", IMAGES[0])
}

/// Everything whose loss would lose data or the lockserver, by kind/name, with the uid first
/// seen: the cluster's PVCs, etcd member pods and EtcdLockservers. An object that goes, or
/// comes back with another uid, was lost.
struct Witness<'a> {
    client: &'a Client,
    ns: &'a str,
    cluster: String,
    seen: BTreeMap<String, String>,
}

impl<'a> Witness<'a> {
    fn new(client: &'a Client, ns: &'a str, cluster: &str) -> Self {
        Self {
            client,
            ns,
            cluster: cluster.to_string(),
            seen: BTreeMap::new(),
        }
    }

    async fn now(&self) -> Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        let mine = ListParams::default().labels(&format!("{CLUSTER_LABEL}={}", self.cluster));
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), self.ns);
        for claim in claims.list(&mine).await?.items {
            out.insert(
                format!("PersistentVolumeClaim/{}", claim.name_any()),
                claim.uid().unwrap_or_default(),
            );
        }
        let etcd = ListParams::default().labels(&format!(
            "{CLUSTER_LABEL}={},planetscale.com/component=etcd",
            self.cluster
        ));
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), self.ns);
        for pod in pods.list(&etcd).await?.items {
            out.insert(
                format!("Pod/{}", pod.name_any()),
                pod.uid().unwrap_or_default(),
            );
        }
        let prefix = format!("{}-etcd-", self.cluster);
        for lockserver in dynamic(self.client, self.ns, "EtcdLockserver")
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter(|l| l.name_any().starts_with(&prefix))
        {
            out.insert(
                format!("EtcdLockserver/{}", lockserver.name_any()),
                lockserver.uid().unwrap_or_default(),
            );
        }
        Ok(out)
    }

    /// Looks once, remembering what it had not seen before.
    async fn observe(&mut self) -> Result<()> {
        for (key, uid) in self.now().await? {
            self.seen.entry(key).or_insert(uid);
        }
        Ok(())
    }

    /// Fails naming every object seen before that is gone or was replaced.
    async fn check(&mut self) -> Result<()> {
        let now = self.now().await?;
        let lost: Vec<String> = self
            .seen
            .iter()
            .filter(|(key, uid)| now.get(*key) != Some(*uid))
            .map(|(key, _)| match now.get(key) {
                None => format!("{key} deleted"),
                Some(_) => format!("{key} replaced"),
            })
            .collect();
        ensure!(
            lost.is_empty(),
            "objects lost: {}",
            LostObjects(lost.len()).and(&lost.join(", "))
        );
        self.observe().await
    }
}

/// The count of lost objects, carried in the error so that the table can say how many.
struct LostObjects(usize);

impl LostObjects {
    const MARK: &'static str = "lost-objects=";

    fn and(&self, details: &str) -> String {
        format!("{}{} ({details})", Self::MARK, self.0)
    }

    fn of(error: &str) -> usize {
        error
            .split(Self::MARK)
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

/// Fails naming each tablet pod of `before` that is gone or was replaced in `after`.
fn same_pods(before: &BTreeMap<String, Pod>, after: &BTreeMap<String, Pod>) -> Result<()> {
    let replaced: Vec<String> = before
        .iter()
        .filter(|(alias, pod)| after.get(*alias).and_then(|p| p.uid()) != pod.uid())
        .map(|(_, pod)| pod.name_any())
        .collect();
    ensure!(
        replaced.is_empty(),
        "tablet pods the operator had no reason to replace were replaced: {replaced:?}"
    );
    Ok(())
}

/// The image of a tablet pod's vttablet container.
fn vttablet_image(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()?
        .containers
        .iter()
        .find(|c| c.name == "vttablet")?
        .image
        .as_deref()
}

/// The status field `field` of a cluster's one VitessShard.
async fn shard_status(
    shards: &Api<DynamicObject>,
    cluster: &str,
    field: &str,
) -> Result<Option<String>> {
    let list = shards
        .list(&ListParams::default().labels(&format!("{CLUSTER_LABEL}={cluster}")))
        .await?;
    let Some(shard) = list.items.first() else {
        return Ok(None);
    };
    Ok(shard.data["status"][field].as_str().map(str::to_string))
}

/// Vitess' changes of the shard's primary, oldest first.
async fn reparents(fake: &SharedFake, keyspace: &str) -> Vec<(Option<String>, String)> {
    let guard = fake.lock().await;
    guard
        .as_ref()
        .map(|f| f.reparents(keyspace, SHARD))
        .unwrap_or_default()
        .into_iter()
        .map(|(from, to)| (from.map(|a| a.to_string()), to.to_string()))
        .collect()
}

/// The PlannedReparentShard requests received for the keyspace's shard.
async fn prs_calls(fake: &SharedFake, keyspace: &str) -> Vec<String> {
    calls(fake, PRS, &format!("{keyspace}/{SHARD} ")).await
}

/// The requests of `method` the fake received whose text starts with `prefix`, oldest first.
async fn calls(fake: &SharedFake, method: &str, prefix: &str) -> Vec<String> {
    let guard = fake.lock().await;
    guard
        .as_ref()
        .map(|f| f.calls())
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.method == method && c.request.starts_with(prefix))
        .map(|c| c.request)
        .collect()
}

/// One row of the table.
struct Row {
    /// What goes wrong.
    fault: &'static str,
    /// What the operator is doing meanwhile.
    scenario: &'static str,
    recovered: Vec<Duration>,
    failures: Vec<String>,
    objects_lost: usize,
}

impl Row {
    /// The operator SIGKILLed during `scenario`.
    fn new(scenario: &'static str) -> Self {
        Self::outage("operator SIGKILLed", scenario)
    }

    /// `fault` during `scenario`.
    fn outage(fault: &'static str, scenario: &'static str) -> Self {
        Self {
            fault,
            scenario,
            recovered: Vec::new(),
            failures: Vec::new(),
            objects_lost: 0,
        }
    }

    fn record(&mut self, run: usize, result: Result<Survived>) {
        match result {
            Ok(survived) => {
                eprintln!(
                    "faults: {}, {} run {run}: {}; recovered in {:.1} s",
                    self.fault,
                    self.scenario,
                    survived.how,
                    survived.recovered.as_secs_f64()
                );
                self.recovered.push(survived.recovered);
            }
            Err(err) => {
                let err = format!("{err:#}");
                eprintln!(
                    "faults: {}, {} run {run} FAILED: {err}",
                    self.fault, self.scenario
                );
                self.objects_lost += LostObjects::of(&err);
                self.failures.push(format!("run {run}: {err}"));
            }
        }
    }

    fn runs(&self) -> usize {
        self.recovered.len() + self.failures.len()
    }

    /// The median and the longest time to recover, in seconds.
    fn recovery(&self) -> (f64, f64) {
        let mut secs: Vec<f64> = self.recovered.iter().map(Duration::as_secs_f64).collect();
        secs.sort_by(f64::total_cmp);
        match secs.len() {
            0 => (f64::NAN, f64::NAN),
            n => (secs[n / 2], secs[n - 1]),
        }
    }
}

/// Writes the table (JSON and Markdown) and fails if any run did not survive; `settings` are
/// the environment that replays the runs.
fn report(seed: u64, settings: &str, rows: &[Row]) -> Result<()> {
    let mut markdown = String::from(
        "| fault | during | runs | survived | data lost | objects lost | recovery median / max \
         |\n|---|---|---|---|---|---|---|\n",
    );
    let mut json_rows = Vec::new();
    for row in rows {
        let (median, max) = row.recovery();
        markdown.push_str(&format!(
            "| {} | {} | {} | {} | n/a (KWOK) | {} | {median:.1} s / {max:.1} s |\n",
            row.fault,
            row.scenario,
            row.runs(),
            row.recovered.len(),
            row.objects_lost,
        ));
        json_rows.push(json!({
            "fault": row.fault,
            "scenario": row.scenario,
            "runs": row.runs(),
            "survived": row.recovered.len(),
            "objects_lost": row.objects_lost,
            "recovery_median_s": median,
            "recovery_max_s": max,
            "failures": row.failures,
        }));
    }
    markdown.push_str(&format!("\n{settings}, {}\n", date()));
    eprintln!("{markdown}");
    write_figures(
        "faults",
        &json!({"seed": seed, "settings": settings, "rows": json_rows}),
    )?;
    let path = workspace_dir().join("target/e2e-figures/faults.md");
    std::fs::write(&path, &markdown).with_context(|| format!("writing {}", path.display()))?;
    let failures: Vec<String> = rows
        .iter()
        .flat_map(|r| {
            r.failures
                .iter()
                .map(move |f| format!("{}, {}: {f}", r.fault, r.scenario))
        })
        .collect();
    if !failures.is_empty() {
        bail!(
            "{} of the runs did not survive ({settings} replays the same choices):\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
    Ok(())
}

fn date() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(v) if v.trim().is_empty() => Ok(default),
        Ok(v) => v
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}={v:?} is not a number")),
    }
}

fn now_seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}

#[test]
fn lost_objects_are_counted_from_the_error() {
    assert_eq!(
        LostObjects::of(&format!("x: {}", LostObjects(3).and("a, b, c"))),
        3
    );
}
