//! The server under test: its endpoints, found by discovery (RFC 8414) or given.

use serde::Serialize;
use serde_json::Value;

use crate::client::Client;
use crate::http::reach::Reach;
use crate::http::{Exchange, Http};

/// What the user said about the target.
#[derive(Debug, Clone, Default)]
pub struct TargetSpec {
    pub issuer: Option<String>,
    pub device_authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub introspection_endpoint: Option<String>,
    pub client: Option<Client>,
    pub second_client: Option<Client>,
    pub unauthorized_client: Option<Client>,
    pub introspection_client: Option<Client>,
    pub scope: Option<String>,
    /// Where the client's secret came from when not the command line: the
    /// environment variable's name, said in the reports' header and where the server
    /// refuses the client (a secret nobody typed is the last place one looks).
    pub client_secret_from: Option<&'static str>,
}

impl TargetSpec {
    /// The URLs the person named: the issuer and the endpoints given by hand.
    pub fn named_urls(&self) -> Vec<&str> {
        [
            &self.issuer,
            &self.device_authorization_endpoint,
            &self.token_endpoint,
            &self.introspection_endpoint,
        ]
        .into_iter()
        .filter_map(|u| u.as_deref())
        .collect()
    }

    /// The address rule for a run against this target ([`Reach::for_named`]);
    /// `allow_private`: `--allow-private-addresses`.
    pub async fn reach(&self, allow_private: bool) -> Reach {
        Reach::for_named(&self.named_urls(), allow_private).await
    }
}

/// The published metadata and how it was found.
#[derive(Debug, Clone, Serialize)]
pub struct Metadata {
    pub url: String,
    #[serde(skip)]
    pub value: Value,
    #[serde(skip)]
    pub exchange: Exchange,
    /// Every URL tried, in order, with its answer.
    #[serde(skip)]
    pub attempts: Vec<Exchange>,
}

/// The target, resolved.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub issuer: Option<String>,
    pub device_authorization_endpoint: String,
    pub token_endpoint: String,
    pub introspection_endpoint: Option<String>,
    pub client: Client,
    pub second_client: Option<Client>,
    pub unauthorized_client: Option<Client>,
    pub introspection_client: Option<Client>,
    pub scope: Option<String>,
    /// See [`TargetSpec::client_secret_from`].
    pub client_secret_from: Option<&'static str>,
    pub metadata: Option<Metadata>,
    /// Metadata URLs tried without success (for MD-07's evidence).
    #[serde(skip)]
    pub metadata_attempts: Vec<Exchange>,
    /// Discovery was used and the metadata lacks an endpoint nobody gave by hand: the
    /// finding that stops the run (MD-01 or MD-04); that endpoint is then empty.
    #[serde(skip)]
    pub root_cause: Option<RootCause>,
    /// The address rule the run keeps, and its record of the hosts the server named
    /// ([`crate::http::reach`]): every client of the run shares it.
    #[serde(skip)]
    pub reach: Reach,
}

/// The one reason a run cannot test the target, said once instead of as a cascade of
/// consequent failures (or passes built on nothing).
#[derive(Debug, Clone, Serialize)]
pub struct RootCause {
    /// The case whose rule the server broke, when it is a finding (`DA-01`, `DR-02`,
    /// `MD-01`); `None` when the target simply cannot be tested here (unreachable, not
    /// an OAuth endpoint, the configured client refused).
    pub case: Option<&'static str>,
    pub summary: String,
    #[serde(skip)]
    pub evidence: Vec<Exchange>,
    /// The finding only warns: the metadata leaves out `device_authorization_endpoint`,
    /// which RFC 8628 §4 makes OPTIONAL (MD-01). The run still cannot go on.
    #[serde(skip)]
    pub warns: bool,
}

/// Why a target cannot be tested at all; each says the one root cause.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("no client: give --client-id")]
    NoClient,
    /// Not one metadata URL answered at all (refused, timed out, reset).
    #[error("cannot reach {0}: {1}")]
    Unreachable(String, String),
    /// Something answers, but no metadata is there and no endpoints were given.
    #[error("no OAuth metadata at {0} ({1}): check --issuer, or give --device-authorization-endpoint and --token-endpoint")]
    NoMetadata(String, String),
    /// The connection is made, but no answer comes within the request timeout
    /// (seconds): not "unreachable".
    #[error("{0} accepted the connection but sent no answer within {1} s (--timeout): is it an HTTP server, and is it up?")]
    NoAnswer(String, u64),
}

