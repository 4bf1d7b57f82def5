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
use crate::vitess::{BackupInfo, BackupOutcome, BackupStatus};
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
    Done(Result<BackupOutcome, crate::vitess::Error>),
}

/// A request without the cluster label, in a namespace without exactly one VitessCluster.
#[derive(Debug, thiserror::Error)]
#[error(
    "the namespace has {count} VitessClusters; say which with the {} label",
    labels::CLUSTER
)]
struct WhichCluster {
    count: usize,
}

pub async fn run(ctx: Arc<Context>) {
    Controller::new(ctx.api::<VitessBackup>(), watcher::Config::default())
        .with_config(super::config())
        .trigger_backoff(super::backoff::WatchBackoff::default())
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
) -> Result<Result<String, WhichCluster>, Error> {
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
        _ => Err(WhichCluster {
            count: list.items.len(),
        }),
    })
}

#[tracing::instrument(skip_all, fields(backup = %request.name_any()))]
async fn reconcile(request: Arc<VitessBackup>, ctx: Arc<Context>) -> Result<Action, Error> {
    let (Some(keyspace), Some(shard)) = (&request.spec.keyspace, &request.spec.shard) else {
        // An inventory entry.
        return Ok(Action::await_change());
    };
    let report = Report::new(&ctx, &request);
    let key = request.meta().uid.clone().unwrap_or_default();
    let started = match phase(&report.previous) {
        Phase::Finished => {
            // The outcome is in the status this reconcile read: its entry is needed no more.
            ctx.backup_requests(|m| m.remove(&key));
            return Ok(Action::await_change());
        }
        Phase::Started => true,
        Phase::New => false,
    };
    let state = ctx.backup_requests(|m| m.get(&key).cloned());
    tracing::debug!(?state, started, "backup request");
    match state {
        // Sent by an earlier operator process, whose answer is lost: never send it again.
        None if started => after_restart(&ctx, &request, &report, keyspace, shard).await,
        None => send(&ctx, &request, &report, key, keyspace, shard).await,
        Some(RequestState::Running) => Ok(Action::requeue(POLL)),
        // The entry stays after either outcome until a reconcile reads the finished status
        // (above): one that still sees the old status in the cache must find the outcome,
        // not conclude that an earlier process sent it.
        Some(RequestState::Done(Err(failed))) => report.failed(failed.to_string()).await,
        Some(RequestState::Done(Ok(outcome))) => {
            let storage_name =
                produced_backup(&ctx, &request, keyspace, shard, &outcome, &report.previous).await;
            report.complete(&outcome, storage_name).await
        }
    }
}

/// A request's status writes: each starts from the status it had when the reconcile began.
struct Report<'a> {
    ctx: &'a Context,
    request: &'a VitessBackup,
    previous: VitessBackupStatus,
    generation: Option<i64>,
}

impl<'a> Report<'a> {
    fn new(ctx: &'a Context, request: &'a VitessBackup) -> Self {
        Self {
            ctx,
            request,
            previous: request.status.clone().unwrap_or_default(),
            generation: request.meta().generation,
        }
    }

    async fn write(&self, status: VitessBackupStatus) -> Result<(), Error> {
        let request = self.request;
        apply::status(&self.ctx.client, request, request.status.as_ref(), &status).await?;
        Ok(())
    }

    /// The previous conditions with `Complete` set to `readiness`.
    fn condition(&self, readiness: Readiness) -> crate::api::shared::Conditions {
        condition::with_condition(
            &self.previous.conditions,
            COMPLETE,
            Some(&readiness),
            self.generation,
        )
    }

    /// Not sent yet, because of `reason`; looked at again soon.
    async fn waiting(&self, reason: &str, why: String) -> Result<Action, Error> {
        self.write(VitessBackupStatus {
            observed_generation: self.generation,
            conditions: self.condition(Readiness::new(false, reason, why)),
            ..self.previous.clone()
        })
        .await?;
        Ok(Action::requeue(POLL))
    }

