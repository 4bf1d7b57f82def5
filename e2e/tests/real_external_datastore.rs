//! An external datastore on the real node (issue 21, item 5): the example cluster with its
//! tablet pool turned into an `externalmaster` pool pointed at a MySQL outside the cluster —
//! the mysqld `e2e/cluster up` runs as a process of this machine (as a user's managed MySQL
//! would be). The database and its rows exist before the cluster does.
//!
//! What a user would check: no mysqld container and no claim is made; the operator tells
//! Vitess which tablet fronts the primary (TabletExternallyReparented, never a reparent that
//! would touch replication); the rows written outside are read through vtgate, rows written
//! through vtgate land in that MySQL; a drain of the primary's pod moves the primary to the
//! other tablet the same way, sets the old one SPARE, and writes go on.
//!
//! Figures go to `target/e2e-figures/real-external-datastore.json`. Without the node this test
//! skips, except under `CI=true`, where it fails (and so does a missing external MySQL).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Service};
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::ListParams;
use mysql_async::prelude::Queryable;
use serde_json::json;
use vitess_operator_e2e::sql::{
    connect_when_serving, connect_with_password, external_mysql, vtgate_address,
};
use vitess_operator_e2e::{
    annotate, dynamic, kubectl, kubectl_with_stdin, on_real_node, primary_of, start_on_real_node,
    unique_suffix, wait_for, wait_for_primary, workspace_dir, write_figures,
};

const CONVERGE: Duration = Duration::from_secs(600);
const DRAIN: Duration = Duration::from_secs(300);
const CLUSTER: &str = "example";
const SHARD: &str = "example-commerce-x-x-0f5afee6";
const APP_USER: &str = "app";
const STARTED: &str = "drain.planetscale.com/started";
const FINISHED: &str = "drain.planetscale.com/finished";
/// Rows in the database before the cluster exists, and per batch written through vtgate.
const ROWS: u64 = 10;

/// The example on the real node, its pool an `externalmaster` pool of two tablets in front of
/// `database` on the external MySQL, as `user` (credentials in Secret `external-creds`).
fn cluster_yaml(host: &str, port: u16, database: &str, user: &str) -> Result<String> {
    let example = std::fs::read_to_string(workspace_dir().join("examples/initial-cluster.yaml"))?;
    let mut out = Vec::new();
    for doc in on_real_node(&example)?.split("\n---\n") {
        let mut doc: serde_json::Value = serde_json::from_str(doc)?;
        if doc["kind"] == "VitessCluster" {
            let keyspace = &mut doc["spec"]["keyspaces"][0];
            keyspace["durabilityPolicy"] = "none".into();
            // vtorc repairs replication, which here is the datastore's own business.
            if let Some(k) = keyspace.as_object_mut() {
                k.remove("vitessOrchestrator");
            }
            let pool = keyspace
                .pointer_mut("/partitionings/0/equal/shardTemplate/tabletPools/0")
                .context("the example has no tablet pool")?;
            let pool = pool.as_object_mut().context("a pool is an object")?;
            pool.insert("type".into(), "externalmaster".into());
            pool.remove("mysqld");
            pool.remove("dataVolumeClaimTemplate");
            pool.insert(
                "externalDatastore".into(),
                json!({
                    "user": user,
                    "host": host,
                    "port": port,
                    "database": database,
                    "credentialsSecret": {"name": "external-creds", "key": "creds.json"},
                }),
            );
        }
        out.push(serde_json::to_string(&doc)?);
    }
    Ok(out.join("\n---\n"))
}

/// Inserts batch `batch` (1-based) of [`ROWS`] rows through `conn` (vtgate).
async fn insert_batch(conn: &mut mysql_async::Conn, batch: u64, tag: &str) -> Result<()> {
    for id in (batch - 1) * ROWS + 1..=batch * ROWS {
        conn.exec_drop(
            "INSERT INTO customer (id, email) VALUES (?, ?)",
            (id, format!("{tag}-{id}@example.com")),
        )
        .await?;
    }
    Ok(())
}

/// Rows of `customer` as the external MySQL itself has them.
async fn rows_in_mysql(address: &str, admin: (&str, &str), database: &str) -> Result<u64> {
    let mut conn = connect_with_password(address, admin.0, admin.1, Some(database)).await?;
    let count: Option<u64> = conn.query_first("SELECT COUNT(*) FROM customer").await?;
    Ok(count.unwrap_or_default())
}

