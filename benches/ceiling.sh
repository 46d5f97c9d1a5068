#!/usr/bin/env bash
# ceiling.sh: our token endpoint's poll path against the ceiling, over loopback.
#
# Drives deviceflow-server and the `ceiling` binary (a bare hyper server that answers
# the same authorization_pending bytes and does nothing else) with the same wrk poll,
# each server pinned to one core and wrk to another, and prints requests/s, p50/p99
# latency and the ratio ours/ceiling against the target (>= 0.90). It also prints the
# server's own CPU time per request (from /proc/PID/stat), a cross-check that other
# load on a shared machine cannot shift as easily as it shifts requests/s. README.md.
#
# Environment (defaults in brackets):
#   DURATION      seconds of each timed wrk run [10]
#   CONNECTIONS   wrk connections [64]
#   THREADS       wrk threads [1]
#   WARMUP        seconds of an untimed wrk run before each timed one [2]
#   ROUNDS        timed runs per target, interleaved; medians are compared [3]
#   TARGET_RATIO  the ratio ours/ceiling to meet [0.90]
#   SERVER_CPU    core the servers are pinned to [0]
#   CLIENT_CPU    core wrk is pinned to [1]
#   MAX_OTHER     % of the server's or wrk's core that other processes may take during
#                 a timed run before it is run again (a shared machine's builds, say) [5]
#   RETRIES       times a disturbed run is run again [3]
#   STRICT        1: exit 1 when the target is missed [0]
#   OUT           a directory to keep the raw wrk outputs and the summary in [none]
#   PREBUILT      a directory holding deviceflow-server and ceiling binaries to run
#                 instead of building them (another commit's, or a machine without
#                 cargo) [none: build target/release]
set -euo pipefail

DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-1}
WARMUP=${WARMUP:-2}
ROUNDS=${ROUNDS:-3}
TARGET_RATIO=${TARGET_RATIO:-0.90}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
MAX_OTHER=${MAX_OTHER:-5}
RETRIES=${RETRIES:-3}
STRICT=${STRICT:-0}
OUT=${OUT:-}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
work="$(mktemp -d)"
script=ceiling.sh
# shellcheck source=common.sh
source "$here/common.sh"
forget_deviceflow_env

require_whole DURATION CONNECTIONS THREADS WARMUP ROUNDS SERVER_CPU CLIENT_CPU \
    MAX_OTHER RETRIES
((ROUNDS >= 1 && DURATION >= 1 && THREADS >= 1 && CONNECTIONS >= THREADS)) ||
    die "need ROUNDS, DURATION and THREADS of at least 1, and CONNECTIONS >= THREADS"
[[ $TARGET_RATIO =~ ^[0-9]*\.?[0-9]+$ ]] || die "TARGET_RATIO must be a number like 0.90, not '$TARGET_RATIO'"
require_bit STRICT
require_out

# --- tools -------------------------------------------------------------------
require_tools curl taskset
cpus=$(nproc)
((SERVER_CPU < cpus && CLIENT_CPU < cpus && SERVER_CPU != CLIENT_CPU)) ||
    die "need two distinct usable cores (SERVER_CPU=$SERVER_CPU CLIENT_CPU=$CLIENT_CPU, nproc=$cpus)"

# --- build -------------------------------------------------------------------
if [[ -z ${PREBUILT:-} ]]; then
    command -v cargo >/dev/null || die "cargo is required (or PREBUILT)"
    echo "ceiling.sh: building release binaries" >&2
    child cargo build --release --quiet --manifest-path "$root/Cargo.toml" \
        -p deviceflow-server -p deviceflow-benches --bin deviceflow-server --bin ceiling
fi
# Private copies: a rebuild of target/ or a kill by process name on a shared machine
# must not change or stop the servers under test.
server_bin="$work/ours-server"
ceiling_bin="$work/ceiling-server"
private_copy deviceflow-server "$server_bin"
private_copy ceiling "$ceiling_bin"

# --- servers -----------------------------------------------------------------
start ours "$SERVER_CPU" "$server_bin" --listen 127.0.0.1:0 \
    --slow-down off --quiet --expires-in 3600 --interval 5
ours_addr=$started_addr
ours_pid=$started_pid
start ceiling "$SERVER_CPU" "$ceiling_bin" --listen 127.0.0.1:0
ceiling_addr=$started_addr
ceiling_pid=$started_pid
clk_tck=$(getconf CLK_TCK)

