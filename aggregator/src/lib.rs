//! signal-aggregator: OTLP in, mergeable per-tenant sketches out.
//!
//! The write path, in the order data flows: `ingest` (OTLP/gRPC and
//! OTLP/HTTP) → `pipeline` (drives one export request through the rest, and
//! taps per-cluster activity) → `normalize` (typed signals, allowlist,
//! cumulative → delta) → `sketch` (per-window mergeable sketches) → `store`
//! (embedded or Redis).
//!
//! The read side: `query` turns stored sketches into answers; its two users
//! are `api` (the HTTP query API, `/metrics`, OpenAPI) and `status` (writes
//! answers onto the XRs). `directory` is what the XR watch knows; `auth`
//! decides who may send and read. `app` wires it all together.

pub mod api;
pub mod app;
pub mod auth;
pub mod clock;
pub mod directory;
pub mod forward;
pub mod ingest;
pub mod normalize;
pub mod pipeline;
pub mod query;
pub mod signal;
pub mod sketch;
pub mod status;
pub mod store;
pub mod telemetry;
pub mod watch_backoff;
