#!/usr/bin/env bash
# hostile.sh: does hostile traffic spoil the server for the devices that behave?
#
# Builds and starts deviceflow-server (release, demo configuration, a free loopback
# port, a short interval) and runs the `hostile` binary against it: a fleet of
# compliant devices from 127.0.0.2 polls at the interval it is told while, from
# 127.0.0.1, a sign-in flood, an issuance flood and slowloris run. Prints the fleet's
# polls and latency, each attack's counts, the server's peak and final RSS and CPU
# time, and a verdict against the targets (poll p99 < 50 ms with none failed; server
# RSS < 512 MB). Stops early, saying so, if the server's RSS passes RSS_CAP_MB.
# Kills only what it started. README.md.
#
# Environment (defaults in brackets):
#   DURATION               seconds of the run [30]
#   ATTACKS                any of signin,issuance,slowloris, or none [all three]
#   DEVICES                compliant devices [200]
#   INTERVAL               the server's polling interval, seconds [2]
#   EXPIRES_IN             the server's expires_in, longer than the run [3600]
#   SIGN_IN_IN_FLIGHT      sign-in POSTs kept in flight [512]
#   ISSUANCE_CONNECTIONS   connections of the issuance flood [64]
#   SLOWLORIS_CONNECTIONS  slowloris connections [1000]
#   P99_TARGET_MS          the fleet's poll p99 target [50]
#   RSS_TARGET_MB          the server's peak RSS target, 1 MB = 10^6 bytes [512]
#   RSS_CAP_MB             stop the run when the server's RSS passes this [6000]
#   STRICT                 1: exit 1 when a target is missed [0]
#   OUT                    a directory to keep the summary and the server's log in [none]
set -euo pipefail

DURATION=${DURATION:-30}
ATTACKS=${ATTACKS-signin,issuance,slowloris}
DEVICES=${DEVICES:-200}
INTERVAL=${INTERVAL:-2}
EXPIRES_IN=${EXPIRES_IN:-3600}
SIGN_IN_IN_FLIGHT=${SIGN_IN_IN_FLIGHT:-512}
ISSUANCE_CONNECTIONS=${ISSUANCE_CONNECTIONS:-64}
SLOWLORIS_CONNECTIONS=${SLOWLORIS_CONNECTIONS:-1000}
P99_TARGET_MS=${P99_TARGET_MS:-50}
RSS_TARGET_MB=${RSS_TARGET_MB:-512}
RSS_CAP_MB=${RSS_CAP_MB:-6000}
STRICT=${STRICT:-0}
OUT=${OUT:-}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
work="$(mktemp -d "${TMPDIR:-/tmp}/hostile.XXXXXX")"
script=hostile.sh
# shellcheck source=common.sh
source "$here/common.sh"
# The server on the demo configuration, overridden only by this script's flags.
forget_deviceflow_env
# This script always builds and runs this checkout's binaries: a PREBUILT exported for
# the other scripts must not make the header name that directory instead of the commit.
unset PREBUILT

require_whole DURATION DEVICES INTERVAL EXPIRES_IN SIGN_IN_IN_FLIGHT ISSUANCE_CONNECTIONS \
    SLOWLORIS_CONNECTIONS P99_TARGET_MS RSS_TARGET_MB RSS_CAP_MB
((DURATION >= 1 && INTERVAL >= 1)) || die "need DURATION >= 1 and INTERVAL >= 1"
# Both verdicts are about the devices' polls: with none, the run measured nothing.
((DEVICES >= 1)) || die "need DEVICES >= 1: the verdicts are about the compliant devices' polls"
# The names the hostile binary takes (src/bin/hostile/args.rs), now rather than after
# the build and the server's start, in its two lines.
IFS=$', \t' read -ra attack_names <<<"$ATTACKS"
for attack in ${attack_names[@]+"${attack_names[@]}"}; do
    [[ $attack =~ ^(signin|sign-in|issuance|slowloris|none)$ ]] ||
        die "ATTACKS must be any of signin,issuance,slowloris, or none, not '$ATTACKS'"
done
require_bit STRICT
require_out
((EXPIRES_IN > DURATION + 2 * INTERVAL)) ||
    die "EXPIRES_IN ($EXPIRES_IN) must outlast the run, or devices stop polling"
