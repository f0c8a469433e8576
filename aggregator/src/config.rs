//! Command-line configuration. Every flag can also come from the environment
//! (`SIGNAL_AGGREGATOR_<FLAG>`), which is how the deployment manifests set them.

use std::net::SocketAddr;

use apis::RetentionDuration;
use clap::{Parser, ValueEnum};

use crate::ingest::IngestConfig;
use crate::normalize::NormalizeConfig;
use crate::store::memory::MemoryStoreConfig;
use crate::store::redis::{RedisArgs, RedisStoreConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (for log collectors).
    Json,
    /// Human-readable lines.
    Text,
}

#[derive(Debug, Clone, Parser)]
#[command(
    name = "signal-aggregator",
    version,
    about = "Receives OTLP from the signal agents, keeps mergeable per-tenant sketches and serves them"
)]
pub struct Config {
    /// Where to accept OTLP/gRPC (metrics and traces).
    #[arg(
        long,
        env = "SIGNAL_AGGREGATOR_OTLP_GRPC_ADDR",
        default_value = "0.0.0.0:4317"
    )]
    pub otlp_grpc_addr: SocketAddr,

    /// Where to accept OTLP/HTTP (`POST /v1/metrics`, `/v1/traces`; protobuf or JSON).
    #[arg(
        long,
        env = "SIGNAL_AGGREGATOR_OTLP_HTTP_ADDR",
        default_value = "0.0.0.0:4318"
    )]
    pub otlp_http_addr: SocketAddr,

    /// Where to serve the query API, `/metrics`, `/healthz` and `/readyz`.
    #[arg(
        long,
        env = "SIGNAL_AGGREGATOR_API_ADDR",
        default_value = "0.0.0.0:8080"
    )]
    pub api_addr: SocketAddr,

    /// How long sketches are kept (e.g. 30d, 12h). Queries cannot reach further back.
    #[arg(long, env = "SIGNAL_AGGREGATOR_RETENTION", default_value = "30d")]
    pub retention: RetentionDuration,

    /// Age after which minute windows are folded into hour windows.
    #[arg(long, env = "SIGNAL_AGGREGATOR_ROLLUP_AFTER", default_value = "2h")]
    pub rollup_after: RetentionDuration,

    /// Largest OTLP request accepted, in bytes, after decompression (larger: 413).
    #[arg(long, env = "SIGNAL_AGGREGATOR_MAX_REQUEST_BYTES",
          default_value_t = IngestConfig::default().max_request_bytes)]
    pub max_request_bytes: usize,

    /// OTLP requests processed at once per listener; beyond this senders are told to retry later.
    #[arg(long, env = "SIGNAL_AGGREGATOR_MAX_IN_FLIGHT_REQUESTS",
          default_value_t = IngestConfig::default().max_in_flight_requests)]
    pub max_in_flight_requests: usize,

    /// Series (cluster × model × kind) one tenant may have; new ones beyond it are dropped and counted.
    #[arg(long, env = "SIGNAL_AGGREGATOR_MAX_SERIES_PER_TENANT",
          default_value_t = NormalizeConfig::default().max_series_per_tenant)]
    pub max_series_per_tenant: usize,

    /// Per-cluster ingest tokens, YAML or JSON `{<cluster>: <token> | [<token>, ...]}`
    /// (a token may be written `sha256:<hex>`). Accepted in addition to issued
    /// tokens (`--issue-ingest-tokens`); with neither, ingest is
    /// unauthenticated and bound to loopback only.
    #[arg(long, env = "SIGNAL_AGGREGATOR_INGEST_TOKENS_FILE")]
    pub ingest_tokens_file: Option<std::path::PathBuf>,

    /// Query tokens, `{operators: [<token>...], tenants: {<tenant>: [<token>...]}}`.
    /// Without it the API is open and bound to loopback only.
    #[arg(long, env = "SIGNAL_AGGREGATOR_QUERY_TOKENS_FILE")]
    pub query_tokens_file: Option<std::path::PathBuf>,

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

    #[command(flatten)]
    pub redis: RedisArgs,

    #[command(flatten)]
    pub status: crate::status::StatusArgs,

    #[command(flatten)]
    pub tokens: crate::auth::issuer::IssuerArgs,

    /// Log line format. The level comes from `RUST_LOG` (default `info`).
    #[arg(
        long,
        env = "SIGNAL_AGGREGATOR_LOG_FORMAT",
        value_enum,
        default_value = "json"
    )]
    pub log_format: LogFormat,
}

/// Which sketch store to run: Redis with `--redis-url`, else embedded.
/// Everything downstream only sees the `SketchStore` trait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChoice {
    Embedded(MemoryStoreConfig),
    Redis(RedisStoreConfig),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("--rollup-after ({rollup_after}) must be shorter than --retention ({retention})")]
    RollupAfterRetention {
        rollup_after: RetentionDuration,
        retention: RetentionDuration,
    },
    #[error("--{flag} must be at least 1")]
    Zero { flag: &'static str },
}

