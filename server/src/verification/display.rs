//! The device-display page: what a device with a screen but no keyboard (a TV's
//! browser, a kiosk) shows, the user code large and a QR code of
//! `verification_uri_complete` to scan with a phone (RFC 8628 §3.3.1).
//!
//! It needs no sign-in and looks nothing up: it shows any well-formed code, so it
//! tells nobody whether a code exists.

use hyper::StatusCode;

use super::{html, pages, paths, Visit};
use crate::app::state::App;
use crate::http::response::Reply;
use crate::storage::store::Store;

impl<S: Store> App<S> {
    /// `GET /device/display?user_code=…`.
    pub(super) fn display_page(&self, visit: &Visit) -> Reply {
        let Some(code) = visit.query_user_code() else {
            return self.plain_page(
                StatusCode::BAD_REQUEST,
                "No code to show",
                &format!(
                    "This page shows a device's code. Open it as {}{}?user_code= followed by the code, like BCDF-GHJK.",
                    self.verification.base,
                    paths::DISPLAY
                ),
                None,
            );
        };
        let uri = &self.verification.verification_uri;
        let complete = format!("{uri}?user_code={}", code.display());
        // A verification_uri_complete fits a QR code by far; if a configured issuer
        // were ever too long for one, the page still shows the code and the address.
        let label = format!("QR code of {complete}");
        let svg = deviceflow_device::qr::svg(&complete, &html::escape(&label)).unwrap_or_default();
        let main = pages::display(code, uri, &svg);
        // The device's screen: no one is signed in there, whatever the browser holds.
        html::page(
            StatusCode::OK,
            &html::Frame {
                site: &self.verification.site,
                base: &self.verification.base,
                title: "Your code",
                main: &main,
                footer: "",
            },
        )
    }
}
