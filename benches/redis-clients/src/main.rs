//! The Redis store's poll, alone, against one Redis: read a device code's record
//! (`df:s:<n>`, 66 binary bytes), change it, and write it back only if nobody wrote it
//! in between; a lost race reads and writes again. Three ways to do it:
//!
//! - `cas-rs`: redis-rs, `GET` then the server's compare-and-set script by `EVALSHA`
//!   (`Script::invoke_async`), every task on ONE multiplexed connection, as the server
//!   does (conn.rs);
//! - `watch-rs`: redis-rs, `[WATCH key, GET key]` in one pipeline, then
//!   `[MULTI, SET key new KEEPTTL, EXEC]` in one atomic pipeline (`pipe().atomic()`);
//!   a nil EXEC is a lost race. WATCH is per connection, so each task has its OWN
//!   `MultiplexedConnection` (64 tasks: 64 connections). `redis::transaction` is the
//!   crate's helper for this, but it is for blocking connections only and costs two
//!   more round trips (WATCH alone, and an UNWATCH after EXEC, which EXEC already
//!   does); this is the same loop, pipelined;
//! - `cas-fred`: fred, `GET` then `EVALSHA` of the same script, one client (one
//!   connection) shared by all tasks.
//!
//! Usage: redis-clients-bench fill <port>
//!        redis-clients-bench header
//!        redis-clients-bench <cas-rs|watch-rs|cas-fred> <port> <tasks>[x1] <secs> <warm-up secs>
//! `<tasks>` tasks poll distinct keys (each its own slice of the 100,000); `<tasks>x1`:
//! all of them poll key 0, racing. REDIS_PID names redis-server, for its CPU time.
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const NKEYS: usize = 100_000;
/// Each request's limit, the server's `CALL_TIMEOUT` (redis-rs's default is 500 ms,
/// fred's none); a request past it is an error (the `err` column).
const CALL_TIMEOUT: Duration = Duration::from_secs(1);

/// A redis-rs multiplexed connection with the server's timeout.
async fn rs_conn(client: &redis::Client) -> redis::aio::MultiplexedConnection {
    let config = redis::AsyncConnectionConfig::new()
        .set_response_timeout(Some(CALL_TIMEOUT))
        .set_connection_timeout(Some(CALL_TIMEOUT * 5));
    client.get_multiplexed_async_connection_with_config(&config).await.unwrap()
}
const VLEN: usize = 66;
/// conn.rs's `CAS`, verbatim.
const CAS: &str = r"
local current = redis.call('GET', KEYS[1])
if (current == false and ARGV[1] == '') or current == ARGV[1] then
  if ARGV[2] == '' then
    redis.call('DEL', KEYS[1])
  elseif ARGV[3] == '0' then
    redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  else
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  end
  return 1
end
return 0
";

fn key(n: usize) -> String {
    format!("df:s:{n}")
}

fn init_value(n: usize) -> Vec<u8> {
    (0..VLEN).map(|i| ((n.wrapping_mul(31) + i * 7) % 256) as u8).collect()
}

/// The "state machine": every poll changes the record (as a poll that moves
/// `last_poll` does), so every poll writes.
fn next_value(cur: &[u8]) -> Vec<u8> {
    let mut v = if cur.is_empty() { vec![0u8; VLEN] } else { cur.to_vec() };
    let n = u64::from_le_bytes(v[..8].try_into().unwrap()).wrapping_add(1);
    v[..8].copy_from_slice(&n.to_le_bytes());
    v
}

fn clk_tck() -> u64 {
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) as u64 }
}

/// This process's CPU time (user + system, all threads), µs.
fn self_cpu_us() -> u64 {
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
        tv(ru.ru_utime) + tv(ru.ru_stime)
    }
}

/// The whole machine's busy time (user nice system irq softirq steal), µs, /proc/stat.
fn machine_busy_us() -> u64 {
    let st = std::fs::read_to_string("/proc/stat").unwrap();
    let f: Vec<u64> = st.lines().next().unwrap().split_whitespace().skip(1)
        .map(|x| x.parse().unwrap()).collect();
    (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) * 1_000_000 / clk_tck()
}

