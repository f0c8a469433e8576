//! The OpenAPI 3.1 document served at `/openapi.json`. Paths and parameters
//! are written here; every response schema is generated from the type the
//! handler returns ([`super::model`]), so what the document promises is what
//! the handlers serialize; the answer examples are a real run's answers
//! (`examples.json`).

use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Value, json};

use super::model::{
    CapacityResponse, CompareResponse, ErrorResponse, Health, OverflowResponse,
    PrefixOverlapResponse, Readiness, SignalsResponse,
};
use crate::signal::SignalKind;

/// Generates response schemas into `#/components/schemas` (JSON Schema
/// 2020-12, which OpenAPI 3.1 uses as is).
fn generator() -> SchemaGenerator {
    SchemaSettings::draft2020_12()
        .for_serialize()
        .with(|settings| {
            settings.definitions_path = "/components/schemas".into();
            settings.meta_schema = None;
        })
        .into_generator()
}

/// `{"$ref": "#/components/schemas/<T>"}`, defining `T` (and what it uses).
fn schema<T: schemars::JsonSchema>(generator: &mut SchemaGenerator) -> Value {
    generator.subschema_for::<T>().to_value()
}

fn kinds() -> Vec<&'static str> {
    SignalKind::ALL.iter().map(|k| k.as_str()).collect()
}

fn error_response(description: &str, example: &str) -> Value {
    coded_error_response(description, "invalid_parameter", example)
}

const ERROR_SCHEMA: &str = "#/components/schemas/ErrorResponse";

fn coded_error_response(description: &str, code: &str, example: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": {
            "schema": { "$ref": ERROR_SCHEMA },
            "example": { "error": { "code": code, "message": example } }
        } }
    })
}

fn query_param(name: &str, description: &str, schema: Value, example: Value) -> Value {
    json!({ "name": name, "in": "query", "required": false,
            "description": description, "schema": schema, "example": example })
}

fn window_param() -> Value {
    query_param(
        "window",
        "How far back from `to` the query reaches: a whole number and one of s, m, h, d. \
         At most the retention. Data older than two hours is kept at hour resolution, \
         so an hour that overlaps the window counts whole.",
        json!({ "type": "string", "pattern": "^[1-9][0-9]{0,5}[smhd]$", "default": "5m" }),
        json!("5m"),
    )
}

fn to_param() -> Value {
    query_param(
        "to",
        "End of the window (exclusive), unix seconds. Default: now.",
        json!({ "type": "integer", "minimum": 0 }),
        json!(1767225600),
    )
}

/// Answers of a real run of the aggregator on a fixed fleet, written by
/// `aggregator/tests/it/signals/docs.rs` (`UPDATE_API_EXAMPLES=1`), which
/// fails when they are stale: the examples below cannot drift from the product.
const EXAMPLES_JSON: &str = include_str!("examples.json");

fn examples() -> Value {
    serde_json::from_str(EXAMPLES_JSON).expect("examples.json is JSON")
}

