//! The tests of [`super`].

use super::*;

fn tablet(alias: &str) -> Tablet {
    Tablet {
        alias: alias.into(),
        pod: format!("pod-{alias}"),
        cell: alias.split('-').next().unwrap_or_default().into(),
        ready: true,
        running: true,
        can_be_primary: true,
        registered: true,
        wanted: Wanted::Current,
        annotations: BTreeMap::new(),
    }
}

fn with(mut t: Tablet, keys: &[&str]) -> Tablet {
    for k in keys {
        t.annotations.insert(k.to_string(), "x".into());
    }
    t
}

fn shard(tablets: Vec<Tablet>, primary: Option<&str>) -> Shard {
    let tablets = tablets
        .into_iter()
        .map(|mut t| {
            if Some(t.alias.as_str()) == primary {
                t.can_be_primary = false;
            }
            t
        })
        .collect();
    Shard {
        tablets,
        primary: primary.map(Into::into),
        rollout: Rollout::Immediate,
        hold_election: None,
        external: false,
    }
}

fn annotate(pod: &str, set: &[(&str, &str)], remove: &[&str]) -> Step {
    Step::Annotate {
        pod: pod.into(),
        set: set
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        remove: remove.iter().map(|k| k.to_string()).collect(),
    }
}

#[test]
fn a_steady_shard_needs_nothing() {
    let plan = plan(&shard(vec![tablet("a-1"), tablet("a-2")], Some("a-1")));
    assert_eq!(plan, Plan::default());
}

#[test]
fn a_draining_replica_is_acknowledged_and_finished_without_a_reparent() {
    let plan = plan(&shard(
        vec![tablet("a-1"), with(tablet("a-2"), &[drain::STARTED])],
        Some("a-1"),
    ));
    assert_eq!(
        plan.steps,
        vec![annotate(
            "pod-a-2",
            &[
                (drain::ACKNOWLEDGED, ACKNOWLEDGED),
                (drain::FINISHED, FINISHED)
            ],
            &[]
        )]
    );
    assert_eq!(plan.blocked, None);
    assert_eq!(plan.draining, vec!["a-2".to_string()]);
}

#[test]
fn a_draining_primary_is_reparented_first_and_finished_after() {
    let draining = with(tablet("a-1"), &[drain::STARTED, drain::ACKNOWLEDGED]);
    let before = shard(vec![draining.clone(), tablet("a-2")], Some("a-1"));
    assert_eq!(
        plan(&before).steps,
        vec![Step::Reparent {
            from: "a-1".into(),
            to: "a-2".into()
        }]
    );
    // Once Vitess records the new primary, the old pod is finished.
    let after = shard(vec![draining, tablet("a-2")], Some("a-2"));
    assert_eq!(
        plan(&after).steps,
        vec![annotate("pod-a-1", &[(drain::FINISHED, FINISHED)], &[])]
    );
}

#[test]
fn the_candidate_prefers_an_up_to_date_replica_in_the_primarys_cell() {
    let mut other_cell = tablet("b-1");
    other_cell.cell = "b".into();
    let mut outdated = tablet("a-2");
    outdated.wanted = Wanted::Outdated;
    let mut rdonly = tablet("a-0");
    rdonly.can_be_primary = false;
    let mut s = shard(
        vec![
            with(tablet("a-1"), &[drain::STARTED, drain::ACKNOWLEDGED]),
            rdonly,
            outdated,
            other_cell,
            tablet("a-3"),
        ],
        Some("a-1"),
    );
    s.rollout = Rollout::External;
    let steps = plan(&s).steps;
    assert!(steps.contains(&Step::Reparent {
        from: "a-1".into(),
        to: "a-3".into()
    }));
}

