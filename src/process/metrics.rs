//! Prometheus metrics of the `run` process, served on `/metrics` by [`crate::process::http`].
//!
//! One [`Metrics`] per process ([`global`]), so that any module records into it without the
//! registry being threaded through every call: the controllers record reconciles (in
//! `controller::report` and `controller::error_policy`), the [`ReconcileTimer`] tracing layer
//! records how long each `reconcile` span lasted, and [`crate::k8s::leader`] says whether this
//! process leads. The vtctld, drain and backup hooks ([`Metrics::vtctld_call`],
//! [`Metrics::set_drains_in_progress`], [`Metrics::set_last_backup`]) are registered now so
//! that dashboards can be written against stable names; the modules that talk to Vitess call
//! them.

use std::sync::OnceLock;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tracing::span;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// Every metric name starts with this (`vitess_operator_reconciles_total`, ...).
const PREFIX: &str = "vitess_operator";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot encode the metrics: {0}")]
    Encode(#[from] std::fmt::Error),
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    kind: String,
    /// `success` or `error`.
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    kind: String,
    /// The error's category (the variant of `controller::Error`: `build`, `apply`, ...).
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    /// The gRPC method, e.g. `GetTablets`.
    method: String,
    /// `ok` or the gRPC status code name.
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, ...
    verb: String,
    /// `pods`, `vitessshards/status`, ... (`nonresource` for `/version` and discovery).
    resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ShardLabels {
    namespace: String,
    /// The VitessShard's name.
    shard: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn seconds_buckets() -> Histogram {
    // 5 ms .. ~82 s: an apply round-trip to a slow API server, or a vtctld reparent.
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

/// The operator's metrics and the registry that serves them.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ResultLabels, Counter>,
    errors: Family<ReasonLabels, Counter>,
    reconcile_duration: HistogramFamily<KindLabels>,
    vtctld_calls: HistogramFamily<CallLabels>,
    kube_requests: Family<RequestLabels, Counter>,
    drains_in_progress: Family<ShardLabels, Gauge>,
    last_backup: Family<ShardLabels, Gauge<f64, AtomicU64>>,
    leader: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix(PREFIX);
        let reconciles = Family::<ResultLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles finished, by kind and result (success or error)",
            reconciles.clone(),
        );
        let errors = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Failed reconciles, by kind and reason",
            errors.clone(),
        );
        let reconcile_duration: HistogramFamily<KindLabels> =
            Family::new_with_constructor(seconds_buckets);
        registry.register(
            "reconcile_duration_seconds",
            "Wall time of one reconcile, by kind",
            reconcile_duration.clone(),
        );
        let vtctld_calls: HistogramFamily<CallLabels> =
            Family::new_with_constructor(seconds_buckets);
        registry.register(
            "vtctld_call_duration_seconds",
            "Latency of gRPC calls to vtctld, by method and status code",
            vtctld_calls.clone(),
        );
        let kube_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "kube_requests",
            "Kubernetes API requests sent, by verb and resource",
            kube_requests.clone(),
        );
        let drains_in_progress = Family::<ShardLabels, Gauge>::default();
        registry.register(
            "drains_in_progress",
            "Tablet pods of a shard whose drain was acknowledged and is not finished",
            drains_in_progress.clone(),
        );
        let last_backup = Family::<ShardLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "last_backup_timestamp_seconds",
            "Unix time of the newest complete backup of a shard (age: time() - this)",
            last_backup.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this process runs the controllers (leads, or leader election is off)",
            leader.clone(),
        );
        Self {
            registry,
            reconciles,
            errors,
            reconcile_duration,
            vtctld_calls,
            kube_requests,
            drains_in_progress,
            last_backup,
            leader,
        }
    }

    /// A reconcile of `kind` succeeded.
    pub fn reconciled(&self, kind: &str) {
        self.reconciles
            .get_or_create(&ResultLabels {
                kind: kind.into(),
                result: "success".into(),
            })
            .inc();
    }

    /// A reconcile of `kind` failed for `reason`.
    pub fn failed(&self, kind: &str, reason: &str) {
        self.reconciles
            .get_or_create(&ResultLabels {
                kind: kind.into(),
                result: "error".into(),
            })
            .inc();
        self.errors
            .get_or_create(&ReasonLabels {
                kind: kind.into(),
                reason: reason.into(),
            })
            .inc();
    }

    /// One reconcile of `kind` took `elapsed`.
    pub fn reconcile_took(&self, kind: &str, elapsed: Duration) {
        self.reconcile_duration
            .get_or_create(&KindLabels { kind: kind.into() })
            .observe(elapsed.as_secs_f64());
    }

    /// One gRPC call to vtctld: `method` (e.g. `PlannedReparentShard`), `code` (`ok` or the
    /// status code's name) and how long it took.
    pub fn vtctld_call(&self, method: &str, code: &str, elapsed: Duration) {
        self.vtctld_calls
            .get_or_create(&CallLabels {
                method: method.into(),
                code: code.into(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// One Kubernetes API request of `verb` on `resource` was sent.
    pub fn kube_request(&self, verb: &str, resource: &str) {
        self.kube_requests
            .get_or_create(&RequestLabels {
                verb: verb.into(),
                resource: resource.into(),
            })
            .inc();
    }

    /// How many drains of `namespace/shard` are under way now.
    pub fn set_drains_in_progress(&self, namespace: &str, shard: &str, drains: i64) {
        self.drains_in_progress
            .get_or_create(&ShardLabels {
                namespace: namespace.into(),
                shard: shard.into(),
            })
            .set(drains);
    }

    /// The newest complete backup of `namespace/shard` was taken at `unix_seconds`.
    pub fn set_last_backup(&self, namespace: &str, shard: &str, unix_seconds: f64) {
        self.last_backup
            .get_or_create(&ShardLabels {
                namespace: namespace.into(),
                shard: shard.into(),
            })
            .set(unix_seconds);
    }

    /// Whether this process runs the controllers now.
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// Everything, in the Prometheus text format (OpenMetrics).
    pub fn encode(&self) -> Result<String, Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// The process' metrics.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        // The vtctld client tells of its calls through a hook; they land here.
        vtctld_client::observe::set_observer(|method, outcome, elapsed| {
            global().vtctld_call(method, outcome, elapsed);
        });
        Metrics::new()
    })
}

/// The kind the controller whose module path is `target` reconciles, so that the duration
/// histogram has the same `kind` label values as the counters (which take the kind from the
/// object). The controller is the module right under `controller::`, so a pipeline step in a
/// submodule (`controller::shard::status`) counts as its controller; an unknown module is its
/// own label.
fn kind_of_target(target: &str) -> &str {
    let module = match target.split_once("controller::") {
        Some((_, rest)) => rest.split("::").next().unwrap_or(rest),
        None => target.rsplit("::").next().unwrap_or(target),
    };
    match module {
        "cluster" => "VitessCluster",
        "cell" => "VitessCell",
        "keyspace" => "VitessKeyspace",
        "shard" => "VitessShard",
        "etcd" => "EtcdLockserver",
        "backupstorage" => "VitessBackupStorage",
        "backup" => "VitessBackup",
        other => other,
    }
}

/// A tracing layer that times the controllers' `reconcile` spans (each controller's
/// `reconcile` is `#[tracing::instrument]`ed) and records the wall time per kind, the kind
/// being the module that owns the span (`vitess_operator::controller::shard` -> `VitessShard`).
/// Timing spans keeps the controllers free of metrics code. Install it without a level filter
/// (a quiet `RUST_LOG` must not turn the histogram off).
#[derive(Debug, Default)]
pub struct ReconcileTimer;

struct Started(Instant);

impl<S> Layer<S> for ReconcileTimer
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != "reconcile" {
            return;
        }
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Started(Instant::now()));
        }
    }

    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else {
            return;
        };
        let Some(started) = span.extensions().get::<Started>().map(|s| s.0) else {
            return;
        };
        let kind = kind_of_target(span.metadata().target());
        global().reconcile_took(kind, started.elapsed());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn counts_reconciles_errors_and_hooks_by_label() {
        let metrics = Metrics::new();
        metrics.reconciled("VitessShard");
        metrics.reconciled("VitessShard");
        metrics.failed("VitessCell", "apply");
        metrics.reconcile_took("VitessShard", Duration::from_millis(20));
        metrics.vtctld_call("GetTablets", "ok", Duration::from_millis(3));
        metrics.set_drains_in_progress("ns", "example-commerce-x-x-0f5afee6", 1);
        metrics.set_last_backup("ns", "example-commerce-x-x-0f5afee6", 1.7e9);
        metrics.set_leader(true);
        metrics.kube_request("patch", "pods");
        let text = metrics.encode().unwrap();
        for line in [
            r#"vitess_operator_reconciles_total{kind="VitessShard",result="success"} 2"#,
            r#"vitess_operator_reconciles_total{kind="VitessCell",result="error"} 1"#,
            r#"vitess_operator_reconcile_errors_total{kind="VitessCell",reason="apply"} 1"#,
            r#"vitess_operator_reconcile_duration_seconds_count{kind="VitessShard"} 1"#,
            r#"vitess_operator_vtctld_call_duration_seconds_count{method="GetTablets",code="ok"} 1"#,
            r#"vitess_operator_drains_in_progress{namespace="ns",shard="example-commerce-x-x-0f5afee6"} 1"#,
            r#"vitess_operator_last_backup_timestamp_seconds{namespace="ns",shard="example-commerce-x-x-0f5afee6"} 1700000000.0"#,
            "vitess_operator_leader 1",
            r#"vitess_operator_kube_requests_total{verb="patch",resource="pods"} 1"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }

    /// Every controller's reconcile is timed under the kind its counters use (the backup and
    /// backup storage controllers were once labelled by module name).
    #[test]
    fn every_controller_module_is_timed_under_its_kind() {
        for (target, kind) in [
            ("vitess_operator::controller::cluster", "VitessCluster"),
            ("vitess_operator::controller::cell", "VitessCell"),
            ("vitess_operator::controller::keyspace", "VitessKeyspace"),
            ("vitess_operator::controller::shard", "VitessShard"),
            ("vitess_operator::controller::shard::status", "VitessShard"),
            ("vitess_operator::controller::etcd", "EtcdLockserver"),
            (
                "vitess_operator::controller::backupstorage",
                "VitessBackupStorage",
            ),
            ("vitess_operator::controller::backup", "VitessBackup"),
        ] {
            assert_eq!(kind_of_target(target), kind, "{target}");
        }
    }

    #[test]
    fn times_reconcile_spans_by_module() {
        let subscriber = tracing_subscriber::registry().with(ReconcileTimer);
        tracing::subscriber::with_default(subscriber, || {
            let span =
                tracing::info_span!(target: "vitess_operator::controller::etcdtest", "reconcile");
            drop(span.enter());
            drop(span);
            let other =
                tracing::info_span!(target: "vitess_operator::controller::etcdtest", "other");
            drop(other);
        });
        let text = global().encode().unwrap();
        assert!(
            text.contains(r#"vitess_operator_reconcile_duration_seconds_count{kind="etcdtest"} 1"#),
            "{text}"
        );
    }
}
