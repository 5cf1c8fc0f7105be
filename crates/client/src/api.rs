//! The typed client of the v1 API: one connection pool, the bearer token
//! on every call, answers decoded into the shapes below, and every error
//! answer decoded into its [`Problem`]. The shapes are read leniently:
//! fields the server adds later are kept in `extra` and printed by
//! `--json`, never refused.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use switchboard_core::Secret;
use url::Url;

use crate::problem::Problem;

/// What a call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with a problem document.
    #[error("{}", .0.render())]
    Problem(Box<Problem>),
    /// The server answered an error without a problem document (a proxy in
    /// between, or a path that is not Switchboard's).
    #[error("HTTP {status} from {url}: {body}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The URL called.
        url: String,
        /// The start of the body.
        body: String,
    },
    /// No answer: the server could not be reached or did not answer in time.
    #[error("cannot reach {url}: {cause}")]
    Unreachable {
        /// The URL called.
        url: String,
        /// Why, with the causes of the cause.
        cause: String,
    },
    /// A success answer that does not have the documented shape.
    #[error("unexpected answer from {url}: {cause}")]
    Decode {
        /// The URL called.
        url: String,
        /// What did not fit.
        cause: String,
    },
    /// The client cannot be used as configured (a bad `--server`).
    #[error("{0}")]
    Usage(String),
}

impl ClientError {
    /// The problem document, when the server sent one.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Self::Problem(p) => Some(p),
            _ => None,
        }
    }
}

/// A call's result.
pub type Result<T> = std::result::Result<T, ClientError>;

/// One native resource of a subscription.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Native {
    /// The provider's id.
    pub id: String,
    /// Stable key within the subscription.
    #[serde(default)]
    pub key: String,
    /// Native events.
    #[serde(default)]
    pub events: Vec<String>,
    /// `active` or `disabled`.
    #[serde(default)]
    pub status: String,
}

/// A subscription as the API returns it (`SubscriptionView`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Subscription {
    /// `sub_<ulid>`.
    pub id: String,
    /// The tenant-unique key of subscriptions as code, when it has one.
    #[serde(default)]
    pub key: Option<String>,
    /// `active`, `disabled`, `pending`, `degraded` or `failed`.
    pub status: String,
    /// Provider instance key.
    pub provider: String,
    /// Provider-side parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Callback URL.
    pub url: String,
    /// Events as requested.
    #[serde(default)]
    pub events: Vec<String>,
    /// Native resources Switchboard created.
    #[serde(default)]
    pub native: Vec<Native>,
    /// What was dropped or adjusted.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Every other field, as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A page of `GET /v1/subscriptions`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Page {
    /// The subscriptions, oldest first.
    pub data: Vec<Subscription>,
    /// The cursor of the next page; `None` on the last.
    pub next_cursor: Option<String>,
}

/// Filters and paging of a list.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only this provider instance.
    pub provider: Option<String>,
    /// Only this status.
    pub status: Option<String>,
    /// Page size (1..=200).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// What a keyed preview says a PUT of the same body would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlannedAction {
    /// No subscription has the key.
    Create,
    /// The subscription with the key differs.
    Update,
    /// The subscription with the key is already as described.
    Unchanged,
}

/// The answer of `POST /v1/subscriptions/preview`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Preview {
    /// What a PUT by key would do; absent when no key was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<PlannedAction>,
    /// The id of the subscription with the key, when it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<String>,
    /// Top-level fields that differ (secrets named, never shown).
    #[serde(default)]
    pub changes: Vec<String>,
    /// Provider instance key.
    pub provider: String,
    /// Provider kind.
    #[serde(default)]
    pub kind: String,
    /// The exact native requests of the resources that would be
    /// created, secrets redacted.
    #[serde(default)]
    pub requests: Vec<Value>,
    /// What `on_unsupported: ignore` would drop.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// What would happen to each native resource.
    #[serde(default)]
    pub native_operations: Vec<NativeOperation>,
    /// Every other field, as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One native resource's part of a previewed change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NativeOperation {
    /// Plan key (stable identity within the subscription).
    pub key: String,
    /// `create`, `update`, `delete` or `keep`.
    pub action: String,
    /// The provider's id of the existing resource (all but a create).
    #[serde(default)]
    pub native_id: Option<String>,
    /// The native events it carries afterwards (a delete: before).
    #[serde(default)]
    pub events: Vec<String>,
    /// A create: the exact requests, secrets redacted.
    #[serde(default)]
    pub requests: Vec<Value>,
    /// An update: the native resource as it will be, secrets redacted.
    #[serde(default)]
    pub desired: Option<Value>,
}

