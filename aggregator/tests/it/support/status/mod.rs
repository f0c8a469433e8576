//! An in-process stand-in for the Kubernetes API server, just for the two XR
//! kinds: LIST and WATCH (`?watch=true`, JSON lines of WatchEvents with
//! resourceVersions, replayed from the requested version) and server-side
//! apply PATCHes to `/status`, each checked the way the API server checks
//! them (path, `fieldManager`, `force`, content type, body identity). Every
//! PATCH is recorded for exact assertions; anything malformed is answered
//! like the API server would and recorded as a violation.
//!
//! Core v1 Secrets (the ingest token issuer's) are served by [`secrets`]:
//! create, get, update with resourceVersion preconditions, list and watch
//! with label selectors.
//!
//! The real kube-apiserver, etcd and controller manager run in test/kube/
//! (watch, status apply beside another field manager, 410 re-lists, token
//! Secrets, RBAC, garbage collection). This stand-in stays for what the real
//! server cannot produce on demand or observe from outside, in fast tests:
//! the exact bytes of every request (apply bodies, the issuer's POST/PUT),
//! the number of writes per pass, both racing writes held until both arrive
//! (a deterministic Conflict), injected failures (every PATCH answered with
//! 500/403/timeouts), a watch ended mid-stream at a chosen event, and a
//! mocked clock for rotation ages and rate limits.
mod secrets;
pub use secrets::{RecordedRequest, SECRETS};

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use parking_lot::Mutex;
use serde_json::{Value, json};
use signal_aggregator::directory::{Directory, watch};
use tokio::sync::{Notify, oneshot};

pub const IC: &str = "inferenceclusters";
pub const MS: &str = "modelservices";
const GROUP_VERSION: &str = "modelplane.ai/v1alpha1";

#[derive(Debug, Clone)]
pub struct RecordedPatch {
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub content_type: String,
    /// The body parsed as YAML (apply bodies are YAML; JSON is YAML).
    pub body: Value,
}

#[derive(Default)]
struct Inner {
    resource_version: u64,
    /// (plural, namespace, name) → object.
    objects: BTreeMap<(String, String, String), Value>,
    /// (resourceVersion, plural, event).
    events: Vec<(u64, String, Value)>,
    patches: Vec<RecordedPatch>,
    violations: Vec<String>,
    watch_requests: u32,
    /// Bumped to end every open watch (as the API server does on timeout).
    watch_epoch: u64,
    /// Status code every PATCH gets instead of being applied (failure tests).
    fail_patches_with: Option<u16>,
    /// Every Secret request, in arrival order.
    secret_requests: Vec<RecordedRequest>,
    /// Holds Secret writes until this many are in flight (race tests).
    write_barrier: Option<Arc<tokio::sync::Barrier>>,
    /// Counter behind the `metadata.uid` of created objects.
    created: u64,
}

#[derive(Clone, Default)]
pub struct FakeApiServer {
    inner: Arc<Mutex<Inner>>,
    changed: Arc<Notify>,
}

fn kind_of(plural: &str) -> &'static str {
    match plural {
        IC => "InferenceCluster",
        SECRETS => "Secret",
        _ => "ModelService",
    }
}

fn api_version_of(plural: &str) -> &'static str {
    if plural == SECRETS {
        "v1"
    } else {
        GROUP_VERSION
    }
}

