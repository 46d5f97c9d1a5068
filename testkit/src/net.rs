//! Free loopback ports.

use std::io;
use std::net::{Ipv4Addr, TcpListener};

/// A loopback port that was free a moment ago: bound on `127.0.0.1:0`, then released.
///
/// Another process may take it before ours binds it; callers that start a server on it
/// retry with another port when the bind fails (see [`crate::RedisServer`]).
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// A fresh, empty directory of this process's own under the system's temporary one,
/// `deviceflow-WHAT-PID-N`.
pub fn temp_dir(what: &str) -> std::io::Result<std::path::PathBuf> {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "deviceflow-{what}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_free_port_can_be_bound() {
        // Free a moment ago, so ours to bind unless something took it in between: the
        // tests beside this one open connections, whose local ports come from the same
        // range (CI saw it once). Callers retry with another port; so does this test,
        // and three ports in a row taken would still fail it.
        let bound = (0..3).any(|_| {
            let port = free_port().unwrap();
            assert_ne!(port, 0);
            TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
        });
        assert!(bound, "three free ports in a row could not be bound");
    }
}
