//! Every field of the VitessCluster CRD, set one at a time in a cluster that validates clean:
//! does anything the operator builds change? A field that changes a workload (a pod template,
//! a Service, a CronJob, a PVC, ...) is read by a builder. Any other field must be named in one
//! of the lists below, with the reason: read at run time by a controller (and where), accepted
//! but not acted on yet (and `validate` warns when it is set), or not settable here one at a
//! time (and what covers it instead). The lists are checked both ways: an entry for a field
//! that does not exist, or that the walk finds a builder reading, fails too, so they cannot go
//! stale.
//!
//! The walk stops at the Kubernetes types the operator passes through whole (resources,
//! affinity, tolerations, extra env and volumes, claim templates, HPA metrics, ...) and sets a
//! sample of each.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use vitess_operator::api::VitessCluster;
use vitess_operator::cli::render::cluster_objects;
use vitess_operator::cli::validate::Checker;
use vitess_operator::cli::yaml;

/// Fields acted on elsewhere than in a workload the operator builds: read by a controller
/// while it runs, or put on a child object only; and where. An entry covers the field of that
/// path and every field under it.
const NOT_IN_WORKLOADS: &[(&str, &str)] = &[
    (
        "spec.backup.schedules[].name",
        "copied into the VitessBackupSchedule; names the VitessBackupSchedule (and through it its Jobs)",
    ),
    (
        "spec.backup.schedules[].schedule",
        "copied into the VitessBackupSchedule; controller::backupschedule::plan: the due times",
    ),
    (
        "spec.backup.schedules[].frequency",
        "copied into the VitessBackupSchedule; controller::backupschedule::plan: a per-shard staggered cron (status.generatedSchedules)",
    ),
    (
        "spec.backup.schedules[].strategies[].name",
        "copied into the VitessBackupSchedule; controller::backupschedule keys its status by it (per shard for scopes Keyspace and Cluster)",
    ),
    (
        "spec.backup.schedules[].strategies[].scope",
        "copied into the VitessBackupSchedule; desired::schedule::targets: the shards it covers",
    ),
    (
        "spec.backup.schedules[].strategies[].shard",
        "copied into the VitessBackupSchedule; desired::schedule::targets: the shard of scope Shard",
    ),
    (
        "spec.backup.schedules[].strategies[].extraFlags",
        "copied into the VitessBackupSchedule; desired::schedule::job: BackupShard's flags",
    ),
    (
        "spec.backup.schedules[].resources",
        "copied into the VitessBackupSchedule; desired::schedule::job: the Job's container",
    ),
    (
        "spec.backup.schedules[].successfulJobsHistoryLimit",
        "copied into the VitessBackupSchedule; controller::backupschedule::plan deletes older successful Jobs",
    ),
    (
        "spec.backup.schedules[].failedJobsHistoryLimit",
        "copied into the VitessBackupSchedule; controller::backupschedule::plan deletes older failed Jobs",
    ),
    (
        "spec.backup.schedules[].suspend",
        "copied into the VitessBackupSchedule; controller::backupschedule starts nothing",
    ),
    (
        "spec.backup.schedules[].startingDeadlineSeconds",
        "copied into the VitessBackupSchedule; controller::backupschedule::plan: a run later than this is not started",
    ),
    (
        "spec.backup.schedules[].concurrencyPolicy",
        "copied into the VitessBackupSchedule; controller::backupschedule::plan: Forbid waits for the running Job",
    ),
    (
        "spec.backup.schedules[].backupMethod",
        "copied into the VitessBackupSchedule; desired::schedule::job: vtctldclient BackupShard, or vtbackup in a pod of its own",
    ),
    (
        "spec.backup.schedules[].allowedMissedRun",
        "copied into the VitessBackupSchedule; controller::backupschedule::plan: more missed runs start nothing (TooManyMissedRuns)",
    ),
    (
        "spec.backup.schedules[].jobTimeoutMinute",
        "copied into the VitessBackupSchedule; desired::schedule::job: activeDeadlineSeconds; plan deletes older Jobs without one",
    ),
    (
        "spec.backup.schedules[].annotations",
        "copied into the VitessBackupSchedule; desired::schedule::job: the Job's and its pod's annotations",
    ),
    (
        "spec.backup.schedules[].affinity",
        "copied into the VitessBackupSchedule; desired::schedule::job: the Job's pod",
    ),
    (
        "spec.backup.schedules[].tolerations",
        "copied into the VitessBackupSchedule; desired::schedule::job: the Job's pod",
    ),
    (
        "spec.updateStrategy.type",
        "controller::shard::drains: External marks changed tablets, Immediate rolls them",
    ),
    (
        "spec.updateStrategy.external.allowResourceChanges",
        "controller::shard::volumes: storage lets claims grow under External",
    ),
    (
        "spec.topologyReconciliation.registerCells",
        "controller::topology registers each cell's CellInfo",
    ),
    (
        "spec.topologyReconciliation.registerCellsAliases",
        "controller::topology registers the cells alias",
    ),
    (
        "spec.topologyReconciliation.pruneCells",
        "controller::cluster::turndown",
    ),
    (
        "spec.topologyReconciliation.pruneKeyspaces",
        "controller::cluster::turndown",
    ),
    (
        "spec.topologyReconciliation.pruneShards",
        "controller::keyspace",
    ),
    (
        "spec.topologyReconciliation.pruneTablets",
        "controller::shard",
    ),
    (
        "spec.cells[].lockserver.external",
        "controller::topology writes the cell's CellInfo with its own lockserver",
    ),
    (
        "spec.cells[].lockserver.cellInfoAddress",
        "controller::topology writes it into the CellInfo of a cell with its own etcd",
    ),
    (
        "spec.keyspaces[].durabilityPolicy",
        "controller::topology sets the keyspace's durability policy in Vitess",
    ),
    (
        "spec.keyspaces[].sidecarDbName",
        "controller::topology gives it to CreateKeyspace",
    ),
    (
        "spec.keyspaces[].turndownPolicy",
        "controller::cluster and controller::keyspace: Immediate or RequireIdle turndown",
    ),
    (
        "spec.keyspaces[].annotations",
        "metadata of the VitessKeyspace (as in the Go operator)",
    ),
    (
        "spec.keyspaces[].partitionings[].equal.shardTemplate.annotations",
        "metadata of each VitessShard (as in the Go operator)",
    ),
    (
        "spec.keyspaces[].partitionings[].custom.shards[].annotations",
        "metadata of the VitessShard (as in the Go operator)",
    ),
    (
        "spec.keyspaces[].partitionings[].equal.shardTemplate.replication.initializeMaster",
        "controller::shard: false elects no first primary (PrimaryElected ElectionDisabled)",
    ),
    (
        "spec.keyspaces[].partitionings[].custom.shards[].replication.initializeMaster",
        "controller::shard, as for the equal shardTemplate",
    ),
    (
        "spec.backup.locations[].name",
        "names the VitessBackupStorage; pools' backupLocationName refer to it (validate checks \
         each reference, desired::vttablet's tests that the named location's flags are used)",
    ),
    (
        "spec.backup.locations[].maxBackupAge",
        "controller::backupinit: the shard's BackupsFresh condition",
    ),
    (
        "spec.vitessDashboard.clientTLS",
        "the operator's own vtctld client (controller::topology) reads the Secrets it names",
    ),
];

