//! Patterns the types put in their schema, and so in the generated XRDs and
//! input CRD. `validation.rs` implements the same languages by hand (the crate
//! has no regex engine); the tests in `tests/xrd_agreement.rs` check both
//! against the same cases.

/// A DNS-1123 label: namespaces.
pub const DNS_LABEL_PATTERN: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/// A DNS-1123 subdomain: Secret names.
pub const DNS_SUBDOMAIN_PATTERN: &str = "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$";
/// A key of a Secret's data.
pub const SECRET_KEY_PATTERN: &str = "^[-._a-zA-Z0-9]+$";
/// `host:port` with no scheme, path or user-info (`@` would carry credentials into
/// a ConfigMap) and a port in 1..=65535 (no leading zero).
pub const HOST_PORT_PATTERN: &str = "^[^\\s/@]+:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$";
/// An image reference: no whitespace.
pub const IMAGE_PATTERN: &str = "^\\S+$";
/// At least one non-whitespace character.
pub const NON_BLANK_PATTERN: &str = "\\S";
/// ISO 4217 code.
pub const CURRENCY_PATTERN: &str = "^[A-Z]{3}$";
/// An http:// or https:// URL without whitespace.
pub const HTTP_URL_PATTERN: &str = "^https?://\\S+$";
/// A trace backend URL: http(s), no whitespace, and no user-info, query or
/// fragment (credentials there would be written into a ConfigMap, and the
/// OTLP/HTTP exporter appends `/v1/traces` to the path).
pub const TRACE_ENDPOINT_PATTERN: &str = "^https?://[^\\s/@?#]+(/[^\\s@?#]*)?$";
/// PascalCase signal name.
pub const SIGNAL_NAME_PATTERN: &str = "^[A-Z][A-Za-z0-9]{0,62}$";
