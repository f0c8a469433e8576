//! The embedded store: every sketch in this process's memory.
//!
//! Layout: tenants hash onto a fixed number of shards, each a `BTreeMap` keyed by
//! [`SeriesKey`] (ordered tenant-first, so one tenant's series are one range).
//! A series keeps two sorted vectors of windows: minute windows for recent data
//! and hour windows for older data. [`MemoryStore::run_maintenance`] folds minute
//! windows older than `rollup_after` into their hour and drops whatever ended
//! before the retention; every minute lives in exactly one place, so queries never
//! count anything twice.
//!
//! Memory: a window is kept as built ([`SeriesSketch`]) only while it can still
//! receive data. Maintenance seals a minute [`SEAL_AFTER_SECS`] after it ended,
//! and an hour as soon as the pass that rolled minutes into it is done (the
//! next roll-up decodes it, merges, and it is sealed again), into its encoding
//! ([`SeriesSketch::encode`], sparse quantile buckets): a few hundred bytes
//! instead of a few kilobytes of vectors and boxes. Once every minute of an
//! aligned [`PACK_SECS`] span is sealed, the span's minutes are packed into one
//! zstd-compressed block (a series' consecutive minutes share field names,
//! bucket layouts and values, which compress well together). Both are lossless:
//! queries merge sealed and packed windows with [`SeriesSketch::merge_encoded`]
//! (the same sketch as decoding and merging), in the same order as a store
//! that kept every window as built, so every answer is the same sketch
//! (property test `sealing_never_changes_an_answer`, against
//! [`Compaction::None`]). Data arriving late for a sealed window unseals it
//! (decode, merge), for a packed one unpacks its block first; the next pass
//! seals and packs again. Blocks holding a minute due to roll up are unpacked
//! first, so roll-up and expiry see only loose minutes.
//! Measured in BENCHMARKS.md (issue 15, item 4) with `examples/store_memory.rs`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use parking_lot::RwLock;

use crate::signal::SeriesKey;
use crate::sketch::{HOUR_SECS, MINUTE_SECS, Resolution, SeriesSketch, Window, WindowedSketch};
use crate::store::{MaintenanceReport, SketchStore, StoreError, StoreHealth, StoreQuery};

/// Shards bound lock contention between concurrent exports of different tenants.
const SHARDS: usize = 16;
/// Fixed so a tenant maps to the same shard in every process (handy in dumps).
const SHARD_SEED: u64 = 0x6d6f_6465_6c70_6c61;
/// How long after its end a minute window is sealed: agents export every few
/// seconds to a minute, so later data for a minute is rare (and still accepted).
pub const SEAL_AFTER_SECS: u64 = MINUTE_SECS;
/// Sealed minutes are packed per aligned span this long, compressed together.
pub const PACK_SECS: u64 = 10 * MINUTE_SECS;
/// zstd level of packed blocks: a block is compressed once and read by queries.
const PACK_LEVEL: i32 = 3;

/// How much the embedded store compacts closed windows (see the module
/// documentation). The default, [`Compaction::Pack`], is what the aggregator
/// runs; the others exist to measure it against (`examples/store_memory.rs`)
/// and to prove it changes no answer (the property test).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compaction {
    /// Every window kept as built: the store before issue 15.
    None,
    /// Closed windows sealed into their encoding, one allocation each.
    Seal,
    /// Sealed, and sealed minutes packed into one zstd block per
    /// [`PACK_SECS`] span.
    #[default]
    Pack,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryStoreConfig {
    /// Windows that ended longer ago than this are deleted.
    pub retention_secs: u64,
    /// Minute windows that started longer ago than this are folded into their hour.
    pub rollup_after_secs: u64,
}

impl Default for MemoryStoreConfig {
    fn default() -> Self {
        MemoryStoreConfig {
            retention_secs: 30 * 86_400,
            rollup_after_secs: 2 * HOUR_SECS,
        }
    }
}

/// One window's sketch: as built while it may still change, or sealed into its
/// encoding once closed (see the module documentation).
enum Slot {
    Open(SeriesSketch),
    Sealed(Box<[u8]>),
}

impl Slot {
    fn sketch(&self) -> Result<SeriesSketch, StoreError> {
        match self {
            Slot::Open(sketch) => Ok(sketch.clone()),
            Slot::Sealed(bytes) => SeriesSketch::decode(bytes).map_err(corrupt),
        }
    }

    /// Merges this window into a query's accumulator.
    fn merge_into_acc(&self, acc: &mut Option<SeriesSketch>) -> Result<(), StoreError> {
        match (acc.as_mut(), self) {
            (None, slot) => *acc = Some(slot.sketch()?),
            (Some(acc), Slot::Open(sketch)) => acc.merge(sketch).map_err(corrupt)?,
            (Some(acc), Slot::Sealed(bytes)) => acc.merge_encoded(bytes).map_err(corrupt)?,
        }
        Ok(())
    }

    fn seal(&mut self) {
        if let Slot::Open(sketch) = self {
            *self = Slot::Sealed(sketch.encode().into_boxed_slice());
        }
    }