/// Fields accepted and not acted on (yet), with the reason; `validate` warns when one is set.
/// An entry covers the field of that path and every field under it.
const NOT_ACTED_ON: &[(&str, &str)] = &[
    (
        "spec.keyspaces[].vitessOrchestrator.service",
        "vtorc has no Service; the Go operator makes none either",
    ),
    (
        "spec.topologyReconciliation.pruneShardCells",
        "shard cells are never pruned (needs vtctld RemoveShardCell)",
    ),
    (
        "spec.topologyReconciliation.pruneSrvKeyspaces",
        "SrvKeyspaces are never pruned (needs vtctld DeleteSrvVSchema per cell)",
    ),
    (
        "spec.backup.subcontroller.serviceAccountName",
        "no subcontroller pod: backups are listed through vtctld",
    ),
    (
        "spec.keyspaces[].partitionings[].equal.shardTemplate.replication.recoverRestartedMaster",
        "vtorc repairs replication; the Go operator reads it nowhere either",
    ),
    (
        "spec.keyspaces[].partitionings[].custom.shards[].replication.recoverRestartedMaster",
        "as for the equal shardTemplate",
    ),
    (
        "spec.keyspaces[].partitionings[].equal.shardTemplate.replication.enforceSemiSync",
        "deprecated (older Go operator releases; the newest has no such field): the \
         keyspace's durabilityPolicy says it",
    ),
    (
        "spec.keyspaces[].partitionings[].custom.shards[].replication.enforceSemiSync",
        "as for the equal shardTemplate",
    ),
];

