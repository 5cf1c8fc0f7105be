//! The OpenAPI 3.1 document, generated from the handlers' annotations and
//! served at `GET /openapi.json`: one unique, descriptive `operationId` per
//! operation, each parameter where it is sent, and every answer described
//! (refusals as `application/problem+json`), so that independent generators
//! build working clients from it (`crates/server/tests/openapi_client.rs`).

use std::collections::BTreeMap;

use axum::Router;
use axum::routing::get;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{Schema, SchemaType};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, RefOr, Required, Type};
use utoipa::{IntoResponses, Modify, OpenApi};

use crate::AppState;
use crate::routes::subscriptions::{actions, crud, keyed, operations};
use crate::routes::{audit, catalog, deliveries, health, reconciliation};

/// A problem+json answer with this description.
fn problem_response(description: &str) -> RefOr<Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                crate::problem::PROBLEM_JSON,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build(),
    )
}

/// The answers every change that reaches a provider can give besides its
/// own (`responses(ChangeProblems, …)`; a handler's own tuple for the same
/// status replaces the generic description).
pub struct ChangeProblems;

impl IntoResponses for ChangeProblems {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        [
            (
                "409",
                "Another change of this subscription is in progress (for a POST, or a request with the same Idempotency-Key)",
            ),
            ("422", "The provider rejected the change"),
            (
                "502",
                "A provider failed, answered unexpectedly or refused Switchboard's credentials",
            ),
            ("504", "A provider did not answer in time"),
        ]
        .into_iter()
        .map(|(code, what)| (code.to_owned(), problem_response(what)))
        .collect()
    }
}

/// Every authenticated operation can answer these; declaring them once
/// keeps the per-handler annotations about the handler.
const COMMON: [(&str, &str); 7] = [
    (
        "400",
        "The body, the query string or a header could not be parsed",
    ),
    ("401", "Missing or unknown bearer token"),
    ("403", "The token lacks a scope"),
    ("429", "This token exceeded its request rate"),
    ("431", "Request headers too large"),
    ("500", "Internal error"),
    (
        "503",
        "Busy, timed out, a provider is rate limiting, or the database is unavailable",
    ),
];

/// What an operation with a request body can answer besides.
const WITH_BODY: [(&str, &str); 2] = [
    ("413", "The body is larger than `limits.body_bytes`"),
    ("415", "The body is not JSON"),
];

/// What every POST can answer because of its `Idempotency-Key`
/// (`crate::idempotency`).
const IDEMPOTENT: [(&str, &str); 2] = [
    (
        "409",
        "A request with this Idempotency-Key is still in progress",
    ),
    (
        "422",
        "This Idempotency-Key was used with a different request",
    ),
];

/// What holds for every operation, applied once to the whole document: the
/// bearer scheme, the common refusals, the `Idempotency-Key` of POSTs,
/// optional bodies and the headers answers carry.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        for item in openapi.paths.paths.values_mut() {
            if let Some(op) = item.post.as_mut() {
                idempotent(op);
            }
            let ops = [
                item.get.as_mut(),
                item.post.as_mut(),
                item.patch.as_mut(),
                item.delete.as_mut(),
                item.put.as_mut(),
            ];
            for op in ops.into_iter().flatten() {
                absent_not_null(op);
                if op.security.is_some() {
                    let body = op.request_body.is_some().then_some(WITH_BODY);
                    for (code, what) in COMMON.into_iter().chain(body.into_iter().flatten()) {
                        op.responses
                            .responses
                            .entry(code.to_owned())
                            .or_insert_with(|| problem_response(what));
                    }
                }
                response_headers(op);
            }
        }
    }
}

/// The `Idempotency-Key` header every POST takes, and its refusals.
fn idempotent(op: &mut Operation) {
    let key = ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "1 to 255 visible ASCII characters; the same key with the same request replays the first answer for 24 h",
        ))
        .schema(Some(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(255)),
        ))
        .build();
    op.parameters.get_or_insert_with(Vec::new).push(key);
    for (code, what) in IDEMPOTENT {
        op.responses
            .responses
            .entry(code.to_owned())
            .or_insert_with(|| problem_response(what));
    }
}

