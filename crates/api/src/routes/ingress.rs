//! `POST /ingress/{token}`: where providers deliver to in relay mode
//! (issue 13, items 2 and 6). Not under `/v1` and not behind API tokens:
//! the route token in the path and the kind's own check of the delivery
//! (`Engine::ingest`) are its authentication.
//!
//! The answers are bare statuses with empty bodies, so a caller without
//! the route's credential learns nothing beyond the status:
//!
//! - `200` once the event is durably stored, and for a provider's retry of
//!   a stored one (so it stops retrying);
//! - `404` for an unknown token (or relay mode off), answered before the
//!   body is read;
//! - `401` when the delivery is not verified (credential, signature,
//!   timestamp, or not a delivery the provider documents);
//! - `413` when the body is larger than `max_payload_bytes`;
//! - `503` (problem+json, cause logged) when the store failed, so the
//!   provider retries.
//!
//! Every answer is counted by provider and outcome
//! (`switchboard_ingress_requests_total`, refusals by reason); the token is
//! never a label and never logged ([`loggable_path`]).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::Utc;
use http_body_util::LengthLimitError;
use switchboard_core::{IngressRefusal, IngressRequest};
use switchboard_engine::{Engine, IngestError, Ingested, IngressRoute, RouteCache};
use switchboard_telemetry::record::{self, IngressOutcome, UNKNOWN_PROVIDER};
use tokio::time::Instant;

use crate::AppState;
use crate::problem::ApiError;

/// The route template, as the HTTP metrics label it.
pub const ROUTE: &str = "/ingress/{token}";

/// What the ingress handler needs: the engine and its route cache (one per
/// router, so per server).
#[derive(Clone)]
struct Ingress {
    engine: Engine,
    routes: Arc<RouteCache>,
}

/// The router of the ingress, with its own route cache.
pub fn router(state: &AppState) -> Router<AppState> {
    let ingress = Ingress {
        engine: state.engine.clone(),
        routes: Arc::new(RouteCache::default()),
    };
    Router::new()
        .route(ROUTE, post(post_ingress))
        .with_state(ingress)
}

/// A request path fit for logs: an ingress path's route token is replaced
/// by the template (the token is a capability; only its hash is stored).
pub fn loggable_path(path: &str) -> &str {
    if path.starts_with(switchboard_engine::INGRESS_PATH) {
        ROUTE
    } else {
        path
    }
}

async fn post_ingress(
    State(ingress): State<Ingress>,
    token: Result<Path<String>, PathRejection>,
    req: Request,
) -> Response {
    let started = Instant::now();
    let (route, result) = match token {
        Ok(Path(token)) => ingest(&ingress, &token, req).await,
        Err(_) => (None, Err(IngestError::NotFound)),
    };
    let provider = route
        .as_ref()
        .map_or(UNKNOWN_PROVIDER, IngressRoute::provider);
    record::ingress_request(provider, outcome(&result), started.elapsed());
    answer(result)
}

/// Looks the token's route up, then reads and ingests the body; the route
/// is returned for labelling whatever happened after it was found.
async fn ingest(
    ingress: &Ingress,
    token: &str,
    req: Request,
) -> (Option<IngressRoute>, Result<Ingested, IngestError>) {
    let engine = &ingress.engine;
    let route = match engine.ingress_route(&ingress.routes, token).await {
        Ok(route) => route,
        Err(e) => return (None, Err(e)),
    };
    let Some(relay) = engine.relay() else {
        return (Some(route), Err(IngestError::NotFound));
    };
    let settings = &relay.settings;
    let (parts, body) = req.into_parts();
    let body = match read_body(&parts.headers, body, settings.max_payload_bytes).await {
        Ok(body) => body,
        Err(e) => return (Some(route), Err(e)),
    };
    // Bird signs the URL it called: the public origin with the path and
    // query as received, not the address a proxy forwarded to.
    let target = parts
        .uri
        .path_and_query()
        .map_or(parts.uri.path(), |pq| pq.as_str());
    let url = format!("{}{target}", settings.public_url);
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.as_str().to_owned(), value)
        })
        .collect();
    let request = IngressRequest {
        url: &url,
        headers: &headers,
        body: &body,
        received_at: Utc::now(),
    };
    let result = engine.ingest(&route, &request).await;
    (Some(route), result)
}

