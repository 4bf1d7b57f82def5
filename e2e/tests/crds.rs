//! The CRDs on a real API server: they install (client-side apply too), every example applies
//! and reads back unchanged (nothing pruned), re-applying writes nothing, bad objects are
//! refused with the field named, and offline `validate` names the same field.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, GroupVersionKind};
use kube::discovery::ApiResource;
use vitess_operator::api::VitessCluster;
use vitess_operator_e2e::{
    Operator, TestNamespace, client, kubectl, kubectl_with_stdin, wait_for, workspace_dir,
};

const TIMEOUT: Duration = Duration::from_secs(60);

fn crds_dir() -> PathBuf {
    workspace_dir().join("crds")
}

/// Installs the CRDs as a user would (client-side apply, which also proves they fit its
/// annotation) and waits until every one is established. Once per test process; the tests
/// of a process share it, and a retry covers another process installing at the same time
/// (two client-side creates of one CRD race to AlreadyExists).
async fn install_crds() -> Result<()> {
    static INSTALLED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    INSTALLED.get_or_try_init(install_crds_once).await?;
    Ok(())
}

async fn install_crds_once() -> Result<()> {
    let dir = crds_dir();
    let mut attempt = 0;
    while let Err(err) = kubectl(&["apply", "-f", &dir.to_string_lossy()]).await {
        attempt += 1;
        if attempt == 3 || !format!("{err:#}").contains("AlreadyExists") {
            return Err(err);
        }
    }
    let crds: Api<CustomResourceDefinition> = Api::all(client().await?);
    for name in [
        "vitessclusters.planetscale.com",
        "vitesscells.planetscale.com",
        "vitesskeyspaces.planetscale.com",
        "vitessshards.planetscale.com",
        "etcdlockservers.planetscale.com",
        "vitessbackupstorages.planetscale.com",
        "vitessbackups.planetscale.com",
    ] {
        wait_for(
            &format!("CRD {name} to be established"),
            TIMEOUT,
            async |seen: &mut String| {
                let crd = crds.get(name).await?;
                let conditions = crd.status.and_then(|s| s.conditions).unwrap_or_default();
                *seen = format!("{conditions:?}");
                Ok(conditions
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
                    .then_some(()))
            },
        )
        .await?;
    }
    Ok(())
}

fn example(name: &str) -> Result<String> {
    let path = workspace_dir().join("examples").join(name);
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

fn cluster_api(client: kube::Client, namespace: &str) -> Api<DynamicObject> {
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "planetscale.com",
        "v2",
        "VitessCluster",
    ));
    Api::namespaced_with(client, namespace, &resource)
}

/// The first VitessCluster of a YAML file, typed.
fn cluster_in(yaml: &str) -> Result<VitessCluster> {
    let docs = vitess_operator::cli::yaml::parse_documents(yaml)?;
    let doc = docs
        .into_iter()
        .find(|d| d["kind"] == "VitessCluster")
        .context("no VitessCluster in the file")?;
    Ok(serde_json::from_value(doc)?)
}

#[tokio::test]
async fn examples_apply_read_back_unchanged_and_reapply_writes_nothing() -> Result<()> {
    install_crds().await?;
    let client = client().await?;
    for file in [
        "initial-cluster.yaml",
        "two-keyspaces.yaml",
        "backup-gcs.yaml",
        "scheduled-backups.yaml",
    ] {
        let ns = TestNamespace::create(&client, "crd-example").await?;
        let yaml = example(file)?;
        kubectl_with_stdin(
            &["apply", "--server-side", "-n", ns.name(), "-f", "-"],
            Some(&yaml),
        )
        .await
        .with_context(|| format!("applying {file}"))?;

        let api = cluster_api(client.clone(), ns.name());
        let stored = api.get("example").await?;
        let stored: VitessCluster = serde_json::from_value(serde_json::to_value(&stored)?)
            .with_context(|| format!("reading back {file}"))?;
        let written = cluster_in(&yaml)?;
        ensure!(
            stored.spec == written.spec,
            "{file}: the API server changed or pruned the spec:\nwritten: {:#?}\nstored: {:#?}",
            written.spec,
            stored.spec
        );

        // GitOps: applying the same YAML again is no write at all.
        let before = stored.metadata.resource_version.clone();
        kubectl_with_stdin(
            &["apply", "--server-side", "-n", ns.name(), "-f", "-"],
            Some(&yaml),
        )
        .await?;
        let after = api.get("example").await?.metadata.resource_version;
        ensure!(
            before == after,
            "{file}: re-applying changed resourceVersion {before:?} -> {after:?}"
        );
        ns.delete(TIMEOUT).await?;
    }
    Ok(())
}

/// One broken cluster, the field the API server must name, and a fragment of its message.
struct Broken {
    what: &'static str,
    from: &'static str,
    to: &'static str,
    field: &'static str,
}