/// Fields refused unless they hold the one value the operator can honour; the CRD's CEL
/// rules say `not supported: <reason>` at apply time.
const REFUSED: &[(&str, &str)] = &[(
    "spec.globalLockserver.etcd.peerService.clusterIP",
    "only None: the peer Service is headless, members find each other by its DNS names",
)];

/// Fields the walk cannot set alone in a valid cluster, with what covers them instead.
const NOT_EXERCISED: &[(&str, &str)] = &[
    (
        "spec.cells[].name",
        "renaming a cell alone leaves pools naming the old one, which validate refuses; every \
         example's cell names reach the children (tests/cli.rs renders them)",
    ),
    (
        "spec.keyspaces[].partitionings[].custom.shards[].keyRange",
        "a key range changes only together with its neighbour's (the partitioning must cover \
         the keyspace); desired::keyspace's tests name shards from key ranges",
    ),
    (
        "spec.backup.schedules[].strategies[].keyspace",
        "another keyspace needs another shard too; desired::schedule's tests",
    ),
    (
        "spec.vtadmin.cells",
        "the one base with vtadmin has one cell, which it already lists; \
         desired::vtadmin's tests run it in two cells",
    ),
];

/// Fields that name something for people and nothing else, as in the Go operator.
const FOR_PEOPLE: &[(&str, &str)] = &[];

/// Kinds the cluster controller applies as children; a field that changes only these is read
/// by the children's controllers at run time, not by a builder.
const CHILD_KINDS: &[&str] = &[
    "VitessCell",
    "VitessKeyspace",
    "VitessShard",
    "VitessBackupStorage",
    "EtcdLockserver",
    "VitessBackupSchedule",
];

/// What setting a field did to what the operator builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Effect {
    /// No base cluster accepted the value: the field was never set.
    NotExercised,
    /// Set and valid, and nothing built changed.
    Nothing,
    /// Only the child objects (VitessKeyspace, VitessShard, ...) changed.
    ChildrenOnly,
    /// A workload or Service the operator builds changed.
    Workload,
}

/// The Kubernetes types passed through whole, by field name, and a valid sample of each.
fn pass_through(name: &str) -> Option<Value> {
    let resources = json!({"requests": {"cpu": "7m"}});
    let container = json!([{"name": "walk", "image": "busybox:1"}]);
    Some(match name {
        "extraEnv" => json!([{"name": "FIELD_WALK", "value": "1"}]),
        "extraVolumes" => json!([{"name": "walk", "emptyDir": {}}]),
        "extraVolumeMounts" => json!([{"name": "walk", "mountPath": "/walk"}]),
        "resources" | "apiResources" | "webResources" => resources,
        "affinity" => json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "walk", "operator": "Exists"}]}]
        }}}),
        "tolerations" => json!([{"key": "walk", "operator": "Exists"}]),
        "annotations" => json!({"walk.example.com/field": "1"}),
        "extraLabels" => json!({"walk": "1"}),
        "topologySpreadConstraints" => json!([{
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": {"walk": "1"}}
        }]),
        "sidecarContainers" | "initContainers" => container,
        "extraFlags" => json!({"walk-flag": "1"}),
        "dataVolumeClaimTemplate" => json!({
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "7Gi"}}
        }),
        "metrics" => json!([{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 61}
        }}]),
        "behavior" => json!({"scaleDown": {"stabilizationWindowSeconds": 61}}),
        "lifecycle" => json!({"preStop": {"exec": {"command": ["true"]}}}),
        "strategy" => json!({"type": "Recreate"}),
        "volume" => json!({"hostPath": {"path": "/walk"}}),
        _ => return None,
    })
}

