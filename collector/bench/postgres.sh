#!/usr/bin/env bash
# Collector benchmarks on a PostgreSQL store, each next to SQLite in the same
# run, on this machine, over loopback. Prints figures, asserts none.
#  1. Ingest: AGENTS simulated agents (collector/examples/loadgen.rs), every
#     event acknowledged only after the commit covering it: (a) one collector
#     on SQLite, (b) one on PostgreSQL, (c) two on one PostgreSQL, the agents
#     spread over both. Events/s, ack latency, CPU of the collectors, of
#     PostgreSQL and of the load generator, and the statements PostgreSQL
#     spent its time on.
#  2. links/downtime?since=30d (and the web page's links/worst) over
#     LINK_EVENTS link events on INTERFACES interfaces, on SQLite and on
#     PostgreSQL: HTTP latency p50/p95/max. With BEFORE_BIN set, the same
#     questions are asked of that binary over the same stores too.
#  3. Failover gap: one agent (loadgen's failover mode, the agent's reconnect
#     rule) streams link flaps to collector A of two on one PostgreSQL; A is
#     SIGKILLed; the time until B acknowledges its events. MOVES times, the
#     collector it is on killed and restarted each time.
#
# PostgreSQL is a throwaway cluster started here (initdb and postgres from
# /usr/lib/postgresql/*/bin, as the postgres user, under /var/tmp, on a
# loopback port) with durable settings: fsync on, synchronous_commit on,
# full_page_writes on, so an acknowledgement means committed to disk, as on
# SQLite. Needs root (to run postgres as its user).
#
# Run from anywhere: `bash collector/bench/postgres.sh`. Environment:
#   AGENTS, EVENTS, WINDOW  ingest agents, events each, unacknowledged events
#                           each (defaults 100, 20000, 500)
#   LINK_EVENTS, INTERFACES the downtime store (defaults 1000000, 10000)
#   REPEAT                  requests per query (default 40)
#   MOVES                   failovers measured (default 5)
#   PARTS                   which parts to run (default "1 2 3")
#   COLLECTOR_BIN, GEN      the binaries (default: the release builds this
#                           script makes, reused when present and NO_BUILD=1)
#   BEFORE_BIN              another collector binary for part 2's before/after
#   BEFORE_REPEAT           requests per query of BEFORE_BIN (default REPEAT)
set -euo pipefail

AGENTS=${AGENTS:-100}
EVENTS=${EVENTS:-20000}
WINDOW=${WINDOW:-500}
LINK_EVENTS=${LINK_EVENTS:-1000000}
INTERFACES=${INTERFACES:-10000}
REPEAT=${REPEAT:-40}
MOVES=${MOVES:-5}
PARTS=${PARTS:-1 2 3}
part() { [[ " $PARTS " == *" $1 "* ]]; }

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$(pwd)
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [[ $(id -u) != 0 || -z $PG_BIN || ! -x $PG_BIN/initdb ]]; then
    echo "needs root and Debian's postgresql (initdb under /usr/lib/postgresql/*/bin)" >&2
    exit 1
fi
WORK=$(mktemp -d /var/tmp/hopwatch-pg-bench.XXXXXX)
chmod 755 "$WORK"
declare -A PIDS=()
PG_PID=""

