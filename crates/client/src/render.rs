//! Tables of what the API returns: subscriptions (a list, or one in
//! detail with its native resources), the providers' capability matrix and
//! the event catalog. `--json` bypasses all of this.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::api::{EventList, ProviderList, Subscription};
use crate::table::Table;

/// Shown for a value that is absent or empty.
const NONE: &str = "-";

/// One line per subscription: id, key, provider, status, events, url and
/// the number of native resources.
pub fn subscriptions(subs: &[Subscription]) -> String {
    let mut t = Table::new(["ID", "KEY", "PROVIDER", "STATUS", "EVENTS", "URL", "NATIVE"]);
    for s in subs {
        t.row([
            s.id.clone(),
            s.key.clone().unwrap_or_else(|| NONE.into()),
            s.provider.clone(),
            s.status.clone(),
            s.events.join(","),
            s.url.clone(),
            s.native.len().to_string(),
        ]);
    }
    t.render()
}

/// The fields of the detail view after the typed ones, in this order.
const DETAIL_FIELDS: [&str; 19] = [
    "enabled",
    "auth",
    "signing_secret_set",
    "headers",
    "method",
    "format",
    "timeout_seconds",
    "max_retries",
    "filters",
    "provider_options",
    "metadata",
    "on_unsupported",
    "version",
    "created_at",
    "updated_at",
    "last_error",
    "last_reconciled_at",
    "findings",
    "warnings",
];

/// One subscription: a field/value table (empty fields left out), then
/// its native resources.
pub fn subscription(s: &Subscription) -> String {
    let mut t = Table::new(["FIELD", "VALUE"]);
    let typed = [
        ("id", Some(s.id.clone())),
        ("key", s.key.clone()),
        ("status", Some(s.status.clone())),
        ("provider", Some(s.provider.clone())),
        ("account", s.account.clone()),
        ("name", s.name.clone()),
        ("url", Some(s.url.clone())),
        ("events", Some(s.events.join(", "))),
    ];
    for (name, value) in typed {
        if let Some(v) = value {
            t.row([name.to_owned(), v]);
        }
    }
    let warnings = Value::from(s.warnings.clone());
    for name in DETAIL_FIELDS {
        let value = if name == "warnings" {
            Some(&warnings)
        } else {
            s.extra.get(name)
        };
        if let Some(v) = value.filter(|v| !is_empty(v)) {
            t.row([name.to_owned(), text(v)]);
        }
    }
    let mut out = t.render();
    if !s.native.is_empty() {
        let mut n = Table::new(["NATIVE ID", "KEY", "EVENTS", "STATUS"]);
        for r in &s.native {
            n.row([
                r.id.clone(),
                r.key.clone(),
                r.events.join(", "),
                r.status.clone(),
            ]);
        }
        out.push('\n');
        out.push_str(&n.render());
    }
    out
}

/// The capability matrix: one row per capability, one column per
/// provider instance, and the number of normalized events each offers.
pub fn providers(list: &ProviderList) -> String {
    let mut header = vec!["CAPABILITY".to_owned()];
    header.extend(list.data.iter().map(|p| p.key.clone()));
    let mut t = Table::new(header);
    let mut kind = vec!["kind".to_owned()];
    kind.extend(list.data.iter().map(|p| p.kind.clone()));
    t.row(kind);
    let names: BTreeSet<&String> = list
        .data
        .iter()
        .flat_map(|p| p.capabilities.keys())
        .collect();
    for name in names {
        let mut row = vec![name.clone()];
        row.extend(
            list.data
                .iter()
                .map(|p| p.capabilities.get(name).map_or(NONE.into(), text)),
        );
        t.row(row);
    }
    let mut events = vec!["normalized events".to_owned()];
    events.extend(list.data.iter().map(|p| p.events.len().to_string()));
    t.row(events);
    t.render()
}

/// The catalog: one row per normalized event with its native name per
/// provider kind, then each kind's native names usable as `native:<name>`.
pub fn events(list: &EventList) -> String {
    let kinds: BTreeSet<&String> = list
        .data
        .iter()
        .flat_map(|e| e.native.keys())
        .chain(list.native.keys())
        .collect();
    let mut header = vec!["EVENT".to_owned()];
    header.extend(kinds.iter().map(|k| k.to_string()));
    header.push("DESCRIPTION".into());
    let mut t = Table::new(header);
    for e in &list.data {
        let mut row = vec![e.name.clone()];
        row.extend(
            kinds
                .iter()
                .map(|k| e.native.get(*k).cloned().unwrap_or_else(|| NONE.into())),
        );
        row.push(e.description.clone());
        t.row(row);
    }
    let mut out = t.render();
    if !list.native.is_empty() {
        out.push_str("\nNative names, usable as `native:<name>`:\n");
        let mut n = Table::new(["KIND", "NATIVE NAMES"]);
        for (kind, names) in &list.native {
            n.row([kind.clone(), names.join(", ")]);
        }
        out.push_str(&n.render());
    }
    out
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// A JSON value in one cell: strings bare, booleans yes/no, lists joined,
/// ranges `min..max`, tagged rules as `rule (k=v, …)`, the rest as JSON.
fn text(v: &Value) -> String {
    match v {
        Value::Null => NONE.into(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) if items.is_empty() => NONE.into(),
        Value::Array(items) if items.iter().all(|i| !i.is_object()) => {
            items.iter().map(text).collect::<Vec<_>>().join(", ")
        }
        Value::Object(o) => match (o.get("min"), o.get("max"), o.get("rule")) {
            (Some(min), Some(max), _) if o.len() == 2 => format!("{min}..{max}"),
            (_, _, Some(Value::String(rule))) => {
                let details: Vec<String> = o
                    .iter()
                    .filter(|(k, v)| *k != "rule" && !v.is_object() && !v.is_array())
                    .map(|(k, v)| format!("{k}={}", text(v)))
                    .collect();
                if details.is_empty() {
                    rule.clone()
                } else {
                    format!("{rule} ({})", details.join(", "))
                }
            }
            _ => v.to_string(),
        },
        Value::Array(_) => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cells_read_as_words() {
        assert_eq!(text(&json!(true)), "yes");
        assert_eq!(text(&json!(["basic", "bearer"])), "basic, bearer");
        assert_eq!(text(&json!({"min": 5, "max": 120})), "5..120");
        assert_eq!(
            text(&json!({"rule": "joined_max_chars", "max_chars": 255})),
            "joined_max_chars (max_chars=255)"
        );
        assert_eq!(text(&json!({"rule": "forbidden"})), "forbidden");
        assert_eq!(text(&json!(null)), "-");
        assert_eq!(text(&json!({"team": "billing"})), r#"{"team":"billing"}"#);
    }

    #[test]
    fn a_subscription_in_detail_leaves_empty_fields_out() {
        let s: Subscription = serde_json::from_value(json!({
            "id": "sub_1", "key": null, "status": "active", "provider": "talkover",
            "url": "https://x.io", "events": ["call.ended", "native:event_action"],
            "auth": {"type": "none"}, "signing_secret_set": true, "headers": {},
            "enabled": true, "version": 2, "warnings": [],
            "native": [{"id": "n1", "key": "webhook", "events": ["e1"], "status": "active"}],
        }))
        .unwrap();
        assert_eq!(
            subscription(&s),
            "\
FIELD               VALUE
id                  sub_1
status              active
provider            talkover
url                 https://x.io
events              call.ended, native:event_action
enabled             yes
auth                {\"type\":\"none\"}
signing_secret_set  yes
version             2

NATIVE ID  KEY      EVENTS  STATUS
n1         webhook  e1      active
"
        );
    }
}
