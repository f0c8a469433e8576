//! One forwarder's bounded queue: whole export requests in arrival order,
//! bounded by span count. When a new request does not fit, the oldest are
//! dropped (and counted) until it does (a request larger than the whole
//! queue empties it and keeps its own newest spans): a backend that is down costs bounded
//! memory, and what reaches it when it comes back is the most recent.
//! The request being sent stays at the front until it is acknowledged, so a
//! forwarder down for long drops that one too, not only newer ones.

use std::collections::VecDeque;
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use parking_lot::Mutex;

struct Entry {
    seq: u64,
    spans: usize,
    request: Arc<ExportTraceServiceRequest>,
}

#[derive(Default)]
struct State {
    entries: VecDeque<Entry>,
    spans: usize,
    next_seq: u64,
}

pub struct BoundedQueue {
    capacity_spans: usize,
    state: Mutex<State>,
}

/// What [`BoundedQueue::push`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pushed {
    /// Spans queued (0 when the request alone is larger than the queue).
    pub queued: usize,
    /// Spans dropped to make room, oldest first (or the request itself).
    pub dropped: usize,
}

/// Requests taken for one send: acknowledge with [`BoundedQueue::ack`].
pub struct Taken {
    pub up_to: u64,
    pub spans: usize,
    pub requests: Vec<Arc<ExportTraceServiceRequest>>,
}

impl BoundedQueue {
    pub fn new(capacity_spans: usize) -> Self {
        BoundedQueue {
            capacity_spans: capacity_spans.max(1),
            state: Mutex::default(),
        }
    }

    pub fn push(&self, mut request: ExportTraceServiceRequest, spans: usize) -> Pushed {
        let mut dropped = 0;
        let mut spans = spans;
        if spans > self.capacity_spans {
            // Larger than the whole queue: its oldest spans go first.
            dropped = drop_first_spans(&mut request, spans - self.capacity_spans);
            spans -= dropped;
        }
        let mut state = self.state.lock();
        while state.spans + spans > self.capacity_spans {
            let Some(oldest) = state.entries.pop_front() else {
                break;
            };
            state.spans -= oldest.spans;
            dropped += oldest.spans;
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        state.spans += spans;
        state.entries.push_back(Entry {
            seq,
            spans,
            request: Arc::new(request),
        });
        Pushed {
            queued: spans,
            dropped,
        }
    }

    /// The oldest requests, up to about `max_spans` (at least one), still queued.
    pub fn take(&self, max_spans: usize) -> Option<Taken> {
        let state = self.state.lock();
        let mut taken = Taken {
            up_to: 0,
            spans: 0,
            requests: Vec::new(),
        };
        for entry in &state.entries {
            if !taken.requests.is_empty() && taken.spans + entry.spans > max_spans {
                break;
            }
            taken.up_to = entry.seq;
            taken.spans += entry.spans;
            taken.requests.push(entry.request.clone());
        }
        (!taken.requests.is_empty()).then_some(taken)
    }

    /// Removes what [`take`](Self::take) returned and is still queued;
    /// returns how many spans that was (less when some were dropped meanwhile).
    pub fn ack(&self, up_to: u64) -> usize {
        let mut state = self.state.lock();
        let mut removed = 0;
        while state.entries.front().is_some_and(|e| e.seq <= up_to) {
            let entry = state.entries.pop_front().expect("front exists");
            state.spans -= entry.spans;
            removed += entry.spans;
        }
        removed
    }

    pub fn queued_spans(&self) -> usize {
        self.state.lock().spans
    }
}

/// Removes the first `n` spans of `request` in order; returns how many it removed.
fn drop_first_spans(request: &mut ExportTraceServiceRequest, mut n: usize) -> usize {
    let mut removed = 0;
    for resource_spans in &mut request.resource_spans {
        for scope_spans in &mut resource_spans.scope_spans {
            let k = n.min(scope_spans.spans.len());
            scope_spans.spans.drain(..k);
            n -= k;
            removed += k;
        }
        resource_spans.scope_spans.retain(|s| !s.spans.is_empty());
    }
    request.resource_spans.retain(|r| !r.scope_spans.is_empty());
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn request() -> ExportTraceServiceRequest {
        ExportTraceServiceRequest::default()
    }

    fn with_spans(names: &[&str]) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: names
                    .chunks(2)
                    .map(|chunk| ScopeSpans {
                        spans: chunk
                            .iter()
                            .map(|n| Span {
                                name: n.to_string(),
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
        }
    }

    #[test]
    fn drops_the_oldest_to_make_room() {
        let queue = BoundedQueue::new(10);
        assert_eq!(
            queue.push(request(), 4),
            Pushed {
                queued: 4,
                dropped: 0
            }
        );
        assert_eq!(
            queue.push(request(), 4),
            Pushed {
                queued: 4,
                dropped: 0
            }
        );
        assert_eq!(
            queue.push(request(), 4),
            Pushed {
                queued: 4,
                dropped: 4
            }
        );
        assert_eq!(queue.queued_spans(), 8);
        // Larger than the queue: the queue is emptied and the request's
        // newest spans kept.
        let big = with_spans(&["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"]);
        assert_eq!(
            queue.push(big, 11),
            Pushed {
                queued: 10,
                dropped: 1 + 8
            }
        );
        assert_eq!(queue.queued_spans(), 10);
        let kept = queue.take(100).unwrap();
        let names: Vec<String> = kept.requests[0]
            .resource_spans
            .iter()
            .flat_map(|r| r.scope_spans.iter())
            .flat_map(|s| s.spans.iter())
            .map(|s| s.name.clone())
            .collect();
        assert_eq!(names, ["2", "3", "4", "5", "6", "7", "8", "9", "10", "11"]);
    }

    #[test]
    fn a_taken_request_dropped_meanwhile_is_not_acknowledged_twice() {
        let queue = BoundedQueue::new(10);
        queue.push(request(), 6);
        let taken = queue.take(100).unwrap();
        assert_eq!((taken.spans, taken.requests.len()), (6, 1));
        // The forwarder is slow: a newer request pushes the one in flight out.
        assert_eq!(
            queue.push(request(), 6),
            Pushed {
                queued: 6,
                dropped: 6
            }
        );
        assert_eq!(queue.ack(taken.up_to), 0);
        assert_eq!(queue.queued_spans(), 6);
    }

    #[test]
    fn takes_at_least_one_and_at_most_about_max_spans() {
        let queue = BoundedQueue::new(100);
        for _ in 0..5 {
            queue.push(request(), 10);
        }
        let taken = queue.take(25).unwrap();
        assert_eq!((taken.spans, taken.requests.len()), (20, 2));
        assert_eq!(queue.ack(taken.up_to), 20);
        let big = queue.take(1).unwrap();
        assert_eq!(big.spans, 10);
    }
}
