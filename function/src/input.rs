//! The function's input: the `input` block of this step in a Composition
//! pipeline. Crossplane never validates it, so it is parsed strictly here and
//! every error names the offending field.

use std::fmt;
use std::time::Duration;

use apis::schema::{DNS_LABEL_PATTERN, HOST_PORT_PATTERN, IMAGE_PATTERN};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub const INPUT_API_VERSION: &str = "signals.fn.modelplane.ai/v1beta1";
pub const INPUT_KIND: &str = "Input";

/// The collector image the function pins; the component names it emits
/// (`otlp_grpc`, `k8s_attributes`, ...) need a build at least this new.
pub const DEFAULT_COLLECTOR_IMAGE: &str = "otel/opentelemetry-collector-k8s:0.159.0";
/// Where agents send OTLP when neither the XR nor the input says otherwise:
/// the aggregator's in-cluster Service, right for single-cluster installs.
pub const DEFAULT_AGGREGATOR_ENDPOINT: &str =
    "signal-aggregator.modelplane-system.svc.cluster.local:4317";
/// Namespace of the agent on the workload cluster, and of the provider-kubernetes
/// Objects on the control plane (Modelplane's system namespace on both).
pub const DEFAULT_SYSTEM_NAMESPACE: &str = "modelplane-system";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Mode {
    /// Wrap every agent resource in a provider-kubernetes Object aimed at the
    /// ProviderConfig in the XR's status.providerConfigRef.
    #[default]
    MultiCluster,
    /// Render plain Kubernetes resources into the cluster Crossplane runs in.
    SingleCluster,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ProviderConfigKind {
    #[default]
    ClusterProviderConfig,
    ProviderConfig,
}

impl ProviderConfigKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            ProviderConfigKind::ClusterProviderConfig => "ClusterProviderConfig",
            ProviderConfigKind::ProviderConfig => "ProviderConfig",
        }
    }
}

/// Input of a function-signals pipeline step
/// (`apiVersion: signals.fn.modelplane.ai/v1beta1`, `kind: Input`). Every field
/// is optional; a step without input gets the defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Input {
    #[serde(default = "default_api_version")]
    pub api_version: String,
    #[serde(default = "default_kind")]
    pub kind: String,
    /// Crossplane copies the step's input verbatim, metadata included.
    #[serde(default, skip_serializing)]
    pub metadata: Option<serde_json::Value>,
    /// Where the agent's resources are rendered.
    #[serde(default)]
    pub mode: Mode,
    /// How long Crossplane may cache the response, which is also how often it
    /// re-runs the pipeline, e.g. 60s, 5m, 1m30s. Defaults to the --ttl flag
    /// (60s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Ttl>,
    /// host:port of the signal-aggregator's OTLP/gRPC listener, for XRs that do
    /// not set spec.signals.aggregator.endpoint. Defaults to
    /// signal-aggregator.modelplane-system.svc.cluster.local:4317.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(HOST_PORT_PATTERN))]
    pub aggregator_endpoint: Option<String>,
    /// Collector image for XRs that do not set spec.signals.agent.image; must be
    /// an opentelemetry-collector-k8s build of 0.158 or later (new component
    /// names; the ottl.set.allowNil feature gate). Defaults to
    /// otel/opentelemetry-collector-k8s:0.159.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(IMAGE_PATTERN))]
    pub collector_image: Option<String>,
    /// Namespace of the provider-kubernetes Objects on the control plane
    /// (MultiCluster mode). Defaults to modelplane-system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63), pattern(DNS_LABEL_PATTERN))]
    pub object_namespace: Option<String>,
    /// Kind of the ProviderConfig named by status.providerConfigRef.name when
    /// that reference carries no kind.
    #[serde(default)]
    pub provider_config_kind: ProviderConfigKind,
    /// Control-plane namespace where signal-aggregator issues each cluster's
    /// ingest token Secret (signals-ingest-<cluster>); must equal the
    /// aggregator's --token-namespace. In MultiCluster mode the function copies
    /// the token from there to Secret signals-agent-token in the agent
    /// namespace; in SingleCluster mode an agent running in this namespace reads
    /// it directly. Defaults to modelplane-system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63), pattern(DNS_LABEL_PATTERN))]
    pub token_namespace: Option<String>,
}

fn default_api_version() -> String {
    INPUT_API_VERSION.to_string()
}

fn default_kind() -> String {
    INPUT_KIND.to_string()
}

impl Default for Input {
    fn default() -> Self {
        Input {
            api_version: default_api_version(),
            kind: default_kind(),
            metadata: None,
            mode: Mode::default(),
            ttl: None,
            aggregator_endpoint: None,
            collector_image: None,
            object_namespace: None,
            provider_config_kind: ProviderConfigKind::default(),
            token_namespace: None,
        }
    }
}

