//! Shared by the test modules: a real API server over hand-built sketches
//! (`api`), the `signal-aggregator` binary as a child process (`binary`), a
//! recording export sink behind real OTLP listeners (`ingest`), readers of a
//! normalized batch (`normalize`), real redis-server processes (`redis`), and
//! an in-process Kubernetes API server (`status`). OTLP payloads come from
//! `otlp_test_kit`.

pub mod api;
pub mod binary;
pub mod ingest;
pub mod normalize;
pub mod redis;
pub mod stack;
pub mod status;
