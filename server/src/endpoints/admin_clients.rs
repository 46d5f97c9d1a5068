//! The admin API for applications, with the admin bearer token, for scripts and
//! `deviceflow-server clients add|list|remove`:
//!
//! - `GET /admin/clients[?limit=N][&after=NEXT]`: every client, configured and
//!   registered, in pages of at most [`PAGE_MAX`] (the default), each with the
//!   `next` to ask for the following one while there is one;
//! - `POST /admin/clients` (JSON client metadata, as RFC 7591 §2 spells it): registers
//!   one; the answer carries its `client_secret`, the only time it is shown;
//! - `DELETE /admin/clients/{client_id}`: deletes a registered client (204);
//! - `POST /admin/clients/{client_id}/secret`: gives it a new secret.
//!
//! Clients configured in the TOML file are listed but cannot be changed here (409).
//! Not routed at all unless an admin token is configured.

use std::borrow::Cow;
use std::net::IpAddr;

use bytes::Bytes;
use deviceflow_wire::ClientRegistration;
use hyper::http::request::Parts;
use hyper::{Method, Request, StatusCode};
use serde::Serialize;

use super::admin::error;
use crate::accounts::registration::client_metadata;
use crate::accounts::registration::{Rotation, ROTATION_RACED};
use crate::app::state::App;
use crate::audit::{self, Registrar};
use crate::http::form::percent_decode;
use crate::http::response::{self, OAuthError, Reply};
use crate::http::{is_read, paths};
use crate::protocol::ids::ClientId;
use crate::storage::store::{Store, Stored};

/// One client, as the list shows it.
#[derive(Serialize)]
struct Listed {
    #[serde(flatten)]
    metadata: ClientRegistration,
    /// `"configuration"` (the TOML file) or `"registered"`.
    source: &'static str,
}

#[derive(Serialize)]
struct List {
    clients: Vec<Listed>,
    /// What to send as `after` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

/// The most clients one page of the list holds, and how many it holds unless asked
/// for fewer. 49,152 clients can be registered on a store: the whole list in one
/// answer was 15 MB, more than a client reads (the command line's limit is 1 MiB).
pub(crate) const PAGE_MAX: usize = 1000;

/// Which page of the list is asked for: the clients after the index `after` (in the
/// list's order, by index: configured, then registered), at most `limit` of them.
struct Page {
    after: Option<u16>,
    limit: usize,
}

impl Page {
    /// Reads `?limit=N&after=NEXT`; anything else in the query is ignored, and each of
    /// the two is given once (RFC 6749 §3.2's rule for parameters).
    fn from_query(query: Option<&str>) -> Result<Page, OAuthError> {
        let (mut limit, mut after) = (None, None);
        for pair in query.unwrap_or_default().split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match name {
                "limit" => &mut limit,
                "after" => &mut after,
                _ => continue,
            };
            if slot.is_some() {
                return Err(OAuthError::invalid_request(format!(
                    "parameter \"{name}\" is repeated"
                )));
            }
            *slot = Some(percent_decode(value.as_bytes()).map_err(|_| {
                OAuthError::invalid_request(format!(
                    "parameter \"{name}\" is not percent-encoded UTF-8"
                ))
            })?);
        }
        let limit = match limit {
            None => PAGE_MAX,
            Some(n) => n
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=PAGE_MAX).contains(n))
                .ok_or_else(|| {
                    OAuthError::invalid_request(format!(
                        "limit must be a number of clients from 1 to {PAGE_MAX}"
                    ))
                })?,
        };
        let after = match after {
            None => None,
            Some(next) => Some(next.parse::<u16>().map_err(|_| {
                OAuthError::invalid_request("after must be the \"next\" of the page before")
            })?),
        };
        Ok(Page { after, limit })
    }
}

/// A rotated secret.
#[derive(Serialize)]
struct Rotated {
    client_id: String,
    client_secret: String,
}

impl<S: Store> App<S> {
    /// Whether `path` is the admin API for applications (only with an admin token).
    pub(crate) fn is_admin_clients(&self, path: &str) -> bool {
        self.settings.admin_token.is_some() && paths::below(path, paths::ADMIN_CLIENTS).is_some()
    }

