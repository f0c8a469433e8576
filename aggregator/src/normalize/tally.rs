//! Counts of what happened to the items of one request, and the
//! partial-success message. Messages are static strings that name attribute
//! keys, never values: a refused value could be anything, including text.

use super::Normalized;
use crate::signal::SignalBatch;

const MAX_MESSAGES: usize = 4;

#[derive(Default)]
pub(crate) struct Tally {
    pub accepted: u64,
    rejected: u64,
    reasons: Vec<(&'static str, u64)>,
    dropped: Vec<(&'static str, u64)>,
}

impl Tally {
    pub(crate) fn reject(&mut self, n: u64, why: &'static str) {
        if n == 0 {
            return;
        }
        self.rejected += n;
        if let Some((_, count)) = self.reasons.iter_mut().find(|(w, _)| *w == why) {
            *count += n;
        } else if self.reasons.len() < MAX_MESSAGES {
            self.reasons.push((why, n));
        }
    }

    pub(crate) fn drop(&mut self, reason: &'static str, n: u64) {
        if n == 0 {
            return;
        }
        match self.dropped.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, count)) => *count += n,
            None => self.dropped.push((reason, n)),
        }
    }

    pub(crate) fn finish(self, batch: SignalBatch, items: &str) -> Normalized {
        let rejected_message = if self.rejected == 0 {
            String::new()
        } else {
            let reasons: Vec<String> = self
                .reasons
                .iter()
                .map(|(why, n)| format!("{n} {items}: {why}"))
                .collect();
            format!(
                "{} {items} rejected ({})",
                self.rejected,
                reasons.join("; ")
            )
        };
        Normalized {
            batch,
            accepted: self.accepted,
            rejected: self.rejected,
            rejected_message,
            dropped: self.dropped,
        }
    }
}
