//! The controllers: one kube-runtime `Controller` per kind, each reconcile the pipeline of
//! DESIGN §4 (read -> validate -> build -> apply -> report status). Children that are no
//! longer desired are pruned, except data and what may still serve (DESIGN §7).

pub mod adopt;
pub mod backoff;
pub mod backup;
pub mod backupinit;
pub mod backupschedule;
pub mod backupstorage;
pub mod cell;
pub mod cluster;
pub mod condition;
pub mod drain;
pub mod etcd;
pub mod hold;
pub mod keyspace;
pub mod resharding;
pub mod shard;
#[cfg(test)]
pub(crate) mod testing;
pub mod topology;
pub mod vtctld;

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::NamespaceResourceScope;
use kube::runtime::controller::{self, Action};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::watcher;
use kube::{Api, Client, Resource};

use crate::api::VitessCluster;
use crate::{desired, k8s::apply, vitess};
use vtctld::VtctldError;

/// Reconciles of one kind that may run at once (never two of one object).
const CONCURRENCY: u16 = 8;
/// A converged object is looked at again this often, to repair what someone changed by hand
/// that no watch event reports (children are watched, so this is a safety net).
const REQUEUE: Duration = Duration::from_secs(300);
/// How soon an object waiting for something outside Kubernetes (vtctld answering, a tablet
/// registering, a reparent, a drain) is looked at again; watched changes wake it sooner.
const POLL: Duration = Duration::from_secs(5);
/// How soon an object waiting on something slow (tablets registering, vtctld coming back) is
/// looked at again.
const WAIT: Duration = Duration::from_secs(15);
/// How soon a cluster whose topology could not be registered tries again: each try re-applies
/// the cluster's children, so not too often.
const TOPOLOGY_RETRY: Duration = Duration::from_secs(30);
/// How often backups are listed unless `run --backup-list-period-seconds` says otherwise.
pub const DEFAULT_BACKUP_LIST_PERIOD: Duration = Duration::from_secs(60);
/// First retry after a failed reconcile; doubled per consecutive failure up to [`REQUEUE`].
const RETRY: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Build(#[from] desired::Error),
    #[error(transparent)]
    Apply(#[from] apply::Error),
    #[error("listing {what}: {source}")]
    List {
        what: String,
        source: Box<kube::Error>,
    },
    #[error("reading {what}: {source}")]
    Get {
        what: String,
        source: Box<kube::Error>,
    },
    #[error("cannot create {object}: {source}")]
    Create {
        object: String,
        source: Box<kube::Error>,
    },
    #[error("{object}: cannot encode it for validation: {source}")]
    Encode {
        object: String,
        source: serde_json::Error,
    },
}

impl Error {
    /// The error's category, the `reason` label of `vitess_operator_reconcile_errors_total`:
    /// one fixed word per variant, so that the label set is bounded and stable.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Build(_) => "build",
            Error::Apply(_) => "apply",
            Error::List { .. } => "list",
            Error::Get { .. } => "get",
            Error::Create { .. } => "create",
            Error::Encode { .. } => "encode",
        }
    }
}

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    /// Watch only this namespace; `None`: all.
    pub namespace: Option<String>,
    /// The offline validator (schema, CEL and semantic rules), built once.
    checker: Mutex<crate::cli::validate::Checker>,
    /// Consecutive failures per object, for the retry backoff, with the last error message
    /// (a `ReconcileFailed` Event is published only when it changes).
    failures: Mutex<HashMap<String, (u32, String)>>,
    /// Kubernetes Events on the objects reconciled.
    pub events: crate::k8s::events::Events,
    /// vtctld clients, one channel per address.
    vitess: vitess::Clients,
    /// How often each backup location's backups are listed through vtctld.
    pub backup_list_period: Duration,
    /// The BackupShard calls of VitessBackup requests this process sent, by request uid; an
    /// entry goes once a reconcile reads the request's status as finished (the outcome is
    /// then in the object).
    backup_requests: Mutex<HashMap<String, backup::RequestState>>,
    /// What was last applied to children that are not applied again while unchanged.
    applied: apply::Applied,
    /// The VitessClusters the cluster controller watches (whole: our own kind), read by the
    /// other controllers to find a cluster's vtctld without a GET per reconcile: the cluster
    /// controller's store, given once when it starts ([`Context::share_clusters`]). Before
    /// that, before its first list, and in tests without it, a miss falls back to a GET.
    clusters: std::sync::OnceLock<reflector::Store<VitessCluster>>,
}

