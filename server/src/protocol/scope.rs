//! Scopes (RFC 6749 §3.3) as a bit set over the server's scope registry, so that a
//! session carries its scope in 8 bytes and a check is a mask.

/// Up to 64 distinct scopes across the whole configuration.
pub const MAX_SCOPES: usize = 64;

/// A set of scopes, one bit per scope of the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ScopeSet(pub u64);

impl ScopeSet {
    /// No scope.
    pub const EMPTY: ScopeSet = ScopeSet(0);

    /// Whether every scope of `self` is in `other`.
    pub fn is_subset_of(self, other: ScopeSet) -> bool {
        self.0 & !other.0 == 0
    }

    /// Whether it holds no scope.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// Every scope any client may ask for, in configuration order; a scope's bit is its index.
#[derive(Debug, Clone, Default)]
pub struct ScopeRegistry {
    names: Vec<String>,
}

/// Why a `scope` parameter was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// The scope is not defined by this server (RFC 6749 §5.2 `invalid_scope`).
    #[error("scope \"{0}\" is not known to this server")]
    Unknown(String),
    /// The client may not ask for this scope.
    #[error("scope \"{0}\" is not allowed for this client")]
    NotAllowed(String),
    /// The scope parameter is not RFC 6749 §3.3 syntax.
    #[error("the scope parameter is malformed (RFC 6749 §3.3: space-delimited, %x21 / %x23-5B / %x5D-7E)")]
    Malformed,
    /// The scope parameter is spaces alone.
    #[error("the scope parameter names no scope (RFC 6749 §3.3: at least one scope-token)")]
    NoScope,
}

impl ScopeRegistry {
    /// Registers `name` if new and returns its bit; `None` past [`MAX_SCOPES`].
    pub fn register(&mut self, name: &str) -> Option<ScopeSet> {
        if let Some(i) = self.names.iter().position(|n| n == name) {
            return Some(ScopeSet(1 << i));
        }
        if self.names.len() == MAX_SCOPES {
            return None;
        }
        self.names.push(name.to_owned());
        Some(ScopeSet(1 << (self.names.len() - 1)))
    }

    /// Parses a `scope` parameter against what `allowed` permits.
    ///
    /// RFC 6749 §3.3: "a list of space-delimited, case-sensitive strings", each
    /// `1*( %x21 / %x23-5B / %x5D-7E )`.
    pub fn parse(&self, scope: &str, allowed: ScopeSet) -> Result<ScopeSet, ScopeError> {
        let mut set = ScopeSet::EMPTY;
        for token in scope.split(' ') {
            if token.is_empty() {
                // Several spaces in a row: tolerate, as most servers do.
                continue;
            }
            if !token.bytes().all(is_scope_char) {
                return Err(ScopeError::Malformed);
            }
            let Some(i) = self.names.iter().position(|n| n == token) else {
                return Err(ScopeError::Unknown(token.to_owned()));
            };
            let bit = ScopeSet(1 << i);
            if !bit.is_subset_of(allowed) {
                return Err(ScopeError::NotAllowed(token.to_owned()));
            }
            set.0 |= bit.0;
        }
        // RFC 6749 §3.3: `scope = scope-token *( SP scope-token )`. Spaces alone are
        // malformed (§5.2 `invalid_scope`), not a request for nothing; an empty value
        // is an omitted one (§3.2), which callers see as absent.
        if set.is_empty() && !scope.is_empty() {
            return Err(ScopeError::NoScope);
        }
        Ok(set)
    }

    /// The space-delimited form of `set`, in registry order.
    pub fn format(&self, set: ScopeSet) -> String {
        let mut out = String::new();
        for (i, name) in self.names.iter().enumerate() {
            if set.0 & (1 << i) != 0 {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(name);
            }
        }
        out
    }

    /// Every scope this server knows.
    pub fn all(&self) -> ScopeSet {
        ScopeSet(match self.names.len() {
            MAX_SCOPES => u64::MAX,
            n => (1u64 << n) - 1,
        })
    }

    /// The scope names, by bit.
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
pub fn is_scope_char(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> (ScopeRegistry, ScopeSet) {
        let mut r = ScopeRegistry::default();
        let a = r.register("openid").unwrap();
        let b = r.register("profile").unwrap();
        r.register("admin").unwrap();
        (r, ScopeSet(a.0 | b.0))
    }

    #[test]
    fn parse_accepts_allowed_scopes_in_any_order() {
        let (r, allowed) = registry();
        let set = r.parse("profile openid", allowed).unwrap();
        assert_eq!(set, allowed);
        assert_eq!(r.format(set), "openid profile");
        assert_eq!(r.parse("", allowed).unwrap(), ScopeSet::EMPTY);
    }

    #[test]
    fn parse_names_the_scope_it_refuses() {
        let (r, allowed) = registry();
        assert_eq!(
            r.parse("openid admin", allowed),
            Err(ScopeError::NotAllowed("admin".into()))
        );
        assert_eq!(
            r.parse("bogus", allowed),
            Err(ScopeError::Unknown("bogus".into()))
        );
        assert_eq!(r.parse("open\"id", allowed), Err(ScopeError::Malformed));
        assert_eq!(r.parse(" ", allowed), Err(ScopeError::NoScope));
        assert_eq!(r.parse("   ", allowed), Err(ScopeError::NoScope));
        assert_eq!(r.parse("", allowed), Ok(ScopeSet::EMPTY));
    }

    #[test]
    fn register_is_idempotent_and_bounded() {
        let mut r = ScopeRegistry::default();
        assert_eq!(r.register("a"), r.register("a"));
        for i in 1..MAX_SCOPES {
            assert!(r.register(&format!("s{i}")).is_some());
        }
        assert_eq!(r.register("one-too-many"), None);
    }
}
