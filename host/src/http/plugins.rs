//! `/api/v1/plugins`: what is installed, and what this process serves (operators and admins).

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, Problem};
use super::extract::Operator;
use crate::plugins::ProviderSlot;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_plugins))
}

#[derive(Serialize, ToSchema)]
pub struct PluginList {
    pub items: Vec<PluginView>,
}

/// One installed (provider, version).
#[derive(Serialize, ToSchema)]
pub struct PluginView {
    #[schema(example = "stripe")]
    pub provider: String,
    #[schema(example = "1.2.0")]
    pub version: String,
    /// SHA-256 of the component, `sha256:<hex>`.
    pub digest: String,
    /// The provider's switch (the operator's `host plugin enable|disable`).
    pub enabled: bool,
    /// Whether this process has this version loaded and serving payments.
    pub active: bool,
    /// Why the registry's active version could not be loaded here, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_error: Option<String>,
}

/// Installed plugins, every version, with whether this process serves it.
#[utoipa::path(
    get, path = "/api/v1/plugins", tag = "plugins",
    security(("bearer" = [])),
    responses(
        (status = 200, body = PluginList),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_plugins(State(state): State<AppState>, _operator: Operator) -> Result<Json<PluginList>, ApiError> {
    let records =
        state.providers.registry().list().await.map_err(|e| ApiError::Unavailable(format!("plugin registry: {e}")))?;
    let snapshot = state.providers.snapshot();
    let items = records
        .into_iter()
        .map(|r| {
            let (provider, version) = (r.provider.to_string(), r.version.to_string());
            let load_error = match snapshot.providers.get(&provider) {
                Some(ProviderSlot::Broken { version: v, reason, .. }) if *v == version => Some(reason.clone()),
                _ => None,
            };
            PluginView {
                active: snapshot.serves(&provider, &version),
                provider,
                version,
                digest: r.digest.to_string(),
                enabled: r.enabled,
                load_error,
            }
        })
        .collect();
    Ok(Json(PluginList { items }))
}
