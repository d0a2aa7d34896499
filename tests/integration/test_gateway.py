"""The cairn gateway end to end: real etcd + manager + nodes + gateway on
127.0.0.1 (gwlib.GwCluster), driven with redis-py, redis-cli, hiredis and raw
sockets.  Every wait is bounded.

Fixtures
  gw      (module)  3 shards x 1 replica, fsync no
  repl3   (module)  1 shard x 3 replicas, --repl-lease-ms 400 --repl-grace-ms 800
                    (replica reads, then failover: the failover test kills its
                    primary, so it runs last in this file)

What is covered
  commands      strings (SET NX/XX/GET/EX/PX/EXAT/PXAT/KEEPTTL, APPEND, GETRANGE,
                SUBSTR, SETRANGE, GETSET, GETDEL, GETEX, SETEX, PSETEX, SETNX,
                STRLEN, INCR family, INCRBYFLOAT), keys (EXPIRE family incl.
                NX/XX/GT/LT, TTL/PTTL/EXPIRETIME/PEXPIRETIME, PERSIST, TYPE, real
                expiry, RENAME/RENAMENX within a shard via {tags}), hashes (all of
                them, HSCAN), SCAN/KEYS/DBSIZE/FLUSHALL/FLUSHDB over every shard,
                MSETNX in one shard, RANDOMKEY, local commands (PING ECHO SELECT
                CLIENT INFO CONFIG HELLO TIME COMMAND), node-only commands (SAVE
                BGSAVE LASTSAVE SHUTDOWN -> clear error), binary keys/values,
                16 MB values
  known gaps    keys of several shards -> -CROSSSHARD; HELLO 4 -> -NOPROTO
                (RESP3 itself: test_gateway_resp3.py)
  transactions  MULTI/EXEC/DISCARD in one shard (redis-py, raw bytes, 2,000
                commands, runtime errors inside EXEC), Redis's error texts and
                EXECABORT, a transaction or WATCH spanning shards -> -CROSSSHARD
                and nothing runs; WATCH voided by another client, UNWATCH,
                pipelined SET;WATCH;MULTI;GET;EXEC in order; 4 threads of
                optimistic increments exact
  multi-key     MGET/MSET/DEL/UNLINK/EXISTS over 100 keys on every shard, merged in
                order, duplicates included; 8 threads of MSET/MGET at once
  placement     3,000 keys: SCAN (scan_iter) yields each exactly once, KEYS and
                DBSIZE agree, each node holds > 20 %; {tag} keys share a node
                (Redis's tag rule, incl. "{}" and "{{x}")
  clients       redis-cli (commands, --scan, --pipe, --bigkeys, inline), hiredis
                (tests/integration/hiredis_client.c)
  pipelining    10,000 commands in one redis-py pipeline and on a raw socket;
                same-key order inside a pipeline (SET;GET, SET;SET, DEL;SET,
                INCR;GET); a pipeline deeper than the gateway's 10,000-slot window;
                a paused client that hangs up is freed
  bad input     malformed RESP -> the exact protocol error after the replies to
                what came before, that connection closed, others untouched;
                random garbage; clients hanging up with requests in flight; QUIT
                after a pipeline; a client that never reads (RSS, others' latency);
                1,000 idle connections
  outages       a SIGSTOPped node only affects its shard (errors within the
                gateway's timeouts, never a hang); the manager down: the gateway
                serves from the topology it has, a new gateway answers CLUSTERDOWN
                until the manager is back
  read your     CAIRN LSN / CAIRN AFTER at the node; 300 SET;GET pairs with the
  writes        replica policy: no stale read, most reads on secondaries
  read policy   CAIRN READPOLICY replica / any / prefer-replica on a 3-replica
                shard: which members serve (gateway per-node counters and the
                nodes' own command counts), values correct; every --policy
                spreads replica reads over both secondaries (round-robin evenly)
  switchover    cairn ctl switchover under 4 writing clients: exactly once, and
                no client error
  failover      kill -9 the primary under 4 client threads (INCR + SET through
                the gateway): error burst < 3 s, each counter == acknowledged
                INCRs (+ at most the "outcome unknown" ones), every acknowledged
                SET present

With CAIRN_BIN=build-asan/cairn every cairn log is checked for sanitizer
reports when a cluster fixture is torn down.
"""
import os
import random
import resource
import shutil
import socket
import subprocess
import threading
import time

import pytest
import redis

from authseq import replies
from cairnlib import (CAIRN_BIN, ROOT, RedisServer, Resp, RespError, bulk_load, connect, free_port, ping_time,
                      read_exact, read_until_closed, resp_encode, wait_until)
from gwlib import TIME_SCALE, GwCluster, Proc, parse_gw_info, raw_info

HOST = "127.0.0.1"
UNKNOWN_OUTCOME = "may or may not have been applied"

pytestmark = pytest.mark.skipif(not os.path.exists(CAIRN_BIN), reason=f"{CAIRN_BIN} not built")


# ------------------------------------------------------------------ fixtures --

@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    if not shutil.which("etcd") and not os.path.exists("/usr/bin/etcd"):
        pytest.skip("etcd not installed")
    c = GwCluster(tmp_path_factory.mktemp("gw"), shards=3, replicas=1, fsync="no").start()
    yield c
    c.stop_all()
    reports = c.sanitizer_reports()
    assert not reports, "\n".join(reports)


@pytest.fixture(scope="module")
def repl3(tmp_path_factory):
    c = GwCluster(tmp_path_factory.mktemp("repl3"), shards=1, replicas=3, fsync="no",
                  lease_ms=400, grace_ms=800).start()
    yield c
    c.stop_all()
    reports = c.sanitizer_reports()
    assert not reports, "\n".join(reports)


@pytest.fixture
def r(gw):
    c = gw.client()
    yield c
    c.close()


@pytest.fixture
def clean(gw):
    """An empty keyspace (FLUSHALL through the gateway, checked on every node)."""
    c = gw.client()
    assert c.flushall() is True
    for n in gw.nodes:
        assert n.client(timeout=5).dbsize() == 0
    yield c
    c.close()


# ------------------------------------------------------------------- helpers --

def assert_gw_alive(c):
    assert c.gateway.alive(), f"gateway died:\n{c.gateway.log()}"
    assert ping_time(c.gport) < 1.0
    rc = c.client(timeout=5)
    assert rc.set("__alive__", "1") is True
    rc.close()


