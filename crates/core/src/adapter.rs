//! The provider adapter trait and the native shapes it trades in.
//!
//! An adapter is sans-IO at heart: its `translate.rs` turns a normalized
//! subscription into [`NativePlan`]s and [`NativeRequest`]s and parses native
//! responses, all pure. Only the trait's async methods send, through an
//! injected [`crate::Transport`]. That makes `preview` free and every
//! translation unit-testable without a server.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Capabilities, Error, NativeResponse, ProviderKind, SubscriptionSpec, Transport};

/// One native resource a subscription needs, fully translated.
///
/// `key` is stable across updates (Talkover: `webhook`; Bird: the event;
/// Telegent: the chunk), so the engine can diff an old plan against a new one
/// and change only what differs.
#[derive(Clone, PartialEq)]
pub struct NativePlan {
    /// Stable identity within the subscription.
    pub key: String,
    /// Native event names this resource carries.
    pub events: Vec<String>,
    /// The provider's create body, secrets included.
    pub body: Value,
    /// JSON pointers into `body` that hold secrets.
    pub secret_pointers: Vec<String>,
}

impl fmt::Debug for NativePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NativePlan")
            .field("key", &self.key)
            .field("events", &self.events)
            .field("body", &redact_body(&self.body, &self.secret_pointers))
            .finish()
    }
}

/// A resource as the provider reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NativeResource {
    /// The provider's id (or a synthesized identity where it has none).
    pub id: String,
    /// Native events it carries.
    pub events: Vec<String>,
    /// Whether the provider will deliver.
    pub enabled: bool,
    /// Callback URL as the provider stores it.
    pub url: Option<String>,
    /// The subscription id Switchboard wrote into the provider's free-text
    /// field (Talkover `name`, `… [sub_…]`); `None` where the kind has no
    /// such field or the resource carries no marker. When the id of a
    /// create never came back, this is how the resource is found again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marker: Option<String>,
    /// Delivery filters as `(key, value)` pairs, sorted; empty where the
    /// kind has none (Bird `eventFilters`). Part of what identifies a
    /// resource whose create answer was lost.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<(String, String)>,
}

/// One header of a native request.
#[derive(Clone, PartialEq, Eq)]
pub struct NativeHeader {
    /// Header name.
    pub name: String,
    /// Header value.
    pub value: String,
    /// Whether the value is a credential (redacted in previews and logs).
    pub sensitive: bool,
}

/// A native HTTP request, built purely by an adapter's `translate.rs`.
#[derive(Clone, PartialEq)]
pub struct NativeRequest {
    /// HTTP method.
    pub method: http::Method,
    /// Path appended to the provider's `base_url`, starting with `/`.
    pub path: String,
    /// Query parameters.
    pub query: Vec<(String, String)>,
    /// Headers, management credentials included.
    pub headers: Vec<NativeHeader>,
    /// JSON body, if any.
    pub body: Option<Value>,
    /// JSON pointers into `body` that hold secrets.
    pub secret_pointers: Vec<String>,
}

impl NativeRequest {
    /// A request with no headers, query or body.
    pub fn new(method: http::Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
            secret_pointers: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Into<String>, sensitive: bool) -> Self {
        self.headers.push(NativeHeader {
            name: name.to_owned(),
            value: value.into(),
            sensitive,
        });
        self
    }

    /// Adds a query parameter.
    pub fn query(mut self, name: &str, value: impl Into<String>) -> Self {
        self.query.push((name.to_owned(), value.into()));
        self
    }

    /// Sets a JSON body and the pointers of its secrets.
    pub fn json(mut self, body: Value, secret_pointers: Vec<String>) -> Self {
        self.body = Some(body);
        self.secret_pointers = secret_pointers;
        self
    }

    /// The request as shown by `preview` and debug logs: every sensitive
    /// header and every secret body field replaced by `***`.
    pub fn redacted(&self, base_url: &str) -> Value {
        let mut url = format!("{}{}", base_url.trim_end_matches('/'), self.path);
        if !self.query.is_empty() {
            let q: Vec<String> = self
                .query
                .iter()
                .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                .collect();
            url = format!("{url}?{}", q.join("&"));
        }
        let headers: serde_json::Map<String, Value> = self
            .headers
            .iter()
            .map(|h| {
                let v = if h.sensitive {
                    "***".to_owned()
                } else {
                    h.value.clone()
                };
                (h.name.clone(), Value::String(v))
            })
            .collect();
        // Built field by field: `json!` would turn the redacted body
        // into a value once more through the serializer, a second deep
        // copy of it.
        let mut shown = serde_json::Map::new();
        shown.insert("method".into(), Value::from(self.method.as_str()));
        shown.insert("url".into(), Value::String(url));
        shown.insert("headers".into(), Value::Object(headers));
        let body = self.body.as_ref();
        let body = body.map_or(Value::Null, |b| redact_body(b, &self.secret_pointers));
        shown.insert("body".into(), body);
        Value::Object(shown)
    }
}

impl fmt::Debug for NativeRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NativeRequest({})", self.redacted(""))
    }
}

/// Percent-encodes every byte outside RFC 3986 unreserved characters: a
/// query component here, a path segment through [`crate::path::PathSegment`].
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A copy of `body` with each pointer's value replaced by `***`.
pub fn redact_body(body: &Value, pointers: &[String]) -> Value {
    let mut copy = body.clone();
    for p in pointers {
        if let Some(v) = copy.pointer_mut(p)
            && !v.is_null()
        {
            *v = Value::String("***".into());
        }
    }
    copy
}

