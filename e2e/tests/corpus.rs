//! A corpus of generated bad VitessClusters against the live API server and the operator
//! (issue 18, item 7). `CORPUS_CASES` (default 200) mutations of the examples
//! (`examples/*.yaml`, and `initial-cluster.yaml` given a second cell), drawn from
//! `CORPUS_SEED` (printed; fixed by default, so that `make test` cannot fail by chance), in nine
//! classes taken in turn: wrong types, out-of-range numbers, overlapping or gapped custom key
//! ranges, unknown cells, names over 63 characters (the cluster's, a cell's, a keyspace's, a
//! pool's, a zone, a backup location's, a Secret's), huge lists, unicode, duplicate keys (one
//! key twice in a YAML mapping, as text, or two list entries with one key) and missing Secrets.
//! The classes whose cases are mostly legal (huge lists, unicode, missing Secrets) mutate the
//! running example only, so that such a case changes what it says and nothing else.
//!
//! Each case goes to the API server as a server-side apply (`--dry-run=server` first) over the
//! running base cluster (`two-keyspaces.yaml`, two cells, Ready on KWOK pods with the fake
//! vtctld): as JSON, as `kubectl apply --server-side` sends it, or through kubectl itself for
//! a name a URL must escape. A text with a key written twice is the apply's body as written,
//! with strict field validation, as a tool that sends its YAML does; kubectl cannot be that
//! tool: its YAML decoder keeps the last of two values and says nothing (its verdict on each
//! such text is counted in the table's notes; `validate` refuses them all). Then:
//!
//! - refused at apply time: the message names a field path (`spec.cells[0].zone`,
//!   `spec.keyspaces`, `metadata.name`, ...), or, when the API server's YAML decoder refuses a
//!   key written twice, the key and its line;
//! - accepted, and `vitess-operator validate` refuses the same text: applied for real, as an
//!   update of the running cluster (or beside it when it renames `metadata.name`), the operator
//!   must report it, `Ready=False` with reason `InvalidSpec` naming the field `validate` names,
//!   and an `InvalidSpec` Event, without touching what runs: every pod, Deployment, Service,
//!   PVC, PodDisruptionBudget, VitessCell, VitessKeyspace, VitessShard and EtcdLockserver keeps
//!   its uid, labels, annotations and spec. A cluster the operator cannot even read (its watch
//!   of VitessClusters fails on it) is not reported;
//! - accepted, and `validate` accepts it: a legal cluster, applied for real: the operator acts
//!   on it at every level without an error: the cluster's `status.observedGeneration` catches
//!   up with its `metadata.generation`, and every VitessCell's, VitessKeyspace's,
//!   VitessShard's, EtcdLockserver's and VitessBackupStorage's with theirs, the cluster is not
//!   `InvalidSpec`, and no reconcile fails meanwhile. A case of a class that is never legal
//!   (out-of-range numbers, key ranges, unknown cells, long names, duplicate keys) that gets
//!   this far is a failure of its own, as the API server or `validate` should have refused it;
//!   it is still applied (unless it asks for more than 32 tablets or shards), to show what the
//!   operator does with it.
//!
//! After each case the base spec is applied again and the operator must act on it at every
//! level. The cases the operator must report run first, on the settled base, which must be
//! Ready again before the next; the legal ones after them, as their changes take a while to
//! roll out. The operator must stay up throughout: a crash (or an operator that no longer
//! acts on the base spec) is a failure of the case, with the panic from its log, and it is
//! started again for the next. `validate` panicking on a case is a failure too. Once the
//! corpus is done a last valid change (two vtgates in `zone1`) must be followed and the
//! cluster be Ready again.
//!
//! Missing Secrets are no mistake of the spec, and no check refuses them (a Secret may well be
//! created after the cluster that names it). The operator itself reads only the Secrets of
//! `spec.vitessDashboard.clientTLS` (vtctld's client certificates): a missing one is reported
//! as `TopologyRegistered=False` naming the field and the Secret (asserted), with a
//! `VtctldUnreachable` Warning. Every other Secret (a gateway's users or TLS, an init script,
//! vtadmin's RBAC, backup credentials, a key the Secret lacks) is mounted into pods, which is
//! Kubernetes' business: the operator acts on the spec as on any other (asserted), and on a
//! real node the pod waits in `ContainerCreating` with `FailedMount` Events until the Secret
//! exists; KWOK's pods here run without mounting anything.
//!
//! Each case applied for real prints a line as it goes. The table (class, cases, refused at
//! apply time, reported by the operator, accepted as legal, failed) goes to
//! `target/e2e-figures/corpus.{json,md}`, the text of each failed case to
//! `target/e2e-figures/corpus-failures/`, and the test fails listing every failed case with
//! its text. About 90 s for the default corpus once the base cluster is Ready.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use futures::future::try_join_all;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::events::v1::Event;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, ValidationDirective,
};
use kube::{Client, Resource, ResourceExt};
use serde_json::{Map, Value, json};
use vitess_operator::cli::validate::{Checker, Problem, check_text};
use vitess_operator::cli::yaml;
use vitess_operator_e2e::{
    FIELD_MANAGER, Operator, Rng, apply_yaml, condition_detail, dynamic, kubectl_with_stdin,
    wait_for, with_fake_vtctld, workspace_dir, write_figures,
};

const DEFAULT_SEED: u64 = 20_261_207;
const DEFAULT_CASES: usize = 200;
/// The name of every example's cluster, and so of the running one.
const CLUSTER: &str = "example";
/// The example that runs, and the one the classes whose cases are mostly legal mutate.
const BASE: &str = "two-keyspaces.yaml";
const TWO_CELLS: &str = "initial-cluster.yaml with a second cell";
/// The base cluster becoming Ready, at the start and after the last change.
const READY: Duration = Duration::from_secs(180);
/// The operator reporting a case (it needs one reconcile).
const REPORTED: Duration = Duration::from_secs(10);
/// The operator acting on a legal case, or on the base spec after one.
const ACTED: Duration = Duration::from_secs(30);
/// The operator acting on the base spec again, and the cluster Ready again after a reported
/// case.
const RESTORED: Duration = Duration::from_secs(60);
/// Longest case text shown in the failure message (all of it is written to a file).
const SHOWN: usize = 3000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_clusters_are_refused_or_reported_and_never_wedge_the_operator() -> Result<()> {
    let seed = env_number("CORPUS_SEED", DEFAULT_SEED)?;
    let count = env_number("CORPUS_CASES", DEFAULT_CASES as u64)? as usize;
    eprintln!("corpus: CORPUS_SEED={seed} CORPUS_CASES={count}");
    let sources = sources()?;
    let cases = corpus(seed, count, &sources)?;
    let missing: Vec<&str> = Class::ALL
        .iter()
        .filter(|class| !cases.iter().any(|c| c.class == **class))
        .map(|class| class.name())
        .collect();
    ensure!(
        missing.is_empty(),
        "no case of {} (CORPUS_CASES={count} is too few)",
        missing.join(", ")
    );
    let started = Instant::now();
    let checker = Checker::new();
    let mut outcomes: Vec<Outcome> = cases
        .iter()
        .map(|case| Outcome::new(offline_errors(&checker, case)))
        .collect();
    let base = sources
        .iter()
        .find(|s| s.name == BASE)
        .context("the base example")?
        .doc
        .clone();
    let outcomes_ref = &mut outcomes;
    with_fake_vtctld("corpus", async |client, ns, operator, _, _| {
        let live = Live::new(client, ns, base);
        live.start(operator).await?;
        eprintln!("corpus: base cluster Ready after {:?}", started.elapsed());
        live.run(operator, &cases, outcomes_ref).await?;
        live.last_change(operator).await
    })
    .await?;
    report(seed, &cases, &outcomes, started.elapsed())
}

/// A plain unit test of the generator: the corpus replays from its seed, covers every class,
/// and holds no case twice.
#[test]
fn the_corpus_replays_from_its_seed_and_covers_every_class() -> Result<()> {
    let sources = sources()?;
    let texts = |seed| -> Result<Vec<String>> {
        Ok(corpus(seed, 60, &sources)?
            .into_iter()
            .map(|c| c.text)
            .collect())
    };
    ensure!(texts(7)? == texts(7)?, "the same seed gave another corpus");
    ensure!(texts(7)? != texts(8)?, "another seed gave the same corpus");
    let cases = corpus(DEFAULT_SEED, DEFAULT_CASES, &sources)?;
    let unique: HashSet<&str> = cases.iter().map(|c| c.text.as_str()).collect();
    ensure!(unique.len() == cases.len(), "a case is in the corpus twice");
    for source in &sources {
        ensure!(
            cases.iter().any(|c| c.source == source.name),
            "no case mutates {}",
            source.name
        );
    }
    for class in Class::ALL {
        let of = cases.iter().filter(|c| c.class == class).count();
        ensure!(of >= 5, "only {of} cases of {}", class.name());
    }
    Ok(())
}

fn env_number(name: &str, default: u64) -> Result<u64> {
    match std::env::var(name) {
        Ok(text) if !text.trim().is_empty() => text
            .trim()
            .parse()
            .with_context(|| format!("{name}={text:?} is not a number")),
        _ => Ok(default),
    }
}

// ---------------------------------------------------------------------------------------------
// The corpus.

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    WrongType,
    OutOfRange,
    KeyRanges,
    UnknownCell,
    LongName,
    HugeList,
    Unicode,
    DuplicateKey,
    MissingSecret,
}

impl Class {
    const ALL: [Class; 9] = [
        Class::WrongType,
        Class::OutOfRange,
        Class::KeyRanges,
        Class::UnknownCell,
        Class::LongName,
        Class::HugeList,
        Class::Unicode,
        Class::DuplicateKey,
        Class::MissingSecret,
    ];