# One pending device code (RFC 8628 §3.1), from the demo public client.
authz=$(curl -sS --max-time 5 -d client_id=demo-device -d scope=openid \
    "http://$ours_addr/oauth/device_authorization")
device_code=$(sed -n 's/.*"device_code":"\([^"]*\)".*/\1/p' <<<"$authz")
[[ -n $device_code ]] || die "no device_code in the device authorization response: $authz"
content_type="application/x-www-form-urlencoded"
body="grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=$device_code&client_id=demo-device"

# Checks that $2 answers the poll 400 authorization_pending; keeps its headers.
check_pending() {
    local name=$1 addr=$2 status
    status=$(curl -sS --max-time 5 -o "$work/$name.body" -D "$work/$name.headers" \
        -w '%{http_code}' -H "Content-Type: $content_type" --data-binary "$body" \
        "http://$addr/oauth/token")
    [[ $status == 400 ]] || die "$name answered the poll with HTTP $status: $(cat "$work/$name.body")"
    grep -q '"error":"authorization_pending"' "$work/$name.body" ||
        die "$name did not answer authorization_pending: $(cat "$work/$name.body")"
    # Headers but the date, lower-cased, sorted: what must be the same on both.
    tr -d '\r' <"$work/$name.headers" | tr 'A-Z' 'a-z' | grep -v -e '^date:' -e '^$' |
        sort >"$work/$name.headers.cmp"
}
check_pending ours "$ours_addr"
check_pending ceiling "$ceiling_addr"
cmp -s "$work/ours.body" "$work/ceiling.body" || die "the two answer bodies differ"
diff -u "$work/ours.headers.cmp" "$work/ceiling.headers.cmp" >&2 ||
    die "the two answers' headers differ: the ceiling would not be comparable"

# --- wrk ---------------------------------------------------------------------
cat >"$work/poll.lua" <<EOF
wrk.method = "POST"
wrk.body = "$body"
wrk.headers["Content-Type"] = "$content_type"

-- One machine-readable line, so nothing depends on wrk's human units.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_RESULT requests=%d duration_us=%d status_errors=%d socket_errors=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
EOF

wrk_args() { # seconds, address
    wrk_argv=(taskset -c "$CLIENT_CPU" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$1"s
        -s "$work/poll.lua" "http://$2/oauth/token")
}

# The number of polls ours has answered authorization_pending, from /metrics.
pending_count() {
    curl -sS --max-time 5 "http://$ours_addr/metrics" |
        sed -n 's/^deviceflow_token_polls_total{outcome="authorization_pending"} \([0-9]*\)$/\1/p'
}

# Busy and total clock ticks of core $1 so far, from /proc/stat.
core_ticks() {
    awk -v c="cpu$1" '$1 == c { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat
}

# Sets $children to the CPU time this shell's finished children have used so far, in
# clock ticks. `times` runs in this shell, not in a $(...) subshell, whose own
# children it would report instead.
children_ticks() {
    times >"$work/times"
    children=$(awk -v hz="$clk_tck" 'NR == 2 {
        t = 0; for (i = 1; i <= 2; i++) { split($i, p, "m"); t += p[1] * 60 + p[2] }
        printf "%.0f\n", t * hz }' "$work/times")
}

# The % of a core's ticks between core_ticks readings $1 and $2 that were busy beyond
# $3 ticks of known work.
other_pct() {
    awk -v a="$1" -v b="$2" -v known="$3" 'BEGIN {
        split(a, x, " "); split(b, y, " "); o = (y[1] - x[1]) - known
        printf "%.0f\n", (o < 0 ? 0 : 100 * o / (y[2] - x[2])) }'
}


results="$work/results.tsv" # target round rps p50 p99 cpu_us/request busy% other%
: >"$results"

