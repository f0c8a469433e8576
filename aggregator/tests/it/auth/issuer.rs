//! The ingest token issuer against the in-process API server
//! (`support::status`, which serves Secrets the way the API server does):
//! the Secret each InferenceCluster gets, adoption instead of overwriting,
//! racing replicas, acceptance by real OTLP ingest on every replica, and
//! rotation by request and by age with its overlap — each request checked
//! exactly.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::support::ingest::{Behaviour, RecordingSink, start_grpc, start_http};
use crate::support::status::{FakeApiServer, IC, RecordedRequest, SECRETS, eventually};
use base64::Engine as _;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use otlp_test_kit::rich::rich_traces;
use otlp_test_kit::string_kv;
use prost::Message as _;
use serde_json::{Value, json};
use signal_aggregator::auth::issuer::{IssueReport, IssuedTokens, RotationPolicy, TokenIssuer};
use signal_aggregator::auth::{IngestTokenSource, IngestTokens, Reloading, parse_ingest_tokens};
use signal_aggregator::directory::Directory;
use signal_aggregator::ingest::IngestConfig;

const NS: &str = "tokens";
/// 2027-01-15T08:00:00Z
const T0: u64 = 1_800_000_000;
const POLICY: RotationPolicy = RotationPolicy {
    max_age_secs: 30 * 86_400,
    overlap_secs: 86_400,
};

fn rfc3339(unix: u64) -> String {
    signal_aggregator::clock::rfc3339(unix)
}

fn cluster(name: &str) -> Value {
    json!({"metadata": {"name": name, "uid": format!("uid-{name}")},
           "spec": {"signals": {"kinds": [{"name": "RequestLifecycle"}]}}})
}

fn decode(encoded: &Value) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.as_str().expect("a base64 string"))
        .unwrap();
    String::from_utf8(bytes).unwrap()
}

fn assert_is_issued_token(token: &str) {
    assert_eq!(
        token.len(),
        43,
        "32 random bytes, base64url without padding"
    );
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "base64url alphabet"
    );
}

/// One aggregator replica's token machinery: its own XR watch, its own
/// Secret watch, its own issuer, and a clock the test moves.
struct Replica {
    issuer: TokenIssuer,
    issued: IssuedTokens,
    directory: Directory,
    now: Arc<AtomicU64>,
}

impl Replica {
    async fn start(url: &str, policy: RotationPolicy) -> Replica {
        let client = FakeApiServer::client(url);
        let directory = Directory::new();
        tokio::spawn(signal_aggregator::directory::watch::run(
            client.clone(),
            directory.clone(),
            std::future::pending(),
        ));
        let now = Arc::new(AtomicU64::new(T0));
        let clock_now = now.clone();
        let issued = IssuedTokens::new(Arc::new(move || clock_now.load(Ordering::SeqCst)));
        tokio::spawn(signal_aggregator::auth::issuer::issued::watch(
            client.clone(),
            NS.to_string(),
            issued.clone(),
        ));
        let (d, i) = (directory.clone(), issued.clone());
        eventually("the replica listed XRs and Secrets", move || {
            d.is_synced() && i.is_synced()
        })
        .await;
        let issuer = TokenIssuer::new(client, NS.into(), directory.clone(), issued.clone(), policy);
        Replica {
            issuer,
            issued,
            directory,
            now,
        }
    }

    fn set_clock(&self, now: u64) {
        self.now.store(now, Ordering::SeqCst);
    }

    async fn pass(&mut self, now: u64) -> IssueReport {
        self.set_clock(now);
        self.issuer.reconcile_once(now).await
    }

    /// Waits until this replica's Secret watch shows `check` on `cluster`'s Secret.
    async fn until_secret(&self, what: &str, cluster: &str, check: impl Fn(&Value) -> bool) {
        let issued = self.issued.clone();
        let name = format!("signals-ingest-{cluster}");
        eventually(what, move || {
            issued
                .secret(&name)
                .is_some_and(|s| check(&serde_json::to_value(&*s).unwrap()))
        })
        .await;
    }

