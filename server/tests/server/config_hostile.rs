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
        .env_remove("DEVICEFLOW_ISSUER")
        .env_remove("DEVICEFLOW_LISTEN")
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

/// `check-config` of a configuration file holding `text` (named after `name`, removed
/// after): its one-line refusal, and the file's path as the refusal names it.
fn refused_file(name: &str, text: &str) -> (String, String) {
    let path = temp_file(name, text);
    let out = command(&["--config", path.to_str().unwrap(), "check-config"])
        .output()
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    (one_line_refusal(out), path.display().to_string())
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
            "line 2, column 12, device.interval: invalid type: string \"5\", expected u64",
        ),
        (
            "duplicate",
            "[[users]]\nusername = \"a\"\nusername = \"b\"\n",
            "line 3, column 1: duplicate key `username`",
        ),
        (
            "negative",
            "[device]\ninterval = -5\n",
            "line 2, column 12, device.interval: invalid value: integer `-5`, expected u64",
        ),
    ] {
        let (err, path) = refused_file(name, text);
        assert!(
            err.contains(&format!("{path}: {expected}")),
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

/// Bound to every interface (`0.0.0.0`, `[::]`) with no issuer, the server advertised
/// `http://0.0.0.0:PORT` as its issuer, and as the `verification_uri` a person must
/// open on a phone (RFC 8628 §3.2): an address that reaches no server. Refused, naming
/// the fix; with an issuer it runs.
#[test]
fn listening_on_every_interface_needs_an_issuer_people_can_open() {
    let example = std::fs::read_to_string(EXAMPLE).unwrap();
    let issuer = example
        .lines()
        .find(|l| l.starts_with("issuer = "))
        .unwrap();
    let no_issuer = temp_file("no-issuer", &example.replace(issuer, ""));
    for listen in ["0.0.0.0:8080", "[::]:8080"] {
        let err = one_line_refusal(
            command(&[
                "--config",
                no_issuer.to_str().unwrap(),
                "--listen",
                listen,
                "check-config",
            ])
            .output()
            .unwrap(),
        );
        assert!(err.contains(&format!("listen {listen}")), "{err}");
        assert!(err.contains("set issuer"), "{err}");
    }
    check_exposed("0.0.0.0:8080", EXAMPLE);
}

/// `check-config` on `config`, listening on `listen` under an https issuer: it must
/// pass; what it said on standard error.
fn check_exposed(listen: &str, config: &str) -> String {
    let out = command(&[
        "--config",
        config,
        "--listen",
        listen,
        "--issuer",
        "https://auth.example.test",
        "check-config",
    ])
    .output()
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Listening beyond this machine with no per-source connection cap and no reverse
/// proxy named, one address can hold every descriptor (helper-55 held 1,012 of 1,024,
/// and the server answered nobody else): warned of in one line by `check-config`;
/// nothing was said before. A cap, a trusted proxy or loopback is quiet.
#[test]
fn listening_beyond_this_machine_without_a_connection_cap_is_warned_of() {
    let check = check_exposed;
    let err = check("0.0.0.0:8080", EXAMPLE);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("deviceflow-server: warning: listening on 0.0.0.0:8080 with no [limits] max_connections_per_source and no trusted_proxies")
            && err.contains("set max_connections_per_source"),
        "{err}"
    );
    let example = std::fs::read_to_string(EXAMPLE).unwrap();
    for (name, edited) in [
        ("capped", "max_connections_per_source = 200"),
        ("proxied", "trusted_proxies = [\"10.0.0.0/8\"]"),
    ] {
        let key = edited.split(' ').next().unwrap();
        let line = example
            .lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("{key} in the example"));
        let path = temp_file(name, &example.replace(line, edited));
        assert_eq!(check("0.0.0.0:8080", path.to_str().unwrap()), "", "{name}");
    }
    assert_eq!(check("127.0.0.1:8080", EXAMPLE), "");
}

/// An issuer in plain http on a host others reach: devices must use TLS (RFC 8628
/// §3.1, checklist DA-14) and people type passwords on its pages. Said as a warning,
/// in one line (a lab may mean it); nothing was said before. Loopback and https are
/// quiet.
#[test]
fn a_plain_http_issuer_others_reach_is_warned_of() {
    let out = check_example_with_issuer("http://auth.example.test");
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("deviceflow-server: warning: issuer http://auth.example.test is plain http on a host others reach")
            && err.contains("RFC 8628 §3.1")
            && err.contains("set issuer to https://"),
        "{err}"
    );
    for issuer in [
        "https://auth.example.test",
        "http://127.0.0.1:8080",
        "http://localhost:8080",
        "http://[::1]:8080",
    ] {
        let out = check_example_with_issuer(issuer);
        assert!(out.status.success(), "{issuer}: {out:?}");
        assert!(out.stderr.is_empty(), "{issuer}: {out:?}");
    }
}

