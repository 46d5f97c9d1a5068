//! The HTTP layer: connections and their deadlines, routing, reading requests,
//! spelling answers, and the application state every handler runs on.

pub(crate) mod body;
pub(crate) mod connection;
pub mod form;
pub(crate) mod metrics;
pub mod paths;
pub(crate) mod response;
mod router;
pub(crate) mod state;
