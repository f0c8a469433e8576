//! Who may send and who may read.
//!
//! - Ingest: per-cluster bearer tokens ([`IngestTokens`], plugged into
//!   `IngestConfig::authenticator`); a token names exactly one cluster.
//! - Query: operator and per-tenant bearer tokens ([`query::QueryAccess`],
//!   an axum layer on the API router).
//!
//! Token files, rotation and where tokens come from: `docs/auth.md`.

pub mod files;
pub mod ingest;
pub mod query;
pub mod tokens;

pub use files::{QueryPrincipal, Reloading, parse_ingest_tokens, parse_query_tokens};
pub use ingest::IngestTokens;
pub use query::QueryAccess;
