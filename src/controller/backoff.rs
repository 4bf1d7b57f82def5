//! How long the controllers' watches wait before trying again after an error.
//!
//! kube-runtime pauses all of a controller's watches together (its own kind and every child
//! kind) after an error from any of them, for a delay that doubles up to 30 s and is reset only
//! by the next event. When the API server restarts, each watch fails a few times (refused
//! connections, 503 while it starts, then `410 Expired` for the resource versions from before,
//! one watch at a time), and with that default a controller stayed deaf for up to 40 s after
//! the API server was back; with a 4 s cap, still 17 s (a drain asked for right after the
//! restart, `e2e/tests/faults.rs`). This backoff starts at 250 ms and stops doubling at 1 s:
//! measured 1.5 s. The price is paid only while the API server is down: each controller (seven)
//! tries once a second, about seven refused connections or 503s a second in all.

use std::time::Duration;

use kube::runtime::utils::Backoff;

/// The first delay after an error.
const FIRST: Duration = Duration::from_millis(250);
/// The longest delay.
const MAX: Duration = Duration::from_secs(1);

/// Doubling delays from [`FIRST`] up to [`MAX`]; starts over on `reset` (kube-runtime resets it
/// on every event the watches deliver).
#[derive(Debug, Clone)]
pub struct WatchBackoff {
    next: Duration,
}

impl Default for WatchBackoff {
    fn default() -> Self {
        Self { next: FIRST }
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let delay = self.next;
        self.next = self.next.saturating_mul(2).min(MAX);
        Some(delay)
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_one_second_and_starts_over_on_reset() {
        let mut backoff = WatchBackoff::default();
        let delays: Vec<u128> = backoff.by_ref().take(5).map(|d| d.as_millis()).collect();
        assert_eq!(delays, [250, 500, 1000, 1000, 1000]);
        backoff.reset();
        assert_eq!(backoff.next(), Some(FIRST));
    }
}
