//! Ingest authentication: each cluster's agent presents its own bearer token
//! and everything it sends is attributed to that cluster
//! (`Origin::authenticated_cluster`), whatever its resource attributes claim.
//!
//! Tokens come from one or more sources: the `--ingest-tokens-file` and the
//! Secrets the token issuer keeps (`auth::issuer`). A token is accepted when a
//! source maps it to a cluster and no source maps it to another one.

use std::sync::Arc;

use super::files::Reloading;
use super::tokens::{TokenTable, bearer_token};
use crate::ingest::Authenticator;
use crate::signal::Origin;

/// Where the agent's token comes from, for error messages (never the token).
const TOKEN_SOURCE: &str = "the agent sends the cluster's ingest token from Secret \
     signals-agent-token (key token) as `authorization: Bearer <token>`";

/// Something that knows which cluster a token belongs to.
pub trait IngestTokenSource: Send + Sync + 'static {
    /// The cluster `token` is a current token of, if any. Implementations
    /// compare in constant time and never log the token.
    fn cluster_of(&self, token: &str) -> Option<String>;
}

impl IngestTokenSource for Reloading<TokenTable<String>> {
    fn cluster_of(&self, token: &str) -> Option<String> {
        self.current().lookup(token)
    }
}

pub struct IngestTokens {
    sources: Vec<Arc<dyn IngestTokenSource>>,
}

impl IngestTokens {
    /// Tokens from a token file only.
    pub fn new(tokens: Arc<Reloading<TokenTable<String>>>) -> Self {
        IngestTokens {
            sources: vec![tokens],
        }
    }

    /// Tokens from every source in `sources` (file, issued Secrets).
    pub fn from_sources(sources: Vec<Arc<dyn IngestTokenSource>>) -> Self {
        IngestTokens { sources }
    }

    fn cluster_of(&self, token: &str) -> Result<String, String> {
        // Every source is asked (no early exit), like every digest within one.
        let found: Vec<String> = self
            .sources
            .iter()
            .filter_map(|source| source.cluster_of(token))
            .collect();
        match found.split_first() {
            None => Err(
                "the bearer token is not a current ingest token (unknown, revoked or rotated out); \
                 check that the workload cluster's Secret signals-agent-token holds the cluster's \
                 current token (control-plane Secret signals-ingest-<cluster>, or --ingest-tokens-file)"
                    .to_string(),
            ),
            Some((first, rest)) if rest.iter().all(|c| c == first) => Ok(first.clone()),
            Some(_) => {
                tracing::error!(
                    clusters = ?found,
                    "one ingest token belongs to several clusters (the token file and an issued Secret disagree); refusing it"
                );
                Err("this ingest token is configured for more than one cluster; \
                     the aggregator refuses it until the operator removes the duplicate"
                    .to_string())
            }
        }
    }
}

impl Authenticator for IngestTokens {
    fn authenticate(&self, authorization: Option<&[u8]>) -> Result<Origin, String> {
        let Some(header) = authorization else {
            return Err(format!(
                "missing authorization: this aggregator requires a per-cluster ingest token; {TOKEN_SOURCE}"
            ));
        };
        let token = bearer_token(header).map_err(|e| format!("{e}; {TOKEN_SOURCE}"))?;
        let cluster = self.cluster_of(token)?;
        Ok(Origin {
            authenticated_cluster: Some(cluster),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(&'static str, &'static str);

    impl IngestTokenSource for Fixed {
        fn cluster_of(&self, token: &str) -> Option<String> {
            (token == self.0).then(|| self.1.to_string())
        }
    }

    fn authenticate(tokens: &IngestTokens, token: &str) -> Result<Option<String>, String> {
        tokens
            .authenticate(Some(format!("Bearer {token}").as_bytes()))
            .map(|o| o.authenticated_cluster)
    }

    #[test]
    fn every_source_counts_and_disagreeing_sources_refuse() {
        let tokens = IngestTokens::from_sources(vec![
            Arc::new(Fixed("file-token", "a")),
            Arc::new(Fixed("issued-token", "b")),
            Arc::new(Fixed("shared", "a")),
            Arc::new(Fixed("shared", "b")),
            Arc::new(Fixed("same", "c")),
            Arc::new(Fixed("same", "c")),
        ]);
        assert_eq!(authenticate(&tokens, "file-token"), Ok(Some("a".into())));
        assert_eq!(authenticate(&tokens, "issued-token"), Ok(Some("b".into())));
        assert_eq!(authenticate(&tokens, "same"), Ok(Some("c".into())));
        let error = authenticate(&tokens, "shared").unwrap_err();
        assert!(error.contains("more than one cluster"), "{error}");
        assert!(!error.contains("shared"), "{error}");
        let error = authenticate(&tokens, "unknown").unwrap_err();
        assert!(error.contains("not a current ingest token"), "{error}");
        // No source at all: nothing is accepted.
        let none = IngestTokens::from_sources(Vec::new());
        assert!(authenticate(&none, "file-token").is_err());
    }
}
