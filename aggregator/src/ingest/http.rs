//! OTLP/HTTP: `POST /v1/metrics` and `/v1/traces`, protobuf or JSON, any of
//! the codings in [`ContentCoding`]. Responses use the request's encoding.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use super::body::{ACCEPTED_CONTENT_CODINGS, ACCEPTED_CONTENT_TYPES, decode_request};
use super::receiver::Receiver;
use super::request::OtlpRequest;
use super::{ContentCoding, PayloadFormat, Refusal, ThrottleCause};

pub(crate) fn router(receiver: Arc<Receiver>) -> Router {
    Router::new()
        .route(
            "/v1/metrics",
            post(export::<ExportMetricsServiceRequest>).fallback(method_not_allowed),
        )
        .route(
            "/v1/traces",
            post(export::<ExportTraceServiceRequest>).fallback(method_not_allowed),
        )
        .route("/v1/logs", any(logs))
        .fallback(not_found)
        .with_state(receiver)
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn export<R: OtlpRequest>(
    State(receiver): State<Arc<Receiver>>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let Some(format) =
        header_str(&parts.headers, header::CONTENT_TYPE).and_then(PayloadFormat::from_content_type)
    else {
        let got = header_str(&parts.headers, header::CONTENT_TYPE).unwrap_or("none");
        let refusal = Refusal::UnsupportedMediaType {
            description: format!(
                "unsupported Content-Type {got:?}; OTLP/HTTP accepts {ACCEPTED_CONTENT_TYPES}"
            ),
        };
        return receiver.refused(R::SIGNAL, refusal).http_response(None);
    };
    let refuse = |refusal: Refusal| {
        receiver
            .refused(R::SIGNAL, refusal)
            .http_response(Some(format))
    };
    let coding_header = header_str(&parts.headers, header::CONTENT_ENCODING);
    let Some(coding) = ContentCoding::from_header(coding_header) else {
        return refuse(Refusal::UnsupportedMediaType {
            description: format!(
                "unsupported Content-Encoding {:?}; accepted: {ACCEPTED_CONTENT_CODINGS}",
                coding_header.unwrap_or_default()
            ),
        });
    };
    let authorization = parts
        .headers
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    let admitted = match receiver.admit(R::SIGNAL, authorization) {
        Ok(admitted) => admitted,
        Err(refusal) => return refusal.http_response(Some(format)),
    };
    let limit = receiver.config().max_request_bytes;
    let declared_length =
        header_str(&parts.headers, header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
    if declared_length.is_some_and(|len| len > limit as u64) {
        return refuse(Refusal::TooLarge { limit });
    }
    let config = receiver.config();
    let bytes = match tokio::time::timeout(config.body_read_timeout, read_body(body, limit)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(refusal)) => return refuse(refusal),
        Err(_) => {
            return refuse(Refusal::Throttled {
                retry_after: config.retry_after,
                cause: ThrottleCause::BodyReadTimeout,
                description: format!(
                    "request body did not arrive within {}s",
                    config.body_read_timeout.as_secs_f64()
                ),
            });
        }
    };
    let request: R = match decode_request(&bytes, format, coding, limit) {
        Ok(request) => request,
        Err(refusal) => return refuse(refusal),
    };
    drop(bytes);
    match receiver.export(&admitted.origin, request).await {
        Ok(outcome) => {
            let body = match format {
                PayloadFormat::Protobuf => R::response(&outcome).encode_to_vec(),
                PayloadFormat::Json => {
                    serde_json::to_vec(&R::response_json(&outcome)).unwrap_or_default()
                }
            };
            (
                StatusCode::OK,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(format.content_type()),
                )],
                body,
            )
                .into_response()
        }
        // Already counted by the receiver, with the request's item count.
        Err(refusal) => refusal.http_response(Some(format)),
    }
}

/// Reads the (possibly compressed) body, refusing past `limit` bytes.
async fn read_body(body: Body, limit: usize) -> Result<bytes::Bytes, Refusal> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<LengthLimitError>() => Err(Refusal::TooLarge { limit }),
        Err(error) => Err(Refusal::InvalidData {
            field: String::new(),
            description: format!("request body could not be read: {error}"),
        }),
    }
}

async fn logs(State(receiver): State<Arc<Receiver>>, headers: HeaderMap) -> Response {
    let format =
        header_str(&headers, header::CONTENT_TYPE).and_then(PayloadFormat::from_content_type);
    receiver
        .refused("logs", Refusal::LogsNotAccepted)
        .http_response(format)
}

async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::ALLOW, "POST")],
        format!("OTLP/HTTP exports are POST requests with Content-Type {ACCEPTED_CONTENT_TYPES}\n"),
    )
        .into_response()
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        "not an OTLP/HTTP endpoint; this receiver serves POST /v1/metrics and POST /v1/traces\n",
    )
        .into_response()
}
