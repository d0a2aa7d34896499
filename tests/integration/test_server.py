"""Server and connection commands of a cairn node, through redis-py and raw
RESP sockets (cairnlib.Resp) where the exact bytes matter.

What this file covers:

  test_info_sections          INFO default/named sections: server clients memory
                              persistence stats keyspace (headers and fields)
  test_info_used_memory_grows used_memory grows when 100,000 keys are loaded;
                              keyspace line counts them
  test_client_*               CLIENT ID / SETNAME / GETNAME / LIST / INFO / SETINFO;
                              CLIENT KILL ID <id>, ADDR <ip:port> and the old
                              CLIENT KILL <ip:port> form: the victim is disconnected
  test_command_*              COMMAND COUNT / LIST / INFO / DOCS (RESP2 and RESP3:
                              DOCS is a map including 'get'), full COMMAND
  test_config_get_globs       CONFIG GET with globs and several patterns, aliases
  test_config_set_*           CONFIG SET maxmemory -> SET gets "OOM command not
                              allowed when used memory > 'maxmemory'." while GET and
                              DEL still work; bad CONFIG SET values and immutables
  test_requirepass            NOAUTH before AUTH, WRONGPASS, AUTH ok, HELLO 2 AUTH
                              default <pw>, HELLO without auth
  test_auth_same_as_redis     authsequences (authseq.py) against redis-server 7.0 with
                              and without requirepass, reply for reply: user names
                              case-sensitive, HELLO's options in order (AUTH at
                              once, SETNAME checked in place), Redis's texts
  test_hello_3_raw            HELLO 3 on a raw socket: a '%' map reply, then RESP3
                              replies (null '_', map for CONFIG GET); HELLO SETNAME;
                              bad option; NOPROTO for 4; HELLO 2 switches back
  test_maxclients             connection N+1 gets "ERR max number of clients reached"
                              and is closed; connected_clients stays N; a slot frees
                              when a client leaves
  test_timeout                an idle client is closed after `timeout`; an active one
                              is not
  test_active_expiry          10,000 keys with PX 100 leave DBSIZE within 3 s without
                              being touched; persistent keys stay
  test_lazy_expiry            an expired key is gone on access even when active expiry
                              is slow (hz 1)
  test_select_and_quit        SELECT 0 ok, SELECT 1 error; PING <msg>; QUIT replies
                              +OK and closes
"""
import shutil
import time

import pytest
import redis

from authseq import LOCKED_SEQ, LOCKED_SEQ_2, PASS, PLAIN_SEQ, LockedRedis, replies
from cairnlib import RedisServer, Resp, RespError, bulk_load, wait_until


@pytest.fixture
def r(node):
    c = node.client()
    yield c
    c.close()


def info_field(r, section, name):
    return r.info(section)[name]


# --------------------------------------------------------------------------
# INFO
# --------------------------------------------------------------------------

def test_info_sections(node, r):
    r.set("a", "1")
    r.set("b", "2", ex=100)
    r.get("a")
    r.get("nope")
    conn = Resp(node.port)
    try:
        text = conn.call("INFO")
        assert isinstance(text, bytes), text
        text = text.decode()
        for header in ("# Server", "# Clients", "# Memory", "# Persistence", "# Stats", "# Keyspace"):
            assert header + "\r\n" in text, f"{header} missing from INFO:\n{text}"
        only = conn.call("INFO", "clients").decode()
        assert only.startswith("# Clients\r\n") and "# Server" not in only, only
        two = conn.call("INFO", "memory", "stats").decode()
        assert "# Memory" in two and "# Stats" in two and "# Clients" not in two
    finally:
        conn.close()

    info = r.info()
    # server
    assert info["redis_version"]
    assert info["tcp_port"] == node.port
    assert info["process_id"] == node.proc.pid
    assert info["uptime_in_seconds"] >= 0
    # clients
    assert info["connected_clients"] >= 1
    assert info["maxclients"] == 10000
    # memory
    assert info["used_memory"] > 0
    assert info["maxmemory"] == 0
    assert "used_memory_rss" in info
    # persistence
    for k in ("loading", "rdb_bgsave_in_progress", "rdb_last_save_time", "rdb_last_bgsave_status"):
        assert k in info, k
    assert info["loading"] == 0
    # stats
    assert info["total_connections_received"] >= 2
    assert info["total_commands_processed"] >= 4
    assert info["keyspace_hits"] >= 1 and info["keyspace_misses"] >= 1
    # keyspace
    assert info["db0"]["keys"] == 2 and info["db0"]["expires"] == 1

    assert set(r.info("server")) >= {"redis_version", "tcp_port", "uptime_in_seconds"}
    assert "used_memory" not in r.info("server")
    assert r.info("keyspace") == {"db0": {"keys": 2, "expires": 1, "avg_ttl": 0}}
    everything = r.info("all")
    assert "used_memory" in everything and "connected_clients" in everything
    r.flushall()
    assert r.info("keyspace") == {}


