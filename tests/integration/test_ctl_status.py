"""Gateway statistics in `cairn ctl status`, end to end.

Map of what is covered (real etcd, manager, 2 shards x 2 replicas, gateways
reading from any replica so every node serves; all on 127.0.0.1):

  report        traffic through the gateway -> within a few seconds
                `ctl status --json` lists the gateway (listen address, id
                naming its port and pid) with, for every node it used, its
                role and shard, nonzero requests, no errors, outstanding >= 0
                and ordered, plausible p50 <= p99 <= p999; the counts agree
                with the gateway's own INFO (never ahead of it)
  table         `ctl status` prints a GATEWAYS section with a row per node;
                the manager's INFO counts the gateways
  side by side  a second gateway shows up as its own entry
  death         kill -9 that gateway -> it leaves STATUS within ~6 s while
                the first one stays
  no manager    SIGSTOP the manager: the gateway keeps serving at once and
                logs nothing about its reports; SIGCONT -> reported again
  bad input     GATEWAY-REPORT with bad JSON, address or arity -> -ERR
  sanitizers    under an ASan build, no report in any log (the gateways'
                and the manager's shutdown included)
"""
import json
import os
import shutil
import signal
import time

import pytest
import redis

from cairnlib import CAIRN_BIN, wait_until
from gwlib import TIME_SCALE, GwCluster, parse_gw_info, raw_info

pytestmark = pytest.mark.skipif(not os.path.exists(CAIRN_BIN), reason=f"{CAIRN_BIN} not built")

TTL_S = 5.0  # the manager forgets a gateway silent this long (GWREP_TTL_MS)


@pytest.fixture(scope="module")
def c(tmp_path_factory):
    if not shutil.which("etcd") and not os.path.exists("/usr/bin/etcd"):
        pytest.skip("etcd not installed")
    cl = GwCluster(tmp_path_factory.mktemp("ctlst"), shards=2, replicas=2, fsync="no",
                   gw_args=["--read-policy", "any", "--policy", "round-robin"], name="ctlst").start()
    yield cl
    cl.stop_all()
    reports = cl.sanitizer_reports()
    assert not reports, "\n".join(reports)


def mclient(c, timeout=2):
    return redis.Redis(host="127.0.0.1", port=c.mport, socket_timeout=timeout,
                       decode_responses=True)


def gateways(c):
    """STATUS's gateways, straight from the manager: {listen addr: entry}."""
    m = mclient(c)
    try:
        st = json.loads(m.execute_command("CAIRN", "STATUS"))
    finally:
        m.close()
    return {g["addr"]: g for g in st["gateways"]}


