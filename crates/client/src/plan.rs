//! Subscriptions as code: the plan of a subscriptions file against the
//! server (what a PUT by key of each entry would do, from the keyed
//! preview, and with `--prune` which keyed subscriptions the file no longer
//! lists), its rendering, and applying it. Planning sends nothing to a
//! provider; applying runs one PUT or DELETE by key per change and goes on
//! past a failed one. Subscriptions without a key are never touched.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write;

use serde_json::{Value, json};

use crate::api::{Client, ClientError, ListQuery, PlannedAction, Preview, Subscription};
use crate::file::Entry;

/// What the plan does with one key.
#[derive(Debug, Clone)]
pub enum Change {
    /// The entry, and what a PUT would do (create, update or nothing).
    Put {
        /// The file's entry.
        entry: Entry,
        /// The server's keyed preview of it.
        preview: Box<Preview>,
    },
    /// A keyed subscription the file no longer lists (`--prune`).
    Delete(Box<Subscription>),
}

impl Change {
    /// The subscription key.
    pub fn key(&self) -> &str {
        match self {
            Self::Put { entry, .. } => &entry.key,
            Self::Delete(s) => s.key.as_deref().unwrap_or_default(),
        }
    }

    /// The action; a put is what its preview said.
    fn action(&self) -> Action {
        match self {
            Self::Put { preview, .. } => match preview.action {
                Some(PlannedAction::Create) | None => Action::Create,
                Some(PlannedAction::Update) => Action::Update,
                Some(PlannedAction::Unchanged) => Action::Unchanged,
            },
            Self::Delete(_) => Action::Delete,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Create,
    Update,
    Unchanged,
    Delete,
}

impl Action {
    fn sign(self) -> char {
        match self {
            Self::Create => '+',
            Self::Update => '~',
            Self::Unchanged => '=',
            Self::Delete => '-',
        }
    }

    fn word(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Unchanged => "unchanged",
            Self::Delete => "delete",
        }
    }
}

/// An entry that could not be planned, and why.
#[derive(Debug)]
pub struct Failure {
    /// The subscription key.
    pub key: String,
    /// What the server (or the way to it) said.
    pub error: ClientError,
}

/// The plan of a file.
#[derive(Debug, Default)]
pub struct Plan {
    /// One change per entry that could be planned, in file order, then
    /// the deletions by key.
    pub changes: Vec<Change>,
    /// Entries the server refused to plan.
    pub failures: Vec<Failure>,
    /// Keyed subscriptions the file does not list, when not pruning.
    pub unlisted: Vec<String>,
}

/// Plans `entries`: one keyed preview each, and one listing of the
/// tenant's subscriptions to find the keyed ones the file does not list
/// (deleted with `prune`, otherwise only counted). An entry the server
/// refuses is a [`Failure`]; a failed listing fails the whole plan.
pub async fn plan(client: &Client, entries: &[Entry], prune: bool) -> Result<Plan, ClientError> {
    let mut plan = Plan::default();
    for entry in entries {
        let mut body = entry.body.clone();
        if let Some(obj) = body.as_object_mut() {
            obj.insert("key".into(), json!(entry.key));
        }
        match client.preview(&body).await {
            Ok(preview) if preview.action.is_none() => plan.failures.push(Failure {
                key: entry.key.clone(),
                error: ClientError::Decode {
                    url: client.server().to_string(),
                    cause:
                        "the preview has no `action`: the server does not know keyed subscriptions"
                            .into(),
                },
            }),
            Ok(preview) => plan.changes.push(Change::Put {
                entry: entry.clone(),
                preview: Box::new(preview),
            }),
            Err(error) => plan.failures.push(Failure {
                key: entry.key.clone(),
                error,
            }),
        }
    }
    let listed: BTreeSet<&str> = entries.iter().map(|e| e.key.as_str()).collect();
    let mut unlisted: Vec<Subscription> = client
        .list_all(&ListQuery::default())
        .await?
        .into_iter()
        .filter(|s| s.key.as_deref().is_some_and(|k| !listed.contains(k)))
        .collect();
    unlisted.sort_by(|a, b| a.key.cmp(&b.key));
    if prune {
        plan.changes
            .extend(unlisted.into_iter().map(|s| Change::Delete(Box::new(s))));
    } else {
        plan.unlisted = unlisted.into_iter().filter_map(|s| s.key).collect();
    }
    Ok(plan)
}

impl Plan {
    fn count(&self, action: Action) -> usize {
        self.changes.iter().filter(|c| c.action() == action).count()
    }

