//! The client commands of the `switchboard` binary (flattened into its
//! command list by `crates/server/src/main.rs`) and [`run`], which carries
//! one out against a running server. Exit codes: 0 done, 1 the server
//! refused something or could not be reached, 2 bad input (a subscriptions
//! file, a missing token, a bad `--server`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde::Serialize;
use switchboard_core::Secret;

use crate::api::{Action, Client, ClientError, ListQuery, MAX_PAGE, Page};
use crate::{file, plan, render};

/// The server, for every client command.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Root URL of the Switchboard server.
    #[arg(
        long,
        env = "SWITCHBOARD_SERVER",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub server: String,
}

/// Server, token and output format.
#[derive(Debug, Clone, Args)]
pub struct Conn {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub server: ServerArgs,
    /// API token (sent as `Authorization: Bearer`; never printed).
    #[arg(long, env = "SWITCHBOARD_TOKEN", hide_env_values = true, global = true,
          value_parser = parse_secret)]
    pub token: Option<Secret>,
    /// Print JSON (the API's, for reads) instead of tables and text.
    #[arg(long, global = true)]
    pub json: bool,
}

fn parse_secret(s: &str) -> Result<Secret, String> {
    Ok(Secret::new(s))
}

/// The commands that talk to a running server.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Read and change subscriptions on a running server.
    Subscriptions {
        #[command(flatten)]
        #[allow(missing_docs)]
        conn: Conn,
        #[command(subcommand)]
        #[allow(missing_docs)]
        action: SubscriptionsAction,
    },
    /// The server's provider instances and what each can do (capability matrix).
    Providers(Conn),
    /// The normalized event catalog and each provider kind's native names.
    Events(Conn),
    /// Readiness probe for containers: GET /readyz, exit 0 when ready.
    Healthcheck(ServerArgs),
    /// Show what `apply` would change, down to the native requests; changes nothing.
    Plan(FileArgs),
    /// Make the server's keyed subscriptions match a subscriptions file.
    Apply(FileArgs),
}

/// `subscriptions …`.
#[derive(Debug, Clone, Subcommand)]
pub enum SubscriptionsAction {
    /// List subscriptions (the first 50 unless --all or --limit).
    List {
        /// Only this provider instance.
        #[arg(long)]
        provider: Option<String>,
        /// Only this status (active, disabled, pending, degraded, failed).
        #[arg(long)]
        status: Option<String>,
        /// Every subscription, following the cursors.
        #[arg(long, conflicts_with = "limit")]
        all: bool,
        /// At most this many, following the cursors as needed.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        limit: Option<u32>,
    },
    /// Show one subscription and its native resources.
    Get {
        /// Subscription id.
        id: String,
    },
    /// Delete a subscription and its native resources.
    Delete {
        /// Subscription id.
        id: String,
    },
    /// Switch deliveries off, keeping the subscription.
    Disable {
        /// Subscription id.
        id: String,
    },
    /// Switch deliveries on.
    Enable {
        /// Subscription id.
        id: String,
    },
    /// Compare with the provider and repair drift.
    Reconcile {
        /// Subscription id.
        id: String,
    },
}

/// `plan` and `apply`.
#[derive(Debug, Clone, Args)]
pub struct FileArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub conn: Conn,
    /// The subscriptions file (TOML, see docs/subscriptions-as-code.md).
    #[arg(short = 'f', long = "file")]
    pub file: PathBuf,
    /// Also delete keyed subscriptions the file no longer lists
    /// (subscriptions without a key are never touched).
    #[arg(long)]
    pub prune: bool,
}

/// The server refused, or could not be reached.
const FAILED: u8 = 1;
/// Bad input: the subscriptions file, a missing token, a bad `--server`.
const INVALID: u8 = 2;
/// How long one call may take: a create waits for its providers.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the readiness probe waits.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Carries out `command` on a runtime of its own.
pub fn run(command: Command) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("switchboard: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    ExitCode::from(runtime.block_on(dispatch(command)))
}

