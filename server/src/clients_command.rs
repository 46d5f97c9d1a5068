//! `deviceflow-server clients add|list|remove`: the binary's client of the admin API
//! for applications (`endpoints/admin_clients.rs`), for scripts. Part of the binary,
//! not of the library: it only speaks HTTP to a running server, with the admin token.

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::{Args, Subcommand, ValueEnum};
use deviceflow_device::{normal_issuer, request, Method, StatusCode};
use deviceflow_reports::escape::{clip, json_for_terminal, terminal, Printable};
use deviceflow_reports::outln;
use deviceflow_server::config::is_presentable;
use deviceflow_server::http::form::percent_encode;
use deviceflow_server::http::paths;
use deviceflow_wire::{GRANT_TYPE_DEVICE_CODE, GRANT_TYPE_REFRESH_TOKEN};
use serde_json::{json, Value};

/// Where the server is and how to be let in.
#[derive(Args)]
pub(crate) struct Target {
    /// The server's issuer (http:// or https://; a private CA's certificate in SSL_CERT_FILE).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    issuer: String,
    /// The server's admin token (`admin.token`).
    // Optional to clap, so that its absence is said here, with the variable's name
    // (clap's "required arguments were not provided" named only the option).
    #[arg(long, env = "DEVICEFLOW_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Print the server's JSON answer instead of `name=value` lines.
    #[arg(long)]
    json: bool,
}

/// How a registered client authenticates at the token endpoint (RFC 7591 §2).
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum AuthMethod {
    /// A public client: no secret (a device app).
    None,
    /// A confidential client, secret in HTTP Basic.
    ClientSecretBasic,
    /// A confidential client, secret in the form body.
    ClientSecretPost,
}

impl AuthMethod {
    fn as_str(self) -> &'static str {
        match self {
            AuthMethod::None => "none",
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
        }
    }
}

#[derive(Subcommand)]
pub(crate) enum ClientsCommand {
    /// Registers an application; prints its client_id (and a confidential client's
    /// secret, shown this once).
    Add {
        #[command(flatten)]
        target: Target,
        /// The name people see when they approve it.
        #[arg(long)]
        name: String,
        /// `none` (public, the default) or a confidential client's method.
        #[arg(long, value_enum, default_value = "none")]
        auth_method: AuthMethod,
        /// Scopes it may ask for, space-separated; default: every scope of the server.
        #[arg(long)]
        scope: Option<String>,
        /// Do not issue it refresh tokens (RFC 6749 §6).
        #[arg(long)]
        no_refresh: bool,
    },
    /// Lists every application, configured and registered: a line naming the columns,
    /// then one line per application, tab-separated.
    List {
        #[command(flatten)]
        target: Target,
    },
    /// Gives a registered confidential application a new secret, printed this once;
    /// the old one stops working at once.
    Rotate {
        #[command(flatten)]
        target: Target,
        /// The client_id whose secret to replace.
        client_id: String,
    },
    /// Deletes a registered application: its codes and tokens stop working.
    Remove {
        #[command(flatten)]
        target: Target,
        /// The client_id to delete.
        client_id: String,
    },
}

