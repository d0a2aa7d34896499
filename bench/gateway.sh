#!/usr/bin/env bash
# bench/gateway.sh — the cairn gateway against twemproxy, and against no
# proxy at all, with redis-benchmark on loopback.
#
#   (1) cairn gateway -> 3 cairn shards (1 replica each, fsync no)
#       vs twemproxy (nutcracker, ketama, 3 backends) -> 3 redis-server
#       (no persistence): SET/GET requests per second at -P 1 and -P 16, and
#       the ratio cairn/twemproxy (goal >= 1.2)
#   (2) cairn gateway -> 1 shard vs the same node direct: the gateway's cost
#       1 - gateway/direct (goal <= 20 %)
#
# Every measurement: redis-benchmark -c 50 -r 1000000 -t set,get -P DEPTH.
# The two systems of a pair run alternately, ROUNDS rounds (default 3), and
# the median is reported.  Everything listens on 127.0.0.1 only; every
# process and temp dir is removed on exit (also on error / Ctrl-C).
#
#   bench/gateway.sh                full run (< 8 minutes on 2 cores)
#   BENCH_QUICK=1 bench/gateway.sh  1 round, fewer requests (~1 minute)
#
# Knobs: ROUNDS, N_P1 / N_P16 (requests per redis-benchmark run at depth 1 /
# 16), CLIENTS (50), GW_ARGS (extra `cairn gateway` flags), BENCH_PIN=1 (servers
# on CPU 1, redis-benchmark on CPU 0), ETCD_BIN, NUTCRACKER.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ETCD_BIN=${ETCD_BIN:-etcd}
NUTCRACKER=${NUTCRACKER:-nutcracker}
CLIENTS=${CLIENTS:-50}
KEYSPACE=${KEYSPACE:-1000000}
GW_ARGS=${GW_ARGS:-}
if [[ ${BENCH_QUICK:-0} == 1 ]]; then
    ROUNDS=${ROUNDS:-1} N_P1=${N_P1:-50000} N_P16=${N_P16:-300000}
else
    ROUNDS=${ROUNDS:-3} N_P1=${N_P1:-200000} N_P16=${N_P16:-1000000}
fi

bench_init
for b in "$ETCD_BIN" "$NUTCRACKER"; do
    command -v "$b" >/dev/null || die "$b not found (apt-get install etcd-server nutcracker)"
done


BASE=$(mktemp -d "${TMPDIR:-/tmp}/cairn-gwbench.XXXXXX")
BENCH_DIRS+=("$BASE")

spawn() { # spawn LOG CMD... -> SPAWNED
    local logf=$1
    shift
    $SERVER_PIN "$@" >>"$logf" 2>&1 &
    SPAWNED=$!
    BENCH_PIDS+=("$SPAWNED")
}

