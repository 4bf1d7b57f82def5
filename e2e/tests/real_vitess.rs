//! Real Vitess on the real node: `examples/initial-cluster.yaml`, changed only as a user would
//! to run there (the node's tolerations and affinity, its mysqld image), applied with kubectl;
//! the operator (run with cluster DNS, as in a pod) elects the first primary through the real
//! vtctld; an application connects to vtgate with the example's user, writes and reads rows on
//! the primary and on a replica. Then, on the same cluster (a converge costs minutes), a drain
//! under load: a writer inserts through vtgate without pause, the primary pod is annotated
//! `drain.planetscale.com/started`, the operator moves the primary with the real vtctld, and
//! every acknowledged row is counted on every tablet's own mysqld: none may be lost. Then
//! three more drains under load with the operator SIGKILLed and started again in each (right
//! after `started`, once `acknowledged`, once the primary moved), each drain ended before
//! the next: the primary moves, the pod is finished, no row is lost. Then a
//! rolling update under load, as GitOps would make one: the example re-applied with one more
//! vttablet flag and a mysqld `configOverrides` (its `updateStrategy` is `Immediate`); every
//! tablet pod is replaced, the replica first, the primary last after a reparent away from it;
//! every tablet's mysqld then runs with the overridden setting (it did not before); again no
//! row may be lost.
//! Then a replica's replication stopped by hand (`STOP REPLICA` on its mysqld) under load: the
//! shard's vtorc must start it again (vtorc's log says `Analysis: ReplicationStopped, will fix
//! replica` naming it), the primary stays, no row is lost.
//! Last, the primary pod deleted as a careless `kubectl delete pod` (or a lost node) would:
//! the operator makes the pod again (same name, same data volume), and the shard's vtorc
//! repairs what Vitess alone leaves broken (the tablet comes back as a read-only PRIMARY and
//! the replica still points at the old pod's address), or moves the primary if it sees the
//! old one dead first; writes are acknowledged again, and no acknowledged row is lost.
//!
//! Before the first primary neither the shard nor the cluster may be Ready, nor Healthy to the
//! chart's Argo CD health check; after it both must become both.
//!
//! Figures (times, rows written and lost, the writer's longest outage) are written to
//! `target/e2e-figures/real-vitess.json`; nothing here asserts a time except the bounds that
//! stop a stuck test.
//!
//! Without the node these tests skip, except under `CI=true`, where they fail.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use mysql_async::prelude::Queryable;
#[path = "support/argocd.rs"]
mod argocd;
use argocd::argocd_health;
use vitess_operator_e2e::sql::{
    Writer, connect, connect_when_serving, dba_query, missing_on_tablet, vtgate_address,
};
use vitess_operator_e2e::{
    Operator, TestNamespace, client, dynamic, install_crds, kubectl_with_stdin, on_real_node,
    primary_of, real_node, wait_for, workspace_dir, write_figures,
};

/// From apply to a serving primary: three etcd members, vtctld, vtgate and two MySQL 9.7
/// tablets start from nothing (measured ~2 min on 2 cores; the bound is for a loaded machine).
const CONVERGE: Duration = Duration::from_secs(600);
const CLUSTER: &str = "example";
const SHARD: &str = "example-commerce-x-x-0f5afee6";
/// The static-auth user of the example (`users.json`: `app`, empty password).
const APP_USER: &str = "app";
/// The keyspace's database on each tablet's mysqld (Vitess names it `vt_<keyspace>`).
const TABLET_DB: &str = "vt_commerce";
/// Inserts acknowledged before the drain starts, and after the primary moved.
const WRITES_AROUND_DRAIN: usize = 50;
/// How long a replica may take to catch up with every acknowledged row.
const CATCH_UP: Duration = Duration::from_secs(120);
/// The drain annotations of a tablet pod (DESIGN §6).
const STARTED: &str = "drain.planetscale.com/started";
const ACKNOWLEDGED: &str = "drain.planetscale.com/acknowledged";
const FINISHED: &str = "drain.planetscale.com/finished";
/// The mysqld setting the rolling update's `configOverrides` change (MySQL's default is 151).
const MAX_CONNECTIONS: u32 = 321;

/// The status of an object's `Ready` condition.
fn ready(object: &DynamicObject) -> Option<&str> {
    object.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")?["status"]
        .as_str()
}

/// What was seen of the shard and the cluster while the shard had no primary.
#[derive(Default)]
struct BeforePrimary {
    /// Looks at the shard in which Argo CD saw it Progressing.
    progressing: usize,
}

