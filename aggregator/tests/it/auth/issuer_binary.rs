//! The real `signal-aggregator` binary with `--kube on` against the
//! in-process API server: it issues the cluster's token Secret, reports it in
//! `status.signals.ingestToken`, binds OTLP as configured (ingest is
//! authenticated by the issued tokens), accepts the issued token and no
//! other, and rotates on request with both tokens accepted during the overlap.

use crate::support::binary::{aggregator_command, lines_until, spawn};
use otlp_test_kit::free_port;

use crate::support::status::{FakeApiServer, IC, MS, eventually, write_kubeconfig};
use otlp_test_kit::rich::rich_traces;
use prost::Message as _;
use serde_json::json;

fn token(server: &FakeApiServer, key: &str) -> Option<String> {
    server.secret_data("tokens", "signals-ingest-eu-west", key)
}

#[tokio::test]
async fn the_binary_issues_reports_accepts_and_rotates_the_clusters_token() {
    let (server, url) = FakeApiServer::start().await;
    server.put(
        IC,
        json!({"metadata": {"name": "eu-west", "uid": "uid-eu-west"},
               "spec": {"signals": {"kinds": [{"name": "RequestLifecycle"}]}}}),
    );
    server.put(
        MS,
        json!({"metadata": {"name": "chat", "namespace": "team-a"}, "spec": {}}),
    );
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = write_kubeconfig(dir.path(), &url);
    let http_port = free_port();
    let mut command = aggregator_command();
    command
        .args(["--kube", "on", "--kubeconfig"])
        .arg(&kubeconfig)
        .args(["--token-namespace", "tokens"])
        .args(["--otlp-grpc-addr", "127.0.0.1:0"])
        .args(["--otlp-http-addr", &format!("0.0.0.0:{http_port}")])
        .args(["--api-addr", "127.0.0.1:0", "--log-format", "text"]);
    let (_running, stdout) = spawn(command);
    let lines =
        tokio::task::spawn_blocking(move || lines_until(stdout, |l| l.contains("send OTLP to")))
            .await
            .unwrap();
    // Issued tokens protect ingest: no loopback warning, the wildcard bind
    // kept (printed as localhost), not narrowed to 127.0.0.1.
    assert!(
        !lines.iter().any(|l| l.contains("WARNING: OTLP ingest")),
        "{lines:?}"
    );
    assert!(
        lines
            .last()
            .unwrap()
            .contains(&format!("http://localhost:{http_port}/v1/metrics")),
        "{lines:?}"
    );

    let s = server.clone();
    eventually("the binary issued eu-west's token", move || {
        token(&s, "token").is_some()
    })
    .await;
    let first = token(&server, "token").unwrap();
    assert_eq!(first.len(), 43);
    let s = server.clone();
    eventually("status.signals.ingestToken generation 1", move || {
        s.object(IC, "", "eu-west")
            .is_some_and(|ic| ic["status"]["signals"]["ingestToken"]["generation"] == 1)
    })
    .await;

    let send = |token: Option<String>| {
        let mut request = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{http_port}/v1/traces"))
            .header("content-type", "application/x-protobuf")
            .body(rich_traces().encode_to_vec());
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(send(None).await, 401);
    assert_eq!(send(Some("made-up".into())).await, 401);
    assert_eq!(send(Some(first.clone())).await, 200);

    server.edit_secret("tokens", "signals-ingest-eu-west", |s| {
        s["metadata"]["annotations"]["signals.modelplane.ai/rotate"] = json!("true");
    });
    let s = server.clone();
    eventually("the binary rotated on request", move || {
        token(&s, "previous-token").is_some()
    })
    .await;
    let second = token(&server, "token").unwrap();
    assert_ne!(second, first);
    let s = server.clone();
    eventually("status.signals.ingestToken generation 2", move || {
        s.object(IC, "", "eu-west")
            .is_some_and(|ic| ic["status"]["signals"]["ingestToken"]["generation"] == 2)
    })
    .await;
    // Within the default 24h overlap both are accepted.
    assert_eq!(send(Some(second)).await, 200);
    assert_eq!(send(Some(first)).await, 200);

    // The status writer and the issuer each applied only their own fields.
    let managers: std::collections::BTreeSet<String> = server
        .patches()
        .iter()
        .map(|p| p.query["fieldManager"].clone())
        .collect();
    assert!(
        managers.contains("signal-aggregator-tokens"),
        "{managers:?}"
    );
    assert!(server.violations().is_empty(), "{:?}", server.violations());
}
