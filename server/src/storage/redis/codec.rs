//! Keys and records as Redis keeps them: fixed little-endian layouts, small and
//! versioned by their first byte, so that a record another build wrote is refused
//! (read as [`Unavailable`](crate::storage::store::Unavailable)) rather than misread.
//!
//! Bearer secrets never appear in a key: access and refresh tokens and web session
//! ids are keyed by their SHA-256, and a session keeps only a hash of its device
//! code's secret ([`secret_hash`]), so a Redis dump or `MONITOR` does not hand out
//! tokens or device codes.

use sha2::{Digest, Sha256};

use crate::accounts::clients::{AuthMethod, Client};
use crate::accounts::registration::Registered;
use crate::accounts::users::Credential;
use crate::clock::Millis;
use crate::protocol::device_code::{Secret, SECRET_BYTES};
use crate::protocol::ids::ClientId;
use crate::protocol::ids::UserId;
use crate::protocol::scope::ScopeSet;
use crate::protocol::session::{Session, State};
use crate::protocol::token::TokenKey;
use crate::protocol::user_code::UserCode;
use crate::quota::{Bucket, Source};
use crate::storage::rate_limit::{Attempt, Key, Subject, Window};
use crate::storage::tokens::{AccessRecord, Grant, RefreshRecord};
use crate::storage::web_sessions::{CsrfToken, SessionId, WebSession};

/// The layout version every record starts with.
const VERSION: u8 = 1;

/// The layout of a session record whose device code secret is kept as its hash
/// ([`secret_hash`]); layout [`VERSION`] held the secret itself, and is still read.
const SESSION_HASHED: u8 = 2;

/// Keys of the shared store, all under `df:`.
pub(crate) mod keys {
    use super::*;

    /// The shared secret.
    pub(crate) const SECRET: &[u8] = b"df:secret";
    /// The configured users' names in order, as the records name them by place.
    pub(crate) const ROSTER_USERS: &[u8] = b"df:roster:users";
    /// The configured clients' ids in order, likewise.
    pub(crate) const ROSTER_CLIENTS: &[u8] = b"df:roster:clients";
    /// Sessions held, scored by when each may be forgotten (the cap).
    pub(crate) const HELD: &[u8] = b"df:{held}:all";

    /// Sessions of one client held (its share of the cap); same slot as [`HELD`].
    pub(crate) fn held_by(client: ClientId) -> Vec<u8> {
        format!("df:{{held}}:c:{}", client.0).into_bytes()
    }

    /// A device authorization session, by its user code.
    pub(crate) fn session(code: UserCode) -> Vec<u8> {
        format!("df:s:{}", code.packed()).into_bytes()
    }

    /// A token family.
    pub(crate) fn family(family: u64) -> Vec<u8> {
        format!("df:f:{family}").into_bytes()
    }

    fn hashed(prefix: &str, secret: &[u8]) -> Vec<u8> {
        let digest = Sha256::digest(secret);
        let mut key = Vec::with_capacity(prefix.len() + 64);
        key.extend_from_slice(prefix.as_bytes());
        for b in digest {
            key.extend_from_slice(format!("{b:02x}").as_bytes());
        }
        key
    }

    /// An access token, by the SHA-256 of its bytes.
    pub(crate) fn access(token: &TokenKey) -> Vec<u8> {
        hashed("df:a:", token)
    }

    /// A refresh token, by the SHA-256 of its bytes.
    pub(crate) fn refresh(token: &TokenKey) -> Vec<u8> {
        hashed("df:r:", token)
    }

    /// A web session, by the SHA-256 of its id.
    pub(crate) fn web(id: &SessionId) -> Vec<u8> {
        hashed("df:w:", id.as_bytes())
    }

    /// A user's web sessions, scored by when they started.
    pub(crate) fn web_of(user: UserId) -> Vec<u8> {
        format!("df:wu:{}", user.0).into_bytes()
    }

    /// A guess limit's window.
    pub(crate) fn limit(key: &Key) -> Vec<u8> {
        let attempt = match key.attempt {
            Attempt::UserCode => "code",
            Attempt::SignIn => "signin",
            Attempt::Registration => "register",
        };
        match key.subject {
            Subject::Ip(ip) => format!("df:l:{attempt}:ip:{ip}"),
            Subject::Account(user) => format!("df:l:{attempt}:user:{}", user.0),
            Subject::Username(hash) => format!("df:l:{attempt}:name:{hash:016x}"),
            Subject::KnownBrowser(id) => format!("df:l:{attempt}:browser:{id:016x}"),
        }
        .into_bytes()
    }

