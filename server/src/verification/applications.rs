//! The applications page, `/device/applications`, for administrators (users with
//! `admin = true`): every client listed; a device app registered (name, public or
//! confidential, scopes, refresh tokens), its `client_id` shown and a confidential
//! client's secret shown exactly once; a secret rotated; an application deleted, after
//! a confirmation. The same acts as RFC 7591 and the admin API
//! (`endpoints/registration.rs`), the same frame, CSRF token and headers as every page.
//!
//! Not signed in: to sign-in. Signed in but not an administrator: 403.

use deviceflow_wire::{ClientRegistration, GRANT_TYPE_DEVICE_CODE, GRANT_TYPE_REFRESH_TOKEN};
use hyper::StatusCode;

use super::pages::{self, Application, RegisterForm};
use super::{field, html, paths, Visit};
use crate::accounts::registration::{client_metadata, Metadata};
use crate::accounts::registration::{Rotation, Unregistered, ROTATION_RACED};
use crate::accounts::users::User;
use crate::app::state::App;
use crate::audit::{self, Registrar};
use crate::http::form::Form;
use crate::http::response::Reply;
use crate::storage::store::{Store, Stored};

impl<S: Store> App<S> {
    /// `GET /device/applications`.
    pub(super) async fn applications_page(&self, visit: &Visit) -> Stored<Reply> {
        if let Err(refusal) = self.administrator(visit) {
            return Ok(*refusal);
        }
        let form = self.empty_register_form();
        self.list_page(visit, StatusCode::OK, &form, None, None)
            .await
    }

    /// `POST /device/applications`: `action` is `register`, `rotate`, `delete` (which
    /// asks first) or `delete_confirmed`; always with the session's CSRF token.
    pub(super) async fn manage_application(&self, visit: &Visit, form: &Form<'_>) -> Stored<Reply> {
        let Some((_, session, _)) = visit.signed_in() else {
            return Ok(self.plain_page(
                StatusCode::FORBIDDEN,
                "You are signed out",
                "Nothing was changed: you are not signed in any more. Sign in and try again.",
                Some((&pages::AfterSignIn::Applications.sign_in_url(), "Sign in")),
            ));
        };
        let admin = match self.administrator(visit) {
            Ok(admin) => admin,
            Err(refusal) => return Ok(*refusal),
        };
        if !session
            .csrf
            .matches(field(form, super::csrf::FIELD).as_deref())
        {
            return Ok(self.stale_form(paths::APPLICATIONS));
        }
        let client_id = field(form, "client_id").unwrap_or_default();
        match field(form, "action").as_deref() {
            Some("register") => self.register_on_page(visit, admin, form).await,
            Some("rotate") => self.rotate_on_page(visit, admin, &client_id).await,
            Some("delete") => self.confirm_delete(visit, &client_id).await,
            Some("delete_confirmed") => self.delete_on_page(visit, admin, &client_id).await,
            _ => Ok(self.plain_page(
                StatusCode::BAD_REQUEST,
                "Nothing to do",
                "The form did not say what to do. Go back and press one of the buttons.",
                Some((paths::APPLICATIONS, "Applications")),
            )),
        }
    }

    /// The signed-in administrator; else to sign-in, or 403 for anyone else.
    fn administrator(&self, visit: &Visit) -> Result<&User, Box<Reply>> {
        // A visit is signed in only as a configured user (`visit`).
        let Some(user) = visit
            .signed_in()
            .and_then(|(_, _, user)| self.settings.users.get(user))
        else {
            return Err(Box::new(html::redirect(
                &pages::AfterSignIn::Applications.sign_in_url(),
            )));
        };
        if !user.admin {
            return Err(Box::new(self.show(
                visit,
                StatusCode::FORBIDDEN,
                "Administrators only",
                &pages::message(
                    "Administrators only",
                    &format!(
                        "Only administrators manage applications, and {} is not one. Nothing was shown or changed.",
                        user.username
                    ),
                    Some((paths::DEVICE, "Connect a device")),
                ),
            )));
        }
        Ok(user)
    }

    /// The list and the registration form, with a notice or an error.
    async fn list_page(
        &self,
        visit: &Visit,
        status: StatusCode,
        form: &RegisterForm<'_>,
        notice: Option<&str>,
        error: Option<&str>,
    ) -> Stored<Reply> {
        let scopes = &self.settings.scopes;
        let registered = self.store.registered_clients().await?;
        let configured = self.settings.clients.iter().map(|c| (c, true));
        let all = configured.chain(registered.iter().map(|r| (&r.client, false)));
        let metadata: Vec<(ClientRegistration, bool)> = all
            .map(|(c, configured)| (client_metadata(c, scopes), configured))
            .collect();
        let apps: Vec<Application<'_>> = metadata
            .iter()
            .map(|(m, configured)| Application {
                client_id: m.client_id.as_deref().unwrap_or_default(),
                name: m.client_name.as_deref().unwrap_or_default(),
                auth_method: m.token_endpoint_auth_method.as_deref().unwrap_or("none"),
                scope: m.scope.clone().unwrap_or_default(),
                refresh: m
                    .grant_types
                    .iter()
                    .flatten()
                    .any(|g| g == GRANT_TYPE_REFRESH_TOKEN),
                configured: *configured,
            })
            .collect();
        let token = self.session_token(visit);
        let main = pages::applications(&token, &apps, form, notice, error);
        Ok(self.show(visit, status, "Applications", &main))
    }

    fn session_token(&self, visit: &Visit) -> String {
        visit
            .signed_in()
            .map(|(_, s, _)| s.csrf.encode())
            .unwrap_or_default()
    }