# wait_for DESC CMD...: run CMD every 50 ms until it succeeds (30 s at most).
wait_for() {
    local desc=$1 i
    shift
    for ((i = 0; i < 600; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.05
    done
    die "timed out after 30 s waiting for $desc"
}

alive_or_die() { # alive_or_die PID LOG
    kill -0 "$1" 2>/dev/null || { tail -n 30 "$2" >&2; die "pid $1 exited (log $2)"; }
}

cli() { "$REDIS_CLI" -h 127.0.0.1 "$@"; }

# ---- cairn: etcd, managers, nodes, shards, gateways ------------------------

ETCD_PORT=
start_etcd() {
    free_port; ETCD_PORT=$REPLY
    free_port; local peer=$REPLY
    spawn "$BASE/etcd.log" "$ETCD_BIN" --name t --data-dir "$BASE/etcd" \
        --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
        --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
        --listen-peer-urls "http://127.0.0.1:$peer" \
        --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
        --initial-cluster "t=http://127.0.0.1:$peer"
    ETCD_PID=$SPAWNED
    etcd_ok() { alive_or_die "$ETCD_PID" "$BASE/etcd.log"; curl -sf "http://127.0.0.1:$ETCD_PORT/health" | grep -q true; }
    if command -v curl >/dev/null; then
        wait_for "etcd health" etcd_ok
    else
        wait_for "etcd port" bash -c "exec 3<>/dev/tcp/127.0.0.1/$ETCD_PORT"
    fi
}

# cairn_cluster NAME NSHARDS -> MGR (host:port), NODE_PORTS (array), GW_PORT
cairn_cluster() {
    local name=$1 nshards=$2 i
    free_port; local mport=$REPLY
    MGR=127.0.0.1:$mport
    spawn "$BASE/$name-manager.log" "$CAIRN_BIN" manager --etcd "http://127.0.0.1:$ETCD_PORT" \
        --cluster "$name" --port "$mport" --dir "$BASE/$name-manager"
    local mpid=$SPAWNED
    mgr_active() { alive_or_die "$mpid" "$BASE/$name-manager.log"; cli -p "$mport" info | grep -q '^active:\(yes\|1\)'; }
    wait_for "manager $name active" mgr_active
    NODE_PORTS=() NODE_PIDS=()
    for ((i = 1; i <= nshards; i++)); do
        free_port; local np=$REPLY
        mkdir -p "$BASE/$name-n$i"
        spawn "$BASE/$name-n$i.log" "$CAIRN_BIN" node --bind 127.0.0.1 --port "$np" \
            --dir "$BASE/$name-n$i" --fsync no --manager "$MGR"
        wait_ready "$SPAWNED" "$np" "$BASE/$name-n$i.log"
        NODE_PORTS+=("$np")
        NODE_PIDS+=("$SPAWNED")
    done
    for ((i = 1; i <= nshards; i++)); do
        wait_for "cairn ctl shard create ($name, shard $i)" \
            "$CAIRN_BIN" ctl --manager "$MGR" shard create --replicas 1
    done
    free_port; GW_PORT=$REPLY
    # shellcheck disable=SC2086  # GW_ARGS is a list of flags
    spawn "$BASE/$name-gateway.log" "$CAIRN_BIN" gateway --port "$GW_PORT" --manager "$MGR" $GW_ARGS
    local gpid=$SPAWNED
    GW_PID=$gpid
    gw_ok() {
        alive_or_die "$gpid" "$BASE/$name-gateway.log"
        [[ $(cli -p "$GW_PORT" info | tr -d '\r' | awk -F: '$1 == "shards" { print $2 }') == "$nshards" ]] &&
            [[ $(cli -p "$GW_PORT" set __bench_probe__ 1) == OK ]]
    }
    wait_for "gateway of $name answering SET x y with OK" gw_ok
    # every node must be a serving primary before we measure it directly
    local np
    for np in "${NODE_PORTS[@]}"; do
        wait_for "node $np serving" bash -c "[[ \$($REDIS_CLI -h 127.0.0.1 -p $np set __bench_probe2__ 1) == OK ]]"
    done
}

# ---- twemproxy + 3 redis-server --------------------------------------------

start_twemproxy() {
    local ports=() i
    for i in 1 2 3; do
        start_redis no no
        ports+=("$SRV_PORT")
    done
    free_port; TW_PORT=$REPLY
    free_port; local stats=$REPLY
    local conf=$BASE/nutcracker.yml
    {
        echo "cairnbench:"
        echo "  listen: 127.0.0.1:$TW_PORT"
        echo "  hash: fnv1a_64"
        echo "  distribution: ketama"
        echo "  redis: true"
        echo "  auto_eject_hosts: false"
        echo "  server_connections: 1"
        echo "  preconnect: true"
        echo "  servers:"
        for i in 0 1 2; do echo "   - 127.0.0.1:${ports[$i]}:1 redis$i"; done
    } >"$conf"
    "$NUTCRACKER" -t -c "$conf" >"$BASE/nutcracker-test.log" 2>&1 ||
        { cat "$BASE/nutcracker-test.log" >&2; die "nutcracker rejected $conf"; }
    spawn "$BASE/nutcracker.out" "$NUTCRACKER" -c "$conf" -s "$stats" -a 127.0.0.1 \
        -p "$BASE/nutcracker.pid" -o "$BASE/nutcracker.log" -v 4
    local tpid=$SPAWNED
    TW_PID=$tpid
    tw_ok() { alive_or_die "$tpid" "$BASE/nutcracker.log"; [[ $(cli -p "$TW_PORT" set __bench_probe__ 1) == OK ]]; }
    wait_for "twemproxy answering SET" tw_ok
    TW_BACKENDS=("${ports[@]}")
}

# ---- measuring -------------------------------------------------------------

# rb PORT DEPTH -> "SET_RPS GET_RPS"
rb() {
    local port=$1 depth=$2 n out set get
    if ((depth == 1)); then n=$N_P1; else n=$N_P16; fi
    out=$($CLIENT_PIN "$REDIS_BENCHMARK" -h 127.0.0.1 -p "$port" -c "$CLIENTS" -n "$n" \
        -r "$KEYSPACE" -P "$depth" -t set,get --csv 2>/dev/null) ||
        die "redis-benchmark against port $port failed"
    set=$(awk -F'","' '/^"SET"/ { print $2 + 0 }' <<<"$out")
    get=$(awk -F'","' '/^"GET"/ { print $2 + 0 }' <<<"$out")
    [[ -n $set && -n $get ]] || die "could not parse redis-benchmark output: $out"
    echo "$set $get"
}

declare -A RES   # RES[system,depth,op] = "r1 r2 r3"
declare -A CPU   # CPU[system,depth] = "us1 us2 us3": the measured process's CPU per request

HZ=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; } # user + system

measure() { # measure SYSTEM PORT DEPTH PID: PID is the process whose CPU time per request is kept
    local sys=$1 port=$2 depth=$3 pid=$4 s g t0 t1 n
    t0=$(cpu_ticks "$pid")
    read -r s g < <(rb "$port" "$depth")
    t1=$(cpu_ticks "$pid")
    if ((depth == 1)); then n=$N_P1; else n=$N_P16; fi
    RES[$sys,$depth,SET]+="$s "
    RES[$sys,$depth,GET]+="$g "
    CPU[$sys,$depth]+="$(awk -v d=$((t1 - t0)) -v hz="$HZ" -v n="$n" 'BEGIN { printf "%.2f", d * 1e6 / hz / (2 * n) }') "
    log "  $sys -P $depth: SET $s GET $g"
}

med() { # med SYSTEM DEPTH OP
    # shellcheck disable=SC2086
    median ${RES[$1,$2,$3]}
}

fmt() { printf '%.0f' "$1"; }

# paired SYS_A SYS_B DEPTH OP: the median over rounds of A/B, each round's two
# runs side by side in time (robust to load drifting between rounds).
paired() {
    local -a a b
    read -r -a a <<<"${RES[$1,$3,$4]}"
    read -r -a b <<<"${RES[$2,$3,$4]}"
    local i r=()
    for ((i = 0; i < ${#a[@]}; i++)); do
        r+=("$(awk -v x="${a[$i]}" -v y="${b[$i]}" 'BEGIN { printf "%.4f", (y > 0 ? x / y : 0) }')")
    done
    median "${r[@]}"
}

# ---- run -------------------------------------------------------------------

T0=$SECONDS
log "cairn gateway benchmark: rounds $ROUNDS, -c $CLIENTS, -r $KEYSPACE, -n $N_P1 (P1) / $N_P16 (P16)$([[ ${BENCH_QUICK:-0} == 1 ]] && echo ', QUICK')"
start_etcd
cairn_cluster gw3 3
GW3_PORT=$GW_PORT GW3_PID=$GW_PID
CAIRN3_NODES=("${NODE_PORTS[@]}")
cairn_cluster gw1 1
GW1_PORT=$GW_PORT GW1_PID=$GW_PID
DIRECT_PORT=${NODE_PORTS[0]} DIRECT_PID=${NODE_PIDS[0]}
start_twemproxy
log "up in $((SECONDS - T0)) s: cairn gateway :$GW3_PORT -> nodes ${CAIRN3_NODES[*]}; twemproxy :$TW_PORT -> redis ${TW_BACKENDS[*]}; gateway :$GW1_PORT -> node :$DIRECT_PORT"

for ((round = 1; round <= ROUNDS; round++)); do
    log "round $round/$ROUNDS"
    for depth in 1 16; do
        # alternate which system goes first, so drift hits both alike
        if ((round % 2)); then
            measure cairn "$GW3_PORT" "$depth" "$GW3_PID"
            measure twemproxy "$TW_PORT" "$depth" "$TW_PID"
            measure gateway1 "$GW1_PORT" "$depth" "$GW1_PID"
            measure direct "$DIRECT_PORT" "$depth" "$DIRECT_PID"
        else
            measure twemproxy "$TW_PORT" "$depth" "$TW_PID"
            measure cairn "$GW3_PORT" "$depth" "$GW3_PID"
            measure direct "$DIRECT_PORT" "$depth" "$DIRECT_PID"
            measure gateway1 "$GW1_PORT" "$depth" "$GW1_PID"
        fi
    done
done

# the keys really went to every shard / backend
dist() { local p out=""; for p in "$@"; do out+="$(cli -p "$p" dbsize) "; done; echo "$out"; }
log "keys per cairn node: $(dist "${CAIRN3_NODES[@]}")   per redis behind twemproxy: $(dist "${TW_BACKENDS[@]}")"

echo
echo "== cairn gateway benchmark ($(nproc) cores, loopback, redis-benchmark -c $CLIENTS -r $KEYSPACE, median of $ROUNDS) =="
echo
echo "rps: median over rounds; ratio and cost: median over rounds of the paired (back-to-back) runs"
echo
echo "(1) cairn gateway -> 3 cairn shards (fsync no)  vs  twemproxy (ketama) -> 3 redis-server (no persistence)"
printf '    %-6s %-4s %14s %14s %9s\n' depth op cairn twemproxy ratio
pass1=1
for depth in 1 16; do
    for op in SET GET; do
        c=$(med cairn $depth $op) t=$(med twemproxy $depth $op)
        ratio=$(awk -v r="$(paired cairn twemproxy $depth $op)" 'BEGIN { printf "%.2f", r }')
        awk -v r="$ratio" 'BEGIN { exit !(r < 1.2) }' && pass1=0
        printf '    -P %-3s %-4s %14s %14s %8sx\n' "$depth" "$op" "$(fmt "$c")" "$(fmt "$t")" "$ratio"
    done
done
echo "    goal: cairn/twemproxy >= 1.2 at both depths: $([[ $pass1 == 1 ]] && echo MET || echo NOT MET)"
echo
echo "(2) cairn gateway -> 1 shard  vs  the same node direct"
printf '    %-6s %-4s %14s %14s %9s\n' depth op gateway direct cost
pass2=1
for depth in 1 16; do
    for op in SET GET; do
        g=$(med gateway1 $depth $op) d=$(med direct $depth $op)
        cost=$(awk -v r="$(paired gateway1 direct $depth $op)" 'BEGIN { printf "%.1f", 100 * (1 - r) }')
        awk -v c="$cost" 'BEGIN { exit !(c > 20) }' && pass2=0
        printf '    -P %-3s %-4s %14s %14s %8s%%\n' "$depth" "$op" "$(fmt "$g")" "$(fmt "$d")" "$cost"
    done
done
echo "    goal: gateway cost 1 - gateway/direct <= 20%: $([[ $pass2 == 1 ]] && echo MET || echo NOT MET)"
echo
echo "(3) CPU time per request (user + system, from /proc, SET and GET runs together), in microseconds:"
echo "    the proxies' own cost, which throughput on a machine this small mixes with everything else"
printf '    %-6s %10s %10s %7s   %12s %12s %7s\n' depth cairn-gw twemproxy ratio "gw (1 shard)" "node direct" ratio
for depth in 1 16; do
    # shellcheck disable=SC2086  # the runs are a space-separated list
    cg=$(median ${CPU[cairn,$depth]}) tw=$(median ${CPU[twemproxy,$depth]})
    # shellcheck disable=SC2086
    g1=$(median ${CPU[gateway1,$depth]}) nd=$(median ${CPU[direct,$depth]})
    printf '    -P %-3s %10.2f %10.2f %6.2fx   %12.2f %12.2f %6.2fx\n' "$depth" "$cg" "$tw" \
        "$(awk -v a="$cg" -v b="$tw" 'BEGIN { print (b > 0 ? a / b : 0) }')" "$g1" "$nd" \
        "$(awk -v a="$g1" -v b="$nd" 'BEGIN { print (b > 0 ? a / b : 0) }')"
done
echo "    (the first ratio: cairn gateway CPU / twemproxy CPU per request, lower is better; the second:"
echo "     gateway CPU / the node's own CPU per request when clients talk to it directly)"
echo
echo "    raw rps per run (SET/GET): "
for sys in cairn twemproxy gateway1 direct; do
    for depth in 1 16; do
        # shellcheck disable=SC2086  # the runs are a space-separated list
        printf '      %-9s -P %-3s SET %s| GET %s\n' "$sys" "$depth" \
            "$(printf '%.0f ' ${RES[$sys,$depth,SET]})" "$(printf '%.0f ' ${RES[$sys,$depth,GET]})"
    done
done
echo "    load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); total time $((SECONDS - T0)) s"
