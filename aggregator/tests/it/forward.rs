//! The trace fan-out (`forward/`): which spans reach which ModelService's
//! forwarder, what they carry, and what happens when the forwarder is down
//! or throttles. The forwarder here is an in-process OTLP/gRPC receiver that
//! records what arrives and answers as scripted: the real collector cannot
//! be made to answer UNAVAILABLE with RetryInfo on demand. The end-to-end
//! test with real collectors is test/traces/test_forwarding_e2e.py.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use otlp_test_kit::string_kv;
use otlp_test_kit::{span, traces_request};
use parking_lot::Mutex;
use signal_aggregator::directory::{ClusterEntry, Directory, ServiceEntry};
use signal_aggregator::forward::enrich::PrefixWarmth;
use signal_aggregator::forward::sender::{Sent, classify};
use signal_aggregator::forward::{Enricher, ForwardConfig, Forwarding, ForwardingSink};
use signal_aggregator::normalize::Normalizer;
use signal_aggregator::pipeline::{ExportSink, Pipeline};
use signal_aggregator::signal::Origin;
use signal_aggregator::store::SketchStore;
use signal_aggregator::store::memory::{MemoryStore, MemoryStoreConfig};
use signal_aggregator::telemetry::SelfMetrics;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

/// A scripted OTLP/gRPC receiver: answers each export with the next scripted
/// status (OK once the script runs out) and records what it accepted.
#[derive(Clone, Default)]
struct Receiver {
    accepted: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
    script: Arc<Mutex<VecDeque<Status>>>,
    calls: Arc<Mutex<usize>>,
    arrived: Arc<tokio::sync::Notify>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        *self.calls.lock() += 1;
        let scripted = self.script.lock().pop_front();
        let result = match scripted {
            Some(status) => Err(status),
            None => {
                self.accepted.lock().push(request.into_inner());
                Ok(Response::new(ExportTraceServiceResponse::default()))
            }
        };
        self.arrived.notify_one();
        result
    }
}

impl Receiver {
    async fn start(self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let service = TraceServiceServer::new(self)
            .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming),
        );
        address
    }

    fn spans(&self) -> Vec<(Vec<KeyValue>, String)> {
        self.accepted
            .lock()
            .iter()
            .flat_map(|r| r.resource_spans.iter())
            .flat_map(|rs| {
                let resource = rs.resource.clone().unwrap_or_default().attributes;
                rs.scope_spans
                    .iter()
                    .flat_map(|ss| ss.spans.iter())
                    .map(move |s| (resource.clone(), s.name.clone()))
            })
            .collect()
    }

    /// Waits until `n` spans were accepted (the test's own timeout bounds it).
    async fn wait_for_spans(&self, n: usize) {
        loop {
            let notified = self.arrived.notified();
            if self.spans().len() >= n {
                return;
            }
            notified.await;
        }
    }
}

/// Polls `done` until it holds: the worker updates its counters just after
/// the receiver answered. Bounded by the test harness's timeout, not here.
async fn eventually(mut done: impl FnMut() -> bool) {
    while !done() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn attr<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.as_str()),
            _ => None,
        }
    })
}

fn service(tenant: &str, name: &str, forwarder: Option<String>) -> ServiceEntry {
    ServiceEntry {
        tenant: tenant.into(),
        name: name.into(),
        models: vec![name.into(), format!("{tenant}/{name}")],
        scope: apis::MetricsScope::PerTenant,
        observed_metrics: None,
        trace_forwarder: forwarder,
    }
}

/// An InferenceCluster whose `spec.signals.traceForwarding.namespaces` are `tenants`.
fn cluster(name: &str, tenants: &[&str]) -> ClusterEntry {
    let mut entry = ClusterEntry::new(name);
    entry.signals_configured = true;
    entry.trace_forwarding_namespaces = tenants.iter().map(|t| t.to_string()).collect();
    entry
}

/// A request authenticated as `cluster`'s ingest token.
fn from(cluster: &str) -> Origin {
    Origin {
        authenticated_cluster: Some(cluster.into()),
    }
}

struct Rig {
    sink: ForwardingSink,
    forwarding: Arc<Forwarding>,
    metrics: Arc<SelfMetrics>,
    _stop: tokio_util::sync::DropGuard,
}