impl BeforePrimary {
    /// Fails when the shard (no primary) or the cluster read before it says Ready or looks
    /// Healthy.
    fn check(&mut self, cluster: Option<&DynamicObject>, shard: &DynamicObject) -> Result<()> {
        for (kind, object) in [("VitessCluster", cluster), ("VitessShard", Some(shard))] {
            let Some(object) = object else { continue };
            let (health, message) = argocd_health(&serde_json::to_value(object)?)?;
            ensure!(
                ready(object) != Some("True") && health != "Healthy",
                "{kind} {} is Ready {:?} / Argo CD {health} ({message}) while the shard has \
                 no primary: {}",
                object.name_any(),
                ready(object),
                object.data["status"]
            );
        }
        let (health, _) = argocd_health(&serde_json::to_value(shard)?)?;
        if health == "Progressing" {
            self.progressing += 1;
        }
        Ok(())
    }
}

#[tokio::test]
async fn the_vitess_docs_first_steps_then_a_drain_and_a_rolling_update_lose_no_row() -> Result<()> {
    let client = client().await?;
    if real_node(
        &client,
        "the_vitess_docs_first_steps_then_a_drain_and_a_rolling_update_lose_no_row",
    )
    .await?
    .is_none()
    {
        return Ok(());
    }
    install_crds().await?;
    let ns = TestNamespace::create(&client, "real-vitess").await?;
    let name = ns.name().to_string();
    let mut operator = Operator::start_with_cluster_dns(
        "real-vitess",
        &[
            "run",
            "--namespace",
            &name,
            "--metrics-address",
            "127.0.0.1:0",
        ],
    )?;
    let example = std::fs::read_to_string(workspace_dir().join("examples/initial-cluster.yaml"))?;
    let example = on_real_node(&example)?;
    let applied = Instant::now();
    kubectl_with_stdin(&["-n", &name, "apply", "-f", "-"], Some(&example)).await?;

    // The operator elects the first primary through the real vtctld. Until then neither the
    // shard nor the cluster may say Ready, nor look Healthy to Argo CD: pods that run are not
    // a database an application can write to. (The cluster is read before the shard: a Ready
    // cluster read first must find the shard it rolled up with its primary.)
    let shards = dynamic(&client, &name, "VitessShard");
    let clusters = dynamic(&client, &name, "VitessCluster");
    let mut before_primary = BeforePrimary::default();
    let primary = wait_for(
        &format!(
            "VitessShard {SHARD} to report a primary (operator log: {})",
            operator.log_path().display()
        ),
        CONVERGE,
        async |seen: &mut String| {
            operator.check_running()?;
            let cluster = clusters.get_opt(CLUSTER).await?;
            let Some(shard) = shards.get_opt(SHARD).await? else {
                *seen = "no VitessShard yet".into();
                return Ok(None);
            };
            *seen = format!("{}", shard.data["status"]);
            let primary = primary_of(&shard);
            if primary.is_none() {
                before_primary.check(cluster.as_ref(), &shard)?;
            }
            Ok(primary)
        },
    )
    .await?;
    let to_primary = applied.elapsed();
    ensure!(
        before_primary.progressing > 0,
        "the shard was never seen Progressing before its primary: the check saw nothing"
    );
    // Then both say Ready, and Argo CD sees them Healthy.
    wait_for(
        "the VitessShard and the VitessCluster to be Ready and Healthy to Argo CD",
        CONVERGE,
        async |seen: &mut String| {
            let shard = shards.get(SHARD).await?;
            let cluster = clusters.get(CLUSTER).await?;
            let health = (
                argocd_health(&serde_json::to_value(&shard)?)?,
                argocd_health(&serde_json::to_value(&cluster)?)?,
            );
            *seen = format!("shard {:?}, cluster {:?}", health.0, health.1);
            Ok((ready(&shard) == Some("True")
                && ready(&cluster) == Some("True")
                && health.0.0 == "Healthy"
                && health.1.0 == "Healthy")
                .then_some(()))
        },
    )
    .await?;
    let to_ready = applied.elapsed();
    eprintln!(
        "before the primary: {} looks at the shard, all Progressing; cluster Ready {:.0} s after \
         apply",
        before_primary.progressing,
        to_ready.as_secs_f64()
    );

    // The real vtctld answers for the keyspace's workflows: no resharding, said as such
    // (not Unknown, which is what an unanswered GetWorkflows gives).
    let keyspaces = dynamic(&client, &name, "VitessKeyspace");
    let keyspace = vitess_operator::domain::names::cluster::keyspace(CLUSTER, "commerce");
    wait_for(
        "VitessKeyspace commerce to say ReshardingActive False (NoActiveReshardingWorkflow)",
        CONVERGE,
        async |seen: &mut String| {
            let now = keyspaces.get(&keyspace).await?;
            let found = now.data["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["type"] == "ReshardingActive")
                .cloned();
            *seen = format!("{found:?}");
            Ok(found
                .filter(|c| c["status"] == "False" && c["reason"] == "NoActiveReshardingWorkflow")
                .map(drop))
        },
    )
    .await?;

    // An application: through vtgate, with the example's user.
    let vtgate = vtgate_address(&client, &name, CLUSTER).await?;
    let mut conn = connect_when_serving(&vtgate, APP_USER, "commerce", CONVERGE).await?;
    conn.query_drop("CREATE TABLE corder (id BIGINT NOT NULL PRIMARY KEY, note VARCHAR(64))")
        .await
        .context("CREATE TABLE through vtgate")?;
    for id in 1..=10u64 {
        conn.exec_drop(
            "INSERT INTO corder (id, note) VALUES (?, ?)",
            (id, format!("order {id}")),
        )
        .await
        .with_context(|| format!("INSERT {id} through vtgate"))?;
    }
    let on_primary: Vec<u64> = conn.query("SELECT id FROM corder ORDER BY id").await?;
    ensure!(
        on_primary == (1..=10).collect::<Vec<_>>(),
        "the primary has {on_primary:?}"
    );
    // And from a replica (`@replica`), once replication has brought them there.
    let on_replica = wait_for(
        "the rows to be readable from a replica through vtgate",
        Duration::from_secs(60),
        async |seen: &mut String| {
            let mut replica = connect(&vtgate, APP_USER, "commerce@replica").await?;
            let ids: Vec<u64> = replica.query("SELECT id FROM corder ORDER BY id").await?;
            *seen = format!("{ids:?}");
            Ok((ids.len() == 10).then_some(ids))
        },
    )
    .await?;
    ensure!(on_replica == on_primary, "the replica has {on_replica:?}");
    eprintln!(
        "first primary {primary} {:.0} s after apply; rows written and read through vtgate",
        to_primary.as_secs_f64()
    );

    let drain = drain_under_load(&client, &name, &vtgate, &mut conn, &primary).await?;
    let killed =
        drains_with_the_operator_killed(&client, &name, &vtgate, &mut conn, &mut operator).await?;
    let rollout = rolling_update_under_load(&client, &name, &vtgate, &mut conn, &example).await?;
    let repaired = replica_stopped_by_hand(&client, &name, &vtgate, &mut conn).await?;
    let deleted = primary_pod_deleted_under_load(&client, &name, &vtgate, &mut conn).await?;
    let mut figures = serde_json::json!({
        "apply_to_first_primary_s": to_primary.as_secs_f64(),
        "apply_to_cluster_ready_s": to_ready.as_secs_f64(),
        "drain": drain,
        "drains_operator_killed": killed,
        "rolling_update": rollout,
        "replica_stopped_by_hand": repaired,
        "primary_pod_deleted": deleted,
    });
    drop(conn);
    operator.stop().await?;
    // Deleting the namespace deletes every pod at once. When the replicas go first, the
    // semi-sync primary's mysqld cannot finish a pending commit (Vitess sets the semi-sync
    // timeout to forever) and mysqlctld waits its --shutdown-wait-time, 5 minutes, before it
    // gives up: hence more than that here.
    let deleting = Instant::now();
    ns.delete(Duration::from_secs(600)).await?;
    let deleted_in = deleting.elapsed();
    eprintln!(
        "namespace deleted in {:.0} s (operator stopped first)",
        deleted_in.as_secs_f64()
    );
    figures["namespace_delete_s"] = serde_json::json!(deleted_in.as_secs_f64());
    write_figures("real-vitess", &figures)?;
    Ok(())
}

/// The tablet pods of the namespace, by Vitess alias (`zone1-0123456789`).
async fn tablet_pods(client: &Client, ns: &str) -> Result<Vec<(String, Pod)>> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let list = pods
        .list(&ListParams::default().labels("planetscale.com/component=vttablet"))
        .await?;
    Ok(list
        .items
        .into_iter()
        .filter_map(|pod| {
            let labels = pod.labels();
            let cell = labels.get("planetscale.com/cell")?;
            let uid: u32 = labels.get("planetscale.com/tablet-uid")?.parse().ok()?;
            Some((format!("{cell}-{uid:010}"), pod))
        })
        .collect())
}

