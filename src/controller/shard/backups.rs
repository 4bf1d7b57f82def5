//! The shard's backups: what the inventory says for its status, and whether a new shard
//! waits for its first backup (vtbackup-init) before a primary is elected.

use super::*;

/// The shard's backups, for its status and its first backup.
pub(super) enum Backups {
    /// The shard has no backup locations.
    None,
    /// vtctld cannot say whether the shard has a primary: the status keeps what it said,
    /// unless the location's Secret is missing (vtctld, which mounts it too, cannot start
    /// then): `BackupInitialized` says so.
    Unknown { missing_secret: Option<Readiness> },
    Known {
        locations: Vec<ShardBackupLocationStatus>,
        decision: backupinit::Decision,
        fresh: Option<Readiness>,
    },
}

/// Reads the shard's backups and decides how it gets its first one; also returns the init
/// pod the shard would get.
pub(super) async fn backups(
    ctx: &Context,
    shard: &VitessShard,
    observed: &[Observed],
    unwanted: &[Pod],
    vitess: Option<&VitessView>,
) -> Result<(Backups, Option<VtbackupInit>), Error> {
    let locations = shard.spec.backup_locations.clone().unwrap_or_default();
    if locations.is_empty() {
        return Ok((Backups::None, None));
    }
    let Some(view) = vitess else {
        let missing_secret = backupinit::missing_secret(ctx, shard)
            .await?
            .map(|why| Readiness::new(false, "BackupSecretMissing", why));
        return Ok((Backups::Unknown { missing_secret }, None));
    };
    let init = desired::vtbackup::init(shard)?;
    let seen = backupinit::observe(ctx, shard, init.as_ref(), view.primary.as_deref()).await?;
    let statuses = backupinit::location_status(&locations, &seen.backups);
    let settled = unwanted.is_empty()
        && observed.iter().all(|o| {
            pod_ready(&o.pod) && !o.pod.annotations().contains_key(labels::drain::STARTED)
        });
    let decision = backupinit::decide(&backupinit::Inputs {
        configured: true,
        init_wanted: init.is_some(),
        primary: view.primary.clone(),
        settled,
        counts: backupinit::counts(&statuses),
        init_pod: seen.init_pod,
        request: seen.request,
    });
    let fresh = backupinit::freshness(&locations, &statuses, SystemTime::now());
    if let Some(latest) = statuses
        .iter()
        .filter_map(|l| l.latest_complete_backup_time.as_ref())
        .map(|t| t.0.as_second())
        .max()
    {
        crate::process::metrics::global().set_last_backup(
            &shard.namespace().unwrap_or_default(),
            &shard.name_any(),
            latest as f64,
        );
    }
    Ok((
        Backups::Known {
            locations: statuses,
            decision,
            fresh,
        },
        init,
    ))
}

/// How soon a shard without a primary looks again. While a tablet pod is not Running, its
/// status event wakes the shard (pods are watched): no poll. Once all run, only Vitess knows
/// when their tablets register, which no event tells (and a real tablet is not Ready before
/// a primary): a short poll while the last pod started recently (a vttablet registers as it
/// starts), then the slow one.
pub(super) fn election_poll(tablets: &[Observed], now: SystemTime) -> Duration {
    if tablets.iter().any(|t| !pod_running(&t.pod)) {
        return REQUEUE;
    }
    let last_started = tablets.iter().filter_map(|t| started_at(&t.pod)).max();
    match last_started.and_then(|t| now.duration_since(t).ok()) {
        Some(ago) if ago < REGISTER_WINDOW => REGISTER_POLL,
        _ => WAIT,
    }
}

/// When the pod last started: the latest start of its running containers, or, where the node
/// reports none, when its Ready condition last changed.
pub(super) fn started_at(pod: &Pod) -> Option<SystemTime> {
    let status = pod.status.as_ref()?;
    let containers = status
        .container_statuses
        .iter()
        .flatten()
        .filter_map(|c| c.state.as_ref()?.running.as_ref()?.started_at.as_ref());
    let ready = status
        .conditions
        .iter()
        .flatten()
        .filter(|c| c.type_ == "Ready")
        .filter_map(|c| c.last_transition_time.as_ref());
    containers.chain(ready).map(|t| SystemTime::from(t.0)).max()
}

/// How long after its tablets started a shard without a primary polls fast.
pub(super) const REGISTER_WINDOW: Duration = Duration::from_secs(60);
/// The fast poll: every tablet runs, their registration is awaited.
pub(super) const REGISTER_POLL: Duration = Duration::from_secs(1);
