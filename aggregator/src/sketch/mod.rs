//! Mergeable per-window sketches of typed signals.

use std::collections::BTreeMap;

use crate::signal::{FieldKey, Point, SeriesKey, SignalBatch};

pub const MINUTE_SECS: u64 = 60;
pub const HOUR_SECS: u64 = 3_600;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resolution {
    Minute,
    Hour,
}

/// A time window: its resolution and aligned start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Window {
    pub resolution: Resolution,
    pub start_unix_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SketchError {
    #[error("unsupported sketch encoding version {0}")]
    UnsupportedVersion(u8),
    #[error("corrupt sketch encoding: {0}")]
    Corrupt(String),
    #[error("cannot merge {0}")]
    Incompatible(String),
}

/// All fields of one series in one window.
#[derive(Clone, Debug, Default)]
pub struct SeriesSketch {
    fields: BTreeMap<FieldKey, FieldSketch>,
}

/// The sketch behind one field; which one follows from the values it received.
#[derive(Clone, Debug)]
pub enum FieldSketch {
    Todo,
}

/// One series' sketch for one window, ready to merge into a store.
#[derive(Clone, Debug)]
pub struct WindowedSketch {
    pub key: SeriesKey,
    pub window: Window,
    pub sketch: SeriesSketch,
}

impl SeriesSketch {
    pub fn record(&mut self, point: &Point) {
        let _ = (&self.fields, point);
        todo!("owned by the sketch work")
    }

    pub fn merge(&mut self, other: &SeriesSketch) -> Result<(), SketchError> {
        let _ = other;
        todo!("owned by the sketch work")
    }

    pub fn encode(&self) -> Vec<u8> {
        todo!("owned by the sketch work")
    }

    pub fn decode(bytes: &[u8]) -> Result<SeriesSketch, SketchError> {
        let _ = bytes;
        todo!("owned by the sketch work")
    }

    pub fn field(&self, key: &FieldKey) -> Option<&FieldSketch> {
        self.fields.get(key)
    }

    pub fn fields(&self) -> impl Iterator<Item = (&FieldKey, &FieldSketch)> {
        self.fields.iter()
    }
}

/// Groups a batch's points into minute windows, one sketch per (series, window).
pub fn sketch_batch(batch: &SignalBatch) -> Vec<WindowedSketch> {
    let _ = batch;
    todo!("owned by the sketch work")
}