/// One configured provider instance (`GET /v1/providers`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Provider {
    /// Config key; the `provider` of a subscription.
    pub key: String,
    /// Provider kind.
    pub kind: String,
    /// What the kind can do natively.
    #[serde(default)]
    pub capabilities: Map<String, Value>,
    /// Normalized event → native name.
    #[serde(default)]
    pub events: BTreeMap<String, String>,
}

/// `GET /v1/providers`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProviderList {
    /// Every configured instance.
    pub data: Vec<Provider>,
}

/// One normalized event (`GET /v1/events`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    /// Normalized name.
    pub name: String,
    /// Meaning.
    #[serde(default)]
    pub description: String,
    /// Provider kind → native name.
    #[serde(default)]
    pub native: BTreeMap<String, String>,
}

/// `GET /v1/events`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventList {
    /// Normalized events.
    pub data: Vec<Event>,
    /// Provider kind → every native name usable as `native:<name>`.
    #[serde(default)]
    pub native: BTreeMap<String, Vec<String>>,
}

/// The result of a PUT by key.
#[derive(Debug, Clone)]
pub struct Put {
    /// 201: no subscription had the key.
    pub created: bool,
    /// 202: the change goes on in the background.
    pub pending: bool,
    /// The subscription afterwards.
    pub subscription: Subscription,
}

/// A subscription action under `/v1/subscriptions/{id}/…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Switch deliveries off.
    Disable,
    /// Switch deliveries on.
    Enable,
    /// Compare with the provider and repair drift.
    Reconcile,
}

impl Action {
    fn segment(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Enable => "enable",
            Self::Reconcile => "reconcile",
        }
    }
}

/// Largest page the API serves.
pub const MAX_PAGE: u32 = 200;

/// The client. Cheap to clone: clones share the pool.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: Option<Secret>,
}

impl Client {
    /// A client of the server at `server` (`http://host:port`, optionally
    /// with a path prefix), authenticating with `token` when given.
    pub fn new(server: &str, token: Option<Secret>, timeout: Duration) -> Result<Self> {
        let base = Url::parse(server)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or_else(|| {
                ClientError::Usage(format!(
                    "--server `{server}` is not an http:// or https:// URL"
                ))
            })?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("switchboard-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Usage(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { http, base, token })
    }

    /// The server's root URL.
    pub fn server(&self) -> &Url {
        &self.base
    }

    /// `base` + the path `segments`, each percent-encoded as one segment.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// Sends one request and returns the status and body of a success
    /// answer; an error answer becomes its problem.
    async fn send(&self, method: Method, url: Url, body: Option<&Value>) -> Result<Answer> {
        let mut req = self.http.request(method, url.clone());
        if let Some(t) = &self.token {
            req = req.bearer_auth(t.expose());
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| unreachable(&url, &e))?;
        let status = resp.status();
        let is_problem = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/problem+json"));
        let bytes = resp.bytes().await.map_err(|e| unreachable(&url, &e))?;
        if status.is_success() {
            return Ok(Answer {
                status,
                url,
                body: bytes.to_vec(),
            });
        }
        if is_problem && let Ok(p) = serde_json::from_slice::<Problem>(&bytes) {
            return Err(ClientError::Problem(Box::new(p)));
        }
        Err(ClientError::Status {
            status: status.as_u16(),
            url: url.to_string(),
            body: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
        })
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&Value>,
    ) -> Result<(StatusCode, T)> {
        let answer = self.send(method, self.url(segments), body).await?;
        Ok((answer.status, answer.decode()?))
    }

    /// One page of the tenant's subscriptions.
    pub async fn list(&self, q: &ListQuery) -> Result<Page> {
        let mut url = self.url(&["v1", "subscriptions"]);
        let pairs: Vec<(&str, String)> = [
            ("provider", q.provider.clone()),
            ("status", q.status.clone()),
            ("limit", q.limit.map(|l| l.to_string())),
            ("cursor", q.cursor.clone()),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value?)))
        .collect();
        // Without filters no `?` at all: the URL is also what errors show.
        if !pairs.is_empty() {
            url.query_pairs_mut().extend_pairs(pairs);
        }
        self.send(Method::GET, url, None).await?.decode()
    }

    /// Every subscription matching `q`, following `next_cursor` (its
    /// `limit` is the page size, the largest when unset).
    pub async fn list_all(&self, q: &ListQuery) -> Result<Vec<Subscription>> {
        let mut q = ListQuery {
            limit: Some(q.limit.unwrap_or(MAX_PAGE)),
            ..q.clone()
        };
        let mut all = Vec::new();
        loop {
            let page = self.list(&q).await?;
            all.extend(page.data);
            match page.next_cursor {
                Some(c) => q.cursor = Some(c),
                None => return Ok(all),
            }
        }
    }

    /// One subscription by id.
    pub async fn get(&self, id: &str) -> Result<Subscription> {
        Ok(self
            .call(Method::GET, &["v1", "subscriptions", id], None)
            .await?
            .1)
    }

    /// Deletes by id; `Some` when the deletion goes on in the background.
    pub async fn delete(&self, id: &str) -> Result<Option<Subscription>> {
        self.remove(&["v1", "subscriptions", id]).await
    }

    /// Runs an action on a subscription.
    pub async fn act(&self, id: &str, action: Action) -> Result<Subscription> {
        Ok(self
            .call(
                Method::POST,
                &["v1", "subscriptions", id, action.segment()],
                None,
            )
            .await?
            .1)
    }

    /// One subscription by key.
    pub async fn get_by_key(&self, key: &str) -> Result<Subscription> {
        Ok(self
            .call(Method::GET, &["v1", "subscriptions", "by-key", key], None)
            .await?
            .1)
    }

    /// Makes the subscription with `key` be `body` (the full desired
    /// state): creates it, updates it, or leaves it as it is.
    pub async fn put_by_key(&self, key: &str, body: &Value) -> Result<Put> {
        let (status, subscription) = self
            .call(
                Method::PUT,
                &["v1", "subscriptions", "by-key", key],
                Some(body),
            )
            .await?;
        Ok(Put {
            created: status == StatusCode::CREATED,
            pending: status == StatusCode::ACCEPTED,
            subscription,
        })
    }

    /// Deletes by key; `Some` when the deletion goes on in the background.
    pub async fn delete_by_key(&self, key: &str) -> Result<Option<Subscription>> {
        self.remove(&["v1", "subscriptions", "by-key", key]).await
    }

    async fn remove(&self, segments: &[&str]) -> Result<Option<Subscription>> {
        let answer = self.send(Method::DELETE, self.url(segments), None).await?;
        if answer.status == StatusCode::ACCEPTED {
            answer.decode().map(Some)
        } else {
            Ok(None)
        }
    }

    /// What creating or, with a `key` in `body`, putting `body` would do;
    /// nothing is sent to a provider.
    pub async fn preview(&self, body: &Value) -> Result<Preview> {
        Ok(self
            .call(
                Method::POST,
                &["v1", "subscriptions", "preview"],
                Some(body),
            )
            .await?
            .1)
    }

    /// The configured providers.
    pub async fn providers(&self) -> Result<ProviderList> {
        Ok(self.call(Method::GET, &["v1", "providers"], None).await?.1)
    }

    /// The event catalog.
    pub async fn events(&self) -> Result<EventList> {
        Ok(self.call(Method::GET, &["v1", "events"], None).await?.1)
    }

    /// `GET /readyz`: `Ok` with the body when the server is ready.
    pub async fn ready(&self) -> Result<Value> {
        self.send(Method::GET, self.url(&["readyz"]), None)
            .await?
            .decode()
    }
}

