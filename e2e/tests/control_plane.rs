//! Checks that the local control plane started by `e2e/cluster up` does what
//! the operator's e2e tests rely on. These tests fail (they do not skip) when
//! the cluster is not up: run `e2e/cluster up` first.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams};
use vitess_operator_e2e::{
    TestNamespace, apply_yaml, client, kubectl, kubectl_with_stdin, unique_suffix, vtctldclient,
    wait_for,
};

const TIMEOUT: Duration = Duration::from_secs(90);

fn condition_true(pod: &Pod, kind: &str) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == kind && c.status == "True"))
}

fn pod_running_and_ready(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    status.and_then(|s| s.phase.as_deref()) == Some("Running")
        && condition_true(pod, "Ready")
        && condition_true(pod, "ContainersReady")
        && status
            .and_then(|s| s.pod_ip.as_deref())
            .is_some_and(|ip| !ip.is_empty())
        && status
            .and_then(|s| s.container_statuses.as_ref())
            .is_some_and(|cs| {
                !cs.is_empty()
                    && cs.iter().all(|c| {
                        c.ready && c.state.as_ref().and_then(|s| s.running.as_ref()).is_some()
                    })
            })
}

fn describe_pods(pods: &[Pod]) -> String {
    let items: Vec<String> = pods
        .iter()
        .map(|p| {
            format!(
                "{} node={} phase={} ready={}",
                p.metadata.name.as_deref().unwrap_or("?"),
                p.spec
                    .as_ref()
                    .and_then(|s| s.node_name.as_deref())
                    .unwrap_or("-"),
                p.status
                    .as_ref()
                    .and_then(|s| s.phase.as_deref())
                    .unwrap_or("-"),
                condition_true(p, "Ready")
            )
        })
        .collect();
    format!("{} pods [{}]", pods.len(), items.join(", "))
}

fn deployment_yaml(name: &str, replicas: u32) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels:
    app: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: {name}
  template:
    metadata:
      labels:
        app: {name}
    spec:
      containers:
      - name: web
        image: registry.invalid/web:1.0
        resources:
          requests:
            cpu: 100m
            memory: 64Mi
"#
    )
}

async fn wait_deployment_ready(
    client: &kube::Client,
    ns: &str,
    name: &str,
    replicas: i32,
) -> Result<Vec<Pod>> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let selector = format!("app={name}");
    wait_for(
        &format!(
            "deployment {ns}/{name} to have {replicas} ready replicas and Running, Ready pods"
        ),
        TIMEOUT,
        async |seen: &mut String| {
            let d = deployments.get(name).await?;
            let ready = d
                .status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0);
            let available = d
                .status
                .as_ref()
                .and_then(|s| s.available_replicas)
                .unwrap_or(0);
            let list = pods
                .list(&ListParams::default().labels(&selector))
                .await?
                .items;
            *seen = format!(
                "readyReplicas={ready} availableReplicas={available}; {}",
                describe_pods(&list)
            );
            let done = ready == replicas
                && available == replicas
                && list.len() == replicas as usize
                && list.iter().all(pod_running_and_ready);
            Ok(done.then_some(list))
        },
    )
    .await
}

#[tokio::test]
async fn three_ready_nodes_in_three_zones() -> Result<()> {
    let client = client().await?;
    let nodes: Api<Node> = Api::all(client);
    let list = nodes
        .list(&ListParams::default().labels("type=kwok"))
        .await?
        .items;
    ensure!(
        list.len() == 3,
        "expected 3 kwok nodes, found {}",
        list.len()
    );

    let mut zones = BTreeSet::new();
    let mut total_pods = 0i64;
    for node in &list {
        let name = node.metadata.name.as_deref().unwrap_or("?");
        let labels = node.metadata.labels.clone().unwrap_or_default();
        zones.insert(
            labels
                .get("topology.kubernetes.io/zone")
                .cloned()
                .with_context(|| format!("node {name} has no zone label"))?,
        );
        let status = node.status.as_ref().context("node without status")?;
        let ready = status
            .conditions
            .as_ref()
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        ensure!(ready, "node {name} is not Ready: {:?}", status.conditions);
        let taints = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        ensure!(taints.is_empty(), "node {name} has taints {taints:?}");
        let pods: i64 = status
            .allocatable
            .as_ref()
            .and_then(|a| a.get("pods"))
            .and_then(|q| q.0.parse().ok())
            .with_context(|| format!("node {name} has no allocatable pods"))?;
        total_pods += pods;
    }
    let expected: BTreeSet<String> = ["zone1", "zone2", "zone3"].map(String::from).into();
    ensure!(zones == expected, "zones {zones:?}, expected {expected:?}");
    ensure!(
        total_pods >= 600,
        "only {total_pods} pods allocatable in total"
    );

    // The same, as a user sees it with the cached kubectl.
    let out = kubectl(&["get", "nodes", "-l", "type=kwok", "--no-headers"]).await?;
    ensure!(
        out.lines()
            .filter(|l| l.split_whitespace().nth(1) == Some("Ready"))
            .count()
            == 3,
        "kubectl get nodes does not show 3 Ready nodes:\n{out}"
    );
    Ok(())
}

