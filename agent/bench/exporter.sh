#!/usr/bin/env bash
# /metrics at 501 interfaces: the agent's exporter next to node_exporter
# (netdev and netclass collectors) in the same namespace and the same run,
# scraped in turns: latency and CPU per scrape, answer size, and the
# in-process cost of publishing a tick and rendering a scrape
# (agent/benches/exporter.rs). Prints figures, asserts none.
#
# Run as root from anywhere: `bash agent/bench/exporter.sh`. Environment:
#   PAIRS    veth pairs in the namespace (default 250 -> 501 interfaces)
#   SCRAPES  scrapes of each exporter (default 200)
set -euo pipefail

PAIRS=${PAIRS:-250}
SCRAPES=${SCRAPES:-200}

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$(pwd)

if [[ $(id -u) -ne 0 ]]; then
    echo "agent/bench/exporter.sh needs root: it builds a network namespace with veth pairs" >&2
    exit 2
fi
NE=$(command -v prometheus-node-exporter || command -v node_exporter || true)
if [[ -z "$NE" ]]; then
    echo "needs node_exporter: apt-get install prometheus-node-exporter" >&2
    exit 2
fi

NS="hwexp$$"
WORK=$(mktemp -d /tmp/hopwatch-exporter-bench.XXXXXX)
AGENT_PID=""
NE_PID=""

cleanup() {
    local status=$?
    for pid in $AGENT_PID $NE_PID; do
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    done
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say() { printf '\n== %s\n' "$*"; }

say "building the static musl agent and the in-process bench"
cargo build --release --target x86_64-unknown-linux-musl -p hopwatch-agent --bin hopwatch
BIN="$ROOT/target/x86_64-unknown-linux-musl/release/hopwatch"
cargo bench -p hopwatch-agent --bench exporter --no-run

say "namespace $NS: $PAIRS veth pairs, all up"
ip netns add "$NS"
ip -n "$NS" link set lo up
ip netns exec "$NS" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
{
    for ((i = 0; i < PAIRS; i++)); do
        echo "link add veth$i type veth peer name vpeer$i"
        echo "link set veth$i up"
        echo "link set vpeer$i up"
    done
} | ip -n "$NS" -batch -
IFACES=$(ip netns exec "$NS" tail -n +3 /proc/net/dev | wc -l)
echo "$IFACES interfaces"

mkdir -p "$WORK/state"
cat > "$WORK/agent.toml" <<TOML
# Written by agent/bench/exporter.sh: the tick bench's 20 rules, /metrics on.
[agent]
name = "bench"
heartbeat = "10s"
state_dir = "$WORK/state"

[links]
interfaces = ["veth*", "vpeer*"]

[output.prometheus]
listen = "127.0.0.1:9101"

$(cat agent/bench/rules.toml)
TOML
"$BIN" check-config -c "$WORK/agent.toml"
ip netns exec "$NS" "$BIN" run -c "$WORK/agent.toml" > "$WORK/agent.out" 2> "$WORK/agent.err" &
AGENT_PID=$!
ip netns exec "$NS" "$NE" --web.listen-address=127.0.0.1:9100 \
    --collector.disable-defaults --collector.netdev --collector.netclass 2> "$WORK/ne.err" &
NE_PID=$!
# Both bind at once; the agent's interfaces appear at its first tick.
sleep 3
NE_RSS=$(awk '/^VmRSS:/ {print $2}' "/proc/$NE_PID/status")
AGENT_RSS=$(awk '/^VmRSS:/ {print $2}' "/proc/$AGENT_PID/status")

say "scraping each $SCRAPES times, in turns"
ip netns exec "$NS" python3 agent/bench/scrape.py "$SCRAPES" "$AGENT_PID" 9101 "$NE_PID" 9100 > "$WORK/scrape.json"
AGENT_RSS1=$(awk '/^VmRSS:/ {print $2}' "/proc/$AGENT_PID/status")

say "in-process: publish a tick and render a scrape at $IFACES interfaces"
cargo bench -p hopwatch-agent --bench exporter -- --interfaces "$IFACES" --json-out "$WORK/micro.json"

python3 - "$WORK/scrape.json" "$WORK/micro.json" "$IFACES" "$NE_RSS" "$AGENT_RSS" "$AGENT_RSS1" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
m = json.load(open(sys.argv[2]))
ifaces, ne_rss, rss0, rss1 = sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
a, n = s["agent"], s["node_exporter"]
ratio = a["cpu_ms"] / n["cpu_ms"] if n["cpu_ms"] > 0 else float("nan")
print()
print(f"| /metrics at {ifaces} interfaces, {s['scrapes']} scrapes each, in turns | hopwatch | node_exporter |")
print("|---|---|---|")
print(f"| latency p50 / p95 | {a['p50_ms']:.2f} / {a['p95_ms']:.2f} ms | {n['p50_ms']:.2f} / {n['p95_ms']:.2f} ms |")
print(f"| CPU per scrape | {a['cpu_ms']:.3f} ms (exporter thread) = {ratio:.3f}x | {n['cpu_ms']:.2f} ms (whole process, less idle {n['idle_cpu_ms_per_s']:.2f} ms/s) |")
print(f"| answer | {a['bytes']:,} bytes | {n['bytes']:,} bytes |")
print(f"| RSS | {rss0} KiB, {rss1} KiB after the scrapes | {ne_rss} KiB |")
print(f"| publish per tick (in-process, on the agent's loop) | {m['publish_us']:.1f} us | - |")
print(f"| render per scrape (in-process) | {m['render_us']:.1f} us | - |")
print()
print(f"CPU per scrape: {ratio:.3f} of node_exporter's (target <= 0.1: {'met' if ratio <= 0.1 else 'missed'})")
PY
