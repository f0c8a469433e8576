//! Ingest authentication: each cluster's agent presents its own bearer token
//! and everything it sends is attributed to that cluster
//! (`Origin::authenticated_cluster`), whatever its resource attributes claim.

use std::sync::Arc;

use super::files::Reloading;
use super::tokens::{TokenTable, bearer_token};
use crate::ingest::Authenticator;
use crate::signal::Origin;

/// Where the agent's token comes from, for error messages (never the token).
const TOKEN_SOURCE: &str = "the agent sends the cluster's ingest token from Secret \
     signals-agent-token (key token) as `authorization: Bearer <token>`";

pub struct IngestTokens {
    tokens: Arc<Reloading<TokenTable<String>>>,
}

impl IngestTokens {
    pub fn new(tokens: Arc<Reloading<TokenTable<String>>>) -> Self {
        IngestTokens { tokens }
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
        match self.tokens.current().lookup(token) {
            Some(cluster) => Ok(Origin {
                authenticated_cluster: Some(cluster),
            }),
            None => Err(
                "the bearer token is not a current ingest token (unknown, revoked or rotated out); \
                 check that the cluster's Secret signals-agent-token matches --ingest-tokens-file"
                    .to_string(),
            ),
        }
    }
}
