"""Failover under load, with real processes: etcd + manager(s) + 3 `cairn
node`s (fsync always, --repl-lease-ms 400 --repl-grace-ms 800) and 4 client
threads doing SET / INCR / GET on 20 keys (10 registers, 10 counters); every
attempt is recorded (history.py) and afterwards:

  - the history is linearizable per key (Wing & Gong / Lowe checker),
  - every acknowledged write is in the final state (read through the
    primary) -- acknowledged SETs present, counters within [acked, acked+info],
  - every replica of the final configuration reports the same LSNs and holds
    the same data (digest of a copy of each node's data dir, read by a
    standalone node; equal to a live SCAN of the primary),
  - no unexpected error reply was seen.

  0  baseline_no_fault   the same load and checks without a fault
  a  kill_primary        kill -9 the primary mid-load: a new primary serves
                         (first acknowledged write invoked after the kill) within
                         FAILOVER_BUDGET; the killed node restarts and rejoins
  b  pause_primary       SIGSTOP the primary for 2 s (> grace) then SIGCONT: a
                         new primary serves meanwhile; a SET and a GET sent to
                         it while stopped (read the instant it wakes) and SETs
                         / GETs sent straight to it for 1 s after SIGCONT get
                         NOTPRIMARY or TRYAGAIN or a closed connection (it
                         closes clients whose replies it holds when demoted),
                         never a reply and never a hang, and it never
                         reports serving as primary again; it rejoins as
                         secondary/learner and converges
  c  kill_secondary      kill -9 a secondary and restart it: writes continue
                         (gap <= FAILOVER_BUDGET), it rejoins, digests equal
  d  kill_manager        two managers; kill -9 the active one: the standby
                         takes over, writes continue throughout (no gap over
                         MANAGER_GAP), and a later kill -9 of the primary is
                         still handled within FAILOVER_BUDGET
  e  restart_etcd        stop etcd (SIGTERM) for 3 s (> the managers' 2 s lease
                         TTL), start it on the same data dir:
                         no reconfiguration (version and primary unchanged),
                         writes continue throughout, a manager is active again,
                         and a later kill -9 of the primary is still handled
  f  switchover          cairn ctl switchover four times (to each secondary and
                         back) under the load: each succeeds, the new primary
                         is the one asked for, the pause ctl prints and the
                         longest write gap stay under SWITCH_PAUSE, and the
                         clients see only refusals (TRYAGAIN / NOTPRIMARY,
                         retried) -- no broken connection, no unknown outcome
  g  switchover_manager_killed
                         a secondary is SIGSTOPped so the primary cannot drain,
                         ctl switchover starts, the active manager is killed -9
                         while the primary drains, the secondary resumes: ctl
                         says the outcome is unknown, the primary drains,
                         stays fenced and serves again on its own at its drain
                         deadline (2 s), in the same configuration (the standby
                         manager changes nothing); writes continue
  h  switchover_given_up a secondary is SIGSTOPped so the primary cannot drain
                         within --switchover-timeout 400: ctl switchover fails
                         with the reason, the primary serves again at once (RESUME),
                         the write it held is answered OK once the secondary
                         resumes, and the configuration is unchanged

Per-scenario figures (ops, outcomes, error kinds, longest span without an
acknowledged write, failover time) are printed and summarised at the end of
the module.  Budgets scale with CAIRN_TIME_SCALE (3 for ASan builds).
"""
import os
import re
import socket
import subprocess
import threading
import time

import pytest

from cairnlib import CAIRN_BIN, ETCD_BIN, Resp, RespError, resp_encode, wait_until
from cluster import TIME_SCALE, ClusterClient, Load
from history import History, check_acknowledged_present, check_linearizable

FAILOVER_BUDGET = 2.5 * TIME_SCALE   # kill/pause of the primary -> next acked write
MANAGER_GAP = 1.0 * TIME_SCALE       # longest write gap allowed while managers/etcd change
SWITCH_PAUSE = 1.0 * TIME_SCALE      # longest write gap allowed across a planned switchover
PRE_FAULT = 1.5                      # seconds of load before the fault
ETCD_DOWN = 3.0                      # > the managers' --lease-ttl 2

pytestmark = [
    pytest.mark.skipif(not os.path.exists(CAIRN_BIN), reason=f"{CAIRN_BIN} not built"),
    pytest.mark.skipif(not os.path.exists(ETCD_BIN), reason="etcd not installed"),
]