/// The example configuration, with users and clients of its own.
const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deviceflow.example.toml");

/// `check-config` on [`EXAMPLE`] with `--issuer issuer`.
/// A user whose password hash costs more than the others' answers a wrong password
/// measurably later than an unknown username does (helper-60 timed 90 ms against 15),
/// so the time tells that the username exists. Warned of in one line by
/// `check-config`, naming the users of each cost; one cost is quiet.
#[test]
fn users_whose_password_hashes_differ_in_cost_are_warned_of() {
    use deviceflow_server::accounts::password;
    let example = std::fs::read_to_string(EXAMPLE).unwrap();
    let user = |name: &str, phc: &str| {
        format!("\n[[users]]\nusername = \"{name}\"\npassword_hash = \"{phc}\"\n")
    };
    let alike = password::hash("bob-password");
    let heavy_params = argon2::Params::new(65536, 3, 1, None).unwrap();
    let heavy = password::hash_with("heavy-password", heavy_params);
    let mixed = temp_file(
        "mixed-costs",
        &format!("{example}{}{}", user("bob", &alike), user("heavy", &heavy)),
    );
    let out = command(&["--config", mixed.to_str().unwrap(), "check-config"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("deviceflow-server: warning: the users' password hashes have 2 different argon2 costs (alice, bob: argon2id v=19 m=19456,t=2,p=1, 32-byte output; heavy: argon2id v=19 m=65536,t=3,p=1, 32-byte output)")
            && err.contains("hash every password at one cost"),
        "{err}"
    );
    let one_cost = temp_file("one-cost", &format!("{example}{}", user("bob", &alike)));
    let out = command(&["--config", one_cost.to_str().unwrap(), "check-config"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    for path in [mixed, one_cost] {
        std::fs::remove_file(path).unwrap();
    }
}

fn check_example_with_issuer(issuer: &str) -> std::process::Output {
    command(&["--config", EXAMPLE, "--issuer", issuer, "check-config"])
        .output()
        .unwrap()
}

/// The demo configuration (no `--config`) has an administrator whose password is in
/// the README, and a confidential client whose secret is: bound to an address others
/// reach, or published by a proxy under an issuer others open, it handed its admin
/// pages to anyone (it ran, silently). Refused in one line naming the fix; on
/// loopback it runs as before.
#[test]
fn the_demo_configuration_serves_this_machine_only() {
    for args in [
        &[
            "--listen",
            "0.0.0.0:8080",
            "--issuer",
            "https://auth.example.test",
        ][..],
        // Said first: it was "set issuer", and then, with one, this.
        &["--listen", "0.0.0.0:8080"],
        &["--listen", "192.0.2.1:8080"],
        &["--issuer", "https://auth.example.test"],
    ] {
        let err = one_line_refusal(
            command(&[args, &["check-config"]].concat())
                .output()
                .unwrap(),
        );
        assert!(
            err.contains("the demo configuration (no --config) serves this machine only")
                && err.contains("give --config FILE"),
            "{args:?}: {err}"
        );
    }
    for args in [
        &[][..],
        &["--listen", "[::1]:8080"],
        &["--issuer", "http://localhost:8080"],
        &["--issuer", "https://[::1]:8443/auth"],
    ] {
        let out = command(&[args, &["check-config"]].concat())
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
    }
}

/// `limits.header_read_timeout_ms = 0` is refused, but a body timeout of 0 was taken:
/// every body that came in a packet after its head (curl's `Expect: 100-continue`,
/// any client on a real network) was answered 408.
#[test]
fn a_body_read_timeout_of_zero_is_refused() {
    let (err, _) = refused_file("body-timeout", "[limits]\nbody_read_timeout_ms = 0\n");
    assert!(
        err.contains("limits.body_read_timeout_ms must be positive"),
        "{err}"
    );
}

/// `limits.page_hosts` names hosts, as a `Host` header carries them without their
/// port: a URL or a host with a port there would never match, and pages a proxy
/// serves under that name would be refused (421) with no hint why.
#[test]
fn page_hosts_that_are_not_host_names_are_refused() {
    for entry in [
        "https://auth.internal.example",
        "auth.internal.example:8080",
        "",
    ] {
        let (err, _) = refused_file(
            "page-hosts",
            &format!("[limits]\npage_hosts = [\"{entry}\"]\n"),
        );
        assert!(
            err.contains(&format!("limits.page_hosts: {entry:?} is not a host name")),
            "{entry}: {err}"
        );
    }
}

/// An issuer is advertised as every endpoint's base: one with a port no TCP
/// connection can use, or credentials in it (RFC 9110 §4.2.4 forbids generating
/// userinfo in an http(s) URI; they would be published in the metadata), was taken.
#[test]
fn issuers_no_client_can_use_are_refused() {
    for (issuer, expected) in [
        ("http://auth.example.test:99999", "port"),
        ("http://auth.example.test:80a/", "port"),
        ("https://[::1]:0/", "port"),
        ("https://user:secret@auth.example.test/", "userinfo"),
        // A password holding "/", "?" or "#" ends the authority early; an empty user.
        // Refused for the "@", and never echoed.
        ("https://user:pa/secret@auth.example.test/", "userinfo"),
        ("https://user:pa?secret@auth.example.test/", "userinfo"),
        ("https://:secret@auth.example.test/", "userinfo"),
        ("HTTPS://user:secret@auth.example.test/", "lower case"),
        ("Http://auth.example.test/", "lower case"),
    ] {
        let err = one_line_refusal(
            command(&["--issuer", issuer, "check-config"])
                .output()
                .unwrap(),
        );
        assert!(err.contains("issuer"), "{issuer}: {err}");
        assert!(err.contains(expected), "{issuer}: {err}");
        assert!(!err.contains("secret"), "{issuer}: {err}");
        // An issuer holding an "@" is never echoed, not even in part.
        assert!(
            !issuer.contains('@') || !err.contains("auth.example.test"),
            "{issuer}: {err}"
        );
        // The issuer as given, scheme and all, to its authority (the port's error had
        // named "h:99999"), not its path.
        assert!(
            expected != "port"
                || err.contains(&issuer.splitn(4, '/').take(3).collect::<Vec<_>>().join("/")),
            "{issuer}: {err}"
        );
    }
    for issuer in [
        "http://127.0.0.1:8080",
        "https://[::1]:8443/auth",
        "https://auth.example.test:443",
        "http://auth.example.test",
    ] {
        let out = check_example_with_issuer(issuer);
        assert!(out.status.success(), "{issuer}: {out:?}");
    }
}

/// `hash-secret` and `hash-password` read one line of standard input: one that never
/// ends (`< /dev/zero`) was read until memory ran out (here, under a 1 GiB
/// address-space limit: an abort with a backtrace, exit 134).
#[test]
fn an_endless_secret_on_standard_input_is_refused_without_reading_it_all() {
    for subcommand in ["hash-secret", "hash-password"] {
        let out = Command::new("sh")
            .args([
                "-c",
                &format!("ulimit -v 1048576 && exec \"$0\" {subcommand} < /dev/zero"),
                BIN,
            ])
            .output()
            .unwrap();
        let err = one_line_refusal(out);
        assert!(err.contains("longer than"), "{subcommand}: {err}");
    }
    // The longest line taken, with its line ending.
    let mut child = command(&["hash-secret"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    let mut line = vec![b'a'; 64 * 1024];
    line.extend_from_slice(b"\r\n");
    child.stdin.take().unwrap().write_all(&line).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim().len(), 64);
}

/// The initial access token only registers applications (RFC 7591 §3), and is handed
/// to whoever may do that; the admin token approves any code as anyone. One string
/// for both was taken, so registering applications gave every admin power.
#[test]
fn one_token_for_admin_and_registration_is_refused() {
    let token = "the-same-token-0123456789";
    let err = one_line_refusal(
        command(&[
            "--admin-token",
            token,
            "--initial-access-token",
            token,
            "check-config",
        ])
        .output()
        .unwrap(),
    );
    assert!(
        err.contains("registration.initial_access_token must differ from admin.token"),
        "{err}"
    );
    assert!(!err.contains(token), "{err}");
}
