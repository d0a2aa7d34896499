#!/usr/bin/env bash
# bench/replication.sh — write throughput of a replicated cairn shard against a
# replicated Redis, same machine, same client, same run.
#
# cairn:  etcd (1 member) + 1 `cairn manager` + 3 `cairn node`s (--fsync
#         everysec), one shard with 3 replicas; redis-benchmark talks to the
#         primary.  A write is acknowledged once every replica has appended
#         it (synchronous replication, DESIGN.md invariant 2).
# redis:  1 primary + 2 replicas (appendonly yes, appendfsync everysec); the
#         primary acknowledges before its replicas have the write
#         (asynchronous replication).
#
# redis-benchmark -P 16 -c 50 -t set -r 1000000 (one client thread).  A pilot
# on each primary (warm-up, not counted) sizes -n so a run lasts about
# BENCH_SECS on the geometric mean of the two rates; then both get the same
# -n, alternately cairn, redis, ... BENCH_ROUNDS times; the median is shown.
# After every run the group is waited on (bounded) until its replicas are at
# the primary's position, so each run starts from a quiescent group and every
# write of the run did reach the replicas.
#
# Environment:
#   BENCH_QUICK=1      smoke run: one round of ~1 s
#   BENCH_SECS=S       target seconds per run (default 3; quick 1)
#   BENCH_ROUNDS=N     alternating rounds (default 3; quick 1)
#   BENCH_PIPELINE=P   pipeline depth (default 16)
#   BENCH_KEEP=1       keep the temp dir (logs) instead of removing it
#   BENCH_PIN=1        servers on CPU 1, redis-benchmark on CPU 0
#   CAIRN_BIN, REDIS_SERVER, REDIS_BENCHMARK, REDIS_CLI, ETCD_BIN, PYTHON
#
# Progress goes to stderr, the results to stdout.
set -euo pipefail
# redis_health / redis_up take optional arguments, not the script's.
# shellcheck disable=SC2119
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

QUICK=${BENCH_QUICK:-0}
if [[ $QUICK == 1 ]]; then
    SECS=${BENCH_SECS:-1} ROUNDS=${BENCH_ROUNDS:-1} PILOT_N=50000
else
    SECS=${BENCH_SECS:-3} ROUNDS=${BENCH_ROUNDS:-3} PILOT_N=200000
fi
PIPE=${BENCH_PIPELINE:-16}
CLIENTS=50
KEYSPACE=1000000
N_MIN=20000 N_MAX=20000000
RUN_TIMEOUT=120          # s; a redis-benchmark run that takes longer counts as failed
HEALTH_TIMEOUT=60        # s, per wait for a healthy / caught-up group
GOAL=0.8
ETCD_BIN=${ETCD_BIN:-etcd}
PYTHON=${PYTHON:-/usr/bin/python3}   # Debian's, the one that sees python3-redis
CLIENT="$BENCH_ROOT/bench/failover_client.py"
CAIRN_FSYNC=everysec LEASE_MS=400 GRACE_MS=800

bench_init

now() { date +%s.%N; }
T_START=$(now)
# shellcheck source=bench/cluster_lib.sh
source "$BENCH_ROOT/bench/cluster_lib.sh"
cluster_bench_init replication-bench

# bench_run PORT N -> prints rps, or ERR (details to stderr).  Any output on
# redis-benchmark's stderr (e.g. "Error from server: ...") fails the run.
bench_run() {
    local port=$1 n=$2 out err rc=0 rps
    out=$BASE/bench.out err=$BASE/bench.err
    $CLIENT_PIN timeout "$RUN_TIMEOUT" "$REDIS_BENCHMARK" -h 127.0.0.1 -p "$port" -c "$CLIENTS" \
        -n "$n" -r "$KEYSPACE" -P "$PIPE" -t set --csv >"$out" 2>"$err" || rc=$?
    rps=$(awk -F'"' 'NR > 1 && $2 != "test" { print $4; exit }' "$out")
    if ((rc != 0)) || [[ -z $rps ]] || [[ -s $err ]]; then
        {
            echo "  redis-benchmark -p $port -P $PIPE -n $n: exit $rc"
            sed 's/^/    /' "$err" | head -n 5
        } >&2
        rps=ERR
    fi
    echo "$rps"
}

