# shellcheck shell=bash
# bench/lib.sh — helpers shared by the benchmark scripts (sourced, not run).
#
# Every server a script starts goes through start_cairn / start_redis, which
# record its pid and its mktemp -d directory; bench_cleanup (installed as the
# EXIT trap by bench_init) stops exactly those pids and removes exactly those
# directories, nothing else.
#
#   bench_init                      install the traps, check the binaries
#   start_cairn FSYNC               -> SRV_PID SRV_PORT SRV_DIR
#   start_redis APPENDONLY FSYNC    -> SRV_PID SRV_PORT SRV_DIR
#   stop_server PID DIR             SIGTERM (SIGKILL after 10 s), rm -rf DIR
#   rss_kb PID                      VmRSS of PID in kB
#   info_field PORT FIELD           one field of INFO (e.g. used_memory)
#   median N...                     median of the numbers given

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CAIRN_BIN=${CAIRN_BIN:-$BENCH_ROOT/build/cairn}
REDIS_SERVER=${REDIS_SERVER:-redis-server}
REDIS_BENCHMARK=${REDIS_BENCHMARK:-redis-benchmark}
REDIS_CLI=${REDIS_CLI:-redis-cli}

BENCH_PIDS=()      # servers this script started and has not stopped yet
BENCH_DIRS=()      # temp dirs this script created and has not removed yet
BENCH_PORTS=()     # ports handed out by free_port in this run

# BENCH_PIN=1: servers on CPU 1, the client on CPU 0 (prefixes, word-split).
SERVER_PIN="" CLIENT_PIN=""
# shellcheck disable=SC2034  # CLIENT_PIN is used by the scripts that source this
if [[ ${BENCH_PIN:-0} == 1 ]] && command -v taskset >/dev/null && (($(nproc) >= 2)); then
    SERVER_PIN="taskset -c 1" CLIENT_PIN="taskset -c 0"
fi

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

bench_cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    for pid in "${BENCH_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    # A server may refuse SIGTERM for a while (a Redis replica writing its
    # first AOF): give every one 10 s in all, then SIGKILL.
    local i
    for ((i = 0; i < 100; i++)); do
        local alive=0
        for pid in "${BENCH_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        ((alive)) || break
        sleep 0.1
    done
    for pid in "${BENCH_PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if ((${#BENCH_DIRS[@]})); then rm -rf -- "${BENCH_DIRS[@]}"; fi
    exit "$rc"
}

bench_init() {
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    [[ -x $CAIRN_BIN ]] || die "$CAIRN_BIN not found: run make first"
    local b
    for b in "$REDIS_SERVER" "$REDIS_BENCHMARK" "$REDIS_CLI"; do
        command -v "$b" >/dev/null || die "$b not found (apt-get install redis-server redis-tools)"
    done
}

_forget() { # _forget ARRAYNAME VALUE: drop VALUE from the array
    local -n _arr=$1
    local out=() x
    for x in "${_arr[@]}"; do [[ $x == "$2" ]] || out+=("$x"); done
    _arr=("${out[@]}")
}

# A loopback port nobody is listening on and that this run has not handed
# out yet; the answer is in REPLY (no subshell, so BENCH_PORTS sticks).
free_port() {
    local p i
    for ((i = 0; i < 500; i++)); do
        p=$((20000 + RANDOM % 12000))   # below the ephemeral range
        [[ " ${BENCH_PORTS[*]} " == *" $p "* ]] && continue
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            BENCH_PORTS+=("$p")
            REPLY=$p
            return 0
        fi
    done
    die "no free loopback port found"
}

# wait_ready PID PORT LOG: until the server answers PING (or dies / 20 s).
wait_ready() {
    local pid=$1 port=$2 logf=$3 i
    for ((i = 0; i < 400; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$logf" >&2
            die "server pid $pid (port $port) exited during startup"
        fi
        [[ $("$REDIS_CLI" -h 127.0.0.1 -p "$port" ping 2>/dev/null) == PONG ]] && return 0
        sleep 0.05
    done
    tail -n 20 "$logf" >&2
    die "server pid $pid did not answer PING on port $port within 20 s"
}

_new_dir() {
    SRV_DIR=$(mktemp -d "${TMPDIR:-/tmp}/$1-bench.XXXXXX")
    BENCH_DIRS+=("$SRV_DIR")
}

# start_cairn FSYNC: a fresh `cairn node` in its own temp dir.
start_cairn() {
    _new_dir cairn
    free_port
    SRV_PORT=$REPLY
    mkdir "$SRV_DIR/data"
    $SERVER_PIN "$CAIRN_BIN" node --bind 127.0.0.1 --port "$SRV_PORT" --dir "$SRV_DIR/data" \
        --fsync "$1" >"$SRV_DIR/server.log" 2>&1 &
    SRV_PID=$!
    BENCH_PIDS+=("$SRV_PID")
    wait_ready "$SRV_PID" "$SRV_PORT" "$SRV_DIR/server.log"
}

# start_redis APPENDONLY(yes|no) APPENDFSYNC: a fresh redis-server, RDB
# snapshots off (save ""), in its own temp dir.
start_redis() {
    _new_dir redis
    free_port
    SRV_PORT=$REPLY
    mkdir "$SRV_DIR/data"
    $SERVER_PIN "$REDIS_SERVER" --bind 127.0.0.1 --port "$SRV_PORT" --dir "$SRV_DIR/data" \
        --save "" --appendonly "$1" --appendfsync "$2" --daemonize no \
        --logfile "" >"$SRV_DIR/server.log" 2>&1 &
    SRV_PID=$!
    BENCH_PIDS+=("$SRV_PID")
    wait_ready "$SRV_PID" "$SRV_PORT" "$SRV_DIR/server.log"
}

# stop_server PID DIR: stop one server this script started, remove its dir.
stop_server() {
    local pid=$1 dir=$2 i
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < 200; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    _forget BENCH_PIDS "$pid"
    rm -rf -- "$dir"
    _forget BENCH_DIRS "$dir"
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

info_field() {
    "$REDIS_CLI" -h 127.0.0.1 -p "$1" info memory 2>/dev/null | tr -d '\r' |
        awk -F: -v f="$2" '$1 == f { print $2 }'
}

median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
        END { if (NR == 0) exit; if (NR % 2) print v[(NR + 1) / 2];
              else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
