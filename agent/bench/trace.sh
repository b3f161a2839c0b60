#!/usr/bin/env bash
# Benchmark of `hopwatch trace` and `hopwatch paths` against `ip route get`,
# the answer they must match and beat, measured in the same run inside a lab
# namespace with a 4-way ECMP route (one member of weight 2, hash policy 1).
# Prints figures, asserts none.
#
# (c), the in-process trace against one raw netlink round trip and against
# the trace's own two rounds of requests sent as raw bytes (its floor), is
# `cargo bench --bench trace` run inside the same lab.
#
# Run as root from anywhere: `bash agent/bench/trace.sh`. Environment:
#   RUNS      whole-process runs of each single-flow command (default 200)
#   FLOWS     flows for `hopwatch paths` and `ip -batch` (default 10000)
#   LOOP      `ip route get` processes a shell loop runs for the
#             per-process figure, extrapolated to FLOWS (default 500)
set -euo pipefail

RUNS=${RUNS:-200}
FLOWS=${FLOWS:-10000}
LOOP=${LOOP:-500}

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$(pwd)

if [[ $(id -u) -ne 0 ]]; then
    echo "agent/bench/trace.sh needs root: it builds network namespaces and veth pairs" >&2
    exit 2
fi
if (( FLOWS < 2 || FLOWS > 55000 || LOOP < 1 )); then
    echo "FLOWS must be within 2..55000 (source ports from 10000) and LOOP positive" >&2
    exit 2
fi

SW="hwtsw$$"
PEERS=("hwtp$$a" "hwtp$$b" "hwtp$$c" "hwtp$$d")
WORK=$(mktemp -d /tmp/hopwatch-bench-trace.XXXXXX)

cleanup() {
    local status=$?
    for ns in "$SW" "${PEERS[@]}"; do
        ip netns del "$ns" 2>/dev/null || true
    done
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say() { printf '\n== %s\n' "$*"; }
in_sw() { ip netns exec "$SW" "$@"; }
now_ns() { date +%s%N; }

say "build"
cargo build --release --quiet -p hopwatch-agent --target x86_64-unknown-linux-musl --bin hopwatch
BIN="$ROOT/target/x86_64-unknown-linux-musl/release/hopwatch"
INPROC=$(cargo bench --quiet -p hopwatch-agent --bench trace --no-run --message-format=json |
    jq -r 'select(.target.name == "trace" and .target.kind[0] == "bench" and .executable) | .executable')
if ! "$BIN" trace --help >/dev/null 2>&1; then
    echo "this hopwatch has no \`trace\` command yet" >&2
    exit 1
fi
if ! command -v hyperfine >/dev/null; then
    # Debian packages it; the timing loop below stands in if it cannot come.
    apt-get install -y -qq hyperfine >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq hyperfine >/dev/null 2>&1; } ||
        echo "hyperfine unavailable; timing with a shell loop"
fi
echo "kernel $(uname -r), $(ip -V), $(nproc) CPUs, $(ls -l "$BIN" | awk '{print $5}') byte binary"

say "lab: $SW, 10.99.0.0/16 over 4 members (weights 1 2 1 1), fib_multipath_hash_policy=1"
ip netns add "$SW"
ip -n "$SW" link set lo up
in_sw sysctl -qw net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1
route=(route add 10.99.0.0/16)
weights=(1 2 1 1)
for i in 0 1 2 3; do
    peer=${PEERS[$i]}
    ip netns add "$peer"
    ip -n "$SW" link add "m$i" type veth peer name "p$i" netns "$peer"
    ip -n "$SW" addr add "10.60.$i.1/24" dev "m$i"
    ip -n "$peer" addr add "10.60.$i.2/24" dev "p$i"
    ip -n "$SW" link set "m$i" up
    ip -n "$peer" link set "p$i" up
    route+=(nexthop via "10.60.$i.2" dev "m$i" weight "${weights[$i]}")
done
ip -n "$SW" "${route[@]}"

DST=10.99.7.7
TRACE=("$BIN" trace --dst "$DST" --proto tcp --sport 40000 --dport 443 --json)
GET=(ip route get "$DST" ipproto tcp sport 40000 dport 443)
echo "hopwatch: $(in_sw "${TRACE[@]}" | jq -c '{next_hop, egress_interface, reaches_destination}')"
echo "ip:       $(in_sw "${GET[@]}" | head -1)"

