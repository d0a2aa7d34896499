#!/usr/bin/env bash
# bench/failover.sh — failover of a cairn shard against Redis + Sentinel, same
# machine, same client, same run.
#
# cairn:  etcd (1 member) + 1 `cairn manager` + 3 `cairn node`s
#         (--fsync everysec, --repl-lease-ms 400 --repl-grace-ms 800), one
#         shard with 3 replicas (`cairn ctl shard create --replicas 3`).
# redis:  1 primary + 2 replicas (appendonly yes, appendfsync everysec,
#         replica-announce-ip 127.0.0.1) + 3 Sentinels (`sentinel monitor m
#         127.0.0.1 P 2`, down-after-milliseconds 1000, failover-timeout
#         3000, parallel-syncs 1).  Same durability class as cairn: both
#         acknowledge a write before it is fsynced, and fsync once a second.
#
# Each run (alternately cairn, redis; BENCH_RUNS of each):
#   1. wait until the group is healthy (3 members, replicas in sync,
#      Sentinels agree) and find its primary;
#   2. bench/failover_client.py load: 4 threads of SET <run-prefix>:<t>:<n>
#      v<n>; after BENCH_PRE s it sends SIGKILL to the primary's pid, keeps
#      writing until another server has acknowledged writes for BENCH_POST s,
#      then reads every acknowledged key back from the current primary;
#      the cairn client follows -NOTPRIMARY redirects and retries -TRYAGAIN
#      after 5 ms; the Redis client asks the Sentinels for the master after
#      every error (5 ms sleeps);
#   3. restart the killed process on its own port and data dir (the cairn
#      node rejoins through the manager; Sentinel turns the old Redis master
#      into a replica), and wait until healthy again.
#   gap  = the longest time without an acknowledged write, from 1 s before
#          the kill on (all client threads merged);
#   lost = acknowledged keys missing (or different) on the current primary.
# Redis: Sentinel will not fail the same master over again within
# 2 x failover-timeout of the previous attempt, so Redis kills are spaced at
# least REDIS_KILL_SPACING s apart.
#
# Environment:
#   BENCH_QUICK=1       smoke run: 1 run of each, 1 s before / after the kill
#   BENCH_RUNS=N        runs per system (default 5; quick 1)
#   BENCH_PRE=S         seconds of load before the kill (default 2; quick 1)
#   BENCH_POST=S        seconds of acknowledged writes after recovery (2; quick 1)
#   BENCH_THREADS=N     client threads (default 4)
#   BENCH_SYSTEMS       "cairn,redis" (default), or one of them
#   BENCH_KEEP=1        keep the temp dir (logs) instead of removing it
#   CAIRN_BIN, REDIS_SERVER, REDIS_CLI, ETCD_BIN, PYTHON   override binaries
#
# Progress goes to stderr, the results to stdout.
set -euo pipefail
# redis_health / redis_up take optional arguments, not the script's.
# shellcheck disable=SC2119
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

QUICK=${BENCH_QUICK:-0}
if [[ $QUICK == 1 ]]; then
    RUNS=${BENCH_RUNS:-1} PRE=${BENCH_PRE:-1} POST=${BENCH_POST:-1}
else
    RUNS=${BENCH_RUNS:-5} PRE=${BENCH_PRE:-2} POST=${BENCH_POST:-2}
fi
THREADS=${BENCH_THREADS:-4}
SYSTEMS=${BENCH_SYSTEMS:-cairn,redis}
ETCD_BIN=${ETCD_BIN:-etcd}
PYTHON=${PYTHON:-/usr/bin/python3}   # Debian's, the one that sees python3-redis
CLIENT="$BENCH_ROOT/bench/failover_client.py"
LEASE_MS=400 GRACE_MS=800 CAIRN_FSYNC=everysec
REDIS_KILL_SPACING=8     # > 2 x failover-timeout (3 s) + Sentinel's 1 s desync
HEALTH_TIMEOUT=60        # s, per wait for a healthy group
MAX_AFTER=30             # s of load after the kill at most (writes never resume)

bench_init

now() { date +%s.%N; }
T_START=$(now)
# shellcheck source=bench/cluster_lib.sh
source "$BENCH_ROOT/bench/cluster_lib.sh"
cluster_bench_init failover-bench
RESULTS=$BASE/results.jsonl
: >"$RESULTS"

# ---- Redis + Sentinel ----------------------------------------------------------

