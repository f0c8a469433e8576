//! Core v1 Secrets as the API server serves them, for the ingest token
//! issuer: `POST` creates (409 AlreadyExists if the name is taken), `GET`
//! reads (404 NotFound), `PUT` replaces only when the body's
//! `metadata.resourceVersion` is the stored one (409 Conflict otherwise),
//! `LIST` and `WATCH` honour the namespace and an equality `labelSelector`.
//! Every write bumps the resourceVersion and is delivered to watches. Every
//! request is recorded for exact assertions; a request the API server would
//! refuse is refused the same way and recorded as a violation.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use serde_json::{Value, json};

use super::{FakeApiServer, record_in, status_body, watch};

pub const SECRETS: &str = "secrets";
/// The token issuer's field manager: the only one allowed to write
/// `status.signals.ingestToken`, and allowed nothing else there.
pub const TOKEN_MANAGER: &str = "signal-aggregator-tokens";

#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// Query parameters (empty keys from kube's leading `&` left out).
    pub query: BTreeMap<String, String>,
    pub content_type: String,
    pub body: Option<Value>,
}

pub fn routes() -> axum::Router<FakeApiServer> {
    axum::Router::new()
        .route(
            "/api/v1/namespaces/{ns}/secrets",
            get(list_or_watch).post(create),
        )
        .route(
            "/api/v1/namespaces/{ns}/secrets/{name}",
            get(read).put(replace),
        )
}

/// `fieldManager=signal-aggregator-tokens` may apply exactly
/// `status.signals.ingestToken`; the status writer must never send it.
pub fn field_ownership_violation(manager: &str, body: &Value) -> Option<String> {
    let signals = &body["status"]["signals"];
    if manager == TOKEN_MANAGER {
        let status_keys: Vec<&String> = body["status"]
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        let signal_keys: Vec<&String> = signals
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        if status_keys != ["signals"] || signal_keys != ["ingestToken"] {
            return Some(format!(
                "{TOKEN_MANAGER} may apply only status.signals.ingestToken, got {body}"
            ));
        }
    } else if !signals["ingestToken"].is_null() {
        return Some(format!("{manager} applied status.signals.ingestToken"));
    }
    None
}

