//! The OpenAPI 3.1 document served at `/openapi.json`. Written by hand so the
//! schemas say what the handlers promise (units, nullability) rather than
//! what a derive could infer.

use serde_json::{Value, json};

use crate::signal::SignalKind;

fn kinds() -> Vec<&'static str> {
    SignalKind::ALL.iter().map(|k| k.as_str()).collect()
}

fn error_response(description: &str, example: &str) -> Value {
    coded_error_response(description, "invalid_parameter", example)
}

fn coded_error_response(description: &str, code: &str, example: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": {
            "schema": { "$ref": "#/components/schemas/Error" },
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

fn schemas() -> Value {
    json!({
        "Error": {
            "type": "object", "required": ["error"],
            "properties": { "error": { "type": "object", "required": ["code", "message"],
                "properties": {
                    "code": { "type": "string", "examples": ["invalid_parameter", "not_found", "store_unavailable", "unauthenticated", "forbidden"] },
                    "message": { "type": "string" } } } }
        },
        "Window": {
            "type": "object", "required": ["from", "to", "from_unix_secs", "to_unix_secs", "seconds"],
            "properties": {
                "from": { "type": "string", "format": "date-time" },
                "to": { "type": "string", "format": "date-time" },
                "from_unix_secs": { "type": "integer" },
                "to_unix_secs": { "type": "integer" },
                "seconds": { "type": "integer" } }
        },
        "Distribution": {
            "description": "Quantiles of per-request values (seconds for latencies). Quantiles are null when count is 0.",
            "type": "object", "required": ["count", "p50", "p90", "p99"],
            "properties": {
                "count": { "type": "integer", "minimum": 0 },
                "p50": { "type": ["number", "null"] },
                "p90": { "type": ["number", "null"] },
                "p99": { "type": ["number", "null"] } }
        },
        "Gauge": {
            "description": "Readings of a gauge over the window; null when none was reported.",
            "type": ["object", "null"], "required": ["last", "min", "max", "mean"],
            "properties": {
                "last": { "type": "number", "description": "Most recent report (of any merged series)." },
                "min": { "type": "number" }, "max": { "type": "number" }, "mean": { "type": "number" } }
        },
        "RequestLifecycleGroup": {
            "type": "object",
            "required": ["requests", "errors", "input_tokens", "output_tokens", "ttft_seconds",
                         "tpot_seconds", "e2e_seconds", "queue_seconds", "prefix_cache_hit_rate", "queue_depth"],
            "properties": {
                "cluster": { "type": "string", "description": "Present when grouped by cluster." },
                "model": { "type": "string", "description": "Present when grouped by model." },
                "requests": { "type": "number" },
                "errors": { "type": "number" },
                "error_rate": { "type": ["number", "null"] },
                "requests_per_second": { "type": ["number", "null"] },
                "input_tokens": { "type": "number" },
                "output_tokens": { "type": "number" },
                "ttft_seconds": { "$ref": "#/components/schemas/Distribution" },
                "tpot_seconds": { "$ref": "#/components/schemas/Distribution" },
                "e2e_seconds": { "$ref": "#/components/schemas/Distribution" },
                "queue_seconds": { "$ref": "#/components/schemas/Distribution" },
                "prefix_cache_hit_rate": { "type": ["number", "null"], "description": "Prefix-cache hits / queries (tokens)." },
                "queue_depth": { "$ref": "#/components/schemas/Gauge" },
                "running_requests": { "$ref": "#/components/schemas/Gauge" } }
        },
        "PrefixHashGroup": {
            "type": "object", "required": ["distinct", "top"],
            "properties": {
                "cluster": { "type": "string" }, "model": { "type": "string" },
                "distinct": { "type": "number", "description": "Estimated distinct prefix hashes (HyperLogLog)." },
                "top": { "type": "array", "items": { "type": "object", "required": ["hash", "count"],
                    "properties": { "hash": { "type": "string", "pattern": "^[0-9a-f]{16}$" },
                                    "count": { "type": "integer" } } } } }
        },
        "CapacityGroup": {
            "type": "object", "required": ["gpus_by_sku", "kv_cache_utilization_by_tier", "replicas"],
            "properties": {
                "cluster": { "type": "string" }, "model": { "type": "string" },
                "gpus_by_sku": { "type": "object", "additionalProperties": { "type": "object", "properties": {
                    "gpus": { "$ref": "#/components/schemas/Gauge" },
                    "allocated": { "$ref": "#/components/schemas/Gauge" },
                    "utilization": { "$ref": "#/components/schemas/Gauge" } } } },
                "kv_cache_utilization_by_tier": { "type": "object", "additionalProperties": { "$ref": "#/components/schemas/Gauge" } },
                "replicas": { "type": "object", "properties": {
                    "active": { "$ref": "#/components/schemas/Gauge" },
                    "starting": { "$ref": "#/components/schemas/Gauge" } } },
                "cache_bytes_staged": { "$ref": "#/components/schemas/Gauge" } }
        },
        "ColdStartGroup": {
            "type": "object", "required": ["phases", "launches"],
            "properties": {
                "cluster": { "type": "string" }, "model": { "type": "string" },
                "phases": { "type": "object", "additionalProperties": { "$ref": "#/components/schemas/Distribution" } },
                "launches": { "type": "object", "properties": {
                    "attempts": { "type": "number" }, "successes": { "type": "number" },
                    "failures": { "type": "number" },
                    "failures_by_reason": { "type": "object", "additionalProperties": { "type": "number" } } } },
                "unexpected_exits": { "type": "number" },
                "unloads": { "type": "number" },
                "uptime_seconds": { "$ref": "#/components/schemas/Gauge" },
                "context_length": { "$ref": "#/components/schemas/Distribution" },
                "loaded_models": { "$ref": "#/components/schemas/Gauge" } }
        },
        "CostGroup": {
            "type": "object", "required": ["gpu_hours", "dollars", "dollars_per_gpu_hour", "dollars_per_token", "by_sku"],
            "properties": {
                "cluster": { "type": "string" }, "model": { "type": "string" },
                "gpu_hours": { "type": "number" },
                "dollars": { "type": "number", "description": "GPU-hours × price, over SKUs with a price." },
                "dollars_per_gpu_hour": { "type": ["number", "null"] },
                "tokens": { "type": ["number", "null"], "description": "Input + output tokens of the same group (RequestLifecycle)." },
                "dollars_per_token": { "type": ["number", "null"] },
                "by_sku": { "type": "object", "additionalProperties": { "type": "object", "properties": {
                    "gpu_hours": { "type": "number" },
                    "price_per_gpu_hour": { "type": ["number", "null"] },
                    "price_source": { "type": ["string", "null"], "enum": ["pricing", "reported", "mixed", null],
                        "description": "pricing: the cluster's spec.signals.cost.pricing; reported: the price gauge the cluster sent; mixed: clusters with different prices merged." },
                    "dollars": { "type": ["number", "null"] } } } } }
        },
        "ReliabilityGroup": {
            "type": "object", "required": ["failures", "failures_by_sku", "failures_by_cause"],
            "properties": {
                "cluster": { "type": "string" }, "model": { "type": "string" },
                "failures": { "type": "number" },
                "failures_by_sku": { "type": "object", "additionalProperties": { "type": "number" } },
                "failures_by_cause": { "type": "object", "additionalProperties": { "type": "number" } },
                "failures_by_sku_and_cause": { "type": "array", "items": { "type": "object", "properties": {
                    "sku": { "type": "string" }, "cause": { "type": "string" }, "count": { "type": "number" } } } } }
        },
        "SignalsResponse": {
            "type": "object", "required": ["kind", "tenant", "window", "groupBy", "groups"],
            "properties": {
                "kind": { "type": "string", "enum": kinds() },
                "tenant": { "type": "string" },
                "window": { "$ref": "#/components/schemas/Window" },
                "groupBy": { "type": "array", "items": { "type": "string", "enum": ["cluster", "model"] } },
                "groups": { "type": "array", "items": { "oneOf": [
                    { "$ref": "#/components/schemas/RequestLifecycleGroup" },
                    { "$ref": "#/components/schemas/PrefixHashGroup" },
                    { "$ref": "#/components/schemas/CapacityGroup" },
                    { "$ref": "#/components/schemas/ColdStartGroup" },
                    { "$ref": "#/components/schemas/CostGroup" },
                    { "$ref": "#/components/schemas/ReliabilityGroup" } ] } } }
        },
        "CompareResponse": {
            "type": "object", "required": ["kind", "field", "quantile", "window", "fleet_median", "clusters"],
            "properties": {
                "kind": { "type": "string", "enum": kinds() },
                "field": { "type": "string" },
                "quantile": { "type": "number" },
                "window": { "$ref": "#/components/schemas/Window" },
                "fleet_median": { "type": ["number", "null"], "description": "Median of the per-cluster values." },
                "clusters": { "type": "array", "items": { "type": "object",
                    "required": ["cluster", "count", "value", "ratio_to_fleet_median"],
                    "properties": {
                        "cluster": { "type": "string" },
                        "count": { "type": "integer" },
                        "value": { "type": ["number", "null"] },
                        "ratio_to_fleet_median": { "type": ["number", "null"] } } } } }
        }
    })
}

fn signals_example() -> Value {
    json!({
        "kind": "RequestLifecycle", "tenant": "team-a",
        "window": { "from": "2026-01-01T00:00:00Z", "to": "2026-01-01T00:05:00Z",
                    "from_unix_secs": 1767225600, "to_unix_secs": 1767225900, "seconds": 300 },
        "groupBy": ["cluster", "model"],
        "groups": [{
            "cluster": "us-east-1", "model": "llama-3.1-8b",
            "requests": 1200.0, "errors": 6.0, "error_rate": 0.005, "requests_per_second": 4.0,
            "input_tokens": 480000.0, "output_tokens": 96000.0,
            "ttft_seconds": { "count": 1200, "p50": 0.21, "p90": 0.48, "p99": 1.12 },
            "tpot_seconds": { "count": 1200, "p50": 0.018, "p90": 0.026, "p99": 0.041 },
            "e2e_seconds": { "count": 1200, "p50": 1.9, "p90": 3.8, "p99": 7.5 },
            "queue_seconds": { "count": 1200, "p50": 0.01, "p90": 0.05, "p99": 0.3 },
            "prefix_cache_hit_rate": 0.62,
            "queue_depth": { "last": 3.0, "min": 0.0, "max": 11.0, "mean": 4.2 },
            "running_requests": { "last": 24.0, "min": 8.0, "max": 31.0, "mean": 20.5 }
        }]
    })
}

pub fn document() -> Value {
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
                        "schema": { "$ref": "#/components/schemas/SignalsResponse" },
                        "example": signals_example() } } },
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
                        "schema": { "$ref": "#/components/schemas/CompareResponse" },
                        "example": {
                            "kind": "RequestLifecycle", "field": "ttft_seconds", "quantile": 0.99,
                            "window": { "from": "2026-01-01T00:00:00Z", "to": "2026-01-01T00:05:00Z",
                                        "from_unix_secs": 1767225600, "to_unix_secs": 1767225900, "seconds": 300 },
                            "fleet_median": 0.8,
                            "clusters": [
                                { "cluster": "eu-west-1", "count": 900, "value": 2.4, "ratio_to_fleet_median": 3.0 },
                                { "cluster": "us-east-1", "count": 1200, "value": 0.8, "ratio_to_fleet_median": 1.0 },
                                { "cluster": "us-west-2", "count": 700, "value": 0.7, "ratio_to_fleet_median": 0.875 } ] } } } },
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
                    "schema": { "type": "object", "properties": { "status": { "const": "ok" } } },
                    "example": { "status": "ok" } } } } }
            } },
            "/readyz": { "get": {
                "operationId": "getReadiness", "summary": "Readiness: the sketch store accepts writes",
                "responses": {
                    "200": { "description": "Ready", "content": { "application/json": {
                        "schema": { "$ref": "#/components/schemas/Readiness" },
                        "example": { "status": "ready", "store": { "ready": true, "detail": "embedded in-memory store", "series": 42 } } } } },
                    "503": { "description": "Not ready", "content": { "application/json": {
                        "schema": { "$ref": "#/components/schemas/Readiness" } } } }
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
        "components": { "schemas": {
            "Readiness": {
                "type": "object", "required": ["status", "store"],
                "properties": {
                    "status": { "type": "string", "enum": ["ready", "not_ready"] },
                    "store": { "type": "object", "properties": {
                        "ready": { "type": "boolean" }, "detail": { "type": "string" },
                        "series": { "type": ["integer", "null"] } } } }
            }
        } }
    });
    if let (Some(target), Value::Object(extra)) = (
        doc.pointer_mut("/components/schemas")
            .and_then(Value::as_object_mut),
        schemas(),
    ) {
        target.extend(extra);
    }
    if let Some(paths) = doc.pointer_mut("/paths").and_then(Value::as_object_mut) {
        paths.extend(scheduler_paths());
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

fn window_example() -> Value {
    json!({ "from": "2026-01-01T00:55:00Z", "to": "2026-01-01T01:00:00Z",
            "from_unix_secs": 1767228900, "to_unix_secs": 1767229200, "seconds": 300 })
}

fn operator_get(
    id: &str,
    summary: &str,
    description: &str,
    parameters: Vec<Value>,
    example: Value,
) -> Value {
    json!({ "get": {
        "operationId": id, "summary": summary, "description": description,
        "parameters": parameters,
        "responses": {
            "200": { "description": summary, "content": { "application/json": {
                "schema": { "type": "object" }, "example": example } } },
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

fn scheduler_paths() -> serde_json::Map<String, Value> {
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
        json!({ "window": window_example(), "clusters": [
            { "cluster": "us-east-1",
              "skus": [{ "sku": "H100", "gpus": 16.0, "allocated": 12.0, "free": 4.0, "utilization": 0.71,
                         "price_per_gpu_hour": 4.0, "price_source": "pricing" }],
              "total": { "gpus": 16.0, "allocated": 12.0, "free": 4.0 } } ] }),
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
        json!({ "model": "llama-3.1-8b", "window": window_example(),
                "fleet": { "distinct": 1500.0, "occurrences": 4200 },
                "clusters": [
                    { "cluster": "eu-west-1", "distinct": 1000.0, "occurrences": 2500,
                      "top": [{ "hash": "9f3c1a0b7d2e4f61", "count": 400 }] },
                    { "cluster": "us-east-1", "distinct": 1000.0, "occurrences": 1700,
                      "top": [{ "hash": "9f3c1a0b7d2e4f61", "count": 300 }] } ],
                "pairs": [{ "clusters": ["eu-west-1", "us-east-1"], "distinct_union": 1500.0,
                            "distinct_intersection": 500.0, "jaccard": 0.333,
                            "shared_top": [{ "hash": "9f3c1a0b7d2e4f61",
                                             "counts": { "eu-west-1": 400, "us-east-1": 300 } }] }] }),
    ));
    out.insert("/v1/scheduler/overflow".into(), operator_get(
        "getSchedulerOverflow",
        "Queue depth and cost per cluster (for overflow routing)",
        &format!("Per cluster: queue depth and running requests (each series' latest reading, summed), \
                  request rate and TTFT p99 over the window, free GPUs, and cost: GPU-hours × price, \
                  $/GPU-hour and $/token (dollars / input+output tokens). {FLEET_NOTE}"),
        vec![model(false), window_param(), to_param()],
        json!({ "model": "llama-3.1-8b", "window": window_example(), "clusters": [
            { "cluster": "us-east-1", "queue_depth": 42.0, "running_requests": 64.0,
              "requests_per_second": 12.5, "ttft_p99_seconds": 1.9, "free_gpus": 0.0,
              "gpu_hours": 1.33, "dollars": 5.33, "dollars_per_gpu_hour": 4.0,
              "tokens": 2400000.0, "dollars_per_token": 0.0000022 } ] }),
    ));
    out
}
