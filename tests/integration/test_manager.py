"""cairn manager and cairn ctl, end to end, against a throwaway etcd.

Map of what is covered (real etcd, real manager processes; data nodes are
played by FakeNode threads speaking the node protocol with redis-py):

  election        two managers: one active, the other answers -NOTACTIVE
                  naming it; kill -9 the active one -> the standby is active
                  within a few seconds and STATUS shows it; SIGTERM steps
                  down at once (lease revoked) and exits 0
  registration    a heartbeat registers the node (etcd record, STATUS row,
                  {"shard": null} reply); a moved node is re-registered
  shard create    3 nodes in 3 zones -> version 1, one primary, two
                  secondaries, addresses in the reply; heartbeats now carry
                  the configuration; not enough spares -> the exact error
  REMOVE          a secondary deposes the primary -> new version, requester
                  is primary; a stale version gets the current config back;
                  two secondaries asking at once -> exactly one winner, the
                  other gets the winner's configuration; refusals
  restart         a lone primary that restarted (reports version 0) gets the
                  same configuration under a new version
  re-replication  a shard below its replica count gains a spare as learner;
                  the primary's PROMOTE makes it a secondary; a silent
                  learner is dropped after 3 s
  SWITCHOVER      to the most caught-up secondary, to a named node, refusals
  ctl             status table names the shard and nodes, --json, follows
                  -NOTACTIVE, shard create errors exit 1, node weight
  etcd paused     SIGSTOP etcd -> the active manager answers -NOTACTIVE
                  within ~3 s; SIGCONT -> it is active again
  bad input       malformed heartbeats, unknown subcommands, arity
"""
import json
import os
import subprocess
import threading
import time

import pytest
import redis

from cairnlib import CAIRN_BIN, ETCD_BIN, Etcd, free_port, wait_until

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")

pytestmark = pytest.mark.skipif(not os.path.exists(ETCD_BIN), reason="etcd not installed")


# ---- processes ---------------------------------------------------------------

