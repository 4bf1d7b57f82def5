//! Running the operator under test as a child process.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::paths::{kubeconfig_path, logs_dir, vtctld_addr, workspace_dir};

/// How long [`Operator::stop`] waits after SIGTERM before killing.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// The operator binary running against the e2e cluster. Killed when dropped.
#[derive(Debug)]
pub struct Operator {
    child: Option<Child>,
    log: PathBuf,
    /// How it was started, so that [`Operator::restart`] starts it the same way.
    launch: Launch,
}

/// The command line of an operator process.
#[derive(Clone, Debug)]
struct Launch {
    binary: PathBuf,
    args: Vec<String>,
    /// The cluster DNS `resolv.conf` it sees as `/etc/resolv.conf`, if any.
    resolv: Option<PathBuf>,
}

impl Operator {
    /// The binary to run: `$VITESS_OPERATOR_BIN`, else
    /// `<target dir>/debug/vitess-operator`, the target dir being
    /// `$CARGO_TARGET_DIR` (relative to the workspace) or `<workspace>/target`.
    pub fn binary() -> PathBuf {
        if let Some(p) = std::env::var_os("VITESS_OPERATOR_BIN").filter(|p| !p.is_empty()) {
            return PathBuf::from(p);
        }
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .filter(|p| !p.is_empty())
            .map(|p| workspace_dir().join(p))
            .unwrap_or_else(|| workspace_dir().join("target"));
        target.join("debug/vitess-operator")
    }

    /// Starts [`Operator::binary`] with `args`, `KUBECONFIG` pointing at the e2e
    /// cluster and `VTCTLD_ADDR` set, logging stdout and stderr to
    /// `e2e/.state/logs/operator-<test>.log`.
    pub fn start(test: &str, args: &[&str]) -> Result<Self> {
        Self::start_binary(&Self::binary(), test, args)
    }

    /// Like [`Operator::start`], with cluster DNS: the operator runs in a mount namespace of
    /// its own whose `/etc/resolv.conf` is the real node's cluster DNS (written by
    /// `e2e/cluster up`), so it finds vtctld by its Service name as it does in a pod, and
    /// nothing else on this machine changes.
    pub fn start_with_cluster_dns(test: &str, args: &[&str]) -> Result<Self> {
        let resolv = crate::node::cluster_resolv_conf();
        if !resolv.is_file() {
            bail!(
                "{} does not exist: the real node is not up (`e2e/cluster up`)",
                resolv.display()
            );
        }
        Self::spawn(&Self::binary(), test, args, Some(&resolv))
    }

    /// Like [`Operator::start`] with an explicit binary.
    pub fn start_binary(binary: &Path, test: &str, args: &[&str]) -> Result<Self> {
        Self::spawn(binary, test, args, None)
    }

    fn spawn(binary: &Path, test: &str, args: &[&str], resolv: Option<&Path>) -> Result<Self> {
        if !binary.is_file() {
            bail!(
                "operator binary {} does not exist; build it with `cargo build` or set VITESS_OPERATOR_BIN",
                binary.display()
            );
        }
        let dir = logs_dir();
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let safe: String = test
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let log = dir.join(format!("operator-{safe}.log"));
        let launch = Launch {
            binary: binary.to_path_buf(),
            args: args.iter().map(|a| a.to_string()).collect(),
            resolv: resolv.map(Path::to_path_buf),
        };
        let child = launch.spawn(&log)?;
        Ok(Self {
            child: Some(child),
            log,
            launch,
        })
    }

