//! The Redis store against real redis-server processes: round trip, replicas
//! writing the same windows concurrently, crash replay, outage buffering, and
//! Redis Cluster.

use std::sync::Arc;
use std::time::Duration;

use crate::support::redis::*;
use signal_aggregator::store::redis::{RedisStore, RedisStoreConfig};
use signal_aggregator::store::{SketchStore, StoreError, StoreQuery};
use signal_aggregator::telemetry::SelfMetrics;

fn config(url: &str, wal: &std::path::Path) -> RedisStoreConfig {
    RedisStoreConfig {
        // Tests flush explicitly; a long interval keeps the timing theirs.
        flush_interval: Duration::from_secs(3_600),
        ..RedisStoreConfig::new(url, wal)
    }
}

fn open(config: RedisStoreConfig) -> RedisStore {
    RedisStore::open(config, Arc::new(SelfMetrics::default())).expect("store opens")
}

#[tokio::test]
async fn round_trip_merges_windows_per_series() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = RedisNode::start(tmp.path(), false, &[]);
    let store = open(config(&redis.url(), &tmp.path().join("wal")));
    let a = series("team-a", "eu-west", "llama-70b");
    let b = series("team-a", "us-east", "llama-70b");
    let other_tenant = series("team-b", "eu-west", "llama-70b");
    store
        .merge(vec![
            lifecycle(&a, minute(3), 10, 7),
            lifecycle(&b, minute(2), 4, 1),
        ])
        .await
        .unwrap();
    store
        .merge(vec![
            lifecycle(&a, minute(2), 5, 7),
            lifecycle(&other_tenant, minute(1), 9, 9),
        ])
        .await
        .unwrap();
    store.flush().await.unwrap();

    let answer = store.query(&recent_query(Some("team-a"))).await.unwrap();
    let got: Vec<_> = answer.iter().map(|(k, s)| (k.clone(), totals(s))).collect();
    assert_eq!(
        got,
        vec![(a.clone(), (15.0, 105.0, 15)), (b.clone(), (4.0, 4.0, 4))]
    );

    let only_b = StoreQuery {
        cluster: Some("us-east".into()),
        ..recent_query(Some("team-a"))
    };
    assert_eq!(store.query(&only_b).await.unwrap().len(), 1);
    let fleet = store.query(&recent_query(None)).await.unwrap();
    assert_eq!(fleet.len(), 3, "tenant None reads every tenant");
    let before = StoreQuery {
        from_unix_secs: 0,
        to_unix_secs: minute(4),
        ..recent_query(Some("team-a"))
    };
    assert!(
        store.query(&before).await.unwrap().is_empty(),
        "windows outside the range are not read"
    );

    // Keys carry the tenant hash tag, the version byte, and a TTL.
    let key = signal_aggregator::store::redis::window_key(
        &a,
        signal_aggregator::sketch::Resolution::Hour,
        minute(3) - minute(3) % 3600,
    );
    assert!(key.starts_with("sig:{team-a}:h:RequestLifecycle:"));
    let ttl: i64 = redis.cli(&["TTL", &key]).parse().unwrap();
    assert!(
        ttl > 29 * 86_400 && ttl <= 30 * 86_400 + 3_600,
        "hour key TTL is the retention: {ttl}"
    );
    assert!(store.health().await.ready);
}

