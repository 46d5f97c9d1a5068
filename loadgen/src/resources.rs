//! The generator's resources: the open-file limit, raised at start from the soft to
//! the hard limit (each connection is a file descriptor) and reported, so a run that
//! runs short says so instead of failing devices silently.

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
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024.0 / 1e6)
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

    #[test]
    fn the_soft_limit_ends_at_the_hard_limit() {
        let l = raise_fd_limit();
        assert!(l.hard > 0);
        assert_eq!(l.soft, l.hard, "{l}");
        assert_eq!(getrlimit(Resource::RLIMIT_NOFILE).unwrap().0, l.hard);
    }
}
