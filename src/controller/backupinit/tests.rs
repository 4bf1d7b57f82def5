//! The tests of [`super`].

use super::*;
use crate::api::backup::VitessBackupSpec;
use k8s_openapi::jiff::Timestamp;

fn inputs() -> Inputs {
    Inputs {
        configured: true,
        init_wanted: true,
        primary: None,
        settled: true,
        counts: Counts::default(),
        init_pod: None,
        request: None,
    }
}

fn pod(phase: &str) -> Option<InitPod> {
    Some(InitPod {
        name: "ex-commerce-x-x-vtbackup-init-c6db73c9".into(),
        phase: phase.into(),
        current: true,
        ..InitPod::default()
    })
}

/// An init pod vtbackup has failed in `failures` times, last saying `error`.
fn failing(failures: i32, error: &str, current: bool) -> Option<InitPod> {
    pod("Running").map(|p| InitPod {
        failures,
        last_error: Some(error.into()),
        current,
        ..p
    })
}

#[test]
fn a_failing_init_pod_holds_the_election_and_says_what_vtbackup_said() {
    let d = decide(&Inputs {
        init_pod: failing(3, "can't list backups: storage: bucket doesn't exist", true),
        ..inputs()
    });
    assert_eq!(d.create, Create::Nothing);
    assert_eq!(reason(&d), "InitPodFailing");
    let message = &d.condition.as_ref().unwrap().message;
    assert!(message.contains("failed 3 time(s)"), "{message}");
    assert!(message.contains("bucket doesn't exist"), "{message}");
    assert!(d.hold.unwrap().contains("bucket doesn't exist"));
}

#[test]
fn a_failing_init_pod_with_an_outdated_spec_is_replaced_a_healthy_one_is_not() {
    let d = decide(&Inputs {
        init_pod: failing(2, "bucket doesn't exist", false),
        ..inputs()
    });
    assert_eq!(d.create, Create::ReplaceInitPod);
    assert!(d.hold.is_some());
    assert_eq!(reason(&d), "InitPodReplaced");
    // Running without a failure (another operator's pod, say): left to finish.
    let healthy = decide(&Inputs {
        init_pod: pod("Running").map(|p| InitPod {
            current: false,
            ..p
        }),
        ..inputs()
    });
    assert_eq!(healthy.create, Create::Nothing);
    assert_eq!(reason(&healthy), "InitPodRunning");
    // Succeeded, or the shard has its primary: nothing to replace.
    for (phase, primary) in [
        ("Succeeded", None),
        ("Running", Some("zone1-1".to_string())),
    ] {
        let done = decide(&Inputs {
            init_pod: failing(1, "x", false).map(|p| InitPod {
                phase: phase.into(),
                ..p
            }),
            primary,
            ..inputs()
        });
        assert_eq!(done.create, Create::Nothing, "{phase}");
    }
}

#[test]
fn an_init_pod_that_cannot_start_says_why_and_is_replaced_once_fixed() {
    let blocked = |current| {
        pod("Pending").map(|p| InitPod {
            blocked: Some(
                "vtbackup: CreateContainerConfigError: secret \"backup-auth\" not found".into(),
            ),
            current,
            ..p
        })
    };
    let d = decide(&Inputs {
        init_pod: blocked(true),
        ..inputs()
    });
    assert_eq!((d.create, reason(&d)), (Create::Nothing, "InitPodFailing"));
    assert!(d.hold.unwrap().contains("secret \"backup-auth\" not found"));
    let fixed = decide(&Inputs {
        init_pod: blocked(false),
        ..inputs()
    });
    assert_eq!(fixed.create, Create::ReplaceInitPod);
}

#[test]
fn vtbackups_last_words_are_its_last_log_record() {
    let log = "{\"level\":\"INFO\",\"msg\":\"starting\"}\n\
               {\"level\":\"ERROR\",\"msg\":\"Can't take backup: storage: bucket doesn't exist\"}\n\n";
    assert_eq!(
        last_error_of(log).as_deref(),
        Some("Can't take backup: storage: bucket doesn't exist")
    );
    assert_eq!(
        last_error_of("plain words\n").as_deref(),
        Some("plain words")
    );
    assert_eq!(last_error_of("  \n"), None);
    let long = "x".repeat(1000);
    let cut = last_error_of(&long).unwrap();
    assert_eq!(cut.chars().count(), LAST_ERROR_LIMIT + 1);
}

