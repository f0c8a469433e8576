//! Checks the XRD schema cannot express, plus the ones it does (a function must
//! not trust that the schema ran: `render` and older XRDs skip it).

use std::collections::BTreeSet;
use std::fmt;

use crate::inference_cluster::{SecretKeySelector, SignalsSpec};
use crate::model_service::ObservabilitySpec;

/// One invalid field, named by its path from the object root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every invalid field of one object, in the order they were found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn into_result(self) -> Result<(), FieldErrors> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for FieldErrors {}

/// Largest number of pricing entries and header entries we accept; a bound keeps
/// rendered configs and status small.
pub const MAX_LIST_ITEMS: usize = 64;

fn check_ratio(errors: &mut FieldErrors, path: &str, value: f64) {
    if !(0.0..=1.0).contains(&value) {
        errors.push(path, format!("must be between 0 and 1, got {value}"));
    }
}

/// A DNS-1123 label, as Kubernetes requires for namespaces
/// ([`crate::schema::DNS_LABEL_PATTERN`]).
pub fn is_dns_label(s: &str) -> bool {
    s.len() <= 63 && !s.contains('.') && is_dns_name(s)
}

/// A DNS-1123 subdomain, as Kubernetes requires for Secret names
/// ([`crate::schema::DNS_SUBDOMAIN_PATTERN`]).
fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric()
}

/// An HTTP header field name: an RFC 9110 token without `'` and `` ` ``, which
/// no real header uses and which the XRD's CEL rule cannot quote simply.
fn is_header_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&*+-.^_|~".contains(&b))
}

impl SignalsSpec {
    /// Validates `spec.signals`; paths in errors start at `spec.signals`.
    pub fn validate(&self) -> Result<(), FieldErrors> {
        let mut errors = FieldErrors::default();
        let mut seen = BTreeSet::new();
        for (i, kind) in self.kinds.iter().enumerate() {
            if !seen.insert(kind.name) {
                errors.push(
                    format!("spec.signals.kinds[{i}].name"),
                    format!("{} is listed more than once", kind.name),
                );
            }
            check_ratio(
                &mut errors,
                &format!("spec.signals.kinds[{i}].sampleRate"),
                kind.sample_rate,
            );
            if !kind.name.is_span_derived() && kind.sample_rate < 1.0 {
                errors.push(
                    format!("spec.signals.kinds[{i}].sampleRate"),
                    format!(
                        "{} comes from scraped metrics, which cannot be sampled; remove sampleRate or set it to 1",
                        kind.name
                    ),
                );
            }
        }
        if let Some(cost) = &self.cost {
            if cost.pricing.len() > MAX_LIST_ITEMS {
                errors.push(
                    "spec.signals.cost.pricing",
                    format!("at most {MAX_LIST_ITEMS} entries"),
                );
            }
            let mut gpus = BTreeSet::new();
            for (i, price) in cost.pricing.iter().enumerate() {
                let path = format!("spec.signals.cost.pricing[{i}]");
                if price.gpu.trim().is_empty() {
                    errors.push(format!("{path}.gpu"), "must not be empty");
                } else if !gpus.insert(price.gpu.as_str()) {
                    errors.push(
                        format!("{path}.gpu"),
                        format!("{} is priced twice", price.gpu),
                    );
                }
                if !(price.price_per_gpu_hour.is_finite() && price.price_per_gpu_hour >= 0.0) {
                    errors.push(
                        format!("{path}.pricePerGpuHour"),
                        format!(
                            "must be a non-negative number, got {}",
                            price.price_per_gpu_hour
                        ),
                    );
                }
                if price.currency.len() != 3
                    || !price.currency.bytes().all(|b| b.is_ascii_uppercase())
                {
                    errors.push(
                        format!("{path}.currency"),
                        format!(
                            "must be an ISO 4217 code such as USD, got {:?}",
                            price.currency
                        ),
                    );
                }
            }
        }
        if let Some(agent) = &self.agent {
            if let Some(replicas) = agent.replicas
                && !(1..=10).contains(&replicas)
            {
                errors.push(
                    "spec.signals.agent.replicas",
                    format!("must be between 1 and 10, got {replicas}"),
                );
            }
            if let Some(ns) = &agent.namespace
                && !is_dns_label(ns)
            {
                errors.push(
                    "spec.signals.agent.namespace",
                    format!("{ns:?} is not a valid namespace name"),
                );
            }
            for (i, ns) in agent.scrape_namespaces.iter().enumerate() {
                if !is_dns_label(ns) {
                    errors.push(
                        format!("spec.signals.agent.scrapeNamespaces[{i}]"),
                        format!("{ns:?} is not a valid namespace name"),
                    );
                }
            }
            if let Some(image) = &agent.image
                && (image.trim().is_empty() || image.contains(char::is_whitespace))
            {
                errors.push(
                    "spec.signals.agent.image",
                    format!("{image:?} is not an image reference"),
                );
            }
        }
        if let Some(forwarding) = &self.trace_forwarding {
            let mut seen = BTreeSet::new();
            for (i, ns) in forwarding.namespaces.iter().enumerate() {
                let path = format!("spec.signals.traceForwarding.namespaces[{i}]");
                if !is_dns_label(ns) {
                    errors.push(path, format!("{ns:?} is not a valid namespace name"));
                } else if !seen.insert(ns.as_str()) {
                    errors.push(path, format!("{ns} is listed more than once"));
                }
            }
            if forwarding.namespaces.len() > MAX_LIST_ITEMS {
                errors.push(
                    "spec.signals.traceForwarding.namespaces",
                    format!("at most {MAX_LIST_ITEMS} namespaces"),
                );
            }
        }
        if let Some(aggregator) = &self.aggregator {
            if let Some(endpoint) = &aggregator.endpoint
                && !is_host_port(endpoint)
            {
                errors.push(
                    "spec.signals.aggregator.endpoint",
                    if let Some((_, host)) = endpoint.rsplit_once('@') {
                        // Never echo user-info: it is a credential.
                        format!(
                            "{host:?} carries user-info; the ingest token belongs in the Secret named by tokenSecretRef"
                        )
                    } else {
                        format!("{endpoint:?} is not host:port")
                    },
                );
            }
            if let Some(secret) = &aggregator.token_secret_ref {
                check_secret_ref(
                    &mut errors,
                    "spec.signals.aggregator.tokenSecretRef",
                    &secret.name,
                    &secret.key,
                );
            }
        }
        errors.into_result()
    }
}