    fn name(self) -> &'static str {
        match self {
            Class::WrongType => "wrong types",
            Class::OutOfRange => "out-of-range numbers",
            Class::KeyRanges => "overlapping or gapped key ranges",
            Class::UnknownCell => "unknown cells",
            Class::LongName => "names over 63 characters",
            Class::HugeList => "huge lists",
            Class::Unicode => "unicode",
            Class::DuplicateKey => "duplicate keys",
            Class::MissingSecret => "missing secrets",
        }
    }

    /// Whether a case of the class may be a legal cluster: a wrong type the schema takes (a
    /// number for a quantity), a long list without a limit, unicode in free text, a Secret not
    /// created yet. The others are mistakes whatever the field.
    fn may_be_legal(self) -> bool {
        matches!(
            self,
            Class::WrongType | Class::HugeList | Class::Unicode | Class::MissingSecret
        )
    }

    /// Whether its cases mutate the running example only (see [`BASE`]): the classes whose
    /// cases are mostly legal, so that each such case changes what it says and no more (a
    /// legal case of another example also changes the tablets' storage request, say).
    fn base_only(self) -> bool {
        matches!(
            self,
            Class::Unicode | Class::MissingSecret | Class::HugeList
        )
    }
}

/// An example, as a document and as the text a user has.
struct Source {
    name: &'static str,
    doc: Value,
    /// The VitessCluster's YAML document, comments and all.
    text: String,
}

/// One generated bad cluster.
struct Case {
    number: usize,
    class: Class,
    source: &'static str,
    /// What was changed, for people.
    what: String,
    /// What is applied: YAML (JSON is YAML).
    text: String,
    /// Its `metadata.name` (the running cluster's, unless the case renames it).
    name: String,
    /// Sent through kubectl, which escapes it in the URL, rather than as JSON through the
    /// API: a `metadata.name` beyond a-z, 0-9, '-' and '.'.
    kubectl: bool,
    duplicate: Option<Duplicate>,
}

/// A key written twice in one mapping, and the lines (from 1) it is on.
struct Duplicate {
    key: String,
    lines: [usize; 2],
}

enum Mutated {
    Doc(String, Value),
    Text(String, String, Duplicate),
}

fn example_text(file: &str) -> Result<String> {
    let path = workspace_dir().join("examples").join(file);
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

/// The four examples and the two-cell variant of the first.
fn sources() -> Result<Vec<Source>> {
    let mut out = Vec::new();
    for name in [
        "initial-cluster.yaml",
        BASE,
        "backup-gcs.yaml",
        "scheduled-backups.yaml",
    ] {
        let file = example_text(name)?;
        let text = file
            .split("\n---\n")
            .find(|d| d.contains("kind: VitessCluster"))
            .with_context(|| format!("no VitessCluster in {name}"))?
            .to_string();
        let doc = yaml::parse_documents(&text)?
            .into_iter()
            .next()
            .with_context(|| format!("{name} is empty"))?;
        out.push(Source { name, doc, text });
    }
    let doc = two_cells(&out[0].doc)?;
    let text = yaml::to_documents(&[&doc])?;
    out.push(Source {
        name: TWO_CELLS,
        doc,
        text,
    });
    Ok(out)
}

/// `initial-cluster.yaml` with a cell `zone2`: its own vtgate, an rdonly tablet of
/// `commerce`, and vtctld and vtadmin in both cells.
fn two_cells(initial: &Value) -> Result<Value> {
    let mut doc = initial.clone();
    let zone2 = json!({
        "name": "zone2",
        "zone": "zone2",
        "gateway": {
            "replicas": 1,
            "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        },
    });
    array_at(&mut doc, "/spec/cells")?.push(zone2);
    *doc.pointer_mut("/spec/vitessDashboard/cells")
        .context("initial-cluster.yaml has no vitessDashboard.cells")? = json!(["zone1", "zone2"]);
    *doc.pointer_mut("/spec/vtadmin/cells")
        .context("initial-cluster.yaml has no vtadmin.cells")? = json!(["zone1", "zone2"]);
    let pools = array_at(
        &mut doc,
        "/spec/keyspaces/0/partitionings/0/equal/shardTemplate/tabletPools",
    )?;
    let mut rdonly = pools.first().context("a tablet pool")?.clone();
    rdonly["cell"] = json!("zone2");
    rdonly["type"] = json!("rdonly");
    rdonly["replicas"] = json!(1);
    pools.push(rdonly);
    Ok(doc)
}

fn array_at<'a>(doc: &'a mut Value, pointer: &str) -> Result<&'a mut Vec<Value>> {
    doc.pointer_mut(pointer)
        .and_then(Value::as_array_mut)
        .with_context(|| format!("no list at {pointer}"))
}

/// `count` cases from `seed`: the classes in turn, each case a mutation of an example drawn
/// for it; no text twice.
fn corpus(seed: u64, count: usize, sources: &[Source]) -> Result<Vec<Case>> {
    let mut rng = Rng::new(seed);
    let mut cases: Vec<Case> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut attempts = 0;
    while cases.len() < count {
        attempts += 1;
        ensure!(
            attempts < count * 50 + 100,
            "only {} distinct cases after {attempts} attempts",
            cases.len()
        );
        let class = Class::ALL[cases.len() % Class::ALL.len()];
        let source = if class.base_only() {
            sources.iter().find(|s| s.name == BASE)
        } else {
            rng.pick(sources)
        }
        .context("no example")?;
        let Some(mutated) = mutate(&mut rng, class, source) else {
            continue;
        };
        let (what, text, name, duplicate) = match mutated {
            Mutated::Doc(what, doc) => {
                let name = doc["metadata"]["name"]
                    .as_str()
                    .unwrap_or(CLUSTER)
                    .to_string();
                (what, serde_json::to_string_pretty(&doc)?, name, None)
            }
            Mutated::Text(what, text, duplicate) => (what, text, CLUSTER.into(), Some(duplicate)),
        };
        if !seen.insert(text.clone()) {
            continue;
        }
        let plain = name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        cases.push(Case {
            number: cases.len() + 1,
            class,
            source: source.name,
            what,
            text,
            kubectl: !plain,
            name,
            duplicate,
        });
    }
    Ok(cases)
}

fn mutate(rng: &mut Rng, class: Class, source: &Source) -> Option<Mutated> {
    match class {
        Class::WrongType => wrong_type(rng, source),
        Class::OutOfRange => out_of_range(rng, source),
        Class::KeyRanges => key_ranges(rng, source),
        Class::UnknownCell => unknown_cell(rng, source),
        Class::LongName => long_name(rng, source),
        Class::HugeList => huge_list(rng, source),
        Class::Unicode => unicode(rng, source),
        Class::DuplicateKey => duplicate_key(rng, source),
        Class::MissingSecret => missing_secret(rng, source),
    }
}

/// A value of another JSON type than `old` has.
fn wrong_type(rng: &mut Rng, source: &Source) -> Option<Mutated> {
    let mut doc = source.doc.clone();
    let all = pointers(&doc, |_, _| true);
    let at = rng.pick(&all)?.clone();
    let old = doc.pointer(&at)?.clone();
    let choices = match &old {
        Value::String(_) => vec![
            json!(7),
            json!(true),
            json!(["x"]),
            json!({"x": "y"}),
            json!(0.5),
        ],
        Value::Number(_) => vec![
            json!("2"),
            json!(true),
            json!([2]),
            json!({"n": 2}),
            json!(2.5),
        ],
        Value::Bool(_) => vec![json!("true"), json!(1), json!([true])],
        Value::Array(_) => vec![json!({"0": "x"}), json!("a list"), json!(3)],
        Value::Object(_) => vec![json!(["x"]), json!("an object"), json!(7), json!(false)],
        Value::Null => vec![json!(1)],
    };
    let new = rng.pick(&choices)?.clone();
    let what = format!("{} = {} (was {})", dotted(&at), short(&new), type_of(&old));
    set(&mut doc, &at, new).then_some(Mutated::Doc(what, doc))
}

