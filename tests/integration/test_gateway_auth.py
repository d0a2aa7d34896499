"""Gateway authentication (requirepass) end to end: real etcd + manager + one
node + gateways on 127.0.0.1, driven with redis-py, redis-cli and raw
sockets, and compared reply for reply with a real redis-server 7.0 when one
is installed.  Every wait is bounded.

Fixture
  authgw  (module)  1 shard x 1 replica; the cluster's own gateway without a
                    password, plus a gateway started with --requirepass

What is covered
  clients       redis-py password= (SET/GET/MGET, username="default"), no
                password -> NOAUTH, wrong password -> WRONGPASS; redis-cli -a;
                HELLO 2 AUTH default <pass>; HELLO without AUTH -> Redis's
                NOAUTH HELLO text; HELLO 3 AUTH authenticates and answers
                RESP3's map
  ordering      [GET, AUTH, GET] in one write -> NOAUTH, OK, value;
                [GET, AUTH wrong, GET] -> NOAUTH, WRONGPASS, NOAUTH; QUIT
                before AUTH answers +OK and closes
  Redis texts   the same pipelines against the gateway and redis-server (with
                and without requirepass): unknown command and arity before
                NOAUTH, EXEC -> EXECABORT ... NOAUTH, AUTH with no password
                configured, AUTH default <any>, user names case-sensitive, a
                failed AUTH keeps an authenticated client authenticated, HELLO's
                option order (AUTH applies at once; SETNAME checked in place)
  settings      requirepass from a --config file; the gateway without one
                answers as before; a warning line when binding a non-loopback
                address without a password, none on 127.0.0.1
  known gap     AUTH inside MULTI: Redis queues it and answers inside EXEC's
                array; the gateway refuses it like its other local commands
                (EXECABORT, nothing runs)

With CAIRN_BIN=build-asan/cairn every cairn log is checked for sanitizer
reports when the fixture is torn down.
"""
import os
import shutil
import subprocess

import pytest
import redis

from authseq import (HELLO_NOAUTH, LOCKED_SEQ, LOCKED_SEQ_2, NOAUTH, NOPASS_AUTH, PASS, PLAIN_SEQ, WRONGPASS,
                     LockedRedis, replies)
from cairnlib import CAIRN_BIN, RedisServer, Resp, free_port, resp_encode, wait_until
from gwlib import TIME_SCALE, GwCluster, Proc

HOST = "127.0.0.1"
# redis-py 4.3 raises ResponseError for WRONGPASS (later versions:
# AuthenticationError), as it does against redis-server itself
AUTH_ERRORS = (redis.AuthenticationError, redis.ResponseError)

pytestmark = pytest.mark.skipif(not os.path.exists(CAIRN_BIN), reason=f"{CAIRN_BIN} not built")


class AuthGw:
    """The cluster plus the gateways this file starts itself (gwlib's waits
    send INFO without a password, which a protected gateway refuses)."""

    def __init__(self, cluster):
        self.c = cluster
        self.procs = []

    def start_gateway(self, name, args, password=None):
        port = free_port()
        p = Proc(name, [CAIRN_BIN, "gateway", "--port", str(port), "--manager", self.c.maddr] + list(args),
                 os.path.join(self.c.base, f"{name}.log")).start()
        self.procs.append(p)

        def ok():
            if not p.alive():
                raise AssertionError(f"{name} exited:\n{p.log()}")
            r = redis.Redis(host=HOST, port=port, password=password, socket_timeout=2)
            try:
                return r.set("__auth_probe__", "1")
            finally:
                r.close()
        try:
            wait_until(ok, timeout=30 * TIME_SCALE, interval=0.05, what=f"{name} SET -> OK")
        except TimeoutError as e:
            raise TimeoutError(f"{e}\n{p.log()}") from None
        return p, port

    def stop(self):
        for p in self.procs:
            p.stop()


@pytest.fixture(scope="module")
def authgw(tmp_path_factory):
    if not shutil.which("etcd") and not os.path.exists("/usr/bin/etcd"):
        pytest.skip("etcd not installed")
    c = GwCluster(tmp_path_factory.mktemp("gwauth"), shards=1, replicas=1, fsync="no").start()
    a = AuthGw(c)
    try:
        a.proc, a.port = a.start_gateway("gateway-auth", ["--requirepass", PASS], password=PASS)
        yield a
    finally:
        a.stop()
        c.stop_all()
    reports = c.sanitizer_reports()
    assert not reports, "\n".join(reports)


