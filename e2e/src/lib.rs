//! Helpers for the vitess-operator end-to-end tests.
//!
//! The tests run against the local control plane started by `e2e/cluster up`
//! (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, KWOK nodes
//! and a Vitess vtctld, all on 127.0.0.1, and a real node whose pods live on a
//! bridge of this machine). Every helper returns a `Result`; a
//! cluster that is not up makes [`client`] fail with a message saying how to
//! start it.
//!
//! Tests may run in parallel (cargo nextest runs each one in its own process):
//! give each test its own [`TestNamespace`] and unique cluster-scoped names.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod agent;
mod apply;
mod drains;
mod go_operator;
mod kinds;
mod namespace;
mod node;
mod operator;
mod ops;
mod paths;
pub mod requests;
mod rng;
pub mod sql;
pub mod stores;
mod tools;
mod wait;

pub use agent::{
    FakeTopology, SharedFake, TabletLabels, fake_primary, set_fake_mode, start_tablet_agent,
    tablet_of, with_fake_vtctld,
};
pub use apply::{FIELD_MANAGER, apply_yaml};
pub use drains::{annotate, has_annotation, one_shard_cluster_yaml, tablet_pods};
pub use go_operator::{anchors_dir, go_operator};
pub use kinds::{
    METRICS_ADDRESS, condition, condition_detail, dynamic, install_crds, is_ready, primary_of,
    versions, wait_for_primary, with_operator, with_operator_at,
};
pub use namespace::{TestNamespace, unique_suffix};
pub use node::{
    DEFAULT_REAL_NODE, REAL_NODE_EXPORTER_IMAGE, REAL_NODE_LABEL, REAL_NODE_MYSQL_IMAGE,
    REAL_NODE_POD_PREFIX, REAL_NODE_TAINT, cluster_resolv_conf, in_ci, node_ready, on_real_node,
    placement_yaml, real_node, real_node_name, start_on_real_node, write_operator_overlay,
};
pub use operator::Operator;
pub use ops::{
    http_address, http_get, http_request, identity_of, is_static_elf, lease_holder,
    service_account_kubeconfig,
};
pub use paths::{
    DEFAULT_VTCTLD_ADDR, e2e_dir, kubeconfig_path, logs_dir, state_dir, tool_path, vtctld_addr,
    workspace_dir, write_figures,
};
pub use rng::Rng;
pub use tools::{crash_component, kubectl, kubectl_with_stdin, vtctldclient};
pub use wait::wait_for;

use anyhow::{Context, Result};
use kube::{
    Client, Config,
    config::{KubeConfigOptions, Kubeconfig},
};

/// A client for the e2e cluster, built from `e2e/.state/kubeconfig` (or the
/// file named by `KUBECONFIG_E2E`). Fails with a clear message if the
/// kubeconfig is missing or the API server does not answer.
pub async fn client() -> Result<Client> {
    let path = kubeconfig_path();
    if !path.is_file() {
        anyhow::bail!(
            "the e2e cluster is not up: kubeconfig {} does not exist; start the cluster with `e2e/cluster up`",
            path.display()
        );
    }
    let kubeconfig = Kubeconfig::read_from(&path)
        .with_context(|| format!("reading kubeconfig {}", path.display()))?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .with_context(|| format!("loading kubeconfig {}", path.display()))?;
    let server = config.cluster_url.to_string();
    let client = Client::try_from(config).context("building the Kubernetes client")?;
    let version = tokio::time::timeout(std::time::Duration::from_secs(10), client.apiserver_version())
        .await
        .map_err(anyhow::Error::from)
        .and_then(|r| r.map_err(anyhow::Error::from))
        .with_context(|| {
            format!(
                "the e2e cluster is not up: the API server at {server} does not answer; start it with `e2e/cluster up` (see `e2e/cluster status`)"
            )
        })?;
    if version.major != "1" {
        anyhow::bail!("unexpected API server version {version:?} at {server}");
    }
    Ok(client)
}
