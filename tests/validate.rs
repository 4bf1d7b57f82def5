//! Broken variants of the examples: each must be rejected with a message that names the field.
//! Every case starts from an example that validates clean, changes one thing as a user might
//! get it wrong, and expects the exact `path: message` line.

use serde_json::{Value, json};
use vitess_operator::cli::validate::{Checker, check_text};
use vitess_operator::cli::yaml;

fn example(name: &str) -> Value {
    let path = format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    yaml::parse_documents(&text).unwrap().remove(0)
}

/// Problems of one object, as `path: message` lines (warnings left out: the tests of a
/// warning read `check_text` itself).
fn problems(checker: &Checker, doc: &Value) -> Vec<String> {
    let text = yaml::to_documents(&[doc]).unwrap();
    check_text(checker, "test.yaml", &text)
        .into_iter()
        .filter(|p| p.is_error())
        .map(|p| {
            assert_eq!(p.file, "test.yaml");
            if p.path.is_empty() {
                p.message
            } else {
                format!("{}: {}", p.path, p.message)
            }
        })
        .collect()
}

fn set(doc: &mut Value, pointer: &str, value: Value) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let target = doc
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("no {parent}"));
    match target {
        Value::Object(map) => {
            map.insert(key.to_string(), value);
        }
        Value::Array(items) => {
            let index: usize = key.parse().unwrap();
            if index == items.len() {
                items.push(value);
            } else {
                items[index] = value;
            }
        }
        other => panic!("cannot set {key} in {other}"),
    }
}

fn remove(doc: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    doc.pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .unwrap()
        .remove(key);
}

const POOL: &str = "/spec/keyspaces/0/partitionings/0/equal/shardTemplate/tabletPools/0";
const POOL_PATH: &str = "spec.keyspaces[0].partitionings[0].equal.shardTemplate.tabletPools[0]";

#[test]
fn examples_are_valid() {
    let checker = Checker::new();
    for name in [
        "initial-cluster.yaml",
        "two-keyspaces.yaml",
        "backup-gcs.yaml",
        "scheduled-backups.yaml",
    ] {
        let path = format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        let found = check_text(&checker, name, &text);
        // Not even a warning: every field of every example is acted on.
        assert!(found.is_empty(), "{name}: {found:#?}");
    }
}

