//! Query authorization: an operator token reads everything; a tenant token
//! reads only `/v1/tenants/<its tenant>/...`. Health, readiness and the
//! OpenAPI document stay open; `/metrics` needs the operator token unless it
//! is explicitly opened (`--metrics-open`).

use std::sync::Arc;

use super::files::{QueryPrincipal, Reloading};
use super::tokens::{TokenTable, bearer_token};

/// Why a query was refused; the message tells the caller what to send instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// No token, or not a current one (HTTP 401).
    #[error("{0}")]
    Unauthenticated(String),
    /// A valid token that may not read this path (HTTP 403).
    #[error("{0}")]
    Forbidden(String),
}

/// What a path requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    Open,
    Operator,
    /// The operator or this tenant.
    Tenant(String),
}

/// Paths anyone may read (probes, the API description).
const OPEN_PATHS: &[&str] = &["/healthz", "/readyz", "/openapi.json"];

pub fn requirement(path: &str, metrics_open: bool) -> Requirement {
    if OPEN_PATHS.contains(&path) || (path == "/metrics" && metrics_open) {
        return Requirement::Open;
    }
    if let Some(rest) = path.strip_prefix("/v1/tenants/") {
        let tenant = rest.split('/').next().unwrap_or_default();
        return Requirement::Tenant(tenant.to_string());
    }
    // Everything else (fleet, scheduler, /metrics, and any path the router
    // might match in a form this function does not expect) is operator-only:
    // deny by default.
    Requirement::Operator
}

pub struct QueryAccess {
    /// `None`: no query tokens configured; the API is open (and, by
    /// default, bound to loopback only).
    tokens: Option<Arc<Reloading<TokenTable<QueryPrincipal>>>>,
    metrics_open: bool,
}

impl QueryAccess {
    pub fn open() -> Self {
        QueryAccess {
            tokens: None,
            metrics_open: true,
        }
    }

    pub fn with_tokens(
        tokens: Arc<Reloading<TokenTable<QueryPrincipal>>>,
        metrics_open: bool,
    ) -> Self {
        QueryAccess {
            tokens: Some(tokens),
            metrics_open,
        }
    }

    pub fn is_open(&self) -> bool {
        self.tokens.is_none()
    }

    /// Whether a request with `authorization` may read `path`.
    pub fn check(&self, path: &str, authorization: Option<&[u8]>) -> Result<(), AccessError> {
        let Some(tokens) = &self.tokens else {
            return Ok(());
        };
        let needed = requirement(path, self.metrics_open);
        if needed == Requirement::Open {
            return Ok(());
        }
        let header = authorization.ok_or_else(|| {
            AccessError::Unauthenticated("missing authorization: send `authorization: Bearer <token>` with an operator or tenant query token".into())
        })?;
        let token = bearer_token(header).map_err(|e| AccessError::Unauthenticated(e.into()))?;
        let principal = tokens.current().lookup(token).ok_or_else(|| {
            AccessError::Unauthenticated(
                "the bearer token is not a current query token (unknown, revoked or rotated out)"
                    .into(),
            )
        })?;
        match (principal, needed) {
            (QueryPrincipal::Operator, _) => Ok(()),
            (QueryPrincipal::Tenant(mine), Requirement::Tenant(wanted)) if mine == wanted => Ok(()),
            (QueryPrincipal::Tenant(mine), Requirement::Tenant(wanted)) => {
                Err(AccessError::Forbidden(format!(
                    "this token reads tenant {mine:?} only, not {wanted:?}; use /v1/tenants/{mine}/... or an operator token"
                )))
            }
            (QueryPrincipal::Tenant(mine), _) => Err(AccessError::Forbidden(format!(
                "{path} needs an operator token; this token reads tenant {mine:?} only (/v1/tenants/{mine}/...)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements_by_path() {
        assert_eq!(requirement("/healthz", false), Requirement::Open);
        assert_eq!(requirement("/openapi.json", false), Requirement::Open);
        assert_eq!(requirement("/metrics", false), Requirement::Operator);
        assert_eq!(requirement("/metrics", true), Requirement::Open);
        assert_eq!(
            requirement("/v1/tenants/team-a/signals/Cost", false),
            Requirement::Tenant("team-a".into())
        );
        assert_eq!(
            requirement("/v1/fleet/compare", false),
            Requirement::Operator
        );
        assert_eq!(
            requirement("/v1/scheduler/capacity", false),
            Requirement::Operator
        );
        assert_eq!(requirement("/v1/other", false), Requirement::Operator);
        assert_eq!(
            requirement("//v1/fleet/compare", false),
            Requirement::Operator
        );
        assert_eq!(requirement("/healthz/", false), Requirement::Operator);
    }
}