/// A number below a field's minimum or above its maximum (or beyond its integer type), a
/// negative quantity, an odd hex width, an autoscaler whose bounds cross.
fn out_of_range(rng: &mut Rng, source: &Source) -> Option<Mutated> {
    let mut doc = source.doc.clone();
    // By kind of field first, so that the many quantities of an example do not crowd out
    // its few counts.
    let mut counts: Vec<(String, Vec<Value>)> = Vec::new();
    for at in pointers(&doc, |_, v| v.is_number()) {
        let values = match last_key(&at) {
            "replicas" => vec![
                json!(-1),
                json!(-100),
                json!(2_147_483_648_i64),
                json!(-2_147_483_649_i64),
                json!(i64::MAX),
            ],
            "parts" => vec![json!(0), json!(-4), json!(65_537), json!(2_147_483_648_i64)],
            "hexWidth" => vec![json!(-2), json!(65_538)],
            "port" => vec![json!(0), json!(65_536), json!(-1)],
            "minReplicas"
            | "maxReplicas"
            | "terminationGracePeriodSeconds"
            | "jobTimeoutMinute"
            | "allowedMissedRun"
            | "startingDeadlineSeconds" => vec![json!(-1)],
            _ => continue,
        };
        counts.push((at, values));
    }
    let quantities: Vec<(String, Vec<Value>)> = pointers(&doc, |p, v| {
        v.is_string() && (p.contains("/resources/requests/") || p.contains("/resources/limits/"))
    })
    .into_iter()
    .map(|at| {
        let values = if at.contains("dataVolumeClaimTemplate") {
            vec![json!("-5Gi"), json!("0"), json!("-1")]
        } else {
            vec![json!("-50m"), json!("-1Gi"), json!("-1")]
        };
        (at, values)
    })
    .collect();
    // Fields the examples leave out.
    let widths: Vec<(String, Vec<Value>)> = pointers(&doc, |p, _| p.ends_with("/equal"))
        .into_iter()
        .map(|at| {
            let values = vec![json!(1), json!(3), json!(-2), json!(65_537)];
            (format!("{at}/hexWidth"), values)
        })
        .collect();
    let mut gateways: Vec<(String, Vec<Value>)> = Vec::new();
    for at in pointers(&doc, |p, _| p.ends_with("/gateway")) {
        gateways.push((
            format!("{at}/terminationGracePeriodSeconds"),
            vec![json!(-30)],
        ));
        gateways.push((
            format!("{at}/autoscaler"),
            vec![
                json!({"minReplicas": 5, "maxReplicas": 2}),
                json!({"maxReplicas": 0}),
                json!({"minReplicas": -1, "maxReplicas": 3}),
            ],
        ));
    }
    // Shard bounds wider than a shard's label (`start-end`, at most 63 characters) or a bound
    // (64 hex digits) holds: by `hexWidth`, or written out in custom shards.
    let mut wide: Vec<(String, Vec<Value>)> = Vec::new();
    for at in pointers(&doc, |p, _| p.ends_with("/equal")) {
        let mut equal = doc.pointer(&at).cloned().unwrap_or_default();
        let values = [(2, 62), (3, 32), (2, 66), (2, 130), (2, 65_536)]
            .into_iter()
            .map(|(parts, width)| {
                equal["parts"] = json!(parts);
                equal["hexWidth"] = json!(width);
                equal.clone()
            })
            .collect();
        wide.push((at, values));
    }
    for at in pointers(&doc, |p, _| p.ends_with("/custom/shards")) {
        let Some(first) = doc.pointer(&at).and_then(|s| s.get(0)).cloned() else {
            continue;
        };
        let shards = |bounds: &[(&str, &str)]| {
            let shards: Vec<Value> = bounds
                .iter()
                .map(|(start, end)| {
                    let mut shard = first.clone();
                    shard["keyRange"] = json!({"start": start, "end": end});
                    shard
                })
                .collect();
            Value::Array(shards)
        };
        let (low, high) = ("4".repeat(32), "c".repeat(32));
        let half = format!("8{}", "0".repeat(61));
        wide.push((
            at,
            vec![
                shards(&[("", &low), (&low, &high), (&high, "")]),
                shards(&[("", &half), (&half, "")]),
            ],
        ));
    }
    let kinds: Vec<&Vec<(String, Vec<Value>)>> = [&counts, &quantities, &widths, &gateways, &wide]
        .into_iter()
        .filter(|k| !k.is_empty())
        .collect();
    let kind = *rng.pick(&kinds)?;
    let (at, values) = rng.pick(kind)?.clone();
    let value = rng.pick(&values)?.clone();
    let shown = match &value {
        Value::Array(shards) => shards
            .iter()
            .map(|s| {
                let bound = |b: &str| s["keyRange"][b].as_str().unwrap_or_default().to_string();
                format!("{}-{}", bound("start"), bound("end"))
            })
            .collect::<Vec<_>>()
            .join(", "),
        Value::Object(equal) if equal.contains_key("hexWidth") => {
            format!("parts {}, hexWidth {}", equal["parts"], equal["hexWidth"])
        }
        other => short(other),
    };
    let what = format!("{} = {shown}", dotted(&at));
    set(&mut doc, &at, value).then_some(Mutated::Doc(what, doc))
}

/// Custom shards that overlap, leave a gap, share a start, or meet at bounds of two widths;
/// an example without custom shards gets its equal partitioning made custom.
fn key_ranges(rng: &mut Rng, source: &Source) -> Option<Mutated> {
    let mut doc = source.doc.clone();
    let customs = pointers(&doc, |p, _| p.ends_with("/custom/shards"));
    let (at, template) = match rng.pick(&customs) {
        Some(at) => {
            let mut template = doc.pointer(at)?.as_array()?.first()?.clone();
            template.as_object_mut()?.remove("keyRange");
            (at.clone(), template)
        }
        None => {
            let equals = pointers(&doc, |p, _| p.ends_with("/equal"));
            let equal = rng.pick(&equals)?.clone();
            let template = doc.pointer(&format!("{equal}/shardTemplate"))?.clone();
            let partitioning = equal.strip_suffix("/equal")?.to_string();
            set(&mut doc, &partitioning, json!({"custom": {"shards": []}}));
            (format!("{partitioning}/custom/shards"), template)
        }
    };
    let (what, bounds) = bad_bounds(rng);
    let shards: Vec<Value> = bounds
        .iter()
        .map(|(start, end)| {
            let mut shard = template.clone();
            let mut range = Map::new();
            if !start.is_empty() {
                range.insert("start".into(), json!(start));
            }
            if !end.is_empty() {
                range.insert("end".into(), json!(end));
            }
            shard["keyRange"] = Value::Object(range);
            shard
        })
        .collect();
    let shown: Vec<String> = bounds.iter().map(|(s, e)| format!("{s}-{e}")).collect();
    let what = format!("{} = {} ({what})", dotted(&at), shown.join(", "));
    set(&mut doc, &at, Value::Array(shards)).then_some(Mutated::Doc(what, doc))
}

/// Key ranges that do not tile the keyspace.
fn bad_bounds(rng: &mut Rng) -> (String, Vec<(String, String)>) {
    const FIXED: &[(&str, &[(&str, &str)])] = &[
        ("overlapping", &[("", "80"), ("40", "")]),
        ("a gap", &[("", "40"), ("80", "")]),
        (
            "two shards from one start",
            &[("", "80"), ("80", "c0"), ("80", "")],
        ),
        (
            "an empty range between bounds of two widths",
            &[("", "80"), ("80", "8000"), ("8000", "")],
        ),
        ("overlapping at two widths", &[("", "8080"), ("80", "")]),
        ("a gap at two widths", &[("", "80"), ("8001", "")]),
        (
            "a shard that starts before the last one ends",
            &[("", "80"), ("80", "c0"), ("a0", "")],
        ),
    ];
    if rng.chance(50) {
        let (what, bounds) = FIXED[rng.below(FIXED.len())];
        let bounds = bounds
            .iter()
            .map(|(s, e)| (s.to_string(), e.to_string()))
            .collect();
        return (what.to_string(), bounds);
    }
    const POINTS: &[&str] = &["10", "40", "4000", "80", "8000", "8080", "a0", "c0", "ff"];
    loop {
        let shards = 2 + rng.below(4);
        let mut bounds = Vec::new();
        for i in 0..shards {
            let start = if i == 0 {
                ""
            } else {
                POINTS[rng.below(POINTS.len())]
            };
            let end = if i + 1 == shards {
                ""
            } else {
                POINTS[rng.below(POINTS.len())]
            };
            bounds.push((start.to_string(), end.to_string()));
        }
        if !tiles(&bounds) {
            return ("random bounds".into(), bounds);
        }
    }
}

/// Whether the ranges cover the keyspace once: bounds compare as keyspace-ID prefixes
/// (`80` is `8000`), an empty start is the beginning and an empty end the end.
fn tiles(ranges: &[(String, String)]) -> bool {
    const END: &str = "~";
    let pad = |b: &str, empty: &str| {
        if b.is_empty() {
            empty.to_string()
        } else {
            format!("{b:0<64}")
        }
    };
    let zero = "0".repeat(64);
    let mut sorted: Vec<(String, String)> = ranges
        .iter()
        .map(|(s, e)| (pad(s, &zero), pad(e, END)))
        .collect();
    sorted.sort();
    let mut at = zero;
    for (start, end) in sorted {
        if start != at || end <= start {
            return false;
        }
        at = end;
    }
    at == END
}

/// A tablet pool, vtctld or vtadmin in a cell `spec.cells` lacks; a cell renamed or removed
/// under its pools.
fn unknown_cell(rng: &mut Rng, source: &Source) -> Option<Mutated> {
    let mut doc = source.doc.clone();
    let unknown = [
        "zone9".to_string(),
        "Zone1".to_string(),
        "east".to_string(),
        format!("zone{}", 3 + rng.below(1000)),
    ];
    let cell = rng.pick(&unknown)?.clone();
    let mut choices: Vec<String> = pointers(&doc, |p, _| {
        (p.ends_with("/cell") && p.contains("/tabletPools/"))
            || p.starts_with("/spec/vitessDashboard/cells/")
            || p.starts_with("/spec/vtadmin/cells/")
    });
    let cells = doc["spec"]["cells"].as_array().map_or(0, Vec::len);
    choices.extend((0..cells).map(|i| format!("/spec/cells/{i}/name")));
    choices.extend((0..cells).map(|i| format!("/spec/cells/{i}")));
    let at = rng.pick(&choices)?.clone();
    if at.ends_with("/name") || !at.starts_with("/spec/cells/") {
        let what = format!("{} = {cell}", dotted(&at));
        return set(&mut doc, &at, json!(cell)).then_some(Mutated::Doc(what, doc));
    }
    // A cell removed: its pools are left in it.
    let index: usize = last_key(&at).parse().ok()?;
    let removed = array_at(&mut doc, "/spec/cells").ok()?.remove(index);
    let what = format!(
        "spec.cells[{index}] ({}) removed, its tablet pools left",
        removed["name"].as_str().unwrap_or("?")
    );
    Some(Mutated::Doc(what, doc))
}