    /// Waits until this replica's XR watch shows the cluster's ingestToken status.
    async fn until_status_seen(&self, cluster: &str, generation: i64) {
        let directory = self.directory.clone();
        let cluster = cluster.to_string();
        eventually(
            "the XR watch delivered status.signals.ingestToken",
            move || {
                directory.cluster(&cluster).is_some_and(|c| {
                    c.observed_status
                        .as_ref()
                        .and_then(|s| s.ingest_token.as_ref())
                        .is_some_and(|t| t.generation == generation)
                })
            },
        )
        .await;
    }
}

fn writes(requests: &[RecordedRequest]) -> Vec<&RecordedRequest> {
    requests.iter().filter(|r| r.method != "GET").collect()
}

fn token_of(server: &FakeApiServer, cluster: &str, key: &str) -> Option<String> {
    server.secret_data(NS, &format!("signals-ingest-{cluster}"), key)
}

#[tokio::test]
async fn every_cluster_gets_a_secret_of_the_exact_shape_and_its_status() {
    let (server, url) = FakeApiServer::start().await;
    server.put(IC, cluster("eu-west"));
    server.put(IC, cluster("us-east"));
    let mut replica = Replica::start(&url, POLICY).await;

    let report = replica.pass(T0).await;
    assert_eq!(
        report,
        IssueReport {
            created: 2,
            status_written: 2,
            ..IssueReport::default()
        }
    );
    let requests = server.take_secret_requests();
    // The Secret watch: list then watch, namespaced, by label selector.
    let reads: Vec<&RecordedRequest> = requests.iter().filter(|r| r.method == "GET").collect();
    assert!(reads.len() >= 2, "{reads:?}");
    for read in &reads {
        assert_eq!(read.path, "/api/v1/namespaces/tokens/secrets");
        assert_eq!(
            read.query["labelSelector"],
            "app.kubernetes.io/managed-by=signal-aggregator"
        );
    }
    assert!(
        reads
            .iter()
            .any(|r| r.query.get("watch").map(String::as_str) == Some("true"))
    );

    let posts = writes(&requests);
    assert_eq!(posts.len(), 2, "{posts:?}");
    let mut tokens = Vec::new();
    for (post, name) in posts.iter().zip(["eu-west", "us-east"]) {
        assert_eq!(post.method, "POST");
        assert_eq!(post.path, "/api/v1/namespaces/tokens/secrets");
        assert_eq!(
            post.query,
            [(
                "fieldManager".to_string(),
                "signal-aggregator-tokens".to_string()
            )]
            .into()
        );
        assert_eq!(post.content_type, "application/json");
        let mut body = post.body.clone().unwrap();
        let token = decode(&body["data"]["token"]);
        assert_is_issued_token(&token);
        tokens.push(token);
        body["data"]["token"] = json!("<token>");
        assert_eq!(
            body,
            json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "Opaque",
                "metadata": {
                    "name": format!("signals-ingest-{name}"),
                    "namespace": "tokens",
                    "labels": {
                        "app.kubernetes.io/managed-by": "signal-aggregator",
                        "signals.modelplane.ai/cluster": name,
                    },
                    "annotations": {
                        "signals.modelplane.ai/token-generation": "1",
                        "signals.modelplane.ai/issued-at": "2027-01-15T08:00:00Z",
                    },
                    "ownerReferences": [{
                        "apiVersion": "modelplane.ai/v1alpha1",
                        "kind": "InferenceCluster",
                        "name": name,
                        "uid": format!("uid-{name}"),
                    }],
                },
                "data": {"token": "<token>"},
            })
        );
        // Stored as sent.
        assert_eq!(
            token_of(&server, name, "token").as_deref(),
            Some(tokens.last().unwrap().as_str())
        );
    }
    assert_ne!(tokens[0], tokens[1]);

    let patches = server.take_patches();
    assert_eq!(patches.len(), 2);
    for (patch, name) in patches.iter().zip(["eu-west", "us-east"]) {
        assert_eq!(
            patch.path,
            format!("/apis/modelplane.ai/v1alpha1/inferenceclusters/{name}/status")
        );
        assert_eq!(
            patch.query,
            [
                (
                    "fieldManager".to_string(),
                    "signal-aggregator-tokens".to_string()
                ),
                ("force".to_string(), "true".to_string())
            ]
            .into()
        );
        assert_eq!(patch.content_type, "application/apply-patch+yaml");
        assert_eq!(
            patch.body,
            json!({
                "apiVersion": "modelplane.ai/v1alpha1",
                "kind": "InferenceCluster",
                "metadata": {"name": name},
                "status": {"signals": {"ingestToken": {
                    "secretName": format!("signals-ingest-{name}"),
                    "secretNamespace": "tokens",
                    "generation": 1,
                    "issuedAt": "2027-01-15T08:00:00Z",
                }}},
            })
        );
    }

    // Nothing changed: the next pass writes nothing at all.
    replica.until_status_seen("eu-west", 1).await;
    replica.until_status_seen("us-east", 1).await;
    assert_eq!(replica.pass(T0 + 60).await, IssueReport::default());
    assert!(writes(&server.take_secret_requests()).is_empty());
    assert!(server.take_patches().is_empty());
    assert!(server.violations().is_empty(), "{:?}", server.violations());
}

