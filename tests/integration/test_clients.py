"""Real clients against a real cairn node.

What this file covers (one node per test, fsync everysec, torn down by the
`node` fixture):

redis-py 4.3 (the Python client)
  test_strings_*            GET SET (EX PX EXAT PXAT NX XX KEEPTTL GET) SETNX SETEX
                            PSETEX GETSET GETDEL GETEX MGET MSET MSETNX APPEND STRLEN
                            GETRANGE SETRANGE INCR DECR INCRBY DECRBY INCRBYFLOAT
  test_keys_*               DEL UNLINK EXISTS TYPE EXPIRE PEXPIRE EXPIREAT PEXPIREAT
                            (NX XX GT LT) TTL PTTL PERSIST RENAME RENAMENX KEYS SCAN
                            (MATCH COUNT TYPE) RANDOMKEY DBSIZE FLUSHALL FLUSHDB
  test_hashes               HSET HSETNX HGET HMGET HDEL HGETALL HKEYS HVALS HLEN
                            HEXISTS HINCRBY HINCRBYFLOAT HSTRLEN HSCAN
  test_server_basics        PING ECHO SELECT TIME (the rest is test_server.py)
  test_errors_*             WRONGTYPE, not-an-integer, unknown command through redis-py
  test_pipeline_*           pipelines with transaction=False; a 1,000-command one
  test_binary_*             keys/values with \\0 \\r\\n, all 256 byte values, 10 MB
                            value, unicode (decode_responses=True), empty strings
  test_scan_iter_*,         scan_iter/hscan_iter over 5,000 keys/fields: each seen
  test_hscan_iter_*         exactly once; keys/fields added (table grows) or deleted
                            (table shrinks) while scanning: every one present for
                            the whole scan is seen
redis-cli (subprocess)
  test_redis_cli_*          plain commands, -x (value from stdin), --pipe loading
                            10,000 generated RESP commands ("errors: 0, replies:
                            10000"), --no-raw output of HGETALL
hiredis (C client, tests/integration/hiredis_client.c)
  test_hiredis_client       SET/GET/INCR/MSET/MGET/HSET/HGETALL/DEL and a pipelined
                            batch of 1,000 commands, each reply's type and value checked
"""
import os
import shutil
import subprocess
import time

import pytest
import redis

from cairnlib import ROOT, wait_until


@pytest.fixture
def r(node):
    c = node.client()
    yield c
    c.close()


# --------------------------------------------------------------------------
# strings
# --------------------------------------------------------------------------

def test_strings_set_get_options(r):
    assert r.set("k", "v") is True
    assert r.get("k") == b"v"
    assert r.get("missing") is None

    # NX / XX
    assert r.set("k", "v2", nx=True) is None
    assert r.get("k") == b"v"
    assert r.set("k", "v2", xx=True) is True
    assert r.get("k") == b"v2"
    assert r.set("nokey", "x", xx=True) is None
    assert r.exists("nokey") == 0

    # EX / PX
    assert r.set("ex", "1", ex=100)
    assert 98 <= r.ttl("ex") <= 100
    assert r.set("px", "1", px=100000)
    assert 98000 <= r.pttl("px") <= 100000

    # EXAT / PXAT (absolute)
    now = int(time.time())
    assert r.set("exat", "1", exat=now + 200)
    assert 198 <= r.ttl("exat") <= 200
    assert r.set("pxat", "1", pxat=(now + 300) * 1000)
    assert 297000 <= r.pttl("pxat") <= 300000

    # KEEPTTL keeps, a plain SET clears
    assert r.set("ex", "2", keepttl=True)
    assert r.ttl("ex") > 90 and r.get("ex") == b"2"
    assert r.set("ex", "3")
    assert r.ttl("ex") == -1

    # GET option returns the old value
    assert r.set("k", "v3", get=True) == b"v2"
    assert r.set("fresh", "f", get=True) is None
    assert r.get("fresh") == b"f"
    # NX + GET (allowed since 7.0): old value returned, no write
    assert r.set("k", "zz", nx=True, get=True) == b"v3"
    assert r.get("k") == b"v3"

    # invalid combinations
    with pytest.raises(redis.ResponseError, match="syntax error"):
        r.execute_command("SET", "k", "v", "NX", "XX")
    with pytest.raises(redis.ResponseError, match="invalid expire time"):
        r.set("k", "v", ex=0)
    with pytest.raises(redis.ResponseError, match="invalid expire time"):
        r.execute_command("SET", "k", "v", "PX", "-5")


