# common.sh: sourced by the bench scripts (ceiling.sh, cores.sh, growth.sh, hostile.sh,
# instructions.sh, redis.sh, and loadgen/bench.sh) after they set `script` (their name,
# for messages), `work` (a temporary folder of their own) and `root` (the checkout).
# Gives them `pids` (append what you start), `die`, `require_whole`, `require_bit`
# (0 or 1), `require_out` (OUT, a writable directory), `forget_deviceflow_env`,
# `built_from`, `private_copy` (of a release binary), `child` (a long run: a cargo
# build, wrk, the load generator), `stop` (one of `pids`), `require_tools`, `start` (a
# server pinned to cores), `core_list` and `require_apart` (the cores to pin to),
# `cpu_ticks`, `field` (of wrk's WRK_RESULT line), `bench_config`, `wrk_scripts` (the
# issuance and poll scripts for wrk), and a cleanup on exit, on SIGINT and on SIGTERM
# that stops those processes, by PID, runs the script's own `script_cleanup` if it has
# one, and removes `work`. A signal ends the script with status 130 (SIGINT) or 143
# (SIGTERM), after a line on stderr saying it was interrupted.

pids=()

die() {
    echo "$script: $*" >&2
    exit 1
}

# What the binaries measured were built from, for a report's header: this checkout's
# commit (saying so if it has uncommitted changes), or the PREBUILT directory, whose
# binaries need not come from this checkout.
built_from() {
    if [[ -n ${PREBUILT:-} ]]; then
        echo "$PREBUILT (prebuilt)"
        return
    fi
    local commit
    commit=$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
    if [[ $commit != unknown && -n $(git -C "$root" status --porcelain 2>/dev/null) ]]; then
        commit="$commit (with uncommitted changes)"
    fi
    echo "$commit"
}

# Dies unless each variable named holds a whole number, written without leading zeros
# (bash would read 08 as octal, and refuse it in arithmetic), of at most 9 digits (bash
# arithmetic wraps past 2^63 without a word: 99999999999999999999 passed every check
# as 7766279631452241919).
require_whole() {
    local v
    for v in "$@"; do
        [[ ${!v} =~ ^(0|[1-9][0-9]{0,8})$ ]] ||
            die "$v must be a whole number below 1000000000, not '${!v}'"
    done
}

# Dies unless each variable named is 0 or 1.
require_bit() {
    local v
    for v in "$@"; do
        [[ ${!v} == 0 || ${!v} == 1 ]] || die "$v must be 0 or 1, not '${!v}'"
    done
}

# Dies unless OUT is unset, empty, or a directory this script can write to (made if
# missing): now, not after the build or the runs it would have kept.
require_out() {
    if [[ -n ${OUT:-} ]] && ! { mkdir -p "$OUT" 2>/dev/null && [[ -d $OUT && -w $OUT ]]; }; then
        die "OUT=$OUT is not a writable directory"
    fi
}

