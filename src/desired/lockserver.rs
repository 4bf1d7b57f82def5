//! Where a cluster's global topology lives: the external lockserver the user named, or the
//! client Service of the etcd the operator deploys. One function, so the children that are
//! told the address (cells, keyspaces) and the pods that use it (vtctld) always agree.

use super::defaults;
use super::etcd;
use super::{Error, cluster_name};
use crate::api::cluster::VitessCluster;
use crate::api::shared::VitessLockserverParams;
use crate::domain::names;

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
