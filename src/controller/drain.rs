//! The drain and rollout state machine of one shard (DESIGN §6), as a pure function from
//! what the shard looks like (pods, their annotations, what vtctld says) to the next steps.
//! The shard controller carries the steps out; everything that decides lives here and is
//! unit-tested without a cluster.
//!
//! - Someone (a person, node-drain tooling, or this module for scale-downs and rolling
//!   updates) sets `drain.planetscale.com/started` on a tablet pod.
//! - The operator acknowledges it, and marks at most one pod per shard `finished` at a time,
//!   only when every other tablet is ready and the shard has a primary; a draining primary
//!   goes first.
//! - A primary is never finished: it is first reparented (PlannedReparentShard) to a ready
//!   replica that is not draining; it is finished once Vitess records another primary.
//! - Removing `started` aborts: `acknowledged` and `finished` are taken away again.
//! - A finished pod the operator itself wants gone (no longer in the spec, or out of date) is
//!   deleted; other finished pods wait for whoever started the drain.
//!
//! Long because its table of scenario tests sits beside the state machine it pins down.

use std::collections::BTreeMap;

use crate::domain::labels::{drain, rollout};

/// What the operator wants of a tablet pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wanted {
    /// In the spec and built as the pod now is.
    Current,
    /// In the spec, but the pod was built from an older spec (its desired-state hash differs).
    Outdated,
    /// No longer in the spec (scale-down, removed pool).
    Unwanted,
}

/// How out-of-date pods are replaced (`updateStrategy.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rollout {
    /// Drain and replace them, one at a time per shard, primary last.
    Immediate,
    /// Mark them `rollout.planetscale.com/scheduled`; replace only those someone released.
    External,
}

/// One tablet pod of the shard as it now is.
#[derive(Clone, Debug)]
pub struct Tablet {
    /// Vitess alias, `zone1-0123456789`.
    pub alias: String,
    pub pod: String,
    pub cell: String,
    /// The pod's Ready condition.
    pub ready: bool,
    /// The pod's phase is Running. A real vttablet is not Ready before its shard has a
    /// primary (it serves no queries yet), so the first election waits for this, not Ready.
    pub running: bool,
    /// Its pool may hold a primary (pool type `replica`).
    pub replica_pool: bool,
    /// Vitess records the tablet as a REPLICA (the only type PlannedReparentShard promotes).
    pub vitess_replica: bool,
    /// Vitess has a record of the tablet at all.
    pub registered: bool,
    pub wanted: Wanted,
    /// The pod's annotations (only the drain and rollout keys matter).
    pub annotations: BTreeMap<String, String>,
}

impl Tablet {
    fn has(&self, key: &str) -> bool {
        self.annotations.contains_key(key)
    }
}

/// The shard as the planner sees it.
#[derive(Clone, Debug)]
pub struct Shard {
    pub tablets: Vec<Tablet>,
    /// The primary's alias as Vitess records it.
    pub primary: Option<String>,
    pub rollout: Rollout,
    /// Why the first primary must not be elected yet (the shard's first backup is not
    /// uploaded); `None`: elect once the tablets are ready.
    pub hold_election: Option<String>,
}

/// One thing to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Set and remove annotations of a pod.
    Annotate {
        pod: String,
        set: BTreeMap<String, String>,
        remove: Vec<String>,
    },
    /// Move the primary before its pod may go.
    Reparent { from: String, to: String },
    /// Give a shard without a primary its first one.
    ElectPrimary { to: String },
    /// Delete a drained pod the operator wants gone.
    Delete {
        pod: String,
        alias: String,
        wanted: Wanted,
    },
}

/// What [`plan`] decided.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// Why a drain cannot move forward now (for an Event and a condition).
    pub blocked: Option<String>,
    /// Why the first primary is not elected yet.
    pub election: Option<String>,
    /// Pods being drained (started, not yet deleted), by alias.
    pub draining: Vec<String>,
}

/// Value of `started` when the operator starts a drain for a scale-down.
pub const STARTED_SCALE_DOWN: &str = "vitess-operator: the tablet is no longer in the spec";
/// Value of `started` when the operator starts a drain for a rolling update.
pub const STARTED_ROLLOUT: &str = "vitess-operator: rolling update";
const ACKNOWLEDGED: &str = "vitess-operator";
const FINISHED: &str = "vitess-operator: safe to delete";
const SCHEDULED: &str = "vitess-operator: the pod's spec changed; release it to roll";

/// The next steps for `shard`. Annotation steps come first, then at most one of a reparent,
/// a first election, a finish or a deletion.
pub fn plan(shard: &Shard) -> Plan {
    let mut edits = Edits::new(shard);
    edits.abort_and_start(shard);
    edits.start_rollout(shard);
    edits.acknowledge();
    let draining = edits
        .after
        .iter()
        .filter(|t| t.has(drain::STARTED))
        .map(|t| t.alias.clone())
        .collect();

    let finish = finish(shard, &edits.after);
    if let Some(Finish::Mark(i)) = finish {
        edits.set(i, drain::FINISHED, Some(FINISHED));
    }
    let mut plan = Plan {
        draining,
        ..Plan::default()
    };
    plan.steps = edits.steps(shard);
    match finish {
        Some(Finish::Step(step)) => plan.steps.push(step),
        Some(Finish::Blocked(why)) => plan.blocked = Some(why),
        Some(Finish::Mark(_)) | None => {}
    }
    plan.election = election(shard, &edits.after, &mut plan.steps);
    plan
}