fn clean_query(query: HashMap<String, String>) -> BTreeMap<String, String> {
    query.into_iter().filter(|(k, _)| !k.is_empty()).collect()
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

fn failure(status: StatusCode, reason: &str, message: &str) -> Response {
    (status, status_body(status.as_u16(), reason, message)).into_response()
}

fn not_found(name: &str) -> Response {
    failure(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("secrets {name:?} not found"),
    )
}

/// `k=v,k2=v2` (equality only: what the issuer sends); `None` if malformed.
fn parse_selector(selector: &str) -> Option<Vec<(String, String)>> {
    selector
        .split(',')
        .filter(|term| !term.is_empty())
        .map(|term| {
            let (key, value) = term.split_once('=')?;
            let value = value.strip_prefix('=').unwrap_or(value);
            (!key.is_empty()).then(|| (key.to_string(), value.to_string()))
        })
        .collect()
}

fn selected(object: &Value, namespace: &str, selector: &[(String, String)]) -> bool {
    object["metadata"]["namespace"] == json!(namespace)
        && selector
            .iter()
            .all(|(k, v)| object["metadata"]["labels"][k] == json!(v))
}

impl FakeApiServer {
    fn record_request(
        &self,
        method: &Method,
        uri: &Uri,
        query: &BTreeMap<String, String>,
        content_type: String,
        body: Option<Value>,
    ) {
        self.inner.lock().secret_requests.push(RecordedRequest {
            method: method.to_string(),
            path: uri.path().to_string(),
            query: query.clone(),
            content_type,
            body,
        });
    }

    pub fn take_secret_requests(&self) -> Vec<RecordedRequest> {
        std::mem::take(&mut self.inner.lock().secret_requests)
    }

    /// The next `writers` Secret writes (POST or PUT) wait for each other
    /// and are then handled one after the other, as racing replicas' writes
    /// reach the API server.
    pub fn hold_secret_writes(&self, writers: usize) {
        self.inner.lock().write_barrier = Some(Arc::new(tokio::sync::Barrier::new(writers)));
    }

    /// A Secret's decoded data value.
    pub fn secret_data(&self, namespace: &str, name: &str, key: &str) -> Option<String> {
        let secret = self.object(SECRETS, namespace, name)?;
        let encoded = secret["data"][key].as_str()?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()?;
        String::from_utf8(bytes).ok()
    }

    /// Edits a stored Secret as another client would (e.g. `kubectl
    /// annotate`): bumps its resourceVersion and emits MODIFIED.
    pub fn edit_secret(&self, namespace: &str, name: &str, edit: impl FnOnce(&mut Value)) {
        let mut secret = self
            .object(SECRETS, namespace, name)
            .expect("the Secret exists");
        edit(&mut secret);
        self.record(SECRETS, "MODIFIED", secret);
    }

    async fn wait_for_racing_writers(&self) {
        let barrier = self.inner.lock().write_barrier.clone();
        if let Some(barrier) = barrier
            && barrier.wait().await.is_leader()
        {
            self.inner.lock().write_barrier = None;
        }
    }

    /// What the API server refuses in any Secret it is asked to store.
    fn invalid_secret(&self, namespace: &str, body: &Value) -> Option<Response> {
        if body["apiVersion"] != json!("v1") || body["kind"] != json!("Secret") {
            return Some(self.violation(format!("not a v1 Secret: {body}")));
        }
        if body["metadata"]["name"].as_str().is_none_or(str::is_empty) {
            return Some(self.violation("metadata.name is required".into()));
        }
        if let Some(ns) = body["metadata"]["namespace"].as_str()
            && ns != namespace
        {
            return Some(self.violation(
                "the namespace of the provided object does not match the namespace sent on the request"
                    .into(),
            ));
        }
        for (key, value) in body["data"].as_object().into_iter().flatten() {
            let decodes = value
                .as_str()
                .is_some_and(|v| base64::engine::general_purpose::STANDARD.decode(v).is_ok());
            if !decodes {
                return Some(self.violation(format!("data.{key} is not base64")));
            }
        }
        for (key, value) in body["metadata"]["labels"].as_object().into_iter().flatten() {
            let ok = value.as_str().is_some_and(|v| {
                v.len() <= 63
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            });
            if !ok {
                return Some(self.violation(format!("label {key} has an invalid value")));
            }
        }
        None
    }

    /// Writes must name the issuer's field manager and be JSON.
    fn check_write_request(&self, query: &BTreeMap<String, String>, content_type: &str) {
        if query.get("fieldManager").map(String::as_str) != Some(TOKEN_MANAGER) {
            self.inner.lock().violations.push(format!(
                "Secret write with fieldManager {:?}",
                query.get("fieldManager")
            ));
        }
        if content_type != "application/json" {
            self.inner
                .lock()
                .violations
                .push(format!("Secret write with content type {content_type:?}"));
        }
    }
}

async fn list_or_watch(
    State(server): State<FakeApiServer>,
    Path(namespace): Path<String>,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let recorded = clean_query(query.clone());
    server.record_request(&Method::GET, &uri, &recorded, String::new(), None);
    let Some(selector) = parse_selector(query.get("labelSelector").map_or("", String::as_str))
    else {
        return server.violation("unparseable labelSelector".into());
    };
    if query.get("watch").map(String::as_str) == Some("true") {
        let matches = Arc::new(move |object: &Value| selected(object, &namespace, &selector));
        return watch(server, SECRETS.to_string(), &query, matches);
    }
    let inner = server.inner.lock();
    let items: Vec<Value> = inner
        .objects
        .iter()
        .filter(|((plural, _, _), object)| {
            plural == SECRETS && selected(object, &namespace, &selector)
        })
        .map(|(_, object)| object.clone())
        .collect();
    let body = json!({
        "apiVersion": "v1",
        "kind": "SecretList",
        "metadata": {"resourceVersion": inner.resource_version.to_string()},
        "items": items,
    });
    ([("content-type", "application/json")], body.to_string()).into_response()
}

async fn read(
    State(server): State<FakeApiServer>,
    Path((namespace, name)): Path<(String, String)>,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    server.record_request(&Method::GET, &uri, &clean_query(query), String::new(), None);
    match server.object(SECRETS, &namespace, &name) {
        Some(secret) => {
            ([("content-type", "application/json")], secret.to_string()).into_response()
        }
        None => not_found(&name),
    }
}

impl FakeApiServer {
    /// What a Secret create or replace checks before acting: the request is
    /// recorded and checked as a write, and its body must be a valid Secret
    /// for `namespace`.
    fn secret_write(
        &self,
        method: Method,
        namespace: &str,
        uri: &Uri,
        query: HashMap<String, String>,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<Value, Box<Response>> {
        let query = clean_query(query);
        let content_type = content_type(headers);
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        self.record_request(&method, uri, &query, content_type.clone(), parsed.clone());
        self.check_write_request(&query, &content_type);
        let Some(secret) = parsed else {
            return Err(Box::new(self.violation("body is not JSON".into())));
        };
        match self.invalid_secret(namespace, &secret) {
            Some(refused) => Err(Box::new(refused)),
            None => Ok(secret),
        }
    }
}

async fn create(
    State(server): State<FakeApiServer>,
    Path(namespace): Path<String>,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut secret =
        match server.secret_write(Method::POST, &namespace, &uri, query, &headers, &body) {
            Ok(secret) => secret,
            Err(refused) => return *refused,
        };
    if secret["metadata"]["resourceVersion"]
        .as_str()
        .is_some_and(|v| !v.is_empty())
    {
        return server
            .violation("resourceVersion should not be set on objects to be created".into());
    }
    server.wait_for_racing_writers().await;
    let name = secret["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    // Decided and stored under one lock: two creates cannot both succeed.
    let mut inner = server.inner.lock();
    if inner
        .objects
        .contains_key(&(SECRETS.to_string(), namespace.clone(), name.clone()))
    {
        drop(inner);
        return (
            StatusCode::CONFLICT,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": format!("secrets {name:?} already exists"),
                   "reason": "AlreadyExists",
                   "details": {"name": name, "kind": "secrets"}, "code": 409})
            .to_string(),
        )
            .into_response();
    }
    inner.created += 1;
    secret["metadata"]["namespace"] = json!(namespace);
    secret["metadata"]["uid"] = json!(format!("secret-uid-{}", inner.created));
    secret["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
    let stored = record_in(&mut inner, SECRETS, "ADDED", secret);
    drop(inner);
    server.changed.notify_waiters();
    (
        StatusCode::CREATED,
        [("content-type", "application/json")],
        stored.to_string(),
    )
        .into_response()
}

async fn replace(
    State(server): State<FakeApiServer>,
    Path((namespace, name)): Path<(String, String)>,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut secret =
        match server.secret_write(Method::PUT, &namespace, &uri, query, &headers, &body) {
            Ok(secret) => secret,
            Err(refused) => return *refused,
        };
    if secret["metadata"]["name"] != json!(name) {
        return server.violation("metadata.name does not match the path".into());
    }
    let precondition = secret["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if precondition.is_empty() {
        // The API server would update unconditionally; the issuer must not.
        server.inner.lock().violations.push(format!(
            "unguarded PUT of Secret {name} (no resourceVersion)"
        ));
    }
    server.wait_for_racing_writers().await;
    // Compared and stored under one lock: no write can slip in between.
    let mut inner = server.inner.lock();
    let key = (SECRETS.to_string(), namespace.clone(), name.clone());
    let Some(stored) = inner.objects.get(&key).cloned() else {
        drop(inner);
        return not_found(&name);
    };
    if !precondition.is_empty() && stored["metadata"]["resourceVersion"] != json!(precondition) {
        drop(inner);
        return failure(
            StatusCode::CONFLICT,
            "Conflict",
            &format!(
                "Operation cannot be fulfilled on secrets {name:?}: the object has been modified; \
                 please apply your changes to the latest version and try again"
            ),
        );
    }
    secret["metadata"]["namespace"] = json!(namespace);
    secret["metadata"]["uid"] = stored["metadata"]["uid"].clone();
    secret["metadata"]["creationTimestamp"] = stored["metadata"]["creationTimestamp"].clone();
    let stored = record_in(&mut inner, SECRETS, "MODIFIED", secret);
    drop(inner);
    server.changed.notify_waiters();
    ([("content-type", "application/json")], stored.to_string()).into_response()
}
