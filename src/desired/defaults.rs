//! Defaults the operator fills in where the spec is silent. One place, so `render`, the
//! controllers and the README agree.

/// The Vitess release whose images we default to (and whose vtctld the e2e suite runs).
pub const VITESS_IMAGE: &str = "vitess/lite:v24.0.3";
/// MySQL image for the mysql80Compatible flavour.
pub const MYSQLD_IMAGE: &str = "mysql:8.0.40";
/// Prometheus mysqld exporter.
pub const MYSQLD_EXPORTER_IMAGE: &str = "prom/mysqld-exporter:v0.18.0";
/// etcd for lockservers the operator deploys.
pub const ETCD_IMAGE: &str = "quay.io/coreos/etcd:v3.5.17";
/// Client port of etcd.
pub const ETCD_CLIENT_PORT: u16 = 2379;
/// Topology plugin Vitess uses for etcd.
pub const TOPO_IMPLEMENTATION: &str = "etcd2";

/// Peer port of etcd.
pub const ETCD_PEER_PORT: u16 = 2380;
/// Members of an operator-deployed etcd cluster: fewer cannot keep quorum through one loss,
/// more only add latency for Vitess. Changing it would break every existing EtcdLockserver.
pub const ETCD_MEMBERS: u32 = 3;
/// Members that must stay up for etcd to answer (a majority of [`ETCD_MEMBERS`]).
pub const ETCD_QUORUM: i32 = 2;
/// Size of each etcd member's data volume when the spec gives no claim template.
pub const ETCD_STORAGE: &str = "1Gi";
/// etcd member CPU request.
pub const ETCD_CPU: &str = "100m";
/// etcd member memory request and limit.
pub const ETCD_MEMORY: &str = "256Mi";

/// HTTP port of every Vitess server (status pages, health checks, metrics).
pub const WEB_PORT: u16 = 15000;
/// gRPC port of every Vitess server.
pub const GRPC_PORT: u16 = 15999;
/// MySQL protocol port of vtgate and mysqld.
pub const MYSQL_PORT: u16 = 3306;
/// Metrics port of mysqld-exporter.
pub const MYSQLD_EXPORTER_PORT: u16 = 9104;

/// vtctld pods per cell.
pub const VTCTLD_REPLICAS: i32 = 1;
/// vtctld CPU request.
pub const VTCTLD_CPU: &str = "100m";
/// vtctld memory request and limit.
pub const VTCTLD_MEMORY: &str = "128Mi";

/// vtorc CPU request.
pub const VTORC_CPU: &str = "100m";
/// vtorc memory request and limit.
pub const VTORC_MEMORY: &str = "128Mi";

/// vtgate pods per cell: two, so one can restart without the cell losing its query path.
pub const VTGATE_REPLICAS: i32 = 2;
/// vtgate CPU request.
pub const VTGATE_CPU: &str = "500m";
/// vtgate memory request and limit.
pub const VTGATE_MEMORY: &str = "1Gi";

/// vtgate's buffer of queries to a primary during a reparent: at most this many queries...
pub const VTGATE_BUFFER_SIZE: u32 = 1000;
/// ...held at most this long...
pub const VTGATE_BUFFER_MAX_FAILOVER: &str = "10s";
/// ...and a new buffering window no sooner than this after the last.
pub const VTGATE_BUFFER_MIN_BETWEEN: &str = "20s";
/// The largest gRPC message vtgate and vttablet send or take: 64 MiB (the Go operator's value,
/// for large result sets).
pub const GRPC_MAX_MESSAGE_SIZE: u32 = 64 * 1024 * 1024;

/// vttablet's query server, as the Go operator sizes it: connections of the transaction-less
/// and streaming pools, open transactions at once...
pub const VTTABLET_POOL_SIZE: u32 = 96;
pub const VTTABLET_STREAM_POOL_SIZE: u32 = 96;
pub const VTTABLET_TRANSACTION_CAP: u32 = 300;
/// ...the longest a query may run, and the most rows a result may hold.
pub const VTTABLET_QUERY_TIMEOUT: &str = "900s";
pub const VTTABLET_MAX_RESULT_SIZE: u32 = 100_000;
/// Backup files restored at once (vttablet) or written at once (vtbackup).
pub const BACKUP_CONCURRENCY: u32 = 10;
/// CPU and memory requested by a tablet's init containers (short copy and sed scripts), under
/// whatever the pool asks for vttablet.
pub const INIT_CPU_REQUEST: &str = "100m";
pub const INIT_MEMORY_REQUEST: &str = "32Mi";

/// Grace period of tablet pods: long, so mysqld can shut down cleanly (a killed mysqld means
/// crash recovery on the next start).
pub const VTTABLET_TERMINATION_GRACE_SECONDS: i64 = 1800;
/// mysqld-exporter CPU request and limit: it has been seen to run away, so it is capped.
pub const MYSQLD_EXPORTER_CPU_REQUEST: &str = "10m";
pub const MYSQLD_EXPORTER_CPU_LIMIT: &str = "100m";
/// mysqld-exporter memory request and limit.
pub const MYSQLD_EXPORTER_MEMORY_REQUEST: &str = "32Mi";
pub const MYSQLD_EXPORTER_MEMORY_LIMIT: &str = "128Mi";

/// User and group the Vitess images run as (the `vitess` user of vitess/lite).
pub const VITESS_RUN_AS_USER: i64 = 999;
pub const VITESS_FS_GROUP: i64 = 999;

/// The PriorityClass of every Vitess pod (etcd, vtctld, vtgate, vttablet, vtorc, scheduled
/// backups), as the Go operator's `--default_vitess_priority_class`: `config/priority/` ships
/// it. A pod's priorityClassName cannot change, so a takeover of Go-made pods needs the same.
pub const VITESS_PRIORITY_CLASS: &str = "vitess";

static PRIORITY_CLASS: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

/// Sets, once per process and before any pod is built, the PriorityClass Vitess pods get
/// (`--default-vitess-priority-class`; empty: none). A later call changes nothing and says so.
pub fn set_vitess_priority_class(name: &str) -> bool {
    let value = (!name.is_empty()).then(|| name.to_string());
    PRIORITY_CLASS.set(value).is_ok()
}

/// The PriorityClass Vitess pods get: what [`set_vitess_priority_class`] set, else
/// [`VITESS_PRIORITY_CLASS`]. One process-wide value, like the Go operator's flag, so that
/// `render` and the controllers of one invocation agree.
pub fn vitess_priority_class() -> Option<String> {
    PRIORITY_CLASS
        .get_or_init(|| Some(VITESS_PRIORITY_CLASS.to_string()))
        .clone()
}