/// The annotation changes a plan makes, and the tablets as they will be once applied.
struct Edits {
    after: Vec<Tablet>,
    /// Per tablet index: the annotations set, and the keys removed (in order).
    changes: BTreeMap<usize, (BTreeMap<String, String>, Vec<String>)>,
}

impl Edits {
    fn new(shard: &Shard) -> Self {
        Self {
            after: shard.tablets.clone(),
            changes: BTreeMap::new(),
        }
    }

    /// Sets (`Some`) or removes (`None`) annotation `key` of tablet `i`.
    fn set(&mut self, i: usize, key: &str, value: Option<&str>) {
        let entry = self.changes.entry(i).or_default();
        match value {
            Some(v) => {
                self.after[i].annotations.insert(key.into(), v.into());
                entry.0.insert(key.into(), v.into());
            }
            None => {
                self.after[i].annotations.remove(key);
                entry.1.push(key.into());
            }
        }
    }

    /// Takes back what aborted drains left, starts the drains of unwanted tablets and
    /// schedules the outdated ones of an external rollout.
    fn abort_and_start(&mut self, shard: &Shard) {
        for i in 0..self.after.len() {
            // Aborted drains: whoever started it took `started` away.
            if !self.after[i].has(drain::STARTED) {
                for key in [drain::ACKNOWLEDGED, drain::FINISHED] {
                    if self.after[i].has(key) {
                        self.set(i, key, None);
                    }
                }
            }
            let t = &self.after[i];
            match t.wanted {
                Wanted::Unwanted if !t.has(drain::STARTED) => {
                    self.set(i, drain::STARTED, Some(STARTED_SCALE_DOWN));
                }
                Wanted::Outdated
                    if shard.rollout == Rollout::External && !t.has(rollout::SCHEDULED) =>
                {
                    self.set(i, rollout::SCHEDULED, Some(SCHEDULED));
                }
                _ => {}
            }
        }
    }

    /// Rolling update: one operator-started drain at a time, the primary last.
    fn start_rollout(&mut self, shard: &Shard) {
        if self.after.iter().any(|t| t.has(drain::STARTED)) {
            return;
        }
        let releasable = |t: &Tablet| {
            t.wanted == Wanted::Outdated
                && (shard.rollout == Rollout::Immediate || t.has(rollout::RELEASED))
        };
        let is_primary = |t: &Tablet| Some(&t.alias) == shard.primary.as_ref();
        let next = self
            .after
            .iter()
            .enumerate()
            .filter(|(_, t)| releasable(t))
            .min_by_key(|(_, t)| (is_primary(t), t.alias.clone()))
            .map(|(i, _)| i);
        if let Some(i) = next {
            self.set(i, drain::STARTED, Some(STARTED_ROLLOUT));
        }
    }

    /// Acknowledges every started drain.
    fn acknowledge(&mut self) {
        for i in 0..self.after.len() {
            if self.after[i].has(drain::STARTED) && !self.after[i].has(drain::ACKNOWLEDGED) {
                self.set(i, drain::ACKNOWLEDGED, Some(ACKNOWLEDGED));
            }
        }
    }

    /// One annotation step per pod changed, in tablet order.
    fn steps(&mut self, shard: &Shard) -> Vec<Step> {
        std::mem::take(&mut self.changes)
            .into_iter()
            .map(|(i, (set, remove))| Step::Annotate {
                pod: shard.tablets[i].pod.clone(),
                set,
                remove,
            })
            .collect()
    }
}

/// Why the first primary is not elected yet; pushes the election onto `steps` when it may
/// happen (not in a plan that deletes a pod).
fn election(shard: &Shard, after: &[Tablet], steps: &mut Vec<Step>) -> Option<String> {
    if let (None, Some(why)) = (&shard.primary, &shard.hold_election) {
        return Some(why.clone());
    }
    if shard.primary.is_some() {
        return None;
    }
    match elect(after) {
        Ok(to) => {
            if !steps.iter().any(|s| matches!(s, Step::Delete { .. })) {
                steps.push(Step::ElectPrimary { to });
            }
            None
        }
        Err(why) => Some(why),
    }
}

enum Finish {
    Mark(usize),
    Step(Step),
    Blocked(String),
}

