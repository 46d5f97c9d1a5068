#!/usr/bin/env python3
"""A device-flow server built on Authlib (PyPI), the third real peer of the suite.

    server.py [--port 8002]

Everything on the wire that Authlib implements is Authlib's own, used as its
documentation shows (https://docs.authlib.org/en/latest/specs/rfc8628.html):
  - POST /device_authorization: authlib.oauth2.rfc8628.DeviceAuthorizationEndpoint
  - POST /token: authlib.oauth2.rfc8628.DeviceCodeGrant and
    authlib.oauth2.rfc6749.grants.RefreshTokenGrant (INCLUDE_NEW_REFRESH_TOKEN = True,
    the rotation RFC 9700 §4.14.2 asks of public clients), via Flask's
    AuthorizationServer (client authentication, error bodies, headers).
What Authlib leaves to the developer is written here, as small as its docs show:
  - the storage (in memory) and the hooks query_device_credential, query_user_grant,
    should_slow_down (False, as in the docs: Authlib never sends slow_down itself);
  - the RFC 8414 metadata document (Authlib validates metadata, it does not serve it);
  - the verification page GET/POST /device: sign in (alice / alice-password-1), type
    the code, approve or deny. The code is read as RFC 8628 §6.1 recommends
    (case-insensitive, characters outside the alphabet ignored); an expired or already
    decided code is refused.

Clients: authlib-device and authlib-device-b (public), authlib-confidential /
confidential-secret (client_secret_basic or _post), authlib-backend (public, without the
device grant). Scopes: read, write. Lifetime and interval: AUTHLIB_EXPIRES_IN (60) and
AUTHLIB_INTERVAL (5).
"""
import argparse
import html
import os
import threading
import time

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc8628 import DeviceAuthorizationEndpoint
from authlib.oauth2.rfc8628 import DeviceCodeGrant
from authlib.oauth2.rfc8628 import DeviceCredentialDict
from flask import Flask, jsonify, request

EXPIRES_IN = int(os.environ.get("AUTHLIB_EXPIRES_IN", "60"))
INTERVAL = int(os.environ.get("AUTHLIB_INTERVAL", "5"))
GRANT = "urn:ietf:params:oauth:grant-type:device_code"
ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"  # Authlib's create_string_user_code alphabet
USERS = {"alice": "alice-password-1"}

lock = threading.Lock()
credentials = {}  # device_code -> DeviceCredentialDict
user_grants = {}  # user_code -> (user, approved)
tokens = {}  # refresh_token -> token record


class Client(ClientMixin):
    def __init__(self, client_id, secret=None, grant_types=(GRANT, "refresh_token")):
        self.client_id = client_id
        self.secret = secret
        self.grant_types = grant_types

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return None

    def get_allowed_scope(self, scope):
        if not scope:
            return ""
        return " ".join(s for s in scope.split() if s in ("read", "write"))

    def check_redirect_uri(self, redirect_uri):
        return False

    def check_client_secret(self, client_secret):
        return self.secret is not None and client_secret == self.secret

    def check_endpoint_auth_method(self, method, endpoint):
        if self.secret is None:
            return method == "none"
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type):
        return False

    def check_grant_type(self, grant_type):
        return grant_type in self.grant_types


CLIENTS = {
    c.client_id: c
    for c in (
        Client("authlib-device"),
        Client("authlib-device-b"),
        Client("authlib-confidential", secret="confidential-secret"),
        Client("authlib-backend", grant_types=("refresh_token",)),
    )
}


def query_client(client_id):
    return CLIENTS.get(client_id)


def save_token(token, req):
    with lock:
        if token.get("refresh_token"):
            tokens[token["refresh_token"]] = dict(
                token,
                client_id=req.client.get_client_id(),
                user=getattr(req, "user", None),
                revoked=False,
            )


class Token(dict):
    """A refresh token record, as RefreshTokenGrant wants it."""

    def check_client(self, client):
        return self["client_id"] == client.get_client_id()

    def get_scope(self):
        return self.get("scope", "")

    def get_expires_in(self):
        return self.get("expires_in", 0)

    def is_expired(self):
        return False

    def is_revoked(self):
        return self["revoked"]


