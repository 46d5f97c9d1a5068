//! A primary that Redis Sentinels watch: where they say it is, asked of all of them at
//! once, and a task that asks again four times a second and moves the store's
//! connection when they name another primary (a failover), without waiting for a
//! request to fail.
//!
//! Why a task and not the requests: after a planned failover (`SENTINEL FAILOVER`) the
//! old primary takes writes for seconds more, until a Sentinel makes it a replica, and
//! then drops them at its first sync. A store that waited for `READONLY` wrote there all
//! that time, and lost every write, with the answers already sent. Asking in a request
//! also made requests wait on a Sentinel that does not answer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, RedisError, Value};
use tokio::sync::Notify;

use super::link::{not_a_primary, Conn, CALL_TIMEOUT};

/// Sentinel's own port, for a Sentinel named without one.
const SENTINEL_PORT: u16 = 26379;

/// How often the Sentinels are asked where the primary is: every write an instance
/// sends the old primary between a failover's promotion and its move is lost (it takes
/// writes until a Sentinel makes it a replica, seconds later), so this is short. Each
/// asking is one small command to each Sentinel, on a connection kept open.
pub(super) const WATCH_EVERY: Duration = Duration::from_millis(250);

/// The least time between two askings, however often requests nudge the task.
const ASK_GAP: Duration = Duration::from_millis(100);

/// How long a Sentinel that did not answer is left alone, at first; doubled at each
/// failure in a row up to [`QUIET_AT_MOST`]. A frozen Sentinel's port still takes
/// connections into its backlog: asked at every turn, it would fill it.
const QUIET_FIRST: Duration = Duration::from_secs(1);
const QUIET_AT_MOST: Duration = Duration::from_secs(30);

/// How long the watch waits before trying again a primary it could not use.
const RETRY_MOVE: Duration = Duration::from_secs(1);

/// The form of a Sentinel URL, for messages.
const FORM: &str = "redis+sentinel://host:port,host:port/SERVICE[/DB]";

/// The Sentinels a Sentinel URL names, the name they know the primary by, and how to
/// reach the primary they name.
pub(super) struct Sentinels {
    nodes: Vec<Arc<Node>>,
    service: Arc<str>,
    /// `redis` or `rediss`: the primary's scheme too.
    scheme: &'static str,
    /// The URL's `user:password@`, as written (percent-encoded), for the primary.
    credentials: String,
    db: String,
}

/// One Sentinel, and its connection once opened.
struct Node {
    /// `host:port`, for messages.
    shown: String,
    client: redis::Client,
    /// The same Sentinel with the URL's credentials, if it has any: used once the
    /// Sentinel asks for a password (`NOAUTH`), as one that shares Redis's does.
    with_credentials: Option<redis::Client>,
    /// Whether this Sentinel asked for a password.
    asks_password: AtomicBool,
    conn: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    /// After failures in a row: until when it is left alone, how long the last quiet
    /// was, and what it said.
    quiet: Mutex<Option<(Instant, Duration, String)>>,
}

/// Where the Sentinels that answered say the primary is.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Named {
    /// `host:port`, named by the most of them (the first listed of those, on a tie).
    pub(super) primary: String,
    /// Whether more than half of all the Sentinels named it: only then does a running
    /// store move to it (one Sentinel left behind, with the others unreachable, would
    /// otherwise move it back to an old primary).
    pub(super) majority: bool,
    /// Those that named another, as `host:port names host:port`.
    pub(super) dissent: Vec<String>,
}

/// The primary more than half of `nodes` Sentinels name in `answers`, if one is.
fn majority(nodes: usize, answers: &[(usize, Result<Option<String>, String>)]) -> Option<&str> {
    let named = || {
        answers
            .iter()
            .filter_map(|(_, a)| a.as_ref().ok()?.as_deref())
    };
    named().find(|p| named().filter(|q| q == p).count() * 2 > nodes)
}