/// One provider instance: translation plus the calls that apply it.
///
/// Object-safe so the engine holds `Arc<dyn ProviderAdapter>` per config key.
/// Every method returns the domain [`Error`]; upstream failures are already
/// classified (`Error::Upstream`) by the adapter's translate layer.
#[async_trait]
pub trait ProviderAdapter: Send + Sync {
    /// The provider kind (`talkover`).
    fn kind(&self) -> &'static str;

    /// What the kind can do natively.
    fn capabilities(&self) -> &Capabilities;

    /// Pure: the native resources subscription `id` needs. `events` are the
    /// native names already resolved from the catalog; `spec` has passed
    /// [`Capabilities::check`]. Where the provider has a free-text field the
    /// plan marks it with `id`, so a resource can be traced back to its
    /// subscription.
    fn plan(
        &self,
        id: &str,
        spec: &SubscriptionSpec,
        events: &[String],
    ) -> Result<Vec<NativePlan>, Error>;

    /// Pure: the requests that creating `plans` would send.
    fn preview(&self, account: Option<&str>, plans: &[NativePlan]) -> Vec<NativeRequest>;

    /// The provider's API root (for previews).
    fn base_url(&self) -> &str;

    /// Creates one native resource.
    async fn create(
        &self,
        account: Option<&str>,
        plan: &NativePlan,
    ) -> Result<NativeResource, Error>;

    /// Changes a native resource from `old` to `new` (same key), sending only
    /// what the provider needs to see. Enabling and disabling is such a
    /// change where [`Capabilities::native_disable`] holds: the plan body
    /// carries the switch.
    async fn update(
        &self,
        account: Option<&str>,
        id: &str,
        old: &NativePlan,
        new: &NativePlan,
    ) -> Result<NativeResource, Error>;

    /// Deletes a native resource. Deleting one that is already gone succeeds.
    async fn delete(&self, account: Option<&str>, id: &str) -> Result<(), Error>;

    /// Reads one native resource.
    async fn get(&self, account: Option<&str>, id: &str) -> Result<NativeResource, Error>;

    /// Lists the native resources under `account`.
    async fn list(&self, account: Option<&str>) -> Result<Vec<NativeResource>, Error>;
}

/// The plumbing every adapter shares: its kind, instance key, API root,
/// capabilities and the transport it sends through. An adapter holds one
/// next to its typed config and answers the trait's `kind`, `capabilities`
/// and `base_url` from it ([`crate::delegate_to_shell`]).
pub struct AdapterShell {
    kind: &'static str,
    key: String,
    base_url: String,
    capabilities: Capabilities,
    transport: Arc<dyn Transport>,
}

impl AdapterShell {
    /// The shell of provider instance `key` of `kind`, sending to `base_url`.
    pub fn new(
        kind: ProviderKind,
        key: impl Into<String>,
        base_url: &str,
        transport: Arc<dyn Transport>,
    ) -> Self {
        Self {
            kind: kind.name,
            key: key.into(),
            base_url: base_url.to_owned(),
            capabilities: (kind.capabilities)(),
            transport,
        }
    }

    /// The kind's name (`talkover`).
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The provider instance (`[providers.<key>]`), as errors and logs name it.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The API root requests are sent to.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// What the kind can do natively.
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// Sends `req`; a request that got no HTTP answer becomes the domain
    /// error for this instance ([`Error::transport`]).
    pub async fn send(&self, req: &NativeRequest) -> Result<NativeResponse, Error> {
        self.transport
            .send(&self.key, &self.base_url, req)
            .await
            .map_err(|e| Error::transport(&self.key, e))
    }

    /// The account a call needs, or a field error at `/account` naming what
    /// the provider calls it (`the Talkover agent_id`).
    pub fn account<'a>(&self, account: Option<&'a str>, what: &str) -> Result<&'a str, Error> {
        account.ok_or_else(|| Error::field("/account", format!("{what} is required")))
    }
}

/// Inside an `impl ProviderAdapter for X` whose `X` has an
/// [`AdapterShell`] in field `shell`: the trait's `kind`, `capabilities`
/// and `base_url`, answered by the shell. Every adapter built on the shell
/// uses it, so those three answers exist once.
#[macro_export]
macro_rules! delegate_to_shell {
    () => {
        fn kind(&self) -> &'static str {
            self.shell.kind()
        }

        fn capabilities(&self) -> &$crate::Capabilities {
            self.shell.capabilities()
        }

        fn base_url(&self) -> &str {
            self.shell.base_url()
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_sensitive_headers_and_pointers() {
        let req = NativeRequest::new(http::Method::POST, "/agents/a b/webhooks")
            .header("Authorization", "Bearer tok", true)
            .header("Accept", "application/json", false)
            .query("x", "a&b")
            .json(
                serde_json::json!({"webhook_secret": "s3cr3t", "name": "n", "h": [{"value": "v"}]}),
                vec![
                    "/webhook_secret".into(),
                    "/h/0/value".into(),
                    "/missing".into(),
                ],
            );
        let shown = req.redacted("https://api.example.com/v1/").to_string();
        assert!(!shown.contains("s3cr3t") && !shown.contains("tok") && !shown.contains("\"v\""));
        assert!(shown.contains("https://api.example.com/v1/agents/a b/webhooks?x=a%26b"));
        assert!(!format!("{req:?}").contains("s3cr3t"));
    }
}
