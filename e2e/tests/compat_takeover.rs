//! Takeover from the Go operator (`--features compat`, in `make compat`).
//!
//! The Go operator (built from `../shared/anchors/` by `e2e/go-operator`) runs as a local process
//! with its own CRDs on a cluster of two cells, a sharded keyspace (2 shards), a named pool, a
//! vtgate autoscaler, a volume backup location and a schedule, `updateStrategy: Immediate`. Its
//! global lockserver is external: the e2e etcd under `/vitess/global`, the root the e2e vtctld
//! serves, so both operators see one topology. Beside it a second cluster runs the Go
//! operator's own etcd (an EtcdLockserver: three member pods and their PVCs). Then it is stopped, our CRDs are installed over its
//! CRDs and our operator runs for a while. The report (`target/e2e-figures/takeover.json`) says,
//! object by object, what was recreated, whose pod spec or template changed (field by field),
//! what we made that the Go operator did not, and what of its objects nothing manages now.
//! It fails when a Pod, PVC, Service, Deployment or VitessBackupSchedule is recreated or
//! deleted, a Go-made tablet is put on a rolling update, anything changes but our marks
//! ([`ALLOWED_CHANGES`]), we make anything at all, a cell's topology moves, or the cluster's topology is
//! not registered. KWOK pods never run, so tablets register no tablet record and no shard has a
//! primary: the cluster must be not Ready for its keyspaces alone (lockserver, vtctld and cells
//! taken over and available).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use serde_json::{Value, json};
use vitess_operator_e2e::{
    Operator, TestNamespace, client, go_operator, kubectl, kubectl_with_stdin, unique_suffix,
    vtctld_addr, vtctldclient, wait_for, workspace_dir, write_figures,
};

/// How long our operator runs on the Go operator's objects before the report is taken.
const OURS_RUN: Duration = Duration::from_secs(90);
const CONVERGE: Duration = Duration::from_secs(180);
/// How long the Go operator runs again on what ours left (the reverse direction, reported).
const REVERSE_RUN: Duration = Duration::from_secs(60);

/// What the report lists; a Pod, PVC, Service or Deployment recreated fails the test.
const MUST_KEEP: &[&str] = &[
    "Pod",
    "PersistentVolumeClaim",
    "Service",
    "Deployment",
    "VitessBackupSchedule",
];

/// The only changes a takeover may make to the Go operator's objects: our adoption marks (a
/// Deployment's kept template, a tablet pod's desired-state hash in our computation), and the
/// component and cluster labels every child of ours carries (DESIGN §3), which the Go operator
/// leaves off its etcd disruption budget. None restarts anything.
const ALLOWED_CHANGES: &[&str] = &[
    "annotations.vitess.io/adopted-template-for: null -> ",
    "annotations.planetscale.com/desired-state-hash: ",
    "labels.planetscale.com/component: null -> ",
    "labels.planetscale.com/cluster: null -> ",
];

/// Kinds read for the snapshot (`kubectl get` resource names).
const RESOURCES: &str = "pods,persistentvolumeclaims,services,deployments,\
    horizontalpodautoscalers,cronjobs,poddisruptionbudgets,vitesscells,vitesskeyspaces,\
    vitessshards,vitessbackupstorages,etcdlockservers,vitessbackupschedules";

