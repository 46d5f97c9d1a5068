#!/usr/bin/env bash
# loadgen/bench.sh: the load generator at scale against our release server, on this
# machine, and a table of what it cost and whether it kept its schedule.
#
# For each fleet size and pipelining depth, starts a private copy of deviceflow-server
# (release; quotas off, since every device comes from one loopback address; interval
# and expires_in as below), runs deviceflow-loadgen against it with the default
# behaviour mix and the admin endpoint playing the people, and reads the run's
# run.json. Prints, per size and depth:
# wall time, the generator's peak RSS and bytes per device (peak RSS above its RSS at
# start, over the devices), its CPU per request, polls/s achieved against what the
# devices' schedule called for, p99 lateness of polls, and whether every count matched
# the server's /metrics. Kills only the servers it started. README "Scale".
#
# Environment (defaults in brackets):
#   SIZES         fleet sizes [10000 100000 1000000]
#   INTERVAL      the server's interval, s [30]
#   EXPIRES_IN    the server's expires_in, s [300]
#   RATE          devices started per second [10000]
#   LANES         goose users multiplexing the devices [2]
#   PIPELINES     --pipeline depths to run each size with: 1 is one request at a time on
#                 a connection (the generator's default), more writes up to that many
#                 requests at once on one (HTTP/1.1 pipelining) ["1 16"]
#   OUT           keep the reports here [a temporary folder, removed]
#   LOADGEN       another build of deviceflow-loadgen to run (to set an earlier commit's
#                 beside this one's, in turn on one machine) [this checkout's, built]
#   TLS           1: the fleet reaches the server over https://, through a TLS terminator
#                 in front of it (benches' tls-terminator, on its own thread; a CA of its
#                 own, made with openssl, in SSL_CERT_FILE), to see what TLS costs the
#                 generator [0]
set -euo pipefail

SIZES=${SIZES:-"10000 100000 1000000"}
INTERVAL=${INTERVAL:-30}
EXPIRES_IN=${EXPIRES_IN:-300}
RATE=${RATE:-10000}
LANES=${LANES:-2}
PIPELINES=${PIPELINES:-"1 16"}
TLS=${TLS:-0}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
work="$(mktemp -d)"
script=loadgen/bench.sh
# shellcheck source=../benches/common.sh
source "$root/benches/common.sh"
out="${OUT:-$work/reports}"
mkdir -p "$out"

require_whole INTERVAL EXPIRES_IN RATE LANES
for n in $SIZES; do
    [[ $n =~ ^[1-9][0-9]{0,7}$ ]] || die "SIZES must be whole numbers from 1 to 99999999, not '$n'"
