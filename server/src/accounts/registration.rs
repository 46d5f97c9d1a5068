//! Clients registered while the server runs, in its three forms: RFC 7591 dynamic
//! client registration, the admin API (`deviceflow-server clients add`) and the
//! administrators' page. Owns what a registration asks for and how it is validated,
//! the identifiers and secrets it is given, and the record the store keeps; not where
//! it is kept (the [`Store`](crate::storage::Store)) nor how it is answered
//! (`endpoints/registration.rs`, `endpoints/admin_clients.rs`, the page).
//!
//! A registered client's [`ClientId`] is drawn from the store, once for all
//! instances, from [`FIRST_REGISTERED`](crate::protocol::ids::FIRST_REGISTERED) up, and never given again after the client is
//! deleted: the sessions and tokens recorded with it can only ever point at it. Its
//! `client_id` carries that index (`dfc<index>-<random>`), so that the store finds the
//! record with one lookup by either.

use deviceflow_wire::{
    ClientRegistration, AUTH_METHOD_NONE, GRANT_TYPE_DEVICE_CODE, GRANT_TYPE_REFRESH_TOKEN,
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use unicode_normalization::UnicodeNormalization;
use unicode_security::confusable_detection::skeleton;

use crate::accounts::clients::{AuthMethod, Client, Clients};
use crate::clock::Millis;
use crate::protocol::ids::ClientId;
use crate::protocol::scope::{ScopeRegistry, ScopeSet};
use crate::protocol::token::new_token;

/// The longest `client_name` kept.
pub const MAX_NAME_CHARS: usize = 100;

/// Why a registration (`App::register_client`, `endpoints/registration.rs`)
/// registered nothing.
#[derive(Debug)]
pub(crate) enum Unregistered {
    /// The name reads as a registered application's ([`MetadataError::NameRegistered`]).
    Name(MetadataError),
    /// Every registered client index of the store was given.
    Exhausted,
}

/// What became of a request to rotate a client's secret.
#[derive(Debug)]
pub(crate) enum Rotation {
    /// The new secret, the only time it is seen.
    New(String),
    /// No such registered client (any more).
    Gone,
    /// A public client has no secret.
    Public,
    /// Another rotation of the same record came first; this one changed nothing, so
    /// the secret that one answered is the one that works.
    Raced,
}

/// What a rotation that lost to another says.
pub(crate) const ROTATION_RACED: &str = "another request rotated this client's secret at the same time; this one changed nothing, and the secret that request answered is the one that works (rotate again for a new one)";

/// A client registered at run time, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// The client, as authentication and the endpoints see it.
    pub client: Client,
    /// RFC 7591 §3.2.1 `client_id_issued_at`.
    pub issued_at: Millis,
    /// RFC 7592 §1: SHA-256 of the registration access token, for a client registered
    /// through RFC 7591; `None` for one an administrator registered, which only the
    /// admin API and page manage.
    pub registration_token_sha256: Option<[u8; 32]>,
}

impl Registered {
    /// Whether `presented` is this client's registration access token, compared in
    /// constant time.
    pub fn registration_token_matches(&self, presented: &str) -> bool {
        match &self.registration_token_sha256 {
            Some(stored) => Sha256::digest(presented.as_bytes())
                .as_slice()
                .ct_eq(stored)
                .into(),
            None => false,
        }
    }

    /// Gives the client a new secret, which is returned (the only time it is seen);
    /// the old one stops working. `None` for a public client, which has none.
    pub fn rotate_secret(&mut self) -> Option<String> {
        self.client.secret_sha256?;
        let (_, secret) = new_token();
        self.client.secret_sha256 = Some(Sha256::digest(secret.as_bytes()).into());
        Some(secret)
    }

    /// Its metadata as RFC 7591 §3.2.1 and RFC 7592 §3 answer it, without secrets.
    pub fn metadata(&self, scopes: &ScopeRegistry) -> ClientRegistration {
        ClientRegistration {
            client_id_issued_at: Some(self.issued_at / 1000),
            ..client_metadata(&self.client, scopes)
        }
    }
}

