//! The operator runs under exactly the Role of `config/rbac/` (which a unit test holds equal
//! to `src/k8s/rbac.rs`): as its ServiceAccount, with a real token, in a fresh namespace, with
//! leader election on and JSON logs. First the API server's own view of the ServiceAccount's
//! permissions must equal the table (nothing missing, nothing extra); then the example
//! cluster must become Ready with no Forbidden in the log ("lacks a verb"). That no row of
//! the table is unused is kept by the table itself: one row per code path, with its reason.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use vitess_operator::k8s::rbac;
use vitess_operator_e2e::{
    FakeTopology, METRICS_ADDRESS, Operator, TestNamespace, apply_yaml, client, condition, dynamic,
    install_crds, kubectl, kubectl_with_stdin, service_account_kubeconfig, wait_for, workspace_dir,
};

/// Resources every authenticated user may use (system:basic-user), not the operator's grant.
const SELF_REVIEWS: &[&str] = &[
    "selfsubjectreviews.authentication.k8s.io",
    "selfsubjectaccessreviews.authorization.k8s.io",
    "selfsubjectrulesreviews.authorization.k8s.io",
];

/// The API server's view of what the ServiceAccount may do on resources in `ns`
/// (`kubectl auth can-i --list`, i.e. a SelfSubjectRulesReview), as (group, resource, verb).
async fn server_grants(ns: &str) -> Result<rbac::Grants> {
    let user = format!("system:serviceaccount:{ns}:vitess-operator");
    let out = kubectl(&["auth", "can-i", "--list", "-n", ns, "--as", &user]).await?;
    let mut grants = rbac::Grants::new();
    for line in out.lines().skip(1) {
        let Some(first) = line.split_whitespace().next() else {
            continue;
        };
        if first.starts_with('[') || SELF_REVIEWS.contains(&first) {
            continue; // non-resource URLs, and what everyone may do
        }
        let (name, sub) = first
            .split_once('/')
            .map_or((first, None), |(n, s)| (n, Some(s)));
        let (resource, group) = name.split_once('.').unwrap_or((name, ""));
        let resource = match sub {
            Some(sub) => format!("{resource}/{sub}"),
            None => resource.to_string(),
        };
        let verbs = line
            .rsplit_once('[')
            .and_then(|(_, v)| v.strip_suffix(']'))
            .with_context(|| format!("no verbs in {line:?}"))?;
        for verb in verbs.split_whitespace() {
            grants.insert((group.to_string(), resource.clone(), verb.to_string()));
        }
    }
    Ok(grants)
}

const TIMEOUT: Duration = Duration::from_secs(120);

/// `config/rbac/*.yaml` with every namespace set to `ns`.
fn rbac_objects(ns: &str) -> Result<String> {
    let dir = workspace_dir().join("config/rbac");
    let mut out = String::new();
    for file in ["service_account.yaml", "role.yaml", "role_binding.yaml"] {
        let text = std::fs::read_to_string(dir.join(file))?;
        let mut object: serde_json::Value = serde_saphyr::from_str(&text)?;
        object["metadata"]["namespace"] = ns.into();
        if let Some(subjects) = object["subjects"].as_array_mut() {
            for subject in subjects {
                subject["namespace"] = ns.into();
            }
        }
        out.push_str(&serde_json::to_string(&object)?);
        out.push('\n');
    }
    Ok(out)
}

/// The log lines that say the API server refused a request.
fn forbidden(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains(" 403") || l.to_ascii_lowercase().contains("forbidden"))
        .collect()
}

#[tokio::test]
async fn operator_runs_under_the_config_role_without_forbidden() -> Result<()> {
    install_crds().await?;
    let client = client().await?;
    let ns = TestNamespace::create(&client, "rbac").await?;
    kubectl_with_stdin(
        &["apply", "-n", ns.name(), "-f", "-"],
        Some(&rbac_objects(ns.name())?),
    )
    .await?;
    // The API server grants the ServiceAccount exactly the table: nothing is missing, and no
    // other binding (a wildcard, an aggregated role) gives it more.
    let granted = server_grants(ns.name()).await?;
    let needed = rbac::table();
    if granted != needed {
        bail!(
            "the API server grants the operator's ServiceAccount something else than src/k8s/rbac.rs:\nmissing: {:?}\nextra: {:?}",
            needed.difference(&granted).collect::<Vec<_>>(),
            granted.difference(&needed).collect::<Vec<_>>()
        );
    }
    let kubeconfig = service_account_kubeconfig(ns.name(), "vitess-operator").await?;
    let kubeconfig_env = format!("KUBECONFIG={}", kubeconfig.display());
    let binary = Operator::binary();
    let binary = binary.to_string_lossy();
    // The shards' primaries come from a fake vtctld that registers the Ready tablet pods.
    let vtctld = FakeTopology::start(&client, ns.name()).await?;
    let vtctld_address = vtctld.vtctld_address();
    let mut operator = Operator::start_binary(
        std::path::Path::new("/usr/bin/env"),
        // A log of its own: the log file of a test name is appended to across runs.
        &format!("rbac-{}", ns.name()),
        &[
            &kubeconfig_env,
            &binary,
            "run",
            "--namespace",
            ns.name(),
            "--vtctld-address",
            &vtctld_address,
            METRICS_ADDRESS,
            "--leader-elect",
            "--log-format=json",
        ],
    )?;
    let result = async {
        let text = std::fs::read_to_string(workspace_dir().join("examples/initial-cluster.yaml"))?;
        apply_yaml(&client, ns.name(), &text).await?;
        let clusters = dynamic(&client, ns.name(), "VitessCluster");
        wait_for(
            "VitessCluster example to be Ready",
            TIMEOUT,
            async |seen: &mut String| {
                operator.check_running()?;
                let cluster = clusters.get("example").await?;
                let ready = condition(&cluster, "Ready");
                *seen = format!("Ready={ready:?} status={}", cluster.data["status"]);
                Ok((ready.as_deref() == Some("True")).then_some(()))
            },
        )
        .await?;
        // One more resync's worth of work (status writes, events) before reading the log.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let log = operator.log_contents()?;
        let denied = forbidden(&log);
        if !denied.is_empty() {
            bail!(
                "the operator was denied under config/rbac/role.yaml:\n{}",
                denied.join("\n")
            );
        }
        if !log.contains("became the leader") {
            bail!("the operator never became the leader (Lease permissions?)");
        }
        // --log-format json: one JSON object per line, with a level and a message.
        for line in log.lines() {
            let entry: serde_json::Value = serde_json::from_str(line)
                .with_context(|| format!("a log line that is not JSON: {line}"))?;
            if entry["level"].as_str().is_none() || entry["message"].as_str().is_none() {
                bail!("a JSON log line without level or message: {line}");
            }
        }
        anyhow::Ok(())
    }
    .await;
    let stopped = operator.stop().await;
    vtctld.stop().await;
    if let Err(err) = result {
        let log = operator.log_contents().unwrap_or_default();
        bail!("{err:#}\n--- operator log ---\n{log}");
    }
    stopped?;
    std::fs::remove_file(&kubeconfig).context("removing the token kubeconfig")?;
    ns.delete(TIMEOUT).await
}
