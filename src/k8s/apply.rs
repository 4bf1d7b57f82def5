//! Server-side apply of the objects the builders make, under one field manager, and of status.
//!
//! Why one file: apply, list, prune and status writes share the same owner and uid checks, and
//! they are read together; the prune guards' tests (against `k8s::mock`) are in `apply/tests.rs`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Debug;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::ObjectMeta;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, Preconditions, PropagationPolicy,
};
use kube::core::PartialObjectMeta;
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The one field manager of every write the operator makes, so that it owns exactly what it
/// applies and a later apply without a field removes that field.
pub const FIELD_MANAGER: &str = "vitess-operator";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{kind} has no metadata.name")]
    MissingName { kind: String },
    #[error("{kind}/{name} has no uid yet, so it cannot own children")]
    NoOwnerUid { kind: String, name: String },
    #[error("{kind}/{name} has no namespace")]
    MissingNamespace { kind: String, name: String },
    /// `object` is `Kind namespace/name`; the source is boxed to keep `Result`s small.
    #[error("cannot apply {object}: {source}")]
    Apply {
        object: String,
        source: Box<kube::Error>,
    },
    #[error("cannot list the {kind} children of {owner} (selector {selector}): {source}")]
    List {
        kind: String,
        owner: String,
        selector: String,
        source: Box<kube::Error>,
    },
    #[error("cannot read {object}: {source}")]
    Get {
        object: String,
        source: Box<kube::Error>,
    },
    #[error("cannot delete {object}, which is no longer desired: {source}")]
    Delete {
        object: String,
        source: Box<kube::Error>,
    },
    #[error("cannot annotate {object}: {source}")]
    Annotate {
        object: String,
        source: Box<kube::Error>,
    },
    #[error("cannot write the status of {object}: {source}")]
    Status {
        object: String,
        source: Box<kube::Error>,
    },
}

/// The field manager of a value the operator sets once and then leaves to someone else: a
/// cell's first vtgate count, which its HPA then keeps. The main manager never applies it, so
/// its applies neither remove nor reset what the HPA set.
pub const INITIAL_FIELD_MANAGER: &str = "vitess-operator-initial";

/// Applies `fields` (a partial object: apiVersion, kind, metadata.name and the fields to set)
/// to `object` under [`INITIAL_FIELD_MANAGER`]; returns the object as the server now has it.
pub async fn initial<K>(client: &Client, object: &K, fields: serde_json::Value) -> Result<K, Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    apply_as(
        client,
        object,
        &PatchParams::apply(INITIAL_FIELD_MANAGER),
        &fields,
    )
    .await
}

/// Applies `child` with a controller owner reference to `owner`, and returns the object as the
/// API server now has it (status included, which the controllers read instead of a second GET).
pub async fn owned<K, P>(client: &Client, owner: &P, mut child: K) -> Result<K, Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
    P: Resource<DynamicType = ()>,
{
    child.meta_mut().owner_references = Some(vec![controller_ref(owner)?]);
    server_side_apply(client, &child).await
}

/// A controller owner reference to `owner`, which must have a uid (it was read or applied).
fn controller_ref<P: Resource<DynamicType = ()>>(owner: &P) -> Result<OwnerReference, Error> {
    owner
        .controller_owner_ref(&())
        .ok_or_else(|| Error::NoOwnerUid {
            kind: P::kind(&()).into_owned(),
            name: owner.name_any(),
        })
}

/// Applies `child` with `owner` as an owner that is not its controller: garbage collection
/// deletes it once every owner is gone, and a controller another writer set (the Go operator's,
/// before a takeover) stays valid beside it. For files a workload's pods mount (vtadmin's
/// Secrets, owned by their Deployment): they go with it, and no list of them is ever needed.
pub async fn dependent<K, P>(client: &Client, owner: &P, mut child: K) -> Result<K, Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
    P: Resource<DynamicType = ()>,
{
    let mut owner_ref = controller_ref(owner)?;
    owner_ref.controller = None;
    owner_ref.block_owner_deletion = None;
    child.meta_mut().owner_references = Some(vec![owner_ref]);
    server_side_apply(client, &child).await
}

/// What this process last applied to each child, so that a child whose desired state did not
/// change is not applied again. Server-side apply of an unchanged object writes nothing, but
/// it is still a request: a keyspace of 256 shards re-applying every shard on each of its
/// reconciles costs thousands of them.
#[derive(Debug, Default)]
pub struct Applied {
    records: Mutex<HashMap<String, Record>>,
}

/// One apply: a digest of the body sent, and the object's uid and generation in the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    digest: u64,
    uid: Option<String>,
    generation: Option<i64>,
}

