//! One error type for the HTTP API, answered as RFC 9457 `application/problem+json`.
//! 5xx bodies are generic; their cause is logged with the request id, never sent. A 5xx
//! problem carries the request id, so a client can quote it and an operator find the log line.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lessor_auth::{AuthError, CreateUserError};
use serde::Serialize;
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the kind of problem, e.g. `/problems/token-expired`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// For validation problems: each offending field (JSON path) with its reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldProblem>,
    /// On 5xx: the request's `X-Request-Id`, also on the server's log line with the cause.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: String,
    pub reason: String,
}

impl FieldProblem {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { field: field.into(), reason: reason.into() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request could not be read (malformed JSON, bad header).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 401: no usable credentials; `kind` is the problem slug.
    #[error("unauthorized ({kind}): {detail}")]
    Unauthorized { kind: &'static str, detail: &'static str },
    /// 403: authenticated, but the role does not allow this.
    #[error("forbidden")]
    Forbidden,
    /// 404
    #[error("not found: {0}")]
    NotFound(String),
    /// 405: the route exists, but not for this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409: the request conflicts with the current state.
    #[error("conflict: {0}")]
    Conflict(String),
    /// 413: the body is larger than `max_body_bytes`.
    #[error("payload too large")]
    PayloadTooLarge,
    /// 415: the body is not `application/json`.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// 422: the body was read but its content is invalid.
    #[error("validation failed")]
    Validation(Vec<FieldProblem>),
    /// 429: slow down; retry after the given time.
    #[error("too many requests")]
    TooManyRequests { retry_after: Duration },
    /// 503: a backend (database, Redis) is unavailable. The cause is logged, not sent.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// 500: a bug or an unexpected failure. The cause is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
    /// A 4xx (or a 503 the client can act on) with its own problem type (`/problems/<slug>`)
    /// and a detail for the client. (Given a 5xx status, the detail is logged and a generic
    /// one sent instead.)
    #[error("{slug}: {detail}")]
    Specific { status: StatusCode, slug: &'static str, detail: String, retry_after: Option<Duration> },
    /// A 5xx with its own stable problem type: `detail` is fixed text for the client, `cause`
    /// (plugin, sandbox, storage text) goes only to the log.
    #[error("{slug}: {cause}")]
    ServerError {
        status: StatusCode,
        slug: &'static str,
        detail: &'static str,
        cause: String,
        retry_after: Option<Duration>,
    },
}

const GENERIC_5XX: &str = "the server could not complete the request; retry later";

impl ApiError {
    pub fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Validation(vec![FieldProblem::new(field, reason)])
    }

    /// A client error with its own problem type.
    pub fn specific(status: StatusCode, slug: &'static str, detail: impl Into<String>) -> Self {
        Self::Specific { status, slug, detail: detail.into(), retry_after: None }
    }

    /// The field problems of a validation error (empty for any other error).
    pub fn into_field_problems(self) -> Vec<FieldProblem> {
        match self {
            Self::Validation(problems) => problems,
            _ => Vec::new(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Specific { status, .. } | Self::ServerError { status, .. } => *status,
        }
    }

    fn slug(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad-request",
            Self::Unauthorized { kind, .. } => kind,
            Self::Forbidden => "forbidden",
            Self::NotFound(_) => "not-found",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::Conflict(_) => "conflict",
            Self::PayloadTooLarge => "payload-too-large",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::Validation(_) => "validation",
            Self::TooManyRequests { .. } => "too-many-requests",
            Self::Unavailable(_) => "service-unavailable",
            Self::Internal(_) => "internal",
            Self::Specific { slug, .. } | Self::ServerError { slug, .. } => slug,
        }
    }