def test_strings_legacy_setters(r):
    assert r.setnx("a", "1") is True
    assert r.setnx("a", "2") is False
    assert r.get("a") == b"1"

    assert r.setex("b", 50, "x") is True
    assert 48 <= r.ttl("b") <= 50
    assert r.psetex("c", 50000, "y") is True
    assert 48000 <= r.pttl("c") <= 50000
    with pytest.raises(redis.ResponseError, match="invalid expire time"):
        r.setex("b", 0, "x")

    assert r.getset("a", "new") == b"1"
    assert r.getset("nope", "n") is None
    assert r.get("a") == b"new"

    assert r.getdel("a") == b"new"
    assert r.getdel("a") is None
    assert r.exists("a") == 0


def test_strings_getex(r):
    r.set("g", "val")
    assert r.getex("g") == b"val"
    assert r.ttl("g") == -1
    assert r.getex("g", ex=100) == b"val"
    assert 98 <= r.ttl("g") <= 100
    assert r.getex("g", px=50000) == b"val"
    assert 48000 <= r.pttl("g") <= 50000
    now = int(time.time())
    assert r.getex("g", exat=now + 500) == b"val"
    assert 497 <= r.ttl("g") <= 500
    assert r.getex("g", pxat=(now + 600) * 1000) == b"val"
    assert 597 <= r.ttl("g") <= 600
    assert r.getex("g", persist=True) == b"val"
    assert r.ttl("g") == -1
    assert r.getex("missing", ex=10) is None


def test_strings_multi(r):
    assert r.mset({"m1": "a", "m2": "b", "m3": ""}) is True
    assert r.mget("m1", "nope", "m2", "m3") == [b"a", None, b"b", b""]
    assert r.mget(["m1", "m2"]) == [b"a", b"b"]
    assert r.msetnx({"m1": "x", "m4": "y"}) is False
    assert r.get("m1") == b"a" and r.exists("m4") == 0
    assert r.msetnx({"m4": "x", "m5": "y"}) is True
    assert r.mget("m4", "m5") == [b"x", b"y"]


def test_strings_ranges_and_append(r):
    assert r.append("s", "Hello") == 5
    assert r.append("s", " World") == 11
    assert r.strlen("s") == 11
    assert r.strlen("missing") == 0
    assert r.getrange("s", 0, 4) == b"Hello"
    assert r.getrange("s", -5, -1) == b"World"
    assert r.getrange("s", 5, 2) == b""
    assert r.getrange("s", 0, 1000) == b"Hello World"
    assert r.getrange("missing", 0, 10) == b""
    assert r.setrange("s", 6, "Redis") == 11
    assert r.get("s") == b"Hello Redis"
    # SETRANGE past the end pads with zero bytes
    assert r.setrange("pad", 5, "x") == 6
    assert r.get("pad") == b"\x00" * 5 + b"x"
    with pytest.raises(redis.ResponseError, match="offset is out of range"):
        r.setrange("s", -1, "x")


