//! `redis-server` processes of the tests' own: one ([`RedisServer`]), a cluster of
//! masters ([`RedisCluster`]), or a primary with replicas and the Sentinels that watch
//! it ([`RedisSentinels`]), each on free loopback ports in a temporary directory of its
//! own, never a system service.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::net::{free_port, temp_dir};
use crate::process::{call_off, stop_child, watchdog};
use crate::resp::{self, Reply};
use crate::tls;

const NOT_INSTALLED: &str =
    "redis-server is not installed (or not on PATH): run scripts/install-test-deps.sh";

/// How long a Redis may take to answer `PING` after it starts.
const READY_WITHIN: Duration = Duration::from_secs(20);

/// Tries of a fresh port when the one picked was taken before Redis bound it.
const PORT_TRIES: usize = 10;

/// How a [`RedisServer`] runs.
#[derive(Debug, Clone, Default)]
pub struct RedisOptions {
    /// Keep the data across [`RedisServer::stop`] and [`RedisServer::restart`]: an
    /// append-only file, fsynced on every write. Off by default (`--save ""
    /// --appendonly no`): nothing is written to disk.
    pub persistence: bool,
    /// More arguments for `redis-server`, as `["--maxmemory", "1gb"]`.
    pub args: Vec<String>,
    /// `--requirepass`: clients must `AUTH` with it. [`RedisServer::url`] then
    /// carries it, and [`RedisServer::command`] authenticates with it.
    pub password: Option<String>,
    /// Also a TLS port ([`RedisServer::tls_url`]), with a certificate for 127.0.0.1
    /// signed by a CA of its own ([`RedisServer::ca_file`]), both made with `openssl`
    /// in its directory. The plain port stays, for [`RedisServer::command`].
    pub tls: bool,
}

/// A `redis-server` on a free loopback port. Killed, and its directory removed, when
/// dropped.
pub struct RedisServer {
    port: u16,
    /// `--cluster-port`, for a cluster node.
    bus_port: Option<u16>,
    /// `--tls-port`, with [`RedisOptions::tls`].
    tls_port: Option<u16>,
    /// For a Sentinel, what its configuration file says at start (Sentinel rewrites
    /// the file as it learns).
    sentinel: Option<String>,
    dir: PathBuf,
    options: RedisOptions,
    child: Option<Child>,
    /// Kills the Redis if this process dies without dropping it.
    watchdog: Option<Child>,
}

impl RedisServer {
    /// A Redis with nothing on disk. Panics, saying how to install it, when
    /// `redis-server` is not installed.
    pub fn start() -> io::Result<Self> {
        Self::start_with(RedisOptions::default())
    }

    pub fn start_with(options: RedisOptions) -> io::Result<Self> {
        Self::start_node(options, false)
    }

    fn start_node(options: RedisOptions, cluster: bool) -> io::Result<Self> {
        Self::start_as(options, cluster, None)
    }

    fn start_as(
        options: RedisOptions,
        cluster: bool,
        sentinel: Option<String>,
    ) -> io::Result<Self> {
        let mut last = None;
        for _ in 0..PORT_TRIES {
            let mut redis = RedisServer {
                port: free_port()?,
                bus_port: if cluster { Some(free_port()?) } else { None },
                tls_port: if options.tls {
                    Some(free_port()?)
                } else {
                    None
                },
                sentinel: sentinel.clone(),
                dir: temp_dir("redis")?,
                options: options.clone(),
                child: None,
                watchdog: None,
            };
            match redis.launch() {
                Ok(()) => return Ok(redis),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no free port")))
    }

    /// `redis://127.0.0.1:PORT`, or `redis://:PASSWORD@127.0.0.1:PORT` with
    /// [`RedisOptions::password`].
    pub fn url(&self) -> String {
        match &self.options.password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `rediss://127.0.0.1:TLS_PORT` (with the password, as [`url`](Self::url)), with
    /// [`RedisOptions::tls`]; clients verify it against [`ca_file`](Self::ca_file).
    pub fn tls_url(&self) -> String {
        let port = self
            .tls_port
            .expect("a Redis started with RedisOptions::tls");
        match &self.options.password {
            Some(password) => format!("rediss://:{password}@127.0.0.1:{port}"),
            None => format!("rediss://127.0.0.1:{port}"),
        }
    }

    /// The certificate (PEM) of the CA that signed its TLS certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join(tls::CA)
    }

    /// Its process id while it runs; `None` once stopped.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Its directory (data, `redis.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops it gracefully (SIGTERM, by PID) and waits for it to exit; its port then
    /// refuses connections. Does nothing if it is stopped.
    pub fn stop(&mut self) -> io::Result<()> {
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child, Duration::from_secs(10))?;
        }
        call_off(self.watchdog.take());
        Ok(())
    }

