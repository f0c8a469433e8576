//! No token ever leaves the aggregator: the real binary, logging at `trace`
//! level, with issued ingest tokens (created, then rotated: the Secret is
//! written with both tokens), a token file, query tokens, and every way a
//! token reaches it (accepted, unknown, the wrong scheme, a tenant token on
//! another tenant, a token two sources map to different clusters, a token
//! file that no longer parses, an ingest token on the query API). Not one
//! token is in its log, its stdout or any answer it gives (OTLP/HTTP bodies,
//! gRPC status messages, API bodies, `/metrics`); the log has no panic.

use std::process::Stdio;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use otlp_test_kit::free_port;
use otlp_test_kit::rich::rich_traces;
use prost::Message as _;
use serde_json::json;

use crate::support::binary::{aggregator_command, lines_until, spawn};
use crate::support::status::{FakeApiServer, IC, eventually, write_kubeconfig};

const FILE_TOKEN: &str = "file-ingest-token-5e11";
const OPERATOR_TOKEN: &str = "query-operator-token-6a21";
const TENANT_TOKEN: &str = "query-tenant-token-7b32";
const GUESSED_TOKEN: &str = "guessed-token-8c43";
const BASIC_CREDENTIALS: &str = "basic-credentials-9d54";
const BROKEN_FILE_TOKEN: &str = "broken-file-token-ae65";

fn issued(server: &FakeApiServer, key: &str) -> Option<String> {
    server.secret_data("tokens", "signals-ingest-eu-west", key)
}

