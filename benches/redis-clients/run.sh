#!/usr/bin/env bash
# run.sh: the Redis store's poll (read, decide, compare-and-set) three ways, against a
# Redis of its own. README.md says what each column means.
#
# Environment (defaults in brackets):
#   SECS      timed seconds per row [8]
#   WARM      warm-up seconds per row [2]
#   ROWS      which rows, "mode:tasks" ("64x1": 64 tasks on one key)
#             [every mode at 1, 64, 512 and 64x1]
#   TRIES     runs of a row at most: a row whose window saw more than QUIET cores of
#             other load is run again, and the least disturbed try is printed [3]
#   QUIET     other load, in cores, below which a try is kept at once [0.25]
#   REDIS     redis-server [/usr/bin/redis-server]
#   CARGO_TARGET_DIR  where the bench is built [this folder's target/]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
SECS=${SECS:-8}
WARM=${WARM:-2}
TRIES=${TRIES:-3}
QUIET=${QUIET:-0.25}
REDIS=${REDIS:-/usr/bin/redis-server}
modes=(cas-rs watch-rs cas-fred)
ROWS=${ROWS:-$(for c in 1 64 512 64x1; do for m in "${modes[@]}"; do printf '%s:%s ' "$m" "$c"; done; done)}

cargo build --release --quiet --manifest-path "$here/Cargo.toml"
bin=${CARGO_TARGET_DIR:-$here/target}/release/redis-clients-bench

# Redis on one core, the bench on another, when there are two.
ncpu=$(nproc)
if [ "$ncpu" -ge 2 ]; then
  pin_redis=(taskset -c 0); pin_bench=(taskset -c 1); pinning="Redis on core 0, bench on core 1"
else
  pin_redis=(); pin_bench=(); pinning="one core: not pinned"
fi

# A free loopback port, and a Redis that keeps nothing on disk.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
dir=$(mktemp -d)
"${pin_redis[@]}" "$REDIS" --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$dir" --logfile "$dir/redis.log" --daemonize no &
redis_pid=$!
cleanup() { kill "$redis_pid" 2>/dev/null; wait "$redis_pid" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
for _ in $(seq 50); do
  (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
  sleep 0.1
done
export REDIS_PID=$redis_pid

echo "# $(date -u '+%Y-%m-%d %H:%M UTC'); $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), nproc $ncpu; $pinning"
echo "# $($REDIS --version | cut -d' ' -f1-3); ${SECS} s timed after ${WARM} s warm-up per row; loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"
"$bin" fill "$port"
"$bin" header
# other load of a printed row: the 12th '|'-separated field
other_of() { awk -F'|' '{gsub(/ /, "", $12); print $12}' <<<"$1"; }
for row in $ROWS; do
  best=; best_other=; tries=0
  for try in $(seq "$TRIES"); do
    line=$("${pin_bench[@]}" "$bin" "${row%%:*}" "$port" "${row#*:}" "$SECS" "$WARM" 2>"$dir/try.err")
    tries=$try
    other=$(other_of "$line")
    if [ -z "$best" ] || awk -v a="$other" -v b="$best_other" 'BEGIN { exit !(a < b) }'; then
      best=$line; best_other=$other; cp "$dir/try.err" "$dir/best.err"
    fi
    awk -v a="$other" -v q="$QUIET" 'BEGIN { exit !(a <= q) }' && break
  done
  echo "$best"
  cat "$dir/best.err" >>"$dir/errors"
  [ "$tries" -gt 1 ] && echo "${row}: best of $tries tries" >>"$dir/errors"
done
echo "# loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg)"
sed 's/^/# /' "$dir/errors"