impl Applied {
    /// [`owned`], unless this process applied the very same body last time and `current` (the
    /// server's object, from a list) is still what that apply left: same uid and generation,
    /// so nobody re-created it or changed its spec since. Then `current` is returned as is.
    /// Only for kinds whose generation moves with every spec change (custom resources).
    pub async fn owned<K, P>(
        &self,
        client: &Client,
        owner: &P,
        child: K,
        current: Option<K>,
    ) -> Result<K, Error>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + Clone
            + Debug
            + Serialize
            + DeserializeOwned,
        P: Resource<DynamicType = ()>,
    {
        if let Some(current) = current
            && self.unchanged(owner, &child, &current)
        {
            return Ok(current);
        }
        let applied = owned(client, owner, child.clone()).await?;
        self.remember(owner, &child, &applied);
        Ok(applied)
    }

    /// Whether this process applied the very body of `child` last time and `current` (the
    /// server's object) is still what that apply left: same uid and generation.
    pub fn unchanged<K, P>(&self, owner: &P, child: &K, current: &K) -> bool
    where
        K: Resource<DynamicType = ()> + Serialize,
        P: Resource<DynamicType = ()>,
    {
        let now = Record {
            digest: digest(child, owner.meta().uid.as_deref()),
            uid: current.meta().uid.clone(),
            generation: current.meta().generation,
        };
        self.lock().get(&Self::key(child)) == Some(&now)
    }

    /// Remembers that `child` was applied and the server answered `applied`.
    pub fn remember<K, P>(&self, owner: &P, child: &K, applied: &K)
    where
        K: Resource<DynamicType = ()> + Serialize,
        P: Resource<DynamicType = ()>,
    {
        let record = Record {
            digest: digest(child, owner.meta().uid.as_deref()),
            uid: applied.meta().uid.clone(),
            generation: applied.meta().generation,
        };
        self.lock().insert(Self::key(child), record);
    }

    /// Drops what is remembered of a child that was deleted.
    pub fn forget<K: Resource<DynamicType = ()>>(&self, meta: &ObjectMeta) {
        let key = format!(
            "{} {}/{}",
            K::kind(&()),
            meta.namespace.as_deref().unwrap_or_default(),
            meta.name.as_deref().unwrap_or_default()
        );
        self.lock().remove(&key);
    }

    fn key<K: Resource<DynamicType = ()>>(child: &K) -> String {
        let meta = child.meta();
        format!(
            "{} {}/{}",
            K::kind(&()),
            meta.namespace.as_deref().unwrap_or_default(),
            meta.name.as_deref().unwrap_or_default()
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Record>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A digest of the body an apply of `child` owned by `owner_uid` sends (JSON of our types is
/// deterministic: maps are ordered).
fn digest<K: Serialize>(child: &K, owner_uid: Option<&str>) -> u64 {
    let mut hasher = DefaultHasher::new();
    serde_json::to_vec(child)
        .unwrap_or_default()
        .hash(&mut hasher);
    owner_uid.hash(&mut hasher);
    hasher.finish()
}

/// Applies a data volume claim without any owner reference: garbage collection must never
/// delete data because its tablet or etcd member went away (DESIGN §7).
pub async fn claim(
    client: &Client,
    mut claim: PersistentVolumeClaim,
) -> Result<PersistentVolumeClaim, Error> {
    claim.metadata.owner_references = None;
    server_side_apply(client, &claim).await
}

/// Forced server-side apply. An apply that changes nothing is not a write on the server (the
/// resourceVersion stays), so applying on every reconcile keeps a steady cluster write-free.
async fn server_side_apply<K>(client: &Client, object: &K) -> Result<K, Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    apply_as(
        client,
        object,
        &PatchParams::apply(FIELD_MANAGER).force(),
        object,
    )
    .await
}

/// Whether the operator's field manager has server-side applied to the object: false for an
/// object another writer made (the Go operator writes with updates, not applies) that this
/// operator has not taken over yet.
pub fn applied_by_us(meta: &ObjectMeta) -> bool {
    meta.managed_fields.iter().flatten().any(|entry| {
        entry.manager.as_deref() == Some(FIELD_MANAGER)
            && entry.operation.as_deref() == Some("Apply")
    })
}

/// Takes `object` over without changing its spec: one annotation applied under the operator's
/// field manager (the object's uid in the body, so a re-created namesake is not touched), which
/// makes [`applied_by_us`] true from then on. Returns the object as the server now has it.
pub async fn adopt<K>(client: &Client, object: &K, key: &str, value: &str) -> Result<K, Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned,
{
    let (namespace, name) = locate(object)?;
    let body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": object.meta().uid,
            "annotations": {key: value},
        },
    });
    apply_as(
        client,
        object,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &body,
    )
    .await
}