/// utime + stime of `pid` (all its threads), µs, /proc/<pid>/stat.
fn pid_cpu_us(pid: &str) -> u64 {
    let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some(i) = st.rfind(')') else { return 0 };
    let f: Vec<&str> = st[i + 2..].split_whitespace().collect();
    (f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()) * 1_000_000 / clk_tck()
}

/// `calls` of every command in INFO commandstats.
async fn commandstats(c: &mut redis::aio::MultiplexedConnection) -> BTreeMap<String, u64> {
    let info: String = redis::cmd("INFO").arg("commandstats").query_async(c).await.unwrap();
    info.lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest.split(',').find_map(|kv| kv.strip_prefix("calls="))?;
            Some((name.to_owned(), calls.parse().ok()?))
        })
        .collect()
}

/// One poll's outcome: written, or lost the race (the key changed since it was read).
type Attempt = Result<bool, String>;

/// One task's way to talk to Redis.
trait Poller: Send + 'static {
    /// The task's own: a clone of a shared connection, or a fresh one.
    fn for_task(&self) -> impl std::future::Future<Output = Self> + Send
    where
        Self: Sized;
    /// Reads `k`, writes its next value if unchanged; counts round trips in `rt`.
    fn attempt(&mut self, k: &str, rt: &mut u64) -> impl std::future::Future<Output = Attempt> + Send;
}

#[derive(Clone)]
struct CasRs {
    conn: redis::aio::MultiplexedConnection,
    script: Arc<redis::Script>,
}

impl Poller for CasRs {
    async fn for_task(&self) -> Self {
        self.clone()
    }
    async fn attempt(&mut self, k: &str, rt: &mut u64) -> Attempt {
        let cur: Option<Vec<u8>> =
            redis::cmd("GET").arg(k).query_async(&mut self.conn).await.map_err(|e| e.to_string())?;
        *rt += 1;
        let cur = cur.unwrap_or_default();
        let new = next_value(&cur);
        // EVALSHA (and SCRIPT LOAD + EVALSHA again on NOSCRIPT, which the warm-up absorbs)
        let written: i64 = self.script.key(k).arg(&cur[..]).arg(&new[..]).arg("0")
            .invoke_async(&mut self.conn).await.map_err(|e| e.to_string())?;
        *rt += 1;
        Ok(written == 1)
    }
}

struct WatchRs {
    client: redis::Client,
    conn: Option<redis::aio::MultiplexedConnection>,
}

impl Poller for WatchRs {
    async fn for_task(&self) -> Self {
        let conn = rs_conn(&self.client).await;
        WatchRs { client: self.client.clone(), conn: Some(conn) }
    }
    async fn attempt(&mut self, k: &str, rt: &mut u64) -> Attempt {
        let conn = self.conn.as_mut().unwrap();
        let (cur,): (Option<Vec<u8>>,) = redis::pipe()
            .cmd("WATCH").arg(k).ignore()
            .cmd("GET").arg(k)
            .query_async(conn).await.map_err(|e| e.to_string())?;
        *rt += 1;
        let cur = cur.unwrap_or_default();
        let new = next_value(&cur);
        // MULTI, SET, EXEC; EXEC answers nil when the watched key changed (and unwatches
        // either way, so no UNWATCH follows).
        let exec: redis::Value = redis::pipe().atomic()
            .cmd("SET").arg(k).arg(&new[..]).arg("KEEPTTL")
            .query_async(conn).await.map_err(|e| e.to_string())?;
        *rt += 1;
        match exec {
            redis::Value::Nil => Ok(false),
            redis::Value::Array(_) => Ok(true),
            other => Err(format!("EXEC answered {other:?}")),
        }
    }
}

#[derive(Clone)]
struct CasFred {
    c: fred::clients::Client,
    sha: Arc<str>,
}