/// Runs one `clients` command.
pub(crate) fn run(command: &ClientsCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async {
        match command {
            ClientsCommand::Add {
                target,
                name,
                auth_method,
                scope,
                no_refresh,
            } => {
                let mut grant_types = vec![GRANT_TYPE_DEVICE_CODE];
                if !no_refresh {
                    grant_types.push(GRANT_TYPE_REFRESH_TOKEN);
                }
                let mut metadata = json!({
                    "client_name": name,
                    "token_endpoint_auth_method": auth_method.as_str(),
                    "grant_types": grant_types,
                });
                if let Some(scope) = scope {
                    metadata["scope"] = json!(scope);
                }
                let body = Bytes::from(metadata.to_string());
                let added = call(target, Method::POST, "", Some(body), StatusCode::CREATED)
                    .await
                    .context("clients add")?;
                // What a script goes on with: a client_id, and a confidential client's
                // secret, shown this once. Without a client_id, nothing this command
                // can report was registered; with one but no secret, a client nobody
                // can use was, and must go.
                let id = printable_value(&added, "client_id")
                    .context("nothing was registered that this command can report")
                    .context("clients add")?;
                if !matches!(auth_method, AuthMethod::None) {
                    printable_value(&added, "client_secret").with_context(|| {
                        let id = Printable(id);
                        format!("clients add registered {id}, but its secret is not in the answer; remove it (deviceflow-server clients remove {id}) and add it again")
                    })?;
                }
                // Registered: a secret not printed is lost, and the client must go.
                print_client(target, &added, &["client_id", "client_secret"]).with_context(|| {
                    let id = &added["client_id"].as_str().unwrap_or_default();
                    format!("clients add registered {id}, but could not print it; remove it (deviceflow-server clients remove {id}) and add it again")
                })?;
            }
            ClientsCommand::List { target } => {
                let clients = list(target).await.context("clients list")?;
                if target.json {
                    outln!("{}", json_for_terminal(&json!({ "clients": clients }).to_string()))?;
                } else {
                    outln!("{}", COLUMNS.join("\t"))?;
                    for client in &clients {
                        // The server's words as text: a name holding an escape
                        // sequence never reaches the terminal as one, nor a tab or a
                        // line break as another column or line.
                        let line: Vec<String> = COLUMNS
                            .iter()
                            .map(|name| Printable(text(&client[*name])).to_string())
                            .collect();
                        outln!("{}", line.join("\t"))?;
                    }
                }
            }
            ClientsCommand::Rotate { target, client_id } => {
                let path = format!("/{}/secret", percent_encode(client_id));
                let named = Printable(&clip(client_id, 60)).to_string();
                let rotated = call(target, Method::POST, &path, None, StatusCode::OK)
                    .await
                    .with_context(|| format!("clients rotate {named}"))?;
                // The old secret is gone already: a new one not printed is lost. The
                // client_id is the one named.
                printable_value(&rotated, "client_secret")
                    .context("the secret was replaced, but the answer does not say with what: rotate it again")
                    .with_context(|| format!("clients rotate {named}"))?;
                // Rotated: the old secret is gone, and a new one not printed is lost.
                print_client(target, &rotated, &["client_id", "client_secret"]).with_context(|| {
                    format!("clients rotate {named} replaced the secret, but could not print it; rotate it again")
                })?;
            }
            ClientsCommand::Remove { target, client_id } => {
                // One path segment (RFC 3986 §3.3): a `#`, `?` or `/` in it is part of the
                // client_id named, not the end of the path (`remove "ID#x"` deleted `ID`).
                let path = format!("/{}", percent_encode(client_id));
                // The argument as text too: an escape sequence pasted in it never reaches
                // the terminal as one.
                let named = Printable(&clip(client_id, 60)).to_string();
                call(target, Method::DELETE, &path, None, StatusCode::NO_CONTENT)
                    .await
                    .with_context(|| format!("clients remove {named}"))?;
                if !target.json {
                    outln!("removed={}", Printable(client_id))?;
                }
            }
        }
        Ok(())
    })
}

/// The columns of `clients list`, named for the members of the admin API's answer
/// they show. `token_endpoint_auth_method` is RFC 7591 §2's one method: a registered
/// client is accepted with it alone; a configured confidential client with each of its
/// `auth_methods` (both, unless the configuration names one), of which the API gives
/// the first. Named so, the column says that, not every method a client may use.
const COLUMNS: [&str; 5] = [
    "client_id",
    "source",
    "token_endpoint_auth_method",
    "scope",
    "client_name",
];

/// The most pages `clients list` reads: 49,152 registered clients (all a store can
/// give) and the configured ones fill 66 pages of 1,000.
const MAX_PAGES: usize = 100;

