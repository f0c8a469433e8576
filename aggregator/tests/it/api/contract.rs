//! Every answer the API gives, checked against the schema `/openapi.json`
//! documents for it, with a real JSON Schema validator: the schemas are
//! generated from the answer types, so this proves the derive says what the
//! serializer writes (flattened groups, untagged kinds, nulls, maps).

use serde_json::{Value, json};
use signal_aggregator::signal::{
    DIM_CAUSE, DIM_PHASE, DIM_REASON, DIM_SKU, DIM_TIER, Field, FieldKey, SignalKind, Value as V,
};
use signal_aggregator::sketch::WindowedSketch;

use crate::support::api::{NOW, SketchBuilder, TestApi, key};

fn fleet_of_every_kind() -> Vec<WindowedSketch> {
    let at = NOW - 60;
    let mut prefixes = SketchBuilder::new(key("team-a", "c1", "m1", SignalKind::PrefixHash), at);
    let mut prefixes_c2 = SketchBuilder::new(key("team-a", "c2", "m1", SignalKind::PrefixHash), at);
    for hash in 0..20u64 {
        prefixes = prefixes.point(FieldKey::plain(Field::PrefixHashes), V::PrefixHash(hash));
        prefixes_c2 = prefixes_c2.point(
            FieldKey::plain(Field::PrefixHashes),
            V::PrefixHash(hash + 10),
        );
    }
    let mut failure = FieldKey::with_dim(Field::Failures, DIM_SKU, "H100");
    failure.dims.insert(DIM_CAUSE.into(), "xid_79".into());
    vec![
        SketchBuilder::new(key("team-a", "c1", "m1", SignalKind::RequestLifecycle), at)
            .counter(Field::Requests, 10.0)
            .counter(Field::Errors, 1.0)
            .counter(Field::InputTokens, 100.0)
            .counter(Field::OutputTokens, 50.0)
            .samples(Field::TtftSeconds, [0.1, 0.2, 0.3])
            .gauge(Field::QueueDepth, 4.0)
            .build(),
        prefixes.build(),
        prefixes_c2.build(),
        SketchBuilder::new(key("team-a", "c1", "m1", SignalKind::Capacity), at)
            .point(
                FieldKey::with_dim(Field::Gpus, DIM_SKU, "H100"),
                V::Gauge(8.0),
            )
            .point(
                FieldKey::with_dim(Field::GpusAllocated, DIM_SKU, "H100"),
                V::Gauge(6.0),
            )
            .point(
                FieldKey::with_dim(Field::KvCacheUtilization, DIM_TIER, "hbm"),
                V::Gauge(0.5),
            )
            .build(),
        SketchBuilder::new(key("team-a", "c1", "m1", SignalKind::ColdStart), at)
            .point(
                FieldKey::with_dim(Field::PhaseSeconds, DIM_PHASE, "model_load"),
                V::Sample(12.0),
            )
            .point(
                FieldKey::with_dim(Field::LaunchFailures, DIM_REASON, "oom"),
                V::Counter(1.0),
            )
            .build(),
        SketchBuilder::new(key("team-a", "c1", "m1", SignalKind::Cost), at)
            .point(
                FieldKey::with_dim(Field::GpuSeconds, DIM_SKU, "H100"),
                V::Counter(3_600.0),
            )
            .point(
                FieldKey::with_dim(Field::PricePerGpuHour, DIM_SKU, "H100"),
                V::Gauge(4.0),
            )
            .build(),
        SketchBuilder::new(key("team-a", "c1", "m1", SignalKind::Reliability), at)
            .point(failure, V::Counter(2.0))
            .build(),
    ]
}

/// A validator for the schema the document gives `pointer`'s 200 (or other) answer.
fn validator(doc: &Value, path: &str, status: &str) -> jsonschema::Validator {
    let schema =
        &doc["paths"][path]["get"]["responses"][status]["content"]["application/json"]["schema"];
    assert!(schema.is_object(), "{path} {status}: no JSON schema");
    let root = json!({ "$ref": schema["$ref"], "components": doc["components"] });
    jsonschema::validator_for(&root)
        .unwrap_or_else(|e| panic!("{path} {status}: the schema does not compile: {e}"))
}

fn assert_valid(validator: &jsonschema::Validator, answer: &Value, what: &str) {
    let errors: Vec<String> = validator
        .iter_errors(answer)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not match its documented schema:\n  {}\n{answer:#}",
        errors.join("\n  ")
    );
}

#[tokio::test]
async fn every_answer_matches_the_schema_the_document_gives_it() {
    let api = TestApi::start(fleet_of_every_kind()).await;
    let doc = api.ok("/openapi.json").await;
    let signals = validator(&doc, "/v1/tenants/{tenant}/signals/{kind}", "200");
    for kind in SignalKind::ALL {
        for group_by in ["cluster,model", "cluster", ""] {
            let path = format!("/v1/tenants/team-a/signals/{kind}?groupBy={group_by}");
            let answer = api.ok(&path).await;
            assert!(
                !answer["groups"].as_array().unwrap().is_empty(),
                "{path}: no group to check"
            );
            assert_valid(&signals, &answer, &path);
        }
    }
    for (path, query) in [
        (
            "/v1/fleet/compare",
            "?kind=RequestLifecycle&field=ttft_seconds",
        ),
        ("/v1/scheduler/capacity", ""),
        ("/v1/scheduler/prefix-overlap", "?model=m1"),
        ("/v1/scheduler/overflow", ""),
        ("/healthz", ""),
        ("/readyz", ""),
    ] {
        let answer = api.ok(&format!("{path}{query}")).await;
        assert_valid(&validator(&doc, path, "200"), &answer, path);
    }
    let overlap = api.ok("/v1/scheduler/prefix-overlap?model=m1").await;
    assert_eq!(
        overlap["pairs"].as_array().map(Vec::len),
        Some(1),
        "the overlap answer must hold a pair to check: {overlap}"
    );

    let (status, refusal) = api.get("/v1/tenants/team-a/signals/Nope").await;
    assert_eq!(status, 400);
    assert_valid(
        &validator(&doc, "/v1/tenants/{tenant}/signals/{kind}", "400"),
        &refusal,
        "a 400",
    );
}

#[tokio::test]
async fn the_check_refuses_an_answer_that_drifted_from_its_schema() {
    let api = TestApi::start(fleet_of_every_kind()).await;
    let doc = api.ok("/openapi.json").await;
    let signals = validator(&doc, "/v1/tenants/{tenant}/signals/{kind}", "200");
    let mut answer = api.ok("/v1/tenants/team-a/signals/RequestLifecycle").await;
    answer["groups"][0]["ttft_seconds"]["count"] = json!("three");
    assert!(!signals.is_valid(&answer));
    let mut answer = api.ok("/v1/tenants/team-a/signals/RequestLifecycle").await;
    answer["window"].as_object_mut().unwrap().remove("seconds");
    assert!(!signals.is_valid(&answer));
}
