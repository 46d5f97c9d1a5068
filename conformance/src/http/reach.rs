//! Which addresses the suite connects to, and which hosts it talked to because the
//! server under test named them.
//!
//! A server names URLs the suite then requests: endpoints in its metadata (RFC 8414
//! §2), `verification_uri` and `verification_uri_complete` (RFC 8628 §3.2), and the
//! `Location` of each redirect on the way to a verification page. Those may lie on
//! other hosts than the issuer (RFC 8414 allows it, and real providers do it), so
//! another host is not refused for being another host. But the suite often runs on a
//! CI runner or a laptop inside a network the server's operator is not part of, and
//! what it fetches goes into every report people share: a server that names
//! `http://169.254.169.254/latest/meta-data/...` or an intranet address would read
//! that network through the suite (SSRF).
//!
//! The rule, enforced where the connection is made, for every request, every redirect
//! hop, and every address a name resolves to (reqwest's resolver hook, so a name that
//! answers a public address when checked and an internal one when used cannot slip
//! through: the addresses the hook returns are the only ones connected to):
//!
//! - a public address is always reached;
//! - a loopback, private, link-local or other special-purpose address ([`Kind`]) is
//!   reached only when a host the person named (`--issuer`, the endpoint options) is
//!   of that same kind: an issuer on loopback is a local test server and may name
//!   loopback pages, not the LAN or the cloud's metadata service (it may be a tunnel to
//!   someone else's server); an issuer on 10.0.0.5 may name other private hosts, not
//!   link-local ones;
//! - `--allow-private-addresses` lifts the rule, for a server the person trusts whose
//!   pages live on a private network.
//!
//! Requests are sent directly, never through `HTTP_PROXY`/`HTTPS_PROXY`: through a proxy
//! the name is resolved by the proxy, where no rule of the suite can see the address.
//!
//! It does not own the requests ([`crate::http`]) nor the reports, which show
//! [`Reach::hosts`] and [`Reach::describe`] once.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use serde::Serialize;

/// How the evidence's error of a request the rule kept from being sent starts.
pub const NOT_CONNECTED: &str = "not connected (the suite's address rule)";

/// Where the short form of a refusal ends ([`short`]) and its explanation begins.
const WHY: &str = ", which a server may not send the suite to";

/// A refusal without its explanation: `not connected (...): 10.0.0.5 is a private
/// address`, for the list of hosts (each case's finding keeps the whole of it).
pub fn short(why: &str) -> &str {
    why.split(WHY).next().unwrap_or(why)
}

