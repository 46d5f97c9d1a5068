//! The protocol's vocabulary and its state machine, with no I/O: device and user codes
//! (RFC 8628 §3.2, §6.1), opaque tokens, scopes (RFC 6749 §3.3), who a session is
//! between (the client and the person, by index), and a device authorization session
//! and the answer to each poll (RFC 8628 §3.5). Every store backend runs this one state machine.

pub mod device_code;
pub mod ids;
pub mod scope;
pub mod session;
pub mod token;
pub mod user_code;
