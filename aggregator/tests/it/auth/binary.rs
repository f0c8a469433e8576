//! The `signal-aggregator` binary's safe defaults: without token files its
//! listeners bind loopback only (whatever address was asked for) and it says
//! so; with token files they bind as configured and enforce the tokens.

use crate::support::binary::{Running, aggregator_command, lines_until, spawn};
use otlp_test_kit::free_port;

/// Local addresses (`/proc/net/tcp` hex form, e.g. `0100007F`) listening on `port`.
fn listening_addresses(port: u16) -> Vec<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let wanted = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local, state) = (fields.get(1)?, fields.get(3)?);
            (*state == "0A" && local.ends_with(&wanted))
                .then(|| local.split(':').next().unwrap().to_string())
        })
        .collect()
}

/// Starts the binary on wildcard addresses; returns it and its stdout up to "ready".
fn start(ports: [u16; 3], extra: &[&str]) -> (Running, Vec<String>) {
    let [grpc, http, api] = ports;
    let mut command = aggregator_command();
    command
        .args(["--kube", "off", "--log-format", "text"])
        .args(["--otlp-grpc-addr", &format!("0.0.0.0:{grpc}")])
        .args(["--otlp-http-addr", &format!("0.0.0.0:{http}")])
        .args(["--api-addr", &format!("0.0.0.0:{api}")])
        .args(extra);
    let (running, stdout) = spawn(command);
    let lines = lines_until(stdout, |line| line.starts_with("signal-aggregator ready"));
    (running, lines)
}

const LOOPBACK: &str = "0100007F";
const ANY: &str = "00000000";

#[tokio::test]
async fn without_tokens_everything_listens_on_loopback_and_says_so() {
    let ports = [free_port(), free_port(), free_port()];
    let (_running, lines) = start(ports, &[]);
    let warnings: Vec<&String> = lines.iter().filter(|l| l.starts_with("WARNING:")).collect();
    assert_eq!(warnings.len(), 2, "{lines:?}");
    assert!(warnings[0].contains("--ingest-tokens-file") && warnings[0].contains("loopback"));
    assert!(warnings[1].contains("--query-tokens-file") && warnings[1].contains("loopback"));
    for port in ports {
        assert_eq!(
            listening_addresses(port),
            vec![LOOPBACK.to_string()],
            "port {port}"
        );
    }
    // Open API on loopback.
    let response = reqwest::get(format!(
        "http://127.0.0.1:{}/v1/scheduler/capacity",
        ports[2]
    ))
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn with_tokens_it_binds_as_configured_and_enforces_them() {
    let dir = tempfile::tempdir().unwrap();
    let ingest = dir.path().join("ingest.yaml");
    let query = dir.path().join("query.yaml");
    std::fs::write(&ingest, "us-east-1: east-token\n").unwrap();
    std::fs::write(&query, "operators: [op]\ntenants: {team-a: a-token}\n").unwrap();
    let ports = [free_port(), free_port(), free_port()];
    let (_running, lines) = start(
        ports,
        &[
            "--ingest-tokens-file",
            ingest.to_str().unwrap(),
            "--query-tokens-file",
            query.to_str().unwrap(),
        ],
    );
    assert!(
        !lines.iter().any(|l| l.starts_with("WARNING:")),
        "{lines:?}"
    );
    for port in ports {
        assert_eq!(
            listening_addresses(port),
            vec![ANY.to_string()],
            "port {port}"
        );
    }
    let client = reqwest::Client::new();
    let body = r#"{"resourceSpans":[{"resource":{"attributes":[
        {"key":"modelplane.tenant","value":{"stringValue":"team-a"}},
        {"key":"modelplane.cluster","value":{"stringValue":"forged"}}]},
        "scopeSpans":[{"spans":[{"traceId":"01010101010101010101010101010101","spanId":"0202020202020202",
        "name":"llm_request","startTimeUnixNano":"NOW0","endTimeUnixNano":"NOW1",
        "attributes":[{"key":"gen_ai.response.model","value":{"stringValue":"m1"}}]}]}]}]}"#;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let body = body
        .replace("NOW0", &(now - 1_000_000_000).to_string())
        .replace("NOW1", &now.to_string());
    let send = |token: Option<&'static str>| {
        let mut request = client
            .post(format!("http://127.0.0.1:{}/v1/traces", ports[1]))
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    assert_eq!(send(None).await.unwrap().status(), 401);
    assert_eq!(send(Some("east-token")).await.unwrap().status(), 200);

    let api = format!("http://127.0.0.1:{}", ports[2]);
    let path = format!("{api}/v1/tenants/team-a/signals/RequestLifecycle?window=5m");
    assert_eq!(client.get(&path).send().await.unwrap().status(), 401);
    let answer: serde_json::Value = client
        .get(&path)
        .bearer_auth("a-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["groups"][0]["cluster"], "us-east-1", "{answer}");
    assert_eq!(answer["groups"][0]["requests"], 1.0, "{answer}");
    let metrics = client.get(format!("{api}/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 401);
    let ready = client.get(format!("{api}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
}
