//! Token files (YAML or JSON) and their reloading. A file is re-read when its
//! content changes (polled, so Secrets mounted as files work: the kubelet
//! swaps a symlink rather than writing in place). A file that no longer
//! parses keeps the previous tokens in force and logs why, without a token.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::RwLock;
use serde::Deserialize;

use super::tokens::{TokenTable, parse_entry};
use crate::signal::check_identity;

/// One token or several (several while a rotation overlaps).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn entries(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(token) => vec![token.as_str()],
            OneOrMany::Many(tokens) => tokens.iter().map(String::as_str).collect(),
        }
    }
}

fn add_entries<P: Clone>(
    table: &mut TokenTable<P>,
    owner: &str,
    tokens: &OneOrMany,
    principal: P,
) -> Result<(), String> {
    let entries = tokens.entries();
    if entries.is_empty() {
        return Err(format!("{owner}: no tokens listed"));
    }
    for (i, entry) in entries.into_iter().enumerate() {
        let digest = parse_entry(entry).map_err(|e| format!("{owner}, token {i}: {e}"))?;
        table.insert(digest, principal.clone());
    }
    Ok(())
}

fn parse_yaml<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, String> {
    // The YAML error names the line and column, never the value there.
    serde_yaml::from_str(text).map_err(|e| match e.location() {
        Some(at) => format!(
            "not the expected shape at line {}, column {}",
            at.line(),
            at.column()
        ),
        None => "not the expected shape".to_string(),
    })
}

/// `--ingest-tokens-file`: `{<cluster>: <token> | [<token>, ...]}`; each token
/// may be given as `sha256:<hex>` instead.
pub fn parse_ingest_tokens(text: &str) -> Result<TokenTable<String>, String> {
    let clusters: BTreeMap<String, OneOrMany> = parse_yaml(text)?;
    let mut table = TokenTable::new();
    for (cluster, tokens) in &clusters {
        check_identity(cluster).map_err(|problem| format!("cluster {cluster:?}: {problem}"))?;
        add_entries(
            &mut table,
            &format!("cluster {cluster:?}"),
            tokens,
            cluster.clone(),
        )?;
    }
    if table.duplicate_digest() {
        return Err(
            "the same token is listed twice; every token must belong to one cluster".into(),
        );
    }
    Ok(table)
}

/// Who a query token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryPrincipal {
    /// Reads everything: every tenant, `/v1/fleet/*`, `/v1/scheduler/*`, `/metrics`.
    Operator,
    /// Reads `/v1/tenants/<tenant>/...` only.
    Tenant(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryTokensFile {
    #[serde(default)]
    operators: Option<OneOrMany>,
    #[serde(default)]
    tenants: BTreeMap<String, OneOrMany>,
}

/// `--query-tokens-file`: `{operators: [<token>...], tenants: {<tenant>: [<token>...]}}`.
pub fn parse_query_tokens(text: &str) -> Result<TokenTable<QueryPrincipal>, String> {
    let file: QueryTokensFile = parse_yaml(text)?;
    let mut table = TokenTable::new();
    if let Some(operators) = &file.operators {
        add_entries(&mut table, "operators", operators, QueryPrincipal::Operator)?;
    }
    for (tenant, tokens) in &file.tenants {
        check_identity(tenant).map_err(|problem| format!("tenant {tenant:?}: {problem}"))?;
        add_entries(
            &mut table,
            &format!("tenant {tenant:?}"),
            tokens,
            QueryPrincipal::Tenant(tenant.clone()),
        )?;
    }
    if table.is_empty() {
        return Err("no tokens: list `operators` and/or `tenants`".into());
    }
    if table.duplicate_digest() {
        return Err("the same token is listed twice; every token must belong to one holder".into());
    }
    Ok(table)
}

type Parser<T> = fn(&str) -> Result<T, String>;

/// The current contents of a token file, re-read when the file changes.
pub struct Reloading<T> {
    path: PathBuf,
    parse: Parser<T>,
    current: RwLock<(Arc<T>, String)>,
}

impl<T: Send + Sync + 'static> Reloading<T> {
    /// Loads `path` (an error names the file and what is wrong) and, when
    /// `poll` is set, re-reads it that often for as long as the handle lives.
    pub fn open(
        path: &Path,
        parse: Parser<T>,
        poll: Option<Duration>,
    ) -> anyhow::Result<Arc<Self>> {
        let text = read(path)?;
        let value = parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let handle = Arc::new(Reloading {
            path: path.to_path_buf(),
            parse,
            current: RwLock::new((Arc::new(value), text)),
        });
        if let Some(interval) = poll {
            tokio::spawn(poll_loop(Arc::downgrade(&handle), interval));
        }
        Ok(handle)
    }

    pub fn current(&self) -> Arc<T> {
        self.current.read().0.clone()
    }

    /// Re-reads the file now; returns whether the tokens changed.
    pub fn reload(&self) -> bool {
        let text = match read(&self.path) {
            Ok(text) => text,
            Err(error) => {
                tracing::error!(
                    error = format!("{error:#}"),
                    "cannot re-read a token file; the previous tokens stay in force"
                );
                return false;
            }
        };
        if text == self.current.read().1 {
            return false;
        }
        match (self.parse)(&text) {
            Ok(value) => {
                *self.current.write() = (Arc::new(value), text);
                tracing::info!(file = %self.path.display(), "token file changed; new tokens in force");
                true
            }
            Err(error) => {
                tracing::error!(file = %self.path.display(), %error, "token file no longer parses; the previous tokens stay in force");
                false
            }
        }
    }
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read token file {}: {e}", path.display()))
}

