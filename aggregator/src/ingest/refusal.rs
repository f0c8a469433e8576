//! Every way ingest refuses a request, and how each is told to the sender over
//! gRPC and over HTTP. One table keeps both transports consistent with the
//! OTLP spec's retry rules: only `Throttled` is retryable (gRPC `UNAVAILABLE`
//! with `RetryInfo`, HTTP 503 with `Retry-After`); everything else is
//! permanent so a collector drops the batch instead of retrying it forever.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt};

use super::PayloadFormat;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The payload cannot be decoded or is invalid as a whole.
    /// gRPC `INVALID_ARGUMENT` + `BadRequest`; HTTP 400.
    InvalidData { field: String, description: String },
    /// Over the size limit, after decompression.
    /// gRPC `RESOURCE_EXHAUSTED` without `RetryInfo` (not retryable); HTTP 413.
    TooLarge { limit: usize },
    /// HTTP only: a content type or content coding this receiver does not speak. HTTP 415.
    UnsupportedMediaType { description: String },
    /// No or wrong credentials. gRPC `UNAUTHENTICATED`; HTTP 401.
    Unauthenticated { description: String },
    /// Try again later. gRPC `UNAVAILABLE` + `RetryInfo`; HTTP 503 + `Retry-After`.
    Throttled {
        retry_after: Duration,
        cause: ThrottleCause,
        description: String,
    },
    /// This bus carries no logs. gRPC `UNIMPLEMENTED`; HTTP 501. Both permanent.
    LogsNotAccepted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleCause {
    /// More requests in flight than `max_in_flight_requests`.
    InFlightLimit,
    /// The sink said `ExportError::Overloaded`.
    SinkOverloaded,
    /// The sink said `ExportError::Unavailable` (e.g. the store is down).
    StoreUnavailable,
    /// An HTTP body did not arrive within `body_read_timeout`; nothing was
    /// kept, so the sender should send it again.
    BodyReadTimeout,
}

pub(crate) const LOGS_REFUSED: &str = "this OTLP endpoint accepts metrics and traces only: the \
     modelplane signal bus carries no logs; remove the logs pipeline that exports here";

impl Refusal {
    /// The `SelfMetrics` rejection reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::InvalidData { .. } => "invalid_data",
            Refusal::TooLarge { .. } => "too_large",
            Refusal::UnsupportedMediaType { .. } => "unsupported_media_type",
            Refusal::Unauthenticated { .. } => "unauthenticated",
            Refusal::Throttled { cause, .. } => match cause {
                ThrottleCause::InFlightLimit => "in_flight_limit",
                ThrottleCause::SinkOverloaded => "sink_overloaded",
                ThrottleCause::StoreUnavailable => "store_unavailable",
                ThrottleCause::BodyReadTimeout => "body_read_timeout",
            },
            Refusal::LogsNotAccepted => "logs_not_accepted",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Refusal::InvalidData { field, description } if field.is_empty() => description.clone(),
            Refusal::InvalidData { field, description } => format!("{field}: {description}"),
            Refusal::TooLarge { limit } => format!(
                "request is larger than {limit} bytes after decompression; \
                 send smaller batches (lower the exporter's batch size)"
            ),
            Refusal::UnsupportedMediaType { description }
            | Refusal::Unauthenticated { description } => description.clone(),
            Refusal::Throttled {
                retry_after,
                description,
                ..
            } => format!(
                "{description}; retry in {}s",
                retry_after_seconds(*retry_after)
            ),
            Refusal::LogsNotAccepted => LOGS_REFUSED.to_string(),
        }
    }

    fn code(&self) -> Code {
        match self {
            Refusal::InvalidData { .. } | Refusal::UnsupportedMediaType { .. } => {
                Code::InvalidArgument
            }
            Refusal::TooLarge { .. } => Code::ResourceExhausted,
            Refusal::Unauthenticated { .. } => Code::Unauthenticated,
            Refusal::Throttled { .. } => Code::Unavailable,
            Refusal::LogsNotAccepted => Code::Unimplemented,
        }
    }

    fn details(&self) -> ErrorDetails {
        match self {
            Refusal::InvalidData { field, description } => {
                ErrorDetails::with_bad_request_violation(field.clone(), description.clone())
            }
            Refusal::Throttled { retry_after, .. } => {
                ErrorDetails::with_retry_info(Some(*retry_after))
            }
            _ => ErrorDetails::new(),
        }
    }

    pub fn grpc_status(&self) -> tonic::Status {
        tonic::Status::with_error_details(self.code(), self.message(), self.details())
    }

    pub fn http_status(&self) -> StatusCode {
        match self {
            Refusal::InvalidData { .. } => StatusCode::BAD_REQUEST,
            Refusal::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Refusal::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            Refusal::Throttled { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::LogsNotAccepted => StatusCode::NOT_IMPLEMENTED,
        }
    }

    /// The OTLP/HTTP failure response: a `google.rpc.Status` body in the
    /// request's encoding (JSON when the request's encoding is unknown).
    pub fn http_response(&self, format: Option<PayloadFormat>) -> Response {
        let (content_type, body) = match format {
            Some(PayloadFormat::Protobuf) => (
                PayloadFormat::Protobuf.content_type(),
                // tonic-types already encoded exactly this google.rpc.Status.
                self.grpc_status().details().to_vec(),
            ),
            Some(PayloadFormat::Json) | None => {
                (PayloadFormat::Json.content_type(), self.status_json())
            }
        };
        let mut response = (
            self.http_status(),
            [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
            body,
        )
            .into_response();
        let headers = response.headers_mut();
        match self {
            Refusal::Throttled { retry_after, .. } => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after_seconds(*retry_after)),
                );
            }
            Refusal::Unauthenticated { .. } => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }

    /// `google.rpc.Status` in the proto3 JSON mapping.
    fn status_json(&self) -> Vec<u8> {
        let mut details = Vec::new();
        if let Refusal::InvalidData { field, description } = self {
            details.push(serde_json::json!({
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": field, "description": description}],
            }));
        }
        if let Refusal::Throttled { retry_after, .. } = self {
            details.push(serde_json::json!({
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": format!("{}s", retry_after.as_secs_f64()),
            }));
        }
        let mut status = serde_json::json!({"code": self.code() as i32, "message": self.message()});
        if !details.is_empty() {
            status["details"] = serde_json::Value::Array(details);
        }
        serde_json::to_vec(&status).unwrap_or_default()
    }
}

/// `Retry-After` carries whole seconds; never advertise 0 (an immediate retry storm).
fn retry_after_seconds(retry_after: Duration) -> u64 {
    retry_after.as_secs_f64().ceil().max(1.0) as u64
}
