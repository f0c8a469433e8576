//! The Redis store over `rediss://` against real TLS redis-server processes
//! (certificates from a throwaway CA made per test): a private CA, a client
//! certificate required by the server (mTLS), a 3-master TLS Redis Cluster,
//! a server the configured CA did not sign, certificate-flag mistakes at start,
//! and the series count `health()` reports.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::redis::*;
use signal_aggregator::store::redis::{RedisStore, RedisStoreConfig, RedisUrl, TlsFiles};
use signal_aggregator::store::{SketchStore, StoreError};
use signal_aggregator::telemetry::SelfMetrics;

/// Only a guard against a hang: a TLS failure must surface as an error, and a
/// test that waits longer than this has failed.
const HANG_GUARD: Duration = Duration::from_secs(30);

fn tls_files(pki: &TestPki, client_cert: bool) -> TlsFiles {
    TlsFiles {
        ca_file: Some(pki.path("ca.crt")),
        client_cert_file: client_cert.then(|| pki.path("client.crt")),
        client_key_file: client_cert.then(|| pki.path("client.key")),
    }
}

fn config(url: &str, tls: TlsFiles, wal: &std::path::Path) -> RedisStoreConfig {
    RedisStoreConfig {
        url: RedisUrl::new(url).with_tls(tls),
        // Tests flush explicitly; a long interval keeps the timing theirs.
        flush_interval: Duration::from_secs(3_600),
        ..RedisStoreConfig::new(url, wal)
    }
}

fn open(config: RedisStoreConfig) -> RedisStore {
    RedisStore::open(config, Arc::new(SelfMetrics::default())).expect("store opens")
}

fn open_error(config: RedisStoreConfig) -> String {
    match RedisStore::open(config, Arc::new(SelfMetrics::default())) {
        Ok(_) => panic!("the store opened"),
        Err(e) => e.to_string(),
    }
}

async fn flush(store: &RedisStore) -> Result<(), StoreError> {
    tokio::time::timeout(HANG_GUARD, store.flush())
        .await
        .expect("flush returned (ok or error) instead of hanging")
}

/// Writes three series (two tenants) and checks them back, exactly.
async fn round_trip(store: &RedisStore) {
    let a = series("team-a", "eu-west", "llama-70b");
    let b = series("team-a", "us-east", "llama-70b");
    let c = series("team-b", "eu-west", "mistral-7b");
    store
        .merge(vec![
            lifecycle(&a, minute(3), 10, 7),
            lifecycle(&a, minute(2), 5, 7),
            lifecycle(&b, minute(2), 4, 1),
            lifecycle(&c, minute(1), 6, 3),
        ])
        .await
        .unwrap();
    flush(store).await.expect("flush over TLS");
    let team_a = store.query(&recent_query(Some("team-a"))).await.unwrap();
    let found: Vec<_> = team_a
        .iter()
        .map(|(key, sketch)| (key.cluster.as_str(), totals(sketch)))
        .collect();
    assert_eq!(
        found,
        vec![("eu-west", (15.0, 105.0, 15)), ("us-east", (4.0, 4.0, 4))]
    );
    let team_b = store.query(&recent_query(Some("team-b"))).await.unwrap();
    assert_eq!(team_b.len(), 1);
    assert_eq!(team_b[0].0, c);
    assert_eq!(totals(&team_b[0].1), (6.0, 18.0, 6));
}

#[tokio::test]
async fn rediss_with_a_private_ca_round_trips_and_counts_series() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = TestPki::generate(&tmp.path().join("pki"));
    let redis = RedisNode::start_tls(tmp.path(), &pki, false, &[]);
    assert!(redis.url().starts_with("rediss://"));
    let store = open(config(
        &redis.url(),
        tls_files(&pki, false),
        &tmp.path().join("wal"),
    ));
    round_trip(&store).await;
    assert_eq!(
        redis.cli(&["SCARD", "sig:{team-a}:series:RequestLifecycle"]),
        "2"
    );
    assert_eq!(store.count_series().await.unwrap(), 3);
    let health = store.health().await;
    assert!(health.ready, "{}", health.detail);
    assert_eq!(health.series, Some(3));
}

#[tokio::test]
async fn health_reports_the_series_count_without_waiting_for_redis() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = TestPki::generate(&tmp.path().join("pki"));
    let redis = RedisNode::start_tls(tmp.path(), &pki, false, &[]);
    let writer = open(config(
        &redis.url(),
        tls_files(&pki, false),
        &tmp.path().join("wal-writer"),
    ));
    round_trip(&writer).await;

    // A second replica that never counted explicitly: its first health check
    // has no count yet and starts one in the background.
    let reader = open(config(
        &redis.url(),
        tls_files(&pki, false),
        &tmp.path().join("wal-reader"),
    ));
    flush(&reader).await.expect("connects");
    assert_eq!(reader.health().await.series, None);
    let deadline = Instant::now() + HANG_GUARD;
    let counted = loop {
        if let Some(series) = reader.health().await.series {
            break series;
        }
        assert!(Instant::now() < deadline, "no background series count");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(counted, 3);

    // The count is cached: a new series shows up on the next recount, not on
    // the next health check.
    writer
        .merge(vec![lifecycle(
            &series("team-c", "x", "y"),
            minute(1),
            1,
            1,
        )])
        .await
        .unwrap();
    flush(&writer).await.unwrap();
    assert_eq!(reader.health().await.series, Some(3));
    assert_eq!(reader.count_series().await.unwrap(), 4);
    assert_eq!(reader.health().await.series, Some(4));
}