FIGURES = []


@pytest.fixture(scope="module", autouse=True)
def summary(request):
    yield
    tr = request.config.pluginmanager.get_plugin("terminalreporter")
    capman = request.config.pluginmanager.get_plugin("capturemanager")
    if tr is None or not FIGURES:
        return
    with capman.global_and_fixture_disabled() if capman else _nullcontext():
        tr.write_line("")
        tr.write_line("failover figures:")
        for name, fig in FIGURES:
            tr.write_line(f"  {name}: {fig}")


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def settle(cluster, load, name, extra, want_members=None):
    """Stop the load, wait for convergence, read the final state through
    the primary, run the history checks; record and print figures."""
    load.stop()
    st = load.stats()
    st.update(extra)
    try:
        assert not load.unexpected, f"unexpected error replies: {load.unexpected[:10]}"
        t = time.monotonic()
        cfg, digest = cluster.wait_converged(want_members=want_members)
        st["converge_s"] = round(time.monotonic() - t, 2)
        st["config_version"] = cfg["version"]
        final = {}
        reader = ClusterClient(cluster, load.history, cid=1000)
        for k in load.regs + load.ctrs:
            final[k] = reader.call("get", k)
        reader.close()
        t = time.monotonic()
        res = check_linearizable(load.history, max_steps=5_000_000)
        st["check_s"] = round(time.monotonic() - t, 2)
        assert res, res.message
        problems = check_acknowledged_present(load.history, final)
        assert not problems, "acknowledged writes missing:\n" + "\n".join(problems)
    except BaseException:
        print(f"{name}: {st}")
        print(cluster.logs_tail())
        raise
    finally:
        FIGURES.append((name, st))
    print(f"{name}: {st}")
    return st


def failover_time(load, t_fault):
    """Seconds from the fault to the completion of the first acknowledged
    write invoked after it."""
    first = load.first_write_after(t_fault)
    return None if first is None else first - t_fault


def wait_writes_after(load, t, timeout):
    """Bounded wait until the load has an acknowledged write after t."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if load.first_write_after(t) is not None:
            return True
        time.sleep(0.05)
    return False


# ---- baseline --------------------------------------------------------------------

def test_baseline_no_fault(make_cluster):
    """The same load and checks without a fault: separates "the cluster or
    the checks are broken" from "failover is broken"."""
    cl = make_cluster()
    h = History()
    load = Load(cl, h).start()
    time.sleep(2.0)
    st = settle(cl, load, "baseline (no fault)", {})
    assert st["ok"] > 100
    # Only the first redirect of each client (it starts at a random node).
    assert set(st["errors"]) <= {"NOTPRIMARY"} and st["fail"] <= len(load.clients), \
        f"errors without a fault: {st['errors']}"


# ---- a ---------------------------------------------------------------------------

def test_kill_primary(make_cluster):
    cl = make_cluster()
    h = History()
    load = Load(cl, h).start()
    time.sleep(PRE_FAULT)
    p = cl.wait_primary()
    cl.kill(p)
    t_kill = h.now()  # after the process is reaped
    newp = cl.wait_primary(timeout=10, exclude=(p,))
    t_newp = h.now() - t_kill
    wait_writes_after(load, t_kill, 10 * TIME_SCALE)
    time.sleep(2.0)
    fo = failover_time(load, t_kill)
    cl.restart(p)
    time.sleep(1.0)
    st = settle(cl, load, "a kill -9 primary", {
        "killed": p.name, "new_primary": newp.name, "primary_seen_after_s": round(t_newp, 3),
        "first_ack_write_after_kill_s": None if fo is None else round(fo, 3)})
    assert fo is not None, "no acknowledged write after the primary was killed"
    assert fo <= FAILOVER_BUDGET, f"no acknowledged write for {fo:.2f}s after kill -9 of the primary"
    assert st["ok"] > 100


# ---- b ---------------------------------------------------------------------------

def _classify(h, o, rep, kinds, oks):
    if isinstance(rep, RespError):
        k = str(rep).split(" ", 1)[0]
        (h.fail if k in ("NOTPRIMARY", "TRYAGAIN", "CLUSTERDOWN") else h.info)(o, str(rep))
        kinds[k] = kinds.get(k, 0) + 1
    else:
        h.ok(o, rep)
        kinds["OK"] = kinds.get("OK", 0) + 1
        oks.append(o)


