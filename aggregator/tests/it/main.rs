//! The aggregator's integration tests, one binary: each module is named after
//! the layer it tests, and `support` holds what several of them share. One
//! binary links the library once (it was ~30 binaries, one link each).

mod agent_capture;
mod api;
mod app;
mod architecture;
mod auth;
mod directory;
mod forward;
mod ingest;
mod normalize;
mod pipeline;
mod signals;
mod sketch;
mod status;
mod store;
mod support;