#[tokio::test]
async fn an_existing_secret_is_adopted_and_never_overwritten() {
    let (server, url) = FakeApiServer::start().await;
    server.put(IC, cluster("eu-west"));
    // Issued by another replica at T0 - 100 (generation 3 after two rotations).
    server.put(
        SECRETS,
        json!({"metadata": {"name": "signals-ingest-eu-west", "namespace": NS,
            "labels": {"app.kubernetes.io/managed-by": "signal-aggregator",
                       "signals.modelplane.ai/cluster": "eu-west"},
            "annotations": {"signals.modelplane.ai/token-generation": "3",
                            "signals.modelplane.ai/issued-at": rfc3339(T0 - 100)}},
            "type": "Opaque",
            "data": {"token": base64::engine::general_purpose::STANDARD.encode("kept-token")}}),
    );

    // A replica that already sees it writes no Secret, only the status.
    let mut seeing = Replica::start(&url, POLICY).await;
    let report = seeing.pass(T0).await;
    assert_eq!(
        report,
        IssueReport {
            status_written: 1,
            ..IssueReport::default()
        }
    );
    assert!(writes(&server.take_secret_requests()).is_empty());
    let patch = server.take_patches().pop().unwrap();
    assert_eq!(
        patch.body["status"]["signals"]["ingestToken"],
        json!({"secretName": "signals-ingest-eu-west", "secretNamespace": "tokens",
               "generation": 3, "issuedAt": rfc3339(T0 - 100)})
    );

    // A replica whose view is empty (it has not seen the Secret) tries to
    // create, is told AlreadyExists, reads it and keeps it.
    let client = FakeApiServer::client(&url);
    let blind_view = IssuedTokens::new(Arc::new(|| T0));
    let mut blind = TokenIssuer::new(
        client,
        NS.into(),
        seeing.directory.clone(),
        blind_view.clone(),
        POLICY,
    );
    let report = blind.reconcile_once(T0).await;
    assert_eq!(report.created, 0);
    assert_eq!(report.adopted, 1);
    assert_eq!(report.rotated, 0);
    let requests = server.take_secret_requests();
    let methods: Vec<(&str, &str)> = requests
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str()))
        .collect();
    assert_eq!(
        methods,
        [
            ("POST", "/api/v1/namespaces/tokens/secrets"),
            (
                "GET",
                "/api/v1/namespaces/tokens/secrets/signals-ingest-eu-west"
            ),
        ]
    );
    assert_eq!(
        token_of(&server, "eu-west", "token").as_deref(),
        Some("kept-token")
    );
    // The adopted token is what the blind replica now accepts.
    assert_eq!(
        blind_view.cluster_of("kept-token").as_deref(),
        Some("eu-west")
    );
    assert!(server.violations().is_empty(), "{:?}", server.violations());
}

