#!/usr/bin/env bash
# bench/node_vs_redis.sh — `cairn node` against redis-server, same machine,
# same client, same run.
#
# Throughput: redis-benchmark -c 50 -r 1000000 for SET GET INCR MSET HSET at
# -P 1 and -P 16, at three durability levels, each with a fresh pair of
# servers in their own temp dirs:
#
#   no        cairn --fsync no        redis appendonly no,  save ""
#   everysec  cairn --fsync everysec  redis appendonly yes, appendfsync everysec
#   always    cairn --fsync always    redis appendonly yes, appendfsync always
#
# (cairn --fsync no still appends to its WAL, it just never fsyncs; redis at
# "no" writes nothing at all, so that row is cairn-with-a-log vs redis-without.)
#
# For each (test, pipeline) a short pilot on both servers (warm-up, not
# counted) sizes -n so the run lasts about BENCH_SECS on the geometric mean of
# the two rates; both servers then get the same -n, alternately
# cairn, redis, cairn, redis ... BENCH_ROUNDS times, and the table shows the
# median of the rounds.  redis-benchmark runs single-threaded (its default)
# against both; on 2 cores it competes with the server for CPU either way.
#
# Memory: key:0000000 .. key:0999999 with 16-byte values, loaded with
# redis-cli --pipe into a fresh cairn (--fsync no) and a fresh redis (no
# persistence); bytes per key from the VmRSS delta and the INFO used_memory
# delta.
#
# Environment:
#   BENCH_QUICK=1     smoke test: fsync no only, SET/GET at -P 1/-P 16, one
#                     short round, 100k keys for the memory part
#   BENCH_SECS=S      target seconds per run (default 2; quick 0.3)
#   BENCH_ROUNDS=N    alternating rounds per (test, pipeline) (default 3)
#   BENCH_MEM_KEYS=N  keys for the memory part (default 1000000)
#   BENCH_LEVELS, BENCH_TESTS, BENCH_PIPELINES   subsets, e.g. BENCH_LEVELS=always
#                     BENCH_TESTS=set,incr BENCH_PIPELINES=1 (for chasing one row)
#   BENCH_NO_MEMORY=1 skip the memory part
#   BENCH_PIN=1       pin the servers to CPU 1 and redis-benchmark to CPU 0
#                     (default: unpinned, the scheduler decides)
#   CAIRN_BIN, REDIS_SERVER, REDIS_BENCHMARK, REDIS_CLI   override binaries
#
# Progress goes to stderr, the tables to stdout.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

QUICK=${BENCH_QUICK:-0}
CLIENTS=50
KEYSPACE=1000000
if [[ $QUICK == 1 ]]; then
    SECS=${BENCH_SECS:-0.3}
    ROUNDS=${BENCH_ROUNDS:-1}
    MEM_KEYS=${BENCH_MEM_KEYS:-100000}
    LEVELS=(no)
    TESTS=(set get)
    PILOT_N=2000          # per pipeline depth unit
    N_MIN=2000
else
    SECS=${BENCH_SECS:-2}
    ROUNDS=${BENCH_ROUNDS:-3}
    MEM_KEYS=${BENCH_MEM_KEYS:-1000000}
    LEVELS=(no everysec always)
    TESTS=(set get incr mset hset)
    PILOT_N=20000
    N_MIN=20000
fi
PIPELINES=(1 16)
[[ -n ${BENCH_LEVELS:-} ]] && read -r -a LEVELS <<<"${BENCH_LEVELS//,/ }"
[[ -n ${BENCH_TESTS:-} ]] && read -r -a TESTS <<<"${BENCH_TESTS//,/ }"
[[ -n ${BENCH_PIPELINES:-} ]] && read -r -a PIPELINES <<<"${BENCH_PIPELINES//,/ }"
N_MAX=20000000
RUN_TIMEOUT=300           # seconds; a run that takes longer counts as failed

bench_init

now() { date +%s.%N; }

