//! A throwaway namespace per test, so tests can run in parallel.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::{
    Api, Client,
    api::{DeleteParams, ObjectMeta, PostParams},
};

use crate::{paths::kubeconfig_path, paths::tool_path, wait::wait_for};

/// Label put on every namespace made by [`TestNamespace`], so leftovers can be
/// cleaned with `kubectl delete ns -l vitess-operator-e2e=true`.
pub const NAMESPACE_LABEL: &str = "vitess-operator-e2e";

/// A short suffix unique across processes and calls (pid, time, counter), for
/// names of objects tests create (namespaces, cluster-scoped objects, cells).
pub fn unique_suffix() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{:x}{:x}{n:x}", std::process::id(), nanos >> 12)
}

/// A namespace created for one test and deleted when dropped (or explicitly
/// with [`TestNamespace::delete`]). Set `E2E_KEEP_NAMESPACES=1` to keep them
/// for debugging.
pub struct TestNamespace {
    name: String,
    client: Client,
    deleted: bool,
}

impl TestNamespace {
    /// Creates `e2e-<prefix>-<unique>` and waits until its `default`
    /// ServiceAccount exists (pods are refused before that).
    pub async fn create(client: &Client, prefix: &str) -> Result<Self> {
        Self::create_in(client, "e2e", prefix).await
    }

    /// Like [`TestNamespace::create`], named `<owner>-<prefix>-<unique>` (the benchmark's
    /// namespaces start with `bench-`).
    pub async fn create_in(client: &Client, owner: &str, prefix: &str) -> Result<Self> {
        let prefix: String = prefix
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let suffix = unique_suffix();
        let max_prefix = 63 - owner.len() - "--".len() - suffix.len();
        let prefix = prefix.chars().take(max_prefix).collect::<String>();
        let name = format!("{owner}-{}-{suffix}", prefix.trim_matches('-'));
        let api: Api<Namespace> = Api::all(client.clone());
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some([(NAMESPACE_LABEL.to_string(), "true".to_string())].into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        api.create(&PostParams::default(), &ns)
            .await
            .with_context(|| format!("creating namespace {name}"))?;
        let this = Self {
            name,
            client: client.clone(),
            deleted: false,
        };
        let sa: Api<ServiceAccount> = Api::namespaced(client.clone(), &this.name);
        wait_for(
            &format!("the default ServiceAccount of namespace {}", this.name),
            Duration::from_secs(60),
            async |seen: &mut String| {
                let found = sa.get_opt("default").await?.is_some();
                *seen = format!("present: {found}");
                Ok(found.then_some(()))
            },
        )
        .await?;
        Ok(this)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Deletes every pod of the namespace at once (no grace period), then the namespace, and
    /// waits (up to `timeout`) until it is gone. For tests whose pods ask for a long grace
    /// period (a tablet's is 30 minutes): the namespace controller otherwise waits that long
    /// before it looks again, even when the pods end sooner. Only once what the test checks
    /// is done: its data is not shut down cleanly.
    pub async fn delete_now(self, timeout: Duration) -> Result<()> {
        let pods: Api<k8s_openapi::api::core::v1::Pod> =
            Api::namespaced(self.client.clone(), &self.name);
        pods.delete_collection(
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..DeleteParams::default()
            },
            &kube::api::ListParams::default(),
        )
        .await
        .with_context(|| format!("deleting the pods of namespace {}", self.name))?;
        self.delete(timeout).await
    }

    /// Deletes the namespace and waits (up to `timeout`) until it is gone.
    pub async fn delete(mut self, timeout: Duration) -> Result<()> {
        self.deleted = true;
        let api: Api<Namespace> = Api::all(self.client.clone());
        api.delete(&self.name, &DeleteParams::background())
            .await
            .with_context(|| format!("deleting namespace {}", self.name))?;
        wait_for(
            &format!("namespace {} to be deleted", self.name),
            timeout,
            async |seen: &mut String| {
                let ns = api.get_opt(&self.name).await?;
                // The namespace controller's conditions say what it still waits for
                // (content remaining, finalizers remaining, which kinds and how many).
                *seen = match &ns {
                    Some(ns) => {
                        let status = ns.status.as_ref();
                        let waiting: Vec<String> = status
                            .and_then(|s| s.conditions.as_ref())
                            .into_iter()
                            .flatten()
                            .filter(|c| c.status == "True")
                            .map(|c| format!("{}: {}", c.type_, c.message.as_deref().unwrap_or("")))
                            .collect();
                        format!(
                            "phase {:?}; {}",
                            status.and_then(|s| s.phase.clone()),
                            waiting.join("; ")
                        )
                    }
                    None => "gone".to_string(),
                };
                Ok(ns.is_none().then_some(()))
            },
        )
        .await
    }
}

impl std::fmt::Debug for TestNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestNamespace")
            .field("name", &self.name)
            .finish()
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if self.deleted {
            return;
        }
        if std::env::var_os("E2E_KEEP_NAMESPACES").is_some_and(|v| !v.is_empty() && v != "0") {
            eprintln!(
                "E2E_KEEP_NAMESPACES is set: keeping namespace {}",
                self.name
            );
            return;
        }
        // Drop cannot await, and blocking on the test's runtime could deadlock;
        // a synchronous kubectl call does not depend on any runtime.
        let result = std::process::Command::new(tool_path("kubectl"))
            .arg("--kubeconfig")
            .arg(kubeconfig_path())
            .args([
                "delete",
                "namespace",
                &self.name,
                "--wait=false",
                "--ignore-not-found",
            ])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .output();
        match result {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "warning: could not delete namespace {}: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(err) => eprintln!(
                "warning: could not run kubectl to delete namespace {}: {err}",
                self.name
            ),
        }
    }
}
