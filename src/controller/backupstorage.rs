//! Reconciles a VitessBackupStorage: lists every shard's backups through vtctld `GetBackups`
//! (bounded, periodic; the operator holds no storage credentials) and keeps exactly one
//! VitessBackup per backup found, deleting the objects of backups that vanished. Deleting a
//! VitessBackup object never touches the data in storage.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::StreamExt;
use kube::api::{Api, ListParams};
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use super::condition::{self, Readiness};
use super::{Context, Error, POLL};
use crate::api::backupstorage::VitessBackupStorageStatus;
use crate::api::{VitessBackup, VitessBackupStorage, VitessShard};
use crate::domain::keyrange::KeyRange;
use crate::k8s::applier::Applier;
use crate::vitess::Vtctld;
use crate::{desired, domain::labels, k8s::apply};
use kube::core::PartialObjectMeta;

/// Backups listed per shard and call: the most recent ones.
pub const LIST_LIMIT: u32 = 100;

pub async fn run(ctx: Arc<Context>) {
    Controller::new(ctx.api::<VitessBackupStorage>(), watcher::Config::default())
        .owns(
            ctx.api::<PartialObjectMeta<VitessBackup>>(),
            watcher::Config::default().labels(labels::BACKUP_LOCATION),
        )
        .with_config(super::config())
        .trigger_backoff(super::backoff::WatchBackoff::default())
        .shutdown_on_signal()
        .run(reconcile, super::error_policy, ctx.clone())
        .for_each(|result| super::report(&ctx, result))
        .await;
}

/// The location vtctld reads backups from, as vtctld is built: the unnamed one, else the first
/// (see `desired::vtctld`).
fn vtctld_location(shards: &[VitessShard]) -> Option<String> {
    let locations = shards
        .iter()
        .find_map(|s| s.spec.backup_locations.clone())
        .unwrap_or_default();
    locations
        .iter()
        .find(|l| l.name.is_empty())
        .or(locations.first())
        .map(|l| l.name.clone())
}

#[tracing::instrument(skip_all, fields(storage = %storage.name_any()))]
async fn reconcile(storage: Arc<VitessBackupStorage>, ctx: Arc<Context>) -> Result<Action, Error> {
    let owner = storage.as_ref();
    let unchanged = owner.status.as_ref().map_or(0, |s| s.total_backup_count);
    let Some(cluster) = owner.labels().get(labels::CLUSTER).cloned() else {
        let why = format!("no {} label", labels::CLUSTER);
        let readiness = Readiness::new(false, "NotOwnedByCluster", why);
        report(&ctx, owner, readiness, unchanged).await?;
        return Ok(Action::await_change());
    };
    let vtctld = match ctx.vtctld(owner).await {
        Ok(vtctld) => vtctld,
        Err(why) => {
            let readiness = Readiness::new(false, "WaitingForVtctld", why.to_string());
            report(&ctx, owner, readiness, unchanged).await?;
            return Ok(Action::requeue(POLL));
        }
    };

    let shards = shards_of(&ctx, owner, &cluster).await?;
    if vtctld_location(&shards).is_some_and(|l| l != owner.spec.location.name) {
        // vtctld has the flags of one location only; listing another would list that one.
        let readiness = Readiness::new(
            false,
            "NotListed",
            "vtctld reads only the cluster's unnamed (or first) backup location; backups of this one are not listed",
        );
        report(&ctx, owner, readiness, 0).await?;
        return Ok(Action::requeue(ctx.backup_list_period));
    }

    let applier = Applier::new(&ctx.client, &ctx.events, owner).with_cache(&ctx.applied);
    let selector = apply::selector(&[(labels::CLUSTER, &cluster)], &[labels::BACKUP_LOCATION]);
    // What exists already, by name: one list gives the applies their current objects and the
    // prune what is there.
    let existing: BTreeMap<String, VitessBackup> =
        apply::children_full::<VitessBackup, _>(&ctx.client, owner, &selector)
            .await?
            .into_iter()
            .map(|b| (b.name_any(), b))
            .collect();
    let found = inventory(&ctx.client, &applier, &vtctld, &cluster, &shards, &existing).await?;
    // A shard that could not be listed keeps its objects: vanished means listed and absent.
    if found.failures.is_empty() {
        let listed = existing.into_values().map(|b| b.metadata).collect();
        applier
            .prune_listed::<VitessBackup>(listed, &found.desired)
            .await?;
    }
    let count = i32::try_from(found.desired.len()).unwrap_or(i32::MAX);
    report(&ctx, owner, found.readiness(count), count).await?;
    Ok(Action::requeue(ctx.backup_list_period))
}

