//! One parent's writes in one reconcile: its children applied server-side with the parent as
//! controller owner, data claims applied unowned, and what is ours but no longer wanted pruned
//! (labelled, owned by this parent's uid, not desired) with a `Pruned` Event per object. It
//! counts the requests it makes, so a reconcile can say what it cost.
//!
//! Only objects without data are pruned here: PVCs never, and tablets, shards, keyspaces and
//! cells go through their controllers' own guards (DESIGN §7) before [`apply::delete`].

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::sync::atomic::{AtomicUsize, Ordering};

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::apply::{self, Error};
use super::events::Events;

/// The writes of `owner`'s reconcile.
pub struct Applier<'a, P> {
    client: &'a Client,
    events: &'a Events,
    owner: &'a P,
    requests: AtomicUsize,
}

impl<'a, P: Resource<DynamicType = ()>> Applier<'a, P> {
    pub fn new(client: &'a Client, events: &'a Events, owner: &'a P) -> Self {
        Self {
            client,
            events,
            owner,
            requests: AtomicUsize::new(0),
        }
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
        let pruned = apply::prune::<K, P>(self.client, self.owner, selector, desired).await?;
        // One list, one delete per object pruned, one Event each.
        self.count(1 + 2 * pruned.len());
        self.events.pruned::<K, P>(self.owner, &pruned).await;
        Ok(pruned)
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
