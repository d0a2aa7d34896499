# shellcheck shell=bash
# RPID/CPID are read by the scripts; redis_health/redis_up take optional args.
# shellcheck disable=SC2034,SC2119,SC2120
# bench/cluster_lib.sh — replicated groups on loopback for the benchmark
# scripts (sourced after lib.sh and bench_init, not run).
#
# Every process goes through spawn, so lib.sh's bench_cleanup stops exactly
# the processes started here; all state lives under $BASE (a mktemp -d dir the
# caller registered in BENCH_DIRS).  Every wait is bounded.
#
#   cairn_up                 etcd (1 member) + 1 `cairn manager` + 3 `cairn node`s
#                            (--fsync $CAIRN_FSYNC, lease/grace $LEASE_MS/$GRACE_MS),
#                            `cairn ctl shard create --replicas 3`, wait healthy
#   cairn_health             wait until healthy; prints the primary's port
#   node_start PORT ZONE     (re)start one node on its own port and data dir
#   redis_up [sentinels]     a primary + 2 replicas (appendonly yes, appendfsync
#                            everysec, replica-announce-ip 127.0.0.1); with
#                            "sentinels", 3 Sentinels monitoring it as "m"
#   redis_health [synced]    wait until healthy; prints the master's port
#   redis_start PORT         (re)start one redis-server on its own config
#   prepare_kill PID / reap PID   around a SIGKILL sent by the load client
#
#   cluster_bench_init NAME  checks + a result dir in $BASE
#
# Needs: BASE, PYTHON, CLIENT (bench/failover_client.py), ETCD_BIN,
# HEALTH_TIMEOUT; CAIRN_FSYNC (default everysec), LEASE_MS, GRACE_MS.

CAIRN_FSYNC=${CAIRN_FSYNC:-everysec}
LEASE_MS=${LEASE_MS:-400}
GRACE_MS=${GRACE_MS:-800}

# cluster_bench_init NAME: the checks and the result dir both cluster
# benchmarks need; sets BASE (removed at exit unless BENCH_KEEP=1).  Server
# shutdown is lib.sh's bench_cleanup (SIGTERM, SIGKILL after 10 s).
cluster_bench_init() {
    command -v "$ETCD_BIN" >/dev/null || die "$ETCD_BIN not found (apt-get install etcd-server)"
    "$PYTHON" -c 'import json, socket' || die "$PYTHON does not run"
    command -v curl >/dev/null || die "curl not found"
    BASE=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    BENCH_DIRS+=("$BASE")
    if [[ ${BENCH_KEEP:-0} == 1 ]]; then
        _forget BENCH_DIRS "$BASE"
        log "keeping $BASE"
    fi
}

# spawn LOG CMD...: start a server in the background -> SPAWNED (pid), tracked
# by lib.sh's cleanup.
spawn() {
    local logf=$1
    shift
    $SERVER_PIN "$@" >>"$logf" 2>&1 &
    SPAWNED=$!
    BENCH_PIDS+=("$SPAWNED")
}

# The load client SIGKILLs the primary.  prepare_kill PID disowns it first
# (bash would otherwise print a "Killed" job notice; it still reaps it), and
# reap PID makes sure it is gone and forgets it.
prepare_kill() { disown "$1" 2>/dev/null || true; }
reap() {
    local i
    for ((i = 0; i < 100; i++)); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$1" 2>/dev/null; then   # the client failed before the kill
        kill -KILL "$1" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do kill -0 "$1" 2>/dev/null || break; sleep 0.05; done
    fi
    _forget BENCH_PIDS "$1"
}

tail_log() { # tail_log FILE [N]: last lines to stderr, indented
    [[ -f $1 ]] && { echo "  --- $1 (tail)"; tail -n "${2:-15}" "$1" | sed 's/^/  | /'; } >&2
    return 0
}

# wait_ping PID PORT LOG WHAT: bounded wait for PING -> PONG (20 s).
wait_ping() {
    local i
    for ((i = 0; i < 400; i++)); do
        if ! kill -0 "$1" 2>/dev/null; then
            tail_log "$3"
            log "$4 (pid $1) exited during startup"
            return 1
        fi
        [[ $("$REDIS_CLI" -h 127.0.0.1 -p "$2" ping 2>/dev/null) == PONG ]] && return 0
        sleep 0.05
    done
    tail_log "$3"
    log "$4 did not answer PING on port $2 within 20 s"
    return 1
}

