//! The first primary, drains and rolling updates, end to end: a real API server, KWOK pods,
//! the operator as a process, and the fake vtctld (`vtctld_fake`) standing
//! in for Vitess, since reparents need MySQL-backed tablets. A small "tablet agent" plays what
//! each vttablet does on start: it registers its tablet (as a REPLICA or RDONLY) once its pod
//! is Ready. Everything the test checks is what a user would: pod annotations, the
//! VitessShard's status and Events, and what Vitess (the fake) records.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use vitess_operator_e2e::{
    Operator, SharedFake, annotate, apply_yaml, dynamic, fake_primary, has_annotation as has,
    is_ready, one_shard_cluster_yaml, set_fake_mode, tablet_pods, wait_for, with_fake_vtctld,
};
use vtctld_fake::{FakeVtctld, Mode};

const TIMEOUT: Duration = Duration::from_secs(120);
const STARTED: &str = "drain.planetscale.com/started";
const ACKNOWLEDGED: &str = "drain.planetscale.com/acknowledged";
const FINISHED: &str = "drain.planetscale.com/finished";
const KEYSPACE: &str = "commerce";
const SHARD: &str = "-";
const PRS: &str = "PlannedReparentShard";

/// The fake, shared with the tablet agent; `None` while it is down.
type Shared = SharedFake;

async fn prs_count(fake: &Shared) -> usize {
    let guard = fake.lock().await;
    guard.as_ref().map(|f| f.count(PRS)).unwrap_or_default()
}

/// The shard's status field `field` (a string), e.g. `masterAlias`.
async fn shard_field(
    shards: &Api<kube::api::DynamicObject>,
    field: &str,
) -> Result<Option<String>> {
    let list = shards.list(&ListParams::default()).await?;
    let shard = list.items.first().context("no VitessShard yet")?;
    Ok(shard.data["status"][field].as_str().map(str::to_string))
}

