//! The vtctld client: one method per vtctld RPC the operator uses, each with a deadline, retries
//! for the idempotent ones, and plain Rust types in and out.
//!
//! vtctld reports most topology errors with code UNKNOWN and a message such as
//! `node doesn't exist: /vitess/global/keyspaces/ks/Keyspace` (Vitess v0.24). Where the API says
//! "NotFound -> None" or "NotFound -> Ok", both that message (for the object asked about) and the
//! NOT_FOUND code count as not found.
//!
//! Why one file: every RPC wraps the same call path (deadline, retries, error naming), one
//! short method each; splitting them would scatter that path.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Request, Response, Status};

use super::proto::vtctlservice::vtctld_client::VtctldClient;
use super::proto::{mysqlctl, topodata, vtctldata, vttime};

/// Deadline of one call (all its attempts) unless [`Vtctld::with_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The least deadline of a PlannedReparentShard: it waits for replicas twice.
pub const REPARENT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long vtctld lets replicas catch up before and after a planned reparent.
pub const WAIT_REPLICAS_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts of an idempotent call whose vtctld is unavailable.
const MAX_ATTEMPTS: u32 = 4;
/// Pause before the second attempt; doubled before each further one, then jittered.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// An error this close to the deadline is the deadline's doing.
const DEADLINE_SLACK: Duration = Duration::from_millis(100);
/// A TCP/TLS connect that takes longer than this fails (and may be retried).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What went wrong talking to vtctld. Every message names the vtctld and the RPC.
#[derive(Clone, Debug, thiserror::Error)]
pub enum Error {
    /// vtctld could not be reached (connection refused, UNAVAILABLE), after retries.
    #[error("vtctld {address}: {method}{}: unavailable: {message}", on(.target))]
    Unavailable {
        address: String,
        method: String,
        /// What the call was about (`commerce/-`, a cell name), possibly empty.
        target: String,
        message: String,
    },
    /// No answer within the call's deadline.
    #[error("vtctld {address}: {method}{}: no answer within {timeout:?}", on(.target))]
    DeadlineExceeded {
        address: String,
        method: String,
        target: String,
        timeout: Duration,
    },
    /// vtctld answered with an error status (FAILED_PRECONDITION, UNKNOWN, ...).
    #[error("vtctld {address}: {method}{}: {code:?}: {message}", on(.target))]
    Rejected {
        address: String,
        method: String,
        target: String,
        code: Code,
        message: String,
    },
    /// vtctld answered, but without what the call needs.
    #[error("vtctld {address}: {method}{}: unexpected answer: {message}", on(.target))]
    InvalidResponse {
        address: String,
        method: String,
        target: String,
        message: String,
    },
    /// The address is not `host:port`, or a vtctld override is not `NAMESPACE/CLUSTER=HOST:PORT`.
    #[error("vtctld address {address:?}: {message}")]
    InvalidAddress { address: String, message: String },
    /// The TLS material cannot be used.
    #[error("vtctld {address}: TLS: {message}")]
    Tls { address: String, message: String },
    /// A client was made outside a Tokio runtime (its channel needs one).
    #[error("vtctld {address}: a client needs a Tokio runtime")]
    NoRuntime { address: String },
    /// A tablet alias is not `CELL-UID`.
    #[error("tablet alias {input:?}: expected CELL-UID, e.g. zone1-0000000100")]
    InvalidAlias { input: String },
}

fn on(target: &str) -> String {
    if target.is_empty() {
        String::new()
    } else {
        format!(" {target}")
    }
}

impl Error {
    /// vtctld cannot be reached: it refused, is unavailable, or did not answer in time.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Error::Unavailable { .. } | Error::DeadlineExceeded { .. }
        )
    }

    /// The gRPC status code vtctld answered with, if it answered with an error.
    pub fn code(&self) -> Option<Code> {
        match self {
            Error::Rejected { code, .. } => Some(*code),
            Error::Unavailable { .. } => Some(Code::Unavailable),
            Error::DeadlineExceeded { .. } => Some(Code::DeadlineExceeded),
            _ => None,
        }
    }

    /// vtctld said something does not exist (NOT_FOUND, or Vitess' `node doesn't exist`).
    pub fn is_not_found(&self) -> bool {
        match self {
            Error::Rejected { code, message, .. } => {
                *code == Code::NotFound || message.contains(NO_NODE)
            }
            _ => false,
        }
    }

    /// vtctld said something already exists (ALREADY_EXISTS, or Vitess' `node already exists`).
    pub fn is_already_exists(&self) -> bool {
        match self {
            Error::Rejected { code, message, .. } => {
                *code == Code::AlreadyExists || message.contains(NODE_EXISTS)
            }
            _ => false,
        }
    }

    /// Not found, and about the topology path that contains `fragment` (e.g. `keyspaces/ks/`):
    /// vtctld also says `node doesn't exist` about other records (a cell list that is missing),
    /// which must not pass for "the thing we asked about is gone".
    fn is_not_found_at(&self, fragment: &str) -> bool {
        match self {
            Error::Rejected { code, message, .. } => {
                *code == Code::NotFound
                    || message
                        .split(NO_NODE)
                        .skip(1)
                        .any(|path| path.contains(&format!("/{fragment}")))
            }
            _ => false,
        }
    }
}

/// How Vitess' topology says a record is missing.
pub const NO_NODE: &str = "node doesn't exist: ";
/// How Vitess' topology says a record is already there.
pub const NODE_EXISTS: &str = "node already exists: ";

/// A tablet alias; Display is `{cell}-{uid:010}` (Vitess prints uids zero-padded to 10 digits),
/// FromStr parses `zone1-0123456789` and `zone1-123`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Alias {
    pub cell: String,
    pub uid: u32,
}

impl Alias {
    pub fn new(cell: impl Into<String>, uid: u32) -> Self {
        Self {
            cell: cell.into(),
            uid,
        }
    }

    /// The wire form.
    pub fn to_proto(&self) -> topodata::TabletAlias {
        topodata::TabletAlias {
            cell: self.cell.clone(),
            uid: self.uid,
        }
    }

    /// `None` for a missing or empty alias (how vtctld says "no primary").
    pub fn from_proto(alias: Option<&topodata::TabletAlias>) -> Option<Self> {
        alias
            .filter(|a| !a.cell.is_empty() || a.uid != 0)
            .map(|a| Alias::new(a.cell.clone(), a.uid))
    }
}

