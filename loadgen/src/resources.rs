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
    fn the_soft_limit_ends_at_the_hard_limit() {
        let l = raise_fd_limit();
        assert!(l.hard > 0);
        assert_eq!(l.soft, l.hard, "{l}");
        assert_eq!(getrlimit(Resource::RLIMIT_NOFILE).unwrap().0, l.hard);
    }
}
