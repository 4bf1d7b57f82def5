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

/// Writes `dir/kustomization.yaml`: the overlay of `config/` that installs the operator on the
/// real node as a user of this machine would, and nothing else: the image
/// `vitess-operator:<tag>` (`e2e/cluster load-image` puts it on the node), the node's label
/// as nodeSelector and its taint tolerated, and `namespace` when given (else config/'s).
/// `dir` must be inside the workspace: kustomize reads its base by relative path. Used by
/// `make demo` (through the `operator-overlay` binary) and e2e/tests/dockerfile.rs.
pub fn write_operator_overlay(
    dir: &std::path::Path,
    namespace: Option<&str>,
    tag: &str,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    let workspace = crate::workspace_dir().canonicalize()?;
    let depth = dir
        .strip_prefix(&workspace)
        .with_context(|| format!("{} is not inside the workspace", dir.display()))?
        .components()
        .count();
    let base = format!("{}config", "../".repeat(depth));
    let namespace = namespace
        .map(|ns| format!("namespace: {ns}\n"))
        .unwrap_or_default();
    let (label, value) = REAL_NODE_LABEL;
    let text = format!(
        "# The operator as config/ installs it, with the image built on this machine and its pods
# placed on the real node (its label and taint). Nothing else differs.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
{namespace}resources:
  - {base}
images:
  - name: vitess-operator
    newName: vitess-operator
    newTag: {tag}
patches:
  - target: {{kind: Deployment, name: vitess-operator}}
    patch: |-
      - {{op: add, path: /spec/template/spec/nodeSelector, value: {{{label}: {value}}}}}
      - op: add
        path: /spec/template/spec/tolerations
        value: [{{key: {REAL_NODE_TAINT}, operator: Exists, effect: NoSchedule}}]
"
    );
    let path = dir.join("kustomization.yaml");
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}

/// The cluster DNS configuration of a pod, for a process of this machine that stands in for one
/// (`$E2E_CLUSTER_RESOLV_CONF`, else `e2e/.state/node/cluster-resolv.conf`, written by
/// `e2e/cluster up`).
pub fn cluster_resolv_conf() -> std::path::PathBuf {
    match std::env::var_os("E2E_CLUSTER_RESOLV_CONF") {
        Some(p) if !p.is_empty() => p.into(),
        _ => crate::state_dir().join("node/cluster-resolv.conf"),
    }
}

/// The MySQL image of the real node (`mysqld.mysql80Compatible`: "MySQL 8 or later").
pub const REAL_NODE_MYSQL_IMAGE: &str = "mysql:9.7";
/// The mysqld exporter image of the real node (the newest release the Go proxy serves).
pub const REAL_NODE_EXPORTER_IMAGE: &str = "prom/mysqld-exporter:v0.16.0";

/// Where a test on the real node starts: a client, a fresh namespace named after `prefix`, the
/// CRDs installed, and an operator on that namespace that resolves in-cluster names (as in a
/// pod). `None` when there is no real node outside CI (under `CI=true`: an error).
pub async fn start_on_real_node(
    test: &str,
    prefix: &str,
) -> Result<Option<(Client, crate::TestNamespace, crate::Operator)>> {
    let client = crate::client().await?;
    if real_node(&client, test).await?.is_none() {
        return Ok(None);
    }
    crate::install_crds().await?;
    let ns = crate::TestNamespace::create(&client, prefix).await?;
    let operator = crate::Operator::start_with_cluster_dns(
        prefix,
        &[
            "run",
            "--namespace",
            ns.name(),
            "--metrics-address",
            "127.0.0.1:0",
        ],
    )?;
    Ok(Some((client, ns, operator)))
}

