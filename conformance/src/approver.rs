//! The person who approves or denies, made pluggable.
//!
//! The device flow has a human step in the middle; a black-box suite (and a device
//! fleet) must be able to play it against any server. One implementation, shared by the
//! conformance suite and the load generator:
//! - [`Approver::None`]: nobody; cases that need a decision are skipped, saying so.
//! - [`Approver::Admin`]: deviceflow-server's admin decision endpoint.
//! - [`Approver::Command`]: any program, with placeholders for the code, the complete
//!   verification URI and the action, so anyone can script their own server's sign-in
//!   and consent (see `approvers/` for django-oauth-toolkit's).
//! - [`Approver::Manual`]: shows the code and waits for a person to press Enter.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use deviceflow_reports::errln;
use deviceflow_reports::escape::terminal;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};
use tokio::sync::Mutex;

use crate::http::{form, Http, Request};

/// What the person does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Approve,
    Deny,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Approve => "approve",
            Action::Deny => "deny",
        }
    }
}

/// Who plays the person, as chosen on a command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ApproverKind {
    None,
    Admin,
    Command,
    Manual,
}

/// The approver options every command of the workspace takes, one spelling for all.
#[derive(Debug, Clone, clap::Args)]
pub struct ApproverArgs {
    /// Who plays the person: nobody, deviceflow-server's admin endpoint, a command, or
    /// you at the keyboard. Default: admin when --admin-token is given on the command
    /// line, else none (DEVICEFLOW_ADMIN_TOKEN alone never chooses admin).
    #[arg(long, value_enum)]
    pub approver: Option<ApproverKind>,
    /// Admin decision endpoint (default: ISSUER/admin/decisions); only with the admin
    /// approver.
    #[arg(long)]
    pub admin_url: Option<String>,
    /// Admin bearer token. With --approver admin and no --admin-token, read from
    /// DEVICEFLOW_ADMIN_TOKEN; that variable alone never chooses the admin approver.
    // Not clap's `env`: a token from the environment then looked given on the command
    // line, chose the admin approver by itself, and went as `Authorization: Bearer` to
    // whatever server was under test.
    #[arg(long)]
    pub admin_token: Option<String>,
    /// The user the admin approver decides as.
    #[arg(long, default_value = "demo")]
    pub admin_user: String,
    /// Approver command, with --approver command; placeholders {user_code} {verification_uri} {verification_uri_complete} {action}.
    #[arg(long)]
    pub approver_command: Option<String>,
}

impl ApproverArgs {
    /// Builds the approver; `issuer` gives the admin endpoint's default URL. The error
    /// says which option is missing.
    pub fn build(&self, issuer: Option<&str>) -> Result<Approver, String> {
        self.build_with_env(issuer, std::env::var(ADMIN_TOKEN_ENV).ok())
    }

    /// [`ApproverArgs::build`], with `env_token` the value of
    /// [`ADMIN_TOKEN_ENV`]: used only by an explicit `--approver admin` that has no
    /// `--admin-token`. The admin approver sends its token to the admin URL, the
    /// server's by default: it is chosen only on the command line, never by a variable
    /// left in the environment.
    pub fn build_with_env(
        &self,
        issuer: Option<&str>,
        env_token: Option<String>,
    ) -> Result<Approver, String> {
        let kind = self.approver.unwrap_or(if self.admin_token.is_some() {
            ApproverKind::Admin
        } else {
            ApproverKind::None
        });
        self.contradiction(kind)?;
        Ok(match kind {
            ApproverKind::None => Approver::None,
            ApproverKind::Admin => {
                let (token, token_from) = match (&self.admin_token, env_token) {
                    // An unset shell variable (`--admin-token "$ADMIN"`): every decision
                    // would be refused, and the cases they decide left unjudged.
                    (Some(t), _) if t.is_empty() => {
                        return Err("--admin-token is empty: give the server's admin token (deviceflow-server prints it at start: \"Admin token for this run: …\")".into())
                    }
                    (Some(t), _) => (t.clone(), None),
                    (None, Some(t)) if !t.is_empty() => (t, Some(ADMIN_TOKEN_ENV)),
                    _ => {
                        return Err(
                            "--approver admin needs --admin-token (or DEVICEFLOW_ADMIN_TOKEN)"
                                .into(),
                        )
                    }
                };
                let url = match (&self.admin_url, issuer) {
                    (Some(u), _) => match crate::target::unusable_endpoint(u) {
                        // Not echoed whole: the password would reach the terminal.
                        Some(why) => {
                            return Err(format!(
                                "--admin-url {} cannot be used, {why}",
                                redact_url(u)
                            ))
                        }
                        None => u.clone(),
                    },
                    (None, Some(i)) => format!("{}/admin/decisions", i.trim_end_matches('/')),
                    (None, None) => {
                        return Err(
                            "--approver admin needs --admin-url when there is no issuer".into()
                        )
                    }
                };
                let mut approver = Approver::admin(url, token, self.admin_user.clone());
                if let Approver::Admin {
                    token_from: from, ..
                } = &mut approver
                {
                    *from = token_from;
                }
                approver
            }
            ApproverKind::Command => {
                let template = self
                    .approver_command
                    .as_deref()
                    .ok_or("--approver command needs --approver-command")?;
                Approver::command(template, Duration::from_secs(60))?
            }
            ApproverKind::Manual => Approver::manual(),
        })
    }
}