const BROKEN: &[Broken] = &[
    Broken {
        what: "negative replicas",
        from: "replicas: 2",
        to: "replicas: -2",
        field: "spec.keyspaces[0].partitionings[0].equal.shardTemplate.tabletPools[0].replicas",
    },
    Broken {
        what: "unknown tablet type",
        from: "type: replica",
        to: "type: master",
        field: "spec.keyspaces[0].partitionings[0].equal.shardTemplate.tabletPools[0].type",
    },
    Broken {
        what: "equal and custom together",
        from: "    - equal:\n        parts: 1\n",
        to: "    - custom: {shards: [{keyRange: {}, databaseInitScriptSecret: {name: s, key: k}}]}\n      equal:\n        parts: 1\n",
        field: "spec.keyspaces[0].partitionings[0]",
    },
    Broken {
        what: "secret without name",
        from: "          databaseInitScriptSecret:\n            name: example-cluster-config\n",
        to: "          databaseInitScriptSecret:\n",
        field: "spec.keyspaces[0].partitionings[0].equal.shardTemplate.databaseInitScriptSecret",
    },
    Broken {
        what: "unknown update strategy",
        from: "type: Immediate",
        to: "type: Rolling",
        field: "spec.updateStrategy.type",
    },
    Broken {
        what: "tablet pool without a data volume",
        from: "            dataVolumeClaimTemplate:\n              accessModes: [\"ReadWriteOnce\"]\n              resources:\n                requests:\n                  storage: 5Gi\n",
        to: "",
        field: "spec.keyspaces[0].partitionings[0].equal.shardTemplate.tabletPools[0]",
    },
];

#[tokio::test]
async fn api_server_and_validate_reject_bad_clusters_naming_the_same_field() -> Result<()> {
    install_crds().await?;
    let client = client().await?;
    let ns = TestNamespace::create(&client, "crd-invalid").await?;
    let good = example("initial-cluster.yaml")?;
    let good_cluster = good
        .split("\n---\n")
        .next()
        .context("example has no first document")?
        .to_string();
    let mut failures = Vec::new();
    for case in BROKEN {
        ensure!(
            good_cluster.contains(case.from),
            "{}: the example no longer contains {:?}",
            case.what,
            case.from
        );
        let bad = good_cluster.replacen(case.from, case.to, 1);

        let server = kubectl_with_stdin(
            &[
                "apply",
                "--server-side",
                "--dry-run=server",
                "-n",
                ns.name(),
                "-f",
                "-",
            ],
            Some(&bad),
        )
        .await;
        match server {
            Ok(out) => failures.push(format!("{}: the API server accepted it: {out}", case.what)),
            Err(err) => {
                let text = format!("{err:#}");
                if !text.contains(&format!("{}:", case.field)) {
                    failures.push(format!(
                        "{}: the API server's refusal does not name {}: {text}",
                        case.what, case.field
                    ));
                }
            }
        }

        let offline = validate_stdin(&bad).await?;
        if !offline.contains(&format!("VitessCluster/example: {}:", case.field)) {
            failures.push(format!(
                "{}: validate does not name {}: {offline}",
                case.what, case.field
            ));
        }
    }
    ns.delete(TIMEOUT).await?;
    if !failures.is_empty() {
        bail!("{}", failures.join("\n"));
    }
    Ok(())
}

/// Runs `vitess-operator validate -f -` and returns its stdout (it must exit 1).
async fn validate_stdin(yaml: &str) -> Result<String> {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(Operator::binary())
        .args(["validate", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("running vitess-operator validate")?;
    child
        .stdin
        .take()
        .context("no stdin")?
        .write_all(yaml.as_bytes())
        .await?;
    let out = child.wait_with_output().await?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure!(
        out.status.code() == Some(1),
        "validate exited {:?}: {text}",
        out.status.code()
    );
    Ok(text)
}

#[tokio::test]
async fn kubectl_get_and_explain_answer_users() -> Result<()> {
    install_crds().await?;
    let client = client().await?;
    let ns = TestNamespace::create(&client, "crd-columns").await?;
    kubectl_with_stdin(
        &["apply", "--server-side", "-n", ns.name(), "-f", "-"],
        Some(&example("two-keyspaces.yaml")?),
    )
    .await?;
    let table = kubectl(&["get", "vt", "-n", ns.name()]).await?;
    let header = table.lines().next().unwrap_or_default();
    for column in ["NAME", "READY", "KEYSPACES", "REASON", "AGE"] {
        ensure!(header.contains(column), "no {column} column in: {table}");
    }
    ensure!(table.contains("example"), "{table}");

    // kubectl wraps descriptions; compare with white space collapsed.
    let flat = |text: String| text.split_whitespace().collect::<Vec<_>>().join(" ");
    let explain = flat(kubectl(&["explain", "vt.spec.keyspaces.partitionings"]).await?);
    ensure!(
        explain.contains("one partitioning, or two while resharding"),
        "kubectl explain does not show our documentation: {explain}"
    );
    let explain = flat(kubectl(&["explain", "vts.status.masterAlias"]).await?);
    ensure!(explain.contains("primary tablet"), "{explain}");
    ns.delete(TIMEOUT).await?;
    Ok(())
}