#[tokio::test]
async fn an_external_mysql_is_fronted_told_its_primary_and_drained_without_a_reparent() -> Result<()>
{
    let test = "an_external_mysql_is_fronted_told_its_primary_and_drained_without_a_reparent";
    let Some((client, ns, mut operator)) = start_on_real_node(test, "real-external").await? else {
        return Ok(());
    };
    let name = ns.name().to_string();
    let (address, admin_user, admin_password) = external_mysql();
    let admin = (admin_user.as_str(), admin_password.as_str());
    let (host, port) = address
        .rsplit_once(':')
        .context("E2E_EXTERNAL_MYSQL is host:port")?;
    let port: u16 = port.parse()?;

    // The datastore as a user has it: a database with rows, and an account for Vitess.
    let suffix = unique_suffix();
    let database = format!("shop_{suffix}");
    let user = format!("vitess_{suffix}");
    let password = format!("pw-{suffix}");
    let mut conn = connect_with_password(&address, admin.0, admin.1, None)
        .await
        .with_context(|| {
            format!("the external MySQL at {address} (started by `e2e/cluster up`)")
        })?;
    for statement in [
        format!("CREATE DATABASE {database}"),
        format!(
            "CREATE TABLE {database}.customer (id BIGINT PRIMARY KEY, email VARCHAR(64) NOT NULL)"
        ),
        format!("CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'"),
        format!("GRANT ALL PRIVILEGES ON *.* TO '{user}'@'%'"),
    ] {
        conn.query_drop(&statement)
            .await
            .with_context(|| statement.clone())?;
    }
    for id in 1..=ROWS {
        conn.exec_drop(
            format!("INSERT INTO {database}.customer VALUES (?, ?)"),
            (id, format!("before-{id}@example.com")),
        )
        .await?;
    }
    drop(conn);

    let secret = serde_json::to_string(&json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "external-creds"},
        "stringData": {"creds.json": serde_json::to_string(&json!({ &user: [&password] }))?},
    }))?;
    kubectl_with_stdin(&["-n", &name, "apply", "-f", "-"], Some(&secret)).await?;
    let applied = Instant::now();
    kubectl_with_stdin(
        &["-n", &name, "apply", "-f", "-"],
        Some(&cluster_yaml(host, port, &database, &user)?),
    )
    .await?;

    let shards = dynamic(&client, &name, "VitessShard");
    let first = wait_for_primary(&shards, SHARD, &mut operator, CONVERGE).await?;
    let to_primary = applied.elapsed();

    // No MySQL and no disk of ours: the tablets only front the external one.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &name);
    let tablets = pods
        .list(&ListParams::default().labels("planetscale.com/component=vttablet"))
        .await?;
    ensure!(
        tablets.items.len() == 2,
        "{} tablet pods",
        tablets.items.len()
    );
    for pod in &tablets.items {
        let containers: Vec<&str> = pod
            .spec
            .as_ref()
            .map(|s| s.containers.iter().map(|c| c.name.as_str()).collect())
            .unwrap_or_default();
        ensure!(containers == ["vttablet"], "containers {containers:?}");
    }
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &name);
    let claims = claims.list(&ListParams::default()).await?;
    ensure!(
        claims.items.iter().all(|c| !c
            .metadata
            .name
            .as_deref()
            .unwrap_or_default()
            .contains("vttablet")),
        "a tablet claim was made for an external datastore"
    );

    // The rows written outside are read through vtgate; rows written through it land there.
    let vtgate = vtgate_address(&client, &name, CLUSTER).await?;
    let mut app = connect_when_serving(&vtgate, APP_USER, "commerce", CONVERGE).await?;
    let through: Option<u64> = app.query_first("SELECT COUNT(*) FROM customer").await?;
    ensure!(
        through == Some(ROWS),
        "vtgate counts {through:?} rows of the {ROWS} in the external MySQL"
    );
    insert_batch(&mut app, 2, "vtgate").await?;
    drop(app);
    let after_writes = rows_in_mysql(&address, admin, &database).await?;
    ensure!(
        after_writes == 2 * ROWS,
        "the external MySQL has {after_writes} rows"
    );

    // A drain of the primary's pod: the other tablet is told to Vitess as the primary.
    // Tablet pods are named `<cluster>-vttablet-<cell>-<uid>-<hash>`, aliases `<cell>-<uid>`.
    let primary_pod = tablets
        .items
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .find(|n| n.contains(&format!("-{first}-")))
        .with_context(|| format!("no pod of primary {first}"))?;
    let drain_started = Instant::now();
    annotate(&pods, &primary_pod, STARTED, Some("e2e: maintenance")).await?;
    let second = wait_for(
        &format!("the primary to move off {first} and {primary_pod} to be drained"),
        DRAIN,
        async |seen: &mut String| {
            operator.check_running()?;
            let shard = shards.get(SHARD).await?;
            let primary = primary_of(&shard);
            let pod = pods.get_opt(&primary_pod).await?;
            let finished = pod.as_ref().is_some_and(|p| {
                p.metadata
                    .annotations
                    .as_ref()
                    .is_some_and(|a| a.contains_key(FINISHED))
            });
            *seen = format!("primary {primary:?}, drain finished {finished}");
            Ok(primary.filter(|p| *p != first && finished))
        },
    )
    .await?;
    let to_moved = drain_started.elapsed();

    // The tablet that was the primary is set aside as SPARE, as vtctld records it (asked from
    // that tablet's own container, through the cluster's vtctld Service).
    let services: Api<Service> = Api::namespaced(client.clone(), &name);
    let vtctld = services
        .list(&ListParams::default().labels("planetscale.com/component=vtctld"))
        .await?
        .items
        .into_iter()
        .find_map(|s| s.metadata.name)
        .context("no vtctld Service")?;
    wait_for(
        &format!("vtctld to record {first} as SPARE"),
        Duration::from_secs(60),
        async |seen: &mut String| {
            let out = kubectl(&[
                "-n",
                &name,
                "exec",
                &primary_pod,
                "-c",
                "vttablet",
                "--",
                "vtctldclient",
                &format!("--server={vtctld}:15999"),
                "GetTablet",
                &first,
            ])
            .await?;
            let tablet: serde_json::Value = serde_json::from_str(&out)?;
            *seen = format!("type {}", tablet["type"]);
            Ok((tablet["type"] == "SPARE" || tablet["type"] == 4).then_some(()))
        },
    )
    .await?;

    let mut app = connect_when_serving(&vtgate, APP_USER, "commerce", CONVERGE).await?;
    insert_batch(&mut app, 3, "after-drain").await?;
    drop(app);
    let after_drain = rows_in_mysql(&address, admin, &database).await?;
    ensure!(
        after_drain == 3 * ROWS,
        "the external MySQL has {after_drain} rows after the drain"
    );
    // Both moves were told to Vitess, as the Events say; no reparent was asked for.
    let events: Api<Event> = Api::namespaced(client.clone(), &name);
    let notes: Vec<(String, String)> = events
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
        .collect();
    let told = |reason: &str| {
        notes
            .iter()
            .any(|(r, n)| r == reason && n.starts_with("TabletExternallyReparented"))
    };
    ensure!(
        told("PrimaryElected") && told("PlannedReparent"),
        "Events should say TabletExternallyReparented for the election and the drain: {notes:?}"
    );
    ensure!(
        !notes
            .iter()
            .any(|(_, n)| n.contains("PlannedReparentShard")),
        "a PlannedReparentShard was asked for an external datastore: {notes:?}"
    );
    eprintln!(
        "external datastore: first primary {first} {:.0} s after apply; drain moved it to \
         {second} in {:.0} s; {after_drain} rows in the external MySQL",
        to_primary.as_secs_f64(),
        to_moved.as_secs_f64()
    );
    write_figures(
        "real-external-datastore",
        &json!({
            "apply_to_first_primary_s": to_primary.as_secs_f64(),
            "drain_to_new_primary_s": to_moved.as_secs_f64(),
            "rows": after_drain,
        }),
    )?;

    operator.stop().await?;
    ns.delete_now(Duration::from_secs(600)).await?;
    let mut conn = connect_with_password(&address, admin.0, admin.1, None).await?;
    conn.query_drop(format!("DROP DATABASE {database}")).await?;
    conn.query_drop(format!("DROP USER '{user}'@'%'")).await?;
    Ok(())
}
