//! What the benches and the `ceiling` and `hostile` binaries share: the one spelling of
//! the device access token request they all send (RFC 8628 §3.4), an in-process demo
//! app to send it to, the ceiling's answer, the resident-memory reading of the memory
//! bench, and [`hostile`]'s fleet and attacks.
//!
//! It decides no verdict: the criterion groups are in `benches/`, the wrk comparison
//! is `ceiling.sh`, the hostile-traffic run `hostile.sh`, and README.md says what each
//! measures and the targets.

use bytes::Bytes;
use deviceflow_server::http::paths;
use deviceflow_server::http::poll_answer;
use deviceflow_server::protocol::session::SlowDownPolicy;
use deviceflow_server::{App, Clock, FileConfig, Settings, NO_PEER};
use deviceflow_wire::{DeviceAuthorizationResponse, ErrorCode, ErrorResponse};
use http_body_util::{BodyExt, Full};
use hyper::body::Body;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Response, StatusCode};

pub mod hostile;

/// RFC 8628 §3.1: requests are `application/x-www-form-urlencoded`.
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// The public client of the embedded demo configuration.
pub const DEMO_CLIENT_ID: &str = "demo-device";

/// The body of a device access token request by the demo client, with the grant type
/// percent-encoded as form libraries send it.
pub fn poll_body(device_code: &str) -> Bytes {
    let grant_type = deviceflow_wire::GRANT_TYPE_DEVICE_CODE.replace(':', "%3A");
    Bytes::from(format!(
        "grant_type={grant_type}&device_code={device_code}&client_id={DEMO_CLIENT_ID}"
    ))
}

/// A form POST to `path`, built as hyper hands one to a service. `body` is a cheap
/// clone (`Bytes`), so building this in a timed loop costs what hyper's parse would.
pub fn form_post(path: &str, body: Bytes) -> Request<Full<Bytes>> {
    Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(HOST, "bench")
        .header(CONTENT_TYPE, FORM_CONTENT_TYPE)
        .body(Full::new(body))
        .expect("a POST with a static path and header is a valid request")
}

/// The device access token request (RFC 8628 §3.4) for `body` from [`poll_body`].
pub fn poll_request(body: Bytes) -> Request<Full<Bytes>> {
    form_post(paths::TOKEN, body)
}

/// The demo configuration with `slow_down` off, so that a code polled back to back
/// stays `authorization_pending` instead of measuring the `slow_down` answer, and the
/// device authorization quotas off: a bench is one caller issuing as fast as it can,
/// which is what they exist to refuse.
pub fn demo_settings() -> Settings {
    let mut file = FileConfig::demo();
    file.device.slow_down = SlowDownPolicy::Off;
    file.quotas.per_source_rate = 0.0;
    file.quotas.per_client_rate = 0.0;
    file.quotas.client_share = 1.0;
    Settings::from_file(file).expect("the demo configuration is valid")
}

/// An in-process app on the demo configuration, the system clock and the memory store.
pub fn demo_app() -> App {
    App::new(demo_settings(), "http://127.0.0.1".into(), Clock::System)
}

/// Asks `app` for a device code through its device authorization endpoint (RFC 8628
/// §3.1), the way a device would.
pub async fn issue_device_code(app: &App) -> String {
    let body = Bytes::from(format!("client_id={DEMO_CLIENT_ID}&scope=openid"));
    let reply = app
        .handle(form_post(paths::DEVICE_AUTHORIZATION, body), NO_PEER)
        .await;
    let status = reply.status();
    let bytes = body_bytes(reply).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "device authorization failed: {}",
        String::from_utf8_lossy(&bytes)
    );
    let r: DeviceAuthorizationResponse =
        serde_json::from_slice(&bytes).expect("a device authorization response");
    r.device_code
}

/// The status and RFC 6749 §5.2 `error` of an answer (`None` if it has none).
pub async fn error_of(reply: Response<Full<Bytes>>) -> (StatusCode, Option<ErrorCode>) {
    let status = reply.status();
    let bytes = body_bytes(reply).await;
    let code = serde_json::from_slice::<ErrorResponse>(&bytes)
        .ok()
        .and_then(|e| e.code());
    (status, code)
}

async fn body_bytes(reply: Response<Full<Bytes>>) -> Bytes {
    match reply.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(never) => match never {},
    }
}