    /// Starts it again on the same port and directory (stopping it first if it
    /// runs), and waits until it answers `PING`. With [`RedisOptions::persistence`]
    /// it comes back with its data; without, empty.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop()?;
        // The port was ours a moment ago; another process may take it meanwhile, and
        // then the test should fail saying so.
        self.launch()
    }

    /// `INFO section` (`server`, `memory`, `commandstats`, …), as Redis writes it.
    pub fn info(&self, section: &str) -> io::Result<String> {
        text(self.command(&["INFO", section])?)
    }

    /// Sends one command and reads its reply (a Redis error is `Ok(Reply::Error)`).
    pub fn command(&self, args: &[&str]) -> io::Result<Reply> {
        resp::command_as(self.port, self.options.password.as_deref(), args)
    }

    /// Spawns redis-server on `self.port` and waits until it answers `PING`, as
    /// itself (its `process_id`, not some other process that took the port).
    fn launch(&mut self) -> io::Result<()> {
        let log = self.dir.join("redis.log");
        let mut cmd = Command::new("redis-server");
        if let Some(conf) = &self.sentinel {
            let file = self.dir.join("sentinel.conf");
            if !file.exists() {
                std::fs::write(&file, conf)?;
            }
            cmd.arg(&file).arg("--sentinel");
        }
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(&log)
            .args(["--daemonize", "no", "--save", ""]);
        cmd.args(if self.options.persistence {
            ["--appendonly", "yes", "--appendfsync", "always"]
        } else {
            ["--appendonly", "no", "--appendfsync", "no"]
        });
        if let Some(password) = &self.options.password {
            cmd.args(["--requirepass", password]);
        }
        if let Some(tls_port) = self.tls_port {
            tls::certificates(&self.dir)?;
            cmd.args(["--tls-port", &tls_port.to_string()])
                .arg("--tls-cert-file")
                .arg(self.dir.join(tls::CERTIFICATE))
                .arg("--tls-key-file")
                .arg(self.dir.join(tls::KEY))
                .arg("--tls-ca-cert-file")
                .arg(self.ca_file())
                .args(["--tls-auth-clients", "no"]);
        }
        if let Some(bus) = self.bus_port {
            cmd.args(["--cluster-enabled", "yes"])
                .args(["--cluster-config-file", "nodes.conf"])
                .args(["--cluster-node-timeout", "2000"])
                .args(["--cluster-port", &bus.to_string()]);
        }
        cmd.args(&self.options.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) if e.kind() == io::ErrorKind::NotFound => panic!("{NOT_INSTALLED}"),
            Err(e) => return Err(e),
        };
        let pid = child.id();
        self.child = Some(child);
        // If this fails, the Redis is ours already, and dropping `self` kills it.
        self.watchdog = Some(watchdog(pid)?);
        let child = self.child.as_mut().expect("just set");
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(status) = child.try_wait()? {
                self.child = None;
                call_off(self.watchdog.take());
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                let kind = if log.contains("Address already in use") {
                    io::ErrorKind::AddrInUse
                } else {
                    io::ErrorKind::Other
                };
                return Err(io::Error::new(
                    kind,
                    format!(
                        "redis-server on port {} exited ({status}):\n{log}",
                        self.port
                    ),
                ));
            }
            let password = self.options.password.as_deref();
            if let Ok(Reply::Status(pong)) = resp::command_as(self.port, password, &["PING"]) {
                if pong == "PONG" {
                    break;
                }
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                self.child = None;
                call_off(self.watchdog.take());
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("redis-server on port {} did not answer PING", self.port),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let pid = child.id();
        let server = self.info("server")?;
        if field(&server, "process_id") != Some(pid.to_string().as_str()) {
            self.stop()?;
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("another Redis answers on port {}", self.port),
            ));
        }
        Ok(())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        call_off(self.watchdog.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis Cluster of masters, no replicas, every slot assigned. Every node is killed
/// when it is dropped.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts `masters` (at least 3, as `redis-cli --cluster create` requires)
    /// cluster-enabled nodes, joins them with `redis-cli --cluster create`, and waits
    /// until every node reports `cluster_state:ok` and knows every other.
    pub fn start(masters: usize) -> io::Result<Self> {
        if masters < 3 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a Redis Cluster needs at least 3 masters",
            ));
        }
        let nodes = (0..masters)
            .map(|_| RedisServer::start_node(RedisOptions::default(), true))
            .collect::<io::Result<Vec<_>>>()?;
        let cluster = RedisCluster { nodes };
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for n in &cluster.nodes {
            create.arg(format!("127.0.0.1:{}", n.port));
        }
        let out = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => panic!("redis-cli: {NOT_INSTALLED}"),
                _ => e,
            })?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "redis-cli --cluster create failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let deadline = Instant::now() + READY_WITHIN;
        for n in &cluster.nodes {
            loop {
                let info = text(n.command(&["CLUSTER", "INFO"])?)?;
                let known = field(&info, "cluster_known_nodes") == Some(&masters.to_string());
                if field(&info, "cluster_state") == Some("ok") && known {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("node {} never reached cluster_state:ok:\n{info}", n.port),
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(cluster)
    }

    /// `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,…`: every node, as seeds.
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis+cluster://{}", seeds.join(","))
    }

    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }
}