/// Server-side apply of `body` to where `object` lives (its namespace and name), with `params`
/// (the field manager, forced or not); returns the object as the server now has it.
async fn apply_as<K, B>(
    client: &Client,
    object: &K,
    params: &PatchParams,
    body: &B,
) -> Result<K, Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned,
    B: Serialize + Debug,
{
    let (namespace, name) = locate(object)?;
    let api: Api<K> = Api::namespaced(client.clone(), &namespace);
    api.patch(&name, params, &Patch::Apply(body))
        .await
        .map_err(|source| Error::Apply {
            object: format!("{} {namespace}/{name}", K::kind(&())),
            source: Box::new(source),
        })
}

/// The objects of kind `K` in `owner`'s namespace that match `selector` (labels that say they
/// are the operator's) AND whose controller owner reference is `owner` by uid. Both checks:
/// labels alone could match an object someone else made or another parent owns, and an owner
/// reference alone could match objects of another component (DESIGN §3: never adopt or delete
/// what belongs to something else). Metadata only: deciding what to prune needs no specs.
/// Objects already being deleted are left out, so they are neither deleted twice nor reported.
pub async fn children<K, P>(
    client: &Client,
    owner: &P,
    selector: &str,
) -> Result<Vec<PartialObjectMeta<K>>, Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned,
    P: Resource<DynamicType = ()>,
{
    let owner = Owner::of(owner)?;
    let api: Api<K> = Api::namespaced(client.clone(), &owner.namespace);
    let list = api
        .list_metadata(&ListParams::default().labels(selector))
        .await
        .map_err(|source| owner.list_error::<K>(selector, source))?;
    Ok(list
        .items
        .into_iter()
        .filter(|child| child.metadata.deletion_timestamp.is_none())
        .filter(|child| controlled_by(&child.metadata, &owner.uid))
        .collect())
}

/// The parent whose children are listed: where they live, its uid, and how errors name it.
struct Owner {
    namespace: String,
    uid: String,
    describe: String,
}

impl Owner {
    fn of<P: Resource<DynamicType = ()>>(owner: &P) -> Result<Self, Error> {
        let (namespace, name) = locate(owner)?;
        let uid = owner.meta().uid.clone().ok_or_else(|| Error::NoOwnerUid {
            kind: P::kind(&()).into_owned(),
            name: name.clone(),
        })?;
        let describe = format!("{} {namespace}/{name}", P::kind(&()));
        Ok(Self {
            namespace,
            uid,
            describe,
        })
    }

    fn list_error<K: Resource<DynamicType = ()>>(
        &self,
        selector: &str,
        source: kube::Error,
    ) -> Error {
        Error::List {
            kind: K::kind(&()).into_owned(),
            owner: self.describe.clone(),
            selector: selector.to_string(),
            source: Box::new(source),
        }
    }
}

/// Like [`children`], but whole objects (the shard reads its pods' status and annotations
/// from one list instead of one request per pod), and including those being deleted: a pod
/// that is going away must not be created again until it is gone.
pub async fn children_full<K, P>(
    client: &Client,
    owner: &P,
    selector: &str,
) -> Result<Vec<K>, Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned,
    P: Resource<DynamicType = ()>,
{
    let owner = Owner::of(owner)?;
    Ok(
        labelled::<K>(client, &owner.namespace, selector, &owner.describe)
            .await?
            .into_iter()
            .filter(|child| controlled_by(child.meta(), &owner.uid))
            .collect(),
    )
}

/// Whole objects of kind `K` in `namespace` that match `selector`, whoever owns them (for
/// reading only: PVCs have no owner). `owner` names the object asking, for errors.
pub async fn labelled<K>(
    client: &Client,
    namespace: &str,
    selector: &str,
    owner: &str,
) -> Result<Vec<K>, Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let list = api
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(|source| Error::List {
            kind: K::kind(&()).into_owned(),
            owner: owner.to_string(),
            selector: selector.to_string(),
            source: Box::new(source),
        })?;
    Ok(list.items)
}

/// Whether the object `meta` describes has the object of `uid` as its controller.
pub fn controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    meta.owner_references
        .iter()
        .flatten()
        .any(|r| r.controller == Some(true) && r.uid == uid)
}

/// Deletes `child`, but only the very object that was listed (uid precondition): a child
/// deleted and re-created under the same name between list and delete is not ours to judge.
/// Dependents go in the background through the garbage collector; PVCs have no owner, so
/// they stay (DESIGN §7). An object already gone is not an error. Returns whether this call
/// deleted it (false: gone already or re-created), for the `Pruned` Events.
pub async fn delete<K>(client: &Client, child: &PartialObjectMeta<K>) -> Result<bool, Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned,
{
    delete_meta::<K>(client, &child.metadata).await
}

