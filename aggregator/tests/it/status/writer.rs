//! The status writer against the in-process API server: exact server-side
//! apply requests for both kinds, the change threshold, the per-object rate
//! limit, failures and restarts. The clock is injected: every pass runs at
//! an explicit unix time, so nothing here depends on timing.

use std::sync::Arc;

use crate::support::status::{
    FakeApiServer, IC, MS, RecordedPatch, eventually, watched_directory, writer_config,
    writer_config_from,
};
use serde_json::{Value, json};
use signal_aggregator::clock::Clock;
use signal_aggregator::directory::Directory;
use signal_aggregator::pipeline::activity::{Activity, track_activity};
use signal_aggregator::signal::{
    DIM_SKU, Field, FieldKey, Point, SeriesKey, SeriesPoints, SignalBatch, SignalKind,
    Value as Datum,
};
use signal_aggregator::sketch::sketch_batch_at;
use signal_aggregator::status::{PassReport, StatusWriter, WriterConfig};
use signal_aggregator::store::SketchStore;
use signal_aggregator::store::memory::{MemoryStore, MemoryStoreConfig};

/// 2027-01-15T08:00:00Z, a minute boundary.
const NOW: u64 = 1_800_000_000;

/// The writer configuration the binary builds from these flags.
struct Fixture {
    server: FakeApiServer,
    directory: Directory,
    store: Arc<dyn SketchStore>,
    activity: Activity,
    client: kube::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

fn fixed_clock(at: u64) -> Clock {
    Arc::new(move || at)
}

fn key(tenant: &str, cluster: &str, model: &str, kind: SignalKind) -> SeriesKey {
    SeriesKey {
        tenant: tenant.into(),
        cluster: cluster.into(),
        model: model.into(),
        kind,
    }
}

fn at(secs: u64, field: FieldKey, value: Datum) -> Point {
    Point {
        field,
        time_unix_nano: secs * 1_000_000_000,
        value,
    }
}

fn counter(field: Field, value: f64) -> Point {
    at(NOW - 90, FieldKey::plain(field), Datum::Counter(value))
}

fn samples(field: Field, value: f64, n: usize) -> Vec<Point> {
    (0..n)
        .map(|_| at(NOW - 90, FieldKey::plain(field), Datum::Sample(value)))
        .collect()
}

impl Fixture {
    async fn start() -> Fixture {
        let (server, url) = FakeApiServer::start().await;
        server.put(
            IC,
            json!({"metadata": {"name": "eu-west"}, "spec": {"signals": {
                "kinds": [{"name": "Cost"}, {"name": "RequestLifecycle"}, {"name": "PrefixHash"}],
                "cost": {"pricing": [{"gpu": "H100", "pricePerGpuHour": 2.5}]},
            }},
            // What function-signals sets through Crossplane.
            "status": {"signals": {"enabledKinds": ["RequestLifecycle", "PrefixHash", "Cost"]}}}),
        );
        server.put(
            IC,
            json!({"metadata": {"name": "us-east"},
            "spec": {"signals": {"kinds": [{"name": "RequestLifecycle"}]}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
        );
        server.put(
            MS,
            json!({"metadata": {"name": "chat", "namespace": "team-a"},
            "spec": {"observability": {"metrics": {"scope": "Fleet"}}}}),
        );
        server.put(
            MS,
            json!({"metadata": {"name": "other", "namespace": "team-b"},
            "spec": {"observability": {"metrics": {"scope": "PerTenant"}}}}),
        );
        let client = FakeApiServer::client(&url);
        let (directory, stop) = watched_directory(&url, |d| d.services().len() == 2).await;
        let activity = Activity::new(fixed_clock(NOW));
        let store = track_activity(
            Arc::new(MemoryStore::new(MemoryStoreConfig::default())),
            &activity,
        );
        Fixture {
            server,
            directory,
            store,
            activity,
            client,
            _stop: stop,
        }
    }

    fn writer(&self) -> StatusWriter {
        self.writer_with(writer_config())
    }

    fn writer_with(&self, config: WriterConfig) -> StatusWriter {
        StatusWriter::new(
            self.client.clone(),
            self.directory.clone(),
            self.store.clone(),
            self.activity.clone(),
            config,
        )
    }

    async fn store(&self, series: Vec<(SeriesKey, Vec<Point>)>) {
        let batch = SignalBatch {
            series: series
                .into_iter()
                .map(|(key, points)| SeriesPoints { key, points })
                .collect(),
        };
        self.store
            .merge(sketch_batch_at(&batch, NOW))
            .await
            .unwrap();
    }

    /// Two clusters of team-a/chat with known answers, plus team-b's
    /// non-opted-in service whose perfect hit rate must not reach the fleet.
    async fn store_known_fleet(&self) {
        let rl = SignalKind::RequestLifecycle;
        let mut eu = vec![
            counter(Field::Requests, 600.0),
            counter(Field::Errors, 30.0),
            counter(Field::PrefixCacheQueries, 1000.0),
            counter(Field::PrefixCacheHits, 250.0),
            counter(Field::InputTokens, 1000.0),
            counter(Field::OutputTokens, 4000.0),
        ];
        eu.extend(samples(Field::TtftSeconds, 0.2, 150));
        eu.extend(samples(Field::TpotSeconds, 0.02, 150));
        let mut us = vec![
            counter(Field::Requests, 300.0),
            counter(Field::PrefixCacheQueries, 1000.0),
            counter(Field::PrefixCacheHits, 750.0),
        ];
        us.extend(samples(Field::TtftSeconds, 0.4, 50));
        let prefixes = |range: std::ops::RangeInclusive<u64>| {
            range
                .map(|h| {
                    at(
                        NOW - 90,
                        FieldKey::plain(Field::PrefixHashes),
                        Datum::PrefixHash(h),
                    )
                })
                .collect::<Vec<_>>()
        };
        let gpu_seconds = |sku: &str, secs: f64| {
            vec![at(
                NOW - 90,
                FieldKey::with_dim(Field::GpuSeconds, DIM_SKU, sku),
                Datum::Counter(secs),
            )]
        };
        self.store(vec![
            (key("team-a", "eu-west", "chat", rl), eu),
            (key("team-a", "us-east", "team-a/chat", rl), us),
            (
                key("team-a", "eu-west", "chat", SignalKind::PrefixHash),
                prefixes(1..=100),
            ),
            (
                key("team-a", "us-east", "chat", SignalKind::PrefixHash),
                prefixes(51..=150),
            ),
            (
                key("team-a", "eu-west", "chat", SignalKind::Cost),
                gpu_seconds("H100", 7200.0),
            ),
            // No price for A100 on us-east: not counted.
            (
                key("team-a", "us-east", "chat", SignalKind::Cost),
                gpu_seconds("A100", 3600.0),
            ),
            (
                key("team-b", "eu-west", "other", rl),
                vec![
                    counter(Field::PrefixCacheQueries, 1000.0),
                    counter(Field::PrefixCacheHits, 1000.0),
                ],
            ),
        ])
        .await;
    }
}

fn patch_for<'a>(patches: &'a [RecordedPatch], path_end: &str) -> &'a RecordedPatch {
    patches
        .iter()
        .find(|p| p.path.ends_with(path_end))
        .unwrap_or_else(|| panic!("no PATCH to …{path_end}: {patches:#?}"))
}

/// Same JSON shape (keys, arrays, strings, booleans exactly); numbers within
/// 1 % (quantiles and HyperLogLog estimates are sketches).
fn assert_json_close(actual: &Value, expected: &Value, path: &str) {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => {
            let ak: Vec<_> = a.keys().collect();
            let ek: Vec<_> = e.keys().collect();
            assert_eq!(ak, ek, "keys at {path}");
            for (k, v) in e {
                assert_json_close(&a[k], v, &format!("{path}.{k}"));
            }
        }
        (Value::Array(a), Value::Array(e)) => {
            assert_eq!(a.len(), e.len(), "length at {path}");
            for (i, (x, y)) in a.iter().zip(e).enumerate() {
                assert_json_close(x, y, &format!("{path}[{i}]"));
            }
        }
        (Value::Number(a), Value::Number(e)) => {
            let (a, e) = (a.as_f64().unwrap(), e.as_f64().unwrap());
            assert!(
                (a - e).abs() <= 0.01 * e.abs().max(1e-9),
                "{path}: {a} vs {e}"
            );
        }
        _ => assert_eq!(actual, expected, "at {path}"),
    }
}

fn assert_apply_request(patch: &RecordedPatch, path: &str) {
    assert_eq!(patch.path, path);
    assert_eq!(patch.content_type, "application/apply-patch+yaml");
    let query: Vec<(&str, &str)> = patch
        .query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        query,
        vec![("fieldManager", "signal-aggregator"), ("force", "true")]
    );
}

