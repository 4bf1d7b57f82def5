//! YAML parity with the Go operator (`make compat`; not part of `make test`, because it reads
//! the Go operator's source from `../shared/anchors/`, which a user's clone lacks).
//!
//! - Every field path of the Go operator's CRDs (`deploy/crds/`) exists in ours with a
//!   compatible type, no field we require is optional there, and no enum of ours refuses a
//!   value its enum allows; or the path is in [`REFUSALS`], with the reason (README lists them
//!   too).
//! - Every YAML of its `test/endtoend/operator/` that holds our kinds passes `validate`, renders
//!   and applies (server-side dry run) to the e2e API server with our CRDs.
//!
//! Each test names every difference it finds, not only the first. Without the anchors the tests
//! skip, saying why, except under `CI=true`, where they fail.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, ensure};
use serde_json::Value;
use vitess_operator::cli::validate::{self, Checker};
use vitess_operator_e2e::{
    TestNamespace, client, go_operator, install_crds, kubectl_with_stdin, workspace_dir,
};

/// What of the Go operator's CRDs we do not serve as it does, and why: (kind, path, the
/// difference, reason). `*` as kind is every kind; a path covers everything under it, `""` is
/// the whole kind, and a path starting with `*` matches paths ending with the rest; the
/// difference is a part of the test's message (`""`: any).
const REFUSALS: &[(&str, &str, &str, &str)] = &[
    (
        "VitessShard",
        ".status.conditions",
        "",
        "status, written by the operator only: ours is the standard list of conditions that \
         GitOps tools read; the Go operator's is a map keyed by condition type",
    ),
    (
        "*",
        ".status",
        "we ",
        "status, written by the operator only: ours says True/False/Unknown where the Go \
         operator's schema takes any string (it writes those three too), and our standard \
         conditions carry reason, message and lastTransitionTime",
    ),
    (
        "*",
        "",
        r#"we require "spec""#,
        "an object without spec describes nothing; every YAML of the Go operator's suite has one",
    ),
    (
        "*",
        "*imagePullPolicy",
        "we allow only",
        "Kubernetes accepts only Always, IfNotPresent and Never; another value fails at pod \
         creation under the Go operator, and at apply time here",
    ),
    (
        "*",
        "*.imagePullPolicies",
        "we allow only",
        "as imagePullPolicy: the values Kubernetes accepts",
    ),
    (
        "*",
        "*.backupEngine",
        "we allow only",
        "Vitess implements only builtin, xtrabackup and mysqlshell; another value fails in every \
         vttablet under the Go operator, and at apply time here",
    ),
    (
        "*",
        "*.accessModes",
        "we allow only",
        "core/v1 knows only ReadWriteOnce, ReadOnlyMany, ReadWriteMany and ReadWriteOncePod; \
         another mode fails when the claim is made under the Go operator, and at apply time here",
    ),
    (
        "*",
        "*.durabilityPolicy",
        "we allow only",
        "Vitess v0.24 registers only none, semi_sync, cross_cell, semi_sync_with_rdonly_ack, \
         cross_cell_with_rdonly_ack and test; another is refused by vtctld under the Go \
         operator, and at apply time here",
    ),
    (
        "*",
        "*.valueFrom",
        r#"we require "name""#,
        "core/v1: an env var from a key of an unnamed ConfigMap or Secret is refused by pod \
         validation under the Go operator, and at apply time here",
    ),
    (
        "*",
        "*.imagePullSecrets[]",
        r#"we require "name""#,
        "core/v1: a pull secret without a name refers to nothing",
    ),
    (
        "*",
        "*.partitionings[].equal",
        r#"we require "shardTemplate""#,
        "a partitioning's shards need their template: inside it the Go operator requires \
         databaseInitScriptSecret too, so a partitioning without one cannot make a tablet",
    ),
    (
        "*",
        "*.gateway.autoscaler",
        r#"we require "maxReplicas""#,
        "an autoscaler without maxReplicas makes an HPA Kubernetes refuses (maxReplicas must \
         be at least 1)",
    ),
];

