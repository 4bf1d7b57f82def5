//! Where a cluster's topology lives: the global one at the external lockserver the user named,
//! or at the client Service of the etcd the operator deploys (one function, so the children
//! that are told the address and the pods that use it always agree); and a cell's own etcd
//! (`cells[].lockserver.etcd`), the EtcdLockserver its VitessCell makes and where Vitess is
//! told to find it.

use super::defaults;
use super::etcd;
use super::{Error, cluster_name, meta};
use crate::api::cell::VitessCell;
use crate::api::cluster::VitessCluster;
use crate::api::etcd::{EtcdLockserver, EtcdLockserverSpec};
use crate::api::shared::VitessLockserverParams;
use crate::domain::{labels, names};

/// The global lockserver parameters of `cluster`.
pub fn global(cluster: &VitessCluster) -> Result<VitessLockserverParams, Error> {
    let name = cluster_name(cluster)?;
    let lockserver = cluster.spec.global_lockserver.clone().unwrap_or_default();
    if let Some(external) = lockserver.external {
        return Ok(external);
    }
    let namespace = cluster.metadata.namespace.as_deref().unwrap_or("default");
    let client = etcd::client_service_name(&names::cluster::global_etcd(name));
    let address = lockserver
        .cell_info_address
        .unwrap_or_else(|| format!("{client}.{namespace}.svc:{}", defaults::ETCD_CLIENT_PORT));
    Ok(VitessLockserverParams {
        implementation: defaults::TOPO_IMPLEMENTATION.into(),
        address,
        root_path: format!("/vitess/{name}/global"),
    })
}

/// The EtcdLockserver a cell runs as its own lockserver (`lockserver.etcd`), placed in the
/// cell's zone; `None` when the cell uses the global lockserver or an external one.
pub fn local_etcd(cell: &VitessCell) -> Result<Option<EtcdLockserver>, Error> {
    let template = &cell.spec.template;
    let Some(lockserver) = template.lockserver.as_ref() else {
        return Ok(None);
    };
    let Some(etcd) = lockserver
        .etcd
        .clone()
        .filter(|_| lockserver.external.is_none())
    else {
        return Ok(None);
    };
    let cluster = super::label(&cell.metadata, "VitessCell", labels::CLUSTER)?;
    Ok(Some(EtcdLockserver {
        metadata: meta(
            names::cluster::local_etcd(cluster, &template.name),
            &cell.metadata.namespace,
            labels::set(&[
                (labels::CLUSTER, cluster),
                (labels::CELL, template.name.as_str()),
                (labels::COMPONENT, labels::component::ETCD),
            ]),
            None,
        ),
        spec: EtcdLockserverSpec {
            template: etcd,
            zone: template.zone.clone(),
        },
        status: None,
    }))
}

/// Where a cell's own etcd (`lockserver.etcd`) is reached: `cellInfoAddress`, else its client
/// Service; the root is the Go operator's `/vitess/<cluster>/local/<cell>`.
pub fn local_etcd_params(
    cluster: &str,
    namespace: &str,
    cell: &str,
    cell_info_address: Option<&str>,
) -> VitessLockserverParams {
    let client = etcd::client_service_name(&names::cluster::local_etcd(cluster, cell));
    VitessLockserverParams {
        implementation: defaults::TOPO_IMPLEMENTATION.into(),
        address: cell_info_address.map_or_else(
            || format!("{client}.{namespace}.svc:{}", defaults::ETCD_CLIENT_PORT),
            str::to_string,
        ),
        root_path: format!("/vitess/{cluster}/local/{cell}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::shared::LockserverSpec;

    fn cluster(lockserver: Option<LockserverSpec>) -> VitessCluster {
        let mut cluster = VitessCluster::new("example", Default::default());
        cluster.metadata.namespace = Some("prod".into());
        cluster.spec.global_lockserver = lockserver;
        cluster
    }

    #[test]
    fn deployed_etcd_is_reached_through_its_client_service() {
        let params = global(&cluster(None)).unwrap();
        assert_eq!(params.implementation, "etcd2");
        assert_eq!(params.address, "example-etcd-faf13de3-client.prod.svc:2379");
        assert_eq!(params.root_path, "/vitess/example/global");
    }

    #[test]
    fn external_and_cell_info_address_win() {
        let external = VitessLockserverParams {
            implementation: "zk2".into(),
            address: "zk:2181".into(),
            root_path: "/x".into(),
        };
        let params = global(&cluster(Some(LockserverSpec {
            external: Some(external.clone()),
            ..LockserverSpec::default()
        })))
        .unwrap();
        assert_eq!(params, external);

        let params = global(&cluster(Some(LockserverSpec {
            cell_info_address: Some("lb:2379".into()),
            ..LockserverSpec::default()
        })))
        .unwrap();
        assert_eq!(params.address, "lb:2379");
    }
}