    /// Kills the operator with SIGKILL, as a crash or an OOM kill would, and reaps it; a
    /// line in its log says so. An operator that had already exited is an error.
    pub fn kill(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            bail!("the operator was not running");
        };
        if let Some(status) = child.try_wait().context("checking the operator process")? {
            bail!(
                "the operator had exited ({status}) before it was killed; see {}",
                self.log.display()
            );
        }
        child.kill().context("killing the operator")?;
        child.wait().context("waiting for the killed operator")?;
        self.note("killed with SIGKILL by the test")
    }

    /// Starts the operator again as it was first started, logging to the same file.
    pub fn restart(&mut self) -> Result<()> {
        if self.child.is_some() {
            bail!("the operator is still running");
        }
        self.note("started again by the test")?;
        self.child = Some(self.launch.spawn(&self.log)?);
        Ok(())
    }

    /// A line of the test's own in the operator's log.
    fn note(&self, what: &str) -> Result<()> {
        use std::io::Write as _;
        let mut log = OpenOptions::new()
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        writeln!(log, "---- e2e: {what} ----")
            .with_context(|| format!("writing {}", self.log.display()))
    }

    /// The operator's log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The log written so far (for assertions and failure messages).
    pub fn log_contents(&self) -> Result<String> {
        std::fs::read_to_string(&self.log)
            .with_context(|| format!("reading {}", self.log.display()))
    }

    /// The operator's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is still running. An operator that exited on its own
    /// is an error worth reporting, so this says how it exited.
    pub fn check_running(&mut self) -> Result<()> {
        let Some(child) = self.child.as_mut() else {
            bail!("the operator was stopped");
        };
        if let Some(status) = child.try_wait().context("checking the operator process")? {
            bail!("the operator exited ({status}); see {}", self.log.display());
        }
        Ok(())
    }

    /// Stops the operator: SIGTERM, then SIGKILL after 10s. Returns an error if
    /// it had already exited unsuccessfully on its own.
    pub async fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if let Some(status) = child.try_wait().context("checking the operator process")? {
            if status.success() {
                return Ok(());
            }
            bail!(
                "the operator had exited ({status}); see {}",
                self.log.display()
            );
        }
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if child
                .try_wait()
                .context("waiting for the operator")?
                .is_some()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        child.kill().context("killing the operator")?;
        child.wait().context("waiting for the killed operator")?;
        Ok(())
    }
}

impl Launch {
    /// Starts the process, appending its stdout and stderr to `log`.
    fn spawn(&self, log: &Path) -> Result<Child> {
        let stdout = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let stderr = stdout
            .try_clone()
            .with_context(|| format!("opening {}", log.display()))?;
        let mut command = match &self.resolv {
            None => Command::new(&self.binary),
            // sh execs the operator, so the child's pid is the operator's.
            Some(resolv) => {
                let mut c = Command::new("unshare");
                c.args(["--mount", "--propagation", "private", "sh", "-c"])
                    .arg(r#"mount --bind "$0" /etc/resolv.conf && exec "$@""#)
                    .arg(resolv)
                    .arg(&self.binary);
                c
            }
        };
        command
            .args(&self.args)
            .env("KUBECONFIG", kubeconfig_path())
            .env("VTCTLD_ADDR", vtctld_addr())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "info");
        }
        command
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_the_binary_with_the_e2e_environment_and_logs_it() {
        let mut op = Operator::start_binary(
            Path::new("/bin/sh"),
            "self-test",
            &[
                "-c",
                "echo \"kubeconfig=$KUBECONFIG vtctld=$VTCTLD_ADDR\"; exec sleep 30",
            ],
        )
        .unwrap();
        let pid = op.pid().unwrap();
        op.check_running().unwrap();
        let expected = format!("kubeconfig={}", kubeconfig_path().display());
        let start = Instant::now();
        while !op.log_contents().unwrap_or_default().contains(&expected) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "log never got the environment line"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        op.stop().await.unwrap();
        assert!(op.pid().is_none());
        // stop() reaped the child, so its /proc entry is gone.
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
    }

    #[tokio::test]
    async fn a_killed_operator_restarts_with_the_same_command_line() {
        let mut op = Operator::start_binary(
            Path::new("/bin/sh"),
            "self-test-kill",
            &["-c", "echo \"started $$\"; exec sleep 30"],
        )
        .unwrap();
        let first = op.pid().unwrap();
        let wait_for_line = async |op: &Operator, line: String| {
            let start = Instant::now();
            loop {
                let log = op.log_contents().unwrap_or_default();
                if log.contains(&line) {
                    return log;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "no {line:?}: {log}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        wait_for_line(&op, format!("started {first}")).await;
        op.kill().unwrap();
        assert!(op.pid().is_none());
        assert!(!Path::new(&format!("/proc/{first}")).exists());
        assert!(op.kill().is_err(), "killing a stopped operator must fail");
        op.restart().unwrap();
        let second = op.pid().unwrap();
        assert_ne!(first, second);
        assert!(
            op.restart().is_err(),
            "a running operator must not start twice"
        );
        let log = wait_for_line(&op, format!("started {second}")).await;
        // In order (the log may hold earlier runs of this test): the first process, the
        // kill, the restart, the second process.
        let first_line = log.find(&format!("started {first}")).unwrap();
        let killed = first_line + log[first_line..].find("killed with SIGKILL").unwrap();
        let again = killed + log[killed..].find("started again").unwrap();
        assert!(log[again..].contains(&format!("started {second}")), "{log}");
        op.stop().await.unwrap();
    }

    #[test]
    fn missing_binary_is_a_clear_error() {
        let err = Operator::start_binary(Path::new("/nonexistent/vitess-operator"), "t", &[])
            .unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }
}
