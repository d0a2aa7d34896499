#!/bin/bash
# make up — the embedded default cluster on 127.0.0.1:
#
#   etcd         :2379 (peer :2380)       data  DATA/etcd
#   manager      :7100                    id    DATA/manager
#   9 nodes      :7001-7009, zones a/b/c  data  DATA/node1..node9
#                = 3 shards x 3 replicas, one replica per zone
#   gateway      :6380                    the one endpoint clients use
#
# Each process logs to DATA/NAME.log; DATA/run/NAME.pid holds its pid and
# command line, which is how a later `make up` knows what is already running
# (it starts only what is missing) and how `make down` (scripts/down.sh)
# stops exactly these processes.  The shard configurations live in etcd, so
# a restart on an existing DATA reuses them; shards are created only when
# `cairn ctl status --json` lists fewer than wanted.
#
# Every wait is bounded; on a failure the script names the process, shows
# the tail of its log and stops what this run started.
#
# Foreground or background.  The processes always run detached (setsid, so
# a terminal's Ctrl-C never reaches them directly).  In a terminal (stdin
# and stdout are ttys) the script then stays in the foreground, reporting
# any process that dies, until Ctrl-C (or SIGTERM/SIGHUP): then it runs
# scripts/down.sh for the whole cluster (every pid file, including what an
# earlier detached make up started) and exits 0.  make waits for it, since
# make reaps its children before dying of the SIGINT it got too.  Otherwise
# (CI, tests, pipes) or with CAIRN_DETACH=1 it returns once the cluster
# works and `make down` stops it.  CAIRN_FOREGROUND=1 forces the foreground
# mode without a terminal (the tests use it).
#
# Settings (environment):
#   CAIRN_DATA            ./cairn-data
#   CAIRN_GATEWAY_PORT    6380
#   CAIRN_MANAGER_PORT    7100
#   CAIRN_NODE_PORT       7001 (first node; the others follow it)
#   CAIRN_ETCD_PORT       2379 (client; the peer port is the next one)
#   CAIRN_SHARDS          3
#   CAIRN_REPLICAS        3
#   CAIRN_BIN             ./build/cairn
#   CAIRN_ETCD_BIN        etcd
#   CAIRN_DETACH          1: return once it works, even in a terminal
#   CAIRN_FOREGROUND      1: stay in the foreground, even without a terminal
set -u -f # -f: the argv strings below are split on whitespace, never globbed
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
DATA=${CAIRN_DATA:-$ROOT/cairn-data}
case $DATA in /*) ;; *) DATA=$ROOT/$DATA ;; esac
GPORT=${CAIRN_GATEWAY_PORT:-6380}
MPORT=${CAIRN_MANAGER_PORT:-7100}
NPORT=${CAIRN_NODE_PORT:-7001}
EPORT=${CAIRN_ETCD_PORT:-2379}
SHARDS=${CAIRN_SHARDS:-3}
REPLICAS=${CAIRN_REPLICAS:-3}
BIN=${CAIRN_BIN:-$ROOT/build/cairn}
ETCD=${CAIRN_ETCD_BIN:-$(command -v etcd || echo /usr/bin/etcd)}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
NNODES=$((SHARDS * REPLICAS))
FG=0
if [ "${CAIRN_FOREGROUND:-}" = 1 ]; then
    FG=1
elif [ "${CAIRN_DETACH:-}" != 1 ] && [ -t 0 ] && [ -t 1 ]; then
    FG=1
fi
MADDR=127.0.0.1:$MPORT
ZONES=(a b c d e f g h i)

[ -x "$BIN" ] || { echo "up: $BIN is not built (run make)" >&2; exit 1; }
[ -x "$ETCD" ] || { echo "up: etcd not found (make deps installs etcd-server)" >&2; exit 1; }
mkdir -p "$DATA/run" || exit 1

# ---- the processes: name, argv, ports ---------------------------------

NAMES=(etcd manager)
declare -A ARGV PORTS
ARGV[etcd]="$ETCD --name cairn --data-dir $DATA/etcd
 --listen-client-urls http://127.0.0.1:$EPORT --advertise-client-urls http://127.0.0.1:$EPORT
 --listen-peer-urls http://127.0.0.1:$((EPORT + 1))
 --initial-advertise-peer-urls http://127.0.0.1:$((EPORT + 1))
 --initial-cluster cairn=http://127.0.0.1:$((EPORT + 1))"
PORTS[etcd]="$EPORT $((EPORT + 1))"
ARGV[manager]="$BIN manager --etcd http://127.0.0.1:$EPORT --cluster local
 --port $MPORT --bind 127.0.0.1 --dir $DATA/manager"
PORTS[manager]=$MPORT
for ((i = 1; i <= NNODES; i++)); do
    p=$((NPORT + i - 1))
    NAMES+=("node$i")
    ARGV[node$i]="$BIN node --port $p --bind 127.0.0.1 --dir $DATA/node$i --fsync everysec
 --manager $MADDR --zone ${ZONES[(i - 1) % REPLICAS]}"
    PORTS[node$i]=$p
done
NAMES+=(gateway)
ARGV[gateway]="$BIN gateway --port $GPORT --bind 127.0.0.1 --manager $MADDR"
PORTS[gateway]=$GPORT

# The argv words are split on whitespace: a DATA or binary path with a space
# in it is refused rather than half-handled.
case "$DATA$BIN$ETCD" in *[[:space:]]*)
    echo "up: paths with spaces are not supported: $DATA" >&2; exit 1 ;;
esac

pidfile() { echo "$DATA/run/$1.pid"; }
logfile() { echo "$DATA/$1.log"; }
# shellcheck disable=SC2086 # one line, words separated by one space
cmdline() { echo ${ARGV[$1]}; }

# starttime PID — when PID started (clock ticks since boot, field 22 of
# /proc/PID/stat); fails for a process that is gone or a zombie.  A pid plus
# its start time names one process for good: a recycled pid has another.
starttime() {
    local st w
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    read -ra w <<<"${st##*) }" # the fields after "pid (comm) "
    [ "${w[0]}" != Z ] && echo "${w[19]}"
}

# The pid of NAME if the process its pid file names still runs; empty
# otherwise (stale file, recycled pid).  Same test as in scripts/down.sh.
running_pid() {
    local f pid start
    f=$(pidfile "$1")
    [ -r "$f" ] || return 1
    { read -r pid && read -r start; } <"$f" || return 1
    [ -n "$pid" ] && [ "$(starttime "$pid")" = "$start" ] || return 1
    echo "$pid"
}
recorded_cmdline() { sed -n 3p "$(pidfile "$1")"; }

busy() { (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

STARTED=()
fail() { # fail NAME MESSAGE — report, show NAME's log tail, undo this run
    local name=$1; shift
    echo "up: ${name:+$name: }$*" >&2
    if [ -n "$name" ] && [ -s "$(logfile "$name")" ]; then
        echo "--- last 20 lines of $(logfile "$name"):" >&2
        tail -n 20 "$(logfile "$name")" >&2
        echo "---" >&2
    fi
    if [ ${#STARTED[@]} -gt 0 ]; then
        echo "up: stopping what this run started: ${STARTED[*]}" >&2
        CAIRN_DATA=$DATA scripts/down.sh "${STARTED[@]}" >&2
    fi
    exit 1
}
trap 'fail "" "interrupted"' INT TERM

# start NAME — in its own session (so it outlives make and the terminal's
# Ctrl-C), stdin from /dev/null, output appended to its log.
start() {
    local name=$1 pid
    echo "== $(date '+%F %T') started by scripts/up.sh" >>"$(logfile "$name")"
    # shellcheck disable=SC2046 # the argv is meant to split on whitespace
    setsid $(cmdline "$name") </dev/null >>"$(logfile "$name")" 2>&1 &
    pid=$!
    disown "$pid" # no "Killed ..." from bash when it dies while we watch
    printf '%s\n%s\n%s\n' "$pid" "$(starttime "$pid" || echo gone)" "$(cmdline "$name")" \
        >"$(pidfile "$name")"
    STARTED+=("$name")
}

# wait_for NAME SECONDS WHAT CMD... — until CMD succeeds; NAME must stay up.
# CMD may leave the reason it is not there yet in WHY.
WHY=""
wait_for() {
    local name=$1 secs=$2 what=$3 deadline
    shift 3
    deadline=$((SECONDS + secs))
    WHY=""
    while ! "$@" >/dev/null 2>&1; do
        running_pid "$name" >/dev/null || fail "$name" "exited while waiting for $what"
        [ $SECONDS -lt $deadline ] || fail "$name" "no $what after ${secs}s${WHY:+: $WHY}"
        sleep 0.1
    done
}

ctl() { "$BIN" ctl --manager "$MADDR" "$@"; }
# status_py EXPR — EXPR over the manager's status JSON `j`, printed.
status_py() {
    ctl status --json 2>/dev/null | "$PY" -c "import json,sys; j=json.load(sys.stdin); print($1)"
}
manager_active() { [ "$(status_py 'j["manager"]["active"]')" = True ]; }
nodes_registered() { [ "$(status_py 'len(j["nodes"])')" -ge "$NNODES" ]; }
shard_count() { status_py 'len(j["shards"])'; }
# Every shard's primary (per the manager) says it is primary and serving;
# otherwise WHY names the first one that is not.
shards_serving() {
    local shard addr st prims n=0
    prims=$(status_py '"\n".join("%d %s" % (s["shard"], s["addrs"][s["primary"]]) for s in j["shards"])') ||
        { WHY="cairn ctl status --json failed"; return 1; }
    while read -r shard addr; do
        [ -n "$addr" ] || continue
        n=$((n + 1))
        st=$(redis-cli -p "${addr##*:}" cairn status 2>&1)
        case $st in *'"role":"primary"'*'"serving":true'*) ;; *)
            WHY="shard $shard: its primary $addr answers $st"
            return 1 ;;
        esac
    done <<<"$prims"
    [ $n -ge "$SHARDS" ] || { WHY="$n of $SHARDS shards exist"; return 1; }
}
gateway_ready() {
    local r
    redis-cli -p "$GPORT" info 2>/dev/null | tr -d '\r' | grep -qx "shards:$SHARDS" ||
        { WHY="its INFO does not show shards:$SHARDS yet"; return 1; }
    r=$(redis-cli -p "$GPORT" set cairn:up ok 2>&1)
    [ "$r" = OK ] || { WHY="SET cairn:up ok answered: $r"; return 1; }
}

# ---- what is running already ------------------------------------------

up=0
for name in "${NAMES[@]}"; do
    if pid=$(running_pid "$name"); then
        [ "$(recorded_cmdline "$name")" = "$(cmdline "$name")" ] ||
            fail "" "$name (pid $pid) runs with other settings: $(recorded_cmdline "$name")
up: stop it first: CAIRN_DATA=$DATA scripts/down.sh"
        up=$((up + 1))
        continue
    fi
    rm -f "$(pidfile "$name")"
    for p in ${PORTS[$name]}; do
        busy "$p" && fail "" "port $p (for $name) on 127.0.0.1 is in use by another program; stop it or set the CAIRN_*_PORT variables (see scripts/up.sh)"
    done
done
if [ $up -eq ${#NAMES[@]} ]; then
    echo "cairn is already up (data in $DATA)."
elif [ $up -gt 0 ]; then
    echo "cairn is partly up ($up of ${#NAMES[@]} processes); starting the rest."
else
    echo "starting cairn: etcd, a manager, $SHARDS shards x $REPLICAS replicas, a gateway (data in $DATA)"
fi

# ---- start, in dependency order ---------------------------------------

if ! running_pid etcd >/dev/null; then
    start etcd
    wait_for etcd 30 "healthy etcd on :$EPORT" curl -sf "http://127.0.0.1:$EPORT/health"
fi

if ! running_pid manager >/dev/null; then
    start manager
fi
# Active once it holds the etcd lease; after an unclean stop the previous
# lease must lapse first (its TTL, 2 s by default).
wait_for manager 30 "active manager on :$MPORT" manager_active

for ((i = 1; i <= NNODES; i++)); do
    running_pid "node$i" >/dev/null || start "node$i"
done
for ((i = 1; i <= NNODES; i++)); do
    wait_for "node$i" 20 "PONG from node$i on :${PORTS[node$i]}" redis-cli -p "${PORTS[node$i]}" ping
done

# Shards survive restarts in etcd: create only the missing ones, each on
# REPLICAS spare nodes (one per zone), once every node has registered.
have=$(shard_count) || fail manager "cannot read cairn ctl status --json"
if [ "$have" -lt "$SHARDS" ]; then
    wait_for manager 20 "registration of all $NNODES nodes" nodes_registered
    for ((s = have; s < SHARDS; s++)); do
        out=$(ctl shard create --replicas "$REPLICAS" 2>&1) ||
            fail manager "cairn ctl shard create --replicas $REPLICAS failed: $out"
    done
fi

# After a restart of a whole shard the manager issues it a new
# configuration version before its primary serves again.
wait_for manager 30 "serving primary in every shard" shards_serving
if ! running_pid gateway >/dev/null; then
    start gateway
fi
wait_for gateway 30 "gateway on :$GPORT serving all $SHARDS shards (SET answered OK)" gateway_ready

# ---- from here on, a signal stops everything (foreground) or nothing ----

# stop_all WHAT — the foreground's trap: stop every process the pid files
# name (down.sh without arguments, so also what an earlier detached make up
# started), say what stopped, exit 0.
WAITER=""
stop_all() {
    # Ignored here and therefore in down.sh: a second Ctrl-C must not cut
    # the stop short.  down.sh is bounded (TERM, at most 15 s, KILL).
    trap '' INT TERM HUP
    [ -z "$WAITER" ] || kill "$WAITER" 2>/dev/null
    echo
    echo "up: $1: stopping the whole cluster"
    CAIRN_DATA=$DATA scripts/down.sh
    echo "cairn is stopped; the data stays in $DATA for the next make up"
    exit 0
}
if [ $FG = 1 ]; then
    trap 'stop_all Ctrl-C' INT
    trap 'stop_all SIGTERM' TERM
    trap 'stop_all SIGHUP' HUP
else
    trap - INT TERM
fi

# ---- show it working ----------------------------------------------------

show() { # show CMD... — print it (quoting words with spaces), run it
    local w line='$'
    for w in "$@"; do case $w in *' '*) line+=" '$w'" ;; *) line+=" $w" ;; esac; done
    echo "$line"
    "$@"
}
echo
echo "== through the gateway on :$GPORT"
show redis-cli -p "$GPORT" SET greeting 'hello from cairn'
show redis-cli -p "$GPORT" MSET user:1 ada user:2 grace user:3 barbara user:4 frances
show redis-cli -p "$GPORT" INCR visits
show redis-cli -p "$GPORT" GET greeting
show redis-cli -p "$GPORT" MGET user:1 user:2 user:3 user:4
show redis-cli -p "$GPORT" DBSIZE
echo
sleep 0.3 # a heartbeat or two, so the manager's LSNs include the writes above
echo "\$ build/cairn ctl --manager $MADDR status"
ctl status
echo
echo "== processes (pid, log)"
for name in "${NAMES[@]}"; do
    pid=$(running_pid "$name") || fail "$name" "is not running any more"
    printf '  %-8s :%-13s pid %-8s %s\n' "$name" "${PORTS[$name]// /,:}" "$pid" "$(logfile "$name")"
done
echo
if [ $FG = 0 ]; then
    if [ "$DATA" = "$ROOT/cairn-data" ]; then
        echo "stop: make down   (the data stays in $DATA for the next make up)"
    else
        echo "stop: CAIRN_DATA=$DATA make down   (the data stays for the next make up)"
    fi
    echo "connect: redis-cli -p $GPORT"
    exit 0
fi

# ---- foreground: watch until Ctrl-C ------------------------------------

# watch — once a second, report a process that has died while its pid file
# still names it (seen twice, so that a `make down` elsewhere, which removes
# the file right after the process exits, does not look like a crash).
# Returns once every pid file is gone, i.e. after such a make down.
watch() {
    local name pid f any
    local -A dead=() told=()
    while :; do
        sleep 1 &
        WAITER=$!
        wait "$WAITER" # returns at once on a trapped signal; sleep does not
        any=0
        for name in "${NAMES[@]}"; do
            f=$(pidfile "$name")
            [ -e "$f" ] || continue
            any=1
            running_pid "$name" >/dev/null && continue
            read -r pid <"$f" 2>/dev/null || continue
            if [ "${dead[$name]:-}" = "$pid" ] && [ "${told[$name]:-}" != "$pid" ]; then
                echo "up: $name (pid $pid) has exited; see $(logfile "$name")." \
                    "make up (in another terminal) restarts it; Ctrl-C stops the rest."
                told[$name]=$pid
            fi
            dead[$name]=$pid
        done
        [ $any = 1 ] || return 0
    done
}
stop="make down"
[ "$DATA" = "$ROOT/cairn-data" ] || stop="CAIRN_DATA=$DATA make down"
echo "cairn is up; connect with: redis-cli -p $GPORT  --  Ctrl-C stops the cluster" \
    "(CAIRN_DETACH=1 make up leaves it running; $stop stops it)"
watch
echo "up: every pid file in $DATA/run is gone (make down?); cairn is stopped."