/// A name of 64 characters or more: the cluster's (up to 253 is a valid object name), a
/// cell's (with its pools following, or not), a keyspace's, a pool's, a zone, a backup
/// location's or schedule's; a Secret's over 253.
fn long_name(rng: &mut Rng, source: &Source) -> Option<Mutated> {
    let mut doc = source.doc.clone();
    // By kind of name first, so that an example's many pools do not crowd out its one name.
    let cluster = vec![
        ("/metadata/name".to_string(), 64, 253),
        ("/metadata/name".to_string(), 254, 300),
    ];
    let cells = doc["spec"]["cells"].as_array().map_or(0, Vec::len);
    let cell_names: Vec<(String, usize, usize)> = (0..cells)
        .map(|i| (format!("/spec/cells/{i}/name"), 64, 100))
        .collect();
    let zones: Vec<(String, usize, usize)> = (0..cells)
        .map(|i| (format!("/spec/cells/{i}/zone"), 64, 100))
        .collect();
    let keyspaces = doc["spec"]["keyspaces"].as_array().map_or(0, Vec::len);
    let keyspace_names: Vec<(String, usize, usize)> = (0..keyspaces)
        .map(|k| (format!("/spec/keyspaces/{k}/name"), 64, 100))
        .collect();
    let pools: Vec<(String, usize, usize)> =
        pointers(&doc, |p, v| v.is_object() && is_item_of(p, "tabletPools"))
            .into_iter()
            .map(|pool| (format!("{pool}/name"), 64, 100))
            .collect();
    let backups: Vec<(String, usize, usize)> = pointers(&doc, |p, _| {
        p.starts_with("/spec/backup/") && (is_item_of(p, "locations") || is_item_of(p, "schedules"))
    })
    .into_iter()
    .map(|at| (format!("{at}/name"), 64, 100))
    .collect();
    let secrets: Vec<(String, usize, usize)> = secret_names(&doc)
        .into_iter()
        .map(|at| (at, 254, 300))
        .collect();
    let kinds: Vec<&Vec<(String, usize, usize)>> = [
        &cluster,
        &cell_names,
        &zones,
        &keyspace_names,
        &pools,
        &backups,
        &secrets,
    ]
    .into_iter()
    .filter(|k| !k.is_empty())
    .collect();
    let kind = *rng.pick(&kinds)?;
    let (at, shortest, longest) = rng.pick(kind)?.clone();
    let length = shortest + rng.below(longest - shortest + 1);
    let name = long_label(rng, length);
    let mut what = format!("{} = a name of {length} characters", dotted(&at));
    if at.starts_with("/spec/cells/") && at.ends_with("/name") && rng.chance(50) {
        // The pools follow the cell, so that only the length is wrong.
        let old = doc.pointer(&at)?.clone();
        for pool_cell in pointers(&doc, |p, v| p.ends_with("/cell") && *v == old) {
            set(&mut doc, &pool_cell, json!(name));
        }
        what.push_str(", its pools following");
    }
    set(&mut doc, &at, json!(name)).then_some(Mutated::Doc(what, doc))
}

/// `length` characters of a-z, 0-9 and '-', a letter first and no '-' last.
fn long_label(rng: &mut Rng, length: usize) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789-";
    (0..length)
        .map(|i| {
            let pick = if i == 0 {
                rng.below(26)
            } else if i + 1 == length {
                rng.below(36)
            } else {
                rng.below(CHARS.len())
            };
            CHARS[pick] as char
        })
        .collect()
}

/// A list over its limit (cells, keyspaces, pools, custom shards, partitionings, backup
/// locations and schedules), or long where nothing limits it (vtadmin's API addresses, which
/// `validate` wants one of or one per cell; vtctld's flags).
fn huge_list(rng: &mut Rng, source: &Source) -> Option<Mutated> {
    let mut doc = source.doc.clone();
    // (list, fewest and most entries, what makes each entry its own)
    let mut choices: Vec<(String, usize, usize, &'static str)> = vec![
        ("/spec/cells".into(), 51, 80, "name"),
        ("/spec/keyspaces".into(), 201, 230, "name"),
        ("/spec/vitessDashboard/extraFlags".into(), 100, 1000, ""),
    ];
    for at in pointers(&doc, |p, v| v.is_array() && last_key(p) == "tabletPools") {
        choices.push((at, 17, 30, "name"));
    }
    for at in pointers(&doc, |p, v| v.is_array() && p.ends_with("/custom/shards")) {
        choices.push((at, 257, 300, "keyRange"));
    }
    for at in pointers(&doc, |p, v| v.is_array() && last_key(p) == "partitionings") {
        choices.push((at, 3, 6, ""));
    }
    for at in pointers(&doc, |p, v| {
        v.is_array() && (p == "/spec/backup/locations" || p == "/spec/backup/schedules")
    }) {
        let (fewest, most) = if at.ends_with("locations") {
            (11, 20)
        } else {
            (51, 60)
        };
        choices.push((at, fewest, most, "name"));
    }
    if doc.pointer("/spec/vtadmin/apiAddresses").is_some() {
        choices.push(("/spec/vtadmin/apiAddresses".into(), 3, 64, "address"));
    }
    let (at, fewest, most, key) = rng.pick(&choices)?.clone();
    let size = fewest + rng.below(most - fewest + 1);
    let what = format!("{} with {size} entries", dotted(&at));
    if at.ends_with("/extraFlags") {
        let flags: Map<String, Value> = (0..size)
            .map(|i| (format!("corpus-flag-{i}"), json!(i.to_string())))
            .collect();
        return set_creating(&mut doc, &at, Value::Object(flags))
            .then_some(Mutated::Doc(what, doc));
    }
    let first = doc.pointer(&at)?.as_array()?.first()?.clone();
    let items: Vec<Value> = (0..size)
        .map(|i| match key {
            "name" => {
                let mut item = first.clone();
                item["name"] = json!(format!("n{i}"));
                item
            }
            "keyRange" => {
                // Tiles at four hex digits: only the count is wrong.
                let bound = |i: usize| {
                    if i == 0 || i == size {
                        String::new()
                    } else {
                        format!("{:04x}", i * 0xffff / size)
                    }
                };
                let mut item = first.clone();
                item["keyRange"] = json!({"start": bound(i), "end": bound(i + 1)});
                item
            }
            "address" => json!(format!("http://vtadmin-{i}:14001")),
            _ => first.clone(),
        })
        .collect();
    set(&mut doc, &at, Value::Array(items)).then_some(Mutated::Doc(what, doc))
}

/// Unicode where the API wants a name or an enum value, and in free text (flags, images,
/// labels, annotations, a key prefix).
fn unicode(rng: &mut Rng, source: &Source) -> Option<Mutated> {
    const TEXT: &[&str] = &[
        "zöne",
        "ключ",
        "名前",
        "emoji😀",
        "e\u{301}",
        "\u{202e}txt",
        "a\u{200b}b",
        "Ω≈ç√",
        "nul\u{0}byte",
    ];
    let mut doc = source.doc.clone();
    let text = rng.pick(TEXT)?.to_string();
    let mut choices: Vec<String> = vec![
        "/metadata/name".into(),
        "/spec/images/vtctld".into(),
        "/spec/updateStrategy/type".into(),
        "/spec/vitessDashboard/extraFlags/corpus".into(),
        "/spec/vitessDashboard/extraFlags/ünï".into(),
        "/spec/vitessDashboard/annotations/corpus".into(),
    ];
    choices.extend(pointers(&doc, |p, v| {
        v.is_string()
            && matches!(
                last_key(p),
                "name" | "zone" | "cell" | "durabilityPolicy" | "type" | "keyPrefix"
            )
    }));
    let cells = doc["spec"]["cells"].as_array().map_or(0, Vec::len);
    for i in 0..cells {
        choices.push(format!("/spec/cells/{i}/gateway/extraLabels/team"));
        choices.push(format!("/spec/cells/{i}/gateway/extraFlags/corpus"));
    }
    for pool in pointers(&doc, |p, v| v.is_object() && is_item_of(p, "tabletPools")) {
        choices.push(format!("{pool}/annotations/corpus"));
        choices.push(format!("{pool}/vttablet/extraFlags/corpus"));
    }
    let at = rng.pick(&choices)?.clone();
    let value = if at.ends_with("/ünï") {
        json!("x")
    } else if at.starts_with("/spec/images/") {
        json!(format!("vitess/lite:v24.0.3-{text}"))
    } else {
        json!(text)
    };
    let what = format!("{} = {}", dotted(&at), short(&value));
    set_creating(&mut doc, &at, value).then_some(Mutated::Doc(what, doc))
}

/// The same key twice: as text, a mapping's key written again (after a scalar, with another
/// value; before a block, empty), which only a YAML decoder sees; or two entries of a list
/// keyed by name (cells, keyspaces, pools, backup locations) with the same key.
fn duplicate_key(rng: &mut Rng, source: &Source) -> Option<Mutated> {
    if rng.chance(30) {
        let mut doc = source.doc.clone();
        let mut choices = vec!["/spec/cells".to_string(), "/spec/keyspaces".to_string()];
        choices.extend(pointers(&doc, |p, v| {
            v.is_array()
                && (last_key(p) == "tabletPools"
                    || p == "/spec/backup/locations"
                    || p == "/spec/backup/schedules")
        }));
        let at = rng.pick(&choices)?.clone();
        let list = array_at(&mut doc, &at).ok()?;
        let copy = list.get(rng.below(list.len()))?.clone();
        list.push(copy);
        let what = format!("{} holds an entry twice", dotted(&at));
        return Some(Mutated::Doc(what, doc));
    }
    let lines: Vec<&str> = source.text.lines().collect();
    let spec = lines.iter().position(|l| *l == "spec:")?;
    let keys: Vec<(usize, &str, &str, &str)> = lines
        .iter()
        .enumerate()
        .skip(spec + 1)
        .filter_map(|(i, line)| {
            mapping_line(line).map(|(indent, key, value)| (i, indent, key, value))
        })
        .collect();
    let &(i, indent, key, value) = rng.pick(&keys)?;
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let (what, line_numbers) = if value.is_empty() {
        // Before a block: `key: {}`, then the block.
        out.insert(i, format!("{indent}{key}: {{}}"));
        (
            format!("`{key}:` written twice, empty then as a block"),
            [i + 1, i + 2],
        )
    } else {
        let other = other_scalar(value);
        out.insert(i + 1, format!("{indent}{key}: {other}"));
        (
            format!("`{key}: {value}` followed by `{key}: {other}`"),
            [i + 1, i + 2],
        )
    };
    let mut text = out.join("\n");
    text.push('\n');
    let duplicate = Duplicate {
        key: key.to_string(),
        lines: line_numbers,
    };
    Some(Mutated::Text(
        format!("{what} (lines {} and {})", line_numbers[0], line_numbers[1]),
        text,
        duplicate,
    ))
}

/// `(indent, key, value)` of a `key: value` or `key:` line of a block mapping (not a list
/// item's first line, not a comment).
fn mapping_line(line: &str) -> Option<(&str, &str, &str)> {
    let body = line.trim_start_matches(' ');
    let indent = &line[..line.len() - body.len()];
    if body.starts_with('-') || body.starts_with('#') {
        return None;
    }
    let (key, value) = match body.split_once(": ") {
        Some((key, value)) => (key, value.trim()),
        None => (body.strip_suffix(':')?, ""),
    };
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    plain.then_some((indent, key, value))
}

