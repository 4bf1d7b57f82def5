//! The shard's Vitess side: what vtctld says of its primary, tablets and serving cells,
//! reparents, and removing a deleted tablet's record.

use super::*;

/// Asks vtctld for the shard's primary and tablets. `Err`: why vtctld cannot say.
pub(super) async fn vitess_view(
    ctx: &Context,
    shard: &VitessShard,
) -> Result<VitessView, VtctldError> {
    let vtctld = ctx.vtctld(shard).await?;
    let (keyspace, name) = vitess_names(shard);
    let record = vtctld.shard(&keyspace, &name).await?;
    let tablets = vtctld.tablets(&keyspace, &name).await?;
    // The serving graph only feeds `status.idle`: a cell whose topology cannot be read
    // leaves it Unknown rather than the shard's whole view.
    let serving_cells = match vtctld.serving_shards(&keyspace).await {
        Ok(by_cell) => Some(
            by_cell
                .into_iter()
                .filter(|(_, shards)| shards.contains(&name))
                .map(|(cell, _)| cell)
                .collect(),
        ),
        Err(error) => {
            tracing::info!(%keyspace, shard = %name, "cannot read the serving graph: {error}");
            None
        }
    };
    Ok(VitessView {
        primary: record
            .as_ref()
            .and_then(|r| r.primary.as_ref())
            .map(ToString::to_string),
        serving: record.is_some_and(|r| r.is_primary_serving),
        types: tablets
            .into_iter()
            .map(|t| (t.alias.to_string(), t.tablet_type))
            .collect(),
        serving_cells,
    })
}

/// The keyspace and shard names in Vitess.
pub(super) fn vitess_names(shard: &VitessShard) -> (String, String) {
    let keyspace = shard
        .labels()
        .get(labels::KEYSPACE)
        .cloned()
        .unwrap_or_default();
    (keyspace, shard.spec.name.clone())
}

/// Asks vtctld for a PlannedReparentShard to `to` (from `from`, which must still be the
/// primary). Returns the new primary, or why not: vtctld not reached, vtctld refused (as
/// typed, so the condition can tell the two apart), or an alias that does not parse.
pub(super) async fn reparent(
    ctx: &Context,
    shard: &VitessShard,
    keyspace: &str,
    name: &str,
    to: &str,
    from: Option<&String>,
) -> Result<String, VtctldError> {
    let vtctld = ctx.vtctld(shard).await?;
    let to_alias = to.parse::<Alias>()?;
    let from_alias = from.map(|f| f.parse::<Alias>()).transpose()?;
    tracing::info!(%keyspace, shard = %name, to, from = ?from, "PlannedReparentShard");
    let primary = vtctld
        .planned_reparent(keyspace, name, &to_alias, from_alias.as_ref())
        .await?;
    Ok(primary.to_string())
}

/// How long the tablet that was an external datastore's primary gets to see that it no
/// longer is (a vttablet learns it from the shard record, a moment after the change) before
/// it is set aside as SPARE.
const SPARE_ATTEMPTS: u32 = 10;
const SPARE_INTERVAL: Duration = Duration::from_secs(1);

/// Tells vtctld that `to`'s MySQL is the shard's primary (TabletExternallyReparented: that
/// MySQL is someone else's, nothing is done to it or to replication), then sets the tablet
/// that was the primary (`from`) aside as SPARE, as the Go operator does, so that it serves
/// no REPLICA reads. Returns the new primary. A tablet that could not be set aside is
/// announced (Warning Event with the command to run), not returned: the primary did move.
pub(super) async fn externally_reparent(
    ctx: &Context,
    shard: &VitessShard,
    keyspace: &str,
    name: &str,
    to: &str,
    from: Option<&String>,
) -> Result<String, VtctldError> {
    let vtctld = ctx.vtctld(shard).await?;
    let to_alias = to.parse::<Alias>()?;
    let from_alias = from.map(|f| f.parse::<Alias>()).transpose()?;
    tracing::info!(%keyspace, shard = %name, to, from = ?from, "TabletExternallyReparented");
    vtctld.tablet_externally_reparented(&to_alias).await?;
    if let Some(old) = from_alias {
        let mut attempt = 1;
        let outcome = loop {
            match vtctld.change_tablet_type(&old, TabletType::Spare).await {
                Err(e) if attempt < SPARE_ATTEMPTS && !e.is_unavailable() => {
                    attempt += 1;
                    tokio::time::sleep(SPARE_INTERVAL).await;
                }
                other => break other,
            }
        };
        if let Err(error) = outcome {
            tracing::warn!(%keyspace, shard = %name, tablet = %old, "cannot set SPARE: {error}");
            ctx.events
                .publish(
                    shard,
                    EventType::Warning,
                    events::SET_SPARE_FAILED,
                    &format!(
                        "{to} is the primary of {keyspace}/{name}, but {old}, the primary \
                         before, could not be set to SPARE ({error}); run `vtctldclient \
                         ChangeTabletType {old} SPARE`"
                    ),
                )
                .await;
        }
    }
    Ok(to_alias.to_string())
}

/// Whether tablet records of removed tablets are deleted from Vitess.
pub(super) fn prune_tablets(shard: &VitessShard) -> bool {
    shard
        .spec
        .topology_reconciliation
        .as_ref()
        .and_then(|t| t.prune_tablets)
        != Some(false)
}

/// Deletes a removed tablet's record from Vitess (its pod is gone). Failures are logged and
/// reported; the record is harmless meanwhile and the next removal retries nothing, so the
/// Event says what to run by hand.
pub(super) async fn forget_tablet(ctx: &Context, shard: &VitessShard, alias: &str) {
    let result: Result<(), VtctldError> = async {
        let parsed = alias.parse::<Alias>()?;
        Ok(ctx.vtctld(shard).await?.delete_tablets(&[parsed]).await?)
    }
    .await;
    match result {
        Ok(()) => {
            ctx.events
                .publish(
                    shard,
                    EventType::Normal,
                    events::TOPOLOGY_PRUNED,
                    &format!("deleted the record of tablet {alias} from the Vitess topology"),
                )
                .await
        }
        Err(message) => {
            tracing::warn!(alias, "cannot delete the tablet record: {message}");
            ctx.events
                .publish(
                    shard,
                    EventType::Warning,
                    events::TOPOLOGY_PRUNED,
                    &format!(
                        "cannot delete the record of tablet {alias} from the Vitess topology \
                         ({message}); run `vtctldclient DeleteTablets {alias}`"
                    ),
                )
                .await
        }
    }
}
