//! From a VitessCluster to the custom resources it owns: one VitessCell per cell, one
//! VitessKeyspace per keyspace, the global EtcdLockserver (unless external) and one
//! VitessBackupStorage per backup location. Pure: no API calls.

use std::collections::BTreeMap;

use super::defaults;
use super::{Error, cluster_name, meta};
use crate::api::backupstorage::{VitessBackupStorage, VitessBackupStorageSpec};
use crate::api::cell::{VitessCell, VitessCellImages, VitessCellSpec, VitessCellTemplate};
use crate::api::cluster::{VitessCluster, VitessClusterSpec};
use crate::api::etcd::{EtcdLockserver, EtcdLockserverSpec};
use crate::api::keyspace::{VitessKeyspace, VitessKeyspaceSpec};
use crate::api::shared::{MysqldImage, VitessImages, VitessKeyspaceImages, VitessLockserverParams};
use crate::domain::labels;
use crate::domain::names;

/// The custom resources a cluster expands into.
#[derive(Debug, Clone, Default)]
pub struct ClusterChildren {
    pub etcd: Option<EtcdLockserver>,
    pub cells: Vec<VitessCell>,
    pub keyspaces: Vec<VitessKeyspace>,
    pub backup_storages: Vec<VitessBackupStorage>,
}

/// Builds every child custom resource of `cluster`.
pub fn children(cluster: &VitessCluster) -> Result<ClusterChildren, Error> {
    let name = cluster_name(cluster)?;
    let namespace = cluster.metadata.namespace.clone();
    let spec = &cluster.spec;
    let images = resolved_images(spec.images.as_ref());
    let etcd = etcd(cluster, name, &namespace);
    let global = super::lockserver::global(cluster)?;
    let parts = Parts {
        spec,
        name,
        namespace: &namespace,
        images: &images,
        global: &global,
    };
    let keyspaces = parts.keyspaces();
    let mysqld = first_shard_mysqld(&keyspaces);
    Ok(ClusterChildren {
        etcd,
        cells: parts.cells(mysqld),
        keyspaces,
        backup_storages: parts.backup_storages(),
    })
}

/// The mysqld image of the cluster's first VitessShard by name (its keyspace's, else the
/// cluster's): vtgate reports that MySQL version, as the Go operator's cell controller picks
/// it from the first shard it lists. None without shards: then vtgate reports Vitess' own
/// default, as there (no tablet serves anyway).
fn first_shard_mysqld(keyspaces: &[VitessKeyspace]) -> Option<MysqldImage> {
    // A shard's images are its keyspace's.
    keyspaces
        .iter()
        .filter_map(|ks| {
            let first = super::keyspace::shard_names(ks).ok()?.into_iter().min()?;
            Some((first, ks))
        })
        .min_by(|a, b| a.0.cmp(&b.0))
        .and_then(|(_, ks)| ks.spec.images.mysqld.clone())
}

/// The global lockserver the cluster runs itself, unless it names an external one.
fn etcd(cluster: &VitessCluster, name: &str, namespace: &Option<String>) -> Option<EtcdLockserver> {
    let lockserver = cluster.spec.global_lockserver.clone().unwrap_or_default();
    match &lockserver.external {
        Some(_) => None,
        None => Some(EtcdLockserver {
            metadata: meta(
                names::cluster::global_etcd(name),
                namespace,
                labels::set(&[(labels::CLUSTER, name)]),
                None,
            ),
            spec: EtcdLockserverSpec {
                template: lockserver.etcd.clone().unwrap_or_default(),
                zone: None,
            },
            status: None,
        }),
    }
}

/// What the cluster's cells, keyspaces and backup storages are built from.
struct Parts<'a> {
    spec: &'a VitessClusterSpec,
    name: &'a str,
    namespace: &'a Option<String>,
    images: &'a VitessImages,
    global: &'a VitessLockserverParams,
}

