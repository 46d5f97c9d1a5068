//! The generator's resources: the open-file limit, raised at start from the soft to
//! the hard limit (each connection is a file descriptor) and reported, so a run that
//! runs short says so instead of failing devices silently; and the memory a fleet
//! needs, set against the limits on it before the run, so a fleet that cannot fit is
//! refused in a line instead of aborting mid-run ("memory allocation of … failed",
//! exit 134, no report).

use std::time::Duration;

use nix::sys::resource::{getrlimit, getrusage, setrlimit, Resource, UsageWho};
use serde::{Deserialize, Serialize};

/// The open-file limit before and after raising it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdLimit {
    pub soft_before: u64,
    pub soft: u64,
    pub hard: u64,
}

impl std::fmt::Display for FdLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.soft_before == self.soft {
            write!(
                f,
                "open files: soft limit {} (hard {})",
                self.soft, self.hard
            )
        } else {
            write!(
                f,
                "open files: soft limit raised from {} to the hard limit {}",
                self.soft_before, self.soft
            )
        }
    }
}

/// Raises the soft open-file limit to the hard one. Errors are reported in the
/// returned limits (soft unchanged), never fatal.
pub fn raise_fd_limit() -> FdLimit {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return FdLimit::default();
    };
    let raised = soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok();
    FdLimit {
        soft_before: soft,
        soft: if raised { hard } else { soft },
        hard,
    }
}

/// What a device costs the generator in memory: its record, codes, timers and share
/// of the lane's books. The 1M-device runs measured 222 to 230 bytes a device above
/// the RSS at start (README "Scale", `loadgen/bench.sh`); the highest is taken.
pub const BYTES_PER_DEVICE: u64 = 230;

/// What a run costs above the RSS at start whatever its size: the wheels, the pools'
/// buffers, goose, the statistics. Measured with a release build (one lane, 512
/// connections, -t 6): 8 MB for 2 devices, 22 MB for 10,000, 35 MB for 100,000.
pub const FIXED_BYTES: u64 = 16_000_000;

/// Address space the process maps beyond its RSS: its code, thread stacks, the
/// allocator's segments only partly touched. Measured with a release build under
/// `ulimit -v`: 2 devices need 50 to 70 MB of it at an RSS of about 37 MB; at 122.9
/// MB, 200,000 devices (peak RSS 70 MB) ran and 300,000 (about 88 MB) aborted. A
/// debug build maps more (its floor is about 125 MB).
pub const MAPPED_BEYOND_RSS: u64 = 40_000_000;

/// The memory a run of `devices` (those this process starts) adds to the process.
pub fn fleet_bytes(devices: u64) -> u64 {
    FIXED_BYTES.saturating_add(devices.saturating_mul(BYTES_PER_DEVICE))
}

/// A limit on this process's memory: what it is and the room it leaves the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryRoom {
    /// The limit in words, with its value: "the address-space limit (ulimit -v) of 122.9 MB".
    pub limit: String,
    /// Bytes the run may still add.
    pub room: u64,
    /// How to raise it.
    pub raise: &'static str,
}

/// The limits on this process's memory that can be read: the soft address-space
/// limit (RLIMIT_AS, `ulimit -v`), the cgroup's (v2 `memory.max`, v1
/// `memory.limit_in_bytes`, of the process's cgroup and those above it) and the
/// machine's available memory (MemAvailable). A limit that cannot be read is left
/// out: it refuses nothing.
pub fn memory_rooms() -> Vec<MemoryRoom> {
    let mut rooms = Vec::new();
    // Set against the RSS and what is mapped beyond it, not VmSize: mimalloc reserves
    // address space up front (1 GiB where nothing limits it, what fits under a limit)
    // and fills it as the fleet grows, so VmSize overstates what is used.
    if let Ok((soft, _)) = getrlimit(Resource::RLIMIT_AS) {
        if soft != nix::sys::resource::RLIM_INFINITY {
            let used = status_bytes("VmRSS:").unwrap_or(0) + MAPPED_BEYOND_RSS;
            rooms.push(MemoryRoom {
                limit: format!("the address-space limit (ulimit -v) of {}", mb_text(soft)),
                room: soft.saturating_sub(used),
                raise: "raise ulimit -v",
            });
        }
    }
    let read = |p: &str| std::fs::read_to_string(p).ok();
    if let Some(cgroups) = read("/proc/self/cgroup") {
        rooms.extend(cgroup_room(&cgroups, &|p| {
            read(&format!("/sys/fs/cgroup{p}"))
        }));
    }
    if let Some(available) = read("/proc/meminfo").as_deref().and_then(mem_available) {
        rooms.push(MemoryRoom {
            limit: format!(
                "the memory available on this machine (MemAvailable) of {}",
                mb_text(available)
            ),
            room: available,
            raise: "free memory on this machine",
        });
    }
    rooms
}

