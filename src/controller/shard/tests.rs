//! The shard's pure steps: status, orphans, views.

use k8s_openapi::api::core::v1::{PodCondition, PodStatus};

use super::*;

fn tablet(alias: &str, ready: bool) -> Observed {
    Observed {
        alias: alias.into(),
        pod: Pod {
            metadata: kube::api::ObjectMeta {
                name: Some(format!("pod-{alias}")),
                labels: Some(labels::set(&[
                    (labels::CELL, "zone1"),
                    (labels::TABLET_TYPE, "replica"),
                    (labels::TABLET_INDEX, "1"),
                ])),
                ..Default::default()
            },
            spec: None,
            status: Some(PodStatus {
                phase: Some("Running".into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        },
        claim: None,
        want_storage: None,
        wanted: Wanted::Current,
    }
}

fn find<'a>(status: &'a VitessShardStatus, type_: &str) -> Option<(&'a str, &'a str)> {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.as_str(), c.reason.as_str()))
}

fn shard() -> VitessShard {
    VitessShard::new("example-commerce-x-x-0f5afee6", Default::default())
}

/// vtctld refused the connection.
fn refused() -> VtctldError {
    VtctldError::Vitess(crate::vitess::Error::Unavailable {
        address: "10.0.0.1:15999".into(),
        method: "GetShard".into(),
        target: "commerce/-".into(),
        message: "connection refused".into(),
    })
}

#[test]
fn counts_ready_tablets() {
    let unreachable = Err(refused());
    let plan = drain::Plan::default();
    let outcome = Outcome::default();
    let status = status(
        &shard(),
        &[tablet("zone1-1", true), tablet("zone1-2", false)],
        BTreeMap::new(),
        &unreachable,
        &plan,
        &outcome,
        &Backups::None,
    );
    assert_eq!(status.summary.as_deref(), Some("1/2"));
    assert!(!condition::is_ready(&status.conditions));
    assert!(status.conditions[0].message.contains("zone1-2"));
    assert_eq!(status.cells, vec!["zone1".to_string()]);
    let one = &status.tablets["zone1-1"];
    assert_eq!(one.pod_name.as_deref(), Some("pod-zone1-1"));
    assert_eq!(one.ready, ConditionStatus::True);
    assert_eq!(one.running, ConditionStatus::True);
    assert_eq!(one.index, Some(1));
    assert_eq!(
        find(&status, VTCTLD_REACHABLE),
        Some(("False", "Unreachable"))
    );
    // Without vtctld nothing is claimed about the primary.
    assert_eq!(find(&status, PRIMARY_ELECTED), None);
    assert_eq!(status.has_master, ConditionStatus::Unknown);

    let view = Ok(VitessView {
        primary: Some("zone1-1".into()),
        serving: true,
        types: BTreeMap::from([
            ("zone1-1".to_string(), TabletType::Primary),
            ("zone1-2".to_string(), TabletType::Replica),
        ]),
        serving_cells: Some(BTreeSet::from(["zone1".to_string()])),
    });
    let status = super::status(
        &shard(),
        &[tablet("zone1-1", true), tablet("zone1-2", true)],
        BTreeMap::new(),
        &view,
        &plan,
        &outcome,
        &Backups::None,
    );
    assert_eq!(status.summary.as_deref(), Some("2/2"));
    assert!(condition::is_ready(&status.conditions));
    assert_eq!(find(&status, SCALE_DOWN_BLOCKED), None);
    assert_eq!(find(&status, VTCTLD_REACHABLE), Some(("True", "Answered")));
    assert_eq!(find(&status, PRIMARY_ELECTED), Some(("True", "Elected")));
    assert_eq!(status.master_alias.as_deref(), Some("zone1-1"));
    assert_eq!(status.primary_alias.as_deref(), Some("zone1-1"));
    assert_eq!(status.has_master, ConditionStatus::True);
    assert_eq!(status.serving_writes, ConditionStatus::True);
    assert_eq!(status.tablets["zone1-2"].type_.as_deref(), Some("REPLICA"));
    // Served in zone1: not idle.
    assert_eq!(status.idle, ConditionStatus::False);
}

