//! The admin API for applications, with the admin bearer token, for scripts and
//! `deviceflow-server clients add|list|remove`:
//!
//! - `GET /admin/clients`: every client, configured and registered;
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
use super::registration::{invalid_metadata, registrations_exhausted};
use crate::accounts::registration::{
    client_metadata, request_from_json, Metadata, MetadataDocument,
};
use crate::audit::{self, Registrar};
use crate::http::body::read_json;
use crate::http::form::percent_decode;
use crate::http::response::{self, OAuthError, Reply};
use crate::http::state::App;
use crate::http::{is_read, paths};
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
        let answer = match (rest, &parts.method) {
            ("", read) if is_read(read) => self.list_clients().await.map_err(OAuthError::from),
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

    async fn list_clients(&self) -> Stored<Reply> {
        let scopes = &self.settings.scopes;
        let mut clients: Vec<Listed> = self
            .settings
            .clients
            .iter()
            .map(|c| Listed {
                metadata: client_metadata(c, scopes),
                source: "configuration",
            })
            .collect();
        for r in self.store.registered_clients().await? {
            clients.push(Listed {
                metadata: r.metadata(scopes),
                source: "registered",
            });
        }
        Ok(response::json_value(StatusCode::OK, &List { clients }))
    }

    async fn add_client<B>(&self, parts: &Parts, body: B, peer: IpAddr) -> Result<Reply, OAuthError>
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let document: MetadataDocument = read_json(
            parts,
            body,
            self.settings.max_body_bytes,
            self.settings.body_read_timeout_ms,
        )
        .await?
        .map_err(OAuthError::invalid_request)?;
        let request = request_from_json(document).map_err(invalid_metadata)?;
        let metadata = Metadata::from_request(&request, &self.settings.scopes)
            .map_err(|e| invalid_metadata(e.to_string()))?;
        let new = self
            .register_client(metadata, false)
            .await?
            .ok_or_else(registrations_exhausted)?;
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
        let Some(secret) = self.rotate_secret(client_id).await? else {
            return Ok(unknown(client_id));
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
                    "client \"{client_id}\" is configured in the server's TOML file; change it there"
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
