//! The CRDs on a real API server: they install (client-side apply too), every example applies
//! and reads back unchanged (nothing pruned), re-applying writes nothing, bad objects are
//! refused with the field named, and offline `validate` names the same field.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, GroupVersionKind};
use kube::discovery::ApiResource;
use serde_json::json;
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
        "vitessbackupschedules.planetscale.com",
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
        failures.extend(expect_refused(&ns, case.what, &bad, case.field, case.field).await?);
    }
    ns.delete(TIMEOUT).await?;
    if !failures.is_empty() {
        bail!("{}", failures.join("\n"));
    }
    Ok(())
}

/// Why `yaml` (`what`) was not refused as it must be: by a server-side dry run naming
/// `server_field`, and by `validate` naming `offline_field`. Empty when both refused it so.
async fn expect_refused(
    ns: &TestNamespace,
    what: &str,
    yaml: &str,
    server_field: &str,
    offline_field: &str,
) -> Result<Vec<String>> {
    let mut failures = Vec::new();
    match server_dry_run(ns, yaml).await {
        Ok(out) => failures.push(format!("{what}: the API server accepted it: {out}")),
        Err(err) => {
            let text = format!("{err:#}");
            if !text.contains(&format!("{server_field}:")) {
                failures.push(format!(
                    "{what}: the API server's refusal does not name {server_field}: {text}"
                ));
            }
        }
    }
    let offline = validate_stdin(yaml).await?;
    if !offline.contains(&format!("VitessCluster/example: {offline_field}:")) {
        failures.push(format!(
            "{what}: validate does not name {offline_field}: {offline}"
        ));
    }
    Ok(failures)
}

async fn server_dry_run(ns: &TestNamespace, yaml: &str) -> Result<String> {
    kubectl_with_stdin(
        &[
            "apply",
            "--server-side",
            "--dry-run=server",
            "-n",
            ns.name(),
            "-f",
            "-",
        ],
        Some(yaml),
    )
    .await
}

/// A mistake a new user makes that only the pods would have shown (issue 18): the example it
/// is made in, the edit (JSON pointer, new value), and the field the API server and
/// `validate` name. Where they differ, the API server's refusal comes from the admission
/// policy of `config/admission/`, which names the keyspace in its message.
struct Mistake {
    what: &'static str,
    example: &'static str,
    pointer: &'static str,
    value: fn() -> serde_json::Value,
    server: &'static str,
    offline: &'static str,
}

const MISTAKES: &[Mistake] = &[
    Mistake {
        what: "a zone that is no label value",
        example: "initial-cluster.yaml",
        pointer: "/spec/cells/0/zone",
        value: || json!("-80-40"),
        server: "spec.cells[0].zone",
        offline: "spec.cells[0].zone",
    },
    Mistake {
        what: "a durability policy Vitess does not register",
        example: "initial-cluster.yaml",
        pointer: "/spec/keyspaces/0/durabilityPolicy",
        value: || json!("UPPER_case"),
        server: "spec.keyspaces[0].durabilityPolicy",
        offline: "spec.keyspaces[0].durabilityPolicy",
    },
    Mistake {
        what: "a GCS bucket name Google refuses",
        example: "backup-gcs.yaml",
        pointer: "/spec/backup/locations/0/gcs/bucket",
        value: || json!("bücket"),
        server: "spec.backup.locations[0].gcs.bucket",
        offline: "spec.backup.locations[0].gcs.bucket",
    },
    Mistake {
        what: "an access mode that does not exist",
        example: "initial-cluster.yaml",
        pointer: "/spec/keyspaces/0/partitionings/0/equal/shardTemplate/tabletPools/0/dataVolumeClaimTemplate/accessModes/0",
        value: || json!("ReadWriteSometimes"),
        server: "spec.keyspaces[0].partitionings[0].equal.shardTemplate.tabletPools[0].dataVolumeClaimTemplate.accessModes[0]",
        offline: "spec.keyspaces[0].partitionings[0].equal.shardTemplate.tabletPools[0].dataVolumeClaimTemplate.accessModes[0]",
    },
    Mistake {
        what: "an empty Secret name",
        example: "initial-cluster.yaml",
        pointer: "/spec/cells/0/gateway/authentication/static/secret/name",
        value: || json!(""),
        server: "spec.cells[0].gateway.authentication.static.secret.name",
        offline: "spec.cells[0].gateway.authentication.static.secret.name",
    },
    Mistake {
        what: "a negative storage request",
        example: "initial-cluster.yaml",
        pointer: "/spec/keyspaces/0/partitionings/0/equal/shardTemplate/tabletPools/0/dataVolumeClaimTemplate/resources/requests/storage",
        value: || json!("-5Gi"),
        server: "spec.keyspaces[0].partitionings[0].equal.shardTemplate.tabletPools[0].dataVolumeClaimTemplate.resources.requests.storage",
        offline: "spec.keyspaces[0].partitionings[0].equal.shardTemplate.tabletPools[0].dataVolumeClaimTemplate.resources.requests.storage",
    },
    Mistake {
        what: "an emptied tablet pool list",
        example: "initial-cluster.yaml",
        pointer: "/spec/keyspaces/0/partitionings/0/equal/shardTemplate/tabletPools",
        value: || json!([]),
        server: "spec.keyspaces[0].partitionings[0].equal.shardTemplate.tabletPools",
        offline: "spec.keyspaces[0].partitionings[0].equal.shardTemplate.tabletPools",
    },
    Mistake {
        what: "two shards at the beginning of a custom partitioning",
        example: "two-keyspaces.yaml",
        pointer: "/spec/keyspaces/1/partitionings/0/custom/shards/1/keyRange",
        value: || json!({"end": "c0"}),
        server: "spec.keyspaces[1].partitionings[0].custom.shards",
        offline: "spec.keyspaces[1].partitionings[0].custom.shards",
    },
    Mistake {
        what: "an HPA metric target that is not a number",
        example: "initial-cluster.yaml",
        pointer: "/spec/cells/0/gateway/autoscaler",
        value: || {
            json!({"maxReplicas": 3, "metrics": [{"type": "Resource", "resource": {
                "name": "cpu", "target": {"type": "Utilization", "averageUtilization": "eighty"}
            }}]})
        },
        // Server-side apply names the cell by its key: `.spec.cells[name="zone1"]`.
        server: ".gateway.autoscaler.metrics[0].resource.target.averageUtilization",
        offline: "spec.cells[0].gateway.autoscaler.metrics[0].resource.target.averageUtilization",
    },
    Mistake {
        what: "an etcd peer Service that is not headless",
        example: "initial-cluster.yaml",
        pointer: "/spec/globalLockserver",
        value: || json!({"etcd": {"peerService": {"clusterIP": "10.96.0.77"}}}),
        server: "spec.globalLockserver.etcd.peerService.clusterIP",
        offline: "spec.globalLockserver.etcd.peerService.clusterIP",
    },
    // The admission policy's.
    Mistake {
        what: "a tablet pool in a cell the cluster lacks",
        example: "initial-cluster.yaml",
        pointer: "/spec/keyspaces/0/partitionings/0/equal/shardTemplate/tabletPools/0/cell",
        value: || json!("zone2"),
        server: "spec.keyspaces",
        offline: "spec.keyspaces[0].partitionings[0].equal.shardTemplate.tabletPools[0].cell",
    },
    Mistake {
        what: "overlapping custom key ranges",
        example: "two-keyspaces.yaml",
        pointer: "/spec/keyspaces/1/partitionings/0/custom/shards/1/keyRange",
        value: || json!({"start": "40"}),
        server: "spec.keyspaces",
        offline: "spec.keyspaces[1].partitionings[0].custom.shards[1].keyRange",
    },
];

