//! Talking to the server under test, and keeping what was said as evidence.
//!
//! Every request becomes an [`Exchange`], whatever happens: a timeout, a reset
//! connection or an HTML error page is recorded, never raised, so a broken server
//! yields failed cases with evidence instead of a crashed suite.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use serde::Serialize;

use crate::client::{AuthMethod, Client};
use crate::json::{self, Json};

/// Bodies longer than this are cut in the evidence (the raw bytes stay for checks).
const EVIDENCE_BODY_LIMIT: usize = 2048;

/// Response headers worth keeping as evidence.
const KEPT_HEADERS: [&str; 9] = [
    "content-type",
    "cache-control",
    "pragma",
    "www-authenticate",
    "allow",
    "retry-after",
    "location",
    "x-frame-options",
    "content-security-policy",
];

#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    pub method: String,
    pub url: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ResponseRecord {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub body_truncated: bool,
}

/// One request and what came of it.
#[derive(Debug, Clone, Serialize)]
pub struct Exchange {
    pub label: String,
    pub request: RequestRecord,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<ResponseRecord>,
    /// Transport failure: timeout, refused, reset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub elapsed_ms: u64,
    #[serde(skip)]
    pub raw_body: Bytes,
    #[serde(skip)]
    all_headers: Vec<(String, String)>,
}

impl Exchange {
    pub fn status(&self) -> Option<u16> {
        self.response.as_ref().map(|r| r.status)
    }

    /// A response header (first value), case-insensitive.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.all_headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed strictly (duplicate members are a problem, not silently merged).
    pub fn json(&self) -> Json {
        json::parse(&self.raw_body)
    }

    /// The `error` member, if the body is a JSON object with one.
    pub fn error_code(&self) -> Option<String> {
        self.json().value?.get("error")?.as_str().map(str::to_owned)
    }

    /// "HTTP 400 {"error":"..."}" or the transport error: for summaries.
    pub fn brief(&self) -> String {
        match (&self.response, &self.error) {
            (Some(r), _) => {
                let mut body: String = r.body.chars().take(160).collect();
                body = body.split_whitespace().collect::<Vec<_>>().join(" ");
                format!("HTTP {} {body}", r.status)
            }
            (None, Some(e)) => format!("no response: {e}"),
            (None, None) => "no response".to_owned(),
        }
    }

    /// Whether the media type is `application/json` (parameters allowed).
    pub fn is_json_media_type(&self) -> bool {
        self.header("content-type").is_some_and(|ct| {
            ct.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
        })
    }
}

/// Percent-encodes for `application/x-www-form-urlencoded` (RFC 6749 Appendix B).
pub fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Encodes parameters in order; repeats are kept (the suite sends them on purpose).
pub fn form(params: &[(&str, &str)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The suite's HTTP client.
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
}

/// A request to send.
pub struct Request<'a> {
    pub label: &'a str,
    pub method: reqwest::Method,
    pub url: &'a str,
    pub content_type: Option<&'a str>,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

impl Http {
    pub fn new(timeout: Duration) -> Http {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!(
                "deviceflow-conformance/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .unwrap_or_default();
        Http { client }
    }

    /// POSTs a form, authenticating as `client` by its method: `client_id` in the body
    /// for public clients (RFC 8628 §3.1), Basic (RFC 6749 §2.3.1: form-urlencoded,
    /// then base64) or `client_secret` in the body.
    pub async fn post_form(
        &self,
        label: &str,
        url: &str,
        client: Option<&Client>,
        params: &[(&str, &str)],
    ) -> Exchange {
        let (headers, body) = credentials(client, params);
        self.send(Request {
            label,
            method: reqwest::Method::POST,
            url,
            content_type: Some("application/x-www-form-urlencoded"),
            headers,
            body: Some(body),
        })
        .await
    }

    pub async fn get(&self, label: &str, url: &str) -> Exchange {
        self.send(Request {
            label,
            method: reqwest::Method::GET,
            url,
            content_type: None,
            headers: Vec::new(),
            body: None,
        })
        .await
    }

    pub async fn send(&self, req: Request<'_>) -> Exchange {
        let mut builder = self.client.request(req.method.clone(), req.url);
        if let Some(ct) = req.content_type {
            builder = builder.header("content-type", ct);
        }
        for (k, v) in &req.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        if let Some(body) = &req.body {
            builder = builder.body(body.clone());
        }
        let record = request_record(&req);
        let start = Instant::now();
        let result = async {
            let resp = builder.send().await?;
            let status = resp.status().as_u16();
            let headers: Vec<(String, String)> = resp
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let body = resp.bytes().await?;
            Ok::<_, reqwest::Error>((status, headers, body))
        }
        .await;
        let elapsed_ms = start.elapsed().as_millis() as u64;
        match result {
            Ok((status, all_headers, raw_body)) => Exchange {
                label: req.label.to_owned(),
                request: record,
                response: Some(response_record(status, &all_headers, &raw_body)),
                error: None,
                elapsed_ms,
                raw_body,
                all_headers,
            },
            Err(e) => Exchange {
                label: req.label.to_owned(),
                request: record,
                response: None,
                error: Some(describe(&e)),
                elapsed_ms,
                raw_body: Bytes::new(),
                all_headers: Vec::new(),
            },
        }
    }
}

/// The request as evidence shows it: credentials and codes redacted, the content type
/// first among the headers.
fn request_record(req: &Request<'_>) -> RequestRecord {
    let mut record = RequestRecord {
        method: req.method.to_string(),
        url: req.url.to_owned(),
        headers: req
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), redact_header(k, v)))
            .collect(),
        body: req.body.as_deref().map(redact_body),
    };
    if let Some(ct) = req.content_type {
        record
            .headers
            .insert(0, ("content-type".to_owned(), ct.to_owned()));
    }
    record
}