#[tokio::test]
async fn writes_exact_status_for_both_kinds() {
    let f = Fixture::start().await;
    f.store_known_fleet().await;
    let report = f.writer().reconcile_once(NOW).await;
    assert_eq!(
        report,
        PassReport {
            written: 4,
            unchanged: 0,
            rate_limited: 0,
            failed: 0
        }
    );
    let patches = f.server.patches();
    assert_eq!(patches.len(), 4);
    assert!(
        f.server.violations().is_empty(),
        "{:?}",
        f.server.violations()
    );

    let eu = patch_for(&patches, "/inferenceclusters/eu-west/status");
    assert_apply_request(
        eu,
        "/apis/modelplane.ai/v1alpha1/inferenceclusters/eu-west/status",
    );
    assert_eq!(
        eu.body,
        json!({
            "apiVersion": "modelplane.ai/v1alpha1",
            "kind": "InferenceCluster",
            "metadata": {"name": "eu-west"},
            "status": {"signals": {
                "lastFlush": "2027-01-15T08:00:00Z",
                "droppedEvents": 0,
                "lastDatapoint": {
                    "Cost": "2027-01-15T07:59:00Z",
                    "PrefixHash": "2027-01-15T07:59:00Z",
                    "RequestLifecycle": "2027-01-15T07:59:00Z",
                },
                "agentReporting": true,
                // 2 GPU-hours of H100 at 2.5 USD, team-a's chat the only user.
                "cost": {"window": "5m", "gpuHours": 2.0, "cost": 5.0,
                         "costPerGpuHour": 2.5, "currency": "USD"},
            }},
        })
    );

    let chat = patch_for(&patches, "/namespaces/team-a/modelservices/chat/status");
    assert_apply_request(
        chat,
        "/apis/modelplane.ai/v1alpha1/namespaces/team-a/modelservices/chat/status",
    );
    assert_json_close(
        &chat.body,
        &json!({
            "apiVersion": "modelplane.ai/v1alpha1",
            "kind": "ModelService",
            "metadata": {"name": "chat", "namespace": "team-a"},
            "status": {"observability": {"metrics": {
                "window": "5m",
                "updatedAt": "2027-01-15T08:00:00Z",
                "ttftSeconds": {"p50": 0.2, "p90": 0.4, "p99": 0.4},
                "tpotSeconds": {"p50": 0.02, "p90": 0.02, "p99": 0.02},
                "requestRate": 3.0,
                "errorRate": 0.1,
                "prefixCacheHitRate": 0.5,
                // team-b's 100 % hits are not opted in: the fleet is team-a alone.
                "fleetPrefixCacheHitRate": 0.5,
                "prefixCoverage": 1.0 / 3.0,
                // 2 GPU-hours of H100 at $2.5 over 5000 tokens; unpriced A100 ignored.
                "costPerToken": 0.001,
                "clusters": [
                    {"cluster": "eu-west", "requestRate": 2.0, "errorRate": 0.1,
                     "ttftSeconds": {"p50": 0.2, "p90": 0.2, "p99": 0.2},
                     "prefixCacheHitRate": 0.25},
                    {"cluster": "us-east", "requestRate": 1.0, "errorRate": 0.0,
                     "ttftSeconds": {"p50": 0.4, "p90": 0.4, "p99": 0.4},
                     "prefixCacheHitRate": 0.75},
                ],
            }}},
        }),
        "body",
    );

    // us-east reports what arrived, enabled or not; team-b's service gets no
    // fleet figure.
    let us = patch_for(&patches, "/inferenceclusters/us-east/status");
    assert_eq!(
        us.body["status"],
        json!({"signals": {
            "lastFlush": "2027-01-15T08:00:00Z",
            "droppedEvents": 0,
            "lastDatapoint": {
                "Cost": "2027-01-15T07:59:00Z",
                "PrefixHash": "2027-01-15T07:59:00Z",
                "RequestLifecycle": "2027-01-15T07:59:00Z",
            },
            "agentReporting": true,
        }})
    );
    let other = patch_for(&patches, "/namespaces/team-b/modelservices/other/status");
    assert_json_close(
        &other.body["status"]["observability"]["metrics"],
        &json!({"window": "5m", "updatedAt": "2027-01-15T08:00:00Z",
                "requestRate": 0.0, "errorRate": 0.0, "prefixCacheHitRate": 1.0,
                "clusters": [{"cluster": "eu-west", "requestRate": 0.0, "errorRate": 0.0,
                              "prefixCacheHitRate": 1.0}]}),
        "other",
    );
    // The server kept the fields other managers own next to ours.
    let stored = f.server.object(IC, "", "us-east").unwrap();
    assert_eq!(stored["status"]["conditions"][0]["type"], "Ready");
    assert_eq!(stored["status"]["signals"]["agentReporting"], true);
    let stored = f.server.object(IC, "", "eu-west").unwrap();
    assert_eq!(
        stored["status"]["signals"]["enabledKinds"],
        json!(["RequestLifecycle", "PrefixHash", "Cost"])
    );
}