/// `value` of a `name:value` line of INFO-style text.
pub(crate) fn field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines().find_map(|l| {
        l.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(str::trim_end)
    })
}

fn text(reply: Reply) -> io::Result<String> {
    match reply {
        Reply::Bulk(Some(_)) | Reply::Status(_) => Ok(reply.text().unwrap_or_default()),
        other => Err(io::Error::other(format!("unexpected reply {other:?}"))),
    }
}

/// A primary Redis, its replicas, and the Redis Sentinels that watch it under
/// [`SERVICE`](Self::SERVICE), each a [`RedisServer`] (killed when dropped). Failovers
/// are quick: a Sentinel holds a primary down after 1 s without an answer.
pub struct RedisSentinels {
    /// The data nodes, the first one the primary at start.
    nodes: Vec<RedisServer>,
    sentinels: Vec<RedisServer>,
    /// Which Sentinels are stopped (`SIGSTOP`): asked nothing until resumed.
    paused: Vec<bool>,
    /// The data nodes' `requirepass`, if any.
    password: Option<String>,
}

impl RedisSentinels {
    /// The name the Sentinels know the primary by.
    pub const SERVICE: &'static str = "deviceflow";

    /// Starts a primary, `replicas` replicas of it (each synced), and `sentinels`
    /// Sentinels (at least one) with a majority quorum, and waits until every
    /// Sentinel knows every replica and every other Sentinel: from then on, a
    /// primary that stops is replaced.
    pub fn start(replicas: usize, sentinels: usize) -> io::Result<Self> {
        Self::start_with(replicas, sentinels, None, false)
    }

