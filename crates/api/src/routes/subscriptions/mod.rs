//! `/v1/subscriptions`: the router and the answers every handler of the
//! resource shares. The handlers live by sub-resource: [`crud`] (create,
//! preview, list, get, patch, delete), [`keyed`] (put, get and delete by
//! key), [`actions`] (enable, disable, rotate-secret, reconcile) and
//! [`operations`] (history); every mutating one runs through [`change`].

pub mod actions;
mod change;
pub mod crud;
pub mod keyed;
pub mod operations;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use switchboard_store::SubscriptionRecord;

use crate::AppState;
use crate::dto::SubscriptionView;
use crate::extract::CursorKind;
use crate::problem::ApiError;

/// The router of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/subscriptions", post(crud::create).get(crud::list))
        .route("/v1/subscriptions/preview", post(crud::preview))
        .route(
            "/v1/subscriptions/{id}",
            get(crud::fetch).patch(crud::patch).delete(crud::remove),
        )
        .route("/v1/subscriptions/{id}/enable", post(actions::enable))
        .route("/v1/subscriptions/{id}/disable", post(actions::disable))
        .route(
            "/v1/subscriptions/{id}/rotate-secret",
            post(actions::rotate_secret),
        )
        .route(
            "/v1/subscriptions/{id}/operations",
            get(operations::operations),
        )
        .route("/v1/subscriptions/{id}/reconcile", post(actions::reconcile))
        .merge(keyed::router())
}

/// The subscription as the audit log records it.
fn view_json(rec: &SubscriptionRecord) -> serde_json::Value {
    serde_json::to_value(SubscriptionView::from(rec)).unwrap_or_default()
}

type ApiResult<T> = Result<T, ApiError>;

/// The subscription with its version as `ETag` (and, for a create, its
/// `Location`).
fn with_etag(status: StatusCode, rec: &SubscriptionRecord, location: bool) -> Response {
    let view = SubscriptionView::from(rec);
    let etag = HeaderValue::from_str(&format!("\"{}\"", view.version)).ok();
    let loc = location
        .then(|| HeaderValue::from_str(&format!("/v1/subscriptions/{}", view.id)).ok())
        .flatten();
    let mut resp = (status, axum::Json(view)).into_response();
    if let Some(v) = etag {
        resp.headers_mut().insert(header::ETAG, v);
    }
    if let Some(v) = loc {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// Cursors of `GET /v1/subscriptions`: subscription ids.
#[derive(Debug)]
pub struct SubscriptionCursors;

impl CursorKind for SubscriptionCursors {
    fn accepts(cursor: &str) -> bool {
        switchboard_core::ids::is_subscription_id(cursor)
    }
}
