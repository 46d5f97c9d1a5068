//! The application: the [`App`](state::App) state every handler runs on (settings,
//! store, clock, the person's side, what is rendered once), the router that picks the
//! endpoint or page a request goes to, and the counters `/metrics` shows. Above
//! `http/`, which only reads requests and spells answers.

pub(crate) mod metrics;
mod router;
pub(crate) mod state;