/// One field of the schema: its path (`spec.a[].b`, `{}` for a map's values) and schema.
struct Field {
    path: String,
    schema: Value,
}

fn fields(schema: &Value, path: &str, name: &str, out: &mut Vec<Field>) {
    let leaf = |out: &mut Vec<Field>| {
        out.push(Field {
            path: path.to_string(),
            schema: schema.clone(),
        })
    };
    if pass_through(name).is_some() {
        return leaf(out);
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("object") => {
            if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                for (key, child) in properties {
                    fields(child, &format!("{path}.{key}"), key, out);
                }
            } else if let Some(values) =
                schema.get("additionalProperties").filter(|v| v.is_object())
            {
                fields(values, &format!("{path}{{}}"), name, out);
            } else {
                leaf(out)
            }
        }
        Some("array") => match schema.get("items") {
            Some(items) if items.get("type").and_then(Value::as_str) == Some("object") => {
                fields(items, &format!("{path}[]"), name, out)
            }
            _ => leaf(out),
        },
        _ => leaf(out),
    }
}

fn cluster_fields() -> Vec<Field> {
    let crd = vitess_operator::api::crds()
        .into_iter()
        .find(|c| c.spec.names.kind == "VitessCluster")
        .expect("the VitessCluster CRD");
    let schema = serde_json::to_value(
        crd.spec.versions[0]
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .expect("a schema"),
    )
    .unwrap();
    let mut out = Vec::new();
    fields(&schema["properties"]["spec"], "spec", "spec", &mut out);
    out
}

fn example(name: &str) -> Value {
    let path = format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    yaml::parse_documents(&text).unwrap().remove(0)
}

/// The clusters each field is tried in: the examples, and variants of them for the parts no
/// example has (every backup store, an external global lockserver).
fn bases() -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = [
        "initial-cluster.yaml",
        "two-keyspaces.yaml",
        "backup-gcs.yaml",
        "scheduled-backups.yaml",
    ]
    .iter()
    .map(|name| (name.to_string(), example(name)))
    .collect();
    let secret = json!({"name": "walk-store", "key": "creds"});
    for (store, location) in [
        (
            "s3",
            json!({"bucket": "walk", "region": "us-east-1", "authSecret": secret}),
        ),
        (
            "azblob",
            json!({"account": "walk", "container": "walk", "authSecret": secret}),
        ),
        ("ceph", json!({"authSecret": secret})),
    ] {
        let mut doc = example("backup-gcs.yaml");
        doc["spec"]["backup"]["locations"] = json!([{ store: location }]);
        out.push((format!("backup-gcs.yaml with {store}"), doc));
    }
    let mut doc = example("backup-gcs.yaml");
    doc["spec"]["backup"]["locations"] = json!([{"volume": {"emptyDir": {}}}]);
    out.push(("backup-gcs.yaml with a volume".into(), doc));
    let mut doc = example("initial-cluster.yaml");
    doc["spec"]["globalLockserver"] = json!({"external": {"address": "etcd.example:2379", "rootPath": "/vitess/walk",
                            "implementation": "etcd2"}});
    out.push((
        "initial-cluster.yaml with an external lockserver".into(),
        doc,
    ));
    let mut doc = example("initial-cluster.yaml");
    doc["spec"]["cells"][0]["gateway"]["autoscaler"] = json!({"maxReplicas": 4});
    doc["spec"]["cells"][0]["gateway"]["secureTransport"] = json!({"required": true, "tls": {
        "certSecret": {"name": "walk-tls", "key": "tls.crt"},
        "keySecret": {"name": "walk-tls", "key": "tls.key"},
        "clientCACertSecret": {"name": "walk-tls", "key": "ca.crt"},
    }});
    doc["spec"]["cells"][0]["lockserver"] = json!({"external": {
        "address": "zone1-etcd.example:2379", "rootPath": "/vitess/zone1",
        "implementation": "etcd2"
    }});
    doc["spec"]["vitessDashboard"]["clientTLS"] = json!({
        "caSecret": {"name": "walk-tls", "key": "ca.crt"},
        "certSecret": {"name": "walk-tls", "key": "tls.crt"},
        "keySecret": {"name": "walk-tls", "key": "tls.key"},
        "serverName": "vtctld.example",
    });
    out.push((
        "initial-cluster.yaml with an autoscaler, TLS and a cell's own lockserver".into(),
        doc,
    ));
    let mut doc = example("initial-cluster.yaml");
    let pool = doc
        .pointer_mut("/spec/keyspaces/0/partitionings/0/equal/shardTemplate/tabletPools/0")
        .expect("the example's pool");
    external_datastore(pool);
    out.push((
        "initial-cluster.yaml with an external datastore".into(),
        doc,
    ));
    let mut doc = example("two-keyspaces.yaml");
    doc["spec"]["backup"] = example("backup-gcs.yaml")["spec"]["backup"].clone();
    second_location(&mut doc);
    let pool = doc
        .pointer_mut("/spec/keyspaces/1/partitionings/0/custom/shards/0/tabletPools/0")
        .expect("the example's first custom shard's pool");
    external_datastore(pool);
    out.push((
        "two-keyspaces.yaml with backups and an external datastore".into(),
        doc,
    ));
    let mut doc = example("backup-gcs.yaml");
    second_location(&mut doc);
    doc["spec"]["keyspaces"][0]["partitionings"][0]["equal"]["parts"] = json!(2);
    out.push((
        "backup-gcs.yaml with a second, named location and two shards".into(),
        doc,
    ));
    let mut doc = example("scheduled-backups.yaml");
    let schedules = doc["spec"]["backup"]["schedules"]
        .as_array_mut()
        .expect("schedules");
    schedules.reverse();
    schedules[0]
        .as_object_mut()
        .expect("a schedule")
        .remove("schedule");
    schedules[0]["frequency"] = json!("6h");
    schedules[0]["strategies"]
        .as_array_mut()
        .expect("strategies")
        .truncate(1);
    out.push(("scheduled-backups.yaml by frequency".into(), doc));
    out
}

