#!/usr/bin/env bash
# The web page's benchmark, on this machine, in a real headless Chromium
# (Debian's chromium and chromium-driver). Prints figures, asserts none.
#  1. Time to first render of the Links pages (the worst interfaces over
#     30 d, one interface's 30 d timeline, recent changes) over LINK_EVENTS
#     link events across INTERFACES interfaces, the collector bench's data
#     set: from navigation start (Navigation Timing) until the first row or
#     segment is drawn, p50 and p95 over LOADS loads, and the data bytes.
#  2. Collector RSS with PAGES live Fleet pages open (each polls every
#     second) against the same collector before they opened.
# Run from anywhere: `bash collector/bench/web.sh`. Environment:
#   LINK_EVENTS  link events seeded (default 1000000)
#   INTERFACES   interfaces they are spread over (default 10000)
#   LOADS        page loads per view (default 20)
#   PAGES        live pages for the RSS figure (default 50)
set -euo pipefail

LINK_EVENTS=${LINK_EVENTS:-1000000}
INTERFACES=${INTERFACES:-10000}
LOADS=${LOADS:-20}
PAGES=${PAGES:-50}

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$(pwd)
WORK=$(mktemp -d /var/tmp/hopwatch-web-bench.XXXXXX)
COLLECTOR_PID=""
cleanup() {
    local status=$?
    [ -n "$COLLECTOR_PID" ] && { kill "$COLLECTOR_PID" 2>/dev/null; wait "$COLLECTOR_PID" 2>/dev/null || true; }
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

echo "== building (release)"
cargo build --release -p hopwatch-collector --bin hopwatch-collector --example loadgen --example webbench
BIN="$ROOT/target/release/hopwatch-collector"
GEN="$ROOT/target/release/examples/loadgen"
WEB="$ROOT/target/release/examples/webbench"
echo "$(nproc) cores; data under $WORK"

AGENTS_ADDR="127.0.0.1:$(free_port)"
HTTP_ADDR="127.0.0.1:$(free_port)"
# A day's heartbeat_timeout: the seeded history has an event per interface
# every few hours, with no heartbeats between, and must not read as silence.
cat >"$WORK/collector.toml" <<TOML
[collector]
agents_listen = "$AGENTS_ADDR"
http_listen = "$HTTP_ADDR"
data_dir = "$WORK/data"
heartbeat_timeout = "1d"
[rate_limit]
per_second = 1000
burst = 1000
[log]
file = ""
TOML
"$BIN" run -c "$WORK/collector.toml" >"$WORK/stdout" 2>"$WORK/stderr" &
COLLECTOR_PID=$!
for _ in $(seq 200); do
    curl -fs "http://$HTTP_ADDR/healthz" >/dev/null 2>&1 && break
    sleep 0.05
done

echo "== seeding $LINK_EVENTS link events across $INTERFACES interfaces"
"$GEN" seed-links --addr "$AGENTS_ADDR" --token-file "$WORK/data/agent-token" \
    --interfaces "$INTERFACES" --events "$LINK_EVENTS"
echo "collector RSS after seeding: $(($(awk '/VmRSS/ { print $2 }' "/proc/$COLLECTOR_PID/status") / 1024)) MiB"

echo "== the page in headless Chromium"
"$WEB" --base "http://$HTTP_ADDR" --token-file "$WORK/data/api-token" --pid "$COLLECTOR_PID" \
    --loads "$LOADS" --pages "$PAGES"