impl Sentinels {
    /// From a URL's part after the scheme (`scheme` is `redis` or `rediss`):
    /// `[user:password@]host[:port][,host[:port]…]/SERVICE[/DB]`. The credentials are
    /// Redis's, as in a `redis://` URL, and go to a Sentinel only when it asks for a
    /// password.
    pub(super) fn parse(scheme: &'static str, rest: &str) -> Result<Sentinels, String> {
        if rest.contains(['?', '#']) {
            return Err(format!(
                "a Sentinel URL takes no query or fragment (the database is a path: {FORM})"
            ));
        }
        let (authority, path) = rest
            .split_once('/')
            .ok_or_else(|| format!("name the service the Sentinels watch: {FORM}"))?;
        // The credentials end at the last `@` before the service: a `@` in a password
        // is written `%40`, and one in the service's name is the name's.
        let (credentials, nodes) = match authority.rsplit_once('@') {
            Some((c, nodes)) => (format!("{c}@"), nodes),
            None => (String::new(), authority),
        };
        // `h1:1,:pw@h2:2/svc` read `h1:1,` as a user name, and dropped that Sentinel.
        if credentials.contains(',') {
            return Err(format!(
                "the password is written once, before the first Sentinel: {scheme}+sentinel://[USER:]PASSWORD@host:port,host:port/SERVICE (a \",\" in a password is written %2C)"
            ));
        }
        let nodes: Vec<&str> = nodes
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .collect();
        if nodes.is_empty() {
            return Err(format!(
                "a Sentinel URL names at least one Sentinel: {FORM}"
            ));
        }
        let mut path = path.split('/');
        let service = path.next().unwrap_or_default().trim();
        let db = path.next().map(str::trim);
        if service.is_empty() || path.next().is_some() || db == Some("") {
            return Err(format!(
                "after the Sentinels, the service's name and at most a database: {FORM}"
            ));
        }
        let db = db.unwrap_or("0").to_owned();
        let sentinels = Sentinels {
            nodes: Vec::new(),
            service: service.into(),
            scheme,
            credentials,
            db,
        };
        // The primary's URL as the client reads it: the credentials and the database
        // are checked now, not at the first failover.
        redis::Client::open(sentinels.primary_url("127.0.0.1:1")).map_err(|e| e.to_string())?;
        let nodes = nodes
            .into_iter()
            .map(|n| {
                let shown = with_port(n);
                let open = |credentials: &str| {
                    redis::Client::open(format!("{scheme}://{credentials}{shown}"))
                        .map_err(|e| format!("Sentinel {shown}: {e}"))
                };
                let with_credentials = match sentinels.credentials.as_str() {
                    "" => None,
                    c => Some(open(c)?),
                };
                Ok(Arc::new(Node {
                    client: open("")?,
                    with_credentials,
                    asks_password: AtomicBool::new(false),
                    shown,
                    conn: tokio::sync::Mutex::new(None),
                    quiet: Mutex::new(None),
                }))
            })
            .collect::<Result<_, String>>()?;
        Ok(Sentinels { nodes, ..sentinels })
    }

    /// The URL of the primary at `address` (`host:port`).
    pub(super) fn primary_url(&self, address: &str) -> String {
        format!(
            "{}://{}{address}/{}",
            self.scheme, self.credentials, self.db
        )
    }