/// `pool` on a MySQL outside the cluster instead of its own mysqld.
fn external_datastore(pool: &mut Value) {
    pool.as_object_mut().expect("a pool").remove("mysqld");
    pool["externalDatastore"] = json!({
        "user": "walk", "host": "mysql.example", "port": 3306, "database": "walk",
        "credentialsSecret": {"name": "walk-mysql", "key": "password"},
        "serverCACertSecret": {"name": "walk-mysql", "key": "ca.crt"},
    });
}

/// A second backup location like the first, named `walk`.
fn second_location(doc: &mut Value) {
    let mut named = doc["spec"]["backup"]["locations"][0].clone();
    named["name"] = json!("walk");
    doc["spec"]["backup"]["locations"]
        .as_array_mut()
        .expect("locations")
        .push(named);
}

/// The concrete JSON pointer of `path` in `doc`: of each list, the item in which most of the
/// rest of the path exists (the first on a tie); key `walk` of each map.
fn pointer(doc: &Value, path: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    for part in path
        .trim_start_matches("spec")
        .split('.')
        .filter(|p| !p.is_empty())
    {
        let mut part = part;
        let mut suffix = Vec::new();
        loop {
            if let Some(p) = part.strip_suffix("[]") {
                suffix.push("[]".to_string());
                part = p;
            } else if let Some(p) = part.strip_suffix("{}") {
                suffix.push("walk".to_string());
                part = p;
            } else {
                break;
            }
        }
        parts.push(part.to_string());
        parts.extend(suffix.into_iter().rev());
    }
    let mut out = String::from("/spec");
    let mut at = doc.get("spec");
    for (i, part) in parts.iter().enumerate() {
        let index = if part == "[]" {
            let items = at
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let rest = &parts[i + 1..];
            let mut best = (0, 0);
            for (n, item) in items.iter().enumerate() {
                let d = depth(item, rest);
                if d > best.1 {
                    best = (n, d);
                }
            }
            best.0.to_string()
        } else {
            part.clone()
        };
        at = at.and_then(|v| match v {
            Value::Array(items) => index.parse::<usize>().ok().and_then(|n| items.get(n)),
            other => other.get(&index),
        });
        out.push('/');
        out.push_str(&index);
    }
    out
}