#[tokio::test]
async fn racing_replicas_converge_on_one_token_and_one_rotation() {
    let (server, url) = FakeApiServer::start().await;
    server.put(IC, cluster("eu-west"));
    let mut a = Replica::start(&url, POLICY).await;
    let mut b = Replica::start(&url, POLICY).await;

    // Both decide to create before either create reaches the server.
    server.hold_secret_writes(2);
    let (report_a, report_b) = tokio::join!(a.pass(T0), b.pass(T0));
    assert_eq!(
        report_a.created + report_b.created,
        1,
        "{report_a:?} {report_b:?}"
    );
    assert_eq!(
        report_a.adopted + report_b.adopted,
        1,
        "{report_a:?} {report_b:?}"
    );
    let requests = server.take_secret_requests();
    let posts: Vec<&RecordedRequest> = requests.iter().filter(|r| r.method == "POST").collect();
    assert_eq!(posts.len(), 2);
    let token = token_of(&server, "eu-west", "token").unwrap();
    let winner = posts
        .iter()
        .find(|p| decode(&p.body.as_ref().unwrap()["data"]["token"]) == token);
    assert!(winner.is_some(), "the stored token is one of the two sent");
    for replica in [&a, &b] {
        assert_eq!(
            replica.issued.cluster_of(&token).as_deref(),
            Some("eu-west")
        );
    }

    // An operator asks for a rotation; both replicas see it and race again.
    server.edit_secret(NS, "signals-ingest-eu-west", |s| {
        s["metadata"]["annotations"]["signals.modelplane.ai/rotate"] = json!("true");
    });
    for replica in [&a, &b] {
        replica
            .until_secret("the rotate request is seen", "eu-west", |s| {
                s["metadata"]["annotations"]["signals.modelplane.ai/rotate"] == "true"
            })
            .await;
    }
    server.hold_secret_writes(2);
    let (report_a, report_b) = tokio::join!(a.pass(T0 + 10), b.pass(T0 + 10));
    assert_eq!(
        report_a.rotated + report_b.rotated,
        1,
        "{report_a:?} {report_b:?}"
    );
    assert_eq!(
        report_a.conflicts + report_b.conflicts,
        1,
        "{report_a:?} {report_b:?}"
    );
    let secret = server
        .object(SECRETS, NS, "signals-ingest-eu-west")
        .unwrap();
    assert_eq!(
        secret["metadata"]["annotations"]["signals.modelplane.ai/token-generation"], "2",
        "rotated once, not twice"
    );
    assert_eq!(token_of(&server, "eu-west", "previous-token"), Some(token));
    let puts: Vec<RecordedRequest> = server
        .take_secret_requests()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .collect();
    assert_eq!(puts.len(), 2);
    // Both were guarded by the version they decided on (the same one).
    let versions: Vec<&Value> = puts
        .iter()
        .map(|p| &p.body.as_ref().unwrap()["metadata"]["resourceVersion"])
        .collect();
    assert!(
        versions[0].is_string() && versions[0] == versions[1],
        "{versions:?}"
    );
    assert!(server.violations().is_empty(), "{:?}", server.violations());
}

fn claiming(
    cluster: &str,
) -> opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest {
    let mut request = rich_traces();
    let resource = request.resource_spans[0].resource.as_mut().unwrap();
    resource
        .attributes
        .push(string_kv("modelplane.cluster", cluster));
    request
}

#[tokio::test]
async fn issued_tokens_are_accepted_by_every_replicas_ingest_and_name_their_cluster() {
    let (server, url) = FakeApiServer::start().await;
    server.put(IC, cluster("eu-west"));
    server.put(IC, cluster("us-east"));
    let mut issuing = Replica::start(&url, POLICY).await;
    // Another replica: it issues nothing, it only watches.
    let serving = Replica::start(&url, POLICY).await;
    issuing.pass(T0).await;
    let eu_token = token_of(&server, "eu-west", "token").unwrap();
    let us_token = token_of(&server, "us-east", "token").unwrap();

    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "on-prem: file-token\n").unwrap();
    let file_tokens = Reloading::open(file.path(), parse_ingest_tokens, None).unwrap();
    let config = IngestConfig {
        authenticator: Arc::new(IngestTokens::from_sources(vec![
            file_tokens,
            Arc::new(serving.issued.clone()),
        ])),
        ..IngestConfig::default()
    };
    let sink = RecordingSink::new(Behaviour::Accept);
    let grpc = start_grpc(sink.clone(), config.clone()).await;
    let http = start_http(sink.clone(), config).await;
    let issued = serving.issued.clone();
    let expected = us_token.clone();
    eventually("the serving replica learned the issued tokens", move || {
        issued.cluster_of(&expected).is_some()
    })
    .await;

    // eu-west's agent claims to be us-east: it is attributed to eu-west.
    let mut client = TraceServiceClient::connect(grpc.grpc_url()).await.unwrap();
    let mut request = tonic::Request::new(claiming("us-east"));
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {eu_token}").parse().unwrap(),
    );
    client.export(request).await.unwrap();
    let post = |token: &str| {
        reqwest::Client::new()
            .post(http.http_url("/v1/traces"))
            .header("content-type", "application/x-protobuf")
            .header("authorization", format!("Bearer {token}"))
            .body(claiming("eu-west").encode_to_vec())
            .send()
    };
    assert_eq!(post(&us_token).await.unwrap().status(), 200);
    assert_eq!(post("file-token").await.unwrap().status(), 200);
    let refused = post("not-an-issued-token").await.unwrap();
    assert_eq!(refused.status(), 401);
    let message = refused.text().await.unwrap();
    assert!(message.contains("signals-ingest-<cluster>"), "{message}");
    let mut unknown = tonic::Request::new(claiming("eu-west"));
    unknown
        .metadata_mut()
        .insert("authorization", "Bearer guessed".parse().unwrap());
    let status = client.export(unknown).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);

    let origins: Vec<Option<String>> = sink
        .traces
        .lock()
        .iter()
        .map(|(origin, _)| origin.authenticated_cluster.clone())
        .collect();
    assert_eq!(
        origins,
        [
            Some("eu-west".to_string()),
            Some("us-east".to_string()),
            Some("on-prem".to_string())
        ]
    );
    assert!(server.violations().is_empty(), "{:?}", server.violations());
}