/// The extracted Go operator source (`e2e/go-operator source`), or `None` when the anchors are
/// missing outside CI (see [`go_operator`]). Under `CI=true` missing anchors fail.
fn go_source(test: &str) -> Result<Option<PathBuf>> {
    let Some(path) = go_operator(test, &["source"])?.and_then(|mut p| p.pop()) else {
        return Ok(None);
    };
    ensure!(
        path.join("deploy/crds").is_dir(),
        "{} has no deploy/crds",
        path.display()
    );
    Ok(Some(path))
}

fn read_yaml_docs(path: &Path) -> Result<Vec<Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
        .with_context(|| format!("parsing {}", path.display()))?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// Kind -> openAPIV3Schema of every CRD in `dir`.
fn schemas(dir: &Path) -> Result<BTreeMap<String, Value>> {
    let mut out = BTreeMap::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    for file in files {
        for crd in read_yaml_docs(&file)? {
            let kind = crd
                .pointer("/spec/names/kind")
                .and_then(Value::as_str)
                .with_context(|| format!("{}: no spec.names.kind", file.display()))?;
            let schema = crd
                .pointer("/spec/versions/0/schema/openAPIV3Schema")
                .cloned()
                .with_context(|| format!("{}: no openAPIV3Schema", file.display()))?;
            out.insert(kind.to_string(), schema);
        }
    }
    Ok(out)
}

/// Every node of a schema by path (`.spec.cells[].name`, `{}` for map values).
fn nodes(schema: &Value, path: &str, out: &mut BTreeMap<String, Value>) {
    out.insert(path.to_string(), schema.clone());
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, sub) in props {
            nodes(sub, &format!("{path}.{name}"), out);
        }
    }
    if let Some(items) = schema.get("items") {
        nodes(items, &format!("{path}[]"), out);
    }
    if let Some(values) = schema.get("additionalProperties").filter(|v| v.is_object()) {
        nodes(values, &format!("{path}{{}}"), out);
    }
}

fn flag(schema: &Value, name: &str) -> bool {
    schema.get(name).and_then(Value::as_bool).unwrap_or(false)
}

fn type_of(schema: &Value) -> Option<&str> {
    schema.get("type").and_then(Value::as_str)
}

/// Why a value the Go schema at a path accepts may be refused by ours, if it may.
fn type_difference(go: &Value, ours: &Value) -> Option<String> {
    let go_ios = flag(go, "x-kubernetes-int-or-string");
    let ours_ios = flag(ours, "x-kubernetes-int-or-string");
    match (type_of(go), go_ios, ours_ios) {
        // Schemaless in Go (any JSON, decoded by its Go type, e.g. a core/v1 Affinity).
        (None, false, _) => None,
        (_, true, true) => None,
        (_, true, false) => Some(format!(
            "Go: integer or string; ours: {}",
            type_of(ours).unwrap_or("any")
        )),
        (Some("integer" | "string"), false, true) => None,
        (Some(go_type), false, false) => match type_of(ours) {
            None => None,
            Some(t) if t == go_type => None,
            Some(t) => Some(format!("Go: {go_type}; ours: {t}")),
        },
        (Some(go_type), false, true) => Some(format!("Go: {go_type}; ours: integer or string")),
    }
}

fn string_set(schema: &Value, key: &str) -> Vec<String> {
    schema
        .get(key)
        .and_then(Value::as_array)
        .map(|items| items.iter().map(|v| v.to_string()).collect())
        .unwrap_or_default()
}

fn path_matches(pattern: &str, path: &str) -> bool {
    if let Some(suffix) = pattern.strip_prefix('*') {
        return path.ends_with(suffix)
            || path.contains(&format!("{suffix}."))
            || path.contains(&format!("{suffix}["))
            || path.contains(&format!("{suffix}{{"));
    }
    pattern.is_empty()
        || path == pattern
        || path.starts_with(&format!("{pattern}.")) // properties under it
        || path.starts_with(&format!("{pattern}[")) // its items
        || path.starts_with(&format!("{pattern}{{")) // its map values
}

