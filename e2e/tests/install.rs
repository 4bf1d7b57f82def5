//! Installing the operator: `kubectl apply -k config/` and the Helm chart pass a server-side
//! dry run on the local control plane, `helm lint` passes, and the chart's Role grants what
//! `src/k8s/rbac.rs` says (the same table `config/rbac/role.yaml` is held to). Helm is built from
//! its Go module by `e2e/helm` (cached, keyed by version).

use std::collections::BTreeSet;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::rbac::v1::Role;
use vitess_operator::k8s::rbac;
use vitess_operator_e2e::{
    TestNamespace, client, e2e_dir, kubectl, kubectl_with_stdin, workspace_dir,
};

/// The helm binary (built on first use).
async fn helm_binary() -> Result<String> {
    let out = tokio::process::Command::new(e2e_dir().join("helm"))
        .output()
        .await
        .context("running e2e/helm")?;
    if !out.status.success() {
        bail!("e2e/helm failed:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

async fn helm(args: &[&str]) -> Result<String> {
    let binary = helm_binary().await?;
    let out = tokio::process::Command::new(&binary)
        .args(args)
        .current_dir(workspace_dir())
        .output()
        .await
        .with_context(|| format!("running helm {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "helm {} failed:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test]
async fn kustomize_config_passes_a_server_side_dry_run() -> Result<()> {
    client().await?;
    let dir = workspace_dir().join("config");
    let dir = dir.to_string_lossy();
    for server_side in [true, false] {
        let mut args = vec!["apply", "-k", &dir, "--dry-run=server"];
        if server_side {
            args.push("--server-side");
        }
        let out = kubectl(&args).await?;
        for object in [
            "customresourcedefinition.apiextensions.k8s.io/vitessclusters.planetscale.com",
            "serviceaccount/vitess-operator",
            "role.rbac.authorization.k8s.io/vitess-operator",
            "rolebinding.rbac.authorization.k8s.io/vitess-operator",
            "priorityclass.scheduling.k8s.io/vitess",
            "priorityclass.scheduling.k8s.io/vitess-operator-control-plane",
            "deployment.apps/vitess-operator",
        ] {
            assert!(
                out.contains(object),
                "{object} missing (server-side: {server_side}):\n{out}"
            );
        }
    }
    Ok(())
}

/// Every document of a rendered chart, as JSON.
fn documents(rendered: &str) -> Result<Vec<serde_json::Value>> {
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(rendered)?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

#[tokio::test]
async fn helm_chart_lints_renders_and_passes_a_server_side_dry_run() -> Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(&client, "helm").await?;
    let chart = "charts/vitess-operator";
    helm(&["lint", chart]).await?;
    helm(&["lint", chart, "--set", "watch.allNamespaces=true"]).await?;

    let variants: [&[&str]; 3] = [
        &["--include-crds"],
        &[
            "--set",
            "watch.allNamespaces=true",
            "--set",
            "metrics.service.enabled=true",
        ],
        &[
            "--set",
            "leaderElection.enabled=false",
            "--set",
            "replicas=1",
        ],
    ];
    for extra in variants {
        let mut args = vec![
            "template",
            "vitess-operator",
            chart,
            "--namespace",
            ns.name(),
        ];
        args.extend_from_slice(extra);
        let rendered = helm(&args).await?;
        let kinds: BTreeSet<String> = documents(&rendered)?
            .iter()
            .filter_map(|d| d["kind"].as_str().map(str::to_string))
            .collect();
        for kind in ["Deployment", "ServiceAccount", "PriorityClass"] {
            assert!(
                kinds.contains(kind),
                "{kind} missing for {extra:?}: {kinds:?}"
            );
        }
        // The cluster-scoped objects are PriorityClasses and (allNamespaces) a ClusterRole;
        // a server-side dry run persists nothing, so the shared cluster is not touched.
        kubectl_with_stdin(&["apply", "--dry-run=server", "-f", "-"], Some(&rendered))
            .await
            .with_context(|| format!("dry run of helm template {extra:?}"))?;
    }

    // The default render's Role grants the table of src/k8s/rbac.rs (leases included, since the
    // Lease lives in the watched namespace by default).
    let rendered = helm(&[
        "template",
        "vitess-operator",
        chart,
        "--namespace",
        ns.name(),
    ])
    .await?;
    let role = documents(&rendered)?
        .into_iter()
        .find(|d| d["kind"] == "Role")
        .context("no Role rendered")?;
    let role: Role = serde_json::from_value(role)?;
    assert_eq!(
        rbac::grants(&role),
        rbac::table(),
        "chart Role vs src/k8s/rbac.rs"
    );
    ns.delete(std::time::Duration::from_secs(60)).await
}
