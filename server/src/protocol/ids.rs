//! Who a session and its tokens are between, as they record it: the client (RFC 6749
//! §2.2) and the person who decides (the resource owner), each by a small index into
//! the configuration or the registrations (`accounts/`), so that a session stays a
//! few dozen bytes.

/// Index of a client in the registry: small enough to live in every session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientId(pub u16);

/// A person's index, as sessions and tokens record it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserId(pub u32);