#[tokio::test]
async fn small_changes_are_suppressed_and_big_ones_written() {
    let f = Fixture::start().await;
    f.store_known_fleet().await;
    let mut writer = f.writer();
    assert_eq!(writer.reconcile_once(NOW).await.written, 4);
    f.server.take_patches();

    // Nothing new: nothing to write.
    let report = writer.reconcile_once(NOW + 31).await;
    assert_eq!(
        report,
        PassReport {
            written: 0,
            unchanged: 4,
            rate_limited: 0,
            failed: 0
        }
    );

    // +2 % requests on team-a/chat: below the 5 % threshold.
    let rl = SignalKind::RequestLifecycle;
    f.store(vec![(
        key("team-a", "eu-west", "chat", rl),
        vec![counter(Field::Requests, 18.0)],
    )])
    .await;
    let report = writer.reconcile_once(NOW + 62).await;
    assert_eq!(report.written, 0, "{report:?}");
    assert!(f.server.take_patches().is_empty());

    // +33 % requests: written, with the new rate.
    f.store(vec![(
        key("team-a", "eu-west", "chat", rl),
        vec![counter(Field::Requests, 300.0)],
    )])
    .await;
    let report = writer.reconcile_once(NOW + 93).await;
    assert_eq!(report.written, 1, "{report:?}");
    let patches = f.server.take_patches();
    assert_eq!(patches.len(), 1);
    let metrics = &patches[0].body["status"]["observability"]["metrics"];
    assert!(
        patches[0]
            .path
            .ends_with("/team-a/modelservices/chat/status")
    );
    assert!((metrics["requestRate"].as_f64().unwrap() - 1218.0 / 300.0).abs() < 1e-9);
    assert_eq!(metrics["updatedAt"], "2027-01-15T08:01:33Z");
}

