//! The cluster's guarded prunes (DESIGN §7): a keyspace no longer in the spec goes only when
//! it may (turndown policy `Immediate`, or idle), a cell only when no desired or kept keyspace
//! has tablets in it, and each is first removed from Vitess when its switch says so.

use std::collections::{BTreeMap, BTreeSet};

use kube::ResourceExt;

use crate::api::keyspace::{TurndownPolicy, VitessKeyspaceTemplate};
use crate::api::shared::{ConditionStatus, OrphanStatus};
use crate::api::{VitessCell, VitessCluster, VitessKeyspace};
use crate::controller::{Context, Error, topology};
use crate::vitess::Vtctld;
use crate::{domain::labels, k8s::apply};

/// Removes a keyspace or cell from Vitess before its child object goes, when the switch is on.
/// `Err` is the orphan status that keeps the child until it can be done.
async fn forget<F, Fut>(
    enabled: bool,
    vtctld: Option<&Vtctld>,
    what: &str,
    call: F,
) -> Result<(), OrphanStatus>
where
    F: FnOnce(Vtctld) -> Fut,
    Fut: std::future::Future<Output = Result<(), crate::vitess::Error>>,
{
    if !enabled {
        return Ok(());
    }
    let Some(vtctld) = vtctld else {
        return Err(OrphanStatus {
            reason: "VtctldUnavailable".into(),
            message: format!(
                "{what} is removed from Vitess before its object is deleted, and vtctld cannot \
                 be reached now; see the TopologyRegistered condition"
            ),
        });
    };
    call(vtctld.clone()).await.map_err(|e| OrphanStatus {
        reason: "TopologyPruneFailed".into(),
        message: format!("cannot remove {what} from Vitess: {e}"),
    })
}

/// The keyspaces no longer in the spec that are kept, with why.
pub(super) struct KeptKeyspaces {
    /// By keyspace name, for the status.
    pub(super) orphans: BTreeMap<String, OrphanStatus>,
    /// Their last templates: their tablets still run, so their cells are still in use.
    pub(super) kept: Vec<VitessKeyspaceTemplate>,
}

/// Deletes the VitessKeyspaces no longer in the spec that may go: those whose turndown policy
/// is `Immediate` or that report themselves idle. The others may still serve and are kept
/// (DESIGN §7). Their shards and tablets go with them through garbage collection; the PVCs,
/// which have no owner, stay.
pub(super) async fn prune_keyspaces(
    ctx: &Context,
    cluster: &VitessCluster,
    desired: &BTreeSet<String>,
    vtctld: Option<&Vtctld>,
) -> Result<KeptKeyspaces, Error> {
    let prune_topology = topology::enabled(cluster.spec.topology_reconciliation.as_ref(), |c| {
        c.prune_keyspaces
    });
    let name = cluster.name_any();
    let selector = apply::selector(&[(labels::CLUSTER, &name)], &[labels::KEYSPACE]);
    let api = ctx.api_in::<VitessKeyspace>(cluster);
    let mut kept = KeptKeyspaces {
        orphans: BTreeMap::new(),
        kept: Vec::new(),
    };
    for meta in apply::children::<VitessKeyspace, _>(&ctx.client, cluster, &selector).await? {
        if desired.contains(&meta.name_any()) {
            continue;
        }
        // The metadata list does not carry the policy and idleness; orphans are rare, so one
        // GET each is cheap. Gone meanwhile: nothing to decide.
        let Some(keyspace) =
            api.get_opt(&meta.name_any())
                .await
                .map_err(|source| apply::Error::Get {
                    object: format!("VitessKeyspace {}", meta.name_any()),
                    source: Box::new(source),
                })?
        else {
            continue;
        };
        let template = &keyspace.spec.template;
        let immediate = template.turndown_policy == Some(TurndownPolicy::Immediate);
        let idle = keyspace.status.as_ref().map(|s| s.idle) == Some(ConditionStatus::True);
        let forgotten = if immediate || idle {
            let ks = template.name.clone();
            forget(
                prune_topology,
                vtctld,
                &format!("keyspace {ks}"),
                |v| async move { v.delete_keyspace(&ks, true).await },
            )
            .await
        } else {
            Ok(())
        };
        if let Err(orphan) = forgotten {
            kept.orphans.insert(template.name.clone(), orphan);
            kept.kept.push(template.clone());
        } else if immediate || idle {
            if apply::delete(&ctx.client, &meta).await? {
                ctx.events
                    .pruned::<VitessKeyspace, _>(cluster, &[meta.name_any()])
                    .await;
            }
        } else {
            kept.orphans.insert(
                template.name.clone(),
                OrphanStatus {
                    reason: "TurndownRequiresIdle".into(),
                    message: format!(
                        "keyspace {} was removed from the spec but is kept because it may still \
                         serve (turndownPolicy RequireIdle): re-add it without tablet pools (a \
                         keyspace without tablets is idle) and remove it again, or set \
                         turndownPolicy: Immediate on VitessKeyspace {} to delete it now; its \
                         PVCs are kept either way",
                        template.name,
                        keyspace.name_any()
                    ),
                },
            );
            kept.kept.push(template.clone());
        }
    }
    Ok(kept)
}