LAST_REDIS_KILL=0
redis_run() { # redis_run N
    local run=$1 master pid s wait_s out
    wait_s=$(awk -v l="$LAST_REDIS_KILL" -v n="$(now)" -v g="$REDIS_KILL_SPACING" \
        'BEGIN { w = l + g - n; print (w > 0 ? w : 0) }')
    [[ $wait_s != 0 ]] && sleep "$wait_s"
    master=$(redis_health) || return 1
    pid=${RPID[$master]}
    s=$(IFS=,; echo "${S_PORTS[*]}")
    log "redis run $run: load, SIGKILL master :$master (pid $pid) after ${PRE}s"
    prepare_kill "$pid"
    LAST_REDIS_KILL=$(awk -v n="$(now)" -v p="$PRE" 'BEGIN { printf "%.3f", n + p }')
    out=$($CLIENT_PIN "$PYTHON" "$CLIENT" load --system redis --sentinels "$s" \
        --threads "$THREADS" --prefix "redis$run" --run "$run" --pre "$PRE" --post "$POST" \
        --max-after "$MAX_AFTER" --kill-pid "$pid" --kill-port "$master") || {
        log "redis run $run: the load client failed"
        reap "$pid"
        return 1
    }
    echo "$out" >>"$RESULTS"
    log "  $out"
    reap "$pid"
    redis_start "$master" || return 1
    log "redis run $run: restarted :$master, waiting for 3 healthy members"
    redis_health >/dev/null
}

# ---- cairn ---------------------------------------------------------------------

cairn_run() { # cairn_run N
    local run=$1 prim pid n out
    prim=$(cairn_health) || return 1
    pid=${CPID[$prim]}
    n=$(IFS=,; echo "${C_PORTS[*]}")
    log "cairn run $run: load, SIGKILL primary :$prim (pid $pid) after ${PRE}s"
    prepare_kill "$pid"
    out=$($CLIENT_PIN "$PYTHON" "$CLIENT" load --system cairn --nodes "$n" \
        --threads "$THREADS" --prefix "cairn$run" --run "$run" --pre "$PRE" --post "$POST" \
        --max-after "$MAX_AFTER" --kill-pid "$pid" --kill-port "$prim") || {
        log "cairn run $run: the load client failed"
        reap "$pid"
        cairn_logs
        return 1
    }
    echo "$out" >>"$RESULTS"
    log "  $out"
    reap "$pid"
    node_start "$prim" "$(zone_of "$prim")" || return 1
    log "cairn run $run: restarted :$prim, waiting for 3 healthy members"
    cairn_health >/dev/null
}

# ---- main ----------------------------------------------------------------------

QUICK_TAG=""
[[ $QUICK == 1 ]] && QUICK_TAG=" (BENCH_QUICK)"
{
    echo "failover: cairn shard (3 replicas, --fsync everysec, lease ${LEASE_MS} ms, grace ${GRACE_MS} ms)" \
        "vs redis-server + 3 Sentinels (appendonly yes, appendfsync everysec)"
    echo "  cairn: $("$CAIRN_BIN" version 2>/dev/null)" \
        "($(git -C "$BENCH_ROOT" rev-parse --short HEAD 2>/dev/null || echo no-git)$(
            git -C "$BENCH_ROOT" diff --quiet HEAD -- src 2>/dev/null || echo ' +local changes'))," \
        "redis: $("$REDIS_SERVER" --version | awk '{ print $3 }'), etcd: $("$ETCD_BIN" --version | awk 'NR == 1 { print $3 }')"
    echo "  $RUNS run(s) each, $THREADS client threads, kill -9 after ${PRE}s," \
        "${POST}s of writes after recovery$QUICK_TAG; $(nproc) cores," \
        "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >&2

DO_CAIRN=0 DO_REDIS=0
[[ ,$SYSTEMS, == *,cairn,* ]] && DO_CAIRN=1
[[ ,$SYSTEMS, == *,redis,* ]] && DO_REDIS=1
CAIRN_STATE="not run" REDIS_STATE="not run"
if ((DO_REDIS)); then
    if redis_up sentinels; then REDIS_STATE=ok; else REDIS_STATE="setup failed"; DO_REDIS=0; fi
fi
if ((DO_CAIRN)); then
    if cairn_up; then CAIRN_STATE=ok; else CAIRN_STATE="setup failed"; DO_CAIRN=0; fi
fi

for ((run = 1; run <= RUNS; run++)); do
    if ((DO_CAIRN)); then
        cairn_run "$run" || { CAIRN_STATE="failed in run $run"; DO_CAIRN=0; }
    fi
    if ((DO_REDIS)); then
        redis_run "$run" || { REDIS_STATE="failed in run $run"; DO_REDIS=0; }
    fi
done

echo
echo "failover under write load: $RUNS kill -9 of the primary per system$QUICK_TAG"
echo "  cairn: $CAIRN_STATE; redis+sentinel: $REDIS_STATE"
"$PYTHON" "$CLIENT" report "$RESULTS"
awk -v a="$T_START" -v b="$(now)" -v l="$(cut -d' ' -f1-3 /proc/loadavg)" \
    'BEGIN { printf "\ntotal time %.0f s, load average at end: %s\n", b - a, l }'
[[ $CAIRN_STATE == ok || $CAIRN_STATE == "not run" ]] && [[ $REDIS_STATE == ok || $REDIS_STATE == "not run" ]]