def send_while_paused(node, h, cid=101):
    """Connect to the SIGSTOPped node (the kernel accepts) and send a SET
    and a GET; the node reads them the moment it wakes up, before its own
    timers can run.  Returns (conn, [(op, command)])."""
    conn = Resp(node.port, timeout=5.0)
    sent = []
    for cmd in (("set", "r0", "direct-pre"), ("get", "r0")):
        o = h.invoke(cid, *cmd)
        o.node = node.port
        conn.send(resp_encode(cmd[0].upper(), *cmd[1:]))
        sent.append(o)
    return conn, sent


def read_after_resume(conn, sent, h):
    kinds, oks = {}, []
    for o in sent:
        t = time.monotonic()
        try:
            rep = conn.read()
        except socket.timeout:
            h.info(o, "timeout")
            kinds["timeout"] = kinds.get("timeout", 0) + 1
            continue
        except OSError as e:
            # The node closes the connections of clients whose replies it
            # holds when it is demoted (their requests are then 'info').
            h.info(o, f"closed after {time.monotonic() - t:.2f}s: {e}")
            kinds["closed"] = kinds.get("closed", 0) + 1
            break
        _classify(h, o, rep, kinds, oks)
    conn.close()
    return kinds, oks


def hammer_direct(cl, node, h, seconds, cid=100):
    """SETs and GETs straight to `node` (no redirects) for `seconds`; every
    attempt recorded in h.  Returns {reply kind: count} and the OK ops."""
    kinds = {}
    oks = []
    deadline = time.monotonic() + seconds
    i = 0
    conn = None
    while time.monotonic() < deadline:
        i += 1
        cmd = ("set", "r0", f"direct-{i}") if i % 2 else ("get", "r0")
        o = h.invoke(cid, *cmd)
        o.node = node.port
        try:
            if conn is None:
                conn = Resp(node.port, timeout=1.0)
        except OSError:
            h.fail(o, "connect")
            kinds["connect"] = kinds.get("connect", 0) + 1
            time.sleep(0.02)
            continue
        try:
            rep = conn.call(cmd[0].upper(), *cmd[1:])
        except OSError as e:
            h.info(o, str(e))
            k = "timeout" if isinstance(e, socket.timeout) else "closed"
            kinds[k] = kinds.get(k, 0) + 1
            conn.close()
            conn = None
            continue
        _classify(h, o, rep, kinds, oks)
        time.sleep(0.005)
    if conn:
        conn.close()
    return kinds, oks


def test_pause_primary(make_cluster):
    cl = make_cluster()
    h = History()
    load = Load(cl, h).start()
    time.sleep(PRE_FAULT)
    p = cl.wait_primary()
    cl.pause(p)
    t_stop = h.now()
    newp = cl.wait_primary(timeout=10, exclude=(p,))
    t_newp = h.now() - t_stop
    time.sleep(max(0.0, 2.0 - 0.1 - (h.now() - t_stop)))
    conn, sent = send_while_paused(p, h)
    time.sleep(0.1)
    cl.resume(p)
    pre_kinds, pre_oks = read_after_resume(conn, sent, h)
    kinds, oks = hammer_direct(cl, p, h, 1.0)
    # The old primary must never again claim to serve as primary.
    bad_status = []
    for _ in range(20):
        st = cl.status(p)
        if st and st["role"] == "primary" and st["serving"]:
            bad_status.append(st)
        time.sleep(0.05)
    rejoined = None
    deadline = time.monotonic() + 10 * TIME_SCALE
    while time.monotonic() < deadline:
        st = cl.status(p)
        if st and st["role"] in ("secondary", "learner"):
            rejoined = st
            break
        time.sleep(0.05)
    fo = failover_time(load, t_stop)
    st = settle(cl, load, "b SIGSTOP primary 2s", {
        "paused": p.name, "new_primary": newp.name, "primary_seen_after_s": round(t_newp, 3),
        "first_ack_write_after_stop_s": None if fo is None else round(fo, 3),
        "sent_during_pause": pre_kinds, "direct_to_old_primary_after": kinds})
    assert not pre_oks, f"the deposed primary answered requests queued during its pause: {pre_oks}"
    assert set(pre_kinds) <= {"NOTPRIMARY", "TRYAGAIN", "closed"}, \
        f"requests queued at the old primary during its pause got {pre_kinds}"
    assert not oks, f"the deposed primary served requests after SIGCONT: {oks[:5]}"
    assert not bad_status, f"the deposed primary reported serving as primary: {bad_status[:3]}"
    assert set(kinds) <= {"NOTPRIMARY", "TRYAGAIN", "closed"}, \
        f"requests sent straight to the old primary after SIGCONT got {kinds}"
    assert rejoined is not None, f"{p.name} did not rejoin as secondary/learner: {cl.describe()}"
    assert fo is not None and fo <= FAILOVER_BUDGET, f"first acknowledged write {fo}s after SIGSTOP"
    assert newp is not p