/// The shard's primary as it reports it, and the tablet pod of the primary (`primary: true`)
/// or of another tablet.
async fn primary_and_pod(
    client: &Client,
    ns: &str,
    primary: bool,
) -> Result<(String, String, Pod)> {
    let shards = dynamic(client, ns, "VitessShard");
    let alias = primary_of(&shards.get(SHARD).await?).context("no primary")?;
    let (found, pod) = tablet_pods(client, ns)
        .await?
        .into_iter()
        .find(|(a, _)| (*a == alias) == primary)
        .with_context(|| {
            if primary {
                format!("no tablet pod has the primary's alias {alias}")
            } else {
                format!("no tablet pod other than the primary {alias}")
            }
        })?;
    Ok((alias, found, pod))
}

/// Drains the primary's pod while a writer inserts through vtgate; asserts the primary moved,
/// the old pod was finished, and every acknowledged row is on every tablet. Returns figures.
async fn drain_under_load(
    client: &Client,
    ns: &str,
    vtgate: &str,
    conn: &mut mysql_async::Conn,
    primary: &str,
) -> Result<serde_json::Value> {
    let writer = writing(conn, vtgate, "drained").await?;
    let pods = tablet_pods(client, ns).await?;
    let (_, old_pod) = pods
        .iter()
        .find(|(alias, _)| alias == primary)
        .with_context(|| format!("no tablet pod has the primary's alias {primary}"))?;
    let old_pod = old_pod.name_any();
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let started = Instant::now();
    let before = writer.acknowledged();
    api.patch(
        &old_pod,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({
            "metadata": {"annotations": {STARTED: "e2e drain under load"}}
        })),
    )
    .await?;
    let (new_primary, moved) =
        drain_done(client, ns, &writer, primary, &old_pod, before, None).await?;
    let drain_time = moved.duration_since(started);
    let report = writer.stop().await?;
    let lost = none_lost(client, ns, "drained", &report.acknowledged).await?;
    eprintln!(
        "drain: primary {primary} -> {new_primary} in {:.1} s; {} rows acknowledged, {} \
         failed inserts, longest outage {:.2} s, none lost",
        drain_time.as_secs_f64(),
        report.acknowledged.len(),
        report.failures,
        report.longest_outage().as_secs_f64()
    );
    Ok(serde_json::json!({
        "from": primary,
        "to": new_primary,
        "annotate_to_moved_s": drain_time.as_secs_f64(),
        "rows_acknowledged": report.acknowledged.len(),
        "failed_inserts": report.failures,
        "longest_outage_s": report.longest_outage().as_secs_f64(),
        "lost_by_tablet": lost,
        "last_error": report.last_error,
    }))
}