#[tokio::test]
async fn a_server_requiring_client_certificates_refuses_without_one_and_accepts_ours() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = TestPki::generate(&tmp.path().join("pki"));
    let redis = RedisNode::start_tls(tmp.path(), &pki, true, &[]);

    let anonymous = open(config(
        &redis.url(),
        tls_files(&pki, false),
        &tmp.path().join("wal-anonymous"),
    ));
    anonymous
        .merge(vec![lifecycle(&series("t", "c", "m"), minute(1), 1, 1)])
        .await
        .unwrap();
    let refused = flush(&anonymous).await.expect_err("no client certificate");
    let health = anonymous.health().await;
    assert!(!health.ready);
    assert!(
        health.detail.contains("redis unreachable")
            && health.detail.contains("CertificateRequired"),
        "{refused} / {}",
        health.detail
    );

    let with_cert = open(config(
        &redis.url(),
        tls_files(&pki, true),
        &tmp.path().join("wal-mtls"),
    ));
    round_trip(&with_cert).await;
    assert!(with_cert.health().await.ready);
}

#[tokio::test]
async fn a_server_our_ca_did_not_sign_is_refused_with_a_certificate_error() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = TestPki::generate(&tmp.path().join("pki"));
    let stranger = TestPki::generate(&tmp.path().join("other-pki"));
    let redis = RedisNode::start_tls(tmp.path(), &pki, false, &[]);
    let store = open(config(
        &redis.url(),
        tls_files(&stranger, false),
        &tmp.path().join("wal"),
    ));
    let error = flush(&store).await.expect_err("untrusted server");
    let StoreError::Unavailable(message) = &error else {
        panic!("{error:?}");
    };
    assert!(message.contains("UnknownIssuer"), "{message}");
    let health = store.health().await;
    assert!(!health.ready);
    assert!(health.detail.contains("UnknownIssuer"), "{}", health.detail);
    // Nothing was accepted from this client.
    assert_eq!(redis.cli(&["DBSIZE"]), "0");
}

#[tokio::test]
async fn a_tls_cluster_of_three_masters_round_trips_with_client_certificates() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = TestPki::generate(&tmp.path().join("pki"));
    let cluster = RedisCluster::start_tls(tmp.path(), 3, &pki);
    let url = cluster.url();
    assert_eq!(url.matches("rediss://").count(), 3);
    let store = open(config(&url, tls_files(&pki, true), &tmp.path().join("wal")));

    // Enough tenants that their slots land on every master.
    let tenants: Vec<String> = (0..24).map(|i| format!("tenant-{i}")).collect();
    let sketches = tenants
        .iter()
        .enumerate()
        .map(|(i, t)| lifecycle(&series(t, "c", "m"), minute(1), i as u64 + 1, 2))
        .collect();
    store.merge(sketches).await.unwrap();
    flush(&store).await.expect("flush to the TLS cluster");

    let all = store.query(&recent_query(None)).await.unwrap();
    assert_eq!(all.len(), tenants.len());
    for (key, sketch) in &all {
        let i: u64 = key.tenant["tenant-".len()..].parse().unwrap();
        assert_eq!(
            totals(sketch),
            ((i + 1) as f64, 2.0 * (i + 1) as f64, i + 1)
        );
    }
    for node in &cluster.nodes {
        let keys: u64 = node.cli(&["DBSIZE"]).parse().unwrap();
        assert!(keys > 0, "master {} holds no keys", node.port);
    }
    assert_eq!(store.count_series().await.unwrap(), 24);
    assert_eq!(store.health().await.series, Some(24));
}

#[tokio::test]
async fn certificate_flag_mistakes_stop_the_store_at_open_naming_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = TestPki::generate(&tmp.path().join("pki"));
    let other = TestPki::generate(&tmp.path().join("other-pki"));
    let url = "rediss://127.0.0.1:1";
    let wal = tmp.path().join("wal");
    let with = |tls: TlsFiles| config(url, tls, &wal);

    let not_pem = tmp.path().join("not-pem.txt");
    std::fs::write(&not_pem, "just text\n").unwrap();
    let error = open_error(with(TlsFiles {
        ca_file: Some(not_pem.clone()),
        ..TlsFiles::default()
    }));
    assert!(
        error.contains(&format!(
            "--redis-ca-file {}: holds no PEM certificate",
            not_pem.display()
        )),
        "{error}"
    );

    let error = open_error(with(TlsFiles {
        ca_file: Some(pki.path("ca.key-does-not-exist")),
        ..TlsFiles::default()
    }));
    assert!(
        error.contains("--redis-ca-file") && error.contains("cannot read it"),
        "{error}"
    );

    let error = open_error(with(TlsFiles {
        client_cert_file: Some(pki.path("client.crt")),
        client_key_file: Some(other.path("client.key")),
        ..tls_files(&pki, false)
    }));
    assert!(
        error.contains("--redis-client-cert-file")
            && error.contains("--redis-client-key-file")
            && error.contains("unusable client identity"),
        "{error}"
    );

    let error = open_error(with(TlsFiles {
        client_cert_file: Some(pki.path("client.crt")),
        client_key_file: Some(pki.path("client.crt")),
        ..tls_files(&pki, false)
    }));
    assert!(
        error.contains("--redis-client-key-file") && error.contains("no PEM private key"),
        "{error}"
    );

    let error = open_error(config("redis://127.0.0.1:1", tls_files(&pki, true), &wal));
    assert!(error.contains("plain redis://"), "{error}");
    // The log directory was never created for a configuration that cannot work.
    assert!(!wal.exists());
}