#[tokio::test]
async fn a_requested_rotation_overlaps_then_the_previous_token_expires() {
    let (server, url) = FakeApiServer::start().await;
    server.put(IC, cluster("eu-west"));
    let mut replica = Replica::start(&url, POLICY).await;
    replica.pass(T0).await;
    let old = token_of(&server, "eu-west", "token").unwrap();
    replica.until_status_seen("eu-west", 1).await;
    server.take_secret_requests();
    server.take_patches();

    server.edit_secret(NS, "signals-ingest-eu-west", |s| {
        s["metadata"]["annotations"]["signals.modelplane.ai/rotate"] = json!("true");
        s["metadata"]["labels"]["team"] = json!("platform");
    });
    replica
        .until_secret("the rotate request is seen", "eu-west", |s| {
            s["metadata"]["labels"]["team"] == "platform"
        })
        .await;
    let version = server
        .object(SECRETS, NS, "signals-ingest-eu-west")
        .unwrap()["metadata"]["resourceVersion"]
        .clone();

    let rotated_at = T0 + 3_600;
    let report = replica.pass(rotated_at).await;
    assert_eq!(
        (report.rotated, report.status_written),
        (1, 1),
        "{report:?}"
    );
    let new = token_of(&server, "eu-west", "token").unwrap();
    assert_is_issued_token(&new);
    assert_ne!(new, old);
    let put = writes(&server.take_secret_requests())[0].clone();
    assert_eq!(
        (put.method.as_str(), put.path.as_str()),
        (
            "PUT",
            "/api/v1/namespaces/tokens/secrets/signals-ingest-eu-west"
        )
    );
    assert_eq!(
        put.query,
        [(
            "fieldManager".to_string(),
            "signal-aggregator-tokens".to_string()
        )]
        .into()
    );
    let body = put.body.unwrap();
    assert_eq!(
        body["metadata"]["resourceVersion"], version,
        "guarded by what it read"
    );
    assert_eq!(
        body["metadata"]["annotations"],
        json!({"signals.modelplane.ai/token-generation": "2",
               "signals.modelplane.ai/issued-at": rfc3339(rotated_at),
               "signals.modelplane.ai/previous-token-expires-at": rfc3339(rotated_at + 86_400)}),
        "generation bumped, rotate request consumed"
    );
    assert_eq!(
        body["metadata"]["labels"]["team"], "platform",
        "others' labels kept"
    );
    assert_eq!(body["metadata"]["ownerReferences"][0]["uid"], "uid-eu-west");
    assert_eq!(decode(&body["data"]["token"]), new);
    assert_eq!(decode(&body["data"]["previous-token"]), old);
    let patch = server.take_patches().pop().unwrap();
    assert_eq!(patch.query["fieldManager"], "signal-aggregator-tokens");
    assert_eq!(
        patch.body["status"]["signals"]["ingestToken"],
        json!({"secretName": "signals-ingest-eu-west", "secretNamespace": "tokens",
               "generation": 2, "issuedAt": rfc3339(rotated_at)})
    );

    // During the overlap both tokens are accepted.
    let tokens = IngestTokens::from_sources(vec![Arc::new(replica.issued.clone())]);
    let cluster_of = |token: &str| {
        use signal_aggregator::ingest::Authenticator as _;
        tokens
            .authenticate(Some(format!("Bearer {token}").as_bytes()))
            .map(|origin| origin.authenticated_cluster.unwrap())
    };
    replica.set_clock(rotated_at + 86_399);
    assert_eq!(cluster_of(&old).as_deref(), Ok("eu-west"));
    assert_eq!(cluster_of(&new).as_deref(), Ok("eu-west"));
    // From the expiry on, the previous one is refused even before the
    // issuer removes it from the Secret.
    replica.set_clock(rotated_at + 86_400);
    assert!(cluster_of(&old).is_err());
    assert_eq!(cluster_of(&new).as_deref(), Ok("eu-west"));

    replica.until_status_seen("eu-west", 2).await;
    let report = replica.pass(rotated_at + 86_400).await;
    assert_eq!(
        report,
        IssueReport {
            expired: 1,
            ..IssueReport::default()
        },
        "the generation and status stay"
    );
    let put = writes(&server.take_secret_requests())[0].clone();
    let body = put.body.unwrap();
    assert!(body["metadata"]["resourceVersion"].is_string());
    assert_eq!(
        body["data"].as_object().unwrap().len(),
        1,
        "{}",
        body["data"]
    );
    assert_eq!(decode(&body["data"]["token"]), new);
    assert_eq!(
        body["metadata"]["annotations"],
        json!({"signals.modelplane.ai/token-generation": "2",
               "signals.modelplane.ai/issued-at": rfc3339(rotated_at)})
    );
    assert!(server.take_patches().is_empty());
    assert!(cluster_of(&old).is_err());
    assert_eq!(cluster_of(&new).as_deref(), Ok("eu-west"));
    assert!(server.violations().is_empty(), "{:?}", server.violations());
}