def rss_of(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def node_of(c, key):
    """The primary node that holds `key` (EXISTS on every primary directly)."""
    holders = [n for n in c.primaries() if n.client(timeout=5).exists(key)]
    assert len(holders) == 1, f"{key!r} found on {len(holders)} nodes"
    return holders[0]


def keys_on_different_shards(c, r, prefix):
    """Two keys that live on different shards (written, then located)."""
    first = None
    for i in range(100):
        k = f"{prefix}{i}"
        r.set(k, "x")
        n = node_of(c, k)
        if first is None:
            first = (k, n)
        elif n is not first[1]:
            return first[0], k
    raise AssertionError("100 keys all on one shard")


# ------------------------------------------------------------------- strings --

def test_set_get_binary_and_large(gw, r):
    assert r.set("s:plain", "hello") is True
    assert r.get("s:plain") == b"hello"
    assert r.get("s:missing") is None
    key, val = b"s:bin\x00\r\n\xff", b"a\x00\r\n\xfe" * 100
    assert r.set(key, val) is True
    assert r.get(key) == val
    assert r.set("s:empty", b"") is True
    assert r.get("s:empty") == b""
    big = os.urandom(16 << 20)
    assert r.set("s:big", big) is True
    assert r.get("s:big") == big
    assert r.strlen("s:big") == 16 << 20
    assert r.delete("s:big") == 1


def test_set_options(gw, r):
    r.delete("so:k")
    assert r.set("so:k", "v1", nx=True) is True
    assert r.set("so:k", "v2", nx=True) is None
    assert r.get("so:k") == b"v1"
    assert r.set("so:k", "v3", xx=True) is True
    assert r.set("so:none", "v", xx=True) is None
    assert r.exists("so:none") == 0
    assert r.set("so:k", "v4", get=True) == b"v3"
    assert r.set("so:k", "v5", ex=100) is True
    assert 98 <= r.ttl("so:k") <= 100
    assert r.set("so:k", "v6", px=50_000) is True
    assert 48_000 <= r.pttl("so:k") <= 50_000
    at = int(time.time()) + 200
    assert r.set("so:k", "v7", exat=at) is True
    assert r.expiretime("so:k") == at
    pat = int(time.time() * 1000) + 300_000
    assert r.set("so:k", "v8", pxat=pat) is True
    assert r.execute_command("PEXPIRETIME", "so:k") == pat
    assert r.set("so:k", "v9", keepttl=True) is True
    assert r.execute_command("PEXPIRETIME", "so:k") == pat
    assert r.set("so:k", "v10") is True
    assert r.ttl("so:k") == -1
    with pytest.raises(redis.ResponseError, match="syntax error"):
        r.execute_command("SET", "so:k", "v", "NX", "XX")
    with pytest.raises(redis.ResponseError, match="invalid expire time"):
        r.execute_command("SET", "so:k", "v", "EX", "0")
    with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
        r.execute_command("SET", "so:k")


def test_string_commands(gw, r):
    r.delete("st:a", "st:n", "st:f", "st:r")
    assert r.append("st:a", "hello") == 5
    assert r.append("st:a", " world") == 11
    assert r.getrange("st:a", 0, 4) == b"hello"
    assert r.execute_command("SUBSTR", "st:a", -5, -1) == b"world"
    assert r.setrange("st:a", 6, "WORLD") == 11
    assert r.get("st:a") == b"hello WORLD"
    assert r.setrange("st:r", 3, "x") == 4
    assert r.get("st:r") == b"\x00\x00\x00x"
    assert r.getset("st:a", "new") == b"hello WORLD"
    assert r.getdel("st:a") == b"new"
    assert r.exists("st:a") == 0
    assert r.setnx("st:a", "1") is True
    assert r.setnx("st:a", "2") is False
    assert r.getex("st:a", ex=100) == b"1"
    assert r.ttl("st:a") > 0
    assert r.getex("st:a", persist=True) == b"1"
    assert r.ttl("st:a") == -1
    assert r.setex("st:a", 50, "x") is True
    assert 48 <= r.ttl("st:a") <= 50
    assert r.psetex("st:a", 40_000, "y") is True
    assert 38_000 <= r.pttl("st:a") <= 40_000
    assert r.incr("st:n") == 1
    assert r.incrby("st:n", 41) == 42
    assert r.decr("st:n") == 41
    assert r.decrby("st:n", 40) == 1
    assert r.incrbyfloat("st:f", 1.5) == 1.5
    assert r.incrbyfloat("st:f", "2.25") == 3.75
    assert r.get("st:f") == b"3.75"
    r.set("st:a", "abc")
    with pytest.raises(redis.ResponseError, match="not an integer"):
        r.incr("st:a")
    with pytest.raises(redis.ResponseError, match="not a valid float"):
        r.incrbyfloat("st:a", 1)
    r.set("st:n", str(2 ** 63 - 1))
    with pytest.raises(redis.ResponseError, match="overflow"):
        r.incr("st:n")


# ---------------------------------------------------------------------- keys --

def test_expire_family_and_ttl(gw, r):
    r.set("ex:k", "v")
    assert r.ttl("ex:k") == -1
    assert r.pttl("ex:k") == -1
    assert r.ttl("ex:none") == -2
    assert r.expiretime("ex:none") == -2
    assert r.expiretime("ex:k") == -1
    assert r.expire("ex:k", 100) is True
    assert r.expire("ex:k", 200, nx=True) is False
    assert r.expire("ex:k", 50, gt=True) is False
    assert r.expire("ex:k", 300, gt=True) is True
    assert r.expire("ex:k", 10, lt=True) is True
    assert r.expire("ex:k", 20, xx=True) is True
    assert 18 <= r.ttl("ex:k") <= 20
    assert r.pexpire("ex:k", 30_000) is True
    assert 28_000 <= r.pttl("ex:k") <= 30_000
    at = int(time.time()) + 500
    assert r.expireat("ex:k", at) is True
    assert r.expiretime("ex:k") == at
    pat = int(time.time() * 1000) + 600_000
    assert r.pexpireat("ex:k", pat) is True
    assert r.execute_command("PEXPIRETIME", "ex:k") == pat
    assert r.persist("ex:k") is True
    assert r.persist("ex:k") is False
    assert r.ttl("ex:k") == -1
    assert r.expire("ex:none", 10) is False
    assert r.type("ex:k") == b"string"
    assert r.type("ex:none") == b"none"
    # real expiry, on several shards
    for i in range(20):
        r.set(f"ex:short{i}", "v", px=150)
    assert r.exists(*[f"ex:short{i}" for i in range(20)]) == 20
    time.sleep(0.3)
    assert r.exists(*[f"ex:short{i}" for i in range(20)]) == 0
    assert r.get("ex:short0") is None
    # EXPIRE in the past deletes
    r.set("ex:past", "v")
    assert r.expireat("ex:past", int(time.time()) - 10) is True
    assert r.exists("ex:past") == 0


def test_rename_within_shard_via_tags(gw, r):
    r.delete("{rn}a", "{rn}b", "{rn}c")
    r.set("{rn}a", "1", ex=100)
    assert r.rename("{rn}a", "{rn}b") is True
    assert r.get("{rn}b") == b"1"
    assert r.exists("{rn}a") == 0
    assert r.ttl("{rn}b") > 0  # RENAME keeps the TTL
    r.set("{rn}c", "2")
    assert r.renamenx("{rn}b", "{rn}c") is False
    assert r.renamenx("{rn}b", "{rn}d") is True
    assert r.get("{rn}d") == b"1"
    with pytest.raises(redis.ResponseError, match="no such key"):
        r.rename("{rn}none", "{rn}x")
    assert node_of(gw, "{rn}d") is node_of(gw, "{rn}c")


def test_cross_shard_single_command_is_refused(gw, r):
    a, b = keys_on_different_shards(gw, r, "xs:")
    for args in (("RENAME", a, b), ("RENAMENX", a, b), ("MSETNX", a, "1", b, "2")):
        with pytest.raises(redis.ResponseError) as e:
            r.execute_command(*args)
        assert str(e.value).startswith("CROSSSHARD"), (args, str(e.value))
    # nothing changed
    assert r.get(a) == b"x" and r.get(b) == b"x"
    info = gw.gw_info()
    assert int(info["cross_shard_requests"]) >= 3


# -------------------------------------------------------------------- hashes --

def test_hashes(gw, r):
    r.delete("h:1", "h:s")
    assert r.hset("h:1", mapping={"f1": "one", "f2": "two"}) == 2
    assert r.hset("h:1", "f1", "uno") == 0
    assert r.execute_command("HMSET", "h:1", "f3", "three", "f4", "4") is True
    assert r.hget("h:1", "f1") == b"uno"
    assert r.hget("h:1", "nope") is None
    assert r.hmget("h:1", ["f1", "nope", "f2"]) == [b"uno", None, b"two"]
    assert r.hgetall("h:1") == {b"f1": b"uno", b"f2": b"two", b"f3": b"three", b"f4": b"4"}
    assert sorted(r.hkeys("h:1")) == [b"f1", b"f2", b"f3", b"f4"]
    assert sorted(r.hvals("h:1")) == sorted([b"uno", b"two", b"three", b"4"])
    assert r.hlen("h:1") == 4
    assert r.hexists("h:1", "f2") is True
    assert r.hexists("h:1", "zz") is False
    assert r.hstrlen("h:1", "f3") == 5
    assert r.hsetnx("h:1", "f1", "x") == 0
    assert r.hsetnx("h:1", "f5", "x") == 1
    assert r.hincrby("h:1", "f4", 10) == 14
    assert r.hincrbyfloat("h:1", "f6", "0.5") == 0.5
    assert r.hdel("h:1", "f1", "f2", "nope") == 2
    assert r.hlen("h:1") == 4
    assert r.type("h:1") == b"hash"
    r.set("h:s", "str")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.hget("h:s", "f")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.get("h:1")
    assert r.hgetall("h:none") == {}


def test_hscan(gw, r):
    r.delete("h:big")
    fields = {f"f{i}": f"v{i}" for i in range(1000)}
    assert r.hset("h:big", mapping=fields) == 1000
    seen = {}
    for f, v in r.hscan_iter("h:big", count=50):
        assert f not in seen, f"HSCAN returned {f!r} twice"
        seen[f] = v
    assert seen == {k.encode(): v.encode() for k, v in fields.items()}
    got = dict(r.hscan_iter("h:big", match="f99*"))
    assert set(got) == {b"f99"} | {f"f99{i}".encode() for i in range(10)}


# ---------------------------------------------------- scan, keys, placement --

def test_scan_keys_dbsize_and_spread(gw, clean):
    r = clean
    n = 3000
    bulk_load(gw.gport, n, prefix=b"sc:", value=b"v", batch=500)
    assert r.dbsize() == n
    seen = {}
    for k in r.scan_iter(count=100):
        seen[k] = seen.get(k, 0) + 1
    dups = {k: c for k, c in seen.items() if c > 1}
    assert not dups, f"SCAN returned {len(dups)} keys more than once, e.g. {list(dups.items())[:5]}"
    want = {b"sc:%d" % i for i in range(n)}
    assert set(seen) == want, f"missing {len(want - set(seen))}, extra {len(set(seen) - want)}"
    # MATCH and TYPE are forwarded to every shard
    assert sorted(r.scan_iter(match="sc:12*", count=1000)) == sorted(
        k for k in want if k.startswith(b"sc:12"))
    assert len(list(r.scan_iter(_type="hash"))) == 0
    assert len(list(r.scan_iter(_type="string", count=1000))) == n
    # a bad cursor
    with pytest.raises(redis.ResponseError, match="invalid cursor"):
        r.scan(cursor="abc")
    # KEYS merges every shard
    assert sorted(r.keys("*")) == sorted(want)
    assert sorted(r.keys("sc:299?")) == sorted(b"sc:299%d" % i for i in range(10))
    # every shard holds a fair share: each node > 20 % of the keys
    sizes = {nd.name: nd.client(timeout=5).dbsize() for nd in gw.nodes}
    assert sum(sizes.values()) == n, sizes
    for name, sz in sizes.items():
        assert sz > 0.2 * n, f"node {name} holds {sz} of {n} keys: {sizes}"
    # FLUSHALL reaches every shard
    assert r.flushall() is True
    assert r.dbsize() == 0
    assert [nd.client(timeout=5).dbsize() for nd in gw.nodes] == [0, 0, 0]
    assert list(r.scan_iter()) == []
    assert r.keys("*") == []


def test_hash_tags_keep_keys_together(gw, r):
    homes = set()
    for u in range(30):
        keys = [f"{{user{u}}}.a", f"{{user{u}}}.b", f"x{{user{u}}}y", f"{{user{u}}}"]
        for k in keys:
            r.set(k, "1")
        nodes = {node_of(gw, k).name for k in keys}
        assert len(nodes) == 1, f"keys of tag user{u} on {nodes}"
        homes |= nodes
    assert len(homes) == 3, f"30 tags all landed on {homes}"
    # Redis's rule: the first '{' and the first '}' after it
    for tag, keys in (("bar", ["{bar}", "foo{bar}{zap}", "x{bar}}"]),
                      ("{bar", ["{{bar}", "foo{{bar}}zap"])):
        for k in keys:
            r.set(k, "1")
        nodes = {node_of(gw, k).name for k in keys}
        assert len(nodes) == 1, f"tag {tag!r}: {keys} on {nodes}"
    # an empty tag {} is not a tag: the whole key is hashed (Redis rule)
    spots = {node_of(gw, k).name for k in (f"{{}}k{i}" for i in range(30)) if r.set(k, "1")}
    assert len(spots) > 1, "keys with an empty {} all on one node"


# ------------------------------------------------------------------ multi-key --

def _spread_keys(n, prefix):
    return [f"{prefix}{i}" for i in range(n)]


def test_mset_mget_del_unlink_exists_100_keys(gw, r):
    keys = _spread_keys(100, "mk:")
    r.delete(*keys)
    assert r.mset({k: f"val-{k}" for k in keys}) is True
    # the keys really are spread over every shard
    where = {}
    for k in keys:
        where.setdefault(node_of(gw, k).name, []).append(k)
    assert len(where) == 3, {n: len(v) for n, v in where.items()}
    # MGET merged in request order, missing keys as nil, duplicates repeated
    ask = []
    for i, k in enumerate(keys):
        ask.append(k)
        if i % 7 == 0:
            ask.append(f"mk:missing{i}")
        if i % 11 == 0:
            ask.append(keys[(i * 37) % 100])
    got = r.mget(ask)
    exp = [f"val-{k}".encode() if not k.startswith("mk:missing") else None for k in ask]
    assert got == exp
    rnd = random.Random(7)
    shuffled = keys[:] + keys[:10]
    rnd.shuffle(shuffled)
    assert r.mget(shuffled) == [f"val-{k}".encode() for k in shuffled]
    # EXISTS counts duplicates like Redis
    assert r.exists(*keys) == 100
    assert r.exists(*(keys + keys[:5] + ["mk:none"])) == 105
    # DEL / UNLINK count each existing key once
    assert r.delete(*(keys[:50] + keys[:50] + ["mk:none"])) == 50
    assert r.exists(*keys) == 50
    assert r.unlink(*(keys[50:] + ["mk:none", keys[99]])) == 50
    assert r.exists(*keys) == 0
    assert r.mget(keys) == [None] * 100
    # MSET with an odd argument count
    with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
        r.execute_command("MSET", "a", "1", "b")
    # MSET with the same key twice: the last value wins
    assert r.execute_command("MSET", "mk:d", "1", "mk:e", "x", "mk:d", "2") is True
    assert r.get("mk:d") == b"2"


def test_concurrent_multikey_clients(gw):
    """8 threads, each MSETting 30 keys spread over every shard with its own
    values and reading them back with MGET, for 2 seconds: no mixups."""
    stop = time.monotonic() + 2.0
    errors = []
    counts = [0] * 8

    def run(t):
        rc = gw.client(timeout=10)
        keys = [f"cc:{t}:{i}" for i in range(30)]
        shared = [f"cc:shared:{i}" for i in range(10)]
        n = 0
        try:
            while time.monotonic() < stop:
                n += 1
                vals = {k: f"{t}-{n}-{k}" for k in keys}
                assert rc.mset(vals) is True
                got = rc.mget(keys + shared)
                if got[:30] != [vals[k].encode() for k in keys]:
                    errors.append(f"thread {t} round {n}: MGET {got[:3]}...")
                    return
                if rc.exists(*keys) != 30:
                    errors.append(f"thread {t}: EXISTS != 30")
                    return
                rc.mset({k: f"{t}" for k in shared})
            assert rc.delete(*keys) == 30
            counts[t] = n
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"thread {t}: {e!r}")
        finally:
            rc.close()
    threads = [threading.Thread(target=run, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=30)
    assert not errors, errors[:5]
    assert all(c > 10 for c in counts), counts


# ----------------------------------------------------------- gaps and locals --

def test_known_gaps_answer_clear_errors(gw, r):
    with pytest.raises(redis.ResponseError) as e:
        r.execute_command("HELLO", "4")
    assert str(e.value).startswith("NOPROTO"), str(e.value)


# --------------------------------------------------------------- transactions --

def test_transaction_in_one_shard(gw, clean):
    r = clean
    p = r.pipeline(transaction=True)
    p.set("{tx}a", "1").incr("{tx}n").incrby("{tx}n", 41).get("{tx}a").mget("{tx}a", "{tx}n")
    assert p.execute() == [True, 1, 42, b"1", [b"1", b"42"]]
    # raw: +OK, +QUEUED per command, then EXEC's array
    with connect(gw.gport) as s:
        s.sendall(resp_encode("MULTI") + resp_encode("SET", "{tx}b", "x") +
                  resp_encode("GET", "{tx}b") + resp_encode("EXEC"))
        want = b"+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n$1\r\nx\r\n"
        assert read_exact(s, len(want)) == want
    # an empty transaction, and DISCARD
    assert r.execute_command("MULTI") in (True, b"OK")
    assert r.execute_command("EXEC") == []
    assert r.execute_command("MULTI") in (True, b"OK")
    assert r.execute_command("INCR", "{tx}gone") == b"QUEUED"
    assert r.execute_command("DISCARD") in (True, b"OK")
    assert r.get("{tx}gone") is None
    # a runtime error is one element of EXEC's reply; the rest still runs
    p = r.pipeline(transaction=True)
    p.set("{tx}s", "text").incr("{tx}s").set("{tx}after", "ok")
    res = p.execute(raise_on_error=False)
    assert res[0] is True and isinstance(res[1], redis.ResponseError) and res[2] is True
    assert r.get("{tx}after") == b"ok"
    # keyless and fan-out-free commands ride along
    p = r.pipeline(transaction=True)
    p.ping().echo("e").get("{tx}a")
    assert p.execute() == [True, b"e", b"1"]
    # a large transaction
    p = r.pipeline(transaction=True)
    for i in range(2000):
        p.incr("{tx}big")
    assert p.execute()[-1] == 2000


def test_transaction_errors_match_redis(gw, r):
    c = Resp(gw.gport)
    try:
        def err(*args):
            rep = c.call(*args)
            assert isinstance(rep, RespError), (args, rep)
            return str(rep)
        assert err("EXEC") == "ERR EXEC without MULTI"
        assert err("DISCARD") == "ERR DISCARD without MULTI"
        assert c.call("MULTI") == b"OK"
        assert err("MULTI") == "ERR MULTI calls can not be nested"
        assert err("WATCH", "{tx}a") == "ERR WATCH inside MULTI is not allowed"
        assert c.call("SET", "{tx}e", "1") == b"QUEUED"
        assert err("NOSUCHCMD", "x").startswith("ERR unknown command 'NOSUCHCMD'")
        assert err("EXEC") == "EXECABORT Transaction discarded because of previous errors."
        assert c.call("MULTI") == b"OK"
        assert err("GET") == "ERR wrong number of arguments for 'get' command"
        assert err("EXEC") == "EXECABORT Transaction discarded because of previous errors."
        assert c.call("MULTI") == b"OK"
        assert err("CLIENT", "ID").startswith("ERR cairn gateway: client cannot be used inside MULTI")
        assert err("EXEC").startswith("EXECABORT")
        assert c.call("GET", "{tx}e") is None
    finally:
        c.close()


def test_transaction_across_shards_is_refused(gw, r):
    a, b = keys_on_different_shards(gw, r, "txs:")
    r.delete(a, b)
    c = Resp(gw.gport)
    try:
        assert c.call("MULTI") == b"OK"
        assert c.call("SET", a, "1") == b"QUEUED"
        rep = c.call("SET", b, "2")
        assert isinstance(rep, RespError) and str(rep).startswith("CROSSSHARD"), rep
        rep = c.call("EXEC")
        assert isinstance(rep, RespError) and str(rep).startswith("EXECABORT"), rep
        assert r.get(a) is None, "nothing of a refused transaction may run"
        # fan-out commands span every shard
        assert c.call("MULTI") == b"OK"
        assert str(c.call("DBSIZE")).startswith("CROSSSHARD")
        assert c.call("DISCARD") == b"OK"
        # watched keys too
        assert str(c.call("WATCH", a, b)).startswith("CROSSSHARD")
        assert c.call("WATCH", a) == b"OK"
        assert str(c.call("WATCH", b)).startswith("CROSSSHARD")
        assert c.call("MULTI") == b"OK"
        # a command naming another shard than the watched keys: refused
        # when queued, so EXEC aborts like any refused transaction
        assert str(c.call("SET", b, "x")).startswith("CROSSSHARD")
        rep = c.call("EXEC")
        assert isinstance(rep, RespError) and str(rep).startswith("EXECABORT"), rep
        assert r.get(b) is None
    finally:
        c.close()


def test_watch(gw, clean):
    r = clean
    other = gw.client()
    try:
        r.set("{w}k", "0")
        # untouched: EXEC runs
        assert r.execute_command("WATCH", "{w}k") in (True, b"OK")
        r.execute_command("MULTI")
        r.execute_command("SET", "{w}k", "1")
        assert r.execute_command("EXEC") == [b"OK"]
        # touched by another client: EXEC answers nil, nothing runs
        r.execute_command("WATCH", "{w}k", "{w}j")
        assert other.set("{w}k", "other") is True
        r.execute_command("MULTI")
        r.execute_command("SET", "{w}k", "mine")
        assert r.execute_command("EXEC") is None
        assert r.get("{w}k") == b"other"
        # UNWATCH and DISCARD end the watch
        r.execute_command("WATCH", "{w}k")
        other.set("{w}k", "again")
        r.execute_command("UNWATCH")
        r.execute_command("MULTI")
        r.execute_command("SET", "{w}k", "after-unwatch")
        assert r.execute_command("EXEC") == [b"OK"]
        # a client's own earlier write does not void its later watch
        with connect(gw.gport) as s:
            s.sendall(resp_encode("SET", "{w}k", "pipelined") + resp_encode("WATCH", "{w}k") +
                      resp_encode("MULTI") + resp_encode("GET", "{w}k") + resp_encode("EXEC"))
            want = b"+OK\r\n+OK\r\n+OK\r\n+QUEUED\r\n*1\r\n$9\r\npipelined\r\n"
            assert read_exact(s, len(want)) == want
    finally:
        other.close()


def test_watch_optimistic_increments_are_exact(gw, clean):
    """redis-py's transaction() helper (WATCH, GET, MULTI/SET/EXEC, retry on
    WatchError) from 4 threads: every increment lands exactly once."""
    clean.set("{opt}n", "0")
    errors = []

    def worker():
        c = gw.client()
        try:
            for _ in range(50):
                def inc(pipe):
                    v = int(pipe.get("{opt}n"))
                    pipe.multi()
                    pipe.set("{opt}n", v + 1)
                c.transaction(inc, "{opt}n")
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
        finally:
            c.close()
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors[:3]
    assert clean.get("{opt}n") == b"200"


def test_local_commands(gw, r):
    assert r.ping() is True
    assert r.echo("hi") == b"hi"
    with connect(gw.gport) as s:
        s.sendall(resp_encode("PING", "msg"))
        assert read_exact(s, 9) == b"$3\r\nmsg\r\n"
    assert r.execute_command("SELECT", "0") in (True, b"OK")
    with pytest.raises(redis.ResponseError, match="out of range"):
        r.execute_command("SELECT", "1")
    assert r.client_setname("gwtest") is True
    assert r.client_getname() == b"gwtest" or r.client_getname() == "gwtest"
    assert isinstance(r.client_id(), int)
    hello = r.execute_command("HELLO", "2")
    assert b"proto" in hello
    t = r.time()
    assert abs(t[0] - time.time()) < 5
    raw = Resp(gw.gport)
    assert raw.call("COMMAND", "COUNT") > 50
    raw.close()
    info = gw.gw_info()
    assert info["role"] == "gateway"
    assert int(info["shards"]) == 3
    assert len(info["node_stats"]) == 3
    for st in info["node_stats"].values():
        assert set(st) >= {"requests", "errors", "outstanding", "p50_us", "p99_us"}
    assert r.execute_command("CAIRN", "READPOLICY") == b"primary"
    with pytest.raises(redis.ResponseError, match="usage"):
        r.execute_command("CAIRN", "READPOLICY", "bogus")
    with pytest.raises(redis.ResponseError, match="unknown command"):
        r.execute_command("NOSUCHCOMMAND", "x")
    with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
        r.execute_command("GET")
    with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
        r.execute_command("GET", "a", "b")


# The gateway answers these itself; each must read as redis-server's does.
LOCAL_SEQ = [
    ("PING", "a", "b"), ("SELECT", "abc"), ("SELECT", "-1"), ("SELECT", "0"), ("CLIENT", "ID", "x"),
    ("CLIENT", "SETNAME"), ("CLIENT", "SETNAME", "a", "b"), ("CLIENT", "SETNAME", "a b"),
    ("CLIENT", "GETNAME"), ("CLIENT", "SETNAME", "x"), ("CLIENT", "SETNAME", ""), ("CLIENT", "GETNAME"),
    ("CLIENT", "NOSUCH"), ("CONFIG", "GET"), ("CONFIG", "SET"), ("CONFIG", "SET", "a"), ("CONFIG", "FOO"),
    ("CONFIG", "RESETSTAT"), ("INFO", "nosuch"), ("COMMAND", "COUNT", "x"), ("COMMAND", "INFO", "nosuch"),
    ("CLIENT", "KILL", "1.2.3.4:5"), ("CLIENT", "KILL", "ID", "0"), ("CLIENT", "KILL", "ID", "abc"),
    ("CLIENT", "KILL", "TYPE", "foo"), ("CLIENT", "KILL", "USER", "foo"), ("CLIENT", "KILL", "TYPE", "pubsub"),
    ("CLIENT", "KILL", "ADDR", "1.2.3.4:5"), ("CLIENT", "KILL", "SKIPME", "maybe"),
    ("CLIENT", "KILL", "a", "b", "c"), ("CLIENT", "KILL", "ID", "999999"),
]


def test_client_kill(gw):
    victim, killer = Resp(gw.gport), Resp(gw.gport)
    try:
        vid = victim.call("CLIENT", "ID")
        assert killer.call("CLIENT", "KILL", "ID", vid) == 1
        with pytest.raises((ConnectionError, OSError, EOFError)):
            victim.call("PING")
        # its own id with SKIPME no: answered, then closed
        kid = killer.call("CLIENT", "ID")
        assert killer.call("CLIENT", "KILL", "ID", kid, "SKIPME", "no") == 1
        assert killer.closed_within(5)
    finally:
        victim.close()
        killer.close()


def test_local_commands_match_redis(gw, tmp_path):
    if not shutil.which("redis-server"):
        pytest.skip("redis-server not installed")
    ref = RedisServer(tmp_path).start()
    try:
        want, got = replies(ref.port, LOCAL_SEQ), replies(gw.gport, LOCAL_SEQ)
    finally:
        ref.stop()
    diffs = [(cmd, w, g) for cmd, w, g in zip(LOCAL_SEQ, want, got) if w != g]
    assert not diffs, "\n".join(f"{cmd}: redis {w!r} gateway {g!r}" for cmd, w, g in diffs)


def test_info_sections(gw):
    every, all_, mem, two, none = (v.decode() for v in replies(gw.gport, [
        ("INFO",), ("INFO", "all"), ("INFO", "memory"), ("INFO", "server", "CLUSTER"), ("INFO", "nosuch")]))
    for name in ("# Server", "# Clients", "# Memory", "# Stats", "# Cluster"):
        assert name in every and name in all_, name
    assert mem.startswith("# Memory") and "used_memory:" in mem and "# Server" not in mem
    assert "# Server" in two and "# Cluster" in two and "# Stats" not in two
    assert none == ""


def test_node_only_and_admin_commands(gw, r):
    for cmd in (("SAVE",), ("BGSAVE",), ("LASTSAVE",), ("SHUTDOWN",)):
        with pytest.raises(redis.ResponseError) as e:
            r.execute_command(*cmd)
        assert "node command" in str(e.value), (cmd, str(e.value))
    with pytest.raises(redis.ResponseError, match="configure the gateway"):
        r.execute_command("CONFIG", "SET", "maxmemory", "1")
    assert r.execute_command("CONFIG", "GET", "save") in ([], {})
    assert r.execute_command("CLIENT", "SETNAME", "lister") in (True, b"OK")
    lst = r.execute_command("CLIENT", "LIST")
    lst = lst if isinstance(lst, (bytes, str)) else str(lst)
    assert "lister" in (lst.decode() if isinstance(lst, bytes) else lst)
    # MSETNX inside one shard (hash tag) works; all-or-nothing
    r.delete("{mn}a", "{mn}b", "{mn}c")
    assert r.msetnx({"{mn}a": "1", "{mn}b": "2"}) is True
    assert r.msetnx({"{mn}b": "x", "{mn}c": "3"}) is False
    assert r.mget(["{mn}a", "{mn}b", "{mn}c"]) == [b"1", b"2", None]
    # FLUSHDB reaches every shard like FLUSHALL
    r.mset({f"fd:{i}": "1" for i in range(30)})
    assert r.flushdb() is True
    assert r.dbsize() == 0
    assert all(nd.client(timeout=5).dbsize() == 0 for nd in gw.nodes)


def test_randomkey_with_one_key(gw, clean):
    """RANDOMKEY answers nil only when the whole keyspace is empty."""
    r = clean
    assert r.randomkey() is None
    r.set("rk:only", "1")
    got = [r.randomkey() for _ in range(30)]
    assert got == [b"rk:only"] * 30, f"RANDOMKEY with one key in the cluster: {got}"


# -------------------------------------------------------------------- clients --

def cli(c, *args, stdin=None, timeout=30):
    p = subprocess.run(["redis-cli", "-h", HOST, "-p", str(c.gport)] + list(args),
                       input=stdin, capture_output=True, timeout=timeout)
    return p


def test_redis_cli(gw, clean):
    assert cli(gw, "SET", "cli:a", "hello world").stdout == b"OK\n"
    assert cli(gw, "GET", "cli:a").stdout == b"hello world\n"
    assert cli(gw, "--no-raw", "GET", "cli:none").stdout == b"(nil)\n"
    assert cli(gw, "--no-raw", "INCR", "cli:n").stdout == b"(integer) 1\n"
    assert cli(gw, "MSET", "cli:x", "1", "cli:y", "2", "cli:z", "3").stdout == b"OK\n"
    assert cli(gw, "MGET", "cli:x", "cli:none", "cli:z").stdout == b"1\n\n3\n"
    assert cli(gw, "HSET", "cli:h", "f", "v").stdout == b"1\n"
    assert cli(gw, "DBSIZE").stdout == b"6\n"
    p = cli(gw, "--no-raw", "MULTI")
    assert p.stdout == b"OK\n", p.stdout
    # --pipe: 5,000 commands plus its ECHO marker
    cmds = b"".join(resp_encode("SET", f"cli:p{i}", i) for i in range(5000))
    p = cli(gw, "--pipe", stdin=cmds)
    assert p.returncode == 0, p.stdout + p.stderr
    assert b"errors: 0, replies: 5000" in p.stdout, p.stdout
    # --scan walks every shard
    p = cli(gw, "--scan", "--pattern", "cli:p*")
    got = p.stdout.split()
    assert len(got) == 5000 and len(set(got)) == 5000
    p = cli(gw, "--bigkeys")
    assert p.returncode == 0, p.stderr
    assert b"5005 strings" in p.stdout, p.stdout[-800:]
    p = cli(gw, "INFO")
    assert b"# Cluster" in p.stdout
    # inline commands (re-encoded by the gateway), one at a time
    with connect(gw.gport) as s:
        s.sendall(b"SET cli:inline \"two words\"\r\n")
        assert read_exact(s, 5) == b"+OK\r\n"
        s.sendall(b"GET cli:inline\r\n")
        assert read_exact(s, 15) == b"$9\r\ntwo words\r\n"


def _hiredis_client():
    path = os.environ.get("HIREDIS_CLIENT")
    if path and os.path.exists(path):
        return path
    if subprocess.run(["pkg-config", "--exists", "hiredis"]).returncode != 0:
        pytest.skip("hiredis development files not installed")
    p = subprocess.run(["make", "-s", "build/tests/hiredis_client"], cwd=ROOT,
                       capture_output=True, timeout=120)
    assert p.returncode == 0, p.stdout.decode() + p.stderr.decode()
    return os.path.join(ROOT, "build", "tests", "hiredis_client")


def test_hiredis_client(gw, clean):
    exe = _hiredis_client()
    p = subprocess.run([exe, HOST, str(gw.gport)], capture_output=True, timeout=60)
    out = p.stdout.decode() + p.stderr.decode()
    assert p.returncode == 0, out
    assert "checks passed" in out and out.startswith("hiredis: "), out


# ---------------------------------------------------------------- pipelining --

def test_pipeline_10000_commands(gw, r):
    n = 10_000
    p = r.pipeline(transaction=False)
    for i in range(n):
        p.set(f"pl:{i}", f"v{i}")
    assert p.execute() == [True] * n
    p = r.pipeline(transaction=False)
    for i in range(n):
        p.get(f"pl:{i}")
    assert p.execute() == [f"v{i}".encode() for i in range(n)]
    # mixed kinds, one send on a raw socket: local, single-key, multi-shard
    conn = Resp(gw.gport, timeout=30)
    try:
        out, want = [], []
        for i in range(n):
            m = i % 5
            if m == 0:
                out.append(resp_encode("PING")), want.append(b"PONG")
            elif m == 1:
                out.append(resp_encode("GET", f"pl:{i}")), want.append(f"v{i}".encode())
            elif m == 2:
                out.append(resp_encode("MGET", f"pl:{i}", f"pl:{i - 1}", "pl:none"))
                want.append([f"v{i}".encode(), f"v{i - 1}".encode(), None])
            elif m == 3:
                out.append(resp_encode("EXISTS", f"pl:{i}", f"pl:{i + 1}", "pl:none"))
                want.append(2 if i + 1 < n else 1)
            else:
                out.append(resp_encode("ECHO", str(i))), want.append(str(i).encode())
        conn.send(b"".join(out))
        got = [conn.read() for _ in range(n)]
        bad = [(i, g, w) for i, (g, w) in enumerate(zip(got, want)) if g != w]
        assert not bad, f"{len(bad)} replies wrong, first {bad[:3]}"
    finally:
        conn.close()


def test_pipeline_same_key_order(gw, r):
    """Redis executes one connection's pipelined commands in order; through
    the gateway a write followed by a read or write of the same key must too."""
    conn = Resp(gw.gport, timeout=10)
    try:
        n = 1000
        conn.send(b"".join(resp_encode("SET", "po:k", f"v{i}") + resp_encode("GET", "po:k")
                           for i in range(n)))
        stale = 0
        for i in range(n):
            assert conn.read() == b"OK"
            if conn.read() != f"v{i}".encode():
                stale += 1
        reversed_sets = 0
        for _ in range(100):
            conn.send(resp_encode("SET", "po:w", "first") + resp_encode("SET", "po:w", "second"))
            assert conn.read() == b"OK" and conn.read() == b"OK"
            if conn.call("GET", "po:w") != b"second":
                reversed_sets += 1
        lost = 0
        for _ in range(100):
            conn.send(resp_encode("DEL", "po:x") + resp_encode("SET", "po:x", "1"))
            conn.read(), conn.read()
            if conn.call("GET", "po:x") != b"1":
                lost += 1
        conn.call("DEL", "po:c")
        conn.send(b"".join(resp_encode("INCR", "po:c") + resp_encode("GET", "po:c")
                           for _ in range(500)))
        incr_then_get = 0
        for _ in range(500):
            a, b = conn.read(), conn.read()
            if b is None or int(b) != a:
                incr_then_get += 1
    finally:
        conn.close()
    assert (stale, reversed_sets, lost, incr_then_get) == (0, 0, 0, 0), (
        f"pipelined same-key commands reordered: GET after SET stale {stale}/{n}; "
        f"'SET first; SET second' left 'first' {reversed_sets}/100; "
        f"'DEL x; SET x 1' left x missing {lost}/100; INCR;GET mismatched {incr_then_get}/500")


def test_pipeline_deeper_than_slot_window(gw, r):
    """More pipelined commands than the gateway keeps in flight per client
    (10,000): the rest must flow once replies leave, not stall."""
    n = 30_000
    conn = Resp(gw.gport, timeout=10)
    try:
        data = b"".join(resp_encode("SET", f"pd:{i}", "v") for i in range(n))
        sender = threading.Thread(target=conn.send, args=(data,), daemon=True)
        sender.start()
        got = 0
        try:
            for _ in range(n):
                assert conn.read() == b"OK"
                got += 1
        except (socket.timeout, TimeoutError):
            pass
        sender.join(timeout=10)
    finally:
        conn.close()
    assert got == n, f"only {got} of {n} pipelined replies arrived (then nothing for 10 s)"
    assert_gw_alive(gw)


def test_disconnect_of_a_paused_client_is_noticed(gw):
    """A client whose reading the gateway paused (deep pipeline) and that
    then hangs up must be closed and freed, not kept forever."""
    base = int(gw.gw_info()["connected_clients"])
    conn = Resp(gw.gport, timeout=5)
    data = b"".join(resp_encode("SET", f"pz:{i}", "v") for i in range(30_000))
    t = threading.Thread(target=lambda: _send_quiet(conn, data), daemon=True)
    t.start()
    time.sleep(1.0)
    conn.close()
    t.join(timeout=10)
    wait_until(lambda: int(gw.gw_info()["connected_clients"]) <= base, timeout=5,
               what=f"connected_clients back to {base} after the paused client hung up")


def _send_quiet(conn, data):
    try:
        conn.send(data)
    except OSError:
        pass


# ----------------------------------------------------------------- bad input --

PROTO_ERRORS = {
    "unexpected-colon": (b"*2\r\n$3\r\nGET\r\n:5\r\n", "Protocol error: expected '$', got ':'"),
    "star-abc": (b"*abc\r\n", "Protocol error: invalid multibulk length"),
    "bulk-minus-5": (b"*1\r\n$-5\r\n", "Protocol error: invalid bulk length"),
    "huge-count": (b"*99999999999\r\n", "Protocol error: invalid multibulk length"),
    "huge-bulk": (b"*1\r\n$99999999999\r\n", "Protocol error: invalid bulk length"),
    "count-over-limit": (b"*1048577\r\n", "Protocol error: invalid multibulk length"),
    "unbalanced-quotes": (b'SET "foo bar\r\n', "Protocol error: unbalanced quotes in request"),
    "inline-70k-no-newline": (b"a" * 70000, "Protocol error: too big inline request"),
}


@pytest.mark.parametrize("case", list(PROTO_ERRORS))
def test_malformed_resp_closes_only_that_connection(gw, case):
    data, msg = PROTO_ERRORS[case]
    bystander = connect(gw.gport)
    bystander.sendall(resp_encode("SET", "bystander", "1"))
    assert read_exact(bystander, 5) == b"+OK\r\n"
    with connect(gw.gport) as s:
        # a good command first: its reply must still arrive, then the error
        s.sendall(resp_encode("SET", "bi:before", case) + resp_encode("PING") + data)
        got, closed = read_until_closed(s, timeout=5)
    want = b"+OK\r\n+PONG\r\n-ERR " + msg.encode() + b"\r\n"
    assert closed, f"{case}: the gateway did not close the connection (got {got[:200]!r})"
    assert got == want, f"{case}: got {got[:300]!r}, want {want!r}"
    bystander.sendall(resp_encode("GET", "bystander"))
    assert read_exact(bystander, 7) == b"$1\r\n1\r\n"
    bystander.close()
    assert_gw_alive(gw)


def test_random_garbage_then_fine(gw):
    rnd = random.Random(42)
    for _ in range(20):
        with connect(gw.gport) as s:
            try:
                s.sendall(bytes(rnd.getrandbits(8) for _ in range(20_000)))
            except OSError:
                pass
            read_until_closed(s, timeout=3)
    assert_gw_alive(gw)


def test_clients_leaving_with_requests_in_flight(gw):
    """Clients that send a burst (single-key, multi-shard, fan-out) and hang
    up before the replies: the gateway frees them and keeps serving."""
    base = int(gw.gw_info()["connected_clients"])
    burst = b"".join(resp_encode("SET", f"lv:{i}", "v") + resp_encode("MGET", f"lv:{i}", f"lv:{i + 1}",
                                                                       f"lv:{i + 2}")
                     for i in range(500)) + resp_encode("DBSIZE") + resp_encode("KEYS", "lv:1*")
    for _ in range(100):
        s = connect(gw.gport)
        s.sendall(burst)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()  # RST with requests in flight
    wait_until(lambda: int(gw.gw_info()["connected_clients"]) <= base, timeout=10,
               what="the departed clients to be freed")
    assert_gw_alive(gw)


def test_quit_after_pipelined_commands(gw):
    with connect(gw.gport) as s:
        s.sendall(resp_encode("SET", "q:1", "v") + resp_encode("GET", "q:1") + resp_encode("QUIT"))
        got, closed = read_until_closed(s, timeout=5)
    assert closed
    assert got == b"+OK\r\n$1\r\nv\r\n+OK\r\n", f"got {got!r}"


def test_client_that_never_reads(gw, r):
    r.set("nr:big", b"b" * 100_000)
    base = int(gw.gw_info()["connected_clients"])
    pid = gw.gateway.proc.pid
    rss0 = rss_of(pid)
    greedy = connect(gw.gport, timeout=30)
    payload = resp_encode("GET", "nr:big") * 50_000

    def sender():
        try:
            greedy.sendall(payload)
        except OSError:
            pass

    t = threading.Thread(target=sender, daemon=True)
    t.start()
    try:
        time.sleep(0.5)
        worst_ping, worst_rss, worst_set = 0.0, 0, 0.0
        other = gw.client(timeout=5)
        for i in range(8):
            worst_ping = max(worst_ping, ping_time(gw.gport))
            t0 = time.monotonic()
            assert other.set(f"nr:other{i}", "x") is True
            assert other.get(f"nr:other{i}") == b"x"
            worst_set = max(worst_set, time.monotonic() - t0)
            worst_rss = max(worst_rss, rss_of(pid))
            time.sleep(0.2)
        other.close()
        other.connection_pool.disconnect()  # redis-py 4.3's close() keeps the socket pooled
        problems = []
        if worst_ping >= 1.0:
            problems.append(f"PING took {worst_ping:.3f}s")
        if worst_set >= 1.0:
            problems.append(f"another client's SET+GET took {worst_set:.3f}s")
        if worst_rss >= rss0 + (300 << 20):
            problems.append(f"gateway RSS {worst_rss >> 20} MB (was {rss0 >> 20} MB)")
        assert not problems, "beside a client that never reads 100 KB replies: " + "; ".join(problems)
    finally:
        greedy.close()
        t.join(timeout=35)
    wait_until(lambda: int(gw.gw_info()["connected_clients"]) <= base, timeout=10,
               what="the non-reader to be gone (connected_clients back to where it was)")
    assert_gw_alive(gw)


def test_clients_that_never_read_megabyte_replies(gw, r):
    """Four clients pipelining GETs of a 1 MB value without reading: the
    gateway keeps only a few of their replies in flight (it measured 1 GB
    of RSS before it bounded requests in flight by reply size)."""
    r.set("nr:mb", b"m" * (1 << 20))
    pid = gw.gateway.proc.pid
    rss0 = rss_of(pid)
    socks, threads = [], []
    for _ in range(4):
        s = connect(gw.gport, timeout=30)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        socks.append(s)

        def send(s=s):
            try:
                s.sendall(resp_encode("GET", "nr:mb") * 20_000)
            except OSError:
                pass
        t = threading.Thread(target=send, daemon=True)
        t.start()
        threads.append(t)
    try:
        worst = 0
        for _ in range(12):
            time.sleep(0.25)
            worst = max(worst, rss_of(pid))
        assert ping_time(gw.gport) < 1.0
        assert worst < rss0 + (150 << 20), f"gateway RSS {worst >> 20} MB (was {rss0 >> 20} MB)"
    finally:
        for s in socks:
            s.close()
        for t in threads:
            t.join(timeout=35)
    assert_gw_alive(gw)


def test_bad_addresses_fail_at_start():
    """A mistyped --manager (gateway, node) or --etcd (manager) is refused at
    start with a message naming it, not accepted and retried forever."""
    for argv, want in (
            (["gateway", "--port", str(free_port()), "--manager", "nohostport"], "'nohostport' is not an ip:port"),
            (["gateway", "--port", str(free_port()), "--manager", "127.0.0.1:7100,bad"], "'bad' is not an ip:port"),
            (["node", "--port", str(free_port()), "--manager", "x:1"], "'x:1' is not an ip:port"),
            (["manager", "--port", str(free_port()), "--etcd", "notaurl"], "'notaurl' is not a list of etcd")):
        p = subprocess.run([CAIRN_BIN] + argv, capture_output=True, text=True, timeout=10)
        assert p.returncode == 1 and want in p.stderr, (argv, p.returncode, p.stderr)
    help_ = subprocess.run([CAIRN_BIN, "node", "--help"], capture_output=True, text=True, timeout=10)
    assert "--repl-lease-ms" in help_.stderr + help_.stdout


def test_1000_idle_connections(gw, r):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1500:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    r.ping()  # r's own connection is part of the baseline
    base = int(gw.gw_info()["connected_clients"])
    socks = []
    try:
        for _ in range(1000):
            socks.append(connect(gw.gport))
        wait_until(lambda: int(gw.gw_info()["connected_clients"]) >= base + 1000, timeout=10,
                   what="1000 clients connected")
        assert ping_time(gw.gport) < 1.0
        t0 = time.monotonic()
        assert r.set("idle:k", "v") is True and r.get("idle:k") == b"v"
        assert time.monotonic() - t0 < 1.0
        # a few of the idle ones wake up and work
        for s in socks[::100]:
            s.sendall(resp_encode("GET", "idle:k"))
            assert read_exact(s, 7) == b"$1\r\nv\r\n"
    finally:
        for s in socks:
            s.close()
    wait_until(lambda: int(gw.gw_info()["connected_clients"]) <= base, timeout=10,
               what="connected_clients back down")
    assert_gw_alive(gw)


# ------------------------------------------------------ node and manager down --

def test_stopped_node_only_affects_its_shard(gw, r):
    """SIGSTOP one shard's node: the other shards answer at once; requests
    for the stopped shard fail with an error within the gateway's timeouts
    (a write says its outcome is unknown), never hang; SIGCONT and all is well."""
    import signal as _signal
    p, port = gw.extra_gateway(["--timeout-ms", "1000", "--retry-ms", "1000"], name="gw-fast")
    rc = redis.Redis(host=HOST, port=port, socket_timeout=15)
    victim = gw.primaries()[0]
    mine, others = None, None
    for i in range(300):
        k = f"stop:{i}"
        rc.set(k, "1")
        if victim.client(timeout=5).exists(k):
            mine = mine or k
        else:
            others = others or k
    assert mine and others
    victim.proc.send_signal(_signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        assert rc.get(others) == b"1"
        assert rc.set(others, "2") is True
        assert time.monotonic() - t0 < 0.5
        t0 = time.monotonic()
        with pytest.raises(redis.ResponseError) as e:
            rc.set(mine, "2")
        took_w = time.monotonic() - t0
        assert UNKNOWN_OUTCOME in str(e.value) or str(e.value).startswith("CLUSTERDOWN"), str(e.value)
        t0 = time.monotonic()
        with pytest.raises(redis.ResponseError) as e:
            rc.get(mine)
        took_r = time.monotonic() - t0
        assert took_w < 4 and took_r < 4, (took_w, took_r)
        # a multi-key command touching the stopped shard fails as a whole
        with pytest.raises(redis.ResponseError):
            rc.mget([mine, others])
        # the other shards still answer on another connection meanwhile
        assert r.get(others) == b"2"
    finally:
        victim.proc.send_signal(_signal.SIGCONT)
    wait_until(lambda: rc.get(mine) in (b"1", b"2"), timeout=15, what="the stopped shard back")
    assert rc.set(mine, "3") is True and rc.get(mine) == b"3"
    rc.close()
    p.stop()
    assert_gw_alive(gw)


def test_gateway_survives_manager_outage(tmp_path):
    c = GwCluster(tmp_path, shards=2, replicas=1, fsync="no").start()
    try:
        r = c.client()
        r.set("mo:a", "1")
        c.manager.stop()
        time.sleep(0.5)
        # the gateway keeps serving with the topology it has
        for i in range(50):
            assert r.set(f"mo:{i}", i) is True
        assert r.mget([f"mo:{i}" for i in range(50)]) == [str(i).encode() for i in range(50)]
        assert r.dbsize() >= 50
        # a gateway that never saw a topology answers a clear error
        port = free_port()
        p = Proc("gw-blind", [CAIRN_BIN, "gateway", "--port", str(port), "--manager", c.maddr],
                 os.path.join(str(tmp_path), "gw-blind.log")).start()
        c._started.append(p)
        wait_until(lambda: ping_time(port) < 1, timeout=10, what="gw-blind up")
        conn = Resp(port)
        for args in (("GET", "mo:1"), ("MGET", "mo:1", "mo:2"), ("DBSIZE",), ("SCAN", "0")):
            rep = conn.call(*args)
            assert isinstance(rep, RespError) and str(rep).startswith("CLUSTERDOWN"), (args, rep)
        # the manager returns: the blind gateway learns the topology
        c.manager.start()
        wait_until(lambda: conn.call("GET", "mo:1") == b"1", timeout=20 * TIME_SCALE,
                   what="the new gateway to serve once the manager is back")
        conn.close()
        r.close()
    finally:
        c.stop_all()
    reports = c.sanitizer_reports()
    assert not reports, "\n".join(reports)


# ---------------------------------------------------------------- read policy --

def _node_cmds(n):
    info = n.client(timeout=5).info("stats")
    return int(info.get("total_commands_processed", 0))


def test_readpolicy_replica_on_3_replica_shard(repl3):
    c = repl3
    members = c.shard_nodes()
    assert len(members) == 1
    group = list(members.values())[0]
    assert len(group) == 3, [n.name for n in group]
    primary, secondaries = group[0], group[1:]
    w = c.client()
    n = 300
    assert w.mset({f"rp:{i}": f"v{i}" for i in range(n)}) is True
    w.close()
    before = c.gw_info()["node_stats"]
    cmds_before = {nd.name: _node_cmds(nd) for nd in group}
    rc = c.client(single_connection_client=True)
    assert rc.execute_command("CAIRN", "READPOLICY", "replica") == b"OK"
    assert rc.execute_command("CAIRN", "READPOLICY") == b"replica"
    stale = 0
    for i in range(n):
        if rc.get(f"rp:{i}") != f"v{i}".encode():
            stale += 1
    # replica reads may lag, but must converge to the right values
    wait_until(lambda: all(rc.get(f"rp:{i}") == f"v{i}".encode() for i in range(n)),
               timeout=5, what="replica reads to show every value")
    assert rc.mget([f"rp:{i}" for i in range(n)]) == [f"v{i}".encode() for i in range(n)]
    # writes on a replica-read connection still go to the primary
    assert rc.set("rp:w", "x") is True
    assert rc.incr("rp:cnt") == 1
    after = c.gw_info()["node_stats"]
    cmds_after = {nd.name: _node_cmds(nd) for nd in group}

    def delta(nd):
        a = f"127.0.0.1:{nd.port}"
        return int(after[a]["requests"]) - int(before[a]["requests"])
    sec_reqs = {nd.name: delta(nd) for nd in secondaries}
    assert all(v > 0 for v in sec_reqs.values()), (
        f"secondaries got no reads: gateway per-node requests {sec_reqs}, primary {delta(primary)}")
    assert sum(sec_reqs.values()) >= n, (sec_reqs, delta(primary))
    for nd in secondaries:
        assert cmds_after[nd.name] - cmds_before[nd.name] > 0, (
            f"{nd.name}: node INFO total_commands_processed did not move "
            f"{cmds_before} -> {cmds_after}")
    rc.execute_command("CAIRN", "READPOLICY", "primary")
    p0 = c.gw_info()["node_stats"]
    for i in range(50):
        assert rc.get(f"rp:{i}") == f"v{i}".encode()
    p1 = c.gw_info()["node_stats"]
    for nd in secondaries:
        a = f"127.0.0.1:{nd.port}"
        assert int(p1[a]["requests"]) == int(p0[a]["requests"]), "primary policy read a secondary"
    rc.close()
    if stale:
        print(f"note: {stale}/{n} replica reads right after the MSET were stale")


def test_read_your_writes_on_replicas(repl3):
    """With a replica read policy, a client reads its own writes: each write
    is followed by CAIRN LSN, each replica read is wrapped in CAIRN AFTER
    <lsn> (the replica runs it once it applied that much, else the read goes
    to the primary).  Checked at the node (CAIRN LSN / AFTER) and end to end."""
    c = repl3
    group = list(c.shard_nodes().values())[0]
    primary, secondaries = group[0], group[1:]
    p = Resp(primary.port)
    s = Resp(secondaries[0].port)
    try:
        lsn0 = p.call("CAIRN", "LSN")
        assert p.call("SET", "ryw:node", "1") == b"OK"
        lsn1 = p.call("CAIRN", "LSN")
        assert isinstance(lsn0, int) and lsn1 > lsn0
        assert s.call("CAIRN", "READONLY") == b"OK"
        wait_until(lambda: s.call("CAIRN", "AFTER", lsn1, "GET", "ryw:node") == b"1", timeout=5,
                   what="the secondary to apply the write")
        rep = s.call("CAIRN", "AFTER", lsn1 + 10**9, "GET", "ryw:node")
        assert isinstance(rep, RespError) and str(rep).startswith("TRYAGAIN"), rep
        rep = s.call("CAIRN", "AFTER", lsn1, "SET", "ryw:node", "2")
        assert isinstance(rep, RespError) and str(rep).startswith("NOTPRIMARY"), rep
        assert str(s.call("CAIRN", "AFTER", "x", "GET", "k")).startswith("ERR")
        assert str(s.call("CAIRN", "AFTER", "1", "CAIRN", "LSN")).startswith("ERR")
    finally:
        p.close()
        s.close()
    before = c.gw_info()["node_stats"]
    rc = c.client(single_connection_client=True)
    try:
        assert rc.execute_command("CAIRN", "READPOLICY", "replica") == b"OK"
        assert rc.execute_command("CAIRN", "READYOURWRITES") == b"on"
        stale = []
        for i in range(300):
            rc.set("ryw:k", i)
            got = rc.get("ryw:k")
            if got != str(i).encode():
                stale.append((i, got))
            if i % 50 == 0:
                assert rc.incr("ryw:n") == i // 50 + 1
                assert rc.mget("ryw:k", "ryw:n") == [str(i).encode(), str(i // 50 + 1).encode()]
        assert not stale, f"{len(stale)} reads missed the client's own write: {stale[:5]}"
        # pipelined: the GET leaves before the SET's LSN is back
        for i in range(50):
            pipe = rc.pipeline(transaction=False)
            for j in range(10):
                pipe.set("ryw:p", f"p{i}.{j}")
                pipe.get("ryw:p")
                pipe.mget("ryw:p", "ryw:k")
            got = pipe.execute()
            for j in range(10):
                if got[3 * j + 1] != f"p{i}.{j}".encode() or got[3 * j + 2][0] != f"p{i}.{j}".encode():
                    stale.append((i, j, got[3 * j + 1], got[3 * j + 2]))
        assert not stale, f"{len(stale)} pipelined reads missed the client's own write: {stale[:5]}"
        after = c.gw_info()["node_stats"]
        sec = sum(int(after[f"127.0.0.1:{n.port}"]["requests"]) -
                  int(before[f"127.0.0.1:{n.port}"]["requests"]) for n in secondaries)
        assert sec >= 200, f"only {sec} reads went to the secondaries"
        assert rc.execute_command("CAIRN", "READYOURWRITES", "off") == b"OK"
        assert rc.execute_command("CAIRN", "READYOURWRITES") == b"off"
        assert parse_gw_info(raw_info(c.gport))["read_your_writes"] == "yes"
    finally:
        rc.close()


POLICIES = ["random", "round-robin", "weighted-round-robin", "least-outstanding", "p2c", "ewma"]


@pytest.mark.parametrize("policy", POLICIES)
def test_scheduling_policy_spreads_replica_reads(repl3, policy):
    """A gateway started with --read-policy replica --policy P: 600 reads all
    land on the two secondaries (none on the primary), values right; with
    round-robin they split evenly."""
    c = repl3
    group = list(c.shard_nodes().values())[0]
    primary, secondaries = group[0], group[1:]
    w = c.client()
    w.mset({f"pol:{i}": f"v{i}" for i in range(100)})
    w.close()
    p, port = c.extra_gateway(["--read-policy", "replica", "--policy", policy],
                              name=f"gw-{policy}")
    try:
        rc = redis.Redis(host=HOST, port=port, socket_timeout=10)
        assert rc.execute_command("CAIRN", "READPOLICY") == b"replica"
        wait_until(lambda: all(rc.get(f"pol:{i}") == f"v{i}".encode() for i in range(100)),
                   timeout=5, what="replica reads to converge")
        info0 = parse_gw_info(raw_info(port))["node_stats"]
        n = 600
        wrong = sum(1 for i in range(n) if rc.get(f"pol:{i % 100}") != f"v{i % 100}".encode())
        info1 = parse_gw_info(raw_info(port))
        rc.close()
        st = info1["node_stats"]
        d = {nd.name: int(st[f"127.0.0.1:{nd.port}"]["requests"]) -
             int(info0[f"127.0.0.1:{nd.port}"]["requests"]) for nd in group}
        assert info1["policy"] == policy and info1["read_policy"] == "replica"
        assert wrong == 0
        assert d[primary.name] == 0, f"{policy}: the primary served reads: {d}"
        assert sum(d[x.name] for x in secondaries) == n, d
        if policy != "ewma":  # EWMA may settle on the faster one
            assert all(d[x.name] > 0 for x in secondaries), f"{policy}: {d}"
        if policy in ("round-robin", "weighted-round-robin"):
            assert all(abs(d[x.name] - n / 2) <= 2 for x in secondaries), f"{policy}: {d}"
    finally:
        p.stop()


@pytest.mark.parametrize("rp", ["any", "prefer-replica"])
def test_read_policies_any_and_prefer_replica(repl3, rp):
    c = repl3
    group = list(c.shard_nodes().values())[0]
    primary, secondaries = group[0], group[1:]
    rc = c.client(single_connection_client=True)
    rc.set("rpa:k", "v")
    assert rc.execute_command("CAIRN", "READPOLICY", rp) == b"OK"
    wait_until(lambda: rc.get("rpa:k") == b"v", timeout=5, what="the value on replicas")
    before = c.gw_info()["node_stats"]
    for _ in range(300):
        assert rc.get("rpa:k") == b"v"
    after = c.gw_info()["node_stats"]
    d = {nd.name: int(after[f"127.0.0.1:{nd.port}"]["requests"]) -
         int(before[f"127.0.0.1:{nd.port}"]["requests"]) for nd in group}
    rc.close()
    if rp == "any":
        assert all(v > 0 for v in d.values()), f"READPOLICY any should use every member: {d}"
    else:
        assert d[primary.name] == 0 and all(d[x.name] > 0 for x in secondaries), d


def _counter_load(c, seconds_before, action, settle=1.0, prefix="load"):
    stop = threading.Event()
    workers = [Worker(c, t, stop, prefix=prefix) for t in range(4)]
    for w in workers:
        w.start()
    try:
        time.sleep(seconds_before)
        t_act = time.monotonic()
        result = action()
        t_done = time.monotonic()
        wait_until(lambda: all(any(t > t_done + settle for t in w.ok_times[-5:]) for w in workers),
                   timeout=20 * TIME_SCALE, what="every worker writing again")
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=30)
    return workers, t_act, t_done, result


def _check_exactly_once(c, workers, summary):
    rc = c.client()
    for w in workers:
        v = int(rc.get(w.counter) or 0)
        assert w.incr_ok <= v <= w.incr_ok + w.incr_unknown, (
            f"worker {w.tid}: counter {v}, acknowledged INCRs {w.incr_ok}, "
            f"unknown-outcome {w.incr_unknown}: {summary}")
    keys = [k for w in workers for k, _ in w.acked_sets]
    vals = [v for w in workers for _, v in w.acked_sets]
    got = []
    for i in range(0, len(keys), 500):
        got += rc.mget(keys[i:i + 500])
    missing = [k for k, g, v in zip(keys, got, vals) if g != v]
    assert not missing, f"{len(missing)} acknowledged SETs lost, e.g. {missing[:5]}: {summary}"
    rc.close()


def test_switchover_through_gateway_is_invisible(repl3):
    """cairn ctl switchover under load: the old primary drains first (its
    refusals, TRYAGAIN then NOTPRIMARY, are retried by the gateway), so
    clients see no error at all, and every write is applied exactly once."""
    c = repl3
    group = list(c.shard_nodes().values())[0]
    old = group[0]

    def switch():
        out = c.ctl("switchover", str(list(c.shard_nodes())[0]))
        assert out.returncode == 0, out.stdout + out.stderr
        assert "the old primary drained at LSN" in out.stdout, out.stdout
        wait_until(lambda: c.shard_nodes()[list(c.shard_nodes())[0]][0] is not old, timeout=10,
                   what="a new primary after switchover")
        return c.shard_nodes()[list(c.shard_nodes())[0]][0]
    workers, t0, t1, newp = _counter_load(c, 1.0, switch, prefix="sw")
    errs = [e for w in workers for e in w.errors]
    summary = (f"switchover {old.name} -> {newp.name} in {t1 - t0:.2f}s; "
               f"ops {[w.incr_ok for w in workers]}; errors {[(op, m) for _, op, m in errs][:5]}")
    print(summary)
    unexpected = [u for w in workers for u in w.unexpected]
    assert not unexpected, f"{summary}\nunexpected errors: {unexpected[:10]}"
    _check_exactly_once(c, workers, summary)
    # a planned switchover should cost clients nothing but a short wait
    assert not errs, f"clients saw errors during a planned switchover: {summary}"


def test_scan_across_a_switchover_misses_nothing(repl3):
    """A node's SCAN cursor means nothing on another node: when the shard's
    primary changes mid-scan the gateway scans that shard again from its
    start, so every key present throughout comes back (some twice, as SCAN
    allows).  Replica read policies do not move a scan between nodes."""
    c = repl3
    r = c.client()
    keys = {f"scansw:{i}".encode() for i in range(3000)}
    pipe = r.pipeline(transaction=False)
    for k in keys:
        pipe.set(k, b"v")
    pipe.execute()
    r.execute_command("CAIRN", "READPOLICY", "replica")  # scans still stay on one node
    shard = str(list(c.shard_nodes())[0])
    seen, cursor, calls = [], 0, 0
    while True:
        cursor, batch = r.scan(cursor=cursor, match="scansw:*", count=50)
        seen += batch
        calls += 1
        if calls == 10:
            out = c.ctl("switchover", shard)
            assert out.returncode == 0, out.stdout + out.stderr
        if cursor == 0:
            break
        assert calls < 10000
    missing = keys - set(seen)
    assert not missing, f"{len(missing)} keys never returned, e.g. {sorted(missing)[:5]}"
    r.close()


# ------------------------------------------------------------------- failover --

class Worker(threading.Thread):
    """INCR on its own counter, SET of unique keys and, every fourth round,
    a MULTI/EXEC of INCR + SET, through the gateway, recording every outcome
    with its time."""

    def __init__(self, c, tid, stop, prefix="fo"):
        super().__init__(daemon=True)
        self.c, self.tid, self.stop, self.prefix = c, tid, stop, prefix
        self.counter = f"{prefix}:{{cnt}}:{tid}"
        self.incr_ok = 0
        self.incr_unknown = 0
        self.incr_refused = 0
        self.acked_sets = []
        self.set_unknown = []
        self.errors = []         # (time, kind, message)
        self.ok_times = []
        self.unexpected = []
        self.tx_counter = f"{prefix}:{{cnt}}:tx:{tid}"
        self.tx_ok = 0
        self.tx_unknown = []     # SET keys of transactions whose outcome is unknown

    def run(self):
        r = self.c.client(timeout=10)
        i = 0
        while not self.stop.is_set():
            i += 1
            now = time.monotonic()
            try:
                v = r.incr(self.counter)
                if v != self.incr_ok + 1 and self.incr_unknown == 0:
                    self.unexpected.append(f"INCR returned {v} after {self.incr_ok} acked")
                self.incr_ok += 1
                self.ok_times.append(time.monotonic())
            except (redis.ResponseError, redis.ConnectionError, redis.TimeoutError) as e:
                self._err(now, "incr", e)
            key = f"{self.prefix}:{{cnt}}:s:{self.tid}:{i}"
            try:
                assert r.set(key, f"val{i}") is True
                self.acked_sets.append((key, f"val{i}".encode()))
                self.ok_times.append(time.monotonic())
            except (redis.ResponseError, redis.ConnectionError, redis.TimeoutError) as e:
                self._err(now, "set", e, key)
            if i % 4 == 0:
                # a transaction: INCR + SET, all or nothing
                tkey = f"{self.prefix}:{{cnt}}:t:{self.tid}:{i}"
                try:
                    p = r.pipeline(transaction=True)
                    res = p.incr(self.tx_counter).set(tkey, "t").execute()
                    assert res[1] is True, res
                    self.tx_ok += 1
                    self.ok_times.append(time.monotonic())
                except (redis.ResponseError, redis.ConnectionError, redis.TimeoutError) as e:
                    self._err(now, "tx", e, tkey)
        r.close()

    def _err(self, t, op, e, key=None):
        msg = str(e)
        unknown = UNKNOWN_OUTCOME in msg or isinstance(e, (redis.ConnectionError, redis.TimeoutError))
        self.errors.append((t, op, msg))
        if op == "incr":
            if unknown:
                self.incr_unknown += 1
            else:
                self.incr_refused += 1
        elif op == "tx":
            if unknown:
                self.tx_unknown.append(key)
        elif unknown:
            self.set_unknown.append(key)
        if not unknown and not msg.startswith(("CLUSTERDOWN", "TRYAGAIN")):
            self.unexpected.append(f"{op}: {msg}")
        time.sleep(0.01)


def test_failover_through_gateway(repl3):
    c = repl3
    group = list(c.shard_nodes().values())[0]
    old_primary = group[0]
    rc = c.client()
    stop = threading.Event()
    workers = [Worker(c, t, stop) for t in range(4)]
    for w in workers:
        w.start()
    try:
        time.sleep(1.5)
        assert all(w.incr_ok > 10 for w in workers), [w.incr_ok for w in workers]
        t_kill = time.monotonic()
        c.kill(old_primary)
        newp = c.wait_primary(exclude=(old_primary,), timeout=15)
        t_new = time.monotonic()
        # keep going until every worker has done well after the failover
        wait_until(lambda: all(any(t > t_new + 1.0 for t in w.ok_times[-5:]) for w in workers),
                   timeout=20 * TIME_SCALE, what="every worker writing again after the failover")
        time.sleep(0.5)
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=30)
    assert not any(w.is_alive() for w in workers)
    errs = sorted(t for w in workers for (t, _, _) in w.errors)
    burst = (errs[-1] - errs[0]) if errs else 0.0
    # the longest span, per worker, after the kill without a successful op
    stalls = []
    for w in workers:
        ts = [t_kill] + [t for t in w.ok_times if t >= t_kill]
        stalls.append(max(b - a for a, b in zip(ts, ts[1:])) if len(ts) > 1 else float("inf"))
    summary = (f"new primary {newp.name} after {t_new - t_kill:.2f}s; errors {len(errs)} over "
               f"{burst:.2f}s; longest stall {max(stalls):.2f}s; "
               f"incr ok/unknown/refused {[(w.incr_ok, w.incr_unknown, w.incr_refused) for w in workers]}; "
               f"gateway: {dict((k, v) for k, v in c.gw_info().items() if k in ('retried_requests', 'writes_with_unknown_outcome'))}")
    print(summary)
    unexpected = [u for w in workers for u in w.unexpected]
    assert not unexpected, f"{summary}\nunexpected errors: {unexpected[:10]}"
    assert burst < 3.0, f"errors span {burst:.2f}s: {summary}"
    assert max(stalls) < 5.0, f"a client made no progress for {max(stalls):.2f}s: {summary}"
    # exactly-once: counter == acknowledged INCRs (+ unknown-outcome ones that applied)
    for w in workers:
        v = int(rc.get(w.counter) or 0)
        assert w.incr_ok <= v <= w.incr_ok + w.incr_unknown, (
            f"worker {w.tid}: counter {v}, acknowledged INCRs {w.incr_ok}, "
            f"unknown-outcome {w.incr_unknown}: {summary}")
    # transactions: exactly once and all or nothing -- the counter counts the
    # acknowledged ones plus exactly those unknown-outcome ones whose SET is there
    for w in workers:
        v = int(rc.get(w.tx_counter) or 0)
        applied_unknown = sum(1 for k in w.tx_unknown if rc.get(k) == b"t")
        assert v == w.tx_ok + applied_unknown, (
            f"worker {w.tid}: transaction counter {v}, acknowledged {w.tx_ok}, unknown-outcome "
            f"ones applied {applied_unknown} of {len(w.tx_unknown)}: {summary}")
        assert w.tx_ok > 5, f"worker {w.tid}: only {w.tx_ok} transactions: {summary}"
    # every acknowledged SET is there
    keys = [k for w in workers for k, _ in w.acked_sets]
    vals = [v for w in workers for _, v in w.acked_sets]
    got = []
    for i in range(0, len(keys), 500):
        got += rc.mget(keys[i:i + 500])
    missing = [k for k, g, v in zip(keys, got, vals) if g != v]
    assert not missing, f"{len(missing)} acknowledged SETs lost, e.g. {missing[:5]}: {summary}"
    # the gateway reports the unknown outcomes it gave
    info = c.gw_info()
    assert int(info["writes_with_unknown_outcome"]) >= sum(
        1 for w in workers for (_, _, m) in w.errors if UNKNOWN_OUTCOME in m)
    assert_gw_alive(c)
    rc.close()
