//! Several aggregator replicas on one real `redis-server` write the same
//! InferenceCluster `status.signals`, whichever replica a cluster's agent
//! stream lands on: cluster activity (last flush, newest datapoint per kind,
//! dropped items) is merged in Redis (`status::shared`). Each replica is a
//! real Redis store behind the activity decorator and a status writer
//! against its own in-process API server, so each replica's PATCH bodies can
//! be compared exactly.

use std::sync::Arc;
use std::time::Duration;

use crate::support::redis::{RedisCluster, RedisNode, lifecycle, now_secs, series};
use crate::support::status::{
    FakeApiServer, IC, cluster_signals_written, eventually, watched_directory, writer_config,
};
use serde_json::{Value, json};
use signal_aggregator::clock::{Clock, rfc3339};
use signal_aggregator::pipeline::activity::{
    Activity, ClusterActivity, DroppedOnXr, track_activity,
};
use signal_aggregator::pipeline::shared_activity::SharedActivity;
use signal_aggregator::signal::{Field, FieldKey, Point, SignalKind, Value as PointValue};
use signal_aggregator::sketch::WindowedSketch;
use signal_aggregator::status::StatusWriter;
use signal_aggregator::store::SketchStore;
use signal_aggregator::store::redis::{RedisStore, RedisStoreConfig, RedisUrl};
use signal_aggregator::telemetry::SelfMetrics;

/// eu-west shows 10 dropped events from before; us-east is new.
const EU_BEFORE: u64 = 10;

