//! Where the store connects: `--redis-url` (one node, or comma-separated Redis
//! Cluster seeds, `redis://` or `rediss://`) with the TLS files its `rediss://`
//! connections use. Checked when the store opens so every mistake in these
//! flags is a start-up error naming the flag, and resolved again on each
//! connect attempt into the redis crate's clients.

use std::fmt;
use std::ops::Deref;

use redis::cluster::ClusterClientBuilder;
use redis::{Client, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, TlsCertificates};

use super::tls::TlsFiles;

const URL_FLAG: &str = "--redis-url";

/// `--redis-url` as given, with the TLS files for its `rediss://` connections.
/// Logs show it [`redacted`](RedisUrl::redacted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisUrl {
    text: String,
    tls: TlsFiles,
}

/// A checked [`RedisUrl`]: parsed seeds and loaded certificates.
pub(crate) struct Endpoints {
    pub seeds: Vec<ConnectionInfo>,
    certs: Option<TlsCertificates>,
}

impl RedisUrl {
    pub fn new(text: impl Into<String>) -> RedisUrl {
        RedisUrl {
            text: text.into(),
            tls: TlsFiles::default(),
        }
    }

    pub fn with_tls(self, tls: TlsFiles) -> RedisUrl {
        RedisUrl { tls, ..self }
    }

    pub fn tls(&self) -> &TlsFiles {
        &self.tls
    }

    /// `redis://user:secret@host` → `redis://user:***@host`: URLs reach logs.
    pub fn redacted(&self) -> String {
        let url = self.text.as_str();
        match (url.find("://"), url.rfind('@')) {
            (Some(scheme_end), Some(at)) if at > scheme_end => {
                let userinfo = &url[scheme_end + 3..at];
                let user = userinfo.split(':').next().unwrap_or_default();
                format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..])
            }
            _ => url.to_string(),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Every check [`RedisUrl::resolve`] makes, without keeping the result:
    /// what the store runs when it opens.
    pub fn check(&self) -> Result<(), String> {
        self.resolve().map(drop)
    }