def test_info_used_memory_grows(node, r):
    before = info_field(r, "memory", "used_memory")
    bulk_load(node.port, 100_000, prefix=b"mem:key:", value=b"x" * 32)
    assert r.dbsize() == 100_000
    after = info_field(r, "memory", "used_memory")
    # 100k keys of ~10+32 bytes each cannot cost less than 4 MB of heap.
    assert after - before > 4_000_000, (before, after)
    assert r.info("keyspace")["db0"]["keys"] == 100_000
    r.flushall()
    wait_until(lambda: info_field(r, "memory", "used_memory") < after - 3_000_000, timeout=5,
               what="used_memory to drop after FLUSHALL")


# --------------------------------------------------------------------------
# CLIENT
# --------------------------------------------------------------------------

def test_client_id_name_list_info(node, r):
    my_id = r.client_id()
    assert isinstance(my_id, int) and my_id > 0
    other = node.client()
    other_id = other.client_id()
    assert other_id != my_id
    assert r.client_id() == my_id  # stable for the connection

    assert r.client_getname() is None
    assert r.client_setname("my-conn") is True
    assert r.client_getname() == "my-conn"
    with pytest.raises(redis.ResponseError, match="cannot contain spaces"):
        r.client_setname("has space")
    assert r.client_getname() == "my-conn"

    clients = r.client_list()
    by_id = {int(c["id"]): c for c in clients}
    assert my_id in by_id and other_id in by_id, clients
    assert by_id[my_id]["name"] == "my-conn"
    assert by_id[other_id]["name"] == ""
    assert by_id[my_id]["addr"].startswith("127.0.0.1:")
    assert by_id[my_id]["cmd"] == "client"
    only = r.client_list(client_id=[str(other_id)])
    assert [int(c["id"]) for c in only] == [other_id]

    me = r.client_info()
    assert int(me["id"]) == my_id and me["name"] == "my-conn"
    assert int(me["db"]) == 0

    assert r.execute_command("CLIENT SETINFO", "lib-name", "cairn-tests") is not None
    assert r.client_info()["lib-name"] == "cairn-tests"
    assert r.client_setname("") is True  # empty clears
    assert r.client_getname() is None
    other.close()


def _victim(node):
    v = Resp(node.port)
    vid = v.call("CLIENT", "ID")
    assert isinstance(vid, int)
    host, port = v.sock.getsockname()[:2]
    return v, vid, f"{host}:{port}"


def test_client_kill_by_id(node, r):
    v, vid, _ = _victim(node)
    try:
        assert r.client_kill_filter(_id=vid) == 1
        assert v.closed_within(5), "killed client still connected"
        assert vid not in {int(c["id"]) for c in r.client_list()}
        assert r.client_kill_filter(_id=vid) == 0
        with pytest.raises(redis.ResponseError):
            r.execute_command("CLIENT KILL", "ID", "0")
        assert r.ping()  # the killer is untouched
    finally:
        v.close()