impl Poller for CasFred {
    async fn for_task(&self) -> Self {
        self.clone()
    }
    async fn attempt(&mut self, k: &str, rt: &mut u64) -> Attempt {
        use fred::bytes::Bytes;
        use fred::prelude::{KeysInterface, LuaInterface, Value};
        let cur: Option<Bytes> = self.c.get(k).await.map_err(|e| e.to_string())?;
        *rt += 1;
        let cur = cur.unwrap_or_default();
        let new = Bytes::from(next_value(&cur));
        let args: Vec<Value> = vec![Value::Bytes(cur), Value::Bytes(new), Value::from("0")];
        let written: i64 = self.c.evalsha(&*self.sha, k, args).await.map_err(|e| e.to_string())?;
        *rt += 1;
        Ok(written == 1)
    }
}

#[derive(Default)]
struct Counters {
    polls: AtomicU64,
    retries: AtomicU64,
    errors: AtomicU64,
    round_trips: AtomicU64,
    /// Successful writes, timed or not: on one key, what its counter must advance by.
    writes: AtomicU64,
}

/// The counter in the record's first 8 bytes (`next_value` adds one per write).
async fn counter(c: &mut redis::aio::MultiplexedConnection, k: &str) -> u64 {
    let v: Vec<u8> = redis::cmd("GET").arg(k).query_async(c).await.unwrap();
    u64::from_le_bytes(v[..8].try_into().unwrap())
}

struct Row {
    polls_per_s: f64,
    hist: Histogram<u64>,
    client_cpu_us: f64,
    redis_cpu_us: f64,
    /// Round trips per poll, from commandstats.
    rt_stats: f64,
    /// Round trips per poll, counted by the client (a cross-check).
    rt_client: f64,
    retries: f64,
    errors: u64,
    calls: String,
    other_cores: f64,
}

/// One run of `tasks` tasks polling with `proto` for `warm` seconds, then `secs`
/// measured: its row of the table.
async fn drive<P: Poller>(
    proto: P, mode: &str, tasks: usize, one_key: bool, secs: u64, warm: u64,
    stats: &mut redis::aio::MultiplexedConnection,
) -> Row {
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(Counters::default());
    let start = counter(stats, &key(0)).await;
    let label = format!("{mode} {tasks}{}", if one_key { "x1" } else { "" });
    let mut handles = Vec::with_capacity(tasks);
    for t in 0..tasks {
        let p = proto.for_task().await;
        let keys: Vec<String> =
            if one_key { vec![key(0)] } else { (t..NKEYS).step_by(tasks).map(key).collect() };
        let (measuring, stop, counts) = (measuring.clone(), stop.clone(), counts.clone());
        handles.push(tokio::spawn(poll_keys(p, keys, measuring, stop, counts, label.clone())));
    }
    tokio::time::sleep(Duration::from_secs(warm)).await;
    let window = measure(stats, &measuring, secs).await;
    stop.store(true, Ordering::SeqCst);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    for h in handles {
        hist.add(h.await.unwrap()).unwrap();
    }
    if one_key {
        // Every write that won must show: no lost update, no double write.
        let advanced = counter(stats, &key(0)).await.wrapping_sub(start);
        let writes = counts.writes.load(Ordering::SeqCst);
        let verdict = if advanced == writes { "ok" } else { "MISMATCH (an error's write may have landed)" };
        eprintln!("{label}: key 0 advanced by {advanced}, tasks saw {writes} writes win: {verdict}");
    }
    row(mode, &window, &counts, hist)
}

