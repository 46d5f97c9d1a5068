//! The HTTP layer: connections and their deadlines, reading requests (media type,
//! limits, the form parser, proxies' headers), the paths, and spelling answers. It
//! knows nothing of the application (`app/`) that runs on it.

pub(crate) mod body;
pub(crate) mod connection;
pub(crate) mod drain;
pub mod form;
pub mod forwarded;
pub mod paths;
pub(crate) mod response;
pub(crate) mod sources;

/// The answer to a device-code poll that is not a token, as the token endpoint sends
/// it (RFC 8628 §3.5): static bytes and headers. Public so that a bare server can answer
/// exactly the same bytes (`benches/`'s ceiling).
pub use response::poll_error as poll_answer;

/// Whether `method` reads a resource: GET, or HEAD, which every GET resource answers
/// too (RFC 9110 §9.1), with its head alone (hyper leaves a HEAD answer's body out).
pub(crate) fn is_read(method: &hyper::Method) -> bool {
    *method == hyper::Method::GET || *method == hyper::Method::HEAD
}
