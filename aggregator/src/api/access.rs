//! The query API's access layer: asks [`QueryAccess`] before any handler runs
//! and answers a refusal as an [`ApiError`] (401 with a Bearer challenge, 403).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;
use crate::auth::{AccessError, QueryAccess};

impl From<AccessError> for ApiError {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::Unauthenticated(message) => ApiError {
                status: StatusCode::UNAUTHORIZED,
                code: "unauthenticated",
                message,
            },
            AccessError::Forbidden(message) => ApiError {
                status: StatusCode::FORBIDDEN,
                code: "forbidden",
                message,
            },
        }
    }
}

/// The axum middleware (`axum::middleware::from_fn_with_state`).
pub async fn enforce(
    State(access): State<Arc<QueryAccess>>,
    request: Request,
    next: Next,
) -> Response {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    match access.check(request.uri().path(), authorization) {
        Ok(()) => next.run(request).await,
        Err(refused) => {
            let challenge = matches!(refused, AccessError::Unauthenticated(_));
            let mut response = ApiError::from(refused).into_response();
            if challenge {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            response
        }
    }
}
