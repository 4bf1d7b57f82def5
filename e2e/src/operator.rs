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
        let stdout = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("opening {}", log.display()))?;
        let stderr = stdout
            .try_clone()
            .with_context(|| format!("opening {}", log.display()))?;
        let mut command = match resolv {
            None => Command::new(binary),
            // sh execs the operator, so the child's pid is the operator's.
            Some(resolv) => {
                let mut c = Command::new("unshare");
                c.args(["--mount", "--propagation", "private", "sh", "-c"])
                    .arg(r#"mount --bind "$0" /etc/resolv.conf && exec "$@""#)
                    .arg(resolv)
                    .arg(binary);
                c
            }
        };
        command
            .args(args)
            .env("KUBECONFIG", kubeconfig_path())
            .env("VTCTLD_ADDR", vtctld_addr())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "info");
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        Ok(Self {
            child: Some(child),
            log,
        })
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

    #[test]
    fn missing_binary_is_a_clear_error() {
        let err = Operator::start_binary(Path::new("/nonexistent/vitess-operator"), "t", &[])
            .unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }
}
