//! Reconciles a VitessBackupSchedule: at each due time of the schedule, one Job per shard
//! its strategies cover (`desired::schedule`), as the Go operator's controller does; old
//! finished Jobs beyond the history limits go, and the status says what ran and what is next.
//!
//! What to do is decided by [`plan`], a pure function of the schedule, its shards, its Jobs
//! and the time; the reconcile reads, plans, then creates and deletes. A due time makes at
//! most one Job per shard (the Job's name holds it), so a reconcile that runs twice, or two
//! operators for a moment, cannot start a backup twice.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, PostParams};
use kube::core::PartialObjectMeta;
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use super::condition::{self, Readiness};
use super::{Context, Error, REQUEUE, WAIT};
use crate::api::backupschedule::VitessBackupScheduleStatus;
use crate::api::cluster::{
    BackupMethod, BackupScope, ConcurrencyPolicy, VitessBackupScheduleTemplate,
};
use crate::api::shared::ConditionStatus;
use crate::api::{VitessBackupSchedule, VitessCluster, VitessShard};
use crate::desired::schedule::{self, Method, SCHEDULED_AT, Target};
use crate::domain::cron::Schedule;
use crate::domain::labels;
use crate::domain::names;
use crate::k8s::apply;

/// Runs missed besides the latest one that may still be caught up, when the schedule does not
/// say (`allowedMissedRun`), as in the Go operator.
pub const DEFAULT_ALLOWED_MISSED_RUNS: i32 = 100;

pub async fn run(ctx: Arc<Context>) {
    Controller::new(
        ctx.api::<VitessBackupSchedule>(),
        watcher::Config::default(),
    )
    // A Job that finishes wakes its schedule (history limits, `active`, Forbid).
    .owns(
        ctx.api::<PartialObjectMeta<Job>>(),
        watcher::Config::default().labels(labels::BACKUP_SCHEDULE),
    )
    .with_config(super::config())
    .trigger_backoff(super::backoff::WatchBackoff::default())
    .shutdown_on_signal()
    .run(reconcile, super::error_policy, ctx.clone())
    .for_each(|result| super::report(&ctx, result))
    .await;
}

/// What is known of one Job of the schedule.
#[derive(Clone, Debug, PartialEq)]
pub struct JobView {
    pub name: String,
    pub uid: String,
    pub keyspace: String,
    /// Safe form (`x-80`).
    pub shard: String,
    /// When it was due (its `planetscale.com/backup-scheduled-at`).
    pub due: Option<Timestamp>,
    pub state: JobState,
    /// When it started, for the history order.
    pub started: Option<Timestamp>,
    /// Whether Kubernetes stops it at the timeout (`activeDeadlineSeconds`: ours do; the Go
    /// operator's do not, and are deleted at the timeout as it did).
    pub has_deadline: bool,
    /// Being deleted already.
    pub deleting: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobState {
    Active,
    Succeeded,
    Failed,
}

impl JobView {
    pub fn of(job: &Job) -> Self {
        let labels = job.labels();
        let status = job.status.clone().unwrap_or_default();
        let finished = |type_: &str| {
            status
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == type_ && c.status == "True")
        };
        let state = if finished("Complete") {
            JobState::Succeeded
        } else if finished("Failed") {
            JobState::Failed
        } else {
            JobState::Active
        };
        Self {
            name: job.name_any(),
            uid: job.uid().unwrap_or_default(),
            keyspace: labels.get(labels::KEYSPACE).cloned().unwrap_or_default(),
            shard: labels.get(labels::SHARD).cloned().unwrap_or_default(),
            due: job
                .annotations()
                .get(SCHEDULED_AT)
                .and_then(|t| t.parse().ok()),
            state,
            started: status.start_time.map(|t| t.0),
            has_deadline: job
                .spec
                .as_ref()
                .and_then(|s| s.active_deadline_seconds)
                .is_some(),
            deleting: job.metadata.deletion_timestamp.is_some(),
        }
    }
}