async fn dispatch(command: Command) -> u8 {
    match command {
        Command::Healthcheck(server) => healthcheck(&server.server).await,
        Command::Subscriptions { conn, action } => {
            let json = conn.json;
            with_client(&conn, |c| subscriptions(c, json, action)).await
        }
        Command::Providers(conn) => {
            let json = conn.json;
            with_client(&conn, |c| async move {
                let list = c.providers().await?;
                print_or_json(json, &list, || render::providers(&list))
            })
            .await
        }
        Command::Events(conn) => {
            let json = conn.json;
            with_client(&conn, |c| async move {
                let list = c.events().await?;
                print_or_json(json, &list, || render::events(&list))
            })
            .await
        }
        Command::Plan(args) => plan_or_apply(args, false).await,
        Command::Apply(args) => plan_or_apply(args, true).await,
    }
}

/// A client from `conn`, or the exit code of why there is none.
fn client(conn: &Conn) -> Result<Client, u8> {
    let Some(token) = conn.token.clone() else {
        eprintln!("switchboard: no API token: pass --token or set SWITCHBOARD_TOKEN");
        return Err(INVALID);
    };
    Client::new(&conn.server.server, Some(token), CALL_TIMEOUT).map_err(|e| {
        eprintln!("switchboard: {e}");
        INVALID
    })
}

/// Runs `f` with a client; an error it returns is printed, exit 1.
async fn with_client<F, Fut>(conn: &Conn, f: F) -> u8
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = Result<u8, ClientError>>,
{
    let client = match client(conn) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match f(client).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            FAILED
        }
    }
}

/// Prints `value` as JSON, or the text `table` makes of it.
fn print_or_json<T: Serialize>(
    json: bool,
    value: &T,
    table: impl FnOnce() -> String,
) -> Result<u8, ClientError> {
    if json {
        match serde_json::to_string_pretty(value) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("switchboard: {e}");
                return Ok(FAILED);
            }
        }
    } else {
        print!("{}", table());
    }
    Ok(0)
}

async fn subscriptions(
    client: Client,
    json: bool,
    action: SubscriptionsAction,
) -> Result<u8, ClientError> {
    let (id, act) = match action {
        SubscriptionsAction::List {
            provider,
            status,
            all,
            limit,
        } => {
            let q = ListQuery {
                provider,
                status,
                ..ListQuery::default()
            };
            return list(&client, json, q, if all { None } else { Some(limit) }).await;
        }
        SubscriptionsAction::Get { id } => {
            let s = client.get(&id).await?;
            return print_or_json(json, &s, || render::subscription(&s));
        }
        SubscriptionsAction::Delete { id } => {
            let pending = client.delete(&id).await?;
            return match pending {
                Some(s) => print_or_json(json, &s, || {
                    format!("deleting {id}: still removing native resources at the provider\n")
                }),
                None if json => Ok(0),
                None => {
                    println!("deleted {id}");
                    Ok(0)
                }
            };
        }
        SubscriptionsAction::Disable { id } => (id, Action::Disable),
        SubscriptionsAction::Enable { id } => (id, Action::Enable),
        SubscriptionsAction::Reconcile { id } => (id, Action::Reconcile),
    };
    let s = client.act(&id, act).await?;
    print_or_json(json, &s, || render::subscription(&s))
}

/// `limit`: `None` for every subscription, `Some(None)` for one default
/// page, `Some(Some(n))` for at most `n`.
async fn list(
    client: &Client,
    json: bool,
    mut q: ListQuery,
    limit: Option<Option<u32>>,
) -> Result<u8, ClientError> {
    let page = match limit {
        None => Page {
            data: client.list_all(&q).await?,
            next_cursor: None,
        },
        Some(None) => client.list(&q).await?,
        Some(Some(n)) => {
            let mut data = Vec::new();
            loop {
                let left = n.saturating_sub(u32::try_from(data.len()).unwrap_or(u32::MAX));
                q.limit = Some(left.min(MAX_PAGE));
                let page = client.list(&q).await?;
                data.extend(page.data);
                q.cursor = page.next_cursor;
                if q.cursor.is_none() || data.len() >= n as usize {
                    break Page {
                        data,
                        next_cursor: q.cursor,
                    };
                }
            }
        }
    };
    print_or_json(json, &page, || render::subscriptions(&page.data))?;
    if !json && page.next_cursor.is_some() {
        eprintln!("(more subscriptions: --all lists every one, --limit N more)");
    }
    Ok(0)
}