cleanup() {
    local status=$?
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    done
    if [[ -n $PG_PID ]]; then
        kill -INT "$PG_PID" 2>/dev/null || true
        wait "$PG_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say() { printf '\n== %s\n' "$*"; }

# A free port below the kernel's ephemeral range (see collector.sh).
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

as_postgres() { setpriv --reuid=postgres --regid=postgres --clear-groups -- "$@"; }

# utime+stime of every thread of PID, in seconds.
cpu_seconds() {
    python3 -c 'import os, sys
f = open(f"/proc/{sys.argv[1]}/stat").read().rsplit(")", 1)[1].split()
print((int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK"))' "$1"
}

# CPU seconds of this shell's children that ended and were waited for
# (cutime+cstime): read around a command, what the command spent.
children_cpu_seconds() {
    python3 -c 'import os, sys
f = open(f"/proc/{sys.argv[1]}/stat").read().rsplit(")", 1)[1].split()
print((int(f[13]) + int(f[14])) / os.sysconf("SC_CLK_TCK"))' "$$"
}

# CPU seconds of the postgres server and its live children (backends,
# writers); a backend that exited is not counted, so read this before the
# collectors stop.
pg_cpu_seconds() {
    python3 -c 'import os, sys
tck, uid, total = os.sysconf("SC_CLK_TCK"), int(sys.argv[1]), 0
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        if os.stat(f"/proc/{pid}").st_uid != uid:
            continue
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        total += int(f[11]) + int(f[12])
    except OSError:
        pass
print(total / tck)' "$(id -u postgres)"
}

say "building (release)"
if [[ ${NO_BUILD:-0} != 1 ]]; then
    nice cargo build --release -p hopwatch-collector --bin hopwatch-collector --example loadgen
fi
BIN="${COLLECTOR_BIN:-$ROOT/target/release/hopwatch-collector}"
GEN="${GEN:-$ROOT/target/release/examples/loadgen}"
echo "$(nproc) cores; data under $WORK"

say "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}'): a throwaway cluster"
PG_DIR="$WORK/pg"
mkdir -p "$PG_DIR/sock"
PASSWORD=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$PASSWORD" >"$PG_DIR/pwfile"
chown -R postgres:postgres "$PG_DIR"
as_postgres "$PG_BIN/initdb" -D "$PG_DIR/data" -U hopwatch -A trust --auth-host=scram-sha-256 \
    --pwfile="$PG_DIR/pwfile" --no-locale -E UTF8 --no-instructions >"$PG_DIR/initdb.log"
PG_PORT=$(free_port)
PG_SETTINGS=(
    -c listen_addresses=127.0.0.1 -c max_connections=300
    -c fsync=on -c synchronous_commit=on -c full_page_writes=on
    -c shared_buffers=256MB -c shared_preload_libraries=pg_stat_statements
    -c pg_stat_statements.track=all
)
# Not through the function: $! must be the server itself (setpriv execs
# it), not a subshell that would not pass the stop signal on.
setpriv --reuid=postgres --regid=postgres --clear-groups -- "$PG_BIN/postgres" -D "$PG_DIR/data" -p "$PG_PORT" -k "$PG_DIR/sock" \
    "${PG_SETTINGS[@]}" >"$PG_DIR/log" 2>&1 &
PG_PID=$!
psql_() { as_postgres psql -h "$PG_DIR/sock" -p "$PG_PORT" -U hopwatch -X -q "$@"; }
for _ in $(seq 200); do
    psql_ -d postgres -c 'SELECT 1' >/dev/null 2>&1 && break
    sleep 0.05
done
echo "settings: ${PG_SETTINGS[*]}; everything else initdb's defaults"
echo "disk under /var/tmp: $(df -h --output=source,fstype /var/tmp | tail -1)"

# new_database NAME: a fresh database with pg_stat_statements; prints its URL.
new_database() {
    psql_ -d postgres -c "CREATE DATABASE $1" >/dev/null
    psql_ -d "$1" -c "CREATE EXTENSION pg_stat_statements" >/dev/null
    echo "postgres://hopwatch:$PASSWORD@127.0.0.1:$PG_PORT/$1"
}

AGENT_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
API_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$AGENT_TOKEN" >"$WORK/agent-token"
echo "$API_TOKEN" >"$WORK/api-token"
chmod 600 "$WORK/agent-token" "$WORK/api-token"

# configure NAME HEARTBEAT_TIMEOUT [URL]: a collector's directory and
# collector.toml, on SQLite without URL. Sets AGENTS_ADDR[NAME], HTTP_ADDR[NAME].
declare -A AGENTS_ADDR=() HTTP_ADDR=()
configure() {
    local name=$1 timeout=$2 url=${3:-}
    mkdir -p "$WORK/$name"
    AGENTS_ADDR[$name]="127.0.0.1:$(free_port)"
    HTTP_ADDR[$name]="127.0.0.1:$(free_port)"
    cat >"$WORK/$name/collector.toml" <<EOF
[collector]
agents_listen = "${AGENTS_ADDR[$name]}"
http_listen = "${HTTP_ADDR[$name]}"
data_dir = "$WORK/$name/data"
heartbeat_timeout = "$timeout"
[auth]
agent_tokens_file = "$WORK/agent-token"
api_tokens_file = "$WORK/api-token"
[rate_limit]
per_second = 1000
burst = 1000
[log]
file = ""
EOF
    if [[ -n $url ]]; then
        cat >>"$WORK/$name/collector.toml" <<EOF
[store]
kind = "postgres"
url = "$url"
sslmode = "disable"
EOF
    fi
}

# start NAME [BINARY]: runs the configured collector; ready when /healthz
# answers.
start() {
    local name=$1 bin=${2:-$BIN}
    "$bin" run -c "$WORK/$name/collector.toml" >>"$WORK/$name/stdout" 2>>"$WORK/$name/stderr" &
    PIDS[$name]=$!
    for _ in $(seq 400); do
        curl -fs "http://${HTTP_ADDR[$name]}/healthz" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "collector $name did not start: $(tail -5 "$WORK/$name/stderr")" >&2
    exit 1
}

stop() {
    kill "${PIDS[$1]}"
    wait "${PIDS[$1]}" || true
    unset "PIDS[$1]"
}

rate_of() { sed -E 's/.*= ([0-9]+) events\/s.*/\1/' <<<"$1"; }

# ingest_run LABEL NAME...: loadgen over the named collectors; prints its
# line and the CPU the collectors and PostgreSQL spent.
ingest_run() {
    local label=$1
    shift
    local addrs="" cpu0=0 pg0 out cpu1=0 pg1 n gen0 gen1
    for n in "$@"; do
        addrs+="${addrs:+,}${AGENTS_ADDR[$n]}"
        cpu0=$(python3 -c "print($cpu0 + $(cpu_seconds "${PIDS[$n]}"))")
    done
    pg0=$(pg_cpu_seconds)
    gen0=$(children_cpu_seconds)
    out=$("$GEN" ingest --addr "$addrs" --token-file "$WORK/agent-token" \
        --agents "$AGENTS" --events "$EVENTS" --window "$WINDOW")
    gen1=$(children_cpu_seconds)
    pg1=$(pg_cpu_seconds)
    for n in "$@"; do
        cpu1=$(python3 -c "print($cpu1 + $(cpu_seconds "${PIDS[$n]}"))")
    done
    echo "$label: $out"
    python3 -c "import sys; c=float(sys.argv[2])-float(sys.argv[1]); p=float(sys.argv[4])-float(sys.argv[3]); n=int(sys.argv[5]); g=float(sys.argv[7])-float(sys.argv[6])
print(f'  CPU: collector(s) {c:.1f}s = {c/n*1e6:.1f} us/event; postgres {p:.1f}s = {p/n*1e6:.1f} us/event; load generator {g:.1f}s = {g/n*1e6:.1f} us/event; all {(c+p+g)/n*1e6:.1f} us/event')" \
        "$cpu0" "$cpu1" "$pg0" "$pg1" "$((AGENTS * EVENTS))" "$gen0" "$gen1"
    LAST_RATE=$(rate_of "$out")
}

# top_statements DB: where PostgreSQL spent its time in DB.
top_statements() {
    psql_ -d "$1" -P pager=off -c "
        SELECT calls, round(total_exec_time) AS total_ms,
               round((mean_exec_time * 1000)::numeric, 1) AS mean_us, rows,
               left(regexp_replace(query, '\s+', ' ', 'g'), 90) AS statement
        FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = '$1')
        ORDER BY total_exec_time DESC LIMIT 8"
    psql_ -d "$1" -At -c "SELECT 'WAL: ' || wal_records || ' records, ' || pg_size_pretty(wal_bytes) || ', ' || wal_sync || ' syncs' FROM pg_stat_wal" 2>/dev/null || true
}

if part 1; then
    say "1. ingest: $AGENTS agents x $EVENTS events, acknowledged after commit"
    configure sqlite1 30s
    start sqlite1
    ingest_run "(a) SQLite, one collector" sqlite1
    SQLITE_RATE=$LAST_RATE
    stop sqlite1

    configure pg1 30s "$(new_database ingest1)"
    start pg1
    psql_ -d ingest1 -c "SELECT pg_stat_statements_reset(); SELECT pg_stat_reset_shared('wal')" >/dev/null
    ingest_run "(b) PostgreSQL, one collector" pg1
    PG1_RATE=$LAST_RATE
    stop pg1
    top_statements ingest1

    URL=$(new_database ingest2)
    configure pg2a 30s "$URL"
    configure pg2b 30s "$URL"
    start pg2a
    start pg2b
    psql_ -d ingest2 -c "SELECT pg_stat_statements_reset(); SELECT pg_stat_reset_shared('wal')" >/dev/null
    ingest_run "(c) PostgreSQL, two collectors ($((AGENTS / 2)) agents each)" pg2a pg2b
    PG2_RATE=$LAST_RATE
    stop pg2a
    stop pg2b
    top_statements ingest2
    python3 -c "import sys; s, a, b = map(float, sys.argv[1:])
print(f'ratios: one PostgreSQL / SQLite {a/s:.2f}; two PostgreSQL / SQLite {b/s:.2f}; two / one {b/a:.2f}')" \
        "$SQLITE_RATE" "$PG1_RATE" "$PG2_RATE"
fi

# ask NAME: the downtime questions of part 2, of the running collector NAME.
ask() {
    for path in "/api/v1/links/downtime?since=30d" "/api/v1/links/downtime?since=24h" \
        "/api/v1/links/worst?since=30d"; do
        "$GEN" get --addr "${HTTP_ADDR[$1]}" --token-file "$WORK/api-token" --path "$path" --repeat "$REPEAT"
    done
}

if part 2; then
    say "2. downtime over $LINK_EVENTS link events across $INTERFACES interfaces"
    # A day's heartbeat_timeout: the seeded history has an event per
    # interface every few hours and no heartbeats, and must not read as
    # silence.
    configure down_sqlite 1d
    start down_sqlite
    "$GEN" seed-links --addr "${AGENTS_ADDR[down_sqlite]}" --token-file "$WORK/agent-token" \
        --interfaces "$INTERFACES" --events "$LINK_EVENTS"
    configure down_pg 1d "$(new_database downtime)"
    start down_pg
    "$GEN" seed-links --addr "${AGENTS_ADDR[down_pg]}" --token-file "$WORK/agent-token" \
        --interfaces "$INTERFACES" --events "$LINK_EVENTS"
    # What autovacuum does within a minute of a bulk insert, done now so
    # every request finds the same visibility map and statistics.
    psql_ -d downtime -c "VACUUM ANALYZE"
    echo "stores: SQLite $(du -sh "$WORK/down_sqlite/data" | cut -f1), PostgreSQL $(psql_ -d downtime -At -c "SELECT pg_size_pretty(pg_database_size('downtime'))")"
    for round in 1 2; do
        echo "-- round $round: SQLite"
        ask down_sqlite
        echo "-- round $round: PostgreSQL"
        ask down_pg
    done
    if [[ -n ${BEFORE_BIN:-} ]]; then
        stop down_sqlite
        stop down_pg
        start down_sqlite "$BEFORE_BIN"
        start down_pg "$BEFORE_BIN"
        echo "-- before ($BEFORE_BIN): SQLite"
        REPEAT=${BEFORE_REPEAT:-$REPEAT} ask down_sqlite
        echo "-- before: PostgreSQL"
        REPEAT=${BEFORE_REPEAT:-$REPEAT} ask down_pg
    fi
    psql_ -d downtime -c "SELECT pg_stat_statements_reset()" >/dev/null
    "$GEN" get --addr "${HTTP_ADDR[down_pg]}" --token-file "$WORK/api-token" \
        --path "/api/v1/links/downtime?since=30d" --repeat 5 >/dev/null
    top_statements downtime
    stop down_sqlite
    stop down_pg
fi

if part 3; then
    say "3. failover gap: SIGKILL of the agent's collector until the other acknowledges"
    URL=$(new_database failover)
    configure fa 30s "$URL"
    configure fb 30s "$URL"
    start fa
    start fb
    "$GEN" failover --addr "${AGENTS_ADDR[fa]},${AGENTS_ADDR[fb]}" \
        --token-file "$WORK/agent-token" --moves "$MOVES" >"$WORK/failover.out" &
    FAILOVER_PID=$!
    for _ in $(seq 200); do
        grep -q streaming "$WORK/failover.out" && break
        sleep 0.05
    done
    on=fa
    GAPS=()
    for move in $(seq "$MOVES"); do
        # Some streaming on the collector first.
        sleep 1
        KILLED_AT=$(date +%s.%N)
        kill -KILL "${PIDS[$on]}"
        wait "${PIDS[$on]}" 2>/dev/null || true
        unset "PIDS[$on]"
        for _ in $(seq 400); do
            (($(grep -c moved "$WORK/failover.out") >= move)) && break
            sleep 0.025
        done
        LINE=$(grep moved "$WORK/failover.out" | sed -n "${move}p")
        ACK_AT=$(sed -E 's/.*first ack \(seq [0-9]+\) at ([0-9.]+).*/\1/' <<<"$LINE")
        GAP=$(python3 -c "print(f'{($ACK_AT - $KILLED_AT) * 1000:.0f}')")
        GAPS+=("$GAP")
        echo "move $move: killed $on; $LINE; gap ${GAP} ms"
        start "$on"
        on=$([[ $on == fa ]] && echo fb || echo fa)
    done
    wait "$FAILOVER_PID" || true
    python3 -c "import sys; g = sorted(map(float, sys.argv[1:]))
print(f'failover gap over {len(g)} moves: min {g[0]:.0f} ms, median {g[len(g)//2]:.0f} ms, max {g[-1]:.0f} ms')" "${GAPS[@]}"
    psql_ -d failover -At -c "SELECT 'stored ' || count(*) || ' events, ' || count(DISTINCT seq) || ' distinct seqs, highest ' || max(seq) FROM events"
fi