/// A client's metadata (RFC 7591 §2), configured or registered, without secrets.
pub fn client_metadata(client: &Client, scopes: &ScopeRegistry) -> ClientRegistration {
    let mut grant_types = Vec::with_capacity(2);
    if client.device_grant {
        grant_types.push(GRANT_TYPE_DEVICE_CODE.to_owned());
    }
    if client.refresh_grant {
        grant_types.push(GRANT_TYPE_REFRESH_TOKEN.to_owned());
    }
    let method = client
        .auth_methods
        .first()
        .map_or(AUTH_METHOD_NONE, |m| m.as_str());
    ClientRegistration {
        client_id: Some(client.client_id.clone()),
        // RFC 7591 §3.2.1: REQUIRED if a secret was issued; 0: it never expires.
        client_secret_expires_at: (!client.is_public()).then_some(0),
        client_name: Some(client.name.clone()),
        grant_types: Some(grant_types),
        token_endpoint_auth_method: Some(method.to_owned()),
        scope: Some(scopes.format(client.allowed_scope)),
        ..ClientRegistration::default()
    }
}

/// A new registration: the record to keep, and the secrets it was given, shown once
/// (and never by `Debug`).
pub struct NewClient {
    /// What the store keeps.
    pub registered: Registered,
    /// The client secret of a confidential client.
    pub secret: Option<String>,
    /// RFC 7592 §1 registration access token, when asked for.
    pub registration_token: Option<String>,
}

impl std::fmt::Debug for NewClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("NewClient")
            .field("registered", &self.registered)
            .field("secret", &shown(&self.secret))
            .field("registration_token", &shown(&self.registration_token))
            .finish()
    }
}

/// What a registration asks for, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// Shown to the person approving.
    pub name: Option<String>,
    /// How it authenticates at the token endpoint; `None` for a public client.
    pub auth_method: Option<AuthMethod>,
    /// The scopes it may ask for (and is granted when it names none).
    pub scope: ScopeSet,
    /// RFC 8628 device authorization grant.
    pub device_grant: bool,
    /// RFC 6749 §6 refresh token grant.
    pub refresh_grant: bool,
}

/// Why client metadata was refused: RFC 7591 §3.2.2 `invalid_client_metadata`, with
/// this as its description.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// A grant type this server does not serve.
    #[error("grant_types: \"{0}\" is not served here (use \"{GRANT_TYPE_DEVICE_CODE}\" and, optionally, \"{GRANT_TYPE_REFRESH_TOKEN}\")")]
    UnsupportedGrantType(String),
    /// No device code grant: a client here exists to use it.
    #[error("grant_types must include \"{GRANT_TYPE_DEVICE_CODE}\"")]
    NoDeviceGrant,
    /// An authentication method this server does not offer.
    #[error("token_endpoint_auth_method: \"{0}\" is not supported (use \"none\", \"client_secret_basic\" or \"client_secret_post\")")]
    UnsupportedAuthMethod(String),
    /// A scope that is unknown or malformed.
    #[error("scope: {0}")]
    Scope(String),
    /// A name that is empty, too long or holds control or bidirectional formatting
    /// characters.
    #[error(
        "client_name must be 1 to {MAX_NAME_CHARS} characters, visible, none of them control, bidirectional formatting or invisible characters"
    )]
    BadName,
    /// The name of a configured application, up to case, spaces, punctuation and
    /// look-alike letters: on the consent page (RFC 8628 §5.4) a person could not tell
    /// the two apart.
    #[error("client_name reads as \"{0}\", the name of an application configured on this server: a person approving a device could not tell them apart; choose another")]
    NameTaken(String),
    /// The name of an application registered before, read the same way: one
    /// registrant could otherwise pass for another on the consent page.
    #[error("client_name reads as \"{0}\", the name of an application already registered on this server: a person approving a device could not tell them apart; choose another")]
    NameRegistered(String),
}

