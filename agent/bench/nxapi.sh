#!/usr/bin/env bash
# Benchmark of the NX-OS counter sources (`dme`, `nxapi`, the full `show
# interface` it replaced) against `procfs` for the same number of
# interfaces, and what each asks of the switch per minute: `cargo bench
# --bench nxapi` inside a namespace with 48 veth pairs (97 interfaces with
# lo) while it serves 96-port replies on a unix socket. Prints figures,
# asserts none.
#
# Run as root from anywhere: `bash agent/bench/nxapi.sh`. ITERATIONS (default
# 2000) sets the samples per source.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ITERATIONS=${ITERATIONS:-2000}
if [[ $(id -u) -ne 0 ]]; then
    echo "agent/bench/nxapi.sh needs root for its namespace; 'cargo bench --bench nxapi' runs without, on this host's interfaces" >&2
    exit 2
fi
cargo bench --bench nxapi --no-run >/dev/null 2>&1 || cargo bench --bench nxapi --no-run
ns="hwbench-nxapi-$$"
cleanup() { ip netns del "$ns" 2>/dev/null || true; }
trap cleanup EXIT
ip netns add "$ns"
{
    for i in $(seq 0 47); do
        echo "link add v$i type veth peer name p$i"
        echo "link set v$i up"
        echo "link set p$i up"
    done
    echo "link set lo up"
} | ip -n "$ns" -batch -
ip netns exec "$ns" cargo bench --bench nxapi -- --iterations "$ITERATIONS"
