#!/usr/bin/env bash
# instructions.sh: user-space instructions per poll of our server, counted by valgrind
# (callgrind), for one or more builds: a figure that other load on the machine cannot
# move, where requests/s and CPU time can (a shared machine, a VM without hardware
# performance counters). Each build serves a pending code (slow_down off) to a
# keep-alive client twice, SMALL and LARGE polls; the difference of the two totals over
# LARGE - SMALL is the cost of one poll, start-up and shutdown cancelled out. The server
# runs one tokio worker (TOKIO_WORKER_THREADS=1): with two, how often the idle one
# parks and wakes depends on timing, and moved the figure by ±300 between runs of one
# binary; with one, runs of one binary agree within about 20.
#
# Usage: bash benches/instructions.sh [NAME=BINARY ...]
#   default: this checkout's target/release/deviceflow-server, built first.
# Environment (defaults in brackets):
#   SMALL   polls in the short run [1000]
#   LARGE   polls in the long run [6000]
# Needs valgrind, curl and python3. Kills only the servers it started.
set -euo pipefail

SMALL=${SMALL:-1000}
LARGE=${LARGE:-6000}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
work="$(mktemp -d)"
script=instructions.sh
# shellcheck source=common.sh
source "$here/common.sh"

for v in SMALL LARGE; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, not '${!v}'"
done
((LARGE > SMALL)) || die "LARGE ($LARGE) must be more than SMALL ($SMALL)"
for tool in valgrind curl python3; do
    command -v "$tool" >/dev/null || die "$tool is required"
done

builds=("$@")
if ((${#builds[@]} == 0)); then
    cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p deviceflow-server
    builds=("ours=${CARGO_TARGET_DIR:-$root/target}/release/deviceflow-server")
fi

# The client: one keep-alive connection, one code, N polls, each answered 400.
cat >"$work/polls.py" <<'EOF'
import http.client, json, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
form = {"Content-Type": "application/x-www-form-urlencoded"}
c = http.client.HTTPConnection("127.0.0.1", port)
c.request("POST", "/oauth/device_authorization", "client_id=demo-device", form)
code = json.loads(c.getresponse().read())["device_code"]
body = ("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code"
        f"&device_code={code}&client_id=demo-device")
for _ in range(n):
    c.request("POST", "/oauth/token", body, form)
    r = c.getresponse()
    r.read()
    if r.status != 400:
        sys.exit(f"a poll was answered {r.status}, not 400 authorization_pending")
EOF

# Instructions (callgrind's total) of BINARY ($1) serving N ($2) polls.
count() {
    local out="$work/callgrind.out" port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    TOKIO_WORKER_THREADS=1 valgrind --tool=callgrind --callgrind-out-file="$out" "$1" --listen "127.0.0.1:$port" \
        --slow-down off --quiet --expires-in 3600 --interval 5 >"$work/server.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 100); do
        curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break
        sleep 0.2
    done
    python3 "$work/polls.py" "$port" "$2" || die "the client failed against $1"
    kill -INT "$pid"
    wait "$pid" 2>/dev/null || true
    awk '/^(summary|totals):/ { print $2; exit }' "$out"
}

echo "# instructions per poll (valgrind $(valgrind --version | sed 's/valgrind-//')), $LARGE - $SMALL polls"
echo
echo "| build | instructions, $SMALL polls | $LARGE polls | per poll |"
echo "|---|---:|---:|---:|"
for build in "${builds[@]}"; do
    name=${build%%=*}
    binary=${build#*=}
    [[ -x $binary ]] || die "$binary is not an executable (NAME=BINARY)"
    small=$(count "$binary" "$SMALL")
    large=$(count "$binary" "$LARGE")
    echo "| $name | $small | $large | $(((large - small) / (LARGE - SMALL))) |"
done
