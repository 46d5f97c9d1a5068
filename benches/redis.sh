#!/usr/bin/env bash
# redis.sh: what the shared store costs. Poll and device authorization throughput of
# the release server on (a) store = "memory", one instance; (b) one instance on one
# Redis; (c) two instances on one Redis, the load split across both; with what each
# poll and each device authorization costs Redis (commands and round trips, from
# INFO deltas) and Redis's memory per million live sessions. README.md.
#
# Everything runs on this machine, over loopback: the servers and Redis pinned to
# SERVER_CPUS, wrk to CLIENT_CPUS. Each setup gets a fresh Redis and fresh servers,
# CODES pending device codes issued first (a wrk capture run), then one timed run of
# device authorizations (RFC 8628 §3.1) and one of polls (§3.4) over those codes,
# round robin, slow_down enforced, quotas off. With two instances, two wrk processes
# run at once, one per instance, each with half the connections and half the codes.
# The wrk scripts are common.sh's (`wrk_scripts`), the ones cores.sh uses.
#
# Redis figures, per request:
# - commands run: over the timed run, the sum of `calls` of INFO commandstats (INFO
#   itself left out), which counts a script's own commands as well as the EVALSHA;
# - round trips: the commands the servers send (not those a script runs), counted
#   with MONITOR over SAMPLE requests sent one at a time with curl after the timed
#   run (a server that pipelined would send several in one round trip; ours awaits
#   each). INFO's total_reads_processed cannot say it: redis-rs multiplexes the
#   requests of concurrent tasks on one connection, so one read holds several;
# - memory: INFO memory used_memory and used_memory_rss after issuing CODES sessions
#   minus before, per session, times a million.
#
# Environment (defaults in brackets):
#   SERVER_CPUS   cores the servers and Redis are pinned to [0]
#   CLIENT_CPUS   cores wrk is pinned to [1]
#   THREADS       wrk threads per wrk process [1]
#   CONNECTIONS   wrk connections in all, split across instances [64]
#   CODES         pending device codes per setup, polled round robin [50000]
#   DURATION      seconds of each timed wrk run [10]
#   WARMUP        seconds of an untimed run before each timed one, 0 for none [2]
#   SETUPS        which setups to run, of "memory redis redis2" [all three]
#   SAMPLE        requests of each kind sent one at a time under MONITOR [200]
#   OUT           a directory to keep the table and wrk's outputs in [none]
#   PREBUILT      a directory holding a release deviceflow-server to use instead of
#                 building one [none]
set -euo pipefail

SERVER_CPUS=${SERVER_CPUS:-0}
CLIENT_CPUS=${CLIENT_CPUS:-1}
THREADS=${THREADS:-1}
CONNECTIONS=${CONNECTIONS:-64}
CODES=${CODES:-50000}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
SETUPS=${SETUPS:-memory redis redis2}
SAMPLE=${SAMPLE:-200}
OUT=${OUT:-}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
work="$(mktemp -d "${TMPDIR:-/tmp}/redis-bench.XXXXXX")"
script=redis.sh
# shellcheck source=common.sh
source "$here/common.sh"
forget_deviceflow_env

require_whole THREADS CONNECTIONS CODES DURATION WARMUP SAMPLE
((THREADS >= 1 && CONNECTIONS >= 2 * THREADS && CODES >= SAMPLE && CODES >= 2 && DURATION >= 1 && SAMPLE >= 1)) ||
    die "need THREADS >= 1, CONNECTIONS >= 2 * THREADS, CODES >= SAMPLE, CODES >= 2, DURATION >= 1 and SAMPLE >= 1"
