//! Shared by the `api` tests: a real API server on a loopback port over an
//! embedded store filled with hand-built sketches, and a pinned clock.

use std::sync::Arc;

use signal_aggregator::api::{self, ApiState};
use signal_aggregator::signal::{
    Field, FieldKey, HistogramDelta, Point, SeriesKey, SignalKind, Value,
};
use signal_aggregator::sketch::{SeriesSketch, Window, WindowedSketch};
use signal_aggregator::store::SketchStore;
use signal_aggregator::store::memory::{MemoryStore, MemoryStoreConfig};
use signal_aggregator::telemetry::SelfMetrics;

/// "Now" for every API test: 2026-01-01T01:00:00Z, on an hour boundary.
pub const NOW: u64 = 1_767_229_200;

pub fn key(tenant: &str, cluster: &str, model: &str, kind: SignalKind) -> SeriesKey {
    SeriesKey {
        tenant: tenant.into(),
        cluster: cluster.into(),
        model: model.into(),
        kind,
    }
}

/// Builds one series' sketch for the minute containing `at_unix_secs`.
pub struct SketchBuilder {
    key: SeriesKey,
    at: u64,
    sketch: SeriesSketch,
}

impl SketchBuilder {
    pub fn new(key: SeriesKey, at_unix_secs: u64) -> Self {
        SketchBuilder {
            key,
            at: at_unix_secs,
            sketch: SeriesSketch::default(),
        }
    }

    pub fn point(self, field: FieldKey, value: Value) -> Self {
        let at = self.at;
        self.point_at(field, value, at)
    }

    /// A point stamped `at_unix_secs` (same minute window as the builder's).
    pub fn point_at(mut self, field: FieldKey, value: Value, at_unix_secs: u64) -> Self {
        self.sketch.record(&Point {
            field,
            time_unix_nano: at_unix_secs * 1_000_000_000,
            value,
        });
        self
    }

    pub fn samples(mut self, field: Field, values: impl IntoIterator<Item = f64>) -> Self {
        for v in values {
            self = self.point(FieldKey::plain(field), Value::Sample(v));
        }
        self
    }

    pub fn counter(self, field: Field, increase: f64) -> Self {
        self.point(FieldKey::plain(field), Value::Counter(increase))
    }

    pub fn gauge(self, field: Field, reading: f64) -> Self {
        self.point(FieldKey::plain(field), Value::Gauge(reading))
    }

    pub fn histogram(self, field: Field, bounds: &[f64], counts: &[u64], sum: f64) -> Self {
        let delta = HistogramDelta {
            bounds: bounds.to_vec(),
            counts: counts.to_vec(),
            sum,
            count: counts.iter().sum(),
        };
        self.point(FieldKey::plain(field), Value::Histogram(delta))
    }

    pub fn build(self) -> WindowedSketch {
        WindowedSketch {
            key: self.key,
            window: Window::minute_containing(self.at),
            sketch: self.sketch,
        }
    }
}

pub struct TestApi {
    pub base: String,
    pub store: Arc<MemoryStore>,
    pub metrics: Arc<SelfMetrics>,
    pub client: reqwest::Client,
}

impl TestApi {
    /// Serves the API on a free loopback port over `sketches`, with "now" = [`NOW`].
    pub async fn start(sketches: Vec<WindowedSketch>) -> TestApi {
        TestApi::start_with(sketches, |_| {}).await
    }

    /// Like [`TestApi::start`], with `configure` adjusting the state (access,
    /// fleet policy, prices) before the server starts.
    pub async fn start_with(
        sketches: Vec<WindowedSketch>,
        configure: impl FnOnce(&mut ApiState),
    ) -> TestApi {
        let store = Arc::new(MemoryStore::new(MemoryStoreConfig::default()));
        store.merge(sketches).await.expect("embedded merge");
        let metrics = Arc::new(SelfMetrics::default());
        let mut state = ApiState::new(store.clone() as Arc<dyn SketchStore>, metrics.clone());
        state.clock = Arc::new(|| NOW);
        configure(&mut state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let router = api::router(state);
        tokio::spawn(async move {
            api::serve(listener, router, std::future::pending())
                .await
                .unwrap();
        });
        TestApi {
            base,
            store,
            metrics,
            client: reqwest::Client::new(),
        }
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        self.get_as(path, None).await
    }

    /// GET with `authorization: Bearer <token>` when a token is given.
    pub async fn get_as(&self, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(serde_json::Value::Null);
        (status, body)
    }

    pub async fn get_text(&self, path: &str) -> (u16, String, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (status, content_type, response.text().await.unwrap())
    }

    /// GET that must succeed; returns the JSON body.
    pub async fn ok(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "GET {path} -> {body}");
        body
    }

    /// GET that must fail with 400 naming `parameter`; returns the message.
    pub async fn bad_request(&self, path: &str, parameter: &str) -> String {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 400, "GET {path} -> {body}");
        assert_eq!(body["error"]["code"], "invalid_parameter", "{body}");
        let message = body["error"]["message"].as_str().unwrap().to_string();
        assert!(
            message.contains(&format!("{parameter:?}")),
            "message should name {parameter:?}: {message}"
        );
        message
    }
}

/// Asserts `actual` is within the quantile sketch's 1 % relative error of `expected`.
pub fn assert_close(actual: &serde_json::Value, expected: f64, what: &str) {
    let actual = actual
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: not a number: {actual}"));
    let tolerance = expected.abs() * signal_aggregator::sketch::quantile::RELATIVE_ACCURACY + 1e-12;
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: {actual} is not within 1% of {expected}"
    );
}

/// The group whose `cluster`/`model` match (None = key must be absent).
pub fn group<'a>(
    body: &'a serde_json::Value,
    cluster: Option<&str>,
    model: Option<&str>,
) -> &'a serde_json::Value {
    body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| {
            g.get("cluster").and_then(|c| c.as_str()) == cluster
                && g.get("model").and_then(|m| m.as_str()) == model
        })
        .unwrap_or_else(|| panic!("no group {cluster:?}/{model:?} in {body}"))
}