def test_strings_counters(r):
    assert r.incr("n") == 1
    assert r.incr("n", 10) == 11
    assert r.incrby("n", 5) == 16
    assert r.decr("n") == 15
    assert r.decrby("n", 20) == -5
    assert r.decr("n", 5) == -10
    assert r.get("n") == b"-10"
    assert r.incrbyfloat("f", 1.5) == 1.5
    assert r.incrbyfloat("f", 0.25) == 1.75
    assert r.incrbyfloat("f", -3) == -1.25
    assert r.get("f") == b"-1.25"
    r.set("big", str(2 ** 63 - 1))
    with pytest.raises(redis.ResponseError, match="increment or decrement would overflow"):
        r.incr("big")
    r.set("txt", "abc")
    with pytest.raises(redis.ResponseError, match="not an integer or out of range"):
        r.incr("txt")
    with pytest.raises(redis.ResponseError, match="not a valid float"):
        r.incrbyfloat("txt", 1)


# --------------------------------------------------------------------------
# keys
# --------------------------------------------------------------------------

def test_keys_del_exists_type(r):
    r.mset({"a": 1, "b": 2, "c": 3})
    r.hset("h", "f", "v")
    assert r.exists("a", "b", "nope", "a") == 3  # repeated keys count twice
    assert r.type("a") == b"string"
    assert r.type("h") == b"hash"
    assert r.type("nope") == b"none"
    assert r.delete("a", "nope") == 1
    assert r.unlink("b", "h", "nope") == 2
    assert r.exists("a", "b", "h") == 0
    assert r.dbsize() == 1


def test_keys_expire_family(r):
    r.set("k", "v")
    assert r.ttl("k") == -1 and r.pttl("k") == -1
    assert r.ttl("nope") == -2 and r.pttl("nope") == -2
    assert r.expire("nope", 10) is False

    assert r.expire("k", 100) is True
    assert 98 <= r.ttl("k") <= 100
    # NX: only when no TTL
    assert r.expire("k", 500, nx=True) is False
    # XX: only when a TTL exists
    assert r.expire("k", 200, xx=True) is True
    assert 198 <= r.ttl("k") <= 200
    # GT / LT
    assert r.expire("k", 100, gt=True) is False
    assert r.expire("k", 300, gt=True) is True
    assert r.expire("k", 400, lt=True) is False
    assert r.expire("k", 150, lt=True) is True
    assert 148 <= r.ttl("k") <= 150

    assert r.persist("k") is True
    assert r.persist("k") is False
    assert r.ttl("k") == -1
    assert r.expire("k", 100, xx=True) is False
    assert r.expire("k", 100, gt=True) is False  # no TTL counts as infinite
    assert r.expire("k", 100, lt=True) is True
    assert r.expire("k", 100, nx=True) is False

    assert r.pexpire("k", 50000) is True
    assert 48000 <= r.pttl("k") <= 50000
    now = int(time.time())
    assert r.expireat("k", now + 1000) is True
    assert 997 <= r.ttl("k") <= 1000
    assert r.pexpireat("k", (now + 2000) * 1000) is True
    assert 1997 <= r.ttl("k") <= 2000
    assert r.pexpireat("k", (now + 3000) * 1000, lt=True) is False
    assert r.expireat("k", now + 3000, gt=True) is True

    with pytest.raises(redis.ResponseError):
        r.expire("k", 10, nx=True, xx=True)

    # A time in the past deletes the key.
    assert r.expire("k", -1) is True
    assert r.exists("k") == 0
    r.set("k2", "v")
    assert r.pexpireat("k2", 1000) is True
    assert r.get("k2") is None


def test_keys_expire_happens(r):
    r.set("short", "v", px=150)
    assert r.get("short") == b"v"
    wait_until(lambda: r.get("short") is None, timeout=5, what="PX 150 key to expire")
    assert r.exists("short") == 0
    assert r.ttl("short") == -2


