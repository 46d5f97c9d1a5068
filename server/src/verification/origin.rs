//! Forms sent by another site's page are refused before they are read: a second
//! layer behind the CSRF tokens (`csrf.rs`) and `SameSite=Lax`, which also stops
//! what those leave open: a sign-in form and cookie that a sibling subdomain planted
//! in the browser (cookie tossing), then posted from there (login CSRF).
//!
//! The rule is Go's `http.CrossOriginProtection`: a browser that sends Fetch Metadata
//! (`Sec-Fetch-Site`, every current one) is believed; an older one is judged by its
//! `Origin` (RFC 6454 §7), which must be the issuer's or the request's own `Host`; a
//! request with neither comes from no browser (a script, curl, the suite's approver),
//! which no other site can make a browser send, and passes to the CSRF check.

use hyper::header::{HeaderMap, HOST, ORIGIN};

/// The issuer's origin (RFC 6454 §6.2), to compare with what browsers send.
pub(crate) struct SameOrigin {
    /// `scheme://host[:port]`, in lower case, the scheme's default port left out, as a
    /// browser serializes an origin.
    issuer: String,
    /// The hosts the pages answer under: the issuer's and `limits.page_hosts`, in
    /// lower case, without a port.
    hosts: Vec<String>,
}

impl SameOrigin {
    /// The origin of `issuer` (`scheme://authority[/path]`); the pages answer under
    /// its host and `page_hosts` too.
    pub(crate) fn of_issuer(issuer: &str, page_hosts: &[String]) -> SameOrigin {
        let (scheme, rest) = issuer.split_once("://").unwrap_or(("http", issuer));
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let mut hosts = vec![host_of(authority).to_ascii_lowercase()];
        hosts.extend(page_hosts.iter().cloned());
        SameOrigin {
            issuer: serialized(scheme, authority),
            hosts,
        }
    }

    /// The request's `Host` when it names a host these pages do not answer for: a
    /// dotted name other than the issuer's and `limits.page_hosts`. A page of a
    /// server on loopback or an internal address, fetched by a script under the
    /// attacker's own name resolved to that address (DNS rebinding), is same-origin
    /// to that script: it could sign in with a known password and approve its own
    /// code. IP addresses, `localhost` and names without a dot (a proxy's upstream,
    /// a container's name) cannot be an attacker's and pass.
    pub(crate) fn foreign_host<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        let value = headers.get(HOST)?.to_str().ok()?;
        let host = host_of(value).trim_end_matches('.');
        let ours = host.starts_with('[')
            || host.parse::<std::net::Ipv4Addr>().is_ok()
            || !host.contains('.')
            || host.eq_ignore_ascii_case("localhost")
            || host.to_ascii_lowercase().ends_with(".localhost")
            || self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host));
        (!ours).then_some(value)
    }

    /// Whether a form post with these headers may be one of our own pages': `false`
    /// when the browser says another site sent it.
    pub(crate) fn admits(&self, headers: &HeaderMap) -> bool {
        // Fetch Metadata: `same-origin` for our own forms, `none` for what the person
        // started (a bookmark); `same-site` (a sibling subdomain) and `cross-site` are
        // another site's.
        if let Some(site) = headers.get("sec-fetch-site") {
            let site = site.as_bytes();
            return site.eq_ignore_ascii_case(b"same-origin") || site.eq_ignore_ascii_case(b"none");
        }
        let Some(origin) = headers.get(ORIGIN) else {
            return true;
        };
        let origin = String::from_utf8_lossy(origin.as_bytes()).to_ascii_lowercase();
        if origin == self.issuer {
            return true;
        }
        // The page was served under another name than the issuer's (127.0.0.1 for
        // localhost): the browser sends the Host it sent the page's request to, with
        // the issuer's scheme (a plain http page of an https server is not ours).
        let scheme = self.issuer.split("://").next().unwrap_or_default();
        let host = headers.get(HOST).and_then(|h| h.to_str().ok());
        host.is_some_and(|host| origin == serialized(scheme, host))
    }
}