/// Where the operator is killed in [`drains_with_the_operator_killed`], one run each.
const KILL_POINTS: [&str; 3] = [
    "right after started",
    "once acknowledged",
    "once the primary moved, before or as the pod is finished",
];

/// Three more drains of the primary under load (issue 18: the operator killed mid-drain on
/// the real node), the operator SIGKILLed and started again in each, at each of
/// [`KILL_POINTS`]. Before each, the drain before it is ended (its `started` removed, so the
/// old primary serves as a replica again). Each must move the primary once, finish the pod
/// and lose no acknowledged row on any tablet. Returns figures per run.
async fn drains_with_the_operator_killed(
    client: &Client,
    ns: &str,
    vtgate: &str,
    conn: &mut mysql_async::Conn,
    operator: &mut Operator,
) -> Result<serde_json::Value> {
    let shards = dynamic(client, ns, "VitessShard");
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let mut runs = Vec::new();
    for (run, point) in KILL_POINTS.iter().enumerate() {
        // The previous drain ends: the old primary serves again, as a replica.
        end_drains(client, ns, operator).await?;
        let primary = primary_of(&shards.get(SHARD).await?).context("no primary")?;
        let pods = tablet_pods(client, ns).await?;
        let pod = pods
            .iter()
            .find(|(alias, _)| *alias == primary)
            .map(|(_, p)| p.name_any())
            .with_context(|| format!("no tablet pod has the primary's alias {primary}"))?;
        let table = format!("killed{run}");
        let writer = writing(conn, vtgate, &table).await?;
        let before = writer.acknowledged();
        let started = Instant::now();
        api.patch(
            &pod,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({
                "metadata": {"annotations": {STARTED: format!("e2e drain, operator killed {point}")}}
            })),
        )
        .await?;
        match run {
            0 => {}
            1 => {
                wait_for(
                    &format!("{pod} to be acknowledged"),
                    Duration::from_secs(120),
                    async |_: &mut String| {
                        let p = api.get(&pod).await?;
                        Ok(p.annotations().contains_key(ACKNOWLEDGED).then_some(()))
                    },
                )
                .await?;
            }
            _ => {
                wait_for(
                    &format!("the primary to move off {primary}"),
                    Duration::from_secs(300),
                    async |_: &mut String| {
                        let now = primary_of(&shards.get(SHARD).await?);
                        Ok(now.filter(|p| *p != primary).map(drop))
                    },
                )
                .await?;
            }
        }
        operator.kill()?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        operator.restart()?;
        let (new_primary, moved) = drain_done(
            client,
            ns,
            &writer,
            &primary,
            &pod,
            before,
            Some(&mut *operator),
        )
        .await?;
        let drain_time = moved.duration_since(started);
        let report = writer.stop().await?;
        let lost = none_lost(client, ns, &table, &report.acknowledged).await?;
        eprintln!(
            "drain, operator killed {point}: primary {primary} -> {new_primary} in {:.1} s; {} \
             rows acknowledged, {} failed inserts, longest outage {:.2} s, none lost",
            drain_time.as_secs_f64(),
            report.acknowledged.len(),
            report.failures,
            report.longest_outage().as_secs_f64()
        );
        runs.push(serde_json::json!({
            "killed": point,
            "from": primary,
            "to": new_primary,
            "annotate_to_moved_s": drain_time.as_secs_f64(),
            "rows_acknowledged": report.acknowledged.len(),
            "failed_inserts": report.failures,
            "longest_outage_s": report.longest_outage().as_secs_f64(),
            "lost_by_tablet": lost,
        }));
    }
    // The last drain ends too: the rolling update that follows starts from a serving shard.
    end_drains(client, ns, operator).await?;
    Ok(serde_json::Value::Array(runs))
}

