//! Who may use the server: the clients (RFC 6749 §2), configured or registered at run
//! time (RFC 7591), and how they authenticate; and the people who sign in to approve
//! devices.

pub mod clients;
pub mod password;
pub mod registration;
pub mod users;
