//! Steady-state memory of the embedded store, in simulated time.
//!
//! A fleet of `--series` series (spans: RequestLifecycle + PrefixHash per
//! (tenant, cluster, model)) reports every simulated minute for `--minutes`
//! minutes through the real pipeline (normalize → sketch → embedded store with
//! its default retention and roll-up); after each minute the store's
//! maintenance runs as of the simulated clock, as the aggregator's 30 s
//! maintenance tick would. Reported at `--report-every` minutes and at the end:
//!
//! - live heap bytes per series, from a counting global allocator: exact and
//!   deterministic (seeded generator, fixed batch layout), unlike time;
//! - process RSS (`VmRSS`) and its growth since the store was empty.
//!
//! `--store pack` is the store as shipped (closed windows sealed into their
//! encoding, sealed minutes packed into zstd blocks per 10 minutes),
//! `--store seal` seals without packing, `--store none` keeps every window as
//! built (the store before issue 15). `--store all`, the default, runs the
//! three one after the other, each in a fresh process of this example so that
//! none inherits another's freed pages, with the same seeded traffic.
//!
//! ```sh
//! cargo run --release -p signal-aggregator --example store_memory -- --series 100000 --minutes 60
//! cargo run --release -p signal-aggregator --example store_memory -- --series 2000 --minutes 240 --report-every 30
//! ```
//!
//! Simulated minutes end just before the real clock, so every point is inside
//! the window the sketcher accepts as is (no point is refiled).

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use otlp_test_kit::heap::{CountingAllocator, live_bytes, rss_bytes};
use otlp_test_kit::synthetic::{FleetShape, SpanGenerator};
use prost::Message;
use signal_aggregator::normalize::{NormalizeConfig, Normalizer};
use signal_aggregator::pipeline::{ExportSink, Pipeline};
use signal_aggregator::signal::Origin;
use signal_aggregator::store::memory::{Compaction, MemoryStore, MemoryStoreConfig};
use signal_aggregator::telemetry::SelfMetrics;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

struct Options {
    series: usize,
    minutes: u64,
    spans_per_minute: usize,
    report_every: u64,
    store: Store,
}

#[derive(Clone, Copy, PartialEq)]
enum Store {
    One(Compaction),
    All,
}

fn options() -> Options {
    let mut o = Options {
        series: 100_000,
        minutes: 60,
        spans_per_minute: 4,
        report_every: 0,
        store: Store::All,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        if args[i] == "--store" {
            o.store = match args.get(i + 1).map(String::as_str) {
                Some("none") => Store::One(Compaction::None),
                Some("seal") => Store::One(Compaction::Seal),
                Some("pack") => Store::One(Compaction::Pack),
                Some("all") => Store::All,
                other => panic!("--store takes none, seal, pack or all, not {other:?}"),
            };
            i += 2;
            continue;
        }
        let value = args.get(i + 1).map(|v| v.parse::<u64>().expect("a number"));
        match (args[i].as_str(), value) {
            ("--series", Some(n)) => o.series = n as usize,
            ("--minutes", Some(n)) => o.minutes = n,
            ("--spans-per-minute", Some(n)) => o.spans_per_minute = (n as usize).max(1),
            ("--report-every", Some(n)) => o.report_every = n,
            (other, _) => panic!(
                "unknown argument {other}; takes --series --minutes --spans-per-minute --report-every --store"
            ),
        }
        i += 2;
    }
    o
}

fn main() {
    let o = options();
    let Store::One(compaction) = o.store else {
        let mut args: Vec<String> = std::env::args().skip(1).collect();
        if let Some(at) = args.iter().position(|a| a == "--store") {
            args.drain(at..at + 2);
        }
        for store in ["none", "seal", "pack"] {
            let status = std::process::Command::new(std::env::current_exe().expect("own path"))
                .args(&args)
                .args(["--store", store])
                .status()
                .expect("run the example again");
            assert!(status.success(), "--store {store} failed");
        }
        return;
    };
    // Spans make two series per identity (RequestLifecycle, PrefixHash).
    let identities = o.series.div_ceil(2);
    let shape = FleetShape {
        tenants: 20,
        clusters: 10,
        models: identities.div_ceil(200).max(1),
    };
    let identities = shape.identities();
    let config = NormalizeConfig {
        max_series_per_tenant: usize::MAX,
        ..NormalizeConfig::default()
    };
    let store = MemoryStore::new(MemoryStoreConfig::default());
    let store = Arc::new(store.with_compaction(compaction));
    let pipeline = Pipeline::new(
        Normalizer::new(config),
        store.clone(),
        Arc::new(SelfMetrics::default()),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut spans = SpanGenerator::new(7, shape).spans_per_resource(o.spans_per_minute);
    // Whole resource blocks per request, so every minute covers each identity once.
    let batch = o.spans_per_minute * (1_000 / o.spans_per_minute).max(1);
    let items_per_minute = identities * o.spans_per_minute;

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    // Hour-aligned start, so the roll-up pattern is the same in every run.
    let start = (now - (o.minutes + 2) * 60) / 3_600 * 3_600;
    let origin = Origin::default();
    let heap0 = live_bytes();
    let rss0 = rss_bytes();
    let started = Instant::now();
    let mut maintenance = std::time::Duration::ZERO;
    println!(
        "store: {}",
        match compaction {
            Compaction::None => "none (every window as built: the store before issue 15)",
            Compaction::Seal => "seal (closed windows encoded, not packed)",
            Compaction::Pack => "pack (as shipped: sealed, minutes packed per 10 minutes)",
        }
    );
    println!(
        "spans: {identities} identities ({} tenants x {} clusters x {} models), {} spans per identity per minute, {} minutes",
        shape.tenants, shape.clusters, shape.models, o.spans_per_minute, o.minutes
    );
    println!(
        "{:>7} {:>9} {:>14} {:>14} {:>12} {:>12}",
        "minute", "series", "heap B/series", "heap MiB", "RSS MiB", "RSS grew MiB"
    );
    for minute in 0..o.minutes {
        let at = start + minute * 60;
        let mut left = items_per_minute;
        while left > 0 {
            let n = left.min(batch);
            left -= n;
            let bytes = spans.batch(n, (at + 45) * 1_000_000_000).encode_to_vec();
            let request = ExportTraceServiceRequest::decode(bytes.as_slice()).expect("decode");
            drop(bytes);
            let outcome = runtime
                .block_on(pipeline.export_traces(&origin, request))
                .expect("the embedded store accepts");
            assert_eq!(outcome.rejected, 0, "refused: {}", outcome.message);
        }
        // The maintenance tick, as of the end of this simulated minute.
        let tick = Instant::now();
        store.maintain(at + 60);
        maintenance += tick.elapsed();
        let done = minute + 1;
        if done == o.minutes || (o.report_every > 0 && done % o.report_every == 0) {
            let series = store.series_count();
            let heap = live_bytes() - heap0;
            let rss = rss_bytes();
            println!(
                "{done:>7} {series:>9} {:>14.0} {:>14.1} {:>12.1} {:>12.1}",
                heap as f64 / series as f64,
                heap as f64 / 1_048_576.0,
                rss as f64 / 1_048_576.0,
                (rss - rss0) as f64 / 1_048_576.0
            );
        }
    }
    println!(
        "[{:.1} s, of which maintenance {:.2} s: {:.1} ms a pass (wall time, this machine's load included)]",
        started.elapsed().as_secs_f64(),
        maintenance.as_secs_f64(),
        maintenance.as_secs_f64() * 1e3 / o.minutes as f64
    );
}