async fn shard_condition(
    shards: &Api<kube::api::DynamicObject>,
    type_: &str,
) -> Result<Option<(String, String)>> {
    let list = shards.list(&ListParams::default()).await?;
    let shard = list.items.first().context("no VitessShard yet")?;
    let found = shard.data["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == type_)
        .map(|c| {
            (
                c["reason"].as_str().unwrap_or_default().to_string(),
                c["message"].as_str().unwrap_or_default().to_string(),
            )
        });
    Ok(found)
}

/// Waits for the shard's first primary and returns (primary, the other replica).
async fn wait_first_primary(
    operator: &mut Operator,
    shards: &Api<kube::api::DynamicObject>,
    fake: &Shared,
) -> Result<String> {
    wait_for(
        "the shard's first primary",
        TIMEOUT,
        async |seen: &mut String| {
            operator.check_running()?;
            let status = shard_field(shards, "masterAlias").await.unwrap_or(None);
            let twin = shard_field(shards, "primaryAlias").await.unwrap_or(None);
            let vitess = fake_primary(fake, KEYSPACE, SHARD).await;
            *seen =
                format!("masterAlias {status:?}, primaryAlias {twin:?}, fake's primary {vitess:?}");
            Ok(match (status, vitess) {
                (Some(s), Some(v)) if s == v && twin.as_deref() == Some(s.as_str()) => Some(s),
                _ => None,
            })
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drains_reparent_the_primary_and_wait_for_vtctld() -> Result<()> {
    with_fake("drain", "External", 2, drain_scenarios).await
}

/// A namespace with the cluster `test` applied (`replicas` tablets, update strategy
/// `strategy`), an operator whose vtctld is a fresh fake, and the tablet agent; then `body`.
async fn with_fake<F>(test: &str, strategy: &str, replicas: u32, body: F) -> Result<()>
where
    F: AsyncFnOnce(&Client, &str, &mut Operator, &Shared, SocketAddr) -> Result<()>,
{
    let yaml = one_shard_cluster_yaml(test, KEYSPACE, replicas, strategy, "vitess/lite:v24.0.3");
    with_fake_vtctld(test, async |client, ns, operator, shared, address| {
        apply_yaml(client, ns, &yaml).await?;
        body(client, ns, operator, shared, address).await
    })
    .await
}

async fn drain_scenarios(
    client: &Client,
    ns: &str,
    operator: &mut Operator,
    fake: &Shared,
    address: SocketAddr,
) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let shards = dynamic(client, ns, "VitessShard");

    // 1. The first primary: once both tablets are ready and registered, exactly one PRS.
    let primary = wait_first_primary(operator, &shards, fake).await?;
    ensure!(
        prs_count(fake).await == 1,
        "expected one PlannedReparentShard to elect the first primary"
    );
    let elected = shard_condition(&shards, "PrimaryElected").await?;
    ensure!(
        elected.as_ref().is_some_and(|(r, _)| r == "Elected"),
        "PrimaryElected: {elected:?}"
    );
    let all = tablet_pods(&pods, None).await?;
    let replica = all
        .keys()
        .find(|a| **a != primary)
        .context("no second tablet")?
        .clone();
    let primary_pod = all[&primary].name_any();
    let replica_pod = all[&replica].name_any();

    // 2. Draining the primary: the primary moves to the replica first, then the old pod is
    //    finished.
    annotate(&pods, &primary_pod, STARTED, Some("node maintenance")).await?;
    wait_for(
        "the primary to move and the old primary's pod to be finished",
        TIMEOUT,
        async |seen: &mut String| {
            operator.check_running()?;
            let master = shard_field(&shards, "masterAlias").await?;
            let pod = pods.get(&primary_pod).await?;
            *seen = format!(
                "masterAlias {master:?}, annotations {:?}",
                pod.annotations()
            );
            Ok((master.as_deref() == Some(replica.as_str())
                && has(&pod, ACKNOWLEDGED)
                && has(&pod, FINISHED))
            .then_some(()))
        },
    )
    .await?;
    ensure!(
        fake_primary(fake, KEYSPACE, SHARD).await.as_deref() == Some(replica.as_str()),
        "Vitess' primary did not move"
    );
    ensure!(
        !has(&pods.get(&replica_pod).await?, FINISHED),
        "the new primary's pod was finished"
    );

    // 3. Removing `started` aborts: acknowledged and finished go.
    annotate(&pods, &primary_pod, STARTED, None).await?;
    wait_cleaned(operator, &pods, &primary_pod).await?;

    // 4. Draining a replica (the old primary) finishes it without a reparent.
    let before = prs_count(fake).await;
    annotate(&pods, &primary_pod, STARTED, Some("kubectl drain")).await?;
    wait_finished(operator, &pods, &primary_pod).await?;
    ensure!(
        prs_count(fake).await == before,
        "a replica's drain asked for a reparent"
    );
    annotate(&pods, &primary_pod, STARTED, None).await?;
    wait_cleaned(operator, &pods, &primary_pod).await?;

    // 5. The primary and its only replica drain at once: nothing is finished, and an Event and
    //    the Draining condition say why. vtctld fails while both are annotated, so that the
    //    operator first sees them together (one at a time, the first would just move on).
    let new_primary_pod = replica_pod.clone();
    set_fake_mode(fake, Mode::Fail).await;
    annotate(&pods, &new_primary_pod, STARTED, Some("maintenance")).await?;
    annotate(&pods, &primary_pod, STARTED, Some("maintenance")).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    set_fake_mode(fake, Mode::Serve).await;
    wait_for(
        "a DrainBlocked Event",
        TIMEOUT,
        async |seen: &mut String| {
            operator.check_running()?;
            let events: Api<Event> = Api::namespaced(client.clone(), ns);
            let blocked: Vec<String> = events
                .list(&ListParams::default())
                .await?
                .items
                .into_iter()
                .filter(|e| e.reason.as_deref() == Some("DrainBlocked"))
                .filter_map(|e| e.note)
                .collect();
            let draining = shard_condition(&shards, "Draining").await?;
            *seen = format!("DrainBlocked events {blocked:?}, Draining {draining:?}");
            Ok(
                (!blocked.is_empty() && draining.is_some_and(|(r, _)| r == "Blocked"))
                    .then_some(()),
            )
        },
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    for pod in [&primary_pod, &new_primary_pod] {
        ensure!(
            !has(&pods.get(pod).await?, FINISHED),
            "{pod} was finished although its drain was blocked"
        );
    }
    annotate(&pods, &primary_pod, STARTED, None).await?;
    annotate(&pods, &new_primary_pod, STARTED, None).await?;
    wait_cleaned(operator, &pods, &primary_pod).await?;
    wait_cleaned(operator, &pods, &new_primary_pod).await?;

    // 6. vtctld down: no drain moves; when it is back, the drain completes.
    let topology = {
        let fake = fake
            .lock()
            .await
            .take()
            .context("the fake is not running")?;
        fake.stop().await
    };
    annotate(&pods, &primary_pod, STARTED, Some("while vtctld is down")).await?;
    wait_for(
        "VtctldReachable False",
        TIMEOUT,
        async |seen: &mut String| {
            operator.check_running()?;
            let reachable = shard_condition(&shards, "VtctldReachable").await?;
            *seen = format!("{reachable:?}");
            Ok(reachable
                .is_some_and(|(r, _)| r == "Unreachable")
                .then_some(()))
        },
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let pod = pods.get(&primary_pod).await?;
    ensure!(
        !has(&pod, ACKNOWLEDGED) && !has(&pod, FINISHED),
        "a drain moved while vtctld was down: {:?}",
        pod.annotations()
    );
    *fake.lock().await = Some(FakeVtctld::start_with(address, topology).await?);
    wait_finished(operator, &pods, &primary_pod).await?;
    ensure!(
        fake_primary(fake, KEYSPACE, SHARD).await.as_deref() == Some(replica.as_str()),
        "the primary changed while vtctld was down or after"
    );
    Ok(())
}

async fn wait_finished(operator: &mut Operator, pods: &Api<Pod>, pod: &str) -> Result<()> {
    wait_for(
        &format!("{pod} to be finished"),
        TIMEOUT,
        async |seen: &mut String| {
            operator.check_running()?;
            let p = pods.get(pod).await?;
            *seen = format!("{:?}", p.annotations());
            Ok((has(&p, ACKNOWLEDGED) && has(&p, FINISHED)).then_some(()))
        },
    )
    .await
}

async fn wait_cleaned(operator: &mut Operator, pods: &Api<Pod>, pod: &str) -> Result<()> {
    wait_for(
        &format!("{pod}'s drain annotations to be removed"),
        TIMEOUT,
        async |seen: &mut String| {
            operator.check_running()?;
            let p = pods.get(pod).await?;
            *seen = format!("{:?}", p.annotations());
            Ok((!has(&p, ACKNOWLEDGED) && !has(&p, FINISHED)).then_some(()))
        },
    )
    .await
}

/// Changing the tablet image with `updateStrategy: Immediate` replaces the shard's pods one at
/// a time, the primary last, with a reparent before the primary's pod goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn immediate_rollout_replaces_pods_one_at_a_time_primary_last() -> Result<()> {
    with_fake("rollout", "Immediate", 3, rollout).await
}

async fn rollout(
    client: &Client,
    ns: &str,
    operator: &mut Operator,
    fake: &Shared,
    _: SocketAddr,
) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let shards = dynamic(client, ns, "VitessShard");
    let clusters = dynamic(client, ns, "VitessCluster");
    let primary = wait_first_primary(operator, &shards, fake).await?;
    let before = tablet_pods(&pods, None).await?;
    ensure!(
        before.len() == 3,
        "expected 3 tablet pods, found {}",
        before.len()
    );
    let uids: BTreeMap<String, String> = before
        .iter()
        .map(|(a, p)| (a.clone(), p.uid().unwrap_or_default()))
        .collect();

    let new_image = "vitess/lite:v24.0.4";
    let patch = json!({"spec": {"images": {"vttablet": new_image}}});
    clusters
        .patch("rollout", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .context("changing the vttablet image")?;

    // Sample until every pod is replaced: the order of replacements, how many pods were ever
    // down or finished at once, and who was primary when each old pod went.
    let mut replaced: Vec<String> = Vec::new();
    let mut primary_when_replaced: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut most_finished = 0;
    let mut most_missing = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    while replaced.len() < uids.len() {
        operator.check_running()?;
        if tokio::time::Instant::now() > deadline {
            bail!("rollout incomplete after 240 s: replaced {replaced:?}");
        }
        let now = tablet_pods(&pods, None).await?;
        let vitess_primary = fake_primary(fake, KEYSPACE, SHARD).await;
        most_finished = most_finished.max(now.values().filter(|p| has(p, FINISHED)).count());
        most_missing = most_missing.max(
            uids.keys()
                .filter(|a| now.get(*a).is_none_or(|p| !is_ready(p)))
                .count(),
        );
        for (alias, old) in &uids {
            if replaced.contains(alias) {
                continue;
            }
            if now
                .get(alias)
                .is_none_or(|p| p.uid().as_deref() != Some(old.as_str()))
            {
                replaced.push(alias.clone());
                primary_when_replaced.insert(alias.clone(), vitess_primary.clone());
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("rollout order {replaced:?}; primary at each replacement {primary_when_replaced:?}");
    ensure!(
        replaced.last() == Some(&primary),
        "the primary {primary} was not replaced last: {replaced:?}"
    );
    ensure!(
        most_finished <= 1,
        "{most_finished} pods were finished at once"
    );
    ensure!(
        most_missing <= 1,
        "{most_missing} tablets were down at once"
    );
    let at_primary = primary_when_replaced.get(&primary).cloned().flatten();
    ensure!(
        at_primary.is_some() && at_primary.as_deref() != Some(primary.as_str()),
        "the primary's pod went before a reparent (Vitess' primary then: {at_primary:?})"
    );
    // Every pod now runs the new image and the shard is Ready again.
    wait_for(
        "every tablet pod on the new image and Ready",
        TIMEOUT,
        async |seen: &mut String| {
            let now = tablet_pods(&pods, None).await?;
            let images: Vec<String> = now
                .values()
                .filter(|p| is_ready(p))
                .filter_map(|p| {
                    p.spec
                        .as_ref()?
                        .containers
                        .iter()
                        .find(|c| c.name == "vttablet")?
                        .image
                        .clone()
                })
                .collect();
            *seen = format!("{images:?}");
            Ok((images.len() == 3 && images.iter().all(|i| i == new_image)).then_some(()))
        },
    )
    .await?;
    Ok(())
}