/// `yaml` (a user's cluster file) as a user would change it to run on the real node: every
/// VitessCluster's pods tolerate the node's taint and require its label (the pod settings of
/// the lockserver, vtctld, vtgates, vtorc and every tablet pool), and the mysqld image (and
/// the exporter's, when there is one) are the node's; vtadmin is left out (no image of it is
/// built here). Other documents (Secrets) pass unchanged. Returns the documents as JSON, one per `---`.
pub fn on_real_node(yaml: &str) -> Result<String> {
    use serde_json::{Value, json};
    let docs: Vec<Value> = serde_saphyr::from_multiple(yaml).context("parsing cluster YAML")?;
    let placement = json!({
        "tolerations": [{"key": REAL_NODE_TAINT, "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{
                "key": REAL_NODE_LABEL.0, "operator": "In", "values": [REAL_NODE_LABEL.1]
            }]}]
        }}}
    });
    let place = |target: &mut Value| {
        if target.is_null() {
            *target = json!({});
        }
        if let (Some(map), Some(extra)) = (target.as_object_mut(), placement.as_object()) {
            for (k, v) in extra {
                map.insert(k.clone(), v.clone());
            }
        }
    };
    let mut out = Vec::new();
    for mut doc in docs.into_iter().filter(|d| !d.is_null()) {
        if doc["kind"] == "VitessCluster" {
            let spec = &mut doc["spec"];
            spec["images"]["mysqld"] = json!({"mysql80Compatible": REAL_NODE_MYSQL_IMAGE});
            if spec["images"].get("mysqldExporter").is_some() {
                spec["images"]["mysqldExporter"] = json!(REAL_NODE_EXPORTER_IMAGE);
            }
            if spec["globalLockserver"].get("external").is_none() {
                place(&mut spec["globalLockserver"]["etcd"]);
            }
            place(&mut spec["vitessDashboard"]);
            // `e2e/cluster up` builds no vtadmin image yet (its UI needs Node.js >= 22.13 to
            // build; Debian 12 has 18). Its pods could not start on the real node, so vtadmin
            // is left out there (it runs on the KWOK nodes).
            if let Some(spec) = spec.as_object_mut() {
                spec.remove("vtadmin");
            }
            if let Some(images) = spec["images"].as_object_mut() {
                images.remove("vtadmin");
            }
            for cell in spec["cells"].as_array_mut().into_iter().flatten() {
                place(&mut cell["gateway"]);
            }
            for keyspace in spec["keyspaces"].as_array_mut().into_iter().flatten() {
                if keyspace.get("vitessOrchestrator").is_some() {
                    place(&mut keyspace["vitessOrchestrator"]);
                }
                for partitioning in keyspace["partitionings"]
                    .as_array_mut()
                    .into_iter()
                    .flatten()
                {
                    let templates: Vec<&mut Value> = if partitioning.get("equal").is_some() {
                        partitioning
                            .pointer_mut("/equal/shardTemplate")
                            .into_iter()
                            .collect()
                    } else {
                        partitioning
                            .pointer_mut("/custom/shards")
                            .and_then(Value::as_array_mut)
                            .map(|shards| shards.iter_mut().collect())
                            .unwrap_or_default()
                    };
                    for template in templates {
                        for pool in template["tabletPools"].as_array_mut().into_iter().flatten() {
                            place(pool);
                        }
                    }
                }
            }
        }
        out.push(serde_json::to_string(&doc).context("encoding a document")?);
    }
    Ok(out.join("\n---\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pod_of_the_example_goes_to_the_real_node() {
        let yaml =
            std::fs::read_to_string(crate::workspace_dir().join("examples/initial-cluster.yaml"))
                .unwrap();
        let out = on_real_node(&yaml).unwrap();
        let docs: Vec<serde_json::Value> = out
            .split("\n---\n")
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        let spec = &docs[0]["spec"];
        assert_eq!(
            spec["images"]["mysqld"]["mysql80Compatible"],
            REAL_NODE_MYSQL_IMAGE
        );
        for path in [
            "/globalLockserver/etcd",
            "/vitessDashboard",
            "/cells/0/gateway",
            "/keyspaces/0/vitessOrchestrator",
            "/keyspaces/0/partitionings/0/equal/shardTemplate/tabletPools/0",
        ] {
            let part = spec.pointer(path).unwrap();
            assert_eq!(part["tolerations"][0]["key"], REAL_NODE_TAINT, "{path}");
            assert!(part["affinity"]["nodeAffinity"].is_object(), "{path}");
        }
        assert!(spec.get("vtadmin").is_none() && spec["images"].get("vtadmin").is_none());
        assert_eq!(docs[1]["kind"], "Secret");
    }
}