/// What an address is, for the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Public,
    /// 127.0.0.0/8, ::1, and the unspecified 0.0.0.0 and :: (a connection to them
    /// reaches this machine).
    Loopback,
    /// RFC 1918 (10/8, 172.16/12, 192.168/16), RFC 6598 shared (100.64/10), RFC 4193
    /// unique local (fc00::/7), deprecated site-local (fec0::/10), local-use NAT64.
    Private,
    /// 169.254/16 (the cloud metadata services' 169.254.169.254) and fe80::/10.
    LinkLocal,
    /// Multicast, broadcast, documentation, benchmarking, reserved: nothing a server
    /// on the Internet is at.
    Special,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Public => "public",
            Kind::Loopback => "loopback",
            Kind::Private => "private",
            Kind::LinkLocal => "link-local",
            Kind::Special => "special-purpose",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of `ip`; an IPv6 address that carries an IPv4 one (IPv4-mapped
/// `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4
/// `2002::/16`) is of the kind of the address it carries.
pub fn kind(ip: IpAddr) -> Kind {
    match ip {
        IpAddr::V4(v4) => kind_v4(v4),
        IpAddr::V6(v6) => kind_v6(v6),
    }
}

fn kind_v4(ip: Ipv4Addr) -> Kind {
    let [a, b, c, _] = ip.octets();
    match (a, b, c) {
        _ if ip.is_unspecified() || ip.is_loopback() => Kind::Loopback,
        (10, _, _) | (192, 168, _) => Kind::Private,
        (172, 16..=31, _) | (100, 64..=127, _) => Kind::Private,
        (169, 254, _) => Kind::LinkLocal,
        // 0/8 "this network", 192.0.0/24 IETF assignments, the three documentation
        // blocks, 198.18/15 benchmarking, 224/4 multicast, 240/4 reserved and broadcast.
        (0, _, _) | (192, 0, 0) | (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => Kind::Special,
        (198, 18..=19, _) | (224..=255, _, _) => Kind::Special,
        _ => Kind::Public,
    }
}

fn kind_v6(ip: Ipv6Addr) -> Kind {
    let s = ip.segments();
    if ip.is_unspecified() || ip.is_loopback() {
        return Kind::Loopback;
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return kind_v4(v4);
    }
    // IPv4-compatible (deprecated, RFC 4291 §2.5.5.1) and NAT64's well-known prefix
    // (RFC 6052): the last 32 bits are the IPv4 address reached.
    let last32 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if s[..6] == [0; 6] || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return kind_v4(last32);
    }
    if s[0] == 0x2002 {
        // 6to4 (RFC 3056): bits 16..48 are the IPv4 address.
        let v4 = Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
        return kind_v4(v4);
    }
    match s[0] {
        0x0064 if s[1] == 0xff9b => Kind::Private, // 64:ff9b:1::/48, local-use NAT64
        0xfc00..=0xfdff | 0xfec0..=0xfeff => Kind::Private,
        0xfe80..=0xfebf => Kind::LinkLocal,
        // Documentation (2001:db8::/32), Teredo (2001::/32), and everything outside
        // global unicast (2000::/3): multicast, discard, reserved.
        0x2001 if s[1] == 0x0db8 || s[1] == 0 => Kind::Special,
        0x2000..=0x3fff => Kind::Public,
        _ => Kind::Special,
    }
}

/// A host the suite talked to (or was kept from) because the server named it: not the
/// issuer's, nor one the person gave.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ServerNamedHost {
    /// `scheme://host[:port]`.
    pub origin: String,
    /// Where the server named it, or the first request sent there.
    pub named_as: String,
    /// Requests sent there (not counting those the rule kept back).
    pub requests: u64,
    /// Whether a client's credentials (an `Authorization` header, a `client_secret`)
    /// went there.
    pub credentials_sent: bool,
    /// Why the suite did not connect, when the rule kept it from doing so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_connected: Option<String>,
}

/// The rule and the record of the hosts reached: shared by every client of a run
/// (cheap to clone).
#[derive(Clone)]
pub struct Reach(Arc<Inner>);

struct Inner {
    /// `None`: no rule (the approver's admin endpoint, a URL the person gave).
    allowed: Option<BTreeSet<Kind>>,
    allow_private: bool,
    /// The origins the person named, and the kind of each (what they resolve to).
    named: Vec<(String, BTreeSet<Kind>)>,
    log: Mutex<BTreeMap<String, ServerNamedHost>>,
}

impl fmt::Debug for Reach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Reach {
    /// No rule: for a URL only the person gave (the approver's admin endpoint).
    pub fn anywhere() -> Reach {
        Reach(Arc::new(Inner {
            allowed: None,
            allow_private: true,
            named: Vec::new(),
            log: Mutex::new(BTreeMap::new()),
        }))
    }

    /// The rule for a run whose person named `urls` (the issuer, the endpoints given
    /// by hand): public addresses, and those of the kinds the named hosts are at (a
    /// name is resolved once, here, to learn its kind). `allow_private`:
    /// `--allow-private-addresses`, every address.
    pub async fn for_named(urls: &[&str], allow_private: bool) -> Reach {
        let mut named = Vec::new();
        let mut allowed = BTreeSet::from([Kind::Public]);
        for url in urls {
            let Ok(u) = url::Url::parse(url) else {
                continue;
            };
            let kinds = host_kinds(&u).await;
            allowed.extend(kinds.iter().copied());
            named.push((u.origin().ascii_serialization(), kinds));
        }
        if allow_private {
            allowed.extend([
                Kind::Loopback,
                Kind::Private,
                Kind::LinkLocal,
                Kind::Special,
            ]);
        }
        Reach(Arc::new(Inner {
            allowed: Some(allowed),
            allow_private,
            named,
            log: Mutex::new(BTreeMap::new()),
        }))
    }

    /// Whether `--allow-private-addresses` lifted the rule.
    pub fn allows_private(&self) -> bool {
        self.0.allow_private
    }

    /// Whether there is a rule to enforce (everything but [`Reach::anywhere`]).
    pub fn is_limited(&self) -> bool {
        self.0.allowed.is_some()
    }

