//! Operating the operator under test: its HTTP endpoints, its identity (a ServiceAccount
//! token kubeconfig) and its leader-election Lease.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{Operator, kubeconfig_path, kubectl, state_dir, wait_for};

/// The address the operator logged it serves /metrics on (`--metrics-address=127.0.0.1:0`
/// picks a free port), waiting up to 30 s for the line. The last such line: the log file is
/// appended to by every start (an earlier run of the test, a restart), each on a new port.
pub async fn http_address(operator: &mut Operator) -> Result<String> {
    wait_for(
        "the operator to log its HTTP address",
        Duration::from_secs(30),
        async |seen: &mut String| {
            operator.check_running()?;
            let log = operator.log_contents().unwrap_or_default();
            let found = log
                .lines()
                .rev()
                .filter(|l| l.contains("serving /metrics"))
                .find_map(|l| {
                    // --log-format json: "address":"127.0.0.1:1234"
                    l.split("address=")
                        .nth(1)
                        .or_else(|| l.split("\"address\":\"").nth(1))
                })
                .map(|rest| {
                    rest.chars()
                        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                        .collect::<String>()
                });
            *seen = format!("{} log lines", log.lines().count());
            Ok(found.filter(|a| !a.is_empty()))
        },
    )
    .await
}

/// `GET path` on `address`: the status code and the body. The request asks the server to
/// close the connection (so the body ends where the stream does), and the whole exchange has
/// 10 s: a server that keeps it open fails the call instead of hanging the test.
pub async fn http_get(address: &str, path: &str) -> Result<(u16, String)> {
    exchange(
        address,
        format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"),
        Duration::from_secs(10),
    )
    .await
}

/// `method path` on `address` with a body (`content_type`; empty for none): the status code
/// and the body. HTTP/1.0, so the reply is never chunked; 30 s for the whole exchange.
pub async fn http_request(
    address: &str,
    method: &str,
    path: &str,
    content_type: &str,
    body: &str,
) -> Result<(u16, String)> {
    exchange(
        address,
        format!(
            "{method} {path} HTTP/1.0\r\nHost: {address}\r\nContent-Type: {content_type}\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        ),
        Duration::from_secs(30),
    )
    .await
}

/// Sends `request` to `address` and reads the reply until the server closes the connection,
/// within `timeout`: its status code and body.
async fn exchange(address: &str, request: String, timeout: Duration) -> Result<(u16, String)> {
    let line = request.lines().next().unwrap_or_default().to_string();
    let talk = async {
        let mut stream = tokio::net::TcpStream::connect(address)
            .await
            .with_context(|| format!("connecting to {address}"))?;
        stream.write_all(request.as_bytes()).await?;
        let mut out = String::new();
        stream.read_to_string(&mut out).await?;
        anyhow::Ok(out)
    };
    let out = tokio::time::timeout(timeout, talk)
        .await
        .with_context(|| format!("{line} on {address} took more than {timeout:?}"))??;
    let code = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("no HTTP status in {out:?}"))?;
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Ok((code, body.to_string()))
}

/// A kubeconfig that authenticates as ServiceAccount `namespace/name` with a token from
/// `kubectl create token` (the real identity, checked by RBAC like a pod's), written to
/// `e2e/.state/kubeconfig-<namespace>-<name>`.
pub async fn service_account_kubeconfig(namespace: &str, name: &str) -> Result<PathBuf> {
    let token = kubectl(&["create", "token", name, "-n", namespace, "--duration=1h"]).await?;
    let token = token.trim();
    let admin = std::fs::read_to_string(kubeconfig_path())
        .with_context(|| format!("reading {}", kubeconfig_path().display()))?;
    let mut config: serde_json::Value =
        serde_saphyr::from_str(&admin).context("parsing the admin kubeconfig")?;
    let cluster = config["clusters"][0].clone();
    if cluster.is_null() {
        bail!("the admin kubeconfig has no cluster");
    }
    config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{
            "name": name,
            "context": {"cluster": cluster["name"], "user": name, "namespace": namespace},
        }],
        "current-context": name,
    });
    let path = state_dir().join(format!("kubeconfig-{namespace}-{name}"));
    // JSON is YAML; kubeconfig readers take either.
    std::fs::write(&path, serde_json::to_string_pretty(&config)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// The holder of Lease `namespace/name` (None: no lease, or released).
pub async fn lease_holder(client: &Client, namespace: &str, name: &str) -> Result<Option<String>> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), namespace);
    Ok(leases
        .get_opt(name)
        .await?
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .filter(|h| !h.is_empty()))
}

/// The leader-election identity of an operator started on this machine: `<hostname>_<pid>`.
pub fn identity_of(operator: &Operator) -> Result<String> {
    let pid = operator.pid().context("the operator is not running")?;
    let host =
        std::fs::read_to_string("/proc/sys/kernel/hostname").context("reading the hostname")?;
    Ok(format!("{}_{pid}", host.trim()))
}

/// Whether `path` is an ELF executable without a program interpreter (statically linked).
pub fn is_static_elf(path: &Path) -> Result<bool> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 {
        bail!("{} is not a 64-bit ELF file", path.display());
    }
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    let u64_at = |o: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[o..o + 8]);
        u64::from_le_bytes(b) as usize
    };
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        if at + 4 > bytes.len() {
            bail!("{}: truncated program headers", path.display());
        }
        // PT_INTERP: the binary needs a dynamic loader.
        if u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) == 3 {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamic_binary_is_not_static() {
        assert!(!is_static_elf(Path::new("/bin/sh")).unwrap());
        assert!(is_static_elf(Path::new("/etc/hostname")).is_err());
    }
}
