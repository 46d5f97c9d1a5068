#!/usr/bin/env bash
# growth.sh: the server's latency while its session map grows. One release server
# (codes living an hour, quotas off: common.sh's bench configuration) is sent device
# authorizations by wrk in ROUNDS back-to-back timed runs, and after each run the
# script prints the sessions the server holds (its /metrics) and wrk's requests/s, p99
# and maximum latency. A shard of a sharded map grows by copying itself whole under its
# write lock, and the shards of a uniformly hashed map grow together: a round that
# passes such a point shows it in its maximum (server/src/shards.rs, MAP_SHARDS).
#
# Environment (defaults in brackets):
#   ROUNDS        timed wrk runs, one after the other [8]
#   DURATION      seconds of each [4]
#   CONNECTIONS   wrk connections [16]
#   SERVER_CPU    core the server is pinned to [0]
#   CLIENT_CPU    core wrk is pinned to [1]
#   PREBUILT      a directory holding a deviceflow-server binary to run instead of
#                 building this checkout's
set -euo pipefail

ROUNDS=${ROUNDS:-8}
DURATION=${DURATION:-4}
CONNECTIONS=${CONNECTIONS:-16}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
THREADS=1

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
work="$(mktemp -d)"
script=growth.sh
# shellcheck source=common.sh
source "$here/common.sh"
forget_deviceflow_env

require_whole ROUNDS DURATION CONNECTIONS SERVER_CPU CLIENT_CPU
((ROUNDS >= 1 && DURATION >= 1 && CONNECTIONS >= 1)) ||
    die "need ROUNDS, DURATION and CONNECTIONS of at least 1"
((SERVER_CPU != CLIENT_CPU && SERVER_CPU < $(nproc) && CLIENT_CPU < $(nproc))) ||
    die "need two distinct usable cores (SERVER_CPU=$SERVER_CPU CLIENT_CPU=$CLIENT_CPU, nproc=$(nproc))"
require_tools curl taskset

if [[ -z ${PREBUILT:-} ]]; then
    command -v cargo >/dev/null || die "cargo is required (or PREBUILT)"
    echo "$script: building the release server" >&2
    child cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p deviceflow-server --bin deviceflow-server
fi
private_copy deviceflow-server "$work/server"

bench_config "$work/server.toml"
wrk_scripts demo-device
start server "$SERVER_CPU" "$work/server" --config "$work/server.toml" --quiet
url="http://$started_addr/oauth/device_authorization"

echo "# growth: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), server on core $SERVER_CPU, wrk -t1 -c$CONNECTIONS on core $CLIENT_CPU, built from $(built_from)"
echo "| round | sessions held after | device authorizations/s | p99 | max |"
echo "|---:|---:|---:|---:|---:|"
for round in $(seq 1 "$ROUNDS"); do
    child taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNECTIONS" -d"$DURATION"s -s "$work/issue.lua" "$url" \
        >"$work/round.wrk" 2>&1 || die "wrk failed in round $round: $(cat "$work/round.wrk")"
    line=$(grep WRK_RESULT "$work/round.wrk") || die "wrk printed no result in round $round"
    [[ $(field status_errors "$line") == 0 && $(field socket_errors "$line") == 0 ]] ||
        die "round $round: wrk saw errors ($line)"
    held=$(curl -sf "http://$started_addr/metrics" | sed -n 's/^deviceflow_sessions \([0-9]*\)$/\1/p')
    requests=$(field requests "$line")
    duration_us=$(field duration_us "$line")
    awk -v round="$round" -v held="$held" -v rate=$((requests * 1000000 / duration_us)) \
        -v p99="$(field p99_us "$line")" -v max="$(field max_us "$line")" \
        'BEGIN { printf "| %d | %d | %d | %.1f ms | %.1f ms |\n", round, held, rate, p99 / 1000, max / 1000 }'
done
