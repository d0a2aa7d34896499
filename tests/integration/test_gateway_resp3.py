"""RESP3 through the gateway (HELLO 3), compared byte for byte with a real
redis-server 7.0.  Real etcd + manager + 3 shards x 2 replicas + gateway on
127.0.0.1; every wait is bounded.

What is covered
  same bytes    after HELLO 3 on both the gateway and redis-server, one
                sequence sent to each and the raw replies compared:
                SET/GET, GET missing (_), MGET over several shards with
                missing keys (merged: _ elements), HSET/HGETALL (% map), HGET
                missing, EXISTS/DEL over shards, INCRBYFLOAT, TTL/PTTL, TYPE,
                KEYS (elements sorted; HGETALL's pairs too: the node's hash
                order is not Redis's), DBSIZE, RANDOMKEY on an empty db (_)
                and a full one, MULTI/EXEC, CLIENT GETNAME unset (_), HELLO 2
                back to RESP2 ($-1, *-1).  Normalised only where the contents
                differ by design: HELLO's map, INFO and CLIENT LIST/INFO
                (verbatim strings: =len txt:), CONFIG GET (a map)
  WATCH         WATCH, a change by another client, EXEC -> _ (RESP3 null)
  SCAN          to the end in RESP3: the same set of keys as redis-server
  replicas      CAIRN READPOLICY replica under RESP3: read-your-writes (the
                CAIRN AFTER wrapping on HELLO 3 + READONLY connections) and
                RESP3 nulls from a replica
  redis-cli -3  `redis-cli -3 hgetall` prints the same map as against
                redis-server
  protocols     a RESP2 client and a RESP3 client side by side on the same
                node connections' pools get $-1 and _ respectively

With CAIRN_BIN=build-asan/cairn every cairn log is checked for sanitizer
reports when the fixture is torn down.
"""
import os
import shutil
import socket
import subprocess

import pytest

from cairnlib import RedisServer, resp_encode
from gwlib import GwCluster


# ------------------------------------------------------------- raw frames --

class Raw:
    """A socket that reads whole RESP2/RESP3 frames as raw bytes."""

    def __init__(self, port, timeout=10):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise ConnectionError("closed")
            self.buf += d
        i = self.buf.index(b"\r\n") + 2
        line, self.buf = self.buf[:i], self.buf[i:]
        return line

    def _exact(self, n):
        while len(self.buf) < n:
            d = self.s.recv(65536)
            if not d:
                raise ConnectionError("closed")
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def frame(self):
        """One frame's bytes, and its elements' frames for aggregates."""
        line = self._line()
        t, n = line[:1], line[1:-2]
        if t in b"$!=":
            return (line if int(n) < 0 else line + self._exact(int(n) + 2)), None
        if t in b"*~>%|":
            k = int(n)
            if k < 0:
                return line, None
            parts = [self.frame()[0] for _ in range(k * 2 if t in b"%|" else k)]
            return line + b"".join(parts), parts
        return line, None

    def call(self, *cmds):
        """Send the commands in one write; their replies as (bytes, parts)."""
        self.s.sendall(b"".join(resp_encode(*c) for c in cmds))
        return [self.frame() for _ in cmds]

    def close(self):
        self.s.close()


def norm(cmd, frame):
    raw, parts = frame
    name = str(cmd[0]).upper()
    if name in ("CLIENT", "CONFIG"):
        name += " " + str(cmd[1]).upper()
    if name.startswith("HELLO"):
        assert raw[:1] in b"%*", raw
        proto = parts[parts.index(b"$5\r\nproto\r\n") + 1]
        return ("HELLO", raw.split(b"\r\n")[0], proto)
    if name == "INFO" or name in ("CLIENT LIST", "CLIENT INFO"):
        assert raw.startswith(b"=") and raw.split(b"\r\n")[1].startswith(b"txt:") or raw.startswith(b"$"), raw
        return ("TEXT", raw[:1])
    if name == "CONFIG GET":
        return ("CONFIG", raw[:1])
    if name == "KEYS":
        return raw.split(b"\r\n")[0], sorted(parts)
    if name == "HGETALL" and parts:  # the node's field order is its own
        return raw.split(b"\r\n")[0], sorted(zip(parts[::2], parts[1::2]))
    if name == "RANDOMKEY" and raw.startswith(b"$"):
        return ("KEY", parts)
    if name == "PTTL" and raw.startswith(b":") and int(raw[1:-2]) > 0:
        return ("PTTL", int(raw[1:-2]) > 90000)
    return raw


