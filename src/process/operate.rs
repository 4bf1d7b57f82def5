//! How the `run` process is operated: its logs (text or JSON), its HTTP endpoints
//! ([`crate::process::http`]) and, with `--leader-elect`, leader election ([`crate::k8s::leader`]) around
//! the controllers.
//!
//! Logs never carry a secret: the operator logs object references, field paths and API
//! errors, never the kubeconfig, tokens, or the contents of Secrets (it does not read them).

use std::future::Future;
use std::io::IsTerminal;

use kube::Client;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::{k8s::leader, process::http, process::metrics};

/// The default Lease name (the Go operator's is per-namespace too).
pub const DEFAULT_LEASE: &str = "vitess-operator-leader";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Http(#[from] http::Error),
    #[error(transparent)]
    Leader(#[from] leader::Error),
    #[error("cannot reach the API server: {0}")]
    Connect(Box<kube::Error>),
    #[error("cannot set up logging: {0}")]
    Logs(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event (colours only at a terminal).
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The `run` flags of this module.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Log format; the level comes from RUST_LOG (default info).
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Serve /metrics, /healthz and /readyz here (`127.0.0.1:0` picks a free port; the
    /// address bound is logged).
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_address: String,
    /// Run the controllers only while holding a Lease, so several replicas can run.
    #[arg(long)]
    pub leader_elect: bool,
    /// Namespace of the Lease (default: --namespace, else `default`).
    #[arg(long)]
    pub leader_election_namespace: Option<String>,
    /// Name of the Lease.
    #[arg(long, default_value = DEFAULT_LEASE)]
    pub leader_election_lease_name: String,
}

/// Installs the global logger: the format asked for, the level from RUST_LOG (default
/// info), plus the reconcile timer of [`metrics`], which sees the `reconcile` spans whatever
/// the level.
pub fn init_logs(format: LogFormat) -> Result<(), Error> {
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
    };
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match format {
        // Colours only for a person at a terminal; log files and collectors get plain text.
        LogFormat::Text => fmt
            .with_ansi(std::io::stderr().is_terminal())
            .with_filter(filter())
            .boxed(),
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_filter(filter())
            .boxed(),
    };
    // The timer sees only the `reconcile` spans: unfiltered, it would enable every trace-level
    // callsite of hyper and kube for the whole process.
    let timer = metrics::ReconcileTimer.with_filter(tracing_subscriber::filter::filter_fn(|m| {
        m.is_span() && m.name() == "reconcile"
    }));
    tracing_subscriber::registry()
        .with(fmt)
        .with(timer)
        .try_init()
        .map_err(|e| Error::Logs(e.to_string()))
}

/// Serves the HTTP endpoints, then runs `controllers` — at once, or with `--leader-elect`
/// only while this process leads. `controllers` must end by itself on SIGTERM/SIGINT.
pub async fn supervise<F>(
    options: &Options,
    client: Client,
    namespace: Option<&str>,
    controllers: F,
) -> Result<(), Error>
where
    F: Future<Output = ()>,
{
    let health = http::Health::new();
    let (listener, address) = http::bind(&options.metrics_address).await?;
    tracing::info!(%address, "serving /metrics, /healthz and /readyz");
    tokio::spawn(http::serve(listener, health.clone()));

    client
        .apiserver_version()
        .await
        .map_err(|e| Error::Connect(Box::new(e)))?;
    health.set_connected();

    if !options.leader_elect {
        metrics::global().set_leader(true);
        health.set_leader_known();
        controllers.await;
        return Ok(());
    }
    let lease_namespace = options
        .leader_election_namespace
        .as_deref()
        .or(namespace)
        .unwrap_or("default");
    let identity = leader::Elector::default_identity();
    let mut elector = leader::Elector::new(
        client,
        lease_namespace,
        &options.leader_election_lease_name,
        &identity,
    );
    let outcome = elector
        .run(controllers, |leading| {
            metrics::global().set_leader(leading);
            health.set_leader_known();
        })
        .await?;
    tracing::debug!(?outcome, "leader election ended");
    Ok(())
}
