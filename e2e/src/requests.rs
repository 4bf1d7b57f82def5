//! The operator's own count of its API requests (`vitess_operator_kube_requests_total` on its
//! /metrics), read by the benchmark and by the tests that check it goes quiet.

use std::collections::BTreeMap;

use anyhow::Result;

use crate::http_get;

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