impl FakeApiServer {
    /// Starts the server on 127.0.0.1:0; returns it and its base URL.
    pub async fn start() -> (FakeApiServer, String) {
        let server = FakeApiServer::default();
        let app = Router::new()
            .route("/apis/modelplane.ai/v1alpha1/{plural}", get(list_or_watch))
            .route(
                "/apis/modelplane.ai/v1alpha1/inferenceclusters/{name}/status",
                axum::routing::patch(patch_cluster_status),
            )
            .route(
                "/apis/modelplane.ai/v1alpha1/namespaces/{ns}/modelservices/{name}/status",
                axum::routing::patch(patch_service_status),
            )
            .merge(secrets::routes())
            .fallback(unexpected)
            .with_state(server.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (server, url)
    }

    pub fn client(url: &str) -> kube::Client {
        let config = kube::Config::new(url.parse().unwrap());
        kube::Client::try_from(config).unwrap()
    }

    fn record(&self, plural: &str, event_type: &str, object: Value) -> Value {
        let stored = record_in(&mut self.inner.lock(), plural, event_type, object);
        self.changed.notify_waiters();
        stored
    }

    /// Creates or replaces an object (ADDED or MODIFIED event).
    pub fn put(&self, plural: &str, object: Value) {
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let ns = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let exists = self
            .inner
            .lock()
            .objects
            .contains_key(&(plural.to_string(), ns, name));
        self.record(plural, if exists { "MODIFIED" } else { "ADDED" }, object);
    }

    pub fn delete(&self, plural: &str, namespace: &str, name: &str) {
        let key = (plural.to_string(), namespace.to_string(), name.to_string());
        let object = self.inner.lock().objects.get(&key).cloned();
        if let Some(object) = object {
            self.record(plural, "DELETED", object);
        }
    }

    pub fn object(&self, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        let key = (plural.to_string(), namespace.to_string(), name.to_string());
        self.inner.lock().objects.get(&key).cloned()
    }

    pub fn patches(&self) -> Vec<RecordedPatch> {
        self.inner.lock().patches.clone()
    }

    pub fn take_patches(&self) -> Vec<RecordedPatch> {
        std::mem::take(&mut self.inner.lock().patches)
    }

    pub fn violations(&self) -> Vec<String> {
        self.inner.lock().violations.clone()
    }

    pub fn watch_requests(&self) -> u32 {
        self.inner.lock().watch_requests
    }

    /// Ends every open watch stream, as the API server does when a watch
    /// times out; clients must re-watch from their last resourceVersion.
    pub fn close_watches(&self) {
        self.inner.lock().watch_epoch += 1;
        self.changed.notify_waiters();
    }

    pub fn fail_patches_with(&self, status: Option<u16>) {
        self.inner.lock().fail_patches_with = status;
    }

    fn violation(&self, message: String) -> Response {
        self.inner.lock().violations.push(message.clone());
        (
            StatusCode::BAD_REQUEST,
            status_body(400, "BadRequest", &message),
        )
            .into_response()
    }
}

/// Stores `object` with the next resourceVersion and queues its watch event
/// (callers notify watchers after releasing the lock).
fn record_in(inner: &mut Inner, plural: &str, event_type: &str, mut object: Value) -> Value {
    inner.resource_version += 1;
    let rv = inner.resource_version;
    object["apiVersion"] = json!(api_version_of(plural));
    object["kind"] = json!(kind_of(plural));
    object["metadata"]["resourceVersion"] = json!(rv.to_string());
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let ns = object["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let key = (plural.to_string(), ns, name);
    if event_type == "DELETED" {
        inner.objects.remove(&key);
    } else {
        inner.objects.insert(key, object.clone());
    }
    inner.events.push((
        rv,
        plural.to_string(),
        json!({"type": event_type, "object": object.clone()}),
    ));
    object
}

fn status_body(code: u16, reason: &str, message: &str) -> String {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
           "message": message, "reason": reason, "code": code})
    .to_string()
}

async fn unexpected(State(server): State<FakeApiServer>, method: Method, uri: Uri) -> Response {
    let message = format!("unexpected request {method} {uri}");
    server.inner.lock().violations.push(message.clone());
    (
        StatusCode::NOT_FOUND,
        status_body(404, "NotFound", &message),
    )
        .into_response()
}