    fn empty_register_form(&self) -> RegisterForm<'_> {
        RegisterForm {
            name: "",
            auth_method: "none",
            scope: "",
            known: self.settings.scopes.names().join(" "),
            refresh: true,
        }
    }

    async fn register_on_page(
        &self,
        visit: &Visit,
        admin: &User,
        form: &Form<'_>,
    ) -> Stored<Reply> {
        let name = field(form, "client_name").unwrap_or_default();
        let auth_method = field(form, "auth_method").unwrap_or_else(|| "none".to_owned());
        let refresh = field(form, "with_refresh").is_some();
        let scope = field(form, "scope").unwrap_or_default();
        let sent = RegisterForm {
            name: &name,
            auth_method: &auth_method,
            scope: &scope,
            known: self.settings.scopes.names().join(" "),
            refresh,
        };
        if scope.trim().is_empty() && !self.settings.scopes.names().is_empty() {
            let why = "Choose at least one scope the application may ask for.";
            return self
                .list_page(visit, StatusCode::BAD_REQUEST, &sent, None, Some(why))
                .await;
        }
        let mut grant_types = vec![GRANT_TYPE_DEVICE_CODE.to_owned()];
        if refresh {
            grant_types.push(GRANT_TYPE_REFRESH_TOKEN.to_owned());
        }
        let request = ClientRegistration {
            // An empty name is refused by the check of client_name.
            client_name: Some(name.clone()),
            token_endpoint_auth_method: Some(auth_method.clone()),
            grant_types: Some(grant_types),
            scope: Some(scope.clone()),
            ..ClientRegistration::default()
        };
        let metadata =
            match Metadata::from_request(&request, &self.settings.scopes, &self.settings.clients) {
                Ok(m) => m,
                Err(e) => {
                    let why = e.to_string();
                    return self
                        .list_page(visit, StatusCode::BAD_REQUEST, &sent, None, Some(&why))
                        .await;
                }
            };
        let new = match self.register_client(metadata, false).await? {
            Ok(new) => new,
            Err(Unregistered::Name(e)) => {
                let why = e.to_string();
                return self
                    .list_page(visit, StatusCode::BAD_REQUEST, &sent, None, Some(&why))
                    .await;
            }
            Err(Unregistered::Exhausted) => {
                let why = "This server's store cannot register any more applications.";
                return self
                    .list_page(visit, StatusCode::CONFLICT, &sent, None, Some(why))
                    .await;
            }
        };
        let client = &new.registered.client;
        audit::client_changed(
            "client_registered",
            Registrar::Page,
            &client.client_id,
            Some(&admin.username),
            visit.peer,
        );
        let main = pages::registered(
            "Application registered",
            &client.name,
            &client.client_id,
            new.secret.as_deref(),
        );
        Ok(self.show(visit, StatusCode::OK, "Application registered", &main))
    }

    async fn rotate_on_page(&self, visit: &Visit, admin: &User, client_id: &str) -> Stored<Reply> {
        let Some(registered) = self.registered(client_id).await? else {
            return self.gone(visit, client_id).await;
        };
        let secret = match self.rotate_secret(client_id).await? {
            Rotation::New(secret) => secret,
            Rotation::Raced => {
                let form = self.empty_register_form();
                let why = format!("The secret of {client_id} was not rotated: {ROTATION_RACED}.");
                return self
                    .list_page(visit, StatusCode::CONFLICT, &form, None, Some(&why))
                    .await;
            }
            // Public (the page offers no button for it), or deleted meanwhile.
            Rotation::Gone | Rotation::Public => return self.gone(visit, client_id).await,
        };
        audit::client_changed(
            "client_secret_rotated",
            Registrar::Page,
            client_id,
            Some(&admin.username),
            visit.peer,
        );
        let main = pages::registered(
            "New secret",
            &registered.client.name,
            client_id,
            Some(&secret),
        );
        Ok(self.show(visit, StatusCode::OK, "New secret", &main))
    }

    async fn confirm_delete(&self, visit: &Visit, client_id: &str) -> Stored<Reply> {
        let Some(registered) = self.registered(client_id).await? else {
            return self.gone(visit, client_id).await;
        };
        let name = &registered.client.name;
        let main = pages::confirm_delete(&self.session_token(visit), name, client_id);
        Ok(self.show(visit, StatusCode::OK, &format!("Delete {name}?"), &main))
    }

    async fn delete_on_page(&self, visit: &Visit, admin: &User, client_id: &str) -> Stored<Reply> {
        let Some(registered) = self.registered(client_id).await? else {
            return self.gone(visit, client_id).await;
        };
        if !self.delete_client(client_id).await? {
            return self.gone(visit, client_id).await;
        }
        audit::client_changed(
            "client_deleted",
            Registrar::Page,
            client_id,
            Some(&admin.username),
            visit.peer,
        );
        let notice = format!("{} was deleted.", registered.client.name);
        let form = self.empty_register_form();
        self.list_page(visit, StatusCode::OK, &form, Some(&notice), None)
            .await
    }

    /// The list, saying that `client_id` is not a registered application (any more).
    async fn gone(&self, visit: &Visit, client_id: &str) -> Stored<Reply> {
        let why = if self.settings.clients.by_client_id(client_id).is_some() {
            format!("{client_id} is configured (the server's configuration file, or its embedded demo defaults), not registered: only a change of the configuration changes it.")
        } else {
            format!("No registered application has the client_id {client_id}; nothing was changed.")
        };
        let form = self.empty_register_form();
        self.list_page(visit, StatusCode::NOT_FOUND, &form, None, Some(&why))
            .await
    }
}
