//! What a VitessCluster tells Vitess through vtctld (DESIGN §5): its cells (with where each
//! cell's topology lives) and a cells alias over them, its keyspaces with their durability
//! policy; and, when the spec drops them, their removal, each behind its
//! `topologyReconciliation` switch. Only what the operator's own child objects stand for is
//! ever removed, so entries another cluster registered in a shared topology are never touched.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, ResourceExt};

use super::Context;
use super::vtctld::VtctldError;
use crate::api::VitessCluster;
use crate::api::cluster::SecretKeyRef;
use crate::api::shared::{TopoReconcileConfig, VitessLockserverParams};
use crate::desired;
use crate::vitess::{CellInfo, Tls, Vtctld};

/// Whether a `topologyReconciliation` switch is on (they all default to on).
pub fn enabled(
    config: Option<&TopoReconcileConfig>,
    switch: fn(&TopoReconcileConfig) -> Option<bool>,
) -> bool {
    config.and_then(switch) != Some(false)
}

/// Why a cluster's topology could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// vtctld could not be asked, did not answer, or refused.
    #[error(transparent)]
    Vtctld(#[from] VtctldError),
    /// The spec does not say what to register (validation should have caught it).
    #[error(transparent)]
    Spec(#[from] desired::Error),
}

impl TopologyError {
    /// The `TopologyRegistered` condition's reason: `VtctldRejected` when vtctld answered with
    /// an error, `VtctldUnavailable` when it could not be asked or did not answer,
    /// `InvalidSpec` when the spec is at fault.
    pub fn reason(&self) -> &'static str {
        match self {
            TopologyError::Vtctld(e) if e.reason() == super::vtctld::REJECTED => "VtctldRejected",
            TopologyError::Vtctld(_) => "VtctldUnavailable",
            TopologyError::Spec(_) => crate::k8s::events::INVALID_SPEC,
        }
    }
}

/// Why the TLS settings of a cluster's vtctld connection cannot be read: the field of
/// `spec.vitessDashboard.clientTLS` and the Secret at fault.
#[derive(Clone, Debug, thiserror::Error)]
pub enum TlsError {
    #[error(
        "spec.vitessDashboard.clientTLS.{field}: cannot read Secret {namespace}/{secret}: {source}"
    )]
    Unreadable {
        field: &'static str,
        namespace: String,
        secret: String,
        source: Arc<kube::Error>,
    },
    #[error("spec.vitessDashboard.clientTLS.{field}: Secret {namespace}/{secret} not found")]
    NotFound {
        field: &'static str,
        namespace: String,
        secret: String,
    },
    #[error("spec.vitessDashboard.clientTLS.{field}: Secret {namespace}/{secret} has no key {key}")]
    NoKey {
        field: &'static str,
        namespace: String,
        secret: String,
        key: String,
    },
}

/// The TLS settings of `cluster`'s vtctld connection, read from the Secrets its spec names.
pub async fn tls(ctx: &Context, cluster: &VitessCluster) -> Result<Option<Tls>, TlsError> {
    let Some(spec) = cluster
        .spec
        .vitess_dashboard
        .as_ref()
        .and_then(|d| d.client_tls.as_ref())
    else {
        return Ok(None);
    };
    let namespace = cluster.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let read = |field: &'static str, source: &SecretKeyRef| {
        let secrets = secrets.clone();
        let namespace = namespace.clone();
        let source = source.clone();
        async move {
            let secret = secrets
                .get_opt(&source.name)
                .await
                .map_err(|e| TlsError::Unreadable {
                    field,
                    namespace: namespace.clone(),
                    secret: source.name.clone(),
                    source: Arc::new(e),
                })?
                .ok_or_else(|| TlsError::NotFound {
                    field,
                    namespace: namespace.clone(),
                    secret: source.name.clone(),
                })?;
            secret
                .data
                .and_then(|mut d| d.remove(&source.key))
                .map(|bytes| bytes.0)
                .ok_or_else(|| TlsError::NoKey {
                    field,
                    namespace: namespace.clone(),
                    secret: source.name.clone(),
                    key: source.key.clone(),
                })
        }
    };
    let ca = read("caSecret", &spec.ca_secret).await?;
    let cert = match &spec.cert_secret {
        Some(s) => Some(read("certSecret", s).await?),
        None => None,
    };
    let key = match &spec.key_secret {
        Some(s) => Some(read("keySecret", s).await?),
        None => None,
    };
    Ok(Some(Tls {
        ca,
        cert,
        key,
        server_name: spec.server_name.clone(),
    }))
}