fn other_scalar(value: &str) -> String {
    if value.starts_with('{') {
        "{}".into()
    } else if value.starts_with('[') {
        "[]".into()
    } else if let Ok(n) = value.parse::<i64>() {
        (n + 1).to_string()
    } else if value == "true" {
        "false".into()
    } else if value == "false" {
        "true".into()
    } else {
        "\"other\"".into()
    }
}

/// A Secret named that the namespace does not have: any Secret reference renamed, vtctld's
/// client TLS or a gateway's TLS added, or a key the Secret lacks.
fn missing_secret(rng: &mut Rng, source: &Source) -> Option<Mutated> {
    let mut doc = source.doc.clone();
    let missing = format!("missing-{}", long_label(rng, 6));
    let mut choices: Vec<String> = secret_names(&doc);
    choices.push("/spec/vitessDashboard/clientTLS".into());
    let cells = doc["spec"]["cells"].as_array().map_or(0, Vec::len);
    choices.extend((0..cells).map(|i| format!("/spec/cells/{i}/gateway/secureTransport")));
    choices.extend(
        secret_names(&doc)
            .into_iter()
            .map(|p| format!("{}/key", p.strip_suffix("/name").unwrap_or(&p))),
    );
    let at = rng.pick(&choices)?.clone();
    let (what, value) = if at.ends_with("/clientTLS") {
        (
            format!("{} naming Secret {missing}", dotted(&at)),
            json!({"caSecret": {"name": missing, "key": "ca.crt"}}),
        )
    } else if at.ends_with("/secureTransport") {
        (
            format!("{} naming Secret {missing}", dotted(&at)),
            json!({"tls": {
                "certSecret": {"name": missing, "key": "tls.crt"},
                "keySecret": {"name": missing, "key": "tls.key"},
            }}),
        )
    } else if at.ends_with("/key") {
        (
            format!("{} = a key the Secret lacks", dotted(&at)),
            json!("no-such-key"),
        )
    } else {
        (format!("{} = {missing}", dotted(&at)), json!(missing))
    };
    set_creating(&mut doc, &at, value).then_some(Mutated::Doc(what, doc))
}

/// Pointers to the `name` of every Secret reference.
fn secret_names(doc: &Value) -> Vec<String> {
    pointers(doc, |p, v| {
        let parent = p.rsplit('/').nth(1).unwrap_or_default();
        v.is_string()
            && last_key(p) == "name"
            && (parent.ends_with("Secret") || parent == "secret" || parent == "rbac")
    })
}

/// JSON pointers of every value under `spec` for which `keep` holds.
fn pointers(doc: &Value, keep: impl Fn(&str, &Value) -> bool) -> Vec<String> {
    fn walk(value: &Value, at: String, keep: &dyn Fn(&str, &Value) -> bool, out: &mut Vec<String>) {
        if keep(&at, value) {
            out.push(at.clone());
        }
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    let key = key.replace('~', "~0").replace('/', "~1");
                    walk(child, format!("{at}/{key}"), keep, out);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(child, format!("{at}/{i}"), keep, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Some(spec) = doc.get("spec") {
        walk(spec, "/spec".into(), &keep, &mut out);
    }
    out.retain(|p| p != "/spec");
    out
}

fn last_key(pointer: &str) -> &str {
    pointer.rsplit('/').next().unwrap_or_default()
}

/// Whether `pointer` is an item of a list named `list` (`.../tabletPools/0`).
fn is_item_of(pointer: &str, list: &str) -> bool {
    let mut parts = pointer.rsplit('/');
    let index = parts.next().unwrap_or_default();
    !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()) && parts.next() == Some(list)
}

/// Sets the value at `pointer`, whose parent exists.
fn set(doc: &mut Value, pointer: &str, value: Value) -> bool {
    let Some((parent, key)) = pointer.rsplit_once('/') else {
        return false;
    };
    let key = key.replace("~1", "/").replace("~0", "~");
    match doc.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.insert(key, value);
            true
        }
        Some(Value::Array(items)) => match key.parse::<usize>() {
            Ok(i) if i < items.len() => {
                items[i] = value;
                true
            }
            _ => false,
        },
        _ => false,
    }
}

/// Like [`set`], making the missing objects on the way.
fn set_creating(doc: &mut Value, pointer: &str, value: Value) -> bool {
    let Some((parent, _)) = pointer.rsplit_once('/') else {
        return false;
    };
    if !parent.is_empty() && doc.pointer(parent).is_none() && !set_creating(doc, parent, json!({}))
    {
        return false;
    }
    set(doc, pointer, value)
}

/// `/spec/cells/0/zone` as the API server writes it: `spec.cells[0].zone`.
fn dotted(pointer: &str) -> String {
    let mut out = String::new();
    for part in pointer.trim_start_matches('/').split('/') {
        let part = part.replace("~1", "/").replace("~0", "~");
        if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&part);
        }
    }
    out
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 60 {
        format!("{}...", text.chars().take(60).collect::<String>())
    } else {
        text
    }
}

fn type_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The field paths a message names (`spec.cells[0].zone`, `.spec.x`, `spec:`, `metadata.name`).
fn fields_named(message: &str) -> Vec<String> {
    let mut out = Vec::new();
    for word in ["spec", "metadata"] {
        for (i, _) in message.match_indices(word) {
            let before = message[..i].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let rest = &message[i..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || "._[]-".contains(c)))
                .unwrap_or(rest.len());
            let path = rest[..end].trim_end_matches('.');
            let deeper = path.len() > word.len() && matches!(&path[word.len()..][..1], "." | "[");
            if deeper || (path == word && rest[end..].starts_with(':')) {
                out.push(path.to_string());
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Against the API server and the operator.

/// Where a case went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    /// The API server (or kubectl) refused it.
    Refused,
    /// Accepted, refused by `validate`: the operator must report it.
    Reported,
    /// Accepted by both: a legal cluster.
    Legal,
}

struct Outcome {
    /// What `validate` refuses in the case's text.
    offline: Vec<Problem>,
    route: Route,
    /// The refusal at apply time.
    refusal: Option<String>,
    /// Whether the operator's InvalidSpec Event said what the condition said (kube's Recorder
    /// folds the Events of one reason on one object into the first one's series).
    event_named_field: Option<bool>,
    /// For a key written twice: whether `kubectl apply --server-side` took the text (its YAML
    /// decoder keeps the last value and says nothing).
    kubectl_took: Option<bool>,
    failures: Vec<String>,
}

impl Outcome {
    fn new((offline, panic): (Vec<Problem>, Option<String>)) -> Self {
        let failures = panic
            .map(|p| format!("`vitess-operator validate` panics on it: {p}"))
            .into_iter()
            .collect();
        Self {
            offline,
            route: Route::Refused,
            refusal: None,
            event_named_field: None,
            kubectl_took: None,
            failures,
        }
    }
}

/// What `validate` refuses in the case's text, and its panic message if it panics on it (then
/// it counts as refusing it: the operator runs the same checks, and must not crash either).
fn offline_errors(checker: &Checker, case: &Case) -> (Vec<Problem>, Option<String>) {
    let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        check_text(checker, "corpus.yaml", &case.text)
    }));
    match checked {
        Ok(problems) => (
            problems.into_iter().filter(Problem::is_error).collect(),
            None,
        ),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            let problem = Problem {
                file: "corpus.yaml".into(),
                object: "VitessCluster".into(),
                path: String::new(),
                message: format!("validate panicked: {message}"),
                warning: false,
            };
            (vec![problem], Some(message))
        }
    }
}

/// The kinds of the running cluster's children whose objects must not change while the
/// operator reports a case: (group, version, kind, plural).
const CHILDREN: &[(&str, &str, &str, &str)] = &[
    ("", "v1", "Pod", "pods"),
    ("", "v1", "Service", "services"),
    ("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
    ("apps", "v1", "Deployment", "deployments"),
    (
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
    ),
    (
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
    ),
    ("batch", "v1", "CronJob", "cronjobs"),
    ("planetscale.com", "v2", "VitessCell", "vitesscells"),
    ("planetscale.com", "v2", "VitessKeyspace", "vitesskeyspaces"),
    ("planetscale.com", "v2", "VitessShard", "vitessshards"),
    ("planetscale.com", "v2", "EtcdLockserver", "etcdlockservers"),
    (
        "planetscale.com",
        "v2",
        "VitessBackupStorage",
        "vitessbackupstorages",
    ),
    (
        "planetscale.com",
        "v2",
        "VitessBackupSchedule",
        "vitessbackupschedules",
    ),
];

/// `Kind/name` -> what must not change of it (uid, generation, labels, annotations, spec).
type Children = BTreeMap<String, String>;

/// What a wait for the operator saw: the cluster's Ready condition once its status caught
/// up, a failure of the case, or the operator gone.
enum Seen {
    Status(Option<(String, String, String)>),
    Failed(String),
    Died,
}

/// A cluster's generation, the generation its status is of, and its conditions.
struct State {
    generation: i64,
    observed: i64,
    ready: Option<(String, String, String)>,
    topology: Option<(String, String, String)>,
}

struct Live<'a> {
    client: &'a Client,
    ns: &'a str,
    clusters: Api<DynamicObject>,
    events: Api<Event>,
    base: Value,
}

impl<'a> Live<'a> {
    fn new(client: &'a Client, ns: &'a str, base: Value) -> Self {
        Self {
            client,
            ns,
            clusters: dynamic(client, ns, "VitessCluster"),
            events: Api::namespaced(client.clone(), ns),
            base,
        }
    }

    /// The Secrets the examples name, then the base cluster, Ready.
    async fn start(&self, operator: &mut Operator) -> Result<()> {
        let initial = example_text("initial-cluster.yaml")?;
        let secrets: Vec<&str> = initial
            .split("\n---\n")
            .filter(|d| d.contains("kind: Secret"))
            .collect();
        ensure!(!secrets.is_empty(), "initial-cluster.yaml has no Secret");
        for secret in secrets {
            apply_yaml(self.client, self.ns, secret).await?;
        }
        apply_yaml(
            self.client,
            self.ns,
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: gcs-auth\nstringData:\n  gcs_key.json: '{}'\n",
        )
        .await?;
        self.apply_json(&self.base, false)
            .await?
            .map_err(|refusal| anyhow::anyhow!("the base cluster is refused: {refusal}"))?;
        self.wait_ready(operator, READY).await
    }

