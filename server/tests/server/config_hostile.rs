//! The binary given hostile configuration and a hostile environment: every refusal is
//! one readable line on standard error and exit status 1, never a panic's backtrace.

use std::process::{Command, Output, Stdio};

use deviceflow_testkit::ServerProcess;

const BIN: &str = env!("CARGO_BIN_EXE_deviceflow-server");

fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("DEVICEFLOW_CONFIG")
        .env_remove("DEVICEFLOW_ADMIN_TOKEN")
        .env_remove("DEVICEFLOW_INITIAL_ACCESS_TOKEN")
        .env("RUST_BACKTRACE", "1");
    cmd
}

/// A file standard output cannot be written to: every write fails (ENOSPC).
fn full_stdout() -> Stdio {
    Stdio::from(std::fs::File::create("/dev/full").expect("/dev/full"))
}

/// Its error, after checking it is one line, exit status 1, and no panic.
#[track_caller]
fn one_line_refusal(out: Output) -> String {
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{:?}: {err}", out.status);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.starts_with("deviceflow-server: "), "{err}");
    err
}

fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "deviceflow-hostile-{}-{name}.toml",
        std::process::id()
    ));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn an_unreadable_configuration_is_said_in_one_line_once() {
    let dir = std::env::temp_dir();
    let err = one_line_refusal(
        command(&["--config", dir.to_str().unwrap(), "check-config"])
            .output()
            .unwrap(),
    );
    assert!(
        err.starts_with(&format!(
            "deviceflow-server: cannot read {}: ",
            dir.display()
        )),
        "{err}"
    );
    // The I/O error once, not once more as its own source.
    assert_eq!(err.matches("(os error").count(), 1, "{err}");
}

#[test]
fn toml_errors_are_one_line_with_the_line_and_column() {
    for (name, text, expected) in [
        (
            "unknown",
            "[device]\nexpire_in = 5\n",
            "line 2, column 1: unknown field `expire_in`",
        ),
        (
            "type",
            "[device]\ninterval = \"5\"\n",
            "line 2, column 12: invalid type: string \"5\", expected u64",
        ),
        (
            "duplicate",
            "[[users]]\nusername = \"a\"\nusername = \"b\"\n",
            "line 3, column 1: duplicate key `username`",
        ),
        (
            "negative",
            "[device]\ninterval = -5\n",
            "line 2, column 12: invalid value: integer `-5`, expected u64",
        ),
    ] {
        let path = temp_file(name, text);
        let out = command(&["--config", path.to_str().unwrap(), "check-config"])
            .output()
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        let err = one_line_refusal(out);
        assert!(
            err.contains(&format!("{}: {expected}", path.display())),
            "{text:?}: {err}"
        );
    }
}

#[test]
fn absurd_values_on_the_command_line_are_refused_in_one_line() {
    for (args, expected) in [
        (
            vec!["--expires-in", "18446744073709551615"],
            "device.expires_in (18446744073709551615) must be at most",
        ),
        (
            vec![
                "--expires-in",
                "18446744073709551615",
                "--interval",
                "18446744073709551614",
            ],
            "must be at most",
        ),
        (
            vec![
                "--admin-token",
                "\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}",
            ],
            "admin.token must be printable ASCII",
        ),
        (
            vec!["--initial-access-token", " 0123456789abcdef "],
            "registration.initial_access_token must be printable ASCII",
        ),
        (vec!["--issuer", "http://"], "with a host"),
    ] {
        let mut all = args.clone();
        all.push("check-config");
        let err = one_line_refusal(command(&all).output().unwrap());
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

#[test]
fn a_standard_output_that_cannot_be_written_is_one_line_not_a_panic() {
    let out = command(&["check-config"])
        .stdout(full_stdout())
        .output()
        .unwrap();
    let err = one_line_refusal(out);
    assert!(err.contains("writing to standard output"), "{err}");

    let mut child = command(&["hash-secret"])
        .stdin(Stdio::piped())
        .stdout(full_stdout())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"abc\n").unwrap();
    let err = one_line_refusal(child.wait_with_output().unwrap());
    assert!(err.contains("writing to standard output"), "{err}");
}

/// On demo defaults the server prints its walk-through; a standard output it cannot
/// write to stopped it with a panic right after it said it listened.
#[tokio::test]
async fn the_server_serves_even_when_its_walkthrough_cannot_be_printed() {
    let mut server =
        ServerProcess::spawn_writing_to(command(&["--listen", "127.0.0.1:0"]), full_stdout())
            .unwrap();
    let health = reqwest::get(format!("{}/healthz", server.base())).await;
    let _ = server.kill();
    let log = server.log();
    let health = health.unwrap_or_else(|e| panic!("{e}: {log}"));
    assert_eq!(health.status(), 200, "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

/// A configuration that never ends (`/dev/zero`, a pipe) was read until memory ran out;
/// run here under a 1 GiB address-space limit so that the check itself is safe.
#[test]
fn an_endless_configuration_is_refused_without_reading_it_all() {
    let out = Command::new("sh")
        .args([
            "-c",
            "ulimit -v 1048576 && exec \"$0\" --config /dev/zero check-config",
            BIN,
        ])
        .env_remove("DEVICEFLOW_CONFIG")
        .output()
        .unwrap();
    let err = one_line_refusal(out);
    assert!(
        err.starts_with("deviceflow-server: cannot read /dev/zero: longer than 16 MiB"),
        "{err}"
    );
}
