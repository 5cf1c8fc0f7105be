//! The event envelope every relay delivery carries, and its body bytes in
//! the subscription's format (JSON, or XML by the mapping below).
//!
//! ```json
//! {"id": "evt_01J…", "type": "call.ended", "provider": "talkover",
//!  "subscription": "sub_01J…", "occurred_at": "2025-03-01T12:00:00.000Z",
//!  "received_at": "2025-03-01T12:00:00.250Z", "data": { …unchanged… }}
//! ```
//!
//! `id` is the Standard Webhooks `webhook-id` as well: it stays the same on
//! every retry, so a subscriber deduplicates by it. Times are RFC 3339 in
//! UTC with milliseconds; `occurred_at` is `null` when the provider's
//! payload does not say.
//!
//! # XML mapping
//!
//! Deterministic and lossless (every JSON value maps to one XML text and
//! back):
//!
//! - The document is `<?xml version="1.0" encoding="UTF-8"?>` and one root
//!   `<event>` with the envelope's fields as child elements in the order
//!   above; `data` holds the provider's payload.
//! - An object is an element with `type="object"` and one child per key,
//!   sorted by key (the order of the parsed payload's map). A key that is a safe XML name (ASCII
//!   letter or `_` first, then letters, digits, `_ - .`; not starting with
//!   `xml` in any case) is the element name; any other key becomes
//!   `<field name="…">`, or `<field name-base64="…">` (the key's UTF-8
//!   bytes in standard base64) when it holds characters XML 1.0 cannot
//!   carry. A plain `<field>` without those attributes is the key `field`.
//! - An array is an element with `type="array"` and one `<item>` per entry.
//! - A string is the element's text, with no `type` attribute: `&`, `<`
//!   and `>` escaped, and carriage returns written `&#13;` (XML parsers turn
//!   a literal one into a line feed). A string holding characters XML 1.0
//!   cannot carry at all (most control characters, U+FFFE, U+FFFF) is
//!   written `encoding="base64"` with its UTF-8 bytes in standard base64.
//! - A number is its JSON text with `type="number"`, a boolean `true` or
//!   `false` with `type="boolean"`, and null an empty element with
//!   `type="null"`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use switchboard_core::{DeliveryFormat, EventName};

/// The prefix of an event id.
pub const EVENT_ID_PREFIX: &str = "evt_";

/// A new event id: `evt_` and a ULID (time-sortable).
pub fn event_id() -> String {
    format!("{EVENT_ID_PREFIX}{}", ulid::Ulid::new())
}

/// One normalized event, as sent to a subscriber.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// `evt_<ulid>`; also the `webhook-id` header, the same on every retry.
    pub id: String,
    /// The normalized event name, or `native:<name>` for an unmapped one.
    #[serde(rename = "type")]
    pub event_type: EventName,
    /// The provider instance key (`[providers.<key>]`).
    pub provider: String,
    /// The subscription delivered to (`sub_…`).
    pub subscription: String,
    /// When the event happened, as the provider says; `None` when it does not.
    #[serde(with = "rfc3339_opt")]
    pub occurred_at: Option<DateTime<Utc>>,
    /// When Switchboard's ingress accepted the provider's delivery.
    #[serde(with = "rfc3339")]
    pub received_at: DateTime<Utc>,
    /// The provider's payload, unchanged.
    pub data: Value,
}

impl Envelope {
    /// The body bytes in `format`. These exact bytes are signed and sent.
    pub fn body(&self, format: DeliveryFormat) -> Vec<u8> {
        match format {
            // Serializing a tree of strings and `Value`s cannot fail.
            DeliveryFormat::Json => serde_json::to_vec(self).expect("an envelope serializes"),
            DeliveryFormat::Xml => self.to_xml().into_bytes(),
        }
    }