fn cluster_yaml(cell_a: &str, cell_b: &str, keyspace: &str) -> String {
    let pool = |cell: &str, kind: &str, replicas: u32, name: &str| {
        format!(
            r#"
          - cell: {cell}
            type: {kind}
            replicas: {replicas}{name}
            vttablet:
              resources: {{requests: {{cpu: 100m, memory: 256Mi}}}}
            mysqld:
              resources: {{requests: {{cpu: 100m, memory: 256Mi}}}}
            dataVolumeClaimTemplate:
              accessModes: ["ReadWriteOnce"]
              resources: {{requests: {{storage: 1Gi}}}}"#
        )
    };
    let pools = [
        pool(cell_a, "replica", 2, "\n            name: main"),
        pool(cell_b, "rdonly", 1, ""),
    ]
    .concat();
    format!(
        r#"apiVersion: planetscale.com/v2
kind: VitessCluster
metadata:
  name: takeover
spec:
  globalLockserver:
    external: {{implementation: etcd2, address: "127.0.0.1:23790", rootPath: /vitess/global}}
  images:
    vtctld: vitess/lite:v24.0.3
    vtgate: vitess/lite:v24.0.3
    vttablet: vitess/lite:v24.0.3
    vtorc: vitess/lite:v24.0.3
    vtbackup: vitess/lite:v24.0.3
    mysqld:
      mysql80Compatible: mysql:9.7
    mysqldExporter: prom/mysqld-exporter:v0.16.0
  backup:
    locations:
    - volume:
        persistentVolumeClaim:
          claimName: takeover-backups
    schedules:
    - name: hourly
      schedule: "0 * * * *"
      resources: {{requests: {{cpu: 100m, memory: 128Mi}}}}
      successfulJobsHistoryLimit: 2
      failedJobsHistoryLimit: 3
      jobTimeoutMinute: 5
      strategies:
      - {{name: low, keyspace: {keyspace}, shard: "-80"}}
      - {{name: high, keyspace: {keyspace}, shard: "80-"}}
  cells:
  - name: {cell_a}
    gateway:
      replicas: 1
      autoscaler:
        minReplicas: 1
        maxReplicas: 3
        metrics:
        - type: Resource
          resource: {{name: cpu, target: {{type: Utilization, averageUtilization: 80}}}}
      resources: {{requests: {{cpu: 100m, memory: 256Mi}}}}
  - name: {cell_b}
    gateway:
      replicas: 1
  vitessDashboard:
    cells: [{cell_a}]
    replicas: 1
  keyspaces:
  - name: {keyspace}
    turndownPolicy: Immediate
    partitionings:
    - equal:
        parts: 2
        shardTemplate:
          databaseInitScriptSecret: {{name: takeover-config, key: init_db.sql}}
          tabletPools:{pools}
  updateStrategy:
    type: Immediate
---
# The Go operator's own etcd (an EtcdLockserver, three member pods with their PVCs): topology
# registration off, so this cluster's cells stay out of the shared e2e topology.
apiVersion: planetscale.com/v2
kind: VitessCluster
metadata:
  name: takeover-etcd
spec:
  globalLockserver:
    etcd: {{}}
  images:
    vtctld: vitess/lite:v24.0.3
    vtgate: vitess/lite:v24.0.3
  cells:
  - name: {cell_a}
    gateway:
      replicas: 1
  topologyReconciliation:
    registerCells: false
    registerCellsAliases: false
---
apiVersion: v1
kind: Secret
metadata:
  name: takeover-config
type: Opaque
stringData:
  init_db.sql: "SELECT 1;"
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: takeover-backups
spec:
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 1Gi}}}}
"#
    )
}

/// One object of the snapshot: what a takeover must keep.
#[derive(Clone, Debug)]
struct Seen {
    uid: String,
    labels: Value,
    annotations: Value,
    /// A Pod's spec, a Deployment's pod template, a CronJob's job template; else null.
    template: Value,
    owners: Vec<String>,
}

async fn snapshot(ns: &str) -> Result<BTreeMap<String, Seen>> {
    let text = kubectl(&["get", "-n", ns, RESOURCES, "-o", "json"]).await?;
    let list: Value = serde_json::from_str(&text).context("kubectl get -o json")?;
    let mut out = BTreeMap::new();
    for item in list["items"].as_array().into_iter().flatten() {
        let kind = item["kind"].as_str().unwrap_or_default();
        let name = item["metadata"]["name"].as_str().unwrap_or_default();
        let template = match kind {
            "Pod" => item["spec"].clone(),
            "Deployment" => item["spec"]["template"].clone(),
            "CronJob" => item["spec"]["jobTemplate"].clone(),
            _ => Value::Null,
        };
        let owners = item["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| {
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap_or_default(),
                    o["name"].as_str().unwrap_or_default()
                )
            })
            .collect();
        out.insert(
            format!("{kind}/{name}"),
            Seen {
                uid: item["metadata"]["uid"].as_str().unwrap_or_default().into(),
                labels: item["metadata"]["labels"].clone(),
                annotations: item["metadata"]["annotations"].clone(),
                template,
                owners,
            },
        );
    }
    Ok(out)
}

/// Every leaf path where `a` and `b` differ, with both values.
fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for key in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                let null = Value::Null;
                diff(
                    &format!("{path}.{key}"),
                    x.get(key).unwrap_or(&null),
                    y.get(key).unwrap_or(&null),
                    out,
                );
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                // Containers, env and volumes by name, when they have one.
                let label = p["name"].as_str().map_or(i.to_string(), str::to_string);
                diff(&format!("{path}[{label}]"), p, q, out);
            }
        }
        _ if a != b => out.push(format!("{path}: {a} -> {b}")),
        _ => {}
    }
}

