//! `http://` and `https://` URLs as this client takes them: the issuer the person
//! names, the endpoints the metadata names, the verification URIs the server sends.
//! Each is checked when it is read, and what is wrong said in words (a user name, a
//! query, a bad port, a space), not by a resolver or the HTTP layer later.

use crate::{quote, DeviceError};

/// Why a URL is not one this client uses.
pub(crate) enum UrlFault {
    /// Not `http://` or `https://` (any case).
    NotHttp,
    /// An `http(s)://` URL with something wrong, in words.
    Bad(String),
}

/// An `http(s)://` URL taken apart.
pub(crate) struct UrlParts<'a> {
    /// `https://`.
    tls: bool,
    /// The host as written, an IPv6 literal with its brackets.
    host: &'a str,
    /// The port, if one is written.
    port: Option<u16>,
    /// The path and query, `""` when there is neither.
    path_and_query: &'a str,
    /// Whether there is a query (`?`).
    query: bool,
    /// Whether there is a fragment (`#`).
    fragment: bool,
}

/// Whether `c` may stand in a URI as itself (RFC 3986 §2: unreserved, reserved, and
/// `%` of a percent-encoding); anything else a URI holds only percent-encoded.
fn is_uri_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'()*+,;=%".contains(c)
}

/// Takes `url` apart as an `http://` or `https://` URL (RFC 3986 §3), saying what is
/// wrong with it if it is not one a request can go to.
pub(crate) fn split_url(url: &str) -> Result<UrlParts<'_>, UrlFault> {
    let bad = |why: &str| UrlFault::Bad(why.to_owned());
    // RFC 3986 §2: a URI is made of these characters only. A space pasted with it, a
    // control character or a non-ASCII one is named here, not by the HTTP layer later.
    if url.trim() != url {
        return Err(bad("has whitespace at its start or end"));
    }
    if let Some(c) = url.chars().find(|&c| !is_uri_char(c)) {
        let named = match c {
            ' ' => "a space".to_owned(),
            c if c.is_ascii_graphic() => format!("'{c}'"),
            c => format!("U+{:04X}", u32::from(c)),
        };
        return Err(UrlFault::Bad(format!(
            "has {named} in it, which a URL holds only percent-encoded (RFC 3986 §2)"
        )));
    }
    let (scheme, rest) = url.split_once("://").ok_or(UrlFault::NotHttp)?;
    // RFC 3986 §3.1: "schemes are case-insensitive".
    let tls = if scheme.eq_ignore_ascii_case("https") {
        true
    } else if scheme.eq_ignore_ascii_case("http") {
        false
    } else {
        return Err(UrlFault::NotHttp);
    };
    let (authority, after) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    // RFC 9110 §4.2.4: a recipient "SHOULD parse for userinfo and treat its presence as
    // an error; it is likely being used to obscure the authority".
    if authority.contains('@') {
        return Err(bad(
            "has a user name before the host (\"…@\"), which an http(s) URL must not have (RFC 9110 §4.2.4)",
        ));
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(literal) => {
            let Some((inside, after_literal)) = literal.split_once(']') else {
                return Err(bad("has a '[' without its ']' in the host"));
            };
            let port = match after_literal {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| {
                    bad("has something other than \":port\" after its [IPv6 address]")
                })?),
            };
            (&authority[..inside.len() + 2], port)
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if host.is_empty() || host == "[]" {
        return Err(bad("has no host"));
    }
    if !host.starts_with('[') && (host.contains(['[', ']', ':'])) {
        return Err(UrlFault::Bad(format!(
            "has host \"{host}\", which is no name or address (an IPv6 address goes in brackets)"
        )));
    }
    let port = match port {
        // RFC 3986 §3.2.3: an empty port is the scheme's default.
        None | Some("") => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            _ => {
                return Err(UrlFault::Bad(format!(
                    "has port \"{p}\", which is not a number from 1 to 65535"
                )))
            }
        },
    };
    let (path_and_query, fragment) = match after.split_once('#') {
        Some((before, _)) => (before, true),
        None => (after, false),
    };
    Ok(UrlParts {
        tls,
        host,
        port,
        path_and_query,
        query: path_and_query.contains('?'),
        fragment,
    })
}

