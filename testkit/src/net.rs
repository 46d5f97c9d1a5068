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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_free_port_can_be_bound() {
        let port = free_port().unwrap();
        assert_ne!(port, 0);
        // Free: ours to bind (unless another process took it in between, which on
        // loopback in a test is rare enough to fail loudly rather than retry).
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
    }
}