    #[cfg(test)]
    fn is_sealed(&self) -> bool {
        matches!(self, Slot::Sealed(_))
    }
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// Merges one encoded window into a query's accumulator.
fn merge_bytes_into_acc(bytes: &[u8], acc: &mut Option<SeriesSketch>) -> Result<(), StoreError> {
    match acc.as_mut() {
        None => *acc = Some(SeriesSketch::decode(bytes).map_err(corrupt)?),
        Some(acc) => acc.merge_encoded(bytes).map_err(corrupt)?,
    }
    Ok(())
}

/// The sealed minutes of one aligned [`PACK_SECS`] span, their encodings
/// compressed together: field names, bucket layouts and values repeat from
/// one minute of a series to the next, which a window alone cannot exploit.
/// Layout before compression, per minute in ascending order: the minute's
/// index in the span (one byte), its encoding's length (u32 LE), the encoding.
struct Block {
    start: u64,
    raw_len: u32,
    data: Box<[u8]>,
}

thread_local! {
    static UNPACKER: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

impl Block {
    fn pack<'a>(
        start: u64,
        minutes: impl Iterator<Item = (u64, &'a [u8])>,
        packer: &mut zstd::bulk::Compressor<'_>,
    ) -> Result<Block, StoreError> {
        let mut raw = Vec::new();
        for (minute, bytes) in minutes {
            raw.push(((minute - start) / MINUTE_SECS) as u8);
            raw.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            raw.extend_from_slice(bytes);
        }
        Ok(Block {
            start,
            raw_len: u32::try_from(raw.len()).map_err(corrupt)?,
            data: packer.compress(&raw).map_err(corrupt)?.into_boxed_slice(),
        })
    }

    fn raw(&self) -> Result<Vec<u8>, StoreError> {
        UNPACKER.with_borrow_mut(|unpacker| {
            let unpacker = match unpacker {
                Some(unpacker) => unpacker,
                None => unpacker.insert(zstd::bulk::Decompressor::new().map_err(corrupt)?),
            };
            let raw = unpacker
                .decompress(&self.data, self.raw_len as usize)
                .map_err(corrupt)?;
            if raw.len() != self.raw_len as usize {
                return Err(corrupt("packed block shorter than recorded"));
            }
            Ok(raw)
        })
    }

    /// The minutes in `raw` (from [`Block::raw`]), ascending.
    fn minutes(start: u64, mut raw: &[u8]) -> Result<Vec<(u64, &[u8])>, StoreError> {
        let mut out: Vec<(u64, &[u8])> = Vec::new();
        while let [index, a, b, c, d, rest @ ..] = raw {
            let len = u32::from_le_bytes([*a, *b, *c, *d]) as usize;
            let minute = start + u64::from(*index) * MINUTE_SECS;
            if len > rest.len()
                || minute >= start + PACK_SECS
                || out.last().is_some_and(|(previous, _)| *previous >= minute)
            {
                return Err(corrupt("malformed packed block"));
            }
            out.push((minute, &rest[..len]));
            raw = &rest[len..];
        }
        if !raw.is_empty() {
            return Err(corrupt("malformed packed block"));
        }
        Ok(out)
    }
}

/// One series' windows, each vector sorted by window start. Vectors rather than
/// maps: a series rarely holds more than ~120 minutes plus its hours, merges
/// nearly always hit the newest window, and a vector carries no per-node overhead.
struct SeriesWindows {
    minutes: Vec<(u64, Slot)>,
    /// Packed sealed minutes; no minute in `minutes` lies in a block's span.
    blocks: Vec<Block>,
    hours: Vec<(u64, Slot)>,
    /// Per resolution (minute, hour), no open window starts before this, so a
    /// seal pass skips the sealed past (up to 720 hours a series at the
    /// default retention) instead of rereading it every tick.
    open_from: [u64; 2],
}

impl Default for SeriesWindows {
    fn default() -> Self {
        SeriesWindows {
            minutes: Vec::new(),
            blocks: Vec::new(),
            hours: Vec::new(),
            open_from: [u64::MAX; 2],
        }
    }
}

fn tier(resolution: Resolution) -> usize {
    match resolution {
        Resolution::Minute => 0,
        Resolution::Hour => 1,
    }
}

impl SeriesWindows {
    fn windows_mut(&mut self, resolution: Resolution) -> &mut Vec<(u64, Slot)> {
        match resolution {
            Resolution::Minute => &mut self.minutes,
            Resolution::Hour => &mut self.hours,
        }
    }

    /// Merges `incoming` into the window at `start` (unsealing it). On a merge
    /// error the stored window is left exactly as it was.
    fn merge_into(
        &mut self,
        resolution: Resolution,
        start: u64,
        incoming: &SeriesSketch,
    ) -> Result<(), StoreError> {
        if resolution == Resolution::Minute {
            let span = start - start % PACK_SECS;
            if let Ok(i) = self.blocks.binary_search_by_key(&span, |b| b.start) {
                self.unpack(i)?;
            }
        }
        let open_from = &mut self.open_from[tier(resolution)];
        *open_from = (*open_from).min(start);
        let windows = self.windows_mut(resolution);
        match windows.binary_search_by_key(&start, |(s, _)| *s) {
            Ok(i) => {
                let mut merged = windows[i].1.sketch()?;
                merged.merge(incoming).map_err(corrupt)?;
                windows[i].1 = Slot::Open(merged);
            }
            Err(i) => windows.insert(i, (start, Slot::Open(incoming.clone()))),
        }
        Ok(())
    }

    /// Turns block `i` back into sealed minutes (late data for one of them,
    /// or its minutes are due to roll up). On error the block stays.
    fn unpack(&mut self, i: usize) -> Result<(), StoreError> {
        let block = &self.blocks[i];
        let raw = block.raw()?;
        let minutes: Vec<(u64, Slot)> = Block::minutes(block.start, &raw)?
            .into_iter()
            .map(|(start, bytes)| (start, Slot::Sealed(bytes.into())))
            .collect();
        let at = self.minutes.partition_point(|(s, _)| *s < block.start);
        self.minutes.splice(at..at, minutes);
        self.blocks.remove(i);
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.minutes.is_empty() && self.blocks.is_empty() && self.hours.is_empty()
    }
}

#[derive(Default)]
struct Shard {
    series: BTreeMap<SeriesKey, SeriesWindows>,
}

pub struct MemoryStore {
    config: MemoryStoreConfig,
    shards: Vec<RwLock<Shard>>,
    compaction: Compaction,
}

impl MemoryStore {
    pub fn new(config: MemoryStoreConfig) -> Self {
        MemoryStore {
            config,
            shards: (0..SHARDS).map(|_| RwLock::new(Shard::default())).collect(),
            compaction: Compaction::default(),
        }
    }

    /// The same store compacting less (or not at all): see [`Compaction`].
    pub fn with_compaction(mut self, compaction: Compaction) -> Self {
        self.compaction = compaction;
        self
    }

    pub fn config(&self) -> MemoryStoreConfig {
        self.config
    }

    fn shard_index(tenant: &str) -> usize {
        (xxhash_rust::xxh3::xxh3_64_with_seed(tenant.as_bytes(), SHARD_SEED) % SHARDS as u64)
            as usize
    }

    /// Number of series with at least one window.
    pub fn series_count(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.read().series.len() as u64)
            .sum()
    }

    /// Folds old minutes into hours, deletes expired windows, and seals and
    /// packs closed ones (per [`Compaction`]), as of `now`. Holds each shard's
    /// write lock while it works through that shard's series.
    pub fn maintain(&self, now_unix_secs: u64) -> MaintenanceReport {
        let rollup_before = now_unix_secs.saturating_sub(self.config.rollup_after_secs);
        let expire_before = now_unix_secs.saturating_sub(self.config.retention_secs);
        let seal_before = now_unix_secs.saturating_sub(SEAL_AFTER_SECS);
        // Minutes at or past this are neither rolled up nor expired this pass.
        let due_before = rollup_before.max(expire_before);
        let mut report = MaintenanceReport::default();
        let mut packer = match self.compaction {
            Compaction::Pack => match zstd::bulk::Compressor::new(PACK_LEVEL) {
                Ok(packer) => Some(packer),
                Err(e) => {
                    tracing::error!(error = %e, "cannot create a zstd compressor; minutes stay unpacked");
                    report.errors += 1;
                    None
                }
            },
            _ => None,
        };
        for shard in &self.shards {
            let mut shard = shard.write();
            shard.series.retain(|_, windows| {
                unpack_due(windows, due_before, &mut report);
                roll_up(windows, rollup_before, &mut report);
                expire(windows, expire_before, &mut report);
                if self.compaction != Compaction::None {
                    seal(windows, seal_before);
                }
                if let Some(packer) = packer.as_mut() {
                    pack(windows, seal_before, due_before, packer, &mut report);
                }
                !windows.is_empty()
            });
        }
        report
    }

    fn query_sync(&self, query: &StoreQuery) -> Result<Vec<(SeriesKey, SeriesSketch)>, StoreError> {
        let mut out = Vec::new();
        let mut collect = |key: &SeriesKey, windows: &SeriesWindows| -> Result<(), StoreError> {
            if key.kind != query.kind
                || query.cluster.as_ref().is_some_and(|c| *c != key.cluster)
                || query.model.as_ref().is_some_and(|m| *m != key.model)
            {
                return Ok(());
            }
            if let Some(sketch) = merge_in_range(windows, query)? {
                out.push((key.clone(), sketch));
            }
            Ok(())
        };
        match &query.tenant {
            Some(tenant) => {
                let shard = self.shards[Self::shard_index(tenant)].read();
                for (key, windows) in shard.series.range(tenant_start(tenant)..) {
                    if key.tenant != *tenant {
                        break;
                    }
                    collect(key, windows)?;
                }
            }
            None => {
                for shard in &self.shards {
                    let shard = shard.read();
                    for (key, windows) in &shard.series {
                        collect(key, windows)?;
                    }
                }
            }
        }
        Ok(out)
    }

    fn merge_sync(&self, sketches: Vec<WindowedSketch>) -> Result<(), StoreError> {
        let mut by_shard: Vec<Vec<WindowedSketch>> = (0..SHARDS).map(|_| Vec::new()).collect();
        for sketch in sketches {
            by_shard[Self::shard_index(&sketch.key.tenant)].push(sketch);
        }
        let mut first_error = None;
        for (index, batch) in by_shard.into_iter().enumerate() {
            if batch.is_empty() {
                continue;
            }
            let mut shard = self.shards[index].write();
            for WindowedSketch {
                key,
                window,
                sketch,
            } in batch
            {
                let start = align(window);
                let windows = shard.series.entry(key).or_default();
                if let Err(e) = windows.merge_into(window.resolution, start, &sketch) {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Start aligned to the resolution, so a sender's unaligned start cannot create
/// overlapping windows.
fn align(window: Window) -> u64 {
    Window::containing(window.resolution, window.start_unix_secs).start_unix_secs
}

/// The smallest key of `tenant` in `SeriesKey` order.
fn tenant_start(tenant: &str) -> SeriesKey {
    SeriesKey {
        tenant: tenant.to_string(),
        cluster: String::new(),
        model: String::new(),
        kind: crate::signal::SignalKind::ALL[0],
    }
}

fn overlaps(start: u64, len: u64, query: &StoreQuery) -> bool {
    start < query.to_unix_secs && start + len > query.from_unix_secs
}

fn merge_in_range(
    windows: &SeriesWindows,
    query: &StoreQuery,
) -> Result<Option<SeriesSketch>, StoreError> {
    let mut merged: Option<SeriesSketch> = None;
    for (_, slot) in windows
        .hours
        .iter()
        .filter(|(start, _)| overlaps(*start, HOUR_SECS, query))
    {
        slot.merge_into_acc(&mut merged)?;
    }
    let in_range = |start: &u64| overlaps(*start, MINUTE_SECS, query);
    let raw: Vec<(u64, Vec<u8>)> = windows
        .blocks
        .iter()
        .filter(|b| overlaps(b.start, PACK_SECS, query))
        .map(|b| Ok((b.start, b.raw()?)))
        .collect::<Result<_, StoreError>>()?;
    let mut packed = Vec::new();
    for (start, raw) in &raw {
        packed.extend(
            Block::minutes(*start, raw)?
                .into_iter()
                .filter(|(start, _)| in_range(start)),
        );
    }
    // Minutes in ascending order, loose and packed interleaved, as a store
    // that never packs would merge them (float sums depend on the order).
    let mut loose = windows
        .minutes
        .iter()
        .filter(|(start, _)| in_range(start))
        .peekable();
    let mut packed = packed.into_iter().peekable();
    loop {
        match (loose.peek(), packed.peek()) {
            (Some((l, _)), Some((p, _))) if l < p => loose
                .next()
                .expect("peeked")
                .1
                .merge_into_acc(&mut merged)?,
            (_, Some(_)) => merge_bytes_into_acc(packed.next().expect("peeked").1, &mut merged)?,
            (Some(_), None) => loose
                .next()
                .expect("peeked")
                .1
                .merge_into_acc(&mut merged)?,
            (None, None) => break,
        }
    }
    Ok(merged)
}

/// Seals minutes that ended by `minutes_before`, and every hour: hours change
/// only when maintenance rolls minutes into them (or a rare hour-resolution
/// write arrives), which unseals them until the end of that pass.
fn seal(windows: &mut SeriesWindows, minutes_before: u64) {
    let SeriesWindows {
        minutes,
        hours,
        open_from: [open_minutes, open_hours],
        ..
    } = windows;
    for (windows, open_from, len, before) in [
        (minutes, open_minutes, MINUTE_SECS, minutes_before),
        (hours, open_hours, HOUR_SECS, u64::MAX),
    ] {
        let from = windows.partition_point(|(start, _)| *start < *open_from);
        let to = windows.partition_point(|(start, _)| start + len <= before);
        for (_, slot) in windows.get_mut(from..to).unwrap_or_default() {
            slot.seal();
        }
        *open_from = windows
            .get(to.max(from))
            .map_or(u64::MAX, |(start, _)| *start);
    }
}

/// Unpacks blocks holding a minute that is due to roll up or expire.
fn unpack_due(windows: &mut SeriesWindows, due_before: u64, report: &mut MaintenanceReport) {
    let mut i = 0;
    while i < windows.blocks.len() && windows.blocks[i].start + MINUTE_SECS <= due_before {
        if let Err(e) = windows.unpack(i) {
            // Kept, so nothing is lost; the error repeats on every pass.
            tracing::error!(error = %e, span = windows.blocks[i].start, "cannot unpack minute windows");
            report.errors += 1;
            i += 1;
        }
    }
}

/// Packs each [`PACK_SECS`] span whose minutes were all sealable by
/// `seal_before` (so are sealed) and none is due to roll up or expire.
fn pack(
    windows: &mut SeriesWindows,
    seal_before: u64,
    due_before: u64,
    packer: &mut zstd::bulk::Compressor<'_>,
    report: &mut MaintenanceReport,
) {
    let mut i = 0;
    while i < windows.minutes.len() {
        let span = windows.minutes[i].0 - windows.minutes[i].0 % PACK_SECS;
        if span + PACK_SECS > seal_before {
            break;
        }
        let end = i + windows.minutes[i..].partition_point(|(s, _)| *s < span + PACK_SECS);
        if span + MINUTE_SECS <= due_before {
            i = end;
            continue;
        }
        let sealed = windows.minutes[i..end]
            .iter()
            .map(|(start, slot)| match slot {
                Slot::Sealed(bytes) => Some((*start, &bytes[..])),
                Slot::Open(_) => None,
            });
        let Some(sealed) = sealed.collect::<Option<Vec<_>>>() else {
            i = end; // cannot happen after a seal pass; leave them loose
            continue;
        };
        match Block::pack(span, sealed.into_iter(), packer) {
            Ok(block) => {
                let at = windows.blocks.partition_point(|b| b.start < span);
                windows.blocks.insert(at, block);
                windows.minutes.drain(i..end);
            }
            Err(e) => {
                tracing::error!(error = %e, span, "cannot pack minute windows; they stay sealed");
                report.errors += 1;
                i = end;
            }
        }
    }
}

fn roll_up(windows: &mut SeriesWindows, rollup_before: u64, report: &mut MaintenanceReport) {
    let due = windows
        .minutes
        .partition_point(|(start, _)| *start + MINUTE_SECS <= rollup_before);
    for (start, slot) in windows.minutes.drain(..due).collect::<Vec<_>>() {
        let hour = start - start % HOUR_SECS;
        match slot
            .sketch()
            .and_then(|sketch| windows.merge_into(Resolution::Hour, hour, &sketch))
        {
            Ok(()) => report.rolled_up += 1,
            Err(e) => {
                // Keep the minute rather than lose it; the error repeats on every
                // pass, so say which window it is.
                tracing::error!(error = %e, minute = start, "cannot roll minute window into its hour");
                let at = windows.minutes.partition_point(|(s, _)| *s < start);
                windows.minutes.insert(at, (start, slot));
                report.errors += 1;
            }
        }
    }
}

fn expire(windows: &mut SeriesWindows, expire_before: u64, report: &mut MaintenanceReport) {
    for (windows, len) in [
        (&mut windows.minutes, MINUTE_SECS),
        (&mut windows.hours, HOUR_SECS),
    ] {
        let due = windows.partition_point(|(start, _)| *start + len <= expire_before);
        windows.drain(..due);
        report.expired += due as u64;
    }
}

#[async_trait]
impl SketchStore for MemoryStore {
    async fn merge(&self, sketches: Vec<WindowedSketch>) -> Result<(), StoreError> {
        self.merge_sync(sketches)
    }

    async fn query(
        &self,
        query: &StoreQuery,
    ) -> Result<Vec<(SeriesKey, SeriesSketch)>, StoreError> {
        self.query_sync(query)
    }

    async fn health(&self) -> StoreHealth {
        StoreHealth {
            ready: true,
            detail: "embedded in-memory store".to_string(),
            series: Some(self.series_count()),
        }
    }

    async fn run_maintenance(&self, now_unix_secs: u64) -> Result<MaintenanceReport, StoreError> {
        Ok(self.maintain(now_unix_secs))
    }

    fn retention_secs(&self) -> u64 {
        self.config.retention_secs
    }

    fn describe(&self) -> String {
        "embedded in-memory store".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::{Field, FieldKey, Point, SignalKind, Value};

    const NOW: u64 = 1_767_229_200; // 2026-01-01T01:00:00Z

    fn key(tenant: &str, cluster: &str) -> SeriesKey {
        SeriesKey {
            tenant: tenant.into(),
            cluster: cluster.into(),
            model: "m".into(),
            kind: SignalKind::RequestLifecycle,
        }
    }

    fn requests(key: SeriesKey, at: u64, n: f64) -> WindowedSketch {
        let mut sketch = SeriesSketch::default();
        sketch.record(&Point {
            field: FieldKey::plain(Field::Requests),
            time_unix_nano: at * 1_000_000_000,
            value: Value::Counter(n),
        });
        WindowedSketch {
            key,
            window: Window::minute_containing(at),
            sketch,
        }
    }

    fn query(tenant: Option<&str>, from: u64, to: u64) -> StoreQuery {
        StoreQuery {
            tenant: tenant.map(str::to_string),
            kind: SignalKind::RequestLifecycle,
            cluster: None,
            model: None,
            from_unix_secs: from,
            to_unix_secs: to,
        }
    }

    fn total(store: &MemoryStore, q: &StoreQuery) -> f64 {
        store
            .query_sync(q)
            .unwrap()
            .iter()
            .map(|(_, s)| s.counter_sum(Field::Requests).unwrap_or(0.0))
            .sum()
    }

    fn store(retention_secs: u64) -> MemoryStore {
        MemoryStore::new(MemoryStoreConfig {
            retention_secs,
            rollup_after_secs: 2 * HOUR_SECS,
        })
    }

    #[test]
    fn merges_into_the_same_minute_and_reads_each_minute_once() {
        let store = store(30 * 86_400);
        store
            .merge_sync(vec![
                requests(key("a", "c"), NOW - 50, 1.0),
                requests(key("a", "c"), NOW - 45, 2.0),
                requests(key("a", "c"), NOW - 200, 4.0),
            ])
            .unwrap();
        assert_eq!(store.series_count(), 1);
        let shard = store.shards[MemoryStore::shard_index("a")].read();
        let windows = shard.series.get(&key("a", "c")).unwrap();
        assert_eq!(windows.minutes.len(), 2, "two distinct minutes");
        drop(shard);
        assert_eq!(total(&store, &query(Some("a"), NOW - 60, NOW)), 3.0);
        assert_eq!(total(&store, &query(Some("a"), NOW - 300, NOW)), 7.0);
        assert_eq!(total(&store, &query(Some("a"), NOW - 300, NOW - 60)), 4.0);
    }

    #[test]
    fn rolls_old_minutes_into_hours_without_changing_totals() {
        let store = store(30 * 86_400);
        let old_hour = NOW - 5 * HOUR_SECS; // 20:00 the day before
        let batch: Vec<_> = (0..60)
            .map(|m| requests(key("a", "c"), old_hour + m * 60, 1.0))
            .chain([requests(key("a", "c"), NOW - 120, 10.0)])
            .collect();
        store.merge_sync(batch).unwrap();
        let whole_day = query(Some("a"), NOW - 86_400, NOW);
        assert_eq!(total(&store, &whole_day), 70.0);

        let report = store.maintain(NOW);
        assert_eq!(report.rolled_up, 60);
        assert_eq!(report.expired, 0);
        let shard = store.shards[MemoryStore::shard_index("a")].read();
        let windows = shard.series.get(&key("a", "c")).unwrap();
        assert_eq!(windows.hours.len(), 1);
        assert_eq!(windows.hours[0].0, old_hour);
        assert_eq!(windows.minutes.len(), 1, "the recent minute stays a minute");
        drop(shard);
        assert_eq!(total(&store, &whole_day), 70.0);
        // An hour overlapping the range counts whole.
        assert_eq!(
            total(
                &store,
                &query(Some("a"), old_hour + 1_800, old_hour + 1_860)
            ),
            60.0
        );
        // A second pass changes nothing.
        assert_eq!(store.maintain(NOW).rolled_up, 0);
        assert_eq!(total(&store, &whole_day), 70.0);
    }

    #[test]
    fn expires_windows_past_the_retention_and_forgets_empty_series() {
        let store = store(6 * HOUR_SECS);
        store
            .merge_sync(vec![
                requests(key("a", "old"), NOW - 7 * HOUR_SECS, 1.0),
                requests(key("a", "kept"), NOW - 3 * HOUR_SECS, 2.0),
            ])
            .unwrap();
        let report = store.maintain(NOW);
        assert_eq!(report.rolled_up, 2);
        assert_eq!(report.expired, 1);
        assert_eq!(store.series_count(), 1);
        assert_eq!(total(&store, &query(Some("a"), 0, NOW)), 2.0);
    }

    #[test]
    fn tenant_queries_read_only_that_tenant_and_none_reads_all() {
        let store = store(30 * 86_400);
        let tenants = ["a", "a-b", "ab", "b", ""];
        store
            .merge_sync(
                tenants
                    .iter()
                    .enumerate()
                    .map(|(i, t)| requests(key(t, "c"), NOW - 30, 10f64.powi(i as i32)))
                    .collect(),
            )
            .unwrap();
        for (i, t) in tenants.iter().enumerate() {
            let q = query(Some(t), NOW - 60, NOW);
            assert_eq!(total(&store, &q), 10f64.powi(i as i32), "tenant {t:?}");
        }
        assert_eq!(total(&store, &query(None, NOW - 60, NOW)), 11_111.0);
    }

    #[test]
    fn filters_by_kind_cluster_and_model() {
        let store = store(30 * 86_400);
        let mut other_kind = key("a", "c1");
        other_kind.kind = SignalKind::Cost;
        store
            .merge_sync(vec![
                requests(key("a", "c1"), NOW - 30, 1.0),
                requests(key("a", "c2"), NOW - 30, 2.0),
                requests(other_kind, NOW - 30, 4.0),
            ])
            .unwrap();
        let mut q = query(Some("a"), NOW - 60, NOW);
        assert_eq!(total(&store, &q), 3.0);
        q.cluster = Some("c2".into());
        assert_eq!(total(&store, &q), 2.0);
        q.model = Some("other".into());
        assert_eq!(total(&store, &q), 0.0);
    }

    #[test]
    fn seals_and_packs_closed_windows_and_reopens_them_for_late_data() {
        let store = store(30 * 86_400);
        let old_hour = NOW - 5 * HOUR_SECS;
        store
            .merge_sync(vec![
                requests(key("a", "c"), old_hour + 30, 1.0),
                requests(key("a", "c"), NOW - 30 * 60, 2.0),
                requests(key("a", "c"), NOW - 29 * 60, 4.0),
                requests(key("a", "c"), NOW - 5 * 60, 8.0),
                requests(key("a", "c"), NOW - 30, 16.0),
            ])
            .unwrap();
        store.maintain(NOW);
        // (hours: sealed?, loose minutes: sealed?, packed blocks)
        let state = |store: &MemoryStore| {
            let shard = store.shards[MemoryStore::shard_index("a")].read();
            let windows = shard.series.get(&key("a", "c")).unwrap();
            let sealed =
                |w: &[(u64, Slot)]| w.iter().map(|(_, s)| s.is_sealed()).collect::<Vec<_>>();
            (
                sealed(&windows.hours),
                sealed(&windows.minutes),
                windows.blocks.iter().map(|b| b.start).collect::<Vec<_>>(),
            )
        };
        // The old hour (rolled up) is sealed; the minutes of 00:30-00:40 are
        // packed; 00:55 is sealed but its span is not over; 00:59 is open.
        assert_eq!(
            state(&store),
            (vec![true], vec![true, false], vec![NOW - 30 * 60])
        );
        let everything = query(Some("a"), 0, NOW + 60);
        assert_eq!(total(&store, &everything), 31.0);
        assert_eq!(
            total(&store, &query(Some("a"), NOW - 29 * 60, NOW - 4 * 60)),
            12.0
        );

        // Late data for a packed minute, the sealed minute and the sealed hour:
        // the block is unpacked (00:30 sealed, 00:31 open again), 00:55 is
        // open again, and the old minute waits, open, to roll into its hour.
        store
            .merge_sync(vec![
                requests(key("a", "c"), NOW - 29 * 60 + 5, 32.0),
                requests(key("a", "c"), NOW - 5 * 60 + 5, 64.0),
                requests(key("a", "c"), old_hour + 90, 128.0),
            ])
            .unwrap();
        assert_eq!(
            state(&store),
            (vec![true], vec![false, true, false, false, false], vec![])
        );
        assert_eq!(total(&store, &everything), 255.0);
        store.maintain(NOW);
        // The late old minute went into its hour; everything closed is sealed
        // or packed again.
        assert_eq!(
            state(&store),
            (vec![true], vec![true, false], vec![NOW - 30 * 60])
        );
        assert_eq!(total(&store, &everything), 255.0);
        assert_eq!(
            total(&store, &query(Some("a"), NOW - 29 * 60, NOW - 4 * 60)),
            108.0
        );
    }

    mod sealing {
        use std::cell::Cell;

        use proptest::prelude::*;
        use proptest::test_runner::{TestCaseError, TestRunner};

        use super::*;
        use crate::signal::{DIM_SKU, HistogramDelta};

        const RETENTION_SECS: u64 = 6 * HOUR_SECS;

        #[derive(Clone, Debug)]
        enum Op {
            /// Points for one series, `age_secs` before the simulated clock.
            Write {
                series: usize,
                age_secs: u64,
                hour: bool,
                points: Vec<Point>,
            },
            /// The clock moves on and maintenance runs.
            Maintain { advance_secs: u64 },
            Query {
                tenant: Option<usize>,
                kind: usize,
                from_age_secs: u64,
                len_secs: u64,
            },
        }

        const SERIES: [(&str, &str, SignalKind); 4] = [
            ("a", "c1", SignalKind::RequestLifecycle),
            ("a", "c2", SignalKind::RequestLifecycle),
            ("a", "c1", SignalKind::PrefixHash),
            ("b", "c1", SignalKind::RequestLifecycle),
        ];
        const KINDS: [SignalKind; 2] = [SignalKind::RequestLifecycle, SignalKind::PrefixHash];

        fn series_key(i: usize) -> SeriesKey {
            let (tenant, cluster, kind) = SERIES[i];
            SeriesKey {
                kind,
                ..key(tenant, cluster)
            }
        }

        fn plain(field: Field, value: Value, time_unix_nano: u64) -> Point {
            Point {
                field: FieldKey::plain(field),
                time_unix_nano,
                value,
            }
        }

        /// Every sketch type, a field that receives two types (the merge's
        /// type-conflict rule), and a dimensioned field.
        fn point() -> impl Strategy<Value = Point> {
            prop_oneof![
                (1e-4f64..100.0).prop_map(|v| plain(Field::TtftSeconds, Value::Sample(v), 1)),
                (1e-3f64..1e4).prop_map(|v| plain(Field::E2eSeconds, Value::Sample(v), 1)),
                (0u32..1000).prop_map(|v| plain(Field::Requests, Value::Counter(f64::from(v)), 1)),
                (0u32..1000).prop_map(|v| plain(Field::Requests, Value::Gauge(f64::from(v)), 1)),
                (0u32..1000, 1u64..1000).prop_map(|(v, t)| plain(
                    Field::QueueDepth,
                    Value::Gauge(f64::from(v)),
                    t
                )),
                (0u64..300).prop_map(|h| plain(Field::PrefixHashes, Value::PrefixHash(h), 1)),
                any::<u64>().prop_map(|h| plain(Field::PrefixHashes, Value::PrefixHash(h), 1)),
                proptest::collection::vec(0u64..50, 4).prop_map(|counts| {
                    let count = counts.iter().sum();
                    plain(
                        Field::E2eSeconds,
                        Value::Histogram(HistogramDelta {
                            bounds: vec![0.1, 0.5, 1.0],
                            counts,
                            sum: 0.0,
                            count,
                        }),
                        1,
                    )
                }),
                (prop::sample::select(vec!["A100", "H100"]), 0u32..64).prop_map(|(sku, v)| {
                    Point {
                        field: FieldKey::with_dim(Field::Gpus, DIM_SKU, sku),
                        time_unix_nano: 1,
                        value: Value::Gauge(f64::from(v)),
                    }
                }),
            ]
        }

        fn op() -> impl Strategy<Value = Op> {
            // Ages: mostly the last few minutes (open windows), some a few
            // minutes to two hours back (sealed minutes), some past the
            // roll-up (into sealed hours) and a few past the retention.
            let age = prop_oneof![
                4 => 0u64..4 * MINUTE_SECS,
                3 => 0u64..2 * HOUR_SECS,
                2 => 2 * HOUR_SECS..RETENTION_SECS,
                1 => 0u64..RETENTION_SECS + HOUR_SECS,
            ];
            prop_oneof![
                5 => (
                    0..SERIES.len(),
                    age,
                    prop::bool::weighted(0.1),
                    proptest::collection::vec(point(), 1..12)
                )
                    .prop_map(|(series, age_secs, hour, points)| Op::Write {
                        series,
                        age_secs,
                        hour,
                        points
                    }),
                2 => (0u64..20 * MINUTE_SECS).prop_map(|advance_secs| Op::Maintain { advance_secs }),
                3 => (
                    prop::option::of(0usize..3),
                    0..KINDS.len(),
                    0u64..RETENTION_SECS + HOUR_SECS,
                    1u64..4 * HOUR_SECS,
                )
                    .prop_map(|(tenant, kind, from_age_secs, len_secs)| Op::Query {
                        tenant,
                        kind,
                        from_age_secs,
                        len_secs,
                    }),
            ]
        }

        /// How often the generated cases reached what the property is about.
        #[derive(Default)]
        struct Coverage {
            packed: Cell<usize>,
            late_into_packed: Cell<usize>,
        }

        fn packed_spans(store: &MemoryStore) -> Vec<u64> {
            store
                .shards
                .iter()
                .flat_map(|shard| {
                    shard
                        .read()
                        .series
                        .values()
                        .flat_map(|w| w.blocks.iter().map(|b| b.start))
                        .collect::<Vec<_>>()
                })
                .collect()
        }

        /// A store that never seals, one that seals and one that also packs
        /// (the default) get the same writes, maintenance passes and queries:
        /// every answer is the same sketch (`==`, and byte for byte encoded),
        /// and every maintenance report the same.
        fn same_answers(ops: Vec<Op>, seen: &Coverage) -> Result<(), TestCaseError> {
            let config = MemoryStoreConfig {
                retention_secs: RETENTION_SECS,
                rollup_after_secs: MemoryStoreConfig::default().rollup_after_secs,
            };
            let plain = MemoryStore::new(config).with_compaction(Compaction::None);
            let sealing = MemoryStore::new(config).with_compaction(Compaction::Seal);
            let packing = MemoryStore::new(config);
            let mut now = NOW;
            for op in ops {
                match op {
                    Op::Write {
                        series,
                        age_secs,
                        hour,
                        points,
                    } => {
                        let at = now - age_secs;
                        let span = at - at % PACK_SECS;
                        if !hour && packed_spans(&packing).contains(&span) {
                            seen.late_into_packed.set(seen.late_into_packed.get() + 1);
                        }
                        let mut sketch = SeriesSketch::default();
                        for mut p in points {
                            p.time_unix_nano += at * 1_000_000_000;
                            sketch.record(&p);
                        }
                        let resolution = if hour {
                            Resolution::Hour
                        } else {
                            Resolution::Minute
                        };
                        let batch = vec![WindowedSketch {
                            key: series_key(series),
                            window: Window::containing(resolution, at),
                            sketch,
                        }];
                        prop_assert_eq!(sealing.merge_sync(batch.clone()), Ok(()));
                        prop_assert_eq!(packing.merge_sync(batch.clone()), Ok(()));
                        prop_assert_eq!(plain.merge_sync(batch), Ok(()));
                    }
                    Op::Maintain { advance_secs } => {
                        now += advance_secs;
                        let report = plain.maintain(now);
                        prop_assert_eq!(sealing.maintain(now), report.clone());
                        prop_assert_eq!(packing.maintain(now), report);
                        if !packed_spans(&packing).is_empty() {
                            seen.packed.set(seen.packed.get() + 1);
                        }
                    }
                    Op::Query {
                        tenant,
                        kind,
                        from_age_secs,
                        len_secs,
                    } => {
                        let from = now - from_age_secs;
                        let q = StoreQuery {
                            tenant: tenant.map(|t| ["a", "b", "c"][t].to_string()),
                            kind: KINDS[kind],
                            cluster: None,
                            model: None,
                            from_unix_secs: from,
                            to_unix_secs: from + len_secs,
                        };
                        let want = plain.query_sync(&q).unwrap();
                        let encoded = |answer: &[(SeriesKey, SeriesSketch)]| {
                            answer
                                .iter()
                                .map(|(k, s)| (k.clone(), s.encode()))
                                .collect::<Vec<_>>()
                        };
                        for store in [&sealing, &packing] {
                            let got = store.query_sync(&q).unwrap();
                            prop_assert_eq!(encoded(&got), encoded(&want));
                            prop_assert_eq!(got, want.clone());
                        }
                    }
                }
            }
            // Three hours on, every window has closed (minutes rolled up,
            // hours complete): all are sealed in one store, none in the other.
            now += 3 * HOUR_SECS;
            sealing.maintain(now);
            plain.maintain(now);
            packing.maintain(now);
            // Windows (minutes and hours, packed minutes not counted) that `keep` accepts.
            let count_windows = |store: &MemoryStore, keep: fn(&Slot) -> bool| {
                store
                    .shards
                    .iter()
                    .map(|shard| {
                        shard
                            .read()
                            .series
                            .values()
                            .map(|w| {
                                w.minutes
                                    .iter()
                                    .chain(&w.hours)
                                    .filter(|(_, s)| keep(s))
                                    .count()
                            })
                            .sum::<usize>()
                    })
                    .sum::<usize>()
            };
            let count_sealed = |store: &MemoryStore| count_windows(store, Slot::is_sealed);
            prop_assert_eq!(count_sealed(&plain), 0);
            let windows = count_windows(&sealing, |_| true);
            prop_assert_eq!(count_sealed(&sealing), windows);
            prop_assert_eq!(count_sealed(&packing), windows);
            prop_assert!(packed_spans(&packing).is_empty());
            Ok(())
        }

        #[test]
        fn sealing_never_changes_an_answer() {
            let seen = Coverage::default();
            let mut runner = TestRunner::new(ProptestConfig::with_cases(128));
            let result = runner.run(&proptest::collection::vec(op(), 1..80), |ops| {
                same_answers(ops, &seen)
            });
            if let Err(e) = result {
                panic!("{e}");
            }
            // The cases did pack minutes and send late data into packed spans.
            assert!(seen.packed.get() > 0, "no case packed a block");
            assert!(
                seen.late_into_packed.get() > 0,
                "no case wrote late data into a packed span"
            );
        }
    }
}