    pub(crate) fn resolve(&self) -> Result<Endpoints, String> {
        let texts: Vec<&str> = self
            .text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if texts.is_empty() {
            return Err(format!(
                "{URL_FLAG} is empty: give redis://host:port, rediss://host:port or a \
                 comma-separated list of Redis Cluster seeds"
            ));
        }
        let seeds = texts
            .iter()
            .enumerate()
            .map(|(i, text)| {
                text.into_connection_info().map_err(|e| {
                    // The redis crate's parse errors never echo the URL, so a
                    // password in it cannot reach the log through this message.
                    format!(
                        "{URL_FLAG}: {} is not a Redis URL ({e}); expected \
                         redis://[user:password@]host:port[/db] or rediss://…",
                        seed_name(i, texts.len())
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let tls_seeds = seeds.iter().filter(|s| uses_tls(s)).count();
        if tls_seeds > 0 && tls_seeds < seeds.len() {
            return Err(format!(
                "{URL_FLAG} mixes rediss:// and redis:// seeds; a Redis Cluster is either all \
                 TLS or all plain TCP"
            ));
        }
        if seeds
            .iter()
            .any(|s| matches!(s.addr(), ConnectionAddr::TcpTls { insecure: true, .. }))
        {
            return Err(format!(
                "{URL_FLAG}: #insecure (no certificate verification) is not supported; trust \
                 the server's CA with {} instead",
                super::tls::CA_FLAG
            ));
        }
        if tls_seeds == 0 && !self.tls.is_empty() {
            return Err(format!(
                "{} set, but {URL_FLAG} is plain redis://: TLS flags apply only to rediss:// \
                 connections; use rediss://",
                self.tls.flags_set().join(", ")
            ));
        }
        let certs = self.tls.load()?;
        Ok(Endpoints { seeds, certs })
    }
}

fn seed_name(index: usize, count: usize) -> String {
    if count == 1 {
        "the URL".into()
    } else {
        format!("seed {} of {count}", index + 1)
    }
}

fn uses_tls(seed: &ConnectionInfo) -> bool {
    matches!(seed.addr(), ConnectionAddr::TcpTls { .. })
}

impl Endpoints {
    /// A client for one node, presenting the configured certificates.
    pub fn client(&self, seed: &ConnectionInfo) -> redis::RedisResult<Client> {
        match &self.certs {
            Some(certs) => Client::build_with_tls(seed.clone(), certs.clone()),
            None => Client::open(seed.clone()),
        }
    }

    /// A Redis Cluster client builder over every seed, with the certificates.
    pub fn cluster_builder(&self) -> ClusterClientBuilder {
        let builder = ClusterClientBuilder::new(self.seeds.clone());
        match &self.certs {
            Some(certs) => builder.certs(certs.clone()),
            None => builder,
        }
    }
}

impl Deref for RedisUrl {
    type Target = str;

    fn deref(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl From<String> for RedisUrl {
    fn from(text: String) -> RedisUrl {
        RedisUrl::new(text)
    }
}

impl From<&str> for RedisUrl {
    fn from(text: &str) -> RedisUrl {
        RedisUrl::new(text)
    }
}

impl PartialEq<&str> for RedisUrl {
    fn eq(&self, other: &&str) -> bool {
        self.text == *other
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn redacts_redis_passwords() {
        let redacted = |url: &str| super::RedisUrl::new(url).redacted();
        assert_eq!(redacted("redis://u:pw@h:6379/0"), "redis://u:***@h:6379/0");
        assert_eq!(redacted("rediss://:pw@h"), "rediss://:***@h");
        assert_eq!(redacted("redis://h:6379"), "redis://h:6379");
    }

    use super::*;
    use std::path::PathBuf;

    fn tls(ca: Option<&str>, cert: Option<&str>, key: Option<&str>) -> TlsFiles {
        TlsFiles {
            ca_file: ca.map(PathBuf::from),
            client_cert_file: cert.map(PathBuf::from),
            client_key_file: key.map(PathBuf::from),
        }
    }

    fn error(url: &str, files: TlsFiles) -> String {
        match RedisUrl::new(url).with_tls(files).check() {
            Ok(()) => panic!("{url} was accepted"),
            Err(e) => e,
        }
    }

    #[test]
    fn single_nodes_and_cluster_seeds_parse_with_or_without_tls() {
        let single = RedisUrl::new("rediss://:pw@127.0.0.1:6380/2")
            .resolve()
            .unwrap();
        assert_eq!(single.seeds.len(), 1);
        assert!(uses_tls(&single.seeds[0]));
        assert_eq!(single.seeds[0].redis_settings().db(), 2);
        let seeds = RedisUrl::new(" redis://a:1 , redis://b:2,, ")
            .resolve()
            .unwrap();
        assert_eq!(seeds.seeds.len(), 2);
        assert!(!uses_tls(&seeds.seeds[1]));
    }

    #[test]
    fn url_mistakes_name_the_flag_and_never_echo_a_password() {
        let e = error(
            "rediss://:hunter2@host:6379,redis://host:6380",
            tls(None, None, None),
        );
        assert!(
            e.contains("--redis-url mixes rediss:// and redis://"),
            "{e}"
        );
        let e = error("redis://:hunter2@host:notaport", tls(None, None, None));
        assert!(
            e.starts_with("--redis-url: the URL is not a Redis URL"),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
        let e = error("redis://a:1,http://b:2", tls(None, None, None));
        assert!(e.contains("seed 2 of 2 is not a Redis URL"), "{e}");
        let e = error(" , ", tls(None, None, None));
        assert!(e.starts_with("--redis-url is empty"), "{e}");
        let e = error("rediss://host:6379/#insecure", tls(None, None, None));
        assert!(
            e.contains("#insecure") && e.contains("--redis-ca-file"),
            "{e}"
        );
    }

    #[test]
    fn tls_files_with_a_plain_url_are_refused() {
        let e = error("redis://host:6379", tls(Some("/ca.pem"), None, None));
        assert_eq!(
            e,
            "--redis-ca-file set, but --redis-url is plain redis://: TLS flags apply only to \
             rediss:// connections; use rediss://"
        );
    }

    #[test]
    fn missing_files_and_half_a_client_identity_name_the_flag() {
        let e = error(
            "rediss://host:6379",
            tls(Some("/nonexistent/ca.pem"), None, None),
        );
        assert!(
            e.starts_with("--redis-ca-file /nonexistent/ca.pem: cannot read it"),
            "{e}"
        );
        let e = error("rediss://host:6379", tls(None, Some("/c.pem"), None));
        assert!(
            e.starts_with("--redis-client-cert-file needs --redis-client-key-file"),
            "{e}"
        );
        let e = error("rediss://host:6379", tls(None, None, Some("/k.pem")));
        assert!(
            e.starts_with("--redis-client-key-file needs --redis-client-cert-file"),
            "{e}"
        );
    }

    #[test]
    fn a_plain_url_compares_and_displays_as_its_text() {
        let url = RedisUrl::from("redis://127.0.0.1:6379");
        assert_eq!(url, "redis://127.0.0.1:6379");
        assert_eq!(url.to_string(), "redis://127.0.0.1:6379");
        assert_eq!(&*url, "redis://127.0.0.1:6379");
    }
}
