//! Who may use the server: the configured clients (RFC 6749 §2) and how they
//! authenticate, and the people who sign in to approve devices.

pub mod clients;
pub mod users;