#[tokio::test]
async fn each_object_is_written_at_most_once_per_interval() {
    let f = Fixture::start().await;
    f.store_known_fleet().await;
    let mut writer = f.writer();
    assert_eq!(writer.reconcile_once(NOW).await.written, 4);
    f.server.take_patches();

    let rl = SignalKind::RequestLifecycle;
    f.store(vec![(
        key("team-a", "eu-west", "chat", rl),
        vec![counter(Field::Requests, 900.0)],
    )])
    .await;
    let report = writer.reconcile_once(NOW + 10).await;
    assert_eq!(
        report,
        PassReport {
            written: 0,
            unchanged: 0,
            rate_limited: 4,
            failed: 0
        }
    );
    assert_eq!(writer.reconcile_once(NOW + 29).await.rate_limited, 4);
    assert!(f.server.take_patches().is_empty());

    let report = writer.reconcile_once(NOW + 30).await;
    assert_eq!(
        report,
        PassReport {
            written: 1,
            unchanged: 3,
            rate_limited: 0,
            failed: 0
        }
    );
    assert_eq!(f.server.take_patches().len(), 1);
}

#[tokio::test]
async fn agent_reporting_flips_on_any_change() {
    let f = Fixture::start().await;
    f.store_known_fleet().await;
    let mut writer = f.writer();
    writer.reconcile_once(NOW).await;
    f.server.take_patches();

    // Two minutes and a bit without data: eu-west's agent stopped reporting.
    writer.reconcile_once(NOW + 121).await;
    let patches = f.server.take_patches();
    let eu = patch_for(&patches, "/inferenceclusters/eu-west/status");
    assert_eq!(eu.body["status"]["signals"]["agentReporting"], false);
    assert_eq!(
        eu.body["status"]["signals"]["lastFlush"],
        "2027-01-15T08:00:00Z"
    );
}

