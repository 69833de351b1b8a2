//! The OpenAPI document's frame; paths come from each handler's `#[utoipa::path]`.

use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::ParameterIn;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ArrayItems, KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{Modify, OpenApi};

use super::error::{FieldProblem, Problem};

#[derive(OpenApi)]
#[openapi(
    info(title = "Lessor API", description = "Car leasing: auth, leases, payments through sandboxed provider plugins."),
    modifiers(&BearerAuth),
    components(schemas(Problem, FieldProblem, crate::http::payments::SepaMandateRequest)),
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

/// Responses that come from the shared mechanisms rather than from a handler, added to every
/// operation those mechanisms guard, so the document says everything a route can answer:
///
/// - a bearer token (`CurrentUser`, `Operator`, `Admin`): 401;
/// - a JSON body (`ApiJson`): 400 malformed, 413 too large, 415 not JSON, 422 a field, and any
///   read body (webhooks too): 408 when it does not arrive within the body timeout;
/// - a path parameter: 422 when it is not of its type;
/// - the rate limits and the database behind every route under `/api`, `/auth`, `/webhooks`:
///   429 with `Retry-After`, 503 while a backend is down.
///
/// Handlers document only their own answers (201, 403, 404, 409, …).
pub fn add_shared_responses(doc: &mut utoipa::openapi::OpenApi) {
    if let Some(components) = doc.components.as_mut() {
        components.schemas.values_mut().for_each(pin_uuids);
    }
    for (path, item) in doc.paths.paths.iter_mut() {
        let guarded = ["/api/", "/auth/", "/webhooks/"].iter().any(|prefix| path.starts_with(prefix));
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
            &mut item.head,
            &mut item.options,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten() {
            let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
            let has_body = operation.request_body.is_some();
            let reads_body = has_body || path.starts_with("/webhooks/");
            for parameter in operation.parameters.iter_mut().flatten() {
                parameter.schema.iter_mut().for_each(pin_uuids);
            }
            for content in operation.request_body.iter_mut().flat_map(|b| b.content.values_mut()) {
                content.schema.iter_mut().for_each(pin_uuids);
            }
            let parameters_in =
                |place: ParameterIn| operation.parameters.iter().flatten().any(|p| p.parameter_in == place);
            let (in_path, in_query) = (parameters_in(ParameterIn::Path), parameters_in(ParameterIn::Query));
            let mut add = |status: &str, description: &str| {
                operation.responses.responses.entry(status.to_owned()).or_insert_with(|| problem(status, description));
            };
            if secured {
                add("401", "No valid bearer token: missing, malformed, expired or revoked");
            }
            if has_body {
                add("400", "The body is not well-formed (malformed JSON) or a header is invalid");
                add("413", "The body is larger than the configured limit");
                add("415", "The body is not of the declared media type");
                add("422", "A field is missing, of the wrong type or invalid; `errors` names each by JSON path");
            }
            if reads_body {
                add("408", "The body did not arrive within the body timeout");
            }
            if in_path {
                add("422", "A path parameter is not of its type");
            }
            if in_query {
                add("400", "The query string is malformed (e.g. a parameter given twice)");
                add("422", "A query parameter is invalid; `errors` names it");
            }
            if guarded {
                add("429", "Too many requests from this token or address; retry after `Retry-After` seconds");
                add("503", "A backend (database, Redis) is unavailable; retry later");
            }
        }
    }
}

/// The UUID pattern beside every `format: uuid`: not every client or test generator enforces
/// formats, and the server accepts only this form.
const UUID_PATTERN: &str = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

fn pin_uuids(schema: &mut RefOr<Schema>) {
    let RefOr::T(schema) = schema else { return };
    match schema {
        Schema::Object(object) => {
            if matches!(&object.format, Some(SchemaFormat::KnownFormat(KnownFormat::Uuid))) {
                object.pattern.get_or_insert_with(|| UUID_PATTERN.to_owned());
            }
            object.properties.values_mut().for_each(pin_uuids);
        }
        Schema::Array(array) => {
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                pin_uuids(items);
            }
        }
        Schema::OneOf(one_of) => one_of.items.iter_mut().for_each(pin_uuids),
        Schema::AllOf(all_of) => all_of.items.iter_mut().for_each(pin_uuids),
        Schema::AnyOf(any_of) => any_of.items.iter_mut().for_each(pin_uuids),
        _ => {}
    }
}

fn problem(status: &str, description: &str) -> RefOr<Response> {
    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build();
    let mut response = ResponseBuilder::new().description(description).content("application/problem+json", content);
    if status == "429" || status == "503" {
        let seconds = ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)).build();
        response = response.header(
            "retry-after",
            HeaderBuilder::new().schema(seconds).description(Some("seconds to wait before retrying")).build(),
        );
    }
    RefOr::T(response.build())
}