    /// Persisted before BackupShard is sent: if this write fails nothing was sent, and once
    /// it succeeded no later reconcile sends another.
    async fn started(&self, keyspace: &str, shard: &str) -> Result<(), Error> {
        self.write(VitessBackupStatus {
            observed_generation: self.generation,
            start_time: Some(now()),
            storage_directory: Some(format!("{keyspace}/{shard}")),
            complete: false,
            conditions: self.condition(Readiness::new(
                false,
                STARTED,
                format!("vtctld BackupShard {keyspace}/{shard} sent"),
            )),
            ..self.previous.clone()
        })
        .await
    }

    /// Sent by an earlier process that did not live to read the answer, and no backup known
    /// to be complete was found for it: `seen` says what was.
    async fn interrupted(&self, seen: &str) -> Result<Action, Error> {
        self.write(VitessBackupStatus {
            conditions: self.condition(Readiness::new(
                false,
                "Interrupted",
                format!(
                    "the operator restarted while the backup ran; {seen}; create a new \
                     VitessBackup to back up again"
                ),
            )),
            ..self.previous.clone()
        })
        .await?;
        Ok(Action::await_change())
    }

    /// Sent by an earlier process that did not live to read the answer; storage holds `found`,
    /// complete, taken since the request started.
    async fn found_complete(&self, found: &BackupInfo) -> Result<Action, Error> {
        let tablet = found
            .tablet
            .as_ref()
            .map_or_else(|| "a tablet".to_string(), ToString::to_string);
        self.write(VitessBackupStatus {
            finished_time: Some(now()),
            complete: true,
            storage_name: Some(found.name.clone()),
            conditions: self.condition(Readiness::new(
                true,
                "BackupComplete",
                format!(
                    "backup {} taken by {tablet} (found in storage: the operator restarted \
                     while it ran)",
                    found.name
                ),
            )),
            ..self.previous.clone()
        })
        .await?;
        Ok(Action::await_change())
    }

    async fn failed(&self, message: String) -> Result<Action, Error> {
        self.write(VitessBackupStatus {
            finished_time: Some(now()),
            complete: false,
            conditions: self.condition(Readiness::new(false, "BackupFailed", message)),
            ..self.previous.clone()
        })
        .await?;
        Ok(Action::await_change())
    }

    async fn complete(
        &self,
        outcome: &BackupOutcome,
        storage_name: Option<String>,
    ) -> Result<Action, Error> {
        let tablet = outcome
            .tablet
            .as_ref()
            .map_or_else(|| "a tablet".to_string(), ToString::to_string);
        let message = match &storage_name {
            Some(name) => format!("backup {name} taken by {tablet}"),
            None => format!("backup taken by {tablet}"),
        };
        self.write(VitessBackupStatus {
            finished_time: Some(now()),
            complete: true,
            storage_name: storage_name.or(self.previous.storage_name.clone()),
            conditions: self.condition(Readiness::new(true, "BackupComplete", message)),
            ..self.previous.clone()
        })
        .await?;
        Ok(Action::await_change())
    }
}

/// Sends the request's one BackupShard, once its cluster's vtctld is known and "started" is
/// persisted; its answer is recorded under `key` for a later reconcile.
async fn send(
    ctx: &Arc<Context>,
    request: &VitessBackup,
    report: &Report<'_>,
    key: String,
    keyspace: &str,
    shard: &str,
) -> Result<Action, Error> {
    let cluster = match cluster_of(ctx, request).await? {
        Ok(cluster) => cluster,
        Err(why) => return report.waiting("NoCluster", why.to_string()).await,
    };
    let namespace = request.meta().namespace.clone().unwrap_or_default();
    let vtctld = match ctx.vtctld_of(&namespace, &cluster).await {
        Ok(vtctld) => vtctld,
        Err(why) => return report.waiting("WaitingForVtctld", why.to_string()).await,
    };
    report.started(keyspace, shard).await?;
    ctx.backup_requests(|m| m.insert(key.clone(), RequestState::Running));
    let (keyspace, shard, task_ctx) = (keyspace.to_string(), shard.to_string(), ctx.clone());
    let allow_primary = request.spec.allow_primary == Some(true);
    tokio::spawn(async move {
        let result = vtctld.backup_shard(&keyspace, &shard, allow_primary).await;
        task_ctx.backup_requests(|m| m.insert(key, RequestState::Done(result)));
    });
    Ok(Action::requeue(POLL))
}