#[test]
fn the_init_pod_is_read_from_its_container_status() {
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStatus, PodStatus,
    };
    let mut running = Pod::default();
    running.metadata.name = Some("init".into());
    running.metadata.annotations = Some(
        [(
            labels::rollout::DESIRED_STATE_HASH.to_string(),
            "h1".to_string(),
        )]
        .into(),
    );
    running.status = Some(PodStatus {
        phase: Some("Running".into()),
        container_statuses: Some(vec![ContainerStatus {
            name: desired::vtbackup::CONTAINER.into(),
            restart_count: 2,
            state: Some(ContainerState {
                running: Some(ContainerStateRunning {
                    started_at: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                        "2026-12-05T16:00:00Z".parse().unwrap(),
                    )),
                }),
                ..ContainerState::default()
            }),
            last_state: Some(ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: 1,
                    message: Some("{\"msg\":\"bucket doesn't exist\"}".into()),
                    ..ContainerStateTerminated::default()
                }),
                ..ContainerState::default()
            }),
            ..ContainerStatus::default()
        }]),
        ..PodStatus::default()
    });
    let mut creating = running.clone();
    creating
        .status
        .as_mut()
        .unwrap()
        .container_statuses
        .as_mut()
        .unwrap()[0]
        .state = Some(ContainerState {
        waiting: Some(k8s_openapi::api::core::v1::ContainerStateWaiting {
            reason: Some("ContainerCreating".into()),
            message: None,
        }),
        ..ContainerState::default()
    });
    assert_eq!(init_pod_of(&creating, Some("h1")).blocked, None);
    let mut missing = creating.clone();
    missing
        .status
        .as_mut()
        .unwrap()
        .container_statuses
        .as_mut()
        .unwrap()[0]
        .state = Some(ContainerState {
        waiting: Some(k8s_openapi::api::core::v1::ContainerStateWaiting {
            reason: Some("CreateContainerConfigError".into()),
            message: Some("secret \"backup-auth\" not found".into()),
        }),
        ..ContainerState::default()
    });
    assert_eq!(
        init_pod_of(&missing, Some("h1")).blocked.as_deref(),
        Some("vtbackup: CreateContainerConfigError: secret \"backup-auth\" not found")
    );
    let seen = init_pod_of(&running, Some("h1"));
    assert_eq!(
        (seen.phase.as_str(), seen.failures, seen.current),
        ("Running", 2, true)
    );
    assert_eq!(seen.running_since.as_deref(), Some("2026-12-05T16:00:00Z"));
    assert_eq!(init_pod_of(&creating, Some("h1")).running_since, None);
    assert_eq!(seen.last_error.as_deref(), Some("bucket doesn't exist"));
    assert!(!init_pod_of(&running, Some("h2")).current);
    assert!(!init_pod_of(&running, None).current);
}

fn reason(d: &Decision) -> &str {
    d.condition.as_ref().map_or("", |c| c.reason.as_str())
}

#[test]
fn a_new_shard_gets_an_init_pod_and_holds_its_election_until_it_succeeds() {
    let d = decide(&inputs());
    assert_eq!(d.create, Create::InitPod);
    assert!(d.hold.is_some());
    for phase in ["", "Pending", "Running"] {
        let d = decide(&Inputs {
            init_pod: pod(phase),
            ..inputs()
        });
        assert_eq!(d.create, Create::Nothing, "{phase}");
        assert!(
            d.hold.as_ref().unwrap().contains("vtbackup-init"),
            "{phase}"
        );
        assert_eq!(reason(&d), "InitPodRunning");
    }
    let failed = decide(&Inputs {
        init_pod: pod("Failed"),
        ..inputs()
    });
    assert!(failed.hold.unwrap().contains("kubectl logs"));
    let done = decide(&Inputs {
        init_pod: pod("Succeeded"),
        ..inputs()
    });
    assert_eq!((done.create, done.hold), (Create::Nothing, None));
    assert!(done.condition.unwrap().ready);
}