done
[[ -n ${SIZES// /} ]] || die "SIZES names no fleet size"
[[ $TLS == 0 || $TLS == 1 ]] || die "TLS must be 0 or 1, not '$TLS'"
((TLS == 0)) || command -v openssl >/dev/null || die "openssl is required for TLS=1 (scripts/install-test-deps.sh installs it)"
for p in $PIPELINES; do
    [[ $p =~ ^[0-9]+$ ]] && ((p >= 1 && p <= 256)) || die "PIPELINES must be whole numbers from 1 to 256, not '$p'"
done
for tool in cargo curl python3; do
    command -v "$tool" >/dev/null || die "$tool is required"
done

echo "$script: building release binaries" >&2
cargo build --release --quiet --manifest-path "$root/Cargo.toml" \
    -p deviceflow-server -p deviceflow-loadgen -p deviceflow-benches \
    --bin deviceflow-server --bin deviceflow-loadgen --bin tls-terminator
cp "$target_dir/release/deviceflow-server" "$work/server"
cp "$target_dir/release/tls-terminator" "$work/tls-terminator"
loadgen_bin=${LOADGEN:-$target_dir/release/deviceflow-loadgen}
[[ -f $loadgen_bin && -x $loadgen_bin ]] || die "LOADGEN=$loadgen_bin is not an executable"
cp "$loadgen_bin" "$work/loadgen"

admin="bench-admin-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "# loadgen bench: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) ($(nproc) cores), $(uname -r), commit $(git -C "$root" rev-parse --short HEAD)"
echo "# server: interval $INTERVAL s, expires_in $EXPIRES_IN s, quotas off; devices started $RATE/s; default mix; people decide after 5..30 s (10 % deny, 5 % never)"
((TLS)) && echo "# over https://, through tls-terminator (rustls, TLS 1.3) in front of the server"
for n in $SIZES; do
for pipeline in $PIPELINES; do
    port=$(free_port)
    # With TLS=1 the terminator's port is the issuer's: the metadata sends the fleet there.
    if ((TLS)); then
        tls_port=$(free_port)
        base="https://127.0.0.1:$tls_port"
    else
        base="http://127.0.0.1:$port"
    fi
    cat >"$work/server.toml" <<EOF
listen = "127.0.0.1:$port"
issuer = "$base"
[device]
expires_in = $EXPIRES_IN
interval = $INTERVAL
max_sessions = 4000000
[quotas]
per_source_rate = 0
per_client_rate = 0
client_share = 1.0
[admin]
token = "$admin"
[[clients]]
client_id = "demo-device"
[[users]]
username = "demo"
EOF
    RUST_LOG=warn "$work/server" --config "$work/server.toml" >"$work/server-$n.log" 2>&1 &
    server_pid=$!
    pids+=("$server_pid")
    up=0
    for _ in $(seq 50); do
        curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && up=1 && break
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    ((up)) || die "the server did not start: $(tail -n 3 "$work/server-$n.log" | tr '\n' ' ')"
    tls_pid=
    if ((TLS)); then
        "$work/tls-terminator" "$tls_port" "127.0.0.1:$port" "$work/certs" >"$work/tls-$n.log" 2>&1 &
        tls_pid=$!
        pids+=("$tls_pid")
        up=0
        for _ in $(seq 100); do
            curl -sf --cacert "$work/certs/ca.crt" "$base/healthz" >/dev/null && up=1 && break
            kill -0 "$tls_pid" 2>/dev/null || break
            sleep 0.1
        done
        ((up)) || die "the TLS terminator did not start: $(tail -n 3 "$work/tls-$n.log" | tr '\n' ' ')"
    fi
    cmd=("$work/loadgen" --host "$base" -u "$n" -r "$RATE" --lanes "$LANES"
        --admin-token "$admin" --expect-interval "$INTERVAL" --expect-expires-in "$EXPIRES_IN"
        --pipeline "$pipeline" --report-dir "$out/$n-p$pipeline" --progress-every 30)
    echo "$script: ${cmd[*]/$admin/…}" >&2
    start=$(date +%s.%N)
    code=0
    trust=()
    ((TLS)) && trust=(env SSL_CERT_FILE="$work/certs/ca.crt")
    child ${trust[@]+"${trust[@]}"} "${cmd[@]}" >"$work/loadgen-$n-p$pipeline.out" 2>"$work/loadgen-$n-p$pipeline.err" || code=$?
    end=$(date +%s.%N)
    for pid in $tls_pid $server_pid; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    [[ -f "$out/$n-p$pipeline/run.json" ]] || { cat "$work/loadgen-$n-p$pipeline.err" >&2; die "no run.json for $n devices (exit $code)"; }
    python3 - "$out/$n-p$pipeline/run.json" "$n" "$start" "$end" "$code" "$INTERVAL" "$pipeline" >>"$work/rows" <<'EOF'
import json, sys
run = json.load(open(sys.argv[1]))
n, start, end, code, interval, pipeline = int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5], int(sys.argv[6]), sys.argv[7]
shard = run["shards"][0]
stats = run["stats"]
polls = stats["kinds"].get("poll", {})
sent_all = sum(k["sent"] for k in stats["kinds"].values())
rss, rss0 = shard["peak_rss_mb"], shard.get("rss_at_start_mb") or 0
bpd = (rss - rss0) * 1e6 / n
cpu_us = shard["cpu_s"] * 1e6 / max(sent_all, 1)
# What the schedule called for: devices polling (sampled every 5 s per behaviour) over
# the interval each behaviour keeps (eager half of it, deaf 0.7 x the first).
factor = {"compliant": 1, "jittery": 1, "abandoned": 1, "eager": 2}
expected = 0.0
for b, s in stats["intervals"].items():
    for total, count in s["steps"]:
        if count:
            mean = total / count
            rate = count / (0.7 * interval) if b == "deaf" else count * factor[b] / mean
            expected += rate * 5
dur = run["duration_s"]
answered = polls.get("answered", 0)
# p99 lateness of polls, from the HDR histogram's quantile as the report computes it:
# read off the summary table instead of decoding the histogram here.
lat = "?"
for line in open(sys.argv[1].replace("run.json", "summary.md")):
    if line.replace("\\_", "_").startswith("| token_poll |") and "ms" in line:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 7:
            lat = cells[5]
rows = []
w = run.get("metrics")
match = "no /metrics"
for line in open(sys.argv[1].replace("run.json", "summary.md")):
    if "counts match the server" in line:
        match = "all match"
    elif "counts differ from the server" in line:
        match = line.strip("- \n")
print(f"| {n:,} | {pipeline} | {end-start:.0f} s | {rss:.0f} MB | {bpd:.0f} B | {cpu_us:.1f} µs | {answered/dur:,.0f} / {expected/dur:,.0f} | {lat} | {match} | {code} |")
EOF
done
done
echo
echo "| devices | pipeline | wall time | generator peak RSS | bytes/device | generator CPU/request | polls/s achieved / expected | poll lateness p99 | counts vs /metrics | exit |"
echo "|---|---|---|---|---|---|---|---|---|---|"
cat "$work/rows"