def test_client_kill_by_addr(node, r):
    v, vid, addr = _victim(node)
    v2, vid2, addr2 = _victim(node)
    try:
        assert r.client_kill_filter(addr=addr) == 1
        assert v.closed_within(5), "client killed by ADDR still connected"
        # old form: CLIENT KILL ip:port -> +OK
        assert r.client_kill(addr2) is True
        assert v2.closed_within(5), "client killed by old-form ADDR still connected"
        with pytest.raises(redis.ResponseError, match="No such client"):
            r.client_kill(addr2)
        assert r.ping()
    finally:
        v.close()
        v2.close()


def test_client_kill_skipme(node, r):
    me = Resp(node.port)
    try:
        my_id = me.call("CLIENT", "ID")
        assert me.call("CLIENT", "KILL", "ID", my_id) == 0  # SKIPME yes by default
        assert me.call("PING") == b"PONG"
        assert me.call("CLIENT", "KILL", "ID", my_id, "SKIPME", "no") == 1
        assert me.closed_within(5)
    finally:
        me.close()


# --------------------------------------------------------------------------
# COMMAND
# --------------------------------------------------------------------------

def test_command_count_list_info(r):
    count = r.command_count()
    names = r.command_list()
    assert isinstance(count, int) and count >= 60
    assert len(names) == count
    names = {n.decode() for n in names}
    for want in ("get", "set", "hset", "scan", "client", "config", "info", "shutdown", "hello"):
        assert want in names, want

    info = r.execute_command("COMMAND INFO", "get", "nosuchcmd", "hset")
    assert len(info) == 3
    get = info[0]
    assert get[0] == b"get" and get[1] == 2
    assert b"readonly" in get[2]
    assert get[3:6] == [1, 1, 1]
    assert info[1] is None
    assert info[2][0] == b"hset" and info[2][1] == -4 and b"write" in info[2][2]

    full = r.command()  # redis-py parses into {name: {...}}
    assert len(full) == count
    assert full["get"]["arity"] == 2
    assert full["mset"]["step_count"] == 2
    assert full["mset"]["last_key_pos"] == -1


def test_command_docs(node, r):
    docs = r.execute_command("COMMAND DOCS", "get", "nosuchcmd")
    # RESP2: a flat array of name, doc pairs
    assert docs[0] == b"get" and len(docs) == 2, docs
    fields = dict(zip(docs[1][::2], docs[1][1::2]))
    assert fields[b"group"] == b"string"
    assert b"summary" in fields
    all_docs = r.execute_command("COMMAND DOCS")
    assert len(all_docs) == 2 * r.command_count()
    assert b"get" in all_docs[::2]

    conn = Resp(node.port)
    try:
        assert isinstance(conn.call("HELLO", "3"), dict)
        got = conn.call("COMMAND", "DOCS", "get")
        assert conn.last_type == b"%", conn.last_type
        assert set(got) == {b"get"}
        assert got[b"get"][b"group"] == b"string"
    finally:
        conn.close()


# --------------------------------------------------------------------------
# CONFIG
# --------------------------------------------------------------------------

def test_config_get_globs(node, r):
    assert r.config_get("port") == {"port": str(node.port)}
    maxes = r.config_get("max*")
    assert {"maxmemory", "maxclients", "maxmemory-policy"} <= set(maxes), maxes
    assert all(k.startswith("max") for k in maxes)
    everything = r.config_get("*")
    for k in ("requirepass", "maxmemory", "maxclients", "timeout", "proto-max-bulk-len",
              "proto-max-multibulk-len", "proto-inline-max-size", "client-output-buffer-limit",
              "wal-snapshot-size", "hz", "loglevel", "logfile", "dir", "port"):
        assert k in everything, k
    assert everything["dir"] == node.dir
    assert r.config_get("proto-*-len") == {"proto-max-bulk-len": str(512 * 1024 * 1024),
                                           "proto-max-multibulk-len": "1048576"}
    assert r.config_get("h?") == {"hz": "10"}
    assert r.config_get("nosuch*") == {}
    several = r.execute_command("CONFIG GET", "hz", "timeout", "hz")
    assert several == {"hz": "10", "timeout": "0"} or dict(several) == {"hz": "10", "timeout": "0"}
    # An exact name (an alias too) is echoed as asked, as Redis does; a glob
    # reports canonical names.
    assert r.config_get("appendfsync") == {"appendfsync": "everysec"}
    assert r.config_get("fsync") == {"fsync": "everysec"}
    assert r.config_get("*fsync") == {"fsync": "everysec"}