/// Deletes the VitessCells no longer in the spec in which no keyspace (desired or kept) has a
/// tablet pool: their vtgates may be what those tablets are reached through. Returns the cells
/// kept, by cell name.
pub(super) async fn prune_cells(
    ctx: &Context,
    cluster: &VitessCluster,
    desired: &BTreeSet<String>,
    in_use: &BTreeMap<String, BTreeSet<String>>,
    vtctld: Option<&Vtctld>,
) -> Result<BTreeMap<String, OrphanStatus>, Error> {
    let prune_topology = topology::enabled(cluster.spec.topology_reconciliation.as_ref(), |c| {
        c.prune_cells
    });
    let name = cluster.name_any();
    let selector = apply::selector(&[(labels::CLUSTER, &name)], &[labels::CELL]);
    let mut orphans = BTreeMap::new();
    for cell in apply::children::<VitessCell, _>(&ctx.client, cluster, &selector).await? {
        if desired.contains(&cell.name_any()) {
            continue;
        }
        let cell_name = cell
            .labels()
            .get(labels::CELL)
            .cloned()
            .unwrap_or_else(|| cell.name_any());
        match in_use.get(&cell_name) {
            Some(keyspaces) => {
                orphans.insert(
                    cell_name.clone(),
                    OrphanStatus {
                        reason: "CellInUse".into(),
                        message: format!(
                            "cell {cell_name} was removed from the spec but keyspaces {} still \
                             have tablet pools in it; remove those pools first",
                            keyspaces.iter().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    },
                );
            }
            None => {
                let name = cell_name.clone();
                let forgotten = forget(
                    prune_topology,
                    vtctld,
                    &format!("cell {name}"),
                    |v| async move { v.delete_cell_info(&name).await },
                )
                .await;
                match forgotten {
                    Err(orphan) => {
                        orphans.insert(cell_name.clone(), orphan);
                    }
                    Ok(()) => {
                        if apply::delete(&ctx.client, &cell).await? {
                            ctx.events
                                .pruned::<VitessCell, _>(cluster, &[cell.name_any()])
                                .await;
                        }
                    }
                }
            }
        }
    }
    Ok(orphans)
}

/// The cells in which `keyspace` has tablet pools.
pub(super) fn pool_cells(keyspace: &VitessKeyspaceTemplate) -> BTreeSet<String> {
    keyspace
        .partitionings
        .iter()
        .flat_map(|p| {
            let equal = p.equal.iter().map(|e| &e.shard_template);
            let custom = p
                .custom
                .iter()
                .flat_map(|c| c.shards.iter().map(|s| &s.template));
            equal.chain(custom)
        })
        .flat_map(|t| t.tablet_pools.iter().map(|pool| pool.cell.clone()))
        .collect()
}

/// By cell, the keyspaces (desired, or removed but `kept`) with tablet pools in it.
pub(super) fn cells_in_use(
    cluster: &VitessCluster,
    kept: &[VitessKeyspaceTemplate],
) -> BTreeMap<String, BTreeSet<String>> {
    let mut in_use: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for keyspace in cluster.spec.keyspaces.iter().chain(kept) {
        for cell in pool_cells(keyspace) {
            in_use
                .entry(cell)
                .or_default()
                .insert(keyspace.name.clone());
        }
    }
    in_use
}
