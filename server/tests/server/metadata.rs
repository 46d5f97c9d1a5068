//! Discovery metadata (checklist A.8), health and metrics.

use crate::common::*;

#[tokio::test]
async fn metadata_advertises_the_device_flow_and_its_endpoints_work() {
    // MD-01..MD-07, BCP-03.
    let s = TestServer::start().await;
    let a = s.get("/.well-known/oauth-authorization-server").await;
    assert_eq!(a.status, 200);
    assert!(a
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    let m = a.json();
    assert_eq!(m["issuer"], s.base.as_str());
    let grants: Vec<&str> = m["grant_types_supported"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g.as_str())
        .collect();
    assert!(grants.contains(&"urn:ietf:params:oauth:grant-type:device_code"));
    assert!(m["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap()
        .contains(&"none".into()));
    for (_, v) in m.as_object().unwrap() {
        if let Some(arr) = v.as_array() {
            assert!(!arr.is_empty(), "MD-03: empty arrays are omitted");
        }
    }
    // MD-05: the advertised endpoints are the ones that work.
    let da_url = m["device_authorization_endpoint"].as_str().unwrap();
    let token_url = m["token_endpoint"].as_str().unwrap();
    let da = s
        .send(s.http.post(da_url).form(&[("client_id", "tv")]))
        .await
        .json();
    let poll = s
        .send(s.http.post(token_url).form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", "tv"),
            ("device_code", da["device_code"].as_str().unwrap()),
        ]))
        .await;
    poll.assert_oauth_error(400, "authorization_pending");
}

#[tokio::test]
async fn health_and_unknown_paths() {
    let s = TestServer::start().await;
    let h = s.get("/healthz").await;
    assert_eq!((h.status, h.json()["status"].as_str()), (200, Some("ok")));
    let n = s.get("/nope").await;
    assert_eq!(n.status, 404);
    assert_eq!(n.error(), "not_found");
    let m = s.post("/healthz", "").await;
    assert_eq!((m.status, m.header("allow")), (405, Some("GET, HEAD")));
    // Readiness: the in-memory store always answers.
    let r = s.get("/readyz").await;
    assert_eq!(
        (r.status, r.json()["status"].as_str()),
        (200, Some("ready"))
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let m = s.post("/readyz", "").await;
    assert_eq!((m.status, m.header("allow")), (405, Some("GET, HEAD")));
}

#[tokio::test]
async fn head_answers_every_get_resource_with_its_head_alone() {
    // RFC 9110 §9.1: a general-purpose server supports HEAD wherever it supports GET,
    // and §9.3.2: the same header fields as GET, no content.
    let s = TestServer::start().await;
    for path in [
        "/.well-known/oauth-authorization-server",
        "/healthz",
        "/readyz",
        "/metrics",
        "/device",
    ] {
        let get = s.get(path).await;
        let head = s.send(s.http.head(format!("{}{path}", s.base))).await;
        assert_eq!((head.status, get.status), (200, 200), "{path}");
        assert!(head.body.is_empty(), "{path}: {:?}", head.body);
        assert_eq!(
            head.header("content-type"),
            get.header("content-type"),
            "{path}"
        );
    }
    let metadata = s.get("/.well-known/oauth-authorization-server").await;
    let head = s
        .send(
            s.http
                .head(format!("{}/.well-known/oauth-authorization-server", s.base)),
        )
        .await;
    assert_eq!(
        head.header("content-length").map(str::to_owned),
        Some(metadata.body.len().to_string())
    );
}

#[tokio::test]
async fn metrics_count_polls_by_outcome() {
    let s = TestServer::start().await;
    let da = s.authorize("tv").await;
    s.poll("tv", &da.device_code).await;
    s.poll("tv", &da.device_code).await;
    s.poll("tv", "garbage").await;
    let m = s.get("/metrics").await;
    assert!(m.header("content-type").unwrap().starts_with("text/plain"));
    let text = String::from_utf8(m.body.to_vec()).unwrap();
    for line in [
        "deviceflow_token_polls_total{outcome=\"authorization_pending\"} 1",
        "deviceflow_token_polls_total{outcome=\"slow_down\"} 1",
        "deviceflow_token_polls_total{outcome=\"invalid_grant\"} 1",
        "deviceflow_slow_down_total 1",
        "deviceflow_sessions 1",
        "deviceflow_device_authorizations_total 1",
        "deviceflow_http_request_duration_seconds_count{endpoint=\"token\"} 3",
    ] {
        assert!(
            text.contains(&format!("{line}\n")),
            "missing {line:?} in\n{text}"
        );
    }
}

/// RFC 8414 §3.1: an issuer with a path component (a server behind a proxy at
/// `https://h/auth`) has its metadata at `/.well-known/oauth-authorization-server/auth`,
/// the well-known string between host and path. Only the root path answered; a client
/// following §3.1 found no metadata.
#[tokio::test]
async fn an_issuer_with_a_path_has_its_metadata_at_the_rfc_8414_path_too() {
    let port = deviceflow_testkit::free_port().unwrap();
    let issuer = format!("http://127.0.0.1:{port}/auth");
    let server = deviceflow_testkit::ServerProcess::start(
        env!("CARGO_BIN_EXE_deviceflow-server"),
        &[
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--issuer",
            &issuer,
        ],
    )
    .expect("the server starts");
    let client = reqwest::Client::new();
    for path in [
        "/.well-known/oauth-authorization-server/auth",
        "/.well-known/oauth-authorization-server",
    ] {
        let a = client
            .get(format!("{}{path}", server.base()))
            .send()
            .await
            .unwrap();
        assert_eq!(a.status(), 200, "{path}");
        let m: serde_json::Value = a.json().await.unwrap();
        assert_eq!(m["issuer"], issuer.as_str(), "{path}");
    }
    // Another path is not metadata.
    let other = client
        .get(format!(
            "{}/.well-known/oauth-authorization-server/other",
            server.base()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
}
