//! `Idempotency-Key` on every POST (Stripe's semantics, stored in the
//! database so they hold across replicas): the key is scoped to the
//! caller's tenant; the same key with the same request replays the first
//! response (status and body) for 24 h; the same key with a different
//! request is 422; a second request while the first is still running is
//! 409. Responses that ask the caller to retry (409, 429, 503) are not kept,
//! so the retry runs. Replays and both refusals are counted.

use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use switchboard_core::Error;
use switchboard_store::Begin;
use switchboard_telemetry::record::{self, Conflict};

use crate::AppState;
use crate::auth::authenticate;
use crate::problem::{ApiError, PROBLEM_JSON};

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// Set on a replayed response.
pub const REPLAYED: &str = "idempotent-replayed";

fn bearer(req: &Request) -> Option<&str> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

fn request_hash(method: &Method, path: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(method.as_str().as_bytes());
    h.update(b" ");
    h.update(path.as_bytes());
    h.update(b"\n");
    h.update(body);
    hex::encode(h.finalize())
}

fn replay(status: u16, body: Vec<u8>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = if status.is_client_error() || status.is_server_error() {
        PROBLEM_JSON
    } else {
        "application/json"
    };
    let location = (status == StatusCode::CREATED)
        .then(|| serde_json::from_slice::<serde_json::Value>(&body).ok())
        .flatten()
        .and_then(|v| v["id"].as_str().map(|id| format!("/v1/subscriptions/{id}")));
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(REPLAYED, HeaderValue::from_static("true"));
    // A replay may carry a secret (rotate-secret): keep it out of caches.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(v) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        h.insert(header::LOCATION, v);
    }
    resp
}

/// The middleware.
pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(key) = req.headers().get(HEADER).cloned() else {
        return next.run(req).await;
    };
    let key = match key.to_str() {
        Ok(k) if !k.is_empty() && k.len() <= 255 => k.to_owned(),
        _ => {
            return ApiError::Domain(Error::Malformed {
                detail: "Idempotency-Key must be 1 to 255 visible ASCII characters".into(),
                pointer: None,
            })
            .into_response();
        }
    };
    // Unauthenticated requests carry on to the handler, which refuses them.
    let Some(tenant) = bearer(&req)
        .and_then(|t| authenticate(&state.tokens, t))
        .map(|e| e.tenant.clone())
    else {
        return next.run(req).await;
    };
    let (parts, body) = req.into_parts();
    let limit = state.limits.body_bytes;
    let body: Bytes = match to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => return ApiError::PayloadTooLarge { limit }.into_response(),
    };
    // The query is part of the request (`reconcile?remove_unknown=true`).
    let target = parts
        .uri
        .path_and_query()
        .map_or(parts.uri.path(), |pq| pq.as_str());
    let hash = request_hash(&parts.method, target, &body);
    let store = &state.store;
    // A claim outlives the request timeout, so only a request that died
    // (process killed) lets a retry take the key over.
    let hold = state.limits.request_timeout * 2;
    match store.begin_idempotent(&tenant, &key, &hash, hold).await {
        Err(e) => return ApiError::Domain(e).into_response(),
        Ok(Begin::Replay { status, body }) => {
            record::idempotency_replay();
            return replay(status, body);
        }
        Ok(Begin::Mismatch) => {
            record::idempotency_conflict(Conflict::Mismatch);
            return ApiError::Domain(Error::field(
                "/",
                "this Idempotency-Key was used with a different request; use a new key",
            ))
            .into_response();
        }
        Ok(Begin::InProgress) => {
            record::idempotency_conflict(Conflict::InProgress);
            return ApiError::Domain(Error::Conflict(
                "a request with this Idempotency-Key is still in progress; retry later".into(),
            ))
            .into_response();
        }
        Ok(Begin::Run) => {}
    }
    let resp = next.run(Request::from_parts(parts, Body::from(body))).await;
    let status = resp.status();
    let (resp_parts, resp_body) = resp.into_parts();
    let bytes = to_bytes(resp_body, usize::MAX).await.unwrap_or_default();
    let retry_later = matches!(status.as_u16(), 409 | 429 | 503);
    let recorded = if retry_later {
        store.abandon_idempotent(&tenant, &key).await
    } else {
        store
            .finish_idempotent(&tenant, &key, status.as_u16(), &bytes)
            .await
    };
    if let Err(e) = recorded {
        tracing::error!(error = %e, "idempotency key could not be recorded");
    }
    Response::from_parts(resp_parts, Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_covers_method_path_and_body() {
        let a = request_hash(&Method::POST, "/v1/subscriptions", b"{}");
        assert_eq!(a, request_hash(&Method::POST, "/v1/subscriptions", b"{}"));
        assert_ne!(a, request_hash(&Method::POST, "/v1/subscriptions", b"{ }"));
        assert_ne!(
            a,
            request_hash(&Method::POST, "/v1/subscriptions/preview", b"{}")
        );
    }
}