    /// A source's device authorization quota.
    pub(crate) fn source_quota(source: Source) -> Vec<u8> {
        format!("df:q:s:{source}").into_bytes()
    }

    /// A registered client, by its index.
    pub(crate) fn client(id: ClientId) -> Vec<u8> {
        format!("df:c:{}", id.0).into_bytes()
    }

    /// The indexes of the registered clients (a set), for listing them.
    pub(crate) const CLIENTS: &[u8] = b"df:c:all";

    /// The registered clients' name keys (a hash: each key, the index that holds it).
    pub(crate) const CLIENT_NAMES: &[u8] = b"df:c:names";

    /// The field of [`CLIENT_NAMES`] that says it holds every registered client's
    /// name (a key is 64 hex digits, never this); lost with the hash. Its version is
    /// that of how keys are made (`NameKeys::of`, and the confusables table of
    /// `unicode-security`): a new one has every name put back in the new keys.
    pub(crate) const NAMES_COMPLETE: &[u8] = b"!complete:v1";

    /// How many client indexes were given (a counter, never decremented).
    pub(crate) const CLIENTS_GIVEN: &[u8] = b"df:c:given";

    /// A client's device authorization quota.
    pub(crate) fn client_quota(client: ClientId) -> Vec<u8> {
        format!("df:q:c:{}", client.0).into_bytes()
    }

    /// The pace of a token family's refresh exchanges (`tokens::REFRESH_PACE`).
    pub(crate) fn refresh_pace(family: u64) -> Vec<u8> {
        format!("df:q:g:{family}").into_bytes()
    }
}

/// Writes a record.
struct Writer(Vec<u8>);

impl Writer {
    fn new(len: usize) -> Writer {
        Writer::versioned(VERSION, len)
    }
    fn versioned(version: u8, len: usize) -> Writer {
        let mut v = Vec::with_capacity(len + 1);
        v.push(version);
        Writer(v)
    }
    fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }
    fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn i32(mut self, v: i32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn bytes(mut self, v: &[u8]) -> Self {
        self.0.extend_from_slice(v);
        self
    }
    /// A string, after its length (u16).
    fn str(self, v: &str) -> Self {
        let len = u16::try_from(v.len()).unwrap_or(u16::MAX);
        self.u16(len).bytes(&v.as_bytes()[..usize::from(len)])
    }
    /// An optional 32-byte digest: a presence byte, then the digest.
    fn digest(self, v: Option<&[u8; 32]>) -> Self {
        match v {
            Some(d) => self.u8(1).bytes(d),
            None => self.u8(0),
        }
    }
}

/// Reads a record; `None` at the first byte out of place.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Option<Reader<'a>> {
        match Reader::versioned(bytes)? {
            (VERSION, r) => Some(r),
            _ => None,
        }
    }
    /// The layout version, and a reader after it.
    fn versioned(bytes: &'a [u8]) -> Option<(u8, Reader<'a>)> {
        let (&version, rest) = bytes.split_first()?;
        Some((version, Reader(rest)))
    }
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take().map(u16::from_le_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_le_bytes)
    }
    fn i32(&mut self) -> Option<i32> {
        self.take().map(i32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_le_bytes)
    }
    fn str(&mut self) -> Option<String> {
        let len = usize::from(self.u16()?);
        if self.0.len() < len {
            return None;
        }
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        String::from_utf8(head.to_vec()).ok()
    }
    fn digest(&mut self) -> Option<Option<[u8; 32]>> {
        match self.u8()? {
            0 => Some(None),
            1 => Some(Some(self.take::<32>()?)),
            _ => None,
        }
    }

    /// Whether every byte has been read.
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The record was read to its end.
    fn end<T>(self, value: T) -> Option<T> {
        self.0.is_empty().then_some(value)
    }
}

/// A record kept in Redis.
pub(crate) trait Record: Sized {
    /// Its bytes.
    fn encode(&self) -> Vec<u8>;
    /// Back from its bytes; `None` if they are not one.
    fn decode(bytes: &[u8]) -> Option<Self>;
}

