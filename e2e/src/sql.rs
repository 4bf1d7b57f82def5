//! MySQL through vtgate, as an application uses it: connections, and a writer that inserts
//! without pause and records every insert that was acknowledged, so that a test can count, after
//! a drain or a rolling update, that none of them was lost.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::Service;
use kube::api::ListParams;
use kube::{Api, Client};
use mysql_async::prelude::Queryable;

/// How long one connection attempt or one statement may take.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);

/// The `host:3306` of the cluster-wide vtgate Service of `cluster` (its cluster IP, which this
/// machine reaches through kube-proxy).
pub async fn vtgate_address(client: &Client, namespace: &str, cluster: &str) -> Result<String> {
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    let selector = format!(
        "planetscale.com/component=vtgate,planetscale.com/cluster={cluster},!planetscale.com/cell"
    );
    let list = services
        .list(&ListParams::default().labels(&selector))
        .await
        .with_context(|| format!("listing the vtgate Services of {cluster}"))?;
    let service = list
        .items
        .first()
        .with_context(|| format!("no cluster-wide vtgate Service ({selector}) in {namespace}"))?;
    let ip = service
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.clone())
        .context("the vtgate Service has no cluster IP")?;
    Ok(format!("{ip}:3306"))
}

/// A connection to `address` (`host:port`) as `user` with an empty password, using `database`
/// (a keyspace, or `keyspace@replica` for a replica).
pub async fn connect(address: &str, user: &str, database: &str) -> Result<mysql_async::Conn> {
    connect_with_password(address, user, "", Some(database)).await
}

/// Where `e2e/cluster up` runs the MySQL outside the cluster (`E2E_EXTERNAL_MYSQL` overrides),
/// and its admin account (`E2E_EXTERNAL_MYSQL_ADMIN`, `user:password`).
pub const DEFAULT_EXTERNAL_MYSQL: &str = "10.244.9.1:26306";
const DEFAULT_EXTERNAL_MYSQL_ADMIN: &str = "e2e-admin:e2e-admin-password";

/// The external MySQL's `host:port` and its admin's user and password.
pub fn external_mysql() -> (String, String, String) {
    let var = |name: &str, default: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| default.to_string())
    };
    let admin = var("E2E_EXTERNAL_MYSQL_ADMIN", DEFAULT_EXTERNAL_MYSQL_ADMIN);
    let (user, password) = admin.split_once(':').unwrap_or((admin.as_str(), ""));
    (
        var("E2E_EXTERNAL_MYSQL", DEFAULT_EXTERNAL_MYSQL),
        user.to_string(),
        password.to_string(),
    )
}

/// A connection to `address` (`host:port`) as `user` with `password`, using `database` if any.
pub async fn connect_with_password(
    address: &str,
    user: &str,
    password: &str,
    database: Option<&str>,
) -> Result<mysql_async::Conn> {
    let (host, port) = address
        .rsplit_once(':')
        .with_context(|| format!("{address} is not host:port"))?;
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(host)
        .tcp_port(port.parse().with_context(|| format!("port of {address}"))?)
        .user(Some(user))
        .pass(Some(password))
        .db_name(database)
        .prefer_socket(false);
    tokio::time::timeout(STATEMENT_TIMEOUT, mysql_async::Conn::new(opts))
        .await
        .with_context(|| format!("connecting to {address} took over {STATEMENT_TIMEOUT:?}"))?
        .with_context(|| {
            let database = database.unwrap_or("none");
            format!("connecting to {address} as {user} (database {database})")
        })
}

/// A connection through vtgate at `address` once it answers `SELECT 1` (it does once the
/// shard it routes to has a serving primary), trying for up to `timeout`.
pub async fn connect_when_serving(
    address: &str,
    user: &str,
    database: &str,
    timeout: Duration,
) -> Result<mysql_async::Conn> {
    crate::wait_for(
        &format!("vtgate {address} to accept {user} and reach a primary of {database}"),
        timeout,
        async |seen: &mut String| {
            let mut conn = connect(address, user, database).await?;
            conn.query_drop("SELECT 1").await?;
            *seen = "connected".into();
            Ok(Some(conn))
        },
    )
    .await
}

/// What a [`Writer`] did.
#[derive(Debug, Clone, Default)]
pub struct WriterReport {
    /// The ids of every insert vtgate acknowledged, in order.
    pub acknowledged: Vec<u64>,
    /// Inserts (or connections) that failed. A failed insert may still have committed.
    pub failures: u64,
    /// Each span from the first failure after a success to the next success.
    pub outages: Vec<Duration>,
    /// The last error seen.
    pub last_error: Option<String>,
}

impl WriterReport {
    /// The longest time no insert was acknowledged.
    pub fn longest_outage(&self) -> Duration {
        self.outages.iter().copied().max().unwrap_or_default()
    }
}

