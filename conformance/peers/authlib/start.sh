#!/usr/bin/env bash
# Starts the Authlib device-flow peer on 127.0.0.1:PORT in the background.
# Usage: ./start.sh [PORT]   (default 8002). Runs ./setup.sh first if needed.
# AUTHLIB_EXPIRES_IN (default 60) and AUTHLIB_INTERVAL (default 5) set the codes'
# lifetime and polling interval (Authlib's DeviceAuthorizationEndpoint attributes).
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1
cd "$(dirname "$0")"
PORT="${1:-8002}"
STATE="${AUTHLIB_STATE:-/tmp/deviceflow-peers/authlib}"
PIDFILE=$STATE/server.pid
if [ ! -x "$STATE/venv/bin/python" ] || ! "$STATE/venv/bin/python" -c 'import authlib, flask' 2>/dev/null; then
    ./setup.sh
fi
if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    echo "already running: pid $(cat "$PIDFILE")" >&2; exit 1
fi
nohup "$STATE/venv/bin/python" server.py --port "$PORT" >"$STATE/server.log" 2>&1 &
echo $! > "$PIDFILE"
for _ in $(seq 1 100); do
    if curl -s -o /dev/null -m 2 "http://127.0.0.1:$PORT/.well-known/oauth-authorization-server"; then
        echo "Authlib peer up: http://127.0.0.1:$PORT  (pid $(cat "$PIDFILE"), log $STATE/server.log)"
        exit 0
    fi
    sleep 0.2
done
echo "the peer did not come up within 20 s; see $STATE/server.log" >&2
tail -20 "$STATE/server.log" >&2 || true
exit 1