def test_config_set_values(r):
    assert r.config_set("hz", 20) is True
    assert r.config_get("hz") == {"hz": "20"}
    assert r.config_set("maxclients", 500) is True
    assert r.config_get("maxclients") == {"maxclients": "500"}
    assert r.config_set("maxmemory", "10mb") is True
    assert r.config_get("maxmemory") == {"maxmemory": str(10 * 1024 * 1024)}
    assert r.config_set("maxmemory", 0) is True
    with pytest.raises(redis.ResponseError, match="Unknown option"):
        r.config_set("no-such-setting", 1)
    with pytest.raises(redis.ResponseError, match="immutable"):
        r.config_set("port", 1234)
    with pytest.raises(redis.ResponseError, match="argument"):
        r.config_set("hz", "fast")
    with pytest.raises(redis.ResponseError, match="between"):
        r.config_set("hz", 100000)
    assert r.config_get("hz") == {"hz": "20"}  # a rejected value changes nothing


def test_config_set_maxmemory_oom(r):
    r.set("keep", "me")
    r.hset("h", "f", "v")
    assert r.config_set("maxmemory", 1) is True
    oom = "OOM command not allowed when used memory > 'maxmemory'."
    with pytest.raises(redis.ResponseError) as e:
        r.set("new", "value")
    assert str(e.value) == oom
    with pytest.raises(redis.ResponseError, match="OOM command not allowed"):
        r.hset("h", "f2", "v2")
    with pytest.raises(redis.ResponseError, match="OOM command not allowed"):
        r.incr("counter")
    # reads and deletes still work
    assert r.get("keep") == b"me"
    assert r.hget("h", "f") == b"v"
    assert r.exists("new") == 0
    assert r.delete("h") == 1
    assert r.ping()
    assert r.config_set("maxmemory", 0) is True
    assert r.set("new", "value") is True
    assert r.get("new") == b"value"


# --------------------------------------------------------------------------
# AUTH / HELLO
# --------------------------------------------------------------------------

def test_auth_same_as_redis(make_node, tmp_path):
    if not shutil.which("redis-server"):
        pytest.skip("redis-server not installed")
    locked = make_node(args=["--requirepass", PASS], start=False, name="locked")
    locked.start(wait=False)
    wait_until(lambda: locked.client(timeout=1, password=PASS).ping(), what="node with requirepass")
    plain = make_node(name="plain")
    ref_plain, ref_locked = RedisServer(tmp_path), LockedRedis(tmp_path)
    try:
        ref_plain.start()
        ref_locked.start()
        for ref, node, seq in ((ref_locked, locked, LOCKED_SEQ), (ref_locked, locked, LOCKED_SEQ_2),
                               (ref_plain, plain, PLAIN_SEQ)):
            want, got = replies(ref.port, seq), replies(node.port, seq)
            diffs = [(cmd, w, g) for cmd, w, g in zip(seq, want, got) if w != g]
            assert not diffs, "\n".join(f"{cmd}: redis {w!r} node {g!r}" for cmd, w, g in diffs)
    finally:
        ref_plain.stop()
        ref_locked.stop()