/// What stands for a device code's secret in a session record: the first 128 bits of
/// the SHA-256 of the secret, so that a Redis dump, a replica's copy or `MONITOR`
/// does not hand out device codes (the user code is the record's key, and the rest
/// of the code is this secret). The secret is 128 bits from a CSPRNG (RFC 8628 §5.2),
/// so a hash is as hard to reverse as the secret is to guess; no salt is needed.
pub(crate) fn secret_hash(secret: &Secret) -> Secret {
    let digest = Sha256::new()
        .chain_update(b"deviceflow device code secret\0")
        .chain_update(secret.to_bytes())
        .finalize();
    let mut hash = [0u8; SECRET_BYTES];
    hash.copy_from_slice(&digest[..SECRET_BYTES]);
    Secret::from_bytes(hash)
}

/// A session as Redis keeps it: the session, with the hash of its device code's
/// secret in place of the secret ([`secret_hash`]), and whether the tokens of its
/// redemption were handed out.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Kept {
    /// The session; its `secret` is the secret's hash when `hashed`.
    pub(crate) session: Session,
    /// Whether `session.secret` is the hash: every record this build writes; one an
    /// earlier build wrote holds the secret itself.
    pub(crate) hashed: bool,
    /// The code was redeemed and its tokens handed out: a later poll is a replay,
    /// whatever became of its family's record.
    pub(crate) delivered: bool,
}

impl Kept {
    /// A new session, kept with the hash of `session.secret`.
    pub(crate) fn new(mut session: Session) -> Kept {
        session.secret = secret_hash(&session.secret);
        Kept {
            session,
            hashed: true,
            delivered: false,
        }
    }

    /// What a poll presenting `secret` must match against this record.
    pub(crate) fn presented(&self, secret: &Secret) -> Secret {
        if self.hashed {
            secret_hash(secret)
        } else {
            *secret
        }
    }
}

impl Record for Kept {
    fn encode(&self) -> Vec<u8> {
        let s = &self.session;
        let (tag, user, family) = match s.state {
            State::Pending => (0, 0, 0),
            State::Approved { user } => (1, user.0, 0),
            State::Denied => (2, 0, 0),
            // Layout 1 has no such state; a record of it is never marked.
            State::Redeemed { family, user } if self.delivered && self.hashed => {
                (4, user.0, family)
            }
            State::Redeemed { family, user } => (3, user.0, family),
        };
        // An earlier build's record stays in its layout (it holds no hash).
        let version = if self.hashed { SESSION_HASHED } else { VERSION };
        Writer::versioned(version, 65)
            .bytes(&s.secret.to_bytes())
            .u16(s.client.0)
            .u16(s.slow_downs)
            .u32(s.interval_ms)
            .u64(s.scope.0)
            .u64(s.issued_at)
            .u64(s.expires_at)
            .i32(s.last_accepted)
            .u8(tag)
            .u32(user)
            .u64(family)
            .0
    }

    fn decode(bytes: &[u8]) -> Option<Kept> {
        let (version, mut r) = Reader::versioned(bytes)?;
        let hashed = match version {
            VERSION => false,
            SESSION_HASHED => true,
            _ => return None,
        };
        let secret = Secret::from_bytes(r.take::<SECRET_BYTES>()?);
        let client = ClientId(r.u16()?);
        let slow_downs = r.u16()?;
        let interval_ms = r.u32()?;
        let scope = ScopeSet(r.u64()?);
        let issued_at = r.u64()?;
        let expires_at = r.u64()?;
        let last_accepted = r.i32()?;
        let (tag, user, family) = (r.u8()?, UserId(r.u32()?), r.u64()?);
        let state = match tag {
            0 => State::Pending,
            1 => State::Approved { user },
            2 => State::Denied,
            3 => State::Redeemed { family, user },
            4 if hashed => State::Redeemed { family, user },
            _ => return None,
        };
        r.end(Kept {
            session: Session {
                secret,
                client,
                slow_downs,
                interval_ms,
                scope,
                issued_at,
                expires_at,
                last_accepted,
                state,
            },
            hashed,
            delivered: tag == 4,
        })
    }
}

fn write_grant(w: Writer, g: &Grant) -> Writer {
    w.u16(g.client.0).u32(g.user.0).u64(g.scope.0)
}

fn read_grant(r: &mut Reader<'_>) -> Option<Grant> {
    Some(Grant {
        client: ClientId(r.u16()?),
        user: UserId(r.u32()?),
        scope: ScopeSet(r.u64()?),
    })
}

impl Record for AccessRecord {
    fn encode(&self) -> Vec<u8> {
        write_grant(Writer::new(38), &self.grant)
            .u64(self.family)
            .u64(self.issued_at)
            .u64(self.expires_at)
            .0
    }