# ---- Redis (+ Sentinel) --------------------------------------------------------

declare -A RPID=()   # redis port -> pid
R_PORTS=() S_PORTS=()

redis_conf() { # redis_conf PORT [MASTERPORT]
    local d=$BASE/redis-$1
    mkdir -p "$d"
    {
        echo "port $1"
        echo "bind 127.0.0.1"
        echo "dir $d"
        echo "daemonize no"
        echo 'save ""'
        echo "appendonly yes"
        echo "appendfsync everysec"
        echo "replica-announce-ip 127.0.0.1"
        [[ -n ${2:-} ]] && echo "replicaof 127.0.0.1 $2"
    } >"$d/redis.conf"
}

# redis_start PORT: (re)start on its own config file (which Sentinel may have
# rewritten) and data dir.
redis_start() {
    local d=$BASE/redis-$1
    spawn "$d/redis.log" "$REDIS_SERVER" "$d/redis.conf"
    RPID[$1]=$SPAWNED
    wait_ping "$SPAWNED" "$1" "$d/redis.log" "redis-server :$1"
}

sentinel_start() { # sentinel_start PORT MASTERPORT
    local d=$BASE/sentinel-$1
    mkdir -p "$d"
    cat >"$d/sentinel.conf" <<EOF
port $1
bind 127.0.0.1
dir $d
daemonize no
sentinel announce-ip 127.0.0.1
sentinel monitor m 127.0.0.1 $2 2
sentinel down-after-milliseconds m 1000
sentinel failover-timeout m 3000
sentinel parallel-syncs m 1
EOF
    spawn "$d/sentinel.log" "$REDIS_SERVER" "$d/sentinel.conf" --sentinel
    wait_ping "$SPAWNED" "$1" "$d/sentinel.log" "sentinel :$1"
}

redis_logs() {
    local p
    for p in "${R_PORTS[@]}"; do tail_log "$BASE/redis-$p/redis.log" 8; done
    for p in "${S_PORTS[@]}"; do tail_log "$BASE/sentinel-$p/sentinel.log" 12; done
}

redis_up() { # redis_up [sentinels]
    local i p
    for i in 0 1 2; do free_port; R_PORTS+=("$REPLY"); done
    redis_conf "${R_PORTS[0]}"
    redis_conf "${R_PORTS[1]}" "${R_PORTS[0]}"
    redis_conf "${R_PORTS[2]}" "${R_PORTS[0]}"
    for p in "${R_PORTS[@]}"; do redis_start "$p" || return 1; done
    if [[ ${1:-} == sentinels ]]; then
        for i in 0 1 2; do free_port; S_PORTS+=("$REPLY"); done
        for p in "${S_PORTS[@]}"; do sentinel_start "$p" "${R_PORTS[0]}" || return 1; done
    fi
    log "redis: servers ${R_PORTS[*]} (primary ${R_PORTS[0]})${S_PORTS[*]:+, sentinels ${S_PORTS[*]}}"
    redis_health >/dev/null || return 1
}