def ctl_json(c):
    out = c.ctl("status", "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def traffic(port, n=400):
    """n SETs then n GETs, pipelined (any replica may answer a GET: maybe
    stale, never an error)."""
    r = redis.Redis(host="127.0.0.1", port=port, socket_timeout=10 * TIME_SCALE)
    try:
        p = r.pipeline(transaction=False)
        for i in range(n):
            p.set(f"k:{i}", i)
        for i in range(n):
            p.get(f"k:{i}")
        out = p.execute()
        assert out[:n] == [True] * n
    finally:
        r.close()


def total_requests(entry):
    return sum(n.get("requests", 0) for n in entry.get("nodes", []))


# ------------------------------------------------------------------- tests --

def test_status_json_has_gateway_node_stats(c):
    gaddr = f"127.0.0.1:{c.gport}"
    traffic(c.gport)
    # every node has served: primaries the writes, replicas some reads
    assert all(int(s["requests"]) > 0 for s in c.gw_info()["node_stats"].values()), \
        c.gw_info()["node_stats"]
    info_before = c.gw_info()["node_stats"]
    # the next report (at most ~1 s away) carries at least these counts
    wait_until(lambda: gaddr in gateways(c) and all(
        n["requests"] >= int(info_before[n["addr"]]["requests"])
        for n in gateways(c)[gaddr]["nodes"] if n["addr"] in info_before),
        timeout=10 * TIME_SCALE, interval=0.2, what="a report with the traffic")
    st = ctl_json(c)
    assert st["manager"]["active"] is True
    mine = [g for g in st["gateways"] if g["addr"] == gaddr]
    assert len(mine) == 1, st["gateways"]
    g = mine[0]
    assert g["id"].endswith(f":{c.gport}-{c.gateway.proc.pid}"), g["id"]
    assert g["pid"] == c.gateway.proc.pid
    assert 0 <= g["age_ms"] <= TTL_S * 1000
    assert g["commands"] >= 800
    assert g["uptime_s"] >= 0

    info_after = c.gw_info()["node_stats"]
    by_addr = {n["addr"]: n for n in g["nodes"]}
    roles = {}
    for shard, members in c.shard_nodes().items():
        for i, node in enumerate(members):
            roles[f"127.0.0.1:{node.port}"] = ("primary" if i == 0 else "secondary", shard)
    assert set(by_addr) == set(roles), (by_addr.keys(), roles)
    for addr, n in by_addr.items():
        assert (n["role"], n["shard"]) == roles[addr], (addr, n)
        assert n["requests"] > 0, n
        assert int(info_before[addr]["requests"]) <= n["requests"] \
            <= int(info_after[addr]["requests"]), (n, info_before[addr], info_after[addr])
        assert n["errors"] == 0, n
        assert n["outstanding"] >= 0, n
        assert 1 <= n["p50_us"] <= n["p99_us"] <= n["p999_us"] <= 10_000_000, n
        assert n["ejected"] is False and n["slow_start"] is False and n["healthy"] is True, n
    # the primaries took every write
    prim = sum(n["requests"] for n in g["nodes"] if n["role"] == "primary")
    assert prim >= 400, g["nodes"]


def test_status_table_lists_gateway(c):
    gaddr = f"127.0.0.1:{c.gport}"
    wait_until(lambda: gaddr in gateways(c), timeout=10 * TIME_SCALE, what="gateway reported")
    out = c.ctl("status")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "GATEWAYS (1)" in text, text
    head = [ln for ln in text.splitlines() if ln.startswith(f"gateway {gaddr}  id ")]
    assert len(head) == 1, text
    assert f":{c.gport}-{c.gateway.proc.pid}" in head[0]
    assert "NODE ADDR" in text and "P50_US  P99_US  P999_US  STATE" in text, text
    for node in c.nodes:
        rows = [ln.split() for ln in text.splitlines()
                if ln.startswith(f"  127.0.0.1:{node.port} ")]
        assert len(rows) == 1, (node.port, text)
        addr, role, shard, requests, errors, outstanding, p50, p99, p999, state = rows[0]
        assert role in ("primary", "secondary") and int(shard) > 0
        assert int(requests) > 0 and int(errors) == 0 and int(outstanding) >= 0
        assert int(p50) <= int(p99) <= int(p999)
        assert state == "ok"
    # the manager's INFO counts it too
    m = mclient(c)
    try:
        assert m.info()["gateways"] == 1
    finally:
        m.close()


def test_second_gateway_reports_then_leaves_when_killed(c):
    p, port = c.extra_gateway(args=["--read-policy", "any", "--policy", "round-robin"], name="gw2")
    gaddr2, gaddr = f"127.0.0.1:{port}", f"127.0.0.1:{c.gport}"
    traffic(port, n=50)
    wait_until(lambda: gaddr2 in gateways(c) and total_requests(gateways(c)[gaddr2]) >= 100,
               timeout=10 * TIME_SCALE, interval=0.2, what="the second gateway's report")
    st = ctl_json(c)
    addrs = sorted(g["addr"] for g in st["gateways"])
    assert addrs == sorted([gaddr, gaddr2])
    ids = {g["id"] for g in st["gateways"]}
    assert len(ids) == 2

    p.proc.send_signal(signal.SIGKILL)
    p.proc.wait(timeout=10)
    killed = time.monotonic()
    wait_until(lambda: gaddr2 not in gateways(c), timeout=10 * TIME_SCALE, interval=0.1,
               what="the killed gateway to leave STATUS")
    gone_after = time.monotonic() - killed
    assert gone_after <= TTL_S + 1.0 * TIME_SCALE, gone_after
    st = ctl_json(c)
    assert [g["addr"] for g in st["gateways"]] == [gaddr]
    p.stop()


def test_gateway_unaffected_by_unreachable_manager(c):
    gaddr = f"127.0.0.1:{c.gport}"
    with open(c.gateway.log_path, "rb") as f:
        log_before = f.read()
    # frozen for two report periods, but less than the 3 s after which the
    # manager would call the nodes unhealthy
    os.kill(c.manager.proc.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        traffic(c.gport, n=20)  # the data path needs no manager
        took = time.monotonic() - t0
        time.sleep(max(0.0, 2.2 - (time.monotonic() - t0)))
    finally:
        os.kill(c.manager.proc.pid, signal.SIGCONT)
    assert took < 2.0, took
    with open(c.gateway.log_path, "rb") as f:
        added = f.read()[len(log_before):].decode(errors="replace")
    assert "report" not in added.lower(), added
    assert len(added.splitlines()) <= 4, added
    # reported again once the manager answers (the old entry may have expired)
    wait_until(lambda: gaddr in gateways(c) and gateways(c)[gaddr]["age_ms"] < 1500,
               timeout=15 * TIME_SCALE, interval=0.2, what="the gateway reported again")
    info = parse_gw_info(raw_info(c.gport))
    assert int(info["shards"]) == 2


def test_bad_reports_refused(c):
    m = mclient(c)
    try:
        for args, msg in [
            (("g1", "127.0.0.1:1", "{"), "bad gateway report: not JSON"),
            (("g1", "127.0.0.1:1", "[]"), "not a JSON object"),
            (("g1", "nohostport", "{}"), "address must be host:port"),
            (("g 1", "127.0.0.1:1", "{}"), "gateway id"),
            (("g1", "127.0.0.1:1", '{"nodes":[{"requests":"many"}]}'), '"requests" must be an integer'),
        ]:
            with pytest.raises(redis.ResponseError, match=msg):
                m.execute_command("CAIRN", "GATEWAY-REPORT", *args)
        with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
            m.execute_command("CAIRN", "GATEWAY-REPORT", "g1", "127.0.0.1:1")
        assert "g1" not in {g["id"] for g in json.loads(
            m.execute_command("CAIRN", "STATUS"))["gateways"]}
        # a well-formed report from anyone is listed (and then expires)
        assert m.execute_command("CAIRN", "GATEWAY-REPORT", "probe", "127.0.0.1:1", "{}") == "OK"
        assert "127.0.0.1:1" in gateways(c)
    finally:
        m.close()