impl Context {
    pub fn new(client: Client, namespace: Option<String>, vitess: vitess::Clients) -> Self {
        Self {
            clusters: std::sync::OnceLock::new(),
            namespace,
            checker: Mutex::new(crate::cli::validate::Checker::new()),
            failures: Mutex::new(HashMap::new()),
            events: crate::k8s::events::Events::new(client.clone()),
            vitess,
            backup_list_period: DEFAULT_BACKUP_LIST_PERIOD,
            backup_requests: Mutex::new(HashMap::new()),
            applied: apply::Applied::default(),
            client,
        }
    }

    /// Shares the cluster controller's store of VitessClusters; only its first call counts.
    fn share_clusters(&self, store: reflector::Store<VitessCluster>) {
        // A second controller in one process (tests) keeps the first one's store.
        let _ = self.clusters.set(store);
    }

    /// Cluster `name` in `namespace`: from the shared cache, else (not listed yet, or just
    /// made) from the API server.
    async fn cluster(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Arc<VitessCluster>>, kube::Error> {
        if let Some(cached) = self
            .clusters
            .get()
            .and_then(|store| store.get(&ObjectRef::new(name).within(namespace)))
        {
            return Ok(Some(cached));
        }
        let clusters: Api<VitessCluster> = Api::namespaced(self.client.clone(), namespace);
        Ok(clusters.get_opt(name).await?.map(Arc::new))
    }

    /// Runs `f` on the BackupShard calls of VitessBackup requests.
    fn backup_requests<T>(
        &self,
        f: impl FnOnce(&mut HashMap<String, backup::RequestState>) -> T,
    ) -> T {
        f(&mut self
            .backup_requests
            .lock()
            .unwrap_or_else(|e| e.into_inner()))
    }

    /// The vtctld client of the cluster `object` belongs to (its `planetscale.com/cluster`
    /// label), or why there is none: see [`Context::vtctld_of`].
    async fn vtctld(&self, object: &impl Resource) -> Result<vitess::Vtctld, VtctldError> {
        let meta = object.meta();
        let cluster = meta
            .labels
            .as_ref()
            .and_then(|l| l.get(crate::domain::labels::CLUSTER))
            .ok_or(VtctldError::NoClusterLabel)?;
        self.vtctld_of(meta.namespace.as_deref().unwrap_or_default(), cluster)
            .await
    }

    /// The vtctld client of cluster `cluster` in `namespace`, or why there is none: the
    /// caller's own read of the VitessCluster (the shared cache, a GET on a miss) and of the
    /// TLS Secrets its spec names, so that no controller waits for another to have run. The channel connects on first use.
    async fn vtctld_of(
        &self,
        namespace: &str,
        cluster: &str,
    ) -> Result<vitess::Vtctld, VtctldError> {
        let found = self
            .cluster(namespace, cluster)
            .await
            .map_err(|e| VtctldError::ClusterUnreadable {
                cluster: cluster.to_string(),
                source: Arc::new(e),
            })?
            .ok_or_else(|| VtctldError::ClusterPending {
                cluster: cluster.to_string(),
            })?;
        let tls = topology::tls(self, &found)
            .await
            .map_err(VtctldError::Tls)?;
        self.vtctld_with(namespace, cluster, tls.as_ref())
    }

    /// The vtctld client of `cluster` with TLS settings already read.
    fn vtctld_with(
        &self,
        namespace: &str,
        cluster: &str,
        tls: Option<&vitess::Tls>,
    ) -> Result<vitess::Vtctld, VtctldError> {
        Ok(self.vitess.get(namespace, cluster, tls)?)
    }

    /// An API for `K` in the watched scope.
    fn api<K>(&self) -> Api<K>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>,
    {
        match &self.namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        }
    }
}

impl Context {
    /// An API for `K` in `parent`'s namespace (children live with their parent).
    fn api_in<K>(&self, parent: &impl Resource) -> Api<K>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>,
    {
        let namespace = parent.meta().namespace.clone().unwrap_or_default();
        Api::namespaced(self.client.clone(), &namespace)
    }
}

/// Runs every controller until SIGTERM or SIGINT.
pub async fn run(
    client: Client,
    namespace: Option<String>,
    vitess: vitess::Clients,
    backup_list_period: Duration,
) {
    let mut ctx = Context::new(client, namespace, vitess);
    ctx.backup_list_period = backup_list_period;
    let ctx = Arc::new(ctx);
    tokio::join!(
        backupstorage::run(ctx.clone()),
        backup::run(ctx.clone()),
        backupschedule::run(ctx.clone()),
        cluster::run(ctx.clone()),
        cell::run(ctx.clone()),
        keyspace::run(ctx.clone()),
        shard::run(ctx.clone()),
        etcd::run(ctx),
    );
}