async fn list_or_watch(
    State(server): State<FakeApiServer>,
    Path(plural): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if plural != IC && plural != MS {
        return unexpected(
            State(server),
            Method::GET,
            format!("/{plural}").parse().unwrap(),
        )
        .await;
    }
    if query.get("watch").map(String::as_str) == Some("true") {
        return watch(server, plural, &query, Arc::new(|_: &Value| true));
    }
    let inner = server.inner.lock();
    let items: Vec<Value> = inner
        .objects
        .iter()
        .filter(|((p, _, _), _)| *p == plural)
        .map(|(_, o)| o.clone())
        .collect();
    let body = json!({
        "apiVersion": GROUP_VERSION,
        "kind": format!("{}List", kind_of(&plural)),
        "metadata": {"resourceVersion": inner.resource_version.to_string()},
        "items": items,
    });
    ([("content-type", "application/json")], body.to_string()).into_response()
}

/// Which objects a watch delivers (namespace, label selector).
type WatchFilter = Arc<dyn Fn(&Value) -> bool + Send + Sync>;

/// Streams every event of `plural` after the requested resourceVersion, then
/// new ones as they happen, one JSON object per line.
fn watch(
    server: FakeApiServer,
    plural: String,
    query: &HashMap<String, String>,
    matches: WatchFilter,
) -> Response {
    let mut cursor: u64 = query
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let epoch = {
        let mut inner = server.inner.lock();
        inner.watch_requests += 1;
        inner.watch_epoch
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::convert::Infallible>>(64);
    tokio::spawn(async move {
        loop {
            let notified = server.changed.notified();
            let pending: Vec<(u64, Value)> = server
                .inner
                .lock()
                .events
                .iter()
                .filter(|(rv, p, e)| *rv > cursor && *p == plural && matches(&e["object"]))
                .map(|(rv, _, e)| (*rv, e.clone()))
                .collect();
            for (rv, event) in pending {
                cursor = rv;
                let line = format!("{event}\n");
                if tx.send(Ok(Bytes::from(line))).await.is_err() {
                    return;
                }
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
            if tx.is_closed() || server.inner.lock().watch_epoch != epoch {
                return;
            }
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    ([("content-type", "application/json")], body).into_response()
}

async fn patch_cluster_status(
    State(server): State<FakeApiServer>,
    Path(name): Path<String>,
    uri: Uri,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    apply_status(server, IC, String::new(), name, uri, query, headers, body)
}

async fn patch_service_status(
    State(server): State<FakeApiServer>,
    Path((ns, name)): Path<(String, String)>,
    uri: Uri,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    apply_status(server, MS, ns, name, uri, query, headers, body)
}

#[allow(clippy::too_many_arguments)]
fn apply_status(
    server: FakeApiServer,
    plural: &str,
    namespace: String,
    name: String,
    uri: Uri,
    query: BTreeMap<String, String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let parsed: Result<Value, _> = serde_yaml::from_slice(&body);
    if let Ok(body) = &parsed {
        server.inner.lock().patches.push(RecordedPatch {
            path: uri.path().to_string(),
            query: query.clone(),
            content_type: content_type.clone(),
            body: body.clone(),
        });
    }
    if content_type != "application/apply-patch+yaml" {
        server
            .inner
            .lock()
            .violations
            .push(format!("content type {content_type:?}"));
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            status_body(415, "UnsupportedMediaType", "not an apply patch"),
        )
            .into_response();
    }
    let Some(manager) = query.get("fieldManager").filter(|m| !m.is_empty()) else {
        return server.violation("fieldManager is required for apply requests".into());
    };
    if manager != "signal-aggregator" && manager != secrets::TOKEN_MANAGER {
        return server.violation(format!("unexpected fieldManager {manager:?}"));
    }
    if query.get("force").map(String::as_str) != Some("true") {
        return server.violation("force=true expected".into());
    }
    let Ok(body) = parsed else {
        return server.violation("body is not YAML".into());
    };
    let expected_kind = kind_of(plural);
    if body["apiVersion"] != json!(GROUP_VERSION) || body["kind"] != json!(expected_kind) {
        return server.violation(format!("body apiVersion/kind wrong: {body}"));
    }
    if body["metadata"]["name"] != json!(name) {
        return server.violation("metadata.name does not match the path".into());
    }
    let body_ns = body["metadata"]["namespace"].as_str().unwrap_or_default();
    if body_ns != namespace {
        return server.violation("metadata.namespace does not match the path".into());
    }
    if let Some(message) = secrets::field_ownership_violation(manager, &body) {
        return server.violation(message);
    }
    if let Some(status) = server.inner.lock().fail_patches_with {
        return (
            StatusCode::from_u16(status).unwrap(),
            status_body(status, "Injected", "injected failure"),
        )
            .into_response();
    }
    let Some(mut object) = server.object(plural, &namespace, &name) else {
        return (
            StatusCode::NOT_FOUND,
            status_body(404, "NotFound", &format!("{plural} {name:?} not found")),
        )
            .into_response();
    };
    // Enough of apply for these tests: the owned subtree replaces the old one.
    let status = object
        .as_object_mut()
        .unwrap()
        .entry("status")
        .or_insert_with(|| json!({}));
    for (key, value) in body["status"].as_object().cloned().unwrap_or_default() {
        if let (Some(old), Some(new)) = (
            status.get_mut(&key).and_then(Value::as_object_mut),
            value.as_object(),
        ) {
            for (k, v) in new {
                old.insert(k.clone(), v.clone());
            }
        } else {
            status[&key] = value;
        }
    }
    let stored = server.record(plural, "MODIFIED", object);
    ([("content-type", "application/json")], stored.to_string()).into_response()
}

/// A kubeconfig in `dir` pointing at the server at `url` (no credentials).
pub fn write_kubeconfig(dir: &std::path::Path, url: &str) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {url}\n\
             contexts:\n- name: fake\n  context: {{cluster: fake, user: fake}}\n\
             current-context: fake\nusers:\n- name: fake\n  user: {{}}\n"
        ),
    )
    .unwrap();
    path
}

/// Waits (up to 10 s) until `check` holds.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}");
}