/// How many of `parts` exist in `value`, following the best item of each list.
fn depth(value: &Value, parts: &[String]) -> usize {
    let Some((first, rest)) = parts.split_first() else {
        return 0;
    };
    match value {
        Value::Array(items) if first == "[]" => {
            items.iter().map(|i| 1 + depth(i, rest)).max().unwrap_or(0)
        }
        Value::Object(map) => map.get(first).map_or(0, |v| 1 + depth(v, rest)),
        _ => 0,
    }
}

/// `doc` with `value` at `pointer`, making missing objects on the way; `None` where the way
/// needs a list item the document does not have.
fn with_value(doc: &Value, pointer: &str, value: Value) -> Option<Value> {
    let mut doc = doc.clone();
    let parts: Vec<&str> = pointer.split('/').skip(1).collect();
    let mut at = &mut doc;
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        if at.is_null() {
            *at = if part.parse::<usize>().is_ok() {
                json!([])
            } else {
                json!({})
            };
        }
        at = match at {
            Value::Object(map) => {
                if last {
                    map.insert(part.to_string(), value);
                    return Some(doc);
                }
                map.entry(part.to_string()).or_insert(Value::Null)
            }
            Value::Array(items) => {
                let index: usize = part.parse().ok()?;
                if index == items.len() {
                    // A list the document does not have yet: its first item.
                    items.push(Value::Null);
                }
                if last {
                    *items.get_mut(index)? = value;
                    return Some(doc);
                }
                items.get_mut(index)?
            }
            _ => return None,
        };
    }
    None
}

/// Values to try for a field whose current value (as the API server would store the base) is
/// `current`: something valid that differs from it.
fn candidates(field: &Field, current: Option<&Value>) -> Vec<Value> {
    let name = field
        .path
        .rsplit(['.'])
        .next()
        .unwrap_or_default()
        .trim_end_matches("[]")
        .trim_end_matches("{}");
    if let Some(sample) = pass_through(name) {
        return vec![sample];
    }
    let schema = &field.schema;
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return values
            .iter()
            .filter(|v| Some(*v) != current && !v.is_null())
            .cloned()
            .collect();
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("boolean") => {
            let now = current.and_then(Value::as_bool).unwrap_or(false);
            vec![json!(!now), json!(now)]
        }
        Some("integer") => {
            let now = current.and_then(Value::as_i64);
            let minimum = schema.get("minimum").and_then(Value::as_i64).unwrap_or(0);
            let mut out: Vec<Value> = [
                now.map(|n| n + 1),
                now.map(|n| n + 2),
                Some(minimum.max(1) + 2),
                Some(4),
                Some(minimum),
            ]
            .into_iter()
            .flatten()
            .filter(|n| Some(*n) != now)
            .map(Value::from)
            .collect();
            out.dedup();
            out
        }
        Some("array") => {
            let samples = string_samples(name);
            let mut out: Vec<Value> = samples.iter().map(|s| json!([s])).collect();
            out.push(json!(samples));
            out
        }
        _ if schema.get("x-kubernetes-int-or-string").is_some() => vec![json!("7")],
        _ => string_samples(name)
            .into_iter()
            .filter(|s| Some(&json!(s)) != current)
            .map(Value::from)
            .collect(),
    }
}

