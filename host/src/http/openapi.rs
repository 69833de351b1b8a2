//! The OpenAPI document's frame; paths come from each handler's `#[utoipa::path]`.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::error::{FieldProblem, Problem};

#[derive(OpenApi)]
#[openapi(
    info(title = "Lessor API", description = "Car leasing: auth, leases, payments through sandboxed provider plugins."),
    modifiers(&BearerAuth),
    components(schemas(Problem, FieldProblem)),
    tags(
        (name = "auth", description = "Log in and out"),
        (name = "users", description = "Accounts and roles"),
        (name = "leases", description = "Leases, installment schedules and full-text search"),
        (name = "payments", description = "Payments, refunds, lease payment methods and provider webhooks"),
        (name = "plugins", description = "Installed payment provider plugins"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}
