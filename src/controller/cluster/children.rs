//! The cluster's apply step: its bundle applied in order (the lockserver, cells, keyspaces and
//! backup storages, then vtctld, the cluster-wide Services and the VitessBackupSchedules), and
//! the plain children it no longer names pruned. Keyspaces and cells are pruned behind their
//! guards ([`super::turndown`]); an EtcdLockserver never is.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::Service;
use kube::{Resource, ResourceExt};

use super::status::Observed;
use crate::api::{VitessBackupSchedule, VitessBackupStorage, VitessCell, VitessCluster};
use crate::controller::Error;
use crate::controller::drain::Rollout;
use crate::desired::bundle::ClusterBundle;
use crate::desired::cluster::ClusterChildren;
use crate::desired::vtadmin::VtadminObjects;
use crate::desired::vtctld::VtctldObjects;
use crate::desired::{defaults, vtgate};
use crate::domain::labels;
use crate::k8s::applier::Applier;
use crate::k8s::apply;

/// The names of what the bundle wants, per kind, for the prunes.
pub(super) struct Wanted {
    pub(super) cells: BTreeSet<String>,
    pub(super) keyspaces: BTreeSet<String>,
    storages: BTreeSet<String>,
    services: BTreeSet<String>,
    schedules: BTreeSet<String>,
}

fn names<'a, K: kube::Resource + 'a>(objects: impl IntoIterator<Item = &'a K>) -> BTreeSet<String> {
    objects.into_iter().map(|o| o.name_any()).collect()
}

impl Wanted {
    pub(super) fn of(bundle: &ClusterBundle) -> Self {
        let ClusterBundle {
            children:
                ClusterChildren {
                    etcd: _,
                    cells,
                    keyspaces,
                    backup_storages,
                },
            // Pruned as they are applied, from their one list (`adopt::deployments`).
            vtctld:
                VtctldObjects {
                    deployments: _,
                    service: vtctld_service,
                },
            gateway_service,
            tablet_service,
            schedules,
            // Its Deployments are pruned as they are applied, their Secrets with them.
            vtadmin:
                VtadminObjects {
                    cells: _,
                    service: vtadmin_service,
                },
        } = bundle;
        Self {
            cells: names(cells),
            keyspaces: names(keyspaces),
            storages: names(backup_storages),
            services: names(
                [vtctld_service, gateway_service, tablet_service]
                    .into_iter()
                    .chain(vtadmin_service),
            ),
            schedules: names(schedules),
        }
    }
}

/// Applies every object of `bundle`, taken apart without `..`: a field nobody applies does
/// not compile. Returns what the status is computed from.
pub(super) async fn apply(
    applier: &Applier<'_, VitessCluster>,
    cluster: &VitessCluster,
    bundle: ClusterBundle,
) -> Result<Observed, Error> {
    let ClusterBundle {
        children:
            ClusterChildren {
                etcd,
                cells,
                keyspaces,
                backup_storages,
            },
        vtctld:
            VtctldObjects {
                deployments,
                service: vtctld_service,
            },
        gateway_service,
        tablet_service,
        schedules,
        vtadmin,
    } = bundle;
    // An EtcdLockserver is never pruned, even when the spec switched to an external
    // lockserver: it holds the topology, which only a person may decide to drop (DESIGN §7).
    let etcd = applier.all(etcd).await?.pop();
    let cells = first_gateway_counts(applier, cluster, applier.all(cells).await?).await?;
    let keyspaces = applier.all(keyspaces).await?;
    applier.all(backup_storages).await?;
    let vtctld_service = applier.owned(vtctld_service).await?.name_any();
    // One full list of the vtctld Deployments: one another writer made keeps its pods when it
    // already runs ours (`adopt`), and the list serves the prune.
    // Under `External`, a changed template waits for a release on the Deployment (`hold`).
    let rollout = Rollout::of(cluster.spec.update_strategy.as_ref());
    let selector = vtctld_selector(cluster);
    let vtctlds =
        crate::controller::adopt::deployments(applier, &selector, deployments, rollout, false)
            .await?;
    let gateway_service = applier.owned(gateway_service).await?.name_any();
    applier.owned(tablet_service).await?;
    applier.all(schedules).await?;
    let vtadmins = apply_vtadmin(applier, cluster, rollout, vtadmin).await?;
    Ok(Observed {
        etcd,
        cells,
        keyspaces,
        vtctlds,
        vtctld_service,
        gateway_service,
        vtadmins,
    })
}

