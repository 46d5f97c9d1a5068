#!/usr/bin/env bash
# pack.sh: a folder that runs cores.sh (and the other core-pinned benches) on a machine
# with no Rust toolchain, no package manager and no network: a lent many-core machine.
#
#   bash benches/pack.sh DIR [NAME=COMMIT ...]
#
# DIR gets:
# - builds/<name>/{deviceflow-server,ceiling}: stripped release builds, `new` of this
#   checkout (uncommitted changes included), and one more for each NAME=COMMIT, built
#   from that commit in a temporary worktree (a baseline to measure in the same run);
# - bin/wrk and lib/: wrk and the shared libraries it links beyond the C library;
# - shim/curl: `curl -sS --max-time N URL` over bash's /dev/tcp, on PATH after the
#   machine's own, for the /metrics reads of cores.sh where curl is missing;
# - benches/: this checkout's bench scripts, so the folder needs nothing else;
# - run.sh: `BUILDS="new base" [cores.sh's settings] bash DIR/run.sh` runs cores.sh on
#   each build in turn (PREBUILT), servers on SERVER_CPUS [0-7], wrk on CLIENT_CPUS
#   [8-15], 8 wrk threads and 512 connections unless set; with OUT set, each build's
#   table and wrk outputs go to OUT/<build>/.
#
# On the device tool: name DIR in `carry` (and in .git/info/exclude), and run
# `OUT=$OUT CORES="1 2 4 8" ROUNDS=3 DURATION=4 CODES=1000000 bash DIR/run.sh`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/pack.XXXXXX")"
script=pack.sh
# shellcheck source=common.sh
source "$here/common.sh"

# On an exit before the end (a failed build, SIGINT, SIGTERM), run by common.sh's
# cleanup before it removes `work`: the worktrees still registered are removed from the
# checkout's list (their folders are in `work`; an interrupted run left one listed as
# "prunable"), and what was written to DIR goes, DIR too if this run made it: a
# half-filled folder is not a pack.
trees=() made_dir="" filling="" packed=""
script_cleanup() {
    local tree
    for tree in ${trees[@]+"${trees[@]}"}; do
        git -C "$root" worktree remove --force "$tree" 2>/dev/null ||
            git -C "$root" worktree prune 2>/dev/null || true
    done
    [[ -n $filling && -z $packed ]] || return 0
    if [[ -n $made_dir ]]; then
        rm -rf "$dir"
    else
        rm -rf "${dir:?}/builds" "${dir:?}/bin" "${dir:?}/lib" "${dir:?}/shim" "${dir:?}/benches" "${dir:?}/run.sh"
    fi
    echo "$script: stopped before the end; removed what it had written to $dir" >&2
}

