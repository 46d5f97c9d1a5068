#!/usr/bin/env bash
# Stops the peer started by start.sh (only its pid).
set -euo pipefail
PIDFILE="${AUTHLIB_STATE:-/tmp/deviceflow-peers/authlib}/server.pid"
if [ ! -s "$PIDFILE" ]; then echo "not running (no $PIDFILE)"; exit 0; fi
PID="$(cat "$PIDFILE")"
if kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID"
    for _ in $(seq 1 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
fi
rm -f "$PIDFILE"; echo "stopped pid $PID"