/// vtadmin: its Service, then each cell's Deployment (held under `External` as vtctld's)
/// and, owned by it so that they go with it, the Secrets its pods mount (their volumes wait
/// for them the moment between). Returns the Deployments.
async fn apply_vtadmin(
    applier: &Applier<'_, VitessCluster>,
    cluster: &VitessCluster,
    rollout: Rollout,
    vtadmin: VtadminObjects,
) -> Result<Vec<Deployment>, Error> {
    let VtadminObjects { cells, service } = vtadmin;
    if let Some(service) = service {
        applier.owned(service).await?;
    }
    let (deployments, secrets): (Vec<_>, Vec<_>) = cells.into_iter().unzip();
    let selector =
        crate::controller::selector(cluster, labels::component::VTADMIN, &[labels::CLUSTER]);
    let applied =
        crate::controller::adopt::deployments(applier, &selector, deployments, rollout, false)
            .await?;
    for (deployment, secrets) in applied.iter().zip(secrets) {
        for secret in secrets {
            apply::dependent(applier.client(), deployment, secret).await?;
        }
    }
    Ok(applied)
}

/// An autoscaled cell's VitessCell is applied without `gateway.replicas`, which its HPA keeps
/// through the scale subresource; a new one (or one whose count nobody set) gets the first
/// count here, once, under its own field manager. An HPA that finds no count does not scale.
async fn first_gateway_counts(
    applier: &Applier<'_, VitessCluster>,
    cluster: &VitessCluster,
    cells: Vec<VitessCell>,
) -> Result<Vec<VitessCell>, Error> {
    let mut out = Vec::with_capacity(cells.len());
    for cell in cells {
        let gateway = cell.spec.template.gateway.as_ref();
        if gateway.is_none_or(|g| g.autoscaler.is_none() || g.replicas.is_some()) {
            out.push(cell);
            continue;
        }
        let wanted = cluster
            .spec
            .cells
            .iter()
            .find(|c| c.name == cell.spec.template.name)
            .and_then(|c| c.gateway.as_ref())
            .map_or(defaults::VTGATE_REPLICAS, vtgate::replicas);
        let fields = serde_json::json!({
            "apiVersion": VitessCell::api_version(&()),
            "kind": VitessCell::kind(&()),
            "metadata": { "name": cell.name_any(), "namespace": cell.namespace() },
            "spec": { "gateway": { "replicas": wanted } },
        });
        out.push(applier.initial(&cell, fields).await?);
    }
    Ok(out)
}

/// The labels of the cluster's vtctld Deployments.
fn vtctld_selector(cluster: &VitessCluster) -> String {
    crate::controller::selector(cluster, labels::component::VTCTLD, &[labels::CLUSTER])
}

/// Prunes (the vtctld Deployments are pruned as they are applied, from their one list) the
/// cluster-wide Services, backup storages and VitessBackupSchedules the bundle no longer
/// names (with Pruned Events), and the CronJobs of schedules an operator before
/// VitessBackupSchedule made.
pub(super) async fn prune(
    applier: &Applier<'_, VitessCluster>,
    cluster: &VitessCluster,
    wanted: &Wanted,
) -> Result<(), Error> {
    let name = cluster.name_any();
    let ours = [(labels::CLUSTER, name.as_str())];
    applier
        .prune::<Service>(
            &apply::selector(&ours, &[labels::COMPONENT]),
            &wanted.services,
        )
        .await?;
    applier
        .prune::<VitessBackupStorage>(&apply::selector(&ours, &[]), &wanted.storages)
        .await?;
    // The VitessBackupSchedule of a removed schedule goes, with its Jobs and their pods
    // (background propagation); backups already taken stay in storage.
    applier
        .prune::<VitessBackupSchedule>(&apply::selector(&ours, &[]), &wanted.schedules)
        .await?;
    // Schedules were CronJobs of the cluster before they were VitessBackupSchedules: an
    // upgraded operator removes those (their Jobs with them), as the schedules now run here.
    let cron_jobs = apply::selector(
        &[
            (labels::COMPONENT, labels::component::VTBACKUP_SCHEDULE),
            (labels::CLUSTER, name.as_str()),
        ],
        &[],
    );
    applier
        .prune::<CronJob>(&cron_jobs, &BTreeSet::new())
        .await?;
    Ok(())
}