@pytest.fixture(scope="module")
def redis_ref(tmp_path_factory):
    """redis-server without and with requirepass, or skip."""
    if not shutil.which("redis-server"):
        pytest.skip("redis-server not installed")
    base = tmp_path_factory.mktemp("redisref")
    plain, locked = RedisServer(base), LockedRedis(base)
    try:
        yield plain.start(), locked.start()
    finally:
        plain.stop()
        locked.stop()


def client(port, **kw):
    return redis.Redis(host=HOST, port=port, socket_timeout=5, socket_connect_timeout=5, **kw)


@pytest.fixture(autouse=True)
def seeded(authgw):
    """a:1 = "one" in the cluster, for the tests that read it back."""
    r = client(authgw.port, password=PASS)
    assert r.set("a:1", "one") is True
    r.close()


# --------------------------------------------------------------- redis-py --

def test_password_client_works(authgw):
    r = client(authgw.port, password=PASS)
    assert r.set("a:1", "one") is True
    assert r.get("a:1") == b"one"
    assert r.mset({"a:2": "two", "a:3": "three"}) is True
    assert r.mget(["a:1", "a:2", "a:missing", "a:3"]) == [b"one", b"two", None, b"three"]
    r.close()
    r = client(authgw.port, username="default", password=PASS)
    assert r.get("a:2") == b"two"
    r.close()


def test_no_password_is_refused(authgw):
    r = client(authgw.port)
    with pytest.raises(redis.AuthenticationError, match="^Authentication required"):
        r.get("a:1")
    with pytest.raises(redis.AuthenticationError):
        r.set("a:1", "overwritten")
    r.close()
    assert client(authgw.port, password=PASS).get("a:1") == b"one"


def test_wrong_password_is_refused(authgw):
    for kw in ({"password": "nope"}, {"password": PASS.upper()}, {"password": PASS + "x"},
               {"password": PASS[:-1]}, {"username": "other", "password": PASS},
               {"username": "DEFAULT", "password": PASS}):
        r = client(authgw.port, **kw)
        with pytest.raises(AUTH_ERRORS, match="invalid username-password pair"):
            r.get("a:1")
        r.close()


def test_redis_cli_dash_a(authgw):
    def cli(*args):
        return subprocess.run(["redis-cli", "-h", HOST, "-p", str(authgw.port)] + list(args),
                              capture_output=True, timeout=20 * TIME_SCALE)
    p = cli("-a", PASS, "--no-auth-warning", "SET", "cli:k", "v v")
    assert p.stdout == b"OK\n", p.stdout + p.stderr
    assert cli("-a", PASS, "--no-auth-warning", "GET", "cli:k").stdout == b"v v\n"
    assert cli("--user", "default", "--pass", PASS, "--no-auth-warning", "GET", "cli:k").stdout == b"v v\n"
    assert cli("GET", "cli:k").stdout.strip() == NOAUTH.encode()
    p = cli("-a", "wrong", "--no-auth-warning", "GET", "cli:k")
    assert b"WRONGPASS" in p.stdout + p.stderr


# ------------------------------------------------------------------ HELLO --

def test_hello_auth(authgw):
    got = replies(authgw.port, [("HELLO",), ("HELLO", "2"), ("HELLO", "2", "AUTH", "default", "wrong"),
                                ("GET", "a:1"), ("HELLO", "3", "AUTH", "default", PASS), ("GET", "a:1"),
                                ("HELLO", "2", "AUTH", "default", PASS, "SETNAME", "authed"),
                                ("CLIENT", "GETNAME"), ("GET", "a:1")])
    assert got == [("ERR", HELLO_NOAUTH), ("ERR", HELLO_NOAUTH), ("ERR", WRONGPASS), ("ERR", NOAUTH),
                   "HELLO-MAP", b"one",
                   "HELLO-MAP", b"authed", b"one"]


# --------------------------------------------------------------- ordering --

def test_pipelined_auth_applies_in_order(authgw):
    assert replies(authgw.port, [("GET", "a:1"), ("AUTH", PASS), ("GET", "a:1")]) == \
        [("ERR", NOAUTH), b"OK", b"one"]
    assert replies(authgw.port, [("GET", "a:1"), ("AUTH", "wrong"), ("GET", "a:1")]) == \
        [("ERR", NOAUTH), ("ERR", WRONGPASS), ("ERR", NOAUTH)]
    # a longer pipeline with keyed, split and local commands after AUTH
    cmds = [("SET", "p:x", "1"), ("AUTH", "default", PASS)] + \
        [("SET", f"p:{i}", str(i)) for i in range(50)] + \
        [("MGET", "p:0", "p:49"), ("PING",), ("GET", "p:x")]
    got = replies(authgw.port, cmds)
    assert got[:2] == [("ERR", NOAUTH), b"OK"]
    assert got[2:52] == [b"OK"] * 50
    assert got[52:] == [[b"0", b"49"], b"PONG", None]  # the SET before AUTH never ran
    # inline commands go through the same gate
    s = Resp(authgw.port)
    try:
        s.send(b"GET a:1\r\nAUTH \"" + PASS.encode() + b"\"\r\nGET a:1\r\n")
        got = [s.read() for _ in range(3)]
        assert str(got[0]) == NOAUTH and got[1:] == [b"OK", b"one"]
    finally:
        s.close()