# bench_run PORT TEST PIPELINE N -> prints rps, or ERR (details to stderr).
bench_run() {
    local port=$1 test=$2 pipe=$3 n=$4 out err rc=0 rps
    out=$(mktemp "${TMPDIR:-/tmp}/bench-out.XXXXXX")
    err=$(mktemp "${TMPDIR:-/tmp}/bench-err.XXXXXX")
    $CLIENT_PIN timeout "$RUN_TIMEOUT" "$REDIS_BENCHMARK" -h 127.0.0.1 -p "$port" -c "$CLIENTS" \
        -n "$n" -r "$KEYSPACE" -P "$pipe" -t "$test" --csv >"$out" 2>"$err" || rc=$?
    rps=$(awk -F'"' 'NR > 1 && $2 != "test" { print $4; exit }' "$out")
    if ((rc != 0)) || [[ -z $rps ]] || [[ -s $err ]]; then
        {
            echo "  redis-benchmark -p $port -t $test -P $pipe -n $n: exit $rc"
            sed 's/^/    /' "$err" | head -n 5
        } >&2
        rps=ERR
    fi
    rm -f -- "$out" "$err"
    echo "$rps"
}

ROWS=()    # level \t test \t pipeline \t cairn rps \t redis rps \t note

run_level() {
    local level=$1 cfsync=$2 raof=$3 rfsync=$4
    local c_pid c_port c_dir r_pid r_port r_dir c_alive=1 r_alive=1
    start_cairn "$cfsync"
    c_pid=$SRV_PID c_port=$SRV_PORT c_dir=$SRV_DIR
    start_redis "$raof" "$rfsync"
    r_pid=$SRV_PID r_port=$SRV_PORT r_dir=$SRV_DIR
    log "durability $level: cairn pid $c_pid port $c_port (--fsync $cfsync)," \
        "redis pid $r_pid port $r_port (appendonly $raof appendfsync $rfsync)"

    local test pipe pc pr n r v cvals rvals note t0 dc dr
    for test in "${TESTS[@]}"; do
        for pipe in "${PIPELINES[@]}"; do
            note=""
            # Pilot: warm-up and sizing, not counted (~0.2 s at either depth).
            pc=ERR pr=ERR n=$((pipe > 1 ? PILOT_N * 5 : PILOT_N))
            ((c_alive)) && pc=$(bench_run "$c_port" "$test" "$pipe" "$n")
            ((r_alive)) && pr=$(bench_run "$r_port" "$test" "$pipe" "$n")
            [[ $pc == ERR ]] && pc=$pr
            [[ $pr == ERR ]] && pr=$pc
            [[ $pc == ERR ]] && pc=10000 pr=10000
            n=$(awk -v a="$pc" -v b="$pr" -v s="$SECS" -v lo="$N_MIN" -v hi="$N_MAX" \
                'BEGIN { n = s * sqrt(a * b); n = int(n / 1000 + 0.5) * 1000;
                         if (n < lo) n = lo; if (n > hi) n = hi; print n }')
            cvals=() rvals=()
            for ((r = 1; r <= ROUNDS; r++)); do
                if ((c_alive)); then
                    t0=$(now)
                    v=$(bench_run "$c_port" "$test" "$pipe" "$n")
                    dc=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
                    cvals+=("$v")
                    if ! kill -0 "$c_pid" 2>/dev/null; then
                        log "cairn (pid $c_pid) DIED during $test -P $pipe; log tail:"
                        tail -n 20 "$c_dir/server.log" >&2
                        c_alive=0
                    fi
                fi
                if ((r_alive)); then
                    t0=$(now)
                    v=$(bench_run "$r_port" "$test" "$pipe" "$n")
                    dr=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
                    rvals+=("$v")
                    if ! kill -0 "$r_pid" 2>/dev/null; then
                        log "redis (pid $r_pid) DIED during $test -P $pipe; log tail:"
                        tail -n 20 "$r_dir/server.log" >&2
                        r_alive=0
                    fi
                fi
            done
            log "  $level $test -P $pipe -n $n: cairn ${cvals[*]:-dead} (${dc:-?}s)" \
                "| redis ${rvals[*]:-dead} (${dr:-?}s)"
            note=$(spread_note cairn "${cvals[@]}")
            v=$(spread_note redis "${rvals[@]}")
            note+="${note:+${v:+, }}$v"
            ROWS+=("$(printf '%s\t%s\t%s\t%s\t%s\t%s' "$level" "$test" "$pipe" \
                "$(summarize cvals)" "$(summarize rvals)" "$note")")
        done
    done
    stop_server "$c_pid" "$c_dir"
    stop_server "$r_pid" "$r_dir"
}