# ---- c ---------------------------------------------------------------------------

def test_kill_secondary_and_restart(make_cluster):
    cl = make_cluster()
    h = History()
    load = Load(cl, h).start()
    time.sleep(PRE_FAULT)
    p = cl.wait_primary()
    s = next(n for n in cl.nodes if n is not p)
    t_kill = h.now()
    cl.kill(s)
    time.sleep(2.0)
    gap_down, at_down = load.write_gaps(t_kill, h.now())
    t_restart = h.now()
    cl.restart(s)
    time.sleep(2.0)
    gap_up, at_up = load.write_gaps(t_restart, h.now())
    st = settle(cl, load, "c kill -9 secondary + restart", {
        "killed": s.name, "primary": p.name,
        "write_gap_after_kill_s": round(gap_down, 3),
        "write_gap_after_restart_s": round(gap_up, 3)})
    assert cl.primary() is p, "the primary changed although only a secondary failed"
    assert gap_down <= FAILOVER_BUDGET, f"no acknowledged write for {gap_down:.2f}s after killing a secondary"
    assert gap_up <= FAILOVER_BUDGET, f"no acknowledged write for {gap_up:.2f}s while the secondary rejoined"
    assert st["ok"] > 100


# ---- d ---------------------------------------------------------------------------

def test_kill_active_manager(make_cluster):
    cl = make_cluster(managers=2)
    h = History()
    load = Load(cl, h).start()
    time.sleep(PRE_FAULT)
    m = cl.active_manager()
    assert m is not None
    standby = next(x for x in cl.managers if x is not m)
    cfg0 = cl.config()
    t_kill = h.now()
    m.kill()
    deadline = time.monotonic() + 15 * TIME_SCALE
    while time.monotonic() < deadline and not standby.active():
        time.sleep(0.05)
    takeover = h.now() - t_kill
    assert standby.active(), f"standby manager not active {takeover:.1f}s after kill -9 of the active one"
    # The new active manager hears from every node.
    ids = {n.id for n in cl.nodes}
    deadline = time.monotonic() + 10 * TIME_SCALE
    healthy = set()
    while time.monotonic() < deadline:
        try:
            healthy = {x["id"] for x in cl.mstatus()["nodes"] if x.get("healthy")}
        except RuntimeError:
            healthy = set()
        if ids <= healthy:
            break
        time.sleep(0.1)
    t_mdone = h.now()
    gap_m, at_m = load.write_gaps(t_kill, t_mdone)
    cfg1 = cl.config()
    # A later failover, run by the new manager.
    p = cl.wait_primary()
    cl.kill(p)
    t_pkill = h.now()
    newp = cl.wait_primary(timeout=10, exclude=(p,))
    wait_writes_after(load, t_pkill, 10 * TIME_SCALE)
    time.sleep(1.5)
    fo = failover_time(load, t_pkill)
    cl.restart(p)
    time.sleep(1.0)
    st = settle(cl, load, "d kill -9 active manager", {
        "manager_killed": m.id, "takeover_s": round(takeover, 3),
        "write_gap_during_manager_change_s": round(gap_m, 3),
        "config_version_before/after_manager_change": (cfg0["version"], cfg1["version"]),
        "later_primary_kill": p.name, "new_primary": newp.name,
        "first_ack_write_after_primary_kill_s": None if fo is None else round(fo, 3)})
    assert st["ok"] > 100
    assert ids <= healthy, f"new active manager sees healthy {healthy}, want {ids}"
    assert cfg1["version"] == cfg0["version"] and cfg1["primary"] == cfg0["primary"], \
        f"the manager change reconfigured the shard: {cfg0} -> {cfg1}"
    assert gap_m <= MANAGER_GAP, f"writes stalled {gap_m:.2f}s while the managers changed"
    assert fo is not None and fo <= FAILOVER_BUDGET, \
        f"after the manager change, first acknowledged write {fo}s after kill -9 of the primary"


