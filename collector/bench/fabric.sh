#!/usr/bin/env bash
# Fabric trace benchmarks: what one flow followed across the switches costs
# through the collector's HTTP API, next to the same questions asked the
# way a script without hopwatch asks them, in the same run. Prints figures,
# asserts none.
#
# The lab: seven switch namespaces, each running the real `hopwatch` agent
# (the shipped static build), and two hosts —
#
#   h1 ── l1 ═╦═ a1 ═╦═ m ═╦═ a2 ═╦═ l2 ── h2      ECMP (L4 hash) at l1, m, l2
#             ╚═ b1 ═╝     ╚═ b2 ═╝
#
# so a flow from h1 to h2 crosses five switches along one of four paths.
# The agents reach the real collector over a management bridge in a
# namespace of its own, where the collector and the HTTP client run: no
# traffic leaves the namespaces this script makes.
#
#  1. One 5-hop trace, `POST /api/v1/trace/flow` on a kept-alive
#     connection, against a script that follows the same flow with one
#     `ip netns exec NS ip route get …` and one `ip netns exec NS ip -s link
#     show DEV` per hop, sequentially (and the same with `ip -n`, no exec).
#  2. `POST /api/v1/trace/multi-path` over the 4 paths × 5 hops, against 1.
#  3. `POST /api/v1/trace/connectivity`, 16 sources on h1 × 16 destinations
#     on h2.
#  4. One 5-hop trace among 10 and among SIM_AGENTS simulated agents
#     (collector/examples/tracegen.rs) that answer hop questions at once, so
#     what grows with the fleet is the collector's part alone.
#
# Run as root from anywhere: `bash collector/bench/fabric.sh`. Environment:
#   RUNS        timed requests of each trace figure (default 200)
#   REF_RUNS    runs of each reference script (default 40)
#   CONN_RUNS   connectivity matrices (default 20)
#   SIM_AGENTS  simulated agents of the large fleet (default 1000)
#   ROUNDS      rounds the measures of 1–2 and of 4 take turns in (default 4)
#   SIM_SETTLE  seconds the simulated fleet heartbeats before 4 is timed,
#               so every agent's interfaces are in the store (default 11)
#   PARTS       which parts to run (default "1 2 3 4"; 2 and 3 need the lab of 1)
set -euo pipefail

RUNS=${RUNS:-200}
REF_RUNS=${REF_RUNS:-40}
CONN_RUNS=${CONN_RUNS:-20}
SIM_AGENTS=${SIM_AGENTS:-1000}
ROUNDS=${ROUNDS:-4}
SIM_SETTLE=${SIM_SETTLE:-11}
PARTS=${PARTS:-1 2 3 4}
part() { [[ " $PARTS " == *" $1 "* ]]; }

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$(pwd)

if [[ $(id -u) -ne 0 ]]; then
    echo "collector/bench/fabric.sh needs root: it builds network namespaces and veth pairs" >&2
    exit 2
fi
if (( RUNS < ROUNDS || REF_RUNS < ROUNDS || SIM_AGENTS < 10 || SIM_AGENTS % 5 != 0 )); then
    echo "RUNS and REF_RUNS must be at least ROUNDS, SIM_AGENTS a multiple of 5 from 10" >&2
    exit 2
fi

TAG="hwfab$$"
SWITCHES=(l1 a1 b1 m a2 b2 l2)
HOSTS=(h1 h2)
MG="$TAG-mg"
WORK=$(mktemp -d /var/tmp/hopwatch-fabric-bench.XXXXXX)
PIDS=()
LAB_PIDS=()