(($# >= 1)) || die "usage: bash benches/pack.sh DIR [NAME=COMMIT ...]"
dir=$1
shift
for spec in "$@"; do
    [[ $spec =~ ^[a-z0-9_-]+=[^=]+$ && ${spec%%=*} != new ]] ||
        die "each build is NAME=COMMIT (NAME in a-z, 0-9, _ and -, not 'new'), not '$spec'"
    git -C "$root" rev-parse --verify --quiet "${spec#*=}^{commit}" >/dev/null ||
        die "${spec#*=} is not a commit of this checkout"
done
require_tools ldd strip
[[ -e $dir ]] || made_dir=1
mkdir -p "$dir" || die "cannot create $dir"
dir="$(cd "$dir" && pwd)"
filling=1
rm -rf "${dir:?}/builds" "${dir:?}/bin" "${dir:?}/lib" "${dir:?}/shim" "${dir:?}/benches"
mkdir -p "$dir/builds" "$dir/bin" "$dir/lib" "$dir/shim" "$dir/benches"

# Builds the server and the ceiling of checkout $1 into builds/$2, stripped.
build() {
    local from=$1 name=$2 target="${CARGO_TARGET_DIR:-$root/target}"
    echo "$script: building $name ($(git -C "$from" rev-parse --short=12 HEAD))" >&2
    child cargo build --release --quiet --manifest-path "$from/Cargo.toml" --target-dir "$target" \
        -p deviceflow-server -p deviceflow-benches --bin deviceflow-server --bin ceiling || return
    mkdir -p "$dir/builds/$name"
    local bin
    for bin in deviceflow-server ceiling; do
        strip -o "$dir/builds/$name/$bin" "$target/release/$bin"
    done
    git -C "$from" rev-parse HEAD >"$dir/builds/$name/commit"
}

for spec in "$@"; do
    tree="$work/tree-${spec%%=*}"
    trees+=("$tree")
    git -C "$root" worktree add --quiet --detach "$tree" "${spec#*=}"
    # One target directory for all: the builds share most of their dependencies. The
    # cleanup removes the worktree when the build fails.
    build "$tree" "${spec%%=*}" || die "the build of $spec failed"
    git -C "$root" worktree remove --force "$tree"
    unset 'trees[-1]'
done
# Last, so that target/release holds this checkout's build again.
build "$root" new

# wrk, and what it links beyond the C library (LuaJIT, OpenSSL), which a bare machine
# may lack.
wrk_path=$(command -v wrk)
cp "$wrk_path" "$dir/bin/wrk"
ldd "$wrk_path" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | while read -r lib; do
    case $(basename "$lib") in
    libc.so* | libm.so* | libdl.so* | libpthread.so* | librt.so* | ld-linux*) ;;
    *) cp -L "$lib" "$dir/lib/" ;;
    esac
done

cat >"$dir/shim/curl" <<'SHIM'
#!/usr/bin/env bash
# curl -sS --max-time N http://HOST:PORT/PATH, over bash's /dev/tcp: the one use
# cores.sh makes of curl (its /metrics reads), for a machine without curl.
set -euo pipefail
max=5 url=
while (($#)); do
    case $1 in
    --max-time) max=$2; shift 2 ;;
    -*) shift ;;
    *) url=$1; shift ;;
    esac
done
[[ $url =~ ^http://([^/:]+):([0-9]+)(/.*)?$ ]] || { echo "curl shim: cannot fetch '$url'" >&2; exit 3; }
host=${BASH_REMATCH[1]} port=${BASH_REMATCH[2]} path=${BASH_REMATCH[3]:-/}
exec timeout "$max" bash -c '
    exec 3<>"/dev/tcp/$0/$1"
    printf "GET %s HTTP/1.1\r\nHost: %s:%s\r\nConnection: close\r\n\r\n" "$2" "$0" "$1" >&3
    # The head, then the body (the answer is not chunked: our /metrics sets its length).
    sed "1,/^\r$/d" <&3
' "$host" "$port" "$path"
SHIM
chmod +x "$dir/shim/curl"

cp "$here"/*.sh "$dir/benches/"

cat >"$dir/run.sh" <<'RUN'
#!/usr/bin/env bash
# Runs cores.sh on each build of BUILDS (default: all of builds/, `new` last) in turn;
# written by benches/pack.sh, which says what this folder holds.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export PATH="$here/bin:$PATH:$here/shim"
export LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export SERVER_CPUS=${SERVER_CPUS:-0-7} CLIENT_CPUS=${CLIENT_CPUS:-8-15}
export THREADS=${THREADS:-8} CONNECTIONS=${CONNECTIONS:-512}
builds=${BUILDS:-$(cd "$here/builds" && ls | { grep -vx new || true; } | tr '\n' ' ') new}
status=0
for build in $builds; do
    [[ -d $here/builds/$build ]] || { echo "run.sh: no build '$build' in $here/builds" >&2; exit 1; }
    echo "run.sh: $build ($(cat "$here/builds/$build/commit"))" >&2
    PREBUILT="$here/builds/$build" OUT="${OUT:+$OUT/$build}" bash "$here/benches/cores.sh" || status=$?
done
exit "$status"
RUN
chmod +x "$dir/run.sh"
packed=1

du -sh "$dir" | awk -v d="$dir" '{ print "'"$script"': " d " holds " $1 " (the device tool carries 64 MiB at most)" }' >&2