#[test]
fn no_candidate_blocks_and_says_why() {
    // The only replica drains too: the primary goes first and has nowhere to go, and the
    // replica is not finished either (it is the primary's only way out).
    let plan = plan(&shard(
        vec![
            with(tablet("a-1"), &[drain::STARTED, drain::ACKNOWLEDGED]),
            with(tablet("a-2"), &[drain::STARTED, drain::ACKNOWLEDGED]),
        ],
        Some("a-1"),
    ));
    assert_eq!(plan.steps, vec![]);
    assert!(
        plan.blocked
            .unwrap()
            .contains("no other tablet can take over")
    );
    let plan = super::plan(&shard(
        vec![
            with(tablet("a-1"), &[drain::STARTED, drain::ACKNOWLEDGED]),
            with(
                tablet("a-2"),
                &[drain::STARTED, drain::ACKNOWLEDGED, drain::FINISHED],
            ),
        ],
        Some("a-1"),
    ));
    // At most one finished pod: nothing moves while a-2 waits for its drainer.
    assert_eq!(plan.steps, vec![]);
    // An rdonly tablet is no candidate.
    let mut s = shard(
        vec![
            with(tablet("a-1"), &[drain::STARTED, drain::ACKNOWLEDGED]),
            tablet("a-2"),
        ],
        Some("a-1"),
    );
    s.tablets[1].can_be_primary = false;
    let plan = super::plan(&s);
    assert_eq!(plan.steps, vec![]);
    assert!(
        plan.blocked
            .unwrap()
            .contains("no other tablet can take over")
    );
}

#[test]
fn drains_wait_for_other_tablets_to_be_ready() {
    let mut unready = tablet("a-3");
    unready.ready = false;
    let plan = plan(&shard(
        vec![
            tablet("a-1"),
            with(tablet("a-2"), &[drain::STARTED, drain::ACKNOWLEDGED]),
            unready,
        ],
        Some("a-1"),
    ));
    assert_eq!(plan.steps, vec![]);
    assert!(plan.blocked.unwrap().contains("not ready: a-3"));
    // The draining pod itself may be unready (its node is going away).
    let mut draining = with(tablet("a-2"), &[drain::STARTED, drain::ACKNOWLEDGED]);
    draining.ready = false;
    let plan = super::plan(&shard(vec![tablet("a-1"), draining], Some("a-1")));
    assert_eq!(
        plan.steps,
        vec![annotate("pod-a-2", &[(drain::FINISHED, FINISHED)], &[])]
    );
}

#[test]
fn removing_started_aborts() {
    let plan = plan(&shard(
        vec![
            tablet("a-1"),
            with(tablet("a-2"), &[drain::ACKNOWLEDGED, drain::FINISHED]),
        ],
        Some("a-1"),
    ));
    assert_eq!(
        plan.steps,
        vec![annotate(
            "pod-a-2",
            &[],
            &[drain::ACKNOWLEDGED, drain::FINISHED]
        )]
    );
}

#[test]
fn unwanted_pods_are_drained_then_deleted() {
    let mut gone = tablet("a-3");
    gone.wanted = Wanted::Unwanted;
    let plan = plan(&shard(
        vec![tablet("a-1"), tablet("a-2"), gone.clone()],
        Some("a-1"),
    ));
    assert_eq!(
        plan.steps,
        vec![annotate(
            "pod-a-3",
            &[
                (drain::STARTED, STARTED_SCALE_DOWN),
                (drain::ACKNOWLEDGED, ACKNOWLEDGED),
                (drain::FINISHED, FINISHED)
            ],
            &[]
        )]
    );
    let done = with(
        gone,
        &[drain::STARTED, drain::ACKNOWLEDGED, drain::FINISHED],
    );
    let plan = super::plan(&shard(
        vec![tablet("a-1"), tablet("a-2"), done],
        Some("a-1"),
    ));
    assert_eq!(
        plan.steps,
        vec![Step::Delete {
            pod: "pod-a-3".into(),
            alias: "a-3".into(),
            wanted: Wanted::Unwanted
        }]
    );
}

