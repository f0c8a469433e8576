//! OTLP spans → RequestLifecycle and PrefixHash points.
//!
//! Request spans are GenAI client/server spans (current and deprecated
//! attribute names) and vLLM/SGLang `llm_request` spans with their
//! `gen_ai.latency.*` attributes.

use apis::wire::LLM_REQUEST_SPAN;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::trace::v1::{Span, status};

use super::attrs::{as_f64, as_str, value_of};
use super::bounded;
use super::builder::{BatchBuilder, Pushed, SeriesCtx};
use super::identity::{ResourceIdentity, resource_identity};
use super::losses::DropReason;
use super::precedence::Vantage;
use super::tally::Tally;
use super::{NO_MODEL, Normalized, Normalizer};
use crate::signal::{Field, FieldKey, Origin, SignalKind, Value};

const BAD_SIGNAL: &str = "modelplane.signal must be RequestLifecycle or PrefixHash";
const BAD_SAMPLE_RATE: &str = "modelplane.sample_rate must be a number in (0, 1]";
const BAD_PREFIX_HASH: &str =
    "modelplane.prefix.hash(es) must be an int or a 16-hex-digit string (or an array of them)";
const INVALID_MODEL: &str =
    "gen_ai.request.model / gen_ai.response.model must be 1-200 chars of [A-Za-z0-9._/:@+-]";

/// `gen_ai.operation.name` values that are one model request. Agent and
/// tool spans wrap these and would double count.
const REQUEST_OPERATIONS: &[&str] = &["chat", "text_completion", "generate_content", "embeddings"];

/// The allowlisted span attributes; everything else is never read.
#[derive(Default)]
struct SpanAttrs<'a> {
    request_model: Option<&'a str>,
    response_model: Option<&'a str>,
    operation: Option<&'a str>,
    genai: bool,
    /// Client/gateway spans name a provider; engine spans do not.
    provider: bool,
    input_tokens: Option<f64>,
    output_tokens: Option<f64>,
    cache_read_tokens: Option<f64>,
    ttft: Option<f64>,
    e2e: Option<f64>,
    queue: Option<f64>,
    error_type: bool,
    signal: Option<&'a any_value::Value>,
    sample_rate: Option<&'a any_value::Value>,
    prefix_hash: Option<&'a any_value::Value>,
    prefix_hashes: Option<&'a any_value::Value>,
}

impl<'a> SpanAttrs<'a> {
    fn read(span: &'a Span) -> Self {
        let mut a = SpanAttrs::default();
        for kv in &span.attributes {
            let value = || value_of(kv);
            let number = || value().and_then(as_f64).filter(|v| *v >= 0.0);
            match kv.key.as_str() {
                "gen_ai.request.model" => a.request_model = value().and_then(as_str),
                "gen_ai.response.model" => a.response_model = value().and_then(as_str),
                "gen_ai.operation.name" => a.operation = value().and_then(as_str),
                "gen_ai.provider.name" | "gen_ai.system" => a.provider = true,
                "gen_ai.usage.input_tokens" | "gen_ai.usage.prompt_tokens" => {
                    a.input_tokens = number()
                }
                "gen_ai.usage.output_tokens" | "gen_ai.usage.completion_tokens" => {
                    a.output_tokens = number()
                }
                "gen_ai.usage.cache_read.input_tokens" => a.cache_read_tokens = number(),
                "gen_ai.response.time_to_first_chunk" | "gen_ai.latency.time_to_first_token" => {
                    a.ttft = number()
                }
                "gen_ai.latency.e2e" => a.e2e = number(),
                "gen_ai.latency.time_in_queue" => a.queue = number(),
                "error.type" => a.error_type = true,
                "modelplane.signal" => a.signal = value(),
                "modelplane.sample_rate" => a.sample_rate = value(),
                "modelplane.prefix.hash" => a.prefix_hash = value(),
                "modelplane.prefix.hashes" => a.prefix_hashes = value(),
                _ => {}
            }
        }
        a.genai |= a.provider
            || a.request_model.is_some()
            || a.response_model.is_some()
            || a.input_tokens.is_some()
            || a.output_tokens.is_some()
            || a.e2e.is_some();
        a
    }
}