/// The one drain that may move forward, if any.
fn finish(shard: &Shard, after: &[Tablet]) -> Option<Finish> {
    // At most one finished pod per shard: it goes first.
    if let Some(done) = after
        .iter()
        .find(|t| t.has(drain::STARTED) && t.has(drain::FINISHED))
    {
        return (done.wanted != Wanted::Current).then(|| {
            Finish::Step(Step::Delete {
                pod: done.pod.clone(),
                alias: done.alias.clone(),
                wanted: done.wanted,
            })
        });
    }
    let draining: Vec<usize> = (0..after.len())
        .filter(|&i| after[i].has(drain::STARTED))
        .collect();
    let is_primary = |t: &Tablet| Some(&t.alias) == shard.primary.as_ref();
    // A draining primary first: finishing a replica first could take away the only tablet
    // the primary can move to. Then by alias.
    let &pick = draining
        .iter()
        .min_by_key(|&&i| (!is_primary(&after[i]), after[i].alias.clone()))?;
    let Some(primary) = &shard.primary else {
        return Some(Finish::Blocked(format!(
            "drain of {} waits: the shard has no primary yet",
            after[pick].alias
        )));
    };
    let unready: Vec<&str> = after
        .iter()
        .enumerate()
        .filter(|&(i, t)| i != pick && !t.ready)
        .map(|(_, t)| t.alias.as_str())
        .collect();
    if !unready.is_empty() {
        return Some(Finish::Blocked(format!(
            "drain of {} waits until every other tablet is ready; not ready: {}",
            after[pick].alias,
            unready.join(", ")
        )));
    }
    if !is_primary(&after[pick]) {
        return Some(Finish::Mark(pick));
    }
    let primary_cell = &after[pick].cell;
    let candidate = after
        .iter()
        .filter(|t| {
            &t.alias != primary
                && t.ready
                && t.replica_pool
                && t.vitess_replica
                && !t.has(drain::STARTED)
        })
        // Up-to-date pods first (a rollout should not promote one it will replace next), then
        // the primary's own cell, then by alias. Vitess waits for the candidate to catch up.
        .min_by_key(|t| {
            (
                t.wanted != Wanted::Current,
                &t.cell != primary_cell,
                &t.alias,
            )
        });
    Some(match candidate {
        Some(c) => Finish::Step(Step::Reparent {
            from: primary.clone(),
            to: c.alias.clone(),
        }),
        None => Finish::Blocked(format!(
            "primary {primary} is draining but no other tablet can take over: a candidate \
             must be a ready REPLICA of a replica pool whose pod is not draining"
        )),
    })
}

/// The tablet to elect as the first primary, once every tablet the spec wants is running and
/// registered in Vitess (Ready comes only after the election: a tablet without a primary
/// does not serve).
fn elect(after: &[Tablet]) -> Result<String, String> {
    let wanted: Vec<&Tablet> = after
        .iter()
        .filter(|t| t.wanted != Wanted::Unwanted)
        .collect();
    let waiting: Vec<&str> = wanted
        .iter()
        .filter(|t| !t.running || !t.registered)
        .map(|t| t.alias.as_str())
        .collect();
    if wanted.is_empty() {
        return Err("the shard has no tablets".into());
    }
    if !waiting.is_empty() {
        return Err(format!(
            "waiting for tablets to be running and registered in Vitess: {}",
            waiting.join(", ")
        ));
    }
    wanted
        .iter()
        .filter(|t| t.replica_pool && t.vitess_replica && !t.has(drain::STARTED))
        .map(|t| t.alias.clone())
        .min()
        .ok_or_else(|| "no tablet can be primary: none is a REPLICA of a replica pool".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tablet(alias: &str) -> Tablet {
        Tablet {
            alias: alias.into(),
            pod: format!("pod-{alias}"),
            cell: alias.split('-').next().unwrap_or_default().into(),
            ready: true,
            running: true,
            replica_pool: true,
            vitess_replica: true,
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
                    t.vitess_replica = false;
                }
                t
            })
            .collect();
        Shard {
            tablets,
            primary: primary.map(Into::into),
            rollout: Rollout::Immediate,
            hold_election: None,
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
        rdonly.replica_pool = false;
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
        s.tablets[1].replica_pool = false;
        let plan = super::plan(&s);
        assert_eq!(plan.steps, vec![]);
        assert!(
            plan.blocked
                .unwrap()
                .contains("no other tablet can take over")
        );
    }

    #[test]
    fn drains_wait_for_other_tablets_and_a_primary() {
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
        let plan = super::plan(&shard(
            vec![tablet("a-1"), with(tablet("a-2"), &[drain::STARTED])],
            None,
        ));
        assert!(plan.blocked.unwrap().contains("no primary"));
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
        assert!(
            matches!(&steps[0], Step::Annotate { set, .. } if set.contains_key(drain::STARTED))
        );
    }

    #[test]
    fn the_first_primary_waits_for_every_tablet() {
        let mut unregistered = tablet("a-2");
        unregistered.registered = false;
        let plan = plan(&shard(vec![tablet("a-1"), unregistered], None));
        assert_eq!(plan.steps, vec![]);
        assert!(plan.election.unwrap().contains("a-2"));
        let mut rdonly = tablet("a-0");
        rdonly.replica_pool = false;
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
}