# redis_health [synced]: prints the master's port; "synced" (no Sentinels):
# also wait until the replicas are at the master's replication offset.
redis_health() {
    local s r
    s=$(IFS=,; echo "${S_PORTS[*]}")
    r=$(IFS=,; echo "${R_PORTS[*]}")
    if ((${#S_PORTS[@]})); then
        "$PYTHON" "$CLIENT" redis-health --sentinels "$s" --timeout "$HEALTH_TIMEOUT"
    else
        "$PYTHON" "$CLIENT" redis-replicas --servers "$r" --timeout "$HEALTH_TIMEOUT" \
            ${1:+--synced}
    fi || {
        redis_logs
        return 1
    }
}

# ---- cairn ---------------------------------------------------------------------

declare -A CPID=()   # node port -> pid
C_PORTS=() ETCD_PORT="" MGR_PORT=""

cairn_logs() {
    local p
    tail_log "$BASE/manager.log" 20
    for p in "${C_PORTS[@]}"; do tail_log "$BASE/node-$p.log" 15; done
}

node_start() { # node_start PORT ZONE: (re)start on its own port and data dir
    mkdir -p "$BASE/node-$1"
    spawn "$BASE/node-$1.log" "$CAIRN_BIN" node --bind 127.0.0.1 --port "$1" \
        --dir "$BASE/node-$1" --fsync "$CAIRN_FSYNC" --manager "127.0.0.1:$MGR_PORT" \
        --repl-lease-ms "$LEASE_MS" --repl-grace-ms "$GRACE_MS" --zone "$2"
    CPID[$1]=$SPAWNED
    wait_ping "$SPAWNED" "$1" "$BASE/node-$1.log" "cairn node :$1"
}

zone_of() { local i; for i in 0 1 2; do [[ ${C_PORTS[$i]} == "$1" ]] && echo "z$((i + 1))"; done; }

cairn_up() {
    local peer i p out etcd_pid
    free_port; ETCD_PORT=$REPLY
    free_port; peer=$REPLY
    spawn "$BASE/etcd.log" "$ETCD_BIN" --name t --data-dir "$BASE/etcd" \
        --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
        --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
        --listen-peer-urls "http://127.0.0.1:$peer" \
        --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
        --initial-cluster "t=http://127.0.0.1:$peer"
    etcd_pid=$SPAWNED
    for ((i = 0; i < 200; i++)); do
        curl -fsS -m 1 "http://127.0.0.1:$ETCD_PORT/health" 2>/dev/null | grep -q '"health":"true"' && break
        kill -0 "$etcd_pid" 2>/dev/null || { tail_log "$BASE/etcd.log"; log "etcd exited"; return 1; }
        sleep 0.1
    done
    ((i < 200)) || { tail_log "$BASE/etcd.log"; log "etcd not healthy within 20 s"; return 1; }

    free_port; MGR_PORT=$REPLY
    spawn "$BASE/manager.log" "$CAIRN_BIN" manager --etcd "http://127.0.0.1:$ETCD_PORT" \
        --cluster "bench$$" --port "$MGR_PORT" --bind 127.0.0.1 --id m1 --dir "$BASE/manager"
    wait_ping "$SPAWNED" "$MGR_PORT" "$BASE/manager.log" "cairn manager" || return 1

    for i in 1 2 3; do
        free_port; p=$REPLY
        C_PORTS+=("$p")
        node_start "$p" "z$i" || return 1
    done
    log "cairn: etcd :$ETCD_PORT, manager :$MGR_PORT, nodes ${C_PORTS[*]}" \
        "(--fsync $CAIRN_FSYNC, lease $LEASE_MS ms, grace $GRACE_MS ms)"
    # The nodes register asynchronously: retry shard create for up to 20 s.
    for ((i = 0; i < 100; i++)); do
        if out=$("$CAIRN_BIN" ctl --manager "127.0.0.1:$MGR_PORT" shard create --replicas 3 2>&1); then
            break
        fi
        sleep 0.2
    done
    if ((i == 100)); then
        log "cairn ctl shard create --replicas 3 kept failing; last output:"
        printf '  | %s\n' "$out" >&2
        "$CAIRN_BIN" ctl --manager "127.0.0.1:$MGR_PORT" status 2>&1 | sed 's/^/  | /' >&2 || true
        cairn_logs
        return 1
    fi
    log "cairn: $(echo "$out" | head -n 1)"
    cairn_health >/dev/null || return 1
}

cairn_health() { # prints the primary's port
    local n
    n=$(IFS=,; echo "${C_PORTS[*]}")
    "$PYTHON" "$CLIENT" cairn-health --nodes "$n" --manager "$MGR_PORT" \
        --timeout "$HEALTH_TIMEOUT" || {
        "$CAIRN_BIN" ctl --manager "127.0.0.1:$MGR_PORT" status 2>&1 | sed 's/^/  | /' >&2 || true
        cairn_logs
        return 1
    }
}
