#!/usr/bin/env bash
# instructions.sh: user-space instructions per poll of our server, counted by valgrind
# (callgrind), for one or more builds: a figure that other load on the machine hardly
# moves, where requests/s and CPU time move a lot (a shared machine, a VM without
# hardware performance counters); heavy load still shifts it, so compare builds in one
# run. Each build serves a pending code (slow_down off) to a
# keep-alive client twice, SMALL and LARGE polls; the difference of the two totals over
# LARGE - SMALL is the cost of one poll, start-up and shutdown cancelled out. The server
# runs one tokio worker (TOKIO_WORKER_THREADS=1): with two, how often the idle one
# parks and wakes depends on timing, and moved the figure by ±300 between runs of one
# binary; with one, runs of one binary agree within about 20.
#
# With REQUEST=issue, the same for device authorization requests (RFC 8628 §3.1), each
# answered 200 with a new code, quotas off (common.sh's bench configuration).
#
# The `ceiling` binary (src/bin/ceiling.rs: hyper answering the same bytes and doing
# nothing else) is counted the same way, and each build's last column is the ceiling's
# instructions over its own: issue 12's "fraction of the ceiling per core", for the
# user-space share of a request, as a figure that load on the machine hardly moves.
#
# Usage: bash benches/instructions.sh [NAME=BINARY ...]
#   default: this checkout's target/release/deviceflow-server, built first.
# Environment (defaults in brackets):
#   REQUEST poll or issue [poll]
#   SMALL   requests in the short run [1000]
#   LARGE   requests in the long run [6000]
#   CEILING the ceiling binary, or "none" [this checkout's target/release/ceiling,
#           built first]
# Needs valgrind, curl and python3. Kills only the servers it started.
set -euo pipefail

REQUEST=${REQUEST:-poll}
SMALL=${SMALL:-1000}
LARGE=${LARGE:-6000}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
work="$(mktemp -d)"
script=instructions.sh
# shellcheck source=common.sh
source "$here/common.sh"
forget_deviceflow_env

require_whole SMALL LARGE
[[ $REQUEST == poll || $REQUEST == issue ]] || die "REQUEST must be poll or issue, not '$REQUEST'"
((LARGE > SMALL)) || die "LARGE ($LARGE) must be more than SMALL ($SMALL)"
for tool in valgrind curl python3; do
    command -v "$tool" >/dev/null || die "$tool is required"
done

release="${CARGO_TARGET_DIR:-$root/target}/release"
builds=("$@")
# Every build named, before the minutes the ceiling's count takes.
for build in "${builds[@]}"; do
    [[ $build == ?*=?* ]] || die "'$build' is not NAME=BINARY"
    [[ -f ${build#*=} && -x ${build#*=} ]] || die "${build#*=} is not an executable (NAME=BINARY)"
done
# A CEILING given is checked before any build too. -f: a directory passes -x, and cp
# then refused it in its own words.
if [[ -n ${CEILING:-} && $CEILING != none ]]; then
    [[ -f $CEILING && -x $CEILING ]] || die "CEILING=$CEILING is not an executable file"
fi
if ((${#builds[@]} == 0)); then
    child cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p deviceflow-server
    builds=("ours=$release/deviceflow-server")
fi
if [[ -z ${CEILING:-} ]]; then
    child cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p deviceflow-benches --bin ceiling
    CEILING="$release/ceiling"
fi
if [[ $CEILING != none ]]; then
    # A private copy, so that a rebuild of target/ meanwhile cannot change it.
    cp "$CEILING" "$work/ceiling"
fi

# The client: one keep-alive connection; N polls of one code, each answered 400, or N
# device authorizations, each answered 200.
cat >"$work/client.py" <<'EOF'
import http.client, json, sys
port, n, request = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
form = {"Content-Type": "application/x-www-form-urlencoded"}
c = http.client.HTTPConnection("127.0.0.1", port)
c.request("POST", "/oauth/device_authorization", "client_id=demo-device", form)
code = json.loads(c.getresponse().read())["device_code"]
if request == "issue":
    path, body, status = "/oauth/device_authorization", "client_id=demo-device", 200
else:
    path, status = "/oauth/token", 400
    body = ("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code"
            f"&device_code={code}&client_id=demo-device")
for _ in range(n):
    c.request("POST", path, body, form)
    r = c.getresponse()
    r.read()
    if r.status != status:
        sys.exit(f"a {request} request was answered {r.status}, not {status}")
EOF
bench_config "$work/issue.toml"
if [[ $REQUEST == issue ]]; then
    flags=(--config "$work/issue.toml")
else
    flags=(--slow-down off --expires-in 3600 --interval 5)
fi

# Sets $total to the instructions (callgrind's total) of BINARY ($1) serving N ($2)
# requests; FLAGS... ($3…) are its flags besides --listen. Runs in this shell, not in a
# $(...): the server it starts must be in `pids`, for the cleanup on exit or on a
# signal, and a die must end the script, not a subshell that went on counting.
count() {
    local binary=$1 n=$2 out="$work/callgrind.out" port pid up=0 _
    shift 2
    rm -f "$out"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    TOKIO_WORKER_THREADS=1 valgrind --tool=callgrind --callgrind-out-file="$out" "$binary" \
        "$@" --listen "127.0.0.1:$port" >"$work/server.log" 2>&1 &
    pid=$!
    pids+=("$pid")
    for _ in $(seq 100); do
        curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && up=1 && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    ((up)) || die "$binary did not start under valgrind: $(tail -n 3 "$work/server.log" | tr '\n' ' ')"
    child python3 "$work/client.py" "$port" "$n" "$REQUEST" 2>"$work/client.err" ||
        die "the client failed against $binary: $(tail -n 1 "$work/client.err")"
    # SIGTERM: ours stops gracefully on it, and the ceiling, which handles no signal,
    # is ended by it; callgrind writes its counts either way.
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null || true
    unset 'pids[-1]'
    total=$(awk '/^(summary|totals):/ { print $2; exit }' "$out" 2>/dev/null || true)
    [[ $total =~ ^[0-9]+$ ]] || die "no instruction count from callgrind for $binary"
}

# Instructions per request of BINARY ($1) with FLAGS... ($2…): sets $small, $large
# and $per.
per_request() {
    count "$1" "$SMALL" "${@:2}"
    small=$total
    count "$1" "$LARGE" "${@:2}"
    large=$total
    per=$(((large - small) / (LARGE - SMALL)))
}

what=$([[ $REQUEST == issue ]] && echo "device authorization" || echo poll)
echo "# instructions per $what (valgrind $(valgrind --version | sed 's/valgrind-//')), $LARGE - $SMALL requests"
echo
if [[ $CEILING != none ]]; then
    per_request "$work/ceiling"
    c_small=$small c_large=$large ceiling=$per
    echo "| build | instructions, $SMALL requests | $LARGE requests | per $what | ceiling ÷ build |"
    echo "|---|---:|---:|---:|---:|"
    echo "| ceiling | $c_small | $c_large | $ceiling | 1.00 |"
else
    echo "| build | instructions, $SMALL requests | $LARGE requests | per $what |"
    echo "|---|---:|---:|---:|"
fi
for build in "${builds[@]}"; do
    name=${build%%=*}
    binary=${build#*=}
    per_request "$binary" "${flags[@]}" --quiet
    if [[ $CEILING != none ]]; then
        echo "| $name | $small | $large | $per | $(awk -v c="$ceiling" -v o="$per" 'BEGIN { printf "%.3f", c / o }') |"
    else
        echo "| $name | $small | $large | $per |"
    fi
done
