//! Time windows: one-minute windows for recent data, rolled up into hours.

use std::collections::BTreeMap;

use super::{SeriesSketch, SketchError, WindowedSketch};

pub const MINUTE_SECS: u64 = 60;
pub const HOUR_SECS: u64 = 3_600;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resolution {
    Minute,
    Hour,
}

impl Resolution {
    pub fn secs(self) -> u64 {
        match self {
            Resolution::Minute => MINUTE_SECS,
            Resolution::Hour => HOUR_SECS,
        }
    }
}

/// A time window: its resolution and aligned start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Window {
    pub resolution: Resolution,
    pub start_unix_secs: u64,
}

impl Window {
    pub fn containing(resolution: Resolution, unix_secs: u64) -> Window {
        let secs = resolution.secs();
        Window {
            resolution,
            start_unix_secs: unix_secs - unix_secs % secs,
        }
    }

    pub fn minute_containing(unix_secs: u64) -> Window {
        Window::containing(Resolution::Minute, unix_secs)
    }

    pub fn hour_containing(unix_secs: u64) -> Window {
        Window::containing(Resolution::Hour, unix_secs)
    }

    /// Exclusive end.
    pub fn end_unix_secs(&self) -> u64 {
        self.start_unix_secs + self.resolution.secs()
    }

    pub fn contains(&self, unix_secs: u64) -> bool {
        (self.start_unix_secs..self.end_unix_secs()).contains(&unix_secs)
    }

    /// The hour window this window rolls up into (itself for hours).
    pub fn hour(&self) -> Window {
        Window::hour_containing(self.start_unix_secs)
    }

    /// Whether any second of this window falls in `[from, to)`.
    pub fn overlaps(&self, from_unix_secs: u64, to_unix_secs: u64) -> bool {
        self.start_unix_secs < to_unix_secs && from_unix_secs < self.end_unix_secs()
    }
}

/// Merges windowed sketches into their hour windows: one output per
/// (series, hour), in (series, hour) order. Hour inputs pass through merged.
pub fn roll_up(
    sketches: impl IntoIterator<Item = WindowedSketch>,
) -> Result<Vec<WindowedSketch>, SketchError> {
    let mut hours: BTreeMap<(crate::signal::SeriesKey, Window), SeriesSketch> = BTreeMap::new();
    for windowed in sketches {
        let hour = windowed.window.hour();
        match hours.get_mut(&(windowed.key.clone(), hour)) {
            Some(existing) => existing.merge(&windowed.sketch)?,
            None => {
                hours.insert((windowed.key, hour), windowed.sketch);
            }
        }
    }
    Ok(hours
        .into_iter()
        .map(|((key, window), sketch)| WindowedSketch {
            key,
            window,
            sketch,
        })
        .collect())
}
