#!/usr/bin/env bash
# Whole-process benchmark of the hopwatch agent: CPU per tick, peak RSS and
# binary size with 500 interfaces and 20 rules, next to the bare cost of
# reading /proc/net/dev measured in the same run; then alert and link event
# latency on a veth between two namespaces. Prints figures, asserts none.
#
# Run as root from anywhere: `bash agent/bench/agent.sh`. Environment:
#   DURATION  seconds the agent runs among the 500 interfaces (default 60)
#   WARMUP    seconds excluded from the steady-state CPU figure (default 5)
#   PAIRS     veth pairs in the big namespace (default 250 -> 501 interfaces)
#   REPEATS   alert and link latency repetitions (default 10)
#   INTERVAL  the agent's tick in seconds, fractions allowed (default 1)
set -euo pipefail

DURATION=${DURATION:-60}
WARMUP=${WARMUP:-5}
PAIRS=${PAIRS:-250}
REPEATS=${REPEATS:-10}
INTERVAL=${INTERVAL:-1}

INTERVAL_MS=$(python3 -c "print(round(float('$INTERVAL') * 1000))")

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$(pwd)

if [[ $(id -u) -ne 0 ]]; then
    echo "agent/bench/agent.sh needs root: it builds network namespaces and veth pairs" >&2
    exit 2
fi
if (( DURATION <= WARMUP + 2 )); then
    echo "DURATION ($DURATION) must exceed WARMUP ($WARMUP) by more than 2 seconds" >&2
    exit 2
fi

NS_BIG="hwbench$$"
NS_A="hwlat$$a"
NS_B="hwlat$$b"
WORK=$(mktemp -d /tmp/hopwatch-bench.XXXXXX)
AGENT_PID=""
PACED_PID=""
LATENCY_PID=""

cleanup() {
    local status=$?
    for pid in $AGENT_PID $PACED_PID $LATENCY_PID; do
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    done
    for ns in "$NS_BIG" "$NS_A" "$NS_B"; do
        ip netns del "$ns" 2>/dev/null || true
    done
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say() { printf '\n== %s\n' "$*"; }

# A namespace with IPv6 off, so new links send no autoconfiguration packets
# and the counters move only when the benchmark moves them.
new_netns() {
    ip netns add "$1"
    ip -n "$1" link set lo up
    ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
        net.ipv6.conf.default.disable_ipv6=1 2>/dev/null || true
}

# utime+stime from /proc/PID/stat (clock ticks, so 10 ms steps at 100 Hz) and
# the process's CPU clock in nanoseconds (all threads), both as ms.
proc_cpu() {
    python3 - "$1" <<'EOF'
import os, sys, time
pid = int(sys.argv[1])
after_comm = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
# Fields 14 and 15 of stat(5); after_comm starts at field 3.
ticks = int(after_comm[11]) + int(after_comm[12])
stat_ms = ticks * 1000 / os.sysconf("SC_CLK_TCK")
try:
    # clock_getcpuclockid(3) for another process: CPUCLOCK_SCHED of pid.
    clock_ms = time.clock_gettime_ns(((~pid) << 3) | 2) / 1e6
except OSError:
    clock_ms = -1.0
print(f"{stat_ms:.3f} {clock_ms:.3f}")
EOF
}

status_json() {
    "$BIN" status --socket "$1" --json
}

json_get() {
    python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): v=v[k]
print(v)' "$1" "$2"
}

say "building (release, and static musl for the size figure)"
cargo build --release --bin hopwatch
BIN="$ROOT/target/release/hopwatch"
MUSL_BIN="$ROOT/target/x86_64-unknown-linux-musl/release/hopwatch"
if cargo build --release --target x86_64-unknown-linux-musl --bin hopwatch; then
    MUSL_BYTES=$(stat -c %s "$MUSL_BIN")
else
    echo "the musl build failed (is the x86_64-unknown-linux-musl target installed?)" >&2
    MUSL_BYTES=""
fi
GNU_BYTES=$(stat -c %s "$BIN")
# The whole-process figures are the shipped binary's: the static musl build,
# whose allocator and page footprint are what a switch runs. The glibc build
# is what `cargo build` makes on a workstation; its peak RSS is printed too.
if [[ -n "$MUSL_BYTES" ]]; then
    RUN_BIN=$MUSL_BIN
    RUN_KIND="static musl"
else
    RUN_BIN=$BIN
    RUN_KIND="glibc, dynamic (the musl build failed)"