#[test]
fn immediate_rollout_goes_one_at_a_time_primary_last() {
    let outdated = |alias| Tablet {
        wanted: Wanted::Outdated,
        ..tablet(alias)
    };
    let s = shard(
        vec![outdated("a-1"), outdated("a-2"), outdated("a-3")],
        Some("a-2"),
    );
    let first = plan(&s);
    // a-1 is started, acknowledged and (all others ready, a primary exists) finished.
    assert_eq!(
        first.steps,
        vec![annotate(
            "pod-a-1",
            &[
                (drain::STARTED, STARTED_ROLLOUT),
                (drain::ACKNOWLEDGED, ACKNOWLEDGED),
                (drain::FINISHED, FINISHED)
            ],
            &[]
        )]
    );
    // a-1 replaced (Current now), a-3 next, the primary a-2 last.
    let s = shard(
        vec![tablet("a-1"), outdated("a-2"), outdated("a-3")],
        Some("a-2"),
    );
    let steps = plan(&s).steps;
    assert!(matches!(&steps[0], Step::Annotate { pod, .. } if pod == "pod-a-3"));
    let s = shard(
        vec![tablet("a-1"), outdated("a-2"), tablet("a-3")],
        Some("a-2"),
    );
    let steps = plan(&s).steps;
    assert_eq!(
        steps,
        vec![
            annotate(
                "pod-a-2",
                &[
                    (drain::STARTED, STARTED_ROLLOUT),
                    (drain::ACKNOWLEDGED, ACKNOWLEDGED)
                ],
                &[]
            ),
            Step::Reparent {
                from: "a-2".into(),
                to: "a-1".into()
            }
        ]
    );
}

#[test]
fn external_rollout_schedules_and_waits_for_a_release() {
    let outdated = Tablet {
        wanted: Wanted::Outdated,
        ..tablet("a-2")
    };
    let mut s = shard(vec![tablet("a-1"), outdated.clone()], Some("a-1"));
    s.rollout = Rollout::External;
    assert_eq!(
        plan(&s).steps,
        vec![annotate("pod-a-2", &[(rollout::SCHEDULED, SCHEDULED)], &[])]
    );
    s.tablets[1] = with(outdated, &[rollout::SCHEDULED, rollout::RELEASED]);
    let steps = plan(&s).steps;
    assert!(matches!(&steps[0], Step::Annotate { set, .. } if set.contains_key(drain::STARTED)));
}

#[test]
fn the_first_primary_waits_for_every_tablet() {
    let mut unregistered = tablet("a-2");
    unregistered.registered = false;
    let plan = plan(&shard(vec![tablet("a-1"), unregistered], None));
    assert_eq!(plan.steps, vec![]);
    assert!(plan.election.unwrap().contains("a-2"));
    let mut rdonly = tablet("a-0");
    rdonly.can_be_primary = false;
    let plan = super::plan(&shard(vec![rdonly, tablet("a-2"), tablet("a-1")], None));
    assert_eq!(plan.steps, vec![Step::ElectPrimary { to: "a-1".into() }]);
}

#[test]
fn the_first_primary_needs_running_tablets_not_ready_ones() {
    // Before a primary, real tablets run and register but are not Ready.
    let not_ready = |alias: &str| {
        let mut t = tablet(alias);
        t.ready = false;
        t
    };
    let plan = plan(&shard(vec![not_ready("a-1"), not_ready("a-2")], None));
    assert_eq!(plan.steps, vec![Step::ElectPrimary { to: "a-1".into() }]);
    let mut starting = not_ready("a-2");
    starting.running = false;
    let plan = super::plan(&shard(vec![not_ready("a-1"), starting], None));
    assert_eq!(plan.steps, vec![]);
    assert!(
        plan.election
            .unwrap()
            .contains("running and registered in Vitess: a-2")
    );
}