/// `idle` is the Go operator's: True once no cell's serving graph routes to the shard,
/// Unknown while vtctld cannot say.
#[test]
fn idle_is_what_the_serving_graph_says() {
    let idle = |serving_cells: Option<BTreeSet<String>>| {
        let view = Ok(VitessView {
            serving_cells,
            ..VitessView::default()
        });
        super::status(
            &shard(),
            &[tablet("zone1-1", true)],
            BTreeMap::new(),
            &view,
            &drain::Plan::default(),
            &Outcome::default(),
            &Backups::None,
        )
        .idle
    };
    assert_eq!(idle(Some(BTreeSet::new())), ConditionStatus::True);
    assert_eq!(
        idle(Some(BTreeSet::from(["zone2".to_string()]))),
        ConditionStatus::False
    );
    assert_eq!(idle(None), ConditionStatus::Unknown);
}

#[test]
fn a_shard_without_primary_polls_fast_only_while_its_tablets_just_started() {
    let now = SystemTime::now();
    let at = |ago: u64| {
        let mut t = tablet("zone1-1", true);
        let since = k8s_openapi::jiff::Timestamp::try_from(now - Duration::from_secs(ago)).unwrap();
        t.pod.status.as_mut().unwrap().conditions.as_mut().unwrap()[0].last_transition_time =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(since));
        t
    };
    // A pod not Running yet: its status event wakes the shard.
    let mut pending = tablet("zone1-2", false);
    pending.pod.status.as_mut().unwrap().phase = Some("Pending".into());
    assert_eq!(election_poll(&[at(1), pending], now), REQUEUE);
    // Running but not Ready (no primary yet): its containers' start counts.
    let mut started = tablet("zone1-2", false);
    started.pod.status.as_mut().unwrap().container_statuses =
        Some(vec![k8s_openapi::api::core::v1::ContainerStatus {
            name: "vttablet".into(),
            state: Some(k8s_openapi::api::core::v1::ContainerState {
                running: Some(k8s_openapi::api::core::v1::ContainerStateRunning {
                    started_at: at(2).pod.status.unwrap().conditions.unwrap()[0]
                        .last_transition_time
                        .clone(),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }]);
    assert_eq!(election_poll(&[at(600), started], now), REGISTER_POLL);
    assert_eq!(election_poll(&[at(1), at(3)], now), REGISTER_POLL);
    assert_eq!(election_poll(&[at(600), at(300)], now), WAIT);
}

/// Ready pods are not enough: a shard serves once Vitess has a primary among its tablets.
#[test]
fn ready_needs_a_primary_among_the_desired_tablets() {
    let plan = drain::Plan::default();
    let outcome = Outcome::default();
    let ready = [tablet("zone1-1", true), tablet("zone1-2", true)];
    let with_primary = |primary: Option<&str>| {
        let view = Ok(VitessView {
            primary: primary.map(Into::into),
            ..VitessView::default()
        });
        status(
            &shard(),
            &ready,
            BTreeMap::new(),
            &view,
            &plan,
            &outcome,
            &Backups::None,
        )
    };
    let none = with_primary(None);
    assert_eq!(find(&none, "Ready"), Some(("False", "NoPrimary")));
    assert_eq!(find(&none, PRIMARY_ELECTED).map(|c| c.0), Some("False"));
    let elsewhere = with_primary(Some("zone1-9"));
    assert_eq!(
        find(&elsewhere, "Ready"),
        Some(("False", "PrimaryNotDesired"))
    );
    let serving = with_primary(Some("zone1-2"));
    assert_eq!(find(&serving, "Ready"), Some(("True", "Serving")));
    // vtctld unreachable and never answered: nobody knows of a primary.
    let unknown = status(
        &shard(),
        &ready,
        BTreeMap::new(),
        &Err(refused()),
        &plan,
        &outcome,
        &Backups::None,
    );
    assert_eq!(find(&unknown, "Ready"), Some(("False", "NoPrimary")));
}

/// A primary whose pod is not ready (its node lost, its pod re-created and Pending) is named,
/// apart from replicas that are not ready yet: writes fail, and the user is told who acts.
#[test]
fn a_primary_that_is_not_ready_is_named() {
    let plan = drain::Plan::default();
    let outcome = Outcome::default();
    let view = Ok(VitessView {
        primary: Some("zone1-2".into()),
        ..VitessView::default()
    });
    let with = |tablets: &[Observed]| {
        status(
            &shard(),
            tablets,
            BTreeMap::new(),
            &view,
            &plan,
            &outcome,
            &Backups::None,
        )
    };
    let lost = with(&[tablet("zone1-1", true), tablet("zone1-2", false)]);
    assert_eq!(find(&lost, "Ready"), Some(("False", "PrimaryNotReady")));
    let message = &lost
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .expect("Ready")
        .message;
    assert!(message.contains("zone1-2") && message.contains("EmergencyReparentShard"));
    // The primary is still the one Vitess names: nothing was elected in its place.
    assert_eq!(find(&lost, PRIMARY_ELECTED), Some(("True", "Elected")));
    let replica = with(&[tablet("zone1-1", false), tablet("zone1-2", true)]);
    assert_eq!(find(&replica, "Ready"), Some(("False", "TabletsNotReady")));
}

/// An election vtctld refused is told from one that could not be asked.
#[test]
fn a_failed_election_says_whether_vtctld_refused_it_or_was_not_reached() {
    let plan = drain::Plan::default();
    let ready = [tablet("zone1-1", true), tablet("zone1-2", true)];
    let after = |failed: VtctldError| {
        let outcome = Outcome {
            primary: None,
            failed: Some(failed),
        };
        let view = Ok(VitessView::default());
        let status = status(
            &shard(),
            &ready,
            BTreeMap::new(),
            &view,
            &plan,
            &outcome,
            &Backups::None,
        );
        find(&status, PRIMARY_ELECTED).map(|(s, r)| (s.to_string(), r.to_string()))
    };
    let rejected = VtctldError::Vitess(crate::vitess::Error::Rejected {
        address: "10.0.0.1:15999".into(),
        method: "PlannedReparentShard".into(),
        target: "commerce/-".into(),
        code: crate::vitess::Code::FailedPrecondition,
        message: "primary-elect tablet zone1-1 is not a REPLICA".into(),
    });
    assert_eq!(
        after(rejected),
        Some(("False".into(), "ElectionRejected".into()))
    );
    assert_eq!(
        after(refused()),
        Some(("False".into(), "ElectionUnreachable".into()))
    );
}

#[test]
fn undrained_orphans_block_scale_down() {
    let alias = orphan_alias(&labels::set(&[
        (labels::CELL, "zone1"),
        (labels::TABLET_UID, "0123456789"),
    ]));
    assert_eq!(alias.as_deref(), Some("zone1-0123456789"));
    let mut pod = tablet("x", true).pod;
    pod.metadata.labels = Some(labels::set(&[
        (labels::CELL, "zone1"),
        (labels::TABLET_UID, "0123456789"),
    ]));
    let error = refused();
    let why = error.to_string();
    let orphans = orphans(&[pod], &drain::Plan::default(), Some(&error));
    assert_eq!(orphans["zone1-0123456789"].reason, "NotDrained");
    assert!(orphans["zone1-0123456789"].message.contains(&why));
    // vtctld named zone1-1 the primary when it last answered.
    let mut known = shard();
    known.status = Some(VitessShardStatus {
        primary_alias: Some("zone1-1".into()),
        ..Default::default()
    });
    let status = status(
        &known,
        &[tablet("zone1-1", true)],
        orphans,
        &Err(error),
        &drain::Plan::default(),
        &Outcome::default(),
        &Backups::None,
    );
    assert_eq!(
        find(&status, SCALE_DOWN_BLOCKED),
        Some(("True", "NotDrained"))
    );
    // Still Ready: the desired tablets serve with the primary vtctld named last; the orphan
    // is reported on its own.
    assert!(condition::is_ready(&status.conditions));
}

#[test]
fn a_blocked_drain_is_a_condition() {
    let plan = drain::Plan {
        blocked: Some("primary zone1-1 is draining but no other tablet can take over".into()),
        draining: vec!["zone1-1".into()],
        ..drain::Plan::default()
    };
    let view = Ok(VitessView {
        primary: Some("zone1-1".into()),
        ..VitessView::default()
    });
    let status = status(
        &shard(),
        &[tablet("zone1-1", true)],
        BTreeMap::new(),
        &view,
        &plan,
        &Outcome::default(),
        &Backups::None,
    );
    assert_eq!(find(&status, DRAINING), Some(("True", "Blocked")));
    let mut outdated = tablet("zone1-1", true);
    outdated.wanted = Wanted::Outdated;
    assert!(
        pending_changes(&shard(), &outdated)
            .unwrap()
            .contains(labels::rollout::RELEASED)
    );
}