/// Labels and annotations the kube controllers or the drain protocol write are not ours.
fn report(before: &BTreeMap<String, Seen>, after: &BTreeMap<String, Seen>) -> Value {
    let mut recreated = Vec::new();
    let mut deleted = Vec::new();
    let mut changed = BTreeMap::new();
    for (key, old) in before {
        let Some(new) = after.get(key) else {
            deleted.push(key.clone());
            continue;
        };
        if new.uid != old.uid {
            recreated.push(key.clone());
        }
        let mut diffs = Vec::new();
        diff("spec", &old.template, &new.template, &mut diffs);
        diff("labels", &old.labels, &new.labels, &mut diffs);
        diff(
            "annotations",
            &old.annotations,
            &new.annotations,
            &mut diffs,
        );
        if old.owners != new.owners {
            diffs.push(format!(
                "ownerReferences: {:?} -> {:?}",
                old.owners, new.owners
            ));
        }
        diffs.retain(|d| !d.contains("deployment.kubernetes.io/revision"));
        if !diffs.is_empty() {
            changed.insert(key.clone(), diffs);
        }
    }
    let new: Vec<_> = after
        .keys()
        .filter(|k| !before.contains_key(*k))
        .cloned()
        .collect();
    json!({
        "go_objects": before.len(),
        "recreated": recreated,
        "deleted": deleted,
        "changed": changed,
        "new_by_ours": new,
    })
}

async fn install(dir: &str) -> Result<()> {
    kubectl(&["apply", "--server-side", "--force-conflicts", "-f", dir]).await?;
    Ok(())
}

async fn wait_established(kind_plural: &str) -> Result<()> {
    kubectl(&[
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        &format!("crd/{kind_plural}.planetscale.com"),
    ])
    .await?;
    Ok(())
}