/// One example answer per signal kind.
fn signals_examples(examples: &Value) -> Value {
    kinds()
        .into_iter()
        .map(|kind| {
            let example = json!({ "summary": format!("{kind}, cluster us-east-1"),
                                  "value": examples["signals"][kind] });
            (kind.to_string(), example)
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

pub fn document() -> Value {
    let mut generator = generator();
    let error = schema::<ErrorResponse>(&mut generator);
    debug_assert_eq!(
        error["$ref"], ERROR_SCHEMA,
        "error responses refer to it by name"
    );
    let signals = schema::<SignalsResponse>(&mut generator);
    let compare = schema::<CompareResponse>(&mut generator);
    let health = schema::<Health>(&mut generator);
    let readiness = schema::<Readiness>(&mut generator);
    let examples = examples();
    let scheduler = scheduler_paths(&mut generator, &examples);
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "signal-aggregator query API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Fleet signals for LLM inference: per-tenant sketches merged over a time window. \
                            OTLP ingest is on separate ports (gRPC 4317, HTTP 4318) and is not described here."
        },
        "paths": {
            "/v1/tenants/{tenant}/signals/{kind}": { "get": {
                "operationId": "getTenantSignals",
                "summary": "One tenant's signals of one kind over a window, grouped",
                "description": "Series of the tenant that match the filters are merged per group \
                                (sketch merge: a group's quantiles are quantiles of all its requests).",
                "parameters": [
                    { "name": "tenant", "in": "path", "required": true, "schema": { "type": "string" }, "example": "team-a" },
                    { "name": "kind", "in": "path", "required": true,
                      "schema": { "type": "string", "enum": kinds() }, "example": "RequestLifecycle" },
                    query_param("cluster", "Only this cluster.", json!({ "type": "string" }), json!("us-east-1")),
                    query_param("model", "Only this model.", json!({ "type": "string" }), json!("llama-3.1-8b")),
                    window_param(),
                    to_param(),
                    query_param("groupBy", "Comma list of cluster, model; empty merges everything into one group.",
                        json!({ "type": "string", "default": "cluster,model" }), json!("cluster"))
                ],
                "responses": {
                    "200": { "description": "Grouped signals", "content": { "application/json": {
                        "schema": signals,
                        "examples": signals_examples(&examples) } } },
                    "400": error_response("A parameter is invalid; the message names it.",
                        "parameter \"window\": \"5x\" is not a duration; use a whole number and one of s, m, h, d (e.g. 30s, 5m, 1h, 7d)"),
                    "503": error_response("The sketch store is unavailable.", "store unavailable: connection refused")
                }
            } },
            "/v1/fleet/compare": { "get": {
                "operationId": "compareFleet",
                "summary": "One quantile per cluster and its ratio to the fleet median",
                "parameters": [
                    { "name": "kind", "in": "query", "required": true,
                      "schema": { "type": "string", "enum": kinds() }, "example": "RequestLifecycle" },
                    { "name": "field", "in": "query", "required": true,
                      "schema": { "type": "string", "enum": ["ttft_seconds", "tpot_seconds", "e2e_seconds", "queue_seconds", "phase_seconds"] },
                      "example": "ttft_seconds" },
                    query_param("quantile", "Strictly between 0 and 1.", json!({ "type": "number", "default": 0.99, "exclusiveMinimum": 0, "exclusiveMaximum": 1 }), json!(0.99)),
                    window_param(),
                    to_param(),
                    query_param("model", "Only this model.", json!({ "type": "string" }), json!("llama-3.1-8b")),
                    query_param("phase", "Cold-start phase; required with field=phase_seconds.", json!({ "type": "string" }), json!("model_load"))
                ],
                "responses": {
                    "200": { "description": "Per-cluster values", "content": { "application/json": {
                        "schema": compare,
                        "example": examples["compare"] } } },
                    "400": error_response("A parameter is invalid; the message names it.",
                        "parameter \"quantile\": \"1.5\" is not a number strictly between 0 and 1 (e.g. 0.99)")
                }
            } },
            "/openapi.json": { "get": {
                "operationId": "getOpenApi", "summary": "This document",
                "responses": { "200": { "description": "OpenAPI 3.1 document",
                    "content": { "application/json": { "schema": { "type": "object" } } } } }
            } },
            "/healthz": { "get": {
                "operationId": "getHealth", "summary": "Liveness: the process serves HTTP",
                "responses": { "200": { "description": "Alive", "content": { "application/json": {
                    "schema": health,
                    "example": { "status": "ok" } } } } }
            } },
            "/readyz": { "get": {
                "operationId": "getReadiness", "summary": "Readiness: the sketch store accepts writes",
                "responses": {
                    "200": { "description": "Ready", "content": { "application/json": {
                        "schema": readiness,
                        "example": { "status": "ready", "store": { "ready": true, "detail": "embedded in-memory store", "series": 42 } } } } },
                    "503": { "description": "Not ready", "content": { "application/json": {
                        "schema": readiness } } }
                }
            } },
            "/metrics": { "get": {
                "operationId": "getMetrics",
                "summary": "Prometheus text: aggregator health and the last five minutes of signals as gauges",
                "responses": { "200": { "description": "Prometheus text exposition format 0.0.4",
                    "content": { "text/plain": { "schema": { "type": "string" },
                        "example": "modelplane_signal_ttft_seconds{tenant=\"team-a\",cluster=\"us-east-1\",model=\"llama-3.1-8b\",quantile=\"0.99\"} 1.12\n" } } } }
            } }
        },
        "components": { "schemas": generator.take_definitions(true) }
    });
    if let Some(paths) = doc.pointer_mut("/paths").and_then(Value::as_object_mut) {
        paths.extend(scheduler);
    }
    doc["components"]["securitySchemes"] = json!({
        "bearer": { "type": "http", "scheme": "bearer",
            "description": "Query token from --query-tokens-file: an operator token reads everything; \
                            a tenant token reads /v1/tenants/{its tenant}/... only. Without configured \
                            tokens the API is open and bound to loopback (docs/auth.md)." }
    });
    doc["security"] = json!([{ "bearer": [] }]);
    for open in ["/healthz", "/readyz", "/openapi.json"] {
        doc["paths"][open]["get"]["security"] = json!([]);
    }
    for (path, forbidden) in [
        (
            "/v1/tenants/{tenant}/signals/{kind}",
            "this token reads tenant \"team-a\" only, not \"team-b\"; use /v1/tenants/team-a/... or an operator token",
        ),
        (
            "/v1/fleet/compare",
            "/v1/fleet/compare needs an operator token; this token reads tenant \"team-a\" only (/v1/tenants/team-a/...)",
        ),
        (
            "/metrics",
            "/metrics needs an operator token; this token reads tenant \"team-a\" only (/v1/tenants/team-a/...)",
        ),
    ] {
        doc["paths"][path]["get"]["responses"]["401"] = coded_error_response(
            "Missing or unknown bearer token (query tokens configured).",
            "unauthenticated",
            "the bearer token is not a current query token (unknown, revoked or rotated out)",
        );
        doc["paths"][path]["get"]["responses"]["403"] =
            coded_error_response("The token may not read this.", "forbidden", forbidden);
    }
    doc
}