/// A request sent by an earlier operator process, whose answer was lost with it: the shard's
/// backups since the request started say what became of it. Nothing is sent again. While
/// vtctld cannot say, the request stays started and is looked at again.
async fn after_restart(
    ctx: &Context,
    request: &VitessBackup,
    report: &Report<'_>,
    keyspace: &str,
    shard: &str,
) -> Result<Action, Error> {
    if let Err(why) = cluster_of(ctx, request).await? {
        return report
            .interrupted(&format!("its cluster cannot be told now ({why})"))
            .await;
    }
    let backups = match backups_since(ctx, request, keyspace, shard, &report.previous).await {
        Ok(backups) => backups,
        Err(why) => {
            tracing::info!(%why, "cannot tell yet what became of a backup sent before a restart");
            return Ok(Action::requeue(POLL));
        }
    };
    // Times are to the second: a backup another request produced in the second this one
    // started is not this one's.
    let claimed = claimed_by_others(ctx, request).await?;
    let newest = backups.iter().rev().find(|b| !claimed.contains(&b.name));
    match newest {
        Some(b) if matches!(b.status, BackupStatus::Complete | BackupStatus::Valid) => {
            report.found_complete(b).await
        }
        Some(b) => {
            let seen = format!(
                "backup {} was taken since, and vtctld says its status is {}",
                b.name,
                b.status.name()
            );
            report.interrupted(&seen).await
        }
        None => {
            report
                .interrupted("vtctld lists no backup of the shard taken since")
                .await
        }
    }
}

/// The backups other requests of the namespace name as the ones they produced.
async fn claimed_by_others(
    ctx: &Context,
    request: &VitessBackup,
) -> Result<std::collections::BTreeSet<String>, Error> {
    let api: Api<VitessBackup> = ctx.api_in(request);
    let all = api
        .list(&ListParams::default())
        .await
        .map_err(|source| Error::List {
            what: "VitessBackups".into(),
            source: Box::new(source),
        })?;
    Ok(all
        .items
        .into_iter()
        .filter(|other| other.spec.keyspace.is_some() && other.uid() != request.uid())
        .filter_map(|other| other.status.and_then(|s| s.storage_name))
        .collect())
}

