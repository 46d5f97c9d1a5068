#!/usr/bin/env bash
# Installs the Authlib device-flow peer from PyPI into a venv (idempotent, offline-safe
# once installed). State: $AUTHLIB_STATE (default /tmp/deviceflow-peers/authlib).
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1
cd "$(dirname "$0")"
STATE="${AUTHLIB_STATE:-/tmp/deviceflow-peers/authlib}"
VENV=$STATE/venv
mkdir -p "$STATE"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import authlib, flask' 2>/dev/null; then
    "$VENV/bin/pip" install -q -r requirements.txt
fi
"$VENV/bin/python" -c 'import importlib.metadata as m; print("versions:", ", ".join(f"{p} {m.version(p)}" for p in ("Authlib", "Flask", "Werkzeug")))'