def test_requirepass(make_node):
    n = make_node(args=["--requirepass", "s3cret pw"], start=False)
    # Node.start() pings without a password: wait on the process ourselves.
    n.start(wait=False)
    wait_until(lambda: n.client(timeout=1, password="s3cret pw").ping(), what="node with requirepass")

    conn = Resp(n.port)
    try:
        rep = conn.call("GET", "k")
        assert isinstance(rep, RespError) and str(rep) == "NOAUTH Authentication required.", rep
        rep = conn.call("PING")
        assert isinstance(rep, RespError) and str(rep).startswith("NOAUTH"), rep
        rep = conn.call("AUTH", "wrong")
        assert isinstance(rep, RespError) and str(rep).startswith("WRONGPASS"), rep
        rep = conn.call("AUTH", "nobody", "s3cret pw")
        assert isinstance(rep, RespError) and str(rep).startswith("WRONGPASS"), rep
        rep = conn.call("HELLO", "3")
        assert isinstance(rep, RespError) and str(rep).startswith("NOAUTH"), rep
        assert conn.call("AUTH", "s3cret pw") == b"OK"
        assert conn.call("SET", "k", "v") == b"OK"
        assert conn.call("GET", "k") == b"v"
    finally:
        conn.close()

    conn = Resp(n.port)
    try:
        rep = conn.call("HELLO", "2", "AUTH", "default", "bad")
        assert isinstance(rep, RespError) and str(rep).startswith("WRONGPASS"), rep
        rep = conn.call("HELLO", "2", "AUTH", "default", "s3cret pw")
        assert conn.last_type == b"*", conn.last_type  # RESP2: the map as a flat array
        fields = dict(zip(rep[::2], rep[1::2]))
        assert fields[b"proto"] == 2 and fields[b"server"] == b"redis"
        assert conn.call("GET", "k") == b"v"
    finally:
        conn.close()

    with pytest.raises(redis.ResponseError, match="WRONGPASS"):
        n.client(password="nope").ping()
    with pytest.raises(redis.AuthenticationError):
        n.client().get("k")
    ok = n.client(password="s3cret pw")
    assert ok.get("k") == b"v"
    assert ok.execute_command("AUTH", "default", "s3cret pw") is True
    ok.close()


def test_auth_without_password_configured(r):
    with pytest.raises(redis.ResponseError, match="without any password configured"):
        r.execute_command("AUTH", "x")


