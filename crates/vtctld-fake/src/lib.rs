//! A fake vtctld for tests: a real tonic server on loopback over an in-memory topology, whose
//! answers follow from the calls made (DESIGN §9). It stands in for what needs MySQL-backed
//! tablets, such as reparents. A dev-only crate: the operator's binary never links it.
//!
//! Its errors copy a real vtctld (v0.24) where we know them: topology misses are code UNKNOWN
//! with `node doesn't exist: <path>`, duplicates UNKNOWN with `node already exists: <path>`,
//! reparent refusals FAILED_PRECONDITION.
//!
//! Why one file: every RPC answers from the same in-memory topology, and its rules read best
//! next to one another.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status};

use vtctld_client::client::{NO_NODE, NODE_EXISTS, time_to_proto};
use vtctld_client::proto::vtctldata::*;
use vtctld_client::proto::{logutil, mysqlctl, topodata};
use vtctld_client::{Alias, BackupStatus, CellInfo, TabletType};

use stubs::vtctld_server::{Vtctld as VtctldService, VtctldServer};

mod stubs;

/// The durability policies a stock Vitess (v0.24) registers
/// (`go/vt/vtctl/reparentutil/policy/durability.go`).
const POLICIES: &[&str] = &[
    "none",
    "semi_sync",
    "cross_cell",
    "semi_sync_with_rdonly_ack",
    "cross_cell_with_rdonly_ack",
    "test",
];

/// Errors of starting or stopping the fake.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("fake vtctld on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("fake vtctld: TLS: {0}")]
    Tls(#[from] tonic::transport::Error),
}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        std::io::Error::other(e)
    }
}

/// How the fake answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// By the rules of the topology.
    Serve,
    /// Every RPC fails with UNAVAILABLE.
    Fail,
    /// Every RPC waits until the mode changes or the fake stops.
    Hang,
    /// Reparents (`PlannedReparentShard`) wait until the mode changes or the fake stops, and
    /// are then served by the new mode; everything else is served: a reparent in flight, to
    /// kill its caller meanwhile (a caller that goes away cancels it, as it would a real
    /// vtctld's).
    HangReparents,
    /// Calls of this one method (`BackupShard`, `DeleteKeyspace`, ...) wait like
    /// [`Mode::HangReparents`]' reparents; everything else is served.
    HangMethod(&'static str),
}

/// One RPC received: its method and a short text of its request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub method: String,
    pub request: String,
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.request)
    }
}

/// Server certificate and key (PEM), and the CA that client certificates must chain to (mutual
/// TLS) if given.
#[derive(Clone, Debug)]
pub struct ServerTls {
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
    pub client_ca: Option<Vec<u8>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct ShardRecord {
    primary: Option<Alias>,
    is_primary_serving: bool,
    /// Every change of primary, oldest first: (the primary before, the primary after).
    reparents: Vec<(Option<Alias>, Alias)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct TabletRecord {
    keyspace: String,
    shard: String,
    tablet_type: TabletType,
}

/// The fake's topology: what survives [`FakeVtctld::stop`] and [`FakeVtctld::start_with`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Topology {
    cells: BTreeMap<String, CellInfo>,
    aliases: BTreeMap<String, Vec<String>>,
    /// Keyspace name -> durability policy.
    keyspaces: BTreeMap<String, String>,
    shards: BTreeMap<(String, String), ShardRecord>,
    tablets: BTreeMap<Alias, TabletRecord>,
    /// (keyspace, shard) -> backup name -> record; names sort by time, as Vitess lists them.
    backups: BTreeMap<(String, String), BTreeMap<String, BackupRecord>>,
    /// (keyspace, workflow) -> a resharding a test started ([`FakeVtctld::start_reshard`]).
    workflows: BTreeMap<(String, String), Reshard>,
}

/// A resharding workflow of the fake: its streams run on the target shards that have a
/// primary (where VReplication runs them), all in the workflow's phase.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Reshard {
    sources: Vec<String>,
    targets: Vec<String>,
    /// `Copying` until [`FakeVtctld::copy_done`], then `Running`; `Error` with a message after
    /// [`FakeVtctld::fail_workflow`].
    state: String,
    message: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct BackupRecord {
    engine: String,
    status: BackupStatus,
}

/// A backup's name as Vitess makes it: `YYYY-MM-DD.HHMMSS.<tablet alias>` (UTC).
pub fn backup_name(time: SystemTime, tablet: &Alias) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let days = i64::try_from(secs / 86_400).unwrap_or_default();
    let rest = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}.{:02}{:02}{:02}.{tablet}",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// The start time and tablet of a backup named as [`backup_name`] makes them, as vtctld
/// parses them.
fn parse_backup_name(name: &str) -> (Option<SystemTime>, Option<Alias>) {
    let mut parts = name.splitn(3, '.');
    let (Some(date), Some(clock), Some(alias)) = (parts.next(), parts.next(), parts.next()) else {
        return (None, None);
    };
    let num = |s: &str| s.parse::<i64>().ok();
    let mut ymd = date.split('-').map(num);
    let time = match (ymd.next(), ymd.next(), ymd.next(), clock.len() == 6) {
        (Some(Some(y)), Some(Some(m)), Some(Some(d)), true) => {
            let hms = num(clock).unwrap_or_default();
            let secs = days_from_civil(y, m, d) * 86_400
                + hms / 10_000 * 3600
                + hms / 100 % 100 * 60
                + hms % 100;
            u64::try_from(secs)
                .ok()
                .and_then(|s| UNIX_EPOCH.checked_add(Duration::from_secs(s)))
        }
        _ => None,
    };
    (time, alias.parse().ok())
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

impl Topology {
    fn shard_tablets<'a>(
        &'a self,
        keyspace: &'a str,
        shard: &'a str,
    ) -> impl Iterator<Item = (&'a Alias, &'a TabletRecord)> + 'a {
        self.tablets
            .iter()
            .filter(move |(_, t)| t.keyspace == keyspace && t.shard == shard)
    }

    fn tablet_proto(alias: &Alias, t: &TabletRecord) -> topodata::Tablet {
        topodata::Tablet {
            alias: Some(alias.to_proto()),
            hostname: format!("{alias}.fake"),
            keyspace: t.keyspace.clone(),
            shard: t.shard.clone(),
            r#type: t.tablet_type.to_proto(),
            ..Default::default()
        }
    }
}

struct State {
    topology: Topology,
    calls: Vec<Call>,
    /// Policies this vtctld does not register (see [`FakeVtctld::forget_policy`]).
    forgotten: BTreeSet<String>,
}