/// What a client name reads as to a person: two names read the same when they share a
/// key. They do when equal in their letters and digits up to Unicode compatibility
/// (NFKC: fullwidth `ＴＶ`, mathematical bold `𝐓𝐕` and the Roman numeral `Ⅴ` read as
/// `TV` and `V`), case and look-alike letters (the UTS #39 skeleton: Cyrillic `е` and
/// Greek `ο` read as `e` and `o`, `rn` as `m`, `0` as `O`), whatever spaces, dashes and
/// other punctuation stand between them (`Living‐room TV` with U+2010 reads as
/// `Living-room TV`). Names with no letter or digit at all are compared up to case and
/// spaces.
///
/// Case and look-alikes are taken together: a name's keys are the skeletons of the name
/// as written and in upper case, any of which meets either of the other name's, and
/// its skeleton in lower case, which meets the other's in lower case. `RADI0 TV` reads
/// as `Radio TV` (upper case), Cyrillic `ВBC` as `BBC` (as written), `KlTCHEN TV` with
/// a small `L` as `Kitchen TV` (as written against upper case: the skeleton reads `I`
/// as `l`), `Netf1ix` as `NETFLIX` (lower case). The lower case skeleton meets no
/// other form's: `Ion` lowered is `ion`, and `Lon` as written `Lon`, but `Ion` as
/// written is `lon` to the skeleton. No case is folded after the skeleton, which maps
/// `I`, `l` and `1` alike: folded, `IG TV` would read as `LG TV`.
///
/// Each key is kept as the SHA-256 of what it stands for (64 hex digits), so a key is
/// as short for a name of a hundred wide characters as for `TV`. The store keeps the
/// keys of every registered client's name, so that a new name is compared with all of
/// them in one lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameKeys(Vec<String>);

impl NameKeys {
    /// The keys of `name`: its skeletons (one to three: forms alike give one key), or for
    /// a name with no letter or digit, its words in lower case (up to compatibility
    /// and variation selectors: `📺` and `📺` with U+FE0F are one).
    pub fn of(name: &str) -> NameKeys {
        // The letters of the skeleton of `name`, its accents put back on their letters.
        let skeleton = |name: &str| -> String {
            skeleton(name)
                .nfc()
                .filter(|c| c.is_alphanumeric())
                .collect()
        };
        let key = |kind: &str, what: &str| -> String {
            let digest: [u8; 32] = Sha256::new()
                .chain_update(kind)
                .chain_update(what)
                .finalize()
                .into();
            digest.iter().map(|b| format!("{b:02x}")).collect()
        };
        let compatible: String = name.nfkc().collect();
        let written = skeleton(&compatible);
        if written.is_empty() {
            let shown: String = compatible
                .chars()
                .filter(|c| !matches!(c, '\u{fe00}'..='\u{fe0f}' | '\u{e0100}'..='\u{e01ef}'))
                .collect();
            let words: Vec<String> = shown.split_whitespace().map(str::to_lowercase).collect();
            return NameKeys(vec![key("words:", &words.join(" "))]);
        }
        let mut keys = vec![key("case:", &written)];
        let upper = key("case:", &skeleton(&compatible.to_uppercase()));
        if upper != keys[0] {
            keys.push(upper);
        }
        keys.push(key("lower:", &skeleton(&compatible.to_lowercase())));
        NameKeys(keys)
    }

    /// Whether a name with these keys reads as one with `other`.
    pub fn meet(&self, other: &NameKeys) -> bool {
        self.0.iter().any(|k| other.0.contains(k))
    }

