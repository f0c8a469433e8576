//! The HTTP query API: routes, parameters, JSON, the OpenAPI document,
//! health and `/metrics`. Answers come from the read model ([`crate::query`]).
//!
//! The router is built from three parts so access control can wrap each on its
//! own: tenant routes (`/v1/tenants/{tenant}/...`), fleet routes (`/v1/fleet/...`,
//! cross-tenant, filtered by a [`FleetPolicy`]) and operational routes (health,
//! readiness, metrics, OpenAPI).

mod access;
pub mod error;
mod fleet;
mod metrics;
pub mod model;
pub mod openapi;
pub mod params;
mod scheduler;
pub mod signals;
mod tenant;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;

use crate::auth::QueryAccess;
use crate::clock::{Clock, rfc3339, system_clock};
use crate::query::{AllSeries, FleetPolicy, NoPrices, PriceBook};
use crate::store::{SketchStore, StoreError};
use crate::telemetry::SelfMetrics;

pub use error::ApiError;

/// API flags (who may read: [`crate::auth::AuthArgs`]).
#[derive(Debug, Clone, clap::Args)]
pub struct ApiArgs {
    /// Where to serve the query API, `/metrics`, `/healthz` and `/readyz`.
    #[arg(
        long,
        env = "SIGNAL_AGGREGATOR_API_ADDR",
        default_value = "0.0.0.0:8080"
    )]
    pub api_addr: std::net::SocketAddr,
}

/// A JSON answer: every answer of the query API goes through here, so that
/// no number renders as `-0.0` (an empty `f64` sum is negative zero).
pub struct Answer<T>(pub T);

impl<T: serde::Serialize> IntoResponse for Answer<T> {
    fn into_response(self) -> Response {
        match serde_json::to_string(&self.0) {
            Ok(text) => (
                [(
                    axum::http::header::CONTENT_TYPE,
                    axum::http::HeaderValue::from_static("application/json"),
                )],
                positive_zeros(&text),
            )
                .into_response(),
            Err(error) => {
                tracing::error!(%error, "an answer could not be serialized");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }
}

/// `json` (compact, as `serde_json::to_string` writes it) with every number
/// `-0.0` written `0.0`; strings are left alone.
pub fn positive_zeros(json: &str) -> String {
    let bytes = json.as_bytes();
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped, mut copied) = (false, false, 0);
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        if b == b'"' {
            in_string = true;
        } else if b == b'-'
            && bytes[i..].starts_with(b"-0.0")
            && !matches!(bytes.get(i + 4), Some(b'0'..=b'9' | b'e' | b'E'))
        {
            out.push_str(&json[copied..i]);
            copied = i + 1;
        }
    }
    out.push_str(&json[copied..]);
    out
}

/// Window over which `/metrics` reports the per-series gauges.
pub const METRICS_WINDOW_SECS: u64 = 300;

#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<dyn SketchStore>,
    pub metrics: Arc<SelfMetrics>,
    pub clock: Clock,
    pub fleet: Arc<dyn FleetPolicy>,
    /// Configured GPU prices (the fleet directory in the binary).
    pub prices: Arc<dyn PriceBook>,
    /// Who may read what; open unless query tokens are configured.
    pub access: Arc<QueryAccess>,
}

impl ApiState {
    pub fn new(store: Arc<dyn SketchStore>, metrics: Arc<SelfMetrics>) -> Self {
        ApiState {
            store,
            metrics,
            clock: system_clock(),
            fleet: Arc::new(AllSeries),
            prices: Arc::new(NoPrices),
            access: Arc::new(QueryAccess::open()),
        }
    }
}

/// Every path the API router serves, in OpenAPI template syntax. The OpenAPI
/// test checks the document against this list and each path against the router.
pub const ROUTES: &[&str] = &[
    "/v1/tenants/{tenant}/signals/{kind}",
    "/v1/fleet/compare",
    "/v1/scheduler/capacity",
    "/v1/scheduler/prefix-overlap",
    "/v1/scheduler/overflow",
    "/openapi.json",
    "/healthz",
    "/readyz",
    "/metrics",
];

pub fn tenant_routes() -> Router<ApiState> {
    Router::new().route("/v1/tenants/{tenant}/signals/{kind}", get(tenant::signals))
}

pub fn fleet_routes() -> Router<ApiState> {
    Router::new().route("/v1/fleet/compare", get(fleet::compare))
}

/// Operator-only answers for schedulers (fleet-visible series only).
pub fn scheduler_routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/scheduler/capacity", get(scheduler::capacity))
        .route(
            "/v1/scheduler/prefix-overlap",
            get(scheduler::prefix_overlap),
        )
        .route("/v1/scheduler/overflow", get(scheduler::overflow))
}

pub fn operational_routes() -> Router<ApiState> {
    Router::new()
        .route("/openapi.json", get(openapi_json))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::render))
}

/// The whole API, behind `state.access` (401/403 before any handler runs).
pub fn router(state: ApiState) -> Router {
    let access = state.access.clone();
    tenant_routes()
        .merge(fleet_routes())
        .merge(scheduler_routes())
        .merge(operational_routes())
        .fallback(not_found)
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            access,
            access::enforce,
        ))
        .layer(axum::middleware::from_fn(query_span))
}

/// A `query` span around each API request but the probes (exported when
/// `OTEL_EXPORTER_OTLP_*` asks for it): method, route template (never the
/// concrete path or query string) and status code.
async fn query_span(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|path| path.as_str().to_owned());
    let Some(route) = route.filter(|r| !matches!(r.as_str(), "/healthz" | "/readyz")) else {
        return next.run(request).await;
    };
    let span = tracing::info_span!(
        "query",
        otel.kind = "server",
        http.request.method = %request.method(),
        http.route = route,
        http.response.status_code = tracing::field::Empty,
    );
    let response = tracing::Instrument::instrument(next.run(request), span.clone()).await;
    span.record(
        "http.response.status_code",
        i64::from(response.status().as_u16()),
    );
    response
}

/// Serves `router` on `listener` until `shutdown` resolves, then drains.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn openapi_json() -> Json<serde_json::Value> {
    Json(openapi::document())
}

async fn healthz() -> Json<model::Health> {
    Json(model::Health {
        status: model::HealthStatus::Ok,
    })
}

async fn readyz(State(state): State<ApiState>) -> Response {
    let health = state.store.health().await;
    let status = if health.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = model::Readiness {
        status: if health.ready {
            model::ReadyStatus::Ready
        } else {
            model::ReadyStatus::NotReady
        },
        store: model::StoreReadiness {
            ready: health.ready,
            detail: health.detail,
            series: health.series,
        },
    };
    (status, Json(body)).into_response()
}

async fn not_found() -> ApiError {
    ApiError::not_found(format!(
        "no such endpoint; this API serves {} (see /openapi.json)",
        ROUTES.join(", ")
    ))
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => ApiError::unavailable(error.to_string()),
            StoreError::Corrupt(_) => ApiError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                code: "store_corrupt",
                message: error.to_string(),
            },
        }
    }
}

/// The `window` object every query response carries.
pub fn window(range: params::TimeRange) -> model::Window {
    model::Window {
        from: model::Timestamp(rfc3339(range.from_unix_secs)),
        to: model::Timestamp(rfc3339(range.to_unix_secs)),
        from_unix_secs: range.from_unix_secs,
        to_unix_secs: range.to_unix_secs,
        seconds: range.to_unix_secs - range.from_unix_secs,
    }
}
