//! `deviceflow-server clients add|list|remove` against a running server (the binary,
//! a real process), as a script uses it: the admin token from the environment, plain
//! `name=value` lines out, and a readable one-line error with exit status 1.

use std::process::{Command, Output};

use deviceflow_testkit::{free_port, temp_dir, tls, ServerProcess};

use crate::common::*;

const BIN: &str = env!("CARGO_BIN_EXE_deviceflow-server");

/// `deviceflow-server clients ARGS` against `issuer`, with the admin token `token`.
fn clients(issuer: &str, token: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("clients")
        .args(args)
        .args(["--issuer", issuer])
        .env("DEVICEFLOW_ADMIN_TOKEN", token);
    cmd.output().unwrap()
}

/// Its standard output, after checking it succeeded.
#[track_caller]
fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Its one-line error, after checking it failed with status 1 and printed nothing.
#[track_caller]
fn refused(out: Output) -> String {
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("deviceflow-server: "), "{err}");
    err
}

fn value<'a>(out: &'a str, name: &str) -> Option<&'a str> {
    out.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
}

/// The server binary on [`test_config`], written into a folder of its own (`name`),
/// which the caller removes.
fn server_on_test_config(name: &str) -> (ServerProcess, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("deviceflow-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("server.toml");
    std::fs::write(&config, test_config()).unwrap();
    let server = ServerProcess::start(
        BIN,
        &[
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--quiet",
        ],
    )
    .unwrap();
    (server, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_add_list_and_remove_drive_a_running_server_for_scripts() {
    let (server, dir) = server_on_test_config("clients-cli");
    let issuer = server.base();
    let http = Client::new(issuer.clone());

    // A public device app: its client_id, and no secret.
    let added = ok(clients(&issuer, ADMIN_TOKEN, &["add", "--name", "CLI TV"]));
    let client_id = value(&added, "client_id").expect("client_id=").to_owned();
    assert_eq!(value(&added, "client_secret"), None, "{added}");
    // It completes a device flow at once (interval 5 s on the system clock: the
    // first poll after approval is not early).
    let code = http.approved(&client_id).await;
    let token = http.poll(&client_id, &code).await;
    assert_eq!(token.status, 200, "{:?}", token.body);

    let (printer, secret) = adds_a_confidential_client(&issuer, &http).await;
    rotates_its_secret(&issuer, &http, &printer, &secret, &client_id).await;

    let list = ok(clients(&issuer, ADMIN_TOKEN, &["list"]));
    assert_eq!(list.lines().next(), Some(COLUMNS), "{list}");
    assert!(
        list.contains(&format!("{client_id}\tregistered\tnone\t")),
        "{list}"
    );
    assert!(
        list.contains(&format!(
            "{printer}\tregistered\tclient_secret_basic\topenid\tCLI printer"
        )),
        "{list}"
    );
    assert!(list.contains("tv\tconfiguration\tnone\t"), "{list}");

    let removed = ok(clients(&issuer, ADMIN_TOKEN, &["remove", &client_id]));
    assert_eq!(removed.trim(), format!("removed={client_id}"));
    assert!(!ok(clients(&issuer, ADMIN_TOKEN, &["list"])).contains(&client_id));
    http.post(DA, &format!("client_id={client_id}"))
        .await
        .assert_oauth_error(401, "invalid_client");

    tells_a_script_when_it_cannot(&issuer, &client_id);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `clients add` for a confidential one, "CLI printer": its secret, shown once,
/// authenticates it. Its `client_id` and secret.
async fn adds_a_confidential_client(issuer: &str, http: &Client) -> (String, String) {
    let added = ok(clients(
        issuer,
        ADMIN_TOKEN,
        &[
            "add",
            "--name",
            "CLI printer",
            "--auth-method",
            "client-secret-basic",
            "--scope",
            "openid",
        ],
    ));
    let (printer, secret) = (
        value(&added, "client_id").unwrap().to_owned(),
        value(&added, "client_secret")
            .expect("client_secret=")
            .to_owned(),
    );
    let da = http
        .post_with(DA, "", &[("authorization", &basic(&printer, &secret))])
        .await;
    assert_eq!(da.status, 200, "{:?}", da.body);
    (printer, secret)
}

/// `clients rotate`: the confidential `printer` gets a new secret, printed once, that
/// authenticates it where `old` no longer does; a public client (`public`) and a
/// configured one are refused, each said in one line.
async fn rotates_its_secret(issuer: &str, http: &Client, printer: &str, old: &str, public: &str) {
    let rotated = ok(clients(issuer, ADMIN_TOKEN, &["rotate", printer]));
    assert_eq!(value(&rotated, "client_id"), Some(printer), "{rotated}");
    let new = value(&rotated, "client_secret").expect("client_secret=");
    assert_ne!(new, old);
    http.post_with(DA, "", &[("authorization", &basic(printer, old))])
        .await
        .assert_oauth_error(401, "invalid_client");
    let da = http
        .post_with(DA, "", &[("authorization", &basic(printer, new))])
        .await;
    assert_eq!(da.status, 200, "{:?}", da.body);
    let err = refused(clients(issuer, ADMIN_TOKEN, &["rotate", public]));
    assert!(
        err.contains("409") && err.contains("public_client"),
        "{err}"
    );
    let err = refused(clients(issuer, ADMIN_TOKEN, &["rotate", "tv"]));
    assert!(err.contains("409") && err.contains("configured"), "{err}");
}

/// What a script is told when it cannot: `removed` was removed already, `tv` is
/// configured, the token is wrong, the scope unknown, the issuer not HTTP or not an
/// issuer (a query had been glued before the path: "http://h?x=1/admin/clients").
fn tells_a_script_when_it_cannot(issuer: &str, removed: &str) {
    let err = refused(clients(issuer, ADMIN_TOKEN, &["remove", removed]));
    assert!(
        err.contains("404") && err.contains("unknown_client"),
        "{err}"
    );
    let err = refused(clients(issuer, ADMIN_TOKEN, &["remove", "tv"]));
    assert!(
        err.contains("409")
            && err.contains(
                "configured (the server's configuration file, or its embedded demo defaults)"
            ),
        "{err}"
    );
    // No token at all: said with the variable's name, not clap's option alone.
    let err = refused(
        Command::new(BIN)
            .args(["clients", "list", "--issuer", issuer])
            .env_remove("DEVICEFLOW_ADMIN_TOKEN")
            .output()
            .unwrap(),
    );
    assert!(
        err.contains("DEVICEFLOW_ADMIN_TOKEN") && err.contains("--admin-token"),
        "{err}"
    );
    // Set but empty is none too.
    let err = refused(clients(issuer, "", &["list"]));
    assert!(err.contains("no admin token"), "{err}");
    let err = refused(clients(issuer, "not-the-admin-token", &["list"]));
    assert!(
        err.contains("401") && err.contains("invalid_token"),
        "{err}"
    );
    let err = refused(clients(
        issuer,
        ADMIN_TOKEN,
        &["add", "--name", "x", "--scope", "admin"],
    ));
    assert!(
        err.contains("invalid_client_metadata") && err.contains("admin"),
        "{err}"
    );
    let err = refused(clients("ftp://auth.example.test", ADMIN_TOKEN, &["list"]));
    assert!(err.contains("not an http:// or https:// URL"), "{err}");
    let err = refused(clients(&format!("{issuer}?x=1"), ADMIN_TOKEN, &["list"]));
    assert!(err.contains("has a query"), "{err}");
    // Scheme and host in any case, as RFC 3986 §3.1 and §3.2.2 read them.
    let upper = issuer.replacen("http://", "HTTP://", 1);
    assert!(ok(clients(&upper, ADMIN_TOKEN, &["list"])).contains("tv\tconfiguration"));
}

/// `clients` speaks https:// to a server behind TLS, as one is deployed: it trusts a
/// private CA named in SSL_CERT_FILE, and without it says what to do in one line
/// (before, any https:// issuer was refused: "plain HTTP only").
#[test]
fn clients_speaks_https_to_a_server_behind_tls() {
    let (server, dir) = server_on_test_config("clients-tls");
    let certs = temp_dir("clients-tls").unwrap();
    tls::certificates(&certs).unwrap();
    let port = free_port().unwrap();
    let terminator = tls::TlsTerminator::start(&certs, port, server.addr()).unwrap();
    let list = |ca: Option<&std::path::Path>| {
        let mut cmd = Command::new(BIN);
        cmd.args(["clients", "list", "--issuer", &terminator.url()])
            .env("DEVICEFLOW_ADMIN_TOKEN", ADMIN_TOKEN)
            .env_remove("SSL_CERT_FILE")
            .env_remove("SSL_CERT_DIR");
        if let Some(ca) = ca {
            cmd.env("SSL_CERT_FILE", ca);
        }
        cmd.output().unwrap()
    };
    let listed = ok(list(Some(&certs.join(tls::CA))));
    assert!(listed.contains("tv\tconfiguration\tnone\t"), "{listed}");
    assert_eq!(terminator.handshakes(), 1);
    let err = refused(list(None));
    assert!(
        err.contains("UnknownIssuer")
            && err.contains("name that CA's certificate in SSL_CERT_FILE"),
        "{err}"
    );
    // A CA file that cannot be read is said as that, not as an unknown CA.
    let err = refused(list(Some(&certs.join("no-such-ca.crt"))));
    assert!(
        err.contains("SSL_CERT_FILE=") && !err.contains("UnknownIssuer"),
        "{err}"
    );
    // TLS 1.3 asks for a client certificate after the handshake: hyper's "connection
    // error" alone had been said, without the alert behind it.
    let mutual = tls::HttpsServer::start_asking_for_client_certificates().unwrap();
    let out = Command::new(BIN)
        .args(["clients", "list", "--issuer", &mutual.url()])
        .env("DEVICEFLOW_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("SSL_CERT_FILE", mutual.ca_file())
        .env_remove("SSL_CERT_DIR")
        .output()
        .unwrap();
    let err = refused(out);
    assert!(
        err.contains("CertificateRequired") && err.contains("asks for a client certificate"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&certs);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `clients remove ID#x` named the client `ID#x`, but the `#` ended the URL's path and
/// `ID` was deleted; `ID?x` the same. The client_id is one path segment, encoded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_remove_deletes_the_client_named_and_no_other() {
    let (server, dir) = server_on_test_config("clients-remove");
    let issuer = server.base();
    let added = ok(clients(&issuer, ADMIN_TOKEN, &["add", "--name", "Kept"]));
    let client_id = value(&added, "client_id").unwrap().to_owned();
    for suffix in ["#oops", "?oops", "/../x"] {
        let named = format!("{client_id}{suffix}");
        let err = refused(clients(&issuer, ADMIN_TOKEN, &["remove", &named]));
        assert!(
            err.contains("404") && err.contains("unknown_client"),
            "{named}: {err}"
        );
        assert!(
            ok(clients(&issuer, ADMIN_TOKEN, &["list"])).contains(&client_id),
            "removing {named} removed {client_id}"
        );
    }
    // A configured client_id, whatever its characters, is told apart the same way:
    // the server decodes the segment (RFC 3986 §2.1), `%74v` is `tv`.
    let http = Client::new(issuer.clone());
    let a = http.delete_app("%74v").await;
    assert_eq!((a.status, a.error().as_str()), (409, "configured_client"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_list_to_an_unwritable_standard_output_is_one_line_not_a_panic() {
    let server = ServerProcess::start(
        BIN,
        &[
            "--listen",
            "127.0.0.1:0",
            "--quiet",
            "--admin-token",
            ADMIN_TOKEN,
        ],
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["clients", "list", "--issuer", &server.base()])
        .env("DEVICEFLOW_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("RUST_BACKTRACE", "1")
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("writing to standard output"), "{err}");
}

/// An answer that is not the admin API's (a proxy's HTML page, a person's page) is
/// quoted in one line, cut, as text: it printed the whole page, one line per line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_that_is_not_the_admin_apis_is_quoted_in_one_line() {
    let (server, dir) = server_on_test_config("clients-not-api");
    // The person's pages answer this path with an HTML page of many lines.
    let issuer = format!("{}/device", server.base());
    let err = refused(clients(&issuer, ADMIN_TOKEN, &["remove", "foo"]));
    assert!(err.contains("answered"), "{err}");
    assert!(err.len() < 600, "{err}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A server of our own that answers each connection, in order, with one of `answers`
/// (status line and JSON body), then stops; its issuer. A thread of this test process,
/// ending with the last answer or the process.
fn answering(answers: Vec<(&'static str, String)>) -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for (status, body) in answers {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            let timeout = Some(std::time::Duration::from_secs(5));
            let _ = stream.set_read_timeout(timeout);
            let mut reader = BufReader::new(stream);
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
            }
            let _ = reader.by_ref().take(length).read_to_end(&mut Vec::new());
            let answer = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = reader.get_mut().write_all(answer.as_bytes());
        }
    });
    issuer
}

/// A server answering garbage (an old version, a proxy, another program on the port)
/// was taken at its word: `clients add` answered 201 without a `client_id` exited 0
/// and printed nothing, a script went on with no client; a confidential one without
/// its secret, shown only this once, the same; a `client_id` holding a line break
/// printed a `client_secret=` line of the server's making; `clients list` answered
/// without a list exited 0.
#[test]
fn an_answer_that_says_nothing_registered_is_a_failure_not_a_silence() {
    let created = "201 Created";
    let cases: [(&[&str], &str, String, &str); 6] = [
        (&["add", "--name", "TV"], created, "{}".into(), "client_id"),
        (
            &["add", "--name", "TV"],
            created,
            r#"{"client_id":""}"#.into(),
            "client_id",
        ),
        (
            &["add", "--name", "TV"],
            created,
            r#"{"client_id":"dfc16384-a\nclient_secret=forged"}"#.into(),
            "client_id",
        ),
        (
            &["add", "--name", "P", "--auth-method", "client-secret-post"],
            created,
            r#"{"client_id":"dfc16384-abc","token_endpoint_auth_method":"client_secret_post"}"#
                .into(),
            // Registered, but unusable: said, with how to undo it.
            "dfc16384-abc, but its secret is not in the answer; remove it (deviceflow-server clients remove dfc16384-abc)",
        ),
        (
            &["rotate", "dfc16384-abc"],
            "200 OK",
            r#"{"client_id":"dfc16384-abc"}"#.into(),
            "the secret was replaced, but the answer does not say with what: rotate it again",
        ),
        (
            &["list"],
            "200 OK",
            r#"{"clients":"none"}"#.into(),
            "clients",
        ),
    ];
    for (args, status, body, named) in cases {
        let issuer = answering(vec![(status, body.clone())]);
        let err = refused(clients(&issuer, ADMIN_TOKEN, args));
        assert!(err.contains(named), "{args:?} answered {body}: {err}");
    }
    // A rotation's answer holding the secret alone is enough: the client_id is the
    // one named.
    let issuer = answering(vec![("200 OK", r#"{"client_secret":"s3cret"}"#.into())]);
    let out = ok(clients(&issuer, ADMIN_TOKEN, &["rotate", "dfc16384-abc"]));
    assert_eq!(out.trim(), "client_secret=s3cret");
    // Pages that never end (the same `next` again) end the command, not the loop.
    let page = r#"{"clients":[],"next":"7"}"#.to_owned();
    let issuer = answering(vec![("200 OK", page.clone()), ("200 OK", page)]);
    let err = refused(clients(&issuer, ADMIN_TOKEN, &["list"]));
    assert!(err.contains("next"), "{err}");
}

/// What the command says of an answer it did not expect: a status without a body gave
/// "answered 431 Request Header Fields Too Large: " and nothing after; a 200 where a
/// 201 was due gave "answered 200 OK: - (-)"; an argument holding an escape sequence
/// reached the terminal raw in the error; `--json` echoed the server's C1 controls and
/// bidirectional marks raw.
#[test]
fn what_the_command_quotes_says_something_and_never_acts_on_the_terminal() {
    let issuer = answering(vec![("431 Request Header Fields Too Large", String::new())]);
    let err = refused(clients(&issuer, ADMIN_TOKEN, &["list"]));
    assert!(
        err.trim_end()
            .ends_with("answered 431 Request Header Fields Too Large: nothing (an empty body)"),
        "{err}"
    );
    let issuer = answering(vec![("200 OK", "{}".into())]);
    let err = refused(clients(&issuer, ADMIN_TOKEN, &["add", "--name", "TV"]));
    assert!(
        err.trim_end()
            .ends_with("answered 200 OK where 201 Created was expected: {}"),
        "{err}"
    );
    let issuer = answering(vec![(
        "404 Not Found",
        r#"{"error":"unknown_client"}"#.into(),
    )]);
    let hostile = "\u{1b}]52;c;aGk=\u{7}\u{1b}[31mX";
    let err = refused(clients(&issuer, ADMIN_TOKEN, &["remove", hostile]));
    assert!(!err.contains(['\u{1b}', '\u{7}']), "{err:?}");
    assert!(err.trim_end().ends_with(": unknown_client"), "{err}");
    let listed = r#"{"clients":[{"client_id":"tv","client_name":"TV\u0085\u202egnp.exe"}]}"#;
    let issuer = answering(vec![("200 OK", listed.to_owned())]);
    let out = ok(clients(&issuer, ADMIN_TOKEN, &["list", "--json"]));
    assert!(!out.contains(['\u{85}', '\u{202e}']), "{out:?}");
    let back: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(back["clients"][0]["client_name"], "TV\u{85}\u{202e}gnp.exe");
}

/// `clients list` printed the server's names as they came: an escape sequence in one
/// (from a hostile server, or a name in the TOML file, which nothing checks) reached
/// the terminal (OSC 52 writes the clipboard), and a tab in it made one more column.
#[test]
fn clients_list_prints_names_as_text_one_line_of_five_columns_each() {
    let listed = r#"{"clients":[{"client_id":"tv","source":"configuration","token_endpoint_auth_method":"none","scope":"openid","client_name":"\u001b]52;c;ZXZpbA==\u0007TV\tfake\ncolumns"}]}"#;
    let issuer = answering(vec![("200 OK", listed.to_owned())]);
    let out = ok(clients(&issuer, ADMIN_TOKEN, &["list"]));
    assert!(
        !out.contains(['\u{1b}', '\u{7}']),
        "{out:?}: control characters reached the terminal"
    );
    assert_eq!(out.lines().count(), 2, "{out:?}");
    let line = out.lines().nth(1).unwrap();
    assert_eq!(line.split('\t').count(), 5, "{out:?}");
    assert!(line.contains("TV"), "{out:?}");
}

/// A passphrase for an admin token (inner spaces): the server took it, and the command
/// refused to send it ("must be printable ASCII without spaces"). One rule now.
#[test]
fn an_admin_token_the_server_takes_is_one_the_command_sends() {
    let passphrase = "correct horse battery staple";
    let server = ServerProcess::start(
        BIN,
        &[
            "--listen",
            "127.0.0.1:0",
            "--quiet",
            "--admin-token",
            passphrase,
        ],
    )
    .unwrap();
    let list = ok(clients(&server.base(), passphrase, &["list"]));
    assert!(list.contains("demo-device"), "{list}");
}

/// A confidential client registered, and its answer (the secret, shown once) could not
/// be printed (a full disk): the error said only "writing to standard output", and the
/// client stayed registered with nothing to name it by. The error names it and how to
/// remove it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_registered_whose_secret_could_not_be_printed_is_named() {
    let (server, dir) = server_on_test_config("clients-full");
    let issuer = server.base();
    let out = Command::new(BIN)
        .args(["clients", "add", "--name", "Full disk", "--auth-method"])
        .args(["client-secret-basic", "--issuer", &issuer])
        .env("DEVICEFLOW_ADMIN_TOKEN", ADMIN_TOKEN)
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .output()
        .unwrap();
    let err = refused(out);
    let list = ok(clients(&issuer, ADMIN_TOKEN, &["list"]));
    let id = list
        .lines()
        .find(|l| l.ends_with("\tFull disk"))
        .and_then(|l| l.split('\t').next())
        .unwrap_or_else(|| panic!("registered: {list}"));
    assert!(
        err.contains(&format!("registered {id}, but could not print it"))
            && err.contains(&format!("clients remove {id}"))
            && err.contains("No space left on device"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// An admin token an HTTP header cannot carry (a line break pasted with it) was
/// reported as "failed to parse header value"; it says which value is wrong, and
/// never shows it.
#[test]
fn an_admin_token_no_header_can_carry_is_named_not_shown() {
    let issuer = answering(vec![]);
    let err = refused(clients(&issuer, "secret-token\nline", &["list"]));
    assert!(err.contains("admin token"), "{err}");
    assert!(!err.contains("secret-token"), "{err}");
}

/// 3,000 registered clients (49,152 can be) made a list of more than 1 MiB, which the
/// command would not read: "the body is larger than 1048576 bytes". It reads the list
/// page by page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_list_reads_every_client_however_many() {
    let (server, dir) = server_on_test_config("clients-many");
    let issuer = server.base();
    let http = Client::new(issuer.clone());
    let admin = format!("Bearer {ADMIN_TOKEN}");
    const MANY: usize = 3_000;
    for i in 0..MANY {
        let name = format!("{i:05} {}", "n".repeat(94));
        let a = http
            .post_json(
                ADMIN_CLIENTS,
                &serde_json::json!({"client_name": name, "token_endpoint_auth_method": "none"}),
                &[("authorization", &admin)],
            )
            .await;
        assert_eq!(a.status, 201, "{:?}", a.body);
    }
    let out = ok(clients(&issuer, ADMIN_TOKEN, &["list"]));
    // The columns' names, the five configured clients, then every registered one,
    // once, in order.
    assert_eq!(out.lines().count(), 1 + 5 + MANY);
    for (i, line) in out.lines().skip(1 + 5).enumerate() {
        assert!(line.contains(&format!("\t{i:05} n")), "{i}: {line}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&ok(clients(&issuer, ADMIN_TOKEN, &["list", "--json"]))).unwrap();
    assert_eq!(json["clients"].as_array().map(Vec::len), Some(5 + MANY));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The line naming `clients list`'s columns.
const COLUMNS: &str = "client_id\tsource\ttoken_endpoint_auth_method\tscope\tclient_name";

/// `clients list` showed a configured confidential client (`demo-confidential`, `conf`)
/// as `client_secret_basic` in a column without a name, though it is accepted with
/// `client_secret_post` too, as the metadata's `token_endpoint_auth_methods_supported`
/// says: the column is the admin API's RFC 7591 `token_endpoint_auth_method`, the
/// first of a configured client's methods, and is now named so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_list_names_its_columns_for_what_they_show() {
    let (server, dir) = server_on_test_config("clients-columns");
    let issuer = server.base();
    let http = Client::new(issuer.clone());
    let list = ok(clients(&issuer, ADMIN_TOKEN, &["list"]));
    let mut lines = list.lines();
    assert_eq!(lines.next(), Some(COLUMNS), "{list}");
    let conf = lines
        .find(|l| l.starts_with("conf\t"))
        .unwrap_or_else(|| panic!("no conf: {list}"));
    assert_eq!(
        conf.split('\t').nth(2),
        Some("client_secret_basic"),
        "{list}"
    );
    // What the column does not say: conf is accepted with either method.
    let basic = http
        .post_with(DA, "", &[("authorization", &basic("conf", CONF_SECRET))])
        .await;
    assert_eq!(basic.status, 200, "{:?}", basic.body);
    let post = http
        .post(DA, &format!("client_id=conf&client_secret={CONF_SECRET}"))
        .await;
    assert_eq!(post.status, 200, "{:?}", post.body);
    let _ = std::fs::remove_dir_all(&dir);
}