/// RFC 8414 §3.1: the well-known URIs to try for `issuer`, in order. For an issuer with
/// a path, §3.1 inserts the well-known segment between host and path; many servers
/// append it instead, so that form is tried too, then OpenID Connect Discovery.
pub fn metadata_urls(issuer: &str) -> Vec<String> {
    let issuer = issuer.trim_end_matches('/');
    let (origin, path) = match issuer.find("://").map(|i| i + 3) {
        Some(start) => match issuer[start..].find('/') {
            Some(slash) => issuer.split_at(start + slash),
            None => (issuer, ""),
        },
        None => (issuer, ""),
    };
    let mut urls = vec![format!("{origin}{}{path}", deviceflow_wire::METADATA_PATH)];
    if !path.is_empty() {
        urls.push(format!("{issuer}{}", deviceflow_wire::METADATA_PATH));
    }
    urls.push(format!(
        "{issuer}{}",
        deviceflow_wire::OPENID_CONFIGURATION_PATH
    ));
    urls
}

/// Resolves the target: metadata first (when an issuer is given), explicit URLs win.
pub async fn resolve(spec: TargetSpec, http: &Http) -> Result<Target, TargetError> {
    resolve_or_not(spec, http).await.map_err(|u| u.error)
}

/// [`resolve`], for a run that reports whatever happens: a target that cannot be
/// resolved (no metadata URL answered, or none has metadata, and the endpoints were
/// not given) is the target as given, its root cause why (no case ran), and the
/// metadata URLs tried its evidence, so that the reports say the target could not be
/// tested, as they do when given endpoints do not answer. `Err` only without a
/// client. `timeout`: the request timeout, for telling a server that accepts the
/// connection and never answers from one that cannot be reached.
pub async fn resolve_reporting(
    spec: TargetSpec,
    http: &Http,
    timeout: std::time::Duration,
) -> Result<Target, TargetError> {
    let Unresolved {
        mut error,
        spec,
        attempts,
    } = match resolve_or_not(spec, http).await {
        Ok(target) => return Ok(target),
        Err(u) => u,
    };
    if let TargetError::Unreachable(issuer, why) = &error {
        if crate::http::diagnose::timed_out(why) {
            let first = attempts.first().map(|e| e.request.url.as_str());
            if crate::http::diagnose::connects(first.unwrap_or(issuer), http.reach(), timeout).await
                == Some(true)
            {
                error = TargetError::NoAnswer(issuer.clone(), timeout.as_secs());
            }
        }
    }
    if matches!(error, TargetError::NoClient) {
        return Err(error);
    }
    let cause = RootCause {
        case: None,
        summary: error.to_string(),
        evidence: attempts.clone(),
        warns: false,
    };
    let mut target = unresolved(spec, http.reach(), Some(cause))?;
    target.metadata_attempts = attempts;
    Ok(target)
}

/// The target as `spec` gives it, without discovery: the endpoints given (or
/// empty), and `root_cause` (if any) as why nothing is tested. For a run that stops
/// before the target is resolved (no metadata, an interruption), whose reports must
/// still say so.
pub fn unresolved(
    spec: TargetSpec,
    reach: &Reach,
    root_cause: Option<RootCause>,
) -> Result<Target, TargetError> {
    Ok(Target {
        issuer: spec.issuer,
        device_authorization_endpoint: spec.device_authorization_endpoint.unwrap_or_default(),
        token_endpoint: spec.token_endpoint.unwrap_or_default(),
        introspection_endpoint: spec.introspection_endpoint,
        client: spec.client.ok_or(TargetError::NoClient)?,
        second_client: spec.second_client,
        unauthorized_client: spec.unauthorized_client,
        introspection_client: spec.introspection_client,
        scope: spec.scope,
        client_secret_from: spec.client_secret_from,
        metadata: None,
        metadata_attempts: Vec::new(),
        root_cause,
        reach: reach.clone(),
    })
}

/// Why [`resolve`] found no target, with what it was given and tried.
struct Unresolved {
    error: TargetError,
    spec: TargetSpec,
    attempts: Vec<Exchange>,
}