#[test]
fn a_held_election_waits_and_says_why() {
    let mut held = shard(vec![tablet("a-1"), tablet("a-2")], None);
    held.hold_election = Some("waiting for vtbackup-init pod p".into());
    let plan = plan(&held);
    assert_eq!(plan.steps, vec![]);
    assert_eq!(
        plan.election.as_deref(),
        Some("waiting for vtbackup-init pod p")
    );
    // A hold means nothing once the shard has a primary.
    held.primary = Some("a-1".into());
    assert_eq!(super::plan(&held).election, None);
}

#[test]
fn a_shard_that_never_had_a_primary_rolls_without_waiting_for_readiness() {
    // Tablets started from a wrong spec (say, a backup location the user then fixed): none
    // is Ready, as none has a primary, and they are out of date.
    let stale = |alias| {
        let mut t = tablet(alias);
        t.ready = false;
        t.wanted = Wanted::Outdated;
        t
    };
    let plan = super::plan(&shard(vec![stale("a-1"), stale("a-2")], None));
    assert_eq!(
        plan.steps,
        vec![annotate(
            "pod-a-1",
            &[
                (drain::STARTED, STARTED_ROLLOUT),
                (drain::ACKNOWLEDGED, ACKNOWLEDGED),
                (drain::FINISHED, FINISHED),
            ],
            &[]
        )]
    );
    assert_eq!(plan.blocked, None);
    assert!(
        plan.election
            .as_deref()
            .unwrap_or_default()
            .contains("drain of a-1"),
        "{plan:?}"
    );

    // Finished and out of date: deleted; the other one waits its turn, and nobody is elected.
    let finished = with(
        stale("a-1"),
        &[drain::STARTED, drain::ACKNOWLEDGED, drain::FINISHED],
    );
    let plan = super::plan(&shard(vec![finished, stale("a-2")], None));
    assert_eq!(
        plan.steps,
        vec![Step::Delete {
            pod: "pod-a-1".into(),
            alias: "a-1".into(),
            wanted: Wanted::Outdated,
        }]
    );

    // A drain someone else started is finished at once too, but one pod at a time.
    let plan = super::plan(&shard(
        vec![
            with(tablet("a-1"), &[drain::STARTED, drain::ACKNOWLEDGED]),
            with(tablet("a-2"), &[drain::STARTED, drain::ACKNOWLEDGED]),
        ],
        None,
    ));
    assert_eq!(
        plan.steps,
        vec![annotate("pod-a-1", &[(drain::FINISHED, FINISHED)], &[])]
    );
    assert!(
        !plan
            .steps
            .iter()
            .any(|s| matches!(s, Step::ElectPrimary { .. }))
    );

    // Once every tablet is current and none drains, the first primary is elected.
    let plan = super::plan(&shard(vec![tablet("a-1"), tablet("a-2")], None));
    assert_eq!(plan.steps, vec![Step::ElectPrimary { to: "a-1".into() }]);
}

#[test]
fn on_an_external_datastore_the_wording_names_externalmaster_spares() {
    // Which tablets may be primary is decided by the caller (`can_be_primary`); the planner
    // only words what is missing for the shard's kind.
    let mut spare = tablet("a-1");
    spare.can_be_primary = false;
    let mut s = shard(vec![spare], None);
    s.external = true;
    let why = plan(&s).election.unwrap_or_default();
    assert!(
        why.contains("SPARE tablet of an externalmaster pool"),
        "{why}"
    );

    let mut s = shard(
        vec![
            with(tablet("a-1"), &[drain::STARTED, drain::ACKNOWLEDGED]),
            tablet("a-2"),
        ],
        Some("a-1"),
    );
    s.tablets[1].can_be_primary = false;
    s.external = true;
    let plan = plan(&s);
    assert!(
        plan.blocked
            .iter()
            .any(|b| b.contains("SPARE tablet of an externalmaster pool")),
        "{:?}",
        plan.blocked
    );
}