/// The reason a difference at `path` of `kind` is refused, if it is.
fn refusal(kind: &str, path: &str, difference: &str) -> Option<&'static str> {
    REFUSALS
        .iter()
        .find(|(k, p, d, _)| {
            (*k == "*" || *k == kind) && path_matches(p, path) && difference.contains(d)
        })
        .map(|(_, _, _, why)| *why)
}

/// The differences between the Go operator's CRDs and ours that no refusal covers, one line
/// each, and the refused ones with their reasons.
fn field_differences(
    go: &BTreeMap<String, Value>,
    ours: &BTreeMap<String, Value>,
) -> (Vec<String>, Vec<String>) {
    let (mut open, mut refused) = (Vec::new(), Vec::new());
    let mut report = |kind: &str, path: &str, difference: String| {
        let line = format!("{kind}: {path}: {difference}");
        match refusal(kind, path, &difference) {
            Some(why) => refused.push(format!("{line} -- refused: {why}")),
            None => open.push(line),
        }
    };
    for (kind, go_schema) in go {
        let Some(our_schema) = ours.get(kind) else {
            report(kind, "", "the kind is missing".into());
            continue;
        };
        let (mut go_nodes, mut our_nodes) = (BTreeMap::new(), BTreeMap::new());
        nodes(go_schema, "", &mut go_nodes);
        nodes(our_schema, "", &mut our_nodes);
        for (path, go_node) in &go_nodes {
            // The API server serves these itself; CRD schemas may or may not list them.
            if matches!(path.as_str(), ".apiVersion" | ".kind") || path.starts_with(".metadata") {
                continue;
            }
            let Some(our_node) = our_nodes.get(path) else {
                // Fine below a node of ours that keeps whatever it is given.
                let kept = our_nodes.iter().any(|(p, n)| {
                    flag(n, "x-kubernetes-preserve-unknown-fields")
                        && path.len() > p.len()
                        && path.starts_with(p.as_str())
                });
                if !kept {
                    let what = type_of(go_node).unwrap_or("schemaless");
                    report(kind, path, format!("missing ({what})"));
                }
                continue;
            };
            if let Some(why) = type_difference(go_node, our_node) {
                report(kind, path, format!("incompatible type ({why})"));
            }
            let go_required = string_set(go_node, "required");
            for field in string_set(our_node, "required") {
                if !go_required.contains(&field) {
                    report(
                        kind,
                        path,
                        format!("we require {field}, the Go operator does not"),
                    );
                }
            }
            let our_enum = string_set(our_node, "enum");
            if !our_enum.is_empty() {
                let go_enum = string_set(go_node, "enum");
                if go_enum.is_empty() {
                    report(
                        kind,
                        path,
                        format!(
                            "we allow only {}, the Go operator any value",
                            our_enum.join(", ")
                        ),
                    );
                }
                for value in go_enum.iter().filter(|v| !our_enum.contains(v)) {
                    report(
                        kind,
                        path,
                        format!("we allow only {}, not {value}", our_enum.join(", ")),
                    );
                }
            }
        }
    }
    (open, refused)
}

#[test]
fn every_field_path_of_the_go_crds_is_in_ours_or_refused() -> Result<()> {
    let Some(source) = go_source("every_field_path_of_the_go_crds_is_in_ours_or_refused")? else {
        return Ok(());
    };
    let go = schemas(&source.join("deploy/crds"))?;
    ensure!(go.len() >= 8, "only {} Go CRDs found", go.len());
    let ours = schemas(&workspace_dir().join("crds"))?;
    let (differences, refused) = field_differences(&go, &ours);
    eprintln!("{} refused difference(s):", refused.len());
    for line in &refused {
        eprintln!("  {line}");
    }
    ensure!(
        differences.is_empty(),
        "{} difference(s) between the Go operator's CRDs and ours (fix ours, or add a refusal \
         with its reason to REFUSALS and the README):\n{}",
        differences.len(),
        differences.join("\n")
    );
    Ok(())
}

