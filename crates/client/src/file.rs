//! The subscriptions file of `plan` and `apply`: TOML, one
//! `[[subscription]]` table per subscription, each with its `key` and the
//! fields of the API's create body. Any string value may reference an
//! environment variable as `${NAME}` (`$${` is a literal `${`), so that
//! secrets stay out of the repository. Every problem of the file is
//! reported at once, each naming the entry (index and key) and the field.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Longest subscription key.
pub const MAX_KEY_LEN: usize = 128;

/// One `[[subscription]]` entry: the key and the desired state.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Position in the file, from 1.
    pub index: usize,
    /// The tenant-unique key.
    pub key: String,
    /// The API body (every field but `key`), secrets interpolated.
    pub body: Value,
}

/// A problem of the file, located as precisely as known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    /// The entry's position from 1, when the problem is in an entry.
    pub index: Option<usize>,
    /// The entry's key, when it has a readable one.
    pub key: Option<String>,
    /// The field, dotted (`auth.password`, `events[1]`), when known.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.index, &self.key) {
            (Some(i), Some(k)) => write!(f, "subscription #{i} (key `{k}`): ")?,
            (Some(i), None) => write!(f, "subscription #{i}: ")?,
            (None, _) => {}
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Callback auth, as in the API body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Auth {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    header: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<String>,
}

/// A delivery filter, as in the API body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilterEntry {
    key: String,
    value: String,
}

/// An entry as written: the create body's fields plus `key`. The field
/// types are the body's, so that a typo or a wrong type is found here,
/// with its entry, before anything is sent; the values' rules are the
/// server's (a preview reports them).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    #[serde(skip_serializing)]
    key: String,
    provider: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    url: String,
    events: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    auth: Option<Auth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signing_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    headers: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timeout_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_retries: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    filters: Option<Vec<FilterEntry>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    provider_options: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    metadata: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    on_unsupported: Option<String>,
}

/// Parses a subscriptions file; `env` looks environment variables up
/// (`std::env::var` in the binary, a map in tests).
pub fn parse(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Entry>, Vec<FileError>> {
    let doc: toml::Table = toml::from_str(text).map_err(|e| {
        vec![FileError {
            index: None,
            key: None,
            field: None,
            message: format!("not valid TOML: {}", e.to_string().trim_end()),
        }]
    })?;
    let mut errors = Vec::new();
    let mut tables = Vec::new();
    for (name, value) in doc {
        match (name.as_str(), value) {
            ("subscription", toml::Value::Array(items)) => tables = items,
            ("subscription", _) => errors.push(top_level(
                "subscription",
                "must be an array of tables: write each entry as [[subscription]]",
            )),
            (other, _) => errors.push(top_level(
                other,
                "unknown top-level field; entries are [[subscription]] tables",
            )),
        }
    }
    let mut entries = Vec::new();
    for (i, item) in tables.into_iter().enumerate() {
        match entry(i + 1, item, env) {
            Ok(e) => entries.push(e),
            Err(mut errs) => errors.append(&mut errs),
        }
    }
    errors.extend(duplicates(&entries));
    if errors.is_empty() {
        Ok(entries)
    } else {
        Err(errors)
    }
}

fn top_level(field: &str, message: &str) -> FileError {
    FileError {
        index: None,
        key: None,
        field: Some(field.to_owned()),
        message: message.to_owned(),
    }
}

/// One entry: interpolated, typed, its key checked.
fn entry(
    index: usize,
    item: toml::Value,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Entry, Vec<FileError>> {
    let toml::Value::Table(mut table) = item else {
        return Err(vec![FileError {
            index: Some(index),
            key: None,
            field: None,
            message: "must be a table".into(),
        }]);
    };
    let written_key = match table.get("key") {
        Some(toml::Value::String(k)) => Some(k.clone()),
        _ => None,
    };
    let at = |field: Option<String>, message: String| FileError {
        index: Some(index),
        key: written_key.clone(),
        field,
        message,
    };
    let mut errors = Vec::new();
    for (name, value) in table.iter_mut() {
        interpolate_value(value, name, env, &mut |field, message| {
            errors.push(at(Some(field), message))
        });
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let raw: RawEntry = serde_path_to_error::deserialize(toml::Value::Table(table))
        .map_err(|e| vec![at(field_of(e.path()), e.into_inner().message().to_owned())])?;
    check_key(&raw.key).map_err(|m| vec![at(Some("key".into()), m)])?;
    let body = serde_json::to_value(&raw).map_err(|e| vec![at(None, e.to_string())])?;
    Ok(Entry {
        index,
        key: raw.key,
        body,
    })
}

/// The field a deserialization error is at; `None` for the entry itself
/// (a missing or unknown field, whose message names it).
fn field_of(path: &serde_path_to_error::Path) -> Option<String> {
    let text = path.to_string();
    (text != ".").then_some(text)
}

/// A key is 1 to 128 characters of `A-Z a-z 0-9 . _ -` and starts with a
/// letter or digit (the rule the API applies).
pub fn check_key(key: &str) -> Result<(), String> {
    let starts_well = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let chars_ok = key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if starts_well && chars_ok && key.len() <= MAX_KEY_LEN {
        Ok(())
    } else {
        Err(format!(
            "`{key}` is not a key: 1 to {MAX_KEY_LEN} characters of A-Z a-z 0-9 . _ -, starting with a letter or digit"
        ))
    }
}

/// Errors for every key used by more than one entry.
fn duplicates(entries: &[Entry]) -> Vec<FileError> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut errors = Vec::new();
    for e in entries {
        if let Some(first) = seen.insert(&e.key, e.index) {
            seen.insert(&e.key, first);
            errors.push(FileError {
                index: Some(e.index),
                key: Some(e.key.clone()),
                field: Some("key".into()),
                message: format!("duplicate key: subscription #{first} has it too"),
            });
        }
    }
    errors
}

/// Replaces `${NAME}` in every string under `value` (at field `path`);
/// reports each problem through `report(field, message)`.
fn interpolate_value(
    value: &mut toml::Value,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
    report: &mut dyn FnMut(String, String),
) {
    match value {
        toml::Value::String(s) => match interpolate(s, env) {
            Ok(new) => *s = new,
            Err(message) => report(path.to_owned(), message),
        },
        toml::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate_value(item, &format!("{path}[{i}]"), env, report);
            }
        }
        toml::Value::Table(table) => {
            for (name, item) in table.iter_mut() {
                interpolate_value(item, &format!("{path}.{name}"), env, report);
            }
        }
        _ => {}
    }
}

