//! Rules a CRD schema cannot express: references between parts of a cluster (tablet pools to
//! cells and backup locations, schedules to shards), key-range coverage of custom
//! partitionings, and flag names. Each problem names the field it is about.

use std::collections::BTreeSet;

use crate::api::cluster::{
    BackupScope, VitessBackupScheduleStrategy, VitessClusterSpec, frequency_minutes,
};
use crate::api::keyspace::{VitessKeyspacePartitioning, VitessKeyspaceTemplate};
use crate::api::shard::{VitessKeyRange, VitessShardTabletPool, VitessShardTemplate};
use crate::api::shared::Flags;
use crate::domain::keyrange::{self, Coverage, KeyRange};

use super::schema::Issue;

/// Everything the cluster's parts may refer to.
struct Context {
    cells: BTreeSet<String>,
    /// Backup location names (`""` for the unnamed one); `None` without `spec.backup`.
    locations: Option<BTreeSet<String>>,
}

/// Checks a VitessCluster spec; paths start at `spec`.
pub fn check_cluster(spec: &VitessClusterSpec, out: &mut Vec<Issue>) {
    let ctx = Context {
        cells: spec.cells.iter().map(|c| c.name.clone()).collect(),
        locations: spec
            .backup
            .as_ref()
            .map(|b| b.locations.iter().map(|l| l.name.clone()).collect()),
    };
    let mut push = |path: String, message: String| out.push(Issue { path, message });

    if let Some(dashboard) = &spec.vitess_dashboard {
        check_cell_refs(
            &ctx,
            dashboard.cells.as_deref(),
            "spec.vitessDashboard.cells",
            &mut push,
        );
        check_flags(
            dashboard.extra_flags.as_ref(),
            "spec.vitessDashboard.extraFlags",
            &mut push,
        );
    }
    if let Some(vtadmin) = &spec.vtadmin {
        check_cell_refs(
            &ctx,
            vtadmin.cells.as_deref(),
            "spec.vtadmin.cells",
            &mut push,
        );
        let cells = vtadmin.cells.as_ref().map_or(ctx.cells.len(), Vec::len);
        let addresses = vtadmin.api_addresses.len();
        if addresses != 1 && addresses != cells {
            push(
                "spec.vtadmin.apiAddresses".into(),
                format!("give one address, or one per vtadmin cell ({cells}), not {addresses}"),
            );
        }
    }
    check_flags(
        spec.extra_vitess_flags.as_ref(),
        "spec.extraVitessFlags",
        &mut push,
    );
    check_gateways(spec, &mut push);
    for (k, keyspace) in spec.keyspaces.iter().enumerate() {
        check_keyspace(&ctx, keyspace, &format!("spec.keyspaces[{k}]"), &mut push);
    }
    check_schedules(spec, &mut push);
    check_location_volumes(spec, &mut push);
}

/// Each cell's gateway: its extra flags, and TLS given whole.
fn check_gateways(spec: &VitessClusterSpec, push: &mut impl FnMut(String, String)) {
    for (i, cell) in spec.cells.iter().enumerate() {
        let Some(gateway) = &cell.gateway else {
            continue;
        };
        let path = format!("spec.cells[{i}].gateway");
        check_flags(
            gateway.extra_flags.as_ref(),
            &format!("{path}.extraFlags"),
            push,
        );
        if let Some(tls) = gateway
            .secure_transport
            .as_ref()
            .and_then(|s| s.tls.as_ref())
            && tls.cert_secret.is_some() != tls.key_secret.is_some()
        {
            push(
                format!("{path}.secureTransport.tls"),
                "set both certSecret and keySecret, or neither".into(),
            );
        }
    }
}

/// Each backup schedule's strategies: what they back up exists, and their extra flags.
fn check_schedules(spec: &VitessClusterSpec, push: &mut impl FnMut(String, String)) {
    let Some(backup) = &spec.backup else {
        return;
    };
    for (s, schedule) in backup.schedules.iter().enumerate() {
        if !schedule.frequency.is_empty()
            && let Err(message) = frequency_minutes(&schedule.frequency)
        {
            push(format!("spec.backup.schedules[{s}].frequency"), message);
        }
        for (t, strategy) in schedule.strategies.iter().enumerate() {
            let path = format!("spec.backup.schedules[{s}].strategies[{t}]");
            check_schedule_target(spec, strategy, &path, push);
            check_flags(
                strategy.extra_flags.as_ref(),
                &format!("{path}.extraFlags"),
                push,
            );
        }
    }
}