/// function-signals owns `enabledKinds`: by default a kinds change writes
/// nothing; with `--status-enabled-kinds` (no function) it is written.
#[tokio::test]
async fn enabled_kinds_are_written_only_when_asked() {
    for (flags, expect_write) in [(&[][..], false), (&["--status-enabled-kinds"][..], true)] {
        let f = Fixture::start().await;
        let mut writer = f.writer_with(writer_config_from(flags));
        writer.reconcile_once(NOW).await;
        let first = f.server.take_patches();
        let us = patch_for(&first, "/inferenceclusters/us-east/status");
        assert_eq!(
            us.body["status"]["signals"].get("enabledKinds").cloned(),
            expect_write.then(|| json!(["RequestLifecycle"])),
            "{flags:?}"
        );

        f.server.put(
            IC,
            json!({"metadata": {"name": "us-east"},
                "spec": {"signals": {"kinds": [{"name": "Capacity"}, {"name": "RequestLifecycle"}]}}}),
        );
        eventually("the new kinds are in the directory", || {
            f.directory.cluster("us-east").unwrap().enabled_kinds.len() == 2
        })
        .await;
        let report = writer.reconcile_once(NOW + 31).await;
        let patches = f.server.take_patches();
        if expect_write {
            assert_eq!(report.written, 1, "{report:?}");
            let us = patch_for(&patches, "/inferenceclusters/us-east/status");
            // SignalKind::ALL order, exactly as function-signals writes it.
            assert_eq!(
                us.body["status"]["signals"]["enabledKinds"],
                json!(["RequestLifecycle", "Capacity"])
            );
        } else {
            assert_eq!(report.written, 0, "{report:?}");
            assert!(patches.is_empty(), "{patches:#?}");
        }
    }
}

#[tokio::test]
async fn failed_writes_are_retried_after_the_interval() {
    let f = Fixture::start().await;
    f.store_known_fleet().await;
    let mut writer = f.writer();
    f.server.fail_patches_with(Some(500));
    let report = writer.reconcile_once(NOW).await;
    assert_eq!(
        report,
        PassReport {
            written: 0,
            unchanged: 0,
            rate_limited: 0,
            failed: 4
        }
    );
    f.server.fail_patches_with(None);
    assert_eq!(writer.reconcile_once(NOW + 5).await.rate_limited, 4);
    assert_eq!(writer.reconcile_once(NOW + 30).await.written, 4);
}