/// The controller settings every kind uses.
fn config() -> controller::Config {
    controller::Config::default().concurrency(CONCURRENCY)
}

/// The watch settings of children: only the objects our builders label. Controllers watch
/// children as `PartialObjectMeta` (kube then asks the server for metadata only): a child
/// event only has to say which parent to wake, and reconciles read the children's state from
/// their apply responses, so no cache holds whole Pods or Deployments.
fn children() -> watcher::Config {
    watcher::Config::default().labels(crate::domain::labels::COMPONENT)
}

/// The label selector of `parent`'s children of `component`: the component plus those of
/// `parent`'s own labels named in `keys` that it has (a parent missing one is still
/// protected by the owner uid check of [`apply::children`]).
fn selector<P: Resource<DynamicType = ()>>(parent: &P, component: &str, keys: &[&str]) -> String {
    let own = parent.meta().labels.clone().unwrap_or_default();
    let mut pairs = vec![(crate::domain::labels::COMPONENT, component)];
    pairs.extend(
        keys.iter()
            .filter_map(|k| own.get(*k).map(|v| (*k, v.as_str()))),
    );
    apply::selector(&pairs, &[])
}

/// Retries a failed object with a per-object exponential backoff.
fn error_policy<K>(object: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action
where
    K: Resource<DynamicType = ()>,
{
    let key = ObjectRef::from_obj(object.as_ref()).to_string();
    let message = error.to_string();
    crate::process::metrics::global().failed(&K::kind(&()), error.category());
    let (failures, new) = {
        let mut map = ctx.failures.lock().unwrap_or_else(|e| e.into_inner());
        let (n, last) = map.entry(key.clone()).or_insert((0, String::new()));
        let new = *n == 0 || crate::k8s::events::failure_is_new(Some(last), &message);
        *n = n.saturating_add(1);
        if new {
            last.clone_from(&message);
        }
        (*n, new)
    };
    if new {
        ctx.events
            .reconcile_failed(object.object_ref(&()), &message);
    }
    let delay = RETRY
        .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1).min(16)))
        .min(REQUEUE);
    tracing::warn!(object = %key, failures, retry_in = ?delay, "reconcile failed: {error}");
    Action::requeue(delay)
}

/// Logs the outcome of one reconcile and resets the backoff of objects that succeeded.
async fn report<K>(
    ctx: &Context,
    result: Result<(ObjectRef<K>, Action), controller::Error<Error, watcher::Error>>,
) where
    K: Resource<DynamicType = ()> + Debug,
{
    match result {
        Ok((object, _)) => {
            crate::process::metrics::global().reconciled(&K::kind(&()));
            let key = object.to_string();
            ctx.failures
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&key);
            tracing::debug!(object = %key, "reconciled");
        }
        // Reconcile errors were logged by `error_policy`; these are watch and queue errors.
        Err(controller::Error::ReconcilerFailed(..)) => {}
        // A child event for a parent that was just deleted (pruning does that): nothing to do.
        Err(controller::Error::ObjectNotFound(object)) => {
            tracing::debug!(object = %object, "gone before its reconcile")
        }
        Err(err) => tracing::warn!("controller: {err}"),
    }
}

/// Runs the offline validator on `object`'s spec (the API server checked schema and CEL
/// already; the semantic rules, such as overlapping key ranges, only we can check). Returns
/// one line per problem.
fn validate<K>(ctx: &Context, object: &K) -> Result<Vec<String>, Error>
where
    K: Resource<DynamicType = ()> + serde::Serialize,
{
    let mut doc = serde_json::to_value(object).map_err(|source| Error::Encode {
        object: describe(object),
        source,
    })?;
    // Only what a user wrote is checked: server-set metadata and status are not theirs.
    if let Some(map) = doc.as_object_mut() {
        map.remove("status");
        let meta = object.meta();
        map.insert(
            "metadata".into(),
            serde_json::json!({"name": meta.name, "namespace": meta.namespace}),
        );
    }
    let checker = ctx.checker.lock().unwrap_or_else(|e| e.into_inner());
    Ok(checker
        .check(&doc)
        .unwrap_or_default()
        .into_iter()
        .map(|issue| format!("{}: {}", issue.path, issue.message))
        .collect())
}

/// `Kind/namespace/name`, for messages.
fn describe<K: Resource<DynamicType = ()>>(object: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&()),
        object.meta().namespace.as_deref().unwrap_or_default(),
        object.meta().name.as_deref().unwrap_or_default()
    )
}