/// The body, at most `limit` bytes: a larger declared length is refused
/// before reading, a longer stream as soon as it passes the limit.
async fn read_body(
    headers: &axum::http::HeaderMap,
    body: Body,
    limit: usize,
) -> Result<axum::body::Bytes, IngestError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(IngestError::TooLarge);
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        if is_length_limit(&e) {
            IngestError::TooLarge
        } else {
            // The provider stopped sending: nothing to verify.
            IngestError::Refused(IngressRefusal::Malformed("the body could not be read"))
        }
    })
}

fn is_length_limit(e: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.is::<LengthLimitError>() {
            return true;
        }
        cause = c.source();
    }
    false
}

fn outcome(result: &Result<Ingested, IngestError>) -> IngressOutcome {
    match result {
        Ok(Ingested {
            duplicate: false, ..
        }) => IngressOutcome::Accepted,
        Ok(Ingested {
            duplicate: true, ..
        }) => IngressOutcome::Duplicate,
        Err(IngestError::NotFound) => IngressOutcome::NotFound,
        Err(IngestError::Refused(r)) => IngressOutcome::Refused(r.reason()),
        Err(IngestError::TooLarge) => IngressOutcome::TooLarge,
        Err(IngestError::Store(_)) => IngressOutcome::Error,
    }
}

/// The answer: a bare status, or a problem (logged with its cause) when
/// the store failed.
fn answer(result: Result<Ingested, IngestError>) -> Response {
    let status = match result {
        Ok(_) => StatusCode::OK,
        Err(IngestError::NotFound) => StatusCode::NOT_FOUND,
        Err(IngestError::Refused(_)) => StatusCode::UNAUTHORIZED,
        Err(IngestError::TooLarge) => StatusCode::PAYLOAD_TOO_LARGE,
        Err(IngestError::Store(e)) => return ApiError::Domain(e).into_response(),
    };
    status.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_stay_out_of_logged_paths() {
        assert_eq!(loggable_path("/ingress/s3cr3t-route-token"), ROUTE);
        assert_eq!(loggable_path("/ingress/"), ROUTE);
        assert_eq!(
            loggable_path("/v1/subscriptions/sub_1"),
            "/v1/subscriptions/sub_1"
        );
    }

    #[tokio::test]
    async fn bodies_are_read_up_to_the_limit() {
        let none = axum::http::HeaderMap::new();
        let read = |body: &'static str, headers| async move {
            read_body(&headers, Body::from(body), 4).await
        };
        assert_eq!(&read("abcd", none.clone()).await.unwrap()[..], b"abcd");
        // No declared length: cut off while reading.
        assert!(matches!(
            read("abcde", none.clone()).await,
            Err(IngestError::TooLarge)
        ));
        // A declared length over the limit is refused before reading.
        let mut declared = axum::http::HeaderMap::new();
        declared.insert(header::CONTENT_LENGTH, "5".parse().unwrap());
        assert!(matches!(
            read("", declared).await,
            Err(IngestError::TooLarge)
        ));
    }

    #[test]
    fn outcomes_follow_the_result() {
        let stored = |duplicate| {
            Ok(Ingested {
                event_id: "evt_1".into(),
                duplicate,
            })
        };
        assert_eq!(outcome(&stored(false)), IngressOutcome::Accepted);
        assert_eq!(outcome(&stored(true)), IngressOutcome::Duplicate);
        let stale = Err(IngestError::Refused(IngressRefusal::Stale));
        assert_eq!(outcome(&stale), IngressOutcome::Refused("stale"));
        let down = Err(IngestError::Store(switchboard_core::Error::Store(
            "down".into(),
        )));
        assert_eq!(outcome(&down), IngressOutcome::Error);
        assert_eq!(answer(down).status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(answer(stale).status(), StatusCode::UNAUTHORIZED);
        assert_eq!(answer(stored(true)).status(), StatusCode::OK);
    }
}