    /// The keys, 64 hex digits each.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

/// Whether two client names read the same to a person (see [`NameKeys`]).
fn same_name(a: &str, b: &str) -> bool {
    NameKeys::of(a).meet(&NameKeys::of(b))
}

impl Metadata {
    /// Validates RFC 7591 §2 client metadata, as registration sends it.
    ///
    /// RFC 7591 §2: "If omitted, the default behavior is that the client will use only
    /// the "authorization_code" Grant Type" and authenticates with
    /// `client_secret_basic`. The authorization code grant is not served here, so an
    /// omitted `grant_types` is replaced (§3.2.1 allows the server to substitute
    /// values) by the device code grant; an omitted `scope` by every scope this server
    /// knows. Members this server does not understand are ignored, as §2 requires.
    /// A `client_name` that reads as a `configured` client's is refused.
    pub fn from_request(
        req: &ClientRegistration,
        scopes: &ScopeRegistry,
        configured: &Clients,
    ) -> Result<Metadata, MetadataError> {
        let (mut device_grant, mut refresh_grant) = (false, false);
        match &req.grant_types {
            None => device_grant = true,
            Some(grants) => {
                for g in grants {
                    match g.as_str() {
                        GRANT_TYPE_DEVICE_CODE => device_grant = true,
                        GRANT_TYPE_REFRESH_TOKEN => refresh_grant = true,
                        other => return Err(MetadataError::UnsupportedGrantType(other.into())),
                    }
                }
            }
        }
        if !device_grant {
            return Err(MetadataError::NoDeviceGrant);
        }
        let auth_method = match req
            .token_endpoint_auth_method
            .as_deref()
            .unwrap_or("client_secret_basic")
        {
            AUTH_METHOD_NONE => None,
            "client_secret_basic" => Some(AuthMethod::ClientSecretBasic),
            "client_secret_post" => Some(AuthMethod::ClientSecretPost),
            other => return Err(MetadataError::UnsupportedAuthMethod(other.into())),
        };
        let every_scope = scopes.all();
        let scope = match req.scope.as_deref() {
            None => every_scope,
            Some(s) => scopes
                .parse(s, every_scope)
                .map_err(|e| MetadataError::Scope(e.to_string()))?,
        };
        // RFC 6749 §3.3: a scope is one or more scope tokens; a client that may ask
        // for none could only ever be granted nothing.
        if scope == ScopeSet::EMPTY && every_scope != ScopeSet::EMPTY {
            return Err(MetadataError::Scope(format!(
                "names no scope; name at least one of \"{}\"",
                scopes.format(every_scope)
            )));
        }
        let name = match &req.client_name {
            None => None,
            Some(n) => Some(check_name(n)?),
        };
        if let Some(taken) = name
            .as_deref()
            .and_then(|n| configured.iter().find(|c| same_name(&c.name, n)))
        {
            return Err(MetadataError::NameTaken(taken.name.clone()));
        }
        Ok(Metadata {
            name,
            auth_method,
            scope,
            device_grant,
            refresh_grant,
        })
    }

    /// The client registered with this metadata under `id`, at `now`; with a
    /// registration access token if `with_registration_token` (RFC 7591).
    pub fn register(self, id: ClientId, now: Millis, with_registration_token: bool) -> NewClient {
        let (_, random) = new_token();
        let client_id = id.registered_client_id(&random[..16]);
        let secret = self.auth_method.map(|_| new_token().1);
        let registration_token = with_registration_token.then(|| new_token().1);
        let digest = |s: &String| -> [u8; 32] { Sha256::digest(s.as_bytes()).into() };
        let client = Client {
            id,
            name: self.name.unwrap_or_else(|| client_id.clone()),
            client_id,
            secret_sha256: secret.as_ref().map(digest),
            auth_methods: self.auth_method.into_iter().collect(),
            allowed_scope: self.scope,
            default_scope: self.scope,
            device_grant: self.device_grant,
            refresh_grant: self.refresh_grant,
        };
        NewClient {
            registered: Registered {
                client,
                issued_at: now,
                registration_token_sha256: registration_token.as_ref().map(digest),
            },
            secret,
            registration_token,
        }
    }
}

/// The JSON object of a registration request (RFC 7591 §3.1), each member named once.
///
/// RFC 8259 §4: with a name repeated, "the behavior of software that receives such an
/// object is unpredictable": most parsers keep the last value, some the first, some
/// refuse. A proxy or policy check in front of this server that reads
/// `{"token_endpoint_auth_method":"client_secret_basic","token_endpoint_auth_method":"none"}`
/// one way would let through a registration this server reads the other way, so a
/// repeated member is refused (RFC 7591 §3.2.2 `invalid_client_metadata`), as RFC 8628
/// §3.1 refuses a repeated parameter.
#[derive(Debug, Default)]
pub struct MetadataDocument(pub serde_json::Map<String, serde_json::Value>);

impl<'de> serde::Deserialize<'de> for MetadataDocument {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = MetadataDocument;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object of client metadata (RFC 7591 §2)")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut access: A,
            ) -> Result<MetadataDocument, A::Error> {
                let mut members = serde_json::Map::new();
                while let Some(name) = access.next_key::<String>()? {
                    if members.contains_key(&name) {
                        return Err(serde::de::Error::custom(format!(
                            "member \"{name}\" appears more than once (RFC 8259 §4)"
                        )));
                    }
                    let value = access.next_value()?;
                    members.insert(name, value);
                }
                Ok(MetadataDocument(members))
            }
        }
        deserializer.deserialize_map(Members)
    }
}