/// The example's VitessCluster with `pointer` set to `value`, as JSON (which is YAML).
fn edited_example(file: &str, pointer: &str, value: serde_json::Value) -> Result<String> {
    let mut cluster = vitess_operator::cli::yaml::parse_documents(&example(file)?)?
        .into_iter()
        .find(|d| d["kind"] == "VitessCluster")
        .with_context(|| format!("no VitessCluster in {file}"))?;
    let (parent, key) = pointer.rsplit_once('/').context("a pointer")?;
    let target = cluster
        .pointer_mut(parent)
        .with_context(|| format!("{file} has no {parent}"))?;
    match target {
        serde_json::Value::Object(map) => {
            map.insert(key.to_string(), value);
        }
        serde_json::Value::Array(items) => {
            let index: usize = key.parse()?;
            *items
                .get_mut(index)
                .with_context(|| format!("{file} has no {pointer}"))? = value;
        }
        other => bail!("{file}: cannot set {key} in {other}"),
    }
    Ok(serde_json::to_string_pretty(&cluster)?)
}

/// Each mistake the schema once let through (issue 18's list, and what only the pods showed)
/// is refused at apply time naming its field, and `validate` names it too.
#[tokio::test]
async fn mistakes_only_pods_would_show_are_refused_at_apply_time() -> Result<()> {
    install_crds().await?;
    let policy = workspace_dir().join("config/admission/policy.yaml");
    kubectl(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        &policy.to_string_lossy(),
    ])
    .await?;
    let client = client().await?;
    let ns = TestNamespace::create(&client, "crd-mistake").await?;
    // Every example passes the policy; a fresh policy takes a moment to be enforced, so the
    // first of its refusals is waited for.
    for file in [
        "initial-cluster.yaml",
        "two-keyspaces.yaml",
        "backup-gcs.yaml",
    ] {
        server_dry_run(&ns, &example(file)?)
            .await
            .with_context(|| format!("{file} is refused with the admission policy"))?;
    }
    let policy_case = MISTAKES
        .iter()
        .find(|m| m.server == "spec.keyspaces")
        .context("a policy case")?;
    let yaml = edited_example(
        policy_case.example,
        policy_case.pointer,
        (policy_case.value)(),
    )?;
    wait_for(
        "the admission policy to be enforced",
        TIMEOUT,
        async |seen: &mut String| match server_dry_run(&ns, &yaml).await {
            Ok(out) => {
                *seen = format!("accepted: {out}");
                Ok(None)
            }
            Err(err) => Ok(Some(err)),
        },
    )
    .await?;
    let mut failures = Vec::new();
    for case in MISTAKES {
        let yaml = edited_example(case.example, case.pointer, (case.value)())?;
        failures.extend(expect_refused(&ns, case.what, &yaml, case.server, case.offline).await?);
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