impl ApproverArgs {
    /// Why the options given contradict the approver `kind` they end up choosing, if
    /// they do: an option the chosen approver never reads was meant for another, and
    /// running without it would test something else than asked (no decisions at all,
    /// or a program never run), in silence.
    fn contradiction(&self, kind: ApproverKind) -> Result<(), String> {
        let chosen = match self.approver {
            Some(k) => format!(
                "--approver {}",
                clap::ValueEnum::to_possible_value(&k)
                    .map_or(String::new(), |v| v.get_name().to_owned())
            ),
            None => "the approver chosen by default (none, without --admin-token)".to_owned(),
        };
        if self.approver_command.is_some() && kind != ApproverKind::Command {
            return Err(format!(
                "--approver-command is given but {chosen} never runs it: add --approver command (or drop --approver-command)"
            ));
        }
        if kind == ApproverKind::None {
            for (given, option) in [
                (self.admin_token.is_some(), "--admin-token"),
                (self.admin_url.is_some(), "--admin-url"),
            ] {
                if given {
                    return Err(format!(
                        "{option} is given but {chosen} makes no decisions: use --approver admin (or drop {option})"
                    ));
                }
            }
        }
        if self.admin_url.is_some() && kind != ApproverKind::Admin {
            return Err(format!(
                "--admin-url is given but {chosen} does not use it: it is for --approver admin"
            ));
        }
        Ok(())
    }
}

/// The environment variable `--approver admin` reads its token from when
/// `--admin-token` is not given.
pub const ADMIN_TOKEN_ENV: &str = "DEVICEFLOW_ADMIN_TOKEN";

/// The codes a person is shown (RFC 8628 §3.3).
#[derive(Debug, Clone)]
pub struct Prompt {
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
}

#[derive(Clone)]
pub enum Approver {
    None,
    Admin {
        url: String,
        token: String,
        /// The environment variable the token came from, when not `--admin-token`:
        /// named where a wrong token is said.
        token_from: Option<&'static str>,
        user: String,
        http: Http,
    },
    Command {
        /// argv, each element may hold `{user_code}`, `{verification_uri}`,
        /// `{verification_uri_complete}`, `{action}`.
        argv: Vec<String>,
        timeout: Duration,
    },
    Manual {
        /// One person at a time.
        lock: Arc<Mutex<()>>,
    },
}

impl std::fmt::Debug for Approver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Approver {
    /// The admin endpoint of a deviceflow-server (`POST /admin/decisions`).
    pub fn admin(
        url: impl Into<String>,
        token: impl Into<String>,
        user: impl Into<String>,
    ) -> Approver {
        Approver::Admin {
            url: url.into(),
            token: token.into(),
            token_from: None,
            user: user.into(),
            // A URL only the person gave: no address rule (see crate::http::reach).
            http: Http::new(
                Duration::from_secs(10),
                crate::http::reach::Reach::anywhere(),
            ),
        }
    }

    /// An external command, given as one string split like a shell would (quotes
    /// group, no expansion; the program is run directly, never through a shell, so a
    /// server-chosen user code cannot inject anything).
    pub fn command(template: &str, timeout: Duration) -> Result<Approver, String> {
        let argv = split_words(template)?;
        if argv.is_empty() {
            return Err("the approver command is empty".to_owned());
        }
        Ok(Approver::Command { argv, timeout })
    }

    pub fn manual() -> Approver {
        Approver::Manual {
            lock: Arc::new(Mutex::new(())),
        }
    }

    pub fn is_available(&self) -> bool {
        !matches!(self, Approver::None)
    }

    pub fn describe(&self) -> String {
        match self {
            Approver::None => "none".to_owned(),
            Approver::Admin { url, user, .. } => format!("admin endpoint {url} as {user}"),
            // A token in the command line is in every report the person shares.
            Approver::Command { argv, .. } => format!("command {}", redact_argv(argv).join(" ")),
            Approver::Manual { .. } => "manual (a person at the keyboard)".to_owned(),
        }
    }

    /// Plays the person: approves or denies the request behind `prompt`. `Err` says
    /// why the decision could not be made, in words (for the load generator, which
    /// counts failures; the cases use [`Approver::attempt`], which tells a refusal by the
    /// server from an approver that broke).
    pub async fn decide(&self, prompt: &Prompt, action: Action) -> Result<(), String> {
        self.attempt(prompt, action)
            .await
            .map_err(|e| e.to_string())
    }