/// RFC 7591 §2 client metadata from a JSON document, naming the member that is not of
/// its type; members this server does not understand are ignored, as §2 requires.
pub fn request_from_json(doc: MetadataDocument) -> Result<ClientRegistration, String> {
    let members = doc.0;
    fn member<T: serde::de::DeserializeOwned>(
        members: &serde_json::Map<String, serde_json::Value>,
        name: &str,
    ) -> Result<Option<T>, String> {
        match members.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => T::deserialize(v)
                .map(Some)
                .map_err(|e| format!("{name}: {e}")),
        }
    }
    Ok(ClientRegistration {
        client_name: member(&members, "client_name")?,
        grant_types: member(&members, "grant_types")?,
        token_endpoint_auth_method: member(&members, "token_endpoint_auth_method")?,
        scope: member(&members, "scope")?,
        ..ClientRegistration::default()
    })
}

/// The most combining marks a name may stack on one character.
const MAX_STACKED_MARKS: usize = 4;

/// A `client_name`, trimmed; refused if empty, too long or with characters that do
/// not show as themselves.
///
/// The name is what the person approving reads (RFC 8628 §5.4), so it holds no
/// control characters, and none of Unicode's format characters (general category
/// Cf): the bidirectional ones (UAX #9: `"Bank \u{202E}VT"` reads "Bank TV"), the
/// invisible ones (U+200B, U+FEFF: a name of U+FEFF alone reads as none), the tag
/// characters (U+E0000 block: text no one sees), the interlinear annotations
/// (U+FFF9 to U+FFFB: text many renderers drop). Nor line and paragraph separators
/// (U+2028, U+2029: one name shown as two lines), private-use characters (whatever
/// the reader's font puts there: U+F8FF is a logo on some systems) or noncharacters.
/// The joiners (U+200C, U+200D) that some scripts and emoji need stay, but a name
/// must show something besides them, and no character may carry more than
/// four combining marks.
pub fn check_name(name: &str) -> Result<String, MetadataError> {
    let name = name.trim();
    let chars = name.chars().count();
    // Characters that show nothing on their own: joiners, variation selectors, the
    // combining grapheme joiner, the Hangul fillers, the Braille blank, the Khmer
    // inherent vowels, and combining marks (with nothing to sit on). A name needs one
    // besides them.
    let blank = |c: char| {
        matches!(
            c,
            '\u{200C}'
                | '\u{200D}'
                | '\u{034F}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{FFA0}'
                | '\u{180B}'..='\u{180F}'
                | '\u{FE00}'..='\u{FE0F}'
        ) || unicode_normalization::char::is_combining_mark(c)
    };
    // Marks stacked on one letter past what any script writes (Vietnamese two, Thai
    // and Devanagari three or four) draw over the lines around the name on the
    // consent page: "A" and a hundred acute accents.
    let mut stacked = 0;
    let overstacked = name.chars().any(|c| {
        stacked = if unicode_normalization::char::is_combining_mark(c) {
            stacked + 1
        } else {
            0
        };
        stacked > MAX_STACKED_MARKS
    });
    if chars == 0
        || chars > MAX_NAME_CHARS
        || name.chars().any(|c| !shows_as_itself(c))
        || name.chars().all(|c| blank(c) || c.is_whitespace())
        || overstacked
    {
        return Err(MetadataError::BadName);
    }
    Ok(name.to_owned())
}