/// Inserts rows `(id)` into `table` one after the other through vtgate until stopped,
/// reconnecting after any error, and remembers which inserts were acknowledged.
pub struct Writer {
    stop: Arc<AtomicBool>,
    acknowledged: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<WriterReport>,
}

impl Writer {
    /// Starts writing to `table` of `database` at `address`; ids start after `first_id`.
    pub fn start(address: &str, user: &str, database: &str, table: &str, first_id: u64) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let acknowledged = Arc::new(AtomicUsize::new(0));
        let (address, user, database) =
            (address.to_string(), user.to_string(), database.to_string());
        let insert = format!("INSERT INTO {table} (id) VALUES (?)");
        let task = tokio::spawn({
            let stop = stop.clone();
            let count = acknowledged.clone();
            async move {
                let mut report = WriterReport::default();
                let mut conn: Option<mysql_async::Conn> = None;
                let mut id = first_id;
                let mut down_since: Option<Instant> = None;
                while !stop.load(Ordering::Relaxed) {
                    let result = async {
                        if conn.is_none() {
                            conn = Some(connect(&address, &user, &database).await?);
                        }
                        let c = conn.as_mut().context("no connection")?;
                        tokio::time::timeout(STATEMENT_TIMEOUT, c.exec_drop(&insert, (id + 1,)))
                            .await
                            .context("the insert took too long")?
                            .context("insert")?;
                        anyhow::Ok(())
                    }
                    .await;
                    match result {
                        Ok(()) => {
                            id += 1;
                            report.acknowledged.push(id);
                            count.fetch_add(1, Ordering::Relaxed);
                            if let Some(since) = down_since.take() {
                                report.outages.push(since.elapsed());
                            }
                        }
                        Err(e) => {
                            // The insert may have committed without its answer: never reuse
                            // its id, so an unacknowledged row cannot hide a lost one.
                            id += 1;
                            report.failures += 1;
                            report.last_error = Some(format!("{e:#}"));
                            down_since.get_or_insert_with(Instant::now);
                            conn = None;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
                if let Some(since) = down_since.take() {
                    report.outages.push(since.elapsed());
                }
                report
            }
        });
        Self {
            stop,
            acknowledged,
            task,
        }
    }

    /// How many inserts have been acknowledged so far.
    pub fn acknowledged(&self) -> usize {
        self.acknowledged.load(Ordering::Relaxed)
    }

    /// Stops writing and says what was written.
    pub async fn stop(self) -> Result<WriterReport> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.context("the writer task failed")
    }
}

/// `query`'s rows (tab-separated, no header) as the tablet pod's mysqld answers them to
/// vt_dba on its socket (`kubectl exec` into the mysqld container).
pub async fn dba_query(namespace: &str, pod: &str, query: &str) -> Result<String> {
    crate::kubectl(&[
        "-n",
        namespace,
        "exec",
        pod,
        "-c",
        "mysqld",
        "--",
        "mysql",
        "--socket=/vt/socket/mysql.sock",
        "--user=vt_dba",
        "-N",
        "-e",
        query,
    ])
    .await
}

/// The ids in `database.table` on the mysqld of tablet pod `pod`, read on its own socket as
/// vt_dba (not through vtgate: every copy is counted, the primary's and each replica's).
pub async fn ids_on_tablet(
    namespace: &str,
    pod: &str,
    database: &str,
    table: &str,
) -> Result<BTreeSet<u64>> {
    let out = dba_query(
        namespace,
        pod,
        &format!("SELECT id FROM {database}.{table}"),
    )
    .await?;
    out.lines()
        .map(|l| {
            l.trim()
                .parse()
                .with_context(|| format!("{pod}: not an id: {l:?}"))
        })
        .collect()
}

/// Waits until every id of `expected` is in `table` on tablet pod `pod` (a replica catches up
/// with its primary), and returns the ids missing when `timeout` ran out (empty: none lost).
pub async fn missing_on_tablet(
    namespace: &str,
    pod: &str,
    database: &str,
    table: &str,
    expected: &[u64],
    timeout: Duration,
) -> Result<Vec<u64>> {
    let deadline = Instant::now() + timeout;
    loop {
        let missing: Vec<u64> = match ids_on_tablet(namespace, pod, database, table).await {
            Ok(present) => expected
                .iter()
                .copied()
                .filter(|id| !present.contains(id))
                .collect(),
            Err(e) if Instant::now() < deadline => {
                eprintln!("counting rows on {pod} again: {e:#}");
                expected.to_vec()
            }
            Err(e) => bail!("counting rows on {pod}: {e:#}"),
        };
        if missing.is_empty() || Instant::now() >= deadline {
            return Ok(missing);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
