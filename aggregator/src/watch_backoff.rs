//! Retry pacing for the Kubernetes watches (XRs, issued Secrets).
//!
//! kube's `WatchStreamExt::default_backoff` resets its delay on every `Ok`
//! item, and the watcher emits `Event::Init` before each (re)list. A list
//! that keeps failing (a 403 from missing RBAC, an API server that refuses)
//! therefore retried every ~0.8 s forever, logging each time: measured
//! against the real kube-apiserver (test/kube/test_aggregator.py). Here the
//! delay doubles from 0.8 s up to 30 s and resets only once a list has
//! completed or a watch event arrived, i.e. once the watch really works.

use std::time::Duration;

use kube::runtime::watcher::Event;

const FIRST: Duration = Duration::from_millis(800);
const MAX: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct WatchBackoff {
    next: Duration,
}

impl Default for WatchBackoff {
    fn default() -> Self {
        WatchBackoff { next: FIRST }
    }
}

impl WatchBackoff {
    /// Call with every event; progress (not the start of a list) resets the delay.
    pub fn observe<K>(&mut self, event: &Event<K>) {
        if !matches!(event, Event::Init | Event::InitApply(_)) {
            self.next = FIRST;
        }
    }

    /// The delay before the next attempt after an error; doubles each time.
    pub fn failed(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(MAX);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_to_the_cap_through_relists_and_reset_on_progress() {
        let mut backoff = WatchBackoff::default();
        let mut delays = Vec::new();
        for _ in 0..8 {
            backoff.observe::<()>(&Event::Init);
            delays.push(backoff.failed().as_millis());
        }
        assert_eq!(delays, [800, 1600, 3200, 6400, 12800, 25600, 30000, 30000]);
        backoff.observe::<()>(&Event::InitApply(()));
        assert_eq!(backoff.failed(), Duration::from_millis(30_000));
        backoff.observe::<()>(&Event::InitDone);
        assert_eq!(backoff.failed(), FIRST);
        backoff.observe(&Event::Apply(()));
        assert_eq!(backoff.failed(), FIRST);
    }
}