class MyDeviceAuthorizationEndpoint(DeviceAuthorizationEndpoint):
    EXPIRES_IN = EXPIRES_IN
    INTERVAL = INTERVAL

    def get_verification_uri(self):
        return request.host_url.rstrip("/") + "/device"

    def save_device_credential(self, client_id, scope, data):
        with lock:
            credentials[data["device_code"]] = DeviceCredentialDict(
                client_id=client_id,
                scope=scope,
                expires_at=time.time() + self.EXPIRES_IN,
                **data,
            )


class MyDeviceCodeGrant(DeviceCodeGrant):
    def query_device_credential(self, device_code):
        return credentials.get(device_code)

    def query_user_grant(self, user_code):
        return user_grants.get(user_code)

    def should_slow_down(self, credential):
        return False


class MyRefreshTokenGrant(grants.RefreshTokenGrant):
    INCLUDE_NEW_REFRESH_TOKEN = True
    # Authlib's default is client_secret_basic only, so the public device clients that
    # DeviceCodeGrant gives refresh tokens could never use them; allow what the device
    # code grant allows.
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def authenticate_refresh_token(self, refresh_token):
        t = tokens.get(refresh_token)
        if t and not t["revoked"]:
            return Token(t)
        return None

    def authenticate_user(self, credential):
        return credential.get("user")

    def revoke_old_credential(self, credential):
        with lock:
            tokens[credential["refresh_token"]]["revoked"] = True


app = Flask(__name__)
app.config["OAUTH2_SCOPES_SUPPORTED"] = ["read", "write"]
# Authlib issues refresh tokens only with a generator configured (True: its default one).
app.config["OAUTH2_REFRESH_TOKEN_GENERATOR"] = True
server = AuthorizationServer(app, query_client=query_client, save_token=save_token)
server.register_endpoint(MyDeviceAuthorizationEndpoint)
server.register_grant(MyDeviceCodeGrant)
server.register_grant(MyRefreshTokenGrant)


@app.post("/device_authorization")
def device_authorization():
    return server.create_endpoint_response("device_authorization")


@app.post("/token")
def token():
    return server.create_token_response()


@app.get("/.well-known/oauth-authorization-server")
def metadata():
    base = request.host_url.rstrip("/")
    return jsonify(
        issuer=base,
        device_authorization_endpoint=f"{base}/device_authorization",
        token_endpoint=f"{base}/token",
        grant_types_supported=[GRANT, "refresh_token"],
        scopes_supported=["read", "write"],
        token_endpoint_auth_methods_supported=[
            "none",
            "client_secret_basic",
            "client_secret_post",
        ],
    )


PAGE = """<!doctype html><title>Connect a device</title>
<h1>Connect a device</h1><p>{message}</p>
<form method="post" action="/device">
<label>Code <input name="user_code" value="{code}"></label>
<label>User <input name="username"></label>
<label>Password <input name="password" type="password"></label>
<button name="action" value="approve">Allow</button>
<button name="action" value="deny">Deny</button></form>"""


def page(message, code="", status=200):
    body = PAGE.format(message=html.escape(message), code=html.escape(code))
    return body, status, {
        "Content-Type": "text/html; charset=utf-8",
        "X-Frame-Options": "DENY",
        "Content-Security-Policy": "frame-ancestors 'none'",
        "Cache-Control": "no-store",
    }


def normalize(typed):
    """RFC 8628 §6.1: case-insensitive; characters outside the alphabet ignored."""
    kept = [c for c in typed.upper() if c in ALPHABET]
    return "".join(kept)


@app.get("/device")
def verification_page():
    return page("Type the code shown on your device.", request.args.get("user_code", ""))


@app.post("/device")
def decide():
    user = request.form.get("username", "")
    if USERS.get(user) != request.form.get("password"):
        return page("Wrong user or password.", status=401)
    typed = normalize(request.form.get("user_code", ""))
    with lock:
        found = next(
            (c for c in credentials.values() if normalize(c["user_code"]) == typed and typed),
            None,
        )
        if found is None or found.is_expired():
            return page("That code is not valid, or has expired.", status=400)
        if found["user_code"] in user_grants:
            return page("That code was already used.", status=409)
        approved = request.form.get("action") == "approve"
        user_grants[found["user_code"]] = (user, approved)
    return page("Done: return to your device." if approved else "Denied: the device gets no access.")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8002)
    args = parser.parse_args()
    app.run(host="127.0.0.1", port=args.port, threaded=True)