/// The response as evidence shows it: the headers worth keeping, the body as text cut
/// at [`EVIDENCE_BODY_LIMIT`].
fn response_record(
    status: u16,
    all_headers: &[(String, String)],
    raw_body: &[u8],
) -> ResponseRecord {
    let text = String::from_utf8_lossy(raw_body);
    let body_truncated = text.len() > EVIDENCE_BODY_LIMIT;
    let body = if body_truncated {
        text.chars().take(EVIDENCE_BODY_LIMIT).collect()
    } else {
        text.into_owned()
    };
    ResponseRecord {
        status,
        headers: all_headers
            .iter()
            .filter(|(k, _)| KEPT_HEADERS.contains(&k.as_str()))
            .cloned()
            .collect(),
        body,
        body_truncated,
    }
}

/// A client's credentials as request headers and a form body with `params`.
pub fn credentials(
    client: Option<&Client>,
    params: &[(&str, &str)],
) -> (Vec<(String, String)>, String) {
    let mut all: Vec<(&str, &str)> = Vec::new();
    let mut headers = Vec::new();
    if let Some(c) = client {
        match (c.method, c.secret.as_deref()) {
            (AuthMethod::Basic, Some(secret)) => {
                headers.push(("authorization".to_owned(), basic(&c.id, secret)))
            }
            (AuthMethod::Post, Some(secret)) => {
                all.push(("client_id", &c.id));
                all.push(("client_secret", secret));
            }
            _ => all.push(("client_id", &c.id)),
        }
    }
    all.extend_from_slice(params);
    (headers, form(&all))
}

pub fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", form_encode(id), form_encode(secret)))
    )
}

fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "reading the body failed"
    } else {
        "request failed"
    };
    // The innermost cause says it in words ("Connection refused (os error 111)");
    // the layers above it repeat the URL, which the evidence already holds.
    let mut innermost: &dyn std::error::Error = e;
    while let Some(s) = innermost.source() {
        innermost = s;
    }
    format!("{kind}: {innermost}")
}

fn redact_header(name: &str, value: &str) -> String {
    if name.eq_ignore_ascii_case("authorization") {
        let scheme = value.split(' ').next().unwrap_or_default();
        format!("{scheme} <redacted>")
    } else {
        value.to_owned()
    }
}

fn redact_body(body: &str) -> String {
    body.split('&')
        .map(|pair| match pair.split_once('=') {
            Some(("client_secret", _)) => "client_secret=<redacted>".to_owned(),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_follows_rfc_6749_appendix_b() {
        assert_eq!(
            form_encode("urn:ietf:params:oauth:grant-type:device_code"),
            "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code"
        );
        assert_eq!(form_encode("a b+c"), "a+b%2Bc");
        assert_eq!(form(&[("a", "1"), ("a", "2")]), "a=1&a=2");
    }

    #[test]
    fn secrets_are_redacted_from_evidence() {
        assert_eq!(
            redact_body("client_id=x&client_secret=s3cret&scope=a"),
            "client_id=x&client_secret=<redacted>&scope=a"
        );
        assert_eq!(
            redact_header("Authorization", "Basic abc"),
            "Basic <redacted>"
        );
        assert_eq!(
            basic("a:b", "c d"),
            format!("Basic {}", STANDARD.encode("a%3Ab:c+d"))
        );
    }
}
