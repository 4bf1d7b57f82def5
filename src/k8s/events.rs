//! Kubernetes Events (events.k8s.io/v1) on the objects the operator works on: what it did that
//! a user cares about (pruning, removing drained tablets) and what blocks it (invalid specs,
//! undrained tablets, kept keyspaces, shards and cells, failed reconciles).
//!
//! Blocking Warnings are published only when the blocking situation starts or its message
//! changes (the callers compare the status before and after), so a steady cluster publishes
//! nothing. Publishing never fails a reconcile: a rejected Event is only logged.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource};

use crate::api::shared::OrphanStatus;

/// The reporting controller of every Event.
pub const CONTROLLER: &str = "vitess-operator";
/// Kubernetes rejects Event notes longer than this many bytes.
pub const NOTE_LIMIT: usize = 1024;

pub const PRUNED: &str = "Pruned";
pub const TABLET_REMOVED: &str = "TabletRemoved";
pub const INVALID_SPEC: &str = "InvalidSpec";
pub const TURNDOWN_BLOCKED: &str = "TurndownBlocked";
pub const RECONCILE_FAILED: &str = "ReconcileFailed";
pub const DRAIN_BLOCKED: &str = "DrainBlocked";
pub const DRAIN_FINISHED: &str = "DrainFinished";
pub const REPARENTED: &str = "PlannedReparent";
pub const REPARENT_FAILED: &str = "PlannedReparentFailed";
pub const PRIMARY_ELECTED: &str = "PrimaryElected";
/// The tablet that was an external datastore's primary could not be set aside as SPARE.
pub const SET_SPARE_FAILED: &str = "ChangeTabletTypeFailed";
pub const TABLET_REPLACED: &str = "TabletReplaced";
pub const HASH_RESTORED: &str = "HashRestored";
pub const TOPOLOGY_REGISTERED: &str = "TopologyRegistered";
pub const TOPOLOGY_PRUNED: &str = "TopologyPruned";
pub const VTCTLD_UNREACHABLE: &str = "VtctldUnreachable";
/// The spec sets fields the operator does not act on (once per list of them).
pub const FIELDS_NOT_ACTED_ON: &str = "FieldsNotActedOn";
pub const BACKUP_INIT_STARTED: &str = "BackupInitStarted";
pub const INITIAL_BACKUP_REQUESTED: &str = "InitialBackupRequested";
pub const BACKUP_INIT_FAILING: &str = "BackupInitFailing";
pub const BACKUP_INIT_REPLACED: &str = "BackupInitReplaced";
pub const MEMBER_UPDATE_SCHEDULED: &str = "MemberUpdateScheduled";
pub const UPDATE_SCHEDULED: &str = "UpdateScheduled";
pub const MEMBER_RECREATED: &str = "MemberRecreated";

/// Publishes Events for every controller; one per process, so kube's Recorder aggregates
/// repeats of one reason on one object into a series.
#[derive(Clone)]
pub struct Events {
    recorder: Recorder,
    /// The last blocking note published per object, reason and kind of orphan: a reconcile
    /// that read a status from before our own last write must not warn twice.
    last: Arc<Mutex<Dedup>>,
}

impl Events {
    pub fn new(client: Client) -> Self {
        Self {
            recorder: Recorder::new(client, reporter()),
            last: Arc::default(),
        }
    }

