//! Query API, OpenAPI document, health and `/metrics`.
//!
//! The router is built from three parts so access control can wrap each on its
//! own: tenant routes (`/v1/tenants/{tenant}/...`), fleet routes (`/v1/fleet/...`,
//! cross-tenant, filtered by a [`FleetPolicy`]) and operational routes (health,
//! readiness, metrics, OpenAPI).

pub mod cost;
pub mod error;
mod fleet;
mod metrics;
pub mod openapi;
pub mod params;
pub mod readout;
mod scheduler;
pub mod signals;
mod tenant;
mod time;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use serde_json::json;

use crate::auth::QueryAccess;
use crate::signal::SeriesKey;
use crate::store::{SketchStore, StoreError};
use crate::telemetry::SelfMetrics;

pub use error::ApiError;
pub use time::rfc3339;

/// Seconds since the unix epoch; injectable so tests can pin "now".
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The end of the current second: query ranges end exclusively at "now", so
/// rounding down would leave out data stamped within the current second — at a
/// minute boundary, a whole new window.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
            .unwrap_or(0)
    })
}

/// Which series may contribute to cross-tenant (fleet) answers.
pub trait FleetPolicy: Send + Sync {
    fn includes(&self, key: &SeriesKey) -> bool;
}

/// Every series counts toward fleet roll-ups. The default until per-service
/// opt-in (`observability.metrics.scope: Fleet`) is known to the aggregator.
pub struct AllSeries;

impl FleetPolicy for AllSeries {
    fn includes(&self, _key: &SeriesKey) -> bool {
        true
    }
}

/// Window over which `/metrics` reports the per-series gauges.
pub const METRICS_WINDOW_SECS: u64 = 300;

/// Prometheus text another component appends to `/metrics` (e.g. the Redis
/// store's connection and buffer gauges).
pub type MetricsSource = Arc<dyn Fn() -> String + Send + Sync>;

#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<dyn SketchStore>,
    pub metrics: Arc<SelfMetrics>,
    pub clock: Clock,
    pub fleet: Arc<dyn FleetPolicy>,
    pub extra_metrics: Vec<MetricsSource>,
    /// Configured GPU prices (the fleet directory in the binary).
    pub prices: Arc<dyn cost::PriceBook>,
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
            extra_metrics: Vec::new(),
            prices: Arc::new(cost::NoPrices),
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
            crate::auth::query::enforce,
        ))
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

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(state): State<ApiState>) -> Response {
    let health = state.store.health().await;
    let status = if health.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if health.ready { "ready" } else { "not_ready" },
        "store": { "ready": health.ready, "detail": health.detail, "series": health.series },
    });
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
pub fn window_json(range: params::TimeRange) -> serde_json::Value {
    json!({
        "from": rfc3339(range.from_unix_secs),
        "to": rfc3339(range.to_unix_secs),
        "from_unix_secs": range.from_unix_secs,
        "to_unix_secs": range.to_unix_secs,
        "seconds": range.to_unix_secs - range.from_unix_secs,
    })
}
