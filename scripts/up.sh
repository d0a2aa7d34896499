#!/bin/bash
# make up — the embedded default on loopback: etcd (one member), a cairn
# manager on :7100 and one shard of three replicas on :7001-7003, data under
# ./cairn-data.  Shows it working, then follows the logs until Ctrl-C, which
# stops everything cleanly (the data stays for the next `make up`).
set -u
cd "$(dirname "$0")/.."
DATA=${CAIRN_DATA:-$PWD/cairn-data}
MPORT=${CAIRN_MANAGER_PORT:-7100}
EPORT=${CAIRN_ETCD_PORT:-2379}
NODE_PORTS=(7001 7002 7003)
mkdir -p "$DATA"
PIDS=()

stop() {
    echo
    echo "stopping cairn (data kept in $DATA)..."
    # Newest first, each waited for: nodes, then the manager (it revokes its
    # etcd lease on the way out), then etcd.
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        kill -TERM "${PIDS[i]}" 2>/dev/null
        wait "${PIDS[i]}" 2>/dev/null
    done
    exit 0
}
trap stop INT TERM

busy() { (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$EPORT" "$((EPORT + 1))" "$MPORT" "${NODE_PORTS[@]}"; do
    if busy "$p"; then echo "port $p on 127.0.0.1 is in use; stop what uses it first" >&2; exit 1; fi
done

wait_for() { # wait_for WHAT CMD...
    local what=$1; shift
    for _ in $(seq 1 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "$what did not come up; see $DATA/*.log" >&2
    stop
}

etcd --name cairn --data-dir "$DATA/etcd" \
    --listen-client-urls "http://127.0.0.1:$EPORT" --advertise-client-urls "http://127.0.0.1:$EPORT" \
    --listen-peer-urls "http://127.0.0.1:$((EPORT + 1))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((EPORT + 1))" \
    --initial-cluster "cairn=http://127.0.0.1:$((EPORT + 1))" >"$DATA/etcd.log" 2>&1 &
PIDS+=($!)
wait_for etcd curl -sf "http://127.0.0.1:$EPORT/health"

build/cairn manager --etcd "http://127.0.0.1:$EPORT" --cluster local --port "$MPORT" \
    >"$DATA/manager.log" 2>&1 &
PIDS+=($!)
wait_for "the manager" redis-cli -p "$MPORT" ping

for i in 0 1 2; do
    p=${NODE_PORTS[i]}
    build/cairn node --port "$p" --dir "$DATA/node$((i + 1))" --fsync everysec \
        --manager "127.0.0.1:$MPORT" >"$DATA/node$((i + 1)).log" 2>&1 &
    PIDS+=($!)
done
for p in "${NODE_PORTS[@]}"; do wait_for "node :$p" redis-cli -p "$p" ping; done

# The shard survives restarts in etcd: create it only the first time.
# The manager is active once it holds the etcd lease (a previous run's
# lease may need its TTL to lapse first).
shards=""
for _ in $(seq 1 100); do
    shards=$(build/cairn ctl --manager "127.0.0.1:$MPORT" status --json 2>/dev/null |
        /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin).get("shards") or []))' 2>/dev/null) && break
    sleep 0.1
done
if [ "${shards:-0}" = 0 ]; then
    sleep 0.5 # let every node register
    build/cairn ctl --manager "127.0.0.1:$MPORT" shard create --replicas 3 || stop
fi

primary=""
for _ in $(seq 1 100); do
    for p in "${NODE_PORTS[@]}"; do
        if [ "$(redis-cli -p "$p" set cairn:up ok 2>/dev/null)" = "OK" ]; then primary=$p; break 2; fi
    done
    sleep 0.1
done
[ -n "$primary" ] || { echo "no primary is serving; see $DATA/*.log" >&2; stop; }

echo "== cairn is up: etcd :$EPORT, manager :$MPORT, shard 1 on ${NODE_PORTS[*]} (primary :$primary)"
echo "\$ redis-cli -p $primary SET greeting 'hello from cairn'"; redis-cli -p "$primary" SET greeting 'hello from cairn'
echo "\$ redis-cli -p $primary INCR visits"; redis-cli -p "$primary" INCR visits
echo "\$ redis-cli -p $primary GET greeting"; redis-cli -p "$primary" GET greeting
echo "\$ build/cairn ctl status"; build/cairn ctl --manager "127.0.0.1:$MPORT" status
echo
echo "Connect with:  redis-cli -p $primary     (writes go to the primary; the others answer NOTPRIMARY)"
echo "Try a failover: kill -9 the primary's pid and run build/cairn ctl status again."
echo "Ctrl-C stops everything. Logs follow ($DATA/*.log)."
tail -n 0 -F "$DATA"/manager.log "$DATA"/node*.log &
PIDS=("$!" "${PIDS[@]}")
wait