/// One task: polls its `keys` in turn until `stop`, counting into `counts` while
/// `measuring`; its latencies (measured polls that wrote).
async fn poll_keys<P: Poller>(
    mut p: P, keys: Vec<String>, measuring: Arc<AtomicBool>, stop: Arc<AtomicBool>,
    counts: Arc<Counters>, label: String,
) -> Histogram<u64> {
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let k = &keys[i];
        i = (i + 1) % keys.len();
        let t0 = Instant::now();
        let (mut lost, mut rt) = (0u64, 0u64);
        let r = loop {
            match p.attempt(k, &mut rt).await {
                Ok(true) => break Ok(()),
                Ok(false) => lost += 1,
                Err(e) => break Err(e),
            }
        };
        let us = t0.elapsed().as_micros() as u64;
        if r.is_ok() {
            counts.writes.fetch_add(1, Ordering::Relaxed);
        }
        if measuring.load(Ordering::Relaxed) {
            counts.round_trips.fetch_add(rt, Ordering::Relaxed);
            counts.retries.fetch_add(lost, Ordering::Relaxed);
            match r {
                Ok(()) => {
                    h.record(us.max(1)).unwrap();
                    counts.polls.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    if counts.errors.fetch_add(1, Ordering::Relaxed) == 0 {
                        eprintln!("{label}: first error: {e}");
                    }
                }
            }
        }
    }
    h
}

/// What the measured window saw: its length, and Redis' commandstats and the CPU
/// counters (machine busy, Redis', ours) at either end.
struct Window {
    el: f64,
    cs0: BTreeMap<String, u64>,
    cs1: BTreeMap<String, u64>,
    m: (u64, u64),
    r: (u64, u64),
    c: (u64, u64),
}

/// Opens the window (`measuring`) for `secs` seconds, reading the counters at either end.
async fn measure(stats: &mut redis::aio::MultiplexedConnection, measuring: &AtomicBool, secs: u64) -> Window {
    let rpid = std::env::var("REDIS_PID").unwrap_or_default();
    let cs0 = commandstats(stats).await;
    let (m0, r0, c0) = (machine_busy_us(), pid_cpu_us(&rpid), self_cpu_us());
    let t0 = Instant::now();
    measuring.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(secs)).await;
    measuring.store(false, Ordering::SeqCst);
    let el = t0.elapsed().as_secs_f64();
    let (m1, r1, c1) = (machine_busy_us(), pid_cpu_us(&rpid), self_cpu_us());
    let cs1 = commandstats(stats).await;
    Window { el, cs0, cs1, m: (m0, m1), r: (r0, r1), c: (c0, c1) }
}

/// The table's row for a window: per poll, from the tasks' counts and commandstats.
fn row(mode: &str, w: &Window, counts: &Counters, hist: Histogram<u64>) -> Row {
    let (el, cs0, cs1) = (w.el, &w.cs0, &w.cs1);
    let ((m0, m1), (r0, r1), (c0, c1)) = (w.m, w.r, w.c);
    let polls = counts.polls.load(Ordering::SeqCst).max(1) as f64;
    let d = |c: &str| (cs1.get(c).copied().unwrap_or(0) - cs0.get(c).copied().unwrap_or(0)) as f64;
    let mut calls: Vec<String> = cs1.keys()
        .filter(|c| !matches!(c.as_str(), "info" | "ping" | "hello" | "client|setinfo" | "client|setname"))
        .filter(|c| d(c) > 0.0)
        .map(|c| format!("{c} {:.2}", d(c) / polls))
        .collect();
    calls.sort();
    // Round trips from commandstats, which counts a script's own commands too (its GET,
    // and its SET when it writes). CAS script: each attempt sends GET, then EVALSHA,
    // whose script runs one GET, so round trips = (calls(get) - calls(evalsha)) +
    // calls(evalsha) = calls(get). WATCH/MULTI: each attempt is one [WATCH, GET] and one
    // [MULTI, SET, EXEC], so round trips = calls(watch) + calls(exec).
    let rt_stats = if mode == "watch-rs" { d("watch") + d("exec") } else { d("get") } / polls;
    let other = (m1 - m0) as f64 - (r1 - r0) as f64 - (c1 - c0) as f64;
    Row {
        polls_per_s: polls / el,
        hist,
        client_cpu_us: (c1 - c0) as f64 / polls,
        redis_cpu_us: (r1 - r0) as f64 / polls,
        rt_stats,
        rt_client: counts.round_trips.load(Ordering::SeqCst) as f64 / polls,
        retries: counts.retries.load(Ordering::SeqCst) as f64 / polls,
        errors: counts.errors.load(Ordering::SeqCst),
        calls: calls.join(", "),
        other_cores: other.max(0.0) / (el * 1e6),
    }
}

