//! The real `signal-aggregator` binary with `--kube on --kubeconfig` pointed
//! at the in-process API server: it lists and watches the XRs, takes OTLP
//! spans over HTTP, and writes both statuses by server-side apply. Proves the
//! flags, the store wrapping and the task wiring in `main`.

use crate::support::binary::{aggregator_command, lines_until, spawn};
use crate::support::status::{FakeApiServer, IC, MS, eventually, write_kubeconfig};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use otlp_test_kit::{double_kv, span, string_kv, traces_request, unix_nanos};
use prost::Message as _;
use serde_json::json;

/// `n` vLLM `llm_request` spans of model `chat` from team-a on eu-west.
fn spans(n: usize, e2e: f64) -> ExportTraceServiceRequest {
    let end = unix_nanos();
    let spans = (0..n)
        .map(|i| {
            let attributes = vec![
                string_kv("gen_ai.response.model", "chat"),
                double_kv("gen_ai.latency.e2e", e2e),
                double_kv("gen_ai.latency.time_to_first_token", 0.1),
            ];
            Span {
                span_id: vec![i as u8 + 1; 8],
                ..span("llm_request", attributes, end - (e2e * 1e9) as u64, end)
            }
        })
        .collect();
    let resource = vec![
        string_kv("modelplane.tenant", "team-a"),
        string_kv("modelplane.cluster", "eu-west"),
    ];
    traces_request(resource, spans)
}

#[tokio::test]
async fn the_binary_watches_xrs_and_writes_status_from_otlp_it_received() {
    let (server, url) = FakeApiServer::start().await;
    server.put(
        IC,
        json!({"metadata": {"name": "eu-west"},
        "spec": {"signals": {"kinds": [{"name": "RequestLifecycle"}]}}}),
    );
    server.put(
        MS,
        json!({"metadata": {"name": "chat", "namespace": "team-a"},
        "spec": {"observability": {"metrics": {"scope": "Fleet"}}}}),
    );

    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = write_kubeconfig(dir.path(), &url);
    let mut command = aggregator_command();
    command
        .args(["--kube", "on", "--kubeconfig"])
        .arg(&kubeconfig)
        .args(["--status-interval", "1s", "--status-min-interval", "1s"])
        // Unauthenticated OTLP below; auth::issuer_binary covers issuance.
        .args(["--issue-ingest-tokens", "false"])
        .args(["--otlp-grpc-addr", "127.0.0.1:0"])
        .args(["--otlp-http-addr", "127.0.0.1:0"])
        .args(["--api-addr", "127.0.0.1:0", "--log-format", "text"]);
    let (_running, stdout) = spawn(command);
    let lines =
        tokio::task::spawn_blocking(move || lines_until(stdout, |l| l.contains("or  http://")))
            .await
            .unwrap();
    let address = lines.last().unwrap();
    let at = address.find("or  http://").unwrap() + "or  http://".len();
    let http = address[at..].split('/').next().unwrap().to_string();

    let response = reqwest::Client::new()
        .post(format!("http://{http}/v1/traces"))
        .header("content-type", "application/x-protobuf")
        .body(spans(20, 0.5).encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // One span normalize refuses (an unknown modelplane.signal) counts in
    // the cluster's droppedEvents.
    let mut refused = spans(1, 0.5);
    refused.resource_spans[0].scope_spans[0].spans[0]
        .attributes
        .push(string_kv("modelplane.signal", "Everything"));
    let response = reqwest::Client::new()
        .post(format!("http://{http}/v1/traces"))
        .header("content-type", "application/x-protobuf")
        .body(refused.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    eventually("the cluster status says the agent reports", || {
        server.patches().iter().any(|p| {
            p.path.ends_with("/inferenceclusters/eu-west/status")
                && p.body["status"]["signals"]["agentReporting"] == true
                && p.body["status"]["signals"]["lastDatapoint"]["RequestLifecycle"].is_string()
        })
    })
    .await;
    eventually("the service status carries the request rate", || {
        server.patches().iter().any(|p| {
            p.path
                .ends_with("/namespaces/team-a/modelservices/chat/status")
                && p.body["status"]["observability"]["metrics"]["requestRate"]
                    .as_f64()
                    .is_some_and(|r| (r - 20.0 / 300.0).abs() < 1e-9)
        })
    })
    .await;
    eventually("the refused span is in droppedEvents", || {
        server.patches().iter().any(|p| {
            p.path.ends_with("/inferenceclusters/eu-west/status")
                && p.body["status"]["signals"]["droppedEvents"] == 1
        })
    })
    .await;
    let chat = server
        .patches()
        .into_iter()
        .rfind(|p| p.path.ends_with("/modelservices/chat/status"))
        .unwrap();
    let e2e = &chat.body["status"]["observability"]["metrics"]["e2eSeconds"];
    assert!((e2e["p50"].as_f64().unwrap() - 0.5).abs() < 0.01, "{e2e}");
    for patch in server.patches() {
        assert_eq!(patch.query["fieldManager"], "signal-aggregator");
        assert_eq!(patch.content_type, "application/apply-patch+yaml");
    }
    assert!(server.violations().is_empty(), "{:?}", server.violations());
    assert!(
        server.watch_requests() >= 2,
        "both kinds are watched, not polled"
    );
}
