//! Reconciliation on a real API server, beyond the first convergence: a sharded keyspace
//! scales out in place, gains a second partitioning next to the first, and loses the first
//! (under `turndownPolicy: RequireIdle` its shards stay while Vitess' serving graph routes to
//! them and go once traffic is switched away; their data volumes stay), a cell's `zone` pins its pods to the zone's node,
//! deleting a cluster collects every child but keeps the data volumes, `vitess-operator render`
//! is what the API server ends up holding, a steady cluster costs no write requests, and a
//! larger data volume is asked of the existing claims in place (refused here, and said),
//! a cell with its own etcd runs it and is registered there, changed vtctld, vtgate and
//! vtorc templates wait for their release under `External`, and vtadmin runs per cell and
//! goes, with its Secrets, when removed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, DeleteParams, DynamicObject, GroupVersionKind, ListParams};
use kube::discovery::{self, ApiResource, Scope};
use kube::{Client, ResourceExt};
use serde_json::Value;
use vitess_operator_e2e::{
    Operator, apply_yaml, condition, dynamic, is_ready, state_dir, versions, wait_for,
    with_fake_vtctld, with_operator, workspace_dir,
};

/// Generous: a loaded CI machine is slow; a healthy run converges in seconds.
const TIMEOUT: Duration = Duration::from_secs(120);
/// How long a converged cluster is watched for write requests.
const STEADY: Duration = Duration::from_secs(60);

const COMPONENT: &str = "planetscale.com/component";
const CLUSTER_LABEL: &str = "planetscale.com/cluster";
const KEYSPACE_LABEL: &str = "planetscale.com/keyspace";
const CELL_LABEL: &str = "planetscale.com/cell";

// ---------------------------------------------------------------------------------------------
// Helpers of this file; the ones the test files share are in e2e/src/kinds.rs.
// ---------------------------------------------------------------------------------------------

/// name -> uid of the objects matching `selector` that are not being deleted.
async fn uids<K>(api: &Api<K>, selector: &str) -> Result<BTreeMap<String, String>>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    Ok(api
        .list(&ListParams::default().labels(selector))
        .await?
        .into_iter()
        .filter(|o| o.meta().deletion_timestamp.is_none())
        .map(|o| (o.name_any(), o.uid().unwrap_or_default()))
        .collect())
}

/// Names of the Running and Ready pods matching `selector`.
async fn ready_pods(pods: &Api<Pod>, selector: &str) -> Result<BTreeSet<String>> {
    Ok(pods
        .list(&ListParams::default().labels(selector))
        .await?
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none() && is_ready(p))
        .map(|p| p.name_any())
        .collect())
}

/// Parses multi-document YAML into JSON values, skipping empty documents.
fn parse_docs(yaml: &str) -> Result<Vec<Value>> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(yaml).context("parsing YAML")?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// Sets `metadata.namespace` on every document and returns them as YAML (JSON documents).
fn with_namespace(yaml: &str, ns: &str) -> Result<String> {
    let mut docs = parse_docs(yaml)?;
    for doc in &mut docs {
        doc["metadata"]["namespace"] = Value::String(ns.to_string());
    }
    let texts: Vec<String> = docs
        .iter()
        .map(serde_json::to_string_pretty)
        .collect::<Result<_, _>>()?;
    Ok(texts.join("\n---\n"))
}

