"""Authlib's OAuth 2.0 client (its requests integration, OAuth2Session) runs a device
flow against deviceflow-server: registers its app (RFC 7591), asks for codes
(RFC 8628 §3.1), prints the user code for the test to approve, polls (§3.4, §3.5:
authorization_pending, slow_down), then refreshes its token (RFC 6749 §6).

Authlib offers no client-side helper for RFC 7591 registration nor for the RFC 8628
device authorization request: registration is a plain requests POST, the device
authorization request a plain POST through Authlib's session; the token requests are
Authlib's own (fetch_token, refresh_token).

Usage: device_flow.py ISSUER INITIAL_ACCESS_TOKEN. Prints JSON lines: the user code
first, then the outcome with every exchange; exits 1 on failure.
"""

import importlib.metadata
import json
import sys
import time

import requests
from authlib.integrations.requests_client import OAuth2Session, OAuthError

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SCOPE = "openid tv"

issuer, initial_token = sys.argv[1].rstrip("/"), sys.argv[2]
exchange = []


def record(resp, *args, **kwargs):
    """Keeps every request and answer, for the report of a failure."""
    body = resp.request.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    exchange.append(
        {
            "request": f"{resp.request.method} {resp.request.url}",
            "content_type": resp.request.headers.get("Content-Type"),
            "body": body,
            "status": resp.status_code,
            "answer": resp.text[:600],
        }
    )


def say(**fields):
    print(json.dumps(fields), flush=True)


versions = {p: importlib.metadata.version(p) for p in ("Authlib", "requests")}
http = requests.Session()
http.hooks["response"].append(record)
try:
    meta = http.get(f"{issuer}/.well-known/oauth-authorization-server").json()
    registered = http.post(
        meta["registration_endpoint"],
        json={
            "client_name": "Authlib TV",
            "grant_types": [DEVICE_GRANT, "refresh_token"],
            "token_endpoint_auth_method": "none",
            "scope": SCOPE,
        },
        headers={"Authorization": f"Bearer {initial_token}"},
    )
    registered.raise_for_status()
    client_id = registered.json()["client_id"]

    client = OAuth2Session(client_id, scope=SCOPE, token_endpoint_auth_method="none")
    client.hooks["response"].append(record)
    # withhold_token: the session has no token yet to attach.
    answer = client.post(
        meta["device_authorization_endpoint"],
        data={"client_id": client_id, "scope": SCOPE},
        withhold_token=True,
    )
    answer.raise_for_status()
    codes = answer.json()
    say(event="user_code", user_code=codes["user_code"], client_id=client_id)

    # RFC 8628 §3.5: wait the interval (5 s if none) before each poll, 5 s more after
    # every slow_down; any other error ends the flow.
    interval = codes.get("interval", 5)
    pending = slow_downs = 0
    deadline = time.monotonic() + codes["expires_in"]
    while True:
        time.sleep(interval)
        try:
            token = client.fetch_token(
                meta["token_endpoint"],
                grant_type=DEVICE_GRANT,
                device_code=codes["device_code"],
            )
            break
        except OAuthError as e:
            if e.error == "authorization_pending" and time.monotonic() < deadline:
                pending += 1
                continue
            if e.error == "slow_down":
                slow_downs += 1
                interval += 5
                continue
            raise

    refreshed = client.refresh_token(
        meta["token_endpoint"], refresh_token=token["refresh_token"]
    )
    say(
        ok=True,
        client="Authlib",
        versions=versions,
        client_id=client_id,
        pending=pending,
        slow_downs=slow_downs,
        scope=token.get("scope"),
        refreshed_scope=refreshed.get("scope"),
        refresh_rotated=refreshed["refresh_token"] != token["refresh_token"],
        access_token=refreshed["access_token"],
        requests=len(exchange),
    )
except Exception as e:  # noqa: BLE001 - every failure is reported with the exchange
    say(ok=False, client="Authlib", versions=versions, error=repr(e), exchange=exchange)
    sys.exit(1)