impl fmt::Display for Alias {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{:010}", self.cell, self.uid)
    }
}

impl FromStr for Alias {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let invalid = || Error::InvalidAlias {
            input: s.to_string(),
        };
        // The uid is after the last '-', so a cell may contain dashes.
        let (cell, uid) = s.rsplit_once('-').ok_or_else(invalid)?;
        if cell.is_empty() || uid.is_empty() || !uid.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let uid = uid.parse().map_err(|_| invalid())?;
        Ok(Alias::new(cell, uid))
    }
}

/// Most backups one GetBackups may return (vtctld refuses larger limits).
pub const MAX_BACKUP_LIMIT: u32 = 100;
/// The least deadline of a BackupShard: the whole backup streams within it.
pub const BACKUP_TIMEOUT: Duration = Duration::from_secs(6 * 60 * 60);
/// Files a tablet copies at once in a BackupShard (vtctldclient's default). Vitess takes the
/// request's value as it is: with 0 (the proto default) the tablet's builtin engine waits for
/// a free slot forever, after it has stopped its mysqld.
pub const BACKUP_CONCURRENCY: i32 = 4;

/// Whether a backup can be restored, as far as vtctld says (`mysqlctl.BackupInfo.Status`).
/// vtctld v0.24 never fills it in (`Unknown`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackupStatus {
    Unknown,
    Incomplete,
    Complete,
    Invalid,
    Valid,
}

impl From<i32> for BackupStatus {
    fn from(value: i32) -> Self {
        match mysqlctl::backup_info::Status::try_from(value) {
            Ok(mysqlctl::backup_info::Status::Incomplete) => BackupStatus::Incomplete,
            Ok(mysqlctl::backup_info::Status::Complete) => BackupStatus::Complete,
            Ok(mysqlctl::backup_info::Status::Invalid) => BackupStatus::Invalid,
            Ok(mysqlctl::backup_info::Status::Valid) => BackupStatus::Valid,
            Ok(mysqlctl::backup_info::Status::Unknown) | Err(_) => BackupStatus::Unknown,
        }
    }
}

impl BackupStatus {
    /// The wire value.
    pub fn to_proto(self) -> i32 {
        let s = match self {
            BackupStatus::Unknown => mysqlctl::backup_info::Status::Unknown,
            BackupStatus::Incomplete => mysqlctl::backup_info::Status::Incomplete,
            BackupStatus::Complete => mysqlctl::backup_info::Status::Complete,
            BackupStatus::Invalid => mysqlctl::backup_info::Status::Invalid,
            BackupStatus::Valid => mysqlctl::backup_info::Status::Valid,
        };
        s as i32
    }

    /// The name Vitess gives it (`UNKNOWN`, `INCOMPLETE`, `COMPLETE`, `INVALID`, `VALID`).
    pub fn name(self) -> &'static str {
        match self {
            BackupStatus::Unknown => "UNKNOWN",
            BackupStatus::Incomplete => "INCOMPLETE",
            BackupStatus::Complete => "COMPLETE",
            BackupStatus::Invalid => "INVALID",
            BackupStatus::Valid => "VALID",
        }
    }

    /// `Some(true)` when restorable, `Some(false)` when not, `None` when vtctld does not say.
    pub fn complete(self) -> Option<bool> {
        match self {
            BackupStatus::Complete | BackupStatus::Valid => Some(true),
            BackupStatus::Incomplete | BackupStatus::Invalid => Some(false),
            BackupStatus::Unknown => None,
        }
    }
}

/// One backup of a shard, as vtctld lists it. Its name is `<date>.<time>.<tablet alias>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupInfo {
    pub name: String,
    /// `<keyspace>/<shard>`.
    pub directory: String,
    pub keyspace: String,
    pub shard: String,
    /// The tablet that took it, parsed from the name.
    pub tablet: Option<Alias>,
    /// When it started, parsed from the name.
    pub time: Option<SystemTime>,
    /// Backup engine, when vtctld says.
    pub engine: String,
    pub status: BackupStatus,
}

impl BackupInfo {
    fn from_proto(b: mysqlctl::BackupInfo) -> Self {
        BackupInfo {
            tablet: Alias::from_proto(b.tablet_alias.as_ref()),
            time: b.time.as_ref().and_then(time_from_proto),
            status: BackupStatus::from(b.status),
            name: b.name,
            directory: b.directory,
            keyspace: b.keyspace,
            shard: b.shard,
            engine: b.engine,
        }
    }
}

/// What a BackupShard did: the tablet that took the backup and the last log lines it sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BackupOutcome {
    pub tablet: Option<Alias>,
    pub events: Vec<String>,
}

/// A tablet's role in its shard (Vitess' `topodata.TabletType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TabletType {
    Unknown,
    Primary,
    Replica,
    Rdonly,
    Spare,
    Experimental,
    Backup,
    Restore,
    Drained,
}

impl TabletType {
    /// Vitess' name: `PRIMARY`, `REPLICA`, `RDONLY`...
    pub fn as_str(self) -> &'static str {
        match self {
            TabletType::Unknown => "UNKNOWN",
            TabletType::Primary => "PRIMARY",
            TabletType::Replica => "REPLICA",
            TabletType::Rdonly => "RDONLY",
            TabletType::Spare => "SPARE",
            TabletType::Experimental => "EXPERIMENTAL",
            TabletType::Backup => "BACKUP",
            TabletType::Restore => "RESTORE",
            TabletType::Drained => "DRAINED",
        }
    }

    /// The wire value.
    pub fn to_proto(self) -> i32 {
        let t = match self {
            TabletType::Unknown => topodata::TabletType::Unknown,
            TabletType::Primary => topodata::TabletType::Primary,
            TabletType::Replica => topodata::TabletType::Replica,
            TabletType::Rdonly => topodata::TabletType::Rdonly,
            TabletType::Spare => topodata::TabletType::Spare,
            TabletType::Experimental => topodata::TabletType::Experimental,
            TabletType::Backup => topodata::TabletType::Backup,
            TabletType::Restore => topodata::TabletType::Restore,
            TabletType::Drained => topodata::TabletType::Drained,
        };
        t as i32
    }
}

