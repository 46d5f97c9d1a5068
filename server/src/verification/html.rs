//! How every verification page is sent: HTML escaping, the one page layout and its
//! stylesheet, and the headers that keep pages out of frames and caches.
//!
//! No template engine: each page is a `format!` in `pages.rs`, and every value that
//! came from a person or the configuration goes through [`escape`] on the way in.

use std::borrow::Cow;
use std::sync::OnceLock;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{
    HeaderName, HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION,
    PRAGMA, REFERRER_POLICY, SET_COOKIE, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use hyper::{Response, StatusCode};
use sha2::{Digest, Sha256};

use crate::http::response::Reply;

/// Escapes text for HTML element content and double- or single-quoted attributes.
pub(crate) fn escape(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The one stylesheet, inline so a page is a single response. Its SHA-256 is the only
/// style the Content-Security-Policy allows. Phone first: one column, 16 px or larger
/// text in inputs (no zoom on focus), 48 px touch targets, light and dark schemes.
pub(crate) const CSS: &str = concat!(
    ":root{color-scheme:light dark;--bg:#f3f4f6;--card:#fff;--ink:#1b1f24;--muted:#57606a;",
    "--line:#c9d1d9;--accent:#0b57d0;--on-accent:#fff;--err-bg:#fdecea;--err:#a4161a;--ok:#146c2e}",
    "@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--card:#161b22;--ink:#e6edf3;",
    "--muted:#9da7b3;--line:#3d444d;--accent:#79b8ff;--on-accent:#0d1117;--err-bg:#3b1618;",
    "--err:#ffaba8;--ok:#7ee2a0}}",
    "*{box-sizing:border-box}",
    "html{-webkit-text-size-adjust:100%;text-size-adjust:100%}",
    "body{margin:0;background:var(--bg);color:var(--ink);",
    "font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,\"Helvetica Neue\",Arial,sans-serif}",
    ".wrap{max-width:30rem;margin:0 auto;padding:1rem 1rem 2rem}",
    ".site{margin:.25rem 0 1rem;color:var(--muted);font-size:.9rem;display:flex;gap:.5rem;align-items:center}",
    ".site strong{color:var(--ink)}",
    "main{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:1.5rem 1.25rem}",
    "h1{font-size:1.5rem;line-height:1.25;margin:0 0 .75rem}",
    "p{margin:0 0 1rem}",
    "label{display:block;font-weight:600;margin:0 0 .35rem}",
    ".field{margin:0 0 1.25rem}",
    "input[type=text],input[type=password]{display:block;width:100%;font:inherit;font-size:1.125rem;",
    "padding:.65rem .8rem;border:1px solid var(--muted);border-radius:8px;background:var(--card);color:var(--ink)}",
    "input[aria-invalid=true]{border:2px solid var(--err)}",
    "input.code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:1.5rem;",
    "letter-spacing:.12em;text-transform:uppercase;text-align:center}",
    ".hint{color:var(--muted);font-size:.9rem;margin:.4rem 0 0}",
    "button{display:block;width:100%;min-height:3rem;padding:.65rem 1rem;font:inherit;font-weight:600;",
    "border-radius:8px;cursor:pointer;border:2px solid var(--accent);background:var(--accent);color:var(--on-accent)}",
    ":focus-visible{outline:3px solid var(--accent);outline-offset:2px}",
    ".choice{display:grid;grid-template-columns:1fr 1fr;gap:.75rem;margin:1.25rem 0 0}",
    ".choice button{background:var(--card);color:var(--ink);border-color:var(--ink)}",
    ".error{background:var(--err-bg);color:var(--err);border:1px solid currentColor;border-radius:8px;",
    "padding:.75rem 1rem;margin:0 0 1.25rem}",
    ".error p{margin:0}",
    ".notice{border-left:4px solid var(--accent);padding:.25rem 0 .25rem .75rem;margin:0 0 1rem}",
    ".code-big{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:2.25rem;",
    "font-weight:700;letter-spacing:.1em;text-align:center;margin:.25rem 0 1.25rem;overflow-wrap:anywhere}",
    "dl{display:grid;grid-template-columns:max-content 1fr;gap:.35rem 1rem;margin:0 0 1rem}",
    "dt{color:var(--muted)}dd{margin:0;font-weight:600;overflow-wrap:anywhere}",
    "dd code,li code{font-weight:400}",
    "code.id{display:block;color:var(--muted);font-size:.9rem}",
    "code.shown{font-weight:700;font-size:1.125rem;letter-spacing:.05em}",
    "h2{font-size:1rem;margin:1.25rem 0 .5rem}",
    "ul{margin:0 0 1rem;padding-left:1.25rem}li{margin:.2rem 0}",
    ".muted{color:var(--muted);font-size:.9rem}",
    "a{color:var(--accent)}",
    ".after{margin:1rem 0 0}",
    "footer{margin:1rem .25rem 0;color:var(--muted);font-size:.9rem;display:flex;flex-wrap:wrap;",
    "gap:.25rem 1rem;justify-content:space-between;align-items:baseline}",
    "footer form{margin:0}",
    "footer button{display:inline;width:auto;min-height:2.75rem;padding:0 .25rem;background:none;border:0;",
    "color:var(--accent);font-weight:400;text-decoration:underline}",
    ".qr{display:block;width:100%;max-width:17rem;margin:0 auto;border:1px solid var(--line);border-radius:8px}",
    ".mark{display:block;width:3.5rem;height:3.5rem;margin:0 0 1rem}",
    ".ok{color:var(--ok)}.bad{color:var(--err)}",
    "fieldset{border:0;padding:0;margin:0 0 1.25rem}legend{font-weight:600;padding:0;margin:0 0 .35rem}",
    "label.check{display:flex;gap:.6rem;align-items:center;font-weight:400;min-height:2.5rem;margin:0}",
    "label.check input{width:1.25rem;height:1.25rem;margin:0;flex:none}",
    ".apps{list-style:none;padding:0;margin:0 0 1rem}.apps li{border-top:1px solid var(--line);padding:.75rem 0 .25rem}",
    "h3{font-size:1.05rem;margin:0 0 .5rem;overflow-wrap:anywhere}",
    ".actions{display:grid;grid-template-columns:1fr 1fr;gap:.5rem;margin:0 0 .75rem}.actions form{margin:0}",
    "button.secondary{background:var(--card);color:var(--ink);border-color:var(--ink);min-height:2.75rem}",
);

/// `Content-Security-Policy` for every page. No script at all; the one stylesheet by
/// hash; forms post only here; and RFC 9700 §4.16: the pages cannot be framed
/// (`frame-ancestors 'none'`), against clickjacking of the Approve button.
fn csp() -> &'static HeaderValue {
    static CSP: OnceLock<HeaderValue> = OnceLock::new();
    CSP.get_or_init(|| {
        let hash = STANDARD.encode(Sha256::digest(CSS.as_bytes()));
        let policy = format!(
            "default-src 'none'; style-src 'sha256-{hash}'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        );
        HeaderValue::from_str(&policy).expect("the policy is ASCII")
    })
}

/// What the frame around a page's content shows.
pub(crate) struct Frame<'a> {
    /// Host of the issuer, shown above every page so a person can see whose page this
    /// is before typing a password.
    pub site: &'a str,
    /// The `<title>`, before " – deviceflow".
    pub title: &'a str,
    /// The `<main>` content, already HTML; starts with the page's `<h1>`.
    pub main: &'a str,
    /// Below the card (who is signed in, sign-out), already HTML.
    pub footer: &'a str,
    /// The issuer's path, `""` for none: links and forms of `main` and `footer` name
    /// paths of this server (`href="/device"`), and below an issuer's path they are
    /// there (`href="/auth/device"`).
    pub base: &'a str,
}

/// `html` with every link and form of this server (`href="/…"`, `action="/…"`) moved
/// below `base`. Only our own markup can hold such an attribute: whatever else a page
/// shows went through [`escape`], which leaves no `"` to open one.
fn rebase<'h>(html: &'h str, base: &str) -> Cow<'h, str> {
    if base.is_empty() {
        return Cow::Borrowed(html);
    }
    Cow::Owned(
        html.replace("href=\"/", &format!("href=\"{base}/"))
            .replace("action=\"/", &format!("action=\"{base}/")),
    )
}