    /// Whether applying would change anything.
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action() != Action::Unchanged)
    }

    /// The plan for a person: one line per key (`+` create, `~` update
    /// with the changed fields, `=` unchanged, `-` delete), under each
    /// change the native requests it would send (secrets redacted by the
    /// server) or the native resources it would remove, then a summary.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for change in &self.changes {
            render_change(&mut out, change);
        }
        if !self.unlisted.is_empty() {
            let _ = writeln!(
                out,
                "\n{} keyed subscription(s) not in the file, kept (--prune deletes them): {}",
                self.unlisted.len(),
                self.unlisted.join(", ")
            );
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&self.summary());
        out.push('\n');
        out
    }

    /// `Plan: 1 to create, 2 to update, 0 to delete, 3 unchanged.` (with
    /// `, N failed` when entries could not be planned), or
    /// `No changes. N subscription(s) up to date.`
    pub fn summary(&self) -> String {
        let unchanged = self.count(Action::Unchanged);
        if !self.has_changes() && self.failures.is_empty() {
            return format!("No changes. {unchanged} subscription(s) up to date.");
        }
        let mut s = format!(
            "Plan: {} to create, {} to update, {} to delete, {unchanged} unchanged",
            self.count(Action::Create),
            self.count(Action::Update),
            self.count(Action::Delete),
        );
        if !self.failures.is_empty() {
            let _ = write!(s, ", {} failed", self.failures.len());
        }
        s.push('.');
        s
    }

    /// The plan as JSON, for `--json`.
    pub fn to_json(&self) -> Value {
        let changes: Vec<Value> = self
            .changes
            .iter()
            .map(|c| match c {
                Change::Put { preview, .. } => json!({
                    "key": c.key(), "action": c.action().word(),
                    "subscription": preview.subscription, "changes": preview.changes,
                    "preview": preview,
                }),
                Change::Delete(s) => json!({
                    "key": c.key(), "action": "delete", "subscription": s.id,
                    "native": s.native,
                }),
            })
            .collect();
        json!({
            "changes": changes,
            "errors": self.failures.iter().map(failure_json).collect::<Vec<_>>(),
            "unlisted": self.unlisted,
            "summary": {
                "create": self.count(Action::Create), "update": self.count(Action::Update),
                "delete": self.count(Action::Delete), "unchanged": self.count(Action::Unchanged),
                "failed": self.failures.len(),
            },
        })
    }
}

/// A failure as JSON: the problem document when the server sent one.
pub fn failure_json(f: &Failure) -> Value {
    match f.error.problem() {
        Some(p) => json!({"key": f.key, "problem": p}),
        None => json!({"key": f.key, "message": f.error.to_string()}),
    }
}

fn render_change(out: &mut String, change: &Change) {
    let action = change.action();
    let _ = write!(out, "{} {}: {}", action.sign(), change.key(), action.word());
    match change {
        Change::Put { preview, .. } => {
            if let Some(id) = &preview.subscription {
                let _ = write!(out, " {id}");
            }
            let _ = write!(out, " ({})", preview.provider);
            if action == Action::Update && !preview.changes.is_empty() {
                let _ = write!(out, ": {}", preview.changes.join(", "));
            }
            out.push('\n');
            for warning in &preview.warnings {
                let _ = writeln!(out, "    warning: {warning}");
            }
            if action != Action::Unchanged {
                render_operations(out, preview);
            }
        }
        Change::Delete(s) => {
            let _ = writeln!(out, " {} ({})", s.id, s.provider);
            for n in &s.native {
                let _ = writeln!(out, "    delete native {} [{}]", n.id, n.events.join(", "));
            }
        }
    }
}

/// Each native resource that changes (`create`, `update`, `delete`;
/// those kept are left out), with a create's requests and an update's
/// resource as it will be. A server that lists no operations gets its
/// requests shown alone.
fn render_operations(out: &mut String, preview: &Preview) {
    if preview.native_operations.is_empty() {
        for request in &preview.requests {
            render_request(out, request, 4);
        }
        return;
    }
    for op in preview
        .native_operations
        .iter()
        .filter(|op| op.action != "keep")
    {
        let id = op.native_id.as_deref().unwrap_or(&op.key);
        let _ = writeln!(
            out,
            "    {} native {id} [{}]",
            op.action,
            op.events.join(", ")
        );
        for request in &op.requests {
            render_request(out, request, 6);
        }
        if let Some(desired) = &op.desired {
            render_json(out, desired, 6);
        }
    }
}