    /// Why the suite does not connect to `ip`, if it does not.
    pub fn refuses(&self, host: &str, ip: IpAddr) -> Option<String> {
        let allowed = self.0.allowed.as_ref()?;
        let k = kind(ip);
        if allowed.contains(&k) {
            return None;
        }
        let shown = if host.trim_matches(['[', ']']) == ip.to_string() {
            format!("{ip}")
        } else {
            format!("{host} ({ip})")
        };
        Some(format!(
            "{NOT_CONNECTED}: {shown} is a {k} address{WHY}: it reaches non-public addresses only of the kinds of the hosts you \
             named ({}), so that no server makes it fetch an intranet or cloud-metadata \
             address into the reports; name the host yourself (--issuer, \
             --device-authorization-endpoint, --token-endpoint, --introspection-endpoint), \
             or pass --allow-private-addresses for a server you trust",
            self.named_kinds()
        ))
    }

    /// Why the suite does not connect to `url`'s host, if it is an address the rule
    /// refuses: IP literals never reach the resolver, so they are checked before the
    /// request (no connection is attempted). Names are checked by the resolver hook.
    pub fn refuses_literal(&self, url: &url::Url) -> Option<String> {
        let ip = match url.host()? {
            url::Host::Ipv4(ip) => IpAddr::V4(ip),
            url::Host::Ipv6(ip) => IpAddr::V6(ip),
            url::Host::Domain(_) => return None,
        };
        self.refuses(url.host_str().unwrap_or_default(), ip)
    }

    /// Why the suite would not connect to `url`, resolving a name now: for endpoints
    /// the metadata names, so that one the rule refuses stops the run at once, said as
    /// the one cause, not as every case's. (The resolver hook checks again when a
    /// request is made: a name may resolve otherwise by then.)
    pub async fn refuses_url(&self, url: &str) -> Option<String> {
        self.0.allowed.as_ref()?;
        let u = url::Url::parse(url).ok()?;
        if let Some(why) = self.refuses_literal(&u) {
            return Some(why);
        }
        let url::Host::Domain(name) = u.host()? else {
            return None;
        };
        let addrs = lookup(name).await.ok()?;
        let refused: Vec<String> = addrs
            .iter()
            .filter_map(|a| self.refuses(name, a.ip()))
            .collect();
        (refused.len() == addrs.len()).then(|| refused.into_iter().next())?
    }

    /// The rule, in one line, for the reports.
    pub fn describe(&self) -> String {
        match &self.0.allowed {
            None => "any address".to_owned(),
            Some(_) if self.0.allow_private => {
                "any address, private ones included (--allow-private-addresses)".to_owned()
            }
            Some(allowed) => {
                let others: Vec<&str> = allowed
                    .iter()
                    .filter(|k| **k != Kind::Public)
                    .map(|k| k.as_str())
                    .collect();
                let also = if others.is_empty() {
                    String::new()
                } else {
                    format!(" and {}", others.join(", "))
                };
                format!(
                    "public addresses{also} (the kinds of the hosts you named: {}); no other \
                     address a server names is connected to (--allow-private-addresses lifts this)",
                    self.named_kinds()
                )
            }
        }
    }