#[tokio::test]
async fn no_token_is_in_trace_logs_stdout_or_any_answer() {
    let (server, url) = FakeApiServer::start().await;
    server.put(
        IC,
        json!({"metadata": {"name": "eu-west", "uid": "uid-eu-west"},
               "spec": {"signals": {"kinds": [{"name": "RequestLifecycle"}]}}}),
    );
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = write_kubeconfig(dir.path(), &url);
    let ingest_file = dir.path().join("ingest.yaml");
    let query_file = dir.path().join("query.yaml");
    std::fs::write(&ingest_file, format!("us-east-1: {FILE_TOKEN}\n")).unwrap();
    std::fs::write(
        &query_file,
        format!("operators: [{OPERATOR_TOKEN}]\ntenants: {{team-a: {TENANT_TOKEN}}}\n"),
    )
    .unwrap();
    let log_path = dir.path().join("stderr.log");
    let (grpc_port, http_port, api_port) = (free_port(), free_port(), free_port());
    let mut command = aggregator_command();
    command
        .env("RUST_LOG", "trace")
        .stderr(Stdio::from(std::fs::File::create(&log_path).unwrap()))
        .args(["--kube", "on", "--kubeconfig"])
        .arg(&kubeconfig)
        .args(["--token-namespace", "tokens"])
        .arg("--ingest-tokens-file")
        .arg(&ingest_file)
        .arg("--query-tokens-file")
        .arg(&query_file)
        .args(["--tokens-reload-interval", "1s"])
        .args(["--otlp-grpc-addr", &format!("127.0.0.1:{grpc_port}")])
        .args(["--otlp-http-addr", &format!("127.0.0.1:{http_port}")])
        .args(["--api-addr", &format!("127.0.0.1:{api_port}")]);
    let (running, stdout) = spawn(command);
    let stdout_lines =
        tokio::task::spawn_blocking(move || lines_until(stdout, |l| l.contains("send OTLP to")))
            .await
            .unwrap();
    let s = server.clone();
    eventually("eu-west's token is issued", move || {
        issued(&s, "token").is_some()
    })
    .await;
    let first = issued(&server, "token").unwrap();

    // Everything a client is told, to be searched afterwards.
    let mut answers: Vec<String> = Vec::new();
    let client = reqwest::Client::new();
    let body = rich_traces().encode_to_vec();
    let http_ingest = async |authorization: Option<String>| {
        let mut request = client
            .post(format!("http://127.0.0.1:{http_port}/v1/traces"))
            .header("content-type", "application/x-protobuf")
            .body(body.clone());
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    };
    let grpc_ingest = async |token: &str| {
        let mut grpc = TraceServiceClient::connect(format!("http://127.0.0.1:{grpc_port}"))
            .await
            .unwrap();
        let mut request = tonic::Request::new(rich_traces());
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        match grpc.export(request).await {
            Ok(response) => (tonic::Code::Ok, format!("{:?}", response.into_inner())),
            Err(status) => (status.code(), format!("{status:?}")),
        }
    };
    let api = async |path: &str, token: &str| {
        let response = client
            .get(format!("http://127.0.0.1:{api_port}{path}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    };

    let cases = [
        (Some(format!("Bearer {first}")), 200),
        (Some(format!("Bearer {FILE_TOKEN}")), 200),
        (Some(format!("Bearer {GUESSED_TOKEN}")), 401),
        (Some(format!("Basic {BASIC_CREDENTIALS}")), 401),
        (Some(format!("Bearer{GUESSED_TOKEN}")), 401),
        (None, 401),
    ];
    for (authorization, want) in cases {
        let (status, text) = http_ingest(authorization.clone()).await;
        assert_eq!(status, want, "{authorization:?}: {text}");
        answers.push(text);
    }
    for (token, want) in [
        (first.as_str(), tonic::Code::Ok),
        (GUESSED_TOKEN, tonic::Code::Unauthenticated),
    ] {
        let (code, text) = grpc_ingest(token).await;
        assert_eq!(code, want, "{text}");
        answers.push(text);
    }
    for (path, token, want) in [
        ("/metrics", OPERATOR_TOKEN, 200),
        (
            "/v1/tenants/team-a/signals/RequestLifecycle?window=5m",
            TENANT_TOKEN,
            200,
        ),
        (
            "/v1/tenants/team-b/signals/RequestLifecycle?window=5m",
            TENANT_TOKEN,
            403,
        ),
        ("/v1/fleet/compare", TENANT_TOKEN, 403),
        ("/metrics", GUESSED_TOKEN, 401),
        // An ingest token reads nothing.
        ("/metrics", first.as_str(), 401),
        (
            "/v1/tenants/team-a/signals/RequestLifecycle?window=5m",
            first.as_str(),
            401,
        ),
    ] {
        let (status, text) = api(path, token).await;
        assert_eq!(status, want, "{path}: {text}");
        answers.push(text);
    }

    // A rotation: the Secret is written holding the new and the previous token.
    server.edit_secret("tokens", "signals-ingest-eu-west", |s| {
        s["metadata"]["annotations"]["signals.modelplane.ai/rotate"] = json!("true");
    });
    let s = server.clone();
    eventually("eu-west's token is rotated", move || {
        issued(&s, "previous-token").is_some()
    })
    .await;
    let second = issued(&server, "token").unwrap();
    let (status, text) = http_ingest(Some(format!("Bearer {second}"))).await;
    assert_eq!(status, 200, "{text}");
    answers.push(text);

    // The token file now maps eu-west's previous token to another cluster:
    // refused, and the disagreement is logged.
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    std::fs::write(
        &ingest_file,
        format!("us-east-1: [{FILE_TOKEN}, {first}]\n"),
    )
    .unwrap();
    eventually("the token file is reloaded", || {
        log().contains("token file changed")
    })
    .await;
    let (status, text) = http_ingest(Some(format!("Bearer {first}"))).await;
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("more than one cluster"), "{text}");
    answers.push(text);

    // A token file that no longer parses, with a token where the error is.
    std::fs::write(
        &ingest_file,
        format!("us-east-1: [{FILE_TOKEN}, {BROKEN_FILE_TOKEN}\n"),
    )
    .unwrap();
    eventually("the broken token file is logged", || {
        log().contains("no longer parses")
    })
    .await;
    let (status, text) = http_ingest(Some(format!("Bearer {FILE_TOKEN}"))).await;
    assert_eq!(status, 200, "the previous tokens stay in force: {text}");

    drop(running);
    // Give the log a moment to hold the last lines of the killed process.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let log = log();
    assert!(
        log.contains(r#""level":"TRACE""#),
        "not logging at trace level"
    );
    assert!(
        log.contains("one ingest token belongs to several clusters"),
        "the disagreement was not logged"
    );
    assert!(!log.contains("panicked"), "a panic in the log");
    let stdout = stdout_lines.join("\n");
    let answers = answers.join("\n");
    let tokens = [
        FILE_TOKEN,
        OPERATOR_TOKEN,
        TENANT_TOKEN,
        GUESSED_TOKEN,
        BASIC_CREDENTIALS,
        BROKEN_FILE_TOKEN,
        first.as_str(),
        second.as_str(),
    ];
    for token in tokens {
        for (place, text) in [("log", &log), ("stdout", &stdout), ("answers", &answers)] {
            assert!(
                !text.contains(token),
                "token {token:?} found in the {place}"
            );
        }
    }
}
