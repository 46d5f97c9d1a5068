//! One module per endpoint. Each adds its handler to [`crate::http::state::App`].

pub(crate) mod admin;
pub(crate) mod admin_clients;
pub(crate) mod device_authorization;
pub(crate) mod introspection;
pub(crate) mod metadata;
pub(crate) mod registration;
pub(crate) mod revocation;
pub(crate) mod token;
