//! A loopback HTTP receiver standing in for the relay ingress: whatever
//! arrives is checked with a kind's [`Ingress::verify`] against the secret
//! the native was registered with, answered 204 when verified and 401
//! otherwise, and the outcome kept for the test to inspect.
//!
//! The simulators reach it through their `deliver_to` hop (a stand-in for
//! a TLS-terminating proxy), so the URL the provider called, and signed, is
//! rebuilt as the ingress will: the public origin plus the path and query
//! that arrived.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use switchboard_core::{InboundEvent, Ingress, IngressRefusal, IngressRequest};
use switchboard_sim::Running;

/// What the receiver concluded about one delivery.
pub type Outcome = Result<InboundEvent, IngressRefusal>;

#[derive(Clone)]
struct Checker {
    ingress: Ingress,
    public_origin: String,
    secret: String,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
}

/// A running receiver; dropping it stops the server.
pub struct Receiver {
    /// `http://127.0.0.1:PORT`, the `deliver_to` of a simulator order.
    pub origin: String,
    checker: Checker,
    _running: Running,
}

impl Receiver {
    /// Serves on a free loopback port, verifying with `ingress` and
    /// `secret` as if reached at `public_origin` (`https://host`).
    ///
    /// # Panics
    ///
    /// When no loopback port can be bound: the test cannot go on.
    pub async fn start(ingress: Ingress, public_origin: &str, secret: &str) -> Self {
        let checker = Checker {
            ingress,
            public_origin: public_origin.to_owned(),
            secret: secret.to_owned(),
            outcomes: Arc::default(),
        };
        let router = axum::Router::new()
            .fallback(receive)
            .with_state(checker.clone());
        let running = switchboard_sim::serve(router, SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("a free loopback port");
        Self {
            origin: running.base_url.clone(),
            checker,
            _running: running,
        }
    }

    /// Every outcome so far, in arrival order.
    pub fn outcomes(&self) -> Vec<Outcome> {
        self.checker
            .outcomes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

async fn receive(
    State(checker): State<Checker>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{}{path}", checker.public_origin);
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let now = chrono::Utc::now();
    let request = IngressRequest {
        url: &url,
        headers: &headers,
        body: &body,
        received_at: now,
    };
    let outcome = (checker.ingress.verify)(&request, &checker.secret, now);
    let status = match outcome {
        Ok(_) => StatusCode::NO_CONTENT,
        Err(_) => StatusCode::UNAUTHORIZED,
    };
    checker
        .outcomes
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(outcome);
    status
}