impl Input {
    /// Parses the step input; errors name the field as `input.<path>`.
    pub fn from_json(value: serde_json::Value) -> Result<Input, String> {
        let input: Input = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." {
                "input".to_string()
            } else {
                format!("input.{path}")
            };
            format!("{field}: {}", e.inner())
        })?;
        if input.api_version != INPUT_API_VERSION || input.kind != INPUT_KIND {
            return Err(format!(
                "input: want apiVersion {INPUT_API_VERSION} and kind {INPUT_KIND}, got {} {}",
                input.api_version, input.kind
            ));
        }
        if let Some(endpoint) = &input.aggregator_endpoint
            && !apis::validation::is_host_port(endpoint)
        {
            return Err(format!(
                "input.aggregatorEndpoint: {endpoint:?} is not host:port"
            ));
        }
        if let Some(image) = &input.collector_image
            && (image.trim().is_empty() || image.contains(char::is_whitespace))
        {
            return Err(format!(
                "input.collectorImage: {image:?} is not an image reference"
            ));
        }
        for (field, namespace) in [
            ("objectNamespace", &input.object_namespace),
            ("tokenNamespace", &input.token_namespace),
        ] {
            if let Some(ns) = namespace
                && !apis::validation::is_dns_label(ns)
            {
                return Err(format!(
                    "input.{field}: {ns:?} is not a valid namespace name"
                ));
            }
        }
        Ok(input)
    }

    /// Where the Objects live on the control plane.
    pub fn object_namespace(&self) -> &str {
        self.object_namespace
            .as_deref()
            .unwrap_or(DEFAULT_SYSTEM_NAMESPACE)
    }

    /// Where the aggregator keeps the ingest token Secrets on the control plane.
    pub fn token_namespace(&self) -> &str {
        self.token_namespace
            .as_deref()
            .unwrap_or(DEFAULT_SYSTEM_NAMESPACE)
    }
}

/// A duration written like Go's (`60s`, `5m`, `1m30s`, `500ms`, `1h`): the
/// format `--ttl` and function-go-templating's `ttl` accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ttl(pub Duration);

impl std::str::FromStr for Ttl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || format!("{s:?} is not a duration such as 60s, 5m or 1m30s");
        if s.is_empty() {
            return Err(invalid());
        }
        let mut total = Duration::ZERO;
        let mut rest = s;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 || digits > 9 {
                return Err(invalid());
            }
            let count: u64 = rest[..digits].parse().map_err(|_| invalid())?;
            rest = &rest[digits..];
            let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            let unit = match &rest[..unit_len] {
                "ms" => Duration::from_millis(count),
                "s" => Duration::from_secs(count),
                "m" => Duration::from_secs(count * 60),
                "h" => Duration::from_secs(count * 3600),
                _ => return Err(invalid()),
            };
            total += unit;
            rest = &rest[unit_len..];
        }
        if total.is_zero() {
            return Err(format!("{s:?}: the TTL must be positive"));
        }
        Ok(Ttl(total))
    }
}

impl fmt::Display for Ttl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        if millis.is_multiple_of(1000) {
            write!(f, "{}s", millis / 1000)
        } else {
            write!(f, "{millis}ms")
        }
    }
}

impl Serialize for Ttl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ttl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

/// What [`Ttl::from_str`] parses, but for the zero check (`0s` matches).
pub const TTL_PATTERN: &str = "^([0-9]{1,9}(ms|s|m|h))+$";

impl JsonSchema for Ttl {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Ttl".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "pattern": TTL_PATTERN })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ttl_accepts_go_style_durations() {
        for (text, millis) in [
            ("60s", 60_000),
            ("5m", 300_000),
            ("1m30s", 90_000),
            ("500ms", 500),
            ("1h", 3_600_000),
        ] {
            let ttl: Ttl = text.parse().unwrap();
            assert_eq!(ttl.0.as_millis(), millis, "{text}");
        }
        for bad in ["", "0s", "10", "s", "1d", "-5s", "1.5s", "5 s"] {
            assert!(bad.parse::<Ttl>().is_err(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn empty_input_gets_defaults() {
        let input = Input::from_json(json!({})).unwrap();
        assert_eq!(input, Input::default());
        assert_eq!(input.mode, Mode::MultiCluster);
    }

    #[test]
    fn errors_name_the_field() {
        let err = Input::from_json(json!({"mode": "Everywhere"})).unwrap_err();
        assert!(
            err.starts_with("input.mode: unknown variant `Everywhere`"),
            "{err}"
        );
        let err = Input::from_json(json!({"ttl": "soon"})).unwrap_err();
        assert!(err.starts_with("input.ttl: "), "{err}");
        let err = Input::from_json(json!({"colectorImage": "x"})).unwrap_err();
        assert!(
            err.starts_with("input.colectorImage: unknown field `colectorImage`"),
            "{err}"
        );
        let err = Input::from_json(json!({"aggregatorEndpoint": "http://x"})).unwrap_err();
        assert!(err.starts_with("input.aggregatorEndpoint: "), "{err}");
        let err = Input::from_json(json!({"tokenNamespace": "Modelplane_System"})).unwrap_err();
        assert_eq!(
            err,
            "input.tokenNamespace: \"Modelplane_System\" is not a valid namespace name"
        );
        let err = Input::from_json(json!({"kind": "Resources"})).unwrap_err();
        assert!(
            err.contains("want apiVersion signals.fn.modelplane.ai/v1beta1 and kind Input"),
            "{err}"
        );
    }
}