#[test]
fn no_init_pod_without_backups_with_a_complete_backup_or_when_opted_out() {
    let off = decide(&Inputs {
        configured: false,
        ..inputs()
    });
    assert_eq!(
        (off.create, off.hold, off.condition),
        (Create::Nothing, None, None)
    );
    let restore = decide(&Inputs {
        counts: Counts {
            complete: 1,
            ..Counts::default()
        },
        ..inputs()
    });
    assert_eq!(
        (restore.create, restore.hold.is_none()),
        (Create::Nothing, true)
    );
    assert_eq!(reason(&restore), "BackupExists");
    // An incomplete backup is not one to restore from.
    let incomplete = decide(&Inputs {
        counts: Counts {
            incomplete: 3,
            ..Counts::default()
        },
        ..inputs()
    });
    assert_eq!(incomplete.create, Create::InitPod);
    let opted_out = decide(&Inputs {
        init_wanted: false,
        ..inputs()
    });
    assert_eq!(
        (opted_out.create, &opted_out.hold),
        (Create::Nothing, &None)
    );
    assert_eq!(reason(&opted_out), "NoBackup");
}

#[test]
fn a_serving_shard_asks_for_one_backup_of_a_replica_once_settled() {
    let serving = Inputs {
        primary: Some("zone1-0000000100".into()),
        ..inputs()
    };
    let d = decide(&serving);
    assert_eq!((d.create, d.hold), (Create::Request, None));
    let unsettled = decide(&Inputs {
        settled: false,
        ..serving.clone()
    });
    assert_eq!(unsettled.create, Create::Nothing);
    assert_eq!(reason(&unsettled), "Waiting");
    let request = |complete: bool, reason: &str| Request {
        name: "r".into(),
        complete,
        reason: reason.into(),
        message: "no tablet available for backup".into(),
    };
    let running = decide(&Inputs {
        request: Some(request(false, "BackupStarted")),
        ..serving.clone()
    });
    assert_eq!(running.create, Create::Nothing);
    assert_eq!(reason(&running), "BackupRequested");
    let failed = decide(&Inputs {
        request: Some(request(false, "BackupFailed")),
        ..serving.clone()
    });
    assert_eq!(failed.create, Create::Nothing);
    assert!(
        failed
            .condition
            .unwrap()
            .message
            .contains("no tablet available")
    );
    let taken = decide(&Inputs {
        request: Some(request(true, "BackupComplete")),
        ..serving.clone()
    });
    assert!(taken.condition.unwrap().ready);
    // Any backup at all (even one vtctld cannot call complete) means no request.
    let has = decide(&Inputs {
        counts: Counts {
            incomplete: 1,
            ..Counts::default()
        },
        ..serving.clone()
    });
    assert_eq!(has.create, Create::Nothing);
    // A still-running init pod holds nothing back once a primary exists.
    let late = decide(&Inputs {
        init_pod: pod("Running"),
        ..serving
    });
    assert_eq!((late.create, late.hold), (Create::Nothing, None));
}

fn entry(location: &str, complete: bool, finished: i64) -> VitessBackup {
    let mut b = VitessBackup::new("b", VitessBackupSpec::default());
    b.metadata.labels = Some(labels::set(&[(labels::BACKUP_LOCATION, location)]));
    b.status = Some(VitessBackupStatus {
        complete,
        vtctld_status: Some(if complete { "COMPLETE" } else { "INCOMPLETE" }.into()),
        finished_time: Some(Time(Timestamp::from_second(finished).unwrap())),
        ..VitessBackupStatus::default()
    });
    b
}

/// An entry as vtctld v0.24 lists every backup: status UNKNOWN, start time only.
fn unreported(location: &str, started: i64) -> VitessBackup {
    let mut b = entry(location, false, 0);
    b.status = Some(VitessBackupStatus {
        vtctld_status: Some("UNKNOWN".into()),
        start_time: Some(Time(Timestamp::from_second(started).unwrap())),
        ..VitessBackupStatus::default()
    });
    b
}

