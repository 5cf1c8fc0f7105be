//! The event catalog (`config/events.toml`): normalized event names, each
//! provider kind's native catalog, and the mapping between them. A new
//! provider event is a config change, not a code change (design.md §3).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{EventName, FieldError};

/// One normalized event and its native name per provider kind.
///
/// Keys other than `description` are provider kinds; a kind with no
/// `[native]` catalog is rejected by [`EventCatalog::from_toml`], which is
/// what catches typos here (serde cannot deny unknown fields next to a
/// flattened map).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogEvent {
    /// What the event means.
    pub description: String,
    /// Provider kind → native name. A kind that is absent lacks the event.
    #[serde(flatten)]
    pub native: BTreeMap<String, String>,
}

/// The whole catalog, validated: every mapped native name exists in its
/// kind's native catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventCatalog {
    /// Provider kind → every native event name it accepts.
    pub native: BTreeMap<String, Vec<String>>,
    /// Normalized name → mapping.
    #[serde(default)]
    pub events: BTreeMap<String, CatalogEvent>,
}

impl EventCatalog {
    /// Parses and checks `events.toml`.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let catalog: Self = toml::from_str(text).map_err(|e| e.to_string())?;
        for (name, event) in &catalog.events {
            EventName::parse(name).map_err(|e| format!("events.\"{name}\": {e}"))?;
            for (kind, native) in &event.native {
                let known = catalog.native.get(kind).ok_or_else(|| {
                    format!("events.\"{name}\".{kind}: no native catalog for kind `{kind}` under [native]")
                })?;
                if !known.contains(native) {
                    return Err(format!(
                        "events.\"{name}\".{kind}: `{native}` is not in native.{kind}"
                    ));
                }
            }
        }
        Ok(catalog)
    }

    /// The normalized name of `kind`'s native event `native`, the catalog
    /// read in reverse (for relayed deliveries): the first normalized event
    /// mapping to it in name order, else `native:<native>`. A name the
    /// catalog does not list for the kind also comes back as `native:`,
    /// since a provider may deliver events it never documented.
    pub fn normalized_name(&self, kind: &str, native: &str) -> String {
        self.events
            .iter()
            .find(|(_, e)| e.native.get(kind).is_some_and(|n| n == native))
            .map_or_else(
                || EventName::Native(native.to_owned()).to_string(),
                |(name, _)| name.clone(),
            )
    }

    /// Maps the caller's events to one provider kind's native names, in
    /// order, without duplicates. Errors point at `/events/<i>`.
    pub fn resolve(
        &self,
        kind: &str,
        provider: &str,
        events: &[EventName],
    ) -> Result<Vec<String>, Vec<FieldError>> {
        let mut natives = Vec::with_capacity(events.len());
        let mut errors = Vec::new();
        let known = self.native.get(kind).map(Vec::as_slice).unwrap_or_default();
        for (i, event) in events.iter().enumerate() {
            let pointer = format!("/events/{i}");
            let native = match event {
                EventName::Normalized(name) => match self.events.get(name) {
                    None => {
                        errors.push(FieldError::new(
                            pointer,
                            format!("`{name}` is not in the event catalog (GET /v1/events)"),
                        ));
                        continue;
                    }
                    Some(e) => match e.native.get(kind) {
                        Some(n) => n.clone(),
                        None => {
                            errors.push(FieldError::provider(
                                pointer,
                                format!(
                                    "provider `{provider}` (kind {kind}) has no native event for `{name}`"
                                ),
                                provider,
                            ));
                            continue;
                        }
                    },
                },
                EventName::Native(name) => {
                    if !known.iter().any(|k| k == name) {
                        errors.push(FieldError::provider(
                            pointer,
                            format!("`{name}` is not a native event of kind {kind}"),
                            provider,
                        ));
                        continue;
                    }
                    name.clone()
                }
            };
            if natives.contains(&native) {
                errors.push(FieldError::new(
                    pointer,
                    format!("`{event}` duplicates another event (native `{native}`)"),
                ));
            } else {
                natives.push(native);
            }
        }
        if errors.is_empty() {
            Ok(natives)
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOML: &str = r#"
[native]
talkover = ["event_phone_call_ended", "event_action"]
telegent = ["Call_Completed"]

[events."call.ended"]
description = "A call ended"
talkover = "event_phone_call_ended"
telegent = "Call_Completed"

[events."message.received"]
description = "Inbound message"
"#;

    fn ev(s: &str) -> EventName {
        EventName::parse(s).unwrap()
    }

    #[test]
    fn resolves_normalized_and_native() {
        let c = EventCatalog::from_toml(TOML).unwrap();
        let got = c
            .resolve(
                "talkover",
                "tk",
                &[ev("call.ended"), ev("native:event_action")],
            )
            .unwrap();
        assert_eq!(got, ["event_phone_call_ended", "event_action"]);
    }

    #[test]
    fn errors_point_at_each_bad_event() {
        let c = EventCatalog::from_toml(TOML).unwrap();
        let errs = c
            .resolve(
                "talkover",
                "tk",
                &[
                    ev("message.received"),
                    ev("nope.nope"),
                    ev("native:Call_Completed"),
                    ev("call.ended"),
                    ev("native:event_phone_call_ended"),
                ],
            )
            .unwrap_err();
        let pointers: Vec<_> = errs.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            ["/events/0", "/events/1", "/events/2", "/events/4"]
        );
        assert_eq!(errs[0].provider.as_deref(), Some("tk"));
    }

    #[test]
    fn normalized_names_read_the_mapping_in_reverse() {
        let c = EventCatalog::from_toml(TOML).unwrap();
        assert_eq!(
            c.normalized_name("talkover", "event_phone_call_ended"),
            "call.ended"
        );
        assert_eq!(
            c.normalized_name("telegent", "Call_Completed"),
            "call.ended"
        );
        assert_eq!(
            c.normalized_name("talkover", "event_action"),
            "native:event_action"
        );
        assert_eq!(
            c.normalized_name("talkover", "webhook.test"),
            "native:webhook.test"
        );
        // The mapping is per kind: another kind's native name is not it.
        assert_eq!(
            c.normalized_name("telegent", "event_phone_call_ended"),
            "native:event_phone_call_ended"
        );
        let shipped = EventCatalog::from_toml(include_str!("../../../config/events.toml")).unwrap();
        assert_eq!(
            shipped.normalized_name("accesskey-workspace", "channels:sms.inbound"),
            "message.received"
        );
        assert_eq!(
            shipped.normalized_name("account-v2", "receive"),
            "message.received"
        );
        assert_eq!(
            shipped.normalized_name("account-v2", "typing_indicator"),
            "native:typing_indicator"
        );
    }

    #[test]
    fn every_mapped_native_round_trips() {
        let c = EventCatalog::from_toml(include_str!("../../../config/events.toml")).unwrap();
        for (name, event) in &c.events {
            for (kind, native) in &event.native {
                let back = c.normalized_name(kind, native);
                assert_eq!(c.events[&back].native[kind], *native, "{name} via {kind}");
            }
        }
    }

    #[test]
    fn rejects_mapping_to_unknown_native_name() {
        let bad = TOML.replace("telegent = \"Call_Completed\"", "telegent = \"Nope\"");
        let err = EventCatalog::from_toml(&bad).unwrap_err();
        assert!(err.contains("events.\"call.ended\".telegent"), "{err}");
    }

    #[test]
    fn shipped_catalog_is_valid() {
        let text = include_str!("../../../config/events.toml");
        let c = EventCatalog::from_toml(text).unwrap();
        assert!(c.events.contains_key("call.ended"));
    }
}
