//! Real processes for tests: `redis-server` alone or as a cluster ([`RedisServer`],
//! [`RedisCluster`]) and the `deviceflow-server` binary ([`ServerProcess`]), each on a
//! free loopback port, each stopped by its PID and killed when dropped.
//!
//! It owns starting, waiting for, signalling and reaping those processes, and the few
//! bytes of RESP it takes to ask Redis how it is. It does not own what the tests
//! send to the servers: that stays in each crate's tests. Besides, what every
//! binary's command line is checked for ([`cli::without_help`]), and the Markdown it
//! writes ([`markdown::raw_html`]).

pub mod cli;
pub mod markdown;
mod net;
mod process;
mod redis;
mod resp;
pub mod tls;

pub use net::{free_port, temp_dir};
pub use process::{cargo_bin, cargo_release_bin, signal, ServerProcess, Signal};
pub use redis::{RedisCluster, RedisOptions, RedisSentinels, RedisServer};
pub use resp::Reply;