/// Waits until the primary moved off `primary` and `pod` (its pod, whose drain started when
/// the writer had `before` rows acknowledged) is finished, and then until the writer had
/// [`WRITES_AROUND_DRAIN`] more inserts acknowledged by the new primary than before and after
/// the drain; returns the new primary and when it was seen moved. `operator`, if given, must
/// keep running.
async fn drain_done(
    client: &Client,
    ns: &str,
    writer: &Writer,
    primary: &str,
    pod: &str,
    before: usize,
    mut operator: Option<&mut Operator>,
) -> Result<(String, Instant)> {
    let shards = dynamic(client, ns, "VitessShard");
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let new_primary = wait_for(
        &format!("the primary to move off {primary} and pod {pod} to be finished"),
        Duration::from_secs(300),
        async |seen: &mut String| {
            if let Some(operator) = operator.as_deref_mut() {
                operator.check_running()?;
            }
            let shard = shards.get(SHARD).await?;
            let now = primary_of(&shard);
            let finished = api.get(pod).await?.annotations().contains_key(FINISHED);
            *seen = format!(
                "primary {now:?}, finished {finished}, {} acknowledged; conditions {}",
                writer.acknowledged(),
                shard.data["status"]["conditions"]
            );
            Ok(now.filter(|p| p != primary && finished))
        },
    )
    .await?;
    let moved = Instant::now();
    wait_for(
        "inserts to be acknowledged by the new primary",
        Duration::from_secs(120),
        async |seen: &mut String| {
            let after = writer.acknowledged();
            *seen = format!("{after} acknowledged, {before} before the drain");
            Ok((after >= before + 2 * WRITES_AROUND_DRAIN).then_some(()))
        },
    )
    .await?;
    Ok((new_primary, moved))
}

/// Ends every drain of the namespace's tablet pods (removes `started`; the operator then
/// removes its own marks) and waits until no pod is marked and every one is Ready.
async fn end_drains(client: &Client, ns: &str, operator: &mut Operator) -> Result<()> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    for (_, pod) in tablet_pods(client, ns).await? {
        if pod.annotations().contains_key(STARTED) {
            api.patch(
                &pod.name_any(),
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"metadata": {"annotations": {STARTED: null}}})),
            )
            .await?;
        }
    }
    wait_for(
        "every drain mark to go and every tablet pod to be Ready",
        Duration::from_secs(300),
        async |seen: &mut String| {
            operator.check_running()?;
            let pods = tablet_pods(client, ns).await?;
            let marked: Vec<&String> = pods
                .iter()
                .filter(|(_, p)| {
                    [STARTED, ACKNOWLEDGED, FINISHED]
                        .iter()
                        .any(|k| p.annotations().contains_key(*k))
                })
                .map(|(alias, _)| alias)
                .collect();
            let ready = pods
                .iter()
                .filter(|(_, p)| vitess_operator_e2e::is_ready(p))
                .count();
            *seen = format!("marked {marked:?}, {ready}/{} Ready", pods.len());
            Ok((marked.is_empty() && ready == pods.len()).then_some(()))
        },
    )
    .await
}

/// Creates `table` through vtgate and starts a [`Writer`] on it; returns once it has
/// [`WRITES_AROUND_DRAIN`] inserts acknowledged.
async fn writing(conn: &mut mysql_async::Conn, vtgate: &str, table: &str) -> Result<Writer> {
    conn.query_drop(format!(
        "CREATE TABLE {table} (id BIGINT NOT NULL PRIMARY KEY)"
    ))
    .await
    .with_context(|| format!("CREATE TABLE {table} through vtgate"))?;
    let writer = Writer::start(vtgate, APP_USER, "commerce", table, 0);
    acknowledged_at_least(
        &writer,
        WRITES_AROUND_DRAIN,
        "the writer's first inserts through vtgate",
    )
    .await?;
    Ok(writer)
}