    /// Plays the person, and says whether a decision not taken was the server's
    /// refusal, on the record ([`NotDecided::Refused`]), or the approver's own failure
    /// ([`NotDecided::Failed`]): only a refusal is evidence about the server.
    pub async fn attempt(&self, prompt: &Prompt, action: Action) -> Result<(), NotDecided> {
        match self {
            Approver::None => Err(NotDecided::Failed("no approver configured".to_owned())),
            Approver::Admin {
                url,
                token,
                token_from,
                user,
                http,
            } => {
                let body = form(&[
                    ("user_code", &prompt.user_code),
                    ("action", action.as_str()),
                    ("user", user),
                ]);
                let e = http
                    .send(Request {
                        label: "approver",
                        method: reqwest::Method::POST,
                        url,
                        content_type: Some("application/x-www-form-urlencoded"),
                        headers: vec![("authorization".to_owned(), format!("Bearer {token}"))],
                        body: Some(body),
                    })
                    .await;
                admin_answer(&e, *token_from)
            }
            Approver::Command { argv, timeout } => {
                run_command(argv, *timeout, prompt, action).await
            }
            Approver::Manual { lock } => {
                let _one_at_a_time = lock.lock().await;
                // The code and the address are the server's words: shown as text, never
                // obeyed by the terminal the person reads them on.
                let uri = terminal(
                    prompt
                        .verification_uri_complete
                        .as_deref()
                        .unwrap_or(&prompt.verification_uri),
                );
                errln!(
                    "\n>>> Please {} the request with user code {} at {uri}\n>>> then press Enter here; type 'refused' and Enter if the server's page refused the code or the decision, or 'fail' and Enter if it could not be done for another reason.",
                    action.as_str().to_uppercase(),
                    terminal(&prompt.user_code)
                );
                read_answer(&mut BufReader::new(tokio::io::stdin())).await
            }
        }
    }
}

/// A decision the approver did not take, and whose doing that was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotDecided {
    /// The server refused the decision, and said so: deviceflow-server's admin
    /// endpoint answered `unknown_user_code`, `expired_user_code` or
    /// `already_decided`; a command exited with [`REFUSED_EXIT`]; the person typed
    /// `refused`. Evidence about the server (EX-03, UI-07, UI-10, TS-05 judge it).
    Refused(String),
    /// The approver could not do its job: unreachable, a 5xx or a wrong token at the
    /// admin endpoint, a command that failed any other way (a page it does not
    /// recognise, a crash), no answer at the keyboard. No evidence about the server:
    /// the case that needed the decision is inconclusive.
    Failed(String),
}

impl std::fmt::Display for NotDecided {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotDecided::Refused(why) => write!(f, "the server refused the decision: {why}"),
            NotDecided::Failed(why) => f.write_str(why),
        }
    }
}

/// The exit status with which an approver command says the server refused the code or
/// the decision (its page said the code is unknown, expired or already used): 65,
/// `EX_DATAERR` of sysexits.h, which no interpreter or shell exits with by accident.
/// Every other non-zero status (1 from an uncaught exception, 127 from a missing
/// program) is the command's own failure.
pub const REFUSED_EXIT: i32 = 65;

/// The error codes of deviceflow-server's admin decision endpoint that refuse a
/// decision for the code's sake (404, 410, 409; 410 too for a code whose client was
/// deleted): anything else that is not a 200 is the approver's failure (a wrong token, a
/// wrong URL, a server error).
const ADMIN_REFUSALS: [(u16, &str); 4] = [
    (404, "unknown_user_code"),
    (410, "expired_user_code"),
    (410, "deleted_client"),
    (409, "already_decided"),
];

/// Reads the admin endpoint's answer `e` to a decision; `token_from`: the environment
/// variable the token came from, if it did, named when the token is refused.
fn admin_answer(
    e: &crate::http::Exchange,
    token_from: Option<&'static str>,
) -> Result<(), NotDecided> {
    let status = e.status();
    if status == Some(200) {
        return Ok(());
    }
    let code = e.error_code();
    let refused = ADMIN_REFUSALS
        .iter()
        .any(|(s, c)| status == Some(*s) && code.as_deref() == Some(*c));
    if refused {
        Err(NotDecided::Refused(format!(
            "the admin endpoint answered {}",
            e.brief()
        )))
    } else {
        let hint = match (status, token_from) {
            (Some(401 | 403), Some(var)) => {
                format!(" (the admin token came from {var}: check it, or give --admin-token)")
            }
            _ => String::new(),
        };
        Err(NotDecided::Failed(format!(
            "the admin endpoint failed: {}{hint}",
            e.brief()
        )))
    }
}

/// The person's answer at the keyboard: Enter is done, `fail` is could not. The end
/// of the input (`--approver manual </dev/null`, a closed terminal) is no answer at
/// all: an error, so that nothing waits on a decision nobody made and blames the
/// server for it.
async fn read_answer<R: AsyncBufRead + Unpin>(input: &mut R) -> Result<(), NotDecided> {
    let mut line = String::new();
    let read = input
        .read_line(&mut line)
        .await
        .map_err(|e| NotDecided::Failed(format!("reading the keyboard: {e}")))?;
    let answer = line.trim();
    if read == 0 {
        Err(NotDecided::Failed("the manual approver reached the end of its input (stdin is closed or not a terminal), so nobody decided: run it at a terminal, or use --approver admin or command".to_owned()))
    } else if answer.eq_ignore_ascii_case("fail") {
        Err(NotDecided::Failed(
            "the person said it could not be done".to_owned(),
        ))
    } else if answer.eq_ignore_ascii_case("refused") {
        Err(NotDecided::Refused(
            "the person said the server's page refused it".to_owned(),
        ))
    } else {
        Ok(())
    }
}