    fn decode(bytes: &[u8]) -> Option<AccessRecord> {
        let mut r = Reader::new(bytes)?;
        let grant = read_grant(&mut r)?;
        let (family, issued_at, expires_at) = (r.u64()?, r.u64()?, r.u64()?);
        r.end(AccessRecord {
            grant,
            family,
            issued_at,
            expires_at,
        })
    }
}

/// Bytes that make a rotated refresh record this rotation's alone.
const ROTATION_MARK: usize = 16;

/// `record`, rotated, as the exchange that rotated it writes it: with `mark`, drawn
/// for that exchange, after it. Another exchange of the same token writes other bytes,
/// so the compare-and-set that lost its answer with its connection (and went out once
/// more, `conn.rs`) can find its own write in what it reads back.
pub(crate) fn rotated_by(record: &RefreshRecord, mark: [u8; ROTATION_MARK]) -> Vec<u8> {
    debug_assert!(record.rotated);
    let mut bytes = record.encode();
    bytes.extend_from_slice(&mark);
    bytes
}

impl Record for RefreshRecord {
    fn encode(&self) -> Vec<u8> {
        write_grant(Writer::new(39), &self.grant)
            .u64(self.family)
            .u64(self.issued_at)
            .u64(self.expires_at)
            .u8(u8::from(self.rotated))
            .0
    }

    fn decode(bytes: &[u8]) -> Option<RefreshRecord> {
        let mut r = Reader::new(bytes)?;
        let grant = read_grant(&mut r)?;
        let (family, issued_at, expires_at) = (r.u64()?, r.u64()?, r.u64()?);
        let rotated = match r.u8()? {
            0 => false,
            1 => true,
            _ => return None,
        };
        // The rotation's own mark (`rotated_by`), when there is one.
        if rotated && r.0.len() == ROTATION_MARK {
            r.take::<ROTATION_MARK>()?;
        }
        r.end(RefreshRecord {
            grant,
            family,
            issued_at,
            expires_at,
            rotated,
        })
    }
}

impl Record for WebSession {
    fn encode(&self) -> Vec<u8> {
        let (tag, code) = match self.entered {
            Some(code) => (1, code.packed()),
            None => (0, 0),
        };
        Writer::new(61)
            .u32(self.user.0)
            .bytes(&self.csrf.to_bytes())
            .u64(self.expires_at)
            .u8(tag)
            .u64(code)
            .u64(self.credential.0)
            .0
    }

    fn decode(bytes: &[u8]) -> Option<WebSession> {
        let mut r = Reader::new(bytes)?;
        let user = UserId(r.u32()?);
        let csrf = CsrfToken::from_bytes(r.take::<32>()?);
        let expires_at: Millis = r.u64()?;
        let entered = match (r.u8()?, r.u64()?) {
            (0, _) => None,
            (1, code) => Some(UserCode::from_packed(code)?),
            _ => return None,
        };
        // A session recorded before sessions were bound to the password (53 bytes)
        // reads as bound to none: signed out, not a store fault.
        let credential = Credential(if r.is_empty() { 0 } else { r.u64()? });
        r.end(WebSession {
            user,
            credential,
            csrf,
            expires_at,
            entered,
        })
    }
}

impl Record for Registered {
    fn encode(&self) -> Vec<u8> {
        let c = &self.client;
        let method = match c.auth_methods.first() {
            None => 0,
            Some(AuthMethod::ClientSecretBasic) => 1,
            Some(AuthMethod::ClientSecretPost) => 2,
        };
        let grants = u8::from(c.device_grant) | u8::from(c.refresh_grant) << 1;
        Writer::new(128 + c.client_id.len() + c.name.len())
            .u16(c.id.0)
            .u64(self.issued_at)
            .digest(c.secret_sha256.as_ref())
            .u8(method)
            .u64(c.allowed_scope.0)
            .u64(c.default_scope.0)
            .u8(grants)
            .digest(self.registration_token_sha256.as_ref())
            .str(&c.client_id)
            .str(&c.name)
            .0
    }