/// What one reconcile does.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// Jobs to start: the shard and the time it was due.
    pub start: Vec<(Target, Timestamp)>,
    /// Jobs to delete, with why (for the log and the Event).
    pub delete: Vec<(String, String)>,
    pub status: VitessBackupScheduleStatus,
    /// Problems of strategies that cannot be scheduled (a bad cron expression), or runs
    /// skipped; empty when all is well.
    pub problems: Vec<String>,
    /// Runs left without a Job because too many were missed (Warning Events).
    pub skipped: Vec<String>,
    /// When to look again: the earliest next due time.
    pub wake: Option<Timestamp>,
}

/// Decides what to do now, for `schedule` (created at `created`, last status `previous`)
/// covering `targets` of cluster `cluster`, whose Jobs are `jobs`.
///
/// For each shard: finished Jobs beyond the history limits go, oldest first (no limit set:
/// all kept, as in the Go operator); an active Job past the timeout that Kubernetes does not
/// stop by itself goes; then the due times since the last one dealt with (its latest Job's or
/// the status' record of it, a skip's, or the schedule's creation; no further back than
/// `startingDeadlineSeconds`)
/// are counted. None: nothing to do. Up to `allowedMissedRun` missed besides the latest: a
/// Job for the latest, unless `Forbid` and one still runs (then it starts once that one ends,
/// within the deadline). More: none, reported, and the schedule resumes from the latest (a
/// clock jump or a long outage does not start a stale backup, nor stop the schedule for good).
pub fn plan(
    cluster: &str,
    schedule: &VitessBackupScheduleTemplate,
    created: Timestamp,
    previous: &VitessBackupScheduleStatus,
    targets: &[Target],
    jobs: &[JobView],
    now: Timestamp,
) -> Plan {
    let mut plan = Plan::default();
    let status = &mut plan.status;
    let timeout = i64::from(schedule::job_timeout_minutes(schedule)) * 60;
    let allowed = i64::from(
        schedule
            .allowed_missed_run
            .unwrap_or(DEFAULT_ALLOWED_MISSED_RUNS)
            .max(0),
    );
    let forbid = schedule.concurrency_policy.unwrap_or_default() == ConcurrencyPolicy::Forbid;
    let live: Vec<&JobView> = jobs.iter().filter(|j| !j.deleting).collect();
    for target in targets {
        let safe = target.safe_shard();
        let mine: Vec<&JobView> = live
            .iter()
            .copied()
            .filter(|j| j.keyspace == target.keyspace && j.shard == safe)
            .collect();
        // The last run started, as the status read says and as the Jobs say. The latest Job
        // is deleted only once the status records its run, so that the run is not counted as
        // missed and started again when its Job is gone (the status read may be older than
        // the Jobs listed: a reconcile can run before the watch brings its own last write);
        // older Jobs may go, the latest one keeping the count.
        let recorded = previous
            .last_scheduled_times
            .get(&target.strategy)
            .map(|t| t.0);
        let last_job = mine.iter().filter_map(|j| j.due).max();
        let deletable = |job: &JobView| {
            job.due
                .is_none_or(|due| Some(due) < last_job || recorded.is_some_and(|r| due <= r))
        };
        for (state, limit) in [
            (JobState::Failed, schedule.failed_jobs_history_limit),
            (JobState::Succeeded, schedule.successful_jobs_history_limit),
        ] {
            let Some(limit) = limit else { continue };
            let mut done: Vec<&JobView> = mine
                .iter()
                .copied()
                .filter(|j| j.state == state && deletable(j))
                .collect();
            done.sort_by_key(|j| (j.started.or(j.due), j.name.clone()));
            let extra = done
                .len()
                .saturating_sub(usize::try_from(limit).unwrap_or(0));
            let word = match state {
                JobState::Failed => "failed",
                _ => "successful",
            };
            for job in &done[..extra] {
                let why = format!("more {word} Jobs than the {word}JobsHistoryLimit of {limit}");
                plan.delete.push((job.name.clone(), why));
            }
        }
        let mut running = 0;
        for job in mine.iter().filter(|j| j.state == JobState::Active) {
            let late = job
                .due
                .is_some_and(|due| due.as_second() + timeout < now.as_second());
            if late && !job.has_deadline && deletable(job) {
                plan.delete.push((
                    job.name.clone(),
                    format!(
                        "still running after jobTimeoutMinute ({} min)",
                        timeout / 60
                    ),
                ));
            } else {
                running += 1;
            }
        }

        let cron =
            match schedule.cron_for(cluster, &target.keyspace, &target.shard, &target.strategy) {
                Ok(cron) => cron,
                Err(why) => {
                    plan.problems.push(format!("{}: {why}", target.strategy));
                    continue;
                }
            };
        if !schedule.frequency.is_empty() {
            status
                .generated_schedules
                .insert(target.strategy.clone(), cron.clone());
        }
        let parsed = match Schedule::parse(&cron) {
            Ok(parsed) => parsed,
            Err(why) => {
                plan.problems
                    .push(format!("{}: schedule: {why}", target.strategy));
                continue;
            }
        };
        let skipped = previous
            .last_skipped_times
            .get(&target.strategy)
            .map(|t| t.0);
        let mut floor = [Some(created), last_job, recorded, skipped]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(created);
        if let Some(deadline) = schedule.starting_deadline_seconds {
            let earliest = Timestamp::from_second(now.as_second() - deadline).unwrap_or(now);
            floor = floor.max(earliest);
        }
        // Recorded: the later of the status' record and the Jobs' (never lost to an older read).
        if let Some(time) = recorded.max(last_job) {
            status
                .last_scheduled_times
                .insert(target.strategy.clone(), Time(time));
        }
        if let Some(time) = skipped {
            status
                .last_skipped_times
                .insert(target.strategy.clone(), Time(time));
        }
        // The due times after the floor, up to now: how many (counted until too many), and
        // the latest.
        let (mut count, mut latest, mut cut) = (0i64, None, false);
        let mut cursor = floor;
        while let Some(due) = parsed.next_after(cursor).filter(|due| *due <= now) {
            count += 1;
            latest = Some(due);
            cursor = due;
            if count > allowed + 2 {
                latest = latest_due(&parsed, now).or(latest);
                cut = true;
                break;
            }
        }
        let next = parsed.next_after(now);
        if let Some(next) = next {
            status
                .next_scheduled_times
                .insert(target.strategy.clone(), Time(next));
            plan.wake = Some(plan.wake.map_or(next, |w| w.min(next)));
        }
        let Some(latest) = latest else { continue };
        let missed = count - 1;
        if missed > allowed {
            let missed_runs = match (cut, missed) {
                (true, _) => format!("more than {} runs due since {floor} were", allowed + 1),
                (false, 1) => format!("1 run due since {floor} was"),
                (false, n) => format!("{n} runs due since {floor} were"),
            };
            let note = format!(
                "{}: {missed_runs} missed, more than allowedMissedRun ({allowed}); the one \
                 due at {latest} is not started either (a stale backup after an outage or a \
                 clock jump), and the schedule goes on from the next one",
                target.strategy,
            );
            plan.skipped.push(note);
            status
                .last_skipped_times
                .insert(target.strategy.clone(), Time(latest));
            continue;
        }
        if forbid && running > 0 {
            // Started once the running one ends (the next reconcile sees the same due time),
            // unless `startingDeadlineSeconds` passes first.
            continue;
        }
        plan.start.push((target.clone(), latest));
        status
            .last_scheduled_times
            .insert(target.strategy.clone(), Time(latest));
    }
    let deleted: BTreeSet<&str> = plan.delete.iter().map(|(n, _)| n.as_str()).collect();
    status.active = active(jobs, &deleted);
    status.last_scheduled_time = status.last_scheduled_times.values().max().cloned();
    plan
}