const HEADER: &str = "\
| mode                  | tasks         | polls/s | p50 µs | p99 µs | client CPU µs/poll | Redis CPU µs/poll | RT/poll | retries/poll | err | other load (cores) | Redis calls/poll (commandstats) |
|-----------------------|---------------|--------:|-------:|-------:|-------------------:|------------------:|--------:|-------------:|----:|-------------------:|---------------------------------|";

fn print_row(label: &str, tasks: usize, one_key: bool, r: &Row) {
    let shape = if one_key { format!("{tasks} on 1 key") } else { format!("{tasks} distinct") };
    // "!" when the client's own count of round trips disagrees with commandstats'
    // (beyond 2 %: a poll in flight at either end of the window counts in one, not the other)
    let flag = if (r.rt_stats - r.rt_client).abs() > 0.02 * r.rt_stats { format!(" !{:.2}", r.rt_client) } else { String::new() };
    println!(
        "| {:<21} | {:>13} | {:>7.0} | {:>6} | {:>6} | {:>18.1} | {:>17.1} | {:>7} | {:>12.2} | {:>3} | {:>18.2} | {} |",
        label, shape, r.polls_per_s, r.hist.value_at_quantile(0.50), r.hist.value_at_quantile(0.99),
        r.client_cpu_us, r.redis_cpu_us, format!("{:.2}{flag}", r.rt_stats), r.retries, r.errors,
        r.other_cores, r.calls
    );
}

#[tokio::main]
async fn main() {
    let a: Vec<String> = std::env::args().collect();
    let mode = a.get(1).map(String::as_str).unwrap_or("");
    if mode == "header" {
        println!("{HEADER}");
        return;
    }
    let port: u16 = a[2].parse().unwrap();
    let url = format!("redis://127.0.0.1:{port}/");
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut stats = client.get_multiplexed_async_connection().await.unwrap();
    if mode == "fill" {
        for chunk in (0..NKEYS).collect::<Vec<_>>().chunks(1000) {
            let mut p = redis::pipe();
            for &n in chunk {
                p.cmd("SET").arg(key(n)).arg(init_value(n)).arg("PX").arg(3_600_000).ignore();
            }
            let () = p.query_async(&mut stats).await.unwrap();
        }
        let n: i64 = redis::cmd("DBSIZE").query_async(&mut stats).await.unwrap();
        eprintln!("filled: {n} keys");
        return;
    }
    let (tasks, one_key) = match a[3].strip_suffix("x1") {
        Some(t) => (t.parse().unwrap(), true),
        None => (a[3].parse().unwrap(), false),
    };
    let secs: u64 = a[4].parse().unwrap();
    let warm: u64 = a[5].parse().unwrap();
    let (label, row) = match mode {
        "cas-rs" => {
            let conn = rs_conn(&client).await;
            let script = Arc::new(redis::Script::new(CAS));
            let p = CasRs { conn, script };
            ("cas-script redis-rs", drive(p, mode, tasks, one_key, secs, warm, &mut stats).await)
        }
        "watch-rs" => {
            let p = WatchRs { client: client.clone(), conn: None };
            let label = "watch-multi redis-rs";
            (label, drive(p, mode, tasks, one_key, secs, warm, &mut stats).await)
        }
        "cas-fred" => {
            use fred::prelude::*;
            let c = Builder::from_config(Config::from_url(&url).unwrap())
                .with_performance_config(|p| p.default_command_timeout = CALL_TIMEOUT)
                .build()
                .unwrap();
            c.init().await.unwrap();
            let sha: String = c.script_load(CAS).await.unwrap();
            ("cas-script fred", drive(CasFred { c, sha: sha.into() }, mode, tasks, one_key, secs, warm, &mut stats).await)
        }
        _ => panic!("mode: fill, header, cas-rs, watch-rs or cas-fred"),
    };
    print_row(label, tasks, one_key, &row);
}