/// Whether `c` may be part of a name a person reads: not a control, format (Cf,
/// Unicode 15.1, the joiners U+200C and U+200D apart), separator other than a space,
/// private-use character or noncharacter.
fn shows_as_itself(c: char) -> bool {
    let format = matches!(
        c,
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'
            | '\u{200E}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    );
    let separator = matches!(c, '\u{2028}' | '\u{2029}');
    let private_use = matches!(
        c,
        '\u{E000}'..='\u{F8FF}' | '\u{F0000}'..='\u{FFFFD}' | '\u{100000}'..='\u{10FFFD}'
    );
    let noncharacter = matches!(c, '\u{FDD0}'..='\u{FDEF}') || (u32::from(c) & 0xFFFE) == 0xFFFE;
    !(c.is_control() || format || separator || private_use || noncharacter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ids::FIRST_REGISTERED;

    fn scopes() -> ScopeRegistry {
        let mut s = ScopeRegistry::default();
        for n in ["openid", "profile"] {
            s.register(n);
        }
        s
    }

    /// One configured client, "Living-room TV".
    fn configured() -> Clients {
        let tv = Client {
            id: ClientId(0),
            client_id: "living-room-tv".into(),
            name: "Living-room TV".into(),
            secret_sha256: None,
            auth_methods: vec![],
            allowed_scope: ScopeSet(0b11),
            default_scope: ScopeSet(0b11),
            device_grant: true,
            refresh_grant: false,
        };
        let mut index = ahash::AHashMap::new();
        index.insert(b"living-room-tv".to_vec().into_boxed_slice(), ClientId(0));
        Clients::new(vec![tv], index)
    }

    fn request(json: &str) -> ClientRegistration {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_public_device_app_registers_with_the_device_grant_and_every_scope() {
        let m = Metadata::from_request(
            &request(r#"{"client_name":"TV","token_endpoint_auth_method":"none"}"#),
            &scopes(),
            &configured(),
        )
        .unwrap();
        assert_eq!(m.auth_method, None);
        assert!(m.device_grant && !m.refresh_grant);
        assert_eq!(m.scope, ScopeSet(0b11));
        let new = m.register(ClientId(FIRST_REGISTERED + 7), 5_000, true);
        assert!(new.secret.is_none() && new.registered.client.is_public());
        assert_eq!(
            ClientId::parse_registered(&new.registered.client.client_id),
            Some(ClientId(FIRST_REGISTERED + 7))
        );
        // Debug shows neither secret (a log line of it would hand the client out).
        let shown = format!("{new:?}");
        let token = new.registration_token.clone().unwrap();
        assert!(!shown.contains(&token), "{shown}");
        assert!(
            shown.contains("registration_token: Some(\"<redacted>\")"),
            "{shown}"
        );
        let token = new.registration_token.unwrap();
        assert!(new.registered.registration_token_matches(&token));
        assert!(!new.registered.registration_token_matches("guess"));
    }

    #[test]
    fn a_confidential_client_gets_a_secret_that_rotates() {
        let m = Metadata::from_request(
            &request(r#"{"grant_types":["urn:ietf:params:oauth:grant-type:device_code","refresh_token"],"scope":"openid"}"#),
            &scopes(),
            &configured(),
        )
        .unwrap();
        // RFC 7591 §2: client_secret_basic when omitted.
        assert_eq!(m.auth_method, Some(AuthMethod::ClientSecretBasic));
        let mut new = m.register(ClientId(FIRST_REGISTERED), 0, false).registered;
        let old = new.client.secret_sha256;
        let secret = new.rotate_secret().unwrap();
        assert_ne!(new.client.secret_sha256, old);
        assert_eq!(
            new.client.secret_sha256,
            Some(Sha256::digest(secret.as_bytes()).into())
        );
        assert_eq!(new.metadata(&scopes()).client_secret_expires_at, Some(0));
    }

    #[test]
    fn bad_metadata_is_named() {
        let bad = |json: &str| {
            Metadata::from_request(&request(json), &scopes(), &configured()).unwrap_err()
        };
        assert_eq!(
            bad(r#"{"grant_types":["authorization_code"]}"#),
            MetadataError::UnsupportedGrantType("authorization_code".into())
        );
        assert_eq!(
            bad(r#"{"grant_types":["refresh_token"]}"#),
            MetadataError::NoDeviceGrant
        );
        assert_eq!(
            bad(r#"{"token_endpoint_auth_method":"private_key_jwt"}"#),
            MetadataError::UnsupportedAuthMethod("private_key_jwt".into())
        );
        assert!(matches!(
            bad(r#"{"scope":"admin"}"#),
            MetadataError::Scope(_)
        ));
        assert_eq!(bad(r#"{"client_name":"  "}"#), MetadataError::BadName);
        assert_eq!(bad(r#"{"client_name":"a\u0007b"}"#), MetadataError::BadName);
        // Bidirectional overrides and isolates would show another name than the one
        // registered to the person approving.
        for spoof in [
            "\\u202e", "\\u202a", "\\u2066", "\\u2069", "\\u200f", "\\u061c", "\\u200b", "\\ufeff",
        ] {
            let json = format!(r#"{{"client_name":"Bank {spoof}VT"}}"#);
            assert_eq!(bad(&json), MetadataError::BadName, "{json}");
        }
        // A configured application's name, up to case, spaces and punctuation: the
        // consent page would show two "Living-room TV"s (RFC 8628 §5.4). Dashes of
        // other code points were registered (helper-60).
        for name in [
            "Living-room TV",
            "living-room  tv",
            " LIVING-ROOM TV ",
            "Living\\u2010room TV",
            "Living\\u2011room TV",
            "Living\\u2012room\\u2002TV",
            "Living room TV.",
            "Living_room_TV",
            "\\uff2c\\uff29\\uff36\\uff29\\uff2e\\uff27\\uff0d\\uff32\\uff2f\\uff2f\\uff2d \\uff34\\uff36",
            "Living-room T\\u2164",
            // Look-alike letters of other scripts (UTS #39 confusables).
            "Liv\\u0456ng-r\\u043e\\u043em TV",
            "LIVING-R00M TV",
            "Living-roorn TV",
            "Living-room \\u0422V",
        ] {
            let json = format!(r#"{{"client_name":"{name}"}}"#);
            assert_eq!(
                bad(&json),
                MetadataError::NameTaken("Living-room TV".into()),
                "{json}"
            );
        }
        // A name of nothing visible.
        for blank in ["\\u200d", "\\u200c \\u200d", "\\u3164", "\\ufe0f\\u034f"] {
            let json = format!(r#"{{"client_name":"{blank}"}}"#);
            assert_eq!(bad(&json), MetadataError::BadName, "{json}");
        }
        // Letters of right-to-left scripts are names like any other, and so are emoji
        // made with joiners and variation selectors.
        for name in [
            "Living-room TV 2",
            "Living-room TVs",
            "Dining-room TV",
            r"\u05d8\u05dc\u05d5\u05d5\u05d9\u05d6\u05d9\u05d4",
            r"Living room \ud83d\udcfa\ufe0f",
            r"\ud83d\udc68\u200d\ud83d\udcbb TV",
        ] {
            let json = format!(r#"{{"client_name":"{name}"}}"#);
            assert!(
                Metadata::from_request(&request(&json), &scopes(), &configured()).is_ok(),
                "{json}"
            );
        }
    }

    #[test]
    fn names_read_alike_up_to_case_and_look_alike_letters_not_accents() {
        for (a, b) in [
            ("Smart TVI", "smart tvi"),
            ("\u{412}BC iPlayer", "BBC iPlayer"),
            // Case and look-alikes together (helper-81).
            ("RADI0 TV", "Radio TV"),
            ("\u{412}IG TV", "Big TV"),
            ("NETFL1X", "Netflix"),
            ("KIDS \u{422}V", "Kids TV"),
            ("Modern TV", "Modem TV"),
            ("TV 2000", "TV 2OOO"),
            // Written against upper case: the skeleton reads I as l (helper-82).
            ("KlTCHEN TV", "Kitchen TV"),
            ("PAYPAl", "PayPal"),
            ("Netf1ix", "NETFLIX"),
            // Emoji up to their variation selectors, symbols up to compatibility.
            ("\u{1f4fa}", "\u{1f4fa}\u{fe0f}"),
            ("\u{2122} \u{2122}", "TM tm"),
            ("\u{3c0}\u{3bf}\u{3b1}", "\u{3a0}\u{39f}\u{391}"),
        ] {
            assert!(same_name(a, b), "{a:?} and {b:?} read alike");
        }
        for (a, b) in [
            ("Caf\u{e9} TV", "Cafe TV"),
            ("TV 1", "TV 2"),
            ("Kitchen", "Kitchens"),
            // I, l and 1 share a skeleton, not a case: folded after it, these were one.
            ("IG TV", "LG TV"),
            ("Ian's TV", "Lan's TV"),
            // As written against lower case (helper-84): the skeleton reads I as l.
            ("Ian's radio", "Lan's radio"),
            ("Ion", "Lon"),
            ("Intel", "Lntel"),
            ("III", "LLL"),
            ("\u{1f4fa}", "\u{1f4fb}"),
            ("Studio Lo", "Studio 10"),
        ] {
            assert!(!same_name(a, b), "{a:?} and {b:?} read apart");
        }
    }
}
