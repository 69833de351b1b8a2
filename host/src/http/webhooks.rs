//! `POST /webhooks/{provider}`: a provider's event, handed with its headers and raw body to that
//! provider's plugin, which verifies the signature and normalises it. A verified event is applied
//! once (deduplicated by the provider's event id); a bad signature is 400 and changes nothing;
//! an unknown provider is 404. Events the host cannot apply yet (no matching payment, or ahead of
//! it) are answered 409 so the provider delivers them again later, but only within the retry
//! window after the payment (refund) was created (`LESSOR_WEBHOOK_RETRY_WINDOW_SECS`, one hour);
//! after it, and for events about objects Lessor never created, 200 `ignored` (warn log and the
//! `lessor_webhook_events_ignored` counter).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use lessor_payments::{IgnoredReason, WebhookOutcome};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, Problem};
use crate::payments::gateway::normalized;
use crate::plugins::types::{ProviderError, WebhookRequest};
use crate::plugins::{PluginCallError, ProviderUnavailable};

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
        (status = 200, body = WebhookAck),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn receive(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<WebhookAck>, ApiError> {
    let plugin = state.providers.get(&provider).map_err(|e| match e {
        ProviderUnavailable::Unknown(_) | ProviderUnavailable::Disabled(_) => {
            ApiError::specific(StatusCode::NOT_FOUND, "unknown-provider", format!("no payment provider `{provider}`"))
        }
        broken @ ProviderUnavailable::Broken { .. } => ApiError::Unavailable(broken.to_string()),
    })?;
    let request = WebhookRequest {
        headers: headers
            .iter()
            .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
            .collect(),
        body: body.to_vec(),
        received_at: u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0),
    };
    let event = match plugin.parse_webhook(request).await {
        Ok(Some(event)) => event,
        Ok(None) => return Ok(Json(WebhookAck { status: "ignored" })),
        Err(PluginCallError::Provider(ProviderError::SignatureInvalid)) => {
            tracing::warn!(provider, "webhook refused: signature invalid");
            return Err(ApiError::specific(
                StatusCode::BAD_REQUEST,
                "webhook-signature-invalid",
                "the webhook's signature does not verify",
            ));
        }
        Err(PluginCallError::Provider(ProviderError::InvalidRequest { field, reason })) => {
            return Err(ApiError::specific(
                StatusCode::BAD_REQUEST,
                "webhook-invalid",
                format!("the webhook cannot be read: {field}: {reason}"),
            ));
        }
        Err(e @ PluginCallError::InputTooLarge { .. }) => {
            return Err(ApiError::specific(StatusCode::PAYLOAD_TOO_LARGE, "webhook-too-large", e.to_string()));
        }
        Err(other) => return Err(ApiError::Unavailable(format!("webhook of {provider}: {other}"))),
    };
    let event = normalized(event);
    let outcome = state.payments.apply_provider_event(&provider, &event).await?;
    tracing::info!(provider, event_id = event.event_id, ?outcome, "provider event");
    match outcome {
        WebhookOutcome::Applied { .. } | WebhookOutcome::RefundApplied { .. } => {
            Ok(Json(WebhookAck { status: "applied" }))
        }
        WebhookOutcome::Ignored { reason: IgnoredReason::PastWindow, .. } => {
            state.metrics.webhook_ignored(&provider, "past_window");
            Ok(Json(WebhookAck { status: "ignored" }))
        }
        WebhookOutcome::Ignored { .. } => Ok(Json(WebhookAck { status: "ignored" })),
        WebhookOutcome::Unmatched => {
            tracing::warn!(
                provider,
                event_id = event.event_id,
                kind = event.kind.as_str(),
                "webhook about nothing Lessor created (or past the retry window); ignored"
            );
            state.metrics.webhook_ignored(&provider, "unmatched");
            Ok(Json(WebhookAck { status: "ignored" }))
        }
        WebhookOutcome::Duplicate => Ok(Json(WebhookAck { status: "duplicate" })),
        WebhookOutcome::UnknownPayment | WebhookOutcome::Early { .. } => Err(ApiError::Specific {
            status: StatusCode::CONFLICT,
            slug: "event-not-applicable-yet",
            detail: "no payment matches this event yet; deliver it again later".into(),
            retry_after: Some(std::time::Duration::from_secs(60)),
        }),
    }
}