/// The most of an approver command's standard error kept: its end, where the reason
/// is. A command that writes more is read on (so that it never blocks on a full pipe)
/// and forgotten, never held in memory.
const STDERR_TAIL: usize = 4096;

/// How long the end of a failed command's standard error is waited for after it
/// exited: a child it left running may hold the pipe open.
const STDERR_GRACE: Duration = Duration::from_millis(500);

/// `template` with each placeholder filled in once, left to right: a value (the
/// server's user code or URI) is never searched for placeholders again, so a user code
/// holding `{action}` is passed as it is.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    'next: while let Some(at) = rest.find('{') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        for (name, value) in values {
            if let Some(after) = tail.strip_prefix(name) {
                out.push_str(value);
                rest = after;
                continue 'next;
            }
        }
        out.push('{');
        rest = &tail[1..];
    }
    out.push_str(rest);
    out
}

async fn run_command(
    argv: &[String],
    timeout: Duration,
    prompt: &Prompt,
    action: Action,
) -> Result<(), NotDecided> {
    let complete = prompt.verification_uri_complete.clone().unwrap_or_default();
    let values = [
        ("{user_code}", prompt.user_code.as_str()),
        ("{verification_uri_complete}", complete.as_str()),
        ("{verification_uri}", prompt.verification_uri.as_str()),
        ("{action}", action.as_str()),
    ];
    // A server's code or address that would begin an argument with `-` is read by the
    // program as an option (`--output=/etc/x`), not as the code: not passed. The
    // environment carries every value whatever it begins with.
    let args: Vec<String> = argv.iter().map(|a| fill(a, &values)).collect();
    if let Some((template, _)) = argv
        .iter()
        .zip(&args)
        .find(|(template, arg)| arg.starts_with('-') && !template.starts_with('-'))
    {
        let begins =
            |(name, value): &&(&str, &str)| template.starts_with(name) && value.starts_with('-');
        let why = match values.iter().find(begins) {
            Some((name, _)) => {
                let name = name.trim_matches(['{', '}']);
                format!(
                    "the server's {name} begins with '-', which the approver command would read as an option: not run (read it from $DEVICEFLOW_{} instead)",
                    name.to_uppercase()
                )
            }
            None => format!(
                "the server's values make the argument {} begin with '-', which the approver command would read as an option: not run (read them from $DEVICEFLOW_USER_CODE and the like instead)",
                terminal(template)
            ),
        };
        return Err(NotDecided::Failed(why));
    }
    // A NUL byte, which no argument or environment value can carry (the command could
    // not be started at all): an argument holding one is not run, saying which value;
    // a variable holding one is left unset, so that a command that does not read it
    // still decides.
    if let Some((template, _)) = argv.iter().zip(&args).find(|(_, arg)| arg.contains('\0')) {
        let named = values
            .iter()
            .find(|(name, value)| template.contains(name) && value.contains('\0'))
            .map_or("values", |(name, _)| name.trim_matches(['{', '}']));
        return Err(NotDecided::Failed(format!(
            "the server's {named} holds a NUL byte, which no command line can carry: not run"
        )));
    }
    let mut cmd = tokio::process::Command::new(&args[0]);
    // Standard output is not read (the exit status is the answer, standard error the
    // reason): it goes nowhere, so that no amount of it can block or fill anything.
    cmd.args(&args[1..]);
    for (name, value) in [
        ("DEVICEFLOW_USER_CODE", prompt.user_code.as_str()),
        (
            "DEVICEFLOW_VERIFICATION_URI",
            prompt.verification_uri.as_str(),
        ),
        ("DEVICEFLOW_VERIFICATION_URI_COMPLETE", complete.as_str()),
        ("DEVICEFLOW_ACTION", action.as_str()),
    ] {
        if value.contains('\0') {
            cmd.env_remove(name);
        } else {
            cmd.env(name, value);
        }
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let failed = NotDecided::Failed;
    let mut child = cmd.spawn().map_err(|e| {
        failed(format!(
            "the approver command cannot be started: {}: {e}",
            args[0]
        ))
    })?;
    // Standard error read as it comes, its end kept.
    let tail = Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let mut reader = {
        let tail = Arc::clone(&tail);
        let stderr = child.stderr.take();
        tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let Some(mut stderr) = stderr else { return };
            let mut buf = [0u8; 8192];
            while let Ok(n @ 1..) = stderr.read(&mut buf).await {
                let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
                t.extend_from_slice(&buf[..n]);
                if t.len() > 2 * STDERR_TAIL {
                    let cut = t.len() - STDERR_TAIL;
                    t.drain(..cut);
                }
            }
        })
    };
    // The command's exit is its answer, whether or not a child it left behind still
    // holds its standard error open (a browser it started, a helper).
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => {
            reader.abort();
            return Err(failed(format!("{}: {e}", args[0])));
        }
        Err(_) => {
            reader.abort();
            let _ = child.start_kill();
            return Err(failed(format!(
                "{} did not finish within {} s",
                args[0],
                timeout.as_secs_f64()
            )));
        }
    };
    if status.success() {
        reader.abort();
        return Ok(());
    }
    if tokio::time::timeout(STDERR_GRACE, &mut reader)
        .await
        .is_err()
    {
        reader.abort();
    }
    let stderr = {
        let t = tail.lock().unwrap_or_else(|e| e.into_inner());
        let start = t.len().saturating_sub(STDERR_TAIL);
        String::from_utf8_lossy(&t[start..]).into_owned()
    };
    let last = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    // "exited with status 65", not std's "exited with exit status: 65".
    let how = match status.code() {
        Some(code) => format!("exited with status {code}"),
        None => killed_by(&status),
    };
    let said = format!("{} {how}: {last}", args[0]);
    if status.code() == Some(REFUSED_EXIT) {
        Err(NotDecided::Refused(said))
    } else {
        Err(failed(said))
    }
}

