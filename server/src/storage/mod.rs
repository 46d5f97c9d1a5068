//! Where state lives: the [`Store`] seam every endpoint runs on, its two backends
//! (in memory, and Redis shared by several instances), the token rules both apply,
//! and the expiry wheel that lets the memory store forget what expired without
//! scanning what is live.

pub mod clock_offset;
pub mod memory;
pub mod rate_limit;
pub mod redis;
pub mod shared_secret;
pub mod store;
pub mod tokens;
pub mod web_sessions;

pub use memory::MemoryStore;
pub use redis::RedisStore;
pub use shared_secret::SharedSecret;
pub use store::{
    Census, CreateError, SessionInfo, Store, StoreSettings, Stored, SweepStats, Unavailable,
};
