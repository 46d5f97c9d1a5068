//! A person at a browser, for the verification page tests: the session cookie and the
//! known-browser cookie, no automatic redirects (every 303 is seen), and the CSRF token
//! of the last page that had one.

use reqwest::header::HeaderMap;

use crate::common::*;

/// One page (or redirect) as the browser got it.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn location(&self) -> Option<&str> {
        self.header("location")
    }

    /// The value of the hidden `csrf` field, if the page has a form.
    pub fn csrf(&self) -> Option<String> {
        let at = self.body.find(r#"name="csrf" value=""#)? + r#"name="csrf" value=""#.len();
        let rest = &self.body[at..];
        Some(rest[..rest.find('"')?].to_owned())
    }

    /// The text of the `<h1>`.
    pub fn heading(&self) -> &str {
        let Some(start) = self.body.find("<h1>") else {
            return "";
        };
        let rest = &self.body[start + 4..];
        &rest[..rest.find("</h1>").unwrap_or(0)]
    }

    /// The error the page announces (`role="alert"`), if any.
    pub fn alert(&self) -> Option<&str> {
        let at = self.body.find(r#"role="alert"><p>"#)? + r#"role="alert"><p>"#.len();
        let rest = &self.body[at..];
        Some(&rest[..rest.find("</p>")?])
    }

    /// Checklist UI-13 and the cache rule, for any answer of the person's side.
    #[track_caller]
    pub fn assert_protected(&self) {
        assert_eq!(self.header("x-frame-options"), Some("DENY"), "{self:?}");
        let csp = self.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("frame-ancestors 'none'"), "CSP {csp:?}");
        assert!(csp.contains("default-src 'none'"), "CSP {csp:?}");
        assert_eq!(self.header("cache-control"), Some("no-store"));
        // User codes in URLs reach no other site; our forms keep their Origin.
        assert_eq!(self.header("referrer-policy"), Some("same-origin"));
        if self.status != 303 {
            assert_eq!(
                self.header("content-type"),
                Some("text/html; charset=utf-8")
            );
            assert!(self.body.starts_with("<!doctype html>\n<html lang=\"en\">"));
        }
    }
}

pub struct Person<'a> {
    server: &'a Client,
    http: reqwest::Client,
    /// `name=value` of the session cookie.
    pub cookie: Option<String>,
    /// `name=value` of the known-browser cookie, which a sign-in sets.
    pub known: Option<String>,
    /// The CSRF token of the last page that had a form.
    pub csrf: Option<String>,
    /// Headers this browser adds to every request: where it says a request comes from
    /// (`Sec-Fetch-Site`, `Origin`). None by default, as a script sends.
    pub sent_from: Vec<(&'static str, String)>,
}

impl<'a> Person<'a> {
    pub fn new(server: &'a Client) -> Person<'a> {
        Self::from_address(server, std::net::IpAddr::from([127, 0, 0, 1]))
    }

    /// A person whose browser connects from `address` (a loopback one, 127.0.0.2 say):
    /// another source for the server's limits.
    pub fn from_address(server: &'a Client, address: std::net::IpAddr) -> Person<'a> {
        Person {
            server,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .local_address(address)
                .build()
                .unwrap(),
            cookie: None,
            known: None,
            csrf: None,
            sent_from: Vec::new(),
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let jar: Vec<&str> = [&self.cookie, &self.known]
            .into_iter()
            .filter_map(|c| c.as_deref())
            .collect();
        let mut req = if jar.is_empty() {
            req
        } else {
            req.header("cookie", jar.join("; "))
        };
        for (name, value) in &self.sent_from {
            req = req.header(*name, value);
        }
        let r = req.send().await.expect("request");
        let page = Page {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            body: r.text().await.expect("body"),
        };
        for set in page.headers.get_all("set-cookie") {
            let set = set.to_str().expect("an ASCII Set-Cookie");
            let held = if set.contains("-known=") {
                &mut self.known
            } else {
                &mut self.cookie
            };
            *held = if set.contains("Max-Age=0") {
                None
            } else {
                set.split(';').next().map(str::to_owned)
            };
        }
        if let Some(token) = page.csrf() {
            self.csrf = Some(token);
        }
        page
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let req = self.http.get(format!("{}{path}", self.server.base));
        self.send(req).await
    }

    /// POSTs a form exactly as given (no CSRF token added).
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let req = self
            .http
            .post(format!("{}{path}", self.server.base))
            .form(fields);
        self.send(req).await
    }

    /// POSTs a form with this session's CSRF token.
    pub async fn submit(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let token = self
            .csrf
            .clone()
            .expect("a page with a form was seen first");
        let mut all = vec![("csrf", token.as_str())];
        all.extend_from_slice(fields);
        self.post(path, &all).await
    }

    /// Follows 303s to the page they lead to.
    pub async fn follow(&mut self, mut page: Page) -> Page {
        for _ in 0..5 {
            if page.status != 303 {
                return page;
            }
            let to = page.location().expect("a Location").to_owned();
            page = self.get(&to).await;
        }
        panic!("redirect loop: {page:?}");
    }

    /// Signs in as `username` with the right password; returns where that leads.
    pub async fn sign_in(&mut self, username: &str) -> Page {
        let form = self.get("/device/login").await;
        assert_eq!(form.status, 200, "{form:?}");
        let signed = self
            .submit(
                "/device/login",
                &[("username", username), ("password", &password_of(username))],
            )
            .await;
        assert_eq!(signed.status, 303, "{signed:?}");
        self.follow(signed).await
    }

    /// Signs out (the CSRF token of the last page with a form), keeping the
    /// known-browser cookie as a browser does.
    pub async fn sign_out(&mut self) {
        let out = self.submit("/device/logout", &[]).await;
        assert_eq!(out.location(), Some("/device/login"), "{out:?}");
        assert!(self.cookie.is_none(), "the session cookie was cleared");
        self.csrf = None;
    }

    /// Types `typed` into the code form (which is opened first) and submits it.
    pub async fn enter_code(&mut self, typed: &str) -> Page {
        if self.csrf.is_none() {
            self.get("/device").await;
        }
        self.submit("/device", &[("user_code", typed)]).await
    }

    /// Enters `typed` and follows on to the consent page, which must come.
    pub async fn open_consent(&mut self, typed: &str) -> Page {
        let entered = self.enter_code(typed).await;
        assert_eq!(
            (entered.status, entered.location()),
            (303, Some("/device/consent")),
            "{entered:?}"
        );
        let consent = self.follow(entered).await;
        assert_eq!(consent.status, 200, "{consent:?}");
        consent
    }

    /// Presses Approve (`approve`) or Deny (`deny`) for `user_code`.
    pub async fn decide(&mut self, user_code: &str, action: &str) -> Page {
        self.submit(
            "/device/consent",
            &[("user_code", user_code), ("action", action)],
        )
        .await
    }
}