/// Waits (2 min at most) until `writer` has `count` inserts acknowledged.
async fn acknowledged_at_least(writer: &Writer, count: usize, what: &str) -> Result<()> {
    wait_for(what, Duration::from_secs(120), async |seen: &mut String| {
        *seen = format!("{} acknowledged", writer.acknowledged());
        Ok((writer.acknowledged() >= count).then_some(()))
    })
    .await
}

/// Counts `acknowledged` in `table` on every tablet's own mysqld (a replica gets
/// [`CATCH_UP`] to catch up); fails naming the tablet that lacks any. Returns the count lost
/// by tablet (all zero).
async fn none_lost(
    client: &Client,
    ns: &str,
    table: &str,
    acknowledged: &[u64],
) -> Result<serde_json::Map<String, serde_json::Value>> {
    let mut lost = serde_json::Map::new();
    for (alias, pod) in tablet_pods(client, ns).await? {
        let missing = missing_on_tablet(
            ns,
            &pod.name_any(),
            TABLET_DB,
            table,
            acknowledged,
            CATCH_UP,
        )
        .await?;
        ensure!(
            missing.is_empty(),
            "{table}: tablet {alias} (pod {}) lacks {} of {} acknowledged rows, e.g. {:?}",
            pod.name_any(),
            missing.len(),
            acknowledged.len(),
            &missing[..missing.len().min(10)]
        );
        lost.insert(alias, missing.len().into());
    }
    Ok(lost)
}

/// Re-applies the cluster with one more vttablet flag while a writer inserts; waits until
/// every tablet pod was replaced and the shard has a primary again, then counts every
/// acknowledged row on every tablet. Returns figures.
async fn rolling_update_under_load(
    client: &Client,
    ns: &str,
    vtgate: &str,
    conn: &mut mysql_async::Conn,
    applied: &str,
) -> Result<serde_json::Value> {
    let shards = dynamic(client, ns, "VitessShard");
    let primary_before = primary_of(&shards.get(SHARD).await?).context("no primary")?;
    let before: std::collections::BTreeMap<String, String> = tablet_pods(client, ns)
        .await?
        .into_iter()
        .map(|(alias, pod)| (alias, pod.uid().unwrap_or_default()))
        .collect();
    for (alias, pod) in tablet_pods(client, ns).await? {
        let running = max_connections(ns, &pod.name_any()).await?;
        ensure!(
            running != MAX_CONNECTIONS,
            "tablet {alias}'s mysqld already has max_connections {running} before the \
             configOverrides that set it were applied: the check below proves nothing"
        );
    }
    let changed = with_pool_edit(applied, |pool| {
        pool["vttablet"]["extraFlags"]["queryserver-config-pool-size"] = "24".into();
        pool["mysqld"]["configOverrides"] =
            format!("[mysqld]\nmax_connections = {MAX_CONNECTIONS}\n").into();
    })?;
    let writer = writing(conn, vtgate, "rolled").await?;
    let started = Instant::now();
    kubectl_with_stdin(&["-n", ns, "apply", "-f", "-"], Some(&changed)).await?;
    let primary_after = wait_for(
        "every tablet pod to be replaced and the shard to have a serving primary",
        Duration::from_secs(900),
        async |seen: &mut String| {
            let pods = tablet_pods(client, ns).await?;
            let replaced: Vec<&str> = pods
                .iter()
                .filter(|(alias, pod)| before.get(alias) != pod.uid().as_ref())
                .map(|(alias, _)| alias.as_str())
                .collect();
            let ready = pods
                .iter()
                .filter(|(_, p)| vitess_operator_e2e::is_ready(p))
                .count();
            let shard = shards.get(SHARD).await?;
            let primary = primary_of(&shard);
            *seen = format!(
                "replaced {replaced:?} of {}, {ready} Ready, primary {primary:?}, {} \
                 acknowledged",
                before.len(),
                writer.acknowledged()
            );
            let done = replaced.len() == before.len() && ready == pods.len();
            Ok(primary.filter(|_| done))
        },
    )
    .await?;
    let rollout_time = started.elapsed();
    let after_rollout = writer.acknowledged();
    wait_for(
        "inserts to be acknowledged after the rollout",
        Duration::from_secs(120),
        async |seen: &mut String| {
            *seen = format!("{} acknowledged", writer.acknowledged());
            Ok((writer.acknowledged() >= after_rollout + WRITES_AROUND_DRAIN).then_some(()))
        },
    )
    .await?;
    let report = writer.stop().await?;
    ensure!(
        primary_after != primary_before,
        "the primary {primary_before} was replaced without a reparent away from it"
    );
    let lost = none_lost(client, ns, "rolled", &report.acknowledged).await?;
    for (alias, pod) in tablet_pods(client, ns).await? {
        let running = max_connections(ns, &pod.name_any()).await?;
        ensure!(
            running == MAX_CONNECTIONS,
            "tablet {alias}'s mysqld runs with max_connections {running} after the rollout, \
             not the {MAX_CONNECTIONS} its pool's mysqld.configOverrides set"
        );
    }
    eprintln!(
        "rolling update: {} pods replaced in {:.0} s, primary {primary_before} -> \
         {primary_after}; {} rows acknowledged, {} failed inserts, longest outage {:.2} s, \
         none lost",
        before.len(),
        rollout_time.as_secs_f64(),
        report.acknowledged.len(),
        report.failures,
        report.longest_outage().as_secs_f64()
    );
    Ok(serde_json::json!({
        "pods_replaced": before.len(),
        "apply_to_all_replaced_s": rollout_time.as_secs_f64(),
        "from": primary_before,
        "to": primary_after,
        "rows_acknowledged": report.acknowledged.len(),
        "failed_inserts": report.failures,
        "longest_outage_s": report.longest_outage().as_secs_f64(),
        "lost_by_tablet": lost,
        "max_connections_after": MAX_CONNECTIONS,
        "last_error": report.last_error,
    }))
}