# timed_run NAME PORT N -> appends "rps secs" to RUN_OUT
timed_run() {
    local t0 v
    t0=$(now)
    v=$(bench_run "$2" "$3")
    RUN_OUT="$v $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')"
}

# cpu_ticks PID...: utime + stime of the processes, in clock ticks.
HZ=$(getconf CLK_TCK)
cpu_ticks() {
    local p sum=0 t
    for p in "$@"; do
        t=$(awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null) || t=0
        sum=$((sum + ${t:-0}))
    done
    echo "$sum"
}
# us_per_op TICKS N: server CPU microseconds per SET
us_per_op() { awk -v t="$1" -v hz="$HZ" -v n="$2" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }'; }

QUICK_TAG=""
[[ $QUICK == 1 ]] && QUICK_TAG=" (BENCH_QUICK)"
{
    echo "replication: cairn shard (3 replicas, --fsync everysec) vs redis-server primary" \
        "+ 2 async replicas (appendonly yes, appendfsync everysec)"
    echo "  cairn: $("$CAIRN_BIN" version 2>/dev/null)" \
        "($(git -C "$BENCH_ROOT" rev-parse --short HEAD 2>/dev/null || echo no-git)$(
            git -C "$BENCH_ROOT" diff --quiet HEAD -- src 2>/dev/null || echo ' +local changes'))," \
        "redis: $("$REDIS_SERVER" --version | awk '{ print $3 }'), etcd: $("$ETCD_BIN" --version | awk 'NR == 1 { print $3 }')"
    echo "  redis-benchmark -t set -P $PIPE -c $CLIENTS -r $KEYSPACE (1 client thread)," \
        "$ROUNDS round(s) of ~${SECS}s each, median shown$QUICK_TAG; $(nproc) cores," \
        "${SERVER_PIN:+pinned: servers on CPU 1, client on CPU 0; }load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >&2

redis_up || die "the Redis group did not come up"
cairn_up || die "the cairn shard did not come up (see the logs above)"
R_MASTER=$(redis_health synced) || die "Redis group not healthy"
C_PRIMARY=$(cairn_health) || die "cairn shard not healthy"
log "cairn primary :$C_PRIMARY, redis primary :$R_MASTER"

# Pilot: warm-up and sizing, not counted.
pc=$(bench_run "$C_PRIMARY" "$PILOT_N")
pr=$(bench_run "$R_MASTER" "$PILOT_N")
log "pilot (-n $PILOT_N): cairn $pc rps, redis $pr rps"
[[ $pc == ERR ]] && pc=$pr
[[ $pr == ERR ]] && pr=$pc
[[ $pc == ERR ]] && pc=100000 pr=100000
N=$(awk -v a="$pc" -v b="$pr" -v s="$SECS" -v lo="$N_MIN" -v hi="$N_MAX" \
    'BEGIN { n = s * sqrt(a * b); n = int(n / 1000 + 0.5) * 1000;
             if (n < lo) n = lo; if (n > hi) n = hi; print n }')
C_PRIMARY=$(cairn_health) || die "cairn shard not healthy after the pilot"
R_MASTER=$(redis_health synced) || die "Redis replicas did not catch up after the pilot"

