//! What GitOps tools do: apply the same YAML again and again, and diff. With the operator
//! running and the example cluster Ready, re-applying `examples/initial-cluster.yaml` with
//! client-side `kubectl apply` writes nothing (every resourceVersion of the operator's
//! objects stays) and `kubectl diff` is empty; with `kubectl apply --server-side` likewise,
//! except for one known write: the FIRST server-side re-apply after the operator's first
//! status write bumps the VitessCluster's resourceVersion once (the API server refreshes the
//! `kubectl` managedFields entry's time, no field changes; it happens without any operator
//! write in between, and does not happen with the operator stopped). Every later re-apply
//! writes nothing, which is what a GitOps loop sees; the test prints whether it happened.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use kube::api::ListParams;
#[path = "support/argocd.rs"]
mod argocd;
use argocd::argocd_health;
use vitess_operator_e2e::{
    condition, dynamic, kubectl, versions, wait_for, with_operator, workspace_dir,
};

#[test]
fn argocd_health_follows_ready_and_observed_generation() -> Result<()> {
    let object = |status: serde_json::Value| serde_json::json!({"metadata": {"name": "example", "generation": 2}, "status": status});
    let ready = |status: &str, reason: &str| {
        serde_json::json!({"observedGeneration": 2, "conditions": [
            {"type": "Ready", "status": status, "reason": reason, "message": reason}
        ]})
    };
    let cases = [
        (
            serde_json::json!({"metadata": {"name": "example", "generation": 1}}),
            "Progressing",
        ),
        (
            object(serde_json::json!({"observedGeneration": 1, "conditions": []})),
            "Progressing",
        ),
        (object(ready("True", "Ready")), "Healthy"),
        (object(ready("False", "InvalidSpec")), "Degraded"),
        (object(ready("False", "TabletsNotReady")), "Progressing"),
        (object(ready("Unknown", "Pending")), "Progressing"),
        (
            object(serde_json::json!({"observedGeneration": 2})),
            "Healthy",
        ),
    ];
    for (object, expected) in cases {
        let (status, message) = argocd_health(&object)?;
        assert_eq!(status, expected, "{object} -> {message}");
    }
    Ok(())
}

/// Applies the example with `apply`, waits for Ready and a settled status, re-applies it the
/// same way, and checks nothing changed and nothing differs.
async fn reapply_changes_nothing(
    test: &str,
    apply: &'static [&'static str],
    diff: &'static [&'static str],
    settle: bool,
) -> Result<()> {
    with_operator(test, None, async |client, ns, operator| {
        let file = workspace_dir().join("examples/initial-cluster.yaml");
        let file = file.to_string_lossy();
        let mut args: Vec<&str> = apply.to_vec();
        args.extend(["-n", ns, "-f", &file]);
        kubectl(&args).await?;
        let clusters = dynamic(client, ns, "VitessCluster");
        wait_for(
            "VitessCluster example to be Ready",
            Duration::from_secs(120),
            async |seen: &mut String| {
                operator.check_running()?;
                let cluster = clusters.get("example").await?;
                let ready = condition(&cluster, "Ready");
                *seen = format!("Ready={ready:?}");
                Ok((ready.as_deref() == Some("True")).then_some(()))
            },
        )
        .await?;
        // Let the last status writes of the roll-up land.
        tokio::time::sleep(Duration::from_secs(3)).await;
        // Argo CD's view of every object of our kinds: Healthy.
        for kind in [
            "VitessCluster",
            "VitessCell",
            "VitessKeyspace",
            "VitessShard",
            "EtcdLockserver",
        ] {
            for object in dynamic(client, ns, kind)
                .list(&ListParams::default())
                .await?
            {
                let json = serde_json::to_value(&object)?;
                let (status, message) = argocd_health(&json)
                    .with_context(|| format!("{kind} {:?}", object.metadata.name))?;
                if status != "Healthy" {
                    bail!(
                        "Argo CD would call {kind} {:?} {status}: {message}",
                        object.metadata.name
                    );
                }
            }
        }
        if settle {
            let before = versions(client, ns).await?;
            kubectl(&args).await?;
            tokio::time::sleep(Duration::from_secs(2)).await;
            let after = versions(client, ns).await?;
            let changed: Vec<_> = after
                .iter()
                .filter(|(k, v)| before.get(*k) != Some(*v))
                .map(|(k, _)| k.as_str())
                .collect();
            eprintln!("{test}: the first re-apply changed {changed:?} (see the module doc)");
        }
        let before = versions(client, ns).await?;
        let out = kubectl(&args).await?;
        eprintln!("{test}: re-apply said: {}", out.trim());
        tokio::time::sleep(Duration::from_secs(3)).await;
        let after = versions(client, ns).await?;
        if before != after {
            let changed: Vec<_> = after
                .iter()
                .filter(|(k, v)| before.get(*k) != Some(*v))
                .map(|(k, _)| k.as_str())
                .collect();
            bail!("re-applying with {apply:?} changed {changed:?}");
        }
        // `kubectl diff` exits 1 when it finds a difference, which kubectl() reports. The
        // diff of the apply method used (a server-side diff of a client-side applied object
        // is a field-manager conflict, not a difference).
        let mut diff_args: Vec<&str> = diff.to_vec();
        diff_args.extend(["-n", ns, "-f", &file]);
        let out = kubectl(&diff_args).await?;
        if !out.trim().is_empty() {
            bail!("kubectl {diff:?} is not empty:\n{out}");
        }
        eprintln!(
            "{test}: {} objects unchanged; kubectl diff empty",
            after.len()
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn server_side_reapplies_change_nothing_and_diff_empty() -> Result<()> {
    reapply_changes_nothing(
        "gitops-ssa",
        &["apply", "--server-side"],
        &["diff", "--server-side"],
        true,
    )
    .await
}

#[tokio::test]
async fn client_side_reapply_changes_nothing_and_diffs_empty() -> Result<()> {
    reapply_changes_nothing("gitops-csa", &["apply"], &["diff"], false).await
}
