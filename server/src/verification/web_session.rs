//! The web session's cookie: its name and attributes, fixed by the issuer's scheme, and
//! how it is read back. The session it names is kept by the store
//! (`storage/web_sessions.rs`).

/// A cookie's name and attributes, fixed by the issuer's scheme.
#[derive(Debug, Clone)]
pub struct CookiePolicy {
    /// The cookie's name.
    pub name: &'static str,
    /// Whether it is `Secure`.
    pub secure: bool,
    /// How long the browser keeps it, in seconds; `None` ends it with the browser
    /// session.
    pub max_age_secs: Option<u64>,
}

impl CookiePolicy {
    /// The session cookie. Behind https the cookie is `Secure` and takes the `__Host-`
    /// prefix, which makes the browser refuse it unless it is `Secure`, `Path=/` and has
    /// no `Domain`: no sibling subdomain can plant or shadow it (RFC 6265bis §4.1.3.2).
    /// No `Max-Age`: the cookie ends with the browser session, and the server ends it
    /// sooner.
    pub fn for_issuer(issuer: &str) -> CookiePolicy {
        if issuer.starts_with("https://") {
            CookiePolicy {
                name: "__Host-deviceflow-session",
                secure: true,
                max_age_secs: None,
            }
        } else {
            CookiePolicy {
                name: "deviceflow-session",
                secure: false,
                max_age_secs: None,
            }
        }
    }

    /// The known-browser cookie ([`known_browser`](super::known_browser)): the same
    /// attributes, kept `max_age_secs`.
    pub fn known_browser_for_issuer(issuer: &str, max_age_secs: u64) -> CookiePolicy {
        let session = CookiePolicy::for_issuer(issuer);
        CookiePolicy {
            name: if session.secure {
                "__Host-deviceflow-known"
            } else {
                "deviceflow-known"
            },
            max_age_secs: Some(max_age_secs),
            ..session
        }
    }

    /// The `Set-Cookie` value that hands `value` (a session id, a sign-in cookie, a
    /// known-browser cookie) to the browser.
    pub fn set(&self, value: &str) -> String {
        match self.max_age_secs {
            Some(secs) => format!(
                "{}={value}; Max-Age={secs}; {}",
                self.name,
                self.attributes()
            ),
            None => format!("{}={value}; {}", self.name, self.attributes()),
        }
    }

    /// The `Set-Cookie` value that removes the cookie.
    pub fn clear(&self) -> String {
        format!("{}=; Max-Age=0; {}", self.name, self.attributes())
    }

    fn attributes(&self) -> &'static str {
        // HttpOnly: no script can read it. SameSite=Lax: not sent on cross-site POSTs.
        if self.secure {
            "Path=/; HttpOnly; SameSite=Lax; Secure"
        } else {
            "Path=/; HttpOnly; SameSite=Lax"
        }
    }

    /// The first value of this cookie in the request's `Cookie` headers that `parse`
    /// accepts.
    pub fn read<'a, T>(
        &self,
        cookie_headers: impl Iterator<Item = &'a [u8]>,
        mut parse: impl FnMut(&str) -> Option<T>,
    ) -> Option<T> {
        cookie_headers
            .filter_map(|h| std::str::from_utf8(h).ok())
            .flat_map(|h| h.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .filter(|(name, _)| *name == self.name)
            .find_map(|(_, value)| parse(value.trim_matches('"')))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::web_sessions::SessionId;

    #[test]
    fn cookies_round_trip_and_take_the_host_prefix_behind_https() {
        let plain = CookiePolicy::for_issuer("http://127.0.0.1:8080");
        let id = SessionId::generate();
        let set = plain.set(&id.encode());
        assert!(set.starts_with("deviceflow-session="));
        assert!(set.ends_with("; Path=/; HttpOnly; SameSite=Lax"), "{set}");
        let header = format!("other=1; deviceflow-session={}; x=y", id.encode());
        let read = |policy: &CookiePolicy, header: &[u8]| {
            policy.read([header].into_iter(), SessionId::decode)
        };
        assert_eq!(read(&plain, header.as_bytes()), Some(id));
        assert_eq!(read(&plain, b"deviceflow-session=garbage"), None);

        let tls = CookiePolicy::for_issuer("https://auth.example.test");
        assert!(tls
            .set(&id.encode())
            .starts_with("__Host-deviceflow-session="));
        assert!(tls.set(&id.encode()).ends_with("; Secure"));
        assert!(tls.clear().contains("Max-Age=0"));
        // The plain-http cookie is not read as the https one.
        assert_eq!(read(&tls, header.as_bytes()), None);
    }
}