/// [`delete`] of the object of kind `K` that `meta` describes (for callers holding whole
/// objects rather than metadata).
pub async fn delete_meta<K>(client: &Client, meta: &ObjectMeta) -> Result<bool, Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned,
{
    let (namespace, name) = locate_meta::<K>(meta)?;
    let api: Api<K> = Api::namespaced(client.clone(), &namespace);
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        preconditions: Some(Preconditions {
            uid: meta.uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    tracing::info!(object = %format!("{} {namespace}/{name}", K::kind(&())), "pruning");
    match api.delete(&name, &params).await {
        Ok(_) => Ok(true),
        // Gone already, or re-created (precondition failed): nothing of ours to delete.
        Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => Ok(false),
        Err(source) => Err(Error::Delete {
            object: format!("{} {namespace}/{name}", K::kind(&())),
            source: Box::new(source),
        }),
    }
}

/// Sets and removes annotations of the object of kind `K` that `meta` describes, with a JSON
/// merge patch guarded by its uid: annotations that other parties also write (the drain
/// protocol) must not be owned by our server-side apply field manager, or a later apply
/// without them would take them away.
pub async fn annotate<K>(
    client: &Client,
    meta: &ObjectMeta,
    set: &BTreeMap<String, String>,
    remove: &[String],
) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned,
{
    let (namespace, name) = locate_meta::<K>(meta)?;
    let mut annotations = serde_json::Map::new();
    for (key, value) in set {
        annotations.insert(key.clone(), serde_json::Value::String(value.clone()));
    }
    for key in remove {
        annotations.insert(key.clone(), serde_json::Value::Null);
    }
    let patch = serde_json::json!({
        "metadata": {"uid": meta.uid, "annotations": annotations}
    });
    let api: Api<K> = Api::namespaced(client.clone(), &namespace);
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
        .map_err(|source| Error::Annotate {
            object: format!("{} {namespace}/{name}", K::kind(&())),
            source: Box::new(source),
        })
}

/// Deletes the children of kind `K` that `owner` controls and `selector` matches (see
/// [`children`]) whose names are not in `desired`; returns the names deleted. For objects
/// without data only: callers never prune PVCs, and guard tablets, shards, keyspaces and
/// cells themselves before calling [`delete`].
pub async fn prune<K, P>(
    client: &Client,
    owner: &P,
    selector: &str,
    desired: &BTreeSet<String>,
) -> Result<Vec<String>, Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned,
    P: Resource<DynamicType = ()>,
{
    let mut deleted = Vec::new();
    for child in children::<K, P>(client, owner, selector).await? {
        let name = child.name_any();
        if !desired.contains(&name) && delete(client, &child).await? {
            deleted.push(name);
        }
    }
    Ok(deleted)
}

/// A label selector from `key=value` pairs and bare `key`s (the label must exist).
pub fn selector(equal: &[(&str, &str)], exists: &[&str]) -> String {
    equal
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .chain(exists.iter().map(|k| k.to_string()))
        .collect::<Vec<_>>()
        .join(",")
}

/// The body of a status apply: only what identifies the object, and the status. Sending the
/// spec too would make the operator co-own fields people write.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusBody<'a, S> {
    api_version: &'a str,
    kind: &'a str,
    status: &'a S,
}

/// Writes `status` on `object` through the status subresource, unless it is what the object
/// already reports: a steady cluster costs no status writes.
pub async fn status<K, S>(
    client: &Client,
    object: &K,
    current: Option<&S>,
    status: &S,
) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned,
    S: Serialize + PartialEq + Debug,
{
    if current == Some(status) {
        return Ok(());
    }
    let (namespace, name) = locate(object)?;
    let api: Api<K> = Api::namespaced(client.clone(), &namespace);
    let body = StatusBody {
        api_version: &K::api_version(&()),
        kind: &K::kind(&()),
        status,
    };
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch_status(&name, &params, &Patch::Apply(&body))
        .await
        .map(|_| ())
        .map_err(|source| Error::Status {
            object: format!("{} {namespace}/{name}", K::kind(&())),
            source: Box::new(source),
        })
}

fn locate<K: Resource<DynamicType = ()>>(object: &K) -> Result<(String, String), Error> {
    locate_meta::<K>(object.meta())
}

fn locate_meta<K: Resource<DynamicType = ()>>(
    meta: &ObjectMeta,
) -> Result<(String, String), Error> {
    let kind = K::kind(&()).into_owned();
    let name = meta
        .name
        .clone()
        .ok_or_else(|| Error::MissingName { kind: kind.clone() })?;
    let namespace = meta.namespace.clone().ok_or(Error::MissingNamespace {
        kind,
        name: name.clone(),
    })?;
    Ok((namespace, name))
}

#[cfg(test)]
mod tests;
