//! Our own kinds on the e2e cluster: installing the CRDs once per test process and reading
//! custom resources and pods the way the operator's tests need.

use std::collections::BTreeMap;
use std::time::Duration;

use std::time::Instant;

use anyhow::{Result, bail};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, GroupVersionKind, ListParams};
use kube::discovery::ApiResource;
use kube::{Client, ResourceExt};

use crate::{Operator, TestNamespace, client, kubectl, wait_for, workspace_dir};

const TIMEOUT: Duration = Duration::from_secs(120);

/// Every operator a test starts serves its HTTP endpoints on a free loopback port, so that
/// operators of tests running in parallel do not collide on the default `0.0.0.0:8080`.
pub const METRICS_ADDRESS: &str = "--metrics-address=127.0.0.1:0";

/// Installs the CRDs, the admission policy of `config/admission/` (what users get from
/// `kubectl apply -k config/`) and the PriorityClasses of `config/priority/` (every Vitess pod
/// names `vitess`, which admission refuses when it does not exist) once per test process,
/// server-side (another test process may be doing the same; server-side apply of identical
/// objects does not race to AlreadyExists).
pub async fn install_crds() -> Result<()> {
    static INSTALLED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    INSTALLED
        .get_or_try_init(|| async {
            for dir in ["crds", "config/admission", "config/priority"] {
                let dir = workspace_dir().join(dir);
                kubectl(&[
                    "apply",
                    "--server-side",
                    "--force-conflicts",
                    "-f",
                    &dir.to_string_lossy(),
                ])
                .await?;
            }
            let crds: Api<CustomResourceDefinition> = Api::all(client().await?);
            for crd in [
                "vitessclusters",
                "vitesscells",
                "vitesskeyspaces",
                "vitessshards",
                "etcdlockservers",
                "vitessbackupstorages",
            ] {
                let name = format!("{crd}.planetscale.com");
                wait_for(
                    &format!("CRD {name} to be established"),
                    TIMEOUT,
                    async |seen: &mut String| {
                        let conditions = crds
                            .get(&name)
                            .await?
                            .status
                            .and_then(|s| s.conditions)
                            .unwrap_or_default();
                        *seen = format!("{conditions:?}");
                        Ok(conditions
                            .iter()
                            .any(|c| c.type_ == "Established" && c.status == "True")
                            .then_some(()))
                    },
                )
                .await?;
            }
            anyhow::Ok(())
        })
        .await?;
    Ok(())
}

pub fn dynamic(client: &Client, namespace: &str, kind: &str) -> Api<DynamicObject> {
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk("planetscale.com", "v2", kind));
    Api::namespaced_with(client.clone(), namespace, &resource)
}

pub fn condition(object: &DynamicObject, type_: &str) -> Option<String> {
    object.data["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == type_)
        .and_then(|c| c["status"].as_str().map(str::to_string))
}

/// The status, reason and message of `object`'s condition `type_`.
pub fn condition_detail(object: &DynamicObject, type_: &str) -> Option<(String, String, String)> {
    let c = object.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)?;
    let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
    Some((text("status"), text("reason"), text("message")))
}

/// The primary a VitessShard reports (`status.primaryAlias`, or the older `masterAlias`).
pub fn primary_of(shard: &DynamicObject) -> Option<String> {
    shard.data["status"]["primaryAlias"]
        .as_str()
        .or_else(|| shard.data["status"]["masterAlias"].as_str())
        .filter(|a| !a.is_empty())
        .map(str::to_string)
}

/// Waits (up to `timeout`) until VitessShard `shard` of `shards` reports a primary, and
/// returns it; fails at once if `operator` exited.
pub async fn wait_for_primary(
    shards: &Api<DynamicObject>,
    shard: &str,
    operator: &mut crate::Operator,
    timeout: std::time::Duration,
) -> Result<String> {
    let log = operator.log_path().display().to_string();
    crate::wait_for(
        &format!("VitessShard {shard} to report a primary (operator log: {log})"),
        timeout,
        async |seen: &mut String| {
            operator.check_running()?;
            let Some(object) = shards.get_opt(shard).await? else {
                *seen = "no VitessShard yet".into();
                return Ok(None);
            };
            *seen = format!("{}", object.data["status"]);
            Ok(primary_of(&object))
        },
    )
    .await
}

