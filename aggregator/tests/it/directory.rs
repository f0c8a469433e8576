//! The real kube watcher against the in-process API server: XRs added,
//! modified and deleted show up in the Directory; a bad spec is skipped.

use crate::support::status::{FakeApiServer, IC, MS, eventually};
use serde_json::json;
use signal_aggregator::directory::{Directory, watch};
use signal_aggregator::signal::{SeriesKey, SignalKind};

fn cluster(name: &str, scope: &str, h100_price: f64) -> serde_json::Value {
    json!({
        "metadata": {"name": name},
        "spec": {"signals": {
            "kinds": [{"name": "RequestLifecycle"}, {"name": "Cost"}],
            "privacy": {"scope": scope},
            "retention": {"sketches": "7d"},
            "cost": {"pricing": [{"gpu": "H100", "pricePerGpuHour": h100_price}]},
        }},
    })
}

fn service(ns: &str, name: &str, scope: &str) -> serde_json::Value {
    json!({
        "metadata": {"name": name, "namespace": ns},
        "spec": {"observability": {"metrics": {"scope": scope}}},
    })
}

fn key(tenant: &str, cluster: &str, model: &str) -> SeriesKey {
    SeriesKey {
        tenant: tenant.into(),
        cluster: cluster.into(),
        model: model.into(),
        kind: SignalKind::RequestLifecycle,
    }
}

async fn start() -> (FakeApiServer, Directory, tokio::sync::oneshot::Sender<()>) {
    let (server, url) = FakeApiServer::start().await;
    let directory = Directory::new();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(watch::run(
        FakeApiServer::client(&url),
        directory.clone(),
        async move {
            let _ = stopped.await;
        },
    ));
    (server, directory, stop)
}

#[tokio::test]
async fn lists_then_follows_adds_modifies_and_deletes() {
    let (server, directory, _stop) = start().await;
    server.put(IC, cluster("eu-west", "PerTenant", 2.5));
    server.put(MS, service("team-a", "chat", "PerTenant"));
    eventually("the initial list is in the directory", || {
        directory.is_synced()
    })
    .await;
    assert_eq!(
        directory.cluster("eu-west").unwrap().retention.as_secs(),
        7 * 86_400
    );
    assert_eq!(
        directory
            .pricing("eu-west", "H100")
            .unwrap()
            .price_per_gpu_hour,
        2.5
    );
    assert!(!directory.is_fleet_opted_in("team-a", "chat"));
    assert!(!directory.fleet_includes(&key("team-a", "eu-west", "chat")));

    // Opt-in flips on, then off again.
    server.put(MS, service("team-a", "chat", "Fleet"));
    eventually("the opt-in is seen", || {
        directory.is_fleet_opted_in("team-a", "chat")
    })
    .await;
    assert!(directory.fleet_includes(&key("team-a", "eu-west", "chat")));
    server.put(MS, service("team-a", "chat", "PerTenant"));
    eventually("the opt-out is seen", || {
        !directory.is_fleet_opted_in("team-a", "chat")
    })
    .await;

    // Pricing changes and a cluster-wide Fleet privacy scope.
    server.put(IC, cluster("eu-west", "Fleet", 3.25));
    eventually("the new price is seen", || {
        directory
            .pricing("eu-west", "H100")
            .map(|p| p.price_per_gpu_hour)
            == Some(3.25)
    })
    .await;
    assert!(directory.fleet_includes(&key("team-b", "eu-west", "anything")));

    // A second cluster and service arrive, then are deleted.
    server.put(IC, cluster("us-east", "PerTenant", 1.0));
    server.put(MS, service("team-b", "embed", "Fleet"));
    eventually("new XRs are seen", || {
        directory.cluster("us-east").is_some() && directory.service("team-b", "embed").is_some()
    })
    .await;
    server.delete(IC, "", "us-east");
    server.delete(MS, "team-b", "embed");
    eventually("deletes are seen", || {
        directory.cluster("us-east").is_none() && directory.service("team-b", "embed").is_none()
    })
    .await;
    assert!(!directory.is_fleet_opted_in("team-b", "embed"));
    assert_eq!(directory.clusters().len(), 1);
    assert!(server.violations().is_empty(), "{:?}", server.violations());
}

#[tokio::test]
async fn a_bad_spec_is_skipped_and_the_watch_keeps_going() {
    let (server, directory, _stop) = start().await;
    server.put(
        IC,
        json!({"metadata": {"name": "broken"},
        "spec": {"signals": {"kinds": [{"name": "NotAKind"}]}}}),
    );
    server.put(IC, cluster("good", "PerTenant", 1.0));
    server.put(
        MS,
        json!({"metadata": {"name": "svc", "namespace": "t"},
        "spec": {"observability": {"metrics": {"scope": "Everyone"}}}}),
    );
    eventually("the directory is synced", || directory.is_synced()).await;
    assert!(directory.cluster("good").is_some());
    assert!(directory.cluster("broken").is_none());
    assert!(directory.service("t", "svc").is_none());

    // A good object that turns bad is dropped (its opt-in is no longer known)...
    server.put(MS, service("t", "ok", "Fleet"));
    eventually("the good service is seen", || {
        directory.is_fleet_opted_in("t", "ok")
    })
    .await;
    server.put(
        MS,
        json!({"metadata": {"name": "ok", "namespace": "t"},
        "spec": {"observability": {"metrics": {"sampleRate": 7}}}}),
    );
    eventually("the now-bad service is dropped", || {
        directory.service("t", "ok").is_none()
    })
    .await;
    assert!(!directory.is_fleet_opted_in("t", "ok"));

    // ...and the watch still delivers later events, for both kinds.
    server.put(IC, json!({"metadata": {"name": "broken"}, "spec": {"signals": {"kinds": [{"name": "Capacity"}]}}}));
    server.put(MS, service("t", "ok", "Fleet"));
    eventually("fixed XRs are seen", || {
        directory.cluster("broken").is_some() && directory.is_fleet_opted_in("t", "ok")
    })
    .await;
    assert_eq!(
        directory.cluster("broken").unwrap().enabled_kinds,
        vec![SignalKind::Capacity]
    );
}

#[tokio::test]
async fn a_closed_watch_resumes_without_losing_events() {
    let (server, directory, _stop) = start().await;
    server.put(MS, service("t", "a", "PerTenant"));
    eventually("the directory is synced", || {
        directory.service("t", "a").is_some()
    })
    .await;
    let watches = server.watch_requests();
    server.close_watches();
    // Changes made while no watch is open are replayed from the last
    // resourceVersion the watcher saw.
    server.put(MS, service("t", "a", "Fleet"));
    server.delete(MS, "t", "a");
    server.put(MS, service("t", "b", "Fleet"));
    eventually("the events after the close arrive", || {
        directory.service("t", "a").is_none() && directory.is_fleet_opted_in("t", "b")
    })
    .await;
    eventually("the watcher re-watched", || {
        server.watch_requests() > watches
    })
    .await;
    assert!(server.violations().is_empty(), "{:?}", server.violations());
}
