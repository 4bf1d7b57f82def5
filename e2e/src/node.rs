//! The real node of `e2e/cluster up` (kubelet, containerd, CNI bridge, kube-proxy, CoreDNS):
//! whether it is there, and what a pod needs to land on it.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::Node;
use kube::{Api, Client};

/// The node's name when `E2E_REAL_NODE` is not set (see e2e/cluster).
pub const DEFAULT_REAL_NODE: &str = "real-zone1";
/// The taint the real node registers with: only YAML that tolerates it gets there.
pub const REAL_NODE_TAINT: &str = "vitess.io/real-node";
/// The label (`type=real`) that selects it.
pub const REAL_NODE_LABEL: (&str, &str) = ("type", "real");
/// The address range of its pods (a bridge of this machine).
pub const REAL_NODE_POD_PREFIX: &str = "10.244.9.";

/// The real node's name: `$E2E_REAL_NODE`, else [`DEFAULT_REAL_NODE`].
pub fn real_node_name() -> String {
    match std::env::var("E2E_REAL_NODE") {
        Ok(n) if !n.is_empty() => n,
        _ => DEFAULT_REAL_NODE.to_string(),
    }
}

/// Whether tests run under CI (`CI=true`), where a missing part fails instead of skipping.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The real node's name once it is Ready (waits up to 60 s for a node that exists but is not
/// Ready yet). When there is none (`e2e/cluster up --no-real-node`): an error under `CI=true`,
/// so a broken setup cannot pass as green; otherwise `None`, after saying on stderr that
/// `test` is skipped.
pub async fn real_node(client: &Client, test: &str) -> Result<Option<String>> {
    let name = real_node_name();
    let nodes: Api<Node> = Api::all(client.clone());
    let Some(_) = nodes
        .get_opt(&name)
        .await
        .with_context(|| format!("reading node {name}"))?
    else {
        if in_ci() {
            bail!(
                "{test} needs the real node {name}, which does not exist: `e2e/cluster up` (without --no-real-node) starts it"
            );
        }
        eprintln!("skipping {test}: no real node {name} (e2e/cluster up --no-real-node?)");
        return Ok(None);
    };
    crate::wait_for(
        &format!("node {name} to be Ready (see e2e/.state/logs/kubelet.log)"),
        Duration::from_secs(60),
        async |seen: &mut String| {
            let node = nodes.get(&name).await?;
            let ready = node_ready(&node);
            *seen = format!("Ready={ready}");
            Ok(ready.then_some(()))
        },
    )
    .await?;
    Ok(Some(name))
}

/// Whether a node's `Ready` condition is `True`.
pub fn node_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// What sends a pod to the real node, as a user writes it under a pod's `spec:` (indented by
/// `indent` spaces): the node's label as a selector and a toleration of its taint.
pub fn placement_yaml(indent: usize) -> String {
    let pad = " ".repeat(indent);
    format!(
        "{pad}nodeSelector: {{{}: {}}}\n{pad}tolerations:\n{pad}- {{key: {REAL_NODE_TAINT}, operator: Exists, effect: NoSchedule}}\n",
        REAL_NODE_LABEL.0, REAL_NODE_LABEL.1
    )
}