/// `host:port` with a non-empty host, no scheme, path or user-info (`@` would
/// smuggle credentials into a rendered config) and a port in 1..=65535.
pub fn is_host_port(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty()
                && !host.contains(['/', '@'])
                && !host.contains(char::is_whitespace)
                && !port.starts_with('0')
                && port.parse::<u16>().is_ok_and(|p| p > 0)
        }
        None => false,
    }
}

fn check_secret_ref(errors: &mut FieldErrors, path: &str, name: &str, key: &str) {
    if !is_dns_name(name) {
        errors.push(
            format!("{path}.name"),
            format!("{name:?} is not a valid Secret name"),
        );
    }
    let key_ok = !key.is_empty()
        && key.len() <= 253
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
    if !key_ok {
        errors.push(
            format!("{path}.key"),
            format!("{key:?} is not a valid Secret key"),
        );
    }
}

impl ObservabilitySpec {
    /// Validates `spec.observability`; paths in errors start at `spec.observability`.
    pub fn validate(&self) -> Result<(), FieldErrors> {
        let mut errors = FieldErrors::default();
        if let Some(metrics) = &self.metrics {
            if let Some(rate) = metrics.sample_rate {
                check_ratio(&mut errors, "spec.observability.metrics.sampleRate", rate);
            }
            let mut seen = BTreeSet::new();
            for (i, extra) in metrics.extra_signals.iter().enumerate() {
                let path = format!("spec.observability.metrics.extraSignals[{i}]");
                let pascal = extra.len() <= 63
                    && extra.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                    && extra.chars().all(|c| c.is_ascii_alphanumeric());
                if !pascal {
                    errors.push(path, format!("{extra:?} must be a PascalCase signal name"));
                } else if !seen.insert(extra.as_str()) {
                    errors.push(path, format!("{extra} is listed more than once"));
                }
            }
        }
        if let Some(traces) = &self.traces {
            if traces.enabled && traces.endpoint.is_none() && !preset_has_default(traces) {
                errors.push(
                    "spec.observability.traces.endpoint",
                    "is required when traces.enabled is true (a Langfuse, LangSmith or Datadog preset has a default)",
                );
            }
            if let Some(endpoint) = &traces.endpoint
                && !is_trace_endpoint(endpoint)
            {
                errors.push(
                        "spec.observability.traces.endpoint",
                        // Not quoted: a URL may carry credentials in its user-info or query.
                        "must be an http:// or https:// URL without user-info, query or fragment (credentials go in headers from a Secret), e.g. https://cloud.langfuse.com/api/public/otel".to_string(),
                    );
            }
            if traces.protocol == crate::TraceProtocol::Grpc
                && traces
                    .endpoint
                    .as_ref()
                    .and_then(|e| e.split_once("://"))
                    .is_some_and(|(_, rest)| rest.trim_end_matches('/').contains('/'))
            {
                errors.push(
                    "spec.observability.traces.endpoint",
                    "an OTLP/gRPC endpoint is scheme, host and port, without a path",
                );
            }
            if let Some(preset) = &traces.preset {
                check_preset(&mut errors, traces, preset);
            }
            if traces.headers.len() > MAX_LIST_ITEMS {
                errors.push(
                    "spec.observability.traces.headers",
                    format!("at most {MAX_LIST_ITEMS} headers"),
                );
            }
            for (name, value) in &traces.headers {
                let path = format!("spec.observability.traces.headers[{name}]");
                if !is_header_name(name) {
                    errors.push(
                        path.clone(),
                        format!("{name:?} is not a valid HTTP header name"),
                    );
                }
                match (&value.value, &value.value_from) {
                    (Some(_), None) => {}
                    (None, Some(source)) => check_secret_ref(
                        &mut errors,
                        &format!("{path}.valueFrom.secretKeyRef"),
                        &source.secret_key_ref.name,
                        &source.secret_key_ref.key,
                    ),
                    _ => errors.push(path, "set exactly one of value or valueFrom"),
                }
            }
            if let Some(sampling) = &traces.sampling {
                check_ratio(
                    &mut errors,
                    "spec.observability.traces.sampling.ratio",
                    sampling.ratio,
                );
            }
        }
        errors.into_result()
    }
}

