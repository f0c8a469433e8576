//! Per-cluster attribution of what normalize refuses or drops
//! (`Normalized::lost_by_cluster`, the source of the clusters'
//! `status.signals.droppedEvents`): which items count, for which cluster,
//! and that deduplication by design never counts.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{ResourceMetrics, ScopeMetrics};
use opentelemetry_proto::tonic::resource::v1::Resource;
use otlp_test_kit::losses::*;
use otlp_test_kit::*;
use signal_aggregator::normalize::{
    MAX_CLUSTERS_PER_REQUEST, NormalizeConfig, Normalized, Normalizer, OVERFLOW_HEADROOM,
    OVERFLOW_MODEL,
};
use signal_aggregator::signal::Origin;

fn with_budget(max_series_per_tenant: usize) -> Normalizer {
    Normalizer::new(NormalizeConfig {
        max_series_per_tenant,
        ..Default::default()
    })
}

fn lost(out: &Normalized) -> Vec<(String, u64)> {
    out.lost_by_cluster
        .iter()
        .map(|(cluster, n)| (cluster.to_string(), n))
        .collect()
}

fn authenticated(cluster: &str) -> Origin {
    Origin {
        authenticated_cluster: Some(cluster.into()),
    }
}

/// Several resources in one metrics request.
fn resources(parts: Vec<ExportMetricsServiceRequest>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: parts.into_iter().flat_map(|p| p.resource_metrics).collect(),
    }
}

#[test]
fn series_over_the_budget_fold_into_overflow_and_lose_nothing() {
    let normalizer = with_budget(3);
    // Five models from c1 against a budget of three: two data points fold
    // into c1's overflow series; nothing is lost.
    let out = normalizer.metrics(
        &Origin::default(),
        &queue_depth_per_model(resource("team-a", "c1"), 0..5, T0),
    );
    assert_eq!((out.accepted, out.rejected), (5, 0));
    assert_eq!(out.dropped, vec![("series_overflow", 2)]);
    assert_eq!(lost(&out), vec![]);

    // The same full budget seen from c2 (same tenant) in one request with a
    // known series of c1: c2's new series fold into c2's overflow series.
    let out = normalizer.metrics(
        &Origin::default(),
        &resources(vec![
            queue_depth_per_model(resource("team-a", "c2"), 0..4, T1),
            queue_depth_per_model(resource("team-a", "c1"), 0..1, T1),
        ]),
    );
    assert_eq!(out.dropped, vec![("series_overflow", 4)]);
    assert_eq!(lost(&out), vec![]);

    // Spans too: one per span over the budget.
    let spans = chat_spans_per_model(5..8, T0, T1);
    let out = normalizer.traces(
        &Origin::default(),
        &traces_request(resource("team-a", "c3"), spans),
    );
    assert_eq!(out.dropped, vec![("series_overflow", 3)]);
    assert_eq!(lost(&out), vec![]);
    let overflow: Vec<_> = out
        .batch
        .series
        .iter()
        .map(|s| (s.key.cluster.as_str(), s.key.model.as_str()))
        .collect();
    assert_eq!(overflow, vec![("c3", OVERFLOW_MODEL)]);
}

