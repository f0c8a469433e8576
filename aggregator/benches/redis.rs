//! The Redis store against a real redis-server on this machine.
//!
//! ```text
//! cargo bench -p signal-aggregator --bench redis
//! ```
//!
//! - `redis_ingest_spans`: OTLP span exports (1,000 spans each, 8 in flight)
//!   through normalize → sketch → store, embedded vs Redis in the same run; an
//!   iteration ends when Redis has everything (`flush()`), so the write-ahead
//!   log's fsyncs and the flushes are inside the time.
//! - `redis_query`: a 5-minute RequestLifecycle query over 1,000 series, and a
//!   30-day query (hours + recent minutes) over 50 series.
//! - `redis_concurrent_writers`: the replica write strategy, measured: W
//!   replicas flushing the same hot windows by (a) WATCH/MULTI read-merge-write
//!   versus (b) the store's atomic frame append.
//!
//! Before criterion runs, the bench prints Redis memory per series-day from
//! `INFO memory` deltas, and the retention math for the issue's fleet.

// The tests' redis-server runner; the bench uses only part of it.
#[allow(dead_code)]
#[path = "../tests/it/support/redis.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use otlp_test_kit::synthetic::{FleetShape, SpanGenerator, SplitMix64};
use otlp_test_kit::unix_nanos;
use signal_aggregator::normalize::{NormalizeConfig, Normalizer};
use signal_aggregator::pipeline::{ExportSink, Pipeline};
use signal_aggregator::signal::{Field, FieldKey, Origin, Point, SeriesKey, SignalKind, Value};
use signal_aggregator::sketch::{Resolution, SeriesSketch, Window, WindowedSketch};
use signal_aggregator::store::memory::{MemoryStore, MemoryStoreConfig};
use signal_aggregator::store::redis::{
    RedisStore, RedisStoreConfig, merge_value, split_frames, window_key,
};
use signal_aggregator::store::{SketchStore, StoreQuery};
use signal_aggregator::telemetry::SelfMetrics;
use support::{RedisNode, now_secs};

const BATCH: usize = 1_000;
const REQUESTS_PER_ITER: usize = 32;
const IN_FLIGHT: usize = 8;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn redis_config(url: &str, wal: &std::path::Path) -> RedisStoreConfig {
    RedisStoreConfig {
        buffer_bytes: 4 << 30,
        ..RedisStoreConfig::new(url, wal)
    }
}

/// A realistic RequestLifecycle minute: `requests` requests with lognormal
/// latencies and token counts.
fn lifecycle_minute(
    rng: &mut SplitMix64,
    key: &SeriesKey,
    start: u64,
    requests: u64,
) -> WindowedSketch {
    let mut sketch = SeriesSketch::default();
    let t = (start + 1) * 1_000_000_000;
    for _ in 0..requests {
        let values = [
            (Field::Requests, Value::Counter(1.0)),
            (Field::InputTokens, Value::Counter(rng.below(4_000) as f64)),
            (Field::OutputTokens, Value::Counter(rng.below(800) as f64)),
            (Field::TtftSeconds, Value::Sample(rng.lognormal(0.2, 0.6))),
            (Field::TpotSeconds, Value::Sample(rng.lognormal(0.03, 0.4))),
            (Field::E2eSeconds, Value::Sample(rng.lognormal(4.0, 0.7))),
            (Field::QueueSeconds, Value::Sample(rng.lognormal(0.05, 1.0))),
        ];
        for (field, value) in values {
            sketch.record(&Point {
                field: FieldKey::plain(field),
                time_unix_nano: t,
                value,
            });
        }
    }
    WindowedSketch {
        key: key.clone(),
        window: Window {
            resolution: Resolution::Minute,
            start_unix_secs: start,
        },
        sketch,
    }
}

