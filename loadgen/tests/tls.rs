//! `https://` servers. A fleet reaches a device-flow server behind a TLS terminator,
//! pays one handshake per connection and keeps it, and reconciles with the server's
//! `/metrics`, read over TLS too. A server whose certificate the generator cannot
//! check is refused before any device runs, in one line that says what to do.

mod common;

use std::net::SocketAddr;
use std::path::Path;

use deviceflow_loadgen::device::flow::Outcome;
use deviceflow_loadgen::report::results::RunData;
use deviceflow_testkit::tls::{certificates, TlsTerminator as Terminator, CA};
use deviceflow_testkit::{free_port, temp_dir};

use common::{read_run, report_dir, Server};

/// Our server, its metadata advertising `https://{name}:{port}` (where a terminator
/// in front of it listens), and that terminator.
fn behind_tls(certs: &Path, name: &str) -> (Server, Terminator, String) {
    let port = free_port().unwrap();
    let public = format!("https://{name}:{port}");
    let server = Server::start_as(
        &["127.0.0.1:0"],
        Some(&public),
        "expires_in = 30\ninterval = 1",
        "",
    )
    .remove(0);
    let terminator = Terminator::start(certs, port, upstream(&server)).unwrap();
    (server, terminator, format!("https://127.0.0.1:{port}"))
}

fn upstream(server: &Server) -> SocketAddr {
    server
        .base
        .strip_prefix("http://")
        .unwrap()
        .parse()
        .unwrap()
}

/// The generator against `hosts`, `args` added, trusting `ca` (SSL_CERT_FILE; the
/// system's roots alone when `None`): its exit status and standard error.
fn generator(
    hosts: &[&str],
    dir: &Path,
    args: &[&str],
    ca: Option<&Path>,
) -> (Option<i32>, String) {
    let mut command = common::loadgen(hosts, dir);
    command
        .args(args)
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR");
    if let Some(ca) = ca {
        command.env("SSL_CERT_FILE", ca);
    }
    let out = command.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn tls_certificates(name: &str) -> std::path::PathBuf {
    let dir = temp_dir(name).unwrap();
    certificates(&dir).unwrap();
    dir
}

#[test]
fn a_fleet_reaches_a_server_behind_tls_keeps_its_connections_and_reconciles() {
    let certs = tls_certificates("loadgen-tls");
    let (_server, terminator, base) = behind_tls(&certs, "127.0.0.1");
    let dir = report_dir("tls");
    let args = [
        "-u",
        "20",
        "-r",
        "20",
        "--mix",
        "compliant=100",
        "--decide-after",
        "1..2",
        "--deny-percent",
        "0",
        "--never-percent",
        "0",
        "--expect-interval",
        "1",
    ];
    let (code, stderr) = generator(&[&base], &dir, &args, Some(&certs.join(CA)));
    assert_eq!(code, Some(0), "{stderr}");

    let run: RunData = read_run(&dir);
    let s = &run.stats;
    assert_eq!(s.outcome(Outcome::Token), 20, "{stderr}");
    assert_eq!(s.transport_errors(), 0, "{stderr}");
    // A pooled TLS connection is taken for open though its server sent session
    // tickets after the handshake: no request went out again on a new connection.
    let sent: u64 = s.kinds.values().map(|k| k.sent).sum();
    let retried: u64 = s.kinds.values().map(|k| k.retried_unsent).sum();
    assert_eq!(retried, 0, "{sent} requests, {retried} sent again");
    assert!(
        s.connections_opened >= 1 && s.connections_opened * 3 <= sent,
        "{sent} requests on {} connections",
        s.connections_opened
    );
    // Every connection the fleet opened went through the terminator's handshake (the
    // rest were the discovery's, the approver's and the /metrics scrapes').
    let handshakes = terminator.handshakes() as u64;
    assert!(
        handshakes >= s.connections_opened,
        "{handshakes} handshakes, {} connections",
        s.connections_opened
    );
    assert!(
        run.metrics.is_some(),
        "no /metrics over TLS: {:?}",
        run.no_reconciliation
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&certs);
}

#[test]
fn a_certificate_from_an_unknown_ca_is_refused_before_any_device_runs() {
    let certs = tls_certificates("loadgen-tls-ca");
    let (_server, terminator, base) = behind_tls(&certs, "127.0.0.1");
    let dir = report_dir("tls-ca");
    let (code, stderr) = generator(&[&base], &dir, &["-u", "5", "-r", "5"], None);
    assert_ne!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("UnknownIssuer") && stderr.contains("SSL_CERT_FILE"),
        "{stderr}"
    );
    assert!(
        !dir.join("run.json").exists(),
        "a run was written: {stderr}"
    );
    // The handshakes the refusal took: none of a fleet's.
    assert!(terminator.handshakes() == 0);
    let _ = std::fs::remove_dir_all(&certs);
}

