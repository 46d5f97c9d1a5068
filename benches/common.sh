# common.sh: sourced by the bench scripts (ceiling.sh, hostile.sh) after they set
# `script` (their name, for messages) and `work` (a temporary folder of their own).
# Gives them `pids` (append what you start), `die`, `start` (a server pinned to cores),
# `cpu_ticks`, `field` (of wrk's WRK_RESULT line), and a cleanup on exit that stops
# those processes, by PID, and removes `work`.

pids=()

die() {
    echo "$script: $*" >&2
    exit 1
}

cleanup() {
    local pid
    for pid in ${pids[@]+"${pids[@]}"}; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in ${pids[@]+"${pids[@]}"}; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

# Starts "$@" pinned to cores $2 on an ephemeral loopback port, logging to
# $work/$1.log; sets $started_pid and $started_addr from the "listening on ADDR" line
# both our server and the ceiling print.
start() {
    local name=$1 cpus=$2
    shift 2
    local log="$work/$name.log"
    taskset -c "$cpus" "$@" >"$log" 2>&1 &
    started_pid=$!
    pids+=("$started_pid")
    started_addr=""
    local _
    for _ in $(seq 1 100); do
        started_addr=$(sed -n 's/.*listening on \(127\.0\.0\.1:[0-9][0-9]*\).*/\1/p' "$log" | head -n 1)
        [[ -n $started_addr ]] && return 0
        kill -0 "$started_pid" 2>/dev/null || break
        sleep 0.1
    done
    cat "$log" >&2
    die "$name did not start"
}

# CPU time (user + system, in clock ticks) process $1 has used so far.
cpu_ticks() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || die "server process $1 is gone"
    sed 's/^.*) //' <<<"$stat" | awk '{ print $12 + $13 }'
}

# The value of `name` ($1) in a wrk WRK_RESULT line ($2).
field() {
    sed -n "s/.* $1=\([0-9][0-9]*\).*/\1/p" <<<" $2"
}
