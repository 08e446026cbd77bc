//! An estimate of the Redis server clock, kept from the time stamps that
//! scripts return, so a call can tell Redis when its caller stops waiting.

use std::sync::Mutex;
use std::time::Instant;

/// Server time (ms since the epoch) as last seen, and when it was seen.
///
/// The estimate lags the server by the reply's travel time, so deadlines
/// derived from it err on the early side.
pub(super) struct ServerClock {
    seen: Mutex<(u64, Instant)>,
}

impl ServerClock {
    pub(super) fn new(server_ms: u64) -> ServerClock {
        ServerClock {
            seen: Mutex::new((server_ms, Instant::now())),
        }
    }

    /// Records a server time stamp that has just arrived.
    pub(super) fn observe(&self, server_ms: u64) {
        *self.lock() = (server_ms, Instant::now());
    }

    /// The estimated server time now.
    pub(super) fn now_ms(&self) -> u64 {
        let (ms, at) = *self.lock();
        ms.saturating_add(u64::try_from(at.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, Instant)> {
        self.seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advances_with_the_monotonic_clock() {
        let clock = ServerClock::new(1_000);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let now = clock.now_ms();
        assert!((1_020..1_500).contains(&now), "{now}");
        clock.observe(5_000);
        assert!((5_000..5_100).contains(&clock.now_ms()));
    }
}