# ---- e ---------------------------------------------------------------------------

def test_restart_etcd(make_cluster):
    cl = make_cluster()
    h = History()
    load = Load(cl, h).start()
    time.sleep(PRE_FAULT)
    cfg0 = cl.config()
    p0 = cl.wait_primary()
    t_stop = h.now()
    cl.etcd.stop()
    # Down for longer than the managers' etcd lease TTL (2 s): the active
    # manager cannot renew and should step down meanwhile.
    inactive_seen = None
    deadline = time.monotonic() + ETCD_DOWN
    while time.monotonic() < deadline:
        if inactive_seen is None and cl.active_manager() is None:
            inactive_seen = h.now() - t_stop
        time.sleep(0.1)
    cl.etcd.start()
    t_up = h.now()
    deadline = time.monotonic() + 15 * TIME_SCALE
    while time.monotonic() < deadline and cl.active_manager() is None:
        time.sleep(0.05)
    active_after = h.now() - t_up
    assert cl.active_manager() is not None, "no active manager after etcd came back"
    time.sleep(2.0)
    t_end = h.now()
    gap_e, at_e = load.write_gaps(t_stop, t_end)
    cfg1 = cl.config()
    p1 = cl.primary()
    # The manager still handles a failover after etcd's restart.
    cl.kill(p1)
    t_pkill = h.now()
    newp = cl.wait_primary(timeout=10, exclude=(p1,))
    wait_writes_after(load, t_pkill, 10 * TIME_SCALE)
    time.sleep(1.5)
    fo = failover_time(load, t_pkill)
    cl.restart(p1)
    time.sleep(1.0)
    st = settle(cl, load, "e restart etcd", {
        "etcd_down_s": round(t_up - t_stop, 2),
        "manager_inactive_after_s": None if inactive_seen is None else round(inactive_seen, 2),
        "manager_active_after_etcd_up_s": round(active_after, 2),
        "write_gap_around_etcd_restart_s": round(gap_e, 3),
        "config_before/after": (cfg0["version"], cfg1["version"]),
        "later_primary_kill": p1.name, "new_primary": newp.name,
        "first_ack_write_after_primary_kill_s": None if fo is None else round(fo, 3)})
    assert st["ok"] > 100
    assert (cfg1["version"], cfg1["primary"]) == (cfg0["version"], cfg0["primary"]), \
        f"etcd's restart reconfigured the shard: {cfg0} -> {cfg1}"
    assert p1 is p0
    assert gap_e <= MANAGER_GAP, f"writes stalled {gap_e:.2f}s around etcd's restart"
    assert fo is not None and fo <= FAILOVER_BUDGET, \
        f"after etcd's restart, first acknowledged write {fo}s after kill -9 of the primary"


# ---- held replies behind sent ones ------------------------------------------------

def test_held_reply_stays_held_behind_sent_bytes(make_cluster):
    """A reply held for commit stays held while replies after it are added
    to the same buffer: with a secondary stopped, [GET big, SET] sends the
    GET's reply at once and holds the SET's; a further GET must not release
    the held bytes (the reply buffer is compacted around them).  After the
    secondary resumes, every reply arrives, in order and intact."""
    cl = make_cluster()
    p = cl.wait_primary()
    big = b"v" * 20000
    r = Resp(p.port, timeout=10)
    c = Resp(p.port, timeout=10)
    sec = [n for n in cl.nodes if n is not p][0]
    try:
        assert r.call("SET", "big", big) == b"OK"
        cl.pause(sec)
        c.send(resp_encode("GET", "big") + resp_encode("SET", "held", "1"))
        assert c.read() == big
        c.send(resp_encode("GET", "big"))
        c.sock.settimeout(0.3)
        try:
            early = c.sock.recv(100)
        except socket.timeout:
            early = b""
        c.sock.settimeout(10)
        assert early == b"", f"a held reply left before its write committed: {early[:40]!r}"
        cl.resume(sec)
        assert c.read() == b"OK"
        assert c.read() == big
        assert c.call("GET", "held") == b"1"
    finally:
        r.close()
        c.close()