/// A directory fed by a watch of the server at `url`, once it has synced and
/// `ready` holds; the watch runs until the returned sender is dropped.
pub async fn watched_directory(
    url: &str,
    ready: impl Fn(&Directory) -> bool,
) -> (Directory, oneshot::Sender<()>) {
    let directory = Directory::new();
    let (stop, stopped) = oneshot::channel::<()>();
    let until_stopped = async move {
        let _ = stopped.await;
    };
    tokio::spawn(watch::run(
        FakeApiServer::client(url),
        directory.clone(),
        until_stopped,
    ));
    eventually("the directory is synced", || {
        directory.is_synced() && ready(&directory)
    })
    .await;
    (directory, stop)
}

/// Runs one status pass at `now` and returns the `status.signals` each
/// InferenceCluster got, by name; the server must have seen no violation.
pub async fn cluster_signals_written(
    writer: &mut signal_aggregator::status::StatusWriter,
    server: &FakeApiServer,
    now: u64,
) -> Vec<(String, Value)> {
    writer.reconcile_once(now).await;
    assert!(server.violations().is_empty(), "{:?}", server.violations());
    let mut written: Vec<(String, Value)> = server
        .take_patches()
        .into_iter()
        .map(|patch| {
            (
                patch.body["metadata"]["name"].as_str().unwrap().to_string(),
                patch.body["status"]["signals"].clone(),
            )
        })
        .collect();
    written.sort_by(|a, b| a.0.cmp(&b.0));
    written
}

/// The status writer configured as the binary is with these flags.
pub fn writer_config_from(flags: &[&str]) -> signal_aggregator::status::WriterConfig {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        status: signal_aggregator::status::StatusArgs,
    }
    let argv = std::iter::once("test").chain(flags.iter().copied());
    Cli::try_parse_from(argv).unwrap().status.writer_config()
}

/// The defaults an operator gets: 5 % threshold, 30 s per object, 5m window,
/// enabledKinds left to function-signals.
pub fn writer_config() -> signal_aggregator::status::WriterConfig {
    writer_config_from(&[])
}