async fn poll_loop<T: Send + Sync + 'static>(handle: Weak<Reloading<T>>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let Some(handle) = handle.upgrade() else {
            return;
        };
        handle.reload();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::tokens::digest_hex;

    #[test]
    fn ingest_files_map_tokens_to_clusters() {
        let text = format!(
            "us-east-1: tok-east\neu-west-1: [tok-eu-old, \"{}\"]\n",
            digest_hex("tok-eu-new")
        );
        let table = parse_ingest_tokens(&text).unwrap();
        assert_eq!(table.len(), 3);
        assert_eq!(table.lookup("tok-east").as_deref(), Some("us-east-1"));
        assert_eq!(table.lookup("tok-eu-old").as_deref(), Some("eu-west-1"));
        assert_eq!(table.lookup("tok-eu-new").as_deref(), Some("eu-west-1"));
        // JSON is YAML.
        let json = parse_ingest_tokens(r#"{"c1": "t1"}"#).unwrap();
        assert_eq!(json.lookup("t1").as_deref(), Some("c1"));
    }

    #[test]
    fn bad_ingest_files_say_what_is_wrong_without_tokens() {
        let error = parse_ingest_tokens("a: secret-one\nb: secret-one\n").unwrap_err();
        assert!(error.contains("listed twice"), "{error}");
        assert!(!error.contains("secret"), "{error}");
        let error = parse_ingest_tokens("a: []\n").unwrap_err();
        assert!(error.contains("no tokens"), "{error}");
        let error = parse_ingest_tokens("- secret-token\n").unwrap_err();
        assert!(error.contains("line 1"), "{error}");
        assert!(!error.contains("secret"), "{error}");
        let error = parse_ingest_tokens("\"bad cluster!\": t\n").unwrap_err();
        assert!(error.contains("bad cluster!"), "{error}");
    }

    #[test]
    fn query_files_have_operators_and_tenants() {
        let table = parse_query_tokens(
            "operators: [op-token]\ntenants:\n  team-a: a-token\n  team-b: [b1, b2]\n",
        )
        .unwrap();
        assert_eq!(table.lookup("op-token"), Some(QueryPrincipal::Operator));
        assert_eq!(
            table.lookup("a-token"),
            Some(QueryPrincipal::Tenant("team-a".into()))
        );
        assert_eq!(
            table.lookup("b2"),
            Some(QueryPrincipal::Tenant("team-b".into()))
        );
        assert!(parse_query_tokens("{}").unwrap_err().contains("no tokens"));
        assert!(parse_query_tokens("operator: [x]").is_err());
    }
}
