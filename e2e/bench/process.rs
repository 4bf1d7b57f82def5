//! What the operator process costs: memory and CPU from /proc, and the Kubernetes API requests
//! it counted itself (`vitess_operator_kube_requests_total` on its /metrics).

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use vitess_operator_e2e::http_get;

/// Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on Linux x86_64 and arm64).
const TICKS_PER_SECOND: f64 = 100.0;

/// Peak and current resident memory in MiB (VmHWM, VmRSS of /proc/<pid>/status).
pub fn memory_mib(pid: u32) -> Result<(f64, f64)> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let field = |name: &str| -> Result<f64> {
        let line = text
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("{path} has no {name}"))?;
        let kib: f64 = line
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("{path}: cannot read {line:?}"))?;
        Ok(kib / 1024.0)
    };
    Ok((field("VmHWM:")?, field("VmRSS:")?))
}

/// User plus system CPU seconds the process has used (utime + stime of /proc/<pid>/stat).
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // The command name (field 2) may hold spaces; the fields after its ')' are fixed.
    let after = text
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .with_context(|| format!("{path}: no ')'"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After ')': state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let ticks = |i: usize| -> Result<f64> {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .with_context(|| format!("{path}: no field {}", i + 3))
    };
    Ok((ticks(11)? + ticks(12)?) / TICKS_PER_SECOND)
}

/// API requests by (verb, resource), read from the operator's /metrics.
pub type Requests = BTreeMap<(String, String), u64>;

pub async fn requests(metrics_address: &str) -> Result<Requests> {
    let (code, body) = http_get(metrics_address, "/metrics").await?;
    anyhow::ensure!(code == 200, "GET /metrics answered {code}");
    Ok(parse_requests(&body))
}

fn parse_requests(body: &str) -> Requests {
    let mut out = Requests::new();
    for line in body.lines() {
        let Some(rest) = line.strip_prefix("vitess_operator_kube_requests_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let label = |name: &str| {
            labels
                .split(',')
                .find_map(|l| l.strip_prefix(&format!("{name}=\"")))
                .map(|v| v.trim_end_matches('"').to_string())
                .unwrap_or_default()
        };
        let count = value.trim().parse::<f64>().unwrap_or_default() as u64;
        out.insert((label("verb"), label("resource")), count);
    }
    out
}

/// `after - before`, per key, leaving out zeros.
pub fn delta(before: &Requests, after: &Requests) -> Requests {
    after
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.saturating_sub(before.get(k).copied().unwrap_or(0)),
            )
        })
        .filter(|(_, v)| *v > 0)
        .collect()
}

/// Totals by verb.
pub fn by_verb(requests: &Requests) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for ((verb, _), n) in requests {
        *out.entry(verb.clone()).or_default() += n;
    }
    out
}

/// Requests that change something on the server (or would, for an apply): create, update,
/// patch, delete.
pub fn mutating(requests: &Requests) -> u64 {
    requests
        .iter()
        .filter(|((verb, _), _)| {
            matches!(
                verb.as_str(),
                "create" | "update" | "patch" | "delete" | "deletecollection"
            )
        })
        .map(|(_, n)| n)
        .sum()
}
