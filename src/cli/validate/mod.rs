//! Offline validation of YAML for our kinds, for GitOps pipelines and people before they apply.
//!
//! Every document of kind `planetscale.com/v2` is checked in the order the API server checks
//! it, and then some: the CRD's structural schema (types, enums, bounds, unknown fields), its
//! CEL rules (evaluated with kube-cel, so they are the very rules in `crds/`), then the
//! semantic rules no schema can express. Other documents (Secrets, ...) are passed over.

mod schema;
mod semantic;

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use kube_cel::{CompiledSchema, Validator, compile_schema};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api::{self, VitessCluster, VitessKeyspace, VitessShard};

pub use schema::Issue;
pub use semantic::{cluster_warnings, shard_names};

/// One problem, located in a file, an object and a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file, as given on the command line.
    pub file: String,
    /// `Kind/name`, or `document N` when the document has no name.
    pub object: String,
    /// Field path (`spec.keyspaces[1].partitionings[0]...`); empty for the whole object.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// Accepted, but it does not do what the Go operator does with it; does not fail
    /// `validate`.
    pub warning: bool,
}

impl Problem {
    /// Whether the object is refused (not only warned about).
    pub fn is_error(&self) -> bool {
        !self.warning
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: ", self.file, self.object)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        if self.warning {
            write!(f, "warning: ")?;
        }
        write!(f, "{}", self.message)
    }
}

/// What it takes to check one kind.
struct KindRules {
    schema: Value,
    cel: CompiledSchema,
    /// Typed checks; `Err` when the document cannot be read as the kind at all.
    semantic: SemanticRules,
}

/// Validates objects of our kinds; build once, use for many documents.
pub struct Checker {
    kinds: HashMap<String, KindRules>,
    cel: Validator,
}

impl Default for Checker {
    fn default() -> Self {
        Self::new()
    }
}

impl Checker {
    pub fn new() -> Self {
        let mut kinds = HashMap::new();
        for crd in api::crds() {
            let schema = crd
                .spec
                .versions
                .first()
                .and_then(|v| v.schema.as_ref())
                .and_then(|s| s.open_api_v3_schema.as_ref())
                .and_then(|s| serde_json::to_value(s).ok())
                .map(with_implicit_root_fields)
                .unwrap_or(Value::Null);
            let semantic: SemanticRules = match crd.spec.names.kind.as_str() {
                "VitessCluster" => cluster_rules,
                "VitessKeyspace" => keyspace_rules,
                "VitessShard" => shard_rules,
                _ => no_rules,
            };
            kinds.insert(
                crd.spec.names.kind.clone(),
                KindRules {
                    cel: compile_schema(&schema),
                    schema,
                    semantic,
                },
            );
        }
        Self {
            kinds,
            cel: Validator::new(),
        }
    }

    /// Checks one document. `None` when it is not one of our kinds.
    pub fn check(&self, doc: &Value) -> Option<Vec<Issue>> {
        let kind = doc.get("kind").and_then(Value::as_str)?;
        let rules = self.kinds.get(kind)?;
        let mut issues = Vec::new();
        let api_version = doc.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        if api_version != api::API_VERSION {
            issues.push(Issue {
                path: "apiVersion".into(),
                message: format!(
                    "{kind} is served as {}, not {api_version:?}",
                    api::API_VERSION
                ),
            });
            return Some(issues);
        }
        check_metadata(doc, &mut issues);
        schema::check(&rules.schema, doc, "", &mut issues);
        // The CEL rules and the operator see the object as the API server stores it.
        let doc = &schema::defaulted(&rules.schema, doc);
        // The API server's CEL sees a null field as absent (`has()` is false); kube-cel sees it
        // as present, so the rules run on the document without its nulls.
        let without_nulls = without_nulls(doc);
        if let Err(errors) = self.cel.validate_compiled(&rules.cel, &without_nulls, None) {
            for error in errors.iter() {
                issues.push(Issue {
                    path: error.field_path.clone(),
                    message: error.message.clone(),
                });
            }
        }
        // Report every problem at once; a document the schema already faulted may not decode,
        // and then saying so again would only add noise.
        let shape_ok = issues.is_empty();
        if let Err(decode) = (rules.semantic)(doc, &mut issues)
            && shape_ok
        {
            issues.push(decode);
        }
        Some(issues)
    }
}

impl Checker {
    /// `doc` as the API server would store it: the nulls its schema defaults replaced by their
    /// defaults (what the operator then reads). Unchanged when it is not one of our kinds.
    pub fn defaulted(&self, doc: &Value) -> Value {
        match doc
            .get("kind")
            .and_then(Value::as_str)
            .and_then(|kind| self.kinds.get(kind))
        {
            Some(rules) => schema::defaulted(&rules.schema, doc),
            None => doc.clone(),
        }
    }

    /// What an object of our kinds asks for that is accepted but works otherwise than in the
    /// Go operator (empty for a document that does not decode: `check` says why).
    pub fn warnings(&self, doc: &Value) -> Vec<Issue> {
        let mut out = Vec::new();
        if doc.get("kind").and_then(Value::as_str) == Some("VitessCluster")
            && let Ok(cluster) = serde_json::from_value::<VitessCluster>(doc.clone())
        {
            semantic::cluster_warnings(&cluster.spec, &mut out);
        }
        out
    }
}

/// `value` without the object fields that are null, at any depth (list items stay).
fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// Every object also has `apiVersion`, `kind` and `metadata`, which the API server checks
/// itself and the CRD schema leaves out.
fn with_implicit_root_fields(mut schema: Value) -> Value {
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        props.insert("apiVersion".into(), serde_json::json!({"type": "string"}));
        props.insert("kind".into(), serde_json::json!({"type": "string"}));
        props.insert(
            "metadata".into(),
            serde_json::json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
        );
    }
    schema
}

