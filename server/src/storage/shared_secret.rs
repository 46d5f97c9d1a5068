//! The 32 bytes every instance on one store shares
//! ([`Store::secret`](crate::storage::store::Store::secret)).

use std::sync::Arc;

use arc_swap::ArcSwap;

/// The store's shared secret ([`Store::secret`](crate::storage::store::Store::secret)),
/// as this instance runs on it. A running instance takes the store's value again when
/// another instance drew a new one after the store lost it (a Redis restarted empty,
/// see `storage/redis/conn.rs`), so that every clone (every seal) sees the new one: the
/// instances of one store never stay split. Read on the person's pages only, never on
/// the poll path.
#[derive(Clone)]
pub struct SharedSecret(Arc<ArcSwap<[u8; 32]>>);

impl SharedSecret {
    /// A secret of `bytes`, until `replace`d.
    pub fn new(bytes: [u8; 32]) -> SharedSecret {
        SharedSecret(Arc::new(ArcSwap::from_pointee(bytes)))
    }

    /// The value now.
    pub fn get(&self) -> [u8; 32] {
        **self.0.load()
    }

    /// Runs on `bytes` from now on, in every clone.
    pub(crate) fn replace(&self, bytes: [u8; 32]) {
        self.0.store(Arc::new(bytes));
    }
}

impl std::fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedSecret(..)")
    }
}