#[test]
fn unreported_completeness_is_neither_fresh_nor_stale() {
    let locations = [location("", Some("1h"))];
    let backups = [unreported("", 1_000), unreported("", 5_000)];
    let statuses = location_status(&locations, &backups);
    assert_eq!(
        (
            statuses[0].complete_backups,
            statuses[0].incomplete_backups,
            statuses[0].unknown_backups
        ),
        (0, 0, 2)
    );
    assert_eq!(statuses[0].latest_complete_backup_time, None);
    assert_eq!(
        statuses[0].latest_backup_time,
        Some(Time(Timestamp::from_second(5_000).unwrap()))
    );
    let at = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
    let recent = freshness(&locations, &statuses, at(5_000 + 3_600)).unwrap();
    assert_eq!(recent.status(), "Unknown", "{recent:?}");
    assert_eq!(recent.reason, "CompletenessUnknown");
    assert!(recent.message.contains("does not report"), "{recent:?}");
    // Too old to be fresh whether complete or not: stale.
    let old = freshness(&locations, &statuses, at(5_000 + 3_601)).unwrap();
    assert_eq!(old.status(), "False", "{old:?}");
    assert!(old.message.contains("no complete backup"), "{old:?}");
    // A recent complete backup settles it.
    let mut mixed = statuses.clone();
    mixed[0].latest_complete_backup_time = Some(Time(Timestamp::from_second(4_000).unwrap()));
    assert_eq!(
        freshness(&locations, &mixed, at(4_000 + 3_600))
            .unwrap()
            .status(),
        "True"
    );
    // Any backup, even one vtctld does not describe, means the serving shard has one.
    let serving = decide(&Inputs {
        primary: Some("zone1-100".into()),
        counts: counts(&statuses),
        ..inputs()
    });
    assert_eq!(serving.create, Create::Nothing);
    assert!(
        serving
            .condition
            .unwrap()
            .message
            .contains("2 of unknown completeness")
    );
    // But a new shard is not told to skip its init pod on such backups: vtbackup decides.
    let new = decide(&Inputs {
        counts: counts(&statuses),
        ..inputs()
    });
    assert_eq!(new.create, Create::InitPod);
}

fn location(name: &str, max: Option<&str>) -> VitessBackupLocation {
    VitessBackupLocation {
        name: name.into(),
        max_backup_age: max.map(Into::into),
        ..VitessBackupLocation::default()
    }
}

#[test]
fn counts_per_location_and_freshness() {
    let locations = [location("", Some("1h")), location("dr", None)];
    let backups = [
        entry("", true, 1_000),
        entry("", true, 5_000),
        entry("", false, 9_000),
        entry("dr", false, 9_000),
        entry("elsewhere", true, 9_000),
    ];
    let statuses = location_status(&locations, &backups);
    assert_eq!(statuses.len(), 2);
    assert_eq!(statuses[0].name, None);
    assert_eq!(
        (statuses[0].complete_backups, statuses[0].incomplete_backups),
        (2, 1)
    );
    assert_eq!(
        statuses[0].latest_complete_backup_time,
        Some(Time(Timestamp::from_second(5_000).unwrap()))
    );
    assert_eq!(statuses[1].name.as_deref(), Some("dr"));
    assert_eq!(
        (statuses[1].complete_backups, statuses[1].incomplete_backups),
        (0, 1)
    );
    assert_eq!(
        counts(&statuses),
        Counts {
            complete: 2,
            incomplete: 2,
            unknown: 0
        }
    );
    let at = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
    let fresh = freshness(&locations, &statuses, at(5_000 + 3_600)).unwrap();
    assert!(fresh.ready, "{fresh:?}");
    let stale = freshness(&locations, &statuses, at(5_000 + 3_601)).unwrap();
    assert!(!stale.ready);
    assert!(
        stale.message.contains("more than 1h ago"),
        "{}",
        stale.message
    );
    // Only the location with a maxBackupAge is judged.
    assert_eq!(
        freshness(&[location("dr", None)], &statuses[1..], at(0)),
        None
    );
    let none = freshness(&[location("dr", Some("24h"))], &statuses[1..], at(0)).unwrap();
    assert!(none.message.contains("no complete backup"));
}

#[test]
fn durations() {
    assert_eq!(parse_duration("26h"), Some(Duration::from_secs(26 * 3600)));
    assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
    assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
    for bad in ["", "h", "10", "1d", "1.5h"] {
        assert_eq!(parse_duration(bad), None, "{bad}");
    }
}

#[test]
fn a_running_init_pod_says_since_when_and_what_a_hang_means() {
    let d = decide(&Inputs {
        init_pod: pod("Running").map(|p| InitPod {
            running_since: Some("2026-12-05T16:00:00Z".into()),
            ..p
        }),
        ..inputs()
    });
    assert_eq!(reason(&d), "InitPodRunning");
    let message = &d
        .condition
        .as_ref()
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(
        message.contains("running since 2026-12-05T16:00:00Z"),
        "{message}"
    );
    assert!(
        message.contains("kubectl logs ex-commerce-x-x-vtbackup-init-c6db73c9 -c vtbackup"),
        "{message}"
    );
    // The same message on every reconcile while it runs: no status write for nothing.
    let again = decide(&Inputs {
        init_pod: pod("Running").map(|p| InitPod {
            running_since: Some("2026-12-05T16:00:00Z".into()),
            ..p
        }),
        ..inputs()
    });
    assert_eq!(again, d);
}
