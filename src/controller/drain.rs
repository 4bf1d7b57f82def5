//! The drain and rollout state machine of one shard (DESIGN §6), as a pure function from
//! what the shard looks like (pods, their annotations, what vtctld says) to the next steps.
//! The shard controller carries the steps out; everything that decides lives here and is
//! unit-tested without a cluster.
//!
//! - Someone (a person, node-drain tooling, or this module for scale-downs and rolling
//!   updates) sets `drain.planetscale.com/started` on a tablet pod.
//! - The operator acknowledges it, and marks at most one pod per shard `finished` at a time,
//!   only when every other tablet is ready; a draining primary goes first. In a shard Vitess
//!   never recorded a primary for, no tablet can be ready and none has served a write: its
//!   drains are finished at once (one at a time), and the first election waits for them.
//! - A primary is never finished: it is first reparented (PlannedReparentShard) to a ready
//!   replica that is not draining; it is finished once Vitess records another primary.
//! - Removing `started` aborts: `acknowledged` and `finished` are taken away again.
//! - A finished pod the operator itself wants gone (no longer in the spec, or out of date) is
//!   deleted; other finished pods wait for whoever started the drain.

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

impl Rollout {
    /// The rollout `updateStrategy` asks for (`External` when it says nothing).
    pub fn of(strategy: Option<&crate::api::shared::VitessClusterUpdateStrategy>) -> Self {
        match strategy.and_then(|u| u.type_) {
            Some(crate::api::shared::UpdateStrategyType::Immediate) => Rollout::Immediate,
            Some(crate::api::shared::UpdateStrategyType::External) | None => Rollout::External,
        }
    }
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
    /// Vitess may make it the primary: a REPLICA of a `replica` pool (the only tablets
    /// PlannedReparentShard promotes), or, on an external datastore, a SPARE (or PRIMARY)
    /// tablet of an `externalmaster` pool (TabletExternallyReparented; see [`Shard::external`]).
    pub can_be_primary: bool,
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
    /// Its tablets run against a MySQL the operator does not run (`externalDatastore`): the
    /// primary is moved by telling Vitess (TabletExternallyReparented), not by a reparent
    /// Vitess carries out. Only the wording of what blocks depends on it here.
    pub external: bool,
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
    match elect(after, shard.external) {
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
        // Vitess never recorded a primary: the shard has served no writes, its tablets hold
        // nothing a backup does not, and none of them can be Ready before an election. So
        // the drain is finished at once (still one pod at a time: see above), and the first
        // election waits for it (`elect`). Otherwise tablets started from a wrong spec
        // would wait for an election that waits for them.
        return Some(Finish::Mark(pick));
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
        .filter(|t| &t.alias != primary && t.ready && t.can_be_primary && !t.has(drain::STARTED))
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
             must be a ready {} whose pod is not draining",
            candidate_kind(shard.external)
        )),
    })
}

/// What a tablet must be to become the primary.
fn candidate_kind(external: bool) -> &'static str {
    if external {
        "SPARE tablet of an externalmaster pool"
    } else {
        "REPLICA of a replica pool"
    }
}

/// The tablet to elect as the first primary, once every tablet the spec wants is running and
/// registered in Vitess (Ready comes only after the election: a tablet without a primary
/// does not serve).
fn elect(after: &[Tablet], external: bool) -> Result<String, String> {
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
    let draining: Vec<&str> = after
        .iter()
        .filter(|t| t.has(drain::STARTED))
        .map(|t| t.alias.as_str())
        .collect();
    if !draining.is_empty() {
        return Err(format!(
            "waiting for the drain of {} to end (a primary is elected once no tablet drains)",
            draining.join(", ")
        ));
    }
    wanted
        .iter()
        .filter(|t| t.can_be_primary)
        .map(|t| t.alias.clone())
        .min()
        .ok_or_else(|| {
            format!(
                "no tablet can be primary: none is a {}",
                candidate_kind(external)
            )
        })
}

#[cfg(test)]
mod tests;
