//! The OpenAPI 3.1 document, generated from the handlers' annotations and
//! served at `GET /openapi.json`.

use axum::Router;
use axum::routing::get;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::AppState;
use crate::routes::{audit, catalog, health, subscriptions};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Switchboard", description = "One normalized webhook subscription, many providers."),
    paths(
        subscriptions::create, subscriptions::list, subscriptions::fetch, subscriptions::patch,
        subscriptions::remove, subscriptions::enable, subscriptions::disable, subscriptions::preview,
        subscriptions::rotate_secret, subscriptions::operations, subscriptions::reconcile, audit::list,
        catalog::providers, catalog::events, health::healthz, health::readyz,
    ),
    components(schemas(
        crate::dto::SubscriptionRequest, crate::dto::AuthRequest, crate::dto::FilterBody,
        crate::dto::SubscriptionView, crate::dto::AuthView, crate::dto::NativeView,
        crate::dto::SubscriptionPage, crate::problem::Problem,
        subscriptions::RotateRequest, subscriptions::RotatedSecret, subscriptions::OperationView, subscriptions::OperationPage, audit::AuditPage,
        catalog::ProviderList, catalog::ProviderView, catalog::EventList, catalog::EventView,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "subscriptions", description = "Normalized webhook subscriptions"),
        (name = "catalog", description = "Providers and events"),
        (name = "audit", description = "The audit log (admin)"),
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
