//! `trace.v1` messages.

use serde_json::Value;

use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span, status,
};

use super::common::{attributes, resource, scope};
use super::{
    Ctx, Result, enumeration, field, object, optional, repeated, span_id, string, trace_id, uint32,
    uint64,
};

pub(super) fn resource_spans(ctx: &mut Ctx, value: Value) -> Result<ResourceSpans> {
    let mut m = object(ctx, value)?;
    Ok(ResourceSpans {
        resource: optional(ctx, &mut m, "resource", "resource", resource)?,
        scope_spans: repeated(ctx, &mut m, "scopeSpans", "scope_spans", scope_spans)?,
        schema_url: field(ctx, &mut m, "schemaUrl", "schema_url", string)?,
    })
}

fn scope_spans(ctx: &mut Ctx, value: Value) -> Result<ScopeSpans> {
    let mut m = object(ctx, value)?;
    Ok(ScopeSpans {
        scope: optional(ctx, &mut m, "scope", "scope", scope)?,
        spans: repeated(ctx, &mut m, "spans", "spans", self::span)?,
        schema_url: field(ctx, &mut m, "schemaUrl", "schema_url", string)?,
    })
}

fn span(ctx: &mut Ctx, value: Value) -> Result<Span> {
    let mut m = object(ctx, value)?;
    Ok(Span {
        trace_id: field(ctx, &mut m, "traceId", "trace_id", trace_id)?,
        span_id: field(ctx, &mut m, "spanId", "span_id", span_id)?,
        trace_state: field(ctx, &mut m, "traceState", "trace_state", string)?,
        parent_span_id: field(ctx, &mut m, "parentSpanId", "parent_span_id", span_id)?,
        flags: field(ctx, &mut m, "flags", "flags", uint32)?,
        name: field(ctx, &mut m, "name", "name", string)?,
        kind: field(ctx, &mut m, "kind", "kind", span_kind)?,
        start_time_unix_nano: field(
            ctx,
            &mut m,
            "startTimeUnixNano",
            "start_time_unix_nano",
            uint64,
        )?,
        end_time_unix_nano: field(ctx, &mut m, "endTimeUnixNano", "end_time_unix_nano", uint64)?,
        attributes: attributes(ctx, &mut m)?,
        dropped_attributes_count: dropped_attributes(ctx, &mut m)?,
        events: repeated(ctx, &mut m, "events", "events", event)?,
        dropped_events_count: field(
            ctx,
            &mut m,
            "droppedEventsCount",
            "dropped_events_count",
            uint32,
        )?,
        links: repeated(ctx, &mut m, "links", "links", link)?,
        dropped_links_count: field(
            ctx,
            &mut m,
            "droppedLinksCount",
            "dropped_links_count",
            uint32,
        )?,
        status: optional(ctx, &mut m, "status", "status", self::status)?,
    })
}

fn dropped_attributes(ctx: &mut Ctx, m: &mut serde_json::Map<String, Value>) -> Result<u32> {
    field(
        ctx,
        m,
        "droppedAttributesCount",
        "dropped_attributes_count",
        uint32,
    )
}

fn span_kind(ctx: &mut Ctx, value: Value) -> Result<i32> {
    enumeration(ctx, value, "SPAN_KIND_", |name| {
        span::SpanKind::from_str_name(name).map(|k| k as i32)
    })
}

fn event(ctx: &mut Ctx, value: Value) -> Result<span::Event> {
    let mut m = object(ctx, value)?;
    Ok(span::Event {
        time_unix_nano: field(ctx, &mut m, "timeUnixNano", "time_unix_nano", uint64)?,
        name: field(ctx, &mut m, "name", "name", string)?,
        attributes: attributes(ctx, &mut m)?,
        dropped_attributes_count: dropped_attributes(ctx, &mut m)?,
    })
}

fn link(ctx: &mut Ctx, value: Value) -> Result<span::Link> {
    let mut m = object(ctx, value)?;
    Ok(span::Link {
        trace_id: field(ctx, &mut m, "traceId", "trace_id", trace_id)?,
        span_id: field(ctx, &mut m, "spanId", "span_id", span_id)?,
        trace_state: field(ctx, &mut m, "traceState", "trace_state", string)?,
        attributes: attributes(ctx, &mut m)?,
        dropped_attributes_count: dropped_attributes(ctx, &mut m)?,
        flags: field(ctx, &mut m, "flags", "flags", uint32)?,
    })
}

fn status(ctx: &mut Ctx, value: Value) -> Result<Status> {
    let mut m = object(ctx, value)?;
    Ok(Status {
        message: field(ctx, &mut m, "message", "message", string)?,
        code: field(ctx, &mut m, "code", "code", |ctx, value| {
            enumeration(ctx, value, "STATUS_CODE_", |name| {
                status::StatusCode::from_str_name(name).map(|c| c as i32)
            })
        })?,
    })
}