def both(gw_port, ref_port, cmds):
    """The normalised replies of the gateway and of redis-server to cmds
    (sent after HELLO 3 in one pipeline)."""
    out = []
    for port in (gw_port, ref_port):
        c = Raw(port)
        try:
            out.append([norm(cmd, f) for cmd, f in zip(cmds, c.call(*cmds))])
        finally:
            c.close()
    return out


# ---------------------------------------------------------------- fixtures --

@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    if not shutil.which("etcd") and not os.path.exists("/usr/bin/etcd"):
        pytest.skip("etcd not installed")
    c = GwCluster(tmp_path_factory.mktemp("gw3"), shards=3, replicas=2, fsync="no").start()
    yield c
    c.stop_all()
    reports = c.sanitizer_reports()
    assert not reports, "\n".join(reports)


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    if not shutil.which("redis-server"):
        pytest.skip("redis-server not installed")
    r = RedisServer(tmp_path_factory.mktemp("ref3")).start()
    yield r
    r.stop()


def spread_keys(gw, n=9):
    """n keys that land on at least two shards (checked on the primaries)."""
    keys = [f"k{i}" for i in range(n)]
    r = gw.client()
    for k in keys:
        r.set(k, "x")
    primaries = [nodes[0] for nodes in gw.shard_nodes().values()]
    owners = {k: [p.port for p in primaries if p.client(timeout=5).exists(k)] for k in keys}
    r.delete(*keys)
    assert len({tuple(v) for v in owners.values()}) >= 2, owners
    return keys


# ------------------------------------------------------------------- tests --

def test_same_bytes_as_redis(gw, ref):
    keys = spread_keys(gw)
    cmds = [("HELLO", "3"), ("FLUSHALL",), ("RANDOMKEY",), ("DBSIZE",), ("CLIENT", "GETNAME"),
            ("SET", keys[0], "v0"), ("SET", keys[1], "v1"), ("SET", keys[2], "v2"),
            ("GET", keys[0]), ("GET", "missing"),
            ("MGET", keys[0], keys[3], keys[1], keys[4], keys[2], keys[5]),
            ("MGET", keys[6], keys[7]),
            ("HSET", "h", "f1", "v1", "f2", "v2"), ("HGETALL", "h"), ("HGET", "h", "nofield"),
            ("HGETALL", "nohash"),
            ("EXISTS", keys[0], keys[1], keys[8], "h"), ("DEL", keys[2], keys[8], "nokey"),
            ("INCRBYFLOAT", "f", "1.5"), ("INCRBYFLOAT", "f", "0.25"),
            ("TTL", keys[0]), ("TTL", "missing"), ("PTTL", keys[0]), ("PTTL", "missing"),
            ("EXPIRE", keys[0], "100"), ("TTL", keys[0]), ("PTTL", keys[0]),
            ("TYPE", "h"), ("TYPE", keys[0]), ("TYPE", "missing"),
            ("KEYS", "k*"), ("KEYS", "nomatch*"), ("DBSIZE",), ("RANDOMKEY",),
            ("MULTI",), ("SET", "{t}a", "1"), ("INCR", "{t}a"), ("GET", "{t}a"), ("EXEC",),
            ("INFO",), ("INFO", "server"), ("CLIENT", "LIST"), ("CLIENT", "INFO"),
            ("CONFIG", "GET", "maxmemory"), ("PING",), ("ECHO", "e"),
            ("HELLO",),
            ("HELLO", "2"), ("GET", "missing"), ("MGET", keys[0], keys[3], keys[1]), ("RANDOMKEY",),
            ("CLIENT", "GETNAME"), ("HGETALL", "h"), ("INFO", "server"), ("CONFIG", "GET", "maxmemory"),
            ("HELLO", "3"), ("GET", "missing"), ("FLUSHALL",), ("RANDOMKEY",)]
    got, want = both(gw.gport, ref.port, cmds)
    for cmd, g, w in zip(cmds, got, want):
        assert g == w, (cmd, g, w)
    assert got[0] == ("HELLO", b"%7", b":3\r\n")
    assert got[cmds.index(("GET", "missing"))] == b"_\r\n"