/// How a command that exited with no status ended: the signal that killed it.
#[cfg(unix)]
fn killed_by(status: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status.signal() {
        Some(signal) => format!("was killed by signal {signal}"),
        None => format!("ended: {status}"),
    }
}

/// How a command that exited with no status ended.
#[cfg(not(unix))]
fn killed_by(status: &std::process::ExitStatus) -> String {
    format!("ended: {status}")
}

/// `argv` as reports show it, the credentials a person put in it written as `…`:
/// - the value of an option that names one ([`is_secret_name`](crate::redact::is_secret_name): `--admin-token X`,
///   `--api-key=X`, `password=X`), even a value that starts with `-`;
/// - the password of `-u`/`--user user:password` (curl) and of a URL
///   (`http://admin:…@host`, [`redact_url`]);
/// - the value of a header written as one word (`Authorization: Bearer X`,
///   `X-Api-Key: X`, `Cookie: sid=X`);
/// - credentials in a query (`?token=X`, [`redact`](crate::redact::redact));
/// - all of these inside a word that is itself a command line (`sh -c '… --token X'`).
///
/// A command line is copied into every report its person shares.
pub fn redact_argv<S: AsRef<str>>(argv: &[S]) -> Vec<String> {
    use crate::redact::is_secret_name;
    let mut out = Vec::with_capacity(argv.len());
    // What the option before asked of this word: hidden whole, or past a `user:`.
    let (mut hide_next, mut user_next) = (false, false);
    for a in argv.iter().map(AsRef::as_ref) {
        if std::mem::take(&mut hide_next) && !a.starts_with("--") {
            out.push("…".to_owned());
            continue;
        }
        if std::mem::take(&mut user_next) {
            if let Some((user, _)) = a.split_once(':') {
                out.push(format!("{user}:…"));
                continue;
            }
        }
        if let Some((name, _)) = a.split_once(':') {
            if !name.contains(['/', ' ']) && is_secret_name(name) {
                out.push(format!("{name}: …"));
                continue;
            }
        }
        if a.contains(char::is_whitespace) {
            if let Ok(words) = split_words(a) {
                if words.len() > 1 {
                    out.push(redact_argv(&words).join(" "));
                    continue;
                }
            }
        }
        match a.split_once('=') {
            Some((name, _)) if is_secret_name(name.trim_start_matches('-')) => {
                out.push(format!("{name}=…"))
            }
            _ => {
                let option = a.strip_prefix('-').map(|o| o.trim_start_matches('-'));
                hide_next = option.is_some_and(is_secret_name);
                user_next = matches!(a, "-u" | "--user");
                out.push(crate::redact::redact(&redact_url(a)));
            }
        }
    }
    out
}

