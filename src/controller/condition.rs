//! The standard `Ready` condition every kind reports, with the transition time kept stable.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use crate::api::shared::{ConditionStatus, Conditions};

pub const READY: &str = "Ready";

/// What a reconcile concluded about readiness.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Readiness {
    pub ready: bool,
    /// Neither true nor false can be told (condition status `Unknown`); `ready` is false.
    pub unknown: bool,
    /// CamelCase, for machines (`AllTabletsReady`, `TabletsNotReady`, ...).
    pub reason: String,
    /// For people: what is missing.
    pub message: String,
}

impl Readiness {
    pub fn new(ready: bool, reason: &str, message: impl Into<String>) -> Self {
        Self {
            ready,
            unknown: false,
            reason: reason.into(),
            message: message.into(),
        }
    }

    /// A condition whose truth cannot be told.
    pub fn unknown(reason: &str, message: impl Into<String>) -> Self {
        Self {
            unknown: true,
            ..Self::new(false, reason, message)
        }
    }

    /// The condition status: `True`, `False` or `Unknown`.
    pub fn status(&self) -> &'static str {
        match (self.unknown, self.ready) {
            (true, _) => "Unknown",
            (false, true) => "True",
            (false, false) => "False",
        }
    }
}

/// `previous` with its `Ready` condition replaced. The transition time only moves when the
/// status flips: a condition rewritten with a new time on every reconcile would be a write
/// on every reconcile.
pub fn with_ready(
    previous: &Conditions,
    readiness: &Readiness,
    generation: Option<i64>,
) -> Conditions {
    let status = readiness.status();
    let old = previous.iter().find(|c| c.type_ == READY);
    let last_transition_time = match old {
        Some(old) if old.status == status => old.last_transition_time.clone(),
        // The API server keeps whole seconds; so do we, so that what we compare is what it stores.
        _ => Time(
            Timestamp::from_second(Timestamp::now().as_second()).unwrap_or(Timestamp::UNIX_EPOCH),
        ),
    };
    let ready = Condition {
        type_: READY.into(),
        status: status.into(),
        reason: readiness.reason.clone(),
        message: readiness.message.clone(),
        last_transition_time,
        observed_generation: generation,
    };
    let mut conditions: Conditions = previous
        .iter()
        .filter(|c| c.type_ != READY)
        .cloned()
        .collect();
    conditions.insert(0, ready);
    conditions
}

/// `previous` with the condition `type_` set (kept in place, appended if new), with the same
/// stable transition time as [`with_ready`]. `None` removes nothing but, for a condition that
/// was never set, adds nothing either: a condition that only reports trouble (such as
/// `ScaleDownBlocked`) appears when there is trouble and then stays, False, as its history.
pub fn with_condition(
    previous: &Conditions,
    type_: &str,
    state: Option<&Readiness>,
    generation: Option<i64>,
) -> Conditions {
    let old = previous.iter().find(|c| c.type_ == type_);
    let state = match (state, old) {
        (Some(state), _) => state.clone(),
        (None, None) => return previous.clone(),
        (None, Some(old)) if old.status == "False" => return previous.clone(),
        (None, Some(_)) => Readiness::new(false, "Resolved", "nothing blocked"),
    };
    let status = state.status();
    let last_transition_time = match old {
        Some(old) if old.status == status => old.last_transition_time.clone(),
        _ => Time(
            Timestamp::from_second(Timestamp::now().as_second()).unwrap_or(Timestamp::UNIX_EPOCH),
        ),
    };
    let condition = Condition {
        type_: type_.into(),
        status: status.into(),
        reason: state.reason,
        message: state.message,
        last_transition_time,
        observed_generation: generation,
    };
    let mut conditions = previous.clone();
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(slot) => *slot = condition,
        None => conditions.push(condition),
    }
    conditions
}

/// Whether `conditions` say Ready.
pub fn is_ready(conditions: &Conditions) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == READY && c.status == "True")
}

/// A boolean in the Go operator's tri-state form.
pub fn status_of(value: bool) -> ConditionStatus {
    ConditionStatus::from(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_transition_time_while_status_holds() {
        let first = with_ready(
            &Vec::new(),
            &Readiness::new(false, "Waiting", "0/2"),
            Some(1),
        );
        let mut old = first.clone();
        old[0].last_transition_time = Time(Timestamp::UNIX_EPOCH);
        let second = with_ready(&old, &Readiness::new(false, "Waiting", "1/2"), Some(2));
        assert_eq!(second[0].last_transition_time, Time(Timestamp::UNIX_EPOCH));
        assert_eq!(second[0].message, "1/2");
        assert_eq!(second[0].observed_generation, Some(2));
        let third = with_ready(&second, &Readiness::new(true, "Ready", "2/2"), Some(2));
        assert_ne!(third[0].last_transition_time, Time(Timestamp::UNIX_EPOCH));
        assert!(is_ready(&third));
        assert_eq!(third.len(), 1);
    }

    #[test]
    fn trouble_condition_appears_only_with_trouble() {
        let none = with_condition(&Vec::new(), "ScaleDownBlocked", None, Some(1));
        assert!(none.is_empty());
        let blocked = Readiness::new(true, "NotDrained", "zone1-1 not drained");
        let set = with_condition(&none, "ScaleDownBlocked", Some(&blocked), Some(1));
        assert_eq!(set.len(), 1);
        assert_eq!(set[0].status, "True");
        assert_eq!(set[0].reason, "NotDrained");
        let cleared = with_condition(&set, "ScaleDownBlocked", None, Some(2));
        assert_eq!(cleared[0].status, "False");
        // Once False it is not rewritten: no write per reconcile.
        assert_eq!(
            with_condition(&cleared, "ScaleDownBlocked", None, Some(3)),
            cleared
        );
    }

    #[test]
    fn unknown_is_its_own_status() {
        let unknown = Readiness::unknown("CompletenessUnknown", "vtctld does not say");
        let set = with_condition(&Vec::new(), "BackupsFresh", Some(&unknown), Some(1));
        assert_eq!(set[0].status, "Unknown");
        let mut old = set.clone();
        old[0].last_transition_time = Time(Timestamp::UNIX_EPOCH);
        let same = with_condition(&old, "BackupsFresh", Some(&unknown), Some(1));
        assert_eq!(same[0].last_transition_time, Time(Timestamp::UNIX_EPOCH));
        let stale = Readiness::new(false, "Stale", "old");
        let changed = with_condition(&old, "BackupsFresh", Some(&stale), Some(1));
        assert_eq!(changed[0].status, "False");
        assert_ne!(changed[0].last_transition_time, Time(Timestamp::UNIX_EPOCH));
    }

    #[test]
    fn other_conditions_are_kept() {
        let mut previous = with_ready(&Vec::new(), &Readiness::new(true, "Ready", ""), None);
        previous.push(Condition {
            type_: "Draining".into(),
            status: "False".into(),
            ..previous[0].clone()
        });
        let next = with_ready(&previous, &Readiness::new(false, "Waiting", ""), None);
        assert_eq!(next.len(), 2);
        assert!(!is_ready(&next));
        assert_eq!(next[1].type_, "Draining");
    }
}