fn bench_series(n: usize) -> Vec<SeriesKey> {
    (0..n)
        .map(|i| SeriesKey {
            tenant: "bench-tenant".into(),
            cluster: format!("cluster-{:02}", i / 20),
            model: format!("model-{:02}", i % 20),
            kind: SignalKind::RequestLifecycle,
        })
        .collect()
}

fn minute_start(ago_minutes: u64) -> u64 {
    let t = now_secs() - ago_minutes * 60;
    t - t % 60
}

async fn export_concurrently(
    sink: Arc<Pipeline>,
    requests: Vec<opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest>,
) {
    let queue = Arc::new(parking_lot::Mutex::new(requests));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..IN_FLIGHT {
        let (sink, queue) = (sink.clone(), queue.clone());
        tasks.spawn(async move {
            loop {
                let next = queue.lock().pop();
                let Some(request) = next else { break };
                let outcome = sink
                    .export_traces(&Origin::default(), request)
                    .await
                    .expect("accepted");
                assert_eq!(outcome.rejected, 0, "{}", outcome.message);
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

fn ingest(c: &mut Criterion, redis: &RedisNode, tmp: &std::path::Path) {
    let rt = runtime();
    let metrics = Arc::new(SelfMetrics::default());
    let memory: Arc<MemoryStore> = Arc::new(MemoryStore::new(MemoryStoreConfig::default()));
    let redis_store = Arc::new(rt.block_on(async {
        RedisStore::open(
            redis_config(&redis.url(), &tmp.join("wal-ingest")),
            metrics.clone(),
        )
        .unwrap()
    }));
    let shape = FleetShape {
        tenants: 4,
        clusters: 10,
        models: 25,
    };
    let mut generator = SpanGenerator::new(7, shape);
    let mut group = c.benchmark_group("redis_ingest_spans");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements((BATCH * REQUESTS_PER_ITER) as u64));
    for (name, store) in [
        ("embedded", memory.clone() as Arc<dyn SketchStore>),
        ("redis", redis_store.clone() as Arc<dyn SketchStore>),
    ] {
        let sink = Arc::new(Pipeline::new(
            Normalizer::new(NormalizeConfig::default()),
            store,
            metrics.clone(),
        ));
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let now = unix_nanos();
                    let requests: Vec<_> = (0..REQUESTS_PER_ITER)
                        .map(|_| generator.batch(BATCH, now))
                        .collect();
                    let started = Instant::now();
                    rt.block_on(async {
                        export_concurrently(sink.clone(), requests).await;
                        if name == "redis" {
                            redis_store.flush().await.expect("flushed");
                        }
                    });
                    total += started.elapsed();
                }
                total
            })
        });
    }
    group.finish();
}

/// `minutes` minute windows per series ending with the minute of `now`,
/// one batch per minute (fixed seed: every store gets the same data).
fn recent_minutes(series: &[SeriesKey], minutes: u64, now: u64) -> Vec<Vec<WindowedSketch>> {
    let mut rng = SplitMix64::new(11);
    (0..minutes)
        .map(|ago| {
            let start = (now - now % 60) - ago * 60;
            series
                .iter()
                .map(|k| lifecycle_minute(&mut rng, k, start, 60))
                .collect()
        })
        .collect()
}

fn seed_recent(
    rt: &tokio::runtime::Runtime,
    store: &RedisStore,
    series: &[SeriesKey],
    minutes: u64,
    now: u64,
) {
    rt.block_on(async {
        for batch in recent_minutes(series, minutes, now) {
            store.merge(batch).await.unwrap();
        }
        store.flush().await.unwrap();
    });
}

fn seed_hours(rt: &tokio::runtime::Runtime, store: &RedisStore, series: &[SeriesKey], hours: u64) {
    let mut rng = SplitMix64::new(12);
    let this_hour = now_secs() - now_secs() % 3_600;
    rt.block_on(async {
        for h in 3..hours + 3 {
            // One busy minute per hour stands in for the hour's traffic; the
            // hour key holds it as a single compacted frame either way.
            let batch: Vec<_> = series
                .iter()
                .map(|k| lifecycle_minute(&mut rng, k, this_hour - h * 3_600, 3_600))
                .collect();
            store.merge(batch).await.unwrap();
            if h % 24 == 0 {
                store.flush().await.unwrap();
            }
        }
        store.flush().await.unwrap();
    });
}