/// `location`, a path of this server, below `base` (see [`rebase`]).
pub(crate) fn rebase_location(location: &str, base: &str) -> Option<String> {
    (!base.is_empty() && location.starts_with('/')).then(|| format!("{base}{location}"))
}

/// A whole HTML page with the verification headers.
pub(crate) fn page(status: StatusCode, frame: &Frame<'_>) -> Reply {
    let html = format!(
        concat!(
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
            // No favicon request: an empty data: icon (the CSP allows data: images).
            "<link rel=\"icon\" href=\"data:,\">\n",
            "<title>{title} – deviceflow</title>\n<style>{css}</style>\n</head>\n<body>\n",
            "<div class=\"wrap\">\n<p class=\"site\"><strong>deviceflow</strong><span>{site}</span></p>\n",
            "<main>\n{main}\n</main>\n{footer}\n</div>\n</body>\n</html>\n"
        ),
        title = escape(frame.title),
        css = CSS,
        site = escape(frame.site),
        main = rebase(frame.main, frame.base),
        footer = rebase(frame.footer, frame.base),
    );
    let mut r = Response::new(Full::new(Bytes::from(html)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    protect(&mut r);
    r
}

/// 303 See Other to a path of this server (post/redirect/get).
pub(crate) fn redirect(location: &str) -> Reply {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(LOCATION, v);
    }
    protect(&mut r);
    r
}

/// The headers every verification answer carries.
fn protect(r: &mut Reply) {
    let h = r.headers_mut();
    // Pages hold CSRF tokens and who is signed in: never cached, by anyone.
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    // RFC 9700 §4.16; the header for browsers that predate frame-ancestors.
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(CONTENT_SECURITY_POLICY, csp().clone());
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // URLs here carry user codes; they are not for other sites' logs. `same-origin`,
    // not `no-referrer`: under that, a browser without Fetch Metadata (any at a plain
    // http name) sends our own forms with `Origin: null`, which origin.rs refuses.
    h.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
}

/// Adds a `Set-Cookie` header.
pub(crate) fn with_cookie(mut r: Reply, cookie: &str) -> Reply {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        r.headers_mut().append(SET_COOKIE, v);
    }
    r
}

