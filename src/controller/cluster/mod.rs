//! Reconciles a VitessCluster: its child custom resources (lockserver, cells, keyspaces,
//! backup storages), vtctld, the cluster-wide Services and the VitessBackupSchedules;
//! registers its topology in Vitess; rolls up the children's readiness.
//!
//! The pipeline of DESIGN §4, one step per module: `invalid` (a spec only we can reject),
//! the build (`desired::bundle`), `children` (apply the bundle, prune what it no longer
//! names), `register` (the topology in Vitess), `turndown` (the guarded prunes of
//! keyspaces and cells), `status` (roll-ups, conditions, Events).

mod children;
mod invalid;
mod register;
mod status;
#[cfg(test)]
mod tests;
mod turndown;

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;
use kube::core::PartialObjectMeta;
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::watcher;

use super::{Context, Error, REQUEUE, TOPOLOGY_RETRY};
use crate::api::{
    EtcdLockserver, VitessBackupSchedule, VitessBackupStorage, VitessCell, VitessCluster,
    VitessKeyspace,
};
use crate::desired;
use crate::k8s::applier::Applier;

/// Whether vtctld knows what the spec says (cells, cells alias, keyspaces).
pub const TOPOLOGY_REGISTERED: &str = "TopologyRegistered";
/// Whether every field the spec sets is acted on (False lists those that are not, as
/// `vitess-operator validate` warns about them).
pub const FIELDS_ACTED_ON: &str = "FieldsActedOn";

pub async fn run(ctx: Arc<Context>) {
    let controller = Controller::new(ctx.api::<VitessCluster>(), watcher::Config::default());
    // Its watch of VitessClusters is the cache the other controllers read them from.
    ctx.share_clusters(controller.store());
    controller
        .owns(ctx.api::<VitessCell>(), watcher::Config::default())
        .owns(ctx.api::<VitessKeyspace>(), watcher::Config::default())
        .owns(ctx.api::<EtcdLockserver>(), watcher::Config::default())
        .owns(ctx.api::<VitessBackupStorage>(), watcher::Config::default())
        .owns(
            ctx.api::<PartialObjectMeta<Deployment>>(),
            super::children(),
        )
        .owns(ctx.api::<PartialObjectMeta<Service>>(), super::children())
        // A schedule's status changes on every run, which wakes the cluster for nothing; the
        // watch is still worth it: a schedule deleted or edited by hand is put back at once
        // rather than at the next periodic requeue, and a steady reconcile writes nothing.
        .owns(
            ctx.api::<PartialObjectMeta<VitessBackupSchedule>>(),
            watcher::Config::default(),
        )
        .with_config(super::config())
        .trigger_backoff(super::backoff::WatchBackoff::default())
        .shutdown_on_signal()
        .run(reconcile, super::error_policy, ctx.clone())
        .for_each(|result| super::report(&ctx, result))
        .await;
}

#[tracing::instrument(skip_all, fields(cluster = %cluster.name_any()))]
async fn reconcile(cluster: Arc<VitessCluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    let owner = cluster.as_ref();
    let problems = super::validate(&ctx, owner)?;
    if !problems.is_empty() {
        // Bad input changes nothing that runs (DESIGN §7); it is reported and waits for an edit.
        invalid::report(&ctx, owner, &problems).await?;
        return Ok(Action::await_change());
    }
    let bundle = desired::bundle::cluster(owner)?;
    let wanted = children::Wanted::of(&bundle);
    let applier = Applier::new(&ctx.client, &ctx.events, owner);
    let observed = children::apply(&applier, owner, bundle).await?;
    let (registered, vtctld) = register::register(&ctx, owner).await;
    children::prune(&applier, owner, &wanted).await?;
    let kept = turndown::prune_keyspaces(&ctx, owner, &wanted.keyspaces, vtctld.as_ref()).await?;
    let in_use = turndown::cells_in_use(owner, &kept.kept);
    let orphaned_cells =
        turndown::prune_cells(&ctx, owner, &wanted.cells, &in_use, vtctld.as_ref()).await?;
    let orphans = status::Orphans {
        keyspaces: kept.orphans,
        cells: orphaned_cells,
    };
    status::report(&ctx, owner, &observed, orphans, &registered).await?;
    tracing::debug!(requests = applier.requests(), "applied");
    Ok(Action::requeue(if registered.is_ok() {
        REQUEUE
    } else {
        TOPOLOGY_RETRY
    }))
}