/// `url` quoted for an error, its user name and password (if any) left out.
pub(crate) fn shown_url(url: &str) -> String {
    let hidden = url.split_once("://").and_then(|(scheme, rest)| {
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let at = rest[..end].rfind('@')?;
        Some(format!("{scheme}://…{}", &rest[at..]))
    });
    quote(hidden.as_deref().unwrap_or(url))
}

/// A [`UrlFault`] of `url` as the error to show.
fn url_error(url: &str, fault: UrlFault) -> DeviceError {
    match fault {
        UrlFault::NotHttp => DeviceError::NotHttp(shown_url(url)),
        UrlFault::Bad(why) => DeviceError::BadUrl {
            url: shown_url(url),
            why,
        },
    }
}

/// The issuer the person named, in the normal form (RFC 3986 §6.2.2.1: scheme and
/// host in lower case, as the server's metadata names it), without a trailing `/`.
pub fn normal_issuer(issuer: &str) -> Result<String, DeviceError> {
    let parts = split_url(issuer).map_err(|fault| url_error(issuer, fault))?;
    // RFC 8414 §2: the issuer is a URL "that has no query or fragment components".
    let part = match (parts.query, parts.fragment) {
        (true, _) => Some("a query (\"?…\")"),
        (false, true) => Some("a fragment (\"#…\")"),
        _ => None,
    };
    if let Some(part) = part {
        return Err(DeviceError::BadUrl {
            url: shown_url(issuer),
            why: format!("has {part}, which an issuer has not (RFC 8414 §2)"),
        });
    }
    let scheme = if parts.tls { "https" } else { "http" };
    let port = parts.port.map(|p| format!(":{p}")).unwrap_or_default();
    Ok(format!(
        "{scheme}://{}{port}{}",
        parts.host.to_ascii_lowercase(),
        parts.path_and_query.trim_end_matches('/')
    ))
}

/// An `http://` or `https://` URL split for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpUrl {
    /// `https://`: over TLS.
    pub(crate) tls: bool,
    /// `host:port`, for the TCP connection and the `Host` header.
    pub(crate) authority: String,
    /// `/path?query`, at least `/`.
    pub(crate) target: String,
}

impl HttpUrl {
    pub(crate) fn parse(url: &str) -> Result<HttpUrl, DeviceError> {
        // The URL may be the server's (its metadata's endpoints): quoted, as text.
        let parts = split_url(url).map_err(|fault| url_error(url, fault))?;
        // RFC 6749 §3.2: "The endpoint URI MUST NOT include a fragment component."
        if parts.fragment {
            return Err(DeviceError::BadUrl {
                url: shown_url(url),
                why: "has a fragment (\"#…\"), which an endpoint has not (RFC 6749 §3.2)"
                    .to_owned(),
            });
        }
        // No port: 80, or 443 for https.
        let port = parts.port.unwrap_or(if parts.tls { 443 } else { 80 });
        let target = match parts.path_and_query {
            "" => "/".to_owned(),
            p if p.starts_with('/') => p.to_owned(),
            query => format!("/{query}"),
        };
        Ok(HttpUrl {
            tls: parts.tls,
            authority: format!("{}:{port}", parts.host),
            target,
        })
    }