/// `status.active`: the running Jobs, by name, but those being deleted or in `deleted`.
fn active(jobs: &[JobView], deleted: &BTreeSet<&str>) -> Vec<ObjectReference> {
    let mut running: Vec<&JobView> = jobs
        .iter()
        .filter(|j| {
            j.state == JobState::Active && !j.deleting && !deleted.contains(j.name.as_str())
        })
        .collect();
    running.sort_by(|a, b| a.name.cmp(&b.name));
    running
        .into_iter()
        .map(|j| job_reference(&j.name, &j.uid))
        .collect()
}

/// A reference to Job `name`, as `status.active` lists it.
fn job_reference(name: &str, uid: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        name: Some(name.into()),
        uid: Some(uid.into()),
        ..ObjectReference::default()
    }
}

/// The latest time `schedule` was due at or before `now`, looked for in growing windows back
/// from `now` (a minute, an hour, a day, a month, a year, five years), so that a frequent
/// schedule is not walked from far back.
fn latest_due(schedule: &Schedule, now: Timestamp) -> Option<Timestamp> {
    for window in [
        60,
        3_600,
        86_400,
        31 * 86_400,
        366 * 86_400,
        5 * 366 * 86_400,
    ] {
        let mut cursor = Timestamp::from_second(now.as_second() - window).ok()?;
        let mut latest = None;
        while let Some(due) = schedule.next_after(cursor).filter(|due| *due <= now) {
            latest = Some(due);
            cursor = due;
        }
        if latest.is_some() {
            return latest;
        }
    }
    None
}

