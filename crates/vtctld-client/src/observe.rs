//! A hook that sees every vtctld call's method, outcome and duration, so that the caller (the
//! operator's metrics) can count them without this crate knowing any metrics library.

use std::sync::OnceLock;
use std::time::Duration;

/// Told of each finished call: the RPC's method name, its outcome (`OK`, `DeadlineExceeded`,
/// or a gRPC code's name) and how long it took, retries included.
pub type Observer = fn(method: &str, outcome: &str, elapsed: Duration);

static OBSERVER: OnceLock<Observer> = OnceLock::new();

/// Sets the process's observer. Only the first call takes effect; returns whether it did.
pub fn set_observer(observer: Observer) -> bool {
    OBSERVER.set(observer).is_ok()
}

/// Tells the observer, if one was set, of a finished call.
pub(crate) fn finished(method: &str, outcome: &str, elapsed: Duration) {
    if let Some(observer) = OBSERVER.get() {
        observer(method, outcome, elapsed);
    }
}
