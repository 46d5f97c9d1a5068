//! The people who approve or deny: configured users, by username.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use crate::protocol::ids::UserId;

/// A person who may sign in to approve devices.
#[derive(Debug, Clone)]
pub struct User {
    /// Its index.
    pub id: UserId,
    /// What the person types to sign in.
    pub username: String,
    /// Display name.
    pub name: String,
    /// The argon2 PHC string of the user's password; `None`: the user cannot sign in
    /// to the verification pages (the admin endpoint can still decide as them).
    pub password_hash: Option<String>,
    /// May manage applications on the applications page.
    pub admin: bool,
}

impl User {
    /// What a sign-in of this user is bound to: a fingerprint of the password hash it
    /// was checked against. A changed password changes it, and so ends every sign-in
    /// made with the old one (whoever signed in with a stolen password is out at the
    /// change, on every instance of a shared store).
    pub fn credential(&self) -> Credential {
        let hash = self.password_hash.as_deref().unwrap_or_default();
        let digest = Sha256::digest(hash.as_bytes());
        let bits = u64::from_le_bytes(digest[..8].try_into().expect("8 of 32 bytes"));
        // 0 is what a web session recorded before sessions were bound reads as.
        Credential(bits.max(1))
    }
}

/// A fingerprint of a user's password hash ([`User::credential`]); 0 is none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Credential(pub u64);

/// The configured people, by index and by username.
#[derive(Debug, Clone, Default)]
pub struct Users {
    users: Vec<User>,
    index: HashMap<String, UserId>,
}

/// How logs name a user whom a stored record names and the configuration no longer has.
pub const REMOVED_USER: &str = "(a user no longer configured)";

impl Users {
    /// The people, with the index of their usernames.
    pub fn new(users: Vec<User>, index: HashMap<String, UserId>) -> Users {
        Users { users, index }
    }

    /// The person with this username.
    pub fn by_username(&self, username: &str) -> Option<&User> {
        self.index.get(username).and_then(|id| self.get(*id))
    }

    /// Every person, in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = &User> {
        self.users.iter()
    }

    /// The user with this id; `None` for one the configuration no longer has, whom a
    /// stored record still names (a shared store outlives a restart with fewer
    /// `[[users]]`): such a person decides nothing and is given no token.
    pub fn get(&self, id: UserId) -> Option<&User> {
        self.users.get(id.0 as usize)
    }

    /// The username for logs and audit events, or [`REMOVED_USER`].
    pub fn username(&self, id: UserId) -> &str {
        self.get(id).map_or(REMOVED_USER, |u| u.username.as_str())
    }
}