#[tracing::instrument(skip_all, fields(schedule = %schedule.name_any()))]
async fn reconcile(
    schedule: Arc<VitessBackupSchedule>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let owner = schedule.as_ref();
    let namespace = owner.namespace().unwrap_or_default();
    let previous = owner.status.clone().unwrap_or_default();
    let generation = owner.meta().generation;
    let jobs = jobs_of(&ctx, owner).await?;
    let views: Vec<JobView> = jobs.iter().map(JobView::of).collect();

    if owner.spec.template.suspend == Some(true) {
        // Suspended: nothing starts and nothing is next; what ran stays, `active` follows
        // the Jobs.
        let mut status = VitessBackupScheduleStatus {
            observed_generation: generation,
            active: active(&views, &BTreeSet::new()),
            last_scheduled_time: previous.last_scheduled_time.clone(),
            last_scheduled_times: previous.last_scheduled_times.clone(),
            generated_schedules: previous.generated_schedules.clone(),
            ..VitessBackupScheduleStatus::default()
        };
        let readiness = Readiness::new(true, "Suspended", "spec.suspend is true: no Job starts");
        status.conditions = condition::with_ready(&previous.conditions, &readiness, generation);
        apply::status(&ctx.client, owner, owner.status.as_ref(), &status).await?;
        return Ok(Action::await_change());
    }

    let cluster = ctx
        .cluster(&namespace, &owner.spec.cluster)
        .await
        .map_err(|source| Error::Get {
            what: format!("VitessCluster {namespace}/{}", owner.spec.cluster),
            source: Box::new(source),
        })?;
    let Some(cluster) = cluster else {
        let why = format!(
            "spec.cluster: VitessCluster {namespace}/{} does not exist; nothing is backed up",
            owner.spec.cluster
        );
        let readiness = Readiness::new(false, "ClusterNotFound", why);
        let mut status = previous.clone();
        status.observed_generation = generation;
        status.conditions = condition::with_ready(&previous.conditions, &readiness, generation);
        apply::status(&ctx.client, owner, owner.status.as_ref(), &status).await?;
        return Ok(Action::requeue(WAIT));
    };
    let excluded = excluded_keyspaces(&ctx, owner).await?;
    let targets = schedule::targets(&cluster, &owner.spec.template, &excluded)?;
    let now = Timestamp::now();
    let mut decided = plan(
        &owner.spec.cluster,
        &owner.spec.template,
        created(owner),
        &previous,
        &targets,
        &views,
        now,
    );
    for (name, why) in &decided.delete {
        let Some(job) = jobs.iter().find(|j| &j.name_any() == name) else {
            continue;
        };
        if apply::delete_meta::<Job>(&ctx.client, &job.metadata).await? {
            tracing::info!(job = %name, "deleted: {why}");
            ctx.events
                .publish(
                    owner,
                    EventType::Normal,
                    "JobDeleted",
                    &format!("Job {name}: {why}"),
                )
                .await;
        }
    }
    let mut waiting = Vec::new();
    for (target, due) in &decided.start {
        match start(&ctx, &cluster, owner, target, *due).await? {
            Started::Created(job) => decided.status.active.push(job),
            Started::Existed => {}
            Started::Waiting(why) => {
                // Not started: the status keeps saying when the last run was.
                match previous.last_scheduled_times.get(&target.strategy) {
                    Some(time) => decided
                        .status
                        .last_scheduled_times
                        .insert(target.strategy.clone(), time.clone()),
                    None => decided.status.last_scheduled_times.remove(&target.strategy),
                };
                waiting.push(why);
            }
        }
    }
    decided.status.last_scheduled_time =
        decided.status.last_scheduled_times.values().max().cloned();
    decided.status.active.sort_by(|a, b| a.name.cmp(&b.name));
    for note in &decided.skipped {
        tracing::warn!("{note}");
        ctx.events
            .publish(owner, EventType::Warning, "TooManyMissedRuns", note)
            .await;
    }
    let readiness = if !decided.problems.is_empty() {
        Readiness::new(false, "InvalidSchedule", decided.problems.join("; "))
    } else if !waiting.is_empty() {
        Readiness::new(false, "Waiting", waiting.join("; "))
    } else {
        let count = targets.len();
        Readiness::new(true, "Scheduled", format!("{count} shard(s) scheduled"))
    };
    decided.status.observed_generation = generation;
    decided.status.conditions = condition::with_ready(&previous.conditions, &readiness, generation);
    apply::status(&ctx.client, owner, owner.status.as_ref(), &decided.status).await?;
    // Woken by its Jobs' changes; otherwise at the next due time (a second late, so that it
    // is past), and at least every REQUEUE.
    let wait = decided
        .wake
        .map(|at| {
            Duration::from_secs(u64::try_from(at.as_second() - now.as_second() + 1).unwrap_or(1))
        })
        .unwrap_or(REQUEUE)
        .min(REQUEUE);
    Ok(Action::requeue(wait))
}