    fn decode(bytes: &[u8]) -> Option<Registered> {
        let mut r = Reader::new(bytes)?;
        let id = ClientId(r.u16()?);
        let issued_at = r.u64()?;
        let secret_sha256 = r.digest()?;
        let auth_methods = match r.u8()? {
            0 => vec![],
            1 => vec![AuthMethod::ClientSecretBasic],
            2 => vec![AuthMethod::ClientSecretPost],
            _ => return None,
        };
        let (allowed_scope, default_scope) = (ScopeSet(r.u64()?), ScopeSet(r.u64()?));
        let grants = r.u8()?;
        let registration_token_sha256 = r.digest()?;
        let (client_id, name) = (r.str()?, r.str()?);
        r.end(Registered {
            client: Client {
                id,
                client_id,
                name,
                secret_sha256,
                auth_methods,
                allowed_scope,
                default_scope,
                device_grant: grants & 1 != 0,
                refresh_grant: grants & 2 != 0,
            },
            issued_at,
            registration_token_sha256,
        })
    }
}

impl Record for Window {
    fn encode(&self) -> Vec<u8> {
        Writer::new(12).u64(self.opened).u32(self.failures).0
    }

    fn decode(bytes: &[u8]) -> Option<Window> {
        let mut r = Reader::new(bytes)?;
        let (opened, failures) = (r.u64()?, r.u32()?);
        r.end(Window { opened, failures })
    }
}

impl Record for Bucket {
    fn encode(&self) -> Vec<u8> {
        Writer::new(16).u64(self.level).u64(self.at).0
    }

