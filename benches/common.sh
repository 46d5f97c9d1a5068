# common.sh: sourced by the bench scripts (ceiling.sh, hostile.sh) after they set
# `script` (their name, for messages) and `work` (a temporary folder of their own).
# Gives them `pids` (append what you start), `die`, and a cleanup on exit that stops
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