struct Shared {
    state: Mutex<State>,
    /// The mode, and whether the fake is stopping (which ends a hang).
    mode: watch::Sender<(Mode, bool)>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running fake vtctld.
pub struct FakeVtctld {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    server: JoinHandle<()>,
}

impl FakeVtctld {
    /// Starts an empty fake on `addr` (port 0 picks a free port; see [`FakeVtctld::local_addr`]).
    pub async fn start(addr: SocketAddr) -> std::io::Result<FakeVtctld> {
        Ok(Self::serve(addr, Topology::default(), None).await?)
    }

    /// Starts a fake with a topology from an earlier [`FakeVtctld::stop`].
    pub async fn start_with(addr: SocketAddr, topology: Topology) -> std::io::Result<FakeVtctld> {
        Ok(Self::serve(addr, topology, None).await?)
    }

    /// Starts an empty fake that speaks TLS only.
    pub async fn start_tls(addr: SocketAddr, tls: ServerTls) -> std::io::Result<FakeVtctld> {
        Ok(Self::serve(addr, Topology::default(), Some(tls)).await?)
    }

    async fn serve(
        addr: SocketAddr,
        topology: Topology,
        tls: Option<ServerTls>,
    ) -> Result<FakeVtctld, Error> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| Error::Bind { addr, source })?;
        let (mode, _) = watch::channel((Mode::Serve, false));
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                topology,
                calls: Vec::new(),
                forgotten: BTreeSet::new(),
            }),
            mode,
        });
        let mut builder = Server::builder();
        if let Some(tls) = tls {
            let mut config = ServerTlsConfig::new().identity(Identity::from_pem(tls.cert, tls.key));
            if let Some(ca) = tls.client_ca {
                config = config.client_ca_root(Certificate::from_pem(ca));
            }
            builder = builder.tls_config(config)?;
        }
        let router = builder.add_service(VtctldServer::new(Service {
            shared: shared.clone(),
        }));
        let (shutdown, stopped) = oneshot::channel::<()>();
        let incoming = TcpIncoming::from(listener);
        let server = tokio::spawn(async move {
            let signal = async {
                let _ = stopped.await;
            };
            if let Err(e) = router.serve_with_incoming_shutdown(incoming, signal).await {
                tracing::warn!(error = %e, "fake vtctld stopped with an error");
            }
        });
        Ok(FakeVtctld {
            shared,
            addr,
            shutdown: Some(shutdown),
            server,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving (connections are refused from now on) and hands back the topology.
    pub async fn stop(mut self) -> Topology {
        self.shared
            .mode
            .send_modify(|(_, stopping)| *stopping = true);
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        // Graceful shutdown waits for open calls; give up on stragglers after a while.
        if tokio::time::timeout(Duration::from_secs(5), &mut self.server)
            .await
            .is_err()
        {
            self.server.abort();
        }
        std::mem::take(&mut self.shared.lock().topology)
    }

    /// What a vttablet does when it starts: creates its keyspace (durability `none`) and shard if
    /// missing, and registers the tablet. A PRIMARY also becomes the shard's serving primary;
    /// a tablet the shard record already names its primary (a primary's pod started again)
    /// comes back as PRIMARY whatever type it asked for, as vttablet does when it finds
    /// itself in the shard record. Idempotent.
    pub fn register_tablet(
        &self,
        alias: Alias,
        keyspace: &str,
        shard: &str,
        tablet_type: TabletType,
    ) {
        let mut state = self.shared.lock();
        let topo = &mut state.topology;
        topo.keyspaces
            .entry(keyspace.to_string())
            .or_insert_with(|| "none".to_string());
        let record = topo
            .shards
            .entry((keyspace.to_string(), shard.to_string()))
            .or_insert(ShardRecord {
                primary: None,
                is_primary_serving: false,
                reparents: Vec::new(),
            });
        let tablet_type = if record.primary.as_ref() == Some(&alias) {
            TabletType::Primary
        } else {
            tablet_type
        };
        if tablet_type == TabletType::Primary {
            record.primary = Some(alias.clone());
            record.is_primary_serving = true;
        }
        topo.tablets.insert(
            alias,
            TabletRecord {
                keyspace: keyspace.to_string(),
                shard: shard.to_string(),
                tablet_type,
            },
        );
    }

    /// What a resharding's SwitchTraffic does to a source shard: its primary stops serving,
    /// so the serving graph no longer references it.
    pub fn switch_traffic_away(&self, keyspace: &str, shard: &str) {
        let mut state = self.shared.lock();
        if let Some(record) = state
            .topology
            .shards
            .get_mut(&(keyspace.to_string(), shard.to_string()))
        {
            record.is_primary_serving = false;
        }
    }

    /// Starts a resharding of `keyspace` from `sources` to `targets` (what `vtctldclient
    /// Reshard create` does): its streams copy until [`FakeVtctld::copy_done`].
    pub fn start_reshard(&self, keyspace: &str, name: &str, sources: &[&str], targets: &[&str]) {
        let owned = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
        self.shared.lock().topology.workflows.insert(
            (keyspace.to_string(), name.to_string()),
            Reshard {
                sources: owned(sources),
                targets: owned(targets),
                state: "Copying".into(),
                message: String::new(),
            },
        );
    }

    /// The copy phase of a resharding is over: its streams replicate (`Running`).
    pub fn copy_done(&self, keyspace: &str, name: &str) {
        self.set_workflow(keyspace, name, "Running", "");
    }

    /// A resharding's streams stop with an error, saying `message`.
    pub fn fail_workflow(&self, keyspace: &str, name: &str, message: &str) {
        self.set_workflow(keyspace, name, "Error", message);
    }

    /// A resharding is completed (`Reshard complete`): it is no longer listed.
    pub fn complete_workflow(&self, keyspace: &str, name: &str) {
        let key = (keyspace.to_string(), name.to_string());
        self.shared.lock().topology.workflows.remove(&key);
    }

    fn set_workflow(&self, keyspace: &str, name: &str, state: &str, message: &str) {
        let key = (keyspace.to_string(), name.to_string());
        if let Some(w) = self.shared.lock().topology.workflows.get_mut(&key) {
            w.state = state.into();
            w.message = message.into();
        }
    }

    /// The shard's primary as the topology has it.
    pub fn primary(&self, keyspace: &str, shard: &str) -> Option<Alias> {
        self.shared
            .lock()
            .topology
            .shards
            .get(&(keyspace.to_string(), shard.to_string()))
            .and_then(|s| s.primary.clone())
    }

    /// Every change of the shard's primary Vitess made, oldest first: (before, after). A
    /// reparent that was refused, or that found the primary already where it was asked to
    /// be, changed nothing and is not here.
    pub fn reparents(&self, keyspace: &str, shard: &str) -> Vec<(Option<Alias>, Alias)> {
        self.shared
            .lock()
            .topology
            .shards
            .get(&(keyspace.to_string(), shard.to_string()))
            .map(|s| s.reparents.clone())
            .unwrap_or_default()
    }

    /// A tablet's type, `None` if it is not registered.
    pub fn tablet_type(&self, alias: &Alias) -> Option<TabletType> {
        self.shared
            .lock()
            .topology
            .tablets
            .get(alias)
            .map(|t| t.tablet_type)
    }

    /// A copy of the topology as it is now.
    pub fn topology(&self) -> Topology {
        self.shared.lock().topology.clone()
    }

    /// Makes this vtctld refuse `policy` as one it has not registered, as a Vitess built
    /// without it would (the CRD lets only policies stock Vitess knows through).
    pub fn forget_policy(&self, policy: &str) {
        self.shared.lock().forgotten.insert(policy.to_string());
    }

    /// Durability policy of a keyspace, `None` if there is no such keyspace.
    pub fn durability_policy(&self, keyspace: &str) -> Option<String> {
        self.shared.lock().topology.keyspaces.get(keyspace).cloned()
    }

    /// Puts a backup of a shard into the fake's storage (what a vtbackup or a tablet would
    /// upload). `name` is Vitess' `YYYY-MM-DD.HHMMSS.<alias>`; see [`backup_name`].
    pub fn add_backup(&self, keyspace: &str, shard: &str, name: &str, status: BackupStatus) {
        self.shared
            .lock()
            .topology
            .backups
            .entry((keyspace.to_string(), shard.to_string()))
            .or_default()
            .insert(
                name.to_string(),
                BackupRecord {
                    engine: "builtin".to_string(),
                    status,
                },
            );
    }

    /// Removes a backup from the fake's storage; true if it was there.
    pub fn remove_backup(&self, keyspace: &str, shard: &str, name: &str) -> bool {
        self.shared
            .lock()
            .topology
            .backups
            .get_mut(&(keyspace.to_string(), shard.to_string()))
            .and_then(|b| b.remove(name))
            .is_some()
    }

    /// Names of a shard's backups, oldest first.
    pub fn backups(&self, keyspace: &str, shard: &str) -> Vec<String> {
        self.shared
            .lock()
            .topology
            .backups
            .get(&(keyspace.to_string(), shard.to_string()))
            .map(|b| b.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Every RPC received so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.lock().calls.clone()
    }

    /// How many RPCs of `method` (e.g. `PlannedReparentShard`) were received.
    pub fn count(&self, method: &str) -> usize {
        self.shared
            .lock()
            .calls
            .iter()
            .filter(|c| c.method == method)
            .count()
    }

    /// Changes how the fake answers, from the next RPC on (a hang in progress ends too).
    pub fn set_mode(&self, mode: Mode) {
        self.shared.mode.send_modify(|(m, _)| *m = mode);
    }
}

impl Drop for FakeVtctld {
    fn drop(&mut self) {
        self.shared
            .mode
            .send_modify(|(_, stopping)| *stopping = true);
        self.server.abort();
    }
}

#[derive(Clone)]
struct Service {
    shared: Arc<Shared>,
}

type Reply<T> = Result<Response<T>, Status>;

fn no_node(path: &str) -> Status {
    Status::unknown(format!("{NO_NODE}/vitess/global/{path}"))
}

/// vtctld's answer for a tablet record that is not there (in its cell's topology).
fn no_tablet(alias: &Alias) -> Status {
    Status::unknown(format!(
        "{NO_NODE}/vitess/{}/tablets/{alias}/Tablet",
        alias.cell
    ))
}

fn node_exists(path: &str) -> Status {
    Status::unknown(format!("{NODE_EXISTS}/vitess/global/{path}"))
}

fn alias_text(alias: Option<&topodata::TabletAlias>) -> String {
    Alias::from_proto(alias).map_or_else(|| "<nil>".to_string(), |a| a.to_string())
}

impl Service {
    /// Records the call and applies the mode: the rules run only when serving.
    async fn enter(&self, method: &str, request: String) -> Result<(), Status> {
        self.shared.lock().calls.push(Call {
            method: method.to_string(),
            request,
        });
        let mut mode = self.shared.mode.subscribe();
        loop {
            let (current, stopping) = *mode.borrow_and_update();
            if stopping {
                return Err(Status::unavailable("fake vtctld is stopping"));
            }
            match current {
                Mode::Serve => return Ok(()),
                Mode::HangReparents if !method.ends_with("ReparentShard") => return Ok(()),
                Mode::HangMethod(held) if method != held => return Ok(()),
                Mode::Fail => return Err(Status::unavailable("fake vtctld set to fail")),
                Mode::Hang | Mode::HangReparents | Mode::HangMethod(_) => {
                    if mode.changed().await.is_err() {
                        return Err(Status::unavailable("fake vtctld is gone"));
                    }
                }
            }
        }
    }

    /// Refuses `policy` if this vtctld does not register it.
    fn check_policy(&self, policy: &str) -> Result<(), Status> {
        if self.shared.lock().forgotten.contains(policy) {
            return Err(unknown_policy(policy));
        }
        check_policy(policy)
    }

    fn with<T>(&self, f: impl FnOnce(&mut Topology) -> Result<T, Status>) -> Reply<T> {
        f(&mut self.shared.lock().topology).map(Response::new)
    }
}

type BackupStream =
    Pin<Box<dyn futures::Stream<Item = Result<BackupResponse, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl VtctldService for Service {
    type BackupShardStream = BackupStream;

    async fn get_backups(&self, req: Request<GetBackupsRequest>) -> Reply<GetBackupsResponse> {
        let req = req.into_inner();
        self.enter(
            "GetBackups",
            format!("{}/{} limit={}", req.keyspace, req.shard, req.limit),
        )
        .await?;
        self.with(|topo| {
            let all = topo
                .backups
                .get(&(req.keyspace.clone(), req.shard.clone()))
                .cloned()
                .unwrap_or_default();
            let skip = match req.limit {
                0 => 0,
                limit => all
                    .len()
                    .saturating_sub(usize::try_from(limit).unwrap_or(usize::MAX)),
            };
            let backups = all
                .into_iter()
                .skip(skip)
                .map(|(name, record)| {
                    let (time, alias) = parse_backup_name(&name);
                    mysqlctl::BackupInfo {
                        directory: format!("{}/{}", req.keyspace, req.shard),
                        keyspace: req.keyspace.clone(),
                        shard: req.shard.clone(),
                        tablet_alias: alias.as_ref().map(Alias::to_proto),
                        time: time.map(time_to_proto),
                        engine: record.engine,
                        status: record.status.to_proto(),
                        name,
                    }
                })
                .collect();
            Ok(GetBackupsResponse { backups })
        })
    }

    /// Backs up from the first REPLICA (or RDONLY) tablet of the shard, or its primary when
    /// allowed and there is no other; the backup appears complete at once.
    async fn backup_shard(
        &self,
        req: Request<BackupShardRequest>,
    ) -> Reply<Self::BackupShardStream> {
        let req = req.into_inner();
        self.enter(
            "BackupShard",
            format!(
                "{}/{} allow_primary={}",
                req.keyspace, req.shard, req.allow_primary
            ),
        )
        .await?;
        // A real tablet asked for a backup with no concurrency stops its mysqld and then
        // waits for a copy slot forever; a stream that never ends is no use to a test.
        if req.concurrency < 1 {
            return Err(Status::invalid_argument(format!(
                "BackupShard concurrency {} (a real vtctld's tablet would never finish)",
                req.concurrency
            )));
        }
        let (keyspace, shard) = (req.keyspace.clone(), req.shard.clone());
        let alias = self
            .with(|topo| {
                if !topo.shards.contains_key(&(keyspace.clone(), shard.clone())) {
                    return Err(no_node(&format!(
                        "keyspaces/{keyspace}/shards/{shard}/Shard"
                    )));
                }
                let pick = |types: &[TabletType]| {
                    topo.shard_tablets(&keyspace, &shard)
                        .find(|(_, t)| types.contains(&t.tablet_type))
                        .map(|(a, _)| a.clone())
                };
                let alias = pick(&[TabletType::Replica, TabletType::Rdonly])
                    .or_else(|| {
                        req.allow_primary
                            .then(|| pick(&[TabletType::Primary]))
                            .flatten()
                    })
                    .ok_or_else(|| {
                        Status::failed_precondition(format!(
                            "no tablet available for backup in shard {keyspace}/{shard}"
                        ))
                    })?;
                let name = backup_name(SystemTime::now(), &alias);
                topo.backups
                    .entry((keyspace.clone(), shard.clone()))
                    .or_default()
                    .insert(
                        name,
                        BackupRecord {
                            engine: "builtin".to_string(),
                            status: BackupStatus::Complete,
                        },
                    );
                Ok(alias)
            })?
            .into_inner();
        let event = |value: &str| BackupResponse {
            tablet_alias: Some(alias.to_proto()),
            keyspace: req.keyspace.clone(),
            shard: req.shard.clone(),
            event: Some(logutil::Event {
                time: Some(time_to_proto(SystemTime::now())),
                value: value.to_string(),
                ..Default::default()
            }),
        };
        let messages = vec![Ok(event("Starting backup")), Ok(event("Backup completed"))];
        Ok(Response::new(
            Box::pin(futures::stream::iter(messages)) as BackupStream
        ))
    }

    async fn add_cell_info(&self, req: Request<AddCellInfoRequest>) -> Reply<AddCellInfoResponse> {
        let req = req.into_inner();
        self.enter("AddCellInfo", req.name.clone()).await?;
        self.with(|topo| {
            if topo.cells.contains_key(&req.name) {
                return Err(node_exists(&format!("cells/{}/CellInfo", req.name)));
            }
            let info = req.cell_info.unwrap_or_default();
            topo.cells.insert(
                req.name,
                CellInfo {
                    server_address: info.server_address,
                    root: info.root,
                },
            );
            Ok(AddCellInfoResponse {})
        })
    }

    async fn update_cell_info(
        &self,
        req: Request<UpdateCellInfoRequest>,
    ) -> Reply<UpdateCellInfoResponse> {
        let req = req.into_inner();
        self.enter("UpdateCellInfo", req.name.clone()).await?;
        self.with(|topo| {
            let info = req.cell_info.unwrap_or_default();
            topo.cells.insert(
                req.name.clone(),
                CellInfo {
                    server_address: info.server_address.clone(),
                    root: info.root.clone(),
                },
            );
            Ok(UpdateCellInfoResponse {
                name: req.name,
                cell_info: Some(info),
            })
        })
    }

    async fn get_cell_info_names(
        &self,
        _req: Request<GetCellInfoNamesRequest>,
    ) -> Reply<GetCellInfoNamesResponse> {
        self.enter("GetCellInfoNames", String::new()).await?;
        self.with(|topo| {
            Ok(GetCellInfoNamesResponse {
                names: topo.cells.keys().cloned().collect(),
            })
        })
    }

    async fn get_cell_info(&self, req: Request<GetCellInfoRequest>) -> Reply<GetCellInfoResponse> {
        let req = req.into_inner();
        self.enter("GetCellInfo", req.cell.clone()).await?;
        self.with(|topo| {
            let info = topo
                .cells
                .get(&req.cell)
                .ok_or_else(|| no_node(&format!("cells/{}/CellInfo", req.cell)))?;
            Ok(GetCellInfoResponse {
                cell_info: Some(topodata::CellInfo {
                    server_address: info.server_address.clone(),
                    root: info.root.clone(),
                }),
            })
        })
    }

    async fn delete_cell_info(
        &self,
        req: Request<DeleteCellInfoRequest>,
    ) -> Reply<DeleteCellInfoResponse> {
        let req = req.into_inner();
        self.enter("DeleteCellInfo", req.name.clone()).await?;
        self.with(|topo| {
            if !topo.cells.contains_key(&req.name) {
                return Err(no_node(&format!("cells/{}/CellInfo", req.name)));
            }
            let tablets = topo.tablets.keys().filter(|a| a.cell == req.name).count();
            if tablets > 0 && !req.force {
                return Err(Status::failed_precondition(format!(
                    "cell {} still has {tablets} tablets",
                    req.name
                )));
            }
            topo.cells.remove(&req.name);
            Ok(DeleteCellInfoResponse {})
        })
    }

    async fn get_cells_aliases(
        &self,
        _req: Request<GetCellsAliasesRequest>,
    ) -> Reply<GetCellsAliasesResponse> {
        self.enter("GetCellsAliases", String::new()).await?;
        self.with(|topo| {
            Ok(GetCellsAliasesResponse {
                aliases: topo
                    .aliases
                    .iter()
                    .map(|(name, cells)| {
                        (
                            name.clone(),
                            topodata::CellsAlias {
                                cells: cells.clone(),
                            },
                        )
                    })
                    .collect(),
            })
        })
    }

    async fn update_cells_alias(
        &self,
        req: Request<UpdateCellsAliasRequest>,
    ) -> Reply<UpdateCellsAliasResponse> {
        let req = req.into_inner();
        let cells = req.cells_alias.unwrap_or_default().cells;
        self.enter(
            "UpdateCellsAlias",
            format!("{} {}", req.name, cells.join(",")),
        )
        .await?;
        self.with(|topo| {
            // Vitess' rule: an alias may not share a cell with another alias.
            let overlap = topo.aliases.iter().find(|(name, theirs)| {
                **name != req.name && theirs.iter().any(|c| cells.contains(c))
            });
            if let Some((other, _)) = overlap {
                return Err(Status::unknown(format!(
                    "cells alias {} is not valid: cell set overlaps with existing alias {other}",
                    req.name
                )));
            }
            topo.aliases.insert(req.name.clone(), cells.clone());
            Ok(UpdateCellsAliasResponse {
                name: req.name,
                cells_alias: Some(topodata::CellsAlias { cells }),
            })
        })
    }

    async fn delete_cells_alias(
        &self,
        req: Request<DeleteCellsAliasRequest>,
    ) -> Reply<DeleteCellsAliasResponse> {
        let req = req.into_inner();
        self.enter("DeleteCellsAlias", req.name.clone()).await?;
        self.with(|topo| match topo.aliases.remove(&req.name) {
            Some(_) => Ok(DeleteCellsAliasResponse {}),
            None => Err(no_node(&format!("cells_aliases/{}/CellsAlias", req.name))),
        })
    }

    async fn create_keyspace(
        &self,
        req: Request<CreateKeyspaceRequest>,
    ) -> Reply<CreateKeyspaceResponse> {
        let req = req.into_inner();
        self.enter(
            "CreateKeyspace",
            if req.sidecar_db_name.is_empty() {
                format!("{} durability={}", req.name, req.durability_policy)
            } else {
                format!(
                    "{} durability={} sidecar={}",
                    req.name, req.durability_policy, req.sidecar_db_name
                )
            },
        )
        .await?;
        self.check_policy(&req.durability_policy)?;
        self.with(|topo| {
            if topo.keyspaces.contains_key(&req.name) && !req.force {
                return Err(node_exists(&format!("keyspaces/{}/Keyspace", req.name)));
            }
            topo.keyspaces
                .insert(req.name.clone(), req.durability_policy.clone());
            Ok(CreateKeyspaceResponse {
                keyspace: Some(keyspace_proto(&req.name, &req.durability_policy)),
            })
        })
    }

    async fn get_keyspace(&self, req: Request<GetKeyspaceRequest>) -> Reply<GetKeyspaceResponse> {
        let req = req.into_inner();
        self.enter("GetKeyspace", req.keyspace.clone()).await?;
        self.with(|topo| {
            let policy = topo
                .keyspaces
                .get(&req.keyspace)
                .ok_or_else(|| no_node(&format!("keyspaces/{}/Keyspace", req.keyspace)))?;
            Ok(GetKeyspaceResponse {
                keyspace: Some(keyspace_proto(&req.keyspace, policy)),
            })
        })
    }

    async fn get_keyspaces(
        &self,
        _req: Request<GetKeyspacesRequest>,
    ) -> Reply<GetKeyspacesResponse> {
        self.enter("GetKeyspaces", String::new()).await?;
        self.with(|topo| {
            Ok(GetKeyspacesResponse {
                keyspaces: topo
                    .keyspaces
                    .iter()
                    .map(|(name, policy)| keyspace_proto(name, policy))
                    .collect(),
            })
        })
    }

    async fn set_keyspace_durability_policy(
        &self,
        req: Request<SetKeyspaceDurabilityPolicyRequest>,
    ) -> Reply<SetKeyspaceDurabilityPolicyResponse> {
        let req = req.into_inner();
        self.enter(
            "SetKeyspaceDurabilityPolicy",
            format!("{} durability={}", req.keyspace, req.durability_policy),
        )
        .await?;
        self.check_policy(&req.durability_policy)?;
        self.with(|topo| {
            let policy = topo
                .keyspaces
                .get_mut(&req.keyspace)
                .ok_or_else(|| no_node(&format!("keyspaces/{}/Keyspace", req.keyspace)))?;
            policy.clone_from(&req.durability_policy);
            Ok(SetKeyspaceDurabilityPolicyResponse {
                keyspace: keyspace_proto(&req.keyspace, &req.durability_policy).keyspace,
            })
        })
    }

    async fn delete_keyspace(
        &self,
        req: Request<DeleteKeyspaceRequest>,
    ) -> Reply<DeleteKeyspaceResponse> {
        let req = req.into_inner();
        self.enter(
            "DeleteKeyspace",
            format!("{} recursive={}", req.keyspace, req.recursive),
        )
        .await?;
        self.with(|topo| {
            let ks = req.keyspace;
            if !topo.keyspaces.contains_key(&ks) {
                return Err(Status::unknown(format!(
                    "failed to lock {ks}; if you really want to delete this keyspace, re-run \
                     with Force=true: {NO_NODE}/vitess/global/keyspaces/{ks}/"
                )));
            }
            let shards = topo.shards.keys().filter(|(k, _)| *k == ks).count();
            if shards > 0 && !req.recursive {
                return Err(Status::failed_precondition(format!(
                    "keyspace {ks} still has {shards} shards; use Recursive=true or remove them \
                     manually"
                )));
            }
            topo.shards.retain(|(k, _), _| *k != ks);
            topo.tablets.retain(|_, t| t.keyspace != ks);
            topo.keyspaces.remove(&ks);
            Ok(DeleteKeyspaceResponse {})
        })
    }

    async fn get_shard(&self, req: Request<GetShardRequest>) -> Reply<GetShardResponse> {
        let req = req.into_inner();
        self.enter("GetShard", format!("{}/{}", req.keyspace, req.shard_name))
            .await?;
        self.with(|topo| {
            let key = (req.keyspace, req.shard_name);
            let shard = topo
                .shards
                .get(&key)
                .ok_or_else(|| no_node(&format!("keyspaces/{}/shards/{}/Shard", key.0, key.1)))?;
            Ok(GetShardResponse {
                shard: Some(Shard {
                    keyspace: key.0.clone(),
                    name: key.1.clone(),
                    shard: Some(topodata::Shard {
                        primary_alias: shard.primary.as_ref().map(Alias::to_proto),
                        is_primary_serving: shard.is_primary_serving,
                        ..Default::default()
                    }),
                }),
            })
        })
    }

    /// Each cell's serving graph, by the fake's rule: in a cell where the keyspace has a
    /// tablet, every shard whose primary serves (`is_primary_serving`) serves each tablet
    /// type; a cell where it has none has no SrvKeyspace (an empty one is answered, as a real
    /// vtctld answers a nil one). [`FakeVtctld::switch_traffic_away`] takes a shard out.
    async fn get_srv_keyspaces(
        &self,
        req: Request<GetSrvKeyspacesRequest>,
    ) -> Reply<GetSrvKeyspacesResponse> {
        let req = req.into_inner();
        self.enter("GetSrvKeyspaces", req.keyspace.clone()).await?;
        self.with(|topo| {
            let cells: Vec<String> = if req.cells.is_empty() {
                topo.cells.keys().cloned().collect()
            } else {
                req.cells.clone()
            };
            let serving: Vec<String> = topo
                .shards
                .iter()
                .filter(|((ks, _), record)| *ks == req.keyspace && record.is_primary_serving)
                .map(|((_, shard), _)| shard.clone())
                .collect();
            let srv_keyspaces = cells
                .into_iter()
                .map(|cell| {
                    let here = topo
                        .tablets
                        .iter()
                        .any(|(alias, t)| alias.cell == cell && t.keyspace == req.keyspace);
                    let partitions = if here {
                        [TabletType::Primary, TabletType::Replica, TabletType::Rdonly]
                            .into_iter()
                            .map(|served| topodata::srv_keyspace::KeyspacePartition {
                                served_type: served.to_proto(),
                                shard_references: serving
                                    .iter()
                                    .map(|name| topodata::ShardReference {
                                        name: name.clone(),
                                        key_range: None,
                                    })
                                    .collect(),
                            })
                            .collect()
                    } else {
                        Vec::new()
                    };
                    (cell, topodata::SrvKeyspace { partitions })
                })
                .collect();
            Ok(GetSrvKeyspacesResponse { srv_keyspaces })
        })
    }

    async fn get_tablets(&self, req: Request<GetTabletsRequest>) -> Reply<GetTabletsResponse> {
        let req = req.into_inner();
        self.enter(
            "GetTablets",
            format!(
                "{}/{} cells={}",
                req.keyspace,
                req.shard,
                req.cells.join(",")
            ),
        )
        .await?;
        self.with(|topo| {
            if !req.tablet_aliases.is_empty() {
                let tablets = req
                    .tablet_aliases
                    .iter()
                    .filter_map(|a| Alias::from_proto(Some(a)))
                    .filter_map(|a| {
                        let t = topo.tablets.get(&a)?;
                        Some(Topology::tablet_proto(&a, t))
                    })
                    .collect();
                return Ok(GetTabletsResponse { tablets });
            }
            if !req.keyspace.is_empty()
                && !req.shard.is_empty()
                && !topo
                    .shards
                    .contains_key(&(req.keyspace.clone(), req.shard.clone()))
            {
                return Err(Status::unknown(format!(
                    "GetTabletMapForShard({}, {}) failed: {NO_NODE}/vitess/global/keyspaces/{}/shards/{}/Shard",
                    req.keyspace, req.shard, req.keyspace, req.shard
                )));
            }
            let tablets = topo
                .tablets
                .iter()
                .filter(|(_, t)| req.keyspace.is_empty() || t.keyspace == req.keyspace)
                .filter(|(_, t)| {
                    req.keyspace.is_empty() || req.shard.is_empty() || t.shard == req.shard
                })
                .filter(|(a, _)| req.cells.is_empty() || req.cells.contains(&a.cell))
                .filter(|(_, t)| req.tablet_type == 0 || t.tablet_type.to_proto() == req.tablet_type)
                .map(|(a, t)| Topology::tablet_proto(a, t))
                .collect();
            Ok(GetTabletsResponse { tablets })
        })
    }

    async fn delete_shards(
        &self,
        req: Request<DeleteShardsRequest>,
    ) -> Reply<DeleteShardsResponse> {
        let req = req.into_inner();
        let names: Vec<String> = req
            .shards
            .iter()
            .map(|s| format!("{}/{}", s.keyspace, s.name))
            .collect();
        self.enter(
            "DeleteShards",
            format!(
                "{} recursive={} even_if_serving={}",
                names.join(","),
                req.recursive,
                req.even_if_serving
            ),
        )
        .await?;
        self.with(|topo| {
            for s in &req.shards {
                let key = (s.keyspace.clone(), s.name.clone());
                let Some(shard) = topo.shards.get(&key) else {
                    return Err(Status::unknown(format!(
                        "failed to lock {}/{}; if you really want to delete this shard, re-run \
                         with Force=true: {NO_NODE}/vitess/global/keyspaces/{}/shards/{}/",
                        key.0, key.1, key.0, key.1
                    )));
                };
                if shard.is_primary_serving && !req.even_if_serving {
                    return Err(Status::failed_precondition(format!(
                        "shard {}/{} is still serving; cannot delete it; use EvenIfServing = \
                         true to delete it anyway",
                        key.0, key.1
                    )));
                }
                let tablets = topo.shard_tablets(&key.0, &key.1).count();
                if tablets > 0 && !req.recursive {
                    return Err(Status::failed_precondition(format!(
                        "shard {}/{} still has {tablets} tablets; use Recursive=true or remove \
                         them manually",
                        key.0, key.1
                    )));
                }
                topo.tablets
                    .retain(|_, t| !(t.keyspace == key.0 && t.shard == key.1));
                topo.shards.remove(&key);
            }
            Ok(DeleteShardsResponse {})
        })
    }

    async fn delete_tablets(
        &self,
        req: Request<DeleteTabletsRequest>,
    ) -> Reply<DeleteTabletsResponse> {
        let req = req.into_inner();
        let aliases: Vec<Alias> = req
            .tablet_aliases
            .iter()
            .filter_map(|a| Alias::from_proto(Some(a)))
            .collect();
        let text: Vec<String> = aliases.iter().map(Alias::to_string).collect();
        self.enter(
            "DeleteTablets",
            format!("{} allow_primary={}", text.join(","), req.allow_primary),
        )
        .await?;
        self.with(|topo| {
            for alias in &aliases {
                let Some(tablet) = topo.tablets.get(alias) else {
                    return Err(no_tablet(alias));
                };
                let key = (tablet.keyspace.clone(), tablet.shard.clone());
                let is_primary = tablet.tablet_type == TabletType::Primary
                    || topo
                        .shards
                        .get(&key)
                        .is_some_and(|s| s.primary.as_ref() == Some(alias));
                if is_primary && !req.allow_primary {
                    return Err(Status::failed_precondition(format!(
                        "cannot delete tablet {alias} as it is a primary, use allow_primary flag"
                    )));
                }
                if is_primary
                    && let Some(shard) = topo.shards.get_mut(&key)
                    && shard.primary.as_ref() == Some(alias)
                {
                    shard.primary = None;
                    shard.is_primary_serving = false;
                }
                topo.tablets.remove(alias);
            }
            Ok(DeleteTabletsResponse {})
        })
    }

    /// The keyspace's reshardings, by the fake's rule: a stream on each target shard with a
    /// primary, in the workflow's phase.
    async fn get_workflows(
        &self,
        req: Request<GetWorkflowsRequest>,
    ) -> Reply<GetWorkflowsResponse> {
        let req = req.into_inner();
        self.enter("GetWorkflows", req.keyspace.clone()).await?;
        self.with(|topo| {
            let workflows = topo
                .workflows
                .iter()
                .filter(|((keyspace, _), _)| *keyspace == req.keyspace)
                .map(|((keyspace, name), w)| {
                    let location = |shards: &Vec<String>| workflow::ReplicationLocation {
                        keyspace: keyspace.clone(),
                        shards: shards.clone(),
                    };
                    let shard_streams = w
                        .targets
                        .iter()
                        .filter(|t| {
                            topo.shards
                                .get(&(keyspace.clone(), (*t).clone()))
                                .is_some_and(|r| r.primary.is_some())
                        })
                        .enumerate()
                        .map(|(i, target)| {
                            let stream = workflow::Stream {
                                id: i64::try_from(i).unwrap_or_default() + 1,
                                shard: target.clone(),
                                state: w.state.clone(),
                                message: w.message.clone(),
                                rows_copied: 0,
                            };
                            (
                                target.clone(),
                                workflow::ShardStream {
                                    streams: vec![stream],
                                },
                            )
                        })
                        .collect();
                    Workflow {
                        name: name.clone(),
                        source: Some(location(&w.sources)),
                        target: Some(location(&w.targets)),
                        max_v_replication_lag: 0,
                        shard_streams,
                        workflow_type: "Reshard".into(),
                    }
                })
                .collect();
            Ok(GetWorkflowsResponse { workflows })
        })
    }

    async fn remove_shard_cell(
        &self,
        req: Request<RemoveShardCellRequest>,
    ) -> Reply<RemoveShardCellResponse> {
        let req = req.into_inner();
        self.enter(
            "RemoveShardCell",
            format!(
                "{}/{} {} recursive={}",
                req.keyspace, req.shard_name, req.cell, req.recursive
            ),
        )
        .await?;
        self.with(|topo| {
            let key = (req.keyspace.clone(), req.shard_name.clone());
            if !topo.shards.contains_key(&key) {
                return Err(no_node(&format!(
                    "keyspaces/{}/shards/{}/Shard",
                    key.0, key.1
                )));
            }
            let in_cell: Vec<Alias> = topo
                .shard_tablets(&key.0, &key.1)
                .filter(|(a, _)| a.cell == req.cell)
                .map(|(a, _)| a.clone())
                .collect();
            if !in_cell.is_empty() && !req.recursive {
                return Err(Status::failed_precondition(format!(
                    "cell {} has {} possible tablets in shard {}/{}; use Recursive=true",
                    req.cell,
                    in_cell.len(),
                    key.0,
                    key.1
                )));
            }
            if let Some(shard) = topo.shards.get_mut(&key)
                && shard.primary.as_ref().is_some_and(|p| in_cell.contains(p))
            {
                shard.primary = None;
                shard.is_primary_serving = false;
            }
            for alias in &in_cell {
                topo.tablets.remove(alias);
            }
            Ok(RemoveShardCellResponse {})
        })
    }

    async fn planned_reparent_shard(
        &self,
        req: Request<PlannedReparentShardRequest>,
    ) -> Reply<PlannedReparentShardResponse> {
        let req = req.into_inner();
        self.enter(
            "PlannedReparentShard",
            format!(
                "{}/{} new_primary={} avoid_primary={} expected_primary={}",
                req.keyspace,
                req.shard,
                alias_text(req.new_primary.as_ref()),
                alias_text(req.avoid_primary.as_ref()),
                alias_text(req.expected_primary.as_ref()),
            ),
        )
        .await?;
        self.with(|topo| {
            let key = (req.keyspace.clone(), req.shard.clone());
            let current = match topo.shards.get(&key) {
                Some(shard) => shard.primary.clone(),
                None => {
                    return Err(no_node(&format!("keyspaces/{}/shards/{}/", key.0, key.1)));
                }
            };
            let new_primary = Alias::from_proto(req.new_primary.as_ref());
            let avoid = Alias::from_proto(req.avoid_primary.as_ref());
            if let Some(expected) = Alias::from_proto(req.expected_primary.as_ref())
                && current.as_ref() != Some(&expected)
            {
                return Err(Status::failed_precondition(format!(
                    "primary {} is not equal to expected alias {expected}",
                    current
                        .as_ref()
                        .map_or("<nil>".to_string(), Alias::to_string)
                )));
            }
            let elect = match (new_primary, avoid) {
                (Some(new), Some(avoid)) if new == avoid => {
                    return Err(Status::failed_precondition(format!(
                        "primary-elect tablet {new} is the same as the tablet to avoid"
                    )));
                }
                (Some(new), _) => new,
                // Avoiding a tablet that is not the primary changes nothing.
                (None, Some(avoid)) if current.as_ref() != Some(&avoid) => {
                    return Ok(reparent_response(&key, current));
                }
                (None, None) if current.is_some() => return Ok(reparent_response(&key, current)),
                (None, avoid) => topo
                    .shard_tablets(&key.0, &key.1)
                    .filter(|(a, t)| {
                        t.tablet_type == TabletType::Replica && Some(*a) != avoid.as_ref()
                    })
                    .map(|(a, _)| a.clone())
                    .next()
                    .ok_or_else(|| {
                        Status::failed_precondition(format!(
                            "cannot find a tablet to reparent to in shard {}/{}",
                            key.0, key.1
                        ))
                    })?,
            };
            if current.as_ref() == Some(&elect) {
                return Ok(reparent_response(&key, current));
            }
            let tablet = topo
                .tablets
                .get(&elect)
                .filter(|t| t.keyspace == key.0 && t.shard == key.1)
                .ok_or_else(|| {
                    Status::failed_precondition(format!(
                        "primary-elect tablet {elect} is not in the shard"
                    ))
                })?;
            if tablet.tablet_type != TabletType::Replica {
                return Err(Status::failed_precondition(format!(
                    "primary-elect tablet {elect} is not a replica (type {})",
                    tablet.tablet_type
                )));
            }
            if let Some(old) = &current
                && let Some(t) = topo.tablets.get_mut(old)
            {
                t.tablet_type = TabletType::Replica;
            }
            if let Some(t) = topo.tablets.get_mut(&elect) {
                t.tablet_type = TabletType::Primary;
            }
            if let Some(shard) = topo.shards.get_mut(&key) {
                shard.reparents.push((current, elect.clone()));
                shard.primary = Some(elect.clone());
                shard.is_primary_serving = true;
            }
            Ok(reparent_response(&key, Some(elect)))
        })
    }

    /// As vtctld: a tablet already PRIMARY is a no-op; otherwise the tablet becomes PRIMARY
    /// and the shard's primary (at once here; a real tablet writes the shard record itself a
    /// moment later), and the old primary a REPLICA (what a real one does on seeing a newer
    /// primary). Nothing else is checked: MySQL is someone else's.
    async fn tablet_externally_reparented(
        &self,
        req: Request<TabletExternallyReparentedRequest>,
    ) -> Reply<TabletExternallyReparentedResponse> {
        let req = req.into_inner();
        let Some(alias) = Alias::from_proto(req.tablet.as_ref()) else {
            return Err(Status::invalid_argument(
                "TabletExternallyReparentedRequest.Tablet must not be nil",
            ));
        };
        self.enter("TabletExternallyReparented", alias.to_string())
            .await?;
        self.with(|topo| {
            let Some(tablet) = topo.tablets.get(&alias) else {
                return Err(no_tablet(&alias));
            };
            let key = (tablet.keyspace.clone(), tablet.shard.clone());
            let is_primary = tablet.tablet_type == TabletType::Primary;
            let Some(shard) = topo.shards.get_mut(&key) else {
                return Err(no_node(&format!("keyspaces/{}/shards/{}/", key.0, key.1)));
            };
            let old = shard.primary.clone();
            let response = TabletExternallyReparentedResponse {
                keyspace: key.0.clone(),
                shard: key.1.clone(),
                new_primary: Some(alias.to_proto()),
                old_primary: old.as_ref().map(Alias::to_proto),
            };
            if is_primary {
                return Ok(response);
            }
            shard.reparents.push((old.clone(), alias.clone()));
            shard.primary = Some(alias.clone());
            shard.is_primary_serving = true;
            if let Some(t) = old.as_ref().and_then(|o| topo.tablets.get_mut(o)) {
                t.tablet_type = TabletType::Replica;
            }
            if let Some(t) = topo.tablets.get_mut(&alias) {
                t.tablet_type = TabletType::Primary;
            }
            Ok(response)
        })
    }

    /// As vtctld: only a change among the non-primary types (REPLICA, RDONLY, SPARE,
    /// BACKUP, EXPERIMENTAL, DRAINED) is allowed; to the type the tablet has, a no-op.
    async fn change_tablet_type(
        &self,
        req: Request<ChangeTabletTypeRequest>,
    ) -> Reply<ChangeTabletTypeResponse> {
        let req = req.into_inner();
        let Some(alias) = Alias::from_proto(req.tablet_alias.as_ref()) else {
            return Err(Status::invalid_argument("tablet_alias must not be nil"));
        };
        let to = TabletType::from(req.db_type);
        self.enter("ChangeTabletType", format!("{alias} {to}"))
            .await?;
        self.with(|topo| {
            let Some(tablet) = topo.tablets.get_mut(&alias) else {
                return Err(no_tablet(&alias));
            };
            let from = tablet.tablet_type;
            let plain = |t: TabletType| {
                matches!(
                    t,
                    TabletType::Replica
                        | TabletType::Rdonly
                        | TabletType::Spare
                        | TabletType::Backup
                        | TabletType::Experimental
                        | TabletType::Drained
                )
            };
            if from != to && !(plain(from) && plain(to)) {
                return Err(Status::failed_precondition(format!(
                    "tablet {alias} type change {from} -> {to} is not an allowed transition \
                     for ChangeTabletType"
                )));
            }
            if !req.dry_run {
                tablet.tablet_type = to;
            }
            Ok(ChangeTabletTypeResponse {
                before_tablet: None,
                after_tablet: None,
                was_dry_run: req.dry_run,
            })
        })
    }
}

fn reparent_response(
    key: &(String, String),
    primary: Option<Alias>,
) -> PlannedReparentShardResponse {
    PlannedReparentShardResponse {
        keyspace: key.0.clone(),
        shard: key.1.clone(),
        promoted_primary: primary.as_ref().map(Alias::to_proto),
    }
}

fn keyspace_proto(name: &str, policy: &str) -> Keyspace {
    Keyspace {
        name: name.to_string(),
        keyspace: Some(topodata::Keyspace {
            durability_policy: policy.to_string(),
            sidecar_db_name: "_vt".to_string(),
            ..Default::default()
        }),
    }
}

fn check_policy(policy: &str) -> Result<(), Status> {
    if POLICIES.contains(&policy) {
        Ok(())
    } else {
        Err(unknown_policy(policy))
    }
}

/// What vtctld v0.24 says of a policy it has not registered, code and all.
fn unknown_policy(policy: &str) -> Status {
    Status::unknown(format!(
        "durability policy <{policy}> is not a valid policy. Please register it as a policy first"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_names_round_trip() {
        let alias = Alias::new("zone1", 100);
        // 2021-03-04 05:06:07 UTC
        let time = UNIX_EPOCH + Duration::from_secs(1_614_834_367);
        let name = backup_name(time, &alias);
        assert_eq!(name, "2021-03-04.050607.zone1-0000000100");
        assert_eq!(parse_backup_name(&name), (Some(time), Some(alias)));
        assert_eq!(parse_backup_name("junk"), (None, None));
    }

    #[test]
    fn only_known_policies_pass() {
        assert!(check_policy("semi_sync").is_ok());
        assert!(check_policy("none").is_ok());
        let err = check_policy("bogus").unwrap_err();
        assert!(err.message().contains("<bogus>"));
    }

    #[test]
    fn topology_lists_a_shards_tablets() {
        let mut topo = Topology::default();
        let t = |shard: &str| TabletRecord {
            keyspace: "ks".into(),
            shard: shard.into(),
            tablet_type: TabletType::Replica,
        };
        topo.tablets.insert(Alias::new("z", 1), t("-80"));
        topo.tablets.insert(Alias::new("z", 2), t("80-"));
        let found: Vec<_> = topo
            .shard_tablets("ks", "-80")
            .map(|(a, _)| a.uid)
            .collect();
        assert_eq!(found, vec![1]);
    }
}