#[tokio::test]
async fn deployment_with_three_replicas_becomes_ready() -> Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(&client, "deploy").await?;
    let applied = apply_yaml(&client, ns.name(), &deployment_yaml("web", 3)).await?;
    ensure!(applied.len() == 1, "applied {} objects", applied.len());

    let pods = wait_deployment_ready(&client, ns.name(), "web", 3).await?;
    let ips: BTreeSet<_> = pods
        .iter()
        .filter_map(|p| p.status.as_ref().and_then(|s| s.pod_ip.clone()))
        .collect();
    ensure!(ips.len() == 3, "pods do not have 3 distinct IPs: {ips:?}");
    for pod in &pods {
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or("");
        ensure!(
            node.starts_with("kwok-zone"),
            "pod scheduled on unexpected node {node:?}"
        );
    }

    // Re-applying the same YAML is a no-op for the server (same generation).
    let before = applied[0].metadata.generation;
    let again = apply_yaml(&client, ns.name(), &deployment_yaml("web", 3)).await?;
    ensure!(
        again[0].metadata.generation == before,
        "re-apply changed the generation"
    );
    Ok(()) // dropping `ns` deletes the namespace in the background
}

#[tokio::test]
async fn pvc_gets_bound_and_its_pod_runs() -> Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(&client, "pvc").await?;
    let yaml = r#"
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 1Gi
---
apiVersion: v1
kind: Pod
metadata:
  name: db
spec:
  containers:
  - name: db
    image: registry.invalid/db:1.0
    volumeMounts:
    - name: data
      mountPath: /data
  volumes:
  - name: data
    persistentVolumeClaim:
      claimName: data
"#;
    apply_yaml(&client, ns.name(), yaml).await?;

    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns.name());
    let pvc = wait_for(
        "PVC data to be Bound",
        TIMEOUT,
        async |seen: &mut String| {
            let pvc = pvcs.get("data").await?;
            let phase = pvc.status.as_ref().and_then(|s| s.phase.clone());
            *seen = format!("phase {phase:?}");
            Ok((phase.as_deref() == Some("Bound")).then_some(pvc))
        },
    )
    .await?;
    let spec = pvc.spec.context("PVC without spec")?;
    ensure!(
        spec.storage_class_name.as_deref() == Some("standard"),
        "PVC did not get the default StorageClass: {:?}",
        spec.storage_class_name
    );
    let pv_name = spec.volume_name.context("bound PVC without volumeName")?;
    let pv = Api::<PersistentVolume>::all(client.clone())
        .get(&pv_name)
        .await?;
    let pv_spec = pv.spec.context("PV without spec")?;
    ensure!(
        pv_spec.host_path.is_some(),
        "PV {pv_name} is not a hostPath volume"
    );

    let pods: Api<Pod> = Api::namespaced(client.clone(), ns.name());
    wait_for(
        "pod db to be Running and Ready",
        TIMEOUT,
        async |seen: &mut String| {
            let pod = pods.get("db").await?;
            *seen = describe_pods(std::slice::from_ref(&pod));
            Ok(pod_running_and_ready(&pod).then_some(()))
        },
    )
    .await?;

    // Once the pod is gone the claim can go (pvc-protection), and the Delete
    // reclaim policy then removes the provisioned volume.
    pods.delete("db", &DeleteParams::default()).await?;
    pvcs.delete("data", &DeleteParams::default()).await?;
    let pvs: Api<PersistentVolume> = Api::all(client);
    wait_for(
        &format!("PV {pv_name} to be reclaimed"),
        TIMEOUT,
        async |seen: &mut String| {
            let pv = pvs.get_opt(&pv_name).await?;
            *seen = format!(
                "{:?}",
                pv.as_ref()
                    .and_then(|p| p.status.as_ref())
                    .and_then(|s| s.phase.clone())
            );
            Ok(pv.is_none().then_some(()))
        },
    )
    .await
}