/// The tightest cgroup limit over this process (`cgroups`, /proc/self/cgroup's text),
/// its room being the limit less what the cgroup holds (page cache that can be
/// dropped, `inactive_file`, aside), its files read through `read` (a path under
/// /sys/fs/cgroup). cgroup v2's `memory.max` ("max": none) and v1's
/// `memory.limit_in_bytes` (a huge value: none), of the cgroup and each above it:
/// every one applies.
fn cgroup_room(cgroups: &str, read: &dyn Fn(&str) -> Option<String>) -> Option<MemoryRoom> {
    let mut best: Option<MemoryRoom> = None;
    for line in cgroups.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let (root, max, current, inactive) = if controllers.is_empty() {
            ("", "memory.max", "memory.current", "inactive_file ")
        } else if controllers.split(',').any(|c| c == "memory") {
            (
                "/memory",
                "memory.limit_in_bytes",
                "memory.usage_in_bytes",
                "total_inactive_file ",
            )
        } else {
            continue;
        };
        // "/" is the root, "": its files are /sys/fs/cgroup{root}/memory.max and so on.
        let mut dir = path.trim_end_matches('/').to_owned();
        loop {
            let file = |name: &str| read(&format!("{root}{dir}/{name}"));
            let limit = file(max).and_then(|t| t.trim().parse::<u64>().ok());
            // v1 says "no limit" with the largest page count, about 2^63.
            if let Some(limit) = limit.filter(|l| *l < 1 << 60) {
                let held = file(current)
                    .and_then(|t| t.trim().parse::<u64>().ok())
                    .unwrap_or(0);
                let cache = file("memory.stat")
                    .and_then(|t| {
                        t.lines()
                            .find_map(|l| l.strip_prefix(inactive)?.trim().parse::<u64>().ok())
                    })
                    .unwrap_or(0);
                let room = limit.saturating_sub(held.saturating_sub(cache));
                if best.as_ref().is_none_or(|b| room < b.room) {
                    best = Some(MemoryRoom {
                        limit: format!(
                            "the cgroup's memory limit (/sys/fs/cgroup{root}{dir}/{max}) of {}",
                            mb_text(limit)
                        ),
                        room,
                        raise:
                            "raise the cgroup's limit (a container's or a service's memory limit)",
                    });
                }
            }
            if dir.is_empty() {
                break;
            }
            dir.truncate(dir.rfind('/').unwrap_or(0));
        }
    }
    best
}

/// MemAvailable from /proc/meminfo's text, in bytes.
fn mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Why `devices` (those this process starts) cannot fit in the tightest of `rooms`,
/// in words with what to do, or `None` when they fit (or no limit could be read).
pub fn memory_shortfall(devices: u64, rooms: &[MemoryRoom]) -> Option<String> {
    let need = fleet_bytes(devices);
    let tightest = rooms.iter().min_by_key(|r| r.room)?;
    (need > tightest.room).then(|| {
        format!(
            "the {} devices this process would run need about {} of memory ({} bytes a device and {} for the run), but {} leaves the run about {}: run fewer devices (-u, or a shorter -t), split them over processes or machines with --shard i/n, or {}",
            deviceflow_reports::format::fmt_count(devices),
            mb_text(need),
            BYTES_PER_DEVICE,
            mb_text(FIXED_BYTES),
            tightest.limit,
            mb_text(tightest.room),
            tightest.raise
        )
    })
}

/// Bytes as MB (10^6), one decimal below 100.
fn mb_text(bytes: u64) -> String {
    let mb = bytes as f64 / 1e6;
    if mb < 100.0 {
        format!("{mb:.1} MB")
    } else {
        format!(
            "{} MB",
            deviceflow_reports::format::fmt_count(mb.round() as u64)
        )
    }
}

/// User + system CPU time of this process so far.
pub fn cpu_time() -> Duration {
    getrusage(UsageWho::RUSAGE_SELF).map_or(Duration::ZERO, |u| {
        let t = |tv: nix::sys::time::TimeVal| {
            Duration::from_secs(tv.tv_sec() as u64) + Duration::from_micros(tv.tv_usec() as u64)
        };
        t(u.user_time()) + t(u.system_time())
    })
}

/// How long this process's threads have waited for a CPU while runnable, in all:
/// Linux's run-queue wait, the second field of `/proc/self/task/*/schedstat` (ns),
/// summed. A generator starved of CPU (another process busy on its cores) sends on
/// time yet reads its answers late, which its lateness cannot see and the server's
/// time would take in; this can. `None` where there is no schedstat (not Linux, or
/// a kernel without it). A thread that ended takes its share with it: read as
/// differences, saturating.
pub fn run_queue_wait() -> Option<Duration> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    let mut ns: Option<u64> = None;
    for task in tasks.flatten() {
        let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        if let Some(w) = text
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse::<u64>().ok())
        {
            *ns.get_or_insert(0) += w;
        }
    }
    ns.map(Duration::from_nanos)
}