server_cpus=() client_cpus=()
core_list SERVER_CPUS server_cpus
core_list CLIENT_CPUS client_cpus
require_apart SERVER_CPUS server_cpus CLIENT_CPUS client_cpus
[[ -n ${SETUPS//[[:space:]]/} ]] || die "SETUPS names no setup: any of memory, redis and redis2"
for s in $SETUPS; do
    [[ $s == memory || $s == redis || $s == redis2 ]] || die "unknown setup '$s' in SETUPS"
done
for tool in wrk curl taskset redis-server redis-cli; do
    command -v "$tool" >/dev/null ||
        die "$tool is required (wrk: apt-get install wrk; Redis: scripts/install-test-deps.sh)"
done
require_out

# --- build -----------------------------------------------------------------------
if [[ -z ${PREBUILT:-} ]]; then
    echo "redis.sh: building the release server" >&2
    child cargo build --release --quiet --manifest-path "$root/Cargo.toml" \
        -p deviceflow-server --bin deviceflow-server
fi
# A private copy: a rebuild of target/ must not change the server under test.
server_bin="$work/deviceflow-server"
private_copy deviceflow-server "$server_bin"
wrk_scripts demo-device
clk_tck=$(getconf CLK_TCK)

# --- helpers ---------------------------------------------------------------------
# Starts a Redis of this script's own on a free loopback port, nothing on disk;
# sets $redis_pid and $redis_port.
start_redis() {
    local port dir _ try
    for try in $(seq 1 20); do
        port=$((20000 + RANDOM % 30000))
        dir="$work/redis-$port"
        mkdir -p "$dir"
        taskset -c "$SERVER_CPUS" redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" \
            --logfile "$dir/redis.log" --save "" --appendonly no --daemonize no &
        redis_pid=$!
        pids+=("$redis_pid")
        for _ in $(seq 1 200); do
            [[ $(redis-cli -p "$port" PING 2>/dev/null) == PONG ]] && break
            kill -0 "$redis_pid" 2>/dev/null || break
            sleep 0.05
        done
        # Ours, not some other process that had the port.
        if kill -0 "$redis_pid" 2>/dev/null &&
            [[ $(redis_info server process_id "$port") == "$redis_pid" ]]; then
            redis_port=$port
            return 0
        fi
        stop "$redis_pid"
    done
    die "could not start redis-server (try $try): $(cat "$dir/redis.log")"
}

# Field $2 of INFO section $1 of the Redis on port $3 (default: ours).
redis_info() {
    redis-cli -p "${3:-$redis_port}" INFO "$1" | tr -d '\r' | awk -F: -v f="$2" '$1 == f { print $2 }'
}

# INFO commandstats as "command calls" lines, INFO itself left out.
command_calls() {
    redis-cli -p "$redis_port" INFO commandstats | tr -d '\r' |
        sed -n 's/^cmdstat_\([^:]*\):calls=\([0-9]*\),.*/\1 \2/p' | grep -v '^info '
}

# INFO commandstats now, into file $1.
redis_snapshot() {
    command_calls >"$1"
}

# The commands Redis ran between snapshots $1 and $2, over $3 requests: sets $cmds
# (calls in all) and adds a line "$4: command calls-per-request, …" to $breakdown.
redis_delta() {
    cmds=$(awk 'NR == FNR { b[$1] = $2; next } { s += $2 - b[$1] } END { print s + 0 }' "$1" "$2")
    breakdown+=("$4: $(awk -v n="$3" 'NR == FNR { b[$1] = $2; next }
        { d = $2 - b[$1]; if (d > 0) printf "%s %.2f\n", $1, d / n }' "$1" "$2" |
        sort -k2,2gr | awk '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2 }')")
}

# Round trips per request of kind $1 (issue or poll) through $2: SAMPLE requests sent
# one at a time while MONITOR watches; sets $trips (commands a client sent, per
# request) and $inner (commands scripts ran, per request).
round_trips() {
    local kind=$1 addr=$2 mon="$work/monitor.$1.$2" i code mpid
    redis-cli -p "$redis_port" MONITOR >"$mon" &
    mpid=$!
    pids+=("$mpid")
    # MONITOR answers OK once it is on.
    for i in $(seq 1 100); do
        [[ -s $mon ]] && break
        sleep 0.02
    done
    for i in $(seq 1 "$SAMPLE"); do
        if [[ $kind == issue ]]; then
            curl -sS --max-time 5 -o /dev/null -d client_id=demo-device -d scope=openid \
                "http://$addr/oauth/device_authorization"
        else
            code=$(sed -n "${i}p" "$work/codes")
            curl -sS --max-time 5 -o /dev/null -H "Content-Type: application/x-www-form-urlencoded" \
                --data-binary "$grant&device_code=$code&client_id=demo-device" "http://$addr/oauth/token"
        fi
    done
    sleep 0.2
    stop "$mpid"
    # A line is `TIME [DB 127.0.0.1:PORT] "CMD" …` for a client's command and
    # `TIME [DB lua] "CMD" …` for a script's.
    trips=$(per "$(grep -c '^[0-9.]* \[[0-9]* 127\.0\.0\.1:[0-9]*\] ' "$mon" || true)" "$SAMPLE")
    inner=$(per "$(grep -c '^[0-9.]* \[[0-9]* lua\] ' "$mon" || true)" "$SAMPLE")
}

metric_sum() { # series, addresses…
    local series=$1 addr total=0 v
    shift
    for addr in "$@"; do
        v=$(curl -sS --max-time 5 "http://$addr/metrics" | awk -v s="$series" '$1 == s { print $2 }')
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

ticks_sum() { # pids…
    local total=0 pid
    for pid in "$@"; do
        total=$((total + $(cpu_ticks "$pid")))
    done
    echo "$total"
}

# Runs wrk script $2 for $3 seconds against every target at once, one wrk process
# each with its share of CONNECTIONS; a target is ADDR/PATH or ADDR/PATH=ARG (the
# script's argument). Leaves each wrk's output in $work/$1.N.wrk.
wrk_at_once() {
    local name=$1 lua=$2 seconds=$3 n=0 t url arg
    shift 3
    local conns=$((CONNECTIONS / $#)) running=()
    for t in "$@"; do
        url="http://${t%%=*}"
        arg=()
        [[ $t == *=* ]] && arg=(-- "${t#*=}")
        taskset -c "$CLIENT_CPUS" wrk -t"$THREADS" -c"$conns" -d"$seconds"s -s "$lua" "$url" \
            "${arg[@]}" >"$work/$name.$n.wrk" 2>&1 &
        running+=($!)
        pids+=($!)
        n=$((n + 1))
    done
    for t in "${running[@]}"; do
        wait "$t" || die "wrk failed ($name): $(cat "$work/$name".*.wrk)"
        forget_pid "$t"
    done
}

# A warm-up, then a timed run (see wrk_at_once) of kind $2 (issue or poll): sets
# $rps, $requests, $p99_ms, and $cpu_us (the servers') and $redis_cpu_us per request.
measure() {
    local name=$1 kind=$2 lua=$3 n line total=0 longest=0 p99=0 before after rbefore=0 rafter=0
    shift 3
    if ((WARMUP > 0)); then
        wrk_at_once "$name-warmup" "$lua" "$WARMUP" "$@"
    fi
    before=$(ticks_sum "${servers[@]}")
    [[ -n $redis_port ]] && rbefore=$(cpu_ticks "$redis_pid") && redis_snapshot "$work/$name.before.calls"
    wrk_at_once "$name" "$lua" "$DURATION" "$@"
    after=$(ticks_sum "${servers[@]}")
    [[ -n $redis_port ]] && rafter=$(cpu_ticks "$redis_pid") && redis_snapshot "$work/$name.after.calls"
    for n in $(seq 0 $(($# - 1))); do
        line=$(grep '^WRK_RESULT' "$work/$name.$n.wrk") ||
            die "no result from wrk ($name): $(cat "$work/$name.$n.wrk")"
        (($(field socket_errors "$line") == 0)) || die "$name: socket errors: $line"
        requests=$(field requests "$line")
        if [[ $kind == issue ]]; then
            (($(field status_errors "$line") == 0)) || die "$name: answers other than 200: $line"
        else
            # Every poll of a pending code is a 400 (authorization_pending or slow_down).
            (($(field status_errors "$line") == requests)) || die "$name: a poll got a 2xx: $line"
        fi
        total=$((total + requests))
        (($(field duration_us "$line") > longest)) && longest=$(field duration_us "$line")
        (($(field p99_us "$line") > p99)) && p99=$(field p99_us "$line")
        [[ -n $OUT ]] && cp "$work/$name.$n.wrk" "$OUT/" || true
    done
    requests=$total
    rps=$((requests * 1000000 / longest))
    p99_ms=$(awk -v u="$p99" 'BEGIN { printf "%.1f", u / 1000 }')
    cpu_us=$(awk -v t=$((after - before)) -v hz="$clk_tck" -v r="$requests" \
        'BEGIN { printf "%.1f", t / hz * 1e6 / r }')
    redis_cpu_us=-
    # How busy the servers' core was: below 100 %, wrk (or the machine) set the rate.
    busy=$(awk -v t=$((after - before + rafter - rbefore)) -v hz="$clk_tck" -v us="$longest" \
        'BEGIN { printf "%.0f", 100 * t / hz / (us / 1e6) }')
    if [[ -n $redis_port ]]; then
        redis_cpu_us=$(awk -v t=$((rafter - rbefore)) -v hz="$clk_tck" -v r="$requests" \
            'BEGIN { printf "%.1f", t / hz * 1e6 / r }')
        redis_delta "$work/$name.before.calls" "$work/$name.after.calls" "$requests" "$name"
    fi
}

per() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# --- one setup -------------------------------------------------------------------
# Starts what setup $1 needs, issues CODES codes, measures, stops; appends a row.
run_setup() {
    local setup=$1 store instances i addr
    redis_port=""
    case $setup in
    memory) store=memory instances=1 ;;
    redis) instances=1 ;;
    redis2) instances=2 ;;
    esac
    if [[ $setup != memory ]]; then
        start_redis
        store="redis://127.0.0.1:$redis_port"
    fi
    bench_config "$work/$setup.toml" "$store"
    servers=() addrs=()
    for i in $(seq 1 "$instances"); do
        start "$setup-$i" "$SERVER_CPUS" env RUST_LOG=error \
            "$server_bin" --config "$work/$setup.toml" --quiet
        servers+=("$started_pid")
        addrs+=("$started_addr")
    done
    echo "redis.sh: $setup: $instances instance(s) on $store" >&2

    # Live sessions: CODES codes, issued through the first instance, Redis's memory
    # read around it.
    local m0 r0 k0 have _
    if [[ -n $redis_port ]]; then
        m0=$(redis_info memory used_memory) r0=$(redis_info memory used_memory_rss)
        k0=$(redis-cli -p "$redis_port" DBSIZE)
    fi
    rm -f "$work"/codes*
    have=0
    for _ in $(seq 1 100); do
        child taskset -c "$CLIENT_CPUS" wrk -t"$THREADS" -c"$CONNECTIONS" -d2s -s "$work/capture.lua" \
            "http://${addrs[0]}/oauth/device_authorization" >"$work/capture.wrk" 2>&1 ||
            die "$setup: wrk failed capturing codes: $(cat "$work/capture.wrk")"
        have=$(cat "$work"/codes.* 2>/dev/null | wc -l)
        ((have >= CODES)) && break
    done
    ((have >= CODES)) || die "$setup: captured only $have codes"
    if [[ -n $redis_port && $setup == redis ]]; then
        # Every device authorization of the capture made a live session, kept or not.
        local issued m1 r1 k1
        issued=$(metric_sum deviceflow_device_authorizations_total "${addrs[@]}")
        [[ $issued =~ ^[0-9]+$ && $issued -ge $have ]] || issued=$have
        m1=$(redis_info memory used_memory) r1=$(redis_info memory used_memory_rss)
        k1=$(redis-cli -p "$redis_port" DBSIZE)
        memory_line="Redis memory per 1M live sessions (from $issued sessions, $(per $((k1 - k0)) "$issued") keys each): used_memory $(awk -v d=$((m1 - m0)) -v n="$issued" 'BEGIN { printf "%.0f MB (%.0f B/session)", d / n, d / n }'), used_memory_rss $(awk -v d=$((r1 - r0)) -v n="$issued" 'BEGIN { printf "%.0f MB", d / n }')"
    fi
    awk -v n="$CODES" 'NR <= n' "$work"/codes.* >"$work/codes"
    local targets=()
    if ((instances == 1)); then
        targets=("${addrs[0]}/oauth/token=$work/codes")
    else
        # Half the codes polled through each instance.
        awk 'NR % 2 == 1' "$work/codes" >"$work/codes.a"
        awk 'NR % 2 == 0' "$work/codes" >"$work/codes.b"
        targets=("${addrs[0]}/oauth/token=$work/codes.a" "${addrs[1]}/oauth/token=$work/codes.b")
    fi
    local issue_targets=()
    for addr in "${addrs[@]}"; do
        issue_targets+=("$addr/oauth/device_authorization")
    done

    measure "$setup-issue" issue "$work/issue.lua" "${issue_targets[@]}"
    local issue_rps=$rps issue_p99=$p99_ms issue_cpu=$cpu_us issue_rcpu=$redis_cpu_us issue_busy=$busy
    local issue_cmds=- issue_trips=-
    if [[ -n $redis_port ]]; then
        issue_cmds=$(per "$cmds" "$requests")
        round_trips issue "${addrs[0]}"
        issue_trips="$trips ($inner in scripts)"
    fi

    local pending0 slow0 pending slow share
    pending0=$(metric_sum 'deviceflow_token_polls_total{outcome="authorization_pending"}' "${addrs[@]}")
    slow0=$(metric_sum deviceflow_slow_down_total "${addrs[@]}")
    measure "$setup-poll" poll "$work/poll.lua" "${targets[@]}"
    pending=$(($(metric_sum 'deviceflow_token_polls_total{outcome="authorization_pending"}' "${addrs[@]}") - pending0))
    slow=$(($(metric_sum deviceflow_slow_down_total "${addrs[@]}") - slow0))
    share=$(awk -v p="$pending" -v s="$slow" 'BEGIN { printf "%.0f", (p + s) ? 100 * p / (p + s) : 0 }')
    local poll_cmds=- poll_trips=-
    if [[ -n $redis_port ]]; then
        poll_cmds=$(per "$cmds" "$requests")
        round_trips poll "${addrs[$((instances - 1))]}"
        poll_trips="$trips ($inner in scripts)"
    fi

    for i in "${servers[@]}"; do stop "$i"; done
    [[ -n $redis_port ]] && stop "$redis_pid"
    local label
    case $setup in
    memory) label="(a) memory, 1 instance" ;;
    redis) label="(b) 1 instance, 1 Redis" ;;
    redis2) label="(c) 2 instances, 1 Redis" ;;
    esac
    rows+=("| $label | $rps | $p99_ms | $share % | $busy % | $cpu_us | $redis_cpu_us | $poll_cmds | $poll_trips | $issue_rps | $issue_p99 | $issue_busy % | $issue_cpu | $issue_rcpu | $issue_cmds | $issue_trips |")
}

# --- run -------------------------------------------------------------------------
{
    echo "cpu:       $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1) ($(nproc) usable cores)"
    echo "built from: $(built_from)"
    echo "redis:     $(redis-server --version | head -n 1)"
    echo "pinning:   servers and Redis on $SERVER_CPUS; wrk on $CLIENT_CPUS, $THREADS thread(s), $CONNECTIONS connections in all"
    echo "runs:      ${DURATION}s timed after ${WARMUP}s warm-up; polls round robin over $CODES pending codes per setup, slow_down enforced"
} | tee "$work/table.txt" >&2
rows=() breakdown=() memory_line=""
for setup in $SETUPS; do
    run_setup "$setup"
done
{
    echo
    echo "| setup | polls/s | p99 ms | pending (rest slow_down) | servers+Redis CPU, of one core | server CPU µs/poll | Redis CPU µs/poll | Redis commands run/poll | round trips to Redis/poll | device authorizations/s | p99 ms | servers+Redis CPU, of one core | server CPU µs/DA | Redis CPU µs/DA | Redis commands run/DA | round trips to Redis/DA |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${rows[@]}"
    echo
    echo "Where the servers and Redis used well under a core of SERVER_CPUS, wrk (on"
    echo "CLIENT_CPUS) or the machine set the rate, not they: compare CPU per request then."
    [[ -n $memory_line ]] && echo "$memory_line"
    if ((${#breakdown[@]})); then
        echo "Commands Redis ran per request of the timed runs (a script's own included):"
        printf '  %s\n' "${breakdown[@]}"
    fi
} | tee -a "$work/table.txt"
[[ -n $OUT ]] && cp "$work/table.txt" "$OUT/" || true
