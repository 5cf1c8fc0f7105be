//! The OpenAPI 3.1 document, generated from the handlers' annotations and
//! served at `GET /openapi.json`.

use axum::Router;
use axum::routing::get;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::AppState;
use crate::routes::subscriptions::{actions, crud, operations};
use crate::routes::{audit, catalog, health, reconciliation};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        // Every authenticated operation can answer these; declaring them
        // once here keeps the per-handler annotations about the handler.
        let common = [
            (
                "400",
                "The body, the query string or a header could not be parsed",
            ),
            ("401", "Missing or unknown bearer token"),
            ("403", "The token lacks a scope"),
            ("415", "The body is not application/json"),
            ("429", "This token exceeded its request rate"),
            ("431", "Request headers too large"),
            ("503", "Busy, timed out, or the database is unavailable"),
        ];
        for item in openapi.paths.paths.values_mut() {
            let ops = [
                item.get.as_mut(),
                item.post.as_mut(),
                item.patch.as_mut(),
                item.delete.as_mut(),
                item.put.as_mut(),
            ];
            for op in ops.into_iter().flatten() {
                if op.security.is_none() {
                    continue;
                }
                for (code, what) in common {
                    op.responses
                        .responses
                        .entry(code.to_owned())
                        .or_insert_with(|| {
                            utoipa::openapi::RefOr::T(
                                utoipa::openapi::ResponseBuilder::new()
                                    .description(what)
                                    .content(
                                        crate::problem::PROBLEM_JSON,
                                        utoipa::openapi::ContentBuilder::new()
                                            .schema(Some(utoipa::openapi::Ref::from_schema_name(
                                                "Problem",
                                            )))
                                            .build(),
                                    )
                                    .build(),
                            )
                        });
                }
            }
        }
    }
}

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Switchboard", description = "One normalized webhook subscription, many providers."),
    paths(
        crud::create, crud::list, crud::fetch, crud::patch, crud::remove, crud::preview,
        actions::enable, actions::disable, actions::rotate_secret, actions::reconcile,
        operations::operations, audit::list, reconciliation::status,
        catalog::providers, catalog::events, health::healthz, health::readyz,
    ),
    components(schemas(
        crate::dto::SubscriptionRequest, crate::dto::AuthRequest, crate::dto::FilterBody,
        crate::dto::SubscriptionView, crate::dto::AuthView, crate::dto::NativeView,
        crate::dto::SubscriptionPage, crate::problem::Problem,
        actions::RotateRequest, actions::RotatedSecret, operations::OperationView, operations::OperationPage, audit::AuditPage,
        catalog::ProviderList, catalog::ProviderView, catalog::EventList, catalog::EventView,
        reconciliation::ReconciliationView, reconciliation::PassView,
        reconciliation::ProviderProgress, reconciliation::AccountView,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "subscriptions", description = "Normalized webhook subscriptions"),
        (name = "catalog", description = "Providers and events"),
        (name = "audit", description = "The audit log (admin)"),
        (name = "reconciliation", description = "Progress of the background reconciliation pass (admin)"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
pub struct ApiDoc;

/// `GET /openapi.json`.
pub fn router() -> Router<AppState> {
    Router::new().route(
        "/openapi.json",
        get(|| async { axum::Json(ApiDoc::openapi()) }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_describes_its_precondition_and_every_refusal_is_a_problem() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let patch = &doc["paths"]["/v1/subscriptions/{id}"]["patch"];
        let if_match = patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "If-Match")
            .expect("If-Match is a parameter of PATCH");
        assert_eq!(if_match["in"], "header");
        for code in ["400", "404", "412", "422", "431"] {
            assert!(
                patch["responses"][code]["content"][crate::problem::PROBLEM_JSON].is_object(),
                "PATCH {code}"
            );
        }
        // The API's operations (not the health probes, whose 503 is a
        // readiness answer, not a refusal).
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if op.get("security").is_none() {
                    continue;
                }
                for (code, resp) in op["responses"].as_object().unwrap() {
                    if code.starts_with('4') || code.starts_with('5') {
                        assert!(
                            resp["content"][crate::problem::PROBLEM_JSON].is_object(),
                            "{method} {path} {code} is not problem+json"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_document_lists_every_route() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let mut listed: Vec<String> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .keys()
                    .map(move |method| format!("{method} {path}"))
            })
            .collect();
        listed.sort();
        assert_eq!(
            listed,
            [
                "delete /v1/subscriptions/{id}",
                "get /healthz",
                "get /readyz",
                "get /v1/audit",
                "get /v1/events",
                "get /v1/providers",
                "get /v1/reconciliation",
                "get /v1/subscriptions",
                "get /v1/subscriptions/{id}",
                "get /v1/subscriptions/{id}/operations",
                "patch /v1/subscriptions/{id}",
                "post /v1/subscriptions",
                "post /v1/subscriptions/preview",
                "post /v1/subscriptions/{id}/disable",
                "post /v1/subscriptions/{id}/enable",
                "post /v1/subscriptions/{id}/reconcile",
                "post /v1/subscriptions/{id}/rotate-secret",
            ]
        );
    }
}
