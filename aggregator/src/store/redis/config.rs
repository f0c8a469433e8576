//! Flags for the Redis store. `main` flattens [`RedisArgs`] into its own
//! arguments; without `--redis-url` the embedded store is used. Retention and
//! roll-up age are the aggregator's `--retention` / `--rollup-after`, shared
//! with the embedded store.

use std::path::PathBuf;
use std::time::Duration;

use super::tls::TlsFiles;

/// Parses `500ms`, `10s`, `5m`, `24h`, `30d` (also used for retention).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} has no unit; use ms, s, m, h or d (e.g. 30d)"))?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} does not start with a whole number"))?;
    let unit_ms: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => {
            return Err(format!(
                "{text:?} has unknown unit {unit:?}; use ms, s, m, h or d"
            ));
        }
    };
    n.checked_mul(unit_ms)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{text:?} is too long"))
}

#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct RedisArgs {
    /// Keep sketches in Redis: `redis://host:port[/db]`, `rediss://…`, or a
    /// comma-separated list of Redis Cluster seed nodes. Unset: embedded store.
    #[arg(long, env = "SIGNAL_AGGREGATOR_REDIS_URL")]
    pub redis_url: Option<String>,

    /// This replica's identity in Redis (its flush checkpoints). Defaults to the
    /// one recorded in --wal-dir, or a new random one recorded there.
    #[arg(long, env = "SIGNAL_AGGREGATOR_REPLICA_ID")]
    pub replica_id: Option<String>,

    /// Directory of the local write-ahead log: exports are acknowledged once
    /// appended here and replayed on start. Must persist across restarts.
    #[arg(
        long,
        env = "SIGNAL_AGGREGATOR_WAL_DIR",
        default_value = "/var/lib/signal-aggregator/wal"
    )]
    pub wal_dir: PathBuf,

    /// How often buffered sketches are written to Redis.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub redis_flush_interval: Duration,

    /// Write-ahead-log bytes not yet in Redis beyond which exports are refused
    /// with a retryable status (the outage buffer).
    #[arg(long, default_value_t = 256 << 20)]
    pub redis_buffer_bytes: u64,

    /// PEM CA certificate(s) that `rediss://` servers must chain to, instead of
    /// the system roots (a private CA).
    #[arg(long, env = "SIGNAL_AGGREGATOR_REDIS_CA_FILE", requires = "redis_url")]
    pub redis_ca_file: Option<PathBuf>,

    /// PEM client certificate (chain) presented to `rediss://` servers that
    /// require one (`tls-auth-clients yes`); needs --redis-client-key-file.
    #[arg(
        long,
        env = "SIGNAL_AGGREGATOR_REDIS_CLIENT_CERT_FILE",
        requires = "redis_url"
    )]
    pub redis_client_cert_file: Option<PathBuf>,

    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of --redis-client-cert-file.
    #[arg(
        long,
        env = "SIGNAL_AGGREGATOR_REDIS_CLIENT_KEY_FILE",
        requires = "redis_url"
    )]
    pub redis_client_key_file: Option<PathBuf>,
}

impl RedisArgs {
    pub fn tls_files(&self) -> TlsFiles {
        TlsFiles {
            ca_file: self.redis_ca_file.clone(),
            client_cert_file: self.redis_client_cert_file.clone(),
            client_key_file: self.redis_client_key_file.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[derive(clap::Parser)]
    struct Flags {
        #[command(flatten)]
        redis: RedisArgs,
    }

    #[test]
    fn tls_flags_name_the_files_the_store_loads() {
        let flags = Flags::try_parse_from([
            "signal-aggregator",
            "--redis-url",
            "rediss://a:6380,rediss://b:6380",
            "--redis-ca-file",
            "/etc/redis-tls/ca.crt",
            "--redis-client-cert-file",
            "/etc/redis-tls/tls.crt",
            "--redis-client-key-file",
            "/etc/redis-tls/tls.key",
        ])
        .unwrap();
        assert_eq!(
            flags.redis.tls_files(),
            TlsFiles {
                ca_file: Some("/etc/redis-tls/ca.crt".into()),
                client_cert_file: Some("/etc/redis-tls/tls.crt".into()),
                client_key_file: Some("/etc/redis-tls/tls.key".into()),
            }
        );
        let plain = Flags::try_parse_from(["signal-aggregator"]).unwrap();
        assert!(plain.redis.tls_files().is_empty());
        // Without --redis-url the embedded store runs: a TLS flag there is a mistake.
        let error = Flags::try_parse_from(["signal-aggregator", "--redis-ca-file", "/ca.crt"])
            .err()
            .expect("--redis-ca-file without --redis-url is refused")
            .to_string();
        assert!(error.contains("--redis-url"), "{error}");
    }

    #[test]
    fn durations_parse_with_units_and_refuse_nonsense() {
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7_200)));
        for bad in ["30", "d", "3x", "-1s", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