# Times `in_sw CMD...` over RUNS runs, appending each run's wall time in ms
# to FILE: through hyperfine when present, else a loop that reads bash's
# clock around each run. Both commands run inside the namespace, as on the
# switch: no namespace switch is timed.
time_runs() {
    local file=$1 runs=$2
    shift 2
    if command -v hyperfine >/dev/null; then
        in_sw hyperfine -N --style none --warmup 5 --runs "$runs" \
            --export-json "$WORK/hf.json" "$(printf '%q ' "$@")" >/dev/null 2>"$WORK/hf.err" ||
            { cat "$WORK/hf.err" >&2; return 1; }
        jq '.results[0].times[] * 1000' "$WORK/hf.json" >>"$file"
    else
        in_sw bash -c 'for ((i = 0; i < $1; i++)); do
            s=$EPOCHREALTIME; "${@:2}" >/dev/null; e=$EPOCHREALTIME
            echo "(${e/./} - ${s/./}) / 1000" | bc -l
        done' _ "$runs" "$@" >>"$file"
    fi
}

median() {
    sort -g "$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Measures take turns in ROUNDS rounds, so a busy spell of the machine lands
# on all of them rather than on one; medians shrug off the odd slow run.
ROUNDS=5

say "(a) one flow, whole process, $RUNS runs each, medians"
for ((r = 0; r < ROUNDS; r++)); do
    time_runs "$WORK/trace" $((RUNS / ROUNDS)) "${TRACE[@]}"
    time_runs "$WORK/get" $((RUNS / ROUNDS)) "${GET[@]}"
    time_runs "$WORK/human" $((RUNS / ROUNDS)) "${TRACE[@]:0:${#TRACE[@]}-1}"
    time_runs "$WORK/version" $((RUNS / ROUNDS)) "$BIN" --version
done
t_trace=$(median "$WORK/trace")
t_get=$(median "$WORK/get")
printf '  hopwatch trace --json  %8.3f ms\n' "$t_trace"
printf '  hopwatch trace (human) %8.3f ms\n' "$(median "$WORK/human")"
printf '  ip route get           %8.3f ms\n' "$t_get"
printf '  hopwatch --version     %8.3f ms   (process start-up alone)\n' "$(median "$WORK/version")"
printf '  ratio trace/ip         %8.2fx   (target <= 1.0x)\n' "$(echo "$t_trace / $t_get" | bc -l)"

say "(b) $FLOWS flows: hopwatch paths vs ip route get per process vs ip -batch"
last=$((10000 + FLOWS - 1))
PATHS=("$BIN" paths --dst "$DST" --proto tcp --sport-range "10000-$last" --dport 443 --json)
in_sw "${PATHS[@]}" | jq -c '{flows, members: [.members[] | {interface, weight, count}], even: .verdict.even}'
for ((p = 10000; p <= last; p++)); do
    echo "route get $DST ipproto tcp sport $p dport 443"
done >"$WORK/batch"
for ((r = 0; r < ROUNDS; r++)); do
    time_runs "$WORK/paths" 4 "${PATHS[@]}"
    time_runs "$WORK/ipbatch" 4 ip -batch "$WORK/batch"
done
start=$(now_ns)
in_sw bash -c 'for ((p = 10000; p < 10000 + $1; p++)); do
    ip route get "$2" ipproto tcp sport "$p" dport 443 >/dev/null; done' _ "$LOOP" "$DST"
end=$(now_ns)
t_paths=$(median "$WORK/paths")
t_batch=$(median "$WORK/ipbatch")
loop_us=$(echo "($end - $start) / 1000 / $LOOP" | bc -l)
get_us=$(echo "$t_get * 1000" | bc -l)
paths_us=$(echo "$t_paths * 1000 / $FLOWS" | bc -l)
batch_us=$(echo "$t_batch * 1000 / $FLOWS" | bc -l)
printf '  hopwatch paths         %9.1f ms total, %8.2f us/flow\n' "$t_paths" "$paths_us"
printf '  ip -batch              %9.1f ms total, %8.2f us/flow\n' "$t_batch" "$batch_us"
printf '  ip route get x %-7s %9.1f ms total, %8.2f us/flow (a shell loop of %s, extrapolated)\n' \
    "$FLOWS" "$(echo "$loop_us * $FLOWS / 1000" | bc -l)" "$loop_us" "$LOOP"
printf '  ip route get x %-7s %9.1f ms total, %8.2f us/flow (the median of (a), extrapolated)\n' \
    "$FLOWS" "$(echo "$get_us * $FLOWS / 1000" | bc -l)" "$get_us"
printf '  paths / per-process    %9.4f / %.4f (shell loop / median of (a); target <= 0.02, i.e. 1/50)\n' \
    "$(echo "$paths_us / $loop_us" | bc -l)" "$(echo "$paths_us / $get_us" | bc -l)"
printf '  paths / ip -batch      %9.2fx   (target <= 2x)\n' "$(echo "$paths_us / $batch_us" | bc -l)"

say "(c) in process: library trace vs one raw RTM_GETROUTE round trip and vs its own raw conversation (cargo bench --bench trace)"
in_sw "$INPROC" --dst "$DST"
