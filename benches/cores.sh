#!/usr/bin/env bash
# cores.sh: ours against the ceiling on 1, 2, 4… server cores: does every core pull its
# weight?
#
# For each server core count C it starts deviceflow-server (release, slow_down
# enforced, quotas off: the load is one loopback source) and the `ceiling` binary, each
# pinned to the first C of SERVER_CPUS, and drives them with wrk pinned to CLIENT_CPUS:
#
# - issuance: device authorization requests (RFC 8628 §3.1) as fast as they go; the
#   ceiling answers the bytes of one of our device authorization responses;
# - polls: a fleet-shaped poll, CODES distinct pending device codes (issued first, by a
#   capture run) polled round robin, so that every poll is a different session; the
#   answer mix (authorization_pending, slow_down) is read from our /metrics.
#
# It prints, per core count, requests/s of ours and of the ceiling and their ratio, and
# the server CPU per request (from /proc/PID/stat), each core count's row as soon as it
# is measured and the whole table at the end. Runs on any machine: on a 2-core one with
# the defaults (1 server core, 1 client core). README.md.
#
# Environment (defaults in brackets):
#   SERVER_CPUS   the cores the servers may use, in order, as taskset lists them [0]
#   CLIENT_CPUS   the cores wrk runs on [1]
#   CORES         the server core counts to measure, each at most SERVER_CPUS' [1]
#   THREADS       wrk threads [as many as CLIENT_CPUS has cores]
#   CONNECTIONS   wrk connections [64 per wrk thread]
#   CODES         distinct device codes polled round robin [200000]
#   ROUNDS        measurements of each server and request kind, ours and the ceiling
#                 back to back, the first of the two alternating; the table gives
#                 medians, and each ratio's range over the rounds after it [1]
#   DURATION      seconds of each timed wrk run [10]
#   WARMUP        seconds of an untimed run before each timed one, 0 for none [2]
#   OUT           a directory to keep the table and wrk's outputs in [none]
#   PREBUILT      a directory with release `deviceflow-server` and `ceiling` binaries
#                 to measure instead of building this checkout's [none]
set -euo pipefail

SERVER_CPUS=${SERVER_CPUS:-0}
CLIENT_CPUS=${CLIENT_CPUS:-1}
CORES=${CORES:-1}
CODES=${CODES:-200000}
ROUNDS=${ROUNDS:-1}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
OUT=${OUT:-}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
work="$(mktemp -d "${TMPDIR:-/tmp}/cores.XXXXXX")"
script=cores.sh
# shellcheck source=common.sh
source "$here/common.sh"
forget_deviceflow_env

