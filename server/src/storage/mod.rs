//! Where state lives: device authorization sessions behind the [`SessionStore`] seam,
//! tokens and their families, and the expiry wheel that lets both forget what expired
//! without scanning what is live.

pub(crate) mod expiry;
pub mod store;
pub(crate) mod tokens;

pub use store::{CreateError, MemoryStore, SessionInfo, SessionStore, SweepStats};