def test_keys_rename(r):
    r.set("src", "v", ex=100)
    assert r.rename("src", "dst") is True
    assert r.get("dst") == b"v" and r.exists("src") == 0
    assert r.ttl("dst") > 90  # the TTL moves with the value
    with pytest.raises(redis.ResponseError, match="no such key"):
        r.rename("src", "x")
    r.set("other", "o")
    assert r.renamenx("dst", "other") is False
    assert r.renamenx("dst", "new") is True
    assert r.get("new") == b"v"
    assert r.rename("new", "new") is True  # same name: OK, unchanged
    assert r.get("new") == b"v"


def test_keys_keys_randomkey_dbsize_flush(r):
    assert r.randomkey() is None
    assert r.keys("*") == []
    r.mset({"user:1": 1, "user:2": 2, "user:10": 3, "item:1": 4, "h?llo": 5})
    assert sorted(r.keys("user:*")) == [b"user:1", b"user:10", b"user:2"]
    assert sorted(r.keys("user:?")) == [b"user:1", b"user:2"]
    assert sorted(r.keys("*:1")) == [b"item:1", b"user:1"]
    assert r.keys("h\\?llo") == [b"h?llo"]
    assert sorted(r.keys("[iu]*:1")) == [b"item:1", b"user:1"]
    assert r.randomkey() in {b"user:1", b"user:2", b"user:10", b"item:1", b"h?llo"}
    assert r.dbsize() == 5
    assert r.flushdb() is True
    assert r.dbsize() == 0
    r.set("x", 1)
    assert r.flushall() is True
    assert r.dbsize() == 0
    assert r.flushall(asynchronous=False) is True
    assert r.flushdb(asynchronous=True) is True


def test_keys_scan_options(r):
    with r.pipeline(transaction=False) as p:
        for i in range(300):
            p.set(f"s:{i}", i)
        for i in range(50):
            p.hset(f"h:{i}", "f", i)
        p.execute()
    seen = set()
    cursor = 0
    while True:
        cursor, keys = r.scan(cursor, match="s:1*", count=25)
        seen.update(keys)
        if cursor == 0:
            break
    assert seen == {f"s:{i}".encode() for i in range(300) if str(i).startswith("1")}

    hashes = set(r.scan_iter(_type="hash", count=100))
    assert hashes == {f"h:{i}".encode() for i in range(50)}
    strings = set(r.scan_iter(_type="string"))
    assert len(strings) == 300
    assert set(r.scan_iter(_type="list")) == set()
    with pytest.raises(redis.ResponseError, match="invalid cursor"):
        r.execute_command("SCAN", "abc")
    with pytest.raises(redis.ResponseError, match="syntax error"):
        r.execute_command("SCAN", "0", "COUNT", "0")


# --------------------------------------------------------------------------
# hashes
# --------------------------------------------------------------------------

def test_hashes(r):
    assert r.hset("h", "f1", "v1") == 1
    assert r.hset("h", mapping={"f1": "v1b", "f2": "v2", "f3": ""}) == 2
    assert r.hsetnx("h", "f1", "zzz") == 0
    assert r.hsetnx("h", "f4", "v4") == 1
    assert r.hget("h", "f1") == b"v1b"
    assert r.hget("h", "nope") is None
    assert r.hget("nokey", "f") is None
    assert r.hmget("h", "f1", "nope", "f3") == [b"v1b", None, b""]
    assert r.hmget("h", ["f2", "f4"]) == [b"v2", b"v4"]
    assert r.hgetall("h") == {b"f1": b"v1b", b"f2": b"v2", b"f3": b"", b"f4": b"v4"}
    assert r.hgetall("nokey") == {}
    assert sorted(r.hkeys("h")) == [b"f1", b"f2", b"f3", b"f4"]
    assert sorted(r.hvals("h")) == [b"", b"v1b", b"v2", b"v4"]
    assert r.hlen("h") == 4
    assert r.hlen("nokey") == 0
    assert r.hexists("h", "f2") is True
    assert r.hexists("h", "nope") is False
    assert r.hstrlen("h", "f1") == 3
    assert r.hstrlen("h", "nope") == 0
    assert r.hincrby("h", "n", 5) == 5
    assert r.hincrby("h", "n", -7) == -2
    assert r.hincrbyfloat("h", "fl", 2.5) == 2.5
    assert r.hincrbyfloat("h", "fl", 0.5) == 3.0
    with pytest.raises(redis.ResponseError, match="hash value is not an integer"):
        r.hincrby("h", "f1", 1)
    with pytest.raises(redis.ResponseError, match="hash value is not a float"):
        r.hincrbyfloat("h", "f1", 1)
    assert r.hdel("h", "f1", "nope", "f2") == 2
    assert r.hlen("h") == 4
    cursor, page = r.hscan("h", 0, count=100)
    assert cursor == 0
    assert page == {b"f3": b"", b"f4": b"v4", b"n": b"-2", b"fl": b"3"}
    assert dict(r.hscan_iter("h", match="f*")) == {b"f3": b"", b"f4": b"v4", b"fl": b"3"}
    # Deleting the last field deletes the key.
    assert r.hdel("h", "f3", "f4", "n", "fl") == 4
    assert r.exists("h") == 0
    with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
        r.execute_command("HSET", "h", "f")