# One timed run of $1 at $2 (process $3), after a warm-up; appends a line to $results.
# Run again, up to RETRIES times, while other processes took more than MAX_OTHER% of
# the server's core.
run() {
    local name=$1 addr=$2 pid=$3 round=$4 out line requests duration rps p50 p99 before after
    local ticks cpu busy server_core client_core wrk_ticks other other_client attempt
    if ((WARMUP > 0)); then
        wrk_args "$WARMUP" "$addr"
        child "${wrk_argv[@]}" >/dev/null
    fi
    if [[ $name == ours ]]; then
        before=$(pending_count)
    fi
    out="$work/wrk-$name-$round.txt"
    wrk_args "$DURATION" "$addr"
    for attempt in $(seq 0 "$RETRIES"); do
        ticks=$(cpu_ticks "$pid")
        server_core=$(core_ticks "$SERVER_CPU")
        client_core=$(core_ticks "$CLIENT_CPU")
        children_ticks
        wrk_ticks=$children
        child "${wrk_argv[@]}" >"$out" 2>&1 || die "wrk failed against $name: $(cat "$out")"
        kill -0 "$pid" 2>/dev/null || die "$name exited during the run: $(tail -n 5 "$work/$name.log")"
        children_ticks
        wrk_ticks=$((children - wrk_ticks))
        ticks=$(($(cpu_ticks "$pid") - ticks))
        # Busy time on each core that was neither the server's nor wrk's.
        other=$(other_pct "$server_core" "$(core_ticks "$SERVER_CPU")" "$ticks")
        other_client=$(other_pct "$client_core" "$(core_ticks "$CLIENT_CPU")" "$wrk_ticks")
        ((other_client > other)) && other=$other_client
        ((other <= MAX_OTHER)) && break
        if ((attempt < RETRIES)); then
            echo "ceiling.sh: other processes took ${other}% of a core; running again" >&2
            if [[ $name == ours ]]; then
                before=$(pending_count)
            fi
        fi
    done
    line=$(grep '^WRK_RESULT ' "$out" | tail -n 1 || true)
    if [[ -n $line ]]; then
        requests=$(field requests "$line")
        duration=$(field duration_us "$line")
        p50=$(field p50_us "$line")
        p99=$(field p99_us "$line")
        rps=$(awk -v n="$requests" -v us="$duration" 'BEGIN { printf "%.0f", n / (us / 1e6) }')
        (($(field socket_errors "$line") == 0)) || die "$name: socket errors: $line"
        # Every answer must have been the 400 checked above; none a 2xx.
        (($(field status_errors "$line") == requests)) || die "$name: unexpected statuses: $line"
    else
        # No Lua summary (an odd wrk build): fall back to its human line.
        echo "ceiling.sh: no WRK_RESULT line from wrk; parsing Requests/sec" >&2
        rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")
        requests=$(awk '/requests in/ { print $1 }' "$out")
        p50="" p99="" duration=""
    fi
    [[ $rps =~ ^[0-9]+$ && $requests =~ ^[0-9]+$ ]] ||
        die "could not read a rate from wrk against $name: $(cat "$out")"
    cpu=$(awk -v t="$ticks" -v hz="$clk_tck" -v n="$requests" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
    # Of wrk's own measured duration, which runs a little past -d.
    busy=$(awk -v t="$ticks" -v hz="$clk_tck" -v us="${duration:-$((DURATION * 1000000))}" \
        'BEGIN { printf "%.0f", 100 * t / hz / (us / 1e6) }')
    if [[ $name == ours ]]; then
        # The server's own count: the timed run got authorization_pending and nothing else.
        after=$(pending_count)
        ((after - before >= requests)) ||
            die "ours counted $((after - before)) authorization_pending answers for $requests requests"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$round" "$rps" "${p50:--}" "${p99:--}" \
        "$cpu" "$busy" "$other" >>"$results"
    if [[ -n $OUT ]]; then
        mkdir -p "$OUT"
        { echo "# ${wrk_argv[*]}"; cat "$out"; } >"$OUT/wrk-$name-$round.txt"
    fi
}

# --- report ------------------------------------------------------------------
commit=$(built_from)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
{
    echo "cpu:        ${cpu:-unknown} ($cpus usable cores; servers on core $SERVER_CPU, wrk on core $CLIENT_CPU)"
    echo "kernel:     $(uname -r)"
    echo "built from: $commit"
    echo "wrk:        $( (wrk -v 2>&1 || true) | head -n 1)"
    wrk_args "$DURATION" ADDR
    echo "command:    ${wrk_argv[*]/#$work\//}  x $ROUNDS rounds, ${WARMUP}s warm-up each"
    echo "poll:       POST /oauth/token ($content_type) $body"
    echo "answer:     $(head -n 1 "$work/ours.headers" | tr -d '\r'), $(wc -c <"$work/ours.body") byte body, identical on both"
} | tee "$work/summary.txt"

for round in $(seq 1 "$ROUNDS"); do
    # Interleaved, alternating who goes first, so drift on a shared machine hits both.
    if ((round % 2)); then order="ours ceiling"; else order="ceiling ours"; fi
    for name in $order; do
        echo "ceiling.sh: round $round/$ROUNDS: $name" >&2
        if [[ $name == ours ]]; then
            run ours "$ours_addr" "$ours_pid" "$round"
        else
            run ceiling "$ceiling_addr" "$ceiling_pid" "$round"
        fi
    done
done

# Runs in which other processes took more than MAX_OTHER % of a core are shown, marked,
# and left out of the medians.
median() { # target, column, printf format
    awk -F'\t' -v t="$1" -v c="$2" -v m="$MAX_OTHER" '$1 == t && $8 <= m && $c != "-" { print $c }' \
        "$results" | sort -g |
        awk -v f="$3" '{ v[NR] = $1 }
            END { if (NR == 0) print "-"; else printf f "\n", (v[int((NR + 1) / 2)] + v[int(NR / 2) + 1]) / 2 }'
}

# "ratio verdict" for $1 / $2 against the target.
ratio() {
    awk -v a="$1" -v b="$2" -v t="$TARGET_RATIO" 'BEGIN {
        if (a == "-" || b == "-") { print "- not-measured"; exit }
        r = a / b; printf "%.3f %s\n", r, (r >= t ? "met" : "MISSED") }'
}