/// When the schedule was made: no run before it counts as missed.
fn created(schedule: &VitessBackupSchedule) -> Timestamp {
    schedule
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0)
        .unwrap_or_else(Timestamp::now)
}

/// The schedule's Jobs (whole: their status, annotations and deadline).
async fn jobs_of(ctx: &Context, schedule: &VitessBackupSchedule) -> Result<Vec<Job>, Error> {
    let selector = apply::selector(&[(labels::BACKUP_SCHEDULE, &schedule.name_any())], &[]);
    Ok(apply::children_full::<Job, _>(&ctx.client, schedule, &selector).await?)
}

/// The keyspaces that scope `Cluster` leaves out: those a schedule of the same cluster in
/// force (this one included) backs up with scope `Keyspace`.
async fn excluded_keyspaces(
    ctx: &Context,
    schedule: &VitessBackupSchedule,
) -> Result<BTreeSet<String>, Error> {
    let mut excluded = schedule::keyspace_scoped(&schedule.spec.template);
    let uses_cluster_scope = schedule
        .spec
        .template
        .strategies
        .iter()
        .any(|s| s.scope == Some(BackupScope::Cluster));
    if !uses_cluster_scope {
        return Ok(excluded);
    }
    let api: Api<VitessBackupSchedule> = ctx.api_in(schedule);
    let peers = api
        .list(&ListParams::default())
        .await
        .map_err(|source| Error::List {
            what: format!(
                "VitessBackupSchedules in {}",
                schedule.namespace().unwrap_or_default()
            ),
            source: Box::new(source),
        })?;
    for peer in peers.items {
        if peer.spec.cluster == schedule.spec.cluster && peer.name_any() != schedule.name_any() {
            excluded.extend(schedule::keyspace_scoped(&peer.spec.template));
        }
    }
    Ok(excluded)
}