    /// Publishes `note` (shortened to [`NOTE_LIMIT`]) on `object`; failures are logged.
    pub async fn publish<K>(&self, object: &K, type_: EventType, reason: &str, note: &str)
    where
        K: Resource<DynamicType = ()>,
    {
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(truncate_note(note)),
            action: action(reason).into(),
            secondary: None,
        };
        self.publish_to(&object.object_ref(&()), event).await;
    }

    async fn publish_to(&self, reference: &ObjectReference, event: Event) {
        if let Err(err) = self.recorder.publish(&event, reference).await {
            tracing::warn!(
                object = %format!(
                    "{}/{}/{}",
                    reference.kind.as_deref().unwrap_or_default(),
                    reference.namespace.as_deref().unwrap_or_default(),
                    reference.name.as_deref().unwrap_or_default()
                ),
                reason = %event.reason,
                "cannot publish an event: {err}"
            );
        }
    }

    /// A Normal `Pruned` Event on `owner` for each child of kind `K` deleted.
    pub async fn pruned<K, P>(&self, owner: &P, names: &[String])
    where
        K: Resource<DynamicType = ()>,
        P: Resource<DynamicType = ()>,
    {
        for name in names {
            self.publish(
                owner,
                EventType::Normal,
                PRUNED,
                &pruned_note(&K::kind(&()), name),
            )
            .await;
        }
    }

    /// A Warning with `reason` on `object` when some group's `after` holds orphans that its
    /// `before` did not, or whose reason or message changed; nothing otherwise. Groups are
    /// `(what, before, after)` (`what`: `tablet`, `keyspace`, ...), published as one Event: kube's
    /// Recorder folds Events of one reason on one object into a series under the first note.
    pub async fn blocked<K>(&self, object: &K, reason: &str, groups: &[Blocked<'_>])
    where
        K: Resource<DynamicType = ()>,
    {
        let meta = object.meta();
        let key = format!(
            "{}/{}/{}/{reason}",
            K::kind(&()),
            meta.namespace.as_deref().unwrap_or_default(),
            meta.uid.as_deref().unwrap_or_default()
        );
        let notes: Vec<String> = groups
            .iter()
            .filter_map(|(what, before, after)| blocked_note(what, *before, after))
            .collect();
        let note = (!notes.is_empty()).then(|| notes.join("; "));
        let state: Vec<String> = groups
            .iter()
            .filter(|(_, _, after)| !after.is_empty())
            .map(|(what, _, after)| format!("{what}\n{}", blocking_state(after)))
            .collect();
        let due = self.last.lock().unwrap_or_else(|e| e.into_inner()).update(
            key,
            note.as_deref(),
            state.join("\n"),
        );
        if let Some(note) = note.filter(|_| due) {
            self.publish(object, EventType::Warning, reason, &note)
                .await;
        }
    }

    /// A Warning `ReconcileFailed` on `object` (for `error_policy`, which cannot wait).
    pub fn reconcile_failed(&self, reference: ObjectReference, message: &str) {
        let event = Event {
            type_: EventType::Warning,
            reason: RECONCILE_FAILED.into(),
            note: Some(truncate_note(message)),
            action: action(RECONCILE_FAILED).into(),
            secondary: None,
        };
        let events = self.clone();
        tokio::spawn(async move { events.publish_to(&reference, event).await });
    }
}

/// One kind of orphan for [`Events::blocked`]: what they are, as the status had them before
/// this reconcile, and as it has them now.
pub type Blocked<'a> = (
    &'a str,
    Option<&'a BTreeMap<String, OrphanStatus>>,
    &'a BTreeMap<String, OrphanStatus>,
);

/// The last blocking state seen per key (object, reason, kind of orphan).
#[derive(Debug, Default)]
pub struct Dedup(HashMap<String, String>);

impl Dedup {
    /// Records `state` (all that blocks now) under `key` and says whether `note` (what is new
    /// since the status read, `None`: nothing) is due: not when `state` is what was last seen,
    /// which happens when a reconcile read a status older than our own last write.
    pub fn update(&mut self, key: String, note: Option<&str>, state: String) -> bool {
        // Nothing blocks: forget the key (keeps the map to the objects now blocked).
        if state.is_empty() {
            self.0.remove(&key);
            return false;
        }
        let previous = self.0.insert(key, state.clone());
        note.is_some() && previous.as_ref() != Some(&state)
    }
}

/// One string for all the orphans in `after`, for [`Dedup`].
pub fn blocking_state(after: &BTreeMap<String, OrphanStatus>) -> String {
    after
        .iter()
        .map(|(key, o)| format!("{key}={}:{}", o.reason, o.message))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `vitess-operator`, with the pod name (`POD_NAME`) or host name (`HOSTNAME`) as instance.
pub fn reporter() -> Reporter {
    let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
    Reporter {
        controller: CONTROLLER.into(),
        instance: var("POD_NAME").or_else(|| var("HOSTNAME")),
    }
}

/// The Event's action (what the operator was doing) for a reason.
fn action(reason: &str) -> &'static str {
    match reason {
        PRUNED | TABLET_REMOVED | TABLET_REPLACED | TOPOLOGY_PRUNED => "Delete",
        REPARENTED | REPARENT_FAILED | PRIMARY_ELECTED => "Reparent",
        DRAIN_BLOCKED | DRAIN_FINISHED => "Drain",
        TOPOLOGY_REGISTERED => "Register",
        TURNDOWN_BLOCKED => "Prune",
        INVALID_SPEC => "Validate",
        _ => "Reconcile",
    }
}

pub fn pruned_note(kind: &str, name: &str) -> String {
    format!("deleted {kind} {name}: no longer in the spec")
}

/// `note` cut to at most [`NOTE_LIMIT`] bytes on a character boundary, ending in `…` when cut.
pub fn truncate_note(note: &str) -> String {
    if note.len() <= NOTE_LIMIT {
        return note.to_string();
    }
    const MORE: &str = "…";
    let mut end = NOTE_LIMIT - MORE.len();
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{MORE}", &note[..end])
}