pub(crate) fn normalize(
    normalizer: &Normalizer,
    origin: &Origin,
    request: &ExportTraceServiceRequest,
    now_secs: u64,
    now_nanos: u64,
) -> Normalized {
    let mut builder = BatchBuilder::new(&normalizer.limiter, &normalizer.precedence, now_secs);
    let mut tally = Tally::default();
    let mut hashes = Vec::new();
    for resource_spans in &request.resource_spans {
        let spans = || {
            resource_spans
                .scope_spans
                .iter()
                .flat_map(|s| s.spans.iter())
        };
        let mark = tally.loss_mark();
        let identity = match resource_identity(origin, resource_spans.resource.as_ref()) {
            Ok(identity) => identity,
            Err(refused) => {
                tally.reject(spans().count() as u64, refused.error.message());
                if let Some(cluster) = refused.cluster {
                    tally.attribute_losses(cluster, mark);
                }
                continue;
            }
        };
        for span in spans() {
            match span_points(&identity, span, &mut builder, &mut hashes, now_nanos) {
                Ok((series, outranked)) => {
                    tally.accepted += 1;
                    if let Some(reason) = series {
                        tally.drop(reason, 1);
                    }
                    tally.drop(DropReason::OutrankedSource, u64::from(outranked));
                }
                Err(why) => tally.reject(1, why),
            }
        }
        tally.attribute_losses(identity.cluster, mark);
    }
    tally.finish(builder.finish(), "spans")
}

/// Which span kinds a span feeds (`modelplane.signal`; absent = all).
fn wanted(signal: Option<&any_value::Value>) -> Result<(bool, bool), &'static str> {
    match signal {
        None => Ok((true, true)),
        Some(value) => match as_str(value) {
            Some("RequestLifecycle") => Ok((true, false)),
            Some("PrefixHash") => Ok((false, true)),
            _ => Err(BAD_SIGNAL),
        },
    }
}

fn sample_rate(value: Option<&any_value::Value>) -> Result<f64, &'static str> {
    match value {
        None => Ok(1.0),
        Some(value) => as_f64(value)
            .filter(|r| *r > 0.0 && *r <= 1.0)
            .ok_or(BAD_SAMPLE_RATE),
    }
}

fn parse_hash(value: &any_value::Value) -> Option<u64> {
    match value {
        any_value::Value::IntValue(i) => Some(*i as u64),
        any_value::Value::StringValue(s) if s.len() == 16 => u64::from_str_radix(s, 16).ok(),
        _ => None,
    }
}

