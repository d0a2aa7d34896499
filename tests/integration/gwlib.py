"""A cairn cluster behind a gateway, for test_gateway.py: etcd + one manager +
shards x replicas `cairn node`s + one `cairn gateway`, all on 127.0.0.1 with
free ports, every wait bounded, and only what it started is stopped.

    c = GwCluster(tmp, shards=3, replicas=1, fsync="no").start()
    r = c.client()                   # redis-py on the gateway
    c.shard_nodes()                  # {shard id: [primary Node, secondaries...]}
    c.gw_info()                      # the gateway's INFO as a dict, plus
                                     # "node_stats": {addr: {requests, errors, ...}}
    c.kill(node); c.stop_all()
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import urllib.request

import redis

from cairnlib import CAIRN_BIN, Node, free_port, wait_until

ETCD_BIN = os.environ.get("CAIRN_ETCD_BIN", "/usr/bin/etcd")
TIME_SCALE = float(os.environ.get("CAIRN_TIME_SCALE", "3" if "asan" in CAIRN_BIN else "1"))


def _alive(p):
    return p is not None and p.poll() is None


class Proc:
    """A child process with its output in a log file."""

    def __init__(self, name, argv, log_path):
        self.name, self.argv, self.log_path = name, argv, log_path
        self.proc = None
        self.logf = None

    def start(self):
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdout=self.logf, stderr=subprocess.STDOUT)
        return self

    def alive(self):
        return _alive(self.proc)

    def log(self, tail=4000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-tail:]
        except OSError:
            return ""

    def stop(self, timeout=10):
        if _alive(self.proc):
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.logf and not self.logf.closed:
            self.logf.close()
        return self.proc.returncode if self.proc else None


class GwCluster:
    def __init__(self, base=None, shards=3, replicas=1, fsync="no", node_args=(),
                 gw_args=(), lease_ms=None, grace_ms=None, name="gw"):
        self._own_base = base is None
        self.base = str(base or tempfile.mkdtemp(prefix="cairn-gw-"))
        self.nshards, self.replicas = shards, replicas
        self.name = name
        ep, pp = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{ep}"
        peer = f"http://127.0.0.1:{pp}"
        self.etcd = Proc("etcd", [
            ETCD_BIN, "--name", "t", "--data-dir", os.path.join(self.base, "etcd"),
            "--listen-client-urls", self.etcd_url, "--advertise-client-urls", self.etcd_url,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"t={peer}"], os.path.join(self.base, "etcd.log"))
        self.mport = free_port()
        self.maddr = f"127.0.0.1:{self.mport}"
        self.manager = Proc("manager", [
            CAIRN_BIN, "manager", "--etcd", self.etcd_url, "--cluster", name,
            "--port", str(self.mport), "--dir", os.path.join(self.base, "manager")],
            os.path.join(self.base, "manager.log"))
        nargs = ["--manager", self.maddr] + list(node_args)
        if lease_ms:
            nargs += ["--repl-lease-ms", str(lease_ms)]
        if grace_ms:
            nargs += ["--repl-grace-ms", str(grace_ms)]
        self.nodes = []
        for i in range(shards * replicas):
            n = Node(self.base, fsync=fsync, name=f"n{i + 1}", args=nargs)
            n.name = f"n{i + 1}"
            n.id = None
            self.nodes.append(n)
        self.gport = free_port()
        self.gw_args = list(gw_args)
        self.gateway = None
        self._started = []

    # ---- lifecycle ----

    def start(self, timeout=40, gateway=True):
        try:
            return self._start(timeout, gateway)
        except BaseException:
            self.stop_all()
            raise

    def _start(self, timeout, gateway):
        t = timeout * TIME_SCALE
        self.etcd.start()
        self._started.append(self.etcd)
        wait_until(self._etcd_ok, timeout=20 * TIME_SCALE, what="etcd health")
        self.manager.start()
        self._started.append(self.manager)
        wait_until(lambda: self._mstatus().get("manager", {}).get("active"), timeout=15 * TIME_SCALE,
                   what="an active manager")
        for n in self.nodes:
            n.start()
            self._started.append(n)
            n.id = n.client(timeout=2).execute_command("CAIRN", "ID").decode()
        for _ in range(self.nshards):
            # each create takes `replicas` spare registered nodes
            def create():
                out = self.ctl("shard", "create", "--replicas", str(self.replicas))
                if out.returncode != 0:
                    raise RuntimeError(out.stdout + out.stderr)
                return True
            last = [None]

            def try_create():
                try:
                    return create()
                except RuntimeError as e:
                    last[0] = str(e)
                    return False
            try:
                wait_until(try_create, timeout=t, interval=0.2, what="cairn ctl shard create")
            except TimeoutError as e:
                raise TimeoutError(f"{e}: {last[0]}") from None
        wait_until(lambda: len(self.shard_nodes()) == self.nshards and all(
            self._serving(ns[0]) for ns in self.shard_nodes().values()),
            timeout=t, interval=0.05, what="every shard has a serving primary")
        if gateway:
            self.start_gateway()
        return self

    def start_gateway(self, extra=()):
        self.gateway = Proc("gateway", [CAIRN_BIN, "gateway", "--port", str(self.gport),
                                        "--manager", self.maddr] + self.gw_args + list(extra),
                            os.path.join(self.base, "gateway.log"))
        self.gateway.start()
        self._started.append(self.gateway)
        self.wait_gateway()
        return self.gateway

    def extra_gateway(self, args=(), name="gateway-extra"):
        """Another gateway on the same cluster (stopped by stop_all, or by
        the caller with .stop()); returns (Proc, port) once it answers SET."""
        port = free_port()
        p = Proc(name, [CAIRN_BIN, "gateway", "--port", str(port), "--manager", self.maddr]
                 + list(args), os.path.join(self.base, f"{name}-{port}.log")).start()
        self._started.append(p)

        def ok():
            if not p.alive():
                raise RuntimeError(f"{name} exited:\n{p.log()}")
            info = parse_gw_info(raw_info(port))
            if int(info.get("shards", 0)) != self.nshards:
                return False
            c = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)
            try:
                return c.set("__gw_probe__", "1")
            finally:
                c.close()
        try:
            wait_until(ok, timeout=30 * TIME_SCALE, interval=0.05, what=f"{name} SET -> OK")
        except TimeoutError as e:
            raise TimeoutError(f"{e}\n{p.log()}") from None
        return p, port

    def wait_gateway(self, timeout=30):
        last = [None]

        def ok():
            if not self.gateway.alive():
                raise RuntimeError("gateway exited:\n" + self.gateway.log())
            info = self.gw_info()
            last[0] = f"shards={info.get('shards')}"
            if int(info.get("shards", 0)) != self.nshards:
                return False
            return self.client(timeout=2).set("__gw_probe__", "1")
        try:
            wait_until(ok, timeout=timeout * TIME_SCALE, interval=0.05, what="gateway SET x y -> OK")
        except TimeoutError as e:
            raise TimeoutError(f"{e} ({last[0]})\n{self.gateway.log()}") from None

    def stop_all(self, keep=False):
        for p in reversed(self._started):
            try:
                if isinstance(p, Node):
                    if p.alive():
                        p.stop(timeout=15)
                    p._close_log()
                else:
                    p.stop()
            except Exception:
                pass
        self._started = []
        if self._own_base and not keep:
            shutil.rmtree(self.base, ignore_errors=True)

    def sanitizer_reports(self):
        """Sanitizer reports found in the cairn logs (for `make check-asan`
        style runs with CAIRN_BIN pointing at an ASan build)."""
        marks = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
        out = []
        for fn in sorted(os.listdir(self.base)):
            if not fn.endswith(".log") or fn.startswith("etcd"):
                continue
            try:
                with open(os.path.join(self.base, fn), "rb") as f:
                    text = f.read().decode(errors="replace")
            except OSError:
                continue
            for m in marks:
                if m in text:
                    i = text.index(m)
                    out.append(f"{fn}:\n{text[max(0, i - 200):i + 3000]}")
                    break
        return out

    def _etcd_ok(self):
        if not self.etcd.alive():
            raise RuntimeError("etcd exited:\n" + self.etcd.log())
        with urllib.request.urlopen(self.etcd_url + "/health", timeout=1) as r:
            return json.load(r)["health"] == "true"

    # ---- clients ----

    def client(self, timeout=10, **kw):
        return redis.Redis(host="127.0.0.1", port=self.gport, socket_timeout=timeout,
                           socket_connect_timeout=timeout, **kw)

    def ctl(self, *args, timeout=20):
        return subprocess.run([CAIRN_BIN, "ctl", "--manager", self.maddr] + list(args),
                              capture_output=True, text=True, timeout=timeout * TIME_SCALE)

    def _mstatus(self):
        c = redis.Redis(host="127.0.0.1", port=self.mport, socket_timeout=2, decode_responses=True)
        try:
            return json.loads(c.execute_command("CAIRN", "STATUS"))
        finally:
            c.close()

    def mstatus(self):
        return self._mstatus()

    def node_status(self, n, timeout=1.0):
        if not n.alive():
            return None
        try:
            c = n.client(timeout=timeout)
            try:
                return json.loads(c.execute_command("CAIRN", "STATUS"))
            finally:
                c.close()
        except (redis.RedisError, OSError, ValueError):
            return None

    def _serving(self, n):
        st = self.node_status(n)
        return bool(st and st.get("role") == "primary" and st.get("serving"))

    def by_id(self, nid):
        for n in self.nodes:
            if n.id == nid:
                return n
        return None

    def by_addr(self, addr):
        for n in self.nodes:
            if f"127.0.0.1:{n.port}" == addr:
                return n
        return None

    def shard_nodes(self):
        """{shard id: [primary, secondaries...]} from the nodes' own STATUS
        (a node that does not answer is left out)."""
        out = {}
        for n in self.nodes:
            st = self.node_status(n)
            if not st or not st.get("version"):
                continue
            out.setdefault(st["shard"], []).append((st["role"] != "primary", n))
        return {k: [n for _, n in sorted(v, key=lambda x: x[0])] for k, v in out.items()}

    def primaries(self):
        return [ns[0] for ns in self.shard_nodes().values()]

    def primary_of(self, shard_id):
        return self.shard_nodes()[shard_id][0]

    def wait_primary(self, exclude=(), timeout=20):
        found = [None]

        def ok():
            for n in self.nodes:
                if n in exclude:
                    continue
                if self._serving(n):
                    found[0] = n
                    return True
            return False
        wait_until(ok, timeout=timeout * TIME_SCALE, interval=0.05, what="a serving primary")
        return found[0]

    def gw_info(self, timeout=2):
        """The gateway's INFO: key -> value, plus 'shard_lines' and 'node_stats'
        ({addr: {requests, errors, outstanding, p50_us, p99_us, ...}})."""
        raw = raw_info(self.gport, timeout=timeout)
        return parse_gw_info(raw)

    def kill(self, n, sig=signal.SIGKILL):
        n.kill(sig)


def parse_gw_info(text):
    info = {"node_stats": {}, "shard_lines": {}}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        k, v = line.split(":", 1)
        if k == "node":
            d = dict(kv.split("=", 1) for kv in v.split(","))
            info["node_stats"][d["addr"]] = d
        elif k.startswith("shard") and k != "shards":
            info["shard_lines"][k] = v
        else:
            info[k] = v
    return info


def raw_info(port, timeout=2):
    """INFO from any RESP endpoint as text (redis-py's parser mangles the
    gateway's node:... lines, which repeat the key)."""
    from cairnlib import Resp
    r = Resp(port, timeout=timeout)
    try:
        rep = r.call("INFO")
    finally:
        r.close()
    return rep.decode(errors="replace") if isinstance(rep, bytes) else str(rep)