/// The `max_connections` the mysqld of tablet pod `pod` runs with, as it answers it.
async fn max_connections(ns: &str, pod: &str) -> Result<u32> {
    let answer = dba_query(ns, pod, "SELECT @@global.max_connections").await?;
    answer
        .trim()
        .parse()
        .with_context(|| format!("pod {pod}'s mysqld answered {answer:?} for max_connections"))
}

/// Whether replication runs on tablet pod `pod`'s mysqld: its receiver (IO) and applier (SQL)
/// threads, as performance_schema says.
async fn replication_running(ns: &str, pod: &str) -> Result<(String, String)> {
    let answer = dba_query(
        ns,
        pod,
        "SELECT c.SERVICE_STATE, a.SERVICE_STATE FROM performance_schema.replication_connection_status c \
         JOIN performance_schema.replication_applier_status a USING (CHANNEL_NAME)",
    )
    .await?;
    let mut states = answer.split_whitespace().map(str::to_string);
    match (states.next(), states.next()) {
        (Some(io), Some(sql)) => Ok((io, sql)),
        _ => Ok((answer.trim().to_string(), String::new())),
    }
}

/// A replica's replication stopped by hand (`STOP REPLICA` on its mysqld) while a writer
/// inserts through vtgate: the shard's vtorc must see it (`ReplicationStopped`) and start it
/// again (its `fixReplica`), with no one else asked; then every acknowledged row is on every
/// tablet, the repaired replica's too. Returns figures, with vtorc's own words.
async fn replica_stopped_by_hand(
    client: &Client,
    ns: &str,
    vtgate: &str,
    conn: &mut mysql_async::Conn,
) -> Result<serde_json::Value> {
    let shards = dynamic(client, ns, "VitessShard");
    let (primary, alias, pod) = primary_and_pod(client, ns, false).await?;
    let pod = pod.name_any();
    let running = replication_running(ns, &pod).await?;
    ensure!(
        running == ("ON".into(), "ON".into()),
        "replica {alias} does not replicate before the test: {running:?}"
    );
    let writer = writing(conn, vtgate, "repaired").await?;
    let stopped_at = Instant::now();
    dba_query(ns, &pod, "STOP REPLICA").await?;
    let after_stop = replication_running(ns, &pod).await?;
    ensure!(
        after_stop.0 == "OFF" && after_stop.1 == "OFF",
        "STOP REPLICA left replication {after_stop:?} on {pod}"
    );
    let vtorc_logs = || async {
        vitess_operator_e2e::kubectl(&[
            "-n",
            ns,
            "logs",
            "-l",
            "planetscale.com/component=vtorc",
            "--tail=-1",
        ])
        .await
    };
    // vtorc names the tablet by its alias message (`cell:"zone1" uid:…`).
    let fixing = "Analysis: ReplicationStopped, will fix replica";
    let uid: u32 = alias
        .rsplit('-')
        .next()
        .and_then(|u| u.parse().ok())
        .with_context(|| format!("alias {alias}"))?;
    let uid = format!("uid:{uid}");
    let said = wait_for(
        &format!("vtorc to start replication on {alias} again"),
        Duration::from_secs(180),
        async |seen: &mut String| {
            let now = replication_running(ns, &pod).await?;
            let logs = vtorc_logs().await?;
            let line = logs
                .lines()
                .find(|l| l.contains(fixing) && l.contains(&uid))
                .map(str::to_string);
            *seen = format!("replication {now:?}; vtorc said {line:?}");
            Ok((now == ("ON".into(), "ON".into()))
                .then_some(line)
                .flatten())
        },
    )
    .await?;
    let repaired_in = stopped_at.elapsed();
    // Writes go on through the repair; then each acknowledged row must reach every tablet.
    let more = writer.acknowledged() + WRITES_AROUND_DRAIN;
    acknowledged_at_least(&writer, more, "more inserts after the repair").await?;
    let report = writer.stop().await?;
    let lost = none_lost(client, ns, "repaired", &report.acknowledged).await?;
    let primary_after = primary_of(&shards.get(SHARD).await?).context("no primary after")?;
    ensure!(
        primary_after == primary,
        "the primary moved from {primary} to {primary_after} for a stopped replica"
    );
    eprintln!(
        "replica {alias}: STOP REPLICA by hand, replication running again after {:.1} s; vtorc \
         said: {said}; {} rows acknowledged, none lost",
        repaired_in.as_secs_f64(),
        report.acknowledged.len()
    );
    Ok(serde_json::json!({
        "replica": alias,
        "stop_to_running_s": repaired_in.as_secs_f64(),
        "vtorc_said": said,
        "rows_acknowledged": report.acknowledged.len(),
        "failed_inserts": report.failures,
        "lost_by_tablet": lost,
    }))
}

