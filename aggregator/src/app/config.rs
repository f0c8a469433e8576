//! Command-line configuration: each module's flags (`*Args`, owned by the
//! module they configure), flattened into one command. Every flag can also
//! come from the environment (`SIGNAL_AGGREGATOR_<FLAG>`), which is how the
//! deployment manifests set them.

use clap::{Parser, ValueEnum};

use super::kube::KubeArgs;
use crate::api::ApiArgs;
use crate::auth::AuthArgs;
use crate::auth::issuer::IssuerArgs;
use crate::forward::ForwardArgs;
use crate::ingest::IngestArgs;
use crate::normalize::NormalizeArgs;
use crate::status::StatusArgs;
use crate::store::StoreArgs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(Debug, Clone, Parser)]
#[command(
    name = "signal-aggregator",
    version,
    about = "Receives OTLP from the signal agents, keeps mergeable per-tenant sketches and serves them"
)]
pub struct Config {
    #[command(flatten)]
    pub ingest: IngestArgs,

    #[command(flatten)]
    pub api: ApiArgs,

    #[command(flatten)]
    pub store: StoreArgs,

    #[command(flatten)]
    pub normalize: NormalizeArgs,

    #[command(flatten)]
    pub auth: AuthArgs,

    #[command(flatten)]
    pub kube: KubeArgs,

    #[command(flatten)]
    pub status: StatusArgs,

    #[command(flatten)]
    pub tokens: IssuerArgs,

    #[command(flatten)]
    pub forward: ForwardArgs,

    /// Log line format. The level comes from `RUST_LOG` (default `info`).
    #[arg(
        long,
        env = "SIGNAL_AGGREGATOR_LOG_FORMAT",
        value_enum,
        default_value = "json"
    )]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("--rollup-after ({rollup_after}) must be shorter than --retention ({retention})")]
    RollupAfterRetention {
        rollup_after: apis::RetentionDuration,
        retention: apis::RetentionDuration,
    },
    #[error("--{flag} must be at least 1")]
    Zero { flag: &'static str },
    #[error("{0}")]
    Tokens(String),
}

impl Config {
    /// Cross-flag checks clap cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.store.rollup_after >= self.store.retention {
            return Err(ConfigError::RollupAfterRetention {
                rollup_after: self.store.rollup_after,
                retention: self.store.retention,
            });
        }
        for (flag, value) in [
            ("max-request-bytes", self.ingest.max_request_bytes),
            ("max-in-flight-requests", self.ingest.max_in_flight_requests),
            (
                "max-series-per-tenant",
                self.normalize.max_series_per_tenant,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero { flag });
            }
        }
        self.tokens
            .validate()
            .map_err(|e| ConfigError::Tokens(format!("{e:#}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreChoice;
    use crate::store::memory::MemoryStoreConfig;

    #[test]
    fn defaults_match_the_documented_ports_and_retention() {
        let config = Config::try_parse_from(["signal-aggregator"]).unwrap();
        assert_eq!(config.ingest.otlp_grpc_addr.to_string(), "0.0.0.0:4317");
        assert_eq!(config.ingest.otlp_http_addr.to_string(), "0.0.0.0:4318");
        assert_eq!(config.api.api_addr.to_string(), "0.0.0.0:8080");
        assert_eq!(config.store.retention.as_secs(), 30 * 86_400);
        assert_eq!(config.log_format, LogFormat::Json);
        assert!(config.validate().is_ok());
        assert_eq!(
            config.store.choice(),
            StoreChoice::Embedded(MemoryStoreConfig {
                retention_secs: 30 * 86_400,
                rollup_after_secs: 7_200,
            })
        );
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
        let StoreChoice::Redis(redis) = config.store.choice() else {
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
    fn refuses_zero_limits_naming_the_flag() {
        let config =
            Config::try_parse_from(["signal-aggregator", "--max-in-flight-requests", "0"]).unwrap();
        let error = config.validate().unwrap_err().to_string();
        assert_eq!(error, "--max-in-flight-requests must be at least 1");
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
