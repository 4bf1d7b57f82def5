//! The scale benchmark (a benchmark, not a test: it measures and asserts nothing). On the
//! local control plane, for each size (default 1, 8, 64 and 256 shards of 2 tablets, and 10
//! clusters of 8 shards) it times:
//!
//! - the floor: what `vitess-operator render` prints, applied by a plain client
//!   (`kubectl apply --server-side`), until every object exists and every pod is Ready;
//! - the operator (release build, its own process, its vtctld an in-process fake with a
//!   tablet agent): from `kubectl apply` of the VitessClusters to every object created, every
//!   pod Ready, every cluster Ready and every shard with a primary; the API requests it made
//!   (its own counter on /metrics), its peak RSS and CPU; then a steady window.
//!
//! Results: `e2e/bench/results/<date>.json`, a PNG beside it, and a Markdown table on stdout.
//! Run with `make bench`; flags after `--`: `--sizes 1,8,10x8`, `--steady-seconds N`,
//! `--no-floor`.

mod agent;
mod cluster;
mod observe;
mod process;
mod report;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use kube::Client;
use vitess_operator_e2e::requests;
use vitess_operator_e2e::{
    METRICS_ADDRESS, Operator, TestNamespace, client, http_address, install_crds, kubectl,
    logs_dir, workspace_dir,
};
use vtctld_fake::FakeVtctld;

use cluster::{Expected, Size};
use observe::Observer;
use report::{Floor, OperatorResult, Run, SizeResult};

/// After convergence, late status writes get this long before the steady window starts.
const SETTLE: Duration = Duration::from_secs(10);
/// Deleting a namespace of a few hundred pods takes tens of seconds.
const DELETE_TIMEOUT: Duration = Duration::from_secs(300);

struct Options {
    sizes: Vec<Size>,
    steady: Duration,
    floor: bool,
    out: PathBuf,
}