    fn detail(&self) -> Option<String> {
        match self {
            Self::Specific { status, .. } if status.is_server_error() => Some(GENERIC_5XX.into()),
            Self::BadRequest(d) | Self::NotFound(d) | Self::Conflict(d) | Self::Specific { detail: d, .. } => {
                Some(d.clone())
            }
            Self::ServerError { detail, .. } => Some((*detail).to_owned()),
            Self::Unauthorized { detail, .. } => Some((*detail).to_owned()),
            Self::Forbidden => Some("your role does not allow this".into()),
            Self::MethodNotAllowed => Some("this route does not accept that method".into()),
            Self::PayloadTooLarge => Some("the request body exceeds the size limit".into()),
            Self::UnsupportedMediaType => Some("send the body as application/json".into()),
            Self::Validation(_) => Some("the request has invalid fields".into()),
            Self::TooManyRequests { retry_after } => Some(format!("retry in {} s", retry_after.as_secs().max(1))),
            Self::Unavailable(_) => Some("a backend is unavailable; retry later".into()),
            Self::Internal(_) => None,
        }
    }

    pub fn problem(&self) -> Problem {
        let status = self.status();
        Problem {
            kind: format!("/problems/{}", self.slug()),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: self.detail(),
            errors: match self {
                Self::Validation(fields) => fields.clone(),
                _ => Vec::new(),
            },
            // On 5xx, the id a client quotes so an operator finds the logged cause.
            request_id: status.is_server_error().then(super::observe::current_request_id).flatten(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            Self::Internal(cause) => tracing::error!(%cause, "request failed"),
            Self::Unavailable(cause) => tracing::warn!(%cause, "backend unavailable"),
            Self::ServerError { slug, cause, .. } => tracing::warn!(%cause, problem = slug, "request failed"),
            Self::Specific { status, slug, detail, .. } if status.is_server_error() => {
                tracing::warn!(cause = %detail, problem = slug, "request failed")
            }
            _ => {}
        }
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (self.status(), body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        match &self {
            Self::Unauthorized { kind, .. } => {
                let value = if *kind == "unauthenticated" { "Bearer" } else { "Bearer error=\"invalid_token\"" };
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(value));
            }
            Self::TooManyRequests { retry_after }
            | Self::Specific { retry_after: Some(retry_after), .. }
            | Self::ServerError { retry_after: Some(retry_after), .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after.as_secs().max(1)));
            }
            _ => {}
        }
        response
    }
}

/// 503 with `Retry-After`: every password hashing slot stayed taken for the whole wait.
fn busy(retry_after: Duration) -> ApiError {
    ApiError::Specific {
        status: StatusCode::SERVICE_UNAVAILABLE,
        slug: "login-busy",
        detail: "the server is busy checking passwords; retry shortly".into(),
        retry_after: Some(retry_after),
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::InvalidCredentials => {
                Self::Unauthorized { kind: "invalid-credentials", detail: "invalid e-mail or password" }
            }
            AuthError::TokenExpired => {
                Self::Unauthorized { kind: "token-expired", detail: "the access token has expired" }
            }
            AuthError::TokenInvalid => {
                Self::Unauthorized { kind: "token-invalid", detail: "the access token is not valid" }
            }
            AuthError::TokenRevoked => {
                Self::Unauthorized { kind: "token-revoked", detail: "the access token has been revoked" }
            }
            AuthError::TooManyAttempts { retry_after } => Self::TooManyRequests { retry_after },
            AuthError::Busy { retry_after } => busy(retry_after),
            AuthError::Unavailable(cause) => Self::Unavailable(cause),
            AuthError::Internal(cause) => Self::Internal(cause),
        }
    }
}

impl From<CreateUserError> for ApiError {
    fn from(e: CreateUserError) -> Self {
        match e {
            CreateUserError::Email(reason) => Self::field("email", reason.to_string()),
            CreateUserError::Password(reason) => Self::field("password", reason.to_string()),
            CreateUserError::DuplicateEmail => Self::Conflict("a user with this e-mail already exists".into()),
            CreateUserError::Busy { retry_after } => busy(retry_after),
            CreateUserError::Internal(cause) => Self::Internal(cause),
        }
    }
}