fn collect_hashes(attrs: &SpanAttrs<'_>, out: &mut Vec<u64>) -> Result<(), &'static str> {
    out.clear();
    if let Some(value) = attrs.prefix_hash {
        out.push(parse_hash(value).ok_or(BAD_PREFIX_HASH)?);
    }
    if let Some(value) = attrs.prefix_hashes {
        let any_value::Value::ArrayValue(array) = value else {
            return Err(BAD_PREFIX_HASH);
        };
        for item in &array.values {
            out.push(
                item.value
                    .as_ref()
                    .and_then(parse_hash)
                    .ok_or(BAD_PREFIX_HASH)?,
            );
        }
    }
    Ok(())
}

/// `Ok((series budget outcome, outranked))`: whether some points were not
/// kept as they came (folded into overflow, refused, or outranked).
fn span_points(
    identity: &ResourceIdentity<'_>,
    span: &Span,
    builder: &mut BatchBuilder<'_>,
    hashes: &mut Vec<u64>,
    now_nanos: u64,
) -> Result<(Option<DropReason>, bool), &'static str> {
    let attrs = SpanAttrs::read(span);
    let (lifecycle, prefix) = wanted(attrs.signal)?;
    let weight = 1.0 / sample_rate(attrs.sample_rate)?;
    collect_hashes(&attrs, hashes)?;
    let model = attrs
        .response_model
        .or(attrs.request_model)
        .filter(|m| !m.is_empty())
        .unwrap_or(NO_MODEL);
    if model != NO_MODEL && !bounded::valid_model(model) {
        return Err(INVALID_MODEL);
    }
    let is_request = (span.name == LLM_REQUEST_SPAN || attrs.genai)
        && attrs
            .operation
            .is_none_or(|op| REQUEST_OPERATIONS.contains(&op));
    let time = match (span.end_time_unix_nano, span.start_time_unix_nano) {
        (0, 0) => now_nanos,
        (0, start) => start,
        (end, _) => end,
    };
    let ctx = SeriesCtx::new(identity.tenant, identity.cluster, model);
    builder.vantage = if attrs.provider {
        Vantage::GatewaySpans
    } else {
        Vantage::EngineSpans
    };
    let (mut series, mut outranked) = (None, false);
    let mut push =
        |kind, field, value| match builder.push(&ctx, kind, FieldKey::plain(field), time, value) {
            Pushed::Outranked => outranked = true,
            other => other.note_series(&mut series),
        };
    if lifecycle && is_request {
        let rl = SignalKind::RequestLifecycle;
        let failed = attrs.error_type
            || span
                .status
                .as_ref()
                .is_some_and(|s| s.code == status::StatusCode::Error as i32);
        push(rl, Field::Requests, Value::Counter(weight));
        if failed {
            push(rl, Field::Errors, Value::Counter(weight));
        }
        if let Some(input) = attrs.input_tokens.filter(|n| *n > 0.0) {
            push(rl, Field::InputTokens, Value::Counter(input * weight));
            if let Some(cached) = attrs.cache_read_tokens {
                push(
                    rl,
                    Field::PrefixCacheQueries,
                    Value::Counter(input * weight),
                );
                push(
                    rl,
                    Field::PrefixCacheHits,
                    Value::Counter(cached.min(input) * weight),
                );
            }
        }
        if let Some(output) = attrs.output_tokens.filter(|n| *n > 0.0) {
            push(rl, Field::OutputTokens, Value::Counter(output * weight));
        }
        let duration = span
            .end_time_unix_nano
            .saturating_sub(span.start_time_unix_nano) as f64
            / 1e9;
        let e2e = attrs.e2e.or((duration > 0.0).then_some(duration));
        if let Some(e2e) = e2e {
            push(rl, Field::E2eSeconds, Value::Sample(e2e));
        }
        if let Some(queue) = attrs.queue {
            push(rl, Field::QueueSeconds, Value::Sample(queue));
        }
        // TTFT and TPOT describe successful responses only (GenAI semconv).
        if let (Some(ttft), false) = (attrs.ttft, failed) {
            push(rl, Field::TtftSeconds, Value::Sample(ttft));
            if let (Some(e2e), Some(output)) = (e2e, attrs.output_tokens)
                && e2e >= ttft
            {
                let tpot = (e2e - ttft) / (output - 1.0).max(1.0);
                push(rl, Field::TpotSeconds, Value::Sample(tpot));
            }
        }
    }
    if prefix {
        for hash in hashes.iter() {
            push(
                SignalKind::PrefixHash,
                Field::PrefixHashes,
                Value::PrefixHash(*hash),
            );
        }
    }
    Ok((series, outranked))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// The string literals of the `match` arms between `from` and `to` in
    /// `source`: the attribute keys a reader acts on.
    fn matched_keys(source: &str, from: &str, to: &str) -> BTreeSet<String> {
        let start = source.find(from).expect("start marker") + from.len();
        let body = &source[start..];
        let body = &body[..body.find(to).expect("end marker")];
        let mut keys = BTreeSet::new();
        for line in body
            .lines()
            .filter(|l| l.trim_start().starts_with('"') && l.contains("=>"))
        {
            let arm = &line[..line.find("=>").unwrap()];
            keys.extend(arm.split('"').skip(1).step_by(2).map(str::to_string));
        }
        keys
    }

    /// The agent keeps only apis::wire's span attributes (its privacy
    /// allowlist): a key this reader starts to act on must be listed there,
    /// or the agent drops it before it arrives.
    #[test]
    fn the_span_reader_reads_exactly_the_agents_allowlist() {
        assert_reads_exactly(include_str!("spans.rs"), apis::wire::SPAN_ATTRIBUTES);
    }

    #[test]
    fn the_resource_reader_reads_exactly_the_agents_allowlist() {
        assert_reads_exactly(include_str!("identity.rs"), apis::wire::RESOURCE_ATTRIBUTES);
    }

    fn assert_reads_exactly(reader_source: &str, allowlist: &[&str]) {
        let read = matched_keys(reader_source, "match kv.key.as_str() {", "_ => {}");
        let listed: BTreeSet<String> = allowlist.iter().map(|k| k.to_string()).collect();
        assert_eq!(read, listed);
    }
}
