//! The tests of [`super`]: [`plan`] over times, Jobs and settings.

use super::*;

fn t(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn every_minute() -> VitessBackupScheduleTemplate {
    VitessBackupScheduleTemplate {
        name: "often".into(),
        schedule: "* * * * *".into(),
        ..Default::default()
    }
}

fn target() -> Target {
    Target {
        keyspace: "commerce".into(),
        shard: "-".into(),
        strategy: "BackupShard".into(),
        extra_flags: None,
    }
}

fn job(name: &str, due: &str, state: JobState) -> JobView {
    JobView {
        name: name.into(),
        uid: format!("uid-{name}"),
        keyspace: "commerce".into(),
        shard: "x-x".into(),
        due: Some(t(due)),
        state,
        started: Some(t(due)),
        has_deadline: true,
        deleting: false,
    }
}

const CREATED: &str = "2026-12-07T10:00:30Z";

fn run(schedule: &VitessBackupScheduleTemplate, jobs: &[JobView], now: &str) -> Plan {
    plan(
        "example",
        schedule,
        t(CREATED),
        &VitessBackupScheduleStatus::default(),
        &[target()],
        jobs,
        t(now),
    )
}

fn starts(plan: &Plan) -> Vec<String> {
    plan.start
        .iter()
        .map(|(target, due)| format!("{}/{} {due}", target.keyspace, target.shard))
        .collect()
}

#[test]
fn the_first_due_time_after_creation_starts_one_job_and_says_what_is_next() {
    let schedule = every_minute();
    let before = run(&schedule, &[], "2026-12-07T10:00:50Z");
    assert!(before.start.is_empty(), "nothing was due yet");
    assert_eq!(before.wake, Some(t("2026-12-07T10:01:00Z")));

    let first = run(&schedule, &[], "2026-12-07T10:01:05Z");
    assert_eq!(starts(&first), ["commerce/- 2026-12-07T10:01:00Z"]);
    let status = &first.status;
    assert_eq!(
        status.last_scheduled_times["BackupShard"].0,
        t("2026-12-07T10:01:00Z")
    );
    assert_eq!(
        status.last_scheduled_time.as_ref().map(|t| t.0),
        Some(t("2026-12-07T10:01:00Z"))
    );
    assert_eq!(
        status.next_scheduled_times["BackupShard"].0,
        t("2026-12-07T10:02:00Z")
    );
    assert!(
        status.generated_schedules.is_empty(),
        "schedule, not frequency"
    );
    assert!(first.problems.is_empty() && first.delete.is_empty());

    // Its Job exists: the same due time starts nothing more, and the Job is active.
    let running = [job("j1", "2026-12-07T10:01:00Z", JobState::Active)];
    let again = run(&schedule, &running, "2026-12-07T10:01:40Z");
    assert!(again.start.is_empty());
    assert_eq!(again.status.active.len(), 1);
    assert_eq!(again.status.active[0].name.as_deref(), Some("j1"));
}

#[test]
fn forbid_waits_for_the_running_job_allow_does_not() {
    let running = [job("j1", "2026-12-07T10:01:00Z", JobState::Active)];
    let mut schedule = every_minute();
    let forbid = run(&schedule, &running, "2026-12-07T10:02:10Z");
    assert!(forbid.start.is_empty(), "Forbid is the default");
    // Once it finished, the run that waited starts.
    let done = [job("j1", "2026-12-07T10:01:00Z", JobState::Succeeded)];
    let after = run(&schedule, &done, "2026-12-07T10:02:30Z");
    assert_eq!(starts(&after), ["commerce/- 2026-12-07T10:02:00Z"]);
    schedule.concurrency_policy = Some(ConcurrencyPolicy::Allow);
    let allow = run(&schedule, &running, "2026-12-07T10:02:10Z");
    assert_eq!(starts(&allow), ["commerce/- 2026-12-07T10:02:00Z"]);
}

#[test]
fn more_missed_runs_than_allowed_start_nothing_and_the_schedule_goes_on() {
    let mut schedule = every_minute();
    schedule.allowed_missed_run = Some(5);
    // Six runs due since the last Job: five missed besides the latest, allowed.
    let last = [job("j0", "2026-12-07T10:01:00Z", JobState::Succeeded)];
    let within = run(&schedule, &last, "2026-12-07T10:07:10Z");
    assert_eq!(starts(&within), ["commerce/- 2026-12-07T10:07:00Z"]);
    // Seven: six missed, too many.
    let beyond = run(&schedule, &last, "2026-12-07T10:08:10Z");
    assert!(beyond.start.is_empty());
    assert_eq!(beyond.skipped.len(), 1);
    assert!(
        beyond.skipped[0].contains("6 runs due since 2026-12-07T10:01:00Z were missed")
            && beyond.skipped[0].contains("allowedMissedRun (5)"),
        "{}",
        beyond.skipped[0]
    );
    let skipped = beyond.status.last_skipped_times["BackupShard"].0;
    assert_eq!(skipped, t("2026-12-07T10:08:00Z"));
    // The next due time after the skip runs as usual.
    let previous = beyond.status.clone();
    let resumed = plan(
        "example",
        &schedule,
        t(CREATED),
        &previous,
        &[target()],
        &last,
        t("2026-12-07T10:09:05Z"),
    );
    assert_eq!(starts(&resumed), ["commerce/- 2026-12-07T10:09:00Z"]);
    assert!(resumed.skipped.is_empty());

    // A year away (a clock jump): counting stops early and the latest due time is found.
    let jump = run(&schedule, &last, "2027-12-07T10:08:10Z");
    assert!(jump.start.is_empty());
    assert_eq!(
        jump.status.last_skipped_times["BackupShard"].0,
        t("2027-12-07T10:08:00Z")
    );
    assert!(
        jump.skipped[0].contains("more than 6 runs due since"),
        "{}",
        jump.skipped[0]
    );
}

#[test]
fn a_run_whose_job_was_deleted_by_the_history_limit_is_not_run_again() {
    let mut schedule = every_minute();
    schedule.successful_jobs_history_limit = Some(0);
    let first = run(&schedule, &[], "2026-12-07T10:01:05Z");
    assert_eq!(starts(&first), ["commerce/- 2026-12-07T10:01:00Z"]);
    let done = [job("j1", "2026-12-07T10:01:00Z", JobState::Succeeded)];
    // Read with a status older than the Job (the watch has not brought the last write yet):
    // the Job stays, and the status written records its run from it.
    let stale = run(&schedule, &done, "2026-12-07T10:01:20Z");
    assert!(stale.delete.is_empty() && stale.start.is_empty());
    assert_eq!(
        stale.status.last_scheduled_times["BackupShard"].0,
        t("2026-12-07T10:01:00Z")
    );
    // It succeeded and, with no success to keep and its run recorded, is deleted.
    let cleaned = plan(
        "example",
        &schedule,
        t(CREATED),
        &first.status,
        &[target()],
        &done,
        t("2026-12-07T10:01:30Z"),
    );
    assert_eq!(cleaned.delete.len(), 1);
    assert!(cleaned.start.is_empty());
    // Gone: the status still says 10:01 ran, so only 10:02 starts, once due.
    let gone = plan(
        "example",
        &schedule,
        t(CREATED),
        &cleaned.status,
        &[target()],
        &[],
        t("2026-12-07T10:01:40Z"),
    );
    assert!(gone.start.is_empty(), "{:?}", starts(&gone));
    let next = plan(
        "example",
        &schedule,
        t(CREATED),
        &cleaned.status,
        &[target()],
        &[],
        t("2026-12-07T10:02:01Z"),
    );
    assert_eq!(starts(&next), ["commerce/- 2026-12-07T10:02:00Z"]);
}

#[test]
fn starting_deadline_bounds_how_late_a_run_may_start() {
    let mut schedule = every_minute();
    schedule.starting_deadline_seconds = Some(30);
    let late = run(&schedule, &[], "2026-12-07T10:01:45Z");
    assert!(late.start.is_empty(), "45 s after it was due");
    let in_time = run(&schedule, &[], "2026-12-07T10:01:20Z");
    assert_eq!(starts(&in_time), ["commerce/- 2026-12-07T10:01:00Z"]);
}

#[test]
fn history_limits_and_the_timeout_delete_old_and_stuck_jobs() {
    let mut schedule = every_minute();
    schedule.successful_jobs_history_limit = Some(1);
    schedule.job_timeout_minute = Some(10);
    let mut stuck = job("go-made", "2026-12-07T09:00:00Z", JobState::Active);
    stuck.has_deadline = false;
    let mut ours = job("ours", "2026-12-07T09:05:00Z", JobState::Active);
    ours.has_deadline = true;
    let jobs = [
        job("s1", "2026-12-07T08:00:00Z", JobState::Succeeded),
        job("s3", "2026-12-07T08:02:00Z", JobState::Succeeded),
        job("s2", "2026-12-07T08:01:00Z", JobState::Succeeded),
        job("f1", "2026-12-07T07:00:00Z", JobState::Failed),
        stuck,
        ours,
    ];
    let now = "2026-12-07T10:00:10Z";
    let decided = plan(
        "example",
        &VitessBackupScheduleTemplate {
            concurrency_policy: Some(ConcurrencyPolicy::Allow),
            ..schedule
        },
        t("2026-12-07T07:00:00Z"),
        &VitessBackupScheduleStatus::default(),
        &[target()],
        &jobs,
        t(now),
    );
    let deleted: Vec<&str> = decided.delete.iter().map(|(n, _)| n.as_str()).collect();
    // The two oldest successes (one kept), no failure (no limit set), the stuck Go-made Job
    // (ours has activeDeadlineSeconds: Kubernetes stops it and it shows as failed).
    assert_eq!(deleted, ["s1", "s2", "go-made"]);
    assert!(decided.delete[2].1.contains("jobTimeoutMinute (10 min)"));
    let active: Vec<_> = decided
        .status
        .active
        .iter()
        .map(|r| r.name.clone().unwrap())
        .collect();
    assert_eq!(active, ["ours"]);
    // 55 runs missed since 09:05, fewer than the default 100: the latest starts.
    assert_eq!(starts(&decided), ["commerce/- 2026-12-07T10:00:00Z"]);
}

#[test]
fn frequency_shows_its_generated_schedule_and_a_bad_one_is_named() {
    let schedule = VitessBackupScheduleTemplate {
        name: "hourly".into(),
        frequency: "1h".into(),
        ..Default::default()
    };
    let decided = run(&schedule, &[], "2026-12-07T10:00:40Z");
    let generated = &decided.status.generated_schedules["BackupShard"];
    assert_eq!(
        generated,
        &schedule
            .cron_for("example", "commerce", "-", "BackupShard")
            .unwrap()
    );
    assert!(generated.ends_with(" * * * *"), "{generated}");

    let bad = VitessBackupScheduleTemplate {
        schedule: "61 * * * *".into(),
        ..every_minute()
    };
    let decided = run(&bad, &[], "2026-12-07T10:05:00Z");
    assert!(decided.start.is_empty());
    assert_eq!(decided.problems.len(), 1);
    assert!(
        decided.problems[0].contains("BackupShard: schedule: minute \"61\""),
        "{}",
        decided.problems[0]
    );
}