/// The metadata advertises the endpoints on another authority than `--host`, by a
/// name the certificate does not list (`localhost`, where the certificate is for
/// 127.0.0.1): discovery, on `--host`, works, and the fleet's own check refuses the
/// endpoints' authority in one line.
#[test]
fn endpoints_on_a_name_the_certificate_does_not_list_are_refused_before_any_device_runs() {
    let certs = tls_certificates("loadgen-tls-name");
    // The endpoints' terminator, and another for --host, both in front of one server.
    let (server, endpoints, _) = behind_tls(&certs, "localhost");
    let port = free_port().unwrap();
    let host = Terminator::start(&certs, port, upstream(&server)).unwrap();
    let dir = report_dir("tls-name");
    let host_url = format!("https://127.0.0.1:{port}");
    let ca = certs.join(CA);
    let (code, stderr) = generator(&[&host_url], &dir, &["-u", "5", "-r", "5"], Some(&ca));
    assert_ne!(code, Some(0), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("https://localhost:"))
        .unwrap_or_else(|| panic!("no line names the endpoints' authority: {stderr}"));
    assert!(
        line.contains("not valid for name") && line.contains("its certificate lists"),
        "{line}"
    );
    assert!(
        !dir.join("run.json").exists(),
        "a run was written: {stderr}"
    );
    // Discovery and the approver's check reached --host; the check reached the
    // endpoints' terminator, and its handshake failed.
    assert!(host.handshakes() >= 1);
    assert_eq!(endpoints.handshakes(), 0);
    let _ = std::fs::remove_dir_all(&certs);
}

/// What the first request of a run would meet is met before it, one `GET /` to each
/// host, and refused in one line with what to do (exit 2), not put on the server as
/// its failure to answer: a TLS 1.3 server that asks for a client certificate (said
/// only after the handshake, which succeeds), and a TLS port named `http://`. Before,
/// both ran, and every request to that host was a transport error the report put on
/// the server. And a `SSL_CERT_FILE` that cannot be read is said as that, not as a
/// certificate from an unknown CA.
#[test]
fn a_host_that_cannot_serve_the_run_is_refused_before_any_device_runs() {
    let certs = tls_certificates("loadgen-tls-hosts");
    let (_server, terminator, base) = behind_tls(&certs, "127.0.0.1");
    let mutual =
        deviceflow_testkit::tls::HttpsServer::start_asking_for_client_certificates().unwrap();
    let plain_named = terminator.url().replace("https://", "http://");
    let dir = report_dir("tls-hosts");
    let run = |second: &str, ca: &Path| {
        generator(&[&base, second], &dir, &["-u", "4", "-r", "4"], Some(ca))
    };
    // Its CA in the file too: the server's certificate checks out, the alert follows.
    let both = certs.join("both.crt");
    let pem = |p: std::path::PathBuf| std::fs::read_to_string(p).unwrap();
    std::fs::write(&both, pem(certs.join(CA)) + &pem(mutual.ca_file())).unwrap();
    let (code, err) = run(&mutual.url(), &both);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "{}: TLS: received fatal alert: CertificateRequired",
            mutual.url()
        )) && err.contains("asks for a client certificate"),
        "{err}"
    );
    let (code, err) = run(&plain_named, &certs.join(CA));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!("{plain_named}: no HTTP answer to GET /"))
            && err.contains("give https://"),
        "{err}"
    );
    let (code, err) = run(&base, &certs.join("no-such-ca.crt"));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("SSL_CERT_FILE=") && err.contains("no-such-ca.crt"),
        "{err}"
    );
    assert!(!err.contains("UnknownIssuer"), "{err}");
    assert!(!dir.join("run.json").exists());
    let _ = std::fs::remove_dir_all(&certs);
}