/// Each backup schedule's VitessBackupSchedule name (`<cluster>-vbsc-<schedule>-<hash>`) is
/// the `planetscale.com/backup-schedule` label of its Jobs (as in the Go operator), so it must
/// fit a label value: otherwise every Job would be refused, long after the cluster was.
pub fn check_schedule_names(cluster: &str, spec: &VitessClusterSpec, out: &mut Vec<Issue>) {
    let schedules = spec.backup.iter().flat_map(|b| b.schedules.iter());
    for (s, schedule) in schedules.enumerate() {
        let name = crate::domain::names::cluster::backup_schedule(cluster, &schedule.name);
        if name.len() > 63 {
            out.push(Issue {
                path: format!("spec.backup.schedules[{s}].name"),
                message: format!(
                    "its VitessBackupSchedule {name} is {} characters long, and its Jobs carry \
                     that name as a label value, which holds 63 at most: shorten the schedule's \
                     or the cluster's name by {}",
                    name.len(),
                    name.len() - 63
                ),
            });
        }
    }
}

/// Each backup location's `volume` is a core/v1 VolumeSource (the schema keeps it as given).
fn check_location_volumes(spec: &VitessClusterSpec, push: &mut impl FnMut(String, String)) {
    let locations = spec.backup.iter().flat_map(|b| b.locations.iter());
    for (i, location) in locations.enumerate() {
        if let Some(volume) = &location.volume
            && let Err(err) = crate::desired::backup::location_volume(volume)
        {
            push(
                format!("spec.backup.locations[{i}].volume"),
                format!("not a core/v1 VolumeSource: {err}"),
            );
        }
    }
}

/// What a VitessCluster spec asks for that runs otherwise than in the Go operator; paths start
/// at `spec`.
pub fn cluster_warnings(spec: &VitessClusterSpec, out: &mut Vec<Issue>) {
    let mut warn = |path: String, message: &str| {
        out.push(Issue {
            path,
            message: message.into(),
        })
    };
    // Without an image nothing runs vtadmin (no default image holds vtadmin-web), as in the
    // Go operator, which only logs it.
    if spec.vtadmin.is_some() && spec.images.as_ref().is_none_or(|i| i.vtadmin.is_none()) {
        warn(
            "spec.vtadmin".into(),
            "not acted on: spec.images.vtadmin is not set, and no default image holds \
             vtadmin-web; vtadmin is not run",
        );
    }
    for (k, keyspace) in spec.keyspaces.iter().enumerate() {
        if keyspace
            .vitess_orchestrator
            .as_ref()
            .is_some_and(|o| o.service.is_some())
        {
            warn(
                format!("spec.keyspaces[{k}].vitessOrchestrator.service"),
                "not acted on: vtorc has no Service (the Go operator makes none either)",
            );
        }
    }
    if let Some(topology) = &spec.topology_reconciliation {
        for (field, value) in [
            ("pruneShardCells", topology.prune_shard_cells),
            ("pruneSrvKeyspaces", topology.prune_srv_keyspaces),
        ] {
            if value == Some(true) {
                warn(
                    format!("spec.topologyReconciliation.{field}"),
                    "not acted on: this operator does not prune these topology records yet \
                     (false, which keeps them, is what it does)",
                );
            }
        }
    }
    if spec
        .backup
        .as_ref()
        .and_then(|b| b.subcontroller.as_ref())
        .is_some_and(|s| s.service_account_name.is_some())
    {
        warn(
            "spec.backup.subcontroller.serviceAccountName".into(),
            "not acted on: this operator lists backups through vtctld and runs no subcontroller \
             pod",
        );
    }
    for (path, template) in shard_templates(spec) {
        let replication = template.replication.as_ref();
        if replication.is_some_and(|r| r.enforce_semi_sync.is_some()) {
            warn(
                format!("{path}.replication.enforceSemiSync"),
                "not acted on: deprecated (older Go operator releases); set the keyspace's \
                 durabilityPolicy instead",
            );
        }
        if replication.and_then(|r| r.recover_restarted_master) == Some(false) {
            warn(
                format!("{path}.replication.recoverRestartedMaster"),
                "false has no effect: the shard's vtorc repairs replication after a primary \
                 restarts (the Go operator reads this field nowhere either)",
            );
        }
    }
}

