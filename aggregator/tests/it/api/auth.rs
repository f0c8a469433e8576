//! Query authorization over a real socket: tenant A vs tenant B, the operator,
//! missing and invalid tokens, open probes, `/metrics` and token rotation.

use std::sync::Arc;
use std::time::Duration;

use crate::support::api::{NOW, SketchBuilder, TestApi, key};
use signal_aggregator::auth::{QueryAccess, Reloading, parse_query_tokens};
use signal_aggregator::signal::{Field, SignalKind};

const TOKENS: &str = "operators: [op-token]\ntenants:\n  team-a: a-token\n  team-b: [b-token]\n";

async fn api(tokens: &str, metrics_open: bool) -> (TestApi, tempfile::NamedTempFile) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), tokens).unwrap();
    let table = Reloading::open(
        file.path(),
        parse_query_tokens,
        Some(Duration::from_millis(20)),
    )
    .unwrap();
    let sketches = ["team-a", "team-b"]
        .map(|tenant| {
            SketchBuilder::new(
                key(tenant, "c1", "m1", SignalKind::RequestLifecycle),
                NOW - 60,
            )
            .counter(Field::Requests, 10.0)
            .build()
        })
        .to_vec();
    let api = TestApi::start_with(sketches, |state| {
        state.access = Arc::new(QueryAccess::with_tokens(table, metrics_open));
    })
    .await;
    (api, file)
}

async fn status_and_code(
    api: &TestApi,
    path: &str,
    token: Option<&str>,
) -> (u16, serde_json::Value) {
    let (status, body) = api.get_as(path, token).await;
    (status, body["error"]["code"].clone())
}

#[tokio::test]
async fn the_auth_matrix() {
    let (api, _file) = api(TOKENS, false).await;
    let a = "/v1/tenants/team-a/signals/RequestLifecycle";
    let b = "/v1/tenants/team-b/signals/RequestLifecycle";
    let fleet = "/v1/fleet/compare?kind=RequestLifecycle&field=ttft_seconds";
    let scheduler = "/v1/scheduler/capacity";

    // Tenant A reads A, and only A.
    let (status, body) = api.get_as(a, Some("a-token")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["groups"][0]["requests"], 10.0);
    let (status, body) = api.get_as(b, Some("a-token")).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("team-a") && message.contains("team-b"),
        "{message}"
    );
    // B reads B, not A.
    assert_eq!(api.get_as(b, Some("b-token")).await.0, 200);
    assert_eq!(api.get_as(a, Some("b-token")).await.0, 403);
    // Tenants cannot read fleet, scheduler or /metrics.
    for path in [fleet, scheduler, "/metrics"] {
        let (status, code) = status_and_code(&api, path, Some("a-token")).await;
        assert_eq!((status, code.as_str()), (403, Some("forbidden")), "{path}");
    }
    // The operator reads everything.
    for path in [a, b, fleet, scheduler] {
        assert_eq!(api.get_as(path, Some("op-token")).await.0, 200, "{path}");
    }
    let (status, _, text) = api_text(&api, "/metrics", Some("op-token")).await;
    assert_eq!(status, 200);
    assert!(text.contains("modelplane_aggregator_"), "{text}");
    // Missing or invalid tokens: 401 with a message saying what to send.
    for path in [a, fleet, scheduler, "/metrics"] {
        let (status, body) = api.get_as(path, None).await;
        assert_eq!(status, 401, "{path}");
        assert_eq!(body["error"]["code"], "unauthenticated");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("authorization: Bearer"),
            "{body}"
        );
        let (status, body) = api.get_as(path, Some("wrong-token")).await;
        assert_eq!(status, 401, "{path}");
        assert!(!body.to_string().contains("wrong-token"), "{body}");
    }
    let response = reqwest::Client::new()
        .get(format!("{}{a}", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    // Probes and the API description stay open.
    for path in ["/healthz", "/readyz", "/openapi.json"] {
        assert_eq!(api.get(path).await.0, 200, "{path}");
    }
}

async fn api_text(api: &TestApi, path: &str, token: Option<&str>) -> (u16, String, String) {
    let mut request = api.client.get(format!("{}{path}", api.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, String::new(), response.text().await.unwrap())
}

#[tokio::test]
async fn metrics_can_be_opened_explicitly() {
    let (api, _file) = api(TOKENS, true).await;
    let (status, _, text) = api_text(&api, "/metrics", None).await;
    assert_eq!(status, 200);
    assert!(text.contains("modelplane_aggregator_"));
    // Everything else still needs a token.
    assert_eq!(api.get("/v1/scheduler/capacity").await.0, 401);
}

#[tokio::test]
async fn rotated_query_tokens_take_effect_without_a_restart() {
    let (api, file) = api(TOKENS, false).await;
    let a = "/v1/tenants/team-a/signals/RequestLifecycle";
    std::fs::write(
        file.path(),
        "operators: [op-token]\ntenants:\n  team-a: [a-token, a-new]\n",
    )
    .unwrap();
    let mut reloaded = false;
    for _ in 0..200 {
        if api.get_as(a, Some("a-new")).await.0 == 200 {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(reloaded, "the new token never took effect");
    assert_eq!(api.get_as(a, Some("a-token")).await.0, 200);
    // team-b was removed: its token is revoked.
    assert_eq!(
        api.get_as(
            "/v1/tenants/team-b/signals/RequestLifecycle",
            Some("b-token")
        )
        .await
        .0,
        401
    );
}

#[tokio::test]
async fn without_tokens_the_api_is_open() {
    let api = TestApi::start(vec![]).await;
    assert_eq!(api.get("/v1/scheduler/capacity").await.0, 200);
    assert_eq!(api.get("/v1/tenants/x/signals/Cost").await.0, 200);
}

#[tokio::test]
async fn the_openapi_document_describes_the_access_rules() {
    let api = TestApi::start(vec![]).await;
    let doc = api.ok("/openapi.json").await;
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert_eq!(doc["security"], serde_json::json!([{"bearer": []}]));
    for open in ["/healthz", "/readyz", "/openapi.json"] {
        assert_eq!(doc["paths"][open]["get"]["security"], serde_json::json!([]));
    }
    for path in [
        "/v1/tenants/{tenant}/signals/{kind}",
        "/v1/fleet/compare",
        "/v1/scheduler/capacity",
        "/v1/scheduler/prefix-overlap",
        "/v1/scheduler/overflow",
        "/metrics",
    ] {
        let responses = &doc["paths"][path]["get"]["responses"];
        assert_eq!(
            responses["401"]["content"]["application/json"]["example"]["error"]["code"],
            "unauthenticated",
            "{path}"
        );
        assert_eq!(
            responses["403"]["content"]["application/json"]["example"]["error"]["code"],
            "forbidden",
            "{path}"
        );
    }
}