    /// Asks every Sentinel at once, each within [`CALL_TIMEOUT`], where the primary is
    /// (`SENTINEL GET-MASTER-ADDR-BY-NAME`), and decides as soon as more than half of
    /// them name one primary: a Sentinel that does not answer delays nobody (its ask
    /// goes on, bounded, in the background). A Sentinel that failed lately is left
    /// alone for a while. An error says what each Sentinel said.
    pub(super) async fn ask(&self) -> Result<Named, String> {
        let mut asking = tokio::task::JoinSet::new();
        let mut answers: Vec<(usize, Result<Option<String>, String>)> = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            if let Some(why) = node.quiet_now() {
                answers.push((i, Err(why)));
                continue;
            }
            let (node, service) = (Arc::clone(node), Arc::clone(&self.service));
            asking.spawn(async move {
                let answer = tokio::time::timeout(CALL_TIMEOUT, node.ask(&service))
                    .await
                    .unwrap_or_else(|_| Err("no answer in 1 s".to_owned()));
                node.note(&answer);
                (i, answer)
            });
        }
        while let Some(joined) = asking.join_next().await {
            if let Ok(answer) = joined {
                answers.push(answer);
            }
            if majority(self.nodes.len(), &answers).is_some() {
                break;
            }
        }
        // The ones still asking finish on their own, each within its timeout.
        asking.detach_all();
        answers.sort_by_key(|(i, _)| *i);
        decide(&self.service, &self.nodes_shown(), answers)
    }

    fn nodes_shown(&self) -> Vec<&str> {
        self.nodes.iter().map(|n| n.shown.as_str()).collect()
    }

    /// A connection to the primary at `address`, checked to answer `ROLE` as a primary
    /// (a Sentinel names the promoted replica as soon as it is promoted; an old
    /// primary not yet made a replica also still says it is one, but Sentinels no
    /// longer name it).
    pub(super) async fn connect(
        &self,
        address: &str,
        config: &ConnectionManagerConfig,
    ) -> Result<ConnectionManager, String> {
        let client = redis::Client::open(self.primary_url(address)).map_err(|e| e.to_string())?;
        let mut conn = client
            .get_connection_manager_with_config(config.clone())
            .await
            .map_err(|e| e.to_string())?;
        let role: Result<Vec<Value>, RedisError> = redis::cmd("ROLE").query_async(&mut conn).await;
        // Where an ACL refuses ROLE, taken as a primary, as at start (`conn.rs`): a
        // replica's READONLY at the first write says otherwise.
        if let Some(why) = role.ok().as_deref().and_then(not_a_primary) {
            return Err(why);
        }
        Ok(conn)
    }
}

impl Node {
    /// Why this Sentinel is left alone now, if it is.
    fn quiet_now(&self) -> Option<String> {
        let quiet = self.quiet.lock().unwrap_or_else(PoisonError::into_inner);
        match &*quiet {
            Some((until, _, why)) if Instant::now() < *until => {
                Some(format!("{why}; not asked again yet"))
            }
            _ => None,
        }
    }

    /// Notes how an asking ended: a failure leaves the Sentinel alone for twice as
    /// long as the last time (from [`QUIET_FIRST`] to [`QUIET_AT_MOST`]).
    fn note(&self, answer: &Result<Option<String>, String>) {
        let mut quiet = self.quiet.lock().unwrap_or_else(PoisonError::into_inner);
        *quiet = match answer {
            Ok(_) => None,
            Err(why) => {
                let next = quiet
                    .as_ref()
                    .map_or(QUIET_FIRST, |(_, last, _)| (*last * 2).min(QUIET_AT_MOST));
                Some((Instant::now() + next, next, why.clone()))
            }
        };
    }

    /// What this Sentinel says: the primary's `host:port`, or `None` when it watches no
    /// primary by that name.
    async fn ask(&self, service: &str) -> Result<Option<String>, String> {
        let mut held = self.conn.lock().await;
        loop {
            let answer = Self::ask_on(&mut held, self.client(), service).await;
            match answer {
                Ok(named) => return Ok(named.map(|(host, port)| address(&host, port))),
                Err(e) => {
                    // Opened again at the next asking.
                    *held = None;
                    let asked_password = e.kind() == redis::ErrorKind::AuthenticationFailed
                        || e.code() == Some("NOAUTH");
                    if asked_password
                        && self.with_credentials.is_some()
                        && !self.asks_password.swap(true, Ordering::Relaxed)
                    {
                        // Asked again, with the URL's credentials.
                        continue;
                    }
                    return Err(e.to_string());
                }
            }
        }
    }

    /// The client to ask with: the URL's credentials once this Sentinel asked for a
    /// password, none before.
    fn client(&self) -> &redis::Client {
        match &self.with_credentials {
            Some(c) if self.asks_password.load(Ordering::Relaxed) => c,
            _ => &self.client,
        }
    }

    /// `SENTINEL GET-MASTER-ADDR-BY-NAME` on `held`, opened with `client` if it is not.
    async fn ask_on(
        held: &mut Option<MultiplexedConnection>,
        client: &redis::Client,
        service: &str,
    ) -> Result<Option<(String, u16)>, RedisError> {
        let conn = match held {
            Some(conn) => conn,
            None => {
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(CALL_TIMEOUT))
                    .set_response_timeout(Some(CALL_TIMEOUT));
                let opened = client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?;
                held.insert(opened)
            }
        };
        redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(service)
            .query_async(conn)
            .await
    }
}