async fn resolve_or_not(spec: TargetSpec, http: &Http) -> Result<Target, Unresolved> {
    let Some(client) = spec.client.clone() else {
        return Err(Unresolved {
            error: TargetError::NoClient,
            spec,
            attempts: Vec::new(),
        });
    };
    let (metadata, attempts) = match &spec.issuer {
        Some(issuer) => discover(issuer, http).await,
        None => (None, Vec::new()),
    };
    let explicit = spec.device_authorization_endpoint.is_some() && spec.token_endpoint.is_some();
    if metadata.is_none() && !explicit {
        return Err(Unresolved {
            error: no_metadata(&spec, &attempts),
            spec,
            attempts,
        });
    }
    // An advertised endpoint is used only if it is one: an absolute http(s) URL
    // (RFC 8414 §2). What it is otherwise: absent, or why it cannot be used.
    // `Err((what, absent))`.
    let advertised = |key: &str| -> Result<String, (String, bool)> {
        let value = metadata.as_ref().and_then(|m| m.value.get(key));
        match value {
            None => Err((format!("does not advertise {key}"), true)),
            Some(Value::String(url)) => match unusable_endpoint(url) {
                None => Ok(url.clone()),
                Some(why) => Err((format!("advertises {key} {url:?}, {why}"), false)),
            },
            Some(other) => Err((
                format!("advertises {key} as {other}, not a URL string"),
                false,
            )),
        }
    };
    // RFC 8628 §4 / RFC 8414 §2: discovery is the only source left for an endpoint
    // nobody gave; metadata without it, or with something no client can send a
    // request to (a relative reference, `javascript:`), is the finding that stops the
    // run, never "cannot reach" the server.
    let mut root_cause = None;
    let mut endpoint = |given: &Option<String>, key: &str, case: &'static str| {
        if let Some(url) = given {
            return url.clone();
        }
        advertised(key).unwrap_or_else(|(what, absent)| {
            if root_cause.is_none() {
                let url = metadata.as_ref().map(|m| m.url.as_str()).unwrap_or_default();
                root_cause = Some(RootCause {
                    case: Some(case),
                    summary: format!(
                        "the metadata at {url} {what}, so a client using discovery cannot find it (give it with --{} to test the rest)",
                        key.replace('_', "-")
                    ),
                    evidence: metadata.iter().map(|m| m.exchange.clone()).collect(),
                    // RFC 8628 §4: the device endpoint's member is OPTIONAL; RFC 8414
                    // §2's token_endpoint is not.
                    warns: absent && case == "MD-01",
                });
            }
            String::new()
        })
    };
    let device_authorization_endpoint = endpoint(
        &spec.device_authorization_endpoint,
        "device_authorization_endpoint",
        "MD-01",
    );
    let token_endpoint = endpoint(&spec.token_endpoint, "token_endpoint", "MD-04");
    let introspection_endpoint = spec
        .introspection_endpoint
        .clone()
        .or_else(|| advertised("introspection_endpoint").ok());
    // The endpoints the server named: recorded as such (the reports list the other
    // hosts the suite talked to), and one at an address the suite does not connect to
    // stops the run here, said once, instead of in every case that needs it.
    let from_metadata = [
        (
            &spec.device_authorization_endpoint,
            Some(&device_authorization_endpoint),
            "device_authorization_endpoint",
        ),
        (
            &spec.token_endpoint,
            Some(&token_endpoint),
            "token_endpoint",
        ),
        (
            &spec.introspection_endpoint,
            introspection_endpoint.as_ref(),
            "introspection_endpoint",
        ),
    ];
    for (given, url, key) in from_metadata {
        let Some(url) = url.filter(|u| given.is_none() && !u.is_empty()) else {
            continue;
        };
        http.reach()
            .named_by_server(url, &format!("{key} in the metadata"));
        if key == "introspection_endpoint" || root_cause.is_some() {
            continue;
        }
        if let Some(why) = http.reach().refuses_url(url).await {
            root_cause = Some(RootCause {
                case: None,
                summary: format!("the metadata names {key} {url}, and {why}"),
                evidence: metadata.iter().map(|m| m.exchange.clone()).collect(),
                warns: false,
            });
        }
    }
    Ok(Target {
        issuer: spec.issuer,
        device_authorization_endpoint,
        token_endpoint,
        introspection_endpoint,
        client,
        second_client: spec.second_client,
        unauthorized_client: spec.unauthorized_client,
        introspection_client: spec.introspection_client,
        scope: spec.scope,
        client_secret_from: spec.client_secret_from,
        metadata,
        metadata_attempts: attempts,
        root_cause,
        reach: http.reach().clone(),
    })
}

/// Why `url`, found in a server's metadata, cannot be used as an endpoint, if it
/// cannot: RFC 8414 §2 names each endpoint's "URL", a request goes only to an
/// absolute http(s) URL with a host, and RFC 9110 §4.2.4 forbids the userinfo
/// (`user:password@`) in one (a client would send it as credentials of its own).
pub fn unusable_endpoint(url: &str) -> Option<String> {
    match url::Url::parse(url) {
        Err(e) => Some(format!("which is not an absolute URL ({e})")),
        Ok(u) if !matches!(u.scheme(), "http" | "https") => Some(format!(
            "which is not an http or https URL (scheme {:?})",
            u.scheme()
        )),
        Ok(u) if u.host_str().is_none_or(str::is_empty) => Some("which has no host".to_owned()),
        Ok(u) if !u.username().is_empty() || u.password().is_some() => Some(
            "which carries credentials (user:password@), forbidden in an http(s) URI (RFC 9110 §4.2.4)"
                .to_owned(),
        ),
        Ok(_) => None,
    }
}