    /// [`start`](Self::start), every data node asking for `password` (the Sentinels
    /// and the replicas given it), and the Sentinels too when `sentinels_ask` (each
    /// given it for the others).
    pub fn start_with(
        replicas: usize,
        sentinels: usize,
        password: Option<&str>,
        sentinels_ask: bool,
    ) -> io::Result<Self> {
        if sentinels == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "at least one Sentinel",
            ));
        }
        // A first sync (each replica's, and after a failover) without Redis's 5 s wait.
        let mut args = vec!["--repl-diskless-sync-delay".to_owned(), "0".to_owned()];
        if let Some(password) = password {
            args.extend(["--masterauth".to_owned(), password.to_owned()]);
        }
        let data = RedisOptions {
            args,
            password: password.map(str::to_owned),
            ..RedisOptions::default()
        };
        let mut nodes = vec![RedisServer::start_with(data.clone())?];
        let primary = nodes[0].port.to_string();
        for _ in 0..replicas {
            let replica = RedisServer::start_with(data.clone())?;
            replica.command(&["REPLICAOF", "127.0.0.1", &primary])?;
            nodes.push(replica);
        }
        for replica in &nodes[1..] {
            wait_for(|| {
                let info = replica.info("replication")?;
                Ok((field(&info, "master_link_status") == Some("up"))
                    .then_some(())
                    .ok_or(info))
            })?;
        }
        let quorum = sentinels / 2 + 1;
        let service = Self::SERVICE;
        let mut conf = format!(
            "sentinel monitor {service} 127.0.0.1 {primary} {quorum}\n\
             sentinel down-after-milliseconds {service} 1000\n\
             sentinel failover-timeout {service} 4000\n\
             sentinel parallel-syncs {service} 1\n"
        );
        let mut asked = RedisOptions::default();
        if let Some(password) = password {
            conf.push_str(&format!("sentinel auth-pass {service} {password}\n"));
            if sentinels_ask {
                conf.push_str(&format!("sentinel sentinel-pass {password}\n"));
                asked.password = Some(password.to_owned());
            }
        }
        let sentinels = (0..sentinels)
            .map(|_| RedisServer::start_as(asked.clone(), false, Some(conf.clone())))
            .collect::<io::Result<Vec<_>>>()?;
        let set = RedisSentinels {
            nodes,
            paused: vec![false; sentinels.len()],
            sentinels,
            password: password.map(str::to_owned),
        };
        let others = (set.sentinels.len() - 1).to_string();
        for sentinel in &set.sentinels {
            wait_for(|| {
                let master = sentinel.command(&["SENTINEL", "MASTER", service])?;
                let known = |name: &str| master.field(name).unwrap_or_default();
                let ready = known("num-slaves") == replicas.to_string()
                    && known("num-other-sentinels") == others;
                Ok(ready.then_some(()).ok_or(format!("{master:?}")))
            })?;
        }
        Ok(set)
    }

    /// `redis+sentinel://127.0.0.1:S1,127.0.0.1:S2,…/deviceflow`: every Sentinel; with
    /// a password, `redis+sentinel://:PASSWORD@…`.
    pub fn url(&self) -> String {
        let sentinels: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        let credentials = match &self.password {
            Some(password) => format!(":{password}@"),
            None => String::new(),
        };
        format!(
            "redis+sentinel://{credentials}{}/{}",
            sentinels.join(","),
            Self::SERVICE
        )
    }

    /// The data nodes: the primary at start first, then its replicas.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// The data nodes, to stop or restart one.
    pub fn nodes_mut(&mut self) -> &mut [RedisServer] {
        &mut self.nodes
    }

    pub fn sentinels(&self) -> &[RedisServer] {
        &self.sentinels
    }

    /// Stops Sentinel `i` (`SIGSTOP`): its port takes connections and answers
    /// nothing, as a frozen or cut-off host's would. Dropping the set still kills it.
    pub fn pause_sentinel(&mut self, i: usize) -> io::Result<()> {
        self.signal_sentinel(i, "-STOP")?;
        self.paused[i] = true;
        Ok(())
    }

    /// Lets Sentinel `i` run again (`SIGCONT`).
    pub fn resume_sentinel(&mut self, i: usize) -> io::Result<()> {
        self.signal_sentinel(i, "-CONT")?;
        self.paused[i] = false;
        Ok(())
    }

    fn signal_sentinel(&self, i: usize, signal: &str) -> io::Result<()> {
        let pid = self.sentinels[i]
            .pid()
            .ok_or_else(|| io::Error::other(format!("Sentinel {i} is not running")))?;
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!("kill {signal} {pid}: {status}")))
        }
    }

    /// The Sentinels that are not paused.
    fn awake(&self) -> impl Iterator<Item = &RedisServer> {
        self.sentinels
            .iter()
            .zip(&self.paused)
            .filter(|(_, paused)| !**paused)
            .map(|(s, _)| s)
    }

    /// The port of the primary the first Sentinel not paused names now.
    pub fn primary_port(&self) -> io::Result<u16> {
        let sentinel = self
            .awake()
            .next()
            .ok_or_else(|| io::Error::other("every Sentinel is paused"))?;
        let reply = sentinel.command(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", Self::SERVICE])?;
        match reply {
            Reply::Array(Some(parts)) if parts.len() == 2 => parts[1]
                .text()
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| io::Error::other(format!("no port in {parts:?}"))),
            other => Err(io::Error::other(format!("no primary named: {other:?}"))),
        }
    }

    /// Waits (up to 30 s) until every Sentinel not paused names a primary other than
    /// the node on port `old`, that node answers `ROLE` as a primary, and every other
    /// node that runs is its replica, its link up; the new primary's port.
    pub fn wait_for_a_primary_other_than(&self, old: u16) -> io::Result<u16> {
        let named = self.wait_until_named_other_than(old)?;
        for replica in self
            .nodes
            .iter()
            .filter(|n| n.port != named && n.pid().is_some())
        {
            wait_for_within(Duration::from_secs(30), || {
                let info = replica.info("replication")?;
                let linked = field(&info, "master_port") == Some(named.to_string().as_str())
                    && field(&info, "master_link_status") == Some("up");
                Ok(linked.then_some(()).ok_or(info))
            })?;
        }
        Ok(named)
    }

    /// Waits (up to 30 s) until every Sentinel not paused names a primary other than
    /// the node on port `old`, and that node answers `ROLE` as a primary; its port.
    /// The old primary may still take writes then: after `SENTINEL FAILOVER` it is
    /// made a replica seconds later.
    pub fn wait_until_named_other_than(&self, old: u16) -> io::Result<u16> {
        let mut named = 0;
        for sentinel in self.awake() {
            wait_for_within(Duration::from_secs(30), || {
                let reply =
                    sentinel.command(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", Self::SERVICE])?;
                let port = match &reply {
                    Reply::Array(Some(parts)) if parts.len() == 2 => {
                        parts[1].text().and_then(|p| p.parse::<u16>().ok())
                    }
                    _ => None,
                };
                match port {
                    Some(p) if p != old => {
                        named = p;
                        Ok(Ok(()))
                    }
                    _ => Ok(Err(format!("still {reply:?}"))),
                }
            })?;
        }
        let node = self.nodes.iter().find(|n| n.port == named).ok_or_else(|| {
            io::Error::other(format!(
                "the Sentinels name port {named}, no node of this set"
            ))
        })?;
        wait_for_within(Duration::from_secs(30), || {
            let role = node.command(&["ROLE"])?;
            Ok(match &role {
                Reply::Array(Some(parts))
                    if parts.first().and_then(Reply::text).as_deref() == Some("master") =>
                {
                    Ok(())
                }
                _ => Err(format!("{role:?}")),
            })
        })?;
        Ok(named)
    }
}

/// Polls `ready` (every 50 ms) until it says `Ok(())`, for up to [`READY_WITHIN`];
/// the last thing it said otherwise is the error.
fn wait_for(ready: impl FnMut() -> io::Result<Result<(), String>>) -> io::Result<()> {
    wait_for_within(READY_WITHIN, ready)
}

fn wait_for_within(
    within: Duration,
    mut ready: impl FnMut() -> io::Result<Result<(), String>>,
) -> io::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        let said = ready()?;
        match said {
            Ok(()) => return Ok(()),
            Err(said) if Instant::now() >= deadline => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("not ready in {within:?}: {said}"),
                ))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_fields_are_found_by_exact_name() {
        let info = "# Memory\r\nused_memory:100\r\nused_memory_rss:200\r\n";
        assert_eq!(field(info, "used_memory"), Some("100"));
        assert_eq!(field(info, "used_memory_rss"), Some("200"));
        assert_eq!(field(info, "used"), None);
    }
}