/// Writes the storage's status (only when it changed): its Ready condition and count.
async fn report(
    ctx: &Context,
    owner: &VitessBackupStorage,
    readiness: Readiness,
    count: i32,
) -> Result<(), Error> {
    let generation = owner.meta().generation;
    let previous = owner.status.clone().unwrap_or_default();
    let status = VitessBackupStorageStatus {
        observed_generation: generation,
        total_backup_count: count,
        conditions: condition::with_ready(&previous.conditions, &readiness, generation),
    };
    apply::status(&ctx.client, owner, owner.status.as_ref(), &status).await?;
    Ok(())
}

/// The VitessShards of `cluster`, in the storage's namespace.
async fn shards_of(
    ctx: &Context,
    owner: &VitessBackupStorage,
    cluster: &str,
) -> Result<Vec<VitessShard>, Error> {
    let shards: Api<VitessShard> = ctx.api_in(owner);
    let selector = apply::selector(&[(labels::CLUSTER, cluster)], &[]);
    Ok(shards
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|source| Error::List {
            what: format!("VitessShards of cluster {cluster}"),
            source: Box::new(source),
        })?
        .items)
}

/// What listing the shards' backups found: the VitessBackups that should exist, the shards
/// that could not be listed (why), and how many were.
struct Inventory {
    desired: BTreeSet<String>,
    failures: Vec<String>,
    listed: usize,
}

impl Inventory {
    /// Ready when every shard was listed.
    fn readiness(&self, count: i32) -> Readiness {
        if self.failures.is_empty() {
            Readiness::new(
                true,
                "Listed",
                format!("{count} backups in {} shards", self.listed),
            )
        } else {
            Readiness::new(false, "ListFailed", self.failures.join("; "))
        }
    }
}