/// `METHOD url`, then the body as indented JSON.
fn render_request(out: &mut String, request: &Value, indent: usize) {
    let text = |k: &str| request.get(k).and_then(Value::as_str).unwrap_or("?");
    let _ = writeln!(out, "{:indent$}{} {}", "", text("method"), text("url"));
    if let Some(body) = request.get("body").filter(|b| !b.is_null()) {
        render_json(out, body, indent + 2);
    }
}

/// `value` as pretty JSON, every line indented.
fn render_json(out: &mut String, value: &Value, indent: usize) {
    let pretty = serde_json::to_string_pretty(value).unwrap_or_default();
    for line in pretty.lines() {
        let _ = writeln!(out, "{:indent$}{line}", "");
    }
}

/// Counts of what an apply did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Subscriptions created.
    pub created: usize,
    /// Subscriptions updated.
    pub updated: usize,
    /// Subscriptions deleted.
    pub deleted: usize,
    /// Entries left as they were.
    pub unchanged: usize,
    /// Changes the server refused (and entries that could not be planned).
    pub failed: usize,
    /// Changes still running at a provider when the server answered.
    pub pending: usize,
}

impl Applied {
    /// `Applied: 1 created, 0 updated, 1 deleted, 2 unchanged.` (with
    /// `, N failed` / `, N still applying`), or `No changes. …`.
    pub fn summary(&self) -> String {
        if self.created + self.updated + self.deleted + self.failed == 0 {
            return format!("No changes. {} subscription(s) up to date.", self.unchanged);
        }
        let mut s = format!(
            "Applied: {} created, {} updated, {} deleted, {} unchanged",
            self.created, self.updated, self.deleted, self.unchanged
        );
        if self.pending > 0 {
            let _ = write!(s, ", {} still applying at the provider", self.pending);
        }
        if self.failed > 0 {
            let _ = write!(s, ", {} failed", self.failed);
        }
        s.push('.');
        s
    }
}

