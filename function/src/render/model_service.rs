//! ModelService: the effective observability policy surfaced in
//! `status.observability.policy`. Header values (literal or from Secrets)
//! never appear; only their names do.

use apis::{EffectiveObservabilityPolicy, MetricsScope, ObservabilitySpec};

/// Condition type on ModelServices.
pub const OBSERVABILITY_POLICY: &str = "ObservabilityPolicy";
pub const TRACE_FORWARDING: &str = "TraceForwarding";

/// Reasons of [`TRACE_FORWARDING`].
pub mod trace_reason {
    /// The forwarder's resources are all ready.
    pub const AVAILABLE: &str = "Available";
    /// Rendered; the forwarder (its Deployment, usually) is not ready yet. A
    /// Secret or key the headers name that does not exist keeps it here: the
    /// pod cannot start (`secretKeyRef` is not optional).
    pub const CREATING: &str = "Creating";
}

pub fn effective_policy(spec: Option<&ObservabilitySpec>) -> EffectiveObservabilityPolicy {
    let metrics = spec.and_then(|s| s.metrics.as_ref());
    let traces = spec.and_then(|s| s.traces.as_ref()).filter(|t| t.enabled);
    EffectiveObservabilityPolicy {
        metrics_scope: metrics.map(|m| m.scope).unwrap_or(MetricsScope::PerTenant),
        sample_rate: metrics.and_then(|m| m.sample_rate),
        extra_signals: metrics.map(|m| m.extra_signals.clone()).unwrap_or_default(),
        traces_enabled: traces.is_some(),
        traces_endpoint: traces.and_then(|t| t.endpoint.as_deref()).map(redact_url),
        traces_protocol: traces.map(|t| t.protocol),
        traces_sampling_ratio: traces.map(|t| t.sampling.as_ref().map_or(1.0, |s| s.ratio)),
        // BTreeMap keys: sorted, so the status is deterministic.
        traces_header_names: traces
            .map(|t| t.headers.keys().cloned().collect())
            .unwrap_or_default(),
    }
}

/// The endpoint without user-info or query string: some backends accept an
/// API key there, and status is readable by anyone who can read the XR.
pub fn redact_url(url: &str) -> String {
    let without_query = url.split(['?', '#']).next().unwrap_or(url);
    match without_query.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority
                .rsplit_once('@')
                .map_or(authority, |(_, host)| host);
            format!("{scheme}://{host}{path}")
        }
        None => without_query.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_credentials_in_urls() {
        assert_eq!(
            redact_url("https://pk:sk@cloud.langfuse.com/api/public/otel"),
            "https://cloud.langfuse.com/api/public/otel"
        );
        assert_eq!(
            redact_url("https://phoenix.example:6006/v1/traces?api_key=abc#x"),
            "https://phoenix.example:6006/v1/traces"
        );
        assert_eq!(redact_url("http://collector:4318"), "http://collector:4318");
    }
}
