//! Reconciles VitessBackup requests: a VitessBackup a user created with `spec.keyspace` and
//! `spec.shard` asks for one backup of that shard. The operator asks vtctld `BackupShard`
//! exactly once (a replica; the primary only if `spec.allowPrimary`), reports progress in
//! status and, when done, names the backup it produced. Inventory entries (empty spec) are the
//! storage controller's. The shard controller creates such a request itself for the first
//! backup of a shard that already serves. Nothing here ever deletes data.

use std::sync::Arc;
use std::time::SystemTime;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams};
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use super::condition::{self, Readiness};
use super::{Context, Error, POLL};
use crate::api::backup::VitessBackupStatus;
use crate::api::{VitessBackup, VitessCluster};
use crate::vitess::BackupOutcome;
use crate::{domain::labels, k8s::apply};

/// The condition of a request: False while it runs or after it failed, True once complete.
pub const COMPLETE: &str = "Complete";
/// Reason of a request whose BackupShard was sent; persisted before the call, so a restarted
/// operator never sends it twice.
const STARTED: &str = "BackupStarted";
/// Reasons of a request that is over, one way or the other.
const FINISHED: [&str; 3] = ["BackupComplete", "BackupFailed", "Interrupted"];

/// What became of a BackupShard this operator process sent.
#[derive(Clone, Debug)]
pub enum RequestState {
    Running,
    Done(Result<BackupOutcome, String>),
}

pub async fn run(ctx: Arc<Context>) {
    Controller::new(ctx.api::<VitessBackup>(), watcher::Config::default())
        .with_config(super::config())
        .shutdown_on_signal()
        .run(reconcile, super::error_policy, ctx.clone())
        .for_each(|result| super::report(&ctx, result))
        .await;
}