    /// Answers the admin API for applications.
    pub(crate) async fn admin_clients<B>(&self, req: Request<B>, peer: IpAddr) -> Reply
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (parts, body) = req.into_parts();
        if let Some(refusal) = self.admin_refusal(&parts) {
            return refusal;
        }
        let rest = paths::below(parts.uri.path(), paths::ADMIN_CLIENTS).unwrap_or_default();
        // `/admin/clients/` is the list too, as a person or a script writes it (it was
        // a client with an empty id, whose GET was 405 "Method not allowed").
        let rest = if rest == "/" { "" } else { rest };
        let answer = match (rest, &parts.method) {
            ("", read) if is_read(read) => match Page::from_query(parts.uri.query()) {
                Ok(page) => self.list_clients(page).await.map_err(OAuthError::from),
                Err(e) => Err(e),
            },
            ("", &Method::POST) => self.add_client(&parts, body, peer).await,
            ("", _) => return response::method_not_allowed("GET, HEAD, POST"),
            (rest, method) => {
                let rest = rest.trim_start_matches('/');
                match (rest.strip_suffix("/secret"), method) {
                    (Some(client_id), &Method::POST) => self
                        .rotate_client_secret(&path_segment(client_id), peer)
                        .await
                        .map_err(OAuthError::from),
                    (Some(_), _) => return response::method_not_allowed("POST"),
                    (None, &Method::DELETE) => self
                        .remove_client(&path_segment(rest), peer)
                        .await
                        .map_err(OAuthError::from),
                    (None, _) => return response::method_not_allowed("DELETE"),
                }
            }
        };
        answer.unwrap_or_else(|e| e.reply())
    }

    async fn list_clients(&self, page: Page) -> Stored<Reply> {
        let scopes = &self.settings.scopes;
        let after = |id: u16| page.after.is_none_or(|a| id > a);
        let configured = self.settings.clients.iter().filter(|c| after(c.id.0));
        let mut registered = self.store.registered_clients().await?;
        registered.retain(|r| after(r.client.id.0));
        registered.sort_by_key(|r| r.client.id.0);
        let listed = |id: ClientId, metadata, source| (id.0, Listed { metadata, source });
        // One more than the page holds: whether there is a next page.
        let mut listed: Vec<(u16, Listed)> = configured
            .map(|c| listed(c.id, client_metadata(c, scopes), "configuration"))
            .chain(
                registered
                    .iter()
                    .map(|r| listed(r.client.id, r.metadata(scopes), "registered")),
            )
            .take(page.limit + 1)
            .collect();
        let more = listed.len() > page.limit;
        listed.truncate(page.limit);
        let next = more
            .then(|| listed.last().map(|(id, _)| id.to_string()))
            .flatten();
        let clients = listed.into_iter().map(|(_, l)| l).collect();
        Ok(response::json_value(
            StatusCode::OK,
            &List { clients, next },
        ))
    }

    async fn add_client<B>(&self, parts: &Parts, body: B, peer: IpAddr) -> Result<Reply, OAuthError>
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        // The same metadata as RFC 7591's, refused with the same code (§3.2.2).
        let metadata = self.read_metadata(parts, body).await?;
        let new = self.register_client(metadata, false).await??;
        let client_id = &new.registered.client.client_id;
        audit::client_changed(
            "client_registered",
            Registrar::AdminApi,
            client_id,
            None,
            peer,
        );
        let answer = ClientRegistration {
            client_secret: new.secret,
            ..new.registered.metadata(&self.settings.scopes)
        };
        Ok(response::json_value(StatusCode::CREATED, &answer))
    }

    async fn remove_client(&self, client_id: &str, peer: IpAddr) -> Stored<Reply> {
        if let Some(refusal) = self.configured_refusal(client_id) {
            return Ok(refusal);
        }
        if !self.delete_client(client_id).await? {
            return Ok(unknown(client_id));
        }
        audit::client_changed("client_deleted", Registrar::AdminApi, client_id, None, peer);
        Ok(response::no_content())
    }

    async fn rotate_client_secret(&self, client_id: &str, peer: IpAddr) -> Stored<Reply> {
        if let Some(refusal) = self.configured_refusal(client_id) {
            return Ok(refusal);
        }
        let Some(registered) = self.registered(client_id).await? else {
            return Ok(unknown(client_id));
        };
        if registered.client.is_public() {
            return Ok(error(
                StatusCode::CONFLICT,
                "public_client",
                &format!("client \"{client_id}\" is public: it has no secret to rotate"),
            ));
        }
        let secret = match self.rotate_secret(client_id).await? {
            Rotation::New(secret) => secret,
            Rotation::Raced => {
                return Ok(error(
                    StatusCode::CONFLICT,
                    "rotated_meanwhile",
                    ROTATION_RACED,
                ))
            }
            // Deleted meanwhile (public was answered above).
            Rotation::Gone | Rotation::Public => return Ok(unknown(client_id)),
        };
        audit::client_changed(
            "client_secret_rotated",
            Registrar::AdminApi,
            client_id,
            None,
            peer,
        );
        Ok(response::json_value(
            StatusCode::OK,
            &Rotated {
                client_id: client_id.to_owned(),
                client_secret: secret,
            },
        ))
    }

    /// 409 for a client of the configuration file, which only the file changes.
    fn configured_refusal(&self, client_id: &str) -> Option<Reply> {
        self.settings.clients.by_client_id(client_id).map(|_| {
            error(
                StatusCode::CONFLICT,
                "configured_client",
                &format!(
                    "client \"{client_id}\" is configured (the server's configuration file, or its embedded demo defaults), not registered: only a change of the configuration changes it"
                ),
            )
        })
    }
}

/// A path segment naming a client, percent-decoded (RFC 3986 §2.1: `%74v` is `tv`, and
/// `deviceflow-server clients` encodes every reserved character). In a path `+` is
/// itself, not a form's space. One that does not decode to UTF-8 is kept as it came,
/// and names no client.
fn path_segment(raw: &str) -> String {
    percent_decode(raw.replace('+', "%2B").as_bytes())
        .map_or_else(|_| raw.to_owned(), Cow::into_owned)
}

fn unknown(client_id: &str) -> Reply {
    error(
        StatusCode::NOT_FOUND,
        "unknown_client",
        &format!("no registered client has client_id \"{client_id}\""),
    )
}