# Unsets, in this shell and so in everything it starts, every DEVICEFLOW_* variable of
# the caller's environment, and says which on stderr. The server reads its settings
# from them (server/src/main.rs), over its config file and flags' defaults: an exported
# DEVICEFLOW_SLOW_DOWN=off or DEVICEFLOW_STORE=redis://… changed what was measured
# without a word, under a header that still said "slow_down enforced" or "memory".
forget_deviceflow_env() {
    local name names=()
    while read -r name; do
        names+=("$name")
        unset "$name"
    done < <(compgen -e | grep '^DEVICEFLOW_' || true)
    ((${#names[@]} == 0)) ||
        echo "$script: ignoring ${names[*]} from the environment: the servers measured take only this script's settings" >&2
}

# Copies the release binary $1 of PREBUILT, or of this checkout's target/, to $2: a
# private copy, so that a rebuild of target/ or a kill by process name on a shared
# machine cannot change or stop what is measured.
private_copy() {
    local from="${PREBUILT:-${target_dir:-${CARGO_TARGET_DIR:-$root/target}}/release}/$1"
    [[ -f $from && -x $from ]] ||
        die "no $1 binary at $from${PREBUILT:+ (PREBUILT=$PREBUILT)}"
    cp "$from" "$2"
}

cleanup() {
    local pid kids
    # A second signal (timeout's to the process group, a second Ctrl-C) must not cut
    # the cleanup short and leave a server or `work` behind.
    trap '' INT TERM
    for pid in ${pids[@]+"${pids[@]}"}; do
        # Its own children too, read before it goes: a cargo build killed alone left its
        # rustc compiling, orphaned, for a minute or more.
        kids=$(pgrep -P "$pid" 2>/dev/null || true)
        kill "$pid" 2>/dev/null || true
        # shellcheck disable=SC2086 # a list of PIDs
        [[ -z $kids ]] || kill $kids 2>/dev/null || true
    done
    for pid in ${pids[@]+"${pids[@]}"}; do
        wait "$pid" 2>/dev/null || true
    done
    if declare -F script_cleanup >/dev/null; then
        script_cleanup || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
# Without these, SIGINT sent to the script alone (not to its process group, as a
# terminal's Ctrl-C is) was waited out: bash let the foreground wrk finish, saw that it
# had not died of the signal, and carried on with the next run. SIGTERM ended the script
# but left its foreground wrk or load generator running. Exiting runs the cleanup
# above; `child` makes the wait for a long run (a cargo build included) one that a
# signal cuts short. 128 + the signal's number, as bash itself exits on one, in every
# script, with a line that says so: an exit on a signal was silent.
interrupted() {
    echo "$script: interrupted by SIG$1; stopping what it started" >&"$script_stderr"
    exit "$2"
}
# The script's own stderr, for that line: a signal that comes while `child` waits runs
# the trap under the redirections of the `child` call (wrk's output file, say).
exec {script_stderr}>&2
trap 'interrupted INT 130' INT
trap 'interrupted TERM 143' TERM

# Runs "$@" (its redirections are the caller's) as a child the cleanup stops, and waits
# for it; returns its status. A command run in the foreground instead would hold off a
# SIGINT or SIGTERM to the script until it had finished.
child() {
    local pid status=0
    "$@" &
    pid=$!
    pids+=("$pid")
    wait "$pid" || status=$?
    # Reaped: its PID may be reused by a process that is not ours.
    unset 'pids[-1]'
    return "$status"
}

# Drops PID $1 from `pids`: once it is reaped, the cleanup must not signal it again.
forget_pid() {
    local i
    for i in "${!pids[@]}"; do
        [[ ${pids[$i]} != "$1" ]] || unset 'pids[i]'
    done
}

# Stops process $1, one of `pids`, reaps it and forgets it.
stop() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    forget_pid "$1"
}

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

# Installs wrk with apt-get when it is missing, and dies unless each of "$@" is on
# PATH.
require_tools() {
    if ! command -v wrk >/dev/null; then
        echo "$script: installing wrk" >&2
        apt-get update -qq && apt-get install -y -qq wrk >/dev/null
    fi
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || die "$tool is required"
    done
}

# The cores of the list "$1" ("0-3,8") into array $2 (0 1 2 3 8); returns 1 unless it
# is such a list.
parse_cores() {
    local part parts
    local -n cores=$2
    cores=()
    IFS=, read -ra parts <<<"$1"
    for part in "${parts[@]}"; do
        if [[ $part =~ ^([0-9]{1,4})-([0-9]{1,4})$ ]] && ((10#${BASH_REMATCH[1]} <= 10#${BASH_REMATCH[2]})); then
            cores+=($(seq "$((10#${BASH_REMATCH[1]}))" "$((10#${BASH_REMATCH[2]}))"))
        elif [[ $part =~ ^[0-9]{1,4}$ ]]; then
            cores+=("$((10#$part))")
        else
            return 1
        fi
    done
    ((${#cores[@]} > 0))
}

# The cores of list variable $1 into array $2; dies unless it is a list like 0-3,8 of
# cores this process may run on (a core the machine lacks passed, and taskset refused
# it with "Invalid argument" once the run had begun). In this shell, not a $(...): a
# die there ended only the subshell, and the script went on with no cores and a
# second, wrong message.
core_list() {
    local list=${!1} affinity core
    parse_cores "$list" "$2" || die "$1 must be a list of cores like 0-3,8, not '$list'"
    local -n listed=$2
    local usable=()
    affinity=$(taskset -pc $$ 2>/dev/null | sed -n 's/.*: *//p')
    parse_cores "$affinity" usable || return 0
    for core in "${listed[@]}"; do
        [[ " ${usable[*]} " == *" $core "* ]] ||
            die "$1 names core $core, which this machine does not let the script use (it may use $affinity)"
    done
}

# Dies if a core is in both core-list variables, $1 (array $2) and $3 (array $4): the
# load generator would share the servers' cores, and each measure the other.
require_apart() {
    local -n first=$2 second=$4
    local a b
    for a in "${first[@]}"; do
        for b in "${second[@]}"; do
            ((a != b)) || die "core $a is in both $1 and $3"
        done
    done
}

# CPU time (user + system, in clock ticks) process $1 has used so far.
cpu_ticks() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || die "server process $1 is gone"
    sed 's/^.*) //' <<<"$stat" | awk '{ print $12 + $13 }'
}

# Minor page faults process $1 has taken so far: first touches of memory it was given
# (in a sandbox such as gVisor, each one a trap the sandbox serves).
minor_faults() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || die "server process $1 is gone"
    sed 's/^.*) //' <<<"$stat" | awk '{ print $8 }'
}

# The value of `name` ($1) in a wrk WRK_RESULT line ($2).
field() {
    sed -n "s/.* $1=\([0-9][0-9]*\).*/\1/p" <<<" $2"
}

# Writes to $1 the server configuration of the fleet-shaped benches (cores.sh,
# redis.sh): codes living an hour, interval 5 s with slow_down enforced, no session
# cap to speak of and no quotas (one loopback source issues everything), one public
# client `demo-device`, and the store $2 (none named: the default, memory; builds from
# before the store seam refuse the key, and instructions.sh counts those too).
bench_config() {
    {
        [[ -n ${2:-} ]] && echo "store = \"$2\""
        cat <<EOF
listen = "127.0.0.1:0"
[device]
expires_in = 3600
interval = 5
slow_down = "enforce"
max_sessions = 50000000
[quotas]
per_source_rate = 0
per_client_rate = 0
client_share = 1.0
[[clients]]
client_id = "demo-device"
scopes = ["openid"]
EOF
    } >"$1"
}

# Writes the wrk scripts of the issuance and poll benches into $work, for client $1
# (public, scope openid) and $THREADS wrk threads:
# - result.lua: the WRK_RESULT line `field` reads;
# - issue.lua: device authorization requests (RFC 8628 §3.1);
# - capture.lua: the same, keeping each device_code in $work/codes.<thread>;
# - poll.lua: polls (RFC 8628 §3.4) of the codes in a file, round robin, each wrk
#   thread its share, each request built once; the file is the script's first
#   argument (`wrk … -s poll.lua URL -- FILE`), $work/codes by default.
# Sets $grant, the grant_type form field of a device code poll.
wrk_scripts() {
    local client=$1
    grant="grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code"
    cat >"$work/result.lua" <<'LUA'
-- One machine-readable line, so nothing depends on wrk's human units.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_RESULT requests=%d duration_us=%d status_errors=%d socket_errors=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(99), latency.max))
end
LUA
    cat >"$work/issue.lua" <<LUA
wrk.method = "POST"
wrk.body = "client_id=$client&scope=openid"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
dofile("$work/result.lua")
LUA
    cat >"$work/capture.lua" <<LUA
wrk.method = "POST"
wrk.body = "client_id=$client&scope=openid"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
local count = 0
setup = function(thread) thread:set("id", count); count = count + 1 end
local out, kept = nil, 0
response = function(status, headers, body)
  if not out then out = io.open("$work/codes." .. id, "a") end
  local code = body:match('"device_code":"([^"]+)"')
  if code then
    out:write(code, "\n")
    kept = kept + 1
    if kept % 1000 == 0 then out:flush() end
  end
end
LUA
    cat >"$work/poll.lua" <<LUA
local count = 0
setup = function(thread) thread:set("id", count); count = count + 1 end
local reqs, n, i = {}, 0, 0
init = function(args)
  local k = 0
  for line in io.lines(args[1] or "$work/codes") do
    if k % $THREADS == id then
      n = n + 1
      reqs[n] = wrk.format("POST", "/oauth/token",
        { ["Content-Type"] = "application/x-www-form-urlencoded" },
        "$grant&device_code=" .. line .. "&client_id=$client")
    end
    k = k + 1
  end
end
request = function() i = i % n + 1; return reqs[i] end
dofile("$work/result.lua")
LUA
}