fn check_metadata(doc: &Value, issues: &mut Vec<Issue>) {
    match doc.pointer("/metadata/name").and_then(Value::as_str) {
        None => issues.push(Issue {
            path: "metadata.name".into(),
            message: "required field is missing".into(),
        }),
        Some(name) if !is_dns_subdomain(name) => issues.push(Issue {
            path: "metadata.name".into(),
            message: format!(
                "{name:?} is not a valid name: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters"
            ),
        }),
        Some(_) => {}
    }
}

fn is_dns_subdomain(name: &str) -> bool {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
    let ok_end = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    !name.is_empty()
        && name.len() <= 253
        && name.chars().all(ok_char)
        && ok_end(name.chars().next())
        && ok_end(name.chars().last())
}

/// Semantic rules of one kind; `Err` says where the document cannot be read as that kind.
type SemanticRules = fn(&Value, &mut Vec<Issue>) -> Result<(), Issue>;

/// Deserializes into a typed kind; the error says where serde disagrees.
fn typed<T: DeserializeOwned>(doc: &Value) -> Result<T, Issue> {
    serde_path_to_error::deserialize::<_, T>(doc).map_err(|err| Issue {
        path: err.path().to_string(),
        message: format!("cannot be read: {}", err.inner()),
    })
}

fn cluster_rules(doc: &Value, issues: &mut Vec<Issue>) -> Result<(), Issue> {
    let cluster = typed::<VitessCluster>(doc)?;
    semantic::check_cluster(&cluster.spec, issues);
    if let Some(name) = &cluster.metadata.name {
        semantic::check_schedule_names(name, &cluster.spec, issues);
    }
    Ok(())
}

fn keyspace_rules(doc: &Value, issues: &mut Vec<Issue>) -> Result<(), Issue> {
    let keyspace = typed::<VitessKeyspace>(doc)?;
    for (p, partitioning) in keyspace.spec.template.partitionings.iter().enumerate() {
        if let Some(custom) = &partitioning.custom {
            semantic::check_custom_ranges(
                custom.shards.iter().map(|s| &s.key_range),
                &format!("spec.partitionings[{p}].custom.shards"),
                &mut |path, message| issues.push(Issue { path, message }),
            );
        }
    }
    Ok(())
}

fn shard_rules(doc: &Value, issues: &mut Vec<Issue>) -> Result<(), Issue> {
    let shard = typed::<VitessShard>(doc)?;
    let range = &shard.spec.key_range;
    if let Err(err) = crate::domain::keyrange::KeyRange::new(&range.start, &range.end) {
        issues.push(Issue {
            path: "spec.keyRange".into(),
            message: err.to_string(),
        });
    }
    Ok(())
}

fn no_rules(_: &Value, _: &mut Vec<Issue>) -> Result<(), Issue> {
    Ok(())
}

/// Checks every document of a YAML text; `file` names it in the problems.
pub fn check_text(checker: &Checker, file: &str, text: &str) -> Vec<Problem> {
    let docs = match crate::cli::yaml::parse_documents(text) {
        Ok(docs) => docs,
        Err(err) => {
            return vec![Problem {
                file: file.into(),
                object: "YAML".into(),
                path: String::new(),
                message: err.to_string(),
                warning: false,
            }];
        }
    };
    let mut problems = Vec::new();
    for (index, doc) in docs.iter().enumerate() {
        let Some(issues) = checker.check(doc) else {
            continue;
        };
        let object = object_name(doc, index);
        let warnings = checker.warnings(doc);
        let marked = issues
            .into_iter()
            .map(|issue| (issue, false))
            .chain(warnings.into_iter().map(|issue| (issue, true)));
        problems.extend(marked.map(|(issue, warning)| Problem {
            file: file.into(),
            object: object.clone(),
            path: issue.path,
            message: issue.message,
            warning,
        }));
    }
    problems
}

fn object_name(doc: &Value, index: usize) -> String {
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("object");
    match doc.pointer("/metadata/name").and_then(Value::as_str) {
        Some(name) => format!("{kind}/{name}"),
        None => format!("{kind} (document {})", index + 1),
    }
}

/// Reads a file, or standard input for `-`.
pub fn read_input(path: &Path) -> std::io::Result<String> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        Ok(text)
    } else {
        std::fs::read_to_string(path)
    }
}

/// `vitess-operator validate`: every problem in every file. A file that cannot be read is a
/// problem too, so the exit code says "not valid" rather than crashing half-way.
pub fn run(files: &[PathBuf]) -> Vec<Problem> {
    let checker = Checker::new();
    let mut problems = Vec::new();
    for path in files {
        let file = path.display().to_string();
        match read_input(path) {
            Ok(text) => problems.extend(check_text(&checker, &file, &text)),
            Err(err) => problems.push(Problem {
                file,
                object: "file".into(),
                path: String::new(),
                message: format!("cannot read: {err}"),
                warning: false,
            }),
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kind without a schema, or with a CEL rule kube-cel cannot compile, would make
    /// `validate` wave everything through (or refuse everything) without saying why.
    #[test]
    fn every_kind_has_a_schema_and_compiled_rules() {
        let checker = Checker::new();
        assert_eq!(checker.kinds.len(), crate::api::crds().len());
        for (kind, rules) in &checker.kinds {
            assert!(
                rules.schema.get("properties").is_some(),
                "{kind} has no schema"
            );
            assert!(
                !rules.cel.has_errors(),
                "{kind}: {:?}",
                rules.cel.compilation_errors()
            );
        }
    }
}
