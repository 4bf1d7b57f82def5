//! Our vtctld client against the real vtctld of the e2e control plane (Vitess v0.24.3): proves
//! that our `.proto` subset (names and field numbers) matches Vitess, and pins down what a real
//! vtctld answers for missing and duplicate records.
//!
//! Fails (does not skip) when the cluster is not up: run `e2e/cluster up` first.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use vitess_operator::vitess::{Alias, CellInfo, Code, Error, Vtctld};
use vitess_operator_e2e::{unique_suffix, vtctld_addr, vtctldclient};

/// The e2e etcd, where cells of these tests keep their local topology.
const CELL_TOPO: &str = "127.0.0.1:23790";

fn client() -> Result<Vtctld> {
    Ok(Vtctld::connect_lazy(&vtctld_addr(), None)?.with_timeout(Duration::from_secs(30)))
}

#[tokio::test]
async fn cells_and_keyspaces_through_our_client_match_vtctldclient() -> Result<()> {
    let suffix = unique_suffix();
    let cell = format!("e2ecell{suffix}");
    let alias = format!("e2ealias{suffix}");
    let keyspace = format!("e2eks{suffix}");
    let vtctld = client()?;
    let info = CellInfo {
        server_address: CELL_TOPO.to_string(),
        root: format!("/vitess-e2e/{cell}"),
    };
    vtctld.add_cell_info(&cell, &info).await?;
    let result = cells_and_keyspaces(&vtctld, &cell, &alias, &keyspace, &info).await;
    // Leave the shared vtctld as we found it, whatever happened.
    let _ = vtctld.delete_keyspace(&keyspace, true).await;
    let _ = vtctldclient(&["DeleteCellsAlias", &alias]).await;
    let _ = vtctld.delete_cell_info(&cell).await;
    result
}

async fn cells_and_keyspaces(
    vtctld: &Vtctld,
    cell: &str,
    alias: &str,
    keyspace: &str,
    info: &CellInfo,
) -> Result<()> {
    // Cells.
    ensure!(vtctld.cell_info_names().await?.iter().any(|c| c == cell));
    let listed = vtctldclient(&["GetCellInfoNames"]).await?;
    ensure!(listed.lines().any(|l| l.trim() == cell), "{listed}");
    ensure!(vtctld.cell_info(cell).await?.as_ref() == Some(info));
    let again = vtctld.add_cell_info(cell, info).await.unwrap_err();
    ensure!(again.is_already_exists(), "{again}");
    // A real vtctld says so with code UNKNOWN, not ALREADY_EXISTS.
    ensure!(again.code() == Some(Code::Unknown), "{again}");
    ensure!(vtctld.cell_info("e2e-no-such-cell").await?.is_none());

    // UpdateCellInfo creates a cell that is missing.
    let other = format!("{cell}b");
    vtctld.update_cell_info(&other, info).await?;
    let created = vtctld.cell_info_names().await?.contains(&other);
    vtctld.delete_cell_info(&other).await?;
    ensure!(created, "UpdateCellInfo did not create {other}");
    vtctld.delete_cell_info(&other).await?;

    vtctld
        .update_cells_alias(alias, &[cell.to_string()])
        .await?;
    let aliases = vtctld.cells_aliases().await?;
    ensure!(
        aliases.get(alias) == Some(&vec![cell.to_string()]),
        "{aliases:?}"
    );
    // Another alias over the same cell is refused, as our fake refuses it.
    let other_alias = format!("{alias}b");
    let overlap = vtctld
        .update_cells_alias(&other_alias, &[cell.to_string()])
        .await;
    ensure!(overlap.is_err(), "an overlapping alias was accepted");
    vtctld.delete_cells_alias(alias).await?;
    ensure!(
        !vtctld.cells_aliases().await?.contains_key(alias),
        "DeleteCellsAlias left {alias}"
    );
    // Deleting an alias that is gone succeeds (the operator may be retrying).
    vtctld.delete_cells_alias(alias).await?;

    // Keyspaces.
    vtctld.create_keyspace(keyspace, "semi_sync", "").await?;
    vtctld.create_keyspace(keyspace, "semi_sync", "").await?;
    let all = vtctld.keyspaces().await?;
    let ours = all
        .iter()
        .find(|k| k.name == keyspace)
        .with_context(|| format!("{keyspace} not in {all:?}"))?;
    ensure!(ours.durability_policy == "semi_sync", "{ours:?}");
    let shown = vtctldclient(&["GetKeyspace", keyspace]).await?;
    ensure!(
        shown.contains(r#""durability_policy": "semi_sync""#),
        "{shown}"
    );

    vtctld.set_durability_policy(keyspace, "none").await?;
    let ks = vtctld.keyspace(keyspace).await?.context("keyspace gone")?;
    ensure!(ks.durability_policy == "none", "{ks:?}");
    let shown = vtctldclient(&["GetKeyspace", keyspace]).await?;
    ensure!(shown.contains(r#""durability_policy": "none""#), "{shown}");
    let bogus = vtctld
        .set_durability_policy(keyspace, "bogus")
        .await
        .unwrap_err();
    ensure!(
        bogus.code() == Some(Code::Unknown) && bogus.to_string().contains("not a valid policy"),
        "{bogus}"
    );

    // A shard that does not exist.
    ensure!(vtctld.shard(keyspace, "-").await?.is_none());
    ensure!(vtctld.tablets(keyspace, "-").await?.is_empty());
    let prs = vtctld
        .planned_reparent(keyspace, "-", &Alias::new(cell, 100), None)
        .await
        .unwrap_err();
    ensure!(
        matches!(&prs, Error::Rejected { code: Code::Unknown, message, .. }
            if message.contains("node doesn't exist")),
        "{prs}"
    );
    ensure!(prs.is_not_found(), "{prs}");
    ensure!(
        prs.to_string()
            .contains(&format!("PlannedReparentShard {keyspace}/-: Unknown: ")),
        "{prs}"
    );
    vtctld
        .delete_shards(keyspace, &["-".to_string()], true)
        .await?;
    vtctld.delete_tablets(&[Alias::new(cell, 100)]).await?;

    // Pruning.
    vtctld.delete_keyspace(keyspace, false).await?;
    ensure!(vtctld.keyspace(keyspace).await?.is_none());
    ensure!(vtctldclient(&["GetKeyspace", keyspace]).await.is_err());
    vtctld.delete_keyspace(keyspace, false).await?;

    vtctld.delete_cell_info(cell).await?;
    ensure!(!vtctld.cell_info_names().await?.iter().any(|c| c == cell));
    let listed = vtctldclient(&["GetCellInfoNames"]).await?;
    ensure!(!listed.lines().any(|l| l.trim() == cell), "{listed}");
    ensure!(vtctld.cell_info(cell).await?.is_none());
    vtctld.delete_cell_info(cell).await?;
    Ok(())
}

#[tokio::test]
async fn an_unreachable_vtctld_is_unavailable() -> Result<()> {
    // Nothing listens on port 1 of loopback.
    let vtctld = Vtctld::connect_lazy("127.0.0.1:1", None)?.with_timeout(Duration::from_secs(5));
    let err = vtctld.cell_info_names().await.unwrap_err();
    ensure!(matches!(err, Error::Unavailable { .. }), "{err}");
    Ok(())
}