/// `text` with the password of every URL in it (`scheme://user:password@host`) as
/// `…`: the userinfo runs to the first `@` after the scheme, a `/` in the password
/// included, within the word.
pub fn redact_url(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let start = at + 3;
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let word = rest
            .find(|c: char| c.is_whitespace() || c == '?' || c == '#')
            .map_or(rest, |end| &rest[..end]);
        if let Some(userinfo) = word.find('@').map(|at| &word[..at]) {
            if let Some((user, _)) = userinfo.split_once(':') {
                out.push_str(user);
                out.push_str(":…");
                rest = &rest[userinfo.len()..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Splits a command line into words: whitespace separates, single and double quotes
/// group, backslash escapes the next character outside single quotes.
pub fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unclosed ' in the approver command".to_owned()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => {
                            word.push(chars.next().ok_or("dangling \\ in the approver command")?)
                        }
                        Some(c) => word.push(c),
                        None => return Err("unclosed \" in the approver command".to_owned()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.push(chars.next().ok_or("dangling \\ in the approver command")?);
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_like_a_shell_without_expansion() {
        assert_eq!(
            split_words(r#"python3 approve.py --code {user_code} "a b" 'c "d"' e\ f"#).unwrap(),
            [
                "python3",
                "approve.py",
                "--code",
                "{user_code}",
                "a b",
                "c \"d\"",
                "e f"
            ]
        );
        assert_eq!(split_words("  ").unwrap(), Vec::<String>::new());
        assert!(split_words("'open").is_err());
    }

    fn prompt() -> Prompt {
        Prompt {
            user_code: "WDJB-MJHT".into(),
            verification_uri: "http://as/device".into(),
            verification_uri_complete: Some("http://as/device?user_code=WDJB-MJHT".into()),
        }
    }

    fn args(
        kind: Option<ApproverKind>,
        token: Option<&str>,
        command: Option<&str>,
    ) -> ApproverArgs {
        ApproverArgs {
            approver: kind,
            admin_url: None,
            admin_token: token.map(str::to_owned),
            admin_user: "demo".into(),
            approver_command: command.map(str::to_owned),
        }
    }

    #[test]
    fn approver_options_default_to_admin_with_a_token_and_say_what_is_missing() {
        let a = args(None, Some("t0k3n"), None)
            .build(Some("http://as/"))
            .unwrap();
        assert_eq!(
            a.describe(),
            "admin endpoint http://as/admin/decisions as demo"
        );
        assert_eq!(
            args(None, None, None).build(None).unwrap().describe(),
            "none"
        );
        let err = args(Some(ApproverKind::Admin), None, None)
            .build_with_env(None, None)
            .unwrap_err();
        assert!(err.contains("--admin-token"), "{err}");
        let err = args(Some(ApproverKind::Admin), Some("t"), None)
            .build(None)
            .unwrap_err();
        assert!(err.contains("--admin-url"), "{err}");
        let err = args(Some(ApproverKind::Command), None, None)
            .build(None)
            .unwrap_err();
        assert!(err.contains("--approver-command"), "{err}");
        let c = args(Some(ApproverKind::Command), None, Some("true {user_code}"))
            .build(None)
            .unwrap();
        assert_eq!(c.describe(), "command true {user_code}");
    }

    #[test]
    fn options_the_chosen_approver_never_reads_are_refused_not_ignored() {
        let mut with_url = args(None, None, None);
        with_url.admin_url = Some("http://as/admin".into());
        for (a, option) in [
            (
                args(None, None, Some("true {user_code}")),
                "--approver-command",
            ),
            (
                args(Some(ApproverKind::Admin), Some("t"), Some("x")),
                "--approver-command",
            ),
            (
                args(Some(ApproverKind::Manual), None, Some("x")),
                "--approver-command",
            ),
            (
                args(Some(ApproverKind::None), Some("t"), None),
                "--admin-token",
            ),
            (with_url, "--admin-url"),
        ] {
            let err = a.build_with_env(Some("http://as"), None).unwrap_err();
            assert!(err.starts_with(option), "{err}");
        }
        // The load generator's people: a command approver beside the admin token
        // its fleet config reads is no contradiction.
        assert!(args(Some(ApproverKind::Command), Some("t"), Some("true"))
            .build_with_env(Some("http://as"), None)
            .is_ok());
    }

    #[test]
    fn a_token_in_the_environment_never_chooses_the_admin_approver() {
        // It had: DEVICEFLOW_ADMIN_TOKEN alone made the approver admin, and the suite
        // sent `Authorization: Bearer <token>` to the server under test.
        let env = || Some("from-env".to_owned());
        let a = args(None, None, None)
            .build_with_env(Some("http://as/"), env())
            .unwrap();
        assert_eq!(a.describe(), "none");
        // Asked for by name, the admin approver takes the token from the environment.
        let a = args(Some(ApproverKind::Admin), None, None)
            .build_with_env(Some("http://as/"), env())
            .unwrap();
        assert!(
            matches!(&a, Approver::Admin { token, token_from: Some(ADMIN_TOKEN_ENV), .. } if token == "from-env"),
            "{a:?}"
        );
        // --admin-token wins over the environment.
        let a = args(Some(ApproverKind::Admin), Some("flag"), None)
            .build_with_env(Some("http://as/"), env())
            .unwrap();
        assert!(matches!(&a, Approver::Admin { token, token_from: None, .. } if token == "flag"));
    }

    #[tokio::test]
    async fn command_gets_placeholders_as_arguments_and_environment() {
        let a = Approver::command(
            r#"sh -c 'test "$1" = WDJB-MJHT && test "$2" = deny && test "$DEVICEFLOW_VERIFICATION_URI_COMPLETE" = "$3"' sh {user_code} {action} {verification_uri_complete}"#,
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(a.decide(&prompt(), Action::Deny).await, Ok(()));
        assert!(a.decide(&prompt(), Action::Approve).await.is_err());
    }

    #[tokio::test]
    async fn only_the_refused_exit_status_is_the_servers_refusal() {
        // 65 (EX_DATAERR): the command saw the server refuse the code.
        let a = Approver::command(
            "sh -c 'echo that code has expired >&2; exit 65'",
            Duration::from_secs(10),
        )
        .unwrap();
        let err = a.attempt(&prompt(), Action::Approve).await.unwrap_err();
        assert!(
            matches!(&err, NotDecided::Refused(m) if m.ends_with("sh exited with status 65: that code has expired")),
            "{err:?}"
        );
        // Any other failure (an uncaught exception exits 1) is the approver's own.
        for status in [1, 2, 3, 127] {
            let a = Approver::command(
                &format!("sh -c 'echo connection refused >&2; exit {status}'"),
                Duration::from_secs(10),
            )
            .unwrap();
            let err = a.attempt(&prompt(), Action::Approve).await.unwrap_err();
            assert!(matches!(err, NotDecided::Failed(_)), "{status}: {err:?}");
        }
    }

    #[tokio::test]
    async fn a_servers_value_that_would_be_read_as_an_option_is_not_passed() {
        // `sh -c 'exit 0' sh {user_code}` would succeed; a code `--output=/x` is kept
        // from beginning an argument, and the command is not run.
        let a =
            Approver::command("sh -c 'exit 0' sh {user_code}", Duration::from_secs(10)).unwrap();
        let hostile = Prompt {
            user_code: "--output=/etc/x".into(),
            ..prompt()
        };
        let err = a.attempt(&hostile, Action::Approve).await.unwrap_err();
        assert_eq!(
            err,
            NotDecided::Failed("the server's user_code begins with '-', which the approver command would read as an option: not run (read it from $DEVICEFLOW_USER_CODE instead)".into())
        );
        // The same value inside an argument, or from the environment, is passed.
        let a = Approver::command(
            r#"sh -c 'test "$1" = "--code=$DEVICEFLOW_USER_CODE"' sh --code={user_code}"#,
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(a.attempt(&hostile, Action::Approve).await, Ok(()));
    }

    #[test]
    fn credentials_in_a_command_line_are_not_shown() {
        let argv = [
            "approve.py",
            "--admin-token",
            "HUNTER2",
            "--api-key=K3Y",
            "password=PW",
            "http://admin:S3CRET@127.0.0.1:8080/admin",
            "-H",
            "Authorization: Bearer T0K3N",
            "--user",
            "demo",
            "--token",
            "--verbose",
            "{user_code}",
        ];
        assert_eq!(
            redact_argv(&argv).join(" "),
            "approve.py --admin-token … --api-key=… password=… http://admin:…@127.0.0.1:8080/admin -H Authorization: … --user demo --token --verbose {user_code}"
        );
        let a = Approver::command(
            "approve.py --admin-token HUNTER2 {user_code}",
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(
            a.describe(),
            "command approve.py --admin-token … {user_code}"
        );
        assert_eq!(redact_url("http://u@h/p:q@x"), "http://u@h/p:q@x");
        assert_eq!(redact_url("no url"), "no url");
        // helper-81's F5, F6, F7: what was still shown, and what was hidden for nothing.
        let argv = [
            "curl",
            "-u",
            "admin:S3CRET",
            "-H",
            "X-Api-Key: K3Y",
            "-H",
            "Cookie: session=abc",
            "sh -c 'approve --admin-token S3CRET \"$1\"'",
            "--admin-token",
            "-S3CRET",
            "http://h/x?a=1&token=S3CRET",
            "--device-authorization-endpoint",
            "http://x/device",
            "--token-endpoint",
            "http://x/token",
            "--passive",
            "{user_code}",
            "--auth-method",
            "basic",
            "http://admin:pa/ss@h/x",
            "http://a:b@c http://d:e@f",
        ];
        assert_eq!(
            redact_argv(&argv).join(" "),
            "curl -u admin:… -H X-Api-Key: … -H Cookie: … sh -c approve --admin-token … $1 --admin-token … http://h/x?a=1&token=<redacted, 6 chars> --device-authorization-endpoint http://x/device --token-endpoint http://x/token --passive {user_code} --auth-method basic http://admin:…@h/x http://a:…@c http://d:…@f"
        );
        for odd in ["", "=", "://", "ü://ä:ö@ß", "é:x@y://", "--=", "-"] {
            redact_argv(&[odd]);
        }
    }

    #[test]
    fn an_empty_admin_token_is_refused_before_any_decision() {
        // `--admin-token "$ADMIN"` with ADMIN unset: every decision had been refused
        // by the server, the cases they decide unjudged (review helper-99).
        let err = args(Some(ApproverKind::Admin), Some(""), None)
            .build(Some("http://127.0.0.1:8080"))
            .unwrap_err();
        assert!(err.starts_with("--admin-token is empty: "), "{err}");
    }

    #[test]
    fn an_admin_url_with_a_password_is_refused_without_showing_it() {
        let mut a = args(Some(ApproverKind::Admin), Some("t"), None);
        a.admin_url = Some("http://admin:S3CRET@127.0.0.1:1/admin/decisions".into());
        let err = a.build(None).unwrap_err();
        assert_eq!(
            err,
            "--admin-url http://admin:…@127.0.0.1:1/admin/decisions cannot be used, which carries credentials (user:password@), forbidden in an http(s) URI (RFC 9110 §4.2.4)"
        );
    }

    #[tokio::test]
    async fn a_nul_in_a_value_the_command_does_not_read_does_not_stop_it() {
        // A NUL no environment value can carry: the command could not be started at
        // all, and every case it decides ended inconclusive (review helper-95). Left
        // unset, the variable costs a command that does not read it nothing; an
        // argument holding one is not run, saying which value.
        let hostile = Prompt {
            verification_uri_complete: Some("https://as.example/d?c=\0x".into()),
            ..prompt()
        };
        let a = Approver::command(
            r#"sh -c 'test "$DEVICEFLOW_USER_CODE" = "$1" && test -z "${DEVICEFLOW_VERIFICATION_URI_COMPLETE+set}"' sh {user_code}"#,
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(a.attempt(&hostile, Action::Approve).await, Ok(()));
        let a = Approver::command(
            "sh -c 'exit 0' sh {verification_uri_complete}",
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(
            a.attempt(&hostile, Action::Approve).await,
            Err(NotDecided::Failed(
                "the server's verification_uri_complete holds a NUL byte, which no command line can carry: not run".into()
            ))
        );
    }

    #[tokio::test]
    async fn a_filled_argument_that_would_begin_with_a_dash_is_not_passed() {
        // The code is empty and the address begins the argument: F8 of helper-81.
        let a = Approver::command(
            "sh -c 'exit 0' sh {user_code}{verification_uri}",
            Duration::from_secs(10),
        )
        .unwrap();
        let hostile = Prompt {
            user_code: String::new(),
            verification_uri: "-o/x".into(),
            verification_uri_complete: None,
        };
        let err = a.attempt(&hostile, Action::Approve).await.unwrap_err();
        assert!(
            matches!(&err, NotDecided::Failed(m) if m.contains("begin with '-'")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn command_failure_says_why() {
        let a = Approver::command(
            "sh -c 'echo no such code >&2; exit 3'",
            Duration::from_secs(10),
        )
        .unwrap();
        let err = a.decide(&prompt(), Action::Approve).await.unwrap_err();
        assert!(err.contains("no such code"), "{err}");
        let a = Approver::command("/nonexistent/approver", Duration::from_secs(1)).unwrap();
        let err = a.decide(&prompt(), Action::Approve).await.unwrap_err();
        assert!(
            err.starts_with("the approver command cannot be started: /nonexistent/approver: "),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_command_that_exited_is_done_though_a_child_it_left_holds_its_output() {
        // An approver that starts something in the background (a browser, a helper)
        // and exits 0 has decided: its exit is the answer, not the end of its output.
        let a = Approver::command("sh -c 'sleep 20 & exit 0'", Duration::from_secs(10)).unwrap();
        let t = std::time::Instant::now();
        assert_eq!(a.attempt(&prompt(), Action::Approve).await, Ok(()));
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        // A command that does not finish is said in seconds, in words.
        let a = Approver::command("sleep 20", Duration::from_secs(1)).unwrap();
        let err = a.decide(&prompt(), Action::Approve).await.unwrap_err();
        assert!(err.ends_with("did not finish within 1 s"), "{err}");
    }

    #[tokio::test]
    async fn a_command_that_floods_its_output_is_read_within_bounds() {
        // 64 MiB on standard error in one line, then a failure: the message quotes a
        // bounded end of it, and the suite never holds it all.
        let a = Approver::command(
            "sh -c 'head -c 67108864 /dev/zero | tr \"\\0\" x >&2; exit 3'",
            Duration::from_secs(30),
        )
        .unwrap();
        let err = a.decide(&prompt(), Action::Approve).await.unwrap_err();
        assert!(err.len() < 8 * 1024, "{} bytes", err.len());
        let end = &err[err.len().saturating_sub(300)..];
        assert!(err.contains("exited with") && err.ends_with("xxx"), "{end}");
        let a = Approver::command(
            "sh -c 'head -c 67108864 /dev/zero; exit 0'",
            Duration::from_secs(30),
        )
        .unwrap();
        assert_eq!(a.attempt(&prompt(), Action::Approve).await, Ok(()));
    }

    #[tokio::test]
    async fn placeholders_in_the_servers_words_are_not_filled_in_again() {
        // A user code is the server's text: `{action}` in it is passed as it is.
        let p = Prompt {
            user_code: "{action}{verification_uri}".into(),
            ..prompt()
        };
        let a = Approver::command(
            r#"sh -c 'test "$1" = "$DEVICEFLOW_USER_CODE" && test "$2" = approve' sh {user_code} {action}"#,
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(a.attempt(&p, Action::Approve).await, Ok(()));
    }

    #[tokio::test]
    async fn manual_end_of_input_is_no_decision() {
        let err = read_answer(&mut &b""[..]).await.unwrap_err();
        assert!(
            matches!(&err, NotDecided::Failed(m) if m.contains("end of its input")),
            "{err}"
        );
        assert_eq!(read_answer(&mut &b"\n"[..]).await, Ok(()));
        assert_eq!(read_answer(&mut &b"done"[..]).await, Ok(()));
        let err = read_answer(&mut &b"FAIL\n"[..]).await.unwrap_err();
        assert!(
            matches!(&err, NotDecided::Failed(m) if m.contains("could not be done")),
            "{err}"
        );
        // Only the person's word that the server refused is a refusal.
        let err = read_answer(&mut &b"refused\n"[..]).await.unwrap_err();
        assert!(matches!(err, NotDecided::Refused(_)), "{err}");
    }
}