def test_server_basics(r):
    assert r.ping() is True
    assert r.echo("hello") == b"hello"
    assert r.echo(b"a\x00b") == b"a\x00b"
    assert r.execute_command("SELECT", 0) is True  # redis-py maps +OK to True
    secs, usecs = r.time()
    assert abs(secs - time.time()) < 5 and 0 <= usecs < 1_000_000


def test_errors_through_redis_py(r):
    r.hset("h", "f", "v")
    r.set("s", "x")
    with pytest.raises(redis.ResponseError, match="^WRONGTYPE Operation against a key holding"):
        r.get("h")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.hget("s", "f")
    with pytest.raises(redis.ResponseError, match="unknown command 'NOSUCH'"):
        r.execute_command("NOSUCH", "a")
    with pytest.raises(redis.ResponseError, match="wrong number of arguments for 'get' command"):
        r.execute_command("GET")
    # The connection is still good afterwards.
    assert r.get("s") == b"x"


# --------------------------------------------------------------------------
# pipelines
# --------------------------------------------------------------------------

def test_pipeline_mixed_no_transaction(r):
    r.hset("h", "f", "v")
    p = r.pipeline(transaction=False)
    p.set("a", "1").incr("a").get("a").get("h").hget("h", "f").delete("a").exists("a")
    res = p.execute(raise_on_error=False)
    assert res[:3] == [True, 2, b"2"]
    assert isinstance(res[3], redis.ResponseError) and "WRONGTYPE" in str(res[3])
    assert res[4:] == [b"v", 1, 0]


def test_pipeline_1000_commands(r):
    with r.pipeline(transaction=False) as p:
        for i in range(1000):
            if i % 2 == 0:
                p.set(f"p:{i}", f"v{i}")
            else:
                p.get(f"p:{i - 1}")
        res = p.execute()
    assert len(res) == 1000
    for i, v in enumerate(res):
        assert v == (True if i % 2 == 0 else f"v{i - 1}".encode()), i
    # and reads back in another pipeline
    with r.pipeline(transaction=False) as p:
        for i in range(0, 1000, 2):
            p.strlen(f"p:{i}")
        lens = p.execute()
    assert lens == [len(f"v{i}") for i in range(0, 1000, 2)]
    assert r.dbsize() == 500


# --------------------------------------------------------------------------
# binary safety, big and odd values
# --------------------------------------------------------------------------