/// The note of a blocking Warning: the entries of `after` that are new or changed since
/// `before`, as `<what> <key>: <message>`; `None` when there are none (nothing to publish).
pub fn blocked_note(
    what: &str,
    before: Option<&BTreeMap<String, OrphanStatus>>,
    after: &BTreeMap<String, OrphanStatus>,
) -> Option<String> {
    let changed: Vec<String> = after
        .iter()
        .filter(|(key, orphan)| before.and_then(|b| b.get(*key)) != Some(*orphan))
        .map(|(key, orphan)| format!("{what} {key}: {}", orphan.message))
        .collect();
    (!changed.is_empty()).then(|| changed.join("; "))
}

/// Whether an `InvalidSpec` Warning is due: the previous `Ready` condition did not already
/// report these very problems.
pub fn invalid_spec_is_new(previous: Option<(&str, &str)>, message: &str) -> bool {
    previous != Some((INVALID_SPEC, message))
}

/// Whether a `ReconcileFailed` Warning is due: the first failure in a row, or a new message.
pub fn failure_is_new(previous: Option<&str>, message: &str) -> bool {
    previous != Some(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn orphan(message: &str) -> OrphanStatus {
        OrphanStatus {
            reason: "NotDrained".into(),
            message: message.into(),
        }
    }

    #[test]
    fn notes_fit_the_limit() {
        assert_eq!(truncate_note("short"), "short");
        let exact = "a".repeat(NOTE_LIMIT);
        assert_eq!(truncate_note(&exact), exact);
        let long = "é".repeat(NOTE_LIMIT);
        let cut = truncate_note(&long);
        assert!(cut.len() <= NOTE_LIMIT);
        assert!(cut.ends_with('…'));
        assert!(cut.starts_with("éé"));
    }

    #[test]
    fn blocking_warnings_only_on_change() {
        let a = BTreeMap::from([("zone1-1".to_string(), orphan("not drained"))]);
        // Steady: nothing to publish.
        assert_eq!(blocked_note("tablet", Some(&a), &a), None);
        // Starts blocking.
        assert_eq!(
            blocked_note("tablet", None, &a).as_deref(),
            Some("tablet zone1-1: not drained")
        );
        assert!(blocked_note("tablet", Some(&BTreeMap::new()), &a).is_some());
        // Unblocked: nothing to warn about.
        assert_eq!(blocked_note("tablet", Some(&a), &BTreeMap::new()), None);
        // A new orphan, or a changed message: only those are reported.
        let mut b = a.clone();
        b.insert("zone1-2".into(), orphan("not drained"));
        assert_eq!(
            blocked_note("tablet", Some(&a), &b).as_deref(),
            Some("tablet zone1-2: not drained")
        );
        let c = BTreeMap::from([("zone1-1".to_string(), orphan("still not drained"))]);
        assert!(blocked_note("tablet", Some(&a), &c).is_some());
    }

    #[test]
    fn invalid_spec_and_failures_only_on_change() {
        assert!(invalid_spec_is_new(None, "x: bad"));
        assert!(invalid_spec_is_new(Some(("NotReady", "x: bad")), "x: bad"));
        assert!(invalid_spec_is_new(
            Some((INVALID_SPEC, "y: bad")),
            "x: bad"
        ));
        assert!(!invalid_spec_is_new(
            Some((INVALID_SPEC, "x: bad")),
            "x: bad"
        ));
        assert!(failure_is_new(None, "boom"));
        assert!(failure_is_new(Some("bang"), "boom"));
        assert!(!failure_is_new(Some("boom"), "boom"));
    }

    #[test]
    fn a_stale_status_does_not_warn_twice() {
        let a = BTreeMap::from([("a".to_string(), orphan("x"))]);
        let ab = BTreeMap::from([("a".to_string(), orphan("x")), ("b".into(), orphan("x"))]);
        let mut dedup = Dedup::default();
        assert!(dedup.update("k".into(), Some("tablet a: x"), blocking_state(&a)));
        // The same again (read from a status older than our last write): skipped.
        assert!(!dedup.update("k".into(), Some("tablet a: x"), blocking_state(&a)));
        assert!(!dedup.update("k".into(), None, blocking_state(&a)));
        assert!(dedup.update("k".into(), Some("tablet b: x"), blocking_state(&ab)));
        assert!(dedup.update("other".into(), Some("tablet a: x"), blocking_state(&a)));
        // b resolved, then blocked again while a still blocks: warned again.
        assert!(!dedup.update("k".into(), None, blocking_state(&a)));
        assert!(dedup.update("k".into(), Some("tablet b: x"), blocking_state(&ab)));
        // All resolved, then blocked again: warned again.
        assert!(!dedup.update("k".into(), None, String::new()));
        assert!(dedup.update("k".into(), Some("tablet a: x"), blocking_state(&a)));
    }

    #[test]
    fn pruned_notes_name_the_child() {
        assert_eq!(
            pruned_note("Service", "example-vtctld"),
            "deleted Service example-vtctld: no longer in the spec"
        );
    }
}