def test_watch_broken_exec_is_resp3_null(gw, ref):
    for port in (gw.gport, ref.port):
        a, b = Raw(port), Raw(port)
        try:
            assert a.call(("HELLO", "3"))[0][0].startswith(b"%7")
            assert a.call(("SET", "{w}k", "1"), ("WATCH", "{w}k"))[1][0] == b"+OK\r\n"
            assert b.call(("SET", "{w}k", "2"))[0][0] == b"+OK\r\n"
            got = [f[0] for f in a.call(("MULTI",), ("SET", "{w}k", "3"), ("EXEC",), ("GET", "{w}k"))]
            assert got == [b"+OK\r\n", b"+QUEUED\r\n", b"_\r\n", b"$1\r\n2\r\n"], (port, got)
            # and a watch that holds: EXEC's array
            got = [f[0] for f in a.call(("WATCH", "{w}k"), ("MULTI",), ("INCR", "{w}k"), ("EXEC",))]
            assert got == [b"+OK\r\n", b"+OK\r\n", b"+QUEUED\r\n", b"*1\r\n:3\r\n"], (port, got)
            # WATCH in RESP3, HELLO 2, then EXEC broken: RESP2's null array
            got = [f[0] for f in a.call(("WATCH", "{w}k"))]
            assert b.call(("SET", "{w}k", "9"))[0][0] == b"+OK\r\n"
            got = [f[0] for f in a.call(("HELLO", "2"), ("MULTI",), ("EXEC",))]
            assert got[1:] == [b"+OK\r\n", b"*-1\r\n"], (port, got)
        finally:
            a.close()
            b.close()


def test_scan_to_the_end(gw, ref):
    seen = []
    for port in (gw.gport, ref.port):
        c = Raw(port)
        try:
            c.call(("HELLO", "3"), ("FLUSHALL",))
            c.call(*[("SET", f"s:{i}", "v") for i in range(300)])
            keys, cursor = [], b"0"
            for _ in range(10000):
                raw, parts = c.call(("SCAN", cursor, "COUNT", "50"))[0]
                assert raw.startswith(b"*2\r\n$"), raw
                cursor = parts[0].split(b"\r\n")[1]
                keys += parts[1].split(b"\r\n")[2::2]
                if cursor == b"0":
                    break
            seen.append(set(keys))
        finally:
            c.close()
    assert seen[0] == seen[1] and len(seen[0]) == 300, (seen[0] ^ seen[1], len(seen[0]))


def test_replica_reads_resp3_read_your_writes(gw):
    c = Raw(gw.gport)
    try:
        assert c.call(("HELLO", "3"), ("CAIRN", "READPOLICY", "replica"))[1][0] == b"+OK\r\n"
        for i in range(30):
            # the read after the write's reply (a read pipelined behind a
            # write whose LSN is not back yet is not wrapped, in RESP2 too)
            got = [f[0] for f in c.call(("SET", f"ryw:{i}", str(i)))]
            got += [f[0] for f in c.call(("GET", f"ryw:{i}"), ("GET", f"ryw:none:{i}"),
                                         ("HGETALL", "ryw:nohash"))]
            v = str(i).encode()
            assert got == [b"+OK\r\n", b"$%d\r\n%s\r\n" % (len(v), v), b"_\r\n", b"%0\r\n"], (i, got)
    finally:
        c.close()


def test_resp2_and_resp3_clients_side_by_side(gw):
    a, b = Raw(gw.gport), Raw(gw.gport)
    try:
        b.call(("HELLO", "3"))
        for _ in range(20):
            ra = a.call(("GET", "side:none"), ("MGET", "side:none", "k1"))
            rb = b.call(("GET", "side:none"), ("MGET", "side:none", "k1"))
            assert ra[0][0] == b"$-1\r\n" and rb[0][0] == b"_\r\n", (ra, rb)
            assert ra[1][0].startswith(b"*2\r\n$-1\r\n") and rb[1][0].startswith(b"*2\r\n_\r\n")
    finally:
        a.close()
        b.close()


def test_redis_cli_3(gw, ref):
    if not shutil.which("redis-cli"):
        pytest.skip("redis-cli not installed")
    out = []
    for port in (gw.gport, ref.port):
        def cli(*args):
            return subprocess.run(["redis-cli", "-3", "--no-raw", "-p", str(port)] + list(args),
                                  capture_output=True, timeout=10).stdout
        cli("DEL", "cli:h")
        cli("HSET", "cli:h", "a", "1")
        out.append((cli("HGETALL", "cli:h"), cli("GET", "cli:none")))
    assert out[0] == out[1] == (b'1# "a" => "1"\n', b"(nil)\n"), out