pub fn is_ready(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    status.and_then(|s| s.phase.as_deref()) == Some("Running")
        && status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// `Kind/name` -> resourceVersion of the operator's objects in `ns` (our kinds, pods and
/// Deployments): two equal snapshots mean nothing was written in between.
pub async fn versions(client: &Client, ns: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
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
            out.insert(
                format!("{kind}/{}", object.name_any()),
                object.resource_version().unwrap_or_default(),
            );
        }
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    for pod in pods.list(&ListParams::default()).await? {
        out.insert(
            format!("Pod/{}", pod.name_any()),
            pod.resource_version().unwrap_or_default(),
        );
    }
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    for deployment in deployments.list(&ListParams::default()).await? {
        out.insert(
            format!("Deployment/{}", deployment.name_any()),
            deployment.resource_version().unwrap_or_default(),
        );
    }
    Ok(out)
}

/// Creates a namespace, starts an operator on it, runs `body`, stops the operator; on failure
/// the error carries the operator's log. The namespace is deleted on success (and, without
/// waiting, on failure when dropped). `operator_args`: `env` arguments put before the
/// operator (`VAR=value`).
///
/// The operator's vtctld is a private fake (`vtctld_fake`) with the tablet agent
/// ([`crate::start_tablet_agent`]) registering each Ready tablet pod in it, so that shards
/// get a primary and become Ready, and tests running at once do not register and prune each
/// other's cells and keyspaces in the one real vtctld; tests of what Vitess sees use
/// [`with_operator_at`] with it; tests that need the fake itself use
/// [`crate::with_fake_vtctld`].
pub async fn with_operator<F>(test: &str, operator_args: Option<&[&str]>, body: F) -> Result<()>
where
    F: AsyncFnOnce(&Client, &str, &mut Operator) -> Result<()>,
{
    crate::agent::with_fake_and_agent(test, operator_args, async |client, ns, operator, _, _| {
        body(client, ns, operator).await
    })
    .await
}

/// [`with_operator`] with every cluster's vtctld at `vtctld` (`HOST:PORT`), e.g. a fake.
pub async fn with_operator_at<F>(
    test: &str,
    operator_args: Option<&[&str]>,
    vtctld: &str,
    body: F,
) -> Result<()>
where
    F: AsyncFnOnce(&Client, &str, &mut Operator) -> Result<()>,
{
    install_crds().await?;
    let client = client().await?;
    let ns = TestNamespace::create(&client, test).await?;
    let address = format!("*={vtctld}");
    let run = [
        "run",
        "--namespace",
        ns.name(),
        "--vtctld-address",
        &address,
        METRICS_ADDRESS,
    ];
    let mut operator = match operator_args {
        None => Operator::start(test, &run)?,
        Some(prefix) => {
            // `env VAR=... <operator> run --namespace NS`: env execs, so the pid is the operator.
            let binary = Operator::binary();
            let binary = binary.to_string_lossy();
            let mut args: Vec<&str> = prefix.to_vec();
            args.push(&binary);
            args.extend(run);
            Operator::start_binary(std::path::Path::new("/usr/bin/env"), test, &args)?
        }
    };
    let started = Instant::now();
    let result = body(&client, ns.name(), &mut operator).await;
    let stopped = operator.stop().await;
    if let Err(err) = result {
        let log = operator.log_contents().unwrap_or_default();
        bail!(
            "{err:#}\n--- operator log ({}) ---\n{log}",
            operator.log_path().display()
        );
    }
    stopped?;
    eprintln!("{test}: checked in {:?}", started.elapsed());
    ns.delete(TIMEOUT).await?;
    Ok(())
}
