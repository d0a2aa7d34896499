#!/bin/bash
# make down — stop what `make up` (scripts/up.sh) started, and only that:
# the processes named by CAIRN_DATA/run/*.pid that still run (a pid file
# records pid and start time, so a recycled pid is left alone).  The data
# stays.
#
#   scripts/down.sh               every process, in the order below
#   scripts/down.sh NAME...       only those (up.sh undoing a failed start)
#
# Order: the gateway, then the manager (so it does not react to the nodes
# going away by reconfiguring shards), then every node at once, then etcd.
# Each step sends SIGTERM and waits up to 15 s, then SIGKILL.
set -u
cd "$(dirname "$0")/.." || exit 1
DATA=${CAIRN_DATA:-$PWD/cairn-data}
case $DATA in /*) ;; *) DATA=$PWD/$DATA ;; esac
RUN=$DATA/run

# As in up.sh: a pid file holds pid, start time, command line; the pid is
# ours only while /proc/PID/stat shows that start time (and no zombie).
starttime() {
    local st w
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    read -ra w <<<"${st##*) }"
    [ "${w[0]}" != Z ] && echo "${w[19]}"
}
running_pid() {
    local f=$RUN/$1.pid pid start
    [ -r "$f" ] || return 1
    { read -r pid && read -r start; } <"$f" || return 1
    [ -n "$pid" ] && [ "$(starttime "$pid")" = "$start" ] || return 1
    echo "$pid"
}

if [ $# -gt 0 ]; then
    want=("$@")
else
    want=()
    for f in "$RUN"/*.pid; do [ -e "$f" ] && want+=("$(basename "$f" .pid)"); done
fi
if [ ${#want[@]} -eq 0 ]; then
    echo "cairn is not running (no pid files in $RUN)"
    exit 0
fi

# A zombie (exited, not yet reaped by whoever inherited it) counts as stopped.
alive() { starttime "$1" >/dev/null; }

# stop_group NAME... — TERM them all, wait for all, KILL what is left.
stop_group() {
    local name pid pids=() names=()
    for name in "$@"; do
        if pid=$(running_pid "$name"); then
            kill -TERM "$pid" 2>/dev/null && { pids+=("$pid"); names+=("$name"); }
        else
            echo "  $name was not running"
            rm -f "$RUN/$name.pid"
        fi
    done
    [ ${#pids[@]} -gt 0 ] || return 0
    local deadline=$((SECONDS + 15)) i left
    while :; do
        left=0
        for pid in "${pids[@]}"; do alive "$pid" && left=1; done
        [ $left = 0 ] || [ $SECONDS -ge $deadline ] && break
        sleep 0.1
    done
    for i in "${!pids[@]}"; do
        if alive "${pids[i]}"; then
            echo "  ${names[i]} (pid ${pids[i]}) ignored SIGTERM for 15 s; SIGKILL"
            kill -KILL "${pids[i]}" 2>/dev/null
        else
            echo "  stopped ${names[i]} (pid ${pids[i]})"
        fi
        rm -f "$RUN/${names[i]}.pid"
    done
}

echo "stopping cairn (data stays in $DATA)"
nodes=()
for name in "${want[@]}"; do case $name in node*) nodes+=("$name") ;; esac; done
for group in gateway manager nodes etcd; do
    case $group in
    nodes) [ ${#nodes[@]} -gt 0 ] && stop_group "${nodes[@]}" ;;
    *) for name in "${want[@]}"; do [ "$name" = "$group" ] && stop_group "$name"; done ;;
    esac
done
exit 0