/// What starting one run came to.
enum Started {
    /// This call created the Job.
    Created(ObjectReference),
    /// A Job of that run exists already.
    Existed,
    /// Not started: what it waits for (a vtbackup run needs the shard's first backup).
    Waiting(String),
}

/// The VitessShard of `target` once it has its first backup (which a vtbackup run restores),
/// else `Err` with what the run waits for. Listed by name: the Role grants VitessShards list
/// and watch, not get.
async fn backed_up_shard(
    ctx: &Context,
    schedule: &VitessBackupSchedule,
    target: &Target,
) -> Result<Result<VitessShard, String>, Error> {
    let namespace = schedule.namespace().unwrap_or_default();
    let name = names::cluster::shard(
        &schedule.spec.cluster,
        &target.keyspace,
        &target.safe_shard(),
    );
    let api: Api<VitessShard> = ctx.api_in(schedule);
    let by_name = ListParams::default().fields(&format!("metadata.name={name}"));
    let shard = api
        .list(&by_name)
        .await
        .map_err(|source| Error::List {
            what: format!("VitessShard {namespace}/{name}"),
            source: Box::new(source),
        })?
        .items
        .pop();
    let backed_up = |s: &VitessShard| {
        s.status.as_ref().map(|s| s.has_initial_backup) == Some(ConditionStatus::True)
    };
    Ok(shard.filter(backed_up).ok_or_else(|| {
        format!(
            "{}/{}: vtbackup restores the latest backup, and VitessShard {name} has no first \
             backup yet",
            target.keyspace, target.shard
        )
    }))
}

/// Creates the Job of `target` due at `due` (one already there under its name is that run).
async fn start(
    ctx: &Context,
    cluster: &VitessCluster,
    schedule: &VitessBackupSchedule,
    target: &Target,
    due: Timestamp,
) -> Result<Started, Error> {
    let namespace = schedule.namespace().unwrap_or_default();
    // vtbackup unless vtctldclient is asked for: the Go operator's default.
    let shard = if schedule.spec.template.backup_method == Some(BackupMethod::Vtctldclient) {
        None
    } else {
        match backed_up_shard(ctx, schedule, target).await? {
            Ok(shard) => Some(shard),
            Err(why) => return Ok(Started::Waiting(why)),
        }
    };
    let method = shard
        .as_ref()
        .map_or(Method::Vtctldclient, Method::Vtbackup);
    let Some(job) = schedule::job(cluster, schedule, target, due, method)? else {
        return Ok(Started::Waiting(format!(
            "{}/{}: the shard has no backup location (or replication.initializeBackup is \
             false), so vtbackup cannot run",
            target.keyspace, target.shard
        )));
    };
    let name = job.name_any();
    let api: Api<Job> = ctx.api_in(schedule);
    match api.create(&PostParams::default(), &job).await {
        Ok(created) => {
            tracing::info!(job = %name, shard = %format!("{}/{}", target.keyspace, target.shard), due = %due, "backup Job started");
            ctx.events
                .publish(
                    schedule,
                    EventType::Normal,
                    "JobCreated",
                    &format!(
                        "Job {name} backs up {}/{} (due {due})",
                        target.keyspace, target.shard
                    ),
                )
                .await;
            Ok(Started::Created(job_reference(
                &name,
                &created.uid().unwrap_or_default(),
            )))
        }
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(Started::Existed),
        Err(source) => Err(Error::Create {
            object: format!("Job {namespace}/{name}"),
            source: Box::new(source),
        }),
    }
}

#[cfg(test)]
mod tests;