fi
TICK=$(cargo bench -p hopwatch-agent --bench tick --no-run --message-format=json |
    python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "tick" and m.get("executable"):
        print(m["executable"])')
[[ -x "$TICK" ]] || { echo "cannot find the tick bench binary" >&2; exit 1; }

say "namespace $NS_BIG: $PAIRS veth pairs, all up"
new_netns "$NS_BIG"
{
    for ((i = 0; i < PAIRS; i++)); do
        echo "link add veth$i type veth peer name vpeer$i"
        echo "link set veth$i up"
        echo "link set vpeer$i up"
    done
} | ip -n "$NS_BIG" -batch -
IFACES=$(ip netns exec "$NS_BIG" tail -n +3 /proc/net/dev | wc -l)
RULES=$(grep -c '^\[\[rule\]\]' agent/bench/rules.toml)
echo "$IFACES interfaces, $RULES rules (agent/bench/rules.toml)"

say "in-process view (agent/benches/tick.rs) in $NS_BIG, back to back"
"$TICK" --netns "$NS_BIG" --json-out "$WORK/micro.json"

say "bare read of /proc/net/dev in $NS_BIG, back to back, before the agent runs"
"$TICK" --netns "$NS_BIG" --bare-only --json-out "$WORK/bare1.json"

mkdir -p "$WORK/state-big"
cat > "$WORK/big.toml" <<EOF
# Written by agent/bench/agent.sh: 500 veths, 20 rules, events on stdout.
[agent]
name = "bench"
interval = "${INTERVAL_MS}ms"
heartbeat = "10s"
state_dir = "$WORK/state-big"

[links]
interfaces = ["veth*", "vpeer*"]

[output.stdout]
events = ["alert", "link", "heartbeat", "loss"]

$(cat agent/bench/rules.toml)
EOF
"$RUN_BIN" check-config -c "$WORK/big.toml"

say "whole process: hopwatch run ($RUN_KIND) in $NS_BIG for ${DURATION}s"
SOCK="$WORK/state-big/hopwatch.sock"
# `ip netns exec` execs the command, so $! is the agent itself.
LOAD0=$(cut -d' ' -f1 /proc/loadavg)
ip netns exec "$NS_BIG" "$RUN_BIN" run -c "$WORK/big.toml" > "$WORK/big.out" 2> "$WORK/big.err" &
AGENT_PID=$!
STARTED=$(date +%s.%N)
for _ in $(seq 100); do
    [[ -S "$SOCK" ]] && break
    kill -0 "$AGENT_PID" 2>/dev/null || { cat "$WORK/big.err" >&2; exit 1; }
    sleep 0.1
done
sleep "$WARMUP"
status_json "$SOCK" > "$WORK/status0.json"
read -r _ CLOCK0 < <(proc_cpu "$AGENT_PID")
TICKS0=$(json_get "$WORK/status0.json" ticks)
# The same measures paced at the agent's tick, alongside it: the reference
# for a process that wakes once a tick to caches other work has cooled.
PACED_RUNS=$(python3 -c "print(max(5, int(($DURATION - $WARMUP - 3) / $INTERVAL)))")
"$TICK" --netns "$NS_BIG" --pace "$INTERVAL" --iterations "$PACED_RUNS" \
    --json-out "$WORK/paced.json" > "$WORK/paced.txt" &
PACED_PID=$!
REST=$(python3 -c "import time; print(max(0.0, $DURATION - (time.time() - $STARTED)))")
sleep "$REST"
status_json "$SOCK" > "$WORK/status1.json"
LOAD1=$(cut -d' ' -f1 /proc/loadavg)
read -r STAT_MS CLOCK1 < <(proc_cpu "$AGENT_PID")
HWM_KIB=$(awk '/^VmHWM:/ {print $2}' "/proc/$AGENT_PID/status")
ANON_KIB=$(awk '/^RssAnon:/ {print $2}' "/proc/$AGENT_PID/status")
FILE_KIB=$(awk '/^RssFile:/ {print $2}' "/proc/$AGENT_PID/status")
kill -TERM "$AGENT_PID"
wait "$AGENT_PID" || true
AGENT_PID=""
wait "$PACED_PID"
PACED_PID=""
echo "agent stdout: $(wc -l < "$WORK/big.out") lines ($(grep -c '"type":"alert"' "$WORK/big.out" || true) alerts, $(grep -c '"type":"heartbeat"' "$WORK/big.out" || true) heartbeats)"
grep -E 'WARN|ERROR' "$WORK/big.err" || true

say "in-process view in $NS_BIG, paced at the agent's tick, run alongside it"
cat "$WORK/paced.txt"

say "bare read of /proc/net/dev in $NS_BIG, back to back, after the agent ran"
"$TICK" --netns "$NS_BIG" --bare-only --json-out "$WORK/bare2.json"

GNU_HWM_KIB=""
if [[ "$RUN_BIN" != "$BIN" ]]; then
    say "peak RSS of the glibc build: hopwatch run in $NS_BIG for 10s"
    rm -f "$SOCK"
    ip netns exec "$NS_BIG" "$BIN" run -c "$WORK/big.toml" > /dev/null 2> "$WORK/gnu.err" &
    AGENT_PID=$!
    sleep 10
    GNU_HWM_KIB=$(awk '/^VmHWM:/ {print $2}' "/proc/$AGENT_PID/status")
    kill -TERM "$AGENT_PID"
    wait "$AGENT_PID" || true
    AGENT_PID=""
    echo "VmHWM $GNU_HWM_KIB kB"
fi
ip netns del "$NS_BIG"

say "latency: agent in $NS_A, watching lat0; its peer lat1 in $NS_B"
new_netns "$NS_A"
new_netns "$NS_B"
ip -n "$NS_A" link add lat0 type veth peer name lat1
ip -n "$NS_A" link set lat1 netns "$NS_B"
ip -n "$NS_A" addr add 10.199.0.1/24 dev lat0
ip -n "$NS_B" addr add 10.199.0.2/24 dev lat1
ip -n "$NS_A" link set lat0 up
ip -n "$NS_B" link set lat1 up
mkdir -p "$WORK/state-lat"
cat > "$WORK/lat.toml" <<EOF
# Written by agent/bench/agent.sh: one veth, one rule, alerts and links on stdout.
[agent]
name = "bench-latency"
interval = "${INTERVAL_MS}ms"
heartbeat = "1h"
state_dir = "$WORK/state-lat"

[links]
interfaces = ["lat0"]

[[rule]]
name = "tx-burst"
interfaces = ["lat0"]
when = "increase(tx_packets[5s]) > 3"
severity = "warning"

[output.stdout]
events = ["alert", "link"]
EOF
"$RUN_BIN" check-config -c "$WORK/lat.toml"
ip netns exec "$NS_A" python3 -u agent/bench/latency.py \
    --agent "$RUN_BIN" --config "$WORK/lat.toml" --socket "$WORK/state-lat/hopwatch.sock" \
    --interface lat0 --target 10.199.0.2 --peer-netns "$NS_B" --peer lat1 \
    --interval "$INTERVAL" --repeats "$REPEATS" \
    --stderr "$WORK/lat.err" --json-out "$WORK/latency.json" &
LATENCY_PID=$!
wait "$LATENCY_PID"
LATENCY_PID=""

say "summary (paste into README.md)"
export IFACES RULES DURATION WARMUP STAT_MS CLOCK0 CLOCK1 TICKS0 HWM_KIB ANON_KIB FILE_KIB \
    LOAD0 LOAD1 MUSL_BYTES GNU_BYTES GNU_HWM_KIB RUN_KIND WORK
python3 <<'EOF'
import json, os

env = os.environ
work = env["WORK"]


def load(name):
    return json.load(open(f"{work}/{name}.json"))


status1 = load("status1")
micro, paced, latency = load("micro"), load("paced"), load("latency")
bares = [load("bare1")["bare"], load("bare2")["bare"]]
interval_ms = latency["interval_ms"]

# The whole process is priced in CPU time, so its hot reference is the bare
# read's CPU time (wall time where the kernel does not report thread CPU),
# averaged over the runs before and after the agent.
hot_bare = sum(b["cpu_ms"] if b["cpu_ms"] is not None else b["mean_ms"] for b in bares) / 2
# Paced reads have no per-read CPU figure; a procfs read never blocks, so
# its wall time is its CPU time, and the mean matches CPU per tick (a mean).
cold_bare = paced["bare"]["mean_ms"]

ticks = status1["ticks"]
steady_ticks = ticks - int(env["TICKS0"])
stat_ms = float(env["STAT_MS"])
clock0, clock1 = float(env["CLOCK0"]), float(env["CLOCK1"])
steady = (clock1 - clock0) / steady_ticks if clock1 >= 0 and steady_ticks > 0 else None
whole = stat_ms / ticks
hwm_mib = int(env["HWM_KIB"]) / 1024


def verdict(ok):
    return "meets" if ok else "MISSES"


def against(value, hot, cold):
    r_hot, r_cold = value / hot, value / cold
    return (f"{value:.3f} ms = {r_hot:.2f}x hot bare, {r_cold:.2f}x paced bare",
            f"<= 1.5x bare: {verdict(r_hot <= 1.5)} (hot), {verdict(r_cold <= 1.5)} (paced)")


def ratio_row(name, figures):
    tick, bare = figures["tick"]["median_ms"], figures["bare"]["median_ms"]
    return (name, f"{tick:.3f} ms = {tick / bare:.2f}x bare ({bare:.3f} ms)",
            f"<= 1.5x bare: {verdict(tick <= 1.5 * bare)}")


def spread(s):
    return f"{s['min']:.1f} / {s['median']:.1f} / {s['max']:.1f} ms" if s else "no measurement"


def latency_row(name, key, target):
    s = latency[key]
    return (name, spread(s), f"<= {target:.0f} ms: {verdict(bool(s) and s['max'] <= target)}")


def mib(b):
    return f"{int(b) / 1048576:.2f} MiB" if b else "n/a"


rows = [
    ("Interfaces / rules / rule evaluations per tick",
     f"{env['IFACES']} / {env['RULES']} / {micro['evaluations']}", "500 / 20"),
    ("Bare open+read of /proc/net/dev, back to back (hot), CPU",
     f"{hot_bare:.3f} ms", "reference"),
    (f"Bare open+read of /proc/net/dev, once per {interval_ms:.0f} ms (paced), mean",
     f"{cold_bare:.3f} ms", "reference"),
    ratio_row("In-process tick, sample + observe, hot, median", micro),
    ratio_row("In-process tick, sample + observe, paced, median", paced),
]
if steady is not None:
    rows.append((f"Whole process: CPU per tick, steady ({steady_ticks} ticks after {env['WARMUP']} s)",
                 *against(steady, hot_bare, cold_bare)))
rows += [
    (f"Whole process: CPU per tick, all {ticks} ticks incl. start-up (/proc/PID/stat)",
     against(whole, hot_bare, cold_bare)[0], f"utime+stime {stat_ms:.0f} ms, in 10 ms steps"),
    ("Agent's own tick, wall, last / max (hopwatch status)",
     f"{status1['last_tick_us'] / 1000:.3f} / {status1['max_tick_us'] / 1000:.3f} ms", ""),
    ("Peak RSS (VmHWM)", f"{hwm_mib:.2f} MiB", f"<= 8 MiB: {verdict(hwm_mib <= 8)}"),
    ("RSS at the end: anonymous / file-backed",
     f"{int(env['ANON_KIB']) / 1024:.2f} / {int(env['FILE_KIB']) / 1024:.2f} MiB", ""),
]
if env.get("GNU_HWM_KIB"):
    rows.append(("Peak RSS (VmHWM) of the glibc build, 10 s run",
                 f"{int(env['GNU_HWM_KIB']) / 1024:.2f} MiB", "not shipped; for comparison"))
if micro.get("engine_anon_kib") is not None:
    rows.append(("Rule state for all interfaces, full windows (tick bench, anonymous RSS)",
                 f"{micro['engine_anon_kib'] / 1024:.2f} MiB", "part of the RSS above"))
rows += [
    ("Static binary (x86_64 musl, stripped)", mib(env.get("MUSL_BYTES")),
     f"<= 4 MiB: {verdict(bool(env.get('MUSL_BYTES')) and int(env['MUSL_BYTES']) <= 4 << 20)}"),
    ("Release binary (glibc, dynamic)", mib(env.get("GNU_BYTES")), ""),
    latency_row("Alert latency, burst -> firing line, min / median / max", "alert",
                interval_ms + 50),
    latency_row("Link latency, peer down -> down line, min / median / max", "link_down", 50),
    latency_row("Link latency, peer up -> up line, min / median / max", "link_up", 50),
]
print(f"Agent ({env['RUN_KIND']}) run {env['DURATION']} s, tick {interval_ms:.0f} ms, {ticks} ticks; "
      f"{os.cpu_count()} CPUs, 1-minute load average {env['LOAD0']} at the start, "
      f"{env['LOAD1']} at the end (other work on the machine inflates every figure).")
print()
print("| Figure | Measured | Target |")
print("|---|---|---|")
for name, value, target in rows:
    print(f"| {name} | {value} | {target} |")
for error in latency["errors"]:
    print(f"\nlatency error: {error}")
EOF