def test_quit_before_auth(authgw):
    s = Resp(authgw.port)
    try:
        s.send(resp_encode("QUIT"))
        assert s.read() == b"OK"
        assert s.closed_within(5)
    finally:
        s.close()


def test_auth_inside_multi_is_refused(authgw):
    """Known gap: Redis queues AUTH and answers it inside EXEC's array."""
    got = replies(authgw.port, [("AUTH", PASS), ("MULTI",), ("SET", "m:k", "1"), ("AUTH", PASS),
                                ("EXEC",), ("GET", "m:k")])
    assert got[:3] == [b"OK", b"OK", b"QUEUED"]
    assert got[3][0] == "ERR" and "inside MULTI" in got[3][1]
    assert got[4] == ("ERR", "EXECABORT Transaction discarded because of previous errors.")
    assert got[5] is None


# ------------------------------------------------------- against redis-server --

def test_same_replies_as_redis(authgw, redis_ref):
    plain, locked = redis_ref
    for port_ref, port_gw, seq in ((locked.port, authgw.port, LOCKED_SEQ),
                                   (locked.port, authgw.port, LOCKED_SEQ_2),
                                   (plain.port, authgw.c.gport, PLAIN_SEQ)):
        want, got = replies(port_ref, seq), replies(port_gw, seq)
        diffs = [(cmd, w, g) for cmd, w, g in zip(seq, want, got) if w != g]
        assert not diffs, "\n".join(f"{cmd}: redis {w!r} gateway {g!r}" for cmd, w, g in diffs)


def test_error_texts(authgw):
    """The texts above, literally (also when redis-server is not installed)."""
    assert replies(authgw.port, [("GET", "k"), ("AUTH", "x"), ("EXEC",)]) == \
        [("ERR", NOAUTH), ("ERR", WRONGPASS),
         ("ERR", "EXECABORT Transaction discarded because of: NOAUTH Authentication required.")]
    assert replies(authgw.c.gport, [("AUTH", "x"), ("AUTH", "default", "x")]) == \
        [("ERR", NOPASS_AUTH), b"OK"]


# --------------------------------------------------------------- settings --

def test_without_requirepass_unchanged(authgw):
    r = authgw.c.client()
    assert r.set("plain:k", "v") is True
    assert r.get("plain:k") == b"v"
    assert r.execute_command("HELLO", "2")[:2] == [b"server", b"redis"]
    r.close()
    assert client(authgw.c.gport, username="default", password="whatever").get("plain:k") == b"v"
    with pytest.raises(AUTH_ERRORS, match="without any password configured"):
        client(authgw.c.gport, password="whatever").get("plain:k")


def test_requirepass_from_config_file(authgw):
    path = os.path.join(authgw.c.base, "gw-auth.conf")
    with open(path, "w") as f:
        f.write('# a gateway with a password\nrequirepass "file pass"\n')
    p, port = authgw.start_gateway("gateway-conf", ["--config", path], password="file pass")
    try:
        assert replies(port, [("GET", "plain:k"), ("AUTH", PASS), ("AUTH", "file pass"),
                              ("GET", "plain:k")]) == [("ERR", NOAUTH), ("ERR", WRONGPASS), b"OK", b"v"]
    finally:
        p.stop()


def test_warning_when_exposed(authgw):
    for log in (authgw.c.gateway.log(), authgw.proc.log()):  # 127.0.0.1, with and without a password
        assert "without requirepass" not in log
    port = free_port()
    p = Proc("gateway-exposed", [CAIRN_BIN, "gateway", "--bind", "0.0.0.0", "--port", str(port),
                                 "--manager", authgw.c.maddr],
             os.path.join(authgw.c.base, "gateway-exposed.log")).start()
    try:
        wait_until(lambda: "ready on" in p.log() or not p.alive(), timeout=10 * TIME_SCALE,
                   what="the exposed gateway's start")
        lines = [ln for ln in p.log().splitlines() if "without requirepass" in ln]
        assert len(lines) == 1 and "0.0.0.0" in lines[0], p.log()
    finally:
        p.stop()
