//! Generated hostile input (issue 18, item 7): random mutations of the examples, as a user or a
//! broken pipeline might write them, must never make `validate` panic; and what `validate`
//! accepts must be something the operator can build, with names and labels the API server
//! takes. A mutation replaces a field anywhere in a VitessCluster with a value of the wrong
//! type, out of range, empty, huge, unicode, or another field's value.
//!
//! `PROPTEST_CASES` sets how many clusters are tried (256 by default, `make faults` runs more)
//! and `PROPTEST_RNG_SEED` which (fixed by default); a failure prints the mutation that broke
//! the rule, shrunk. Clusters asking for more than 32 shards, tablets or hex digits are checked
//! by `validate` but not built.

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Value, json};
use vitess_operator::api::VitessCluster;
use vitess_operator::cli::render::render_cluster;
use vitess_operator::cli::validate::{Checker, check_text};
use vitess_operator::cli::yaml;

const EXAMPLES: &[&str] = &[
    "initial-cluster.yaml",
    "two-keyspaces.yaml",
    "backup-gcs.yaml",
    "scheduled-backups.yaml",
];

fn example(name: &str) -> Value {
    let path = format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("an example");
    yaml::parse_documents(&text)
        .expect("YAML")
        .into_iter()
        .find(|d| d["kind"] == "VitessCluster")
        .expect("a VitessCluster")
}

/// JSON pointers of every value under `spec` (objects, lists and leaves).
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let next = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
                out.push(next.clone());
                pointers(child, next, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let next = format!("{at}/{i}");
                out.push(next.clone());
                pointers(child, next, out);
            }
        }
        _ => {}
    }
}

/// Values a field might wrongly get.
fn hostile() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        Just(json!(-1)),
        Just(json!(0)),
        Just(json!(65537)),
        Just(json!(i64::MAX)),
        Just(json!(1.5)),
        Just(json!(true)),
        Just(json!("")),
        Just(json!("-80-40")),
        Just(json!("UPPER_case")),
        Just(json!("zone2")),
        Just(json!("80")),
        Just(json!("ünïcødé")),
        Just(json!("a".repeat(64))),
        Just(json!("x".repeat(300))),
        Just(json!("line\nbreak")),
        Just(json!([])),
        Just(json!([{}])),
        Just(json!({})),
        Just(json!({"unknown": 1})),
        "[a-z0-9-]{1,70}".prop_map(Value::String),
        any::<i32>().prop_map(|n| json!(n)),
    ]
}

/// One mutation: a field (by index among the cluster's pointers) and what it becomes, or a
/// copy of another field's value.
#[derive(Debug, Clone)]
enum Mutation {
    Set(Index, Value),
    CopyFrom(Index, Index),
    Remove(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), hostile()).prop_map(|(i, v)| Mutation::Set(i, v)),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(i, j)| Mutation::CopyFrom(i, j)),
        1 => any::<Index>().prop_map(Mutation::Remove),
    ]
}

fn apply(doc: &mut Value, mutation: &Mutation) {
    let mut all = Vec::new();
    pointers(&doc["spec"], "/spec".into(), &mut all);
    if all.is_empty() {
        return;
    }
    let (target, value) = match mutation {
        Mutation::Set(i, v) => (i.get(&all).clone(), Some(v.clone())),
        Mutation::CopyFrom(i, j) => (
            i.get(&all).clone(),
            doc.pointer(j.get(&all).as_str()).cloned(),
        ),
        Mutation::Remove(i) => (i.get(&all).clone(), None),
    };
    let Some((parent, key)) = target.rsplit_once('/') else {
        return;
    };
    let key = key.replace("~1", "/").replace("~0", "~");
    match (doc.pointer_mut(parent), value) {
        (Some(Value::Object(map)), Some(value)) => {
            map.insert(key, value);
        }
        (Some(Value::Object(map)), None) => {
            map.remove(&key);
        }
        (Some(Value::Array(items)), value) => {
            if let Ok(i) = key.parse::<usize>()
                && i < items.len()
            {
                match value {
                    Some(value) => items[i] = value,
                    None => {
                        items.remove(i);
                    }
                }
            }
        }
        _ => {}
    }
}