    fn named_kinds(&self) -> String {
        if self.0.named.is_empty() {
            return "none".to_owned();
        }
        self.0
            .named
            .iter()
            .map(|(origin, kinds)| {
                let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
                let kinds = if kinds.is_empty() {
                    "unresolved".to_owned()
                } else {
                    kinds.join(", ")
                };
                format!("{origin} is {kinds}")
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn is_named(&self, origin: &str) -> bool {
        self.0.named.iter().any(|(o, _)| o == origin)
    }

    /// Notes where the server named `url` (an endpoint in its metadata), before any
    /// request goes there.
    pub fn named_by_server(&self, url: &str, named_as: &str) {
        self.entry(url, |_| {}, named_as);
    }

    /// Records a request to `url`: sent (with credentials or not), or kept back for
    /// `not_connected`.
    pub fn record(&self, url: &str, label: &str, credentials: bool, not_connected: Option<&str>) {
        self.entry(
            url,
            |h| match not_connected {
                Some(why) => {
                    h.not_connected.get_or_insert_with(|| why.to_owned());
                }
                None => {
                    h.requests += 1;
                    h.credentials_sent |= credentials;
                }
            },
            label,
        );
    }

    fn entry(&self, url: &str, update: impl FnOnce(&mut ServerNamedHost), named_as: &str) {
        let Ok(u) = url::Url::parse(url) else {
            return;
        };
        // A `javascript:` or `data:` URL is never sent (the client refuses its
        // scheme): no host was contacted, and its origin would read "null".
        if !matches!(u.scheme(), "http" | "https") {
            return;
        }
        let origin = u.origin().ascii_serialization();
        if !self.is_limited() || self.is_named(&origin) {
            return;
        }
        let mut log = self.0.log.lock().unwrap_or_else(|e| e.into_inner());
        let host = log
            .entry(origin.clone())
            .or_insert_with(|| ServerNamedHost {
                origin,
                named_as: named_as.to_owned(),
                requests: 0,
                credentials_sent: false,
                not_connected: None,
            });
        update(host);
    }

    /// The hosts the suite talked to, or was kept from, because the server named them.
    pub fn hosts(&self) -> Vec<ServerNamedHost> {
        let log = self.0.log.lock().unwrap_or_else(|e| e.into_inner());
        log.values().cloned().collect()
    }
}

/// The kinds of the addresses `url`'s host is at: its own, for an IP literal; those it
/// resolves to, for a name (none if it does not resolve).
async fn host_kinds(url: &url::Url) -> BTreeSet<Kind> {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => BTreeSet::from([kind_v4(ip)]),
        Some(url::Host::Ipv6(ip)) => BTreeSet::from([kind_v6(ip)]),
        Some(url::Host::Domain(name)) => lookup(name)
            .await
            .map(|addrs| addrs.iter().map(|a| kind(a.ip())).collect())
            .unwrap_or_default(),
        None => BTreeSet::new(),
    }
}

async fn lookup(name: &str) -> std::io::Result<Vec<SocketAddr>> {
    Ok(tokio::net::lookup_host((name, 0)).await?.collect())
}

/// The error of a connection the rule refused (read back by [`crate::http`] to tell it
/// from a server that did not answer).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotConnected(pub String);

/// reqwest's resolver, with the rule: a name's addresses the rule refuses are dropped
/// (the connection is made only to those returned), and a name left with none fails
/// with [`NotConnected`].
pub(crate) struct GuardedResolver(pub Reach);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let reach = self.0.clone();
        let name = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = lookup(&name).await?;
            let mut refused = None;
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| match reach.refuses(&name, a.ip()) {
                    Some(why) => {
                        refused.get_or_insert(why);
                        false
                    }
                    None => true,
                })
                .collect();
            match (allowed.is_empty(), refused) {
                (true, Some(why)) => Err(Box::new(NotConnected(why)) as _),
                _ => Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs),
            }
        })
    }
}

/// Whether `url` is an `https` URL. RFC 3986 §3.1: schemes are case-insensitive, so
/// `HTTPS://AS.EXAMPLE/device` is one (the URL parser lower-cases the scheme).
pub fn is_https(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| u.scheme() == "https")
}

/// Whether `url` is an `http` URL (the scheme in any case, RFC 3986 §3.1).
pub fn is_http(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| u.scheme() == "http")
}