/// The host of an authority (`host[:port]`; an IPv6 literal kept in its brackets).
fn host_of(authority: &str) -> &str {
    match authority.find(']') {
        Some(end) if authority.starts_with('[') => &authority[..=end],
        _ => authority
            .split_once(':')
            .map_or(authority, |(host, _)| host),
    }
}

/// `scheme://authority` as a browser serializes an origin: in lower case, the
/// scheme's default port left out.
fn serialized(scheme: &str, authority: &str) -> String {
    let scheme = scheme.to_ascii_lowercase();
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    let authority = authority.strip_suffix(default_port).unwrap_or(authority);
    format!("{scheme}://{}", authority.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(n, v)| (n.parse().unwrap(), v.parse().unwrap()))
            .collect()
    }

    #[test]
    fn pages_answer_for_the_issuer_addresses_and_undotted_names_only() {
        let o = SameOrigin::of_issuer(
            "https://Auth.Example.com/tenant",
            &["auth.internal.example".to_owned()],
        );
        let foreign = |host: &'static str| {
            o.foreign_host(&headers(&[("host", host)]))
                .map(str::to_owned)
        };
        for ours in [
            "auth.example.com",
            "AUTH.example.com:443",
            "auth.example.com.",
            "auth.internal.example:8080",
            "127.0.0.1:8080",
            "10.1.2.3",
            "[::1]:8080",
            "[fe80::1]",
            "localhost:8080",
            "app.localhost",
            "deviceflow:8080",
            "deviceflow_upstream",
        ] {
            assert_eq!(foreign(ours), None, "{ours}");
        }
        for theirs in [
            "rebind.attacker.example:8080",
            "example.com",
            "auth.example.com.attacker.example",
            "127.0.0.1.nip.io",
            "localhost.attacker.example",
        ] {
            assert_eq!(foreign(theirs).as_deref(), Some(theirs), "{theirs}");
        }
        // No Host at all (HTTP/1.0): nothing to judge.
        assert_eq!(o.foreign_host(&headers(&[])), None);
    }

    #[test]
    fn an_issuer_s_origin_is_written_as_browsers_write_it() {
        for (issuer, origin) in [
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            (
                "https://Auth.Example.com:443/tenant",
                "https://auth.example.com",
            ),
            ("http://example.com:80", "http://example.com"),
            ("https://example.com:8443", "https://example.com:8443"),
            ("http://[::1]:8080", "http://[::1]:8080"),
        ] {
            assert_eq!(
                SameOrigin::of_issuer(issuer, &[]).issuer,
                origin,
                "{issuer}"
            );
        }
    }

    #[test]
    fn fetch_metadata_decides_when_a_browser_sends_it() {
        let o = SameOrigin::of_issuer("https://auth.example.com", &[]);
        for (site, admitted) in [
            ("same-origin", true),
            ("Same-Origin", true),
            ("none", true),
            ("same-site", false),
            ("cross-site", false),
            ("", false),
        ] {
            let h = headers(&[
                ("sec-fetch-site", site),
                ("origin", "https://auth.example.com"),
            ]);
            assert_eq!(o.admits(&h), admitted, "{site:?}");
        }
    }

    #[test]
    fn without_fetch_metadata_the_origin_must_be_ours() {
        let o = SameOrigin::of_issuer("http://localhost:8080", &[]);
        let h = |origin, host| headers(&[("origin", origin), ("host", host)]);
        assert!(
            o.admits(&HeaderMap::new()),
            "no browser: the CSRF check decides"
        );
        assert!(o.admits(&h("http://LOCALHOST:8080", "localhost:8080")));
        assert!(o.admits(&h("http://127.0.0.1:8080", "127.0.0.1:8080")));
        assert!(!o.admits(&h("https://attacker.example", "localhost:8080")));
        assert!(!o.admits(&h("null", "localhost:8080")));
        assert!(!o.admits(&h("http://localhost:8081", "localhost:8080")));
        assert!(!o.admits(&h("localhost:8080", "localhost:8080")));
        // The Host's origin has the issuer's scheme, and its default port left out.
        let o = SameOrigin::of_issuer("https://auth.example.com", &[]);
        assert!(o.admits(&h("https://login.example.com", "login.example.com:443")));
        assert!(!o.admits(&h("http://login.example.com", "login.example.com")));
    }
}