/// Adds `Allow` (for a 405).
pub(crate) fn with_allow(mut r: Reply, allow: &'static str) -> Reply {
    r.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_content_and_attributes() {
        assert_eq!(escape("plain"), "plain");
        assert_eq!(
            escape(r#"<a href="x" title='y'>&</a>"#),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        );
    }

    #[test]
    fn below_an_issuers_path_our_links_and_forms_are_there_too() {
        let ours = r#"<a href="/device">x</a><form method="post" action="/device/consent">"#;
        assert_eq!(rebase(ours, ""), ours);
        assert_eq!(
            rebase(ours, "/auth"),
            r#"<a href="/auth/device">x</a><form method="post" action="/auth/device/consent">"#
        );
        // What a page shows of others went through escape: no attribute of its own.
        let shown = escape(r#"<a href="/evil">"#);
        assert_eq!(rebase(&shown, "/auth"), shown);
        assert_eq!(
            rebase_location("/device/login?then=applications", "/auth").as_deref(),
            Some("/auth/device/login?then=applications")
        );
        assert_eq!(rebase_location("/device", ""), None);
    }

    #[test]
    fn pages_carry_the_protective_headers_and_the_css_hash() {
        let r = page(
            StatusCode::OK,
            &Frame {
                site: "<host>",
                title: "T",
                main: "<h1>T</h1>",
                footer: "",
                base: "",
            },
        );
        let h = r.headers();
        assert_eq!(h[X_FRAME_OPTIONS], "DENY");
        assert_eq!(h[CACHE_CONTROL], "no-store");
        let csp = h[CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        let hash = STANDARD.encode(Sha256::digest(CSS.as_bytes()));
        assert!(csp.contains(&format!("style-src 'sha256-{hash}'")), "{csp}");
    }
}
