#!/bin/sh
# make up — the embedded default: one cairn node on 127.0.0.1:7001 with its
# data under ./cairn-data, a short demo with redis-cli, then the node's log
# until Ctrl-C (which stops the node cleanly).
set -e
cd "$(dirname "$0")/.."
PORT=${CAIRN_PORT:-7001}
DATA=${CAIRN_DATA:-$PWD/cairn-data}
mkdir -p "$DATA"
if redis-cli -p "$PORT" ping >/dev/null 2>&1; then
    echo "something already answers on 127.0.0.1:$PORT; stop it or set CAIRN_PORT" >&2
    exit 1
fi
build/cairn node --port "$PORT" --dir "$DATA/node1" --fsync everysec >"$DATA/node1.log" 2>&1 &
PID=$!
stop() { kill -TERM "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; echo; echo "cairn node stopped (data kept in $DATA/node1)"; }
trap 'stop; exit 0' INT TERM
i=0
until redis-cli -p "$PORT" ping >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 "$PID" 2>/dev/null; then
        echo "cairn node did not start; its log:" >&2
        cat "$DATA/node1.log" >&2
        exit 1
    fi
    sleep 0.1
done
echo "== cairn node up on 127.0.0.1:$PORT (pid $PID, data in $DATA/node1)"
echo "\$ redis-cli -p $PORT SET greeting 'hello from cairn'"; redis-cli -p "$PORT" SET greeting 'hello from cairn'
echo "\$ redis-cli -p $PORT GET greeting"; redis-cli -p "$PORT" GET greeting
echo "\$ redis-cli -p $PORT INCR visits"; redis-cli -p "$PORT" INCR visits
echo "\$ redis-cli -p $PORT HSET user:1 name ada lang c"; redis-cli -p "$PORT" HSET user:1 name ada lang c
echo "\$ redis-cli -p $PORT INFO persistence | grep wal_"; redis-cli -p "$PORT" INFO persistence | grep wal_ | tr -d '\r'
echo
echo "Connect with:  redis-cli -p $PORT"
echo "Ctrl-C stops the node (the data stays in $DATA/node1). Log follows."
tail -n +1 -f "$DATA/node1.log" &
TAIL=$!
trap 'kill $TAIL 2>/dev/null; stop; exit 0' INT TERM
wait "$PID"
kill $TAIL 2>/dev/null
