//! One parent's writes in one reconcile: its children applied server-side with the parent as
//! controller owner (skipped when unchanged since this process applied them, given a cache),
//! data claims applied unowned, and what is ours but no longer wanted pruned (labelled, owned
//! by this parent's uid, not desired; listed here or by the caller) with a `Pruned` Event per
//! object. It counts the requests it makes, so a reconcile can say what it cost.
//!
//! Only objects without data are pruned here: PVCs never, and tablets, shards, keyspaces and
//! cells go through their controllers' own guards (DESIGN §7) before [`apply::delete`].

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::sync::atomic::{AtomicUsize, Ordering};

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::ObjectMeta;
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::apply::{self, Applied, Error};
use super::events::Events;

/// The writes of `owner`'s reconcile.
pub struct Applier<'a, P> {
    client: &'a Client,
    events: &'a Events,
    owner: &'a P,
    /// What this process applied before, for [`Applier::unless_unchanged`].
    cache: Option<&'a Applied>,
    requests: AtomicUsize,
}

impl<'a, P: Resource<DynamicType = ()>> Applier<'a, P> {
    pub fn new(client: &'a Client, events: &'a Events, owner: &'a P) -> Self {
        Self {
            client,
            events,
            owner,
            cache: None,
            requests: AtomicUsize::new(0),
        }
    }

    /// Remembers applies in `applied` (one per process), so that [`Applier::unless_unchanged`]
    /// can skip what is unchanged.
    pub fn with_cache(mut self, applied: &'a Applied) -> Self {
        self.cache = Some(applied);
        self
    }

    /// [`Applier::owned`], unless this process applied the very same body last time and
    /// `current` (the server's object, from a list) is still what that apply left (same uid
    /// and generation): then `current` is returned as is, at no request. The one
    /// skip-unchanged strategy, for children that are listed anyway (custom resources, whose
    /// generation moves with every spec change). Without a cache it always applies.
    pub async fn unless_unchanged<K>(&self, child: K, current: Option<K>) -> Result<K, Error>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + Clone
            + Debug
            + Serialize
            + DeserializeOwned,
    {
        let Some(cache) = self.cache else {
            return self.owned(child).await;
        };
        if let Some(current) = current
            && cache.unchanged(self.owner, &child, &current)
        {
            return Ok(current);
        }
        let applied = self.owned(child.clone()).await?;
        cache.remember(self.owner, &child, &applied);
        Ok(applied)
    }

    /// Applies `child` owned by the parent; returns it as the server now has it.
    pub async fn owned<K>(&self, child: K) -> Result<K, Error>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + Clone
            + Debug
            + Serialize
            + DeserializeOwned,
    {
        self.count(1);
        apply::owned(self.client, self.owner, child).await
    }

    /// [`Applier::owned`] of each of `children`, in order.
    pub async fn all<K>(&self, children: impl IntoIterator<Item = K>) -> Result<Vec<K>, Error>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + Clone
            + Debug
            + Serialize
            + DeserializeOwned,
    {
        let mut applied = Vec::new();
        for child in children {
            applied.push(self.owned(child).await?);
        }
        Ok(applied)
    }

    /// Sets `fields` of `object` once, under the field manager of values the operator leaves
    /// to others afterwards ([`apply::initial`]).
    pub async fn initial<K>(&self, object: &K, fields: serde_json::Value) -> Result<K, Error>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + Clone
            + Debug
            + Serialize
            + DeserializeOwned,
    {
        self.count(1);
        apply::initial(self.client, object, fields).await
    }

    /// Applies a data claim with no owner, so that garbage collection never deletes data.
    pub async fn claim(
        &self,
        claim: PersistentVolumeClaim,
    ) -> Result<PersistentVolumeClaim, Error> {
        self.count(1);
        apply::claim(self.client, claim).await
    }

    /// Deletes the parent's children of kind `K` that `selector` matches and `desired` does not
    /// name, and publishes a `Pruned` Event for each; returns their names.
    pub async fn prune<K>(
        &self,
        selector: &str,
        desired: &BTreeSet<String>,
    ) -> Result<Vec<String>, Error>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + Clone
            + Debug
            + DeserializeOwned,
    {
        let listed = apply::children::<K, P>(self.client, self.owner, selector).await?;
        self.count(1);
        let listed = listed.into_iter().map(|c| c.metadata).collect();
        self.prune_listed::<K>(listed, desired).await
    }

    /// [`Applier::prune`] of objects of kind `K` the caller listed already (to save a second
    /// list): those `desired` does not name, controlled by the parent (uid) and not already
    /// being deleted, are deleted, with a `Pruned` Event each; returns their names.
    pub async fn prune_listed<K>(
        &self,
        listed: Vec<ObjectMeta>,
        desired: &BTreeSet<String>,
    ) -> Result<Vec<String>, Error>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + Clone
            + Debug
            + DeserializeOwned,
    {
        let uid = self.owner.meta().uid.clone().unwrap_or_default();
        let mut pruned = Vec::new();
        for meta in listed {
            let name = meta.name.clone().unwrap_or_default();
            let ours = meta.deletion_timestamp.is_none() && apply::controlled_by(&meta, &uid);
            if !ours || desired.contains(&name) {
                continue;
            }
            if apply::delete_meta::<K>(self.client, &meta).await? {
                if let Some(cache) = self.cache {
                    cache.forget::<K>(&meta);
                }
                pruned.push(name);
            }
        }
        // One delete per object pruned, one Event each.
        self.count(2 * pruned.len());
        self.events.pruned::<K, P>(self.owner, &pruned).await;
        Ok(pruned)
    }

    /// The client the writes go through (for the reads a caller makes around them).
    pub fn client(&self) -> &'a Client {
        self.client
    }

    /// Where the parent's Events go.
    pub fn events(&self) -> &'a Events {
        self.events
    }

    /// The parent whose children these are.
    pub fn owner(&self) -> &'a P {
        self.owner
    }

    /// The API requests made so far: one per apply, one list per prune, and a delete and an
    /// Event per object pruned (a delete that found the object gone is not counted).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    fn count(&self, n: usize) {
        self.requests.fetch_add(n, Ordering::Relaxed);
    }
}