#[test]
fn broken_variants_name_the_field() {
    let checker = Checker::new();
    type Mutation = Box<dyn Fn(&mut Value)>;
    let pool_path = POOL_PATH;
    let cases: Vec<(&str, Mutation, String)> = vec![
        (
            "both equal and custom",
            Box::new(|d| {
                set(
                    d,
                    "/spec/keyspaces/0/partitionings/0/custom",
                    json!({"shards": [{"keyRange": {}, "databaseInitScriptSecret": {"name": "s", "key": "k"}}]}),
                )
            }),
            "spec.keyspaces[0].partitionings[0]: set exactly one of equal and custom".into(),
        ),
        (
            "three partitionings",
            Box::new(|d| {
                let p = d.pointer("/spec/keyspaces/0/partitionings/0").unwrap().clone();
                set(d, "/spec/keyspaces/0/partitionings/1", p.clone());
                set(d, "/spec/keyspaces/0/partitionings/2", p);
            }),
            "spec.keyspaces[0].partitionings: must have at most 2 item(s), not 3".into(),
        ),
        (
            "negative replicas",
            Box::new(|d| set(d, &format!("{POOL}/replicas"), json!(-1))),
            format!("{pool_path}.replicas: must be at least 0, not -1"),
        ),
        (
            "missing replicas",
            Box::new(|d| remove(d, &format!("{POOL}/replicas"))),
            format!("{pool_path}.replicas: required field is missing"),
        ),
        (
            "unknown pool type",
            Box::new(|d| set(d, &format!("{POOL}/type"), json!("master"))),
            format!(
                "{pool_path}.type: unsupported value \"master\": supported values are \"replica\", \"rdonly\", \"externalmaster\", \"externalreplica\", \"externalrdonly\""
            ),
        ),
        (
            "unknown backup engine",
            Box::new(|d| {
                set(
                    d,
                    "/spec/backup",
                    json!({"engine": "mydumper", "locations": [{"gcs": {"bucket": "b"}}]}),
                )
            }),
            "spec.backup.engine: unsupported value \"mydumper\": supported values are \"builtin\", \"xtrabackup\", \"mysqlshell\"".into(),
        ),
        (
            "two backends in one location",
            Box::new(|d| {
                set(
                    d,
                    "/spec/backup",
                    json!({"locations": [{"gcs": {"bucket": "b"}, "s3": {"bucket": "b", "region": "r"}}]}),
                )
            }),
            "spec.backup.locations[0]: set exactly one backup backend: gcs, s3, azblob, ceph or volume".into(),
        ),
        (
            "no backend",
            Box::new(|d| set(d, "/spec/backup", json!({"locations": [{"name": "x"}]}))),
            "spec.backup.locations[0]: set exactly one backup backend: gcs, s3, azblob, ceph or volume".into(),
        ),
        (
            "no backup locations",
            Box::new(|d| set(d, "/spec/backup", json!({"locations": []}))),
            "spec.backup.locations: must have at least 1 item(s), not 0".into(),
        ),
        (
            "pool in an unknown cell",
            Box::new(|d| set(d, &format!("{POOL}/cell"), json!("zone9"))),
            format!("{pool_path}.cell: cell \"zone9\" is not one of the cluster's cells (zone1)"),
        ),
        (
            "undefined backup location",
            Box::new(|d| {
                set(d, "/spec/backup", json!({"locations": [{"name": "east", "gcs": {"bucket": "b"}}]}));
                set(d, &format!("{POOL}/backupLocationName"), json!("west"));
            }),
            format!(
                "{pool_path}.backupLocationName: backup location \"west\" is not defined in spec.backup.locations (east)"
            ),
        ),
        (
            "unnamed location used but only a named one defined",
            Box::new(|d| {
                set(d, "/spec/backup", json!({"locations": [{"name": "east", "gcs": {"bucket": "b"}}]}))
            }),
            format!(
                "{pool_path}.backupLocationName: backup location \"\" is not defined in spec.backup.locations (east)"
            ),
        ),
        (
            "typo in a field name",
            Box::new(|d| {
                let pools = d
                    .pointer_mut("/spec/keyspaces/0/partitionings/0/equal/shardTemplate")
                    .unwrap()
                    .as_object_mut()
                    .unwrap();
                let v = pools.remove("tabletPools").unwrap();
                pools.insert("tabletPool".into(), v);
            }),
            "spec.keyspaces[0].partitionings[0].equal.shardTemplate.tabletPool: unknown field".into(),
        ),
        (
            "duplicate cell",
            Box::new(|d| {
                let c = d.pointer("/spec/cells/0").unwrap().clone();
                set(d, "/spec/cells/1", c);
            }),
            "spec.cells[1]: duplicate entry (name \"zone1\"): spec.cells[0] has it already".into(),
        ),
        (
            "duplicate tablet pool",
            Box::new(|d| {
                let p = d.pointer(POOL).unwrap().clone();
                set(d, &POOL.replace("tabletPools/0", "tabletPools/1"), p);
            }),
            format!(
                "{}: duplicate entry (type=\"replica\", cell=\"zone1\", name=\"\"): {pool_path} has it already",
                pool_path.replace("tabletPools[0]", "tabletPools[1]")
            ),
        ),
        (
            "missing init script",
            Box::new(|d| {
                remove(
                    d,
                    "/spec/keyspaces/0/partitionings/0/equal/shardTemplate/databaseInitScriptSecret",
                )
            }),
            "spec.keyspaces[0].partitionings[0].equal.shardTemplate.databaseInitScriptSecret: required field is missing".into(),
        ),
        (
            "secret with neither name nor volume",
            Box::new(|d| {
                set(
                    d,
                    "/spec/keyspaces/0/partitionings/0/equal/shardTemplate/databaseInitScriptSecret",
                    json!({"key": "init_db.sql"}),
                )
            }),
            "spec.keyspaces[0].partitionings[0].equal.shardTemplate.databaseInitScriptSecret: set name (a Secret) or volumeName (an existing pod volume)".into(),
        ),
        (
            "unknown update strategy",
            Box::new(|d| set(d, "/spec/updateStrategy/type", json!("Rolling"))),
            "spec.updateStrategy.type: unsupported value \"Rolling\": supported values are \"External\", \"Immediate\"".into(),
        ),
        (
            "equal parts zero",
            Box::new(|d| set(d, "/spec/keyspaces/0/partitionings/0/equal/parts", json!(0))),
            "spec.keyspaces[0].partitionings[0].equal.parts: must be at least 1, not 0".into(),
        ),
        (
            "flag with dashes",
            Box::new(|d| set(d, &format!("{POOL}/vttablet/extraFlags/--db_charset"), json!("utf8"))),
            format!(
                "{pool_path}.vttablet.extraFlags.--db_charset: write flag names without leading dashes or '=' (e.g. `db_charset: utf8mb4`)"
            ),
        ),
        (
            "external and etcd lockserver",
            Box::new(|d| {
                set(
                    d,
                    "/spec/globalLockserver",
                    json!({"etcd": {}, "external": {"implementation": "etcd2", "address": "a:2379", "rootPath": "/v"}}),
                )
            }),
            "spec.globalLockserver: set at most one of external and etcd".into(),
        ),
        (
            "bad keyspace name",
            Box::new(|d| set(d, "/spec/keyspaces/0/name", json!("-commerce"))),
            "spec.keyspaces[0].name: \"-commerce\" does not match the pattern ^[A-Za-z0-9]([A-Za-z0-9-_.]*[A-Za-z0-9])?$".into(),
        ),
        (
            "missing vttablet",
            Box::new(|d| remove(d, &format!("{POOL}/vttablet"))),
            format!("{pool_path}.vttablet: required field is missing"),
        ),
        (
            "mysqld without a data volume",
            Box::new(|d| remove(d, &format!("{POOL}/dataVolumeClaimTemplate"))),
            format!(
                "{pool_path}: a tablet pool with a local mysqld needs dataVolumeClaimTemplate for its data"
            ),
        ),
        (
            "neither mysqld nor external datastore",
            Box::new(|d| {
                remove(d, &format!("{POOL}/mysqld"));
            }),
            format!("{pool_path}: a tablet pool needs mysqld (a local MySQL) or externalDatastore"),
        ),
        (
            "missing name",
            Box::new(|d| remove(d, "/metadata/name")),
            "metadata.name: required field is missing".into(),
        ),
        (
            "string where a number belongs",
            Box::new(|d| set(d, "/spec/cells/0/gateway/replicas", json!("two"))),
            "spec.cells[0].gateway.replicas: must be an integer, not a string".into(),
        ),
        // Mistakes the schema once let through, found only when the pods came up (issue 18).
        (
            "a zone that is no label value",
            Box::new(|d| set(d, "/spec/cells/0/zone", json!("-80-40"))),
            "spec.cells[0].zone: \"-80-40\" does not match the pattern ^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$".into(),
        ),
        (
            "a durability policy Vitess does not register",
            Box::new(|d| set(d, "/spec/keyspaces/0/durabilityPolicy", json!("UPPER_case"))),
            "spec.keyspaces[0].durabilityPolicy: unsupported value \"UPPER_case\": supported values are \"\", \"none\", \"semi_sync\", \"cross_cell\", \"semi_sync_with_rdonly_ack\", \"cross_cell_with_rdonly_ack\", \"test\"".into(),
        ),
        (
            "a GCS bucket name Google refuses",
            Box::new(|d| {
                set(
                    d,
                    "/spec/backup",
                    json!({"locations": [{"gcs": {"bucket": "bücket"}}]}),
                )
            }),
            "spec.backup.locations[0].gcs.bucket: \"bücket\" does not match the pattern ^[a-z0-9][-a-z0-9_.]*[a-z0-9]$".into(),
        ),
        (
            "an access mode that does not exist",
            Box::new(|d| {
                set(
                    d,
                    &format!("{POOL}/dataVolumeClaimTemplate/accessModes/0"),
                    json!("ReadWriteSometimes"),
                )
            }),
            format!(
                "{pool_path}.dataVolumeClaimTemplate.accessModes[0]: unsupported value \"ReadWriteSometimes\": supported values are \"ReadWriteOnce\", \"ReadOnlyMany\", \"ReadWriteMany\", \"ReadWriteOncePod\""
            ),
        ),
        (
            "an empty Secret name",
            Box::new(|d| set(d, "/spec/cells/0/gateway/authentication/static/secret/name", json!(""))),
            "spec.cells[0].gateway.authentication.static.secret.name: must not be empty".into(),
        ),
        (
            "a negative storage request",
            Box::new(|d| {
                set(
                    d,
                    &format!("{POOL}/dataVolumeClaimTemplate/resources/requests/storage"),
                    json!("-5Gi"),
                )
            }),
            format!(
                "{pool_path}.dataVolumeClaimTemplate.resources.requests.storage: \"-5Gi\" does not match the pattern {}",
                vitess_operator::api::shared::POSITIVE_QUANTITY
            ),
        ),
        (
            "a zero storage request as a number",
            Box::new(|d| {
                set(
                    d,
                    &format!("{POOL}/dataVolumeClaimTemplate/resources/requests/storage"),
                    json!(0),
                )
            }),
            format!(
                "{pool_path}.dataVolumeClaimTemplate.resources.requests.storage: must be at least 1, not 0"
            ),
        ),
        (
            "an emptied pool list",
            Box::new(|d| {
                set(
                    d,
                    "/spec/keyspaces/0/partitionings/0/equal/shardTemplate/tabletPools",
                    json!([]),
                )
            }),
            "spec.keyspaces[0].partitionings[0].equal.shardTemplate.tabletPools: must have at least 1 item(s), not 0".into(),
        ),
        (
            "a Secret name set to null (the API server's CEL sees it as absent)",
            Box::new(|d| {
                set(
                    d,
                    "/spec/keyspaces/0/partitionings/0/equal/shardTemplate/databaseInitScriptSecret/name",
                    Value::Null,
                )
            }),
            "spec.keyspaces[0].partitionings[0].equal.shardTemplate.databaseInitScriptSecret: set name (a Secret) or volumeName (an existing pod volume)".into(),
        ),
        (
            "a backup volume that is no VolumeSource",
            Box::new(|d| {
                set(
                    d,
                    "/spec/backup",
                    json!({"locations": [{"volume": {"hostPath": -1}}]}),
                )
            }),
            "spec.backup.locations[0].volume: not a core/v1 VolumeSource: invalid type: integer `-1`, expected HostPathVolumeSource".into(),
        ),
        (
            "a pool list set to null (the API server refuses a null it neither keeps nor defaults)",
            Box::new(|d| {
                set(
                    d,
                    "/spec/keyspaces/0/partitionings/0/equal/shardTemplate/tabletPools",
                    Value::Null,
                )
            }),
            "spec.keyspaces[0].partitionings[0].equal.shardTemplate.tabletPools: must be a list, not null".into(),
        ),
        (
            "vtctld in an unknown cell",
            Box::new(|d| set(d, "/spec/vitessDashboard/cells/0", json!("zone2"))),
            "spec.vitessDashboard.cells[0]: cell \"zone2\" is not one of the cluster's cells (zone1)".into(),
        ),
    ];
    let mut failures = Vec::new();
    for (name, mutate, expected) in cases {
        let mut doc = example("initial-cluster.yaml");
        mutate(&mut doc);
        let found = problems(&checker, &doc);
        if !found.contains(&expected) {
            failures.push(format!(
                "{name}:\n  expected: {expected}\n  found:    {found:#?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn custom_key_ranges_must_cover_without_overlap() {
    let checker = Checker::new();
    let shards = "/spec/keyspaces/1/partitionings/0/custom/shards";
    let path = "spec.keyspaces[1].partitionings[0].custom.shards";

    let mut overlap = example("two-keyspaces.yaml");
    set(
        &mut overlap,
        &format!("{shards}/1/keyRange"),
        json!({"start": "40"}),
    );
    assert_eq!(
        problems(&checker, &overlap),
        [format!(
            "{path}[1].keyRange: key range 40- overlaps {path}[0] (-80)"
        )]
    );

    let mut gap = example("two-keyspaces.yaml");
    set(
        &mut gap,
        &format!("{shards}/1/keyRange"),
        json!({"start": "c0"}),
    );
    assert_eq!(
        problems(&checker, &gap),
        [format!(
            "{path}: key ranges leave 80-c0 uncovered; together they must cover the whole keyspace"
        )]
    );

    let mut bad_hex = example("two-keyspaces.yaml");
    set(
        &mut bad_hex,
        &format!("{shards}/1/keyRange"),
        json!({"start": "8G"}),
    );
    assert!(
        problems(&checker, &bad_hex).contains(&format!(
            "{path}[1].keyRange.start: \"8G\" does not match the pattern ^([0-9a-f][0-9a-f])*$"
        )),
        "{:?}",
        problems(&checker, &bad_hex)
    );

    let mut same_point = example("two-keyspaces.yaml");
    set(
        &mut same_point,
        &format!("{shards}/0/keyRange"),
        json!({"start": "80", "end": "8000"}),
    );
    assert!(
        problems(&checker, &same_point)
            .iter()
            .any(|p| p.starts_with(&format!("{path}[0].keyRange: key range 80-8000 is empty"))),
        "{:?}",
        problems(&checker, &same_point)
    );

    // The schema's one-pass rules: exactly one shard at each end of the keyspace.
    let mut two_beginnings = example("two-keyspaces.yaml");
    set(
        &mut two_beginnings,
        &format!("{shards}/1/keyRange"),
        json!({"end": "c0"}),
    );
    let found = problems(&checker, &two_beginnings);
    for expected in [
        format!(
            "{path}: exactly one shard must have an empty keyRange.start (the beginning of the keyspace)"
        ),
        format!(
            "{path}: exactly one shard must have an empty keyRange.end (the end of the keyspace)"
        ),
    ] {
        assert!(found.contains(&expected), "{expected} not in {found:?}");
    }

    let mut reversed = example("two-keyspaces.yaml");
    set(
        &mut reversed,
        &format!("{shards}/0/keyRange"),
        json!({"start": "c0", "end": "80"}),
    );
    assert!(
        problems(&checker, &reversed)
            .contains(&format!("{path}[0].keyRange: start must be below end")),
        "{:?}",
        problems(&checker, &reversed)
    );
}

#[test]
fn schedules_must_name_existing_shards() {
    let checker = Checker::new();
    let mut doc = example("scheduled-backups.yaml");
    set(
        &mut doc,
        "/spec/backup/schedules/1/strategies/1/shard",
        json!("80-c0"),
    );
    set(
        &mut doc,
        "/spec/backup/schedules/0/strategies/0/keyspace",
        json!("orders"),
    );
    let found = problems(&checker, &doc);
    assert_eq!(
        found,
        [
            "spec.backup.schedules[0].strategies[0].keyspace: keyspace \"orders\" is not in spec.keyspaces (commerce, customer)",
            "spec.backup.schedules[1].strategies[1].shard: shard \"80-c0\" is not a shard of keyspace \"customer\" (-80, 80-)",
        ]
    );
}

#[test]
fn schedule_scopes_need_exactly_their_fields() {
    let checker = Checker::new();
    let strategy = "/spec/backup/schedules/1/strategies/0";
    let path = "spec.backup.schedules[1].strategies[0]";
    let keyspace_rule =
        "set keyspace for scope Shard (the default) and Keyspace, and not for scope Cluster";
    let shard_rule =
        "set shard for scope Shard (the default), and not for scope Keyspace or Cluster";
    let cases: Vec<(&str, Value, Vec<String>)> = vec![
        (
            "keyspace scope",
            json!({"name": "all", "scope": "Keyspace", "keyspace": "customer"}),
            vec![],
        ),
        (
            "cluster scope",
            json!({"name": "all", "scope": "Cluster"}),
            vec![],
        ),
        (
            "keyspace scope with a shard",
            json!({"name": "all", "scope": "Keyspace", "keyspace": "customer", "shard": "-80"}),
            vec![format!("{path}: {shard_rule}")],
        ),
        (
            "cluster scope with a keyspace",
            json!({"name": "all", "scope": "Cluster", "keyspace": "customer"}),
            vec![format!("{path}: {keyspace_rule}")],
        ),
        (
            "shard scope without a shard",
            json!({"name": "one", "keyspace": "customer"}),
            vec![format!("{path}: {shard_rule}")],
        ),
        (
            "keyspace scope of an unknown keyspace",
            json!({"name": "all", "scope": "Keyspace", "keyspace": "orders"}),
            vec![format!(
                "{path}.keyspace: keyspace \"orders\" is not in spec.keyspaces (commerce, customer)"
            )],
        ),
        (
            "flags written with dashes",
            json!({"name": "one", "keyspace": "customer", "shard": "-80", "extraFlags": {"--allow-primary": "true"}}),
            vec![format!(
                "{path}.extraFlags.--allow-primary: write flag names without leading dashes or '=' (e.g. `db_charset: utf8mb4`)"
            )],
        ),
    ];
    for (what, value, want) in cases {
        let mut doc = example("scheduled-backups.yaml");
        set(&mut doc, strategy, value);
        assert_eq!(problems(&checker, &doc), want, "{what}");
    }
}

#[test]
fn other_documents_and_wrong_versions() {
    let checker = Checker::new();
    // A Secret in the same file is not ours to judge.
    let text = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n";
    assert!(check_text(&checker, "f.yaml", text).is_empty());
    // Our kind at an old version is named as such.
    let old =
        "apiVersion: planetscale.com/v1\nkind: VitessCluster\nmetadata: {name: x}\nspec: {}\n";
    let found = check_text(&checker, "f.yaml", old);
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].to_string(),
        "f.yaml: VitessCluster/x: apiVersion: VitessCluster is served as planetscale.com/v2, not \"planetscale.com/v1\""
    );
    // Broken YAML is one problem that says where.
    let broken = check_text(&checker, "f.yaml", "spec: [unclosed\n");
    assert_eq!(broken.len(), 1);
    assert!(broken[0].to_string().contains("line"), "{}", broken[0]);
}

/// Schedule fields of the Go operator's newest API, as its own end-to-end YAML writes them.
#[test]
fn go_operator_schedule_fields() {
    let checker = Checker::new();
    let schedule = "/spec/backup/schedules/0";
    let path = "spec.backup.schedules[0]";
    let one_of = "set exactly one of schedule (a cron expression) and frequency (e.g. 1h)";
    // (what, fields of the schedule to set or remove, the problems expected)
    type Case<'a> = (&'a str, Vec<(&'a str, Option<Value>)>, Vec<String>);
    let cases: Vec<Case> = vec![
        (
            "frequency instead of schedule",
            vec![("schedule", None), ("frequency", Some(json!("24h")))],
            vec![],
        ),
        (
            "vtctldclient, tolerations cleared",
            vec![
                ("backupMethod", Some(json!("vtctldclient"))),
                ("tolerations", Some(json!([]))),
            ],
            vec![],
        ),
        (
            "tolerations",
            vec![(
                "tolerations",
                Some(json!([{"key": "backups", "operator": "Exists", "effect": "NoSchedule"}])),
            )],
            vec![],
        ),
        (
            "both",
            vec![("frequency", Some(json!("1h")))],
            vec![format!("{path}: {one_of}")],
        ),
        (
            "neither",
            vec![("schedule", None)],
            vec![format!("{path}: {one_of}")],
        ),
        (
            "a frequency cron cannot run exactly",
            vec![("schedule", None), ("frequency", Some(json!("7m")))],
            vec![format!(
                "{path}.frequency: \"7m\" cannot be run exactly by cron; use one of 1m, 5m, 15m, 30m, 1h, 2h, 4h, 6h, 12h, 24h"
            )],
        ),
        (
            "not a duration",
            vec![("schedule", None), ("frequency", Some(json!("daily")))],
            vec![format!(
                "{path}.frequency: \"daily\" is not a duration such as 30m or 1h"
            )],
        ),
        (
            "unknown method",
            vec![("backupMethod", Some(json!("mysqldump")))],
            vec![format!(
                "{path}.backupMethod: unsupported value \"mysqldump\": supported values are \"vtbackup\", \"vtctldclient\""
            )],
        ),
    ];
    for (what, changes, want) in cases {
        let mut doc = example("scheduled-backups.yaml");
        for (field, value) in changes {
            let pointer = format!("{schedule}/{field}");
            match value {
                Some(value) => set(&mut doc, &pointer, value),
                None => remove(&mut doc, &pointer),
            }
        }
        assert_eq!(problems(&checker, &doc), want, "{what}");
    }

    // vtbackup is run as asked: no warning.
    let mut doc = example("scheduled-backups.yaml");
    set(
        &mut doc,
        &format!("{schedule}/backupMethod"),
        json!("vtbackup"),
    );
    let text = yaml::to_documents(&[&doc]).unwrap();
    let found = check_text(&checker, "test.yaml", &text);
    assert!(found.is_empty(), "{found:#?}");

    // `keyspaces:` with nothing after it (the Go operator's 102_keyspace_teardown.yaml).
    let mut doc = example("initial-cluster.yaml");
    set(&mut doc, "/spec/keyspaces", Value::Null);
    assert_eq!(problems(&checker, &doc), Vec::<String>::new());
}

/// A schedule's name is a label value of its CronJob: longer than 63 characters, the CronJob
/// would be refused long after the cluster was accepted (found by tests/mutations.rs).
#[test]
fn schedule_names_fit_a_label_value() {
    let checker = Checker::new();
    let mut doc = example("scheduled-backups.yaml");
    set(
        &mut doc,
        "/spec/backup/schedules/0/name",
        json!("a".repeat(64)),
    );
    assert!(
        problems(&checker, &doc).contains(
            &"spec.backup.schedules[0].name: must be at most 63 characters long, not 64"
                .to_string()
        ),
        "{:?}",
        problems(&checker, &doc)
    );
    // Within 63 alone, but not with the cluster's name around it in the schedule's name,
    // which its Jobs carry as a label.
    set(
        &mut doc,
        "/spec/backup/schedules/0/name",
        json!("a".repeat(50)),
    );
    let found = problems(&checker, &doc);
    assert!(
        found.iter().any(|p| p.starts_with("spec.backup.schedules[0].name: its VitessBackupSchedule example-vbsc-aaaa")
            && p.ends_with("is 72 characters long, and its Jobs carry that name as a label value, which holds 63 at most: shorten the schedule's or the cluster's name by 9")),
        "{found:?}"
    );
}

/// A null where the schema has a default is what the API server replaces with the default:
/// accepted, as there.
#[test]
fn a_null_with_a_default_is_the_default() {
    let checker = Checker::new();
    let mut doc = example("backup-gcs.yaml");
    set(&mut doc, "/spec/backup/locations/0/name", Value::Null);
    assert_eq!(problems(&checker, &doc), Vec::<String>::new());
}

/// `replication.recoverRestartedMaster: false` is accepted (YAML written for the Go operator
/// applies) and warned about: neither operator reads it; vtorc repairs replication.
#[test]
fn recover_restarted_master_false_is_warned_about_not_refused() {
    let checker = Checker::new();
    let mut doc = example("two-keyspaces.yaml");
    let template = "/spec/keyspaces/0/partitionings/0/equal/shardTemplate";
    set(
        &mut doc,
        &format!("{template}/replication"),
        json!({"recoverRestartedMaster": false}),
    );
    let text = yaml::to_documents(&[&doc]).unwrap();
    let found = check_text(&checker, "test.yaml", &text);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(!found[0].is_error());
    assert_eq!(
        found[0].path,
        "spec.keyspaces[0].partitionings[0].equal.shardTemplate.replication.recoverRestartedMaster"
    );
    assert!(found[0].to_string().contains("vtorc repairs replication"));

    // true (the default) says nothing.
    set(
        &mut doc,
        &format!("{template}/replication"),
        json!({"recoverRestartedMaster": true}),
    );
    let text = yaml::to_documents(&[&doc]).unwrap();
    assert_eq!(check_text(&checker, "test.yaml", &text).len(), 0);
}
