"""`make up` end to end: scripts/up.sh and scripts/down.sh against a temporary
data dir, on free 127.0.0.1 ports given through the CAIRN_*_PORT variables.

What is covered
  start         the default shape: etcd, a manager, 3 shards x 3 replicas
                (9 nodes, one per zone in each shard), a gateway; the output
                shows the status and ends with `connect: redis-cli -p PORT`
  across shards redis-cli -p GATEWAY SET/GET of 60 keys; every shard's primary
                holds some of them, and the gateway's DBSIZE counts them all
  idempotent    a second up.sh while it runs says "already up", same pids,
                and creates no shard
  restart       down.sh stops every process; up.sh on the same data dir
                brings back the same 3 shards (none created twice) and the keys
  no leaks      the test stops exactly the processes the pid files name (by
                pid and start time) and asserts none is left
"""
import json
import os
import random
import signal
import socket
import subprocess
import time

import pytest

from cairnlib import CAIRN_BIN, ROOT

ETCD_BIN = os.environ.get("CAIRN_ETCD_BIN", "/usr/bin/etcd")
TIME_SCALE = float(os.environ.get("CAIRN_TIME_SCALE", "3" if "asan" in CAIRN_BIN else "1"))
SHARDS, REPLICAS = 3, 3
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
NAMES = ["etcd", "manager"] + [f"node{i}" for i in range(1, SHARDS * REPLICAS + 1)] + ["gateway"]


def _free_run(n):
    """The first of n consecutive ports free on 127.0.0.1, below the
    ephemeral range (so another test's free_port() cannot take one)."""
    for _ in range(200):
        base = random.randrange(20000, 32000 - n)
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no {n} consecutive free ports")


def _starttime(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else fields[19]


class Up:
    def __init__(self, tmp):
        self.data = str(tmp / "data")
        base = _free_run(SHARDS * REPLICAS + 4)  # nodes, manager, gateway, etcd x2
        self.nport = base
        self.mport = base + SHARDS * REPLICAS
        self.gport = self.mport + 1
        self.eport = self.gport + 1
        self.env = dict(os.environ, CAIRN_DATA=self.data, CAIRN_BIN=CAIRN_BIN,
                        CAIRN_ETCD_BIN=ETCD_BIN, CAIRN_NODE_PORT=str(self.nport),
                        CAIRN_MANAGER_PORT=str(self.mport), CAIRN_GATEWAY_PORT=str(self.gport),
                        CAIRN_ETCD_PORT=str(self.eport))
        self.seen = {}  # every (pid, start time) a pid file ever named

    def run(self, script, timeout=60):
        out = subprocess.run([os.path.join(ROOT, "scripts", script)], env=self.env,
                             capture_output=True, text=True, timeout=timeout * TIME_SCALE)
        self.pids()
        return out

    def pids(self):
        """{name: pid} from the pid files, for the processes still running."""
        out = {}
        for name in NAMES:
            try:
                with open(os.path.join(self.data, "run", name + ".pid")) as f:
                    pid, start = f.read().split("\n")[:2]
            except (OSError, ValueError):
                continue
            self.seen[(int(pid), start)] = name
            if _starttime(int(pid)) == start:
                out[name] = int(pid)
        return out

    def cli(self, *args, port=None):
        out = subprocess.run(["redis-cli", "-p", str(port or self.gport)] + [str(a) for a in args],
                             capture_output=True, text=True, timeout=10 * TIME_SCALE)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    def status(self):
        out = subprocess.run([CAIRN_BIN, "ctl", "--manager", f"127.0.0.1:{self.mport}", "status",
                              "--json"], capture_output=True, text=True, timeout=10 * TIME_SCALE)
        assert out.returncode == 0, out.stdout + out.stderr
        return json.loads(out.stdout)

    def leftovers(self):
        """Kill (SIGKILL) every process a pid file ever named that still runs;
        return their names."""
        left = []
        for (pid, start), name in self.seen.items():
            if _starttime(pid) == start:
                left.append(name)
                os.kill(pid, signal.SIGKILL)
        return left

    def logs(self):
        text = ""
        for name in NAMES:
            try:
                with open(os.path.join(self.data, name + ".log"), errors="replace") as f:
                    text += f"--- {name}.log\n" + f.read()[-1500:]
            except OSError:
                pass
        return text


@pytest.fixture
def up(tmp_path):
    if not os.path.exists(CAIRN_BIN):
        pytest.skip(f"{CAIRN_BIN} not built")
    u = Up(tmp_path)
    yield u
    down = u.run("down.sh")
    left = u.leftovers()
    assert down.returncode == 0, down.stdout + down.stderr
    assert not left, f"still running after down.sh: {left}"
    for name in NAMES:
        if name == "etcd":
            continue
        try:
            with open(os.path.join(u.data, name + ".log"), errors="replace") as f:
                log = f.read()
        except OSError:
            continue
        for mark in SANITIZER_MARKS:
            assert mark not in log, f"sanitizer report in {name}.log:\n{log[-4000:]}"


def test_up_starts_the_default_cluster_and_restarts_it(up):
    first = up.run("up.sh")
    assert first.returncode == 0, first.stdout + first.stderr + up.logs()
    assert first.stdout.rstrip().endswith(f"connect: redis-cli -p {up.gport}"), first.stdout
    assert "SHARD 3" in first.stdout and "active manager" in first.stdout
    pids = up.pids()
    assert sorted(pids) == sorted(NAMES), pids
    for name, pid in pids.items():
        assert f"pid {pid}" in first.stdout and os.path.join(up.data, name + ".log") in first.stdout

    st = up.status()
    assert len(st["shards"]) == SHARDS and len(st["nodes"]) == SHARDS * REPLICAS
    addrs = {f"127.0.0.1:{up.nport + i}" for i in range(SHARDS * REPLICAS)}
    zones = {n["addr"]: n["zone"] for n in st["nodes"]}
    for s in st["shards"]:
        members = [s["primary"]] + s["secondaries"]
        assert len(members) == REPLICAS
        assert {s["addrs"][m] for m in members} <= addrs
        assert len({zones[s["addrs"][m]] for m in members}) == REPLICAS  # one per zone

    # Through the gateway with redis-cli: keys of every shard.
    keys = [f"up:key:{i}" for i in range(60)]
    for k in keys:
        assert up.cli("SET", k, "v-" + k) == "OK"
    for k in keys:
        assert up.cli("GET", k) == "v-" + k
    total = 0
    for s in st["shards"]:
        port = s["addrs"][s["primary"]].rsplit(":", 1)[1]
        n = int(up.cli("DBSIZE", port=port))
        assert n > 0, f"shard {s['shard']} got none of the keys"
        total += n
    assert int(up.cli("DBSIZE")) == total >= len(keys)

    again = up.run("up.sh")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already up" in again.stdout
    assert up.pids() == pids
    assert len(up.status()["shards"]) == SHARDS

    down = up.run("down.sh")
    assert down.returncode == 0, down.stdout + down.stderr
    assert up.pids() == {} and up.leftovers() == []

    restart = up.run("up.sh")
    assert restart.returncode == 0, restart.stdout + restart.stderr + up.logs()
    assert sorted(up.pids()) == sorted(NAMES)
    st2 = up.status()
    assert sorted(s["shard"] for s in st2["shards"]) == sorted(s["shard"] for s in st["shards"])
    deadline = time.monotonic() + 10 * TIME_SCALE
    for k in keys[::7]:
        while up.cli("GET", k) != "v-" + k and time.monotonic() < deadline:
            time.sleep(0.1)
        assert up.cli("GET", k) == "v-" + k