def test_binary_keys_and_values(r):
    tricky = [b"a\x00b", b"\r\n", b"x\r\ny\r\n", b"\x00", b"*1\r\n$3\r\nfoo\r\n", b" spaces in key "]
    for i, k in enumerate(tricky):
        v = k + b"|" + bytes([i]) + b"\x00\r\n"
        assert r.set(k, v)
        assert r.get(k) == v
        assert r.strlen(k) == len(v)
    assert sorted(r.keys("*")) == sorted(tricky)
    assert set(r.scan_iter()) == set(tricky)
    # every byte value, as a value, as a key, as a hash field
    allbytes = bytes(range(256))
    assert r.set(allbytes, allbytes)
    assert r.get(allbytes) == allbytes
    assert r.getrange(allbytes, 250, 255) == allbytes[250:]
    assert r.append(allbytes, allbytes) == 512
    assert r.get(allbytes) == allbytes * 2
    for b in range(256):
        r.hset(b"bytes", bytes([b]), bytes([255 - b]))
    assert r.hlen(b"bytes") == 256
    assert r.hgetall(b"bytes") == {bytes([b]): bytes([255 - b]) for b in range(256)}
    assert r.exists(b"a\x00") == 0  # prefix of a key is a different key
    # MSET/MGET with binary
    r.mset({b"\x00k1": b"\xff\x00", b"\x00k2": b"\r\n"})
    assert r.mget(b"\x00k1", b"\x00k2") == [b"\xff\x00", b"\r\n"]


def test_binary_10mb_value(r):
    big = os.urandom(10 * 1024 * 1024)
    assert r.set("big", big)
    assert r.strlen("big") == len(big)
    assert r.get("big") == big
    assert r.getrange("big", 5_000_000, 5_000_099) == big[5_000_000:5_000_100]
    assert r.append("big", b"tail") == len(big) + 4
    assert r.get("big")[-8:] == big[-4:] + b"tail"
    r.hset("bighash", "f", big)
    assert r.hstrlen("bighash", "f") == len(big)
    assert r.hget("bighash", "f") == big


def test_binary_unicode_and_empty(node):
    r = node.client(decode_responses=True)
    try:
        pairs = {"ключ": "значение", "キー": "値 🎉", "emoji🔑": "😀" * 100, "é": "ü\u0000ß"}
        for k, v in pairs.items():
            assert r.set(k, v)
            assert r.get(k) == v
        assert r.strlen("キー") == len("値 🎉".encode())
        assert sorted(r.keys("*")) == sorted(pairs)
        r.hset("uh", mapping={"поле": "знач", "🔑": ""})
        assert r.hgetall("uh") == {"поле": "знач", "🔑": ""}
        # empty strings: value, key, field, append, getrange
        assert r.set("empty", "")
        assert r.get("empty") == ""
        assert r.strlen("empty") == 0
        assert r.exists("empty") == 1
        assert r.set("", "empty key")
        assert r.get("") == "empty key"
        assert r.hset("eh", "", "") == 1
        assert r.hget("eh", "") == ""
        assert r.append("empty", "") == 0
        assert r.getrange("empty", 0, -1) == ""
        assert r.mget("", "empty") == ["empty key", ""]
        assert r.delete("") == 1
    finally:
        r.close()


# --------------------------------------------------------------------------
# SCAN / HSCAN iterators
# --------------------------------------------------------------------------

N_SCAN = 5000


def _load(r, keys, batch=500):
    keys = list(keys)
    for i in range(0, len(keys), batch):
        r.mset({k: "v" for k in keys[i:i + batch]})


def test_scan_iter_each_key_exactly_once(r):
    keys = [f"key:{i}".encode() for i in range(N_SCAN)]
    _load(r, keys)
    assert r.dbsize() == N_SCAN
    for count in (10, 1000):
        got = list(r.scan_iter(count=count))
        assert len(got) == N_SCAN, f"COUNT {count}: {len(got)} keys returned, {len(set(got))} distinct"
        assert set(got) == set(keys)
    got = list(r.scan_iter(match="key:1*", count=100))
    assert sorted(got) == sorted(k for k in keys if k.startswith(b"key:1"))


