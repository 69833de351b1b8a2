//! `POST /webhooks/{provider}`: a provider's request, handed with its headers and raw body to that
//! provider's plugin through the payments service's `ProviderGateway` (`parse_webhook`), which
//! verifies the signature and normalises its events. Each verified event is applied once
//! (deduplicated by the provider's event id); a bad signature is 400 and changes nothing;
//! an unknown provider is 404. Events the host cannot apply yet (no matching payment, or ahead of
//! it) are answered 409 so the provider delivers them again later, but only within the retry
//! window after the payment (refund) was created (`LESSOR_WEBHOOK_RETRY_WINDOW_SECS`, one hour);
//! after it, and for events about objects Lessor never created, 200 `ignored` (warn log and the
//! `lessor_webhook_events_ignored` counter).
//!
//! A request may carry several events (WIT 0.2.0): each is recorded once, then the host answers
//! the plugin's reply verbatim (a 0.1.0 plugin's request gets the host's `{"status": …}`), with
//! the `lessor-webhook-outcome` header; if any event must be delivered again the whole request is
//! answered 409, and the events already recorded are duplicates next time. A reply outside its
//! bounds (2xx, a visible content type, ≤ 64 KiB, ≤ 100 events) is the plugin's fault: 503, and
//! the reason logged.
//!
//! Before a sandbox is instantiated: requests are counted per provider and client address
//! (429 past `LESSOR_WEBHOOK_RATE_LIMIT` a minute), and a request without the signature header
//! the plugin's manifest declares (400) or with a body past its declared cap (413) is refused.
//! Refusals are counted in `lessor_webhooks_refused_total{provider,reason}`; their log lines are
//! rate-limited.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lessor_payments::{GatewayError, IgnoredReason, NormalizedEvent, WebhookOutcome, WebhookRequest};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::client::ClientAddr;
use super::edge::client_key;
use super::error::{ApiError, Problem};
use crate::plugins::{LoadedPlugin, ProviderUnavailable};
use crate::rate_limit::Verdict;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(receive))
}

#[derive(Serialize, ToSchema)]
pub struct WebhookAck {
    /// `applied`, `ignored` (authentic, nothing to do) or `duplicate`.
    pub status: &'static str,
}

/// Receive a provider's webhook (no bearer token: the plugin verifies the provider's signature).
#[utoipa::path(
    post, path = "/webhooks/{provider}", tag = "payments",
    params(("provider" = String, Path, description = "the provider id, e.g. `stripe`", pattern = r"^[a-z0-9-]{1,64}$")),
    request_body(content = String, description = "the provider's raw payload"),
    responses(
        (status = 200, body = WebhookAck, description = "the events were recorded: the plugin's own reply (any 2xx, its content type and body) if it chose one (WIT 0.2.0), else this; `lessor-webhook-outcome` says `applied`, `ignored` or `duplicate`"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 408, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn receive(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let plugin = state.providers.get(&provider).map_err(|e| match e {
        ProviderUnavailable::Unknown(_) | ProviderUnavailable::Disabled(_) => {
            ApiError::specific(StatusCode::NOT_FOUND, "unknown-provider", format!("no payment provider `{provider}`"))
        }
        broken @ ProviderUnavailable::Broken { .. } => provider_unavailable(broken.to_string()),
    })?;
    let key = format!("{provider}:{}", client_key(client));
    if let Verdict::Limited { retry_after } = state.edge.limiter.hit("webhook", &key, state.edge.limits.webhook).await {
        refused(&state, &provider, "rate_limited");
        return Err(ApiError::TooManyRequests { retry_after });
    }
    let body = precheck(&state, &provider, &plugin, &headers, body).await?;
    let request = WebhookRequest {
        headers: headers
            .iter()
            .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
            .collect(),
        body: body.to_vec(),
        received_at: u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0),
    };
    let batch = match state.payments.parse_webhook(&provider, &request).await {
        Ok(batch) => batch,
        Err(GatewayError::SignatureInvalid) => {
            refused(&state, &provider, "signature_invalid");
            return Err(ApiError::specific(
                StatusCode::BAD_REQUEST,
                "webhook-signature-invalid",
                "the webhook's signature does not verify",
            ));
        }
        Err(GatewayError::InvalidRequest { field, reason }) => {
            refused(&state, &provider, "invalid");
            return Err(ApiError::specific(
                StatusCode::BAD_REQUEST,
                "webhook-invalid",
                format!("the webhook cannot be read: {field}: {reason}"),
            ));
        }
        Err(GatewayError::InputTooLarge(_)) => {
            refused(&state, &provider, "too_large");
            return Err(too_large());
        }
        Err(GatewayError::UnknownProvider(_) | GatewayError::Disabled(_)) => {
            return Err(ApiError::specific(
                StatusCode::NOT_FOUND,
                "unknown-provider",
                format!("no payment provider `{provider}`"),
            ));
        }
        Err(other) => return Err(provider_unavailable(format!("webhook of {provider}: {other}"))),
    };
    let mut answer = Answer::Ignored;
    let mut deliver_again = false;
    for event in &batch.events {
        let outcome = state.payments.apply_provider_event(&provider, event).await?;
        tracing::info!(provider, event_id = event.event_id, ?outcome, "provider event");
        match ack_of(&state, &provider, event, &outcome) {
            Some(ack) => answer = answer.max(ack),
            None => deliver_again = true,
        }
    }
    if deliver_again {
        return Err(ApiError::Specific {
            status: StatusCode::CONFLICT,
            slug: "event-not-applicable-yet",
            detail: "no payment matches this event yet; deliver it again later".into(),
            retry_after: Some(std::time::Duration::from_secs(60)),
        });
    }
    let mut response = match batch.reply {
        // The plugin's answer, verbatim (checked by the gateway: 2xx, a sane content type, ≤ 64 KiB).
        Some(reply) => {
            let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
            let mut response = (status, reply.body).into_response();
            if let Ok(value) = HeaderValue::from_str(&reply.content_type) {
                response.headers_mut().insert(header::CONTENT_TYPE, value);
            }
            response
        }
        None => Json(WebhookAck { status: answer.as_str() }).into_response(),
    };
    response.headers_mut().insert(OUTCOME_HEADER, HeaderValue::from_static(answer.as_str()));
    Ok(response)
}

/// What the host made of a webhook request (`applied`, `ignored`, `duplicate`), beside the
/// plugin's own reply body.
pub const OUTCOME_HEADER: &str = "lessor-webhook-outcome";

/// What the host answers for a request's events: the strongest of them (one applied → `applied`;
/// all seen before → `duplicate`; no events, or nothing to do → `ignored`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Answer {
    Ignored,
    Duplicate,
    Applied,
}