/// VmHWM of this process, in MB (10^6 bytes; Linux).
pub fn peak_rss_mb() -> Option<f64> {
    status_mb("VmHWM:")
}

/// VmRSS of this process, in MB (10^6 bytes; Linux).
pub fn rss_mb() -> Option<f64> {
    status_mb("VmRSS:")
}

fn status_mb(key: &str) -> Option<f64> {
    status_bytes(key).map(|b| b as f64 / 1e6)
}

fn status_bytes(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_queue_wait_is_read_where_linux_has_it() {
        if std::path::Path::new("/proc/self/task").exists() {
            let a = run_queue_wait().expect("schedstat on Linux");
            let b = run_queue_wait().unwrap();
            assert!(
                b >= a.saturating_sub(Duration::from_millis(1)),
                "{a:?} {b:?}"
            );
        }
    }

    fn room(limit: &str, room: u64) -> MemoryRoom {
        MemoryRoom {
            limit: limit.to_owned(),
            room,
            raise: "raise it",
        }
    }

    #[test]
    fn a_fleet_is_refused_against_the_tightest_limit_and_only_when_it_cannot_fit() {
        let rooms = [
            room("a roomy limit", 1 << 40),
            room("a tight limit", 100_000_000),
        ];
        // 600,000 devices: 138 MB of them and 16 MB for the run.
        let why = memory_shortfall(600_000, &rooms).expect("154 MB do not fit in 100 MB");
        assert_eq!(
            why,
            "the 600,000 devices this process would run need about 154 MB of memory (230 bytes a device and 16.0 MB for the run), but a tight limit leaves the run about 100 MB: run fewer devices (-u, or a shorter -t), split them over processes or machines with --shard i/n, or raise it"
        );
        assert_eq!(memory_shortfall(300_000, &rooms), None, "85 MB fit");
        assert_eq!(
            memory_shortfall(u64::MAX, &[]),
            None,
            "no limit read: no refusal"
        );
    }

    fn files(fs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let fs: Vec<(String, String)> = fs
            .iter()
            .map(|(p, t)| ((*p).to_owned(), (*t).to_owned()))
            .collect();
        move |p: &str| fs.iter().find(|(q, _)| q == p).map(|(_, t)| t.clone())
    }

    #[test]
    fn the_tightest_cgroup_limit_above_the_process_is_its_room() {
        // cgroup v2: the process's own has none ("max"); the one above it has 1 GB, of
        // which 700 MB are held, 200 MB of them page cache that can be dropped.
        let read = files(&[
            ("/a/b/memory.max", "max\n"),
            ("/a/memory.max", "1000000000\n"),
            ("/a/memory.current", "700000000\n"),
            (
                "/a/memory.stat",
                "anon 500000000\nfile 200000000\ninactive_file 200000000\n",
            ),
        ]);
        let r = cgroup_room("0::/a/b\n", &read).expect("a's limit");
        assert_eq!(r.room, 500_000_000);
        assert_eq!(
            r.limit,
            "the cgroup's memory limit (/sys/fs/cgroup/a/memory.max) of 1,000 MB"
        );
        assert_eq!(
            cgroup_room("0::/\n", &read),
            None,
            "the root has no memory.max"
        );
        // cgroup v1: the memory controller's hierarchy; its "no limit" is about 2^63.
        let v1 = files(&[
            ("/memory/x/memory.limit_in_bytes", "9223372036854771712\n"),
            ("/memory/memory.limit_in_bytes", "300000000\n"),
            ("/memory/memory.usage_in_bytes", "100000000\n"),
        ]);
        let r = cgroup_room("4:memory:/x\n3:cpuset:/\n", &v1).expect("the root's limit");
        assert_eq!(r.room, 200_000_000);
        assert_eq!(cgroup_room("garbage\n", &v1), None);
    }

    #[test]
    fn mem_available_is_read_in_bytes() {
        let meminfo = "MemTotal:       24683900 kB\nMemFree:        18593792 kB\nMemAvailable:   23900160 kB\n";
        assert_eq!(mem_available(meminfo), Some(23_900_160 * 1024));
        assert_eq!(mem_available("MemTotal: 1 kB\n"), None);
    }

    #[test]
    fn the_soft_limit_ends_at_the_hard_limit() {
        let l = raise_fd_limit();
        assert!(l.hard > 0);
        assert_eq!(l.soft, l.hard, "{l}");
        assert_eq!(getrlimit(Resource::RLIMIT_NOFILE).unwrap().0, l.hard);
    }
}