/// `${NAME}` → the variable's value; `$${` → `${`; any other `$` is kept.
/// A variable that is not set, an unclosed `${` and a name that is not
/// `[A-Za-z_][A-Za-z0-9_]*` are errors naming it (never its value).
pub fn interpolate(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = tail
                .find('}')
                .ok_or("`${` without a closing `}` (write `$${` for a literal `${`)")?;
            let name = &tail[..end];
            if !is_var_name(name) {
                return Err(format!(
                    "`${{{name}}}` is not an environment variable reference (names are A-Z a-z 0-9 _, not starting with a digit)"
                ));
            }
            let value =
                env(name).ok_or_else(|| format!("environment variable `{name}` is not set"))?;
            out.push_str(&value);
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOOK_SECRET" => Some("s3cr3t".into()),
            "HOST" => Some("hooks.example.com".into()),
            _ => None,
        }
    }

    fn errors(text: &str) -> Vec<String> {
        parse(text, &env)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn parses_entries_into_api_bodies() {
        let entries = parse(
            r#"
[[subscription]]
key = "billing-calls"
provider = "talkover"
account = "agent-1"
url = "https://${HOST}/calls"
events = ["call.ended"]
signing_secret = "${HOOK_SECRET}"
auth = { type = "basic", username = "hook", password = "${HOOK_SECRET}" }
headers = { X-Team = "billing" }
timeout_seconds = 20
metadata = { team = "billing", cost_center = 42 }

[[subscription]]
key = "sms.in_1"
provider = "sendblue"
url = "https://hooks.example.com/sms"
events = ["message.received"]
filters = [{ key = "channelId", value = "c1" }]
enabled = false
"#,
            &env,
        )
        .unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(
            (entries[0].index, entries[0].key.as_str()),
            (1, "billing-calls")
        );
        assert_eq!(
            entries[0].body,
            json!({
                "provider": "talkover", "account": "agent-1",
                "url": "https://hooks.example.com/calls", "events": ["call.ended"],
                "signing_secret": "s3cr3t",
                "auth": {"type": "basic", "username": "hook", "password": "s3cr3t"},
                "headers": {"X-Team": "billing"}, "timeout_seconds": 20,
                "metadata": {"team": "billing", "cost_center": 42}
            })
        );
        assert_eq!(
            entries[1].body,
            json!({
                "provider": "sendblue", "url": "https://hooks.example.com/sms",
                "events": ["message.received"], "enabled": false,
                "filters": [{"key": "channelId", "value": "c1"}]
            })
        );
    }

    #[test]
    fn the_shipped_example_parses_with_its_variables_set() {
        let text = include_str!("../../../config/subscriptions.example.toml");
        let entries = parse(text, &|name| Some(format!("value-of-{name}"))).unwrap();
        let providers: Vec<&str> = entries
            .iter()
            .map(|e| e.body["provider"].as_str().unwrap())
            .collect();
        assert_eq!(providers, ["talkover", "telegent", "bird", "sendblue"]);
        assert_eq!(
            entries[0].body["signing_secret"],
            "value-of-BILLING_SIGNING_SECRET"
        );
        let unset = parse(text, &|_| None).unwrap_err();
        assert_eq!(unset.len(), 4, "{unset:?}");
    }

    #[test]
    fn an_empty_file_has_no_entries() {
        assert_eq!(parse("# nothing yet\n", &env).unwrap(), vec![]);
    }

    #[test]
    fn interpolation_escapes_and_keeps_other_dollars() {
        assert_eq!(interpolate("a$${HOST}b", &env).unwrap(), "a${HOST}b");
        assert_eq!(interpolate("$5 and $HOST", &env).unwrap(), "$5 and $HOST");
        assert_eq!(
            interpolate("${HOST}${HOST}$", &env).unwrap(),
            "hooks.example.comhooks.example.com$"
        );
        assert_eq!(interpolate("$$${HOST}", &env).unwrap(), "$${HOST}");
    }

    #[test]
    fn interpolation_errors_name_the_variable_never_a_value() {
        assert_eq!(
            interpolate("x${MISSING}", &env).unwrap_err(),
            "environment variable `MISSING` is not set"
        );
        assert!(interpolate("${HOST", &env).unwrap_err().contains("closing"));
        assert!(
            interpolate("${1A}", &env)
                .unwrap_err()
                .contains("`${1A}` is not")
        );
    }

    #[test]
    fn a_missing_variable_names_the_entry_key_and_field() {
        let errs = errors(
            r#"
[[subscription]]
key = "a"
provider = "p"
url = "https://x.io"
events = ["e"]

[[subscription]]
key = "bird-sms"
provider = "bird"
url = "https://x.io"
events = ["e"]
auth = { type = "bearer", token = "${BIRD_TOKEN}" }
headers = { X-A = "${OTHER}" }
"#,
        );
        assert_eq!(
            errs,
            [
                "subscription #2 (key `bird-sms`): auth.token: environment variable `BIRD_TOKEN` is not set",
                "subscription #2 (key `bird-sms`): headers.X-A: environment variable `OTHER` is not set",
            ]
        );
    }

    #[test]
    fn unknown_missing_and_mistyped_fields_name_entry_and_field() {
        let errs = errors(
            r#"
[[subscription]]
key = "one"
provider = "p"
url = "https://x.io"
events = ["e"]
urll = "typo"

[[subscription]]
key = "two"
provider = "p"
events = ["e"]

[[subscription]]
provider = "p"
url = "https://x.io"
events = ["e"]

[[subscription]]
key = "four"
provider = "p"
url = "https://x.io"
events = ["e", 5]

[[subscription]]
key = "five"
provider = "p"
url = "https://x.io"
events = ["e"]
auth = { type = "basic", pasword = "x" }
"#,
        );
        assert_eq!(errs.len(), 5, "{errs:#?}");
        assert!(
            errs[0].starts_with("subscription #1 (key `one`): urll: unknown field `urll`, expected one of `key`, `provider`"),
            "{}",
            errs[0]
        );
        assert_eq!(errs[1], "subscription #2 (key `two`): missing field `url`");
        assert_eq!(errs[2], "subscription #3: missing field `key`");
        assert!(
            errs[3]
                .starts_with("subscription #4 (key `four`): events[1]: invalid type: integer `5`"),
            "{}",
            errs[3]
        );
        assert!(
            errs[4]
                .starts_with("subscription #5 (key `five`): auth.pasword: unknown field `pasword`"),
            "{}",
            errs[4]
        );
    }

    #[test]
    fn duplicate_and_malformed_keys_are_errors() {
        let entry = |key: &str| {
            format!(
                "[[subscription]]\nkey = \"{key}\"\nprovider = \"p\"\nurl = \"https://x.io\"\nevents = [\"e\"]\n"
            )
        };
        let text = [
            entry("a"),
            entry("b"),
            entry("a"),
            entry("-bad"),
            entry(&"k".repeat(129)),
        ]
        .concat();
        let errs = errors(&text);
        assert_eq!(errs.len(), 3, "{errs:#?}");
        assert!(errs[0].starts_with("subscription #4 (key `-bad`): key: `-bad` is not a key"));
        assert!(errs[1].starts_with("subscription #5 (key `kkk"));
        assert_eq!(
            errs[2],
            "subscription #3 (key `a`): key: duplicate key: subscription #1 has it too"
        );
    }

    #[test]
    fn the_top_level_holds_subscriptions_only() {
        assert_eq!(
            errors("[subscription]\nkey = \"a\"\n"),
            ["subscription: must be an array of tables: write each entry as [[subscription]]"]
        );
        assert_eq!(
            errors("version = 1\n"),
            ["version: unknown top-level field; entries are [[subscription]] tables"]
        );
        let errs = errors("[[subscription]\n");
        assert!(errs[0].starts_with("not valid TOML: "), "{errs:?}");
    }
}