impl Rig {
    /// Exports `spans` on the trace path (the raw copy) as `origin`, under a
    /// resource naming `tenant` and claiming `cluster`.
    async fn send_raw(
        &self,
        origin: &Origin,
        tenant: &str,
        cluster: &str,
        spans: Vec<opentelemetry_proto::tonic::trace::v1::Span>,
    ) {
        self.sink
            .export_traces(origin, traces_request(raw(tenant, cluster), spans))
            .await
            .unwrap();
    }
}

/// The pipeline on an in-memory store, decorated with the fan-out, routes
/// from `services`, the trace-forwarding namespaces from `clusters`.
/// Forwarder addresses are loopback ports here; the directory's check that
/// an address is in the tenant's namespace is its own test
/// (`directory::trace_forwarders_*`), so the entries are built directly.
async fn rig(
    services: Vec<ServiceEntry>,
    clusters: Vec<ClusterEntry>,
    config: ForwardConfig,
) -> Rig {
    let metrics = Arc::new(SelfMetrics::default());
    let store: Arc<dyn SketchStore> = Arc::new(MemoryStore::new(MemoryStoreConfig::default()));
    let pipeline: Arc<dyn ExportSink> = Arc::new(Pipeline::new(
        Normalizer::new(Default::default()),
        store.clone(),
        metrics.clone(),
    ));
    let directory = Directory::new();
    directory.replace_services(services);
    directory.replace_clusters(clusters);
    let forwarding = Forwarding::new(config, metrics.clone());
    let enricher: Arc<dyn Enricher> = Arc::new(PrefixWarmth::new(
        store,
        signal_aggregator::clock::system_clock(),
    ));
    forwarding.update_routes(&directory, &enricher);
    let stop = CancellationToken::new();
    Rig {
        sink: ForwardingSink::new(pipeline, forwarding.clone()),
        forwarding,
        metrics,
        _stop: stop.drop_guard(),
    }
}

fn gateway_span(name: &str, model: &str) -> opentelemetry_proto::tonic::trace::v1::Span {
    span(
        name,
        vec![
            string_kv("gen_ai.operation.name", "chat"),
            string_kv("gen_ai.request.model", model),
            string_kv("gen_ai.input.messages", "PROMPT-forward-test"),
        ],
        1_000_000_000,
        2_000_000_000,
    )
}

/// The resource of spans bound for the sketches (the agent stripped them).
fn resource(tenant: &str, cluster: &str) -> Vec<KeyValue> {
    vec![
        string_kv("k8s.namespace.name", tenant),
        string_kv("modelplane.cluster", cluster),
    ]
}

/// The resource of spans the agent sent raw on the trace path.
fn raw(tenant: &str, cluster: &str) -> Vec<KeyValue> {
    let mut attributes = resource(tenant, cluster);
    attributes.push(string_kv("modelplane.trace_path", "forward"));
    attributes
}

/// One request holding both copies of `spans`, as two resources.
fn both_paths(
    tenant: &str,
    cluster: &str,
    spans: Vec<opentelemetry_proto::tonic::trace::v1::Span>,
) -> ExportTraceServiceRequest {
    let mut request = traces_request(raw(tenant, cluster), spans.clone());
    request
        .resource_spans
        .extend(traces_request(resource(tenant, cluster), spans).resource_spans);
    request
}