/// Where cell `cell`'s topology lives: its own lockserver when the spec gives one (an external
/// one as given; its own etcd at `cellInfoAddress` or the etcd's client Service), else a
/// directory of the global one beside the global root: `/vitess/<cluster>/local/<cell>`, as the
/// Go operator computes it (the `local/` keeps a cell named `global` off the global root,
/// `/vitess/<cluster>/global`).
pub fn cell_info(
    cluster: &VitessCluster,
    cell: &str,
    global: &VitessLockserverParams,
) -> Result<CellInfo, desired::Error> {
    let local = cluster
        .spec
        .cells
        .iter()
        .find(|c| c.name == cell)
        .and_then(|c| c.lockserver.as_ref());
    let name = desired::cluster_name(cluster)?;
    Ok(match local {
        Some(lockserver) if lockserver.external.is_some() || lockserver.etcd.is_some() => {
            let params = match &lockserver.external {
                Some(external) => external.clone(),
                None => desired::lockserver::local_etcd_params(
                    name,
                    cluster.metadata.namespace.as_deref().unwrap_or("default"),
                    cell,
                    lockserver.cell_info_address.as_deref(),
                ),
            };
            CellInfo {
                server_address: params.address,
                root: params.root_path,
            }
        }
        _ => CellInfo {
            server_address: global.address.clone(),
            root: format!("/vitess/{name}/local/{cell}"),
        },
    })
}

/// Whether `have` is the cell root this operator wrote before it used the Go operator's
/// (`/vitess/<cluster>/<cell>`, on the same lockserver as `want`). Its tablets are registered
/// under it, and running vttablets and vtgates keep the root they read at start: rewriting it
/// would hide every tablet of the cell. Such a CellInfo is kept as it is (README: "Upgrading").
fn legacy_root(cluster: &str, cell: &str, have: &CellInfo, want: &CellInfo) -> bool {
    have.server_address == want.server_address
        && want.root == format!("/vitess/{cluster}/local/{cell}")
        && have.root == format!("/vitess/{cluster}/{cell}")
}

/// The cells alias over a cluster's cells: the Go operator's name, whatever the cluster's, so
/// a cluster it registered keeps its alias (one cell may be in one alias only).
pub const CELLS_ALIAS: &str = "planetscale_operator_default";

/// Registers `cluster`'s cells alias, cells and keyspaces that Vitess does not have as the
/// spec says. Returns one line per change made (none in a steady state, which costs only
/// reads) or why vtctld refused or could not be reached.
pub async fn register(
    vtctld: &Vtctld,
    cluster: &VitessCluster,
) -> Result<Vec<String>, TopologyError> {
    let config = cluster.spec.topology_reconciliation.as_ref();
    let name = desired::cluster_name(cluster)?;
    let global = desired::lockserver::global(cluster)?;
    let cells: Vec<String> = cluster.spec.cells.iter().map(|c| c.name.clone()).collect();
    let mut changes = Vec::new();
    // The alias first, as the Go operator does: a vtgate that starts once the cells exist
    // should already find the alias that lets it route across them.
    if enabled(config, |c| c.register_cells_aliases) && !cells.is_empty() {
        register_alias(vtctld, name, &cells, &mut changes).await?;
    }
    if enabled(config, |c| c.register_cells) {
        for cell in &cells {
            let want = cell_info(cluster, cell, &global)?;
            register_cell(vtctld, name, cell, &want, &mut changes).await?;
        }
    }
    register_keyspaces(vtctld, cluster, &mut changes).await?;
    Ok(changes)
}

fn vtctld_error(e: crate::vitess::Error) -> TopologyError {
    TopologyError::Vtctld(VtctldError::Vitess(e))
}

/// The cells alias [`CELLS_ALIAS`] over exactly `cells`. Vitess refuses two aliases sharing a
/// cell, so the one earlier versions of this operator named after the cluster (`name`) goes
/// first.
async fn register_alias(
    vtctld: &Vtctld,
    name: &str,
    cells: &[String],
    changes: &mut Vec<String>,
) -> Result<(), TopologyError> {
    let aliases = vtctld.cells_aliases().await.map_err(vtctld_error)?;
    let sorted = |c: &[String]| {
        let mut c = c.to_vec();
        c.sort();
        c
    };
    let want = sorted(cells);
    if aliases.get(CELLS_ALIAS).map(|c| sorted(c)).as_ref() == Some(&want) {
        return Ok(());
    }
    let earlier = aliases
        .get(name)
        .filter(|theirs| name != CELLS_ALIAS && theirs.iter().any(|c| want.contains(c)));
    if earlier.is_some() {
        vtctld
            .delete_cells_alias(name)
            .await
            .map_err(vtctld_error)?;
        changes.push(format!(
            "cells alias {name} (an earlier version's name) deleted"
        ));
    }
    vtctld
        .update_cells_alias(CELLS_ALIAS, &want)
        .await
        .map_err(vtctld_error)?;
    changes.push(format!("cells alias {CELLS_ALIAS}: {}", want.join(",")));
    Ok(())
}

