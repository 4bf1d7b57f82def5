//! `vitess-operator`: the command line. Each subcommand is a thin shell over a library module.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use vitess_operator::{
    cli::crd, cli::render, cli::validate, controller, k8s::requests, process::operate, vitess,
};

/// A Kubernetes operator for Vitess, compatible with the planetscale.com/v2 API.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// PriorityClass of every Vitess pod (`config/priority/` ships `vitess`); empty: none. As
    /// the Go operator's --default_vitess_priority_class, which a takeover must match.
    #[arg(
        long,
        global = true,
        default_value = vitess_operator::desired::defaults::VITESS_PRIORITY_CLASS
    )]
    default_vitess_priority_class: String,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controllers against the cluster kubectl would talk to (KUBECONFIG, in-cluster
    /// service account, ...) until SIGTERM or SIGINT.
    Run {
        /// Watch and manage only this namespace (default: all namespaces).
        #[arg(long)]
        namespace: Option<String>,
        /// Where a cluster's vtctld gRPC port is, when the operator cannot use the in-cluster
        /// Service address (`<vtctld service>.<namespace>.svc:15999`), e.g. when it runs
        /// outside Kubernetes: `NAMESPACE/CLUSTER=HOST:PORT`, or `*=HOST:PORT` for every
        /// cluster. Repeatable.
        #[arg(long = "vtctld-address", value_name = "NAMESPACE/CLUSTER=HOST:PORT")]
        vtctld_addresses: Vec<String>,
        /// How often every backup location's backups are listed through vtctld, in seconds.
        #[arg(long = "backup-list-period-seconds", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
        backup_list_period_seconds: u64,
        /// Logs, HTTP endpoints, leader election.
        #[command(flatten)]
        operate: operate::Options,
    },
    /// Print every CustomResourceDefinition as YAML (or write one file per CRD with --out-dir).
    Crd {
        /// Write `<plural>.planetscale.com.yaml` files into this directory instead of printing.
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
    /// Check YAML files offline: the CRD schema and CEL rules, plus what a schema cannot
    /// express. Prints one line per problem and exits 1 if there is any; a `warning:` line
    /// (accepted, but it works otherwise than in the Go operator) does not fail.
    Validate {
        /// YAML files (multi-document); `-` reads standard input.
        #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
        files: Vec<PathBuf>,
    },
    /// Print, offline, every object the operator would create for the VitessClusters in FILE.
    Render {
        /// A YAML file (multi-document); `-` reads standard input.
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    vitess_operator::desired::defaults::set_vitess_priority_class(
        &cli.default_vitess_priority_class,
    );
    match cli.command {
        Command::Run {
            namespace,
            vtctld_addresses,
            backup_list_period_seconds,
            operate,
        } => report(run(
            namespace,
            &vtctld_addresses,
            Duration::from_secs(backup_list_period_seconds),
            &operate,
        )),
        Command::Crd { out_dir } => {
            let result = match out_dir {
                Some(dir) => crd::write_dir(&dir),
                None => crd::all_to_yaml().map(|text| print!("{text}")),
            };
            report(result.map(|()| ExitCode::SUCCESS))
        }
        Command::Validate { files } => {
            let problems = validate::run(&files);
            for problem in &problems {
                println!("{problem}");
            }
            if !problems.iter().any(validate::Problem::is_error) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Command::Render { file } => report(render::run(&file).map(|text| {
            print!("{text}");
            ExitCode::SUCCESS
        })),
    }
}

#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot connect to Kubernetes: {0}")]
    Client(#[from] requests::Error),
    #[error(transparent)]
    Operate(#[from] operate::Error),
    #[error("--vtctld-address: {0}")]
    Vtctld(vitess::Error),
}

/// `vitess-operator run`: logs (RUST_LOG, default info), HTTP endpoints, then every controller
/// (with `--leader-elect`, only while this process leads).
fn run(
    namespace: Option<String>,
    vtctld_addresses: &[String],
    backup_list_period: Duration,
    operate: &operate::Options,
) -> Result<ExitCode, RunError> {
    let endpoints = vitess::Endpoints::parse(vtctld_addresses).map_err(RunError::Vtctld)?;
    operate::init_logs(operate.log_format)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(RunError::Runtime)?;
    runtime.block_on(async {
        let client = requests::counted_client().await?;
        tracing::info!(
            namespace = namespace.as_deref().unwrap_or("(all)"),
            "starting controllers"
        );
        let controllers = controller::run(
            client.clone(),
            namespace.clone(),
            vitess::Clients::new(endpoints),
            backup_list_period,
        );
        operate::supervise(operate, client, namespace.as_deref(), controllers).await?;
        tracing::info!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// Turns an error into a message on stderr and exit code 2 (1 is reserved for "invalid input").
fn report<E: std::fmt::Display>(result: Result<ExitCode, E>) -> ExitCode {
    result.unwrap_or_else(|err| {
        eprintln!("vitess-operator: {err}");
        ExitCode::from(2)
    })
}