def test_hello_3_raw(node):
    conn = Resp(node.port)
    try:
        conn.send(b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n")
        first = conn.readline()
        assert first.startswith(b"%"), first
        conn.buf = first + b"\r\n" + conn.buf
        hello = conn.read()
        assert hello[b"proto"] == 3
        assert hello[b"server"] == b"redis"
        assert hello[b"id"] == conn.call("CLIENT", "ID")
        assert b"version" in hello and b"mode" in hello and b"role" in hello

        conn.send(b"*2\r\n$3\r\nGET\r\n$7\r\nmissing\r\n")
        assert conn.readline() == b"_"  # RESP3 null
        conn.call("CONFIG", "GET", "hz")
        assert conn.last_type == b"%"
        conn.call("HSET", "h", "f", "v")
        assert conn.call("HGETALL", "h") == {b"f": b"v"}
        assert conn.last_type == b"%"
        rep = conn.call("HELLO", "3", "SETNAME", "resp3-conn")
        assert rep[b"proto"] == 3
        assert conn.call("CLIENT", "GETNAME") == b"resp3-conn"
        rep = conn.call("HELLO", "3", "BOGUS")
        assert isinstance(rep, RespError) and "Syntax error in HELLO option 'BOGUS'" in str(rep), rep
        rep = conn.call("HELLO", "4")
        assert isinstance(rep, RespError) and str(rep).startswith("NOPROTO"), rep
        rep = conn.call("HELLO", "2")
        assert conn.last_type == b"*" and rep[rep.index(b"proto") + 1] == 2
        conn.send(b"*2\r\n$3\r\nGET\r\n$7\r\nmissing\r\n")
        assert conn.readline() == b"$-1"  # back to RESP2 null
    finally:
        conn.close()


# --------------------------------------------------------------------------
# connection limits
# --------------------------------------------------------------------------

def test_maxclients(make_node):
    n = make_node(args=["--maxclients", "3"])
    held = []

    def open_one():
        c = Resp(n.port, timeout=5)
        rep = c.call("PING")
        if rep != b"PONG":
            c.close()
            return False
        held.append(c)
        return True

    try:
        # start()'s probe connection may still count for a moment: retry.
        for _ in range(3):
            wait_until(open_one, timeout=10, what="a client slot")
        extra = Resp(n.port, timeout=5)
        try:
            assert extra.closed_within(5), "connection N+1 was not closed"
            assert extra.buf == b"-ERR max number of clients reached\r\n", extra.buf
        finally:
            extra.close()
        # The three held connections still work.
        for c in held:
            assert c.call("PING") == b"PONG"
        assert held[0].call("INFO", "stats").decode().count("rejected_connections:") == 1
        stats = held[0].call("INFO", "stats").decode()
        assert int(stats.split("rejected_connections:")[1].split("\r\n")[0]) >= 1
        assert b"connected_clients:3\r\n" in held[0].call("INFO", "clients")
        # Free a slot: a new client gets in.
        held.pop().close()
        wait_until(open_one, timeout=10, what="the freed slot")
    finally:
        for c in held:
            c.close()


def test_timeout(make_node):
    n = make_node(args=["--timeout", "1"])
    idle = Resp(n.port)
    busy = Resp(n.port)
    try:
        assert idle.call("PING") == b"PONG"
        assert busy.call("PING") == b"PONG"
        t0 = time.monotonic()
        closed = False
        while time.monotonic() - t0 < 5:
            assert busy.call("PING") == b"PONG", "an active client was closed"
            if idle.closed_within(0.2):
                closed = True
                break
        elapsed = time.monotonic() - t0
        assert closed, "idle client not closed within 5 s with timeout 1"
        assert elapsed >= 0.8, f"idle client closed too early ({elapsed:.2f}s)"
        assert busy.call("PING") == b"PONG"
    finally:
        idle.close()
        busy.close()


# --------------------------------------------------------------------------
# expiry
# --------------------------------------------------------------------------

def test_active_expiry(node, r):
    with r.pipeline(transaction=False) as p:
        for i in range(10_000):
            p.set(f"exp:{i}", "v", px=100)
        for i in range(100):
            p.set(f"keep:{i}", "v")
        p.execute()
    t0 = time.monotonic()
    assert r.info("keyspace")["db0"]["keys"] > 100
    wait_until(lambda: r.dbsize() == 100, timeout=3.5, interval=0.05,
               what="10,000 PX 100 keys to be expired actively")
    assert time.monotonic() - t0 < 3.5
    assert r.info("stats")["expired_keys"] >= 9_000
    assert r.info("keyspace")["db0"] == {"keys": 100, "expires": 0, "avg_ttl": 0}
    assert r.get("keep:7") == b"v"


def test_lazy_expiry(make_node):
    n = make_node(args=["--hz", "1"])
    r = n.client()
    r.set("lazy", "v", px=50)
    r.set("lazy2", "v", px=50)
    r.hset("lazyh", "f", "v")
    r.pexpire("lazyh", 50)
    time.sleep(0.1)
    # Whether or not the 1 Hz cycle got there first, access sees nothing.
    assert r.get("lazy") is None
    assert r.exists("lazy2") == 0
    assert r.hgetall("lazyh") == {}
    assert r.ttl("lazy") == -2
    assert r.set("lazy", "again", nx=True) is True  # NX sees an expired key as absent
    assert r.dbsize() == 1
    r.close()


# --------------------------------------------------------------------------
# SELECT / PING / QUIT
# --------------------------------------------------------------------------

def test_select_and_quit(node):
    conn = Resp(node.port)
    try:
        assert conn.call("SELECT", "0") == b"OK"
        rep = conn.call("SELECT", "1")
        assert isinstance(rep, RespError) and str(rep) == "ERR DB index is out of range", rep
        rep = conn.call("SELECT", "x")
        assert isinstance(rep, RespError) and "not an integer" in str(rep), rep
        assert conn.call("PING") == b"PONG"
        assert conn.last_type == b"+"
        assert conn.call("PING", "hello") == b"hello"
        assert conn.last_type == b"$"
        conn.send(b"*1\r\n$4\r\nQUIT\r\n*1\r\n$4\r\nPING\r\n")  # nothing after QUIT runs
        assert conn.closed_within(5), "QUIT did not close the connection"
        assert conn.buf == b"+OK\r\n", conn.buf
    finally:
        conn.close()
    r = node.client()
    assert r.execute_command("QUIT") is True
    assert r.ping()  # redis-py reconnects
    r.close()
