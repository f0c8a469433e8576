//! Who may send and who may read.
//!
//! - Ingest: per-cluster bearer tokens ([`IngestTokens`], plugged into
//!   `IngestConfig::authenticator`); a token names exactly one cluster. The
//!   tokens come from `--ingest-tokens-file` and/or the [`issuer`], which
//!   keeps one Secret per InferenceCluster with Kubernetes on.
//! - Query: operator and per-tenant bearer tokens ([`query::QueryAccess`];
//!   the API enforces its answer as a layer on its router).
//!
//! Token files, rotation and where tokens come from: `docs/auth.md`.

pub mod files;
pub mod ingest;
pub mod issuer;
pub mod query;
pub mod tokens;

use std::path::PathBuf;

use apis::RetentionDuration;

pub use files::{QueryPrincipal, Reloading, parse_ingest_tokens, parse_query_tokens};
pub use ingest::{IngestTokenSource, IngestTokens};
pub use query::{AccessError, QueryAccess};

/// Token flags (issued ingest tokens: [`issuer::IssuerArgs`]).
#[derive(Debug, Clone, clap::Args)]
pub struct AuthArgs {
    /// Per-cluster ingest tokens, YAML or JSON `{<cluster>: <token> | [<token>, ...]}`
    /// (a token may be written `sha256:<hex>`). Accepted in addition to issued
    /// tokens (`--issue-ingest-tokens`); with neither, ingest is
    /// unauthenticated and bound to loopback only.
    #[arg(long, env = "SIGNAL_AGGREGATOR_INGEST_TOKENS_FILE")]
    pub ingest_tokens_file: Option<PathBuf>,

    /// Query tokens, `{operators: [<token>...], tenants: {<tenant>: [<token>...]}}`.
    /// Without it the API is open and bound to loopback only.
    #[arg(long, env = "SIGNAL_AGGREGATOR_QUERY_TOKENS_FILE")]
    pub query_tokens_file: Option<PathBuf>,

    /// How often the token files are checked for changes (rotation, revocation).
    #[arg(
        long,
        env = "SIGNAL_AGGREGATOR_TOKENS_RELOAD_INTERVAL",
        default_value = "5s"
    )]
    pub tokens_reload_interval: RetentionDuration,

    /// Serve `/metrics` without a token even when query tokens are configured
    /// (per-tenant series appear there: use only where the scraper is trusted).
    #[arg(long, env = "SIGNAL_AGGREGATOR_METRICS_OPEN")]
    pub metrics_open: bool,
}
