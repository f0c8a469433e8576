//! signal-aggregator: OTLP in, mergeable per-tenant sketches out.
//!
//! Data flows through the modules in this order:
//! `ingest` (OTLP/gRPC and OTLP/HTTP) → `normalize` (typed signals, allowlist,
//! cumulative → delta) → `sketch` (per-window mergeable sketches) → `store`
//! (embedded or Redis) → `serve` (query API, `/metrics`). `pipeline` is the
//! seam that drives one export request through normalize, sketch and store.

pub mod auth;
pub mod config;
pub mod directory;
pub mod ingest;
pub mod normalize;
pub mod pipeline;
pub mod serve;
pub mod signal;
pub mod sketch;
pub mod status;
pub mod store;
pub mod synthetic;
pub mod telemetry;
