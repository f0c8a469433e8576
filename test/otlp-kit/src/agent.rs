//! What the real agent stamps on a scraped pod, and a scrape clock.
//!
//! The shapes follow `aggregator/tests/fixtures`' capture of otelcol-k8s
//! 0.159.0 (replayed by the aggregator's `agent_capture` test): counter names
//! keep `_total`, explicit-bucket histograms, gauges, and no start time on
//! cumulative points.

use opentelemetry_proto::tonic::common::v1::KeyValue;

use crate::string_kv;

pub const SEC: u64 = 1_000_000_000;
/// A process start time long before the scrapes (first sighting only primes).
pub const OLD_START: u64 = 1_700_000_000 * SEC;
pub const T0: u64 = 1_700_003_600 * SEC;
pub const T1: u64 = T0 + 15 * SEC;

/// Resource attributes as the agent sets them for a scraped pod: the
/// receiver names the job and instance and copies the pod's discovery
/// labels; the agent adds the engine and the cluster.
pub fn agent_resource(tenant_ns: &str, cluster: &str, engine: &str, pod: &str) -> Vec<KeyValue> {
    let job = match engine {
        "epp" => "llm-d-epp",
        "dcgm" => "dcgm-exporter",
        _ => "engines",
    };
    vec![
        string_kv("service.name", job),
        string_kv("service.instance.id", "10.1.0.4:8000"),
        string_kv("server.port", "8000"),
        string_kv("url.scheme", "http"),
        string_kv("k8s.namespace.name", tenant_ns),
        string_kv("k8s.pod.name", pod),
        string_kv("k8s.pod.uid", format!("uid-{pod}")),
        string_kv("k8s.node.name", "gpu-node-7"),
        string_kv("modelplane.cluster", cluster),
        string_kv("modelplane.engine", engine),
    ]
}