#[tokio::test]
async fn two_replicas_writing_the_same_windows_lose_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = RedisNode::start(tmp.path(), false, &[]);
    let replicas = [
        Arc::new(open(config(&redis.url(), &tmp.path().join("wal-0")))),
        Arc::new(open(config(&redis.url(), &tmp.path().join("wal-1")))),
    ];
    assert_ne!(replicas[0].replica_id(), replicas[1].replica_id());
    let hot = series("team-a", "eu-west", "llama-70b");
    let (rounds, per_round) = (40u64, 3u64);
    let mut writers = Vec::new();
    for store in &replicas {
        let (store, hot) = (store.clone(), hot.clone());
        writers.push(tokio::spawn(async move {
            for round in 0..rounds {
                store
                    .merge(vec![lifecycle(&hot, minute(round % 3), per_round, 2)])
                    .await
                    .unwrap();
                // Interleave flushes so both replicas append to the same keys
                // many times (and trigger compaction) while the other writes.
                store.flush().await.unwrap();
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let expected = (2 * rounds * per_round) as f64;
    let answers = [
        replicas[0]
            .query(&recent_query(Some("team-a")))
            .await
            .unwrap(),
        replicas[1]
            .query(&recent_query(Some("team-a")))
            .await
            .unwrap(),
    ];
    assert_eq!(answers[0], answers[1], "any replica answers the same");
    assert_eq!(
        totals(&answers[0][0].1),
        (expected, 2.0 * expected, expected as u64)
    );
    assert!(
        replicas.iter().map(|r| r.status().compactions).sum::<u64>() > 0,
        "frames were compacted"
    );
}

#[tokio::test]
async fn replay_after_a_crash_counts_every_acknowledged_export_once() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = RedisNode::start(tmp.path(), false, &[]);
    let wal = tmp.path().join("wal");
    let key = series("team-a", "eu-west", "llama-70b");
    let crashed = open(config(&redis.url(), &wal));
    crashed
        .merge(vec![lifecycle(&key, minute(2), 10, 1)])
        .await
        .unwrap();
    crashed.flush().await.unwrap();
    crashed
        .merge(vec![lifecycle(&key, minute(1), 5, 1)])
        .await
        .unwrap();
    // The disk as a SIGKILL would leave it: both entries in the log, only the
    // first flushed (and checkpointed) to Redis.
    let copy = tmp.path().join("wal-after-crash");
    std::fs::create_dir(&copy).unwrap();
    for file in std::fs::read_dir(&wal).unwrap() {
        let file = file.unwrap();
        std::fs::copy(file.path(), copy.join(file.file_name())).unwrap();
    }
    std::mem::forget(crashed); // no shutdown flush, like a crash

    let restarted = open(config(&redis.url(), &copy));
    restarted.flush().await.unwrap();
    let answer = restarted
        .query(&recent_query(Some("team-a")))
        .await
        .unwrap();
    assert_eq!(totals(&answer[0].1), (15.0, 15.0, 15));
}

#[tokio::test]
async fn an_outage_buffers_then_refuses_then_catches_up() {
    let tmp = tempfile::tempdir().unwrap();
    let mut redis = RedisNode::start(tmp.path(), true, &[]);
    let store = open(RedisStoreConfig {
        buffer_bytes: 64 << 10,
        ..config(&redis.url(), &tmp.path().join("wal"))
    });
    let key = series("team-a", "eu-west", "llama-70b");
    store
        .merge(vec![lifecycle(&key, minute(1), 1, 1)])
        .await
        .unwrap();
    store.flush().await.unwrap();

    redis.stop();
    assert!(store.flush().await.is_err());
    let health = store.health().await;
    assert!(!health.ready, "{}", health.detail);
    assert!(
        health.detail.contains("redis unreachable"),
        "{}",
        health.detail
    );
    assert!(
        store
            .prometheus_text()
            .contains("signal_aggregator_redis_up 0")
    );

    let (mut accepted, mut refused) = (0u64, 0u64);
    for _ in 0..2_000 {
        match store.merge(vec![lifecycle(&key, minute(1), 1, 1)]).await {
            Ok(()) => accepted += 1,
            Err(StoreError::Unavailable(why)) => {
                assert!(why.contains("outage buffer is full"), "{why}");
                refused += 1;
                break;
            }
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert!(
        accepted > 10 && refused == 1,
        "accepted {accepted}, refused {refused}"
    );

    redis.restart();
    store.flush().await.unwrap();
    assert!(store.health().await.ready);
    let answer = store.query(&recent_query(Some("team-a"))).await.unwrap();
    assert_eq!(
        totals(&answer[0].1).0,
        (1 + accepted) as f64,
        "every accepted export, nothing else"
    );
    assert!(
        store
            .merge(vec![lifecycle(&key, minute(1), 1, 1)])
            .await
            .is_ok(),
        "room again after catch-up"
    );
}

#[tokio::test]
async fn redis_cluster_with_three_masters_spreads_tenants_and_keeps_totals() {
    let tmp = tempfile::tempdir().unwrap();
    let cluster = RedisCluster::start(tmp.path(), 3);
    let url = cluster.url();
    let replicas = [
        open(config(&url, &tmp.path().join("wal-0"))),
        open(config(&url, &tmp.path().join("wal-1"))),
    ];
    let tenants: Vec<String> = (0..12).map(|i| format!("tenant-{i}")).collect();
    for (i, store) in replicas.iter().enumerate() {
        for tenant in &tenants {
            let key = series(tenant, "eu-west", "llama-70b");
            store
                .merge(vec![lifecycle(&key, minute(1), 3 + i as u64, 1)])
                .await
                .unwrap();
        }
        store.flush().await.unwrap();
    }
    let fleet = replicas[0].query(&recent_query(None)).await.unwrap();
    assert_eq!(fleet.len(), tenants.len());
    for (key, sketch) in &fleet {
        assert_eq!(totals(sketch), (7.0, 7.0, 7), "{key:?}");
    }
    assert_eq!(fleet, replicas[1].query(&recent_query(None)).await.unwrap());
    let with_keys = cluster
        .nodes
        .iter()
        .filter(|n| n.cli(&["DBSIZE"]) != "0")
        .count();
    assert!(
        with_keys >= 2,
        "tenants spread over the masters ({with_keys} hold keys)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_survive_a_cluster_resharding_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let cluster = RedisCluster::start(tmp.path(), 3);
    let store = Arc::new(open(config(&cluster.url(), &tmp.path().join("wal"))));
    let tenants: Vec<String> = (0..16).map(|i| format!("tenant-{i}")).collect();
    let from = cluster.nodes[0].cli(&["CLUSTER", "MYID"]);
    let to = cluster.nodes[1].cli(&["CLUSTER", "MYID"]);
    let seed = format!("127.0.0.1:{}", cluster.nodes[0].port);
    // Move a third of the slots (and the keys in them) while writers flush.
    let reshard = std::thread::spawn(move || {
        std::process::Command::new("redis-cli")
            .args([
                "--cluster",
                "reshard",
                &seed,
                "--cluster-from",
                &from,
                "--cluster-to",
                &to,
            ])
            .args([
                "--cluster-slots",
                "5461",
                "--cluster-yes",
                "--cluster-pipeline",
                "10",
            ])
            .output()
            .expect("redis-cli runs")
    });
    let rounds = 30u64;
    for _ in 0..rounds {
        let batch = tenants
            .iter()
            .map(|t| lifecycle(&series(t, "eu-west", "llama-70b"), minute(1), 1, 1))
            .collect();
        store.merge(batch).await.unwrap();
        // A flush that hits a slot in migration fails (TRYAGAIN) and is
        // retried unchanged: the checkpoint keeps it exactly-once.
        while store.flush().await.is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let output = reshard.join().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    cluster.wait_ok();
    assert_eq!(
        cluster.nodes[0].cli(&["DBSIZE"]),
        "0",
        "every slot left the first master"
    );
    let fleet = store.query(&recent_query(None)).await.unwrap();
    assert_eq!(fleet.len(), tenants.len());
    for (key, sketch) in &fleet {
        assert_eq!(
            totals(sketch),
            (rounds as f64, rounds as f64, rounds),
            "{key:?}"
        );
    }
}

#[tokio::test]
async fn closed_windows_are_compacted_to_one_frame_by_maintenance() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = RedisNode::start(tmp.path(), false, &[]);
    let store = open(config(&redis.url(), &tmp.path().join("wal")));
    let key = series("team-a", "eu-west", "llama-70b");
    for _ in 0..3 {
        store
            .merge(vec![lifecycle(&key, minute(3), 2, 1)])
            .await
            .unwrap();
        store.flush().await.unwrap();
    }
    let minute_key = signal_aggregator::store::redis::window_key(
        &key,
        signal_aggregator::sketch::Resolution::Minute,
        minute(3),
    );
    let frame_count = |redis: &RedisNode| {
        redis.cli(&[
            "EVAL",
            "return struct.unpack('>I4', redis.call('GETRANGE', KEYS[1], 1, 4))",
            "1",
            &minute_key,
        ])
    };
    assert_eq!(frame_count(&redis), "3");
    store.run_maintenance(now_secs() + 3 * 3_600).await.unwrap();
    assert_eq!(frame_count(&redis), "1");
    let answer = store.query(&recent_query(Some("team-a"))).await.unwrap();
    assert_eq!(totals(&answer[0].1), (6.0, 6.0, 6));
}
