//! Reconciles an EtcdLockserver: three member Pods with their PVCs, the client and peer
//! Services and the disruption budget; available when every member is ready.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::ResourceExt;
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::watcher;

use super::condition::{self, Readiness};
use super::shard::pod_ready;
use super::{Context, Error, REQUEUE};
use crate::api::EtcdLockserver;
use crate::api::etcd::EtcdLockserverStatus;
use crate::{desired, domain::labels, k8s::apply};
use kube::core::PartialObjectMeta;

pub async fn run(ctx: Arc<Context>) {
    Controller::new(ctx.api::<EtcdLockserver>(), watcher::Config::default())
        .owns(ctx.api::<PartialObjectMeta<Pod>>(), super::children())
        .owns(ctx.api::<PartialObjectMeta<Service>>(), super::children())
        .owns(
            ctx.api::<PartialObjectMeta<PodDisruptionBudget>>(),
            super::children(),
        )
        .with_config(super::config())
        .shutdown_on_signal()
        .run(reconcile, super::error_policy, ctx.clone())
        .for_each(|result| super::report(&ctx, result))
        .await;
}

#[tracing::instrument(skip_all, fields(etcd = %lockserver.name_any()))]
async fn reconcile(lockserver: Arc<EtcdLockserver>, ctx: Arc<Context>) -> Result<Action, Error> {
    let client = &ctx.client;
    let owner = lockserver.as_ref();
    let objects = desired::etcd::build(owner)?;
    // Only the Services and the disruption budget are ever pruned (when their create* switch
    // went off); member pods and their PVCs hold the topology and are never deleted here.
    let desired_services: BTreeSet<String> = objects
        .peer_service
        .iter()
        .chain(&objects.client_service)
        .map(|s| s.name_any())
        .collect();
    let desired_pdbs: BTreeSet<String> = objects.pdb.iter().map(|p| p.name_any()).collect();
    if let Some(peer) = objects.peer_service {
        apply::owned(client, owner, peer).await?;
    }
    let client_service = match objects.client_service {
        Some(service) => Some(apply::owned(client, owner, service).await?.name_any()),
        None => None,
    };
    if let Some(pdb) = objects.pdb {
        apply::owned(client, owner, pdb).await?;
    }
    for claim in objects.pvcs {
        apply::claim(client, claim).await?;
    }
    let mut pods = Vec::with_capacity(objects.pods.len());
    for pod in objects.pods {
        pods.push(apply::owned(client, owner, pod).await?);
    }
    let name = owner.name_any();
    let selector = apply::selector(
        &[
            (labels::COMPONENT, labels::component::ETCD),
            (labels::ETCD_LOCKSERVER, &name),
        ],
        &[],
    );
    let pruned = apply::prune::<Service, _>(client, owner, &selector, &desired_services).await?;
    ctx.events.pruned::<Service, _>(owner, &pruned).await;
    let pruned =
        apply::prune::<PodDisruptionBudget, _>(client, owner, &selector, &desired_pdbs).await?;
    ctx.events
        .pruned::<PodDisruptionBudget, _>(owner, &pruned)
        .await;
    let status = status(owner, &pods, client_service);
    apply::status(client, owner, owner.status.as_ref(), &status).await?;
    Ok(Action::requeue(REQUEUE))
}

/// Available when every member this object runs is ready (etcd needs a quorum, but the
/// operator reports the full set, as the Go operator does).
fn status(
    lockserver: &EtcdLockserver,
    pods: &[Pod],
    client_service: Option<String>,
) -> EtcdLockserverStatus {
    let mut status = lockserver.status.clone().unwrap_or_default();
    status.observed_generation = lockserver.metadata.generation;
    let ready = pods.iter().filter(|p| pod_ready(p)).count();
    let available = !pods.is_empty() && ready == pods.len();
    status.available = condition::status_of(available);
    status.client_service_name = client_service;
    let readiness = if available {
        Readiness::new(
            true,
            "MembersReady",
            format!("{ready}/{} members ready", pods.len()),
        )
    } else {
        Readiness::new(
            false,
            "MembersNotReady",
            format!("{ready}/{} members ready", pods.len()),
        )
    };
    status.conditions = condition::with_ready(
        &status.conditions,
        &readiness,
        lockserver.metadata.generation,
    );
    status
}