/// Whether a URL's host is loopback (127.0.0.0/8, ::1, localhost).
pub fn is_loopback(url: &str) -> bool {
    reqwest::Url::parse(url)
        .ok()
        .is_some_and(|u| match u.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> Kind {
        kind(s.parse().unwrap())
    }

    #[test]
    fn addresses_are_told_apart_in_every_form() {
        for (ip, want) in [
            ("8.8.8.8", Kind::Public),
            ("93.184.215.14", Kind::Public),
            ("2606:4700::1111", Kind::Public),
            ("127.0.0.1", Kind::Loopback),
            ("127.0.0.3", Kind::Loopback),
            ("0.0.0.0", Kind::Loopback),
            ("::", Kind::Loopback),
            ("::1", Kind::Loopback),
            ("10.0.0.5", Kind::Private),
            ("172.16.0.1", Kind::Private),
            ("172.31.255.255", Kind::Private),
            ("192.168.1.1", Kind::Private),
            ("100.64.0.1", Kind::Private),
            ("100.127.255.254", Kind::Private),
            ("fd00::1", Kind::Private),
            ("fc00::1", Kind::Private),
            ("169.254.169.254", Kind::LinkLocal),
            ("fe80::1", Kind::LinkLocal),
            ("febf::1", Kind::LinkLocal),
            ("224.0.0.1", Kind::Special),
            ("255.255.255.255", Kind::Special),
            ("0.1.2.3", Kind::Special),
            ("192.0.2.1", Kind::Special),
            ("ff02::1", Kind::Special),
            ("2001:db8::1", Kind::Special),
            // IPv6 forms of IPv4 addresses are what they carry.
            ("::ffff:169.254.169.254", Kind::LinkLocal),
            ("::ffff:127.0.0.1", Kind::Loopback),
            ("::ffff:10.1.2.3", Kind::Private),
            ("::ffff:8.8.8.8", Kind::Public),
            ("::169.254.169.254", Kind::LinkLocal),
            ("64:ff9b::a9fe:a9fe", Kind::LinkLocal),
            ("64:ff9b::808:808", Kind::Public),
            ("2002:a9fe:a9fe::1", Kind::LinkLocal),
            ("2002:0808:0808::1", Kind::Public),
        ] {
            assert_eq!(k(ip), want, "{ip}");
        }
        // Neighbours of the ranges stay public.
        for ip in [
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "169.253.1.1",
        ] {
            assert_eq!(k(ip), Kind::Public, "{ip}");
        }
    }

    #[tokio::test]
    async fn a_loopback_issuer_lets_the_server_name_loopback_hosts_but_not_the_lan_or_link_local() {
        let reach = Reach::for_named(&["http://127.0.0.1:8080"], false).await;
        let at = |ip: &str| reach.refuses("h", ip.parse().unwrap());
        assert_eq!(at("127.0.0.3"), None);
        assert_eq!(at("8.8.8.8"), None);
        for refused in [
            "10.0.0.5",
            "169.254.169.254",
            "::ffff:169.254.169.254",
            "fd00::1",
        ] {
            let why = at(refused).unwrap_or_else(|| panic!("{refused} reached"));
            assert!(why.starts_with(NOT_CONNECTED), "{why}");
            assert!(why.contains("http://127.0.0.1:8080 is loopback"), "{why}");
        }
        // A public issuer: nothing but public addresses.
        let public = Reach::for_named(&["https://93.184.215.14/"], false).await;
        assert!(public.refuses("h", "127.0.0.1".parse().unwrap()).is_some());
        assert!(public.refuses("h", "0.0.0.0".parse().unwrap()).is_some());
        // An issuer on the LAN: other private hosts, never link-local.
        let lan = Reach::for_named(&["http://10.0.0.5"], false).await;
        assert_eq!(lan.refuses("h", "192.168.1.9".parse().unwrap()), None);
        assert!(lan
            .refuses("h", "169.254.169.254".parse().unwrap())
            .is_some());
        // The opt-in reaches everything; no rule at all for a URL the person gave.
        let opted = Reach::for_named(&["https://93.184.215.14/"], true).await;
        assert_eq!(opted.refuses("h", "169.254.169.254".parse().unwrap()), None);
        assert!(opted.describe().contains("--allow-private-addresses"));
        assert_eq!(
            Reach::anywhere().refuses("h", "10.0.0.1".parse().unwrap()),
            None
        );
    }

    #[tokio::test]
    async fn only_hosts_the_person_did_not_name_are_recorded() {
        let reach = Reach::for_named(&["http://127.0.0.1:8080"], false).await;
        reach.record("http://127.0.0.1:8080/token", "poll", true, None);
        reach.named_by_server("http://127.0.0.2:9/token", "token_endpoint in the metadata");
        reach.record("http://127.0.0.2:9/token", "poll", true, None);
        reach.record("http://127.0.0.2:9/token", "poll", false, None);
        reach.record(
            "http://10.0.0.1/v",
            "GET verification_uri (hop 0)",
            false,
            Some("refused"),
        );
        let hosts = reach.hosts();
        assert_eq!(hosts.len(), 2, "{hosts:?}");
        assert_eq!(hosts[0].origin, "http://10.0.0.1");
        assert_eq!(hosts[0].requests, 0);
        assert_eq!(hosts[0].not_connected.as_deref(), Some("refused"));
        assert_eq!(hosts[1].named_as, "token_endpoint in the metadata");
        assert_eq!((hosts[1].requests, hosts[1].credentials_sent), (2, true));
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("http://127.0.0.1:8080/x"));
        assert!(is_loopback("http://[::1]/"));
        assert!(is_loopback("http://localhost/"));
        assert!(!is_loopback("https://auth.example.com/"));
    }
}
