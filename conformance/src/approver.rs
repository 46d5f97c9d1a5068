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

use tokio::io::{AsyncBufReadExt, BufReader};
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
            user: user.into(),
            http: Http::new(Duration::from_secs(10)),
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
            Approver::Command { argv, .. } => format!("command {}", argv.join(" ")),
            Approver::Manual { .. } => "manual (a person at the keyboard)".to_owned(),
        }
    }

    /// Plays the person: approves or denies the request behind `prompt`. `Err` says
    /// why the decision could not be made (the server refused it, the command failed).
    pub async fn decide(&self, prompt: &Prompt, action: Action) -> Result<(), String> {
        match self {
            Approver::None => Err("no approver configured".to_owned()),
            Approver::Admin {
                url,
                token,
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
                match e.status() {
                    Some(200) => Ok(()),
                    _ => Err(format!("the admin endpoint refused: {}", e.brief())),
                }
            }
            Approver::Command { argv, timeout } => {
                run_command(argv, *timeout, prompt, action).await
            }
            Approver::Manual { lock } => {
                let _one_at_a_time = lock.lock().await;
                let uri = prompt
                    .verification_uri_complete
                    .as_deref()
                    .unwrap_or(&prompt.verification_uri);
                eprintln!(
                    "\n>>> Please {} the request with user code {} at {uri}\n>>> then press Enter here (or type 'fail' and Enter if it could not be done).",
                    action.as_str().to_uppercase(),
                    prompt.user_code
                );
                let mut line = String::new();
                let mut stdin = BufReader::new(tokio::io::stdin());
                stdin
                    .read_line(&mut line)
                    .await
                    .map_err(|e| format!("reading the keyboard: {e}"))?;
                if line.trim().eq_ignore_ascii_case("fail") {
                    Err("the person said it could not be done".to_owned())
                } else {
                    Ok(())
                }
            }
        }
    }
}

async fn run_command(
    argv: &[String],
    timeout: Duration,
    prompt: &Prompt,
    action: Action,
) -> Result<(), String> {
    let complete = prompt.verification_uri_complete.clone().unwrap_or_default();
    let fill = |s: &str| {
        s.replace("{user_code}", &prompt.user_code)
            .replace("{verification_uri_complete}", &complete)
            .replace("{verification_uri}", &prompt.verification_uri)
            .replace("{action}", action.as_str())
    };
    let args: Vec<String> = argv.iter().map(|a| fill(a)).collect();
    let mut cmd = tokio::process::Command::new(&args[0]);
    cmd.args(&args[1..])
        .env("DEVICEFLOW_USER_CODE", &prompt.user_code)
        .env("DEVICEFLOW_VERIFICATION_URI", &prompt.verification_uri)
        .env("DEVICEFLOW_VERIFICATION_URI_COMPLETE", &complete)
        .env("DEVICEFLOW_ACTION", action.as_str())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", args[0]))?;
    let out = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| format!("{} did not finish within {timeout:?}", args[0]))?
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if out.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        Err(format!("{} exited with {}: {last}", args[0], out.status))
    }
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
    async fn command_failure_says_why() {
        let a = Approver::command(
            "sh -c 'echo no such code >&2; exit 3'",
            Duration::from_secs(10),
        )
        .unwrap();
        let err = a.decide(&prompt(), Action::Approve).await.unwrap_err();
        assert!(err.contains("no such code"), "{err}");
        let a = Approver::command("/nonexistent/approver", Duration::from_secs(1)).unwrap();
        assert!(a
            .decide(&prompt(), Action::Approve)
            .await
            .unwrap_err()
            .starts_with("cannot run"));
    }
}