    /// Applies `doc` as `kubectl apply --server-side [--dry-run=server]` would; the inner
    /// `Err` is the API server's refusal.
    async fn apply_json(&self, doc: &Value, dry_run: bool) -> Result<Result<(), String>> {
        let name = doc["metadata"]["name"].as_str().unwrap_or(CLUSTER);
        let params = PatchParams {
            dry_run,
            force: true,
            field_manager: Some(FIELD_MANAGER.into()),
            field_validation: Some(ValidationDirective::Strict),
        };
        match self.clusters.patch(name, &params, &Patch::Apply(doc)).await {
            Ok(_) => Ok(Ok(())),
            Err(kube::Error::Api(status)) => Ok(Err(status.message.clone())),
            Err(err) => Err(err).context("applying a case"),
        }
    }

    /// Applies a case: a key written twice as its YAML text itself (the API server decodes
    /// it), a name a URL must escape through kubectl, anything else as JSON.
    async fn apply(&self, case: &Case, dry_run: bool) -> Result<Result<(), String>> {
        if case.duplicate.is_some() {
            return self.apply_text(&case.name, &case.text, dry_run).await;
        }
        if case.kubectl {
            return Ok(self.kubectl_apply(case, dry_run).await);
        }
        let doc: Value = serde_json::from_str(&case.text).context("a case's JSON")?;
        self.apply_json(&doc, dry_run).await
    }

