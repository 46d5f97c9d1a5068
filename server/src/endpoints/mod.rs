//! One module per endpoint. Each adds its handler to [`crate::http::state::App`].

pub mod admin;
pub mod device_authorization;
pub mod introspection;
pub mod metadata;
pub mod revocation;
pub mod token;
