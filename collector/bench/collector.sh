#!/usr/bin/env bash
# Collector benchmarks, on this machine, over loopback. Prints figures,
# asserts none.
#  1. Ingest: AGENTS simulated agents (collector/examples/loadgen.rs) stream a
#     mix of alert, link and heartbeat events; every event is acknowledged
#     only after its transaction is fsynced (synchronous=FULL). Events/s and
#     ack latency.
#  2. The reference: rsyslogd receiving the same number of messages over TCP
#     (100 connections) and writing them to a file, not durable; msg/s and the
#     collector's ratio to it.
#  3. links/downtime?since=30d over LINK_EVENTS stored link events across
#     INTERFACES interfaces: HTTP request latency; the same for the web
#     page's links/worst, links/timeline and fleet.
#  4. Collector RSS with IDLE_AGENTS connected agents heartbeating every 10 s.
#
# Run from anywhere: `bash collector/bench/collector.sh`. Environment:
#   AGENTS           ingest agents (default 100)
#   EVENTS           events per ingest agent (default 20000)
#   WINDOW           unacknowledged events an agent allows itself (default
#                    500, about what the agent's own output keeps in flight)
#   LINK_EVENTS      link events seeded for the downtime query (default 1000000)
#   INTERFACES       interfaces they are spread over (default 10000)
#   IDLE_AGENTS      agents for the RSS figure (default 1000)
#   IDLE_SECONDS     how long they stay connected (default 30)
#   PARTS            which parts to run (default "1 2 3 4")
#   COLLECTOR_BIN    the collector binary to measure (default: the release
#                    build this script makes; e.g. the static musl build the
#                    packages ship)
# The data goes under /var/tmp (a disk, so fsync costs what it costs).
set -euo pipefail

AGENTS=${AGENTS:-100}
EVENTS=${EVENTS:-20000}
WINDOW=${WINDOW:-500}
LINK_EVENTS=${LINK_EVENTS:-1000000}
INTERFACES=${INTERFACES:-10000}
IDLE_AGENTS=${IDLE_AGENTS:-1000}
IDLE_SECONDS=${IDLE_SECONDS:-30}
PARTS=${PARTS:-1 2 3 4}
part() { [[ " $PARTS " == *" $1 "* ]]; }
RSYSLOGD=/usr/sbin/rsyslogd

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$(pwd)
WORK=$(mktemp -d /var/tmp/hopwatch-collector-bench.XXXXXX)
COLLECTOR_PID=""
RSYSLOG_PID=""