fn query(c: &mut Criterion, redis: &RedisNode, tmp: &std::path::Path) {
    let rt = runtime();
    let store = rt.block_on(async {
        RedisStore::open(
            redis_config(&redis.url(), &tmp.join("wal-query")),
            Arc::new(SelfMetrics::default()),
        )
        .unwrap()
    });
    // The query ends one second after `now`: its 5 minutes touch the 6
    // minute windows seeded, every one of them holding data.
    let now = now_secs();
    let series = bench_series(1_000);
    seed_recent(&rt, &store, &series, 6, now);
    let embedded = MemoryStore::new(MemoryStoreConfig::default());
    for batch in recent_minutes(&series, 6, now) {
        rt.block_on(embedded.merge(batch)).unwrap();
    }
    let month_series = &series[..50];
    seed_hours(&rt, &store, month_series, 30 * 24);
    let five_minutes = StoreQuery {
        tenant: Some("bench-tenant".into()),
        kind: SignalKind::RequestLifecycle,
        cluster: None,
        model: None,
        from_unix_secs: now + 1 - 300,
        to_unix_secs: now + 1,
    };
    let answer = rt.block_on(store.query(&five_minutes)).unwrap();
    assert_eq!(answer.len(), 1_000);
    assert_eq!(answer, rt.block_on(embedded.query(&five_minutes)).unwrap());
    let month = StoreQuery {
        cluster: Some("cluster-00".into()),
        from_unix_secs: now - 30 * 86_400,
        ..five_minutes.clone()
    };
    let month_answer = rt.block_on(store.query(&month)).unwrap();
    assert_eq!(month_answer.len(), 20);
    let before = QueryBefore::seed(&rt, redis, &series, &five_minutes);
    let mut group = c.benchmark_group("redis_query");
    group.sample_size(20);
    group.bench_function("5m_request_lifecycle_1000_series", |b| {
        b.iter(|| rt.block_on(store.query(&five_minutes)).unwrap())
    });
    group.bench_function("5m_before/encoding_1_data", |b| {
        b.iter(|| rt.block_on(before.run(&before.encoding_1_series)))
    });
    group.bench_function("5m_before/current_data", |b| {
        b.iter(|| rt.block_on(before.run(&series)))
    });
    group.bench_function("5m_embedded_store", |b| {
        b.iter(|| rt.block_on(embedded.query(&five_minutes)).unwrap())
    });
    group.bench_function("30d_request_lifecycle_20_series", |b| {
        b.iter(|| rt.block_on(store.query(&month)).unwrap())
    });
    query_parts(&mut group, &rt, redis, &series, &five_minutes);
    group.finish();
    // The same three queries again, interleaved: on a shared, noisy machine
    // their ratios are then measured under the same load.
    interleaved_medians(
        "5-minute query, 1,000 series, interleaved",
        &mut [
            ("redis store", &mut || {
                rt.block_on(store.query(&five_minutes)).unwrap();
            }),
            ("before (encoding 1 data)", &mut || {
                rt.block_on(before.run(&before.encoding_1_series));
            }),
            ("embedded store", &mut || {
                rt.block_on(embedded.query(&five_minutes)).unwrap();
            }),
        ],
    );
}