#[tokio::test]
async fn a_restarted_writer_does_not_rewrite_what_is_already_there() {
    let f = Fixture::start().await;
    f.store_known_fleet().await;
    f.writer().reconcile_once(NOW).await;
    eventually("the written status is observed through the watch", || {
        f.directory
            .service("team-a", "chat")
            .is_some_and(|s| s.observed_metrics.is_some())
            && f.directory
                .clusters()
                .iter()
                .all(|c| c.observed_status.is_some())
    })
    .await;
    f.server.take_patches();

    // A new process: no activity seen yet, last-written state unknown.
    let fresh = StatusWriter::new(
        f.client.clone(),
        f.directory.clone(),
        f.store.clone(),
        Activity::new(fixed_clock(NOW + 1)),
        writer_config(),
    );
    let mut fresh = fresh;
    let report = fresh.reconcile_once(NOW + 1).await;
    // The clusters' agents have not reported to this process yet (reporting
    // flips to false: a real change); the services' numbers are the same.
    assert_eq!(
        report,
        PassReport {
            written: 2,
            unchanged: 2,
            rate_limited: 0,
            failed: 0
        }
    );
    let patches = f.server.take_patches();
    let eu = patch_for(&patches, "/inferenceclusters/eu-west/status");
    // What this process has not seen is carried over, not erased.
    assert_eq!(
        eu.body["status"]["signals"]["lastFlush"],
        "2027-01-15T08:00:00Z"
    );
    assert_eq!(
        eu.body["status"]["signals"]["lastDatapoint"]["Cost"],
        "2027-01-15T07:59:00Z"
    );
    assert_eq!(eu.body["status"]["signals"]["agentReporting"], false);
}

/// A cluster whose agents report GPU counts (Capacity) but no GPU time:
/// GPU-hours are the mean count over the window; unpriced SKUs count as
/// GPU-hours but not toward $/GPU-hour.
#[tokio::test]
async fn cluster_cost_from_capacity_and_pricing() {
    let f = Fixture::start().await;
    f.server.put(
        IC,
        json!({"metadata": {"name": "ap-south"}, "spec": {"signals": {
            "kinds": [{"name": "Capacity"}, {"name": "Cost"}],
            "cost": {"pricing": [{"gpu": "A100", "pricePerGpuHour": 1.5, "currency": "EUR"}]},
        }}}),
    );
    eventually("ap-south is in the directory", || {
        f.directory.cluster("ap-south").is_some()
    })
    .await;
    let gauge = |sku: &str, value: f64, secs: u64| {
        at(
            secs,
            FieldKey::with_dim(Field::Gpus, DIM_SKU, sku),
            Datum::Gauge(value),
        )
    };
    f.store(vec![(
        key("infra", "ap-south", "", SignalKind::Capacity),
        vec![
            gauge("A100", 8.0, NOW - 150),
            gauge("A100", 8.0, NOW - 90),
            gauge("L4", 4.0, NOW - 90),
        ],
    )])
    .await;
    f.writer().reconcile_once(NOW).await;
    let patches = f.server.patches();
    let ap = patch_for(&patches, "/inferenceclusters/ap-south/status");
    // A100: 8 GPUs × 300 s = 2/3 h at 1.5 EUR; L4: 4 × 300 s = 1/3 h, unpriced.
    assert_json_close(
        &ap.body["status"]["signals"]["cost"],
        &json!({"window": "5m", "gpuHours": 1.0, "cost": 1.0,
                "costPerGpuHour": 1.5, "currency": "EUR"}),
        "cost",
    );
    // No pricing, no cost block.
    let us = patch_for(&patches, "/inferenceclusters/us-east/status");
    assert!(us.body["status"]["signals"].get("cost").is_none());
}