/// The Go operator's test YAMLs that hold objects of our kinds.
fn go_test_yamls(source: &Path) -> Result<Vec<(PathBuf, Vec<Value>)>> {
    let dir = source.join("test/endtoend/operator");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let ours: Vec<Value> = read_yaml_docs(&file)?
            .into_iter()
            .filter(|d| d.get("apiVersion").and_then(Value::as_str) == Some("planetscale.com/v2"))
            .collect();
        if !ours.is_empty() {
            out.push((file, ours));
        }
    }
    // 101_initial_cluster*.yaml (6), 102 (2), 103, 201, 302, 306, 401, cluster_*.yaml (2).
    ensure!(
        out.len() >= 13,
        "only {} cluster YAMLs in {}",
        out.len(),
        dir.display()
    );
    Ok(out)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[test]
fn go_test_yamls_validate_and_render() -> Result<()> {
    let Some(source) = go_source("go_test_yamls_validate_and_render")? else {
        return Ok(());
    };
    let checker = Checker::new();
    let mut failures = Vec::new();
    let files = go_test_yamls(&source)?;
    for (path, _) in &files {
        let name = file_name(path);
        let text = std::fs::read_to_string(path)?;
        for problem in validate::check_text(&checker, &name, &text) {
            if problem.is_error() {
                failures.push(format!("validate: {problem}"));
            } else {
                eprintln!("{problem}");
            }
        }
        match vitess_operator::cli::render::run(path) {
            Ok(rendered) => {
                if rendered.trim().is_empty() {
                    failures.push(format!("render: {name}: rendered nothing"));
                }
            }
            Err(err) => failures.push(format!("render: {name}: {err}")),
        }
    }
    ensure!(
        failures.is_empty(),
        "{} of the Go operator's {} test YAMLs fail:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
    Ok(())
}

#[tokio::test]
async fn go_test_yamls_apply_with_our_crds() -> Result<()> {
    let Some(source) = go_source("go_test_yamls_apply_with_our_crds")? else {
        return Ok(());
    };
    let files = go_test_yamls(&source)?;
    install_crds().await?;
    let client = client().await?;
    let ns = TestNamespace::create(&client, "compat-yaml").await?;
    let mut failures = Vec::new();
    for (path, docs) in &files {
        let name = file_name(path);
        // As written, in a namespace of the test's own (the files say `namespace: example`).
        let mut stream = String::new();
        for doc in docs {
            let mut doc = doc.clone();
            if let Some(meta) = doc.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("namespace");
            }
            stream.push_str("---\n");
            stream.push_str(&serde_json::to_string(&doc)?);
            stream.push('\n');
        }
        let applied = kubectl_with_stdin(
            &[
                "apply",
                "--server-side",
                "--dry-run=server",
                "--field-manager=compat-yaml",
                "-n",
                ns.name(),
                "-f",
                "-",
            ],
            Some(&stream),
        )
        .await;
        if let Err(err) = applied {
            failures.push(format!("{name}: {err:#}"));
        }
    }
    ns.delete(std::time::Duration::from_secs(60)).await?;
    ensure!(
        failures.is_empty(),
        "{} of the Go operator's {} test YAMLs do not apply with our CRDs:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
    Ok(())
}

#[test]
fn refusals_cover_what_they_say() {
    let missing = "missing (string)";
    assert!(refusal("VitessBackupSchedule", "", "the kind is missing").is_none());
    assert!(refusal("VitessShard", ".status.conditions{}.reason", missing).is_some());
    assert!(refusal("VitessShard", ".status.conditionsX", missing).is_none());
    assert!(refusal("VitessKeyspace", ".status.resharding", missing).is_none());
    assert!(refusal("VitessCluster", ".spec", missing).is_none());
    let only = "we allow only \"Always\", \"IfNotPresent\", \"Never\", the Go operator any value";
    assert!(refusal("VitessCell", ".spec.imagePullPolicies.vtgate", only).is_some());
    assert!(refusal("EtcdLockserver", ".spec.imagePullPolicy", only).is_some());
    assert!(refusal("VitessCluster", ".spec.imagePullSecrets[]", only).is_none());
}
