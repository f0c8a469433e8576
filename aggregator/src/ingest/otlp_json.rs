//! OTLP/JSON → prost messages, written by hand.
//!
//! `opentelemetry-proto`'s `with-serde` feature silently drops metric data and
//! rejects spec-compliant input (reference §3.4), so this walks a
//! `serde_json::Value` following the OTLP spec's JSON mapping:
//! lowerCamelCase keys (snake_case originals accepted too), trace and span ids
//! as hex (any case), 64-bit integers as strings or numbers, enums as integers
//! (names accepted leniently), `bytesValue` as base64, doubles as numbers or
//! `"NaN"`/`"Infinity"`/`"-Infinity"`. Unknown fields are ignored; `null`
//! means "not set". Every error names where it happened, e.g.
//! `resourceSpans[0].scopeSpans[1].spans[3].traceId: expected 32 hex digits`.
//! Errors never echo payload content back (it may be prompt text).

mod common;
mod metrics;
mod trace;

use std::fmt;

use serde_json::{Map, Value};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

/// Why a JSON body could not be decoded, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// Location in OTLP/JSON terms (`resourceMetrics[0].scopeMetrics[0]...`);
    /// empty when the body as a whole is at fault.
    pub path: String,
    pub message: String,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for JsonError {}

/// Decodes an OTLP/JSON `ExportMetricsServiceRequest`.
pub fn decode_metrics(body: &[u8]) -> Result<ExportMetricsServiceRequest, JsonError> {
    let mut ctx = Ctx::default();
    let mut root = parse_root(&mut ctx, body)?;
    Ok(ExportMetricsServiceRequest {
        resource_metrics: repeated(
            &mut ctx,
            &mut root,
            "resourceMetrics",
            "resource_metrics",
            metrics::resource_metrics,
        )?,
    })
}

/// Decodes an OTLP/JSON `ExportTraceServiceRequest`.
pub fn decode_traces(body: &[u8]) -> Result<ExportTraceServiceRequest, JsonError> {
    let mut ctx = Ctx::default();
    let mut root = parse_root(&mut ctx, body)?;
    Ok(ExportTraceServiceRequest {
        resource_spans: repeated(
            &mut ctx,
            &mut root,
            "resourceSpans",
            "resource_spans",
            trace::resource_spans,
        )?,
    })
}

fn parse_root(ctx: &mut Ctx, body: &[u8]) -> Result<Map<String, Value>, JsonError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ctx.error(format!("body is not valid JSON: {e}")))?;
    object(ctx, value)
}

type Result<T, E = JsonError> = std::result::Result<T, E>;

/// A parser for one JSON value at the current location.
type Parse<T> = fn(&mut Ctx, Value) -> Result<T>;

enum Segment {
    Field(&'static str),
    Index(usize),
}

/// Where the walk is, so errors can say so. Only formatted on error.
#[derive(Default)]
struct Ctx {
    path: Vec<Segment>,
}

impl Ctx {
    fn error(&self, message: impl Into<String>) -> JsonError {
        let mut path = String::new();
        for segment in &self.path {
            match segment {
                Segment::Field(name) => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(name);
                }
                Segment::Index(i) => {
                    path.push('[');
                    path.push_str(&i.to_string());
                    path.push(']');
                }
            }
        }
        JsonError {
            path,
            message: message.into(),
        }
    }

    fn within<T>(&mut self, segment: Segment, f: impl FnOnce(&mut Ctx) -> Result<T>) -> Result<T> {
        self.path.push(segment);
        let result = f(self);
        self.path.pop();
        result
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Removes a field by its lowerCamelCase name or its proto (snake_case) name.
/// `null` counts as absent, as in the proto3 JSON mapping.
fn take(map: &mut Map<String, Value>, camel: &str, snake: &str) -> Option<Value> {
    let value = match map.remove(camel) {
        Some(v) => Some(v),
        None if camel != snake => map.remove(snake),
        None => None,
    };
    value.filter(|v| !v.is_null())
}

/// An optional field; `None` when absent or `null`.
fn optional<T>(
    ctx: &mut Ctx,
    map: &mut Map<String, Value>,
    camel: &'static str,
    snake: &'static str,
    parse: Parse<T>,
) -> Result<Option<T>> {
    match take(map, camel, snake) {
        Some(value) => ctx.within(Segment::Field(camel), |ctx| parse(ctx, value).map(Some)),
        None => Ok(None),
    }
}

/// A singular field that takes its default value when absent.
fn field<T: Default>(
    ctx: &mut Ctx,
    map: &mut Map<String, Value>,
    camel: &'static str,
    snake: &'static str,
    parse: Parse<T>,
) -> Result<T> {
    Ok(optional(ctx, map, camel, snake, parse)?.unwrap_or_default())
}

/// A repeated field; empty when absent.
fn repeated<T>(
    ctx: &mut Ctx,
    map: &mut Map<String, Value>,
    camel: &'static str,
    snake: &'static str,
    parse: Parse<T>,
) -> Result<Vec<T>> {
    let Some(value) = take(map, camel, snake) else {
        return Ok(Vec::new());
    };
    ctx.within(Segment::Field(camel), |ctx| {
        let Value::Array(items) = value else {
            return Err(ctx.error(format!("expected an array, got {}", kind_of(&value))));
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            out.push(ctx.within(Segment::Index(i), |ctx| parse(ctx, item))?);
        }
        Ok(out)
    })
}

fn object(ctx: &mut Ctx, value: Value) -> Result<Map<String, Value>> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(ctx.error(format!("expected an object, got {}", kind_of(&other)))),
    }
}