cleanup() {
    local status=$?
    for pid in $COLLECTOR_PID $RSYSLOG_PID; do
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say() { printf '\n== %s\n' "$*"; }

# A free port below the kernel's ephemeral range: a port bind(0) hands out
# may still be the client end of a connection in TIME-WAIT from an earlier
# step, and a server listening there sees its sessions reset.
free_port() {
    python3 -c 'import random, socket
while True:
    port = random.randint(20000, 30000)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    print(port)
    break'
}

# start_collector NAME HEARTBEAT_TIMEOUT: a fresh data dir, the release
# binary, ready when /healthz answers. Sets COLLECTOR_PID, AGENTS_ADDR,
# HTTP_ADDR, DATA.
start_collector() {
    local name=$1 timeout=$2
    DATA="$WORK/$name"
    mkdir -p "$DATA"
    AGENTS_ADDR="127.0.0.1:$(free_port)"
    HTTP_ADDR="127.0.0.1:$(free_port)"
    cat >"$DATA/collector.toml" <<EOF
[collector]
agents_listen = "$AGENTS_ADDR"
http_listen = "$HTTP_ADDR"
data_dir = "$DATA/data"
heartbeat_timeout = "$timeout"
[rate_limit]
per_second = 1000
burst = 1000
[log]
file = ""
EOF
    "$BIN" run -c "$DATA/collector.toml" >"$DATA/stdout" 2>"$DATA/stderr" &
    COLLECTOR_PID=$!
    for _ in $(seq 200); do
        curl -fs "http://$HTTP_ADDR/healthz" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "the collector did not start: $(cat "$DATA/stderr")" >&2
    exit 1
}

# utime+stime of every thread of PID, in seconds.
cpu_seconds() {
    python3 -c 'import os, sys
f = open(f"/proc/{sys.argv[1]}/stat").read().rsplit(")", 1)[1].split()
print((int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK"))' "$1"
}

stop_collector() {
    kill "$COLLECTOR_PID"
    wait "$COLLECTOR_PID" || true
    COLLECTOR_PID=""
}

say "building (release)"
cargo build --release -p hopwatch-collector --bin hopwatch-collector --example loadgen
BIN="${COLLECTOR_BIN:-$ROOT/target/release/hopwatch-collector}"
GEN="$ROOT/target/release/examples/loadgen"
echo "$(nproc) cores; data under $WORK"

INGEST_RATE=0
if part 1; then
say "1. ingest: $AGENTS agents x $EVENTS events, acknowledged after fsync"
start_collector ingest 30s
CPU_BEFORE=$(cpu_seconds "$COLLECTOR_PID")
INGEST=$("$GEN" ingest --addr "$AGENTS_ADDR" --token-file "$DATA/data/agent-token" \
    --agents "$AGENTS" --events "$EVENTS" --window "$WINDOW")
echo "$INGEST"
CPU_AFTER=$(cpu_seconds "$COLLECTOR_PID")
python3 -c "import sys; c=float(sys.argv[2])-float(sys.argv[1]); n=int(sys.argv[3])
print(f'collector CPU: {c:.2f}s for {n} events = {c/n*1e6:.2f} us per event, all threads')" \
    "$CPU_BEFORE" "$CPU_AFTER" "$((AGENTS * EVENTS))"
SYNCS=$(curl -fs "http://$HTTP_ADDR/metrics" | awk '$1 == "hopwatch_collector_syncs_total" { print $2 }')
COMMITS=$(curl -fs "http://$HTTP_ADDR/metrics" | awk '$1 == "hopwatch_collector_commits_total" { print $2 }')
echo "transactions committed: $COMMITS, WAL fsyncs before acks: $SYNCS"
stop_collector
INGEST_RATE=$(sed -E 's/.*= ([0-9]+) events\/s.*/\1/' <<<"$INGEST")
fi

if part 2; then
say "2. reference: rsyslogd, TCP in, one file out, no fsync"
TOTAL=$((AGENTS * EVENTS))
if [[ -x $RSYSLOGD ]]; then
    # Let the collector's writes reach the disk first, so rsyslog's file is
    # not written behind them.
    sync
    sleep 2
    RS="$WORK/rsyslog"
    mkdir -p "$RS"
    RS_PORT=$(free_port)
    cat >"$RS/rsyslog.conf" <<EOF
global(workDirectory="$RS" net.enableDNS="off")
module(load="imtcp")
template(name="msg" type="string" string="%msg%\n")
ruleset(name="bench") {
  action(type="omfile" file="$RS/messages" template="msg")
}
input(type="imtcp" address="127.0.0.1" port="$RS_PORT" ruleset="bench")
EOF
    "$RSYSLOGD" -n -f "$RS/rsyslog.conf" -i "$RS/pid" >"$RS/log" 2>&1 &
    RSYSLOG_PID=$!
    for _ in $(seq 200); do
        ss -ltn | grep -q ":$RS_PORT " && break
        sleep 0.05
    done
    # Listening is not yet serving: give its input thread a moment.
    sleep 1
    SENT=$("$GEN" syslog --addr "127.0.0.1:$RS_PORT" --conns "$AGENTS" --messages "$TOTAL")
    echo "$SENT"
    START=$(sed -E 's/.*started at ([0-9.]+).*/\1/' <<<"$SENT")
    while :; do
        LINES=$(wc -l <"$RS/messages" 2>/dev/null || echo 0)
        ((LINES >= TOTAL)) && break
        sleep 0.05
    done
    END=$(date +%s.%N)
    kill "$RSYSLOG_PID" && wait "$RSYSLOG_PID" 2>/dev/null || true
    RSYSLOG_PID=""
    python3 - "$TOTAL" "$START" "$END" "$INGEST_RATE" <<'EOF'
import sys
total, start, end, ingest = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
rate = total / (end - start)
print(f"rsyslog: {total} messages written in {end - start:.2f}s = {rate:.0f} msg/s")
print(f"collector / rsyslog: {ingest / rate:.2f} (the collector fsyncs, deduplicates, indexes and acknowledges; rsyslog here does none of that)")
EOF
else
    echo "skipped: $RSYSLOGD not installed (apt-get install rsyslog)"
fi
fi

if part 3; then
say "3. downtime over $LINK_EVENTS link events across $INTERFACES interfaces"
# A day's heartbeat_timeout: the seeded history has an event per interface
# every few hours, with no heartbeats between, and must not read as silence.
start_collector downtime 1d
"$GEN" seed-links --addr "$AGENTS_ADDR" --token-file "$DATA/data/agent-token" \
    --interfaces "$INTERFACES" --events "$LINK_EVENTS"
"$GEN" get --addr "$HTTP_ADDR" --token-file "$DATA/data/api-token" \
    --path "/api/v1/links/downtime?since=30d" --repeat 20
"$GEN" get --addr "$HTTP_ADDR" --token-file "$DATA/data/api-token" \
    --path "/api/v1/links/downtime?since=24h" --repeat 20
"$GEN" get --addr "$HTTP_ADDR" --token-file "$DATA/data/api-token" \
    --path "/api/v1/links/changes?since=10m" --repeat 20
# The web page's questions over the same store.
for path in "/api/v1/links/worst?since=30d" "/api/v1/links/worst?since=30d&limit=1000" \
    "/api/v1/links/timeline?agent=seed0000&interface=eth1&since=30d" "/api/v1/fleet"; do
    "$GEN" get --addr "$HTTP_ADDR" --token-file "$DATA/data/api-token" --path "$path" --repeat 20
done
echo "store: $(du -sh "$DATA/data" | cut -f1)"
stop_collector
fi

if part 4; then
say "4. RSS with $IDLE_AGENTS agents heartbeating every 10s"
start_collector idle 30s
BEFORE=$(awk '/VmRSS/ { print $2 }' "/proc/$COLLECTOR_PID/status")
"$GEN" idle --addr "$AGENTS_ADDR" --token-file "$DATA/data/agent-token" \
    --agents "$IDLE_AGENTS" --seconds "$IDLE_SECONDS" &
IDLE_PID=$!
sleep $((IDLE_SECONDS * 2 / 3))
OPEN=$(curl -fs "http://$HTTP_ADDR/metrics" | awk '$1 == "hopwatch_collector_connections_open" { print $2 }')
RSS=$(awk '/VmRSS/ { print $2 }' "/proc/$COLLECTOR_PID/status")
HWM=$(awk '/VmHWM/ { print $2 }' "/proc/$COLLECTOR_PID/status")
wait "$IDLE_PID"
echo "collector RSS: $((BEFORE / 1024)) MiB idle, $((RSS / 1024)) MiB with $OPEN agents connected (peak $((HWM / 1024)) MiB)"
stop_collector
fi