impl From<i32> for TabletType {
    /// Values this operator does not know become `Unknown`.
    fn from(value: i32) -> Self {
        match topodata::TabletType::try_from(value) {
            Ok(topodata::TabletType::Primary) => TabletType::Primary,
            Ok(topodata::TabletType::Replica) => TabletType::Replica,
            Ok(topodata::TabletType::Rdonly) => TabletType::Rdonly,
            Ok(topodata::TabletType::Spare) => TabletType::Spare,
            Ok(topodata::TabletType::Experimental) => TabletType::Experimental,
            Ok(topodata::TabletType::Backup) => TabletType::Backup,
            Ok(topodata::TabletType::Restore) => TabletType::Restore,
            Ok(topodata::TabletType::Drained) => TabletType::Drained,
            Ok(topodata::TabletType::Unknown) | Err(_) => TabletType::Unknown,
        }
    }
}

impl fmt::Display for TabletType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tablet as the topology has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tablet {
    pub alias: Alias,
    pub keyspace: String,
    pub shard: String,
    pub tablet_type: TabletType,
    pub hostname: String,
}

/// A shard's global record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shard {
    pub keyspace: String,
    pub name: String,
    /// `None` while the shard has never had a primary.
    pub primary: Option<Alias>,
    pub is_primary_serving: bool,
}

/// A keyspace's global record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keyspace {
    pub name: String,
    pub durability_policy: String,
}

/// A VReplication workflow of a keyspace, as far as a resharding is concerned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Workflow {
    pub name: String,
    /// `Reshard`, `MoveTables`, ... (empty from a vtctld that does not say).
    pub workflow_type: String,
    pub source_keyspace: String,
    pub source_shards: Vec<String>,
    pub target_keyspace: String,
    pub target_shards: Vec<String>,
    /// Seconds the furthest-behind stream is behind its source.
    pub max_lag_seconds: i64,
    /// Every stream of every target shard: (target shard, state, message).
    pub streams: Vec<(String, String, String)>,
}

impl Workflow {
    /// Whether it moves a keyspace's data between its own shards (the Go operator's rule: the
    /// same keyspace on both sides, other shards).
    pub fn is_resharding(&self) -> bool {
        self.source_keyspace == self.target_keyspace && self.source_shards != self.target_shards
    }
}

/// Where a cell's local topology lives.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CellInfo {
    pub server_address: String,
    pub root: String,
}

impl CellInfo {
    fn to_proto(&self) -> topodata::CellInfo {
        topodata::CellInfo {
            server_address: self.server_address.clone(),
            root: self.root.clone(),
        }
    }
}

/// PEM bytes for mutual TLS to vtctld.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Tls {
    /// The CA that signed vtctld's certificate.
    pub ca: Vec<u8>,
    /// Our client certificate, if vtctld asks for one.
    pub cert: Option<Vec<u8>>,
    /// The key of `cert`.
    pub key: Option<Vec<u8>>,
    /// The name to check vtctld's certificate against, if not the host of its address.
    pub server_name: Option<String>,
}

impl fmt::Debug for Tls {
    // Never print key material, not even in a debug log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("ca", &format_args!("<{} bytes>", self.ca.len()))
            .field("cert", &self.cert.as_ref().map(|c| c.len()))
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("server_name", &self.server_name)
            .finish()
    }
}

impl Tls {
    fn client_config(&self, address: &str) -> Result<ClientTlsConfig, Error> {
        let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&self.ca));
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => config = config.identity(Identity::from_pem(cert, key)),
            (None, None) => {}
            _ => {
                return Err(Error::Tls {
                    address: address.to_string(),
                    message: "a client certificate needs its key, and a key its certificate"
                        .to_string(),
                });
            }
        }
        if let Some(name) = &self.server_name {
            config = config.domain_name(name.clone());
        }
        Ok(config)
    }
}

/// A client of one vtctld. Cheap to clone: clones share one lazily connected channel.
#[derive(Clone, Debug)]
pub struct Vtctld {
    address: String,
    channel: Channel,
    timeout: Duration,
}