for tool in cargo getconf; do
    command -v "$tool" >/dev/null || die "$tool is required"
done

# Every connection is a descriptor on both sides: the server holds one per attack
# connection and device, and so does the client.
need=$((DEVICES + SIGN_IN_IN_FLIGHT + ISSUANCE_CONNECTIONS + SLOWLORIS_CONNECTIONS + 256))
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
(($(ulimit -n) >= need)) || die "need $need open files, the limit is $(ulimit -n)"

# --- build -------------------------------------------------------------------
echo "hostile.sh: building release binaries" >&2
child cargo build --release --quiet --manifest-path "$root/Cargo.toml" \
    -p deviceflow-server -p deviceflow-benches --bin deviceflow-server --bin hostile
# Private copies: a rebuild of target/ or a kill by process name on a shared machine
# must not change or stop what is under test.
server_bin="$work/hostile-target-server"
hostile_bin="$work/hostile"
cp "$target_dir/release/deviceflow-server" "$server_bin"
cp "$target_dir/release/hostile" "$hostile_bin"

# --- server ------------------------------------------------------------------
# Demo configuration (the user `demo` with a real argon2id hash, the public client
# `demo-device`), slow_down enforced, overridden only by these flags: no DEVICEFLOW_*
# variable from the caller's environment (forget_deviceflow_env, above).
server_log="$work/server.log"
# Created here, not by the background job's redirection, which may come after the
# first read below.
: >"$server_log"
"$server_bin" --listen 127.0.0.1:0 --quiet \
    --interval "$INTERVAL" --expires-in "$EXPIRES_IN" >"$server_log" 2>&1 &
server_pid=$!
pids+=("$server_pid")
addr=""
for _ in $(seq 1 100); do
    addr=$(sed -n 's/.*listening on \(127\.0\.0\.1:[0-9][0-9]*\).*/\1/p' "$server_log" | head -n 1)
    [[ -n $addr ]] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
[[ -n $addr ]] || {
    cat "$server_log" >&2
    die "the server did not start"
}

# --- run ---------------------------------------------------------------------
commit=$(built_from)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
args=(--target "$addr" --server-pid "$server_pid" --duration "$DURATION"
    --attacks "${ATTACKS:-none}" --devices "$DEVICES"
    --sign-in-in-flight "$SIGN_IN_IN_FLIGHT" --issuance-connections "$ISSUANCE_CONNECTIONS"
    --slowloris-connections "$SLOWLORIS_CONNECTIONS" --p99-target-ms "$P99_TARGET_MS"
    --rss-target-mb "$RSS_TARGET_MB" --rss-cap-mb "$RSS_CAP_MB" --clk-tck "$(getconf CLK_TCK)")
if [[ $STRICT == 1 ]]; then
    args+=(--strict)
fi
{
    echo "cpu:     ${cpu:-unknown} ($(nproc) usable cores, shared by the server and the attackers)"
    echo "kernel:  $(uname -r)"
    echo "commit:  $commit"
    echo "server:  deviceflow-server --listen 127.0.0.1:0 --quiet --interval $INTERVAL --expires-in $EXPIRES_IN (demo configuration)"
    echo "command: hostile ${args[*]}"
} | tee "$work/summary.txt"

echo "hostile.sh: running for ${DURATION} s (attacks: ${ATTACKS:-none})" >&2
# A hard bound besides the binary's own: it stops at DURATION and waits only for
# answers already in flight, which the stop also ends.
timeout --kill-after=10 $((DURATION + 60)) "$hostile_bin" "${args[@]}" >"$work/hostile.out" &
hostile_pid=$!
pids+=("$hostile_pid")
status=0
wait "$hostile_pid" || status=$?
forget_pid "$hostile_pid"
tee -a "$work/summary.txt" <"$work/hostile.out"

if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "hostile.sh: the server exited during the run; its log ends:" >&2
    tail -n 20 "$server_log" >&2
fi
if [[ -n $OUT ]]; then
    cp "$work/summary.txt" "$OUT/summary.txt"
    cp "$server_log" "$OUT/server.log"
fi
case $status in
0) ;;
1) [[ $STRICT == 1 ]] || die "hostile exited 1" ;;
124 | 137) die "hostile did not stop within $((DURATION + 60)) s" ;;
*) die "hostile failed (exit $status)" ;;
esac
exit "$status"