    /// A server-side apply whose body is `text` as written (YAML), with strict field
    /// validation, as a tool that sends its YAML to the API server does; the inner `Err` is
    /// the API server's refusal.
    async fn apply_text(
        &self,
        name: &str,
        text: &str,
        dry_run: bool,
    ) -> Result<Result<(), String>> {
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(
            "planetscale.com",
            "v2",
            "VitessCluster",
        ));
        let params = PatchParams {
            dry_run,
            force: true,
            field_manager: Some(FIELD_MANAGER.into()),
            field_validation: Some(ValidationDirective::Strict),
        };
        let mut request =
            kube::core::Request::new(DynamicObject::url_path(&resource, Some(self.ns)))
                .patch(name, &params, &Patch::Apply(()))
                .context("building an apply request")?;
        *request.body_mut() = text.as_bytes().to_vec();
        match self.client.request_text(request).await {
            Ok(_) => Ok(Ok(())),
            Err(kube::Error::Api(status)) => Ok(Err(status.message.clone())),
            Err(err) => Err(err).context("applying a case's YAML"),
        }
    }

    /// `kubectl apply --server-side [--dry-run=server] -f -` of the case's text; `Err` is what
    /// kubectl said.
    async fn kubectl_apply(&self, case: &Case, dry_run: bool) -> Result<(), String> {
        let mut args = vec![
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager",
            FIELD_MANAGER,
            "-n",
            self.ns,
            "-f",
            "-",
        ];
        if dry_run {
            args.push("--dry-run=server");
        }
        kubectl_with_stdin(&args, Some(&case.text))
            .await
            .map(|_| ())
            .map_err(|err| format!("{err:#}"))
    }

    async fn state(&self, name: &str) -> Result<State> {
        let cluster = self.clusters.get(name).await?;
        Ok(State {
            generation: cluster.metadata.generation.unwrap_or_default(),
            observed: cluster.data["status"]["observedGeneration"]
                .as_i64()
                .unwrap_or_default(),
            ready: condition_detail(&cluster, "Ready"),
            topology: condition_detail(&cluster, "TopologyRegistered"),
        })
    }

    /// Waits until the cluster is Ready for its current spec.
    async fn wait_ready(&self, operator: &mut Operator, timeout: Duration) -> Result<()> {
        wait_for(
            "the cluster Ready for its current spec",
            timeout,
            async |seen: &mut String| {
                if let Err(err) = operator.check_running() {
                    return Ok(Some(Err(err)));
                }
                let state = self.state(CLUSTER).await?;
                *seen = format!(
                    "generation {}, observed {}, Ready {:?}",
                    state.generation, state.observed, state.ready
                );
                let ready = state.ready.as_ref().is_some_and(|(s, _, _)| s == "True");
                Ok((ready && state.observed == state.generation).then_some(Ok(())))
            },
        )
        .await?
    }

    /// The children's snapshot, once two taken 2 s apart agree (the base has settled).
    async fn settled_children(&self, operator: &mut Operator) -> Result<Children> {
        let mut last = self.children().await?;
        wait_for(
            "the cluster's children to settle",
            READY,
            async |seen: &mut String| {
                operator.check_running()?;
                tokio::time::sleep(Duration::from_secs(2)).await;
                let now = self.children().await?;
                let changed = diff(&last, &now);
                *seen = format!("changing: {changed}");
                let settled = changed.is_empty();
                last = now;
                Ok(settled.then(|| last.clone()))
            },
        )
        .await
    }

    /// What must not change of each child while a case is reported.
    async fn children(&self) -> Result<Children> {
        let lists = CHILDREN
            .iter()
            .map(|&(group, version, kind, plural)| async move {
                let resource = ApiResource::from_gvk_with_plural(
                    &GroupVersionKind::gvk(group, version, kind),
                    plural,
                );
                let api: Api<DynamicObject> =
                    Api::namespaced_with(self.client.clone(), self.ns, &resource);
                let objects = api
                    .list(&ListParams::default())
                    .await
                    .with_context(|| format!("listing {kind}s"))?
                    .items;
                anyhow::Ok(
                    objects
                        .into_iter()
                        .filter(|o| o.metadata.deletion_timestamp.is_none())
                        .map(|o| {
                            let meta = &o.metadata;
                            let print = format!(
                                "uid {:?}, generation {:?}, labels {:?}, annotations {:?}, spec {}",
                                meta.uid,
                                meta.generation,
                                meta.labels,
                                meta.annotations,
                                o.data.get("spec").map(Value::to_string).unwrap_or_default()
                            );
                            (format!("{kind}/{}", o.name_any()), print)
                        })
                        .collect::<Vec<_>>(),
                )
            });
        Ok(try_join_all(lists).await?.into_iter().flatten().collect())
    }

    /// The InvalidSpec Events on cluster `name`: how many times one was published, and
    /// their notes.
    async fn invalid_spec_events(&self, name: &str) -> Result<(i64, Vec<String>)> {
        let mut count = 0;
        let mut notes = Vec::new();
        for event in self.events.list(&ListParams::default()).await?.items {
            let about = event.regarding.as_ref();
            if event.reason.as_deref() == Some("InvalidSpec")
                && about.and_then(|r| r.kind.as_deref()) == Some("VitessCluster")
                && about.and_then(|r| r.name.as_deref()) == Some(name)
            {
                count += event.series.as_ref().map_or(1, |s| i64::from(s.count));
                notes.extend(event.note);
            }
        }
        Ok((count, notes))
    }

    /// Every case: dry runs first; then, applied for real, those the operator must report
    /// (on the settled base), then the legal ones.
    async fn run(
        &self,
        operator: &mut Operator,
        cases: &[Case],
        outcomes: &mut [Outcome],
    ) -> Result<()> {
        let started = Instant::now();
        for (case, outcome) in cases.iter().zip(outcomes.iter_mut()) {
            if case.duplicate.is_some() {
                outcome.kubectl_took = Some(self.kubectl_apply(case, true).await.is_ok());
            }
            match self.apply(case, true).await? {
                Err(refusal) => {
                    outcome.route = Route::Refused;
                    outcome.failures.extend(refusal_failure(case, &refusal));
                    outcome.refusal = Some(refusal);
                }
                Ok(()) if outcome.offline.is_empty() => outcome.route = Route::Legal,
                Ok(()) => outcome.route = Route::Reported,
            }
        }
        let count = |route| outcomes.iter().filter(|o| o.route == route).count();
        eprintln!(
            "corpus: {} dry runs in {:?}: {} refused, {} for the operator to report, {} legal",
            cases.len(),
            started.elapsed(),
            count(Route::Refused),
            count(Route::Reported),
            count(Route::Legal)
        );
        operator.check_running()?;

        let started = Instant::now();
        let mut baseline = self.settled_children(operator).await?;
        for (case, outcome) in cases.iter().zip(outcomes.iter_mut()) {
            if outcome.route == Route::Reported {
                let started = Instant::now();
                self.expect_reported(operator, case, outcome, &mut baseline)
                    .await
                    .with_context(|| format!("case #{} ({})", case.number, case.what))?;
                progress(case, outcome, started);
            }
        }
        eprintln!("corpus: reported cases applied in {:?}", started.elapsed());

        let started = Instant::now();
        for (case, outcome) in cases.iter().zip(outcomes.iter_mut()) {
            if outcome.route == Route::Legal {
                let started = Instant::now();
                self.expect_acted(operator, case, outcome)
                    .await
                    .with_context(|| format!("case #{} ({})", case.number, case.what))?;
                progress(case, outcome, started);
            }
        }
        eprintln!("corpus: legal cases applied in {:?}", started.elapsed());
        Ok(())
    }

    /// Applies a case `validate` refuses: the operator says so, names the field, publishes
    /// an Event, and changes nothing that runs.
    async fn expect_reported(
        &self,
        operator: &mut Operator,
        case: &Case,
        outcome: &mut Outcome,
        baseline: &mut Children,
    ) -> Result<()> {
        let (events_before, _) = self.invalid_spec_events(&case.name).await?;
        let log_from = operator.log_contents()?.len();
        if let Err(refusal) = self.apply(case, false).await? {
            outcome.failures.push(format!(
                "the dry run passed, the apply was refused: {refusal}"
            ));
            return Ok(());
        }
        let generation = self.state(&case.name).await?.generation;
        let first = outcome.offline[0].path.clone();
        let seen = wait_for(
            &format!("the cluster's status for generation {generation}"),
            REPORTED,
            async |seen: &mut String| {
                if operator.check_running().is_err() {
                    return Ok(Some(Seen::Died));
                }
                if let Some(line) = failed_since(operator, log_from)?
                    && line.contains("watch stream failed")
                {
                    return Ok(Some(Seen::Failed(format!(
                        "not reported: the operator cannot read it: {line}"
                    ))));
                }
                let state = self.state(&case.name).await?;
                *seen = format!("observed {}, Ready {:?}", state.observed, state.ready);
                Ok((state.observed >= generation).then_some(Seen::Status(state.ready)))
            },
        )
        .await;
        let reported = match seen {
            Err(timeout) => {
                outcome.failures.push(format!("not reported: {timeout:#}"));
                false
            }
            Ok(Seen::Died) => {
                outcome.failures.push(revive(operator)?);
                false
            }
            Ok(Seen::Failed(failure)) => {
                outcome.failures.push(failure);
                false
            }
            Ok(Seen::Status(Some((status, reason, message))))
                if status == "False" && reason == "InvalidSpec" =>
            {
                if !message.contains(&format!("{first}:")) {
                    outcome.failures.push(format!(
                        "the InvalidSpec condition does not name {first}, as validate does: \
                         {message}"
                    ));
                }
                true
            }
            Ok(Seen::Status(ready)) => {
                outcome.failures.push(format!(
                    "the operator took it (Ready {ready:?}) though validate says {}",
                    problems(&outcome.offline)
                ));
                false
            }
        };
        if reported {
            let published = wait_for(
                "an InvalidSpec Event",
                Duration::from_secs(10),
                async |seen: &mut String| {
                    let (count, notes) = self.invalid_spec_events(&case.name).await?;
                    *seen = format!("{count} published (before: {events_before}), notes {notes:?}");
                    Ok((count > events_before).then_some(notes))
                },
            )
            .await;
            match published {
                Ok(notes) => {
                    outcome.event_named_field =
                        Some(notes.iter().any(|n| n.contains(&format!("{first}:"))));
                }
                Err(err) => outcome.failures.push(format!("no Event: {err:#}")),
            }
        }
        let now = self.children().await?;
        let changed = diff(baseline, &now);
        if !changed.is_empty() {
            outcome.failures.push(format!(
                "children of the running cluster changed while it was reported: {changed}"
            ));
        }
        if operator.check_running().is_err() {
            outcome.failures.push(revive(operator)?);
        }
        self.put_back(operator, case, outcome, true).await?;
        if !changed.is_empty() {
            *baseline = self.settled_children(operator).await?;
        }
        Ok(())
    }

    /// Applies a legal case: the operator acts on it without an error, at every level (the
    /// cluster's status and every VitessCell's, VitessKeyspace's, VitessShard's, ... catch up
    /// with their specs), and without calling it invalid.
    async fn expect_acted(
        &self,
        operator: &mut Operator,
        case: &Case,
        outcome: &mut Outcome,
    ) -> Result<()> {
        if !case.class.may_be_legal() {
            outcome.failures.push(format!(
                "accepted by the API server and by validate: {} must be refused at apply time \
                 or reported",
                case.class.name()
            ));
        }
        let doc = yaml::parse_documents(&case.text)
            .ok()
            .and_then(|d| d.into_iter().next());
        if doc.as_ref().is_some_and(huge) {
            outcome
                .failures
                .push("not applied for real: it asks for more than 32 tablets or shards".into());
            return Ok(());
        }
        let log_from = operator.log_contents()?.len();
        if let Err(refusal) = self.apply(case, false).await? {
            outcome.failures.push(format!(
                "the dry run passed, the apply was refused: {refusal}"
            ));
            return Ok(());
        }
        let generation = self.state(&case.name).await?.generation;
        let tls = case.what.contains("clientTLS");
        let seen = wait_for(
            &format!("the operator to act on generation {generation} at every level"),
            ACTED,
            async |seen: &mut String| {
                if operator.check_running().is_err() {
                    return Ok(Some(Seen::Died));
                }
                if let Some(line) = failed_since(operator, log_from)? {
                    return Ok(Some(Seen::Failed(format!(
                        "the operator fails on it: {line}"
                    ))));
                }
                let state = self.state(&case.name).await?;
                *seen = format!(
                    "observed {} (want {generation}), Ready {:?}, TopologyRegistered {:?}",
                    state.observed, state.ready, state.topology
                );
                if state.observed < generation {
                    return Ok(None);
                }
                if let Some((_, reason, message)) = &state.ready
                    && reason == "InvalidSpec"
                {
                    return Ok(Some(Seen::Failed(format!(
                        "the operator calls it invalid though validate accepts it: {message}"
                    ))));
                }
                // The operator reads vtctld's client certificates itself, and says so.
                if tls
                    && !state.topology.as_ref().is_some_and(|(status, _, message)| {
                        status == "False"
                            && message.contains("spec.vitessDashboard.clientTLS")
                            && message.contains("not found")
                    })
                {
                    return Ok(None);
                }
                let lagging = self.lagging().await?;
                seen.push_str(&format!(", behind their specs: {lagging:?}"));
                Ok(lagging.is_empty().then_some(Seen::Status(state.ready)))
            },
        )
        .await;
        match seen {
            Ok(Seen::Status(_)) => {}
            Ok(Seen::Failed(failure)) => outcome.failures.push(failure),
            Ok(Seen::Died) => outcome.failures.push(revive(operator)?),
            Err(timeout) => outcome.failures.push(format!("{timeout:#}")),
        }
        self.put_back(operator, case, outcome, false).await
    }

    /// Our kinds' objects whose status is behind their spec (the operator has not acted on
    /// it yet, or fails to), as `Kind/name observed of generation`.
    async fn lagging(&self) -> Result<Vec<String>> {
        let kinds = [
            "VitessCell",
            "VitessKeyspace",
            "VitessShard",
            "EtcdLockserver",
            "VitessBackupStorage",
        ];
        let lists = kinds.iter().map(|&kind| async move {
            let objects = dynamic(self.client, self.ns, kind)
                .list(&ListParams::default())
                .await?
                .items;
            anyhow::Ok(
                objects
                    .into_iter()
                    .filter(|o| o.metadata.deletion_timestamp.is_none())
                    .filter_map(|o| {
                        let generation = o.metadata.generation.unwrap_or_default();
                        let observed = o.data["status"]["observedGeneration"]
                            .as_i64()
                            .unwrap_or_default();
                        (observed < generation)
                            .then(|| format!("{kind}/{} {observed} of {generation}", o.name_any()))
                    })
                    .collect::<Vec<_>>(),
            )
        });
        Ok(try_join_all(lists).await?.into_iter().flatten().collect())
    }

    /// The base spec again (or the case's own cluster deleted): the operator acts on it at
    /// every level, and with `ready` (after a reported case) the cluster is Ready again.
    async fn put_back(
        &self,
        operator: &mut Operator,
        case: &Case,
        outcome: &mut Outcome,
        ready: bool,
    ) -> Result<()> {
        if case.name != CLUSTER {
            self.clusters
                .delete(&case.name, &DeleteParams::default())
                .await?;
            wait_for(
                &format!("VitessCluster {} to be deleted", case.name),
                ACTED,
                async |seen: &mut String| {
                    let left = self.clusters.get_opt(&case.name).await?;
                    *seen = format!("{:?}", left.as_ref().map(|c| &c.metadata.finalizers));
                    Ok(left.is_none().then_some(()))
                },
            )
            .await?;
        } else {
            self.apply_json(&self.base, false)
                .await?
                .map_err(|refusal| anyhow::anyhow!("the base cluster is refused: {refusal}"))?;
        }
        let generation = self.state(CLUSTER).await?.generation;
        // A second chance, with the operator started again, when it crashed or stopped acting.
        for attempt in 0..2 {
            let seen = wait_for(
                &format!("the operator to act on the base spec again (generation {generation})"),
                RESTORED,
                async |seen: &mut String| {
                    if operator.check_running().is_err() {
                        return Ok(Some(Seen::Died));
                    }
                    let state = self.state(CLUSTER).await?;
                    *seen = format!("observed {}, Ready {:?}", state.observed, state.ready);
                    if state.observed < generation {
                        return Ok(None);
                    }
                    let lagging = self.lagging().await?;
                    seen.push_str(&format!(", behind their specs: {lagging:?}"));
                    Ok(lagging.is_empty().then_some(Seen::Status(state.ready)))
                },
            )
            .await;
            match seen {
                Ok(Seen::Status(Some((_, reason, message)))) if reason == "InvalidSpec" => {
                    bail!("the base cluster is called invalid: {message}")
                }
                Ok(Seen::Status(_)) => break,
                Err(err) if attempt == 0 => {
                    outcome.failures.push(format!(
                        "after it, the operator did not act on the base spec again: {err:#}; \
                         {}",
                        revive(operator)?
                    ));
                }
                Ok(_) if attempt == 0 => outcome
                    .failures
                    .push(format!("after it, {}", revive(operator)?)),
                Err(err) => return Err(err),
                Ok(_) => bail!("the operator crashed again on the base spec"),
            }
        }
        if ready {
            self.wait_ready(operator, RESTORED).await?;
        }
        Ok(())
    }

    /// A last valid change, two vtgates in zone1, followed, and the cluster Ready again.
    async fn last_change(&self, operator: &mut Operator) -> Result<()> {
        let started = Instant::now();
        let mut doc = self.base.clone();
        doc["spec"]["cells"][0]["gateway"]["replicas"] = json!(2);
        self.apply_json(&doc, false)
            .await?
            .map_err(|refusal| anyhow::anyhow!("the last change is refused: {refusal}"))?;
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), self.ns);
        let selector = "planetscale.com/component=vtgate,planetscale.com/cell=zone1";
        wait_for(
            "zone1's vtgate Deployment to have 2 replicas",
            READY,
            async |seen: &mut String| {
                operator.check_running()?;
                let replicas: Vec<Option<i32>> = deployments
                    .list(&ListParams::default().labels(selector))
                    .await?
                    .items
                    .iter()
                    .map(|d| d.spec.as_ref().and_then(|s| s.replicas))
                    .collect();
                *seen = format!("{replicas:?}");
                Ok((replicas == [Some(2)]).then_some(()))
            },
        )
        .await?;
        self.wait_ready(operator, READY).await?;
        operator.check_running()?;
        eprintln!(
            "corpus: the last change followed and the cluster Ready in {:?}",
            started.elapsed()
        );
        Ok(())
    }
}