#[test]
fn overflow_series_past_the_headroom_are_dropped_as_series_limit() {
    let normalizer = with_budget(1);
    let out = normalizer.metrics(
        &Origin::default(),
        &queue_depth_per_model(resource("team-a", "c0"), 0..1, T0),
    );
    assert_eq!(out.dropped, vec![]);
    // The budget is full: each new cluster's two models fold into that
    // cluster's overflow series (one per cluster and kind), and every
    // overflow series takes one place of the headroom. 384 clusters, 32 per
    // request, fill it exactly; nothing is lost.
    assert_eq!(OVERFLOW_HEADROOM % MAX_CLUSTERS_PER_REQUEST, 0);
    for first in (1..=OVERFLOW_HEADROOM).step_by(MAX_CLUSTERS_PER_REQUEST) {
        let out = normalizer.metrics(
            &Origin::default(),
            &resources(
                (first..first + MAX_CLUSTERS_PER_REQUEST)
                    .map(|c| queue_depth_per_model(resource("team-a", &format!("c{c}")), 0..2, T0))
                    .collect(),
            ),
        );
        assert_eq!((out.accepted, out.rejected), (64, 0));
        assert_eq!(out.dropped, vec![("series_overflow", 64)]);
        assert_eq!(lost(&out), vec![]);
        assert_eq!(out.batch.series.len(), MAX_CLUSTERS_PER_REQUEST);
        assert!(
            out.batch
                .series
                .iter()
                .all(|s| s.key.model == OVERFLOW_MODEL)
        );
    }

    // Past the headroom: a known cluster's new model still folds into its
    // overflow series; a new cluster has no overflow series left, so its
    // points are dropped and lost, counted against it.
    let late = format!("c{}", OVERFLOW_HEADROOM + 1);
    let out = normalizer.metrics(
        &Origin::default(),
        &resources(vec![
            queue_depth_per_model(resource("team-a", "c1"), 5..6, T1),
            queue_depth_per_model(resource("team-a", &late), 0..3, T1),
        ]),
    );
    assert_eq!((out.accepted, out.rejected), (4, 0));
    assert_eq!(
        out.dropped,
        vec![("series_overflow", 1), ("series_limit", 3)]
    );
    assert_eq!(lost(&out), vec![(late.clone(), 3)]);
    let kept: Vec<_> = out
        .batch
        .series
        .iter()
        .map(|s| (s.key.cluster.as_str(), s.key.model.as_str(), s.points.len()))
        .collect();
    assert_eq!(kept, vec![("c1", OVERFLOW_MODEL, 1)]);

    // Spans of the new cluster too, one per span; another tenant is untouched.
    let spans = chat_spans_per_model(0..2, T0, T1);
    let out = normalizer.traces(
        &Origin::default(),
        &traces_request(resource("team-a", &late), spans.clone()),
    );
    assert_eq!(out.dropped, vec![("series_limit", 2)]);
    assert_eq!(lost(&out), vec![(late.clone(), 2)]);
    assert!(out.batch.series.is_empty());
    let out = normalizer.traces(
        &Origin::default(),
        &traces_request(resource("team-b", &late), spans[..1].to_vec()),
    );
    assert_eq!(out.dropped, vec![]);
    assert_eq!(out.batch.series.len(), 1);
}

#[test]
fn malformed_spans_count_against_the_known_cluster() {
    let normalizer = Normalizer::new(NormalizeConfig::default());
    let mut spans = malformed_spans(T0, T1);
    spans.push(request_span(T0, T1));
    let out = normalizer.traces(
        &Origin::default(),
        &traces_request(resource("team-a", "c1"), spans.clone()),
    );
    assert_eq!((out.accepted, out.rejected), (1, 3));
    assert_eq!(lost(&out), vec![("c1".into(), 3)]);

    // Authenticated ingest: the token's cluster, never the claimed one.
    let out = normalizer.traces(
        &authenticated("eu-west"),
        &traces_request(resource("team-a", "us-east"), spans),
    );
    assert_eq!(out.rejected, 3);
    assert_eq!(lost(&out), vec![("eu-west".into(), 3)]);
}

#[test]
fn refused_identities_count_only_where_the_cluster_is_known() {
    let normalizer = Normalizer::new(NormalizeConfig::default());
    let three_spans = || vec![request_span(T0, T1); 3];
    let traces = |origin: &Origin, attributes| {
        normalizer.traces(origin, &traces_request(attributes, three_spans()))
    };
    // No tenant, valid cluster attribute: the cluster's items were refused.
    let out = traces(
        &Origin::default(),
        vec![string_kv("modelplane.cluster", "c1")],
    );
    assert_eq!(out.rejected, 3);
    assert_eq!(lost(&out), vec![("c1".into(), 3)]);
    // An invalid tenant under an authenticated cluster.
    let out = traces(
        &authenticated("eu-west"),
        vec![string_kv("modelplane.tenant", "Team A")],
    );
    assert_eq!(out.rejected, 3);
    assert_eq!(lost(&out), vec![("eu-west".into(), 3)]);
    // No valid cluster: refused, but nobody's to count; the invalid name
    // never leaves normalize.
    for attributes in [
        vec![string_kv("modelplane.tenant", "team-a")],
        vec![
            string_kv("modelplane.tenant", "team-a"),
            string_kv("modelplane.cluster", "eu west; DROP TABLE"),
        ],
        vec![string_kv("k8s.cluster.name", "c".repeat(200))],
    ] {
        let out = traces(&Origin::default(), attributes);
        assert_eq!(out.rejected, 3);
        assert!(out.lost_by_cluster.is_empty(), "{:?}", lost(&out));
    }
}