/// Every shard template of the cluster, with its path: each equal partitioning's, each custom
/// shard's.
fn shard_templates(spec: &VitessClusterSpec) -> Vec<(String, &VitessShardTemplate)> {
    let mut out = Vec::new();
    for (k, keyspace) in spec.keyspaces.iter().enumerate() {
        for (p, partitioning) in keyspace.partitionings.iter().enumerate() {
            let path = format!("spec.keyspaces[{k}].partitionings[{p}]");
            if let Some(equal) = &partitioning.equal {
                out.push((format!("{path}.equal.shardTemplate"), &equal.shard_template));
            }
            for (s, shard) in partitioning
                .custom
                .iter()
                .flat_map(|c| c.shards.iter().enumerate())
            {
                out.push((format!("{path}.custom.shards[{s}]"), &shard.template));
            }
        }
    }
    out
}

fn check_keyspace(
    ctx: &Context,
    keyspace: &VitessKeyspaceTemplate,
    path: &str,
    push: &mut impl FnMut(String, String),
) {
    for (p, partitioning) in keyspace.partitionings.iter().enumerate() {
        let path = format!("{path}.partitionings[{p}]");
        if let Some(equal) = &partitioning.equal {
            check_hex_width(
                equal.parts,
                equal.hex_width,
                &format!("{path}.equal.hexWidth"),
                push,
            );
            check_template(
                ctx,
                &equal.shard_template,
                &format!("{path}.equal.shardTemplate"),
                push,
            );
        }
        if let Some(custom) = &partitioning.custom {
            let shards_path = format!("{path}.custom.shards");
            check_custom_ranges(
                custom.shards.iter().map(|s| &s.key_range),
                &shards_path,
                push,
            );
            for (s, shard) in custom.shards.iter().enumerate() {
                check_template(ctx, &shard.template, &format!("{shards_path}[{s}]"), push);
            }
        }
    }
}

/// Checks a list of custom key ranges: each well formed, together covering the keyspace once.
pub fn check_custom_ranges<'a>(
    ranges: impl Iterator<Item = &'a VitessKeyRange>,
    path: &str,
    push: &mut impl FnMut(String, String),
) {
    let mut parsed: Vec<KeyRange> = Vec::new();
    let mut index_of: Vec<usize> = Vec::new();
    for (i, range) in ranges.enumerate() {
        match KeyRange::new(&range.start, &range.end) {
            Ok(kr) => {
                parsed.push(kr);
                index_of.push(i);
            }
            // Bad hex and a start that sorts after its end are the CRD's own rules (pattern and
            // CEL), already reported; only bounds of different widths (80-8000) are left.
            Err(keyrange::Error::Empty { .. }) if range.start.as_str() < range.end.as_str() => {
                push(
                    format!("{path}[{i}].keyRange"),
                    format!(
                        "key range {}-{} is empty: bounds compare as keyspace-ID prefixes, so {} and {} are the same point or the end is lower",
                        range.start, range.end, range.start, range.end
                    ),
                )
            }
            Err(_) => {}
        }
    }
    for problem in keyrange::check_coverage(&parsed) {
        match problem {
            Coverage::Overlap { a, b } => push(
                format!("{path}[{}].keyRange", index_of[b]),
                format!(
                    "key range {} overlaps {path}[{}] ({})",
                    parsed[b], index_of[a], parsed[a]
                ),
            ),
            Coverage::Gap { from, to } => push(
                path.to_string(),
                format!(
                    "key ranges leave {from}-{to} uncovered; together they must cover the whole keyspace"
                ),
            ),
        }
    }
}

fn check_hex_width(
    parts: i32,
    hex_width: Option<i32>,
    path: &str,
    push: &mut impl FnMut(String, String),
) {
    let Some(width) = hex_width.filter(|w| *w > 0) else {
        return;
    };
    let needed = keyrange::equal_partitioning(parts.max(1) as u32)
        .first()
        .map_or(0, |r| r.end.len()) as i32;
    if width % 2 != 0 {
        push(
            path.into(),
            format!("must be even (whole bytes), not {width}"),
        );
    } else if width < needed {
        push(
            path.into(),
            format!("{parts} parts need at least {needed} hex digits, not {width}"),
        );
    }
}

fn check_template(
    ctx: &Context,
    template: &VitessShardTemplate,
    path: &str,
    push: &mut impl FnMut(String, String),
) {
    for (i, pool) in template.tablet_pools.iter().enumerate() {
        check_pool(ctx, pool, &format!("{path}.tabletPools[{i}]"), push);
    }
}

