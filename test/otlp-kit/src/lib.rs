//! OTLP payloads for the aggregator's tests and benches, built one way.
//!
//! - attribute builders ([`kv`], [`string_kv`], [`int_kv`], [`double_kv`],
//!   [`array_kv`]) and message builders for metrics and spans in the shapes
//!   the real agent sends ([`agent_resource`], [`counter`], [`histogram`],
//!   [`span`], [`metrics_request`], ...);
//! - [`rich`]: every OTLP field and value kind, twice (prost and hand-written
//!   OTLP/JSON), for the decoders;
//! - [`losses`]: payloads normalize refuses or drops, each with a known count;
//! - [`heap`]: a counting global allocator and the RSS, for the memory
//!   benches;
//! - [`synthetic`]: seeded, realistic fleets of spans and engine metrics, for
//!   the benches and `signal-loadgen` (`src/bin/signal-loadgen.rs`).
//!
//! It is a dev-dependency only: the aggregator never links it.

mod agent;
mod attributes;
mod metrics;
mod traces;

pub mod heap;
pub mod losses;
pub mod rich;
pub mod synthetic;

pub use agent::*;
pub use attributes::*;
pub use metrics::*;
pub use traces::*;

use std::time::{SystemTime, UNIX_EPOCH};

/// A port nothing listens on right now, for a process the test starts that
/// must be told its port. Checked on every interface, because the binaries
/// under test may bind 0.0.0.0.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The wall clock as OTLP timestamps it.
pub fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default()
}

/// `bytes` gzipped as the Collector's exporters send them (fast: a load
/// generator must not be slower at compressing than the receiver at reading).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder
        .write_all(bytes)
        .and_then(|_| encoder.finish())
        .expect("gzip into a Vec cannot fail")
}