#[test]
fn unsupported_types_and_malformed_points_are_lost() {
    let normalizer = Normalizer::new(NormalizeConfig::default());
    let mut metrics = unsupported_types(3, 2, T0);
    metrics.extend(malformed_points(T0));
    let out = normalizer.metrics(
        &Origin::default(),
        &metrics_request(resource("team-a", "c1"), metrics),
    );
    assert_eq!((out.accepted, out.rejected), (5, 2));
    assert_eq!(out.dropped, vec![("unsupported_metric_type", 5)]);
    assert_eq!(lost(&out), vec![("c1".into(), 7)]);
}

#[test]
fn a_full_cumulative_state_loses_the_points_it_cannot_convert() {
    // The smallest state: one series per shard.
    let normalizer = Normalizer::new(NormalizeConfig {
        max_cumulative_series: 1,
        ..Default::default()
    });
    let series = 200;
    let points = (0..series)
        .map(|m| {
            number(
                vec![string_kv("model_name", format!("m{m}"))],
                OLD_START,
                T0,
                1.0,
            )
        })
        .collect();
    let out = normalizer.metrics(
        &Origin::default(),
        &metrics_request(
            resource("team-a", "c1"),
            vec![counter("vllm:prompt_tokens_total", points)],
        ),
    );
    // Every series that found room primed; the rest were lost.
    let full = series - normalizer.cumulative_series() as u64;
    assert!(full >= series - 64, "{full}");
    assert_eq!(out.dropped, vec![("cumulative_state_full", full)]);
    assert_eq!(lost(&out), vec![("c1".into(), full)]);
}

#[test]
fn deduplication_is_not_a_loss() {
    let normalizer = Normalizer::new(NormalizeConfig::default());
    let origin = Origin::default();
    let retried = retried_counter(resource("team-a", "c1"), T0);
    assert!(normalizer.metrics(&origin, &retried).dropped.is_empty());
    let again = normalizer.metrics(&origin, &retried);
    let superseded =
        normalizer.metrics(&origin, &superseded_name(resource("team-a", "c1"), T0, T1));
    let [engine, router] = engine_then_router(resource("team-a", "c1"), T0, T1);
    assert!(normalizer.metrics(&origin, &engine).dropped.is_empty());
    let outranked = normalizer.metrics(&origin, &router);
    for (out, reason) in [
        (&again, "duplicate_point"),
        (&superseded, "superseded_metric_name"),
        (&outranked, "outranked_source"),
    ] {
        assert_eq!(out.dropped, vec![(reason, 1)]);
        assert!(out.lost_by_cluster.is_empty(), "{reason}: {:?}", lost(out));
    }
}

#[test]
fn one_request_attributes_at_most_the_cluster_cap() {
    let normalizer = Normalizer::new(NormalizeConfig::default());
    let clusters = MAX_CLUSTERS_PER_REQUEST + 8;
    // One tenant-less resource per cluster, two data points each.
    let request = ExportMetricsServiceRequest {
        resource_metrics: (0..clusters)
            .map(|c| ResourceMetrics {
                resource: Some(Resource {
                    attributes: vec![string_kv("modelplane.cluster", format!("c{c}"))],
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    metrics: malformed_points(T0),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    };
    let out = normalizer.metrics(&Origin::default(), &request);
    assert_eq!(out.rejected, 2 * clusters as u64);
    let expected: Vec<(String, u64)> = (0..MAX_CLUSTERS_PER_REQUEST)
        .map(|c| (format!("c{c}"), 2))
        .collect();
    assert_eq!(lost(&out), expected);
}