/// What the ceiling does for a poll: read the whole body, then answer the bytes our
/// server answers a pending poll, and nothing else.
///
/// Status, headers and body are taken once from our own
/// `poll_answer(AuthorizationPending)`, so the two answers cannot drift
/// apart; each reply then only reassembles them, as our JSON answers are built.
pub struct CeilingAnswer {
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: &'static [u8],
}

impl CeilingAnswer {
    /// Takes our server's `authorization_pending` answer apart.
    pub async fn from_ours() -> CeilingAnswer {
        CeilingAnswer::taken_apart(poll_answer(ErrorCode::AuthorizationPending)).await
    }

    /// Takes apart our server's answer to a device authorization request (RFC 8628
    /// §3.2), issued in process on the demo configuration: the ceiling of issuance
    /// answers the same shape and size, and does none of the work.
    pub async fn issuance_from_ours() -> CeilingAnswer {
        let app = demo_app();
        let body = Bytes::from(format!("client_id={DEMO_CLIENT_ID}&scope=openid"));
        let reply = app
            .handle(form_post(paths::DEVICE_AUTHORIZATION, body), NO_PEER)
            .await;
        assert_eq!(reply.status(), StatusCode::OK, "the demo app issues a code");
        CeilingAnswer::taken_apart(reply).await
    }

    async fn taken_apart(reply: Response<Full<Bytes>>) -> CeilingAnswer {
        let status = reply.status();
        let headers = reply
            .headers()
            .iter()
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        let body = body_bytes(reply).await;
        // Leaked once, so that each reply is a `Bytes::from_static` as in our server.
        let body: &'static [u8] = Box::leak(body.to_vec().into_boxed_slice());
        CeilingAnswer {
            status,
            headers,
            body,
        }
    }

    /// Reads the request's whole body and answers.
    pub async fn answer<B: Body>(&self, req: Request<B>) -> Response<Full<Bytes>> {
        // A body that fails to arrive gets the same answer: the ceiling checks nothing.
        let _ = req.into_body().collect().await;
        self.reply()
    }

    fn reply(&self) -> Response<Full<Bytes>> {
        let mut r = Response::new(Full::new(Bytes::from_static(self.body)));
        *r.status_mut() = self.status;
        let h = r.headers_mut();
        for (name, value) in &self.headers {
            h.insert(name.clone(), value.clone());
        }
        r
    }
}

/// This process's resident set size, in bytes (`VmRSS` in `/proc/self/status`).
pub fn vm_rss_bytes() -> std::io::Result<u64> {
    proc_status_bytes("VmRSS")
}

/// This process's peak resident set size so far, in bytes (`VmHWM`).
pub fn vm_hwm_bytes() -> std::io::Result<u64> {
    proc_status_bytes("VmHWM")
}

fn proc_status_bytes(field: &str) -> std::io::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status_field_bytes(&status, field)
        .ok_or_else(|| std::io::Error::other(format!("no {field} line in kB in /proc/self/status")))
}

/// Reads a `Name:   1234 kB` line of `/proc/<pid>/status`, in bytes.
pub(crate) fn status_field_bytes(status: &str, field: &str) -> Option<u64> {
    let rest = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?;
    let mut words = rest.split_whitespace();
    let kib: u64 = words.next()?.parse().ok()?;
    (words.next() == Some("kB")).then_some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_body_is_the_form_the_scripts_send() {
        assert_eq!(
            poll_body("abc"),
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code\
             &device_code=abc&client_id=demo-device"
        );
    }

    #[test]
    fn proc_status_sizes_are_read_in_bytes() {
        let status = "Name:\tx\nVmHWM:\t    4096 kB\nVmRSS:\t    2048 kB\nRssAnon: 1 kB\n";
        assert_eq!(status_field_bytes(status, "VmRSS"), Some(2 * 1024 * 1024));
        assert_eq!(status_field_bytes(status, "VmHWM"), Some(4 * 1024 * 1024));
        assert_eq!(status_field_bytes("VmRSS: 12 MB\n", "VmRSS"), None);
        assert_eq!(status_field_bytes("VmRSSx: 12 kB\n", "VmRSS"), None);
        assert!(vm_rss_bytes().unwrap() > 0);
        assert!(vm_hwm_bytes().unwrap() >= vm_rss_bytes().unwrap());
    }
}