fn now() -> Time {
    Time(Timestamp::from_second(Timestamp::now().as_second()).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// Where a request is, by its persisted `Complete` condition.
#[derive(Debug, PartialEq, Eq)]
enum Phase {
    /// Nothing sent yet (possibly waiting for vtctld).
    New,
    /// BackupShard was sent.
    Started,
    /// Complete, failed or interrupted: nothing more to do.
    Finished,
}

fn phase(status: &VitessBackupStatus) -> Phase {
    match status.conditions.iter().find(|c| c.type_ == COMPLETE) {
        Some(c) if c.reason == STARTED => Phase::Started,
        Some(c) if FINISHED.contains(&c.reason.as_str()) => Phase::Finished,
        _ => Phase::New,
    }
}

/// The cluster a request is for: its `planetscale.com/cluster` label, else the namespace's
/// only VitessCluster.
async fn cluster_of(
    ctx: &Context,
    request: &VitessBackup,
) -> Result<Result<String, String>, Error> {
    if let Some(cluster) = request.labels().get(labels::CLUSTER) {
        return Ok(Ok(cluster.clone()));
    }
    let clusters: Api<VitessCluster> = ctx.api_in(request);
    let list = clusters
        .list(&ListParams::default())
        .await
        .map_err(|source| Error::List {
            what: "VitessClusters".into(),
            source: Box::new(source),
        })?;
    Ok(match list.items.as_slice() {
        [only] => Ok(only.name_any()),
        _ => Err(format!(
            "the namespace has {} VitessClusters; say which with the {} label",
            list.items.len(),
            labels::CLUSTER
        )),
    })
}

#[tracing::instrument(skip_all, fields(backup = %request.name_any()))]
async fn reconcile(request: Arc<VitessBackup>, ctx: Arc<Context>) -> Result<Action, Error> {
    let (Some(keyspace), Some(shard)) = (&request.spec.keyspace, &request.spec.shard) else {
        // An inventory entry.
        return Ok(Action::await_change());
    };
    let client = &ctx.client;
    let generation = request.meta().generation;
    let previous = request.status.clone().unwrap_or_default();
    let key = request.meta().uid.clone().unwrap_or_default();
    let started = match phase(&previous) {
        Phase::Finished => return Ok(Action::await_change()),
        Phase::Started => true,
        Phase::New => false,
    };
    let object: &VitessBackup = &request;
    let write = |status: VitessBackupStatus| async move {
        apply::status(client, object, object.status.as_ref(), &status).await
    };
    let condition = |readiness: Readiness| {
        condition::with_condition(&previous.conditions, COMPLETE, Some(&readiness), generation)
    };

    let state = ctx.backup_requests(|m| m.get(&key).cloned());
    tracing::debug!(?state, started, "backup request");
    match state {
        None if started => {
            // Sent by an earlier operator process, whose answer is lost: never send it again.
            write(VitessBackupStatus {
                conditions: condition(Readiness::new(
                    false,
                    "Interrupted",
                    "the operator restarted while the backup ran; its result is unknown (see the VitessBackup inventory); create a new VitessBackup to back up again",
                )),
                ..previous.clone()
            })
            .await?;
            Ok(Action::await_change())
        }
        None => {
            let cluster = match cluster_of(&ctx, &request).await? {
                Ok(cluster) => cluster,
                Err(why) => {
                    write(VitessBackupStatus {
                        observed_generation: generation,
                        conditions: condition(Readiness::new(false, "NoCluster", why)),
                        ..previous.clone()
                    })
                    .await?;
                    return Ok(Action::requeue(POLL));
                }
            };
            let namespace = request.meta().namespace.clone().unwrap_or_default();
            let vtctld = match ctx.vtctld_of(&namespace, &cluster) {
                Ok(vtctld) => vtctld,
                Err(why) => {
                    write(VitessBackupStatus {
                        observed_generation: generation,
                        conditions: condition(Readiness::new(
                            false,
                            "WaitingForVtctld",
                            why.to_string(),
                        )),
                        ..previous.clone()
                    })
                    .await?;
                    return Ok(Action::requeue(POLL));
                }
            };
            // Persist "started" first: if this write fails nothing was sent, and once it
            // succeeded no later reconcile sends another BackupShard.
            write(VitessBackupStatus {
                observed_generation: generation,
                start_time: Some(now()),
                storage_directory: Some(format!("{keyspace}/{shard}")),
                complete: false,
                conditions: condition(Readiness::new(
                    false,
                    STARTED,
                    format!("vtctld BackupShard {keyspace}/{shard} sent"),
                )),
                ..previous.clone()
            })
            .await?;
            ctx.backup_requests(|m| m.insert(key.clone(), RequestState::Running));
            let (keyspace, shard, task_ctx) = (keyspace.clone(), shard.clone(), ctx.clone());
            let allow_primary = request.spec.allow_primary == Some(true);
            tokio::spawn(async move {
                let result = vtctld
                    .backup_shard(&keyspace, &shard, allow_primary)
                    .await
                    .map_err(|e| e.to_string());
                task_ctx.backup_requests(|m| m.insert(key, RequestState::Done(result)));
            });
            Ok(Action::requeue(POLL))
        }
        Some(RequestState::Running) => Ok(Action::requeue(POLL)),
        Some(RequestState::Done(Err(message))) => {
            write(VitessBackupStatus {
                finished_time: Some(now()),
                complete: false,
                conditions: condition(Readiness::new(false, "BackupFailed", message)),
                ..previous.clone()
            })
            .await?;
            // The entry stays: a reconcile that still sees the old status in the cache must
            // find the outcome, not conclude that an earlier process sent the call.
            Ok(Action::await_change())
        }
        Some(RequestState::Done(Ok(outcome))) => {
            let storage_name =
                produced_backup(&ctx, &request, keyspace, shard, &outcome, &previous).await;
            let tablet = outcome
                .tablet
                .as_ref()
                .map_or_else(|| "a tablet".to_string(), ToString::to_string);
            write(VitessBackupStatus {
                finished_time: Some(now()),
                complete: true,
                storage_name: storage_name.clone().or(previous.storage_name.clone()),
                conditions: condition(Readiness::new(
                    true,
                    "BackupComplete",
                    match &storage_name {
                        Some(name) => format!("backup {name} taken by {tablet}"),
                        None => format!("backup taken by {tablet}"),
                    },
                )),
                ..previous.clone()
            })
            .await?;
            // The entry stays: a reconcile that still sees the old status in the cache must
            // find the outcome, not conclude that an earlier process sent the call.
            Ok(Action::await_change())
        }
    }
}

/// The name in storage of the backup a request produced: the newest backup of the shard by
/// the tablet that took it, started no earlier than the request (to the second).
async fn produced_backup(
    ctx: &Context,
    request: &VitessBackup,
    keyspace: &str,
    shard: &str,
    outcome: &BackupOutcome,
    previous: &VitessBackupStatus,
) -> Option<String> {
    let tablet = outcome.tablet.as_ref()?;
    let cluster = cluster_of(ctx, request).await.ok()?.ok()?;
    let namespace = request.meta().namespace.clone().unwrap_or_default();
    let vtctld = ctx.vtctld_of(&namespace, &cluster).ok()?;
    let since = previous
        .start_time
        .as_ref()
        .map(|t| SystemTime::from(t.0))
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let backups = vtctld.backups(keyspace, shard, 10).await.ok()?;
    backups
        .into_iter()
        .rev()
        .find(|b| b.tablet.as_ref() == Some(tablet) && b.time.is_some_and(|t| t >= since))
        .map(|b| b.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_reason(reason: &str) -> VitessBackupStatus {
        VitessBackupStatus {
            conditions: condition::with_condition(
                &Vec::new(),
                COMPLETE,
                Some(&Readiness::new(reason == "BackupComplete", reason, "")),
                None,
            ),
            ..VitessBackupStatus::default()
        }
    }

    #[test]
    fn only_terminal_reasons_finish_a_request() {
        assert_eq!(phase(&VitessBackupStatus::default()), Phase::New);
        // Waiting is not finished: the request must still be sent once vtctld is known.
        assert_eq!(phase(&with_reason("WaitingForVtctld")), Phase::New);
        assert_eq!(phase(&with_reason("NoCluster")), Phase::New);
        assert_eq!(phase(&with_reason(STARTED)), Phase::Started);
        for reason in FINISHED {
            assert_eq!(phase(&with_reason(reason)), Phase::Finished, "{reason}");
        }
    }
}