#[tokio::test]
async fn tokens_are_rotated_at_the_max_age_and_never_with_max_age_zero() {
    let (server, url) = FakeApiServer::start().await;
    server.put(IC, cluster("eu-west"));
    let policy = RotationPolicy {
        max_age_secs: 1_000,
        overlap_secs: 100,
    };
    let mut replica = Replica::start(&url, policy).await;
    replica.pass(T0).await;
    let first = token_of(&server, "eu-west", "token").unwrap();
    replica.until_status_seen("eu-west", 1).await;
    assert_eq!(replica.issued.next_due(&policy), Some(T0 + 1_000));

    assert_eq!(replica.pass(T0 + 999).await, IssueReport::default());
    let report = replica.pass(T0 + 1_000).await;
    assert_eq!(
        (report.rotated, report.status_written),
        (1, 1),
        "{report:?}"
    );
    let second = token_of(&server, "eu-west", "token").unwrap();
    assert_ne!(second, first);
    assert_eq!(token_of(&server, "eu-west", "previous-token"), Some(first));
    let secret = server
        .object(SECRETS, NS, "signals-ingest-eu-west")
        .unwrap();
    assert_eq!(
        secret["metadata"]["annotations"],
        json!({"signals.modelplane.ai/token-generation": "2",
               "signals.modelplane.ai/issued-at": rfc3339(T0 + 1_000),
               "signals.modelplane.ai/previous-token-expires-at": rfc3339(T0 + 1_100)})
    );

    // max age 0: a replica with that policy never rotates by age.
    let mut never = Replica::start(
        &url,
        RotationPolicy {
            max_age_secs: 0,
            overlap_secs: 100,
        },
    )
    .await;
    never.until_status_seen("eu-west", 2).await;
    server.take_secret_requests();
    let report = never.pass(T0 + 1_100 + 10 * 365 * 86_400).await;
    assert_eq!(
        report,
        IssueReport {
            expired: 1,
            ..IssueReport::default()
        },
        "only the expired previous token goes"
    );
    assert_eq!(token_of(&server, "eu-west", "token"), Some(second));
    assert!(server.violations().is_empty(), "{:?}", server.violations());
}