/// `healthcheck`: one line, exit 0 when `/readyz` answers 200.
async fn healthcheck(server: &str) -> u8 {
    let client = match Client::new(server, None, PROBE_TIMEOUT) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("switchboard: {e}");
            return INVALID;
        }
    };
    match client.ready().await {
        Ok(body) => {
            let db = body["database"].as_str().unwrap_or("unknown");
            println!("ready: {} (database {db})", client.server());
            0
        }
        Err(ClientError::Problem(p)) => {
            println!("not ready: {} answered {}", client.server(), p.status);
            FAILED
        }
        Err(ClientError::Status { status, .. }) => {
            println!("not ready: {} answered {status}", client.server());
            FAILED
        }
        Err(e) => {
            println!("not ready: {e}");
            FAILED
        }
    }
}

/// Reads and parses the file, printing every problem of it.
fn read_file(path: &Path) -> Result<Vec<file::Entry>, u8> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        eprintln!("error: {}: {e}", path.display());
        INVALID
    })?;
    file::parse(&text, &|name| std::env::var(name).ok()).map_err(|errors| {
        for e in &errors {
            eprintln!("error: {}: {e}", path.display());
        }
        eprintln!(
            "{}: {} problem(s); nothing was planned or applied",
            path.display(),
            errors.len()
        );
        INVALID
    })
}

/// `plan` and `apply`: the plan, then (for apply) its changes.
async fn plan_or_apply(args: FileArgs, apply: bool) -> u8 {
    let entries = match read_file(&args.file) {
        Ok(e) => e,
        Err(code) => return code,
    };
    let client = match client(&args.conn) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let plan = match plan::plan(&client, &entries, args.prune).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return FAILED;
        }
    };
    let mut err = std::io::stderr();
    for f in &plan.failures {
        plan::report_failure(&mut err, &f.key, &f.error);
    }
    let failed = if apply {
        let mut out = std::io::stdout();
        let done = plan::apply(&client, &plan, &mut out, &mut err).await;
        if args.conn.json {
            let _ = writeln!(out, "{}", applied_json(&plan, &done));
        } else {
            let _ = writeln!(out, "{}", done.summary());
        }
        done.failed
    } else {
        if args.conn.json {
            println!("{:#}", plan.to_json());
        } else {
            print!("{}", plan.render());
        }
        plan.failures.len()
    };
    if failed > 0 { FAILED } else { 0 }
}

/// The summary of an apply as JSON.
fn applied_json(plan: &plan::Plan, done: &plan::Applied) -> serde_json::Value {
    serde_json::json!({
        "created": done.created, "updated": done.updated, "deleted": done.deleted,
        "unchanged": done.unchanged, "failed": done.failed, "pending": done.pending,
        "plan_errors": plan.failures.iter().map(plan::failure_json).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[test]
    fn the_commands_are_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn connection_options_go_before_or_after_the_action() {
        let cli = Cli::try_parse_from([
            "sb",
            "subscriptions",
            "--server",
            "http://a:1",
            "list",
            "--token",
            "t0k",
            "--json",
            "--limit",
            "5",
        ])
        .unwrap();
        let Command::Subscriptions { conn, action } = cli.command else {
            panic!("{cli:?}")
        };
        assert_eq!(conn.server.server, "http://a:1");
        assert_eq!(conn.token.as_ref().map(Secret::expose), Some("t0k"));
        assert!(conn.json);
        assert!(matches!(
            action,
            SubscriptionsAction::List {
                limit: Some(5),
                all: false,
                ..
            }
        ));
        assert!(!format!("{conn:?}").contains("t0k"));
    }

    #[test]
    fn plan_takes_a_file_and_prune() {
        let cli =
            Cli::try_parse_from(["sb", "apply", "-f", "subs.toml", "--prune", "--token", "t"])
                .unwrap();
        let Command::Apply(args) = cli.command else {
            panic!()
        };
        assert_eq!(args.file, PathBuf::from("subs.toml"));
        assert!(args.prune);
        assert!(
            Cli::try_parse_from(["sb", "subscriptions", "list", "--all", "--limit", "3"]).is_err()
        );
    }
}
