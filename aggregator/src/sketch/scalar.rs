//! Counters and gauges: the exact, cheap sketches.

use super::SketchError;
use super::codec::{Reader, Writer, corrupt};

/// Sum of increments plus how many reports carried them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CounterSketch {
    pub sum: f64,
    pub reports: u64,
}

impl CounterSketch {
    pub fn add(&mut self, increment: f64) {
        self.sum += increment;
        self.reports = self.reports.saturating_add(1);
    }

    pub fn merge(&mut self, other: &CounterSketch) {
        self.sum += other.sum;
        self.reports = self.reports.saturating_add(other.reports);
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.f64(self.sum);
        w.varint(self.reports);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, SketchError> {
        Ok(CounterSketch {
            sum: r.finite_f64("counter sum")?,
            reports: r.varint()?,
        })
    }
}

/// Point-in-time readings: the latest by timestamp, and min/max/mean.
#[derive(Clone, Debug, PartialEq)]
pub struct GaugeSketch {
    pub last: f64,
    pub last_time_unix_nano: u64,
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    pub count: u64,
}

impl Default for GaugeSketch {
    fn default() -> Self {
        GaugeSketch {
            last: 0.0,
            last_time_unix_nano: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sum: 0.0,
            count: 0,
        }
    }
}

impl GaugeSketch {
    pub fn add(&mut self, value: f64, time_unix_nano: u64) {
        self.take_last(value, time_unix_nano);
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.sum += value;
        self.count = self.count.saturating_add(1);
    }

    /// Later timestamp wins; on a tie the larger value, so that merge order
    /// never changes the answer.
    fn take_last(&mut self, value: f64, time_unix_nano: u64) {
        if self.count == 0
            || time_unix_nano > self.last_time_unix_nano
            || (time_unix_nano == self.last_time_unix_nano && value > self.last)
        {
            self.last = value;
            self.last_time_unix_nano = time_unix_nano;
        }
    }

    pub fn merge(&mut self, other: &GaugeSketch) {
        if other.count == 0 {
            return;
        }
        self.take_last(other.last, other.last_time_unix_nano);
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum += other.sum;
        self.count = self.count.saturating_add(other.count);
    }

    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.varint(self.count);
        if self.count == 0 {
            return;
        }
        w.f64(self.last);
        w.varint(self.last_time_unix_nano);
        w.f64(self.min);
        w.f64(self.max);
        w.f64(self.sum);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, SketchError> {
        let count = r.varint()?;
        if count == 0 {
            return Ok(GaugeSketch::default());
        }
        let gauge = GaugeSketch {
            last: r.finite_f64("gauge last")?,
            last_time_unix_nano: r.varint()?,
            min: r.finite_f64("gauge min")?,
            max: r.finite_f64("gauge max")?,
            sum: r.finite_f64("gauge sum")?,
            count,
        };
        if gauge.min > gauge.max || gauge.last < gauge.min || gauge.last > gauge.max {
            return Err(corrupt("gauge last/min/max inconsistent"));
        }
        Ok(gauge)
    }
}