fn check_pool(
    ctx: &Context,
    pool: &VitessShardTabletPool,
    path: &str,
    push: &mut impl FnMut(String, String),
) {
    if !ctx.cells.contains(&pool.cell) {
        push(
            format!("{path}.cell"),
            format!(
                "cell {:?} is not one of the cluster's cells ({})",
                pool.cell,
                list(&ctx.cells)
            ),
        );
    }
    if pool.mysqld.is_none() && pool.external_datastore.is_none() {
        push(
            path.to_string(),
            "a tablet pool needs mysqld (a local MySQL) or externalDatastore".into(),
        );
    }
    let location = pool.backup_location_name.clone().unwrap_or_default();
    match &ctx.locations {
        Some(names) if !names.contains(&location) => push(
            format!("{path}.backupLocationName"),
            format!(
                "backup location {location:?} is not defined in spec.backup.locations ({})",
                list(names)
            ),
        ),
        None if !location.is_empty() => push(
            format!("{path}.backupLocationName"),
            format!("backup location {location:?} is named but the cluster has no spec.backup"),
        ),
        _ => {}
    }
    check_flags(
        pool.vttablet.extra_flags.as_ref(),
        &format!("{path}.vttablet.extraFlags"),
        push,
    );
    check_flags(
        pool.vttablet.vtbackup_extra_flags.as_ref(),
        &format!("{path}.vttablet.vtbackupExtraFlags"),
        push,
    );
}

fn check_cell_refs(
    ctx: &Context,
    cells: Option<&[String]>,
    path: &str,
    push: &mut impl FnMut(String, String),
) {
    for (i, cell) in cells.into_iter().flatten().enumerate() {
        if !ctx.cells.contains(cell) {
            push(
                format!("{path}[{i}]"),
                format!(
                    "cell {cell:?} is not one of the cluster's cells ({})",
                    list(&ctx.cells)
                ),
            );
        }
    }
}

/// Flag names are given without dashes: the operator writes `--name=value`.
fn check_flags(flags: Option<&Flags>, path: &str, push: &mut impl FnMut(String, String)) {
    for name in flags.into_iter().flat_map(|f| f.keys()) {
        if name.starts_with('-') || name.is_empty() || name.contains('=') {
            push(
                format!("{path}.{name}"),
                "write flag names without leading dashes or '=' (e.g. `db_charset: utf8mb4`)"
                    .into(),
            );
        }
    }
}

/// The keyspace and shard a strategy names exist. Empty or misplaced fields are the CEL rules'
/// to report, so they are passed over here.
fn check_schedule_target(
    spec: &VitessClusterSpec,
    strategy: &VitessBackupScheduleStrategy,
    path: &str,
    push: &mut impl FnMut(String, String),
) {
    let scope = strategy.scope.unwrap_or_default();
    if scope == BackupScope::Cluster {
        if spec.keyspaces.is_empty() {
            push(
                format!("{path}.scope"),
                "scope Cluster backs up every shard of spec.keyspaces, which has none".into(),
            );
        }
        return;
    }
    let keyspace = &strategy.keyspace;
    if keyspace.is_empty() {
        return;
    }
    let Some(ks) = spec.keyspaces.iter().find(|k| &k.name == keyspace) else {
        let names: BTreeSet<String> = spec.keyspaces.iter().map(|k| k.name.clone()).collect();
        push(
            format!("{path}.keyspace"),
            format!(
                "keyspace {keyspace:?} is not in spec.keyspaces ({})",
                list(&names)
            ),
        );
        return;
    };
    let shards: BTreeSet<String> = ks.partitionings.iter().flat_map(shard_names).collect();
    let shard = &strategy.shard;
    if scope == BackupScope::Shard && !shard.is_empty() && !shards.contains(shard) {
        push(
            format!("{path}.shard"),
            format!(
                "shard {shard:?} is not a shard of keyspace {keyspace:?} ({})",
                list(&shards)
            ),
        );
    }
    if scope == BackupScope::Keyspace && shards.is_empty() {
        push(
            format!("{path}.keyspace"),
            format!("keyspace {keyspace:?} has no shards (no partitionings) to back up"),
        );
    }
}

/// Vitess names of the shards a partitioning makes.
pub fn shard_names(partitioning: &VitessKeyspacePartitioning) -> Vec<String> {
    if let Some(equal) = &partitioning.equal {
        keyrange::equal_ranges(equal.parts, equal.hex_width)
            .iter()
            .map(ToString::to_string)
            .collect()
    } else if let Some(custom) = &partitioning.custom {
        custom
            .shards
            .iter()
            .map(|s| format!("{}-{}", s.key_range.start, s.key_range.end))
            .collect()
    } else {
        Vec::new()
    }
}

fn list(names: &BTreeSet<String>) -> String {
    if names.is_empty() {
        return "none".into();
    }
    names
        .iter()
        .map(|n| {
            if n.is_empty() {
                "\"\"".to_string()
            } else {
                n.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}