/// `host:port`, an IPv6 host in brackets.
fn address(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `node` with Sentinel's port when it names none.
fn with_port(node: &str) -> String {
    let has_port = match node.rsplit_once(':') {
        // `[::1]` has colons, and no port after its bracket.
        Some((host, _)) => !node.ends_with(']') && (!host.contains(':') || host.ends_with(']')),
        None => false,
    };
    if has_port {
        node.to_owned()
    } else {
        format!("{node}:{SENTINEL_PORT}")
    }
}

/// The primary the most Sentinels name (`nodes[i]` said `answers[i]`).
fn decide(
    service: &str,
    nodes: &[&str],
    answers: Vec<(usize, Result<Option<String>, String>)>,
) -> Result<Named, String> {
    let mut votes: Vec<(&str, usize)> = Vec::new();
    for (_, answer) in &answers {
        if let Ok(Some(primary)) = answer {
            match votes.iter_mut().find(|(p, _)| p == primary) {
                Some((_, n)) => *n += 1,
                None => votes.push((primary, 1)),
            }
        }
    }
    // The first of the most named, in the Sentinels' order.
    let most = votes.iter().map(|(_, n)| *n).max();
    let Some(primary) = votes
        .iter()
        .find(|(_, n)| Some(*n) == most)
        .map(|(p, _)| (*p).to_owned())
    else {
        let knows_none = answers.iter().any(|(_, a)| matches!(a, Ok(None)));
        let said: Vec<String> = answers
            .iter()
            .filter_map(|(i, a)| a.as_ref().err().map(|e| format!("{} ({e})", nodes[*i])))
            .collect();
        return Err(if knows_none {
            format!(
                "no Sentinel knows a primary named \"{service}\" (`SENTINEL MASTERS` on a Sentinel lists what it watches){}",
                if said.is_empty() {
                    String::new()
                } else {
                    format!("; no answer from {}", said.join(", "))
                }
            )
        } else {
            format!("no Sentinel answered: {}", said.join(", "))
        });
    };
    let dissent = answers
        .iter()
        .filter_map(|(i, a)| match a {
            Ok(Some(other)) if *other != primary => Some(format!("{} names {other}", nodes[*i])),
            _ => None,
        })
        .collect();
    let majority = majority(nodes.len(), &answers) == Some(&primary);
    Ok(Named {
        primary,
        majority,
        dissent,
    })
}

/// Asks the Sentinels every [`WATCH_EVERY`] (sooner when `nudge` is notified: a request
/// met `READONLY` or lost its connection) and moves `conn` to the primary they name
/// when it is not `primary`, the one it reaches now. Ends when `conn` is dropped.
pub(super) async fn watch(
    sentinels: Arc<Sentinels>,
    conn: Weak<ArcSwap<(u64, Conn)>>,
    nudge: Arc<Notify>,
    config: ConnectionManagerConfig,
    shown: String,
    mut primary: String,
) {
    let mut said = Said::default();
    // A primary the watch could not use, and when: not tried again at once.
    let mut refused: Option<(String, Instant)> = None;
    loop {
        tokio::select! {
            () = tokio::time::sleep(WATCH_EVERY) => {}
            () = nudge.notified() => {}
        }
        let Some(held) = conn.upgrade() else {
            return;
        };
        match sentinels.ask().await {
            Err(why) => said.lookup_failed(&shown, &why),
            Ok(named) => {
                said.answered(&shown, &named);
                let just_refused = refused
                    .as_ref()
                    .is_some_and(|(p, at)| *p == named.primary && at.elapsed() < RETRY_MOVE);
                // Moved only where more than half of all the Sentinels point.
                if named.primary != primary && named.majority && !just_refused {
                    let connecting = sentinels.connect(&named.primary, &config);
                    let failed = match tokio::time::timeout(CALL_TIMEOUT * 2, connecting).await {
                        Ok(Ok(fresh)) => {
                            let opened = held.load().0;
                            held.store(Arc::new((opened + 1, Conn::Single(fresh))));
                            tracing::warn!(store = %shown, primary = %named.primary, was = %primary, "the Sentinels name another primary (a failover): connected to it");
                            said.moving = None;
                            refused = None;
                            primary.clone_from(&named.primary);
                            None
                        }
                        // Not ready yet (still a replica, or not answering): tried
                        // again after RETRY_MOVE.
                        Ok(Err(why)) => Some(why),
                        Err(_) => Some("no answer in 2 s".to_owned()),
                    };
                    if let Some(why) = failed {
                        said.move_failed(&shown, &named.primary, &why);
                        refused = Some((named.primary, Instant::now()));
                    }
                }
            }
        }
        drop(held);
        tokio::time::sleep(ASK_GAP).await;
    }
}

/// What the watch last logged, so that a condition that lasts is said once.
#[derive(Default)]
struct Said {
    lookup: Option<String>,
    dissent: Vec<String>,
    moving: Option<String>,
}

impl Said {
    fn lookup_failed(&mut self, shown: &str, why: &str) {
        if self.lookup.is_none() {
            tracing::warn!(store = %shown, error = %why, "the Sentinels cannot say where the primary is; the store keeps the one it has");
        }
        self.lookup = Some(why.to_owned());
    }

    fn answered(&mut self, shown: &str, named: &Named) {
        if self.lookup.take().is_some() {
            tracing::warn!(store = %shown, primary = %named.primary, "the Sentinels answer again");
        }
        if named.dissent != self.dissent {
            if !named.dissent.is_empty() {
                tracing::warn!(store = %shown, primary = %named.primary, dissent = %named.dissent.join("; "), "the Sentinels disagree on the primary: following the one most of them name, and moving only where more than half point (check that every Sentinel watches the same primary under this name)");
            }
            self.dissent.clone_from(&named.dissent);
        }
    }

    fn move_failed(&mut self, shown: &str, primary: &str, why: &str) {
        let what = format!("{primary}: {why}");
        if self.moving.as_deref() != Some(&what) {
            tracing::warn!(store = %shown, primary = %primary, error = %why, "the Sentinels name another primary, which this store cannot use yet; trying again");
            self.moving = Some(what);
        }
    }
}

/// Spawns [`watch`] on the current runtime.
pub(super) fn spawn_watch(
    sentinels: Arc<Sentinels>,
    conn: &Arc<ArcSwap<(u64, Conn)>>,
    config: ConnectionManagerConfig,
    shown: String,
    primary: String,
) -> Arc<Notify> {
    let nudge = Arc::new(Notify::new());
    tokio::spawn(watch(
        sentinels,
        Arc::downgrade(conn),
        Arc::clone(&nudge),
        config,
        shown,
        primary,
    ));
    nudge
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sentinel_url_names_its_sentinels_its_service_and_how_to_reach_the_primary() {
        let s = Sentinels::parse("redis", " h1:26380, h2 ,[::1]:7,[::2]/mymaster").unwrap();
        assert_eq!(
            s.nodes_shown(),
            ["h1:26380", "h2:26379", "[::1]:7", "[::2]:26379"]
        );
        assert_eq!(&*s.service, "mymaster");
        assert_eq!(s.primary_url("10.0.0.1:6379"), "redis://10.0.0.1:6379/0");
        let s = Sentinels::parse("rediss", "user:p%40ss@h1/ svc /3").unwrap();
        assert_eq!(&*s.service, "svc");
        assert_eq!(s.primary_url("[::1]:1"), "rediss://user:p%40ss@[::1]:1/3");

        let error = |rest: &str| {
            Sentinels::parse("redis", rest)
                .err()
                .unwrap_or_else(|| panic!("{rest} was taken"))
        };
        for rest in ["h:1", "h:1,h:2"] {
            assert!(error(rest).starts_with("name the service the Sentinels watch"));
        }
        for rest in ["h:1/", "h:1/svc/", "h:1/svc/0/more", "h:1//0", "h:1/ /0"] {
            assert!(
                error(rest).starts_with("after the Sentinels, the service's name"),
                "{rest}"
            );
        }
        for rest in ["h:1/svc?db=2", "h:1/svc/2?protocol=resp3", "h:1/svc#x"] {
            assert!(
                error(rest).starts_with("a Sentinel URL takes no query"),
                "{rest}"
            );
        }
        assert!(error(" , /svc").starts_with("a Sentinel URL names at least one Sentinel"));
        assert!(
            error("h:1/svc/x").contains("database"),
            "{}",
            error("h:1/svc/x")
        );
    }

    #[test]
    fn a_majority_is_more_than_half_of_every_sentinel_answered_or_not() {
        let answers = |named: &[Option<&str>]| -> Vec<(usize, Result<Option<String>, String>)> {
            named
                .iter()
                .enumerate()
                .map(|(i, n)| (i, Ok(n.map(str::to_owned))))
                .collect()
        };
        assert_eq!(majority(3, &answers(&[Some("a"), Some("a")])), Some("a"));
        assert_eq!(majority(3, &answers(&[Some("a"), Some("b")])), None);
        assert_eq!(majority(4, &answers(&[Some("a"), Some("a")])), None);
        assert_eq!(majority(1, &answers(&[Some("a")])), Some("a"));
        assert_eq!(majority(3, &answers(&[None, None])), None);
    }

    #[test]
    fn a_sentinel_that_fails_is_left_alone_longer_each_time_and_asked_again_after_an_answer() {
        let node = Node {
            shown: "s:1".into(),
            client: redis::Client::open("redis://s:1").unwrap(),
            with_credentials: None,
            asks_password: AtomicBool::new(false),
            conn: tokio::sync::Mutex::new(None),
            quiet: Mutex::new(None),
        };
        assert_eq!(node.quiet_now(), None);
        let quiet_for = |node: &Node| node.quiet.lock().unwrap().as_ref().map(|q| q.1);
        node.note(&Err("no answer in 1 s".into()));
        assert_eq!(quiet_for(&node), Some(QUIET_FIRST));
        assert_eq!(
            node.quiet_now().as_deref(),
            Some("no answer in 1 s; not asked again yet")
        );
        for _ in 0..10 {
            node.note(&Err("refused".into()));
        }
        assert_eq!(quiet_for(&node), Some(QUIET_AT_MOST));
        node.note(&Ok(None));
        assert_eq!((quiet_for(&node), node.quiet_now()), (None, None));
    }

    #[test]
    fn the_primary_is_the_one_most_sentinels_name_and_a_failure_says_each_ones_answer() {
        let nodes = ["s1:1", "s2:2", "s3:3"];
        let said = |answers: [Result<Option<&str>, &str>; 3]| {
            let answers = answers
                .into_iter()
                .enumerate()
                .map(|(i, a)| (i, a.map(|p| p.map(str::to_owned)).map_err(str::to_owned)))
                .collect();
            decide("svc", &nodes, answers)
        };
        assert_eq!(
            said([Ok(Some("a:1")), Err("frozen"), Ok(Some("a:1"))]),
            Ok(Named {
                primary: "a:1".into(),
                majority: true,
                dissent: vec![]
            })
        );
        // A stale Sentinel listed first is outvoted, and named.
        assert_eq!(
            said([Ok(Some("old:1")), Ok(Some("new:2")), Ok(Some("new:2"))]),
            Ok(Named {
                primary: "new:2".into(),
                majority: true,
                dissent: vec!["s1:1 names old:1".into()]
            })
        );
        // A tie goes to the first listed, and is no majority: a running store stays
        // where it is (one Sentinel left behind, the other unreachable, would have
        // moved it back to an old primary).
        assert_eq!(
            said([Err("down"), Ok(Some("b:2")), Ok(Some("c:3"))]),
            Ok(Named {
                primary: "b:2".into(),
                majority: false,
                dissent: vec!["s3:3 names c:3".into()]
            })
        );
        // One of three, the others knowing no such primary: named, no majority.
        assert!(
            !said([Ok(None), Ok(None), Ok(Some("x:1"))])
                .unwrap()
                .majority
        );
        assert_eq!(
            said([Err("refused"), Err("no answer in 1 s"), Err("refused")]).unwrap_err(),
            "no Sentinel answered: s1:1 (refused), s2:2 (no answer in 1 s), s3:3 (refused)"
        );
        assert_eq!(
            said([Ok(None), Err("refused"), Ok(None)]).unwrap_err(),
            "no Sentinel knows a primary named \"svc\" (`SENTINEL MASTERS` on a Sentinel lists what it watches); no answer from s2:2 (refused)"
        );
    }
}