row() {
    printf '%-8s  %-6s  %12s  %10s  %10s  %14s  %11s  %12s\n' "$@"
}

read -r rps_ratio verdict < <(ratio "$(median ours 3 %.0f)" "$(median ceiling 3 %.0f)")
read -r cpu_ratio cpu_verdict < <(ratio "$(median ceiling 6 %.4f)" "$(median ours 6 %.4f)")
ceiling_busy=$(median ceiling 7 %.0f)
{
    echo
    row target round requests/s "p50 (us)" "p99 (us)" "CPU us/request" "server busy" "other load"
    sort -t$'\t' -k1,1r -k2,2n "$results" |
        while IFS=$'\t' read -r t r rps p50 p99 cpu busy other; do
            if ((other > MAX_OTHER)); then other="$other% *"; else other="$other%"; fi
            row "$t" "$r" "$rps" "$p50" "$p99" "$cpu" "$busy%" "$other"
        done
    for name in ours ceiling; do
        busy=$(median "$name" 7 %.0f) other=$(median "$name" 8 %.0f)
        # No median (every run disturbed) is "-", not "-%".
        [[ $busy == - ]] || busy+=%
        [[ $other == - ]] || other+=%
        row "$name" median "$(median "$name" 3 %.0f)" "$(median "$name" 4 %.0f)" \
            "$(median "$name" 5 %.0f)" "$(median "$name" 6 %.2f)" "$busy" "$other"
    done
    if awk -F'\t' -v m="$MAX_OTHER" '$8 > m { found = 1 } END { exit !found }' "$results"; then
        echo "* disturbed: other processes took more than ${MAX_OTHER}% of a core after $RETRIES"
        echo "  retries; left out of the medians."
    fi
    echo
    echo "ratio ours/ceiling, median requests/s:              $rps_ratio  target >= $TARGET_RATIO: $verdict"
    echo "ratio ceiling/ours, median server CPU per request:  $cpu_ratio  target >= $TARGET_RATIO: $cpu_verdict"
    if [[ $verdict == not-measured ]]; then
        echo "note: every run of a target was disturbed; the machine is too busy to measure."
    elif ((ceiling_busy < 95)); then
        echo "note: the ceiling's core was only ${ceiling_busy}% busy: wrk, not the ceiling, set its"
        echo "      rate, so the requests/s ratio flatters ours; trust the CPU-per-request ratio."
    fi
} | tee -a "$work/summary.txt"

if [[ -n $OUT ]]; then
    cp "$work/summary.txt" "$OUT/summary.txt"
fi
if [[ $STRICT == 1 && $verdict != met ]]; then
    exit 1
fi
