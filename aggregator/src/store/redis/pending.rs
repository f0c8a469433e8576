//! Sketches that are durable in the write-ahead log but not yet in Redis, merged
//! per (series, window) so a flush writes one frame per window however many
//! exports fed it; and the thread that appends to the log.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;

use tokio::sync::oneshot;

use crate::signal::SeriesKey;
use crate::sketch::{SeriesSketch, Window, WindowedSketch};
use crate::store::StoreError;
use crate::store::redis::wal::Wal;

use super::Shared;

/// One tenant's unflushed windows and the log entries they came from.
#[derive(Default)]
pub struct TenantPending {
    pub first_seq: u64,
    pub last_seq: u64,
    pub windows: HashMap<(SeriesKey, Window), SeriesSketch>,
}

#[derive(Default)]
pub struct Pending {
    pub tenants: HashMap<String, TenantPending>,
    /// Every entry below this sequence number is merged here or was flushed.
    pub merged_below: u64,
}

impl Pending {
    /// Merges one log entry's sketches. On a merge error nothing of that
    /// window changes and the error is returned (the export is refused).
    pub fn merge(&mut self, seq: u64, sketches: Vec<WindowedSketch>) -> Result<(), StoreError> {
        let mut first_error = None;
        for WindowedSketch {
            key,
            window,
            sketch,
        } in sketches
        {
            let tenant = self
                .tenants
                .entry(key.tenant.clone())
                .or_insert_with(|| TenantPending {
                    first_seq: seq,
                    last_seq: seq,
                    windows: HashMap::new(),
                });
            tenant.first_seq = tenant.first_seq.min(seq);
            tenant.last_seq = tenant.last_seq.max(seq);
            match tenant.windows.get_mut(&(key.clone(), window)) {
                Some(existing) => {
                    if let Err(e) = existing.merge(&sketch) {
                        first_error.get_or_insert(StoreError::Corrupt(e.to_string()));
                    }
                }
                None => {
                    tenant.windows.insert((key, window), sketch);
                }
            }
        }
        self.merged_below = self.merged_below.max(seq + 1);
        first_error.map_or(Ok(()), Err)
    }

    /// The oldest sequence number still needed by what is pending.
    pub fn oldest_needed(&self) -> u64 {
        self.tenants
            .values()
            .map(|t| t.first_seq)
            .min()
            .unwrap_or(self.merged_below)
    }
}

pub enum WriterMsg {
    Append {
        payload: Vec<u8>,
        sketches: Vec<WindowedSketch>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Log segments entirely below this sequence number may go; the reply
    /// says when they are gone (and the buffer has room again).
    Truncate(u64, oneshot::Sender<()>),
}

/// Caps one group commit so a burst cannot hold acknowledgements back for long.
const MAX_GROUP_BYTES: usize = 32 << 20;

/// Appends in groups (one fsync per group), then merges into `pending` in log
/// order and acknowledges. Runs on its own thread: file I/O blocks.
/// `unflushed` lists (sequence number, bytes) of the entries not yet in Redis:
/// their sum is what the outage buffer bound applies to.
pub fn run_writer(
    mut wal: Wal,
    mut unflushed: VecDeque<(u64, u64)>,
    shared: Arc<Shared>,
    inbox: mpsc::Receiver<WriterMsg>,
) {
    while let Ok(first) = inbox.recv() {
        let mut group = Vec::new();
        let mut group_bytes = 0usize;
        let mut truncate_below = None;
        let mut truncated = Vec::new();
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                WriterMsg::Append {
                    payload,
                    sketches,
                    reply,
                } => {
                    group_bytes += payload.len();
                    group.push((payload, sketches, reply));
                }
                WriterMsg::Truncate(seq, done) => {
                    truncate_below = Some(truncate_below.map_or(seq, |t: u64| t.max(seq)));
                    truncated.push(done);
                }
            }
            if group_bytes < MAX_GROUP_BYTES {
                next = inbox.try_recv().ok();
            }
        }
        if !group.is_empty() {
            commit_group(&mut wal, &mut unflushed, &shared, group);
        }
        if let Some(seq) = truncate_below {
            let mut freed = 0;
            while let Some(&(entry_seq, bytes)) = unflushed.front() {
                if entry_seq >= seq {
                    break;
                }
                freed += bytes;
                unflushed.pop_front();
            }
            shared
                .status
                .buffered_bytes
                .fetch_sub(freed, Ordering::Relaxed);
            if let Err(e) = wal.truncate_before(seq) {
                tracing::error!(error = %e, "cannot delete flushed write-ahead-log segments");
            }
        }
        for done in truncated {
            let _ = done.send(());
        }
    }
}

type Group = Vec<(
    Vec<u8>,
    Vec<WindowedSketch>,
    oneshot::Sender<Result<(), StoreError>>,
)>;

fn commit_group(
    wal: &mut Wal,
    unflushed: &mut VecDeque<(u64, u64)>,
    shared: &Shared,
    group: Group,
) {
    let payloads: Vec<&[u8]> = group.iter().map(|(p, _, _)| p.as_slice()).collect();
    let sizes: Vec<u64> = payloads
        .iter()
        .map(|p| super::entry_bytes(p.len()))
        .collect();
    match wal.append(&payloads) {
        Ok(first_seq) => {
            unflushed.extend((first_seq..).zip(sizes.iter().copied()));
            let mut pending = shared.pending.lock();
            for (offset, (_, sketches, reply)) in group.into_iter().enumerate() {
                let result = pending.merge(first_seq + offset as u64, sketches);
                let _ = reply.send(result);
            }
            drop(pending);
            shared.flush_wanted();
        }
        Err(e) => {
            tracing::error!(error = %e, "write-ahead-log append failed; refusing the exports");
            shared
                .status
                .buffered_bytes
                .fetch_sub(sizes.iter().sum(), Ordering::Relaxed);
            *shared.status.wal_error.lock() = Some(e.to_string());
            for (_, _, reply) in group {
                let _ = reply.send(Err(StoreError::Unavailable(format!(
                    "cannot make the export durable: {e}"
                ))));
            }
        }
    }
}