/// RFC 8414 §3: the issuer's metadata from the first of its well-known URLs that
/// answers 200 with a JSON object, and the attempts that did not.
async fn discover(issuer: &str, http: &Http) -> (Option<Metadata>, Vec<Exchange>) {
    let mut attempts = Vec::new();
    for url in metadata_urls(issuer) {
        let e = http.get("metadata discovery", &url).await;
        let found = e.status() == Some(200) && e.json().object().is_some();
        if found {
            let value = e.json().value.unwrap_or_default();
            let metadata = Metadata {
                url,
                value,
                exchange: e,
                attempts: attempts.clone(),
            };
            return (Some(metadata), attempts);
        }
        attempts.push(e);
    }
    (None, attempts)
}

/// Without metadata or both endpoints given, the run cannot start.
fn no_metadata(spec: &TargetSpec, attempts: &[Exchange]) -> TargetError {
    // Say the one root cause: nothing answers, or what answers is not OAuth.
    let first = attempts
        .first()
        .map(|e| e.request.url.clone())
        .unwrap_or_default();
    if attempts.iter().any(|e| e.response.is_some()) {
        // Every URL tried, with what came of it: a timeout at RFC 8414's URL must not
        // hide behind the 404 of the next one (which reads as "none published").
        let tried: Vec<String> = attempts
            .iter()
            .map(|e| match &e.response {
                Some(_) => format!("{} answered {}", e.request.url, e.brief()),
                None => {
                    let error = e.error.as_deref().unwrap_or("no response");
                    let hint = crate::http::diagnose::tls_hint(&e.request.url, error);
                    format!("{}: {error}{hint}", e.request.url)
                }
            })
            .collect();
        return TargetError::NoMetadata(first, tried.join("; "));
    }
    let why = attempts
        .first()
        .and_then(|e| e.error.clone())
        .unwrap_or_else(|| "no response".to_owned());
    let hint = crate::http::diagnose::tls_hint(&first, &why);
    TargetError::Unreachable(
        spec.issuer.clone().unwrap_or_default(),
        format!("{why}{hint}"),
    )
}

/// `url` with its scheme and host in lower case, the rest as it is: RFC 3986 §6.2.2.1
/// makes both case-insensitive (`HTTP://AS.Example/o` is `http://as.example/o`), and
/// nothing else is normalized (`:80`, a trailing `/`, `%7E` stay: an issuer is
/// compared as written, RFC 8414 §3.3). A string without `://` is returned as it is.
pub fn lower_scheme_and_host(url: &str) -> String {
    let Some(i) = url.find("://") else {
        return url.to_owned();
    };
    let (scheme, rest) = (&url[..i], &url[i + 3..]);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    // The host ends at the port's colon; an IPv6 literal at its closing bracket.
    let userinfo = authority.rfind('@').map_or(0, |at| at + 1);
    let (userinfo, hostport) = authority.split_at(userinfo);
    let host_end = if hostport.starts_with('[') {
        hostport.find(']').map_or(hostport.len(), |j| j + 1)
    } else {
        hostport.rfind(':').unwrap_or(hostport.len())
    };
    let (host, port) = hostport.split_at(host_end);
    format!(
        "{}://{userinfo}{}{port}{tail}",
        scheme.to_ascii_lowercase(),
        host.to_ascii_lowercase()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_urls_follow_rfc_8414_then_common_practice() {
        assert_eq!(
            metadata_urls("https://as.example/"),
            [
                "https://as.example/.well-known/oauth-authorization-server",
                "https://as.example/.well-known/openid-configuration"
            ]
        );
        assert_eq!(
            metadata_urls("https://as.example/realms/x"),
            [
                "https://as.example/.well-known/oauth-authorization-server/realms/x",
                "https://as.example/realms/x/.well-known/oauth-authorization-server",
                "https://as.example/realms/x/.well-known/openid-configuration"
            ]
        );
    }

    #[test]
    fn only_absolute_http_urls_without_credentials_are_endpoints() {
        assert_eq!(unusable_endpoint("https://as.example/token"), None);
        assert_eq!(unusable_endpoint("http://127.0.0.1:8080/da?x=1"), None);
        for bad in [
            "/da",
            "da",
            "javascript:alert(1)",
            "file:///etc/passwd",
            "http://u:p@as.example/da",
            "",
        ] {
            assert!(unusable_endpoint(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn only_the_scheme_and_host_are_lower_cased() {
        for (given, folded) in [
            (
                "HTTP://AS.Example:8080/O/Realm",
                "http://as.example:8080/O/Realm",
            ),
            ("http://as.example", "http://as.example"),
            ("https://AS.EXAMPLE/", "https://as.example/"),
            ("http://AS:80", "http://as:80"),
            ("HTTP://[::1]:8080/X", "http://[::1]:8080/X"),
            ("http://AS?Q#F", "http://as?Q#F"),
            ("not a url", "not a url"),
        ] {
            assert_eq!(lower_scheme_and_host(given), folded, "{given}");
        }
    }
}