/// Applies `plan`: a PUT by key for each create and update, a DELETE by
/// key for each deletion, in plan order, going on past failures. Each
/// change is reported on `out` as it is done, each failure on `err` with
/// its key.
pub async fn apply(
    client: &Client,
    plan: &Plan,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Applied {
    let mut done = Applied {
        failed: plan.failures.len(),
        ..Applied::default()
    };
    for change in &plan.changes {
        let action = change.action();
        let key = change.key();
        let result = match change {
            Change::Put { .. } if action == Action::Unchanged => {
                done.unchanged += 1;
                continue;
            }
            Change::Put { entry, .. } => client.put_by_key(key, &entry.body).await.map(|put| {
                let created = put.created;
                if created {
                    done.created += 1;
                } else {
                    done.updated += 1;
                }
                (
                    if created { "created" } else { "updated" },
                    put.subscription.id,
                    put.pending,
                )
            }),
            Change::Delete(s) => client.delete_by_key(key).await.map(|pending| {
                done.deleted += 1;
                ("deleted", s.id.clone(), pending.is_some())
            }),
        };
        match result {
            Ok((verb, id, pending)) => {
                done.pending += usize::from(pending);
                let tail = if pending {
                    " (still applying at the provider)"
                } else {
                    ""
                };
                let _ = writeln!(out, "{} {key}: {verb} {id}{tail}", action.sign());
            }
            Err(e) => {
                done.failed += 1;
                report_failure(err, key, &e);
            }
        }
    }
    done
}

/// `error: subscription `key`: <the problem, rendered>`.
pub fn report_failure(err: &mut dyn Write, key: &str, e: &ClientError) {
    let _ = writeln!(err, "error: subscription `{key}`: {e}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str) -> Entry {
        Entry {
            index: 1,
            key: key.into(),
            body: json!({"provider": "talkover", "url": "https://x.io", "events": ["call.ended"]}),
        }
    }

    fn put(key: &str, preview: Value) -> Change {
        Change::Put {
            entry: entry(key),
            preview: Box::new(serde_json::from_value(preview).unwrap()),
        }
    }

    fn sample() -> Plan {
        Plan {
            changes: vec![
                put(
                    "calls",
                    json!({
                        "action": "create", "provider": "talkover", "kind": "talkover",
                        "requests": [{"method": "POST", "url": "http://sim/api/v1/agents/a/webhooks",
                                      "headers": {"Authorization": "***"},
                                      "body": {"webhook_url": "https://x.io", "webhook_secret": "***"}}],
                        "warnings": [],
                    }),
                ),
                put(
                    "sms",
                    json!({
                        "action": "update", "subscription": "sub_1", "changes": ["events", "url"],
                        "provider": "bird", "kind": "accesskey-workspace",
                        "requests": [{"method": "POST", "url": "http://sim/workspaces/w/subscriptions",
                                      "headers": {}, "body": null}],
                        "warnings": ["`format` dropped"],
                        "native_operations": [
                            {"key": "sms.inbound", "action": "update", "native_id": "n1",
                             "events": ["sms.inbound"], "requests": [], "desired": {"url": "https://y.io"}},
                            {"key": "sms.outbound", "action": "create", "native_id": null,
                             "events": ["sms.outbound"],
                             "requests": [{"method": "POST", "url": "http://sim/workspaces/w/subscriptions",
                                           "headers": {}, "body": null}], "desired": null},
                            {"key": "sms.status", "action": "delete", "native_id": "n3",
                             "events": ["sms.status"], "requests": [], "desired": null},
                            {"key": "sms.kept", "action": "keep", "native_id": "n4",
                             "events": ["sms.kept"], "requests": [], "desired": null},
                        ],
                    }),
                ),
                put(
                    "crm",
                    json!({
                        "action": "unchanged", "subscription": "sub_2", "changes": [],
                        "provider": "telegent", "kind": "telegent",
                        "requests": [{"method": "PUT", "url": "http://never/shown"}], "warnings": [],
                    }),
                ),
                Change::Delete(Box::new(
                    serde_json::from_value(json!({
                        "id": "sub_3", "key": "old", "status": "active", "provider": "sendblue",
                        "url": "https://x.io/old", "events": ["message.received"],
                        "native": [{"id": "receive https://x.io/old", "key": "receive",
                                    "events": ["receive"], "status": "active"}],
                    }))
                    .unwrap(),
                )),
            ],
            failures: vec![],
            unlisted: vec![],
        }
    }

    #[test]
    fn renders_each_change_down_to_the_native_requests() {
        assert_eq!(
            sample().render(),
            "\
+ calls: create (talkover)
    POST http://sim/api/v1/agents/a/webhooks
      {
        \"webhook_secret\": \"***\",
        \"webhook_url\": \"https://x.io\"
      }
~ sms: update sub_1 (bird): events, url
    warning: `format` dropped
    update native n1 [sms.inbound]
      {
        \"url\": \"https://y.io\"
      }
    create native sms.outbound [sms.outbound]
      POST http://sim/workspaces/w/subscriptions
    delete native n3 [sms.status]
= crm: unchanged sub_2 (telegent)
- old: delete sub_3 (sendblue)
    delete native receive https://x.io/old [receive]

Plan: 1 to create, 1 to update, 1 to delete, 1 unchanged.
"
        );
    }

    #[test]
    fn an_unchanged_plan_says_no_changes_and_counts_failures_otherwise() {
        let mut plan = sample();
        plan.changes.retain(|c| c.action() == Action::Unchanged);
        plan.unlisted = vec!["legacy".into()];
        assert!(!plan.has_changes());
        assert_eq!(
            plan.render(),
            "= crm: unchanged sub_2 (telegent)\n\n\
             1 keyed subscription(s) not in the file, kept (--prune deletes them): legacy\n\n\
             No changes. 1 subscription(s) up to date.\n"
        );
        plan.failures.push(Failure {
            key: "bad".into(),
            error: ClientError::Usage("x".into()),
        });
        assert_eq!(
            plan.summary(),
            "Plan: 0 to create, 0 to update, 0 to delete, 1 unchanged, 1 failed."
        );
        assert_eq!(
            plan.to_json()["errors"][0],
            json!({"key": "bad", "message": "x"})
        );
    }

    #[test]
    fn json_names_each_action_and_the_summary() {
        let v = sample().to_json();
        let actions: Vec<&str> = v["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["action"].as_str().unwrap())
            .collect();
        assert_eq!(actions, ["create", "update", "unchanged", "delete"]);
        assert_eq!(v["changes"][1]["changes"], json!(["events", "url"]));
        assert_eq!(
            v["summary"],
            json!({"create": 1, "update": 1, "delete": 1, "unchanged": 1, "failed": 0})
        );
    }

    #[test]
    fn apply_summaries() {
        assert_eq!(
            Applied {
                unchanged: 4,
                ..Applied::default()
            }
            .summary(),
            "No changes. 4 subscription(s) up to date."
        );
        assert_eq!(
            Applied {
                created: 1,
                deleted: 2,
                unchanged: 1,
                failed: 1,
                pending: 1,
                ..Applied::default()
            }
            .summary(),
            "Applied: 1 created, 0 updated, 2 deleted, 1 unchanged, 1 still applying at the provider, 1 failed."
        );
    }
}
