"""Large values through a replicated shard, with real processes: etcd + one
manager + 3 `cairn node`s (fsync everysec, --repl-lease-ms 400
--repl-grace-ms 800, the defaults; times CAIRN_TIME_SCALE under ASan, where
the primary alone spends longer than a grace period copying a 60 MB record,
which to its secondaries is indistinguishable from a dead primary).

A single log record of tens of megabytes takes longer than a lease to reach
and be applied by a secondary, and the primary's beacons wait behind it on
the same stream.  Both sides are alive and busy: the shard must not
reconfigure (repl.h, "Large entries").  Each case writes through a client
that follows NOTPRIMARY and retries TRYAGAIN (as cluster.ClusterClient) and
then checks:

  - the write was acknowledged (+OK / an integer), with no attempt of
    unknown outcome (timeout, broken connection);
  - no configuration change: the manager's version and primary are those of
    before, and no node logged "asking the manager to remove";
  - every replica holds the values: GET / HGET on each node (CAIRN READONLY
    on the secondaries), compared by SHA-256 with what was written.

  set_40mb     SET of one 40 MB value
  mset_3x20mb  MSET of three 20 MB values (one 60 MB log record)
  hset_20mb    HSET of one 20 MB field

Budgets scale with CAIRN_TIME_SCALE (3 for ASan builds).
"""
import hashlib
import time

import pytest
import redis

from cairnlib import Resp, RespError, resp_encode
from cluster import TIME_SCALE, Cluster

MB = 1 << 20
REMOVE_MARK = "asking the manager to remove"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(base=tmp_path_factory.mktemp("big"), fsync="everysec", name="big",
                lease_ms=int(400 * TIME_SCALE), grace_ms=int(800 * TIME_SCALE))
    try:
        c.start()
    except BaseException:
        c.stop_all()
        raise
    yield c
    c.stop_all()
    report = c.sanitizer_report()
    if report:
        pytest.fail(report)


def _value(tag, size):
    # Not all one byte, so that a misplaced chunk would show in the digest.
    seed = hashlib.sha256(tag.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def _sha(b):
    return hashlib.sha256(b).hexdigest() if b is not None else None


def _write(c, *cmd):
    """Send one command, following NOTPRIMARY and retrying TRYAGAIN /
    CLUSTERDOWN (refused before running), as cluster.ClusterClient does;
    returns the reply.  A timeout or a broken connection after sending is
    an outcome unknown to the client: the test fails."""
    port = c.nodes[0].port
    deadline = time.monotonic() + 20 * TIME_SCALE
    refusals = []
    while True:
        assert time.monotonic() < deadline, f"{cmd[0]}: no reply; refusals {refusals[-5:]}"
        conn = Resp(port, timeout=10 * TIME_SCALE)
        try:
            conn.send(resp_encode(*cmd))
            try:
                rep = conn.read()
            except (OSError, ConnectionError) as e:
                pytest.fail(f"{cmd[0]}: outcome unknown ({e!r})\n{c.logs_tail(30)}")
        finally:
            conn.close()
        if not isinstance(rep, RespError):
            return rep
        msg = str(rep)
        refusals.append(msg)
        kind = msg.split(" ", 1)[0]
        if kind == "NOTPRIMARY":
            n = c.by_addr(msg.split()[2]) if len(msg.split()) >= 3 else None
            port = n.port if n is not None else port
        elif kind not in ("TRYAGAIN", "CLUSTERDOWN"):
            pytest.fail(f"{cmd[0]}: unexpected error {msg}")
        time.sleep(0.02)


def _read_everywhere(c, fn):
    """fn(redis client) on every node of the configuration; secondaries in
    CAIRN READONLY mode.  Replica reads wait for the commit index, so once
    the write is acknowledged on the primary, a replica that has applied
    it answers with it; poll briefly for one that has not yet."""
    cfg = c.config()
    out = {}
    for nid in [cfg["primary"]] + list(cfg["secondaries"]):
        n = c.by_id(nid)
        r = redis.Redis(port=n.port, socket_timeout=10 * TIME_SCALE, single_connection_client=True)
        try:
            if nid != cfg["primary"]:
                assert r.execute_command("CAIRN", "READONLY") in (b"OK", True)
            out[n.name] = fn(r)
        finally:
            r.close()
    return out


def _check_no_reconfiguration(c, before, t0):
    cfg = c.config()
    assert (cfg["version"], cfg["primary"], sorted(cfg["secondaries"])) == before, \
        f"configuration changed: {before} -> {cfg}\n{c.logs_tail(30)}"
    for name, log in c.logs().items():
        assert REMOVE_MARK not in log, f"{name} asked for a removal:\n{c.logs_tail(30)}"


def _snapshot_cfg(c):
    cfg = c.config()
    assert not cfg.get("learners"), f"not settled: {cfg}"
    return (cfg["version"], cfg["primary"], sorted(cfg["secondaries"]))


def _wait_same(c, expect, fn, what):
    deadline = time.monotonic() + 10 * TIME_SCALE
    while True:
        got = _read_everywhere(c, fn)
        if all(v == expect for v in got.values()):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: replicas differ from what was written: {got} "
                                 f"(want {expect})\n{c.logs_tail(30)}")
        time.sleep(0.1)


def test_set_40mb(cluster):
    c = cluster
    before = _snapshot_cfg(c)
    t0 = time.monotonic()
    v = _value("set", 40 * MB)
    rep = _write(c, "set", "big:set", v)
    assert rep == b"OK", rep
    took = time.monotonic() - t0
    _wait_same(c, _sha(v), lambda r: _sha(r.get("big:set")), "SET 40 MB")
    _check_no_reconfiguration(c, before, t0)
    print(f"set_40mb: acknowledged in {took:.2f}s")


def test_mset_3x20mb(cluster):
    c = cluster
    before = _snapshot_cfg(c)
    t0 = time.monotonic()
    vals = [_value(f"mset{i}", 20 * MB) for i in range(3)]
    args = []
    for i, v in enumerate(vals):
        args += [f"big:m{i}", v]
    rep = _write(c, "mset", *args)
    assert rep == b"OK", rep
    took = time.monotonic() - t0
    want = [_sha(v) for v in vals]
    _wait_same(c, want, lambda r: [_sha(r.get(f"big:m{i}")) for i in range(3)], "MSET 3x20 MB")
    _check_no_reconfiguration(c, before, t0)
    print(f"mset_3x20mb: acknowledged in {took:.2f}s")


def test_hset_20mb(cluster):
    c = cluster
    before = _snapshot_cfg(c)
    t0 = time.monotonic()
    v = _value("hset", 20 * MB)
    rep = _write(c, "hset", "big:h", "f", v)
    assert rep == 1, rep
    took = time.monotonic() - t0
    _wait_same(c, _sha(v), lambda r: _sha(r.hget("big:h", "f")), "HSET 20 MB")
    _check_no_reconfiguration(c, before, t0)
    print(f"hset_20mb: acknowledged in {took:.2f}s")