    /// `http://host:port` or `https://host:port`.
    pub(crate) fn origin(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.authority)
    }

    /// The host, without the port: the name its TLS certificate must show.
    pub(crate) fn host(&self) -> &str {
        self.authority
            .rsplit_once(':')
            .map_or(&*self.authority, |(host, _)| host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// L4: `http://u:p@host` failed as "Name or service not known", `…?x=1` as an
    /// invalid port, a trailing space as "invalid uri character"; `HTTP://` was
    /// refused.
    #[test]
    fn issuers_are_checked_at_once_and_say_what_is_wrong() {
        for (issuer, said) in [
            (
                "http://u:p@127.0.0.1:8080",
                r#""http://…@127.0.0.1:8080" has a user name before the host ("…@"), which an http(s) URL must not have (RFC 9110 §4.2.4)"#,
            ),
            (
                "http://127.0.0.1:8080?x=1",
                r#""http://127.0.0.1:8080?x=1" has a query ("?…"), which an issuer has not (RFC 8414 §2)"#,
            ),
            (
                "http://127.0.0.1:8080/#frag",
                r##""http://127.0.0.1:8080/#frag" has a fragment ("#…"), which an issuer has not (RFC 8414 §2)"##,
            ),
            (
                "http://127.0.0.1:8080 ",
                r#""http://127.0.0.1:8080 " has whitespace at its start or end"#,
            ),
            (
                "http://127.0.0.1/a b",
                r#""http://127.0.0.1/a b" has a space in it, which a URL holds only percent-encoded (RFC 3986 §2)"#,
            ),
            (
                "http://127.0.0.1:99999",
                r#""http://127.0.0.1:99999" has port "99999", which is not a number from 1 to 65535"#,
            ),
            ("http://127.0.0.1:0", r#"has port "0""#),
            ("http://127.0.0.1:+80", r#"has port "+80""#),
            ("http://127.0.0.1:80a", r#"has port "80a""#),
            ("http://:80", "has no host"),
            ("http://[::1/x", "has a '[' without its ']'"),
            ("http://::1/x", "an IPv6 address goes in brackets"),
            ("http://é.example", "has U+00E9 in it"),
            ("ftp://127.0.0.1", "is not an http:// or https:// URL"),
            ("127.0.0.1:8080", "is not an http:// or https:// URL"),
        ] {
            let err = normal_issuer(issuer).unwrap_err().to_string();
            assert!(err.contains(said), "{issuer}: {err}");
            assert!(!err.contains("u:p"), "{err}");
        }
        // RFC 3986 §3.1, §6.2.2.1: scheme and host in any case, the normal form used.
        for (issuer, normal) in [
            ("HTTP://127.0.0.1:8080", "http://127.0.0.1:8080"),
            (
                "Https://Auth.Example.test/Tenant/",
                "https://auth.example.test/Tenant",
            ),
            ("http://[::1]:9/", "http://[::1]:9"),
            ("http://127.0.0.1:/", "http://127.0.0.1"),
        ] {
            assert_eq!(normal_issuer(issuer).unwrap(), normal);
        }
    }

    #[test]
    fn http_urls_split_into_authority_and_target() {
        let u = HttpUrl::parse("http://127.0.0.1:8080/oauth/token").unwrap();
        assert_eq!(u.authority, "127.0.0.1:8080");
        assert_eq!(u.target, "/oauth/token");
        let u = HttpUrl::parse("http://auth.example.test").unwrap();
        assert_eq!(u.authority, "auth.example.test:80");
        assert_eq!(u.target, "/");
        // RFC 6749 §3.2: an endpoint may have a query.
        let u = HttpUrl::parse("http://auth.example.test:81?x=1").unwrap();
        assert_eq!(
            (&*u.authority, &*u.target),
            ("auth.example.test:81", "/?x=1")
        );
        assert_eq!(
            HttpUrl::parse("http://[::1]/x").unwrap().authority,
            "[::1]:80"
        );
        assert_eq!(
            HttpUrl::parse("http://[::1]:9/x").unwrap().authority,
            "[::1]:9"
        );
        let u = HttpUrl::parse("https://auth.example.test/o").unwrap();
        assert_eq!(
            (u.tls, &*u.authority, u.host(), &*u.origin()),
            (
                true,
                "auth.example.test:443",
                "auth.example.test",
                "https://auth.example.test:443"
            )
        );
        assert_eq!(
            HttpUrl::parse("https://[::1]:8443").unwrap().host(),
            "[::1]"
        );
        assert!(HttpUrl::parse("HTTPS://auth.example.test").unwrap().tls);
        assert!(matches!(
            HttpUrl::parse("ftp://auth.example.test"),
            Err(DeviceError::NotHttp(_))
        ));
        assert!(HttpUrl::parse("http:///x").is_err());
        let err = HttpUrl::parse("http://h/token#f").unwrap_err().to_string();
        assert!(err.contains("RFC 6749 §3.2"), "{err}");
    }
}