class Manager:
    """One `cairn manager` process."""

    def __init__(self, base, etcd, cluster, mid):
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.id = mid
        self.log_path = os.path.join(str(base), f"manager-{mid}.log")
        self.args = [CAIRN_BIN, "manager", "--etcd", etcd.url, "--cluster", cluster,
                     "--port", str(self.port), "--id", mid, "--lease-ttl", "2",
                     "--dir", os.path.join(str(base), f"manager-{mid}")]
        self.proc = None

    def start(self):
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, stdout=self.logf, stderr=subprocess.STDOUT)
        wait_until(lambda: self.client(timeout=1).ping(), timeout=10, what=f"manager {self.id}")
        return self

    def client(self, timeout=5):
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=timeout,
                           decode_responses=True)

    def call(self, *args, timeout=5):
        return self.client(timeout).execute_command(*args)

    def json(self, *args):
        return json.loads(self.call(*args))

    def active(self):
        try:
            return self.client(2).info().get("active") == "yes"
        except redis.RedisError:
            return False

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def kill(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait()

    def stop(self, timeout=10):
        rc = None
        if self.alive():
            self.proc.terminate()
            try:
                rc = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        return rc


class FakeNode:
    """A data node as the manager sees it: heartbeats every 100 ms (from a
    thread) to whichever manager is active, remembering the configuration
    each reply carries.  Tests set `last_lsn` etc. to play positions."""

    def __init__(self, managers, nid, port, zone="", weight=None):
        self.managers = managers
        self.id = "%016x" % nid
        self.addr = f"127.0.0.1:{port}"
        self.zone = zone
        self.weight = weight
        self.last_lsn = self.commit_lsn = 0
        self.config = None
        self.replies = 0
        self.errors = []
        self.lock = threading.Lock()
        self.stop_evt = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def heartbeat_json(self):
        cfg = self.config or {}
        role = "none"
        if cfg:
            role = ("primary" if cfg["primary"] == self.id else
                    "secondary" if self.id in cfg["secondaries"] else
                    "learner" if self.id in cfg["learners"] else "none")
        hb = {"id": self.id, "addr": self.addr, "zone": self.zone, "shard": cfg.get("shard", 0),
              "version": cfg.get("version", 0), "role": role, "last_lsn": self.last_lsn,
              "durable_lsn": self.last_lsn, "commit_lsn": self.commit_lsn}
        if self.weight is not None:
            hb["weight"] = self.weight
        return json.dumps(hb)

    def beat(self, manager):
        reply = json.loads(manager.call("CAIRN", "HEARTBEAT", self.heartbeat_json(), timeout=3))
        with self.lock:
            self.config = reply["shard"]
            self.replies += 1
        return reply

    def _run(self):
        i = 0
        while not self.stop_evt.is_set():
            m = self.managers[i % len(self.managers)]
            try:
                self.beat(m)
            except (redis.RedisError, OSError) as e:
                self.errors.append(str(e))
                i += 1  # NOTACTIVE or down: try the next manager
            self.stop_evt.wait(0.1)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stop_evt.set()
        self.thread.join(timeout=5)

    def cfg(self):
        with self.lock:
            return self.config


# ---- fixtures -----------------------------------------------------------------

@pytest.fixture(scope="module")
def etcd():
    e = Etcd().start()
    yield e
    e.stop()


@pytest.fixture
def cluster(tmp_path, etcd, request):
    """Factory for managers and fake nodes on the shared etcd, under a
    cluster name of this test's own; everything is stopped afterwards."""
    name = request.node.name.replace("[", "-").replace("]", "")[:48]
    made_m, made_n = [], []

    class C:
        pass

    c = C()
    c.etcd = etcd
    c.name = name

    def manager(mid="m1", e=None):
        m = Manager(tmp_path, e or etcd, name, mid).start()
        made_m.append(m)
        return m

    def node(nid, zone="", managers=None, weight=None, start=True):
        n = FakeNode(managers or made_m, nid, free_port(), zone, weight)
        made_n.append(n)
        if start:
            n.start()
            wait_until(lambda: n.replies > 0, timeout=10, what=f"node {nid} registered")
        return n

    c.manager, c.node = manager, node
    yield c
    for n in made_n:
        n.stop()
    for m in made_m:
        m.stop()
    for m in made_m:
        log = m.log()
        for mark in SANITIZER_MARKS:
            assert mark not in log, f"sanitizer report in {m.log_path}:\n{log}"


def wait_active(m, timeout=10):
    wait_until(m.active, timeout=timeout, what=f"manager {m.id} active")


def ctl(*args, managers):
    return subprocess.run([CAIRN_BIN, "ctl", "--manager", ",".join(x.addr for x in managers)]
                          + list(args), capture_output=True, text=True, timeout=30)


def three_node_shard(c, m, zones=("z1", "z2", "z3"), replicas=3):
    nodes = [c.node(0xa1 + i, zone=zones[i]) for i in range(len(zones))]
    cfg = m.json("CAIRN", "SHARD-CREATE", replicas)
    wait_until(lambda: all(n.cfg() and n.cfg()["version"] == cfg["version"] for n in nodes),
               timeout=5, what="nodes learn the configuration")
    return cfg, {n.id: n for n in nodes}


# ---- election -----------------------------------------------------------------

def test_election_one_active_and_failover_on_kill(cluster):
    m1 = cluster.manager("m1")
    wait_active(m1)
    m2 = cluster.manager("m2")
    time.sleep(0.5)
    assert m1.active() and not m2.active()
    with pytest.raises(redis.ResponseError, match=r"NOTACTIVE 127\.0\.0\.1:%d" % m1.port):
        m2.call("CAIRN", "STATUS")
    info = m2.client().info()
    assert info["role"] == "manager" and info["active"] == "no"
    assert info["leader_id"] == "m1"
    st = m1.json("CAIRN", "STATUS")
    assert st["manager"]["id"] == "m1" and st["manager"]["active"] is True

    m1.kill()
    t0 = time.monotonic()
    wait_until(m2.active, timeout=8, interval=0.05, what="standby takes over")
    took = time.monotonic() - t0
    # lease TTL 2 s + etcd's expiry sweep + one 300 ms campaign period
    assert took < 4.0, f"takeover took {took:.2f}s"
    st = m2.json("CAIRN", "STATUS")
    assert st["manager"] == {"id": "m2", "addr": m2.addr, "active": True, "leader": "m2",
                             "cluster": cluster.name}


def test_sigterm_steps_down_at_once_and_exits_zero(cluster):
    m1 = cluster.manager("m1")
    wait_active(m1)
    m2 = cluster.manager("m2")
    time.sleep(0.4)
    t0 = time.monotonic()
    assert m1.stop() == 0
    wait_until(m2.active, timeout=5, interval=0.05, what="standby takes over")
    assert time.monotonic() - t0 < 1.5  # revoked lease, not a TTL wait
    assert "stepped down" in m1.log()


def test_manager_id_persists_in_dir(tmp_path, etcd):
    d = tmp_path / "mdir"
    port = free_port()
    args = [CAIRN_BIN, "manager", "--etcd", etcd.url, "--cluster", "idtest", "--port", str(port),
            "--dir", str(d)]
    ids = []
    for _ in range(2):
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            r = redis.Redis(port=port, socket_timeout=2, decode_responses=True)
            wait_until(lambda: r.ping(), timeout=10, what="manager up")
            ids.append(r.info()["manager_id"])
        finally:
            p.terminate()
            assert p.wait(timeout=10) == 0
    assert ids[0] == ids[1] == (d / "manager.id").read_text().strip()


# ---- registration ---------------------------------------------------------------

def test_heartbeat_registers_node(cluster):
    m = cluster.manager()
    wait_active(m)
    n = cluster.node(0xb1, zone="eu-1", weight=2)
    assert n.cfg() is None  # {"shard": null}: in no shard
    rec = json.loads(cluster.etcd.get(f"/cairn/{cluster.name}/nodes/{n.id}"))
    assert rec == {"id": n.id, "addr": n.addr, "zone": "eu-1", "weight": 2}
    st = m.json("CAIRN", "STATUS")
    row = [x for x in st["nodes"] if x["id"] == n.id][0]
    assert row["addr"] == n.addr and row["zone"] == "eu-1" and row["weight"] == 2
    assert row["healthy"] is True and row["shard"] == 0 and row["role"] == "none"
    assert 0 <= row["last_seen_ms_ago"] < 1000

    # a node that moved is re-registered; its weight stays the operator's
    n.stop()
    moved = FakeNode([m], 0xb1, free_port(), "eu-2", weight=9)
    moved.beat(m)
    rec = json.loads(cluster.etcd.get(f"/cairn/{cluster.name}/nodes/{n.id}"))
    assert rec == {"id": n.id, "addr": moved.addr, "zone": "eu-2", "weight": 2}
    topo = m.json("CAIRN", "TOPOLOGY")
    assert topo["nodes"] == [{"id": n.id, "addr": moved.addr, "weight": 2, "healthy": True}]
    assert topo["version"] > 0


def test_node_turns_unhealthy_after_three_seconds(cluster):
    m = cluster.manager()
    wait_active(m)
    n = cluster.node(0xb2)
    n.stop()
    row = lambda: [x for x in m.json("CAIRN", "STATUS")["nodes"] if x["id"] == n.id][0]
    assert row()["healthy"] is True
    wait_until(lambda: row()["healthy"] is False, timeout=6, what="node unhealthy")
    assert row()["last_seen_ms_ago"] > 3000


# ---- shard creation -------------------------------------------------------------

def test_shard_create_picks_three_zones(cluster):
    m = cluster.manager()
    wait_active(m)
    cfg, nodes = three_node_shard(cluster, m)
    assert cfg["shard"] == 1 and cfg["version"] == 1 and cfg["replicas"] == 3
    members = [cfg["primary"]] + cfg["secondaries"]
    assert sorted(members) == sorted(nodes) and cfg["learners"] == []
    assert cfg["addrs"] == {i: nodes[i].addr for i in nodes}
    # every node's heartbeat now carries the configuration
    for n in nodes.values():
        assert n.cfg()["version"] == 1 and n.cfg()["primary"] == cfg["primary"]
    stored = json.loads(cluster.etcd.get(f"/cairn/{cluster.name}/shards/1"))
    assert stored == {k: v for k, v in cfg.items() if k != "addrs"}
    with pytest.raises(redis.ResponseError, match="not enough spare nodes: need 1, have 0"):
        m.call("CAIRN", "SHARD-CREATE", 1)
    cluster.node(0xc1)
    cfg2 = m.json("CAIRN", "SHARD-CREATE", 1)
    assert cfg2["shard"] == 2 and cfg2["primary"] == "%016x" % 0xc1


def test_not_enough_spares(cluster):
    m = cluster.manager()
    wait_active(m)
    cluster.node(0xd1)
    cluster.node(0xd2)
    with pytest.raises(redis.ResponseError, match="not enough spare nodes: need 3, have 2"):
        m.call("CAIRN", "SHARD-CREATE", 3)
    with pytest.raises(redis.ResponseError, match="replicas must be between 1 and 8"):
        m.call("CAIRN", "SHARD-CREATE", 0)


# ---- REMOVE ----------------------------------------------------------------------

def test_secondary_removes_primary_and_takes_over(cluster):
    m = cluster.manager()
    wait_active(m)
    cfg, nodes = three_node_shard(cluster, m)
    p, s1, s2 = cfg["primary"], cfg["secondaries"][0], cfg["secondaries"][1]
    new = m.json("CAIRN", "REMOVE", 1, 1, p, s1)
    assert new["version"] == 2 and new["primary"] == s1
    assert new["secondaries"] == [s2] and p not in new["addrs"]
    # a request naming the old version gets the current configuration back
    again = m.json("CAIRN", "REMOVE", 1, 1, p, s2)
    assert again == new
    # the deposed primary is told it is in no shard
    wait_until(lambda: nodes[p].cfg() is None, timeout=3, what="old primary learns")
    with pytest.raises(redis.ResponseError, match="newer than the manager"):
        m.call("CAIRN", "REMOVE", 1, 9, s2, s1)


def test_primary_removes_secondary(cluster):
    m = cluster.manager()
    wait_active(m)
    cfg, nodes = three_node_shard(cluster, m)
    p, s1, s2 = cfg["primary"], cfg["secondaries"][0], cfg["secondaries"][1]
    with pytest.raises(redis.ResponseError, match="only the primary may remove a secondary"):
        m.call("CAIRN", "REMOVE", 1, 1, s2, s1)
    with pytest.raises(redis.ResponseError, match="cannot ask for its own removal"):
        m.call("CAIRN", "REMOVE", 1, 1, s1, s1)
    with pytest.raises(redis.ResponseError, match="is not a member of shard 1"):
        m.call("CAIRN", "REMOVE", 1, 1, s1, "00000000000000ff")
    with pytest.raises(redis.ResponseError, match="no such shard 7"):
        m.call("CAIRN", "REMOVE", 7, 1, s1, p)
    new = m.json("CAIRN", "REMOVE", 1, 1, s2, p)
    assert new["version"] == 2 and new["primary"] == p and new["secondaries"] == [s1]


def test_two_secondaries_remove_primary_at_once(cluster):
    m = cluster.manager()
    wait_active(m)
    cfg, nodes = three_node_shard(cluster, m)
    p, secs = cfg["primary"], cfg["secondaries"]
    barrier = threading.Barrier(2)
    results = {}

    def ask(s):
        r = m.client()
        barrier.wait()
        results[s] = json.loads(r.execute_command("CAIRN", "REMOVE", 1, 1, p, s))

    threads = [threading.Thread(target=ask, args=(s,)) for s in secs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    a, b = results[secs[0]], results[secs[1]]
    assert a == b, "both must end with the same configuration"
    assert a["version"] == 2 and a["primary"] in secs
    loser = [s for s in secs if s != a["primary"]][0]
    assert a["secondaries"] == [loser]


# ---- re-replication ------------------------------------------------------------------

def test_spare_becomes_learner_then_promoted(cluster):
    m = cluster.manager()
    wait_active(m)
    cfg, nodes = three_node_shard(cluster, m)
    p, s1, s2 = cfg["primary"], cfg["secondaries"][0], cfg["secondaries"][1]
    nodes[s2].stop()  # a secondary dies for good...
    time.sleep(1.2)   # ...so it is no candidate spare once removed
    m.json("CAIRN", "REMOVE", 1, 1, s2, p)  # the primary drops it: 2 of 3
    time.sleep(0.5)
    assert m.json("CAIRN", "TOPOLOGY")["shards"][0]["version"] == 2  # no spare yet
    spare = cluster.node(0xe1, zone="z9")
    wait_until(lambda: spare.cfg() is not None and spare.id in spare.cfg()["learners"],
               timeout=5, what="spare added as a learner")
    cfg3 = spare.cfg()
    assert cfg3["version"] == 3 and cfg3["primary"] == p and cfg3["secondaries"] == [s1]
    assert cfg3["addrs"][spare.id] == spare.addr
    # only the primary may promote
    with pytest.raises(redis.ResponseError, match="only the primary"):
        m.call("CAIRN", "PROMOTE", 1, 3, spare.id, s1)
    cfg4 = m.json("CAIRN", "PROMOTE", 1, 3, spare.id, p)
    assert cfg4["version"] == 4 and cfg4["secondaries"] == [s1, spare.id] and cfg4["learners"] == []
    # full again: no further change
    time.sleep(0.6)
    assert m.json("CAIRN", "TOPOLOGY")["shards"][0]["version"] == 4


def test_silent_learner_is_dropped(cluster):
    m = cluster.manager()
    wait_active(m)
    cfg, nodes = three_node_shard(cluster, m, zones=("z1", "z2"), replicas=2)
    nodes[cfg["secondaries"][0]].stop()
    time.sleep(1.2)
    m.json("CAIRN", "REMOVE", 1, 1, cfg["secondaries"][0], cfg["primary"])
    spare = cluster.node(0xe2)
    wait_until(lambda: spare.cfg() and spare.id in spare.cfg()["learners"], timeout=5,
               what="learner added")
    spare.stop()
    t0 = time.monotonic()

    def dropped():
        s = m.json("CAIRN", "TOPOLOGY")["shards"][0]
        return spare.id not in s["learners"]

    wait_until(dropped, timeout=8, what="silent learner dropped")
    assert time.monotonic() - t0 > 2.5


def test_restarted_lone_primary_gets_a_new_version(cluster):
    m = cluster.manager()
    wait_active(m)
    n = cluster.node(0xf1)
    cfg = m.json("CAIRN", "SHARD-CREATE", 1)
    wait_until(lambda: n.cfg() and n.cfg()["version"] == 1, timeout=3, what="config delivered")
    time.sleep(0.3)
    assert m.json("CAIRN", "TOPOLOGY")["shards"][0]["version"] == 1  # no bump on delivery
    # the node restarts: it reports no configuration; it may not be primary
    # of version 1 again (lib/repl.h), so the manager gives it version 2
    n.stop()
    n.config = None
    reply = n.beat(m)["shard"]
    assert reply["version"] == 2 and reply["primary"] == cfg["primary"] == n.id
    assert n.beat(m)["shard"]["version"] == 2  # and only once, even if it never adopts it


# ---- switchover -------------------------------------------------------------------

def test_switchover(cluster):
    m = cluster.manager()
    wait_active(m)
    cfg, nodes = three_node_shard(cluster, m)
    p, s1, s2 = cfg["primary"], cfg["secondaries"][0], cfg["secondaries"][1]
    nodes[p].last_lsn = 100
    nodes[s1].last_lsn = 90
    nodes[s2].last_lsn = 99
    time.sleep(0.3)  # positions reach the manager
    new = m.json("CAIRN", "SWITCHOVER", 1)
    assert new["version"] == 2 and new["primary"] == s2 and new["secondaries"] == [p, s1]
    with pytest.raises(redis.ResponseError, match="already the primary"):
        m.call("CAIRN", "SWITCHOVER", 1, s2)
    with pytest.raises(redis.ResponseError, match="is not a secondary"):
        m.call("CAIRN", "SWITCHOVER", 1, "00000000000000ff")
    with pytest.raises(redis.ResponseError, match="unknown node"):
        m.call("CAIRN", "SWITCHOVER", 1, "nosuch:1")
    # by address, back to the first primary
    back = m.json("CAIRN", "SWITCHOVER", 1, nodes[p].addr)
    assert back["version"] == 3 and back["primary"] == p and back["secondaries"] == [s2, s1]


# ---- ctl -----------------------------------------------------------------------------

def test_ctl_status_and_commands(cluster):
    m1 = cluster.manager("m1")
    wait_active(m1)
    m2 = cluster.manager("m2")
    cfg, nodes = three_node_shard(cluster, m1)
    for i, n in enumerate(nodes.values()):
        n.last_lsn = n.commit_lsn = 40 + i
    time.sleep(0.3)
    # the standby first: ctl follows -NOTACTIVE to the active manager
    r = ctl("status", managers=[m2, m1])
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "active manager m1" in out and "SHARD 1" in out and "version 1" in out
    for n in nodes.values():
        assert n.id in out and n.addr in out
    assert "primary" in out and "secondary" in out and "healthy" in out

    r = ctl("status", "--json", managers=[m2])
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert st["shards"][0]["primary"] == cfg["primary"] and len(st["nodes"]) == 3

    r = ctl("shard", "create", "--replicas", "2", managers=[m1])
    assert r.returncode == 1 and "not enough spare nodes: need 2, have 0" in r.stderr

    target = cfg["secondaries"][0]
    r = ctl("switchover", "1", target, managers=[m1])
    assert r.returncode == 0, r.stderr
    assert "version 2" in r.stdout and target in r.stdout.splitlines()[1]

    r = ctl("node", "weight", target, "5", managers=[m1])
    assert r.returncode == 0 and r.stdout.strip() == "OK"
    assert [x for x in m1.json("CAIRN", "STATUS")["nodes"] if x["id"] == target][0]["weight"] == 5
    rec = json.loads(cluster.etcd.get(f"/cairn/{cluster.name}/nodes/{target}"))
    assert rec["weight"] == 5

    r = ctl("switchover", "1", "00000000000000ff", managers=[m1])
    assert r.returncode == 1 and "is not a secondary" in r.stderr

    dead = free_port()
    r = subprocess.run([CAIRN_BIN, "ctl", "--manager", f"127.0.0.1:{dead}", "status"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "cannot reach" in r.stderr

    r = subprocess.run([CAIRN_BIN, "ctl", "frobnicate"], capture_output=True, text=True)
    assert r.returncode == 1 and "usage" in r.stderr


# ---- etcd unavailable ------------------------------------------------------------------

def test_etcd_paused_stops_acting_then_resumes(tmp_path, cluster):
    e = Etcd().start()
    try:
        m = cluster.manager("m1", e=e)
        wait_active(m)
        m.call("CAIRN", "STATUS")
        e.pause()
        t0 = time.monotonic()

        def refuses():
            try:
                m.call("CAIRN", "TOPOLOGY", timeout=3)
                return False
            except redis.ResponseError as err:
                return str(err).startswith("NOTACTIVE")

        wait_until(refuses, timeout=8, interval=0.05, what="manager stops acting")
        took = time.monotonic() - t0
        assert took < 3.5, f"kept acting {took:.2f}s without etcd"
        assert m.client(3).ping()  # still answering, just not acting
        time.sleep(0.5)
        assert refuses()
        e.resume()
        wait_until(lambda: m.active() and not refuses(), timeout=10, what="active again")
        assert "not acting until it is" in m.log()
    finally:
        e.stop()


# ---- bad input -------------------------------------------------------------------------

def test_bad_input(cluster):
    m = cluster.manager()
    wait_active(m)
    for hb, msg in [("not json", "bad heartbeat: invalid JSON"),
                    ('{"addr":"h:1"}', '"id" is missing'),
                    ('{"id":"zz","addr":"h:1"}', "node id"),
                    ('{"id":"a1","addr":"h"}', '"addr" is not valid'),
                    ('{"id":"a1","addr":"h:1","role":"king"}', '"role" must be')]:
        with pytest.raises(redis.ResponseError, match=msg):
            m.call("CAIRN", "HEARTBEAT", hb)
    with pytest.raises(redis.ResponseError, match="unknown CAIRN subcommand 'FLY'"):
        m.call("CAIRN", "FLY")
    with pytest.raises(redis.ResponseError, match=r"wrong number of arguments for 'cairn\|remove'"):
        m.call("CAIRN", "REMOVE", 1)
    with pytest.raises(redis.ResponseError, match="unknown command 'GET'"):
        m.call("GET", "x")
    with pytest.raises(redis.ResponseError, match="shard and version must be positive"):
        m.call("CAIRN", "REMOVE", "x", 1, "a1", "a2")
    with pytest.raises(redis.ResponseError, match="node ids must be"):
        m.call("CAIRN", "PROMOTE", 1, 1, "nothex", "a2")
    assert m.client().ping()
    # a protocol error closes that connection only
    import socket
    s = socket.create_connection(("127.0.0.1", m.port), timeout=5)
    s.sendall(b"*1\r\n$x\r\n")
    assert s.recv(100).startswith(b"-ERR Protocol error")
    s.close()
    assert m.client().ping()