/// Starts the Go operator on `ns` (WATCH_NAMESPACE; it skips leader election out of a cluster).
fn start_go(binary: &std::path::Path, ns: &str, name: &str) -> Result<Operator> {
    let watch = format!("WATCH_NAMESPACE={ns}");
    let binary = binary.to_string_lossy();
    Operator::start_binary(
        std::path::Path::new("/usr/bin/env"),
        name,
        &[&watch, &binary],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn takeover_from_the_go_operator() -> Result<()> {
    let Some(paths) = go_operator("takeover", &["build", "source"])? else {
        return Ok(());
    };
    let (go_binary, go_source) = (&paths[0], &paths[1]);
    let started = Instant::now();
    let client = client().await?;
    let ns = TestNamespace::create(&client, "takeover").await?;
    let suffix = unique_suffix().replace('-', "");
    let (cell_a, cell_b, keyspace) = (
        format!("tka{suffix}"),
        format!("tkb{suffix}"),
        format!("tk{suffix}"),
    );
    let result = run(ns.name(), go_binary, go_source, &cell_a, &cell_b, &keyspace).await;
    // Whatever happened: our CRDs back, as the other tests expect, and the namespace gone.
    let crds = workspace_dir().join("crds");
    let priority = workspace_dir().join("config/priority");
    let restored = async {
        install(&crds.to_string_lossy()).await?;
        install(&priority.to_string_lossy()).await?;
        anyhow::Ok(())
    }
    .await;
    let deleted = ns.delete(Duration::from_secs(120)).await;
    for args in [
        vec![
            "DeleteKeyspace",
            "--recursive",
            "--force",
            keyspace.as_str(),
        ],
        vec!["DeleteCellInfo", "--force", cell_a.as_str()],
        vec!["DeleteCellInfo", "--force", cell_b.as_str()],
    ] {
        let _ = vtctldclient(&args).await;
    }
    eprintln!("takeover test: {:.0} s", started.elapsed().as_secs_f64());
    restored.context("re-installing our CRDs")?;
    deleted?;
    result
}

async fn run(
    ns: &str,
    go_binary: &std::path::Path,
    go_source: &std::path::Path,
    cell_a: &str,
    cell_b: &str,
    keyspace: &str,
) -> Result<()> {
    // 1. The Go operator's CRDs over ours, and the PriorityClass its pods name.
    install(&go_source.join("deploy/crds").to_string_lossy()).await?;
    install(&workspace_dir().join("config/priority").to_string_lossy()).await?;
    for kind in ["vitessclusters", "vitessbackupschedules", "vitessshards"] {
        wait_established(kind).await?;
    }
    // 2. The Go operator, 3. the cluster, until its children are there.
    let mut go = start_go(go_binary, ns, "takeover-go")?;
    kubectl_with_stdin(
        &["apply", "--server-side", "-n", ns, "-f", "-"],
        Some(&cluster_yaml(cell_a, cell_b, keyspace)),
    )
    .await?;
    // Converged: 6 tablet pods (2 shards x (2 replica + 1 rdonly)), the HPA, both shards, and
    // the other cluster's 3 etcd members.
    let converged = wait_for(
        "the Go operator's children",
        CONVERGE,
        async |seen: &mut String| {
            go.check_running()?;
            let snap = snapshot(ns).await?;
            let count = |kind: &str| snap.keys().filter(|k| k.starts_with(kind)).count();
            let component = |name: &str| {
                snap.iter()
                    .filter(|(k, s)| {
                        k.starts_with("Pod/") && s.labels["planetscale.com/component"] == name
                    })
                    .count()
            };
            let (tablets, etcds) = (component("vttablet"), component("etcd"));
            *seen = format!(
                "tablet pods {tablets}, etcd pods {etcds}, HPAs {}, CronJobs {}, shards {}, deployments {}",
                count("HorizontalPodAutoscaler/"),
                count("CronJob/"),
                count("VitessShard/"),
                count("Deployment/")
            );
            Ok((tablets == 6
                && etcds == 3
                && count("HorizontalPodAutoscaler/") >= 1
                && count("VitessShard/") == 2)
                .then_some(()))
        },
    )
    .await;
    // Let it settle (topology writes, schedules) before the record.
    tokio::time::sleep(Duration::from_secs(15)).await;
    let go_log = go.log_contents().unwrap_or_default();
    converged.with_context(|| format!("--- Go operator log tail ---\n{}", tail(&go_log)))?;
    let before = snapshot(ns).await?;
    let schedules = kubectl(&["get", "-n", ns, "vitessbackupschedules", "-o", "name"]).await?;
    let cells_before = vtctldclient(&["GetCellInfoNames"])
        .await
        .unwrap_or_default();
    go.stop().await?;

    // 4. Our CRDs over its CRDs (the user's upgrade), then our operator.
    install(&workspace_dir().join("crds").to_string_lossy()).await?;
    install(&workspace_dir().join("config/priority").to_string_lossy()).await?;
    for kind in ["vitessclusters", "vitessshards", "vitessbackupschedules"] {
        wait_established(kind).await?;
    }
    let address = format!("*={}", vtctld_addr());
    let mut ours = Operator::start(
        "takeover-ours",
        &[
            "run",
            "--namespace",
            ns,
            "--vtctld-address",
            &address,
            vitess_operator_e2e::METRICS_ADDRESS,
        ],
    )?;
    let deadline = Instant::now() + OURS_RUN;
    while Instant::now() < deadline {
        ours.check_running()?;
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let after = snapshot(ns).await?;
    let cells_after = vtctldclient(&["GetCellInfoNames"])
        .await
        .unwrap_or_default();
    let cell_info = vtctldclient(&["GetCellInfo", cell_a])
        .await
        .unwrap_or_default();
    let ready = kubectl(&[
        "get",
        "-n",
        ns,
        "vitesscluster/takeover",
        "-o",
        "jsonpath={.status.conditions}",
    ])
    .await
    .unwrap_or_default();
    ours.stop().await?;

    // 5. The reverse, reported: the Go operator's CRDs back over ours and the Go operator run
    // again on what ours left. Only its safety is asserted (no PVC deleted): the rest is what
    // a user going back would meet.
    install(&go_source.join("deploy/crds").to_string_lossy()).await?;
    wait_established("vitessclusters").await?;
    let mut back = start_go(go_binary, ns, "takeover-go-back")?;
    let mut exited = None;
    // It cannot read a VitessShard whose status has our conditions (a list; its are a map):
    // cleared after a while, the way README tells a user going back.
    for clear in [false, true] {
        if clear {
            let shards = kubectl(&["get", "-n", ns, "vitessshards", "-o", "name"]).await?;
            for shard in shards.lines() {
                kubectl(&[
                    "patch",
                    "-n",
                    ns,
                    shard,
                    "--subresource=status",
                    "--type=merge",
                    "-p",
                    r#"{"status":{"conditions":null}}"#,
                ])
                .await?;
            }
        }
        let deadline = Instant::now() + REVERSE_RUN / 2;
        while Instant::now() < deadline && exited.is_none() {
            exited = back.check_running().err().map(|e| format!("{e:#}"));
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    }
    let reverse = snapshot(ns).await?;
    let back_log = back.log_contents().unwrap_or_default();
    let _ = back.stop().await;
    let mut reverse_report = report(&after, &reverse);
    reverse_report["go_exited"] = json!(exited);
    reverse_report["go_errors"] = json!(
        back_log
            .lines()
            .filter(|l| l.contains("\"level\":\"error\"") || l.contains("ERROR"))
            .map(|l| l.chars().take(300).collect::<String>())
            .take(10)
            .collect::<Vec<_>>()
    );

    let mut figures = report(&before, &after);
    figures["reverse"] = reverse_report;
    figures["go_vitessbackupschedules"] = json!(schedules.lines().collect::<Vec<_>>());
    figures["cells_before"] = json!(cells_before.lines().collect::<Vec<_>>());
    figures["cells_after"] = json!(cells_after.lines().collect::<Vec<_>>());
    figures["cell_info_after"] = json!(cell_info);
    figures["cluster_conditions_after"] = json!(ready);
    figures["go_objects_list"] = json!(
        before
            .iter()
            .map(|(k, s)| format!("{k} uid={}", s.uid))
            .collect::<Vec<_>>()
    );
    let text = serde_json::to_string_pretty(&figures)?;
    write_figures("takeover", &figures)?;
    println!("{text}");

    let broken: Vec<String> = before
        .iter()
        .filter(|(k, _)| MUST_KEEP.iter().any(|m| k.starts_with(&format!("{m}/"))))
        .filter(|(k, s)| after.get(*k).is_none_or(|a| a.uid != s.uid))
        .map(|(k, _)| k.clone())
        .collect();
    // A tablet pod our operator started to drain for a rolling update would be replaced on a
    // real node (KWOK tablets have no primary, so here the drain only starts): a restart too.
    let rolled: Vec<String> = after
        .iter()
        .filter(|(k, s)| {
            k.starts_with("Pod/")
                && before.contains_key(*k)
                && s.annotations["drain.planetscale.com/started"]
                    .as_str()
                    .is_some_and(|v| v.contains("rolling update"))
        })
        .map(|(k, _)| k.clone())
        .collect();
    let lost_claims: Vec<&str> = figures["reverse"]["deleted"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|k| k.starts_with("PersistentVolumeClaim/"))
        .collect();
    ensure!(
        lost_claims.is_empty(),
        "going back to the Go operator deleted data claims: {lost_claims:?}"
    );
    ensure!(
        broken.is_empty(),
        "takeover recreated or deleted {} Pod/PVC/Service/Deployment/VitessBackupSchedule \
         objects: {broken:#?}\n\
         full report: {text}",
        broken.len()
    );
    ensure!(
        rolled.is_empty(),
        "takeover started a rolling update of {} Go-made tablet pods (the operator log lists \
         why each differs: 'differs from ours'): {rolled:#?}",
        rolled.len()
    );
    let unexpected: Vec<String> = figures["changed"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(object, diffs)| {
            diffs
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .filter(|d| !ALLOWED_CHANGES.iter().any(|a| d.starts_with(a)))
                .map(move |d| format!("{object}: {d}"))
        })
        .collect();
    ensure!(
        unexpected.is_empty(),
        "takeover changed the Go operator's objects: {unexpected:#?}"
    );
    let made: Vec<&str> = figures["new_by_ours"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    ensure!(
        made.is_empty(),
        "takeover made objects the Go operator had not: {made:?}"
    );
    ensure!(
        cells_after == cells_before,
        "cells before {cells_before:?}, after {cells_after:?}"
    );
    let root = format!("/vitess/takeover/local/{cell_a}");
    ensure!(
        cell_info.contains(&format!("\"{root}\"")),
        "cell {cell_a} is no longer at {root}: {cell_info}"
    );
    let conditions: Vec<Value> = serde_json::from_str(&ready).unwrap_or_default();
    let registered = conditions
        .iter()
        .find(|c| c["type"] == "TopologyRegistered");
    ensure!(
        registered.is_some_and(|c| c["status"] == "True"),
        "condition TopologyRegistered of the cluster after takeover: {registered:?}"
    );
    // The tablet pods are KWOK's: no vttablet registers, so no shard has a primary and the
    // cluster is honestly not Ready, but only for its keyspaces: the lockserver, vtctld and
    // every cell it took over are.
    let ready = conditions.iter().find(|c| c["type"] == "Ready");
    let waiting = ready
        .and_then(|c| c["message"].as_str())
        .and_then(|m| m.strip_prefix("waiting for "))
        .unwrap_or_default();
    ensure!(
        ready.is_some_and(|c| c["status"] == "False")
            && !waiting.is_empty()
            && waiting.split(", ").all(|w| w.starts_with("keyspace ")),
        "condition Ready of the cluster after takeover, wanted False waiting only for \
         keyspaces: {ready:?}"
    );
    Ok(())
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
