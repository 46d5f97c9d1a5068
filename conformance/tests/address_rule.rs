//! The address rule (`deviceflow_conformance::http::reach`): a server cannot send the suite to
//! an intranet or cloud-metadata address and have the answer put in the reports, nor
//! by an IP literal, nor by a name, nor by a redirect; what it could not fetch is
//! inconclusive, never the server's failure; and the hosts the server named are said
//! once in every report.
//!
//! One machine has only loopback to listen on, so the tests stand the rule's two sides
//! on it: a run whose issuer is public (a public IP literal, never connected to) must
//! not reach a listener on 127.0.0.1, counted; and a run whose issuer is a loopback
//! server must not follow that server to a private or link-local address (refused
//! before any connection: the evidence says so, in no time).

mod command;
mod tiny;

use std::sync::atomic::Ordering;
use std::time::Duration;

use deviceflow_conformance::http::reach::{Reach, NOT_CONNECTED};
use deviceflow_conformance::http::Http;

use command::command;
use tiny::{json, serve};

#[tokio::test]
async fn a_public_issuers_run_connects_to_no_loopback_address_by_literal_name_or_mapped_form() {
    let (base, accepted) = serve("127.0.0.1", |_, _, _| {
        json("200 OK", r#"{"AccessKeyId":"INTERNAL"}"#.to_owned())
    })
    .await;
    let port = base.rsplit(':').next().unwrap().to_owned();
    // The issuer a person named is public (an address literal: never connected to).
    let public = Reach::for_named(&["https://93.184.215.14/"], false).await;
    let http = Http::new(Duration::from_secs(2), public);
    for url in [
        format!("http://127.0.0.1:{port}/latest/meta-data/"),
        // A name is checked where it is resolved, by the client's resolver hook.
        format!("http://localhost:{port}/latest/meta-data/"),
        format!("http://[::ffff:127.0.0.1]:{port}/latest/meta-data/"),
        format!("http://0.0.0.0:{port}/latest/meta-data/"),
    ] {
        let e = http.get("GET verification_uri (hop 0)", &url).await;
        let why = e
            .not_connected()
            .unwrap_or_else(|| panic!("{url} was fetched: {}", e.brief()));
        assert!(why.starts_with(NOT_CONNECTED), "{why}");
        assert!(why.contains("loopback address"), "{why}");
        assert_eq!(e.status(), None);
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "a connection was made");
    let hosts = http.reach().hosts();
    assert!(
        hosts
            .iter()
            .all(|h| h.requests == 0 && h.not_connected.is_some()),
        "{hosts:?}"
    );

    // The same listener is reached by a run whose issuer is on loopback, by name too.
    let local = Reach::for_named(&[&base], false).await;
    let e = Http::new(Duration::from_secs(2), local)
        .get("GET", &format!("http://localhost:{port}/"))
        .await;
    assert_eq!(e.status(), Some(200), "{}", e.brief());
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

/// A device-flow server: its metadata on 127.0.0.1, the issuer; its endpoints and
/// verification page on 127.0.0.2 (another host of the same kind: reached, and
/// listed). The page redirects to the cloud metadata address; `verification_uri_complete`
/// is on a private one; the token endpoint is `token_endpoint`, if given.
async fn server_naming_internal_addresses(token_endpoint: Option<&'static str>) -> String {
    let (endpoints, _) = serve("127.0.0.2", move |me, method, path| match (method, path) {
        ("POST", "/da") => json(
            "200 OK",
            serde_json::json!({
                "device_code": "dc-0123456789abcdef0123456789",
                "user_code": "WDJB-MJHT",
                "verification_uri": format!("{me}/verify"),
                "verification_uri_complete": "http://10.255.255.1/device?user_code=WDJB-MJHT",
                "expires_in": 600,
                "interval": 1
            })
            .to_string(),
        ),
        ("GET", "/verify") => (
            "302 Found",
            "text/html",
            "location: http://169.254.169.254/latest/meta-data/iam/security-credentials/role\r\n"
                .to_owned(),
            String::new(),
        ),
        _ => json(
            "400 Bad Request",
            r#"{"error":"authorization_pending"}"#.to_owned(),
        ),
    })
    .await;
    let (issuer, _) = serve("127.0.0.1", move |me, method, path| match (method, path) {
        ("GET", "/.well-known/oauth-authorization-server") => json(
            "200 OK",
            serde_json::json!({
                "issuer": me,
                "device_authorization_endpoint": format!("{endpoints}/da"),
                "token_endpoint": token_endpoint.map_or(format!("{endpoints}/token"), str::to_owned),
                "grant_types_supported": ["urn:ietf:params:oauth:grant-type:device_code"]
            })
            .to_string(),
        ),
        _ => json("404 Not Found", r#"{"error":"not_found"}"#.to_owned()),
    })
    .await;
    issuer
}

#[tokio::test]
async fn pages_a_loopback_server_names_on_link_local_or_private_addresses_are_inconclusive_and_listed(
) {
    let issuer = server_naming_internal_addresses(None).await;
    let dir = std::env::temp_dir().join(format!("dfc-reach-{}", std::process::id()));
    let file = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let r = command(&[
        "--issuer",
        &issuer,
        "--client-id",
        "tv",
        "--client-secret",
        "s3cret-s3cret",
        "--only",
        "UI-01,UI-03,UI-05,UI-13",
        "--timeout",
        "2",
        "--json",
        &file("r.json"),
        "--junit",
        &file("junit.xml"),
        "--markdown",
        &file("r.md"),
    ])
    .await;
    // UI-01 and UI-13 are MUSTs the suite could not judge: exit 4, never 1.
    assert_eq!(r.code, 4, "{}{}", r.stdout, r.stderr);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file("r.json")).unwrap()).unwrap();
    // The options' durations in milliseconds (they were serde's `{secs, nanos}`).
    assert_eq!(
        report["options"]["request_timeout_ms"], 2000,
        "{}",
        report["options"]
    );
    assert_eq!(
        report["options"]["max_wait_ms"], 90_000,
        "{}",
        report["options"]
    );
    assert!(
        report["options"]["poll_margin_ms"].is_u64(),
        "{}",
        report["options"]
    );
    let case = |id: &str| {
        report["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap()
            .clone()
    };
    for (id, refused) in [
        ("UI-01", "169.254.169.254 is a link-local address"),
        ("UI-03", "is a "),
        ("UI-05", "10.255.255.1 is a private address"),
        ("UI-13", "169.254.169.254 is a link-local address"),
    ] {
        let c = case(id);
        let summary = c["summary"].as_str().unwrap();
        assert_eq!(c["status"], "skip", "{id}: {summary}");
        assert!(summary.starts_with("inconclusive"), "{id}: {summary}");
        assert!(
            summary.contains(NOT_CONNECTED) && summary.contains(refused),
            "{id}: {summary}"
        );
    }
    // The refused hop: asked of nobody, in no time.
    let hop = case("UI-01")["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["request"]["url"].as_str().unwrap().contains("169.254"))
        .cloned()
        .unwrap();
    assert!(
        hop.get("response").is_none() && hop["elapsed_ms"] == 0,
        "{hop}"
    );

    // Said once, in every report: the other hosts, what named them, the credentials.
    let hosts = report["network"]["server_named_hosts"].as_array().unwrap();
    let host = |origin: &str| hosts.iter().find(|h| h["origin"] == origin).cloned();
    let endpoints = hosts
        .iter()
        .find(|h| {
            h["origin"]
                .as_str()
                .unwrap()
                .starts_with("http://127.0.0.2:")
        })
        .cloned()
        .unwrap_or_else(|| panic!("127.0.0.2 not listed: {hosts:?}"));
    assert_eq!(
        endpoints["named_as"], "device_authorization_endpoint in the metadata",
        "{endpoints}"
    );
    assert_eq!(endpoints["credentials_sent"], true, "{endpoints}");
    assert!(endpoints["requests"].as_u64().unwrap() > 0);
    for origin in ["http://169.254.169.254", "http://10.255.255.1"] {
        let h = host(origin).unwrap_or_else(|| panic!("{origin} not listed: {hosts:?}"));
        assert_eq!(h["requests"], 0, "{h}");
        assert!(h["not_connected"]
            .as_str()
            .unwrap()
            .starts_with(NOT_CONNECTED));
    }
    let heading = "Other hosts the server named";
    let junit = std::fs::read_to_string(file("junit.xml")).unwrap();
    let markdown = std::fs::read_to_string(file("r.md")).unwrap();
    let junit_text = junit.replace("&#39;", "'");
    // Markdown writes a URL as a code span (GitHub links none of the server's hosts).
    let markdown_text = markdown.replace("\\_", "_").replace('`', "");
    for (name, text) in [
        ("terminal", &r.stdout),
        ("junit", &junit_text),
        ("markdown", &markdown_text),
    ] {
        assert_eq!(text.matches(heading).count(), 1, "{name}: {text}");
        // Named by the first case to get there (UI-01, UI-03 or UI-13: they run at once).
        assert!(
            text.contains("http://169.254.169.254 — GET ")
                && text.contains("169.254.169.254 is a link-local address"),
            "{name}: {text}"
        );
        assert!(text.contains("http://127.0.0.2:"), "{name}");
        assert!(text.contains("a client's credentials sent"), "{name}");
    }
    assert!(junit.contains("<property name=\"server-named-host\""));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_token_endpoint_on_an_address_the_rule_refuses_is_the_runs_one_cause() {
    let issuer = server_naming_internal_addresses(Some("http://[fd00:ec2::254]/token")).await;
    let r = command(&["--issuer", &issuer, "--client-id", "tv", "--timeout", "2"]).await;
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(all.contains("ROOT CAUSE"), "{all}");
    assert!(
        all.contains(
            "the metadata names token_endpoint http://[fd00:ec2::254]/token, and not connected"
        ),
        "{all}"
    );
    assert!(all.contains("fd00:ec2::254 is a private address"), "{all}");
}