/// `vitess-operator render -f <yaml>`: every object the operator would create.
async fn render(yaml: &str, tag: &str) -> Result<Vec<Value>> {
    let dir = state_dir().join("tmp");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let file = dir.join(format!(
        "render-{tag}-{}.yaml",
        vitess_operator_e2e::unique_suffix()
    ));
    std::fs::write(&file, yaml).with_context(|| format!("writing {}", file.display()))?;
    let out = tokio::process::Command::new(Operator::binary())
        .arg("render")
        .arg("-f")
        .arg(&file)
        .output()
        .await
        .context("running vitess-operator render")?;
    let _ = std::fs::remove_file(&file);
    ensure!(
        out.status.success(),
        "vitess-operator render failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    parse_docs(&String::from_utf8_lossy(&out.stdout))
}

fn rendered_names(
    objects: &[Value],
    kind: &str,
    filter: impl Fn(&Value) -> bool,
) -> BTreeSet<String> {
    objects
        .iter()
        .filter(|o| o["kind"] == kind && filter(o))
        .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}

async fn wait_cluster_ready(
    client: &Client,
    ns: &str,
    name: &str,
    operator: &mut Operator,
) -> Result<()> {
    let clusters = dynamic(client, ns, "VitessCluster");
    wait_for(
        &format!("VitessCluster {name} Ready True"),
        TIMEOUT,
        async |seen: &mut String| {
            operator.check_running()?;
            let cluster = clusters.get(name).await?;
            let ready = condition(&cluster, "Ready");
            *seen = format!(
                "Ready {ready:?}, conditions {}",
                cluster.data["status"]["conditions"]
            );
            Ok((ready.as_deref() == Some("True")).then_some(()))
        },
    )
    .await
}

/// Waits until two snapshots of resourceVersions taken 2 s apart are equal.
async fn wait_quiet(client: &Client, ns: &str) -> Result<()> {
    let mut before = versions(client, ns).await?;
    wait_for(
        "two equal snapshots of resourceVersions 2 s apart",
        TIMEOUT,
        async |seen: &mut String| {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let now = versions(client, ns).await?;
            let same = now == before;
            *seen = format!("{now:?}");
            before = now;
            Ok(same.then_some(()))
        },
    )
    .await
}

fn example(file: &str) -> Result<String> {
    let path = workspace_dir().join("examples").join(file);
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// 1. A sharded keyspace scales out and gains shards.
// ---------------------------------------------------------------------------------------------

const SHARDED: &str = "sharded";

/// A cluster with one keyspace `users` (RequireIdle) whose partitionings are `equal` with each
/// of `parts`, every shard with one zone1 pool of `replicas` replicas.
fn sharded_yaml(ns: &str, parts: &[u32], replicas: u32) -> String {
    let partitionings: String = parts
        .iter()
        .map(|parts| {
            format!(
                r#"
    - equal:
        parts: {parts}
        shardTemplate:
          databaseInitScriptSecret: {{name: sharded-config, key: init_db.sql}}
          tabletPools:
          - cell: zone1
            type: replica
            replicas: {replicas}
            vttablet: {{}}
            mysqld: {{}}
            dataVolumeClaimTemplate:
              accessModes: ["ReadWriteOnce"]
              resources:
                requests: {{storage: 1Gi}}"#
            )
        })
        .collect();
    format!(
        r#"apiVersion: v1
kind: Secret
metadata:
  name: sharded-config
  namespace: {ns}
stringData:
  init_db.sql: "SELECT 1;"
---
apiVersion: planetscale.com/v2
kind: VitessCluster
metadata:
  name: {SHARDED}
  namespace: {ns}
spec:
  images:
    vtctld: vitess/lite:v24.0.3
    vtgate: vitess/lite:v24.0.3
    vttablet: vitess/lite:v24.0.3
    mysqld:
      mysql80Compatible: vitess/lite:v24.0.3
  vitessDashboard:
    cells: [zone1]
    replicas: 1
  cells:
  - name: zone1
    gateway: {{replicas: 1}}
  keyspaces:
  - name: users
    durabilityPolicy: none
    turndownPolicy: RequireIdle
    partitionings:{partitionings}
"#
    )
}

/// What render says the keyspace `users` gets: shard object names and tablet pod names.
struct Expected {
    shards: BTreeSet<String>,
    /// Vitess shard names (`-80`), from the rendered shards' spec.name.
    shard_names: BTreeSet<String>,
    pods: BTreeSet<String>,
}

async fn expected_sharded(ns: &str, parts: &[u32], replicas: u32) -> Result<Expected> {
    let rendered = render(&sharded_yaml(ns, parts, replicas), "sharded").await?;
    let shards = rendered_names(&rendered, "VitessShard", |_| true);
    let shard_names = rendered
        .iter()
        .filter(|o| o["kind"] == "VitessShard")
        .filter_map(|o| o["spec"]["name"].as_str().map(str::to_string))
        .collect();
    let pods = rendered_names(&rendered, "Pod", |o| {
        o["metadata"]["labels"][COMPONENT] == "vttablet"
    });
    Ok(Expected {
        shards,
        shard_names,
        pods,
    })
}

/// Waits until the keyspace's non-deleted VitessShards are exactly `shards` and its Ready
/// tablet pods exactly `pods`.
async fn wait_shards_and_pods(
    client: &Client,
    ns: &str,
    operator: &mut Operator,
    shards: &BTreeSet<String>,
    pods: &BTreeSet<String>,
) -> Result<()> {
    let shard_api = dynamic(client, ns, "VitessShard");
    let pod_api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let selector = format!("{KEYSPACE_LABEL}=users");
    let tablets = format!("{selector},{COMPONENT}=vttablet");
    wait_for(
        &format!("shards {shards:?} with Ready tablet pods {pods:?}"),
        TIMEOUT,
        async |seen: &mut String| {
            operator.check_running()?;
            let live_shards: BTreeSet<String> =
                uids(&shard_api, &selector).await?.into_keys().collect();
            let all_pods: BTreeSet<String> = uids(&pod_api, &tablets).await?.into_keys().collect();
            let ready = ready_pods(&pod_api, &tablets).await?;
            *seen = format!("shards {live_shards:?}, tablet pods {all_pods:?}, ready {ready:?}");
            Ok((&live_shards == shards && &all_pods == pods && &ready == pods).then_some(()))
        },
    )
    .await
}

fn unchanged(before: &BTreeMap<String, String>, now: &BTreeMap<String, String>) -> Vec<String> {
    before
        .iter()
        .filter(|(name, uid)| now.get(*name) != Some(*uid))
        .map(|(name, uid)| format!("{name}: uid {uid} -> {:?}", now.get(name)))
        .collect()
}

#[tokio::test]
async fn sharded_keyspace_scales_out_and_adds_shards() -> Result<()> {
    with_fake_vtctld(
        "reconcile-sharded",
        async |client, ns, operator, fake, _| {
            let shard_api = dynamic(client, ns, "VitessShard");
            let pod_api: Api<Pod> = Api::namespaced(client.clone(), ns);
            let keyspaces = dynamic(client, ns, "VitessKeyspace");
            let selector = format!("{KEYSPACE_LABEL}=users");
            let tablets = format!("{selector},{COMPONENT}=vttablet");

            // parts 2, replicas 2: -80 and 80-, two tablets each.
            let two = expected_sharded(ns, &[2], 2).await?;
            ensure!(
                two.shard_names == BTreeSet::from(["-80".to_string(), "80-".to_string()])
                    && two.pods.len() == 4,
                "render of parts 2 x 2 replicas: shards {:?} ({:?}), pods {:?}",
                two.shards,
                two.shard_names,
                two.pods
            );
            apply_yaml(client, ns, &sharded_yaml(ns, &[2], 2)).await?;
            wait_shards_and_pods(client, ns, operator, &two.shards, &two.pods).await?;
            let first_pods = uids(&pod_api, &tablets).await?;
            let first_shards = uids(&shard_api, &selector).await?;

            // replicas 3: one more pod per shard, the first four untouched.
            let three = expected_sharded(ns, &[2], 3).await?;
            ensure!(
                three.shards == two.shards
                    && three.pods.len() == 6
                    && three.pods.is_superset(&two.pods),
                "render of parts 2 x 3 replicas: shards {:?}, pods {:?} (before {:?})",
                three.shards,
                three.pods,
                two.pods
            );
            apply_yaml(client, ns, &sharded_yaml(ns, &[2], 3)).await?;
            wait_shards_and_pods(client, ns, operator, &three.shards, &three.pods).await?;
            let recreated = unchanged(&first_pods, &uids(&pod_api, &tablets).await?);
            ensure!(
                recreated.is_empty(),
                "scaling out recreated pods: {recreated:?}"
            );
            let second_pods = uids(&pod_api, &tablets).await?;

            // The documented way to reshard: the new partitioning next to the old. Four new
            // shards; all six desired, nothing orphaned, nothing recreated.
            let four = expected_sharded(ns, &[4], 3).await?;
            ensure!(
                four.shard_names
                    == ["-40", "40-80", "80-c0", "c0-"]
                        .map(str::to_string)
                        .into_iter()
                        .collect::<BTreeSet<_>>()
                    && four.pods.len() == 12
                    && four.shards.is_disjoint(&three.shards)
                    && four.pods.is_disjoint(&three.pods),
                "render of parts 4: shards {:?} ({:?}), pods {:?}",
                four.shards,
                four.shard_names,
                four.pods
            );
            let all_shards: BTreeSet<String> = four.shards.union(&three.shards).cloned().collect();
            let all_pods: BTreeSet<String> = four.pods.union(&three.pods).cloned().collect();
            let both = expected_sharded(ns, &[2, 4], 3).await?;
            ensure!(
                both.shards == all_shards && both.pods == all_pods,
                "render of [parts 2, parts 4]: shards {:?}, pods {:?}; expected {all_shards:?}, \
             {all_pods:?}",
                both.shards,
                both.pods
            );
            apply_yaml(client, ns, &sharded_yaml(ns, &[2, 4], 3)).await?;
            wait_shards_and_pods(client, ns, operator, &both.shards, &both.pods).await?;
            let now_pods = uids(&pod_api, &tablets).await?;
            let touched = unchanged(&second_pods, &now_pods);
            ensure!(
                touched.is_empty(),
                "adding a partitioning recreated pods: {touched:?}"
            );
            let touched = unchanged(&first_shards, &uids(&shard_api, &selector).await?);
            ensure!(touched.is_empty(), "shards recreated: {touched:?}");

            // The old partitioning removed (RequireIdle): -80 and 80- are kept while Vitess'
            // serving graph routes to them (their primaries serve: the fake vtctld's rule), with
            // why in orphanedShards; once a resharding's SwitchTraffic has moved traffic away
            // (done here in the fake, as Vitess does it: their primaries stop serving) they are
            // idle and turned down: their VitessShards and tablet pods go, their data volumes
            // stay, and the new shards' pods are untouched.
            apply_yaml(client, ns, &sharded_yaml(ns, &[4], 3)).await?;
            let keyspace_name = rendered_names(
                &render(&sharded_yaml(ns, &[4], 3), "sharded").await?,
                "VitessKeyspace",
                |_| true,
            )
            .into_iter()
            .next()
            .context("render has no VitessKeyspace")?;
            let orphans = async |keyspaces: &Api<DynamicObject>| -> Result<Value> {
                Ok(keyspaces.get(&keyspace_name).await?.data["status"]["orphanedShards"].clone())
            };
            wait_for(
                "orphanedShards -80 and 80-, kept because they serve",
                TIMEOUT,
                async |seen: &mut String| {
                    operator.check_running()?;
                    let orphans = orphans(&keyspaces).await?;
                    *seen = format!("orphanedShards {orphans}");
                    let keys: BTreeSet<String> = orphans
                        .as_object()
                        .map(|o| o.keys().cloned().collect())
                        .unwrap_or_default();
                    Ok((keys == two.shard_names
                        && orphans.as_object().into_iter().flatten().all(|(_, o)| {
                            o["reason"] == "TurndownRequiresIdle"
                                && o["message"]
                                    .as_str()
                                    .is_some_and(|m| m.contains("serving graph routes to it"))
                        }))
                    .then_some(()))
                },
            )
            .await?;
            let touched = unchanged(&second_pods, &uids(&pod_api, &tablets).await?);
            ensure!(
                touched.is_empty(),
                "serving shards were touched by their removal from the spec: {touched:?}"
            );
            {
                let fake = fake.lock().await;
                let fake = fake.as_ref().context("the fake vtctld is stopped")?;
                for shard in &two.shard_names {
                    fake.switch_traffic_away("users", shard);
                }
            }
            wait_shards_and_pods(client, ns, operator, &four.shards, &four.pods).await?;
            wait_for(
                "orphanedShards to be empty once the idle shards went",
                TIMEOUT,
                async |seen: &mut String| {
                    operator.check_running()?;
                    let orphans = orphans(&keyspaces).await?;
                    *seen = format!("orphanedShards {orphans}");
                    Ok(
                        (orphans.is_null() || orphans.as_object().is_some_and(|o| o.is_empty()))
                            .then_some(()),
                    )
                },
            )
            .await?;
            let kept_pods: BTreeMap<String, String> = now_pods
                .iter()
                .filter(|(name, _)| four.pods.contains(*name))
                .map(|(name, uid)| (name.clone(), uid.clone()))
                .collect();
            let touched = unchanged(&kept_pods, &uids(&pod_api, &tablets).await?);
            ensure!(
                touched.is_empty(),
                "turning the old shards down recreated new pods: {touched:?}"
            );
            let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
            for pod in &three.pods {
                ensure!(
                    claims.get_opt(pod).await?.is_some(),
                    "the data volume of {pod} (a turned-down shard's tablet) was deleted"
                );
            }
            Ok(())
        },
    )
    .await
}

// ---------------------------------------------------------------------------------------------
// 2. A cell's zone pins its pods to that zone's node.
// ---------------------------------------------------------------------------------------------

fn zones_yaml(ns: &str) -> String {
    let pool = |cell: &str| {
        format!(
            r#"
          - cell: {cell}
            type: replica
            replicas: 1
            vttablet: {{}}
            mysqld: {{}}
            dataVolumeClaimTemplate:
              accessModes: ["ReadWriteOnce"]
              resources:
                requests: {{storage: 1Gi}}"#
        )
    };
    format!(
        r#"apiVersion: v1
kind: Secret
metadata:
  name: zones-config
  namespace: {ns}
stringData:
  init_db.sql: "SELECT 1;"
---
apiVersion: planetscale.com/v2
kind: VitessCluster
metadata:
  name: zones
  namespace: {ns}
spec:
  images:
    vtctld: vitess/lite:v24.0.3
    vtgate: vitess/lite:v24.0.3
    vttablet: vitess/lite:v24.0.3
    mysqld:
      mysql80Compatible: vitess/lite:v24.0.3
  vitessDashboard:
    cells: [zone1]
    replicas: 1
  cells:
  - name: zone1
    zone: zone1
    gateway: {{replicas: 1}}
  - name: zone2
    zone: zone2
    gateway: {{replicas: 1}}
  keyspaces:
  - name: commerce
    durabilityPolicy: none
    turndownPolicy: Immediate
    partitionings:
    - equal:
        parts: 1
        shardTemplate:
          databaseInitScriptSecret: {{name: zones-config, key: init_db.sql}}
          tabletPools:{}{}
"#,
        pool("zone1"),
        pool("zone2")
    )
}

#[tokio::test]
async fn a_cell_in_zone2_runs_on_the_zone2_node() -> Result<()> {
    with_operator("reconcile-zones", None, async |client, ns, operator| {
        apply_yaml(client, ns, &zones_yaml(ns)).await?;
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        let placed = wait_for(
            "one Ready vtgate and one Ready vttablet pod in each of cells zone1 and zone2",
            TIMEOUT,
            async |seen: &mut String| {
                operator.check_running()?;
                let mut placed = BTreeMap::new();
                for pod in pods.list(&ListParams::default()).await? {
                    let labels = pod.labels();
                    let (Some(component), Some(cell)) =
                        (labels.get(COMPONENT), labels.get(CELL_LABEL))
                    else {
                        continue;
                    };
                    if !["vtgate", "vttablet"].contains(&component.as_str())
                        || pod.metadata.deletion_timestamp.is_some()
                        || !is_ready(&pod)
                    {
                        continue;
                    }
                    let node = pod
                        .spec
                        .as_ref()
                        .and_then(|s| s.node_name.clone())
                        .unwrap_or_default();
                    placed
                        .entry(format!("{component}@{cell}"))
                        .or_insert_with(Vec::new)
                        .push((pod.name_any(), node));
                }
                *seen = format!("{placed:?}");
                let complete = [
                    "vtgate@zone1",
                    "vtgate@zone2",
                    "vttablet@zone1",
                    "vttablet@zone2",
                ]
                .iter()
                .all(|k| placed.get(*k).is_some_and(|v| v.len() == 1));
                Ok(complete.then_some(placed))
            },
        )
        .await?;
        let wrong: Vec<String> = placed
            .iter()
            .flat_map(|(key, pods)| {
                let cell = key.split('@').nth(1).unwrap_or_default().to_string();
                pods.iter()
                    .filter(move |(_, node)| *node != format!("kwok-{cell}"))
                    .map(move |(pod, node)| format!("{key} pod {pod} on node {node:?}"))
            })
            .collect();
        ensure!(
            wrong.is_empty(),
            "pods not on their zone's node: {wrong:?} (all: {placed:?})"
        );
        Ok(())
    })
    .await
}

/// A larger storage request is asked of each tablet's existing claim, no pod replaced; the
/// local control plane's StorageClass does not allow expansion, so the API server refuses it,
/// and the shard says so (`DataVolumeResizePending` `ResizeRefused`, naming every claim)
/// instead of failing its whole reconcile.
#[tokio::test]
async fn a_larger_data_volume_is_asked_for_in_place_and_a_refusal_is_said() -> Result<()> {
    with_operator("reconcile-volume", None, async |client, ns, operator| {
        let yaml = sharded_yaml(ns, &[1], 2);
        apply_yaml(client, ns, &yaml).await?;
        let expected = expected_sharded(ns, &[1], 2).await?;
        wait_shards_and_pods(client, ns, operator, &expected.shards, &expected.pods).await?;
        let pod_api: Api<Pod> = Api::namespaced(client.clone(), ns);
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
        let tablets = format!("{KEYSPACE_LABEL}=users,{COMPONENT}=vttablet");
        let pods_before = uids(&pod_api, &tablets).await?;
        let bigger = yaml.replace("{storage: 1Gi}", "{storage: 2Gi}").replace(
            "spec:\n  images:",
            "spec:\n  updateStrategy: {type: Immediate}\n  images:",
        );
        ensure!(
            bigger != yaml && bigger.contains("2Gi"),
            "the edit changed nothing"
        );
        apply_yaml(client, ns, &bigger).await?;
        let shards = dynamic(client, ns, "VitessShard");
        let shard = expected.shards.iter().next().context("no shard")?.clone();
        let message = wait_for(
            "the shard to say its data volumes could not grow",
            TIMEOUT,
            async |seen: &mut String| {
                operator.check_running()?;
                let now = shards.get(&shard).await?;
                let pending = now.data["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|c| c["type"] == "DataVolumeResizePending")
                    .cloned();
                *seen = format!("{pending:?}");
                Ok(pending
                    .filter(|c| c["status"] == "True" && c["reason"] == "ResizeRefused")
                    .and_then(|c| c["message"].as_str().map(str::to_string)))
            },
        )
        .await?;
        for pod in &expected.pods {
            ensure!(
                message.contains(&format!("claim {pod}: 1Gi -> 2Gi refused: ")),
                "claim {pod} is not named in {message:?}"
            );
            let claim = claims.get(pod).await?;
            let asked = claim
                .spec
                .and_then(|s| s.resources?.requests)
                .and_then(|r| r.get("storage").cloned());
            ensure!(
                asked.as_ref().is_some_and(|q| q.0 == "1Gi"),
                "claim {pod} asks for {asked:?} after a refusal"
            );
        }
        let replaced = unchanged(&pods_before, &uids(&pod_api, &tablets).await?);
        ensure!(replaced.is_empty(), "tablet pods replaced: {replaced:?}");
        eprintln!("refused as the shard says: {message}");
        Ok(())
    })
    .await
}

/// A cell with `lockserver.etcd` gets an etcd of its own (the Go operator's EtcdLockserver name,
/// three members), reported in the cell's status, and is registered in Vitess there: its
/// CellInfo names that etcd's client Service, under the Go operator's root.
#[tokio::test]
async fn a_cell_with_its_own_etcd_runs_it_and_is_registered_there() -> Result<()> {
    with_fake_vtctld("reconcile-cell-etcd", async |client, ns, operator, _, vtctld| {
        let yaml = sharded_yaml(ns, &[1], 1).replace(
            "  - name: zone1\n    gateway:",
            "  - name: zone1\n    lockserver: {etcd: {}}\n    gateway:",
        );
        ensure!(yaml.contains("lockserver: {etcd: {}}"), "the edit changed nothing");
        apply_yaml(client, ns, &yaml).await?;
        let etcd_name = vitess_operator::domain::names::cluster::local_etcd(SHARDED, "zone1");
        let etcds = dynamic(client, ns, "EtcdLockserver");
        let cells = dynamic(client, ns, "VitessCell");
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        let members = format!("etcd.planetscale.com/lockserver={etcd_name}");
        wait_for(
            &format!("EtcdLockserver {etcd_name} available with three Ready members, and the cell saying so"),
            TIMEOUT,
            async |seen: &mut String| {
                operator.check_running()?;
                let etcd = etcds.get_opt(&etcd_name).await?;
                let available = etcd
                    .as_ref()
                    .map(|e| e.data["status"]["available"].clone());
                let ready = ready_pods(&pods, &members).await?;
                let cell = cells
                    .list(&ListParams::default())
                    .await?
                    .items
                    .into_iter()
                    .find(|c| c.data["spec"]["name"] == "zone1");
                let reported = cell
                    .as_ref()
                    .map(|c| c.data["status"]["lockserver"]["etcd"]["available"].clone());
                *seen = format!(
                    "etcd available {available:?}, Ready members {ready:?}, cell reports \
                     {reported:?}"
                );
                Ok((available == Some("True".into())
                    && ready.len() == 3
                    && reported == Some("True".into()))
                .then_some(()))
            },
        )
        .await?;
        let vtctld = vitess_operator::vitess::Vtctld::connect_lazy(&vtctld.to_string(), None)?;
        let want = format!("{etcd_name}-client.{ns}.svc:2379");
        let info = wait_for(
            "the cell registered at its own etcd",
            TIMEOUT,
            async |seen: &mut String| {
                operator.check_running()?;
                let info = vtctld.cell_info("zone1").await?;
                *seen = format!("{info:?}");
                Ok(info.filter(|i| i.server_address == want))
            },
        )
        .await?;
        ensure!(
            info.root == format!("/vitess/{SHARDED}/local/zone1"),
            "the cell's root is {:?}",
            info.root
        );
        Ok(())
    })
    .await
}

/// The three Deployments of a sharded cluster, by what they run: vtctld, the zone1 vtgate, the
/// shard's vtorc.
async fn stateless(client: &Client, ns: &str) -> Result<BTreeMap<&'static str, Deployment>> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let mut out = BTreeMap::new();
    for component in ["vtctld", "vtgate", "vtorc"] {
        let selector = format!("{CLUSTER_LABEL}={SHARDED},{COMPONENT}={component}");
        let mut found = deployments
            .list(&ListParams::default().labels(&selector))
            .await?
            .items;
        ensure!(found.len() == 1, "{} {component} Deployments", found.len());
        out.insert(component, found.remove(0));
    }
    Ok(out)
}

fn container_args(deployment: &Deployment) -> Vec<String> {
    deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|p| p.containers[0].args.clone().unwrap_or_default())
        .unwrap_or_default()
}

/// Under `updateStrategy: External` (the default) a changed pod template of vtctld, vtgate and
/// vtorc waits for a release, as in the Go operator, while a replica count applies at once: each
/// Deployment keeps its template and says what waits (`rollout.planetscale.com/scheduled`,
/// and for vtgate its VitessCell and the cluster's `status.cells.zone1.pendingChanges`); once
/// released (the vtctld and vtorc Deployments, and the VitessCell for vtgate, where Go users
/// release it) each runs the new template and the annotations are gone.
#[tokio::test]
async fn changed_deployments_wait_for_their_release_under_external() -> Result<()> {
    const FLAG: &str = "--grpc-max-message-size=12345678";
    with_operator("reconcile-hold", None, async |client, ns, operator| {
        let yaml = sharded_yaml(ns, &[1], 1);
        apply_yaml(client, ns, &yaml).await?;
        let before = wait_for(
            "vtctld, vtgate and vtorc Deployments",
            TIMEOUT,
            async |seen: &mut String| {
                operator.check_running()?;
                let found = stateless(client, ns).await;
                *seen = format!("{found:?}");
                Ok(found.ok())
            },
        )
        .await?;
        let flags = "extraFlags: {grpc-max-message-size: \"12345678\"}";
        let changed = yaml
            .replace(
                "    gateway: {replicas: 1}",
                &format!("    gateway: {{replicas: 2, {flags}}}"),
            )
            .replace(
                "    cells: [zone1]\n    replicas: 1",
                &format!("    cells: [zone1]\n    replicas: 1\n    {flags}"),
            )
            .replace(
                "    durabilityPolicy: none",
                &format!("    durabilityPolicy: none\n    vitessOrchestrator: {{{flags}}}"),
            );
        ensure!(
            changed.matches("12345678").count() == 3,
            "the edit missed a component"
        );
        apply_yaml(client, ns, &changed).await?;
        let cells = dynamic(client, ns, "VitessCell");
        let clusters = dynamic(client, ns, "VitessCluster");
        let scheduled = "rollout.planetscale.com/scheduled";
        let held = wait_for(
            "each Deployment scheduled, its template kept, vtgate scaled to 2",
            TIMEOUT,
            async |seen: &mut String| {
                operator.check_running()?;
                let now = stateless(client, ns).await?;
                let notes: BTreeMap<_, _> = now
                    .iter()
                    .map(|(c, d)| (*c, d.annotations().get(scheduled).cloned()))
                    .collect();
                let replicas = now["vtgate"].spec.as_ref().and_then(|s| s.replicas);
                *seen = format!("scheduled {notes:?}, vtgate replicas {replicas:?}");
                Ok((notes.values().all(Option::is_some) && replicas == Some(2)).then_some(now))
            },
        )
        .await?;
        for (component, deployment) in &held {
            let note = &deployment.annotations()[scheduled];
            ensure!(
                note.contains("grpc-max-message-size"),
                "{component}: {note}"
            );
            ensure!(
                container_args(deployment) == container_args(&before[component]),
                "{component}'s template changed before its release"
            );
        }
        let cell = cells
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .find(|c| c.data["spec"]["name"] == "zone1")
            .context("no zone1 VitessCell")?;
        wait_for(
            "the cluster's status.cells.zone1.pendingChanges",
            TIMEOUT,
            async |seen: &mut String| {
                let cluster = clusters.get(SHARDED).await?;
                let pending = cluster.data["status"]["cells"]["zone1"]["pendingChanges"].clone();
                *seen = format!("{pending:?}");
                Ok(pending
                    .as_str()
                    .is_some_and(|p| p.contains("grpc-max-message-size"))
                    .then_some(()))
            },
        )
        .await?;
        ensure!(
            cell.annotations().contains_key(scheduled),
            "VitessCell {} does not say what its vtgate waits for",
            cell.name_any()
        );
        // Nothing rolls while nobody releases.
        tokio::time::sleep(Duration::from_secs(5)).await;
        for (component, deployment) in stateless(client, ns).await? {
            ensure!(
                container_args(&deployment) == container_args(&before[component]),
                "{component}'s template changed without a release"
            );
        }
        let released = serde_json::json!({
            "metadata": {"annotations": {"rollout.planetscale.com/released": ""}}
        });
        let patch = kube::api::Patch::Merge(&released);
        let params = kube::api::PatchParams::default();
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
        for component in ["vtctld", "vtorc"] {
            deployments
                .patch(&held[component].name_any(), &params, &patch)
                .await?;
        }
        cells.patch(&cell.name_any(), &params, &patch).await?;
        wait_for(
            "every template rolled and the annotations gone",
            TIMEOUT,
            async |seen: &mut String| {
                operator.check_running()?;
                let now = stateless(client, ns).await?;
                let cell = cells.get(&cell.name_any()).await?;
                let state: Vec<String> = now
                    .iter()
                    .map(|(c, d)| {
                        format!(
                            "{c}: flag {}, annotations {:?}",
                            container_args(d).iter().any(|a| a == FLAG),
                            d.annotations()
                                .keys()
                                .filter(|k| k.starts_with("rollout."))
                                .collect::<Vec<_>>()
                        )
                    })
                    .collect();
                let cell_left: Vec<&String> = cell
                    .annotations()
                    .keys()
                    .filter(|k| k.starts_with("rollout."))
                    .collect();
                *seen = format!("{state:?}, VitessCell {cell_left:?}");
                let done = now.values().all(|d| {
                    container_args(d).iter().any(|a| a == FLAG)
                        && !d.annotations().keys().any(|k| k.starts_with("rollout."))
                }) && cell_left.is_empty();
                Ok(done.then_some(()))
            },
        )
        .await?;
        Ok(())
    })
    .await
}

/// `examples/initial-cluster.yaml`'s vtadmin runs as the Go operator runs it: one Deployment in
/// zone1 with vtadmin-api and vtadmin-web, its three Secrets owned by that Deployment (the
/// web config holding the example's API address), the cluster Service, and
/// `status.vtadmin` available. Removing `spec.vtadmin` removes the Deployment and Service,
/// and garbage collection takes the Secrets with the Deployment: the operator never lists or
/// deletes a Secret.
#[tokio::test]
async fn vtadmin_runs_per_cell_and_its_files_go_with_it() -> Result<()> {
    with_operator("reconcile-vtadmin", None, async |client, ns, operator| {
        let yaml = with_namespace(&example("initial-cluster.yaml")?, ns)?;
        apply_yaml(client, ns, &yaml).await?;
        let clusters = dynamic(client, ns, "VitessCluster");
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
        let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), ns);
        let name = vitess_operator::desired::vtadmin::deployment_name("example", "zone1");
        let service = vitess_operator::desired::vtadmin::service_name("example");
        wait_for(
            "status.vtadmin available",
            TIMEOUT,
            async |seen: &mut String| {
                operator.check_running()?;
                let status = clusters.get("example").await?.data["status"]["vtadmin"].clone();
                *seen = format!("{status}");
                Ok(
                    (status["available"] == "True" && status["serviceName"] == service.as_str())
                        .then_some(()),
                )
            },
        )
        .await?;
        let deployment = deployments.get(&name).await?;
        let pod = deployment
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .context("no pod template")?;
        let containers: Vec<&str> = pod.containers.iter().map(|c| c.name.as_str()).collect();
        ensure!(
            containers == ["vtadmin-api", "vtadmin-web"],
            "containers {containers:?}"
        );
        let selector = "planetscale.com/component=vtadmin";
        let files = secrets
            .list(&ListParams::default().labels(selector))
            .await?
            .items;
        ensure!(files.len() == 3, "{} vtadmin Secrets", files.len());
        for secret in &files {
            let owners = secret.metadata.owner_references.clone().unwrap_or_default();
            ensure!(
                owners.len() == 1
                    && owners[0].uid == deployment.uid().unwrap_or_default()
                    && owners[0].controller != Some(true),
                "Secret {} is owned by {owners:?}",
                secret.name_any()
            );
        }
        let web = files
            .iter()
            .find(|s| s.name_any().contains("webconfig"))
            .and_then(|s| s.data.as_ref()?.get("config.js").cloned())
            .context("no web config")?;
        let web = String::from_utf8(web.0)?;
        ensure!(web.contains("http://localhost:14001"), "web config: {web}");

        // Removed from the spec: the Deployment and Service go, the Secrets with them.
        let mut docs: Vec<Value> = serde_saphyr::from_multiple(&yaml)?;
        for doc in docs.iter_mut().filter(|d| d["kind"] == "VitessCluster") {
            if let Some(spec) = doc["spec"].as_object_mut() {
                spec.remove("vtadmin");
            }
        }
        let without: Vec<String> = docs
            .iter()
            .filter(|d| !d.is_null())
            .map(serde_json::to_string)
            .collect::<Result<_, _>>()?;
        apply_yaml(client, ns, &without.join("\n---\n")).await?;
        let services: Api<k8s_openapi::api::core::v1::Service> =
            Api::namespaced(client.clone(), ns);
        wait_for(
            "vtadmin's Deployment, Service and Secrets gone",
            TIMEOUT,
            async |seen: &mut String| {
                operator.check_running()?;
                let left = (
                    deployments.get_opt(&name).await?.is_some(),
                    services.get_opt(&service).await?.is_some(),
                    secrets
                        .list(&ListParams::default().labels(selector))
                        .await?
                        .items
                        .len(),
                    clusters.get("example").await?.data["status"]["vtadmin"].clone(),
                );
                *seen = format!("deployment, service, secrets, status: {left:?}");
                Ok((!left.0 && !left.1 && left.2 == 0 && left.3.is_null()).then_some(()))
            },
        )
        .await?;
        Ok(())
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// 3. Deleting the cluster collects its children and keeps the volumes.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn deleting_the_cluster_collects_children_and_keeps_tablet_volumes() -> Result<()> {
    with_operator("reconcile-delete", None, async |client, ns, operator| {
        let yaml = with_namespace(&example("initial-cluster.yaml")?, ns)?;
        apply_yaml(client, ns, &yaml).await?;
        wait_cluster_ready(client, ns, "example", operator).await?;
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        let (tablet_pods, etcd_pods) = wait_for(
            "2 Ready tablet pods and 3 Ready etcd pods",
            TIMEOUT,
            async |seen: &mut String| {
                let tablets = ready_pods(&pods, &format!("{COMPONENT}=vttablet")).await?;
                let etcd = ready_pods(&pods, &format!("{COMPONENT}=etcd")).await?;
                *seen = format!("tablets {tablets:?}, etcd {etcd:?}");
                Ok((tablets.len() == 2 && etcd.len() == 3).then_some((tablets, etcd)))
            },
        )
        .await?;
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
        for name in tablet_pods.iter().chain(&etcd_pods) {
            ensure!(
                claims.get_opt(name).await?.is_some(),
                "PVC {name} missing before the delete"
            );
        }

        dynamic(client, ns, "VitessCluster")
            .delete("example", &DeleteParams::foreground())
            .await
            .context("deleting VitessCluster example")?;
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
        wait_for(
            "the cluster, its child resources, pods and Deployments to be gone",
            TIMEOUT,
            async |seen: &mut String| {
                operator.check_running()?;
                let mut left = Vec::new();
                for kind in [
                    "VitessCluster",
                    "VitessCell",
                    "VitessKeyspace",
                    "VitessShard",
                    "EtcdLockserver",
                ] {
                    for object in dynamic(client, ns, kind)
                        .list(&ListParams::default())
                        .await?
                    {
                        left.push(format!(
                            "{kind}/{} (finalizers {:?})",
                            object.name_any(),
                            object.finalizers()
                        ));
                    }
                }
                for pod in pods.list(&ListParams::default()).await? {
                    left.push(format!("Pod/{}", pod.name_any()));
                }
                for d in deployments
                    .list(&ListParams::default().labels(&format!("{CLUSTER_LABEL}=example")))
                    .await?
                {
                    left.push(format!("Deployment/{}", d.name_any()));
                }
                *seen = format!("left: {left:?}");
                Ok(left.is_empty().then_some(()))
            },
        )
        .await?;

        // The data volumes have no owner, so garbage collection leaves them: both the
        // tablets' and etcd's.
        let left: BTreeSet<String> = claims
            .list(&ListParams::default())
            .await?
            .into_iter()
            .map(|c| c.name_any())
            .collect();
        let lost: Vec<&String> = tablet_pods
            .iter()
            .chain(&etcd_pods)
            .filter(|n| !left.contains(*n))
            .collect();
        ensure!(
            lost.is_empty(),
            "PVCs deleted with the cluster: {lost:?} (left {left:?})"
        );
        Ok(())
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// 4. What render prints is what the cluster gets.
// ---------------------------------------------------------------------------------------------

/// Whether every field of `rendered` is in `live` with an equal value. Lists of objects that
/// all have distinct `name`s are matched by name, other lists by index; null and empty values
/// in `rendered` count as absent (the API server drops them). Mismatches go to `out`.
fn subset(rendered: &Value, live: &Value, path: &str, out: &mut Vec<String>) {
    match (rendered, live) {
        (Value::Object(r), Value::Object(l)) => {
            for (key, value) in r {
                let here = format!("{path}.{key}");
                match l.get(key) {
                    Some(found) => subset(value, found, &here, out),
                    None if is_empty(value) => {}
                    None => out.push(format!("{here}: missing in live (rendered {value})")),
                }
            }
        }
        (Value::Array(r), Value::Array(l)) => {
            let names: Vec<Option<&str>> = r.iter().map(|e| e["name"].as_str()).collect();
            let distinct: BTreeSet<&str> = names.iter().flatten().copied().collect();
            if !r.is_empty() && names.iter().all(Option::is_some) && distinct.len() == r.len() {
                for element in r {
                    let name = element["name"].as_str().unwrap_or_default();
                    let here = format!("{path}[name={name}]");
                    match l.iter().find(|e| e["name"] == name) {
                        Some(found) => subset(element, found, &here, out),
                        None => out.push(format!("{here}: missing in live")),
                    }
                }
            } else {
                for (i, element) in r.iter().enumerate() {
                    let here = format!("{path}[{i}]");
                    match l.get(i) {
                        Some(found) => subset(element, found, &here, out),
                        None => out.push(format!("{here}: missing in live (rendered {element})")),
                    }
                }
            }
        }
        (Value::Number(r), Value::Number(l)) if r.as_f64() == l.as_f64() => {}
        (r, l) if r == l => {}
        (r, _) if is_empty(r) => {}
        (r, l) => out.push(format!("{path}: rendered {r}, live {l}")),
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(o) => o.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Compares every rendered object with the live one; returns the mismatches.
async fn compare_rendered(
    client: &Client,
    ns: &str,
    rendered: &[Value],
    resources: &mut BTreeMap<String, (ApiResource, Scope)>,
) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for object in rendered {
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let kind = object["kind"].as_str().unwrap_or_default();
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        let id = format!("{kind}/{name}");
        let key = format!("{api_version}/{kind}");
        if !resources.contains_key(&key) {
            let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
            let gvk = GroupVersionKind::gvk(group, version, kind);
            let (resource, caps) = discovery::pinned_kind(client, &gvk)
                .await
                .with_context(|| format!("discovering {key}"))?;
            resources.insert(key.clone(), (resource, caps.scope));
        }
        let (resource, scope) = &resources[&key];
        ensure!(
            matches!(scope, Scope::Namespaced),
            "{id} is cluster-scoped; render should only make namespaced objects"
        );
        if object["metadata"]["namespace"] != ns {
            problems.push(format!(
                "{id}: rendered namespace {} instead of {ns}",
                object["metadata"]["namespace"]
            ));
            continue;
        }
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, resource);
        let Some(live) = api.get_opt(name).await? else {
            problems.push(format!("{id}: does not exist"));
            continue;
        };
        let live = serde_json::to_value(&live)?;
        let mut mismatches = Vec::new();
        for field in ["labels", "annotations"] {
            subset(
                &object["metadata"][field],
                &live["metadata"][field],
                &format!("metadata.{field}"),
                &mut mismatches,
            );
        }
        subset(&object["spec"], &live["spec"], "spec", &mut mismatches);
        problems.extend(mismatches.into_iter().map(|m| format!("{id}: {m}")));
    }
    Ok(problems)
}

#[tokio::test]
async fn render_equals_what_the_cluster_gets() -> Result<()> {
    for file in ["initial-cluster.yaml", "two-keyspaces.yaml"] {
        let test = format!("reconcile-render-{}", file.trim_end_matches(".yaml"));
        with_operator(&test, None, async |client, ns, operator| {
            let yaml = with_namespace(&example(file)?, ns)?;
            let rendered = render(&yaml, "render").await?;
            let kinds: BTreeSet<&str> =
                rendered.iter().filter_map(|o| o["kind"].as_str()).collect();
            ensure!(
                [
                    "VitessShard",
                    "Pod",
                    "Deployment",
                    "Service",
                    "PersistentVolumeClaim"
                ]
                .iter()
                .all(|k| kinds.contains(k)),
                "{file}: render made too few kinds: {kinds:?}"
            );
            apply_yaml(client, ns, &yaml).await?;
            wait_cluster_ready(client, ns, "example", operator).await?;
            let mut resources = BTreeMap::new();
            wait_for(
                &format!(
                    "every one of the {} objects rendered from {file} to exist and match",
                    rendered.len()
                ),
                TIMEOUT,
                async |seen: &mut String| {
                    operator.check_running()?;
                    let problems = compare_rendered(client, ns, &rendered, &mut resources).await?;
                    *seen = format!(
                        "{} mismatches, the first: \n  {}",
                        problems.len(),
                        problems
                            .iter()
                            .take(20)
                            .cloned()
                            .collect::<Vec<_>>()
                            .join("\n  ")
                    );
                    Ok(problems.is_empty().then_some(()))
                },
            )
            .await?;
            eprintln!(
                "{file}: {} rendered objects match the cluster",
                rendered.len()
            );
            Ok(())
        })
        .await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 5. A steady cluster makes no write requests.
// ---------------------------------------------------------------------------------------------

/// The write requests in a kube-client debug log (`HTTP{http.method=PATCH ...}: ... requesting`).
fn write_requests(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("requesting"))
        .filter(|l| {
            ["POST", "PUT", "PATCH", "DELETE"]
                .iter()
                .any(|m| l.contains(&format!("http.method={m} ")))
        })
        .map(str::to_string)
        .collect()
}

fn requests(log: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("http.method=") && l.contains("requesting"))
        .count()
}

#[tokio::test]
async fn steady_cluster_makes_no_write_requests() -> Result<()> {
    let env: &[&str] = &["RUST_LOG=info,kube_client=debug"];
    with_operator(
        "reconcile-steady",
        Some(env),
        async |client, ns, operator| {
            let yaml = with_namespace(&example("initial-cluster.yaml")?, ns)?;
            apply_yaml(client, ns, &yaml).await?;
            wait_cluster_ready(client, ns, "example", operator).await?;
            wait_quiet(client, ns).await?;
            let before = operator.log_contents()?;
            let converge_writes = write_requests(&before).len();
            ensure!(
                converge_writes > 0 && requests(&before) > 0,
                "the operator log has no kube-client request lines; is RUST_LOG=kube_client=debug \
             honoured? ({} bytes of log)",
                before.len()
            );
            tokio::time::sleep(STEADY).await;
            operator.check_running()?;
            let after = operator.log_contents()?;
            let window = after.get(before.len()..).unwrap_or_default();
            let writes = write_requests(window);
            let record = format!(
                "steady-state write requests by the operator over {}s (initial-cluster.yaml, \
             namespace {ns}): {}\nall requests in the window: {}\nwrite requests while \
             converging: {converge_writes}\n{}\n",
                STEADY.as_secs(),
                writes.len(),
                requests(window),
                writes.join("\n")
            );
            let path = state_dir().join("steady-writes.txt");
            std::fs::write(&path, &record)
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("{record}");
            ensure!(
                writes.is_empty(),
                "{} write requests in {}s of steady state:\n{}",
                writes.len(),
                STEADY.as_secs(),
                writes.join("\n")
            );
            Ok(())
        },
    )
    .await
}

/// The comparison itself: a test that only ever passes would prove nothing.
#[test]
fn subset_finds_missing_and_different_fields() {
    let rendered = serde_json::json!({
        "replicas": 2,
        "empty": {},
        "containers": [{"name": "a", "image": "x:1", "args": ["--p=1"]}, {"name": "b"}],
        "ports": [80, 443],
    });
    let live = serde_json::json!({
        "replicas": 2.0,
        "extra": true,
        "containers": [{"name": "b", "image": "y"}, {"name": "a", "image": "x:1", "args": ["--p=1"]}],
        "ports": [80, 443, 8080],
    });
    let mut out = Vec::new();
    subset(&rendered, &live, "spec", &mut out);
    assert!(out.is_empty(), "{out:?}");
    let changed = serde_json::json!({
        "replicas": 3,
        "containers": [{"name": "a", "image": "x:2", "args": ["--p=1"]}],
        "ports": [443],
    });
    let mut out = Vec::new();
    subset(&live, &changed, "spec", &mut out);
    let text = out.join("\n");
    assert!(
        text.contains("spec.replicas: rendered 2.0, live 3"),
        "{text}"
    );
    assert!(text.contains("spec.extra: missing in live"), "{text}");
    assert!(
        text.contains("spec.containers[name=b]: missing in live"),
        "{text}"
    );
    assert!(text.contains("spec.containers[name=a].image"), "{text}");
    assert!(
        text.contains("spec.ports[0]: rendered 80, live 443"),
        "{text}"
    );
}
