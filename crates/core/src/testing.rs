//! Test builders (cargo feature `testing`): one minimal [`SpecDraft`] that
//! tests adjust with struct-update syntax instead of spelling out every
//! field of a subscription.

use crate::{CallbackAuth, CallbackUrl, EventName, OnUnsupported, SpecDraft};

/// A draft for `provider` delivering `events` to `url`: no account, no
/// name, no auth, no signing secret, no headers, filters, options or
/// metadata, delivery settings left to the provider, enabled, rejecting
/// unsupported fields.
///
/// # Panics
/// When `url` or an event is not well-formed: a test's own typo.
pub fn draft(provider: &str, url: &str, events: &[&str]) -> SpecDraft {
    SpecDraft {
        provider: provider.to_owned(),
        account: None,
        name: None,
        url: CallbackUrl::parse(url).unwrap_or_else(|e| panic!("test url `{url}`: {e}")),
        events: events
            .iter()
            .map(|e| EventName::parse(e).unwrap_or_else(|err| panic!("test event: {err}")))
            .collect(),
        auth: CallbackAuth::None,
        signing_secret: None,
        headers: Default::default(),
        method: None,
        format: None,
        timeout_seconds: None,
        max_retries: None,
        enabled: true,
        filters: Vec::new(),
        provider_options: Default::default(),
        metadata: Default::default(),
        on_unsupported: OnUnsupported::Reject,
        delivery: Default::default(),
    }
}

/// `ingress.verify` run on a delivery to a fixed ingress URL with
/// `headers` and `body`, received now: the one-liner each kind's ingress
/// tests start from.
pub fn verify_delivery(
    ingress: &crate::Ingress,
    headers: &[(&str, &str)],
    body: &str,
    secret: &str,
) -> Result<crate::InboundEvent, crate::IngressRefusal> {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
    let now = chrono::Utc::now();
    let request = crate::IngressRequest {
        url: "https://sb.example.com/ingress/abc",
        headers: &headers,
        body: body.as_bytes(),
        received_at: now,
    };
    (ingress.verify)(&request, secret, now)
}