/// Deletes the primary's pod while a writer inserts; waits for the pod to be made again and
/// Ready and for writes to be acknowledged again; counts every acknowledged row on every
/// tablet. Returns figures, with the primary before and after (vtorc decides which).
async fn primary_pod_deleted_under_load(
    client: &Client,
    ns: &str,
    vtgate: &str,
    conn: &mut mysql_async::Conn,
) -> Result<serde_json::Value> {
    let shards = dynamic(client, ns, "VitessShard");
    let (primary, _, pod) = primary_and_pod(client, ns, true).await?;
    let (pod_name, old_uid) = (pod.name_any(), pod.uid());
    let writer = writing(conn, vtgate, "survived").await?;
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let deleted = Instant::now();
    let before = writer.acknowledged();
    api.delete(&pod_name, &Default::default()).await?;
    let back = wait_for(
        &format!("pod {pod_name} to be made again and writes to be acknowledged again"),
        Duration::from_secs(600),
        async |seen: &mut String| {
            let pod = api.get_opt(&pod_name).await?;
            let again = pod
                .as_ref()
                .is_some_and(|p| p.uid() != old_uid && vitess_operator_e2e::is_ready(p));
            let now = primary_of(&shards.get(SHARD).await?);
            *seen = format!(
                "pod made again and Ready: {again}; primary {now:?}; {} acknowledged, {before} \
                 before the delete",
                writer.acknowledged()
            );
            Ok((again && writer.acknowledged() > before + WRITES_AROUND_DRAIN).then_some(now))
        },
    )
    .await?;
    let recovery = deleted.elapsed();
    let report = writer.stop().await?;
    let back = back.context("writes were acknowledged but the shard reports no primary")?;
    let lost = none_lost(client, ns, "survived", &report.acknowledged).await?;
    eprintln!(
        "primary pod deleted: primary {primary} -> {back}, writes again after {:.0} s; {} \
         rows acknowledged, {} failed inserts, longest outage {:.1} s, none lost",
        recovery.as_secs_f64(),
        report.acknowledged.len(),
        report.failures,
        report.longest_outage().as_secs_f64()
    );
    Ok(serde_json::json!({
        "from": primary,
        "to": back,
        "delete_to_writes_again_s": recovery.as_secs_f64(),
        "rows_acknowledged": report.acknowledged.len(),
        "failed_inserts": report.failures,
        "longest_outage_s": report.longest_outage().as_secs_f64(),
        "lost_by_tablet": lost,
        "last_error": report.last_error,
    }))
}

/// The applied documents (JSON, one per `---`) with `edit` made to every tablet pool of the
/// VitessCluster, as a user's edit of the cluster file would.
fn with_pool_edit(applied: &str, edit: impl Fn(&mut serde_json::Value)) -> Result<String> {
    let mut out = Vec::new();
    for doc in applied.split("\n---\n") {
        let mut doc: serde_json::Value = serde_json::from_str(doc)?;
        if doc["kind"] == "VitessCluster" {
            for keyspace in doc["spec"]["keyspaces"]
                .as_array_mut()
                .into_iter()
                .flatten()
            {
                for partitioning in keyspace["partitionings"]
                    .as_array_mut()
                    .into_iter()
                    .flatten()
                {
                    let pools = partitioning
                        .pointer_mut("/equal/shardTemplate/tabletPools")
                        .and_then(serde_json::Value::as_array_mut);
                    for pool in pools.into_iter().flatten() {
                        edit(pool);
                    }
                }
            }
        }
        out.push(serde_json::to_string(&doc)?);
    }
    Ok(out.join("\n---\n"))
}