fn string(ctx: &mut Ctx, value: Value) -> Result<String> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(ctx.error(format!("expected a string, got {}", kind_of(&other)))),
    }
}

fn boolean(ctx: &mut Ctx, value: Value) -> Result<bool> {
    match value {
        Value::Bool(b) => Ok(b),
        Value::String(s) if s == "true" => Ok(true),
        Value::String(s) if s == "false" => Ok(false),
        other => Err(ctx.error(format!("expected a boolean, got {}", kind_of(&other)))),
    }
}

/// Integers arrive as JSON numbers or decimal strings (the spec's encoding of
/// 64-bit values); both are accepted for every integer width.
fn integer<T>(ctx: &mut Ctx, value: Value, type_name: &str) -> Result<T>
where
    T: TryFrom<i128>,
{
    let wide: Option<i128> = match &value {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 1.8e19)
                    .map(|f| f as i128)
            }),
        Value::String(s) => s.trim().parse::<i128>().ok(),
        other => {
            return Err(ctx.error(format!(
                "expected an integer ({type_name}) as a number or a decimal string, got {}",
                kind_of(other)
            )));
        }
    };
    wide.and_then(|w| T::try_from(w).ok()).ok_or_else(|| {
        ctx.error(format!(
            "expected an integer in the range of {type_name}, as a number or a decimal string"
        ))
    })
}

fn uint64(ctx: &mut Ctx, value: Value) -> Result<u64> {
    integer(ctx, value, "uint64")
}

fn int64(ctx: &mut Ctx, value: Value) -> Result<i64> {
    integer(ctx, value, "int64")
}

fn uint32(ctx: &mut Ctx, value: Value) -> Result<u32> {
    integer(ctx, value, "uint32")
}

fn int32(ctx: &mut Ctx, value: Value) -> Result<i32> {
    integer(ctx, value, "int32")
}

fn double(ctx: &mut Ctx, value: Value) -> Result<f64> {
    match &value {
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| ctx.error("expected a finite number")),
        Value::String(s) => match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            other => other.trim().parse::<f64>().map_err(|_| {
                ctx.error("expected a number, or the string \"NaN\", \"Infinity\" or \"-Infinity\"")
            }),
        },
        other => Err(ctx.error(format!(
            "expected a number, or the string \"NaN\", \"Infinity\" or \"-Infinity\", got {}",
            kind_of(other)
        ))),
    }
}

/// Enums are integers in OTLP/JSON; some producers send names, so
/// `AGGREGATION_TEMPORALITY_DELTA`, `aggregation_temporality_delta` and `DELTA`
/// are accepted too. Unknown numbers are kept (proto3 enums are open).
fn enumeration(
    ctx: &mut Ctx,
    value: Value,
    prefix: &str,
    from_name: fn(&str) -> Option<i32>,
) -> Result<i32> {
    if let Value::String(name) = &value
        && name.parse::<i64>().is_err()
    {
        let upper = name.trim().to_ascii_uppercase();
        return from_name(&upper)
            .or_else(|| from_name(&format!("{prefix}{upper}")))
            .ok_or_else(|| {
                ctx.error(format!(
                    "unknown enum name; expected an integer or a {prefix}* name"
                ))
            });
    }
    int32(ctx, value)
}

/// `traceId` / `spanId`: hex in OTLP/JSON (not base64 as in plain proto3 JSON).
/// An empty string means "not set".
fn hex_id(ctx: &mut Ctx, value: Value, bytes: usize) -> Result<Vec<u8>> {
    let text = string(ctx, value)?;
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let digits = text.as_bytes();
    if digits.len() != bytes * 2 {
        return Err(ctx.error(format!(
            "expected {} hex digits, got {} characters",
            bytes * 2,
            digits.len()
        )));
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    digits
        .chunks_exact(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| {
            ctx.error(format!(
                "expected {} hex digits, found a non-hex character",
                bytes * 2
            ))
        })
}

fn trace_id(ctx: &mut Ctx, value: Value) -> Result<Vec<u8>> {
    hex_id(ctx, value, 16)
}

fn span_id(ctx: &mut Ctx, value: Value) -> Result<Vec<u8>> {
    hex_id(ctx, value, 8)
}

/// `bytes` fields other than ids: base64, standard or URL-safe alphabet,
/// padded or not (as proto3 JSON parsers accept).
fn base64_bytes(ctx: &mut Ctx, value: Value) -> Result<Vec<u8>> {
    use base64::Engine;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurposeConfig =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    const STANDARD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, LENIENT);
    const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, LENIENT);
    let text = string(ctx, value)?;
    STANDARD
        .decode(&text)
        .or_else(|_| URL_SAFE.decode(&text))
        .map_err(|_| ctx.error("expected base64-encoded bytes"))
}

/// A oneof: at most one of `candidates` may be present.
fn one_of<T>(
    ctx: &mut Ctx,
    map: &mut Map<String, Value>,
    candidates: &[(&'static str, &'static str, Parse<T>)],
) -> Result<Option<T>> {
    let mut found: Option<(&'static str, T)> = None;
    for &(camel, snake, parse) in candidates {
        if let Some(value) = optional(ctx, map, camel, snake, parse)? {
            if let Some((first, _)) = &found {
                return Err(ctx.error(format!(
                    "both {first} and {camel} are set; they are alternatives (a oneof)"
                )));
            }
            found = Some((camel, value));
        }
    }
    Ok(found.map(|(_, value)| value))
}
