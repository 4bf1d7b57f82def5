//! The operator on a real API server: `examples/initial-cluster.yaml` becomes the Go
//! operator's children, pods and volumes, every status reports Ready, a steady cluster costs
//! no writes, and data volumes have no owner that garbage collection could follow.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use vitess_operator_e2e::{
    Operator, dynamic, is_ready, kubectl, kubectl_with_stdin, versions, wait_for, with_operator,
    workspace_dir,
};

/// Generous: a loaded CI machine is slow; a healthy run converges in seconds.
const TIMEOUT: Duration = Duration::from_secs(120);
/// How long a converged cluster is watched for writes.
const STEADY: Duration = Duration::from_secs(15);

const TABLET_PODS: [&str; 2] = [
    "example-vttablet-zone1-2548885007-46a852d0",
    "example-vttablet-zone1-2469782763-bfadd780",
];
const ETCD_PODS: [&str; 3] = [
    "example-etcd-faf13de3-1",
    "example-etcd-faf13de3-2",
    "example-etcd-faf13de3-3",
];
/// The child custom resources, by kind, with the Go operator's names and their owner's kind.
const CHILDREN: [(&str, &str, &str); 4] = [
    ("EtcdLockserver", "example-etcd-faf13de3", "VitessCluster"),
    ("VitessCell", "example-zone1-5abb61ae", "VitessCluster"),
    (
        "VitessKeyspace",
        "example-commerce-fb9b866a",
        "VitessCluster",
    ),
    (
        "VitessShard",
        "example-commerce-x-x-0f5afee6",
        "VitessKeyspace",
    ),
];
const DEPLOYMENTS: [&str; 2] = [
    "example-zone1-vtgate-bc6cde92",
    "example-zone1-vtctld-1d4dcad0",
];

#[tokio::test]
async fn initial_cluster_converges_and_stays_write_free() -> Result<()> {
    with_operator(
        "operator-initial-cluster",
        None,
        async |client, ns, operator| converge_and_check(client, ns, operator).await,
    )
    .await
}

async fn converge_and_check(client: &Client, ns: &str, operator: &mut Operator) -> Result<()> {
    let path = workspace_dir().join("examples/initial-cluster.yaml");
    let yaml =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    kubectl_with_stdin(
        &["apply", "--server-side", "-n", ns, "-f", "-"],
        Some(&yaml),
    )
    .await?;
    let start = Instant::now();

    for (kind, name, owner_kind) in CHILDREN {
        let api = dynamic(client, ns, kind);
        wait_for(
            &format!("{kind}/{name} with a controller owner {owner_kind}"),
            TIMEOUT,
            async |seen: &mut String| {
                operator.check_running()?;
                let Some(object) = api.get_opt(name).await? else {
                    *seen = "does not exist".into();
                    return Ok(None);
                };
                let owners = object.owner_references();
                *seen = format!("owner references {owners:?}");
                Ok(owners
                    .iter()
                    .any(|o| o.kind == owner_kind && o.controller == Some(true))
                    .then_some(()))
            },
        )
        .await?;
    }

    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    wait_for(
        "tablet and etcd pods to be Running and Ready",
        TIMEOUT,
        async |seen: &mut String| {
            operator.check_running()?;
            let mut missing = Vec::new();
            for name in TABLET_PODS.iter().chain(&ETCD_PODS) {
                match pods.get_opt(name).await? {
                    Some(pod) if is_ready(&pod) => {}
                    Some(_) => missing.push(format!("{name} not ready")),
                    None => missing.push(format!("{name} missing")),
                }
            }
            *seen = missing.join(", ");
            Ok(missing.is_empty().then_some(()))
        },
    )
    .await?;

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    for name in DEPLOYMENTS {
        wait_for(
            &format!("Deployment {name} to have available replicas"),
            TIMEOUT,
            async |seen: &mut String| {
                let available = deployments
                    .get_opt(name)
                    .await?
                    .and_then(|d| d.status)
                    .and_then(|s| s.available_replicas)
                    .unwrap_or(0);
                *seen = format!("{available} available");
                Ok((available > 0).then_some(()))
            },
        )
        .await?;
    }

    let shards = dynamic(client, ns, "VitessShard");
    wait_for(
        "VitessShard summary 2/2 and Ready True",
        TIMEOUT,
        async |seen: &mut String| {
            let shard = shards.get("example-commerce-x-x-0f5afee6").await?;
            let status = &shard.data["status"];
            let ready = status["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["type"] == "Ready")
                .map(|c| c["status"].clone());
            *seen = format!("summary {}, Ready {ready:?}", status["summary"]);
            Ok((status["summary"] == "2/2" && ready == Some("True".into())).then_some(()))
        },
    )
    .await?;

    wait_for(
        "`kubectl get vt` to show Ready True",
        TIMEOUT,
        async |seen: &mut String| {
            let table = kubectl(&["get", "vt", "-n", ns]).await?;
            *seen = table.clone();
            let row = table.lines().find(|l| l.starts_with("example "));
            Ok(row
                .is_some_and(|r| r.split_whitespace().nth(1) == Some("True"))
                .then_some(()))
        },
    )
    .await?;
    eprintln!("converged {:?} after applying", start.elapsed());

    // Steady state: nothing the operator owns or reports on is written any more. The status
    // roll-up may still be settling right after Ready (the cluster's last status write follows
    // its children's), so wait until one snapshot equals the next before timing the quiet.
    let mut before = versions(client, ns).await?;
    wait_for(
        "two equal snapshots of resourceVersions",
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
    .await?;
    tokio::time::sleep(STEADY).await;
    operator.check_running()?;
    let after = versions(client, ns).await?;
    let changed: Vec<String> = before
        .iter()
        .filter(|(k, v)| after.get(*k) != Some(*v))
        .map(|(k, v)| format!("{k}: {v} -> {:?}", after.get(k)))
        .collect();
    ensure!(
        changed.is_empty(),
        "written in steady state: {}",
        changed.join("; ")
    );
    ensure!(before.len() >= 5 + 5, "too few objects watched: {before:?}");

    // Data is never garbage collected: no PVC has an owner.
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let claims = claims.list(&ListParams::default()).await?;
    ensure!(
        claims.items.len() == 5,
        "expected 2 tablet + 3 etcd PVCs, got {}",
        claims.items.len()
    );
    for claim in &claims {
        ensure!(
            claim.owner_references().is_empty(),
            "PVC {} has owner references {:?}",
            claim.name_any(),
            claim.owner_references()
        );
    }
    Ok(())
}