/// Valid strings for a field, by its name; most names take any string.
fn string_samples(name: &str) -> Vec<String> {
    let fixed: &[&str] = match name {
        "image"
        | "vtctld"
        | "vtgate"
        | "vttablet"
        | "vtbackup"
        | "vtorc"
        | "vtadmin"
        | "mysqldExporter"
        | "mysql80Compatible"
        | "mysql56Compatible"
        | "mariadbCompatible"
        | "mariadb103Compatible" => &["walk.example.com/image:1"],
        "clusterIP" => &["None", "10.96.7.7"],
        "address" | "cellInfoAddress" => &["walk-etcd.example:2379"],
        "advertisePeerURLs" => &[
            "http://walk-0:2380",
            "http://walk-1:2380",
            "http://walk-2:2380",
        ],
        "apiAddresses" => &["http://walk-api:15000"],
        "rootPath" | "keyPrefix" | "volumeSubPath" => &["/walk", "walk"],
        "implementation" => &["etcd2", "zk2"],
        "endpoint" => &["http://walk-s3:9000"],
        "maxBackupAge" => &["72h"],
        "schedule" => &["7 3 * * *"],
        "frequency" => &["1h", "24h"],
        "tabletRefreshInterval" => &["7s"],
        "serverName" => &["walk.example.com"],
        "fetchCredentials" => &["walk-creds"],
        "request" => &["walk"],
        "keyspace" => &["commerce", "customer"],
        "shard" => &["-", "-80", "80-"],
        "start" => &["40"],
        "end" => &["c0"],
        "cell" | "cells" => &["zone1", "zone2", "walk"],
        "zone" => &["walk-zone"],
        "configOverrides" => &["[mysqld]\nmax_connections = 321\n"],
        "databaseName" => &["walk_db"],
        "sidecarDbName" => &["_walk_sidecar"],
        "backupLocationName" | "name" => &["walk", "walk2"],
        _ => &["walk", "walk2"],
    };
    fixed.iter().map(|s| s.to_string()).collect()
}

/// Each rendered object by kind and name.
fn built(checker: &Checker, doc: &Value) -> Option<BTreeMap<(String, String), Value>> {
    let cluster: VitessCluster = serde_json::from_value(checker.defaulted(doc)).ok()?;
    let objects = cluster_objects(&cluster).ok()?;
    Some(
        objects
            .into_iter()
            .map(|o| {
                let key = (
                    o["kind"].as_str().unwrap_or_default().to_string(),
                    o["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                );
                (key, o)
            })
            .collect(),
    )
}

fn valid(checker: &Checker, doc: &Value) -> bool {
    checker.check(doc).is_some_and(|issues| issues.is_empty())
}

fn effect_of(
    before: &BTreeMap<(String, String), Value>,
    after: &BTreeMap<(String, String), Value>,
) -> Effect {
    let keys: BTreeSet<&(String, String)> = before.keys().chain(after.keys()).collect();
    let changed: Vec<&str> = keys
        .into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .map(|(kind, _)| kind.as_str())
        .collect();
    if changed.iter().any(|kind| !CHILD_KINDS.contains(kind)) {
        Effect::Workload
    } else if changed.is_empty() {
        Effect::Nothing
    } else {
        Effect::ChildrenOnly
    }
}

/// What the walk found for one field.
struct Found {
    effect: Effect,
    /// The base that showed the effect.
    base: String,
    /// Some valid value of it made `validate` warn, naming it (or a field above it).
    warned: bool,
    /// Some value of it was refused with `not supported: ...`, naming it.
    refused: bool,
}

/// Whether `entry` (a listed path) covers `field`: the same path or one above it.
fn covers(entry: &str, field: &str) -> bool {
    field == entry
        || field
            .strip_prefix(entry)
            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
}

fn listed(list: &[(&str, &str)], field: &str) -> bool {
    list.iter().any(|(entry, _)| covers(entry, field))
}

/// `path` with every list index made `[]`, as the walk names fields.
fn generic(path: &str) -> String {
    let mut out = String::new();
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push_str("[]");
            }
            ']' => in_index = false,
            _ if in_index => {}
            _ => out.push(c),
        }
    }
    out
}

type Built = BTreeMap<(String, String), Value>;

fn find(checker: &Checker, bases: &[(String, Value, Built)], field: &Field) -> Found {
    // Listed fields are also checked for their warning or refusal, which means validating
    // every value tried; the others only what could improve on the best effect so far.
    let check_all = listed(NOT_ACTED_ON, &field.path) || listed(REFUSED, &field.path);
    let mut found = Found {
        effect: Effect::NotExercised,
        base: String::new(),
        warned: false,
        refused: false,
    };
    for (name, doc, before) in bases {
        let at = pointer(doc, &field.path);
        let stored = checker.defaulted(doc);
        for value in candidates(field, stored.pointer(&at)) {
            let Some(changed) = with_value(doc, &at, value) else {
                continue;
            };
            let Some(after) = built(checker, &changed) else {
                continue;
            };
            let effect = effect_of(before, &after);
            if !check_all && effect <= found.effect {
                continue;
            }
            let issues = checker.check(&changed).unwrap_or_default();
            if issues.is_empty() {
                if effect > found.effect {
                    found.effect = effect;
                    found.base = name.clone();
                }
                found.warned |= checker
                    .warnings(&changed)
                    .iter()
                    .any(|w| covers(&generic(&w.path), &field.path));
            }
            found.refused |= issues.iter().any(|issue| {
                generic(&issue.path) == field.path && issue.message.starts_with("not supported: ")
            });
            if found.effect == Effect::Workload && !check_all {
                return found;
            }
        }
    }
    found
}