/// Whether the cluster asks for so many objects (shards, tablets, replicas) that building them
/// all would only measure the machine: valid, but not built here.
fn huge(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.iter().any(|(key, v)| {
            (matches!(key.as_str(), "parts" | "replicas" | "hexWidth")
                && v.as_i64().is_some_and(|n| n > 32))
                || huge(v)
        }),
        Value::Array(items) => items.iter().any(huge),
        _ => false,
    }
}

/// A DNS subdomain (object names), as the API server checks it.
fn is_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

/// A label value, as the API server checks it.
fn is_label_value(value: &str) -> bool {
    value.len() <= 63
        && (value.is_empty()
            || (value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
                && value.as_bytes()[0].is_ascii_alphanumeric()
                && value.as_bytes()[value.len() - 1].is_ascii_alphanumeric()))
}

/// What is wrong with the rendered objects' names and labels, one line each.
fn name_problems(rendered: &str) -> Vec<String> {
    let mut out = Vec::new();
    for doc in yaml::parse_documents(rendered).expect("render prints YAML") {
        let kind = doc["kind"].as_str().unwrap_or("?").to_string();
        let name = doc["metadata"]["name"].as_str().unwrap_or_default();
        if !is_subdomain(name) {
            out.push(format!("{kind} name {name:?}"));
        }
        if kind == "Service" && name.len() > 63 {
            out.push(format!("Service name {name:?} is longer than 63"));
        }
        for (key, value) in doc["metadata"]["labels"].as_object().into_iter().flatten() {
            if !value.as_str().is_some_and(is_label_value) {
                out.push(format!("{kind} {name}: label {key}={value}"));
            }
        }
    }
    out
}

thread_local! {
    /// Compiling the CRDs' rules takes longer than checking a cluster: once per thread.
    static CHECKER: Checker = Checker::new();
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256),
        failure_persistence: None,
        // The same clusters on every run unless PROPTEST_RNG_SEED says otherwise (`make
        // faults` draws new ones), so that `make test` cannot fail by chance.
        rng_seed: proptest::test_runner::RngSeed::Fixed(
            std::env::var("PROPTEST_RNG_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20_261_206),
        ),
        ..ProptestConfig::default()
    })]

    /// Whatever the mutations, `validate` answers (no panic), each problem names a place; and
    /// when it finds nothing wrong, the operator builds every object without an error, with
    /// names and labels the API server accepts.
    #[test]
    fn what_validate_accepts_the_operator_can_build(
        which in 0..EXAMPLES.len(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let mut doc = example(EXAMPLES[which]);
        for m in &mutations {
            apply(&mut doc, m);
        }
        let text = yaml::to_documents(&[&doc]).expect("YAML out");
        let problems = CHECKER.with(|checker| check_text(checker, "mutated.yaml", &text));
        for p in &problems {
            prop_assert!(!p.message.is_empty(), "a problem without a message: {p:?}");
        }
        if problems.iter().any(|p| p.is_error()) || huge(&doc) {
            return Ok(());
        }
        // The operator reads the cluster as the API server stores it (nulls defaulted).
        let stored = CHECKER.with(|checker| checker.defaulted(&doc));
        let cluster: VitessCluster = serde_json::from_value(stored)
            .map_err(|e| TestCaseError::fail(format!("validate accepted what does not decode: {e}\n{text}")))?;
        let rendered = render_cluster(&cluster)
            .map_err(|e| TestCaseError::fail(format!("validate accepted what cannot be built: {e}\n{text}")))?;
        let bad = name_problems(&rendered);
        prop_assert!(bad.is_empty(), "validate accepted {text}\nbut the objects would be refused: {bad:#?}");
    }
}
