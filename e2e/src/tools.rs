//! Running the command-line tools a user would run (kubectl and vtctldclient), and the e2e
//! cluster's own script for what a test does to the control plane.

use std::process::Stdio;

use anyhow::{Context, Result, bail};
use tokio::io::AsyncWriteExt;

use crate::paths::{kubeconfig_path, tool_path, vtctld_addr};

/// Runs `kubectl --kubeconfig <e2e kubeconfig> <args>` and returns its stdout.
/// Fails (with stderr in the message) if kubectl exits non-zero.
pub async fn kubectl(args: &[&str]) -> Result<String> {
    kubectl_with_stdin(args, None).await
}

/// Like [`kubectl`], feeding `stdin` to the command (e.g. `apply -f -`).
pub async fn kubectl_with_stdin(args: &[&str], stdin: Option<&str>) -> Result<String> {
    let kubeconfig = kubeconfig_path();
    let mut full: Vec<&str> = vec!["--kubeconfig"];
    let kubeconfig = kubeconfig.to_string_lossy();
    full.push(&kubeconfig);
    full.extend_from_slice(args);
    run("kubectl", &full, stdin).await
}

/// Runs `vtctldclient --server <vtctld_addr()> <args>` and returns its stdout.
pub async fn vtctldclient(args: &[&str]) -> Result<String> {
    let addr = vtctld_addr();
    let mut full: Vec<&str> = vec!["--server", &addr, "--action-timeout", "30s"];
    full.extend_from_slice(args);
    run("vtctldclient", &full, None).await
}

/// Kills a component of the local control plane (`etcd`, `kube-apiserver`, ...) with SIGKILL
/// and starts it again (`e2e/cluster crash`); returns once it is healthy again.
pub async fn crash_component(component: &str) -> Result<()> {
    let script = crate::paths::e2e_dir().join("cluster");
    run_program(&script, &["crash", component], None)
        .await
        .map(|_| ())
}

async fn run(tool: &str, args: &[&str], stdin: Option<&str>) -> Result<String> {
    run_program(&tool_path(tool), args, stdin).await
}

async fn run_program(
    program: &std::path::Path,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<String> {
    let shown = format!("{} {}", program.display(), args.join(" "));
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| {
            format!("starting `{shown}` (is the e2e cluster built? run `e2e/cluster up`)")
        })?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes())
            .await
            .with_context(|| format!("writing stdin of `{shown}`"))?;
        drop(pipe);
    }
    let out = child
        .wait_with_output()
        .await
        .with_context(|| format!("waiting for `{shown}`"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "`{shown}` failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            stdout
        );
    }
    Ok(stdout)
}
