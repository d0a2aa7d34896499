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
  foreground    up.sh with CAIRN_FOREGROUND=1 on the running cluster prints
                "cairn is up"; redis-py works; SIGINT to its process group
                stops every process (also those a detached run started),
                and it exits 0; ports free
  SIGTERM       the same from a fresh start, stopped by SIGTERM
  terminal      `make up` in a pseudo-terminal: with CAIRN_DETACH=1 it
                returns and the cluster runs; without, it stays until a
                typed Ctrl-C, and make exits only once everything is down
  no leaks      the test stops exactly the processes the pid files name (by
                pid and start time) and asserts none is left
"""
import fcntl
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import termios
import threading
import time

import pytest
import redis

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
        self.procs = []  # foreground up.sh / make, killed (group) at teardown

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

    def foreground(self, argv=None, terminal=False, **env):
        """Start up.sh (or argv) in its own session without waiting: output
        to a pipe, or with terminal=True to a new pseudo-terminal that is
        its controlling tty (so a typed ^C signals its process group)."""
        fg = Output(terminal)
        self.procs.append(fg.start(argv or [os.path.join(ROOT, "scripts", "up.sh")],
                                   dict(self.env, **env)))
        return fg

    def ports(self):
        return [self.nport + i for i in range(SHARDS * REPLICAS)] + \
            [self.mport, self.gport, self.eport, self.eport + 1]

    def assert_all_stopped(self, pids):
        """Nothing of this cluster runs: not the given pids, not a process
        any pid file named, and no port of it accepts a connection."""
        self.pids()
        left = {name for (pid, start), name in self.seen.items() if _starttime(pid) == start}
        left |= {name for name, pid in pids.items() if _starttime(pid) is not None}
        assert not left, f"still running: {sorted(left)}"
        for p in self.ports():
            with socket.socket() as s:
                s.settimeout(2)
                assert s.connect_ex(("127.0.0.1", p)) != 0, f"port {p} still accepts connections"

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


class Output:
    """A process in its own session whose output (pipe or pty) a thread
    collects, so a test can wait for a line with a deadline."""

    def __init__(self, terminal):
        self.terminal, self.text, self.proc = terminal, "", None
        self.lock = threading.Lock()

    def start(self, argv, env):
        if self.terminal:
            self.master, slave = os.openpty()
            self.proc = subprocess.Popen(  # fd 0 is the pty when preexec_fn runs
                argv, cwd=ROOT, env=env, stdin=slave, stdout=slave, stderr=slave,
                start_new_session=True, preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
            # Ours stays open until the reader is done: on Linux, reading the
            # master after the last slave fd closed may lose what is queued.
            self.slave, fd = slave, self.master
        else:
            self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                         start_new_session=True)
            fd = self.proc.stdout.fileno()
        self.reader = threading.Thread(target=self._read, args=(fd,), daemon=True)
        self.reader.start()
        return self.proc

    def _read(self, fd):
        while True:
            try:
                chunk = os.read(fd, 4096).decode(errors="replace")
            except OSError:  # EIO: the pty was hung up
                chunk = ""
            if not chunk:
                return
            with self.lock:
                self.text += chunk.replace("\r\n", "\n")

    def wait_for(self, needle, timeout):
        deadline = time.monotonic() + timeout * TIME_SCALE
        while needle not in self.text:
            rc = self.proc.poll()
            assert rc is None, f"exited {rc} before {needle!r}:\n{self.text}"
            assert time.monotonic() < deadline, f"no {needle!r} after {timeout}s:\n{self.text}"
            time.sleep(0.05)

    def signal(self, sig):
        os.killpg(self.proc.pid, sig)

    def type(self, data):
        os.write(self.master, data)

    def wait(self, timeout):
        """The exit status, within timeout.  The output may still be
        arriving (from what the process left behind): see finish()."""
        try:
            return self.proc.wait(timeout * TIME_SCALE)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {timeout}s later:\n{self.text}")

    def finish(self):
        """All of the output, once everything holding its pipe/pty is gone."""
        if self.terminal:
            os.close(self.slave)
        self.reader.join(5)
        if self.terminal:
            os.close(self.master)
        else:
            self.proc.stdout.close()
        return self.text


@pytest.fixture
def up(tmp_path):
    if not os.path.exists(CAIRN_BIN):
        pytest.skip(f"{CAIRN_BIN} not built")
    u = Up(tmp_path)
    yield u
    for p in u.procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
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

    # Foreground on the cluster the detached runs started: SIGINT to its
    # process group (what a terminal's Ctrl-C does) stops all of it.
    pids = up.pids()
    fg = up.foreground(CAIRN_FOREGROUND="1")
    fg.wait_for(f"cairn is up; connect with: redis-cli -p {up.gport}", 60)
    assert "already up" in fg.text
    r = redis.Redis(host="127.0.0.1", port=up.gport, socket_timeout=10 * TIME_SCALE)
    assert r.set("up:fg", "yes") and r.get("up:fg") == b"yes"
    r.close()
    fg.signal(signal.SIGINT)
    assert fg.wait(30) == 0, fg.text
    up.assert_all_stopped(pids)  # at once: up.sh exits only after the stop
    out = fg.finish()
    for name in NAMES:
        assert f"stopped {name} (pid {pids[name]})" in out, out
    assert "cairn is stopped" in out


def test_foreground_up_stops_the_cluster_on_sigterm(up):
    fg = up.foreground(CAIRN_FOREGROUND="1")
    fg.wait_for(f"cairn is up; connect with: redis-cli -p {up.gport}", 60)
    assert "Ctrl-C stops the cluster" in fg.text
    pids = up.pids()
    assert sorted(pids) == sorted(NAMES), fg.text + up.logs()
    assert up.cli("SET", "up:term", "1") == "OK" and up.cli("GET", "up:term") == "1"
    fg.signal(signal.SIGTERM)
    assert fg.wait(30) == 0, fg.text
    up.assert_all_stopped(pids)
    out = fg.finish()
    assert "SIGTERM: stopping the whole cluster" in out and "cairn is stopped" in out, out


def test_make_up_in_a_terminal_stays_until_ctrl_c(up):
    """The user's path: `make up` in a terminal.  `-o deps -o all` runs only
    the up rule's recipe (no apt-get, no rebuild of a tree others edit)."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("no make")
    argv = [make, "--no-print-directory", "-o", "deps", "-o", "all", "up"]
    env = {k: v for k, v in up.env.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "CAIRN_FOREGROUND", "CAIRN_DETACH")}
    up.env = env

    detached = up.foreground(argv, terminal=True, CAIRN_DETACH="1")
    assert detached.wait(60) == 0, detached.text + up.logs()
    out = detached.finish()
    assert f"connect: redis-cli -p {up.gport}" in out, out
    pids = up.pids()
    assert sorted(pids) == sorted(NAMES), out

    fg = up.foreground(argv, terminal=True)
    fg.wait_for("Ctrl-C stops the cluster", 60)
    assert up.cli("GET", "cairn:up") == "ok"
    fg.type(b"\x03")
    # make reaps up.sh before it dies of the same SIGINT: by the time make
    # has exited, up.sh has stopped everything.
    assert fg.wait(30) in (0, -signal.SIGINT), fg.text
    up.assert_all_stopped(pids)
    out = fg.finish()
    assert "cairn is stopped" in out and "***" not in out, out  # no make error
