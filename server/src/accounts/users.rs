//! The people who approve or deny: configured users, by username.

use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserId(pub u32);

#[derive(Debug, Clone)]
pub struct User {
    pub id: UserId,
    pub username: String,
    /// Display name.
    pub name: String,
    /// The argon2 PHC string of the user's password; `None`: the user cannot sign in
    /// to the verification pages (the admin endpoint can still decide as them).
    pub password_hash: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Users {
    users: Vec<User>,
    index: HashMap<String, UserId>,
}

impl Users {
    pub fn new(users: Vec<User>, index: HashMap<String, UserId>) -> Users {
        Users { users, index }
    }

    pub fn by_username(&self, username: &str) -> Option<&User> {
        self.index.get(username).map(|id| self.get(*id))
    }

    pub fn iter(&self) -> impl Iterator<Item = &User> {
        self.users.iter()
    }

    /// The user with this id. Ids come only from this registry, so the index is valid.
    pub fn get(&self, id: UserId) -> &User {
        &self.users[id.0 as usize]
    }
}