/// What each field does at best across the bases. The fields are shared out between two
/// threads (validating and building thousands of variants is the slow part).
fn walk() -> BTreeMap<String, Found> {
    let checker = Checker::new();
    let bases: Vec<(String, Value, Built)> = bases()
        .into_iter()
        .map(|(name, doc)| {
            assert!(valid(&checker, &doc), "base {name} does not validate");
            let built = built(&checker, &doc).unwrap_or_else(|| panic!("base {name} renders"));
            (name, doc, built)
        })
        .collect();
    let fields = cluster_fields();
    let (checker, bases) = (&checker, &bases);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|worker| {
                let fields = &fields;
                scope.spawn(move || {
                    fields
                        .iter()
                        .skip(worker)
                        .step_by(2)
                        .map(|field| (field.path.clone(), find(checker, bases, field)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a walker thread"))
            .collect()
    })
}

#[test]
fn every_field_changes_what_is_built_or_is_listed_with_its_reason() {
    let found = walk();
    let mut report = Vec::new();
    for (path, f) in &found {
        let base = &f.base;
        let lists = [
            ("NOT_IN_WORKLOADS", NOT_IN_WORKLOADS),
            ("NOT_ACTED_ON", NOT_ACTED_ON),
            ("REFUSED", REFUSED),
            ("NOT_EXERCISED", NOT_EXERCISED),
            ("FOR_PEOPLE", FOR_PEOPLE),
        ];
        let names: Vec<&str> = lists
            .iter()
            .filter(|(_, list)| listed(list, path))
            .map(|(name, _)| *name)
            .collect();
        let problem = match (f.effect, names.as_slice()) {
            (Effect::Workload, []) => None,
            (Effect::Workload, names) => Some(format!(
                "changes what is built (in {base}) but is listed in {names:?}"
            )),
            (Effect::ChildrenOnly | Effect::Nothing, ["NOT_IN_WORKLOADS"]) => None,
            (Effect::ChildrenOnly | Effect::Nothing, ["NOT_ACTED_ON"]) => (!f.warned).then(|| {
                "listed as not acted on, but validate does not warn when it is set".into()
            }),
            (Effect::ChildrenOnly | Effect::Nothing, ["REFUSED"]) => (!f.refused).then(|| {
                "listed as refused, but no value of it is refused with `not supported: `".into()
            }),
            // What such a field accepts alone restates its default, which changes nothing.
            (Effect::NotExercised | Effect::Nothing, ["NOT_EXERCISED"]) => None,
            (Effect::Nothing, ["FOR_PEOPLE"]) => None,
            (effect, names) => Some(format!("{effect:?} (in {base}) and listed in {names:?}")),
        };
        if let Some(problem) = problem {
            report.push(format!("{path}: {problem}"));
        }
    }
    for (entry, _) in NOT_IN_WORKLOADS
        .iter()
        .chain(NOT_ACTED_ON)
        .chain(REFUSED)
        .chain(NOT_EXERCISED)
        .chain(FOR_PEOPLE)
    {
        if !found.keys().any(|path| covers(entry, path)) {
            report.push(format!("{entry}: listed but no field of the CRD"));
        }
    }
    let counts = found.values().fold(BTreeMap::new(), |mut m, f| {
        *m.entry(format!("{:?}", f.effect)).or_insert(0) += 1;
        m
    });
    eprintln!("{} fields, {counts:?}", found.len());
    assert!(
        report.is_empty(),
        "{} fields, {counts:?}:\n{}",
        found.len(),
        report.join("\n")
    );
}
