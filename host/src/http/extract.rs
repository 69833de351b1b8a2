//! Extractors that turn request input into typed values or an [`ApiError`].

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use lessor_auth::{Principal, Role};
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::{ApiError, FieldProblem};

/// A JSON body. Unlike `axum::Json`, every rejection is a problem document: 415 for another
/// media type, 413 past the body limit, 400 for malformed JSON, 422 naming the field whose
/// value does not fit.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest("could not read the request body".into())
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Deserialises JSON, naming the field (as a JSON path) that failed.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = deserialize_named(&mut de)?;
    de.end().map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))?;
    Ok(value)
}

/// Reads a typed value out of an already parsed JSON document, naming the failing field.
pub fn from_json_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    deserialize_named(value)
}

fn deserialize_named<'de, D, T>(de: D) -> Result<T, ApiError>
where
    D: serde::Deserializer<'de, Error = serde_json::Error>,
    T: serde::Deserialize<'de>,
{
    use serde_json::error::Category;
    let err = match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(value) => return Ok(value),
        Err(err) => err,
    };
    let inner = err.inner();
    if !matches!(inner.classify(), Category::Data) {
        return Err(ApiError::BadRequest(format!("malformed JSON: {inner}")));
    }
    let message = inner.to_string();
    let reason = message.split(" at line ").next().unwrap_or(&message).to_owned();
    let mut field = err.path().to_string();
    // "missing field `x`" and "unknown field `x`, expected …" are reported at the parent;
    // name the field itself.
    let named = reason
        .strip_prefix("missing field `")
        .or_else(|| reason.strip_prefix("unknown field `"))
        .and_then(|r| r.split('`').next());
    if let Some(name) = named.filter(|name| field.rsplit('.').next() != Some(name)) {
        field = if field == "." { name.to_owned() } else { format!("{field}.{name}") };
    }
    if field == "." {
        field = "body".into();
    }
    Err(ApiError::Validation(vec![FieldProblem::new(field, reason)]))
}

/// A UUID from a path or query parameter, in the one form the API documents
/// (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, any case); anything else is a 422 naming `field`.
pub fn uuid_param(raw: &str, field: &str) -> Result<uuid::Uuid, ApiError> {
    let hyphenated = raw.len() == 36
        && raw.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    hyphenated
        .then(|| raw.parse().ok())
        .flatten()
        .ok_or_else(|| ApiError::field(field, "must be a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"))
}

/// The caller, authenticated by a bearer token whose session is still open.
pub struct CurrentUser(pub Principal);

/// A caller with the operator or admin role.
pub struct Operator(pub Principal);

/// A caller with the admin role.
pub struct Admin(pub Principal);

fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let missing = ApiError::Unauthorized { kind: "unauthenticated", detail: "send `Authorization: Bearer <token>`" };
    let value = parts.headers.get(header::AUTHORIZATION).ok_or(missing)?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::Unauthorized { kind: "token-invalid", detail: "the access token is not valid" })?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::Unauthorized { kind: "unauthenticated", detail: "send `Authorization: Bearer <token>`" });
    }
    Ok(token.trim())
}

async fn authenticate(parts: &mut Parts, state: &AppState, required: Role) -> Result<Principal, ApiError> {
    if let Some(principal) = parts.extensions.get::<Principal>() {
        return check_role(principal.clone(), required);
    }
    let principal = state.auth.authenticate(bearer_token(parts)?).await?;
    parts.extensions.insert(principal.clone());
    check_role(principal, required)
}

fn check_role(principal: Principal, required: Role) -> Result<Principal, ApiError> {
    if principal.role.grants(required) { Ok(principal) } else { Err(ApiError::Forbidden) }
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        authenticate(parts, state, Role::Customer).await.map(Self)
    }
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        authenticate(parts, state, Role::Operator).await.map(Self)
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        authenticate(parts, state, Role::Admin).await.map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        inner: Inner,
    }
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        year: u16,
    }

    fn fields(e: ApiError) -> Vec<FieldProblem> {
        match e {
            ApiError::Validation(f) => f,
            other => panic!("expected validation, got {other:?}"),
        }
    }

    #[test]
    fn names_the_nested_field() {
        let f = fields(parse_json::<Outer>(br#"{"inner": {"year": "soon"}}"#).unwrap_err());
        assert_eq!(f[0].field, "inner.year");
        let f = fields(parse_json::<Outer>(br#"{"inner": {}}"#).unwrap_err());
        assert_eq!(f[0].field, "inner.year");
        assert!(f[0].reason.contains("missing field"));
    }

    #[test]
    fn names_an_unknown_field_once() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Strict {
            status: String,
        }
        let f = fields(parse_json::<Strict>(br#"{"status": "x", "deposit": 1}"#).unwrap_err());
        assert_eq!(f[0].field, "deposit");
    }

    #[test]
    fn malformed_json_is_a_bad_request() {
        assert!(matches!(parse_json::<Outer>(b"{"), Err(ApiError::BadRequest(_))));
        assert!(matches!(parse_json::<Outer>(br#"{"inner":{"year":1}} trailing"#), Err(ApiError::BadRequest(_))));
    }
}