    fn decode(bytes: &[u8]) -> Option<Bucket> {
        let mut r = Reader::new(bytes)?;
        let (level, at) = (r.u64()?, r.u64()?);
        r.end(Bucket { level, at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::session::{PollOutcome, PollPolicy, SlowDownPolicy};

    fn round_trip<T: Record + std::fmt::Debug + PartialEq>(value: T) {
        let bytes = value.encode();
        assert_eq!(T::decode(&bytes), Some(value));
        // Any byte short, or one more, is no record.
        assert_eq!(T::decode(&bytes[..bytes.len() - 1]), None);
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(T::decode(&longer), None);
        let mut other_version = bytes;
        other_version[0] = VERSION + 1;
        assert_eq!(T::decode(&other_version), None);
    }

    #[test]
    fn every_record_round_trips_and_nothing_else_decodes() {
        let policy = PollPolicy {
            slow_down: SlowDownPolicy::Enforce,
            tolerance_ms: 500,
            interval_ms: 5_000,
        };
        let mut s = Session::new(
            Secret::generate(),
            ClientId(3),
            ScopeSet(0b101),
            1_700_000_000_000,
            600_000,
            &policy,
        );
        s.poll(
            ClientId(3),
            &s.secret.clone(),
            1_700_000_001_000,
            &policy,
            || 9,
        );
        let same = |a: &Kept, b: &Kept| {
            a.encode() == b.encode()
                && a.session.secret.matches(&b.session.secret)
                && a.session.state == b.session.state
                && (a.hashed, a.delivered) == (b.hashed, b.delivered)
        };
        for state in [
            State::Pending,
            State::Approved { user: UserId(7) },
            State::Denied,
            State::Redeemed {
                family: u64::MAX,
                user: UserId(7),
            },
        ] {
            s.state = state;
            for (hashed, delivered) in [(true, false), (true, true), (false, false)] {
                let kept = Kept {
                    session: s,
                    hashed,
                    delivered: delivered && matches!(state, State::Redeemed { .. }),
                };
                let bytes = kept.encode();
                let back = Kept::decode(&bytes).expect("decodes");
                assert!(same(&kept, &back), "{state:?}");
                assert_eq!(Kept::decode(&bytes[..bytes.len() - 1]).map(|_| ()), None);
            }
        }
        let grant = Grant {
            client: ClientId(1),
            user: UserId(2),
            scope: ScopeSet(3),
        };
        round_trip(AccessRecord {
            grant,
            family: 4,
            issued_at: 5,
            expires_at: 6,
        });
        round_trip(RefreshRecord {
            grant,
            family: 4,
            issued_at: 5,
            expires_at: 6,
            rotated: true,
        });
        round_trip(Window {
            opened: 9,
            failures: 3,
        });
        round_trip(Bucket { level: 1, at: 2 });
        let mut signed_in = WebSession::new(UserId(3), Credential(0xfeed), 9_000);
        round_trip(signed_in);
        signed_in.entered = Some(UserCode::from_packed(0x1234).unwrap());
        round_trip(signed_in);
        let scopes = crate::protocol::scope::ScopeRegistry::default();
        for public in [true, false] {
            let metadata = crate::accounts::registration::Metadata {
                name: Some("Kitchen TV ✓".into()),
                auth_method: (!public).then_some(AuthMethod::ClientSecretPost),
                scope: ScopeSet(0b110),
                device_grant: true,
                refresh_grant: public,
            };
            let new = metadata.register(ClientId(0x4001), 7_000, public);
            round_trip(new.registered.clone());
            assert_eq!(
                Registered::decode(&new.registered.encode()).map(|r| r.metadata(&scopes)),
                Some(new.registered.metadata(&scopes))
            );
        }
    }

    #[test]
    fn a_rotation_is_marked_as_its_own_and_still_reads_as_the_record() {
        let record = RefreshRecord {
            grant: Grant {
                client: ClientId(1),
                user: UserId(2),
                scope: ScopeSet(3),
            },
            family: 4,
            issued_at: 5,
            expires_at: 6,
            rotated: true,
        };
        let (a, b) = (rotated_by(&record, [1; 16]), rotated_by(&record, [2; 16]));
        assert_ne!(a, b, "two exchanges write different bytes");
        for bytes in [&a, &b, &record.encode()] {
            assert_eq!(RefreshRecord::decode(bytes), Some(record));
        }
        // A mark on a record that is not rotated, or of another length, is not one.
        let unrotated = RefreshRecord {
            rotated: false,
            ..record
        };
        let mut marked = unrotated.encode();
        marked.extend_from_slice(&[1; 16]);
        assert_eq!(RefreshRecord::decode(&marked), None);
        assert_eq!(RefreshRecord::decode(&a[..a.len() - 1]), None);
    }

    #[test]
    fn a_session_record_keeps_the_hash_of_its_secret_and_an_earlier_builds_still_polls() {
        let policy = PollPolicy {
            slow_down: SlowDownPolicy::Enforce,
            tolerance_ms: 500,
            interval_ms: 5_000,
        };
        let secret = Secret::generate();
        let session = Session::new(secret, ClientId(3), ScopeSet(1), 0, 600_000, &policy);
        let kept = Kept::new(session);
        let bytes = kept.encode();
        assert_eq!(bytes[0], SESSION_HASHED);
        let clear = secret.to_bytes();
        assert!(!bytes.windows(clear.len()).any(|w| w == clear));
        let mut back = Kept::decode(&bytes).expect("decodes");
        let presented = back.presented(&secret);
        assert_eq!(
            back.session.poll(ClientId(3), &presented, 1, &policy, || 9),
            PollOutcome::Pending
        );
        let wrong = back.presented(&Secret::generate());
        assert_eq!(
            back.session.poll(ClientId(3), &wrong, 9_000, &policy, || 9),
            PollOutcome::Invalid
        );
        // An earlier build wrote the secret itself, in layout 1, with no "delivered"
        // state: still read, and matched as it was written.
        let mut old = bytes.clone();
        old[0] = VERSION;
        old[1..1 + SECRET_BYTES].copy_from_slice(&clear);
        let mut earlier = Kept::decode(&old).expect("an earlier build's record");
        assert!(!earlier.hashed);
        assert_eq!(earlier.encode(), old, "rewritten in its own layout");
        let presented = earlier.presented(&secret);
        assert_eq!(
            earlier
                .session
                .poll(ClientId(3), &presented, 1, &policy, || 9),
            PollOutcome::Pending
        );
        let delivered_tag = old.len() - 13;
        old[delivered_tag] = 4;
        assert_eq!(Kept::decode(&old).map(|_| ()), None);
    }

    #[test]
    fn a_web_session_an_earlier_build_wrote_reads_as_bound_to_no_password() {
        let session = WebSession::new(UserId(3), Credential(0xfeed), 9_000);
        let bytes = session.encode();
        // That build wrote the same fields without the credential, 8 bytes at the end.
        let earlier = WebSession::decode(&bytes[..bytes.len() - 8]).unwrap();
        assert_eq!(
            earlier,
            WebSession {
                credential: Credential(0),
                ..session
            }
        );
    }

    #[test]
    fn keys_never_hold_a_bearer_secret() {
        let token = [7u8; 32];
        let key = String::from_utf8(keys::access(&token)).unwrap();
        assert!(key.starts_with("df:a:") && key.len() == 5 + 64, "{key}");
        assert_ne!(keys::access(&token), keys::refresh(&token));
        // Both of one client's cap keys hash to one cluster slot.
        assert!(keys::held_by(ClientId(3)).starts_with(b"df:{held}"));
        assert!(keys::HELD.starts_with(b"df:{held}"));
        assert_eq!(keys::client(ClientId(0x4000)), b"df:c:16384");
    }
}