struct Replica {
    activity: Activity,
    store: Arc<dyn SketchStore>,
    redis: Arc<RedisStore>,
    server: FakeApiServer,
    server_url: String,
    writer: StatusWriter,
    _wal: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Replica {
    /// A replica writing status to a new API server holding the two XRs.
    async fn start(redis_url: &str, now: u64) -> Replica {
        let (server, url) = FakeApiServer::start().await;
        for (name, status) in [
            ("eu-west", json!({"signals": {"droppedEvents": EU_BEFORE}})),
            ("us-east", json!({})),
        ] {
            server.put(
                IC,
                json!({"metadata": {"name": name},
                       "spec": {"signals": {"kinds": [{"name": "RequestLifecycle"}]}},
                       "status": status}),
            );
        }
        Replica::on_server(redis_url, now, server, &url).await
    }

    /// A replica (a new process) writing status to `server`.
    async fn on_server(redis_url: &str, now: u64, server: FakeApiServer, url: &str) -> Replica {
        let wal = tempfile::tempdir().unwrap();
        let redis = Arc::new(
            RedisStore::open(
                RedisStoreConfig::new(redis_url, wal.path()),
                Arc::new(SelfMetrics::default()),
            )
            .unwrap(),
        );
        let clock: Clock = Arc::new(move || now);
        let activity = Activity::new(clock)
            .shared_through(SharedActivity::through(redis.replica_link().unwrap()));
        let store = track_activity(redis.clone(), &activity);

        let client = FakeApiServer::client(url);
        let (directory, stop) = watched_directory(url, |d| d.clusters().len() == 2).await;
        let writer = StatusWriter::new(
            client,
            directory,
            store.clone(),
            activity.clone(),
            writer_config(),
        );
        Replica {
            activity,
            store,
            redis,
            server,
            server_url: url.to_string(),
            writer,
            _wal: wal,
            _stop: stop,
        }
    }

    fn shared(&self) -> &SharedActivity {
        self.activity.shared().unwrap()
    }

    /// Stores `requests` requests of `cluster` in the minute starting at
    /// `minute`, plus `invalid` TTFT samples the sketch refuses (dropped).
    async fn receive(&self, cluster: &str, minute: u64, requests: u64, invalid: u64) {
        let mut windowed: WindowedSketch =
            lifecycle(&series("team-a", cluster, "llama"), minute, requests, 5);
        for _ in 0..invalid {
            windowed.sketch.record(&Point {
                field: FieldKey::plain(Field::TtftSeconds),
                time_unix_nano: (minute + 1) * 1_000_000_000,
                value: PointValue::Sample(f64::NAN),
            });
        }
        assert_eq!(windowed.sketch.rejected_points(), invalid);
        self.store.merge(vec![windowed]).await.unwrap();
    }

    /// The `status.signals` each InferenceCluster got in one pass at `now`.
    async fn written(&mut self, now: u64) -> Vec<(String, Value)> {
        cluster_signals_written(&mut self.writer, &self.server, now).await
    }
}

/// An XR showing `dropped` since this process first saw it.
fn on_xr(cluster: &str, dropped: u64) -> DroppedOnXr {
    DroppedOnXr {
        cluster: cluster.into(),
        at_first_sight: dropped,
        now: dropped,
    }
}

fn minute_of(now: u64) -> u64 {
    now - now % 60 - 60
}

fn expected_signals(now: u64, minute: u64, dropped: u64) -> Value {
    let to_minute = |t: u64| rfc3339(t - t % 60);
    json!({
        "lastFlush": to_minute(now),
        "droppedEvents": dropped,
        "lastDatapoint": {"RequestLifecycle": to_minute(minute + 60)},
        "agentReporting": true,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_write_the_same_cluster_status_from_merged_activity() {
    let dir = tempfile::tempdir().unwrap();
    let node = RedisNode::start(dir.path(), false, &[]);
    let now = now_secs();
    let minute = minute_of(now);
    let mut one = Replica::start(&node.url(), now).await;
    let mut two = Replica::start(&node.url(), now).await;

    // eu-west's agent talks to replica one, us-east's to replica two; a
    // reconnect moved a few eu-west exports to replica two.
    one.receive("eu-west", minute, 40, 3).await;
    one.receive("eu-west", minute, 2, 1).await;
    two.receive("us-east", minute, 25, 2).await;
    two.receive("eu-west", minute, 5, 4).await;
    for replica in [&one, &two] {
        assert!(replica.shared().push(&replica.activity).await.unwrap());
        // Nothing new: nothing sent.
        assert!(!replica.shared().push(&replica.activity).await.unwrap());
    }

    let from_one = one.written(now).await;
    let from_two = two.written(now).await;
    let expected = vec![
        (
            "eu-west".to_string(),
            expected_signals(now, minute, EU_BEFORE + 3 + 1 + 4),
        ),
        ("us-east".to_string(), expected_signals(now, minute, 2)),
    ];
    assert_eq!(from_one, expected);
    assert_eq!(from_two, expected);

    // A restarted replica sees the XR showing the shared total: it continues
    // it, it does not add the XR's count to the shared record again.
    let eu_total = EU_BEFORE + 3 + 1 + 4;
    eventually("replica one's write is on its XR", || {
        one.server.object(IC, "", "eu-west").unwrap()["status"]["signals"]["droppedEvents"]
            == json!(eu_total)
    })
    .await;
    let mut restarted =
        Replica::on_server(&node.url(), now, one.server.clone(), &one.server_url).await;
    restarted.receive("eu-west", minute, 1, 1).await;
    restarted
        .shared()
        .push_all(&restarted.activity)
        .await
        .unwrap();
    let written = restarted.written(now).await;
    assert_eq!(
        written,
        vec![(
            "eu-west".to_string(),
            expected_signals(now, minute, eu_total + 1)
        )]
    );
    // The shared record expires (an idle month): it starts again from what
    // the XR shows now rather than from an older count.
    node.cli(&["DEL", "sig:{activity}:cluster:eu-west"]);
    restarted.receive("eu-west", minute, 1, 2).await;
    restarted
        .shared()
        .push_all(&restarted.activity)
        .await
        .unwrap();
    eventually("the restarted replica's write is on the XR", || {
        one.server.object(IC, "", "eu-west").unwrap()["status"]["signals"]["droppedEvents"]
            == json!(eu_total + 1)
    })
    .await;
    let view = restarted
        .activity
        .views(&[DroppedOnXr {
            cluster: "eu-west".into(),
            at_first_sight: eu_total,
            now: eu_total + 1,
        }])
        .await;
    assert_eq!(view["eu-west"].dropped, eu_total + 1 + 2);

    // The replica's own record still holds only what it received.
    assert_eq!(two.activity.cluster("eu-west").unwrap().dropped, 4);
    assert!(one.activity.cluster("us-east").is_none());
    // Both stores flushed to the one Redis; nothing above depended on it.
    one.redis.flush().await.unwrap();
    two.redis.flush().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_retried_after_an_ambiguous_failure_counts_once() {
    let dir = tempfile::tempdir().unwrap();
    let node = RedisNode::start(dir.path(), false, &[]);
    let now = now_secs();
    let replica = Replica::start(&node.url(), now).await;
    let shared = replica.shared();
    let change = |dropped| {
        vec![(
            "us-east".to_string(),
            ClusterActivity {
                last_flush: Some(now),
                dropped,
                last_datapoint: [(SignalKind::RequestLifecycle, now - 30)].into(),
            },
        )]
    };
    let clusters = [on_xr("us-east", 0)];

    assert!(shared.apply("incarnation-a:0", &change(6)).await.unwrap());
    // The reply was lost, so the same push is sent again: not counted twice.
    assert!(!shared.apply("incarnation-a:0", &change(6)).await.unwrap());
    let view = replica.activity.views(&clusters).await;
    assert_eq!(view["us-east"].dropped, 6);
    assert_eq!(view["us-east"].last_flush, Some(now));

    // The next push (another id) adds; an older time never lowers a maximum.
    let mut older = change(1);
    older[0].1.last_flush = Some(now - 100);
    assert!(shared.apply("incarnation-a:1", &older).await.unwrap());
    let view = replica.activity.views(&clusters).await;
    assert_eq!(view["us-east"].dropped, 7);
    assert_eq!(view["us-east"].last_flush, Some(now));
    assert_eq!(
        view["us-east"].last_datapoint[&SignalKind::RequestLifecycle],
        now - 30
    );
}

/// Redis stops: pushes fail and are kept, status falls back to the last view
/// plus this replica's own counts (no panic, reported on /metrics); when
/// Redis returns, the kept push lands once and the shared view is exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_status_falls_back_to_the_local_record_then_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = RedisNode::start(dir.path(), true, &[]);
    let now = now_secs();
    let minute = minute_of(now);
    let mut one = Replica::start(&node.url(), now).await;
    let two = Replica::start(&node.url(), now).await;
    one.receive("eu-west", minute, 10, 2).await;
    two.receive("eu-west", minute, 10, 5).await;
    one.shared().push(&one.activity).await.unwrap();
    two.shared().push(&two.activity).await.unwrap();
    let clusters = [on_xr("eu-west", EU_BEFORE), on_xr("us-east", 0)];
    assert_eq!(
        one.activity.views(&clusters).await["eu-west"].dropped,
        EU_BEFORE + 7
    );

    node.stop();
    one.receive("eu-west", minute, 10, 3).await;
    assert!(one.shared().push(&one.activity).await.is_err());
    let fallback = one.activity.views(&clusters).await;
    assert_eq!(fallback["eu-west"].dropped, EU_BEFORE + 7 + 3);
    assert_eq!(fallback["eu-west"].last_flush, Some(now));
    assert_eq!(fallback["us-east"].dropped, 0);
    let written = one.written(now).await;
    assert_eq!(
        written,
        vec![
            (
                "eu-west".to_string(),
                expected_signals(now, minute, EU_BEFORE + 10)
            ),
            (
                "us-east".to_string(),
                json!({"droppedEvents": 0, "agentReporting": false})
            ),
        ]
    );
    let metrics = one.shared().prometheus_text();
    assert!(
        metrics.contains("signal_aggregator_shared_activity_up 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("signal_aggregator_shared_activity_push_failures_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("signal_aggregator_shared_activity_local_fallbacks_total 2"),
        "{metrics}"
    );

    node.restart();
    // More drops while the first push waits: the kept push goes first, then these.
    one.receive("eu-west", minute, 10, 1).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while one.shared().push(&one.activity).await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "redis never came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    one.shared().push_all(&one.activity).await.unwrap();
    for replica in [&one, &two] {
        // Replica two meets its broken connection only now; a read that
        // still fails falls back, and the next pass reads Redis again.
        let mut view = replica.activity.views(&clusters).await;
        while !replica
            .shared()
            .prometheus_text()
            .contains("signal_aggregator_shared_activity_up 1")
        {
            assert!(
                std::time::Instant::now() < deadline,
                "redis never came back"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
            view = replica.activity.views(&clusters).await;
        }
        assert_eq!(view["eu-west"].dropped, EU_BEFORE + 2 + 5 + 3 + 1);
    }
    assert!(
        one.shared()
            .prometheus_text()
            .contains("signal_aggregator_shared_activity_up 1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_activity_on_a_redis_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = RedisCluster::start(dir.path(), 3);
    let url = RedisUrl::new(cluster.url());
    let now = now_secs();
    let clock: Clock = Arc::new(move || now);
    let replicas: Vec<Activity> = ["replica-a", "replica-b"]
        .into_iter()
        .map(|id| {
            Activity::new(clock.clone()).shared_through(SharedActivity::new(
                url.clone(),
                id,
                3_600,
                Duration::from_secs(2),
            ))
        })
        .collect();
    // Many clusters, so their names would hash all over the slot range
    // without the {activity} tag.
    let names: Vec<String> = (0..40).map(|i| format!("cluster-{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        let activity = &replicas[i % 2];
        let store = track_activity(
            Arc::new(signal_aggregator::store::memory::MemoryStore::new(
                Default::default(),
            )),
            activity,
        );
        let mut windowed = lifecycle(&series("t", name, "m"), minute_of(now), 1, 1);
        for _ in 0..=i {
            windowed.sketch.record(&Point {
                field: FieldKey::plain(Field::TtftSeconds),
                time_unix_nano: now * 1_000_000_000,
                value: PointValue::Sample(f64::INFINITY),
            });
        }
        store.merge(vec![windowed]).await.unwrap();
    }
    for activity in &replicas {
        activity.shared().unwrap().push_all(activity).await.unwrap();
    }
    let clusters: Vec<DroppedOnXr> = names.iter().map(|n| on_xr(n, 100)).collect();
    let views: Vec<_> = futures_views(&replicas, &clusters).await;
    assert_eq!(views[0], views[1]);
    for (i, name) in names.iter().enumerate() {
        let view = &views[0][name];
        assert_eq!(view.dropped, 100 + i as u64 + 1, "{name}");
        assert_eq!(view.last_flush, Some(now), "{name}");
    }
}

async fn futures_views(
    replicas: &[Activity],
    clusters: &[DroppedOnXr],
) -> Vec<std::collections::HashMap<String, ClusterActivity>> {
    let mut out = Vec::new();
    for activity in replicas {
        out.push(activity.views(clusters).await);
    }
    out
}
