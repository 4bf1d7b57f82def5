//! Everything a VitessCluster's own reconcile applies, as one typed bundle: the child custom
//! resources, vtctld, the cluster-wide Services and the VitessBackupSchedules. The cluster
//! controller and `render` both take it apart field by field (no `..`), so a field added here
//! that one of them does not use fails to compile rather than going silently unapplied.

use k8s_openapi::api::core::v1::Service;

use super::cluster::{self, ClusterChildren};
use super::vtctld::{self, VtctldObjects};
use super::{Error, lockserver, schedule, vtadmin, vtgate, vttablet};
use crate::api::{VitessBackupSchedule, VitessCluster};

/// What one VitessCluster wants to exist, directly owned by it.
#[derive(Debug, Clone)]
pub struct ClusterBundle {
    /// The lockserver, cells, keyspaces and backup storages.
    pub children: ClusterChildren,
    /// vtctld's Deployments and Service.
    pub vtctld: VtctldObjects,
    /// The cluster-wide vtgate Service.
    pub gateway_service: Service,
    /// The cluster-wide vttablet Service.
    pub tablet_service: Service,
    /// One VitessBackupSchedule per backup schedule.
    pub schedules: Vec<VitessBackupSchedule>,
    /// vtadmin's Deployments, their Secrets and its Service (none without `spec.vtadmin`).
    pub vtadmin: vtadmin::VtadminObjects,
}

/// Builds the bundle of `cluster`.
pub fn cluster(cluster: &VitessCluster) -> Result<ClusterBundle, Error> {
    let topo = lockserver::global(cluster)?;
    Ok(ClusterBundle {
        children: cluster::children(cluster)?,
        vtctld: vtctld::build(cluster, &topo)?,
        gateway_service: vtgate::cluster_service(cluster)?,
        tablet_service: vttablet::cluster_service(cluster)?,
        schedules: schedule::build(cluster)?,
        vtadmin: vtadmin::build(cluster)?,
    })
}