#[tokio::test]
async fn deleting_a_deployment_garbage_collects_its_pods() -> Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(&client, "gc").await?;
    // As a user would: kubectl apply, then kubectl delete.
    kubectl_with_stdin(
        &["apply", "-n", ns.name(), "-f", "-"],
        Some(&deployment_yaml("doomed", 3)),
    )
    .await?;
    let pods = wait_deployment_ready(&client, ns.name(), "doomed", 3).await?;
    ensure!(pods.len() == 3);

    kubectl(&[
        "delete",
        "-n",
        ns.name(),
        "deployment",
        "doomed",
        "--wait=false",
    ])
    .await?;
    let pod_api: Api<Pod> = Api::namespaced(client.clone(), ns.name());
    let rs_api: Api<ReplicaSet> = Api::namespaced(client.clone(), ns.name());
    wait_for(
        "the deployment's ReplicaSet and pods to be garbage-collected",
        TIMEOUT,
        async |seen: &mut String| {
            let pods = pod_api
                .list(&ListParams::default().labels("app=doomed"))
                .await?
                .items;
            let sets = rs_api
                .list(&ListParams::default().labels("app=doomed"))
                .await?
                .items;
            *seen = format!("{} replicasets; {}", sets.len(), describe_pods(&pods));
            Ok((pods.is_empty() && sets.is_empty()).then_some(()))
        },
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn apply_yaml_handles_a_crd_and_its_custom_resources() -> Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(&client, "crd").await?;
    let group = format!("e2e-{}.example.com", unique_suffix());
    let yaml = format!(
        r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.{group}
spec:
  group: {group}
  scope: Namespaced
  names: {{plural: widgets, singular: widget, kind: Widget}}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {{type: integer}}
---
apiVersion: {group}/v1
kind: Widget
metadata:
  name: first
spec:
  size: 3
"#
    );
    let applied = apply_yaml(&client, ns.name(), &yaml).await?;
    ensure!(applied.len() == 2, "applied {} objects", applied.len());
    let widget = &applied[1];
    ensure!(widget.metadata.namespace.as_deref() == Some(ns.name()));
    ensure!(
        widget.data["spec"]["size"] == 3,
        "stored widget: {:?}",
        widget.data
    );
    let managers: Vec<_> = widget
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.clone())
        .collect();
    ensure!(
        managers
            .iter()
            .any(|m| m == vitess_operator_e2e::FIELD_MANAGER),
        "managers {managers:?}"
    );

    let out = kubectl(&[
        "get",
        &format!("widgets.{group}"),
        "-n",
        ns.name(),
        "-o",
        "name",
    ])
    .await?;
    ensure!(out.trim().ends_with("/first"), "kubectl sees: {out}");

    let crds: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &kube::discovery::ApiResource::erase::<
            k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
        >(&()),
    );
    crds.delete(&format!("widgets.{group}"), &DeleteParams::default())
        .await?;
    // The explicit form of the cleanup that dropping a TestNamespace does.
    ns.delete(TIMEOUT).await
}

#[tokio::test]
async fn vtctld_answers_and_stores_cells_in_the_topology() -> Result<()> {
    // Fail fast with a clear message when the cluster is down.
    client().await?;
    let names = vtctldclient(&["GetCellInfoNames"]).await?;
    let cell = format!("e2e{}", unique_suffix());
    ensure!(!names.lines().any(|l| l.trim() == cell));

    vtctldclient(&[
        "AddCellInfo",
        "--root",
        &format!("/vitess/{cell}"),
        "--server-address",
        "127.0.0.1:23790",
        &cell,
    ])
    .await?;
    let result = async {
        let names = vtctldclient(&["GetCellInfoNames"]).await?;
        ensure!(
            names.lines().any(|l| l.trim() == cell),
            "cell {cell} not listed in:\n{names}"
        );
        let info = vtctldclient(&["GetCellInfo", &cell]).await?;
        ensure!(
            info.contains(&format!("/vitess/{cell}")),
            "GetCellInfo {cell}:\n{info}"
        );
        Ok(())
    }
    .await;
    vtctldclient(&["DeleteCellInfo", "--force", &cell]).await?;
    result?;
    let names = vtctldclient(&["GetCellInfoNames"]).await?;
    ensure!(
        !names.lines().any(|l| l.trim() == cell),
        "cell {cell} still listed"
    );
    Ok(())
}