/// The shard's backups, oldest first, started no earlier than the request (to the second);
/// `Err` says why vtctld could not be asked.
async fn backups_since(
    ctx: &Context,
    request: &VitessBackup,
    keyspace: &str,
    shard: &str,
    previous: &VitessBackupStatus,
) -> Result<Vec<BackupInfo>, String> {
    let cluster = cluster_of(ctx, request)
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let namespace = request.meta().namespace.clone().unwrap_or_default();
    let vtctld = ctx
        .vtctld_of(&namespace, &cluster)
        .await
        .map_err(|e| e.to_string())?;
    let since = previous
        .start_time
        .as_ref()
        .map(|t| SystemTime::from(t.0))
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let backups = vtctld
        .backups(keyspace, shard, 10)
        .await
        .map_err(|e| e.to_string())?;
    Ok(backups
        .into_iter()
        .filter(|b| b.time.is_some_and(|t| t >= since))
        .collect())
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
    let backups = backups_since(ctx, request, keyspace, shard, previous)
        .await
        .ok()?;
    backups
        .into_iter()
        .rev()
        .find(|b| b.tablet.as_ref() == Some(tablet))
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

#[cfg(test)]
/// The reconcile against the stand-in API server and the fake vtctld.
mod reconcile_tests {
    use std::time::Duration;

    use super::*;
    use crate::controller::testing::{self, requests, writes};
    use crate::desired;
    use crate::vitess::{Alias, TabletType};
    use vtctld_fake::FakeVtctld;

    /// Waits until the BackupShard the reconcile sent has answered.
    async fn answered(ctx: &Context, key: &str) {
        for _ in 0..500 {
            let state = ctx.backup_requests(|m| m.get(key).cloned());
            if matches!(state, Some(RequestState::Done(_))) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("BackupShard did not answer");
    }

    /// The fake vtctld with one REPLICA of `commerce/-`, a context and stand-in API server
    /// holding the example cluster, the first-backup request of its shard (not inserted), and
    /// the replica's alias.
    async fn with_a_replica() -> (
        FakeVtctld,
        Arc<Context>,
        crate::k8s::mock::ApiServer,
        VitessBackup,
        Alias,
    ) {
        let vtctld = FakeVtctld::start(([127, 0, 0, 1], 0).into())
            .await
            .expect("fake vtctld");
        let address = vtctld.local_addr().to_string();
        let (ctx, server) = testing::context(Some(&address));
        let cluster = testing::example_cluster();
        server.insert_object(&cluster);
        let children = desired::cluster::children(&cluster).expect("children");
        let shard = desired::keyspace::shards(&children.keyspaces[0])
            .expect("shards")
            .remove(0);
        let request = desired::vtbackup::initial_backup_request(&shard).expect("request");
        let replica: Alias = "zone1-0000000101".parse().expect("alias");
        vtctld.register_tablet(replica.clone(), "commerce", "-", TabletType::Replica);
        (vtctld, ctx, server, request, replica)
    }

    #[tokio::test]
    async fn a_request_is_sent_once_then_reported_complete_then_steady() {
        let (vtctld, ctx, server, request, _) = with_a_replica().await;
        let request = server.insert_object(&request);
        let status = format!("status vitessbackups/{}", request.name_any());
        // vtctld is asked after reading the cluster, for its TLS settings.
        let cluster_read = "get vitessclusters/example";

        // First: "started" is persisted, then BackupShard is sent.
        reconcile(Arc::new(request.clone()), ctx.clone())
            .await
            .expect("first reconcile");
        let first = server.take_calls();
        assert_eq!(requests(&first), [cluster_read, status.as_str()]);
        assert_eq!(writes(&first), [status.as_str()]);
        let started = server.object_like(&request).expect("still there");
        assert_eq!(
            phase(started.status.as_ref().expect("status")),
            Phase::Started
        );
        answered(&ctx, request.meta().uid.as_deref().unwrap_or_default()).await;
        assert_eq!(vtctld.count("BackupShard"), 1);

        // Second: the answer is reported, with the name of the backup it produced.
        reconcile(Arc::new(started), ctx.clone())
            .await
            .expect("second reconcile");
        let second = server.take_calls();
        assert_eq!(requests(&second), [cluster_read, status.as_str()]);
        assert_eq!(writes(&second), [status.as_str()]);
        let done = server.object_like(&request).expect("still there");
        let done_status = done.status.clone().expect("status");
        assert!(done_status.complete);
        assert_eq!(phase(&done_status), Phase::Finished);
        let produced = vtctld.backups("commerce", "-");
        assert_eq!(done_status.storage_name.as_ref(), produced.first());

        // Steady: a finished request makes no request at all, and is never sent again; what
        // this process kept of it goes, as its status holds the outcome.
        reconcile(Arc::new(done.clone()), ctx.clone())
            .await
            .expect("third reconcile");
        assert!(server.take_calls().is_empty());
        assert_eq!(vtctld.count("BackupShard"), 1);
        assert_eq!(ctx.backup_requests(|m| m.len()), 0);
        reconcile(Arc::new(done), ctx.clone())
            .await
            .expect("fourth reconcile");
        assert!(server.take_calls().is_empty());
        assert_eq!(vtctld.count("BackupShard"), 1);
    }

    #[tokio::test]
    async fn a_request_whose_cluster_is_not_there_waits_and_sends_nothing() {
        let vtctld = FakeVtctld::start(([127, 0, 0, 1], 0).into())
            .await
            .expect("fake vtctld");
        let address = vtctld.local_addr().to_string();
        let (ctx, server) = testing::context(Some(&address));
        let cluster = testing::example_cluster();
        let children = desired::cluster::children(&cluster).expect("children");
        let shard = desired::keyspace::shards(&children.keyspaces[0])
            .expect("shards")
            .remove(0);
        let request = desired::vtbackup::initial_backup_request(&shard).expect("request");
        let request = server.insert_object(&request);

        let action = reconcile(Arc::new(request.clone()), ctx.clone())
            .await
            .expect("reconcile");
        assert_eq!(action, Action::requeue(POLL));
        let status = format!("status vitessbackups/{}", request.name_any());
        let calls = server.take_calls();
        assert_eq!(
            requests(&calls),
            ["get vitessclusters/example", status.as_str()]
        );
        let waiting = server.object_like(&request).expect("still there");
        let condition = waiting
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == COMPLETE).cloned())
            .expect("condition");
        assert_eq!(condition.reason, "WaitingForVtctld");
        assert_eq!(
            condition.message,
            "waiting for VitessCluster example to be reconciled"
        );
        assert_eq!(vtctld.count("BackupShard"), 0);
    }

    /// A request whose status says "started" but that this process never sent: an operator
    /// that was killed while its BackupShard ran.
    fn sent_before_a_restart(
        request: &VitessBackup,
        name: &str,
        since: SystemTime,
    ) -> VitessBackup {
        let mut request = request.clone();
        request.metadata.name = Some(name.to_string());
        request.metadata.uid = None;
        let second = since
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        request.status = Some(VitessBackupStatus {
            start_time: Some(Time(
                Timestamp::from_second(i64::try_from(second).expect("seconds")).expect("time"),
            )),
            conditions: condition::with_condition(
                &Vec::new(),
                COMPLETE,
                Some(&Readiness::new(false, STARTED, "sent")),
                None,
            ),
            ..VitessBackupStatus::default()
        });
        request
    }

    #[tokio::test]
    async fn a_request_sent_before_a_restart_is_not_sent_again_and_ends_by_what_storage_holds() {
        let (vtctld, ctx, server, template, replica) = with_a_replica().await;
        let start = SystemTime::now() - Duration::from_secs(60);
        // Older than the request: not its backup.
        let older = vtctld_fake::backup_name(start - Duration::from_secs(3600), &replica);
        vtctld.add_backup("commerce", "-", &older, BackupStatus::Complete);
        // A request named `name` sent before a restart, reconciled once: its status and its
        // Complete condition.
        let restarted = async |name: &str| {
            let request = server.insert_object(&sent_before_a_restart(&template, name, start));
            let action = reconcile(Arc::new(request.clone()), ctx.clone())
                .await
                .expect("reconcile");
            assert_eq!(action, Action::await_change());
            let status = server
                .object_like(&request)
                .and_then(|r| r.status)
                .expect("status");
            let condition = status
                .conditions
                .iter()
                .find(|c| c.type_ == COMPLETE)
                .cloned()
                .expect("Complete condition");
            (
                status.complete,
                condition.reason,
                condition.message,
                status.storage_name,
            )
        };

        // Nothing in storage since it started: interrupted, and says so.
        let (complete, reason, message, _) = restarted("lost").await;
        assert!(!complete && reason == "Interrupted", "{reason}");
        assert!(message.contains("lists no backup"), "{message}");

        // A backup taken since, whose status vtctld does not know: still not called complete.
        let unknown = vtctld_fake::backup_name(start + Duration::from_secs(5), &replica);
        vtctld.add_backup("commerce", "-", &unknown, BackupStatus::Unknown);
        let (complete, reason, message, _) = restarted("unsure").await;
        assert!(!complete && reason == "Interrupted", "{reason}");
        assert!(message.contains(&unknown), "{message}");

        // A complete backup that another request produced (in the same second): not this one's.
        let theirs = vtctld_fake::backup_name(start + Duration::from_secs(7), &replica);
        vtctld.add_backup("commerce", "-", &theirs, BackupStatus::Complete);
        let mut other = sent_before_a_restart(&template, "other", start);
        if let Some(status) = other.status.as_mut() {
            status.storage_name = Some(theirs.clone());
        }
        server.insert_object(&other);
        let (complete, reason, message, _) = restarted("claimed").await;
        assert!(!complete && reason == "Interrupted", "{reason}");
        assert!(message.contains(&unknown), "{message}");

        // A complete backup taken since: the request is complete and names it.
        let taken = vtctld_fake::backup_name(start + Duration::from_secs(10), &replica);
        vtctld.add_backup("commerce", "-", &taken, BackupStatus::Complete);
        let (complete, reason, _, storage_name) = restarted("found").await;
        assert!(complete && reason == "BackupComplete", "{reason}");
        assert_eq!(storage_name.as_deref(), Some(taken.as_str()));
        assert_eq!(vtctld.count("BackupShard"), 0, "sent again after a restart");
    }
}