cleanup() {
    local status=$?
    # Our own processes only, by the ids we started them with; the agents
    # first, so none of them reconnects to a stopping collector.
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    for n in "${SWITCHES[@]}" "${HOSTS[@]}" mg; do
        ip netns del "$TAG-$n" 2>/dev/null || true
    done
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say() { printf '\n== %s\n' "$*"; }
ns() { echo "$TAG-$1"; }
in_mg() { ip netns exec "$MG" "$@"; }

# pct FILE P: the value at rank round((n - 1) * P) of FILE's sorted lines,
# as tracegen ranks them.
pct() {
    sort -g "$1" | awk -v p="$2" '{ v[NR] = $1 } END { i = int((NR - 1) * p + 0.5) + 1; print v[i] }'
}
ratio() { echo "$1 / $2" | bc -l; }
verdict() { # verdict VALUE OP TARGET
    if (( $(echo "$1 $2 $3" | bc -l) )); then echo met; else echo MISSED; fi
}

say "build"
nice cargo build --release --quiet -p hopwatch-collector --bin hopwatch-collector --example tracegen
AGENT="$ROOT/target/x86_64-unknown-linux-musl/release/hopwatch"
if nice cargo build --release --quiet -p hopwatch-agent --target x86_64-unknown-linux-musl --bin hopwatch 2>/dev/null; then
    echo "agents: the static musl build, as shipped"
else
    nice cargo build --release --quiet -p hopwatch-agent --bin hopwatch
    AGENT="$ROOT/target/release/hopwatch"
    echo "agents: the glibc release build (no musl target here)"
fi
COLLECTOR="$ROOT/target/release/hopwatch-collector"
GEN="$ROOT/target/release/examples/tracegen"
echo "kernel $(uname -r), $(ip -V), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"

# start_collector NAME AGENTS_ADDR HTTP_ADDR: a fresh data dir in the
# management namespace, ready when /healthz answers. Sets COLLECTOR_PID,
# DATA, HTTP.
start_collector() {
    local name=$1
    DATA="$WORK/$name"
    HTTP=$3
    mkdir -p "$DATA"
    cat >"$DATA/collector.toml" <<EOF
[collector]
agents_listen = "$2"
http_listen = "$3"
data_dir = "$DATA/data"
heartbeat_timeout = "30s"
[rate_limit]
per_second = 1000
burst = 1000
[log]
file = ""
EOF
    # `ip netns exec` itself, not in_mg: a function sent to the background
    # runs in a subshell, whose id would be the one killed.
    ip netns exec "$MG" "$COLLECTOR" run -c "$DATA/collector.toml" >"$DATA/stdout" 2>"$DATA/stderr" &
    COLLECTOR_PID=$!
    PIDS+=("$COLLECTOR_PID")
    for _ in $(seq 200); do
        in_mg curl -fs "http://$HTTP/healthz" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "the collector did not start: $(cat "$DATA/stderr")" >&2
    exit 1
}

stop() { # stop PID: SIGTERM and wait, for a process of ours
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# post NAME PATH BODY REPEAT: times REPEAT requests on one connection,
# appending to $WORK/NAME.ms (wall, ms) and $WORK/NAME.parts (the answers'
# own figures); prints tracegen's line.
post() {
    in_mg "$GEN" post --addr "$HTTP" --token-file "$DATA/data/api-token" \
        --path "$2" --body "$3" --repeat "$4" --warmup 3 \
        --times "$WORK/$1.ms" --parts "$WORK/$1.parts"
}

# parts NAME: medians of the walk, of its hops' round trips and of the
# agents' own answer times, per request, from the answers of NAME.
parts() {
    [[ -s $WORK/$1.parts ]] || return 0
    local walk hops agents
    walk=$(cut -d' ' -f1 "$WORK/$1.parts" >"$WORK/p" && pct "$WORK/p" 0.5)
    hops=$(cut -d' ' -f2 "$WORK/$1.parts" >"$WORK/p" && pct "$WORK/p" 0.5)
    agents=$(cut -d' ' -f3 "$WORK/$1.parts" >"$WORK/p" && pct "$WORK/p" 0.5)
    printf '    of which (medians): the walk %.3f ms = hops'"'"' round trips %.3f ms (agents'"'"' own answers %.3f ms) + the walk'"'"'s own %.3f ms; outside the walk (HTTP, JSON, the store) %.3f ms\n' \
        "$(ratio "$walk" 1000)" "$(ratio "$hops" 1000)" "$(ratio "$agents" 1000)" \
        "$(ratio "$((walk - hops))" 1000)" "$(ratio "$(echo "$(pct "$WORK/$1.ms" 0.5) * 1000 - $walk" | bc -l)" 1000)"
    # The tail: the slowest 5 % of requests (each line of .ms and .parts is
    # the same request), averaged, to say where a p95 goes.
    paste -d' ' "$WORK/$1.ms" "$WORK/$1.parts" | sort -gr |
        awk '{ n = NR; ms[NR] = $1; w[NR] = $2; h[NR] = $3; a[NR] = $4 }
        END { k = int(n / 20); if (k < 1) k = 1
            for (i = 1; i <= k; i++) { M += ms[i]; W += w[i]; H += h[i]; A += a[i] }
            printf "    the slowest 5 %% (%d requests), means: %.3f ms = the walk %.3f ms (hops'"'"' round trips %.3f ms, agents'"'"' own answers %.3f ms) + outside the walk %.3f ms\n",
                k, M / k, W / k / 1000, H / k / 1000, A / k / 1000, M / k - W / k / 1000 }'
}

FLOW_SRC=10.1.0.10
FLOW_DST=10.2.0.10
SPORT=40000
DPORT=443
FLOW_BODY="{\"src\":\"$FLOW_SRC\",\"dst\":\"$FLOW_DST\",\"proto\":\"tcp\",\"sport\":$SPORT,\"dport\":$DPORT}"
declare -A OWNER # address -> "switch interface", the reference script's map of the lab

# link A B NET: a veth between switches A and B, A at NET.1/24 (`to-B`),
# B at NET.2/24 (`to-A`), each a permanent neighbour of the other, so that
# both the agents and `ip route get` see resolved next hops.
link() {
    local a=$1 b=$2 net=$3
    ip -n "$(ns "$a")" link add "to-$b" type veth peer name "to-$a" netns "$(ns "$b")"
    ip -n "$(ns "$a")" addr add "$net.1/24" dev "to-$b"
    ip -n "$(ns "$b")" addr add "$net.2/24" dev "to-$a"
    ip -n "$(ns "$a")" link set "to-$b" up
    ip -n "$(ns "$b")" link set "to-$a" up
    OWNER[$net.1]="$a to-$b"
    OWNER[$net.2]="$b to-$a"
    neighbour "$a" "to-$b" "$net.2" "$b" "to-$a"
    neighbour "$b" "to-$a" "$net.1" "$a" "to-$b"
}

# neighbour NS DEV ADDR PEER PEER_DEV: ADDR is PEER_DEV's MAC on DEV.
neighbour() {
    local mac
    mac=$(ip -n "$(ns "$4")" -j link show "$5" | jq -r '.[0].address')
    ip -n "$(ns "$1")" neigh replace "$3" lladdr "$mac" dev "$2" nud permanent
}

# ecmp NS PREFIX GW/DEV...: a multipath route.
ecmp() {
    local n=$1 prefix=$2 hop
    shift 2
    local route=(route replace "$prefix")
    for hop in "$@"; do
        route+=(nexthop via "${hop%/*}" dev "${hop#*/}")
    done
    ip -n "$(ns "$n")" "${route[@]}"
}

build_lab() {
    say "lab: ${SWITCHES[*]} (agents) and ${HOSTS[*]} in namespaces $TAG-*"
    local n i
    for n in "${SWITCHES[@]}" "${HOSTS[@]}" mg; do
        ip netns add "$(ns "$n")"
        ip -n "$(ns "$n")" link set lo up
        # No IPv6: links that send no autoconfiguration keep counters still.
        ip netns exec "$(ns "$n")" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
            net.ipv6.conf.default.disable_ipv6=1
    done
    for n in "${SWITCHES[@]}"; do
        ip netns exec "$(ns "$n")" sysctl -qw net.ipv4.ip_forward=1 \
            net.ipv4.fib_multipath_hash_policy=1 net.ipv4.conf.all.rp_filter=0 \
            net.ipv4.conf.default.rp_filter=0
    done
    link l1 a1 10.11.0
    link l1 b1 10.12.0
    link a1 m 10.13.0
    link b1 m 10.14.0
    link m a2 10.15.0
    link m b2 10.16.0
    link a2 l2 10.17.0
    link b2 l2 10.18.0
    # The hosts: 16 addresses each, the connectivity matrix's endpoints.
    ip -n "$(ns l1)" link add to-h1 type veth peer name to-l1 netns "$(ns h1)"
    ip -n "$(ns l2)" link add to-h2 type veth peer name to-l2 netns "$(ns h2)"
    ip -n "$(ns l1)" addr add 10.1.0.1/24 dev to-h1
    ip -n "$(ns l2)" addr add 10.2.0.1/24 dev to-h2
    for n in l1/to-h1 l2/to-h2 h1/to-l1 h2/to-l2; do
        ip -n "$(ns "${n%/*}")" link set "${n#*/}" up
    done
    for i in $(seq 10 25); do
        ip -n "$(ns h1)" addr add "10.1.0.$i/24" dev to-l1
        ip -n "$(ns h2)" addr add "10.2.0.$i/24" dev to-l2
        neighbour l1 to-h1 "10.1.0.$i" h1 to-l1
        neighbour l2 to-h2 "10.2.0.$i" h2 to-l2
    done
    ip -n "$(ns h1)" route add default via 10.1.0.1
    ip -n "$(ns h2)" route add default via 10.2.0.1
    ecmp l1 10.2.0.0/24 10.11.0.2/to-a1 10.12.0.2/to-b1
    ip -n "$(ns a1)" route add 10.2.0.0/24 via 10.13.0.2
    ip -n "$(ns a1)" route add 10.1.0.0/24 via 10.11.0.1
    ip -n "$(ns b1)" route add 10.2.0.0/24 via 10.14.0.2
    ip -n "$(ns b1)" route add 10.1.0.0/24 via 10.12.0.1
    ecmp m 10.2.0.0/24 10.15.0.2/to-a2 10.16.0.2/to-b2
    ecmp m 10.1.0.0/24 10.13.0.1/to-a1 10.14.0.1/to-b1
    ip -n "$(ns a2)" route add 10.2.0.0/24 via 10.17.0.2
    ip -n "$(ns a2)" route add 10.1.0.0/24 via 10.15.0.1
    ip -n "$(ns b2)" route add 10.2.0.0/24 via 10.18.0.2
    ip -n "$(ns b2)" route add 10.1.0.0/24 via 10.16.0.1
    ecmp l2 10.1.0.0/24 10.17.0.1/to-a2 10.18.0.1/to-b2

    # Management: a bridge in the collector's namespace, one port a switch,
    # as an NX-OS management VRF reaches its collector.
    ip -n "$MG" link add br0 type bridge
    ip -n "$MG" addr add 172.31.0.1/24 dev br0
    ip -n "$MG" link set br0 up
    i=10
    for n in "${SWITCHES[@]}"; do
        ip -n "$(ns "$n")" link add mgmt0 type veth peer name "p-$n" netns "$MG"
        ip -n "$(ns "$n")" addr add "172.31.0.$i/24" dev mgmt0
        ip -n "$(ns "$n")" link set mgmt0 up
        ip -n "$MG" link set "p-$n" master br0 up
        i=$((i + 1))
    done

    start_collector lab 172.31.0.1:7000 172.31.0.1:8080
    LAB_DATA=$DATA
    LAB_PIDS=("$COLLECTOR_PID")
    for n in "${SWITCHES[@]}"; do
        mkdir -p "$WORK/agent-$n"
        cat >"$WORK/agent-$n/agent.toml" <<EOF
[agent]
name = "$n"
heartbeat = "10s"
state_dir = "$WORK/agent-$n"
source = "procfs"
trace_backend = "kernel"

[links]
interfaces = ["to-*"]

[output.collector]
address = "172.31.0.1:7000"
token_file = "$LAB_DATA/data/agent-token"
EOF
        ip netns exec "$(ns "$n")" "$AGENT" run -c "$WORK/agent-$n/agent.toml" \
            >"$WORK/agent-$n/stdout" 2>"$WORK/agent-$n/stderr" &
        PIDS+=("$!")
        LAB_PIDS=("$!" "${LAB_PIDS[@]}")
    done

    # Ready when a trace crosses all five switches: every agent has said
    # hello with its addresses.
    local answer="" deadline=$((SECONDS + 30))
    while ((SECONDS < deadline)); do
        answer=$(in_mg curl -s -X POST -H "Authorization: Bearer $(cat "$LAB_DATA/data/api-token")" \
            -H 'Content-Type: application/json' -d "$FLOW_BODY" "http://$HTTP/api/v1/trace/flow" || true)
        if [[ $(jq -r '[.outcome.result, (.hops | length)] | join(" ")' <<<"$answer" 2>/dev/null) == "delivered 5" ]]; then
            break
        fi
        sleep 0.2
    done
    echo "hopwatch: $(jq -c '{outcome: .outcome.result, hops: [.hops[] | "\(.agent) in \(.ingress // "-") out \(.egress.name // "-")"]}' <<<"$answer" 2>/dev/null || echo "$answer")"
    if [[ $(jq -r '.outcome.result' <<<"$answer" 2>/dev/null) != delivered ]]; then
        echo "the lab's trace did not come through; agent logs:" >&2
        tail -n 5 "$WORK"/agent-*/stderr "$LAB_DATA/stderr" >&2
        exit 1
    fi
}

# The reference: the five questions asked the way a script without hopwatch
# asks them. Starting at l1 on the host's link, per hop: the route the flow
# takes (`ip route get` with `iif`, so the answer is the forwarding one), the
# egress interface's counters, then the next hop's owner from the lab's map.
# EXEC is how a command is run in a switch's namespace.
reference() {
    local exec=$1 sw=l1 iif=to-h1 out via dev hops=0 path=""
    while :; do
        hops=$((hops + 1))
        if [[ $exec == exec ]]; then
            out=$(ip netns exec "$(ns "$sw")" ip route get "$FLOW_DST" from "$FLOW_SRC" iif "$iif" \
                ipproto tcp sport "$SPORT" dport "$DPORT")
        else
            out=$(ip -n "$(ns "$sw")" route get "$FLOW_DST" from "$FLOW_SRC" iif "$iif" \
                ipproto tcp sport "$SPORT" dport "$DPORT")
        fi
        [[ $out =~ dev\ ([^ ]+) ]] && dev=${BASH_REMATCH[1]}
        if [[ $exec == exec ]]; then
            ip netns exec "$(ns "$sw")" ip -s link show dev "$dev" >/dev/null
        else
            ip -n "$(ns "$sw")" -s link show dev "$dev" >/dev/null
        fi
        path+="$sw in $iif out $dev; "
        if [[ $out =~ via\ ([^ ]+) ]]; then
            via=${BASH_REMATCH[1]}
            read -r sw iif <<<"${OWNER[$via]}"
        else
            break
        fi
    done
    REF_PATH="$hops hops: $path"
}

# time_reference EXEC RUNS FILE: RUNS runs of the reference, ms each.
time_reference() {
    local i s e
    for ((i = 0; i < $2; i++)); do
        s=$EPOCHREALTIME
        reference "$1"
        e=$EPOCHREALTIME
        echo "(${e/./} - ${s/./}) / 1000" | bc -l >>"$3"
    done
}

# time_cli RUNS FILE: RUNS runs of `hopwatch-collector trace` (the human
# form), whole process, timed inside the management namespace so that no
# namespace switch is counted.
time_cli() {
    in_mg bash -c 'for ((i = 0; i < $1; i++)); do
        s=$EPOCHREALTIME; "${@:3}" >/dev/null; e=$EPOCHREALTIME
        echo "(${e/./} - ${s/./}) / 1000" | bc -l >>"$2"
    done' _ "$1" "$2" "$COLLECTOR" trace -c "$LAB_DATA/collector.toml" --src "$FLOW_SRC" \
        --dst "$FLOW_DST" --proto tcp --sport "$SPORT" --dport "$DPORT"
}

# figure NAME LABEL: p50 and p95 of NAME's times.
figure() {
    printf '  %-52s p50 %9.3f ms   p95 %9.3f ms\n' "$2" "$(pct "$WORK/$1.ms" 0.5)" "$(pct "$WORK/$1.ms" 0.95)"
}

if part 1 || part 2 || part 3; then
    build_lab
fi

if part 1 || part 2; then
    say "1-2. one 5-hop trace and all paths through the API, the reference scripts; $ROUNDS rounds taking turns"
    reference exec
    echo "reference: $REF_PATH"
    MP_BODY="{\"src\":\"$FLOW_SRC\",\"dst\":\"$FLOW_DST\",\"proto\":\"tcp\",\"sport\":$SPORT,\"dport\":$DPORT}"
    for ((r = 0; r < ROUNDS; r++)); do
        part 1 && time_reference exec $((REF_RUNS / ROUNDS)) "$WORK/ref.ms"
        part 1 && time_reference n $((REF_RUNS / ROUNDS)) "$WORK/refn.ms"
        part 1 && time_cli $((REF_RUNS / ROUNDS)) "$WORK/cli.ms"
        post flow /api/v1/trace/flow "$FLOW_BODY" $((RUNS / ROUNDS))
        part 2 && post multi /api/v1/trace/multi-path "$MP_BODY" $((RUNS / ROUNDS))
    done
    echo
    figure flow "POST trace/flow, 5 hops (kept-alive connection)"
    parts flow
    if part 1; then
        figure ref "reference: ip netns exec ×2 per hop, sequential"
        figure refn "reference: ip -n ×2 per hop (no exec), sequential"
        figure cli "hopwatch-collector trace (CLI, whole process)"
        t_flow=$(pct "$WORK/flow.ms" 0.5)
        p95_flow=$(pct "$WORK/flow.ms" 0.95)
        t_ref=$(pct "$WORK/ref.ms" 0.5)
        t_refn=$(pct "$WORK/refn.ms" 0.5)
        r=$(ratio "$t_flow" "$t_ref")
        printf '  trace / reference (p50)        %8.4fx   target <= 0.1x: %s\n' "$r" "$(verdict "$r" '<=' 0.1)"
        printf '  trace / reference with ip -n   %8.4fx\n' "$(ratio "$t_flow" "$t_refn")"
        printf '  CLI / reference                %8.4fx\n' "$(ratio "$(pct "$WORK/cli.ms" 0.5)" "$t_ref")"
        printf '  trace p95                      %8.3f ms target <= 20 ms: %s\n' "$p95_flow" "$(verdict "$p95_flow" '<=' 20)"
    fi
    if part 2; then
        figure multi "POST trace/multi-path, 4 paths x 5 hops"
        r=$(ratio "$(pct "$WORK/multi.ms" 0.5)" "$(pct "$WORK/flow.ms" 0.5)")
        r95=$(ratio "$(pct "$WORK/multi.ms" 0.95)" "$(pct "$WORK/flow.ms" 0.95)")
        printf '  multi-path / one path          %8.2fx (p50), %.2fx (p95)   target <= 2x: %s\n' "$r" "$r95" "$(verdict "$r" '<=' 2)"
    fi
fi

if part 3; then
    say "3. connectivity 16 x 16 (h1's 16 addresses to h2's), tcp/443"
    srcs=$(seq 10 25 | sed 's/^/"10.1.0./; s/$/"/' | paste -sd,)
    dsts=$(seq 10 25 | sed 's/^/"10.2.0./; s/$/"/' | paste -sd,)
    CONN_BODY="{\"sources\":[$srcs],\"destinations\":[$dsts],\"flows\":[{\"proto\":\"tcp\",\"dport\":$DPORT}]}"
    post conn /api/v1/trace/connectivity "$CONN_BODY" "$CONN_RUNS"
    figure conn "POST trace/connectivity, 256 cells"
    p95=$(pct "$WORK/conn.ms" 0.95)
    printf '  connectivity p95               %8.1f ms target <= 1000 ms: %s\n' "$p95" "$(verdict "$p95" '<=' 1000)"
fi

if part 1 || part 2 || part 3; then
    echo
    echo "the collector's questions to agents, by how they ended:"
    in_mg curl -fs "http://$HTTP/metrics" | grep -E '^hopwatch_collector_trace_(requests|results)' | grep -v ' 0$' | sed 's/^/  /'
    echo "agents' heap and RSS after the lab's traces:"
    for n in "${SWITCHES[@]}"; do
        echo "  $n: $("$AGENT" status -c "$WORK/agent-$n/agent.toml" 2>/dev/null | grep -oE '(rss|heap) [0-9]+ KiB' | paste -sd' ' || true)"
    done
fi

if part 4; then
    # The lab is done: its agents and collector would only add noise.
    for pid in "${LAB_PIDS[@]}"; do
        stop "$pid"
    done
    [[ -n $(ip netns list | grep -w "$MG") ]] || { ip netns add "$MG"; ip -n "$MG" link set lo up; }
    say "4. one 5-hop trace among 10 and among $SIM_AGENTS simulated agents, $ROUNDS rounds alternating"
    for ((r = 0; r < ROUNDS; r++)); do
        for fleet in 10 "$SIM_AGENTS"; do
            start_collector "sim$fleet-$r" 127.0.0.1:7001 127.0.0.1:8081
            rm -f "$WORK/ready"
            ip netns exec "$MG" "$GEN" agents --addr 127.0.0.1:7001 --token-file "$DATA/data/agent-token" \
                --agents "$fleet" --ready-file "$WORK/ready" >"$WORK/sim.out" 2>&1 &
            SIM_PID=$!
            PIDS+=("$SIM_PID")
            for _ in $(seq 600); do
                [[ -s $WORK/ready ]] && break
                kill -0 "$SIM_PID" 2>/dev/null || { cat "$WORK/sim.out" >&2; exit 1; }
                sleep 0.05
            done
            read -r _ agents chains start src dst took <"$WORK/ready"
            echo "  $agents agents ($chains chains) connected in ${took}s; the flow $src -> $dst enters at $start"
            # Every agent's first heartbeat (48 interfaces each) in the store
            # before anything is timed: the steady state of a fleet.
            sleep "$SIM_SETTLE"
            body="{\"src\":\"$src\",\"dst\":\"$dst\",\"proto\":\"tcp\",\"sport\":$SPORT,\"dport\":$DPORT}"
            post "sim$fleet" /api/v1/trace/flow "$body" $((RUNS / ROUNDS)) | sed 's/^/  /'
            # The store's part of the answer: what it knows of one hop's
            # egress, asked through the API's own query of it.
            in_mg "$GEN" post --get --addr "$HTTP" --token-file "$DATA/data/api-token" \
                --path "/api/v1/links/downtime?since=24h&agent=${start%-0}-1&interface=up" \
                --repeat $((RUNS / ROUNDS)) --warmup 3 --times "$WORK/down$fleet.ms" | sed 's/^/  /'
            stop "$SIM_PID"
            sed 's/^/  /' "$WORK/sim.out"
            stop "$COLLECTOR_PID"
        done
    done
    echo
    figure sim10 "10 simulated agents"
    parts sim10
    figure "sim$SIM_AGENTS" "$SIM_AGENTS simulated agents"
    parts "sim$SIM_AGENTS"
    figure down10 "one interface's downtime (GET), 10 agents"
    figure "down$SIM_AGENTS" "one interface's downtime (GET), $SIM_AGENTS agents"
    r=$(ratio "$(pct "$WORK/sim$SIM_AGENTS.ms" 0.95)" "$(pct "$WORK/sim10.ms" 0.95)")
    printf '  p95 %s agents / 10 agents    %8.2fx   target <= 2x: %s\n' "$SIM_AGENTS" "$r" "$(verdict "$r" '<=' 2)"
fi