/// An optional request body is sent or left out, never `null`: utoipa
/// documents an `Option<T>` body as `null | T`, and generated clients then
/// send `null`, which no handler takes for "no body".
fn absent_not_null(op: &mut Operation) {
    let Some(body) = op.request_body.as_mut() else {
        return;
    };
    if body.required == Some(Required::True) {
        return;
    }
    for content in body.content.values_mut() {
        let Some(RefOr::T(Schema::OneOf(one_of))) = &content.schema else {
            continue;
        };
        let not_null: Vec<_> = one_of.items.iter().filter(|s| !is_null(s)).collect();
        if let [only] = not_null[..] {
            content.schema = Some(only.clone());
        }
    }
}

/// Whether `schema` is `{"type": "null"}`.
fn is_null(schema: &RefOr<Schema>) -> bool {
    matches!(schema, RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Null))
}

/// The headers answers carry by construction: every subscription answered
/// in full has its version as `ETag` (`with_etag`), every `201` and `202`
/// names the subscription created or still being changed in `Location`,
/// and every `429` and `503` refusal says when to retry.
fn response_headers(op: &mut Operation) {
    const ETAG: (&str, &str) = (
        "ETag",
        "The subscription's version; send it as If-Match to change this version only",
    );
    const LOCATION: (&str, &str) = ("Location", "The subscription's URL");
    const RETRY_AFTER: (&str, &str) = ("Retry-After", "Seconds to wait before retrying");
    for (code, response) in op.responses.responses.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        let shows_subscription = response.content.values().any(|c| {
            matches!(&c.schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/SubscriptionView"))
        });
        let headers: &[(&str, &str)] = match code.as_str() {
            "200" if shows_subscription => &[ETAG],
            "201" => &[ETAG, LOCATION],
            "202" => &[LOCATION],
            "429" | "503" if response.content.contains_key(crate::problem::PROBLEM_JSON) => {
                &[RETRY_AFTER]
            }
            _ => &[],
        };
        for (name, what) in headers {
            response
                .headers
                .entry((*name).to_owned())
                .or_insert_with(|| {
                    HeaderBuilder::new()
                        .schema(utoipa::openapi::ObjectBuilder::new().schema_type(Type::String))
                        .description(Some(*what))
                        .build()
                });
        }
    }
}

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Switchboard", description = "One normalized webhook subscription, many providers."),
    paths(
        crud::create, crud::list, crud::fetch, crud::patch, crud::remove, crud::preview,
        keyed::put_by_key, keyed::get_by_key, keyed::delete_by_key,
        actions::enable, actions::disable, actions::rotate_secret, actions::reconcile,
        operations::operations, audit::list, reconciliation::status,
        deliveries::list, deliveries::fetch, deliveries::redeliver, deliveries::replay,
        deliveries::send_test,
        catalog::providers, catalog::events, health::healthz, health::readyz,
        crate::metrics::get_metrics,
    ),
    components(schemas(
        crate::dto::SubscriptionRequest, crate::dto::AuthRequest, crate::dto::FilterBody,
        crate::dto::SubscriptionView, crate::dto::AuthView, crate::dto::NativeView,
        crate::dto::SubscriptionPage, crate::problem::Problem,
        crate::dto::PreviewView, crate::dto::PreviewNativeView, crate::dto::NativeOperationView,
        crate::dto::PlanAction, crate::dto::NativeActionView,
        actions::RotateRequest, actions::RotatedSecret, operations::OperationView, operations::OperationPage, audit::AuditPage,
        catalog::ProviderList, catalog::ProviderView, catalog::EventList, catalog::EventView,
        reconciliation::ReconciliationView, reconciliation::PassView,
        reconciliation::ProviderProgress, reconciliation::AccountView, health::Health,
        health::ProviderHealth,
        deliveries::DeliveryView, deliveries::DeliveryPage, deliveries::DeliveryDetailView,
        deliveries::EnvelopeView, deliveries::AttemptView, deliveries::DeliveryStatusView,
        deliveries::ReplayView,
    )),
    modifiers(&Conventions),
    tags(
        (name = "subscriptions", description = "Normalized webhook subscriptions"),
        (name = "deliveries", description = "Relayed events on their way to a subscription, their attempts and re-drives"),
        (name = "catalog", description = "Providers and events"),
        (name = "audit", description = "The audit log (admin)"),
        (name = "reconciliation", description = "Progress of the background reconciliation pass (admin)"),
        (name = "health", description = "Liveness and readiness"),
        (name = "metrics", description = "Prometheus metrics (admin)"),
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

    /// Every operation of the document, as (`method path`, operation).
    fn operations(doc: &serde_json::Value) -> Vec<(String, &serde_json::Value)> {
        doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .iter()
                    .filter(|(key, _)| key.as_str() != "parameters")
                    .map(move |(method, op)| (format!("{method} {path}"), op))
            })
            .collect()
    }

    #[test]
    fn operation_ids_are_unique_and_name_what_the_operation_does() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let mut seen = std::collections::BTreeMap::new();
        for (route, op) in operations(&doc) {
            let id = op["operationId"].as_str().unwrap_or_default();
            // lowerCamelCase: generators turn it into a function name, and a
            // handler's function name (`list`, `status`) says nothing.
            assert!(
                id.len() > 4
                    && id.starts_with(|c: char| c.is_ascii_lowercase())
                    && id.chars().all(|c| c.is_ascii_alphanumeric())
                    && id.contains(|c: char| c.is_ascii_uppercase()),
                "{route}: operationId {id:?} is not a descriptive lowerCamelCase name"
            );
            if let Some(other) = seen.insert(id.to_owned(), route.clone()) {
                panic!("operationId {id} is used by both {other} and {route}");
            }
        }
        assert_eq!(
            seen.get("listSubscriptions").map(String::as_str),
            Some("get /v1/subscriptions")
        );
    }

    #[test]
    fn every_parameter_is_declared_where_it_is_sent() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        for (route, op) in operations(&doc) {
            let path = route.split_once(' ').unwrap().1;
            let templated: std::collections::BTreeSet<&str> = path
                .split('/')
                .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let mut in_path = std::collections::BTreeSet::new();
            let mut declared = std::collections::BTreeSet::new();
            for p in &params {
                let (name, place) = (p["name"].as_str().unwrap(), p["in"].as_str().unwrap());
                assert!(
                    declared.insert((name.to_owned(), place.to_owned())),
                    "{route}: {name} in {place} is declared twice"
                );
                match place {
                    "path" => {
                        assert_eq!(p["required"], true, "{route}: path parameter {name}");
                        assert!(
                            templated.contains(name),
                            "{route}: {name} is declared in: path but is not in the path template"
                        );
                        in_path.insert(name);
                    }
                    "query" | "header" => {}
                    other => panic!("{route}: {name} is declared in: {other}"),
                }
            }
            assert_eq!(
                in_path, templated,
                "{route}: the path template's parameters are not all declared in: path"
            );
            // A request body always says what it is, and is never `null`.
            if let Some(content) = op["requestBody"]["content"].as_object() {
                for (media, c) in content {
                    let schema = &c["schema"];
                    assert!(schema.is_object(), "{route}: {media} body has no schema");
                    assert!(
                        !schema.to_string().contains(r#"{"type":"null"}"#),
                        "{route}: {media} body may be null: {schema}"
                    );
                }
            }
        }
        // The list filters are query parameters (utoipa's `IntoParams`
        // defaults to the path, which generators then drop the route for).
        let list = &doc["paths"]["/v1/subscriptions"]["get"]["parameters"];
        for name in ["provider", "status", "limit", "cursor"] {
            let p = list
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name)
                .unwrap_or_else(|| panic!("list has no {name} parameter"));
            assert_eq!(p["in"], "query", "{name}");
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
                "delete /v1/subscriptions/by-key/{key}",
                "delete /v1/subscriptions/{id}",
                "get /healthz",
                "get /metrics",
                "get /readyz",
                "get /v1/audit",
                "get /v1/deliveries/{id}",
                "get /v1/events",
                "get /v1/providers",
                "get /v1/reconciliation",
                "get /v1/subscriptions",
                "get /v1/subscriptions/by-key/{key}",
                "get /v1/subscriptions/{id}",
                "get /v1/subscriptions/{id}/deliveries",
                "get /v1/subscriptions/{id}/operations",
                "patch /v1/subscriptions/{id}",
                "post /v1/deliveries/{id}/redeliver",
                "post /v1/subscriptions",
                "post /v1/subscriptions/preview",
                "post /v1/subscriptions/{id}/disable",
                "post /v1/subscriptions/{id}/enable",
                "post /v1/subscriptions/{id}/reconcile",
                "post /v1/subscriptions/{id}/replay",
                "post /v1/subscriptions/{id}/rotate-secret",
                "post /v1/subscriptions/{id}/test",
                "put /v1/subscriptions/by-key/{key}",
            ]
        );
    }
}