/// Whether `url` matches `schema::TRACE_ENDPOINT_PATTERN`.
fn is_trace_endpoint(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return false;
    };
    let host_len = rest.find('/').unwrap_or(rest.len());
    host_len > 0 && !rest.contains(|c: char| c.is_whitespace() || "@?#".contains(c))
}

fn preset_has_default(traces: &crate::TracesSpec) -> bool {
    traces
        .preset
        .as_ref()
        .is_some_and(|p| p.langfuse.is_some() || p.lang_smith.is_some() || p.datadog.is_some())
}

/// Header names a preset sets itself (lowercase).
pub fn preset_header_names(preset: &crate::TracePreset) -> Vec<&'static str> {
    let mut names = Vec::new();
    if preset.langfuse.is_some() {
        names.extend(["authorization", "x-langfuse-ingestion-version"]);
    }
    if let Some(smith) = &preset.lang_smith {
        names.push("x-api-key");
        if smith.project.is_some() {
            names.push("langsmith-project");
        }
    }
    if preset.phoenix.as_ref().is_some_and(|p| p.api_key.is_some()) {
        names.push("authorization");
    }
    if preset.datadog.is_some() {
        names.push("dd-api-key");
    }
    names
}

fn check_preset(errors: &mut FieldErrors, traces: &crate::TracesSpec, preset: &crate::TracePreset) {
    use crate::TraceProtocol;
    const PATH: &str = "spec.observability.traces.preset";
    let set = [
        preset.langfuse.is_some(),
        preset.lang_smith.is_some(),
        preset.phoenix.is_some(),
        preset.datadog.is_some(),
    ];
    if set.iter().filter(|s| **s).count() != 1 {
        errors.push(
            PATH,
            "set exactly one of langfuse, langSmith, phoenix or datadog",
        );
        return;
    }
    let (name, field, allowed): (&str, &str, &[TraceProtocol]) = if preset.langfuse.is_some() {
        (
            "Langfuse",
            "langfuse",
            &[TraceProtocol::HttpProtobuf, TraceProtocol::HttpJson],
        )
    } else if preset.lang_smith.is_some() {
        (
            "LangSmith",
            "langSmith",
            &[TraceProtocol::HttpProtobuf, TraceProtocol::HttpJson],
        )
    } else if preset.phoenix.is_some() {
        ("Phoenix", "phoenix", &[TraceProtocol::HttpProtobuf])
    } else {
        (
            "Datadog",
            "datadog",
            &[TraceProtocol::HttpProtobuf, TraceProtocol::HttpJson],
        )
    };
    if !allowed.contains(&traces.protocol) {
        let allowed: Vec<&str> = allowed.iter().map(|p| p.as_str()).collect();
        errors.push(
            "spec.observability.traces.protocol",
            format!("{name} accepts {} only", allowed.join(" or ")),
        );
    }
    let path = format!("{PATH}.{field}");
    let mut secret = |sub: &str, selector: &SecretKeySelector| {
        check_secret_ref(
            errors,
            &format!("{path}.{sub}"),
            &selector.name,
            &selector.key,
        )
    };
    if let Some(langfuse) = &preset.langfuse {
        secret("basicAuth", &langfuse.basic_auth);
    }
    if let Some(smith) = &preset.lang_smith {
        secret("apiKey", &smith.api_key);
    }
    if let Some(phoenix) = &preset.phoenix
        && let Some(key) = &phoenix.api_key
    {
        secret("apiKey", key);
    }
    if let Some(datadog) = &preset.datadog {
        secret("apiKey", &datadog.api_key);
        if let Some(site) = &datadog.site
            && !is_dns_name(site)
        {
            errors.push(
                format!("{path}.site"),
                format!("{site:?} is not a DNS name"),
            );
        }
    }
    let project = preset
        .lang_smith
        .as_ref()
        .and_then(|p| p.project.as_ref())
        .or(preset.phoenix.as_ref().and_then(|p| p.project.as_ref()));
    if let Some(project) = project
        && (project.trim().is_empty() || project.len() > 256)
    {
        errors.push(
            format!("{path}.project"),
            "must be 1-256 characters, not all blank",
        );
    }
    let taken = preset_header_names(preset);
    for header in traces.headers.keys() {
        if taken.contains(&header.to_ascii_lowercase().as_str()) {
            errors.push(
                format!("spec.observability.traces.headers[{header}]"),
                format!("the {name} preset sets this header itself"),
            );
        }
    }
}