fn operator_get(
    id: &str,
    summary: &str,
    description: &str,
    parameters: Vec<Value>,
    schema: Value,
    example: Value,
) -> Value {
    json!({ "get": {
        "operationId": id, "summary": summary, "description": description,
        "parameters": parameters,
        "responses": {
            "200": { "description": summary, "content": { "application/json": {
                "schema": schema, "example": example } } },
            "400": error_response("A parameter is invalid; the message names it.",
                "parameter \"model\": required"),
            "401": coded_error_response("Missing or unknown bearer token.", "unauthenticated",
                "missing authorization: send `authorization: Bearer <token>` with an operator or tenant query token"),
            "403": coded_error_response("A tenant token: these endpoints need the operator token.", "forbidden",
                "/v1/scheduler/capacity needs an operator token; this token reads tenant \"team-a\" only (/v1/tenants/team-a/...)")
        }
    } })
}

const FLEET_NOTE: &str = "Operator token only. Only fleet-visible series count: those of ModelServices \
    with observability.metrics.scope Fleet, or of clusters whose privacy.scope is Fleet.";

fn scheduler_paths(
    generator: &mut SchemaGenerator,
    examples: &Value,
) -> serde_json::Map<String, Value> {
    let model = |required: bool| {
        json!({ "name": "model", "in": "query", "required": required,
        "schema": { "type": "string" }, "example": "llama-3.1-8b" })
    };
    let mut out = serde_json::Map::new();
    out.insert("/v1/scheduler/capacity".into(), operator_get(
        "getSchedulerCapacity",
        "GPUs by SKU per cluster (for the federation matcher)",
        &format!("Per cluster and GPU SKU: each series' latest gpus/allocated readings summed over the \
                  cluster's series; free = gpus − allocated; utilization is GPU-weighted; the price per \
                  GPU-hour comes from spec.signals.cost.pricing, else the reported price gauge. {FLEET_NOTE}"),
        vec![window_param(), to_param(),
             query_param("cluster", "Only this cluster.", json!({ "type": "string" }), json!("us-east-1")),
             query_param("sku", "Only this GPU SKU.", json!({ "type": "string" }), json!("H100"))],
        schema::<CapacityResponse>(generator),
        examples["capacity"].clone(),
    ));
    out.insert("/v1/scheduler/prefix-overlap".into(), operator_get(
        "getSchedulerPrefixOverlap",
        "Cross-cluster prefix-hash overlap of one model (for routing affinity)",
        &format!("Per cluster: distinct prefix hashes (HyperLogLog, ~0.8 % standard error) and the top \
                  hashes; per pair of clusters: union (HLL merge), intersection (inclusion–exclusion, \
                  clamped), Jaccard and the hashes in both clusters' top lists. {FLEET_NOTE}"),
        vec![model(true), window_param(), to_param(),
             query_param("top", "How many top hashes per cluster and shared per pair (1-100).",
                 json!({ "type": "integer", "minimum": 1, "maximum": 100, "default": 10 }), json!(10))],
        schema::<PrefixOverlapResponse>(generator),
        examples["prefix_overlap"].clone(),
    ));
    out.insert("/v1/scheduler/overflow".into(), operator_get(
        "getSchedulerOverflow",
        "Queue depth and cost per cluster (for overflow routing)",
        &format!("Per cluster: queue depth and running requests (each series' latest reading, summed), \
                  request rate and TTFT p99 over the window, free GPUs, and cost: GPU-hours × price, \
                  $/GPU-hour and $/token (dollars / input+output tokens). {FLEET_NOTE}"),
        vec![model(false), window_param(), to_param()],
        schema::<OverflowResponse>(generator),
        examples["overflow"].clone(),
    ));
    out
}