#[tokio::test]
async fn the_running_issuer_reacts_to_new_clusters_and_rotation_requests() {
    let (server, url) = FakeApiServer::start().await;
    server.put(IC, cluster("eu-west"));
    let client = FakeApiServer::client(&url);
    let directory = Directory::new();
    tokio::spawn(signal_aggregator::directory::watch::run(
        client.clone(),
        directory.clone(),
        std::future::pending(),
    ));
    let issued = IssuedTokens::new(signal_aggregator::clock::system_clock());
    tokio::spawn(signal_aggregator::auth::issuer::run(
        client,
        NS.into(),
        POLICY,
        directory,
        issued.clone(),
        signal_aggregator::clock::system_clock(),
        std::future::pending(),
    ));
    let s = server.clone();
    eventually("eu-west's Secret is issued", move || {
        token_of(&s, "eu-west", "token").is_some()
    })
    .await;
    let first = token_of(&server, "eu-west", "token").unwrap();

    // A new XR is noticed by the watch, not by a timer.
    server.put(IC, cluster("us-east"));
    let s = server.clone();
    eventually("us-east's Secret is issued", move || {
        token_of(&s, "us-east", "token").is_some()
    })
    .await;

    server.edit_secret(NS, "signals-ingest-eu-west", |s| {
        s["metadata"]["annotations"]["signals.modelplane.ai/rotate"] = json!("true");
    });
    let s = server.clone();
    eventually("the requested rotation happened", move || {
        token_of(&s, "eu-west", "previous-token").is_some()
    })
    .await;
    assert_eq!(
        token_of(&server, "eu-west", "previous-token"),
        Some(first.clone())
    );
    let s = server.clone();
    eventually(
        "status.signals.ingestToken reports generation 2",
        move || {
            s.object(IC, "", "eu-west")
                .is_some_and(|ic| ic["status"]["signals"]["ingestToken"]["generation"] == 2)
        },
    )
    .await;
    let current = token_of(&server, "eu-west", "token").unwrap();
    let issued_view = issued.clone();
    eventually("the new token is accepted", move || {
        issued_view.cluster_of(&current).as_deref() == Some("eu-west")
    })
    .await;
    assert_eq!(
        issued.cluster_of(&first).as_deref(),
        Some("eu-west"),
        "overlap"
    );
    assert!(server.violations().is_empty(), "{:?}", server.violations());
}

#[tokio::test]
async fn deleting_a_secret_revokes_its_token_and_issues_the_next_generation() {
    let (server, url) = FakeApiServer::start().await;
    server.put(IC, cluster("eu-west"));
    let mut replica = Replica::start(&url, POLICY).await;
    replica.pass(T0).await;
    let revoked = token_of(&server, "eu-west", "token").unwrap();
    replica.until_status_seen("eu-west", 1).await;
    server.take_patches();

    server.delete(SECRETS, NS, "signals-ingest-eu-west");
    let issued = replica.issued.clone();
    let gone = revoked.clone();
    eventually("the deletion reached the replica", move || {
        issued.secret("signals-ingest-eu-west").is_none()
    })
    .await;
    assert_eq!(replica.issued.cluster_of(&gone), None, "refused at once");

    let report = replica.pass(T0 + 60).await;
    assert_eq!(
        (report.created, report.status_written),
        (1, 1),
        "{report:?}"
    );
    let fresh = token_of(&server, "eu-west", "token").unwrap();
    assert_ne!(fresh, revoked);
    let secret = server
        .object(SECRETS, NS, "signals-ingest-eu-west")
        .unwrap();
    assert_eq!(
        secret["metadata"]["annotations"]["signals.modelplane.ai/token-generation"], "2",
        "a new generation, so the agent is restarted onto the new token"
    );
    let patch = server.take_patches().pop().unwrap();
    assert_eq!(
        patch.body["status"]["signals"]["ingestToken"]["generation"],
        2
    );
    assert_eq!(replica.issued.cluster_of(&revoked), None);
    assert_eq!(
        replica.issued.cluster_of(&fresh).as_deref(),
        Some("eu-west")
    );
    assert!(server.violations().is_empty(), "{:?}", server.violations());
}