fn options() -> Result<Options> {
    let mut options = Options {
        sizes: ["1", "8", "64", "256", "10x8"]
            .iter()
            .map(|s| Size::parse(s))
            .collect::<Result<_>>()?,
        steady: Duration::from_secs(120),
        floor: true,
        out: workspace_dir().join("e2e/bench/results"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            // cargo bench passes --bench to every bench binary.
            "--bench" => {}
            "--sizes" => {
                let list = args.next().context("--sizes needs a list, e.g. 1,8,10x8")?;
                options.sizes = list.split(',').map(Size::parse).collect::<Result<_>>()?;
            }
            "--steady-seconds" => {
                let n = args.next().context("--steady-seconds needs a number")?;
                options.steady = Duration::from_secs(n.parse()?);
            }
            "--no-floor" => options.floor = false,
            "--out" => options.out = PathBuf::from(args.next().context("--out needs a dir")?),
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(options)
}

/// The release build of the operator: `$VITESS_OPERATOR_BIN`, else `<target>/release/`.
fn operator_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("VITESS_OPERATOR_BIN").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|p| !p.is_empty())
        .map(|p| workspace_dir().join(p))
        .unwrap_or_else(|| workspace_dir().join("target"));
    target.join("release/vitess-operator")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let options = options()?;
    let binary = operator_binary();
    if !binary.is_file() {
        bail!(
            "{} does not exist: build it with `cargo build --release` (make bench does)",
            binary.display()
        );
    }
    install_crds().await?;
    let client = client().await?;
    let work = std::env::temp_dir().join(format!("vitess-operator-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let mut run = Run {
        started: command_line("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]).await,
        commit: command_line("git", &["describe", "--always", "--dirty"]).await,
        steady_seconds: options.steady.as_secs(),
        sizes: Vec::new(),
    };
    std::fs::create_dir_all(&options.out)?;
    let day = run.started.get(..10).unwrap_or("undated").to_string();
    let json = options.out.join(format!("{day}.json"));
    for size in &options.sizes {
        let label = size.label();
        eprintln!("== {label} shards");
        let file = work.join(format!("cluster-{label}.yaml"));
        std::fs::write(&file, size.yaml())?;
        let expected = match cluster::render(&binary, &file).await {
            Ok(expected) => expected,
            Err(e) => {
                eprintln!("   cannot render {label}: {e:#}");
                continue;
            }
        };
        let mut result = SizeResult {
            size: label.clone(),
            clusters: size.clusters,
            shards: size.shards,
            objects: expected.objects.len(),
            pods: expected.pods,
            ..SizeResult::default()
        };
        if options.floor {
            let floor = floor(&client, size, &expected, &file, &work).await;
            eprintln!("   floor: {:?}", floor.milestones);
            result.floor = Some(floor);
        }
        let operator = operator(&client, size, &expected, &file, &binary, options.steady).await;
        eprintln!(
            "   operator: {:?}, {} requests, peak RSS {:.0} MiB{}",
            operator.milestones,
            operator.requests_total,
            operator.peak_rss_mib,
            operator
                .error
                .as_deref()
                .map(|e| format!("; {e}"))
                .unwrap_or_default()
        );
        result.ratio_to_floor = match (
            operator.ready(),
            result.floor.as_ref().and_then(Floor::ready),
        ) {
            (Some(op), Some(floor)) if floor > 0.0 => Some(op / floor),
            _ => None,
        };
        result.operator = Some(operator);
        run.sizes.push(result);
        // After every size, so that an interrupted run keeps what it measured.
        report::write_json(&run, &json)?;
    }
    let png = options.out.join(format!("{day}.png"));
    if let Err(e) = report::plot(&run, &png) {
        eprintln!("warning: no plot: {e:#}");
    }
    let _ = std::fs::remove_dir_all(&work);
    println!("{}", report::table(&run));
    println!("results: {}\nplot:    {}", json.display(), png.display());
    Ok(())
}

/// How long to wait for a size to converge before giving up on it.
fn timeout_for(size: &Size) -> Duration {
    Duration::from_secs(120 + 2 * size.total_shards() as u64)
}

/// The floor: the rendered objects (and the user's Secrets) applied by kubectl.
async fn floor(
    client: &Client,
    size: &Size,
    expected: &Expected,
    cluster_file: &Path,
    work: &Path,
) -> Floor {
    let mut floor = Floor::default();
    let result = async {
        let ns =
            TestNamespace::create_in(client, "bench", &format!("floor-{}", size.label())).await?;
        // The Secrets the clusters name, then every object render prints.
        let user = std::fs::read_to_string(cluster_file)?;
        let mut text: String = user
            .split("---\n")
            .filter(|d| d.contains("kind: Secret"))
            .collect::<Vec<_>>()
            .join("---\n");
        text.push_str("---\n");
        text.push_str(&expected.rendered);
        let file = work.join(format!("floor-{}.yaml", size.label()));
        std::fs::write(&file, text)?;
        let observer = Observer::start(client, ns.name(), expected.clone(), false);
        tokio::time::sleep(Duration::from_secs(1)).await;
        observer.start_clock();
        let started = Instant::now();
        let applied = kubectl(&[
            "apply",
            "--server-side",
            "-n",
            ns.name(),
            "-f",
            &file.to_string_lossy(),
        ])
        .await;
        floor.apply_seconds = started.elapsed().as_secs_f64();
        applied?;
        let converged = observer.wait_converged(timeout_for(size), || Ok(())).await;
        floor.milestones = observer.milestones();
        observer.stop();
        ns.delete(DELETE_TIMEOUT).await?;
        converged
    }
    .await;
    if let Err(e) = result {
        floor.error = Some(format!("{e:#}"));
    }
    floor
}

/// The operator's run of one size.
async fn operator(
    client: &Client,
    size: &Size,
    expected: &Expected,
    cluster_file: &Path,
    binary: &Path,
    steady: Duration,
) -> OperatorResult {
    let mut out = OperatorResult::default();
    if let Err(e) = measure(
        client,
        size,
        expected,
        cluster_file,
        binary,
        steady,
        &mut out,
    )
    .await
    {
        out.error = Some(format!("{e:#}"));
    }
    out
}

async fn measure(
    client: &Client,
    size: &Size,
    expected: &Expected,
    cluster_file: &Path,
    binary: &Path,
    steady: Duration,
    out: &mut OperatorResult,
) -> Result<()> {
    let fake = Arc::new(FakeVtctld::start(([127, 0, 0, 1], 0).into()).await?);
    let ns = TestNamespace::create_in(client, "bench", &format!("op-{}", size.label())).await?;
    let vtctld = format!("*={}", fake.local_addr());
    // The log is appended to, and its first `serving /metrics` line is the address read.
    let log_name = format!("bench-{}", size.label());
    let _ = std::fs::remove_file(logs_dir().join(format!("operator-{log_name}.log")));
    let mut operator = Operator::start_binary(
        binary,
        &format!("bench-{}", size.label()),
        &[
            "run",
            "--namespace",
            ns.name(),
            "--vtctld-address",
            &vtctld,
            METRICS_ADDRESS,
        ],
    )?;
    let pid = operator.pid().context("the operator is not running")?;
    let metrics = http_address(&mut operator).await?;
    // Its watches are listed and established before the clock starts.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let observer = Observer::start(client, ns.name(), expected.clone(), true);
    let agent = agent::start(client.clone(), ns.name(), fake.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = requests::requests(&metrics).await?;
    let cpu_before = process::cpu_seconds(pid)?;
    observer.start_clock();
    let result = async {
        kubectl(&[
            "apply",
            "--server-side",
            "-n",
            ns.name(),
            "-f",
            &cluster_file.to_string_lossy(),
        ])
        .await?;
        let mut last = Instant::now();
        observer
            .wait_converged(timeout_for(size), || {
                if last.elapsed() > Duration::from_secs(15) {
                    eprintln!("   ... {}", observer.progress());
                    last = Instant::now();
                }
                operator.check_running()
            })
            .await?;
        out.milestones = observer.milestones();
        tokio::time::sleep(SETTLE).await;
        let converged = requests::requests(&metrics).await?;
        let cpu_converged = process::cpu_seconds(pid)?;
        let during = requests::delta(&before, &converged);
        out.requests_by_verb = requests::by_verb(&during);
        out.requests_by_resource = during
            .iter()
            .map(|((verb, resource), n)| (format!("{verb} {resource}"), *n))
            .collect();
        out.requests_total = during.values().sum();
        out.requests_per_object = out.requests_total as f64 / expected.objects.len().max(1) as f64;
        out.cpu_seconds_converge = cpu_converged - cpu_before;

        eprintln!("   converged; steady for {}s", steady.as_secs());
        observer.reset_changes();
        tokio::time::sleep(steady).await;
        let after = requests::requests(&metrics).await?;
        let quiet = requests::delta(&converged, &after);
        let minutes = steady.as_secs_f64() / 60.0;
        out.steady_requests_by_verb = requests::by_verb(&quiet);
        out.steady_mutating_requests_per_minute = requests::mutating(&quiet) as f64 / minutes;
        out.steady_object_changes_per_minute = observer.changes() as f64 / minutes;
        out.cpu_seconds_steady = process::cpu_seconds(pid)? - cpu_converged;
        anyhow::Ok(())
    }
    .await;
    if out.milestones.created.is_none() {
        out.milestones = observer.milestones();
    }
    if let Ok((peak, rss)) = process::memory_mib(pid) {
        out.peak_rss_mib = peak;
        out.rss_mib = rss;
    }
    let mut calls: BTreeMap<String, usize> = BTreeMap::new();
    for call in fake.calls() {
        *calls.entry(call.method).or_default() += 1;
    }
    out.vtctld_calls = calls;
    operator.stop().await?;
    agent.abort();
    observer.stop();
    ns.delete(DELETE_TIMEOUT).await?;
    result
}

/// The first line a command prints, or `unknown`.
async fn command_line(program: &str, args: &[&str]) -> String {
    let output = tokio::process::Command::new(program)
        .args(args)
        .current_dir(workspace_dir())
        .output()
        .await;
    match output {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        _ => "unknown".into(),
    }
}