    /// The XML document of the module docs' mapping.
    pub fn to_xml(&self) -> String {
        let mut out = String::from(r#"<?xml version="1.0" encoding="UTF-8"?><event>"#);
        let mut text = |name: &str, value: &str| {
            write_element(&mut out, name, &Value::String(value.to_owned()));
        };
        text("id", &self.id);
        text("type", &self.event_type.to_string());
        text("provider", &self.provider);
        text("subscription", &self.subscription);
        let occurred = self
            .occurred_at
            .map_or(Value::Null, |t| Value::String(rfc3339_text(t)));
        write_element(&mut out, "occurred_at", &occurred);
        write_element(
            &mut out,
            "received_at",
            &Value::String(rfc3339_text(self.received_at)),
        );
        write_element(&mut out, "data", &self.data);
        out.push_str("</event>");
        out
    }
}

fn rfc3339_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Writes `value` as the element `name` (a safe name, chosen by the caller).
fn write_element(out: &mut String, name: &str, value: &Value) {
    write_tagged(out, name, "", value);
}

/// Writes `value` as element `name` with `attrs` (already escaped, each
/// with a leading space) before the type attribute.
fn write_tagged(out: &mut String, name: &str, attrs: &str, value: &Value) {
    out.push('<');
    out.push_str(name);
    out.push_str(attrs);
    match value {
        Value::Null => {
            out.push_str(r#" type="null"/>"#);
            return;
        }
        Value::Bool(b) => {
            out.push_str(r#" type="boolean">"#);
            out.push_str(if *b { "true" } else { "false" });
        }
        Value::Number(n) => {
            out.push_str(r#" type="number">"#);
            out.push_str(&n.to_string());
        }
        Value::String(s) if s.chars().all(xml_char) => {
            out.push('>');
            escape_into(out, s);
        }
        Value::String(s) => {
            out.push_str(r#" encoding="base64">"#);
            out.push_str(&STANDARD.encode(s));
        }
        Value::Array(items) => {
            out.push_str(r#" type="array">"#);
            for item in items {
                write_element(out, "item", item);
            }
        }
        Value::Object(map) => {
            out.push_str(r#" type="object">"#);
            for (key, item) in map {
                write_member(out, key, item);
            }
        }
    }
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// One object member: the key as the element name when it is a safe
/// name, else a `<field>` naming it in an attribute.
fn write_member(out: &mut String, key: &str, value: &Value) {
    if safe_name(key) {
        return write_element(out, key, value);
    }
    let mut attr = String::new();
    if key.chars().all(xml_char) {
        attr.push_str(r#" name=""#);
        escape_into(&mut attr, key);
    } else {
        attr.push_str(r#" name-base64=""#);
        attr.push_str(&STANDARD.encode(key));
    }
    attr.push('"');
    write_tagged(out, "field", &attr, value);
}

/// A conservative subset of XML names: ASCII, no `:` (namespaces), not
/// the reserved `xml…`. The key `field` is one too: the escape element is
/// told apart by its `name`/`name-base64` attribute.
fn safe_name(key: &str) -> bool {
    let mut chars = key.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    first_ok
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !key.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("xml"))
}

/// Characters XML 1.0 can carry (its `Char` production; Rust strings hold
/// no surrogates).
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Escapes text for element content and double-quoted attributes alike.
/// Whitespace other than a space is written as a character reference,
/// because parsers normalize a literal CR in text and every literal tab
/// or newline in an attribute.
fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\r' => out.push_str("&#13;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
}

/// RFC 3339 in UTC with milliseconds; any RFC 3339 offset is read.
mod rfc3339 {
    use super::*;

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&rfc3339_text(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

/// [`rfc3339`] or `null`.
mod rfc3339_opt {
    use super::*;

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => rfc3339::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|t| {
            DateTime::parse_from_rfc3339(&t)
                .map(|t| t.with_timezone(&Utc))
                .map_err(serde::de::Error::custom)
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn envelope(data: Value) -> Envelope {
        Envelope {
            id: "evt_01JNF7Q2ZK0000000000000000".into(),
            event_type: EventName::parse("call.ended").unwrap(),
            provider: "talkover".into(),
            subscription: "sub_01JNF7Q2ZK0000000000000001".into(),
            occurred_at: Some("2025-03-01T12:00:00Z".parse().unwrap()),
            received_at: "2025-03-01T12:00:00.25+01:00".parse().unwrap(),
            data,
        }
    }

    /// Reads the XML mapping back into JSON, written from the module docs
    /// (not from the writer), with an independent parser.
    fn from_xml(node: roxmltree::Node) -> Value {
        match node.attribute("type") {
            Some("null") => Value::Null,
            Some("boolean") => Value::Bool(node.text() == Some("true")),
            Some("number") => serde_json::from_str(node.text().unwrap()).unwrap(),
            Some("array") => node
                .children()
                .filter(roxmltree::Node::is_element)
                .inspect(|c| assert_eq!(c.tag_name().name(), "item"))
                .map(from_xml)
                .collect(),
            Some("object") => node
                .children()
                .filter(roxmltree::Node::is_element)
                .map(|c| (key_of(c), from_xml(c)))
                .collect::<serde_json::Map<_, _>>()
                .into(),
            None if node.attribute("encoding") == Some("base64") => {
                let bytes = STANDARD.decode(node.text().unwrap_or("")).unwrap();
                Value::String(String::from_utf8(bytes).unwrap())
            }
            None => Value::String(node.text().unwrap_or("").to_owned()),
            Some(other) => panic!("unknown type {other}"),
        }
    }

    fn key_of(node: roxmltree::Node) -> String {
        let name = node.tag_name().name();
        if name != "field" {
            return name.to_owned();
        }
        if let Some(k) = node.attribute("name") {
            return k.to_owned();
        }
        if let Some(b) = node.attribute("name-base64") {
            return String::from_utf8(STANDARD.decode(b).unwrap()).unwrap();
        }
        name.to_owned()
    }

    fn parse_event(xml: &str) -> (Vec<(String, String)>, Value) {
        let doc = roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "event");
        let mut fields = Vec::new();
        let mut data = None;
        for child in root.children().filter(roxmltree::Node::is_element) {
            let name = child.tag_name().name().to_owned();
            if name == "data" {
                data = Some(from_xml(child));
            } else {
                let v = match from_xml(child) {
                    Value::String(s) => s,
                    Value::Null => "null".into(),
                    other => panic!("{name}: {other}"),
                };
                fields.push((name, v));
            }
        }
        (fields, data.expect("a data element"))
    }

    #[test]
    fn json_body_has_the_documented_shape() {
        let e = envelope(json!({"call": {"id": 7}, "list": [1, "a", null]}));
        let body: Value = serde_json::from_slice(&e.body(DeliveryFormat::Json)).unwrap();
        assert_eq!(
            body,
            json!({
                "id": "evt_01JNF7Q2ZK0000000000000000",
                "type": "call.ended",
                "provider": "talkover",
                "subscription": "sub_01JNF7Q2ZK0000000000000001",
                "occurred_at": "2025-03-01T12:00:00.000Z",
                "received_at": "2025-03-01T11:00:00.250Z",
                "data": {"call": {"id": 7}, "list": [1, "a", null]}
            })
        );
        let back: Envelope = serde_json::from_value(body).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn unknown_occurrence_is_null_and_native_types_pass_through() {
        let mut e = envelope(json!({}));
        e.occurred_at = None;
        e.event_type = EventName::parse("native:channels:sms.inbound").unwrap();
        let body: Value = serde_json::from_slice(&e.body(DeliveryFormat::Json)).unwrap();
        assert_eq!(body["occurred_at"], Value::Null);
        assert_eq!(body["type"], "native:channels:sms.inbound");
        let (fields, _) = parse_event(&e.to_xml());
        assert!(fields.contains(&("occurred_at".into(), "null".into())));
        assert!(fields.contains(&("type".into(), "native:channels:sms.inbound".into())));
    }

    #[test]
    fn event_ids_are_prefixed_ulids() {
        let a = event_id();
        let b = event_id();
        assert_ne!(a, b);
        for id in [a, b] {
            let rest = id.strip_prefix(EVENT_ID_PREFIX).unwrap();
            assert!(ulid::Ulid::from_string(rest).is_ok(), "{id}");
        }
    }

    #[test]
    fn xml_has_the_envelope_fields_in_order() {
        let e = envelope(json!({"a": 1}));
        let xml = e.to_xml();
        assert!(xml.starts_with(r#"<?xml version="1.0" encoding="UTF-8"?><event><id>evt_"#));
        let (fields, data) = parse_event(&xml);
        assert_eq!(
            fields,
            [
                ("id", "evt_01JNF7Q2ZK0000000000000000"),
                ("type", "call.ended"),
                ("provider", "talkover"),
                ("subscription", "sub_01JNF7Q2ZK0000000000000001"),
                ("occurred_at", "2025-03-01T12:00:00.000Z"),
                ("received_at", "2025-03-01T11:00:00.250Z"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert_eq!(data, json!({"a": 1}));
        assert_eq!(e.body(DeliveryFormat::Xml), xml.into_bytes());
    }

    #[test]
    fn xml_round_trips_tricky_payloads() {
        let tricky = json!({
            "plain": "text",
            "markup": "<b>&amp;</b> \"quoted\" 'single' ]]> <!-- c --> <?pi?>",
            "whitespace": "  lead\ttab\r\ncrlf\rcr\nlf  trail  ",
            "empty": "",
            "unicode": "héllo ✓ 😀 \u{FFFD}",
            "controls": "nul\u{0}bell\u{7}esc\u{1b}",
            "nonchar": "\u{FFFE}",
            "1starts-with-digit": 1,
            "has space": true,
            "ns:colon": false,
            "xmlReserved": null,
            "XML": "upper",
            "field": "a key named field",
            "": "empty key",
            "quote\"amp&lt<": "key needs escaping",
            "tab\tkey\nnewline": "key whitespace",
            "ctrl\u{1}key": "key needs base64",
            "émoji😀": "non-ascii key",
            "item": ["a key named item"],
            "numbers": [0, -1, 1.5, 1e300, 12345678901234567890u64, -0.0],
            "nested": [[], {}, [[null]], {"x": {"y": []}}],
            "type": "a key named type",
            "with.dots-and_dashes": {"_u": "ok"}
        });
        let e = envelope(tricky.clone());
        let (_, data) = parse_event(&e.to_xml());
        assert_eq!(data, tricky);
    }

    #[test]
    fn xml_scalars_and_roots_round_trip() {
        for data in [
            json!(null),
            json!("just a string"),
            json!(42),
            json!(false),
            json!([]),
            json!({}),
            json!(""),
        ] {
            let (_, back) = parse_event(&envelope(data.clone()).to_xml());
            assert_eq!(back, data);
        }
    }

    /// The example in docs/api.md ("The XML body") is what is sent.
    #[test]
    fn the_documented_xml_example_holds() {
        let mut e = envelope(json!({"duration": 42, "tags": ["vip"], "caller id": "+15550100"}));
        e.occurred_at = None;
        let xml = e.to_xml();
        assert!(
            xml.contains(concat!(
                r#"<occurred_at type="null"/><received_at>2025-03-01T11:00:00.250Z</received_at>"#,
                r#"<data type="object"><field name="caller id">+15550100</field>"#,
                r#"<duration type="number">42</duration><tags type="array"><item>vip</item></tags>"#,
                r#"</data></event>"#
            )),
            "{xml}"
        );
    }

    #[test]
    fn xml_is_deterministic_and_readable() {
        let e = envelope(json!({"b": [true, null], "a": {"k": "v"}, "x y": "1"}));
        let xml = e.to_xml();
        assert_eq!(xml, e.to_xml());
        assert!(
            xml.ends_with(concat!(
                r#"<data type="object"><a type="object"><k>v</k></a>"#,
                r#"<b type="array"><item type="boolean">true</item><item type="null"/></b>"#,
                r#"<field name="x y">1</field></data></event>"#
            )),
            "{xml}"
        );
    }
}