# summarize ARRAYNAME: median of the numeric values; ERR if any run failed.
summarize() {
    local -n _v=$1
    local x nums=()
    ((${#_v[@]})) || { echo DEAD; return; }
    for x in "${_v[@]}"; do
        [[ $x == ERR ]] && { echo ERR; return; }
        nums+=("$x")
    done
    median "${nums[@]}"
}

# spread_note NAME VALUE...: "NAME rounds spread >20%" if the rounds disagree.
spread_note() {
    local name=$1
    shift
    (($# > 1)) || return 0
    [[ " $* " == *" ERR "* ]] && return 0
    if printf '%s\n' "$@" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 }
            END { exit !(hi > 1.2 * lo) }'; then
        echo "$name rounds spread >20%"
    fi
}

print_table() {
    printf '\n'
    printf '%-9s %-5s %4s %13s %13s %12s  %s\n' durability test pipe "cairn rps" "redis rps" \
        "cairn/redis" notes
    printf '%-9s %-5s %4s %13s %13s %12s  %s\n' --------- ----- ---- ------------- \
        ------------- ------------ -----
    local row level test pipe c r note ratio
    for row in "${ROWS[@]}"; do
        IFS=$'\t' read -r level test pipe c r note <<<"$row"
        ratio=$(awk -v c="$c" -v r="$r" 'BEGIN {
            if (c ~ /^[0-9.]+$/ && r ~ /^[0-9.]+$/ && r > 0) printf "%.2f", c / r; else print "-" }')
        if [[ $ratio != - ]] && awk -v x="$ratio" 'BEGIN { exit !(x < 0.5) }'; then
            note+="${note:+, }cairn < 0.5x redis"
        fi
        [[ $c == ERR || $c == DEAD ]] && note+="${note:+, }cairn $c"
        [[ $r == ERR || $r == DEAD ]] && note+="${note:+, }redis $r"
        printf '%-9s %-5s %4s %13s %13s %12s  %s\n' "$level" "$test" "$pipe" "$c" "$r" "$ratio" "$note"
    done
}

# ---- memory --------------------------------------------------------------

MEM_ROWS=()   # server \t rss bytes/key \t used_memory bytes/key

gen_load_file() { # gen_load_file FILE N: RESP SETs of key:%07d -> val:%012d
    awk -v n="$2" 'BEGIN {
        for (i = 0; i < n; i++) {
            k = sprintf("key:%07d", i); v = sprintf("val:%012d", i)
            printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, length(v), v
        } }' >"$1"
}

mem_one() { # mem_one NAME FILE ; server already started (SRV_*)
    local name=$1 file=$2 pid=$SRV_PID port=$SRV_PORT dir=$SRV_DIR
    local rss0 rss1 used0 used1 out dbsize probe
    sleep 0.5
    rss0=$(rss_kb "$pid") used0=$(info_field "$port" used_memory)
    out=$("$REDIS_CLI" -h 127.0.0.1 -p "$port" --pipe <"$file" 2>&1 | tr -d '\r')
    if ! grep -q "errors: 0, replies: $MEM_KEYS" <<<"$out"; then
        log "$name: redis-cli --pipe did not report a clean load:"
        echo "$out" | tail -n 5 >&2
    fi
    dbsize=$("$REDIS_CLI" -h 127.0.0.1 -p "$port" dbsize)
    probe=$("$REDIS_CLI" -h 127.0.0.1 -p "$port" get "key:$(printf %07d $((MEM_KEYS - 1)))")
    [[ $dbsize == "$MEM_KEYS" ]] || log "$name: DBSIZE $dbsize after loading $MEM_KEYS keys"
    [[ $probe == "val:$(printf %012d $((MEM_KEYS - 1)))" ]] || log "$name: last key reads back '$probe'"
    sleep 1
    rss1=$(rss_kb "$pid") used1=$(info_field "$port" used_memory)
    log "$name: VmRSS ${rss0} kB -> ${rss1} kB, used_memory $used0 -> $used1, dbsize $dbsize"
    MEM_ROWS+=("$(awk -v n="$MEM_KEYS" -v name="$name" -v r0="$rss0" -v r1="$rss1" \
        -v u0="$used0" -v u1="$used1" 'BEGIN {
        printf "%s\t%.1f\t%.1f\t%.1f\t%.1f", name, (r1 - r0) * 1024 / n, (u1 - u0) / n,
            r1 / 1024, u1 / 1048576 }')")
    stop_server "$pid" "$dir"
}

run_memory() {
    local d file
    _new_dir load
    d=$SRV_DIR
    file=$d/load.resp
    log "memory: generating $MEM_KEYS SETs (key:%07d, 16-byte values)"
    gen_load_file "$file" "$MEM_KEYS"
    start_cairn no
    log "memory: cairn pid $SRV_PID port $SRV_PORT (--fsync no)"
    mem_one cairn "$file"
    start_redis no no
    log "memory: redis pid $SRV_PID port $SRV_PORT (no persistence)"
    mem_one redis "$file"
    rm -rf -- "$d"
    _forget BENCH_DIRS "$d"
}

print_memory() {
    printf '\nmemory, %d keys (key:%07d..key:%07d, 16-byte values):\n' "$MEM_KEYS" 0 $((MEM_KEYS - 1))
    printf '%-7s %16s %22s %13s %16s\n' server "RSS bytes/key" "used_memory bytes/key" \
        "RSS after MB" "used_memory MB"
    local row name rk uk rmb umb c_rk="" c_uk="" r_rk="" r_uk=""
    for row in "${MEM_ROWS[@]}"; do
        IFS=$'\t' read -r name rk uk rmb umb <<<"$row"
        printf '%-7s %16s %22s %13s %16s\n' "$name" "$rk" "$uk" "$rmb" "$umb"
        [[ $name == cairn ]] && c_rk=$rk c_uk=$uk
        [[ $name == redis ]] && r_rk=$rk r_uk=$uk
    done
    awk -v a="$c_rk" -v b="$r_rk" -v c="$c_uk" -v d="$r_uk" 'BEGIN {
        printf "%-7s %16s %22s\n", "ratio", (b > 0 ? sprintf("%.2f", a / b) : "-"),
            (d > 0 ? sprintf("%.2f", c / d) : "-") }'
}

# ---- main ----------------------------------------------------------------

T_START=$(now)
QUICK_TAG=""
[[ $QUICK == 1 ]] && QUICK_TAG=" (BENCH_QUICK)"
{
    echo "cairn node vs redis-server"
    echo "  cairn: $("$CAIRN_BIN" version 2>/dev/null)" \
        "($(git -C "$BENCH_ROOT" rev-parse --short HEAD 2>/dev/null || echo no-git)$(
            git -C "$BENCH_ROOT" diff --quiet HEAD -- src 2>/dev/null || echo ' +local changes'))"
    echo "  redis: $("$REDIS_SERVER" --version | awk '{ print $3 }')," \
        "$(nproc) cores, redis-benchmark -c $CLIENTS -r $KEYSPACE (1 client thread)," \
        "$ROUNDS round(s) of ~${SECS}s each, median shown$QUICK_TAG"
    echo "  ${SERVER_PIN:+pinned: servers on CPU 1, client on CPU 0; }load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >&2

for level in "${LEVELS[@]}"; do
    case $level in
        no) run_level no no no no ;;
        everysec) run_level everysec everysec yes everysec ;;
        always) run_level always always yes always ;;
        *) die "unknown durability level '$level' (no, everysec, always)" ;;
    esac
done
[[ ${BENCH_NO_MEMORY:-0} == 1 ]] || run_memory

((${#ROWS[@]})) && print_table
((${#MEM_ROWS[@]})) && print_memory
awk -v a="$T_START" -v b="$(now)" -v l="$(cut -d' ' -f1-3 /proc/loadavg)" \
    'BEGIN { printf "\ntotal time %.0f s, load average at end: %s\n", b - a, l }'