def test_pipeline_mixes_large_reads_and_held_writes(make_cluster):
    """A pipelined client interleaving large GETs (sent at once) with SETs
    (held until the secondaries have them) gets every reply, in order and
    intact: the reply buffer is compacted between loop turns while replies
    are held behind bytes already sent."""
    cl = make_cluster()
    p = cl.wait_primary()
    big = b"v" * 20000
    r = Resp(p.port, timeout=10)
    try:
        assert r.call("SET", "big", big) == b"OK"
        c = Resp(p.port, timeout=30)
        rounds, per = 6, 400
        want = [big if j % 2 == 0 else b"OK" for _ in range(rounds) for j in range(per)]
        got = []
        reader = threading.Thread(target=lambda: got.extend(c.read() for _ in want), daemon=True)
        reader.start()
        for i in range(rounds):
            c.send(b"".join(resp_encode("GET", "big") if j % 2 == 0 else
                            resp_encode("SET", f"k{i}-{j}", f"{i}-{j}") for j in range(per)))
            time.sleep(0.01)
        reader.join(60)
        c.close()
        assert len(got) == len(want), f"{len(got)} of {len(want)} replies"
        bad = [i for i, (g, w) in enumerate(zip(got, want)) if g != w]
        assert not bad, f"{len(bad)} replies differ, first at {bad[0]}: {got[bad[0]][:60]!r}"
        for i in range(rounds):
            assert r.call("GET", f"k{i}-1") == f"{i}-1".encode()
    finally:
        r.close()


# ---- f ---------------------------------------------------------------------------

def test_switchover_back_and_forth_under_load(make_cluster):
    """A planned switchover drains the primary first: no acknowledged write
    is lost, no client sees anything but a refusal it can retry, and writes
    pause only briefly (far less than a lease: the new primary need not wait
    out the leases it granted the fenced one)."""
    cl = make_cluster()
    h = History()
    load = Load(cl, h).start()
    time.sleep(1.0)
    first = cl.wait_primary()
    a, b = [n for n in cl.nodes if n is not first]
    pauses, gaps, versions = [], [], []
    for target in (a, first, b, first):
        t0 = h.now()
        out = cl.ctl("switchover", "1", target.id)
        assert out.returncode == 0, out.stdout + out.stderr
        m = re.search(r"no reads or writes for (\d+) ms: the old primary drained at LSN (\d+)",
                      out.stdout)
        assert m, out.stdout
        pauses.append(int(m.group(1)))
        cfg = cl.config()
        assert cfg["primary"] == target.id, (target.name, cfg)
        versions.append(cfg["version"])
        assert wait_writes_after(load, h.now(), 5 * TIME_SCALE), "no write after the switchover"
        time.sleep(0.3)
        gaps.append(round(load.write_gaps(t0, h.now())[0], 3))
    st = settle(cl, load, "f switchover x4", {"paused_ms": pauses, "write_gaps_s": gaps,
                                              "versions": versions})
    assert versions == list(range(versions[0], versions[0] + 4))
    assert max(gaps) < SWITCH_PAUSE, f"writes stalled {max(gaps)}s across a switchover"
    assert max(pauses) < SWITCH_PAUSE * 1000, f"ctl reported pauses of {pauses} ms"
    assert st["info"] == 0, f"outcome-unknown operations across planned switchovers: {st}"
    assert set(st["errors"]) <= {"NOTPRIMARY", "TRYAGAIN"}, st["errors"]
    assert not load.gaveup, load.gaveup[:5]
    assert st["ok"] > 100


# ---- g ---------------------------------------------------------------------------

def _handover(node):
    return node.client(timeout=2).info("replication").get("handover")