#[tokio::test]
async fn forward_spans_go_only_to_their_own_services_forwarder() {
    let chat = Receiver::default();
    let other_tenant = Receiver::default();
    let chat_addr = chat.clone().start().await;
    let other_addr = other_tenant.clone().start().await;
    let rig = rig(
        vec![
            service("team-a", "chat", Some(chat_addr.clone())),
            service("team-a", "untraced", None),
            service("team-b", "chat", Some(other_addr.clone())),
        ],
        vec![
            cluster("eu-west", &["team-a", "team-c"]),
            cluster("us-east", &["team-b"]),
        ],
        ForwardConfig::default(),
    )
    .await;
    let origin = from("eu-west");
    // team-a: one span of the traced service, one of the untraced one.
    let mut request = traces_request(
        raw("team-a", "eu-west"),
        vec![
            gateway_span("a-chat", "chat"),
            gateway_span("a-untraced", "untraced"),
        ],
    );
    // team-a claiming team-b's identity in span-level and forwarder attributes:
    // the resource says team-a, so it stays team-a's.
    let mut claiming = gateway_span("a-claims-b", "chat");
    claiming
        .attributes
        .push(string_kv("modelplane.tenant", "team-b"));
    request.resource_spans[0].scope_spans[0]
        .spans
        .push(claiming);
    request.resource_spans[0]
        .resource
        .as_mut()
        .unwrap()
        .attributes
        .extend([
            string_kv("modelplane.service", "chat-of-team-b"),
            string_kv("modelplane.routing.cluster", "claimed"),
        ]);
    // The sketch path's copy of a traced service's span is never forwarded.
    request.resource_spans.extend(
        traces_request(
            resource("team-a", "eu-west"),
            vec![gateway_span("a-stripped", "chat")],
        )
        .resource_spans,
    );
    rig.sink.export_traces(&origin, request).await.unwrap();
    // team-c has no traced service at all.
    rig.send_raw(
        &origin,
        "team-c",
        "eu-west",
        vec![gateway_span("c-chat", "chat")],
    )
    .await;
    // team-b's own span, from its cluster (claiming another).
    let authenticated = from("us-east");
    rig.send_raw(
        &authenticated,
        "team-b",
        "claims-eu",
        vec![gateway_span("b-chat", "chat")],
    )
    .await;

    chat.wait_for_spans(2).await;
    other_tenant.wait_for_spans(1).await;
    let got = |r: &Receiver| -> Vec<(String, String, String, String, String)> {
        let mut v: Vec<_> = r
            .spans()
            .into_iter()
            .map(|(res, name)| {
                (
                    name,
                    attr(&res, "modelplane.tenant").unwrap_or("-").to_string(),
                    attr(&res, "modelplane.service").unwrap_or("-").to_string(),
                    attr(&res, "modelplane.routing.cluster")
                        .unwrap_or("-")
                        .to_string(),
                    attr(&res, "k8s.namespace.name").unwrap_or("-").to_string(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let own = |name: &str, tenant: &str, cluster: &str| {
        (
            name.to_string(),
            tenant.to_string(),
            "chat".to_string(),
            cluster.to_string(),
            tenant.to_string(),
        )
    };
    assert_eq!(
        got(&chat),
        vec![
            own("a-chat", "team-a", "eu-west"),
            own("a-claims-b", "team-a", "eu-west")
        ]
    );
    assert_eq!(got(&other_tenant), vec![own("b-chat", "team-b", "us-east")]);
    // The raw span travels whole: its prompt attribute reached the forwarder.
    let prompts = chat
        .accepted
        .lock()
        .iter()
        .flat_map(|r| r.resource_spans.iter())
        .flat_map(|rs| rs.scope_spans.iter())
        .flat_map(|ss| ss.spans.iter())
        .filter(|s| attr(&s.attributes, "gen_ai.input.messages") == Some("PROMPT-forward-test"))
        .count();
    assert_eq!(prompts, 2);
    eventually(|| {
        rig.forwarding
            .stats()
            .iter()
            .map(|s| s.3.forwarded)
            .sum::<u64>()
            == 3
    })
    .await;
    let mut forwarded: Vec<(String, String, u64)> = rig
        .forwarding
        .stats()
        .into_iter()
        .map(|(tenant, service, _, s, _)| (tenant, service, s.forwarded))
        .collect();
    forwarded.sort();
    // a-untraced and c-chat had no route: counted, kept nowhere. The stripped
    // copy went to the sketches only.
    assert_eq!(
        rig.metrics
            .dropped_snapshot()
            .get(&("traces", "forward_no_route"))
            .copied(),
        Some(2)
    );
    assert_eq!(
        rig.metrics
            .dropped_snapshot()
            .get(&("traces", "tenant_not_forwarded_by_cluster"))
            .copied(),
        None
    );
    assert_eq!(
        rig.metrics.ingested_snapshot().get("traces").copied(),
        Some(1)
    );
    assert_eq!(
        forwarded,
        vec![
            ("team-a".into(), "chat".into(), 2),
            ("team-b".into(), "chat".into(), 1)
        ]
    );
}

/// Issue 12: spans from one tenant never reach another tenant's forwarder,
/// whatever attributes they claim. A cluster's raw spans are forwarded only
/// for the tenants its InferenceCluster lists in
/// `spec.signals.traceForwarding.namespaces`, judged by the authenticated
/// cluster (SECURITY.md, threat 1).
#[tokio::test]
async fn forward_a_cluster_cannot_push_spans_into_a_tenant_it_does_not_forward() {
    let team_a = Receiver::default();
    let team_b = Receiver::default();
    let a_addr = team_a.clone().start().await;
    let b_addr = team_b.clone().start().await;
    let rig = rig(
        vec![
            service("team-a", "chat", Some(a_addr)),
            service("team-b", "chat", Some(b_addr)),
        ],
        vec![
            cluster("eu-west", &["team-a"]),
            cluster("us-east", &["team-b"]),
        ],
        ForwardConfig::default(),
    )
    .await;
    let refused = || {
        rig.metrics
            .dropped_snapshot()
            .get(&("traces", "tenant_not_forwarded_by_cluster"))
            .copied()
            .unwrap_or(0)
    };
    let eu_west = from("eu-west");
    // eu-west (which lists team-a only) claims team-b: by namespace, by
    // `modelplane.tenant` over its own namespace, and claiming to be us-east.
    rig.send_raw(
        &eu_west,
        "team-b",
        "us-east",
        vec![
            gateway_span("eu-claims-b-1", "chat"),
            gateway_span("eu-claims-b-2", "chat"),
        ],
    )
    .await;
    assert_eq!(refused(), 2);
    let mut tenant_attribute = raw("team-a", "eu-west");
    tenant_attribute.push(string_kv("modelplane.tenant", "team-b"));
    // One request: the claiming resource is refused, the listed tenant's
    // resource beside it is forwarded.
    let mut request = traces_request(
        tenant_attribute,
        vec![gateway_span("eu-tenant-attr-b", "chat")],
    );
    request.resource_spans.extend(
        traces_request(
            raw("team-a", "eu-west"),
            vec![gateway_span("eu-own-a", "chat")],
        )
        .resource_spans,
    );
    rig.sink.export_traces(&eu_west, request).await.unwrap();
    assert_eq!(refused(), 3);
    // Not authenticated, or a cluster without an InferenceCluster: nothing
    // is forwarded, even for a tenant some cluster lists.
    for origin in [Origin::default(), from("ghost")] {
        rig.send_raw(
            &origin,
            "team-b",
            "us-east",
            vec![gateway_span("unlisted-b", "chat")],
        )
        .await;
    }
    assert_eq!(refused(), 5);
    // us-east's own team-b spans still reach team-b.
    rig.send_raw(
        &from("us-east"),
        "team-b",
        "us-east",
        vec![gateway_span("us-own-b", "chat")],
    )
    .await;

    team_a.wait_for_spans(1).await;
    team_b.wait_for_spans(1).await;
    eventually(|| {
        rig.forwarding
            .stats()
            .iter()
            .map(|s| s.3.forwarded)
            .sum::<u64>()
            == 2
    })
    .await;
    let names = |r: &Receiver| -> Vec<(String, String, String)> {
        r.spans()
            .into_iter()
            .map(|(resource, name)| {
                (
                    name,
                    attr(&resource, "modelplane.tenant").unwrap_or("-").into(),
                    attr(&resource, "modelplane.routing.cluster")
                        .unwrap_or("-")
                        .into(),
                )
            })
            .collect()
    };
    assert_eq!(
        names(&team_a),
        vec![("eu-own-a".into(), "team-a".into(), "eu-west".into())]
    );
    assert_eq!(
        names(&team_b),
        vec![("us-own-b".into(), "team-b".into(), "us-east".into())]
    );
    // Counted under their own reason (where /metrics reads it), not as unrouted.
    assert_eq!(refused(), 5);
    assert_eq!(
        rig.metrics
            .dropped_snapshot()
            .get(&("traces", "forward_no_route"))
            .copied(),
        None
    );
}

#[tokio::test]
async fn forward_a_dead_forwarder_never_blocks_ingest_and_drops_are_counted() {
    // Nothing listens on this port: every send fails with UNAVAILABLE.
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    };
    let rig = rig(
        vec![service("team-a", "chat", Some(dead))],
        vec![cluster("eu-west", &["team-a"])],
        ForwardConfig {
            queue_spans: 100,
            ..ForwardConfig::default()
        },
    )
    .await;
    let origin = from("eu-west");
    for i in 0..30 {
        let spans = (0..10)
            .map(|j| gateway_span(&format!("s{i}-{j}"), "chat"))
            .collect();
        // Every request is acknowledged although the forwarder is down.
        let outcome = rig
            .sink
            .export_traces(&origin, both_paths("team-a", "eu-west", spans))
            .await
            .unwrap();
        assert_eq!(outcome.rejected, 0);
    }
    let stats = rig.forwarding.stats();
    let (_, _, _, s, queued) = &stats[0];
    // 300 spans offered, at most 100 held: the rest dropped, oldest first,
    // and counted where /metrics reads them.
    assert_eq!(s.forwarded, 0);
    assert_eq!(s.dropped_queue_full + *queued as u64, 300);
    assert!(*queued <= 100, "{queued}");
    assert_eq!(
        rig.metrics
            .dropped_snapshot()
            .get(&("traces", "forward_queue_full"))
            .copied(),
        Some(s.dropped_queue_full)
    );
    // Ingest kept every span for the sketches.
    assert_eq!(
        rig.metrics.ingested_snapshot().get("traces").copied(),
        Some(300)
    );
}

#[tokio::test]
async fn forward_retries_after_unavailable_and_delivers_everything_once() {
    let receiver = Receiver::default();
    receiver.script.lock().extend([
        <Status as tonic_types::StatusExt>::with_error_details(
            tonic::Code::Unavailable,
            "busy",
            tonic_types::ErrorDetails::with_retry_info(Some(Duration::from_millis(50))),
        ),
        Status::unavailable("still busy"),
    ]);
    let address = receiver.clone().start().await;
    let rig = rig(
        vec![service("team-a", "chat", Some(address))],
        vec![cluster("eu-west", &["team-a"])],
        ForwardConfig::default(),
    )
    .await;
    rig.send_raw(
        &from("eu-west"),
        "team-a",
        "eu-west",
        vec![gateway_span("once", "chat")],
    )
    .await;
    receiver.wait_for_spans(1).await;
    eventually(|| rig.forwarding.stats()[0].3.forwarded == 1).await;
    assert_eq!(*receiver.calls.lock(), 3);
    assert_eq!(receiver.spans().len(), 1);
    let (_, _, _, s, queued) = &rig.forwarding.stats()[0];
    assert_eq!((s.forwarded, s.retries, *queued), (1, 2, 0));
}

#[test]
fn forward_retry_info_sets_the_delay_and_only_retryable_codes_are_retried() {
    let with_info = |code| {
        <Status as tonic_types::StatusExt>::with_error_details(
            code,
            "x",
            tonic_types::ErrorDetails::with_retry_info(Some(Duration::from_secs(7))),
        )
    };
    assert_eq!(
        classify(&with_info(tonic::Code::Unavailable)),
        Sent::Retry {
            after: Some(Duration::from_secs(7)),
            code: tonic::Code::Unavailable
        }
    );
    // RESOURCE_EXHAUSTED is retryable only when the receiver says when.
    assert_eq!(
        classify(&with_info(tonic::Code::ResourceExhausted)),
        Sent::Retry {
            after: Some(Duration::from_secs(7)),
            code: tonic::Code::ResourceExhausted
        }
    );
    assert_eq!(
        classify(&Status::resource_exhausted("full")),
        Sent::Refused {
            code: tonic::Code::ResourceExhausted
        }
    );
    assert_eq!(
        classify(&Status::unavailable("down")),
        Sent::Retry {
            after: None,
            code: tonic::Code::Unavailable
        }
    );
    assert_eq!(
        classify(&Status::invalid_argument("bad")),
        Sent::Refused {
            code: tonic::Code::InvalidArgument
        }
    );
}

#[test]
fn forward_addresses_outside_the_tenants_namespace_are_ignored() {
    use signal_aggregator::directory::is_forwarder_in;
    assert!(is_forwarder_in("traces-chat.team-a.svc:4317", "team-a"));
    assert!(is_forwarder_in(
        "traces-chat.team-a.svc.cluster.local:4317",
        "team-a"
    ));
    assert!(!is_forwarder_in("traces-chat.team-b.svc:4317", "team-a"));
    assert!(!is_forwarder_in("evil.example.com:4317", "team-a"));
    assert!(!is_forwarder_in("traces-chat.team-a.svc", "team-a"));
    assert!(!is_forwarder_in("traces-chat.team-a.svc:0", "team-a"));
    assert!(!is_forwarder_in("x@traces-chat.team-a.svc:4317", "team-a"));
}

#[test]
fn forward_routes_come_from_traces_enabled_and_the_status_address() {
    use signal_aggregator::directory::service_from_object;
    let object = |enabled: bool, address: &str| {
        serde_json::json!({
            "apiVersion": "modelplane.ai/v1alpha1", "kind": "ModelService",
            "metadata": { "name": "chat", "namespace": "team-a" },
            "spec": { "observability": { "traces": { "enabled": enabled, "endpoint": "https://x",
                "headers": { "x-api-key": { "value": "never-parsed" } } } } },
            "status": { "observability": { "traces": { "address": address } } },
        })
    };
    let forwarder = |o| service_from_object(&o).unwrap().trace_forwarder;
    assert_eq!(
        forwarder(object(true, "traces-chat.team-a.svc:4317")),
        Some("traces-chat.team-a.svc:4317".to_string())
    );
    assert_eq!(
        forwarder(object(false, "traces-chat.team-a.svc:4317")),
        None
    );
    assert_eq!(forwarder(object(true, "traces-chat.team-b.svc:4317")), None);
}

#[tokio::test]
async fn forward_spans_carry_the_warmth_of_their_prefix() {
    let receiver = Receiver::default();
    let address = receiver.clone().start().await;
    let rig = rig(
        vec![service("team-a", "chat", Some(address))],
        vec![cluster("eu-west", &["team-a"])],
        ForwardConfig::default(),
    )
    .await;
    let with_hash = |name: &str, hash: &str| {
        let mut s = gateway_span(name, "chat");
        s.attributes.push(string_kv("modelplane.prefix.hash", hash));
        s.attributes
            .push(string_kv("modelplane.cache.kv_tier_hit", "cpu"));
        s
    };
    // One request: all of it is in the sketches before anything is forwarded.
    let mut spans = Vec::new();
    for i in 0..9 {
        spans.push(with_hash(&format!("hot-{i}"), "00000000000000aa"));
    }
    for i in 0..3 {
        spans.push(with_hash(&format!("warm-{i}"), "00000000000000bb"));
    }
    spans.push(with_hash("cold", "00000000000000cc"));
    spans.push(gateway_span("no-hash", "chat"));
    // The agent's two pipelines: the stripped copy reaches the sketches first here.
    rig.sink
        .export_traces(
            &from("eu-west"),
            traces_request(resource("team-a", "eu-west"), spans.clone()),
        )
        .await
        .unwrap();
    rig.send_raw(&from("eu-west"), "team-a", "eu-west", spans)
        .await;
    receiver.wait_for_spans(14).await;
    let mut got: Vec<(String, String, String)> = receiver
        .accepted
        .lock()
        .iter()
        .flat_map(|r| r.resource_spans.iter())
        .flat_map(|rs| rs.scope_spans.iter())
        .flat_map(|ss| ss.spans.iter())
        .map(|s| {
            (
                s.name.split('-').next().unwrap().to_string(),
                attr(&s.attributes, "modelplane.cache.prefix_warmth")
                    .unwrap_or("-")
                    .to_string(),
                attr(&s.attributes, "modelplane.cache.kv_tier_hit")
                    .unwrap_or("-")
                    .to_string(),
            )
        })
        .collect();
    got.sort();
    got.dedup();
    let row = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
    assert_eq!(
        got,
        vec![
            row("cold", "cold", "cpu"),
            row("hot", "hot", "cpu"),
            row("no", "-", "-"),
            row("warm", "warm", "cpu"),
        ]
    );
}

/// A store that keeps the `Debug` text of everything merged into it, in
/// front of the in-memory store.
struct SpyStore {
    inner: MemoryStore,
    merged: Mutex<String>,
}

#[tonic::async_trait]
impl SketchStore for SpyStore {
    async fn merge(
        &self,
        sketches: Vec<signal_aggregator::sketch::WindowedSketch>,
    ) -> Result<(), signal_aggregator::store::StoreError> {
        self.merged.lock().push_str(&format!("{sketches:?}"));
        self.inner.merge(sketches).await
    }
    async fn query(
        &self,
        query: &signal_aggregator::store::StoreQuery,
    ) -> Result<
        Vec<(
            signal_aggregator::signal::SeriesKey,
            signal_aggregator::sketch::SeriesSketch,
        )>,
        signal_aggregator::store::StoreError,
    > {
        self.inner.query(query).await
    }
    async fn health(&self) -> signal_aggregator::store::StoreHealth {
        self.inner.health().await
    }
    async fn run_maintenance(
        &self,
        now_unix_secs: u64,
    ) -> Result<signal_aggregator::store::MaintenanceReport, signal_aggregator::store::StoreError>
    {
        self.inner.run_maintenance(now_unix_secs).await
    }
    fn retention_secs(&self) -> u64 {
        self.inner.retention_secs()
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn prometheus_text(&self) -> String {
        self.inner.prometheus_text()
    }
}

#[tokio::test]
async fn forward_prompts_reach_the_forwarder_and_never_the_store() {
    const PROMPT: &str = "PROMPT-never-stored";
    let receiver = Receiver::default();
    let address = receiver.clone().start().await;
    let metrics = Arc::new(SelfMetrics::default());
    let store = Arc::new(SpyStore {
        inner: MemoryStore::new(MemoryStoreConfig::default()),
        merged: Mutex::default(),
    });
    let pipeline: Arc<dyn ExportSink> = Arc::new(Pipeline::new(
        Normalizer::new(Default::default()),
        store.clone(),
        metrics.clone(),
    ));
    let directory = Directory::new();
    directory.replace_services(vec![service("team-a", "chat", Some(address))]);
    directory.replace_clusters(vec![cluster("eu-west", &["team-a"])]);
    let forwarding = Forwarding::new(ForwardConfig::default(), metrics.clone());
    let enricher: Arc<dyn Enricher> = Arc::new(PrefixWarmth::new(
        store.clone(),
        signal_aggregator::clock::system_clock(),
    ));
    forwarding.update_routes(&directory, &enricher);
    let sink = ForwardingSink::new(pipeline, forwarding.clone());
    // The raw copy: the prompt in the span's name, attributes, events and
    // status, and in the resource; routed by its model.
    let mut raw_span = gateway_span(&format!("{PROMPT} name"), "chat");
    raw_span.attributes.push(string_kv(
        "gen_ai.output.messages",
        format!("{PROMPT} answer"),
    ));
    raw_span
        .events
        .push(opentelemetry_proto::tonic::trace::v1::span::Event {
            name: format!("{PROMPT} event"),
            attributes: vec![string_kv("gen_ai.prompt", PROMPT)],
            ..Default::default()
        });
    raw_span.status = Some(opentelemetry_proto::tonic::trace::v1::Status {
        message: PROMPT.into(),
        code: 2,
    });
    let mut raw_resource = raw("team-a", "eu-west");
    raw_resource.push(string_kv("service.name", PROMPT));
    // The sketch path's copy, as the agent's privacy transform leaves it.
    let stripped = traces_request(
        resource("team-a", "eu-west"),
        vec![span(
            "chat",
            vec![
                string_kv("gen_ai.operation.name", "chat"),
                string_kv("gen_ai.request.model", "chat"),
            ],
            1_000_000_000,
            2_000_000_000,
        )],
    );
    let origin = from("eu-west");
    sink.export_traces(&origin, stripped).await.unwrap();
    sink.export_traces(&origin, traces_request(raw_resource, vec![raw_span]))
        .await
        .unwrap();
    receiver.wait_for_spans(1).await;
    forwarding.stop();
    // The prompt went to the tenant's forwarder, whole.
    let forwarded = format!("{:?}", receiver.accepted.lock());
    assert_eq!(forwarded.matches(PROMPT).count(), 6, "{forwarded}");
    // The sketches hold the stripped copy and nothing of the raw one.
    let merged = store.merged.lock().clone();
    assert!(
        merged.contains("chat"),
        "the stripped copy was sketched: {merged}"
    );
    assert!(!merged.contains("PROMPT"), "{merged}");
    assert!(!store.prometheus_text().contains("PROMPT"));
    assert_eq!(metrics.ingested_snapshot().get("traces").copied(), Some(1));
    let counters = format!(
        "{:?}{:?}{:?}{:?}",
        metrics.ingested_snapshot(),
        metrics.rejected_snapshot(),
        metrics.dropped_snapshot(),
        metrics.unmapped_snapshot()
    );
    assert!(!counters.contains("PROMPT"), "{counters}");
}
