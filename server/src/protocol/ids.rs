//! Who a session and its tokens are between, as they record it: the client (RFC 6749
//! §2.2) and the person who decides (the resource owner), each by a small index into
//! the configuration or the registrations (`accounts/`), so that a session stays a
//! few dozen bytes.

/// Index of a client in the registry: small enough to live in every session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientId(pub u16);

/// The first index given to a registered client; the configured (static) clients
/// hold the indexes below it, so the two never collide, whatever each instance's
/// configuration.
pub const FIRST_REGISTERED: u16 = 0x4000;

/// How many clients can ever be registered on one store (indexes are never reused).
pub const MAX_REGISTERED: u32 = u16::MAX as u32 - FIRST_REGISTERED as u32 + 1;

/// The prefix of a registered client's `client_id`.
const CLIENT_ID_PREFIX: &str = "dfc";

impl ClientId {
    /// Whether this index belongs to a registered client (not a configured one).
    pub fn is_registered(self) -> bool {
        self.0 >= FIRST_REGISTERED
    }

    /// The `n`th registered client's index (from 0); `None` once every index is given.
    pub fn registered(n: u64) -> Option<ClientId> {
        u16::try_from(n + u64::from(FIRST_REGISTERED))
            .ok()
            .map(ClientId)
    }

    /// The `client_id` a registered client is given: `dfc<index>-<random>`, which
    /// [`parse_registered`](Self::parse_registered) reads back.
    pub fn registered_client_id(self, random: &str) -> String {
        format!("{CLIENT_ID_PREFIX}{}-{random}", self.0)
    }

    /// The index a registered client's `client_id` carries; `None` for any other
    /// `client_id` (the configured clients', or nonsense), which needs no store lookup.
    pub fn parse_registered(client_id: &str) -> Option<ClientId> {
        let rest = client_id.strip_prefix(CLIENT_ID_PREFIX)?;
        let (index, _random) = rest.split_once('-')?;
        if index.is_empty() || index.len() > 5 || !index.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let id = ClientId(index.parse().ok()?);
        id.is_registered().then_some(id)
    }
}

/// A person's index, as sessions and tokens record it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserId(pub u32);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_registered_client_ids_carry_an_index() {
        assert_eq!(ClientId::parse_registered("demo-device"), None);
        assert_eq!(
            ClientId::parse_registered("dfc3-abc"),
            None,
            "a static index is never looked up"
        );
        assert_eq!(ClientId::parse_registered("dfc99999-abc"), None);
        assert_eq!(ClientId::parse_registered("dfc+16384-abc"), None);
        assert_eq!(
            ClientId::parse_registered("dfc16384-abc"),
            Some(ClientId(16384))
        );
        assert_eq!(ClientId::registered(0), Some(ClientId(FIRST_REGISTERED)));
        assert_eq!(ClientId::registered(u64::from(MAX_REGISTERED)), None);
    }
}