/// Cell `cell` of cluster `name` as `want` says: added when missing, updated when it differs
/// (a root an earlier version wrote is kept: the cell's tablets are registered there).
async fn register_cell(
    vtctld: &Vtctld,
    name: &str,
    cell: &str,
    want: &CellInfo,
    changes: &mut Vec<String>,
) -> Result<(), TopologyError> {
    match vtctld.cell_info(cell).await.map_err(vtctld_error)? {
        None => {
            vtctld
                .add_cell_info(cell, want)
                .await
                .map_err(vtctld_error)?;
            changes.push(format!(
                "cell {cell} (topology {} {})",
                want.server_address, want.root
            ));
        }
        Some(have) if legacy_root(name, cell, &have, want) => {
            tracing::debug!(
                cluster = name,
                cell = %cell,
                root = %have.root,
                "keeping the cell's topology root written by an earlier version \
                 (its tablets are registered there); new cells use /vitess/<cluster>/local/<cell>"
            );
        }
        Some(have) if have != *want => {
            vtctld
                .update_cell_info(cell, want)
                .await
                .map_err(vtctld_error)?;
            changes.push(format!(
                "cell {cell} updated (topology {} {})",
                want.server_address, want.root
            ));
        }
        Some(_) => {}
    }
    Ok(())
}

/// Every keyspace of `cluster`: created when missing, its durability policy set when the spec
/// names one that differs.
async fn register_keyspaces(
    vtctld: &Vtctld,
    cluster: &VitessCluster,
    changes: &mut Vec<String>,
) -> Result<(), TopologyError> {
    for keyspace in &cluster.spec.keyspaces {
        let want = keyspace.durability_policy.as_deref();
        match vtctld
            .keyspace(&keyspace.name)
            .await
            .map_err(vtctld_error)?
        {
            None => {
                vtctld
                    .create_keyspace(
                        &keyspace.name,
                        want.unwrap_or_default(),
                        keyspace.sidecar_db_name.as_deref().unwrap_or_default(),
                    )
                    .await
                    .map_err(vtctld_error)?;
                changes.push(format!(
                    "keyspace {} (durability policy {})",
                    keyspace.name,
                    want.unwrap_or("Vitess' default")
                ));
            }
            Some(have) => {
                if let Some(want) = want
                    && have.durability_policy != want
                {
                    vtctld
                        .set_durability_policy(&keyspace.name, want)
                        .await
                        .map_err(vtctld_error)?;
                    changes.push(format!(
                        "keyspace {} durability policy {} (was {})",
                        keyspace.name, want, have.durability_policy
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::testing;

    fn info(cluster: &VitessCluster, cell: &str) -> CellInfo {
        let global = desired::lockserver::global(cluster).expect("global lockserver");
        cell_info(cluster, cell, &global).expect("cell info")
    }

    #[test]
    fn a_cell_lives_under_local_beside_the_global_root_as_the_go_operator_puts_it() {
        let cluster = testing::example_cluster();
        let global = desired::lockserver::global(&cluster).expect("global lockserver");
        let zone1 = info(&cluster, "zone1");
        assert_eq!(zone1.root, "/vitess/example/local/zone1");
        assert_eq!(zone1.server_address, global.address);
        // A cell named `global` does not get the global topology's own root.
        assert_eq!(global.root_path, "/vitess/example/global");
        assert_eq!(
            info(&cluster, "global").root,
            "/vitess/example/local/global"
        );
    }

    #[test]
    fn a_cell_with_its_own_etcd_is_registered_at_its_client_service_or_cell_info_address() {
        use crate::api::shared::LockserverSpec;
        let mut cluster = testing::example_cluster();
        cluster.spec.cells[0].lockserver = Some(LockserverSpec {
            etcd: Some(Default::default()),
            ..LockserverSpec::default()
        });
        let zone1 = info(&cluster, "zone1");
        let etcd = crate::domain::names::cluster::local_etcd("example", "zone1");
        assert_eq!(
            zone1.server_address,
            format!("{etcd}-client.default.svc:2379")
        );
        assert_eq!(zone1.root, "/vitess/example/local/zone1");
        if let Some(lockserver) = cluster.spec.cells[0].lockserver.as_mut() {
            lockserver.cell_info_address = Some("zone1-etcd.example:2379".into());
        }
        assert_eq!(
            info(&cluster, "zone1").server_address,
            "zone1-etcd.example:2379"
        );
    }

    #[test]
    fn only_the_earlier_root_on_the_same_lockserver_is_kept() {
        let cluster = testing::example_cluster();
        let want = info(&cluster, "zone1");
        let earlier = CellInfo {
            root: "/vitess/example/zone1".into(),
            ..want.clone()
        };
        assert!(legacy_root("example", "zone1", &earlier, &want));
        let elsewhere = CellInfo {
            server_address: "other-etcd:2379".into(),
            ..earlier.clone()
        };
        assert!(!legacy_root("example", "zone1", &elsewhere, &want));
        let other = CellInfo {
            root: "/somewhere/zone1".into(),
            ..want.clone()
        };
        assert!(!legacy_root("example", "zone1", &other, &want));
    }
}