/// Every client, read page by page (`GET /admin/clients?after=NEXT`): the whole list
/// in one answer outgrows what a client reads (1 MiB, about 3,000 clients).
async fn list(target: &Target) -> anyhow::Result<Vec<Value>> {
    let mut clients = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let rest = match &after {
            None => String::new(),
            Some(next) => format!("?after={}", percent_encode(next)),
        };
        let mut page = call(target, Method::GET, &rest, None, StatusCode::OK).await?;
        let Some(listed) = page.get_mut("clients").and_then(Value::as_array_mut) else {
            bail!(
                "the server answered without a list of \"clients\"; is this the server's issuer?"
            );
        };
        clients.append(listed);
        match page.get("next") {
            None | Some(Value::Null) => return Ok(clients),
            Some(Value::String(next)) if after.as_ref() != Some(next) => {
                after = Some(next.clone());
            }
            Some(next) => bail!(
                "the server's pages do not end (\"next\": {}); is this the server's issuer?",
                Printable(&clip(&next.to_string(), 40))
            ),
        }
    }
    bail!("the server's pages do not end after {MAX_PAGES} pages (\"next\" each time)")
}

/// `answer[field]`: a non-empty string of printable characters, or why not.
fn printable_value<'a>(answer: &'a Value, field: &str) -> anyhow::Result<&'a str> {
    match answer[field].as_str() {
        Some(v) if !v.is_empty() && !v.chars().any(char::is_control) => Ok(v),
        Some(v) => bail!(
            "the server answered a {field} that is not one: \"{}\"",
            Printable(&clip(v, 60))
        ),
        None => bail!("the server's answer has no {field}"),
    }
}

/// The `name=value` lines of `fields` that `answer` has, or the answer as JSON.
fn print_client(target: &Target, answer: &Value, fields: &[&str]) -> anyhow::Result<()> {
    if target.json {
        return Ok(outln!("{}", json_for_terminal(&answer.to_string()))?);
    }
    for field in fields {
        if let Some(value) = answer[*field].as_str() {
            outln!("{field}={}", Printable(value))?;
        }
    }
    Ok(())
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}

/// One admin API request; an answer other than `expected` is an error that says what
/// the server said.
async fn call(
    target: &Target,
    method: Method,
    rest: &str,
    body: Option<Bytes>,
    expected: StatusCode,
) -> anyhow::Result<Value> {
    // The device's check: a query, a fragment, a user name or no scheme is said as
    // such (a query had made "http://h?x=1/admin/clients").
    let issuer = normal_issuer(&target.issuer)?;
    let url = format!("{issuer}{}{rest}", paths::ADMIN_CLIENTS);
    // RFC 9110 §5.5: a field value is visible ASCII and spaces; a token pasted with its
    // line break is named here, never shown (the HTTP layer said "failed to parse
    // header value").
    // An empty DEVICEFLOW_ADMIN_TOKEN is none (clap passes it on as a value).
    let Some(admin_token) = target.admin_token.as_deref().filter(|t| !t.is_empty()) else {
        bail!("no admin token: set DEVICEFLOW_ADMIN_TOKEN or pass --admin-token (the server's admin.token)");
    };
    if !is_presentable(admin_token) {
        bail!("the admin token must be printable ASCII, without spaces at either end or line breaks (it is sent as an HTTP header); check DEVICEFLOW_ADMIN_TOKEN or --admin-token");
    }
    let bearer = format!("Bearer {admin_token}");
    let body = body.map(|b| ("application/json", b));
    let (status, answer) = request(method, &url, Some(&bearer), body).await?;
    if status != expected {
        let why = match serde_json::from_slice::<Value>(&answer) {
            Ok(v) if v["error"].is_string() => match v["error_description"].as_str() {
                Some(description) => format!("{} ({description})", text(&v["error"])),
                None => text(&v["error"]).to_owned(),
            },
            _ if answer.is_empty() => "nothing (an empty body)".to_owned(),
            _ => String::from_utf8_lossy(&answer).into_owned(),
        };
        // The server's words (a proxy's HTML page, a hostile answer): one line, bounded,
        // shown as text, never obeyed by the terminal.
        let why = terminal(&clip(&why, 200));
        if status == StatusCode::NOT_FOUND && rest.is_empty() {
            bail!("{url} answered 404: is the admin API on (admin.token) and is this the server's issuer?");
        }
        if status.is_success() {
            bail!("{url} answered {status} where {expected} was expected: {why}");
        }
        bail!("{url} answered {status}: {why}");
    }
    if answer.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&answer).with_context(|| format!("{url} answered something not JSON"))
}