impl Config {
    /// Cross-flag checks clap cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.rollup_after >= self.retention {
            return Err(ConfigError::RollupAfterRetention {
                rollup_after: self.rollup_after,
                retention: self.retention,
            });
        }
        for (flag, value) in [
            ("max-request-bytes", self.max_request_bytes),
            ("max-in-flight-requests", self.max_in_flight_requests),
            ("max-series-per-tenant", self.max_series_per_tenant),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero { flag });
            }
        }
        Ok(())
    }

    pub fn store(&self) -> StoreChoice {
        let retention_secs = self.retention.as_secs();
        let rollup_after_secs = self.rollup_after.as_secs();
        match RedisStoreConfig::from_args(&self.redis, retention_secs, rollup_after_secs) {
            Some(redis) => StoreChoice::Redis(redis),
            None => StoreChoice::Embedded(MemoryStoreConfig {
                retention_secs,
                rollup_after_secs,
            }),
        }
    }

    pub fn ingest(&self) -> IngestConfig {
        IngestConfig {
            max_request_bytes: self.max_request_bytes,
            max_in_flight_requests: self.max_in_flight_requests,
            ..IngestConfig::default()
        }
    }

    /// The address to bind: as configured when the listener is protected by
    /// tokens, else its loopback equivalent (unauthenticated listeners are
    /// never reachable from other hosts). The bool says whether it changed.
    pub fn bind_addr(configured: SocketAddr, protected: bool) -> (SocketAddr, bool) {
        if protected || configured.ip().is_loopback() {
            return (configured, false);
        }
        let loopback: std::net::IpAddr = if configured.is_ipv6() {
            std::net::Ipv6Addr::LOCALHOST.into()
        } else {
            std::net::Ipv4Addr::LOCALHOST.into()
        };
        (SocketAddr::new(loopback, configured.port()), true)
    }

    pub fn normalize(&self) -> NormalizeConfig {
        NormalizeConfig {
            max_series_per_tenant: self.max_series_per_tenant,
            ..NormalizeConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_ports_and_retention() {
        let config = Config::try_parse_from(["signal-aggregator"]).unwrap();
        assert_eq!(config.otlp_grpc_addr.to_string(), "0.0.0.0:4317");
        assert_eq!(config.otlp_http_addr.to_string(), "0.0.0.0:4318");
        assert_eq!(config.api_addr.to_string(), "0.0.0.0:8080");
        assert_eq!(config.retention.as_secs(), 30 * 86_400);
        assert_eq!(config.log_format, LogFormat::Json);
        assert!(config.validate().is_ok());
        assert_eq!(
            config.store(),
            StoreChoice::Embedded(MemoryStoreConfig {
                retention_secs: 30 * 86_400,
                rollup_after_secs: 7_200,
            })
        );
    }

    #[test]
    fn unprotected_listeners_bind_to_loopback() {
        let any: SocketAddr = "0.0.0.0:4317".parse().unwrap();
        assert_eq!(
            Config::bind_addr(any, false),
            ("127.0.0.1:4317".parse().unwrap(), true)
        );
        assert_eq!(Config::bind_addr(any, true), (any, false));
        let v6: SocketAddr = "[::]:8080".parse().unwrap();
        assert_eq!(
            Config::bind_addr(v6, false),
            ("[::1]:8080".parse().unwrap(), true)
        );
        let local: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(Config::bind_addr(local, false), (local, false));
    }

    #[test]
    fn a_redis_url_selects_redis_with_the_shared_retention() {
        let config = Config::try_parse_from([
            "signal-aggregator",
            "--redis-url",
            "redis://127.0.0.1:6379",
            "--retention",
            "7d",
        ])
        .unwrap();
        let StoreChoice::Redis(redis) = config.store() else {
            panic!("expected the Redis store");
        };
        assert_eq!(redis.url, "redis://127.0.0.1:6379");
        assert_eq!(redis.retention_secs, 7 * 86_400);
        assert_eq!(redis.rollup_after_secs, 7_200);
    }

    #[test]
    fn refuses_a_retention_shorter_than_the_rollup_age() {
        let config = Config::try_parse_from(["signal-aggregator", "--retention", "1h"]).unwrap();
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("--rollup-after (2h)"), "{error}");
    }

    #[test]
    fn refuses_a_malformed_retention_naming_the_flag() {
        let error = Config::try_parse_from(["signal-aggregator", "--retention", "30 days"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("--retention"), "{error}");
        assert!(error.contains("30d"), "{error}");
    }
}