def test_hscan_iter_each_field_exactly_once(r):
    fields = {f"f{i}".encode(): str(i).encode() for i in range(N_SCAN)}
    items = list(fields.items())
    for i in range(0, N_SCAN, 1000):
        r.hset("big", mapping=dict(items[i:i + 1000]))
    assert r.hlen("big") == N_SCAN
    got = list(r.hscan_iter("big", count=50))
    assert len(got) == N_SCAN
    assert dict(got) == fields


def test_scan_iter_with_growth(r):
    """Keys present for the whole scan are all returned even while the table
    grows (and rehashes) under the scan; every returned key existed."""
    base = [f"base:{i}".encode() for i in range(N_SCAN)]
    _load(r, base)
    writer = redis.Redis(host="127.0.0.1", port=r.connection_pool.connection_kwargs["port"],
                         socket_timeout=10)
    added = []
    seen = []
    cursor = 0
    step = 0
    while True:
        cursor, keys = r.scan(cursor, count=50)
        seen.extend(keys)
        # Between pages, grow the keyspace by 20% of the base each time for
        # the first several pages: several doublings of the table mid-scan.
        if step < 10:
            new = [f"grow:{step}:{j}".encode() for j in range(N_SCAN // 5 * (step + 1))]
            _load(writer, new)
            added.extend(new)
        step += 1
        if cursor == 0:
            break
    writer.close()
    seen_set = set(seen)
    missing = [k for k in base if k not in seen_set]
    assert not missing, f"{len(missing)} keys present during the whole scan were not returned, e.g. {missing[:5]}"
    assert seen_set <= set(base) | set(added), "SCAN returned a key that never existed"
    assert r.dbsize() == len(base) + len(added)


def test_scan_iter_with_shrink(r):
    """Deleting most of the keyspace during a scan (the table shrinks) loses
    none of the keys that stay; duplicates are allowed, as in Redis."""
    base = [f"base:{i}".encode() for i in range(N_SCAN)]
    _load(r, base)
    _load(r, [f"tmp:{i}" for i in range(60_000)], batch=2000)
    seen = []
    cursor = 0
    step = 0
    while True:
        cursor, keys = r.scan(cursor, count=100)
        seen.extend(keys)
        if step < 12:
            doomed = [f"tmp:{i}" for i in range(step * 5000, (step + 1) * 5000)]
            for i in range(0, len(doomed), 1000):
                r.delete(*doomed[i:i + 1000])
        step += 1
        if cursor == 0:
            break
    seen_set = set(seen)
    missing = [k for k in base if k not in seen_set]
    assert not missing, f"{len(missing)} keys present during the whole scan were not returned"
    assert r.dbsize() == N_SCAN


def test_hscan_iter_with_growth_and_shrink(r):
    base = {f"base{i}": i for i in range(N_SCAN)}
    r.hset("h", mapping=base)
    seen = []
    cursor = 0
    step = 0
    while True:
        cursor, page = r.hscan("h", cursor, count=200)
        seen.extend(page)
        if step < 8:  # grow: several doublings mid-scan
            r.hset("h", mapping={f"g{step}:{j}": j for j in range(2000 * (step + 1))})
        elif step < 16:  # then shrink back
            grown = [f"g{step - 8}:{j}" for j in range(2000 * (step - 7))]
            r.hdel("h", *grown)
        step += 1
        if cursor == 0:
            break
    seen_set = set(seen)
    missing = [f for f in base if f.encode() not in seen_set]
    assert not missing, f"{len(missing)} fields present during the whole HSCAN were not returned"


# --------------------------------------------------------------------------
# redis-cli
# --------------------------------------------------------------------------

REDIS_CLI = shutil.which("redis-cli")
needs_cli = pytest.mark.skipif(REDIS_CLI is None, reason="redis-cli not installed")


def cli(node, *args, stdin=None, timeout=60):
    p = subprocess.run([REDIS_CLI, "-h", "127.0.0.1", "-p", str(node.port)] + list(args),
                       input=stdin, capture_output=True, timeout=timeout)
    return p


@needs_cli
def test_redis_cli_plain_commands(node):
    p = cli(node, "SET", "greeting", "hello world")
    assert p.returncode == 0 and p.stdout == b"OK\n", p
    p = cli(node, "GET", "greeting")
    assert p.stdout == b"hello world\n"
    p = cli(node, "INCRBY", "n", "41")
    assert p.stdout == b"41\n"
    p = cli(node, "GET", "nope")
    assert p.stdout == b"\n"  # raw mode prints nil as an empty line
    p = cli(node, "DBSIZE")
    assert p.stdout == b"2\n"
    p = cli(node, "PING")
    assert p.stdout == b"PONG\n"
    p = cli(node, "GET", "greeting", "extra")
    assert b"wrong number of arguments" in p.stdout + p.stderr
    p = cli(node, "--no-raw", "GET", "nope")
    assert p.stdout == b"(nil)\n"


@needs_cli
def test_redis_cli_x_stdin(node):
    data = b"line one\nline two\r\n\x00binary\xff"
    p = cli(node, "-x", "SET", "fromstdin", stdin=data)
    assert p.returncode == 0 and p.stdout == b"OK\n", p
    assert node.client().get("fromstdin") == data
    p = cli(node, "-x", "HSET", "h", "field", stdin=b"hash value")
    assert p.stdout == b"1\n"
    assert node.client().hget("h", "field") == b"hash value"


def _resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


@needs_cli
def test_redis_cli_pipe_mode(node):
    cmds = []
    for i in range(10000):
        if i % 10 == 9:
            cmds.append(_resp("HSET", f"ph:{i % 100}", f"f{i}", i))
        elif i % 10 == 8:
            cmds.append(_resp("INCR", "pipe:counter"))
        else:
            cmds.append(_resp("SET", f"pk:{i}", b"v\r\n\x00" + str(i).encode()))
    p = cli(node, "--pipe", stdin=b"".join(cmds))
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 0, out + p.stderr.decode(errors="replace")
    assert "errors: 0, replies: 10000" in out, out
    c = node.client()
    assert c.get("pipe:counter") == b"1000"
    assert c.get("pk:1234") == b"v\r\n\x001234"
    assert c.hlen("ph:19") == 100
    assert c.hget("ph:19", "f9919") == b"9919"
    assert c.dbsize() == 8000 + 1 + 10


@needs_cli
def test_redis_cli_no_raw_hash(node):
    c = node.client()
    c.hset("h", mapping={"name": "cairn", "kind": "kv store"})
    p = cli(node, "--no-raw", "HGETALL", "h")
    lines = p.stdout.decode().splitlines()
    assert len(lines) == 4, lines
    assert [ln.split(") ", 1)[0] for ln in lines] == ["1", "2", "3", "4"]
    pairs = {lines[i].split(") ", 1)[1]: lines[i + 1].split(") ", 1)[1] for i in (0, 2)}
    assert pairs == {'"name"': '"cairn"', '"kind"': '"kv store"'}
    p = cli(node, "--no-raw", "HLEN", "h")
    assert p.stdout == b"(integer) 2\n"
    p = cli(node, "--no-raw", "HGETALL", "missing")
    assert p.stdout == b"(empty array)\n"


# --------------------------------------------------------------------------
# hiredis
# --------------------------------------------------------------------------

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


def test_hiredis_client(node):
    exe = _hiredis_client()
    p = subprocess.run([exe, "127.0.0.1", str(node.port)], capture_output=True, timeout=60)
    out = p.stdout.decode() + p.stderr.decode()
    assert p.returncode == 0, out
    assert "checks passed" in out and out.startswith("hiredis: "), out
    n = int(out.split()[1])
    assert n > 1000, out