impl Vtctld {
    /// A client of the vtctld at `host:port` (an `http://` or `https://` prefix is ignored; TLS is
    /// used when `tls` is given). Does no I/O: the connection is made by the first call. Must be
    /// called within a Tokio runtime.
    pub fn connect_lazy(address: &str, tls: Option<&Tls>) -> Result<Self, Error> {
        let bare = address
            .trim()
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .trim_end_matches('/');
        let invalid = |message: &str| Error::InvalidAddress {
            address: address.to_string(),
            message: message.to_string(),
        };
        let (host, port) = bare
            .rsplit_once(':')
            .ok_or_else(|| invalid("expected HOST:PORT"))?;
        if host.is_empty() || host.contains('/') || port.parse::<u16>().is_err() {
            return Err(invalid("expected HOST:PORT"));
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::NoRuntime {
                address: bare.to_string(),
            });
        }
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{bare}"))
            .map_err(|e| invalid(&e.to_string()))?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true);
        if let Some(tls) = tls {
            endpoint = endpoint
                .tls_config(tls.client_config(bare)?)
                .map_err(|e| Error::Tls {
                    address: bare.to_string(),
                    message: error_chain(&e),
                })?;
        }
        Ok(Self {
            address: bare.to_string(),
            channel: endpoint.connect_lazy(),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// The same client with another deadline per call (all attempts included).
    pub fn with_timeout(mut self, per_call: Duration) -> Self {
        self.timeout = per_call;
        self
    }

    /// `host:port` of vtctld.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The deadline of one call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Names of all cells.
    pub async fn cell_info_names(&self) -> Result<Vec<String>, Error> {
        let resp = self
            .call(
                "GetCellInfoNames",
                "",
                Retry::Yes,
                self.timeout,
                |mut c, t| async move {
                    c.get_cell_info_names(request(vtctldata::GetCellInfoNamesRequest {}, t))
                        .await
                },
            )
            .await?;
        Ok(resp.names)
    }

    /// A cell's record, `None` if there is no such cell.
    pub async fn cell_info(&self, cell: &str) -> Result<Option<CellInfo>, Error> {
        let req = vtctldata::GetCellInfoRequest {
            cell: cell.to_string(),
        };
        let result = self
            .call("GetCellInfo", cell, Retry::Yes, self.timeout, |mut c, t| {
                let req = req.clone();
                async move { c.get_cell_info(request(req, t)).await }
            })
            .await;
        match result {
            Ok(resp) => Ok(resp.cell_info.map(|i| CellInfo {
                server_address: i.server_address,
                root: i.root,
            })),
            Err(e) if e.is_not_found_at(&format!("cells/{cell}/")) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Adds a cell; vtctld refuses if it exists ([`Error::is_already_exists`]).
    pub async fn add_cell_info(&self, name: &str, info: &CellInfo) -> Result<(), Error> {
        let req = vtctldata::AddCellInfoRequest {
            name: name.to_string(),
            cell_info: Some(info.to_proto()),
        };
        self.call("AddCellInfo", name, Retry::Yes, self.timeout, |mut c, t| {
            let req = req.clone();
            async move { c.add_cell_info(request(req, t)).await }
        })
        .await?;
        Ok(())
    }

    /// Sets a cell's record (vtctld creates the cell if it is missing).
    pub async fn update_cell_info(&self, name: &str, info: &CellInfo) -> Result<(), Error> {
        let req = vtctldata::UpdateCellInfoRequest {
            name: name.to_string(),
            cell_info: Some(info.to_proto()),
        };
        self.call(
            "UpdateCellInfo",
            name,
            Retry::Yes,
            self.timeout,
            |mut c, t| {
                let req = req.clone();
                async move { c.update_cell_info(request(req, t)).await }
            },
        )
        .await?;
        Ok(())
    }

    /// Deletes a cell; a cell that is already gone is fine.
    pub async fn delete_cell_info(&self, name: &str) -> Result<(), Error> {
        let req = vtctldata::DeleteCellInfoRequest {
            name: name.to_string(),
            force: false,
        };
        let result = self
            .call(
                "DeleteCellInfo",
                name,
                Retry::Yes,
                self.timeout,
                |mut c, t| {
                    let req = req.clone();
                    async move { c.delete_cell_info(request(req, t)).await }
                },
            )
            .await;
        match result {
            Err(e) if e.is_not_found_at(&format!("cells/{name}/")) => Ok(()),
            other => other.map(drop),
        }
    }

    /// Every cells alias with its cells.
    pub async fn cells_aliases(&self) -> Result<BTreeMap<String, Vec<String>>, Error> {
        let resp = self
            .call(
                "GetCellsAliases",
                "",
                Retry::Yes,
                self.timeout,
                |mut c, t| async move {
                    c.get_cells_aliases(request(vtctldata::GetCellsAliasesRequest {}, t))
                        .await
                },
            )
            .await?;
        Ok(resp
            .aliases
            .into_iter()
            .map(|(name, alias)| (name, alias.cells))
            .collect())
    }

    /// Creates or replaces a cells alias.
    pub async fn update_cells_alias(&self, name: &str, cells: &[String]) -> Result<(), Error> {
        let req = vtctldata::UpdateCellsAliasRequest {
            name: name.to_string(),
            cells_alias: Some(topodata::CellsAlias {
                cells: cells.to_vec(),
            }),
        };
        self.call(
            "UpdateCellsAlias",
            name,
            Retry::Yes,
            self.timeout,
            |mut c, t| {
                let req = req.clone();
                async move { c.update_cells_alias(request(req, t)).await }
            },
        )
        .await?;
        Ok(())
    }

    /// Deletes a cells alias (its cells stay). Deleting one that is not there succeeds.
    pub async fn delete_cells_alias(&self, name: &str) -> Result<(), Error> {
        let req = vtctldata::DeleteCellsAliasRequest {
            name: name.to_string(),
        };
        let result = self
            .call(
                "DeleteCellsAlias",
                name,
                Retry::Yes,
                self.timeout,
                |mut c, t| {
                    let req = req.clone();
                    async move { c.delete_cells_alias(request(req, t)).await }
                },
            )
            .await;
        match result {
            Err(e) if e.is_not_found_at(&format!("cells_aliases/{name}")) => Ok(()),
            other => other.map(drop),
        }
    }

    /// All keyspaces.
    pub async fn keyspaces(&self) -> Result<Vec<Keyspace>, Error> {
        let resp = self
            .call(
                "GetKeyspaces",
                "",
                Retry::Yes,
                self.timeout,
                |mut c, t| async move {
                    c.get_keyspaces(request(vtctldata::GetKeyspacesRequest {}, t))
                        .await
                },
            )
            .await?;
        Ok(resp
            .keyspaces
            .into_iter()
            .map(keyspace_from_proto)
            .collect())
    }

    /// A keyspace's record, `None` if there is no such keyspace.
    pub async fn keyspace(&self, name: &str) -> Result<Option<Keyspace>, Error> {
        let req = vtctldata::GetKeyspaceRequest {
            keyspace: name.to_string(),
        };
        let result = self
            .call("GetKeyspace", name, Retry::Yes, self.timeout, |mut c, t| {
                let req = req.clone();
                async move { c.get_keyspace(request(req, t)).await }
            })
            .await;
        match result {
            Ok(resp) => Ok(resp.keyspace.map(keyspace_from_proto)),
            Err(e) if e.is_not_found_at(&format!("keyspaces/{name}/")) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates a keyspace with a durability policy and sidecar database name (empty: Vitess'
    /// default, `_vt`); one that exists is left as it is (see [`Vtctld::set_durability_policy`]).
    pub async fn create_keyspace(
        &self,
        name: &str,
        durability_policy: &str,
        sidecar_db_name: &str,
    ) -> Result<(), Error> {
        let req = vtctldata::CreateKeyspaceRequest {
            name: name.to_string(),
            durability_policy: durability_policy.to_string(),
            sidecar_db_name: sidecar_db_name.to_string(),
            ..Default::default()
        };
        let result = self
            .call(
                "CreateKeyspace",
                name,
                Retry::Yes,
                self.timeout,
                |mut c, t| {
                    let req = req.clone();
                    async move { c.create_keyspace(request(req, t)).await }
                },
            )
            .await;
        match result {
            Err(e) if e.is_already_exists() => Ok(()),
            other => other.map(drop),
        }
    }

    /// Sets a keyspace's durability policy (`none`, `semi_sync`, `cross_cell`...).
    pub async fn set_durability_policy(&self, keyspace: &str, policy: &str) -> Result<(), Error> {
        let req = vtctldata::SetKeyspaceDurabilityPolicyRequest {
            keyspace: keyspace.to_string(),
            durability_policy: policy.to_string(),
        };
        self.call(
            "SetKeyspaceDurabilityPolicy",
            keyspace,
            Retry::Yes,
            self.timeout,
            |mut c, t| {
                let req = req.clone();
                async move { c.set_keyspace_durability_policy(request(req, t)).await }
            },
        )
        .await?;
        Ok(())
    }

    /// Deletes a keyspace (with its shards and tablets if `recursive`); one that is already gone
    /// is fine.
    pub async fn delete_keyspace(&self, name: &str, recursive: bool) -> Result<(), Error> {
        let req = vtctldata::DeleteKeyspaceRequest {
            keyspace: name.to_string(),
            recursive,
            force: false,
        };
        let result = self
            .call(
                "DeleteKeyspace",
                name,
                Retry::Yes,
                self.timeout,
                |mut c, t| {
                    let req = req.clone();
                    async move { c.delete_keyspace(request(req, t)).await }
                },
            )
            .await;
        match result {
            Err(e) if e.is_not_found_at(&format!("keyspaces/{name}/")) => Ok(()),
            other => other.map(drop),
        }
    }

    /// A shard's record, `None` if there is no such shard.
    pub async fn shard(&self, keyspace: &str, shard: &str) -> Result<Option<Shard>, Error> {
        let req = vtctldata::GetShardRequest {
            keyspace: keyspace.to_string(),
            shard_name: shard.to_string(),
        };
        let target = format!("{keyspace}/{shard}");
        let result = self
            .call("GetShard", &target, Retry::Yes, self.timeout, |mut c, t| {
                let req = req.clone();
                async move { c.get_shard(request(req, t)).await }
            })
            .await;
        match result {
            Ok(resp) => Ok(resp.shard.map(|s| {
                let record = s.shard.unwrap_or_default();
                Shard {
                    keyspace: s.keyspace,
                    name: s.name,
                    primary: Alias::from_proto(record.primary_alias.as_ref()),
                    is_primary_serving: record.is_primary_serving,
                }
            })),
            Err(e) if e.is_not_found_at(&format!("keyspaces/{keyspace}/shards/{shard}/")) => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The shards of `keyspace` that serve some tablet type, by cell: Vitess' serving graph
    /// (each cell's SrvKeyspace). A cell without a SrvKeyspace for the keyspace serves none of
    /// its shards; a cell whose topology cannot be read fails the whole call.
    pub async fn serving_shards(
        &self,
        keyspace: &str,
    ) -> Result<BTreeMap<String, BTreeSet<String>>, Error> {
        let req = vtctldata::GetSrvKeyspacesRequest {
            keyspace: keyspace.to_string(),
            cells: Vec::new(),
        };
        let resp = self
            .call(
                "GetSrvKeyspaces",
                keyspace,
                Retry::Yes,
                self.timeout,
                |mut c, t| {
                    let req = req.clone();
                    async move { c.get_srv_keyspaces(request(req, t)).await }
                },
            )
            .await?;
        Ok(resp
            .srv_keyspaces
            .into_iter()
            .map(|(cell, srv)| {
                let shards = srv
                    .partitions
                    .into_iter()
                    .flat_map(|p| p.shard_references)
                    .map(|r| r.name)
                    .collect();
                (cell, shards)
            })
            .collect())
    }

    /// The active VReplication workflows of `keyspace` (those it is the target of).
    pub async fn workflows(&self, keyspace: &str) -> Result<Vec<Workflow>, Error> {
        let req = vtctldata::GetWorkflowsRequest {
            keyspace: keyspace.to_string(),
            active_only: true,
        };
        let resp = self
            .call(
                "GetWorkflows",
                keyspace,
                Retry::Yes,
                self.timeout,
                |mut c, t| {
                    let req = req.clone();
                    async move { c.get_workflows(request(req, t)).await }
                },
            )
            .await?;
        Ok(resp
            .workflows
            .into_iter()
            .map(|w| {
                let (source, target) = (w.source.unwrap_or_default(), w.target.unwrap_or_default());
                let streams = w
                    .shard_streams
                    .into_iter()
                    .flat_map(|(shard, streams)| {
                        streams
                            .streams
                            .into_iter()
                            .map(move |s| (shard.clone(), s.state, s.message))
                    })
                    .collect();
                Workflow {
                    name: w.name,
                    workflow_type: w.workflow_type,
                    source_keyspace: source.keyspace,
                    source_shards: source.shards,
                    target_keyspace: target.keyspace,
                    target_shards: target.shards,
                    max_lag_seconds: w.max_v_replication_lag,
                    streams,
                }
            })
            .collect())
    }

    /// The tablets of a shard, in every cell; empty if there is no such shard.
    pub async fn tablets(&self, keyspace: &str, shard: &str) -> Result<Vec<Tablet>, Error> {
        let req = vtctldata::GetTabletsRequest {
            keyspace: keyspace.to_string(),
            shard: shard.to_string(),
            ..Default::default()
        };
        let target = format!("{keyspace}/{shard}");
        let result = self
            .call(
                "GetTablets",
                &target,
                Retry::Yes,
                self.timeout,
                |mut c, t| {
                    let req = req.clone();
                    async move { c.get_tablets(request(req, t)).await }
                },
            )
            .await;
        match result {
            Ok(resp) => Ok(resp
                .tablets
                .into_iter()
                .filter_map(|t| {
                    Some(Tablet {
                        alias: Alias::from_proto(t.alias.as_ref())?,
                        keyspace: t.keyspace,
                        shard: t.shard,
                        tablet_type: TabletType::from(t.r#type),
                        hostname: t.hostname,
                    })
                })
                .collect()),
            Err(e) if e.is_not_found_at(&format!("keyspaces/{keyspace}/shards/{shard}/")) => {
                Ok(Vec::new())
            }
            Err(e) => Err(e),
        }
    }

    /// Makes `new_primary` the primary of the shard, if the current primary is
    /// `expected_primary` (when given), and returns the promoted primary. Never retried: a
    /// reparent that may have happened is not asked for twice.
    pub async fn planned_reparent(
        &self,
        keyspace: &str,
        shard: &str,
        new_primary: &Alias,
        expected_primary: Option<&Alias>,
    ) -> Result<Alias, Error> {
        let req = vtctldata::PlannedReparentShardRequest {
            keyspace: keyspace.to_string(),
            shard: shard.to_string(),
            new_primary: Some(new_primary.to_proto()),
            expected_primary: expected_primary.map(Alias::to_proto),
            wait_replicas_timeout: Some(duration_to_proto(WAIT_REPLICAS_TIMEOUT)),
            ..Default::default()
        };
        let method = "PlannedReparentShard";
        let target = format!("{keyspace}/{shard}");
        let timeout = self.timeout.max(REPARENT_TIMEOUT);
        let resp = self
            .call(method, &target, Retry::No, timeout, |mut c, t| {
                let req = req.clone();
                async move { c.planned_reparent_shard(request(req, t)).await }
            })
            .await?;
        Alias::from_proto(resp.promoted_primary.as_ref()).ok_or_else(|| Error::InvalidResponse {
            address: self.address.clone(),
            method: method.to_string(),
            target,
            message: "no promoted_primary".to_string(),
        })
    }

    /// Tells Vitess that `tablet`'s MySQL is its shard's primary (a MySQL Vitess does not
    /// manage: nothing is done to MySQL or to replication), and returns the primary the shard
    /// had before, if any. A tablet that already is the primary is a no-op, so a lost answer
    /// may be asked again.
    pub async fn tablet_externally_reparented(
        &self,
        tablet: &Alias,
    ) -> Result<Option<Alias>, Error> {
        let req = vtctldata::TabletExternallyReparentedRequest {
            tablet: Some(tablet.to_proto()),
        };
        let resp = self
            .call(
                "TabletExternallyReparented",
                &tablet.to_string(),
                Retry::Yes,
                self.timeout,
                |mut c, t| {
                    let req = req.clone();
                    async move { c.tablet_externally_reparented(request(req, t)).await }
                },
            )
            .await?;
        Ok(Alias::from_proto(resp.old_primary.as_ref()))
    }

    /// Sets a tablet's type (`SPARE`, say); setting the type it has is a no-op.
    pub async fn change_tablet_type(
        &self,
        tablet: &Alias,
        tablet_type: TabletType,
    ) -> Result<(), Error> {
        let req = vtctldata::ChangeTabletTypeRequest {
            tablet_alias: Some(tablet.to_proto()),
            db_type: tablet_type.to_proto(),
            dry_run: false,
        };
        self.call(
            "ChangeTabletType",
            &tablet.to_string(),
            Retry::Yes,
            self.timeout,
            |mut c, t| {
                let req = req.clone();
                async move { c.change_tablet_type(request(req, t)).await }
            },
        )
        .await
        .map(drop)
    }

    /// Deletes shards of a keyspace (with their tablets if `recursive`); shards that are gone
    /// are fine. A serving shard is refused.
    pub async fn delete_shards(
        &self,
        keyspace: &str,
        shards: &[String],
        recursive: bool,
    ) -> Result<(), Error> {
        // One request per shard: vtctld stops at the first missing shard, which for us is done.
        for shard in shards {
            let req = vtctldata::DeleteShardsRequest {
                shards: vec![vtctldata::Shard {
                    keyspace: keyspace.to_string(),
                    name: shard.clone(),
                    shard: None,
                }],
                recursive,
                even_if_serving: false,
                force: false,
            };
            let target = format!("{keyspace}/{shard}");
            let result = self
                .call(
                    "DeleteShards",
                    &target,
                    Retry::Yes,
                    self.timeout,
                    |mut c, t| {
                        let req = req.clone();
                        async move { c.delete_shards(request(req, t)).await }
                    },
                )
                .await;
            match result {
                Err(e) if e.is_not_found_at(&format!("keyspaces/{keyspace}/shards/{shard}/")) => {}
                other => other.map(drop)?,
            }
        }
        Ok(())
    }

    /// Deletes tablet records; tablets (or cells) that are gone are fine. A primary is refused.
    pub async fn delete_tablets(&self, aliases: &[Alias]) -> Result<(), Error> {
        for alias in aliases {
            let req = vtctldata::DeleteTabletsRequest {
                tablet_aliases: vec![alias.to_proto()],
                allow_primary: false,
            };
            let target = alias.to_string();
            let result = self
                .call(
                    "DeleteTablets",
                    &target,
                    Retry::Yes,
                    self.timeout,
                    |mut c, t| {
                        let req = req.clone();
                        async move { c.delete_tablets(request(req, t)).await }
                    },
                )
                .await;
            match result {
                Err(e)
                    if e.is_not_found_at(&format!("tablets/{alias}/"))
                        || e.is_not_found_at(&format!("cells/{}/", alias.cell)) => {}
                other => other.map(drop)?,
            }
        }
        Ok(())
    }

    /// Removes a cell from a shard (and that cell's tablets of the shard if `recursive`).
    pub async fn remove_shard_cell(
        &self,
        keyspace: &str,
        shard: &str,
        cell: &str,
        recursive: bool,
    ) -> Result<(), Error> {
        let req = vtctldata::RemoveShardCellRequest {
            keyspace: keyspace.to_string(),
            shard_name: shard.to_string(),
            cell: cell.to_string(),
            force: false,
            recursive,
        };
        let target = format!("{keyspace}/{shard} {cell}");
        self.call(
            "RemoveShardCell",
            &target,
            Retry::Yes,
            self.timeout,
            |mut c, t| {
                let req = req.clone();
                async move { c.remove_shard_cell(request(req, t)).await }
            },
        )
        .await?;
        Ok(())
    }

    /// The backups of a shard, oldest first, at most `limit` (the most recent ones; capped at
    /// [`MAX_BACKUP_LIMIT`]). A shard without backups has an empty list.
    pub async fn backups(
        &self,
        keyspace: &str,
        shard: &str,
        limit: u32,
    ) -> Result<Vec<BackupInfo>, Error> {
        let req = vtctldata::GetBackupsRequest {
            keyspace: keyspace.to_string(),
            shard: shard.to_string(),
            limit: limit.clamp(1, MAX_BACKUP_LIMIT),
            detailed: true,
            detailed_limit: limit.clamp(1, MAX_BACKUP_LIMIT),
        };
        let target = format!("{keyspace}/{shard}");
        let resp = self
            .call(
                "GetBackups",
                &target,
                Retry::Yes,
                self.timeout,
                |mut c, t| {
                    let req = req.clone();
                    async move { c.get_backups(request(req, t)).await }
                },
            )
            .await?;
        Ok(resp
            .backups
            .into_iter()
            .map(BackupInfo::from_proto)
            .collect())
    }

    /// Asks vtctld to back up the shard from a tablet it picks (a replica unless
    /// `allow_primary`), and follows the stream until the backup ends. Not retried: a second
    /// call would be a second backup.
    pub async fn backup_shard(
        &self,
        keyspace: &str,
        shard: &str,
        allow_primary: bool,
    ) -> Result<BackupOutcome, Error> {
        /// Log lines kept from the stream.
        const KEEP_EVENTS: usize = 20;
        let req = vtctldata::BackupShardRequest {
            keyspace: keyspace.to_string(),
            shard: shard.to_string(),
            allow_primary,
            concurrency: BACKUP_CONCURRENCY,
            ..Default::default()
        };
        let method = "BackupShard";
        let target = format!("{keyspace}/{shard}");
        let timeout = self.timeout.max(BACKUP_TIMEOUT);
        let started = Instant::now();
        let mut stream = self
            .call(method, &target, Retry::No, timeout, |mut c, t| {
                let req = req.clone();
                async move { c.backup_shard(request(req, t)).await }
            })
            .await?;
        let mut outcome = BackupOutcome::default();
        let remaining = timeout.saturating_sub(started.elapsed());
        let drain = async {
            while let Some(msg) = stream.message().await? {
                if let Some(alias) = Alias::from_proto(msg.tablet_alias.as_ref()) {
                    outcome.tablet = Some(alias);
                }
                if let Some(event) = msg.event {
                    outcome.events.push(event.value);
                    if outcome.events.len() > KEEP_EVENTS {
                        outcome.events.remove(0);
                    }
                }
            }
            Ok::<(), Status>(())
        };
        match tokio::time::timeout(remaining, drain).await {
            Ok(Ok(())) => Ok(outcome),
            Ok(Err(status)) => Err(Error::Rejected {
                address: self.address.clone(),
                method: method.to_string(),
                target,
                code: status.code(),
                message: status_message(&status),
            }),
            Err(_) => Err(Error::DeadlineExceeded {
                address: self.address.clone(),
                method: method.to_string(),
                target,
                timeout,
            }),
        }
    }

    /// Runs one RPC within `timeout` (connect and every attempt included), retrying on
    /// UNAVAILABLE when `retry` says the call is safe to repeat.
    async fn call<T, F, Fut>(
        &self,
        method: &'static str,
        target: &str,
        retry: Retry,
        timeout: Duration,
        mut attempt: F,
    ) -> Result<T, Error>
    where
        F: FnMut(VtctldClient<Channel>, Duration) -> Fut,
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        let deadline = Instant::now() + timeout;
        let attempts = async {
            let mut n = 1;
            loop {
                let remaining = deadline.saturating_duration_since(Instant::now());
                let status = match attempt(VtctldClient::new(self.channel.clone()), remaining).await
                {
                    Ok(resp) => return Ok(resp.into_inner()),
                    Err(status) => status,
                };
                if retry == Retry::No || n >= MAX_ATTEMPTS || status.code() != Code::Unavailable {
                    return Err(status);
                }
                let pause = backoff(n);
                if Instant::now() + pause >= deadline {
                    return Err(status);
                }
                tracing::debug!(
                    vtctld = %self.address,
                    method,
                    target,
                    attempt = n,
                    ?pause,
                    error = %status.message(),
                    "vtctld unavailable; retrying"
                );
                tokio::time::sleep(pause).await;
                n += 1;
            }
        };
        let started = Instant::now();
        let result = self
            .finish_call(method, target, timeout, deadline, attempts)
            .await;
        let code = match &result {
            Ok(_) => "OK".to_string(),
            Err(Error::DeadlineExceeded { .. }) => "DeadlineExceeded".to_string(),
            Err(e) => e
                .code()
                .map_or_else(|| "Unknown".into(), |c| format!("{c:?}")),
        };
        crate::observe::finished(method, &code, started.elapsed());
        result
    }

    /// Maps the outcome of [`Vtctld::call`]'s attempts to our errors.
    async fn finish_call<T>(
        &self,
        method: &'static str,
        target: &str,
        timeout: Duration,
        deadline: Instant,
        attempts: impl Future<Output = Result<T, Status>>,
    ) -> Result<T, Error> {
        let (address, method, target) =
            (self.address.clone(), method.to_string(), target.to_string());
        match tokio::time::timeout(timeout, attempts).await {
            Ok(Ok(resp)) => Ok(resp),
            Err(_elapsed) => Err(Error::DeadlineExceeded {
                address,
                method,
                target,
                timeout,
            }),
            Ok(Err(status)) => Err(match status.code() {
                Code::Unavailable => Error::Unavailable {
                    address,
                    method,
                    target,
                    message: status_message(&status),
                },
                // Our deadline ran out on the server's side first (tonic's server answers
                // CANCELLED "Timeout expired"). A DEADLINE_EXCEEDED well before our deadline is
                // vtctld's own verdict (e.g. "PlannedReparent timed out") and stays Rejected,
                // message and all.
                Code::DeadlineExceeded | Code::Cancelled
                    if Instant::now() + DEADLINE_SLACK >= deadline =>
                {
                    Error::DeadlineExceeded {
                        address,
                        method,
                        target,
                        timeout,
                    }
                }
                code => Error::Rejected {
                    address,
                    method,
                    target,
                    code,
                    message: status_message(&status),
                },
            }),
        }
    }
}

/// Whether a call may be sent again after vtctld was unavailable.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Retry {
    Yes,
    No,
}

/// A request carrying its deadline in the `grpc-timeout` header, so vtctld gives up too.
fn request<M>(message: M, timeout: Duration) -> Request<M> {
    let mut req = Request::new(message);
    req.set_timeout(timeout);
    req
}

/// The pause after attempt `n` (1-based): 100 ms doubled per attempt, then between half and all
/// of it, so that clients that failed together do not come back together.
fn backoff(n: u32) -> Duration {
    let full = FIRST_BACKOFF.saturating_mul(1 << (n - 1).min(10));
    let random = RandomState::new().hash_one(Instant::now());
    let half = full / 2;
    let millis = u64::try_from(half.as_millis()).unwrap_or(u64::MAX).max(1);
    half + Duration::from_millis(random % millis)
}

/// The status message, with the transport error under it when there is one (`tcp connect
/// error: Connection refused`).
fn status_message(status: &Status) -> String {
    let mut message = status.message().to_string();
    let mut source = std::error::Error::source(status);
    while let Some(e) = source {
        let text = e.to_string();
        if !message.contains(&text) {
            message = format!("{message}: {text}");
        }
        source = e.source();
    }
    message
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message = format!("{message}: {s}");
        source = s.source();
    }
    message
}

fn keyspace_from_proto(k: vtctldata::Keyspace) -> Keyspace {
    Keyspace {
        name: k.name,
        durability_policy: k.keyspace.map(|r| r.durability_policy).unwrap_or_default(),
    }
}

/// A vttime.Time as a point in time; `None` before the epoch or out of range.
fn time_from_proto(t: &vttime::Time) -> Option<SystemTime> {
    let seconds = u64::try_from(t.seconds).ok()?;
    let nanos = u32::try_from(t.nanoseconds).ok()?;
    UNIX_EPOCH.checked_add(Duration::new(seconds, nanos))
}

/// A point in time as a vttime.Time (the epoch for times before it).
pub fn time_to_proto(t: SystemTime) -> vttime::Time {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    vttime::Time {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanoseconds: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

fn duration_to_proto(d: Duration) -> vttime::Duration {
    vttime::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_display_pads_uid_to_ten_digits() {
        assert_eq!(Alias::new("zone1", 101).to_string(), "zone1-0000000101");
        assert_eq!(
            Alias::new("zone1", u32::MAX).to_string(),
            "zone1-4294967295"
        );
    }

    #[test]
    fn alias_parses_padded_and_short_uids() {
        assert_eq!(
            "zone1-0123456789".parse::<Alias>().unwrap(),
            Alias::new("zone1", 123_456_789)
        );
        assert_eq!(
            "zone1-123".parse::<Alias>().unwrap(),
            Alias::new("zone1", 123)
        );
        assert_eq!(
            "us-east-1a-7".parse::<Alias>().unwrap(),
            Alias::new("us-east-1a", 7)
        );
        for bad in [
            "zone1",
            "-12",
            "zone1-",
            "zone1-x1",
            "zone1-99999999999",
            "zone1-+1",
        ] {
            let err = bad.parse::<Alias>().unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn tablet_type_round_trips_through_the_wire_value() {
        for t in [
            TabletType::Unknown,
            TabletType::Primary,
            TabletType::Replica,
            TabletType::Rdonly,
            TabletType::Spare,
            TabletType::Experimental,
            TabletType::Backup,
            TabletType::Restore,
            TabletType::Drained,
        ] {
            assert_eq!(TabletType::from(t.to_proto()), t);
        }
        assert_eq!(TabletType::from(1).as_str(), "PRIMARY");
        assert_eq!(TabletType::from(3).as_str(), "RDONLY");
        assert_eq!(TabletType::from(99), TabletType::Unknown);
    }

    #[test]
    fn errors_name_the_vtctld_the_rpc_and_the_target() {
        let e = Error::Rejected {
            address: "127.0.0.1:25999".into(),
            method: "PlannedReparentShard".into(),
            target: "commerce/-".into(),
            code: Code::FailedPrecondition,
            message: "primary-elect tablet zone1-0000000102 is not a replica".into(),
        };
        assert_eq!(
            e.to_string(),
            "vtctld 127.0.0.1:25999: PlannedReparentShard commerce/-: FailedPrecondition: \
             primary-elect tablet zone1-0000000102 is not a replica"
        );
        assert!(!e.is_unavailable());
        let e = Error::DeadlineExceeded {
            address: "a:1".into(),
            method: "GetCellInfoNames".into(),
            target: String::new(),
            timeout: Duration::from_millis(300),
        };
        assert_eq!(
            e.to_string(),
            "vtctld a:1: GetCellInfoNames: no answer within 300ms"
        );
        assert!(e.is_unavailable());
    }

    #[test]
    fn not_found_is_about_the_path_asked_for() {
        let rejected = |message: &str| Error::Rejected {
            address: "a:1".into(),
            method: "DeleteKeyspace".into(),
            target: "ks".into(),
            code: Code::Unknown,
            message: message.into(),
        };
        let gone = rejected(
            "failed to lock ks; if you really want to delete this keyspace, re-run with \
             Force=true: node doesn't exist: /vitess/global/keyspaces/ks/",
        );
        assert!(gone.is_not_found_at("keyspaces/ks/"));
        assert!(!gone.is_not_found_at("keyspaces/k/"));
        let no_cells = rejected("node doesn't exist: /vitess/global/cells/");
        assert!(no_cells.is_not_found());
        assert!(!no_cells.is_not_found_at("keyspaces/ks/"));
        assert!(
            rejected("node already exists: /vitess/global/keyspaces/ks/Keyspace")
                .is_already_exists()
        );
    }

    #[test]
    fn tls_debug_hides_the_key() {
        let tls = Tls {
            ca: b"ca".to_vec(),
            cert: Some(b"cert".to_vec()),
            key: Some(b"SECRET".to_vec()),
            server_name: None,
        };
        assert!(!format!("{tls:?}").contains("SECRET"));
    }

    #[test]
    fn backoff_grows_and_stays_jittered_within_bounds() {
        for n in 1..=3 {
            let full = FIRST_BACKOFF * (1 << (n - 1));
            let b = backoff(n);
            assert!(b >= full / 2 && b <= full, "{n}: {b:?}");
        }
    }

    #[tokio::test]
    async fn bad_addresses_are_refused_without_io() {
        for bad in ["", "host", "host:port", ":15999", "a/b:1"] {
            let err = Vtctld::connect_lazy(bad, None).unwrap_err();
            assert!(matches!(err, Error::InvalidAddress { .. }), "{bad}: {err}");
        }
        let c = Vtctld::connect_lazy("http://vtctld.ns.svc:15999", None).unwrap();
        assert_eq!(c.address(), "vtctld.ns.svc:15999");
        assert_eq!(c.timeout(), DEFAULT_TIMEOUT);
    }

    #[test]
    fn a_client_outside_a_runtime_is_an_error_not_a_panic() {
        let err = Vtctld::connect_lazy("a:1", None).unwrap_err();
        assert!(matches!(err, Error::NoRuntime { .. }), "{err}");
    }
}