/// Stops what is left of the operator and starts it again; says what happened to it: the
/// panic in its log, if any.
fn revive(operator: &mut Operator) -> Result<String> {
    let log = operator.log_contents().unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    // The panic in our code rather than the one it caused in the runtime's, when both are there.
    let panic = lines
        .iter()
        .rposition(|l| l.contains("panicked at") && !l.contains("/rustc/"))
        .or_else(|| lines.iter().rposition(|l| l.contains("panicked at")))
        .map(|i| lines[i..(i + 2).min(lines.len())].join(" "));
    let crashed = operator.check_running().is_err();
    // Takes the process (exited or not) out of the handle, so that it may start again.
    let _ = operator.kill();
    operator.restart()?;
    Ok(match (crashed, panic) {
        (true, Some(panic)) => format!("the operator crashed: {panic}"),
        (true, None) => "the operator exited, no panic in its log".into(),
        (false, _) => "the operator, stuck, was killed and started again".into(),
    })
}

/// One line per case applied for real, as it goes.
fn progress(case: &Case, outcome: &Outcome, started: Instant) {
    eprintln!(
        "corpus: #{} {:?} {} ({}): {} in {:.1} s",
        case.number,
        outcome.route,
        case.class.name(),
        case.what.chars().take(100).collect::<String>(),
        if outcome.failures.is_empty() {
            "ok"
        } else {
            "FAILED"
        },
        started.elapsed().as_secs_f64()
    );
}

/// What the operator's log says failed after byte `from`, if anything: a reconcile (the
/// object and the error, without kube's copy of the API server's status), or a watch (an
/// object it cannot read).
fn failed_since(operator: &Operator, from: usize) -> Result<Option<String>> {
    let log = operator.log_contents()?;
    let Some(line) = log
        .get(from..)
        .unwrap_or_default()
        .lines()
        .rfind(|l| l.contains("reconcile failed: ") || l.contains("watch stream failed"))
    else {
        return Ok(None);
    };
    let object = line
        .split("object.ref=")
        .nth(1)
        .and_then(|rest| rest.split([' ', '}']).next())
        .unwrap_or("the controller");
    let error = line
        .split_once("reconcile failed: ")
        .or_else(|| line.split_once("event queue error: "))
        .map_or(line, |(_, error)| error);
    let error = error.split(" (Status {").next().unwrap_or(error);
    Ok(Some(format!(
        "{object}: {}",
        error.chars().take(1000).collect::<String>()
    )))
}

/// Why a refusal at apply time is not good enough, if it is not.
fn refusal_failure(case: &Case, message: &str) -> Option<String> {
    if let Some(duplicate) = case.duplicate.as_ref().filter(|_| message.contains("yaml")) {
        let key = message.contains(&format!("\"{}\"", duplicate.key));
        // The decoder names the line of the second key, or of the block that is its value.
        let [first, second] = duplicate.lines;
        let line = (first..=second + 1).any(|n| message.contains(&format!("line {n}:")));
        return (!(key && line)).then(|| {
            format!(
                "the refusal does not name the key {:?} and its line ({first} to {}): {message}",
                duplicate.key,
                second + 1
            )
        });
    }
    fields_named(message)
        .is_empty()
        .then(|| format!("the refusal names no field: {message}"))
}

fn problems(offline: &[Problem]) -> String {
    offline
        .iter()
        .map(|p| format!("{}: {}", p.path, p.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// What differs between two snapshots of the children, for people (empty: nothing).
fn diff(before: &Children, after: &Children) -> String {
    let mut out = Vec::new();
    for (key, was) in before {
        match after.get(key) {
            None => out.push(format!("{key} deleted")),
            Some(now) if now != was => out.push(format!("{key} changed ({was} -> {now})")),
            Some(_) => {}
        }
    }
    out.extend(
        after
            .keys()
            .filter(|k| !before.contains_key(*k))
            .map(|k| format!("{k} created")),
    );
    out.join("; ")
}

/// Whether the cluster asks for more than 32 tablets or shards somewhere (never applied).
fn huge(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.iter().any(|(key, v)| {
            (matches!(key.as_str(), "parts" | "replicas")
                && v.as_i64().is_none_or(|n| n > 32)
                && v.is_number())
                || huge(v)
        }),
        Value::Array(items) => items.iter().any(huge),
        _ => false,
    }
}

/// Prints and writes the table; fails listing every failed case with its text.
fn report(seed: u64, cases: &[Case], outcomes: &[Outcome], took: Duration) -> Result<()> {
    let mut markdown = String::from(
        "| class | cases | refused at apply time | reported by the operator | accepted as legal \
         | failed |\n|---|---|---|---|---|---|\n",
    );
    let mut rows = Vec::new();
    for class in Class::ALL {
        let of: Vec<&Outcome> = cases
            .iter()
            .zip(outcomes)
            .filter(|(c, _)| c.class == class)
            .map(|(_, o)| o)
            .collect();
        let route = |r| of.iter().filter(|o| o.route == r).count();
        let failed = of.iter().filter(|o| !o.failures.is_empty()).count();
        markdown.push_str(&format!(
            "| {} | {} | {} | {} | {} | {failed} |\n",
            class.name(),
            of.len(),
            route(Route::Refused),
            route(Route::Reported),
            route(Route::Legal),
        ));
        rows.push(json!({
            "class": class.name(),
            "cases": of.len(),
            "refused_at_apply_time": route(Route::Refused),
            "reported_by_the_operator": route(Route::Reported),
            "accepted_as_legal": route(Route::Legal),
            "failed": failed,
        }));
    }
    let total = |r| outcomes.iter().filter(|o| o.route == r).count();
    let failed = outcomes.iter().filter(|o| !o.failures.is_empty()).count();
    markdown.push_str(&format!(
        "| all | {} | {} | {} | {} | {failed} |\n",
        cases.len(),
        total(Route::Refused),
        total(Route::Reported),
        total(Route::Legal),
    ));
    let events: Vec<bool> = outcomes
        .iter()
        .filter_map(|o| o.event_named_field)
        .collect();
    let named = events.iter().filter(|n| **n).count();
    let kubectl: Vec<bool> = outcomes.iter().filter_map(|o| o.kubectl_took).collect();
    let kubectl_took = kubectl.iter().filter(|t| **t).count();
    markdown.push_str(&format!(
        "\nCORPUS_SEED={seed} CORPUS_CASES={}, {:.0} s against the API server and the operator; \
         the InvalidSpec Event's note named the reported field for {named} of {} reported cases \
         (kube's Recorder folds one reason's Events on one object into the first one's series); \
         `kubectl apply --server-side` took {kubectl_took} of the {} texts with a key written \
         twice, keeping the last value without a word\n",
        cases.len(),
        took.as_secs_f64(),
        events.len(),
        kubectl.len()
    ));
    eprintln!("{markdown}");

    let dir = workspace_dir().join("target/e2e-figures");
    let failures_dir = dir.join("corpus-failures");
    let _ = std::fs::remove_dir_all(&failures_dir);
    let mut listed = Vec::new();
    let mut failure_rows = Vec::new();
    for (case, outcome) in cases.iter().zip(outcomes) {
        if outcome.failures.is_empty() {
            continue;
        }
        std::fs::create_dir_all(&failures_dir)?;
        let file = failures_dir.join(format!("case-{:03}.yaml", case.number));
        std::fs::write(&file, &case.text).with_context(|| format!("writing {}", file.display()))?;
        let text: String = case.text.chars().take(SHOWN).collect();
        let cut = if text.len() < case.text.len() {
            format!("\n... (all of it in {})", file.display())
        } else {
            String::new()
        };
        listed.push(format!(
            "case #{} ({}, {}: {}): {}\n--- case #{} ---\n{text}{cut}\n---",
            case.number,
            case.class.name(),
            case.source,
            case.what,
            outcome.failures.join("; "),
            case.number
        ));
        failure_rows.push(json!({
            "case": case.number,
            "class": case.class.name(),
            "source": case.source,
            "what": case.what,
            "failures": outcome.failures,
            "file": file.display().to_string(),
        }));
    }
    // Every case, with what the API server or the operator made of it.
    let every: Vec<Value> = cases
        .iter()
        .zip(outcomes)
        .map(|(case, outcome)| {
            json!({
                "case": case.number,
                "class": case.class.name(),
                "source": case.source,
                "what": case.what,
                "route": format!("{:?}", outcome.route),
                "refusal": outcome.refusal.as_deref().map(|r| r.chars().take(400).collect::<String>()),
                "validate": problems(&outcome.offline).chars().take(400).collect::<String>(),
                "failed": !outcome.failures.is_empty(),
            })
        })
        .collect();
    write_figures(
        "corpus",
        &json!({
            "seed": seed,
            "cases": cases.len(),
            "seconds": took.as_secs_f64(),
            "rows": rows,
            "event_notes_naming_the_field": named,
            "reported_with_an_event": events.len(),
            "duplicate_key_texts": kubectl.len(),
            "duplicate_key_texts_kubectl_took": kubectl_took,
            "failures": failure_rows,
            "every_case": every,
        }),
    )?;
    let path = dir.join("corpus.md");
    std::fs::write(&path, &markdown).with_context(|| format!("writing {}", path.display()))?;
    if !listed.is_empty() {
        bail!(
            "{} of {} cases failed (CORPUS_SEED={seed} CORPUS_CASES={} replays them):\n{}",
            listed.len(),
            cases.len(),
            cases.len(),
            listed.join("\n")
        );
    }
    Ok(())
}