/// Runs the candidates round-robin and prints each one's median, quartiles
/// and its ratio to the first candidate.
fn interleaved_medians(title: &str, candidates: &mut [(&str, &mut dyn FnMut())]) {
    const ROUNDS: usize = 100;
    let mut times = vec![Vec::with_capacity(ROUNDS); candidates.len()];
    for round in 0..ROUNDS + 5 {
        for ((_, run), times) in candidates.iter_mut().zip(&mut times) {
            let started = Instant::now();
            run();
            if round >= 5 {
                times.push(started.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    let quartiles: Vec<[f64; 3]> = times
        .iter_mut()
        .map(|t| {
            t.sort_by(f64::total_cmp);
            [t[t.len() / 4], t[t.len() / 2], t[3 * t.len() / 4]]
        })
        .collect();
    println!("{title} ({ROUNDS} rounds)");
    println!("| candidate | median | p25-p75 | vs {} |", candidates[0].0);
    println!("|---|---|---|---|");
    for ((name, _), [p25, median, p75]) in candidates.iter().zip(&quartiles) {
        println!(
            "| {name} | {median:.2} ms | {p25:.2}-{p75:.2} ms | {:.2} |",
            median / quartiles[0][1]
        );
    }
}

/// The 5-minute query as the store ran it before it was optimised
/// (`git show fdcd30c:aggregator/src/store/redis/query.rs`): MGETs of 2,048
/// keys one after another, each chunk's values decoded and merged
/// (`SeriesSketch::decode` then `merge`, per frame) on the blocking pool
/// while the next MGET runs. Run on a copy of the data in sketch encoding 1,
/// as stored then, and on the current data.
struct QueryBefore {
    conn: redis::aio::MultiplexedConnection,
    minutes: Vec<u64>,
    encoding_1_series: Vec<SeriesKey>,
}

impl QueryBefore {
    fn seed(
        rt: &tokio::runtime::Runtime,
        redis: &RedisNode,
        series: &[SeriesKey],
        query: &StoreQuery,
    ) -> QueryBefore {
        let first = query.from_unix_secs - query.from_unix_secs % 60;
        let minutes: Vec<u64> = (first..query.to_unix_secs).step_by(60).collect();
        let client = redis::Client::open(redis.url()).unwrap();
        let mut conn = rt
            .block_on(client.get_multiplexed_async_connection())
            .unwrap();
        let encoding_1_series: Vec<SeriesKey> = series
            .iter()
            .map(|s| SeriesKey {
                tenant: "bench-tenant-encoding-1".into(),
                ..s.clone()
            })
            .collect();
        rt.block_on(async {
            for (current, old) in series.iter().zip(&encoding_1_series) {
                let keys: Vec<String> = minutes
                    .iter()
                    .map(|m| window_key(current, Resolution::Minute, *m))
                    .collect();
                let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
                    .arg(&keys)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                let mut pipe = redis::pipe();
                for (minute, value) in minutes.iter().zip(values) {
                    let value = value.expect("every minute seeded");
                    pipe.cmd("SET")
                        .arg(window_key(old, Resolution::Minute, *minute))
                        .arg(encoding_1_value(&value))
                        .ignore();
                }
                let _: () = pipe.query_async(&mut conn).await.unwrap();
            }
        });
        QueryBefore {
            conn,
            minutes,
            encoding_1_series,
        }
    }

    async fn run(&self, series: &[SeriesKey]) -> Vec<(SeriesKey, SeriesSketch)> {
        let mut conn = self.conn.clone();
        let windows = self.minutes.len();
        let mut decoding = Vec::new();
        for chunk in series.chunks(2_048 / windows) {
            let keys: Vec<String> = chunk
                .iter()
                .flat_map(|s| {
                    self.minutes
                        .iter()
                        .map(move |m| window_key(s, Resolution::Minute, *m))
                })
                .collect();
            let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
                .arg(&keys)
                .query_async(&mut conn)
                .await
                .unwrap();
            let chunk = chunk.to_vec();
            decoding.push(tokio::task::spawn_blocking(move || {
                let mut out = Vec::with_capacity(chunk.len());
                for (key, values) in chunk.into_iter().zip(values.chunks(windows)) {
                    let mut merged: Option<SeriesSketch> = None;
                    for value in values.iter().flatten() {
                        for frame in split_frames(value).unwrap() {
                            let sketch = SeriesSketch::decode(frame).unwrap();
                            match &mut merged {
                                None => merged = Some(sketch),
                                Some(acc) => acc.merge(&sketch).unwrap(),
                            }
                        }
                    }
                    out.extend(merged.map(|m| (key, m)));
                }
                out
            }));
        }
        let mut out = Vec::with_capacity(series.len());
        for handle in decoding {
            out.extend(handle.await.unwrap());
        }
        assert_eq!(out.len(), series.len());
        out
    }
}

/// A window value with every frame re-encoded in sketch encoding 1.
fn encoding_1_value(value: &[u8]) -> Vec<u8> {
    let frames = split_frames(value).unwrap();
    let mut out = value[..5].to_vec();
    for frame in frames {
        let old = SeriesSketch::decode(frame)
            .unwrap()
            .encode_version(1)
            .unwrap();
        out.extend_from_slice(&(old.len() as u32).to_be_bytes());
        out.extend_from_slice(&old);
    }
    out
}

/// The 5-minute query taken apart, measured in the same run: the MGETs alone
/// (bytes only) and decode + merge alone on one core.
fn query_parts(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &tokio::runtime::Runtime,
    redis: &RedisNode,
    series: &[SeriesKey],
    five_minutes: &StoreQuery,
) {
    let first = five_minutes.from_unix_secs - five_minutes.from_unix_secs % 60;
    let minutes: Vec<u64> = (first..five_minutes.to_unix_secs).step_by(60).collect();
    let window_keys: Vec<String> = series
        .iter()
        .flat_map(|s| {
            minutes
                .iter()
                .map(move |m| window_key(s, Resolution::Minute, *m))
        })
        .collect();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = rt
        .block_on(client.get_multiplexed_async_connection())
        .unwrap();
    let per_chunk = (2_048 / minutes.len()) * minutes.len();
    let fetch = |conn: &mut redis::aio::MultiplexedConnection| {
        rt.block_on(async {
            let mut all: Vec<Option<Vec<u8>>> = Vec::with_capacity(window_keys.len());
            for chunk in window_keys.chunks(per_chunk) {
                let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
                    .arg(chunk)
                    .query_async(conn)
                    .await
                    .unwrap();
                all.extend(values);
            }
            all
        })
    };
    let values = fetch(&mut conn);
    let bytes: usize = values.iter().flatten().map(Vec::len).sum();
    let present = values.iter().flatten().count();
    println!(
        "5m query reads {} keys ({present} present), {bytes} value bytes ({} B per value)",
        values.len(),
        bytes / present.max(1)
    );
    redis.cli(&["CONFIG", "RESETSTAT"]);
    group.bench_function("5m_parts/mget_bytes_only", |b| b.iter(|| fetch(&mut conn)));
    let stats = redis.cli(&["INFO", "commandstats"]);
    let server_micros = stats
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_mget:"))
        .and_then(|l| {
            l.split(',')
                .find_map(|kv| kv.strip_prefix("usec_per_call="))
        })
        .unwrap_or("(not measured)");
    println!("5m query: redis-server spends {server_micros} µs per MGET of {per_chunk} keys");
    let merge_all = |merge_frame: fn(&mut SeriesSketch, &[u8])| {
        values
            .chunks(minutes.len())
            .map(|windows| {
                let mut merged = SeriesSketch::default();
                for value in windows.iter().flatten() {
                    for frame in split_frames(value).unwrap() {
                        merge_frame(&mut merged, frame);
                    }
                }
                merged
            })
            .collect::<Vec<_>>()
    };
    let decode_then_merge: fn(&mut SeriesSketch, &[u8]) =
        |acc, frame| acc.merge(&SeriesSketch::decode(frame).unwrap()).unwrap();
    let merge_encoded: fn(&mut SeriesSketch, &[u8]) =
        |acc, frame| acc.merge_encoded(frame).unwrap();
    assert_eq!(merge_all(decode_then_merge), merge_all(merge_encoded));
    group.bench_function("5m_parts/decode_then_merge_one_core", |b| {
        b.iter(|| merge_all(decode_then_merge))
    });
    group.bench_function("5m_parts/merge_encoded_one_core", |b| {
        b.iter(|| merge_all(merge_encoded))
    });
}

/// Redis bytes per hour key and per minute key of a realistic series, from
/// `INFO memory` deltas, and what 30 days of a fleet needs.
fn memory_report(redis: &RedisNode, tmp: &std::path::Path) {
    let rt = runtime();
    let store = rt.block_on(async {
        RedisStore::open(
            redis_config(&redis.url(), &tmp.join("wal-memory")),
            Arc::new(SelfMetrics::default()),
        )
        .unwrap()
    });
    redis.cli(&["FLUSHALL"]);
    let used = || -> f64 {
        let info = redis.cli(&["INFO", "memory"]);
        info.lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("used_memory")
    };
    let series: Vec<SeriesKey> = bench_series(200)
        .into_iter()
        .map(|k| SeriesKey {
            tenant: "memory-tenant".into(),
            ..k
        })
        .collect();
    let base = used();
    seed_hours(&rt, &store, &series, 24);
    let after_hours = used();
    // Only minute keys: recent minutes whose hour keys already exist (same hour
    // windows), so the delta is the minute keys plus the hour frames they add.
    let hour_keys_before = redis.cli(&["EVAL", "return #redis.call('KEYS','*:h:*')", "0"]);
    seed_recent(&rt, &store, &series, 60, now_secs());
    let after_minutes = used();
    let hour_keys_after = redis.cli(&["EVAL", "return #redis.call('KEYS','*:h:*')", "0"]);
    let minute_keys: f64 = redis
        .cli(&["EVAL", "return #redis.call('KEYS','*:m:*')", "0"])
        .parse()
        .unwrap();
    let per_hour_key = (after_hours - base) / (series.len() as f64 * 24.0);
    let new_hour_keys: f64 =
        hour_keys_after.parse::<f64>().unwrap() - hour_keys_before.parse::<f64>().unwrap();
    let per_minute_key = (after_minutes - after_hours - new_hour_keys * per_hour_key) / minute_keys;
    // One series-day at steady state: 24 hour keys, plus (for the latest day
    // only) the minute keys of the roll-up age (2 h + 10 min of slack).
    let series_day = 24.0 * per_hour_key;
    let live_minutes = 130.0 * per_minute_key;
    let fleet_series = 50.0 * 200.0 * 6.0;
    let month = fleet_series * (30.0 * series_day + live_minutes);
    println!(
        "redis memory: {per_hour_key:.0} B per hour key, {per_minute_key:.0} B per minute key (RequestLifecycle, 3,600 / 60 requests per window)"
    );
    println!(
        "redis memory: {series_day:.0} B per series-day (hour keys) + {live_minutes:.0} B of live minute keys per active series"
    );
    println!(
        "retention math: 50 clusters x 200 models x 6 signals = {fleet_series:.0} series; 30 days = {:.1} GiB",
        month / (1u64 << 30) as f64
    );
    let hour_key = window_key(
        &series[0],
        Resolution::Hour,
        now_secs() - now_secs() % 3_600 - 3 * 3_600,
    );
    let value = redis.cli(&["STRLEN", &hour_key]);
    println!("one hour key value: {value} bytes ({hour_key})");
    let _ = merge_value; // (frames are merged by the store; kept exported for tools)
    redis.cli(&["FLUSHALL"]);
}

/// (a) WATCH/MULTI read-merge-write per key vs (b) atomic frame append (the
/// store), with `writers` replicas flushing the same 200 hot windows.
fn concurrent_writers(c: &mut Criterion, redis: &RedisNode, tmp: &std::path::Path) {
    let rt = runtime();
    let series = bench_series(200);
    let mut rng = SplitMix64::new(5);
    let deltas: Vec<WindowedSketch> = series
        .iter()
        .map(|k| lifecycle_minute(&mut rng, k, minute_start(0), 20))
        .collect();
    let mut group = c.benchmark_group("redis_concurrent_writers");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(series.len() as u64));
    let conflicts = Arc::new(AtomicU64::new(0));
    for writers in [1usize, 2, 4] {
        let stores: Vec<Arc<RedisStore>> = (0..writers)
            .map(|w| {
                Arc::new(rt.block_on(async {
                    RedisStore::open(
                        redis_config(
                            &redis.url(),
                            &tmp.join(format!("wal-writers-{writers}-{w}")),
                        ),
                        Arc::new(SelfMetrics::default()),
                    )
                    .unwrap()
                }))
            })
            .collect();
        group.bench_function(format!("append_frames/{writers}_replicas"), |b| {
            b.iter_custom(|iters| {
                let started = Instant::now();
                rt.block_on(async {
                    let mut tasks = tokio::task::JoinSet::new();
                    for store in &stores {
                        let (store, deltas) = (store.clone(), deltas.clone());
                        tasks.spawn(async move {
                            for _ in 0..iters {
                                store.merge(deltas.clone()).await.unwrap();
                                store.flush().await.unwrap();
                            }
                        });
                    }
                    while tasks.join_next().await.is_some() {}
                });
                started.elapsed() / writers as u32
            })
        });
        let clients: Vec<redis::Client> = (0..writers)
            .map(|_| redis::Client::open(redis.url()).unwrap())
            .collect();
        group.bench_function(format!("watch_multi/{writers}_replicas"), |b| {
            b.iter_custom(|iters| {
                let started = Instant::now();
                rt.block_on(async {
                    let mut tasks = tokio::task::JoinSet::new();
                    for client in &clients {
                        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
                        let (deltas, conflicts) = (deltas.clone(), conflicts.clone());
                        tasks.spawn(async move {
                            for _ in 0..iters {
                                while !watch_multi_flush(&mut conn, &deltas).await {
                                    conflicts.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        });
                    }
                    while tasks.join_next().await.is_some() {}
                });
                started.elapsed() / writers as u32
            })
        });
    }
    group.finish();
    println!(
        "watch_multi: {} transactions aborted by a concurrent writer and retried",
        conflicts.load(Ordering::Relaxed)
    );
}

/// One replica's flush done as read-merge-write under WATCH: returns false when
/// another writer touched a watched key (EXEC aborted) and the caller retries.
async fn watch_multi_flush(
    conn: &mut redis::aio::MultiplexedConnection,
    deltas: &[WindowedSketch],
) -> bool {
    let keys: Vec<String> = deltas
        .iter()
        .map(|d| {
            format!(
                "watchbench:{{{}}}:{}:{}:{}",
                d.key.tenant, d.key.cluster, d.key.model, d.window.start_unix_secs
            )
        })
        .collect();
    let _: () = redis::cmd("WATCH")
        .arg(&keys)
        .query_async(conn)
        .await
        .unwrap();
    let current: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
        .arg(&keys)
        .query_async(conn)
        .await
        .unwrap();
    let mut pipe = redis::pipe();
    pipe.atomic();
    for ((key, delta), stored) in keys.iter().zip(deltas).zip(current) {
        let mut merged = match stored {
            Some(bytes) => SeriesSketch::decode(&bytes).unwrap(),
            None => SeriesSketch::default(),
        };
        merged.merge(&delta.sketch).unwrap();
        pipe.cmd("SET").arg(key).arg(merged.encode()).ignore();
    }
    let result: Option<()> = pipe.query_async(conn).await.unwrap();
    result.is_some()
}

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = RedisNode::start(tmp.path(), false, &[]);
    memory_report(&redis, tmp.path());
    let mut c = Criterion::default().configure_from_args();
    ingest(&mut c, &redis, tmp.path());
    query(&mut c, &redis, tmp.path());
    concurrent_writers(&mut c, &redis, tmp.path());
    c.final_summary();
}