def test_switchover_manager_killed_mid_drain(make_cluster):
    """The manager dies while the primary drains: nothing wedges.  The
    primary finishes draining, stays fenced (the configuration never
    changes), and serves again by itself at its drain deadline."""
    # Leases long enough that the secondary may be stopped for the few
    # hundred ms this takes without the primary asking to remove it.
    lease = int(1000 * TIME_SCALE)
    cl = make_cluster(managers=2, lease_ms=lease, grace_ms=2 * lease)
    h = History()
    load = Load(cl, h).start()
    time.sleep(1.0)
    p = cl.wait_primary()
    cfg0 = cl.config()
    blocker, target = [n for n in cl.nodes if n is not p]
    m = cl.active_manager()
    ctl = None
    # While the blocker is stopped the primary's commit index cannot move,
    # so it cannot drain, and it answers nothing (every reply waits for
    # the commit index): the manager's log says when the drain starts.
    cl.pause(blocker)
    try:
        time.sleep(0.05)  # writes reach the primary, uncommitted
        ctl = subprocess.Popen([CAIRN_BIN, "ctl", "--manager", m.addr, "switchover", "1",
                                target.id], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
        wait_until(lambda: "hands over to" in m.log(), timeout=3 * TIME_SCALE, interval=0.005,
                   what="the manager starting the hand-over")
        time.sleep(0.05)  # DRAIN reaches the primary
        t_drain = h.now()
        m.kill()
    finally:
        cl.resume(blocker)
    out, err = ctl.communicate(timeout=30 * TIME_SCALE)
    assert ctl.returncode == 1 and "unknown" in err, (ctl.returncode, out, err)
    # It drains once the blocker answers, and waits for a configuration
    # that no manager will write...
    wait_until(lambda: _handover(p) == "drained", timeout=1.5, interval=0.01,
               what="the primary drained")
    assert cl.status(p)["serving"] is False
    # ... until its own deadline (2 s after DRAIN reached it).
    wait_until(lambda: _handover(p) == "none" and cl.status(p)["serving"],
               timeout=5 * TIME_SCALE, interval=0.01, what="the primary serving again")
    back = h.now() - t_drain
    assert wait_writes_after(load, h.now(), 5 * TIME_SCALE), "no write after the primary resumed"
    time.sleep(0.5)
    wait_until(lambda: cl.active_manager() is not None, timeout=15 * TIME_SCALE, interval=0.1,
               what="the standby manager active")
    cfg1 = cl.config()
    st = settle(cl, load, "g switchover, manager killed mid-drain", {
        "serving_again_after_s": round(back, 3), "versions": (cfg0["version"], cfg1["version"])})
    assert 1.5 <= back <= 2.0 + 1.5 * TIME_SCALE, f"the primary served again {back:.2f}s after DRAIN"
    assert cfg1["version"] == cfg0["version"] and cfg1["primary"] == p.id == cfg0["primary"], \
        f"the configuration changed: {cfg0} -> {cfg1}"
    assert cl.primary() is p
    assert st["ok"] > 100


# ---- h ---------------------------------------------------------------------------

def test_switchover_that_cannot_drain_is_given_up(make_cluster):
    lease = int(1000 * TIME_SCALE)
    cl = make_cluster(lease_ms=lease, grace_ms=2 * lease,
                      manager_args=["--switchover-timeout", "400"])
    p = cl.wait_primary()
    cfg0 = cl.config()
    blocker, target = [n for n in cl.nodes if n is not p]
    held = Resp(p.port, timeout=10 * TIME_SCALE)
    try:
        cl.pause(blocker)
        try:
            held.send(resp_encode("SET", "held", "1"))  # logged, not committed
            time.sleep(0.05)
            t0 = time.monotonic()
            out = cl.ctl("switchover", "1", target.id)
            took = time.monotonic() - t0
        finally:
            cl.resume(blocker)
        assert out.returncode == 1, out.stdout + out.stderr
        assert "did not drain within" in out.stderr and "the primary serves again" in out.stderr, \
            out.stderr
        assert took < 0.4 + 1.0 * TIME_SCALE, f"ctl took {took:.2f}s"
        assert held.read() == b"OK"  # committed once the blocker answered
    finally:
        held.close()
    wait_until(lambda: cl.primary() is p, timeout=2 * TIME_SCALE, interval=0.02,
               what="the primary serving again")
    r = Resp(p.port, timeout=5 * TIME_SCALE)
    try:
        assert r.call("SET", "after", "2") == b"OK"
        assert r.call("GET", "held") == b"1"
    finally:
        r.close()
    cfg1 = cl.config()
    assert (cfg1["version"], cfg1["primary"]) == (cfg0["version"], cfg0["primary"]), (cfg0, cfg1)