/// Lists every shard's backups through vtctld and keeps one VitessBackup per backup (applied
/// unless unchanged since this process applied it, its status written only when it differs),
/// so a steady inventory is read-only.
async fn inventory(
    client: &kube::Client,
    applier: &Applier<'_, VitessBackupStorage>,
    vtctld: &Vtctld,
    cluster: &str,
    shards: &[VitessShard],
    existing: &BTreeMap<String, VitessBackup>,
) -> Result<Inventory, Error> {
    let owner = applier.owner();
    let location = owner.spec.location.name.clone();
    let namespace = owner.meta().namespace.clone();
    let mut desired = BTreeSet::new();
    let mut failures = Vec::new();
    let mut listed = 0usize;
    for shard in shards {
        let Some(keyspace) = shard.labels().get(labels::KEYSPACE) else {
            continue;
        };
        let range = KeyRange {
            start: shard.spec.key_range.start.clone(),
            end: shard.spec.key_range.end.clone(),
        };
        let backups = match vtctld
            .backups(keyspace, &range.to_string(), LIST_LIMIT)
            .await
        {
            Ok(backups) => backups,
            Err(err) => {
                failures.push(err.to_string());
                continue;
            }
        };
        listed += 1;
        for info in &backups {
            let entry = desired::backup::inventory_entry(
                cluster, &namespace, &location, keyspace, &range, info,
            );
            let name = entry.backup.name_any();
            let have = existing
                .get(&name)
                .filter(|b| b.metadata.deletion_timestamp.is_none())
                .cloned();
            let current = applier.unless_unchanged(entry.backup, have).await?;
            let mut status = entry.status;
            status.observed_generation = current.meta().generation;
            apply::status(client, &current, current.status.as_ref(), &status).await?;
            desired.insert(name);
        }
    }
    Ok(Inventory {
        desired,
        failures,
        listed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::backupstorage::VitessBackupLocation;

    fn shard(locations: &[&str]) -> VitessShard {
        let mut shard = VitessShard::new("s", Default::default());
        shard.spec.backup_locations = Some(
            locations
                .iter()
                .map(|name| VitessBackupLocation {
                    name: name.to_string(),
                    ..VitessBackupLocation::default()
                })
                .collect(),
        );
        shard
    }

    #[test]
    fn vtctld_lists_the_unnamed_location_else_the_first() {
        assert_eq!(vtctld_location(&[]), None);
        assert_eq!(
            vtctld_location(&[shard(&["a", "", "b"])]).as_deref(),
            Some("")
        );
        assert_eq!(vtctld_location(&[shard(&["a", "b"])]).as_deref(), Some("a"));
    }
}

#[cfg(test)]
/// The reconcile against the stand-in API server and the fake vtctld.
mod reconcile_tests {
    use super::*;
    use crate::controller::testing::{self, requests, writes};
    use crate::vitess::BackupStatus;
    use vtctld_fake::FakeVtctld;

    #[tokio::test]
    async fn backups_are_listed_into_objects_then_steady_then_pruned_when_gone() {
        let vtctld = FakeVtctld::start(([127, 0, 0, 1], 0).into())
            .await
            .expect("fake vtctld");
        let address = vtctld.local_addr().to_string();
        let (ctx, server) = testing::context(Some(&address));
        let cluster = testing::cluster_in(include_str!("../../examples/scheduled-backups.yaml"));
        server.insert_object(&cluster);
        let children = desired::cluster::children(&cluster).expect("children");
        let storage = server.insert_object(&children.backup_storages[0]);
        let shard = desired::keyspace::shards(&children.keyspaces[0])
            .expect("shards")
            .remove(0);
        server.insert_object(&shard);
        let keyspace = &children.keyspaces[0].spec.template.name;
        let backup = "2026-01-02.030405.zone1-0000000100";
        vtctld.add_backup(keyspace, "-", backup, BackupStatus::Complete);

        reconcile(Arc::new(storage.clone()), ctx.clone())
            .await
            .expect("first reconcile");
        let first = server.take_calls();
        let object = "vitessbackups/example-commerce-x-x-20260102-030405-64-d2c06640";
        let (apply, status) = (format!("apply {object}"), format!("status {object}"));
        let own_status = "status vitessbackupstorages/example-90089e05";
        // The storage reads its cluster (vtctld's TLS settings), then lists.
        let cluster_read = "get vitessclusters/example";
        let lists = ["list vitessshards", "list vitessbackups"];
        assert_eq!(
            requests(&first),
            [
                cluster_read,
                lists[0],
                lists[1],
                &apply,
                &status,
                own_status
            ]
        );
        assert_eq!(
            writes(&first),
            [apply.as_str(), status.as_str(), own_status]
        );
        let storage = server.object_like(&storage).expect("still there");
        reconcile(Arc::new(storage.clone()), ctx.clone())
            .await
            .expect("second reconcile");
        let second = server.take_calls();
        // Steady: an inventory that did not change is only read.
        assert_eq!(requests(&second), [cluster_read, lists[0], lists[1]]);

        assert!(vtctld.remove_backup(keyspace, "-", backup));
        let storage = server.object_like(&storage).expect("still there");
        reconcile(Arc::new(storage), ctx.clone())
            .await
            .expect("third reconcile");
        let third = server.take_calls();
        let delete = format!("delete {object}");
        // The prune deletes from the list the inventory read: no second list.
        assert_eq!(
            requests(&third),
            [
                cluster_read,
                lists[0],
                lists[1],
                &delete,
                "create events",
                own_status
            ]
        );
        assert_eq!(
            writes(&third),
            [delete.as_str(), "create events", own_status]
        );
    }
}