impl Parts<'_> {
    /// One VitessCell per cell of the spec; `mysqld` is the image vtgate takes its MySQL
    /// version from.
    fn cells(&self, mysqld: Option<MysqldImage>) -> Vec<VitessCell> {
        let (spec, name) = (self.spec, self.name);
        let all_cells: Vec<String> = spec.cells.iter().map(|c| c.name.clone()).collect();
        spec.cells
            .iter()
            .map(|cell| VitessCell {
                metadata: meta(
                    names::cluster::cell(name, &cell.name),
                    self.namespace,
                    labels::set(&[(labels::CLUSTER, name), (labels::CELL, &cell.name)]),
                    None,
                ),
                spec: VitessCellSpec {
                    template: cell_template(cell),
                    global_lockserver: self.global.clone(),
                    all_cells: all_cells.clone(),
                    images: VitessCellImages {
                        vtgate: self.images.vtgate.clone(),
                        mysqld: mysqld.clone(),
                    },
                    image_pull_policies: spec.image_pull_policies.clone(),
                    image_pull_secrets: spec.image_pull_secrets.clone(),
                    extra_vitess_flags: spec.extra_vitess_flags.clone(),
                    topology_reconciliation: spec.topology_reconciliation.clone(),
                    tablet_refresh_interval: spec.tablet_refresh_interval.clone(),
                },
                status: None,
            })
            .collect()
    }

    /// One VitessKeyspace per keyspace of the spec.
    fn keyspaces(&self) -> Vec<VitessKeyspace> {
        let (spec, name) = (self.spec, self.name);
        let zone_map: BTreeMap<String, String> = spec
            .cells
            .iter()
            .map(|c| (c.name.clone(), c.zone.clone().unwrap_or_default()))
            .collect();
        let backup_locations = spec.backup.as_ref().map(|b| b.locations.clone());
        let backup_engine = spec.backup.as_ref().map(|b| b.engine.unwrap_or_default());
        spec.keyspaces
            .iter()
            .map(|keyspace| VitessKeyspace {
                metadata: meta(
                    names::cluster::keyspace(name, &keyspace.name),
                    self.namespace,
                    labels::set(&[(labels::CLUSTER, name), (labels::KEYSPACE, &keyspace.name)]),
                    keyspace.annotations.clone(),
                ),
                spec: VitessKeyspaceSpec {
                    template: keyspace.clone(),
                    global_lockserver: self.global.clone(),
                    images: keyspace_images(self.images, keyspace.images.as_ref()),
                    image_pull_policies: spec.image_pull_policies.clone(),
                    image_pull_secrets: spec.image_pull_secrets.clone(),
                    zone_map: zone_map.clone(),
                    backup_locations: backup_locations.clone(),
                    backup_engine,
                    extra_vitess_flags: spec.extra_vitess_flags.clone(),
                    topology_reconciliation: spec.topology_reconciliation.clone(),
                    update_strategy: spec.update_strategy.clone(),
                    tablet_refresh_interval: spec.tablet_refresh_interval.clone(),
                },
                status: None,
            })
            .collect()
    }

    /// One VitessBackupStorage per backup location.
    fn backup_storages(&self) -> Vec<VitessBackupStorage> {
        let (spec, name) = (self.spec, self.name);
        spec.backup
            .iter()
            .flat_map(|b| &b.locations)
            .map(|location| VitessBackupStorage {
                metadata: meta(
                    names::cluster::backup_storage(name, &location.name),
                    self.namespace,
                    labels::set(&[(labels::CLUSTER, name)]),
                    None,
                ),
                spec: VitessBackupStorageSpec {
                    location: location.clone(),
                    subcontroller: spec.backup.as_ref().and_then(|b| b.subcontroller.clone()),
                },
                status: None,
            })
            .collect()
    }
}

/// The cluster's images with the operator's defaults filled in.
pub fn resolved_images(images: Option<&VitessImages>) -> VitessImages {
    let given = images.cloned().unwrap_or_default();
    let or_vitess =
        |image: Option<String>| Some(image.unwrap_or_else(|| defaults::VITESS_IMAGE.into()));
    VitessImages {
        vtctld: or_vitess(given.vtctld),
        vtadmin: or_vitess(given.vtadmin),
        vtorc: or_vitess(given.vtorc),
        vtgate: or_vitess(given.vtgate),
        vttablet: or_vitess(given.vttablet),
        vtbackup: or_vitess(given.vtbackup),
        mysqld: Some(given.mysqld.unwrap_or_else(|| MysqldImage {
            mysql80_compatible: Some(defaults::MYSQLD_IMAGE.into()),
            ..MysqldImage::default()
        })),
        mysqld_exporter: Some(
            given
                .mysqld_exporter
                .unwrap_or_else(|| defaults::MYSQLD_EXPORTER_IMAGE.into()),
        ),
    }
}

/// A cell's template as its VitessCell gets it: with an autoscaler, without `gateway.replicas`,
/// which the HPA keeps through the VitessCell's scale subresource (the cluster controller sets
/// the first count once, under its own field manager; see `controller::cluster::children`).
fn cell_template(cell: &VitessCellTemplate) -> VitessCellTemplate {
    let mut template = cell.clone();
    if let Some(gateway) = template.gateway.as_mut().filter(|g| g.autoscaler.is_some()) {
        gateway.replicas = None;
    }
    template
}

/// A keyspace's images: its own overrides over the cluster's.
fn keyspace_images(
    cluster: &VitessImages,
    overrides: Option<&VitessKeyspaceImages>,
) -> VitessKeyspaceImages {
    let over = overrides.cloned().unwrap_or_default();
    VitessKeyspaceImages {
        vttablet: over.vttablet.or_else(|| cluster.vttablet.clone()),
        vtorc: over.vtorc.or_else(|| cluster.vtorc.clone()),
        vtbackup: over.vtbackup.or_else(|| cluster.vtbackup.clone()),
        mysqld: over.mysqld.or_else(|| cluster.mysqld.clone()),
        mysqld_exporter: over
            .mysqld_exporter
            .or_else(|| cluster.mysqld_exporter.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::testing;

    fn cell_mysqld(cluster: &VitessCluster) -> Option<String> {
        let cells = children(cluster).expect("children").cells;
        cells[0].spec.images.mysqld.clone()?.mysql80_compatible
    }

    #[test]
    fn vtgate_takes_the_mysqld_image_of_the_first_shard_by_name_as_the_go_operator_does() {
        let mut cluster = testing::example_cluster();
        assert!(cell_mysqld(&cluster).is_some());
        // The only keyspace runs another mysqld: its shards are the first (and only) ones.
        let keyspace = &mut cluster.spec.keyspaces[0];
        let images = keyspace.images.get_or_insert_with(Default::default);
        images.mysqld = Some(MysqldImage {
            mysql80_compatible: Some("mysql:9.7".into()),
            ..MysqldImage::default()
        });
        assert_eq!(cell_mysqld(&cluster).as_deref(), Some("mysql:9.7"));
        // Without shards, none (and so no --mysql-server-version for vtgate).
        cluster.spec.keyspaces.clear();
        assert_eq!(cell_mysqld(&cluster), None);
    }
}
