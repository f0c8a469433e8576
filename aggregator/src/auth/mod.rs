//! Who may send and who may read.
//!
//! - Ingest: per-cluster bearer tokens ([`IngestTokens`], plugged into
//!   `IngestConfig::authenticator`); a token names exactly one cluster. The
//!   tokens come from `--ingest-tokens-file` and/or the [`issuer`], which
//!   keeps one Secret per InferenceCluster with Kubernetes on.
//! - Query: operator and per-tenant bearer tokens ([`query::QueryAccess`],
//!   an axum layer on the API router).
//!
//! Token files, rotation and where tokens come from: `docs/auth.md`.

pub mod files;
pub mod ingest;
pub mod issuer;
pub mod query;
pub mod tokens;

pub use files::{QueryPrincipal, Reloading, parse_ingest_tokens, parse_query_tokens};
pub use ingest::{IngestTokenSource, IngestTokens};
pub use query::QueryAccess;