/// A success answer, with the URL it came from for messages.
struct Answer {
    status: StatusCode,
    url: Url,
    body: Vec<u8>,
}

impl Answer {
    /// The body as `T`.
    fn decode<T: DeserializeOwned>(self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| ClientError::Decode {
            url: self.url.to_string(),
            cause: e.to_string(),
        })
    }
}

/// A transport failure by its innermost cause ("Connection refused",
/// not reqwest's "error sending request for url …").
fn unreachable(url: &Url, err: &reqwest::Error) -> ClientError {
    let mut cause = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if err.is_timeout() {
        cause = format!("no answer in time ({cause})");
    }
    ClientError::Unreachable {
        url: url.to_string(),
        cause,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(server: &str) -> Client {
        Client::new(server, None, Duration::from_secs(1)).unwrap()
    }

    #[test]
    fn paths_are_joined_to_the_server_and_encoded() {
        let c = client("http://127.0.0.1:8080");
        assert_eq!(
            c.url(&["v1", "subscriptions", "a/b c"]).as_str(),
            "http://127.0.0.1:8080/v1/subscriptions/a%2Fb%20c"
        );
        let c = client("https://gw.example.com/switchboard/");
        assert_eq!(
            c.url(&["readyz"]).as_str(),
            "https://gw.example.com/switchboard/readyz"
        );
    }

    #[test]
    fn only_http_urls_are_servers() {
        for bad in ["127.0.0.1:8080", "ftp://x", "not a url"] {
            let err = Client::new(bad, None, Duration::from_secs(1)).unwrap_err();
            assert!(err.to_string().contains("--server"), "{err}");
        }
    }

    #[test]
    fn the_token_is_not_in_the_debug_output() {
        let c = Client::new(
            "http://x",
            Some(Secret::new("tok-SECRET")),
            Duration::from_secs(1),
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("tok-SECRET"));
    }
}