# Server CPU per SET, from /proc/PID/stat before the run and after the
# replicas have caught up: the primary's, and the whole group's (the data
# processes only: not etcd, the manager or redis-benchmark).  Less sensitive
# to other load on the machine than the rates are.
CV=() RV=() ROWS=() CPC=() CGC=() CPR=() CGR=()
for ((r = 1; r <= ROUNDS; r++)); do
    pp=${CPID[$C_PRIMARY]}
    t0p=$(cpu_ticks "$pp") t0g=$(cpu_ticks "${CPID[@]}")
    timed_run cairn "$C_PRIMARY" "$N"
    read -r cv cs <<<"$RUN_OUT"
    if ! C_PRIMARY=$(cairn_health); then
        die "cairn shard not healthy / replicas not caught up after round $r"
    fi
    cpc=$(us_per_op $(($(cpu_ticks "$pp") - t0p)) "$N")
    cgc=$(us_per_op $(($(cpu_ticks "${CPID[@]}") - t0g)) "$N")
    pp=${RPID[$R_MASTER]}
    t0p=$(cpu_ticks "$pp") t0g=$(cpu_ticks "${RPID[@]}")
    timed_run redis "$R_MASTER" "$N"
    read -r rv rs <<<"$RUN_OUT"
    R_MASTER=$(redis_health synced) || die "Redis replicas did not catch up after round $r"
    cpr=$(us_per_op $(($(cpu_ticks "$pp") - t0p)) "$N")
    cgr=$(us_per_op $(($(cpu_ticks "${RPID[@]}") - t0g)) "$N")
    log "round $r (-n $N): cairn $cv rps (${cs}s, CPU us/SET primary $cpc, group $cgc)," \
        "redis $rv rps (${rs}s, CPU us/SET primary $cpr, group $cgr)"
    CV+=("$cv") RV+=("$rv") CPC+=("$cpc") CGC+=("$cgc") CPR+=("$cpr") CGR+=("$cgr")
    ROWS+=("$r $cv $cs $cpc $cgc $rv $rs $cpr $cgr")
done

summ() { # summ VALUE...: median, or ERR if any run failed
    local x
    for x in "$@"; do [[ $x == ERR ]] && { echo ERR; return; }; done
    median "$@"
}
CM=$(summ "${CV[@]}")
RM=$(summ "${RV[@]}")
RATIO=$(awk -v c="$CM" -v r="$RM" 'BEGIN {
    if (c ~ /^[0-9.]+$/ && r ~ /^[0-9.]+$/ && r > 0) printf "%.2f", c / r; else print "-" }')

echo
echo "SET throughput, redis-benchmark -P $PIPE -c $CLIENTS -r $KEYSPACE -n $N$QUICK_TAG"
echo "(CPU: server CPU microseconds per SET, primary / all 3 data processes)"
printf '%-6s %12s %5s %14s   %12s %5s %14s\n' round "cairn rps" secs "cairn CPU" \
    "redis rps" secs "redis CPU"
for row in "${ROWS[@]}"; do
    read -r r cv cs cpc cgc rv rs cpr cgr <<<"$row"
    printf '%-6s %12s %5s %14s   %12s %5s %14s\n' "$r" "$cv" "$cs" "$cpc / $cgc" \
        "$rv" "$rs" "$cpr / $cgr"
done
printf '%-6s %12s %5s %14s   %12s %5s %14s\n' median "$CM" "" \
    "$(median "${CPC[@]}") / $(median "${CGC[@]}")" "$RM" "" \
    "$(median "${CPR[@]}") / $(median "${CGR[@]}")"
for sysname in cairn redis; do
    if [[ $sysname == cairn ]]; then vals=("${CV[@]}"); else vals=("${RV[@]}"); fi
    ((${#vals[@]} > 1)) || continue
    [[ " ${vals[*]} " == *" ERR "* ]] && continue
    if printf '%s\n' "${vals[@]}" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 }
            END { exit !(hi > 1.2 * lo) }'; then
        echo "note: $sysname rounds spread >20% (a busy machine? load average now" \
            "$(cut -d' ' -f1-3 /proc/loadavg))"
    fi
done
echo
echo "cairn: 3 replicas, synchronous (acknowledged once all 3 have appended), --fsync everysec"
echo "redis: primary + 2 replicas, asynchronous, appendonly yes appendfsync everysec"
echo "ratio cairn/redis (median): $RATIO"
if [[ $RATIO == - ]]; then
    echo "goal cairn/redis >= $GOAL: [n/a ] (a run failed)"
elif awk -v x="$RATIO" -v g="$GOAL" 'BEGIN { exit !(x >= g) }'; then
    echo "goal cairn/redis >= $GOAL: [PASS]"
else
    echo "goal cairn/redis >= $GOAL: [FAIL]"
fi
awk -v a="$T_START" -v b="$(now)" -v l="$(cut -d' ' -f1-3 /proc/loadavg)" \
    'BEGIN { printf "\ntotal time %.0f s, load average at end: %s\n", b - a, l }'
[[ $RATIO != - ]]