impl Answer {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ignored => "ignored",
            Self::Duplicate => "duplicate",
            Self::Applied => "applied",
        }
    }
}

/// The answer one event's outcome asks for; `None`: it must be delivered again (409).
fn ack_of(state: &AppState, provider: &str, event: &NormalizedEvent, outcome: &WebhookOutcome) -> Option<Answer> {
    Some(match outcome {
        WebhookOutcome::Applied { .. } | WebhookOutcome::RefundApplied { .. } => Answer::Applied,
        WebhookOutcome::Ignored { reason: IgnoredReason::PastWindow, .. } => {
            state.metrics.webhook_ignored(provider, "past_window");
            Answer::Ignored
        }
        WebhookOutcome::Ignored { .. } => Answer::Ignored,
        WebhookOutcome::Unmatched => {
            tracing::warn!(
                provider,
                event_id = event.event_id,
                kind = event.kind.as_str(),
                "webhook about nothing Lessor created (or past the retry window); ignored"
            );
            state.metrics.webhook_ignored(provider, "unmatched");
            Answer::Ignored
        }
        WebhookOutcome::Duplicate => Answer::Duplicate,
        WebhookOutcome::UnknownPayment | WebhookOutcome::Early { .. } => return None,
    })
}

fn provider_unavailable(cause: String) -> ApiError {
    ApiError::ServerError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        slug: "provider-unavailable",
        detail: "the payment provider cannot take this webhook now; deliver it again later",
        cause,
        retry_after: Some(std::time::Duration::from_secs(60)),
    }
}

fn too_large() -> ApiError {
    ApiError::specific(StatusCode::PAYLOAD_TOO_LARGE, "webhook-too-large", "the webhook's body is larger than accepted")
}

/// Counts a refusal; logs it unless a line for this provider and reason was written recently.
fn refused(state: &AppState, provider: &str, reason: &'static str) {
    state.metrics.webhook_refused(provider, reason);
    if let Some(suppressed) = state.edge.webhook_log.admit(&format!("{provider}:{reason}")) {
        tracing::warn!(provider, reason, suppressed, "webhook refused");
    }
}

/// What the plugin declared a genuine webhook has, checked before its sandbox exists; returns
/// the body, read up to the cap.
async fn precheck(
    state: &AppState,
    provider: &str,
    plugin: &LoadedPlugin,
    headers: &HeaderMap,
    body: Body,
) -> Result<Bytes, ApiError> {
    let rules = plugin.webhook_rules();
    if let Some(name) = &rules.signature_header
        && !headers.contains_key(name.as_str())
    {
        refused(state, provider, "signature_missing");
        return Err(ApiError::specific(
            StatusCode::BAD_REQUEST,
            "webhook-signature-invalid",
            format!("the webhook carries no `{name}` header"),
        ));
    }
    let cap = rules.max_body_bytes.unwrap_or(usize::MAX).min(state.edge.max_webhook_body);
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > cap as u64) {
        refused(state, provider, "too_large");
        return Err(too_large());
    }
    axum::body::to_bytes(body, cap).await.map_err(|e| {
        let past_cap = std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if past_cap {
            refused(state, provider, "too_large");
            too_large()
        } else {
            ApiError::BadRequest("could not read the request body".into())
        }
    })
}