server_cpus=() client_cpus=()
core_list SERVER_CPUS server_cpus
core_list CLIENT_CPUS client_cpus
require_apart SERVER_CPUS server_cpus CLIENT_CPUS client_cpus
THREADS=${THREADS:-${#client_cpus[@]}}
# Before the arithmetic below: bash evaluates a variable's text there as an expression.
require_whole THREADS
CONNECTIONS=${CONNECTIONS:-$((64 * THREADS))}
require_whole CODES ROUNDS DURATION WARMUP CONNECTIONS
((ROUNDS >= 1 && DURATION >= 1 && CODES >= 1 && THREADS >= 1 && CONNECTIONS >= THREADS)) ||
    die "need ROUNDS, DURATION, CODES and THREADS of at least 1, and CONNECTIONS >= THREADS"
for c in $CORES; do
    [[ $c =~ ^[1-9][0-9]{0,3}$ ]] && ((c <= ${#server_cpus[@]})) ||
        die "CORES must be core counts from 1 to ${#server_cpus[@]} (the cores of SERVER_CPUS=$SERVER_CPUS), not '$c'"
done
for tool in wrk curl taskset; do
    command -v "$tool" >/dev/null || die "$tool is required"
done
require_out
client_set=$(
    IFS=,
    echo "${client_cpus[*]}"
)

# --- build ---------------------------------------------------------------------
if [[ -z ${PREBUILT:-} ]]; then
    echo "cores.sh: building release binaries" >&2
    child cargo build --release --quiet --manifest-path "$root/Cargo.toml" \
        -p deviceflow-server -p deviceflow-benches --bin deviceflow-server --bin ceiling
fi
server_bin="$work/ours-server"
ceiling_bin="$work/ceiling-server"
private_copy deviceflow-server "$server_bin"
private_copy ceiling "$ceiling_bin"
bench_config "$work/ours.toml"

# --- wrk scripts -----------------------------------------------------------------
wrk_scripts demo-device

# --- helpers -------------------------------------------------------------------
metric() { # address, series
    curl -sS --max-time 5 "http://$1/metrics" | awk -v s="$2" '$1 == s { print $2 }'
}

# One timed wrk run of script $2 against $3 (process $4): sets $rps, $cpu_us and
# $faults (minor page faults a request).
measure() {
    local name=$1 lua=$2 url=$3 pid=$4 out line before after faulted requests
    if ((WARMUP > 0)); then
        child taskset -c "$client_set" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP"s -s "$lua" "$url" \
            >"$work/warmup.wrk" 2>&1 || die "wrk failed warming up $name: $(cat "$work/warmup.wrk")"
    fi
    before=$(cpu_ticks "$pid")
    faulted=$(minor_faults "$pid")
    out="$work/$name.wrk"
    child taskset -c "$client_set" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION"s -s "$lua" "$url" >"$out" 2>&1 ||
        die "wrk failed against $name: $(cat "$out")"
    after=$(cpu_ticks "$pid")
    faulted=$(($(minor_faults "$pid") - faulted))
    line=$(grep '^WRK_RESULT' "$out") || die "no result from wrk against $name: $(cat "$out")"
    (($(field socket_errors "$line") == 0)) || die "$name: socket errors: $line"
    requests=$(field requests "$line")
    rps=$((requests * 1000000 / $(field duration_us "$line")))
    cpu_us=$(awk -v t=$((after - before)) -v hz="$clk_tck" -v r="$requests" \
        'BEGIN { printf "%.2f", t / hz * 1e6 / r }')
    faults=$(awk -v f="$faulted" -v r="$requests" 'BEGIN { printf "%.3f", f / r }')
    [[ -n $OUT ]] && cp "$out" "$OUT/" || true
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# The median of the numbers given, printed to as many places as the first one has.
median() {
    local places=0 fraction
    if [[ $1 == *.* ]]; then
        fraction=${1#*.}
        places=${#fraction}
    fi
    printf '%s\n' "$@" | sort -g | awk -v fmt="%.${places}f" '
        { v[NR] = $1 }
        END {
            m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            printf fmt, m
        }'
}

# The ratio of the medians of arrays $1 (ours) and $2 (the ceiling); with more than one
# round, the range of the rounds' own ratios after it.
ratios() {
    local -n a=$1 b=$2
    local i each=()
    printf '%s' "$(ratio "$(median "${a[@]}")" "$(median "${b[@]}")")"
    ((${#a[@]} > 1)) || return 0
    for i in "${!a[@]}"; do
        each+=("$(ratio "${a[$i]}" "${b[$i]}")")
    done
    printf ' (%s–%s)' "$(printf '%s\n' "${each[@]}" | sort -g | head -n 1)" \
        "$(printf '%s\n' "${each[@]}" | sort -g | tail -n 1)"
}

# The CPUs a server was charged: the medians of arrays $1 (requests/s) and $2 (CPU µs a
# request), multiplied.
busy() {
    local -n per_s=$1 cpu_us=$2
    awk -v r="$(median "${per_s[@]}")" -v u="$(median "${cpu_us[@]}")" 'BEGIN { printf "%.2f", r * u / 1e6 }'
}

clk_tck=$(getconf CLK_TCK)
{
    echo "cpu:         $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1) ($(nproc) usable cores)"
    echo "built from:  $(built_from)"
    echo "servers on:  $SERVER_CPUS (the first C of them); wrk on $client_set, $THREADS threads, $CONNECTIONS connections"
    echo "runs:        $ROUNDS round(s) of ${DURATION}s timed after ${WARMUP}s warm-up, medians; polls round robin over $CODES distinct pending codes, slow_down enforced"
} | tee "$work/table.txt" >&2
rows=() unpinned=() faulting=() faults_counted=
for c in $CORES; do
    cpus=$(
        IFS=,
        echo "${server_cpus[*]:0:c}"
    )
    echo "cores.sh: $c server core(s) ($cpus)" >&2
    start ours "$cpus" env RUST_LOG=error "$server_bin" --config "$work/ours.toml" --quiet
    ours_addr=$started_addr
    ours_pid=$started_pid
    start ceiling "$cpus" "$ceiling_bin" --listen 127.0.0.1:0
    ceiling_addr=$started_addr
    ceiling_pid=$started_pid

    # Codes to poll: captured from issuance, until there are enough.
    rm -f "$work"/codes*
    have=0
    for _ in $(seq 1 60); do
        child taskset -c "$client_set" wrk -t"$THREADS" -c"$CONNECTIONS" -d2s -s "$work/capture.lua" \
            "http://$ours_addr/oauth/device_authorization" >"$work/capture.wrk" 2>&1 ||
            die "wrk failed capturing codes: $(cat "$work/capture.wrk")"
        have=$(cat "$work"/codes.* 2>/dev/null | wc -l)
        ((have >= CODES)) && break
    done
    ((have >= CODES)) || die "captured only $have codes"
    awk -v n="$CODES" 'NR <= n' "$work"/codes.* >"$work/codes"

    # ROUNDS rounds, each measuring ours and the ceiling back to back, the one that
    # goes first alternating: a slow spell of the machine then falls on both.
    oi=() oic=() ki=() kic=() op=() opc=() kp=() kpc=() oif=() kif=() opf=() kpf=()
    pending=0 slow=0
    for r in $(seq 1 "$ROUNDS"); do
        order=(ours ceiling)
        ((r % 2 == 0)) && order=(ceiling ours)
        for who in "${order[@]}"; do
            if [[ $who == ours ]]; then
                measure "ours-issue-$c-$r" "$work/issue.lua" "http://$ours_addr/oauth/device_authorization" "$ours_pid"
                oi+=("$rps") oic+=("$cpu_us") oif+=("$faults")
            else
                measure "ceiling-issue-$c-$r" "$work/issue.lua" "http://$ceiling_addr/oauth/device_authorization" "$ceiling_pid"
                ki+=("$rps") kic+=("$cpu_us") kif+=("$faults")
            fi
        done
        for who in "${order[@]}"; do
            if [[ $who == ours ]]; then
                pending0=$(metric "$ours_addr" 'deviceflow_token_polls_total{outcome="authorization_pending"}')
                slow0=$(metric "$ours_addr" 'deviceflow_slow_down_total')
                measure "ours-poll-$c-$r" "$work/poll.lua" "http://$ours_addr/oauth/token" "$ours_pid"
                op+=("$rps") opc+=("$cpu_us") opf+=("$faults")
                pending=$((pending + $(metric "$ours_addr" 'deviceflow_token_polls_total{outcome="authorization_pending"}') - pending0))
                slow=$((slow + $(metric "$ours_addr" 'deviceflow_slow_down_total') - slow0))
            else
                measure "ceiling-poll-$c-$r" "$work/poll.lua" "http://$ceiling_addr/oauth/token" "$ceiling_pid"
                kp+=("$rps") kpc+=("$cpu_us") kpf+=("$faults")
            fi
        done
    done
    # Any process takes faults as it starts: none at all is a kernel that counts none.
    (($(minor_faults "$ours_pid") + $(minor_faults "$ceiling_pid") > 0)) && faults_counted=1
    stop "$ours_pid"
    stop "$ceiling_pid"

    share=$(awk -v p="$pending" -v s="$slow" 'BEGIN { printf "%.0f", (p + s) ? 100 * p / (p + s) : 0 }')
    # "by CPU": the ceiling's CPU a request over ours, the throughput ratio two servers
    # would have on the same CPU time; where the machine does not hold a server to its
    # cores (below), requests/s measure the machine as much as the server.
    rows+=("| $c | $(median "${op[@]}") | $(median "${kp[@]}") | $(ratios op kp) | $(median "${opc[@]}") | $(median "${kpc[@]}") | $(ratios kpc opc) | $share % | $(median "${oi[@]}") | $(median "${ki[@]}") | $(ratios oi ki) | $(median "${oic[@]}") | $(median "${kic[@]}") | $(ratios kic oic) |")
    # Each row as soon as it is measured: a run cut short (a time limit on a borrowed
    # machine) still shows the core counts it finished.
    echo "cores.sh: row ${rows[-1]}" >&2
    # Faults apart: issuance grows the session table, so ours touches new memory that
    # the ceiling's constant answer never does; where a fault is dear (a sandbox), that
    # is CPU a request beyond the ceiling's that no instruction count shows.
    faulting+=("| $c | $(median "${opf[@]}") | $(median "${kpf[@]}") | $(median "${oif[@]}") | $(median "${kif[@]}") |")

    # More CPU charged than C cores can give: the machine did not hold the server to its
    # cores, or charged it for work done on others (a sandbox such as gVisor runs the
    # network stack itself). The row then compares C tokio workers, not C cores.
    busiest=$(printf '%s\n' "$(busy op opc)" "$(busy kp kpc)" "$(busy oi oic)" "$(busy ki kic)" |
        sort -g | tail -n 1)
    if awk -v b="$busiest" -v c="$c" 'BEGIN { exit !(b > c * 1.1) }'; then
        unpinned+=("$c core(s), $busiest CPUs")
        echo "cores.sh: $c core(s): a server was charged $busiest CPUs, more than its $c cores can give" >&2
    fi
done

{
    echo
    echo "| server cores | polls/s ours | ceiling | ratio | CPU µs/poll ours | ceiling | ratio by CPU | pending (rest slow_down) | device authorizations/s ours | ceiling | ratio | CPU µs/issue ours | ceiling | ratio by CPU |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${rows[@]}"
    echo
    echo "| server cores | minor page faults a poll, ours | ceiling | a device authorization, ours | ceiling |"
    echo "|---:|---:|---:|---:|---:|"
    printf '%s\n' "${faulting[@]}"
    if [[ -z $faults_counted ]]; then
        echo
        echo "Neither server had taken a single fault since it started: this kernel does not report page"
        echo "faults in /proc/PID/stat (gVisor writes 0 there), so this table says nothing here."
    fi
    if ((${#unpinned[@]} > 0)); then
        echo
        echo "More CPU than the cores can give ($(
            IFS=';'
            echo "${unpinned[*]}"
        ); requests/s × CPU a request, the"
        echo "busiest server): this machine does not hold a process to the cores taskset names, or charges it"
        echo "for work done on others (a sandbox such as gVisor). Such a row compares servers with that many"
        echo "tokio workers, not that many cores; \"ratio by CPU\" (the ceiling's CPU a request over ours)"
        echo "compares them on equal CPU time."
    fi
} | tee -a "$work/table.txt"
[[ -n $OUT ]] && cp "$work/table.txt" "$OUT/" || true
