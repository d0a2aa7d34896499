"""A real cairn cluster on 127.0.0.1 for failover tests, and a client that
records every attempt in a history (history.py).

What this module covers:

  Etcd            a single-member etcd (temp data dir, free ports); stop/start
                  on the same data dir and ports (restart), pause/resume
  Manager         one `cairn manager` process; active() from its INFO
  Cluster         etcd + 1..2 managers + N `cairn node`s (cairnlib.Node, each
                  its own dir, --manager listing every manager, --repl-lease-ms
                  / --repl-grace-ms, zones z1..zN); start() registers the nodes,
                  runs `cairn ctl shard create --replicas R` and waits (bounded)
                  until a primary accepts a SET.  Exposes:
                    primary()            the serving primary (CAIRN STATUS)
                    wait_primary()       bounded wait for one (optionally not X)
                    status(node)         a node's CAIRN STATUS, None if unreachable
                    mstatus()/config()   the active manager's STATUS / shard config
                    kill/restart/pause/resume(node)
                    digest(node)         sha256 over every key, its type and value:
                                         secondaries refuse reads, so the node's
                                         data dir is copied (it is quiescent) and a
                                         standalone `cairn node` on the copy is
                                         SCANned; live_digest(primary) SCANs the
                                         live primary
                    wait_converged()     every member of the current configuration
                                         is in it as primary/secondary, reports the
                                         same last_lsn and commit_lsn, and has the
                                         same digest
                    stop_all()           stops only what it started (SIGCONT first
                                         for paused ones), removes its temp dirs
  ClusterClient   follows -NOTPRIMARY <version> <addr> redirects, retries
                  -TRYAGAIN / -CLUSTERDOWN / connection errors with short
                  sleeps (bounded by a per-call deadline), and records every
                  attempt: a reply -> ok; a refusal (NOTPRIMARY, TRYAGAIN,
                  CLUSTERDOWN, LOADING, connect refused) -> fail; a connection
                  broken or timed out after the request was sent -> info.
                  Unexpected error replies are recorded as info and listed in
                  `unexpected` (tests assert there are none).
  Load            N client threads doing SET (unique values) / INCR / GET on
                  register keys r0.. and counter keys c0.., until stopped;
                  stats(): ops, outcomes, error kinds, and the longest span
                  without a successful write.
"""
import collections
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import redis

from cairnlib import CAIRN_BIN, Etcd, Node, Resp, RespError, free_port, wait_until


# Sanitizer builds run several times slower: scale the time budgets.
TIME_SCALE = float(os.environ.get("CAIRN_TIME_SCALE",
                                  "3" if "asan" in CAIRN_BIN else "1"))

REFUSALS = ("NOTPRIMARY", "TRYAGAIN", "CLUSTERDOWN", "LOADING", "MASTERDOWN")
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def _proc_alive(p):
    return p is not None and p.poll() is None


# ---- etcd ----------------------------------------------------------------------

# ---- managers ------------------------------------------------------------------

class Manager:
    """One `cairn manager` process."""

    def __init__(self, base, etcd, cluster, mid, lease_ttl=2):
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.id = mid
        self.log_path = os.path.join(str(base), f"manager-{mid}.log")
        self.args = [CAIRN_BIN, "manager", "--etcd", etcd.url, "--cluster", cluster,
                     "--port", str(self.port), "--id", mid, "--lease-ttl", str(lease_ttl),
                     "--dir", os.path.join(str(base), f"manager-{mid}")]
        self.proc = None
        self.logf = None

    def start(self, timeout=10):
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, stdout=self.logf, stderr=subprocess.STDOUT)

        def up():
            if not _proc_alive(self.proc):
                raise RuntimeError(f"manager {self.id} exited:\n{self.log()[-2000:]}")
            return self.client(1).ping()
        deadline = time.monotonic() + timeout * TIME_SCALE
        while True:
            try:
                if up():
                    return self
            except RuntimeError:
                raise
            except Exception:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"manager {self.id} did not answer PING:\n{self.log()[-2000:]}")
            time.sleep(0.02)

    def client(self, timeout=2):
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=timeout,
                           socket_connect_timeout=timeout, decode_responses=True)

    def call(self, *args, timeout=2):
        c = self.client(timeout)
        try:
            return c.execute_command(*args)
        finally:
            c.close()

    def active(self):
        try:
            return self.client(1).info().get("active") in ("yes", 1, "1", True)
        except (redis.RedisError, OSError):
            return False

    def alive(self):
        return _proc_alive(self.proc)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def kill(self, sig=signal.SIGKILL):
        if self.alive():
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)
        if self.logf and not self.logf.closed:
            self.logf.close()

    def stop(self, timeout=10):
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.logf and not self.logf.closed:
            self.logf.close()


# ---- the cluster ---------------------------------------------------------------

class Cluster:
    def __init__(self, base=None, nodes=3, managers=1, replicas=3, fsync="always",
                 lease_ms=400, grace_ms=800, name="failover", keep_dir=False):
        self._own_base = base is None
        self.base = base or tempfile.mkdtemp(prefix="cairn-cluster-")
        self.base = str(self.base)
        self.name = name
        self.replicas = replicas
        self.keep_dir = keep_dir
        self.etcd = Etcd(self.base)
        self.managers = [Manager(self.base, self.etcd, name, f"m{i + 1}") for i in range(managers)]
        margs = ["--manager", self.manager_addrs(), "--repl-lease-ms", str(lease_ms),
                 "--repl-grace-ms", str(grace_ms)]
        self.nodes = []
        for i in range(nodes):
            n = Node(self.base, fsync=fsync, name=f"n{i + 1}",
                     args=margs + ["--zone", f"z{i + 1}"])
            n.name = f"n{i + 1}"
            n.id = None
            n.paused = False
            self.nodes.append(n)
        self._started = []
        self._tmpdirs = []
        self.loads = []  # Load objects on this cluster: stopped first by stop_all()

    # -- lifecycle --

    def manager_addrs(self):
        return ",".join(m.addr for m in self.managers)

    def start(self, timeout=30):
        """etcd, managers, nodes; register; create the shard; wait until a
        primary accepts a SET.  Raises TimeoutError naming the step that did
        not happen."""
        self.etcd.start(timeout=20 * TIME_SCALE)
        self._started.append(self.etcd)
        for m in self.managers:
            m.start()
            self._started.append(m)
        wait_until(lambda: self.active_manager() is not None, timeout=10 * TIME_SCALE,
                   what="an active manager")
        for n in self.nodes:
            n.start()
            self._started.append(n)
            n.id = n.client(timeout=2).execute_command("CAIRN", "ID").decode()
        want = {n.id for n in self.nodes}
        wait_until(lambda: want <= {x["id"] for x in self.mstatus()["nodes"]},
                   timeout=10 * TIME_SCALE, what="all nodes registered with the manager")
        out = self.ctl("shard", "create", "--replicas", str(self.replicas))
        if out.returncode != 0:
            raise RuntimeError(f"cairn ctl shard create failed ({out.returncode}): "
                               f"{out.stdout}{out.stderr}")
        self.wait_writable(timeout=timeout)
        return self

    def wait_writable(self, timeout=30, key=b"__probe__"):
        """Bounded wait until some node accepts a SET as primary."""
        last = [None]

        def ok():
            p = self.primary()
            if p is None:
                last[0] = "no node reports role primary + serving: " + self.describe()
                return False
            r = Resp(p.port, timeout=2)
            try:
                rep = r.call("SET", key, b"1")
            finally:
                r.close()
            last[0] = f"SET through {p.name} replied {rep!r}"
            return rep == b"OK"
        try:
            wait_until(ok, timeout=timeout * TIME_SCALE, interval=0.05, what="a writable primary")
        except TimeoutError as e:
            raise TimeoutError(f"{e}; last: {last[0]}") from None

    def stop_all(self):
        # Client threads first: left running, they would retry against
        # ports that the next test's processes may reuse.
        for ld in self.loads:
            ld.stop_evt.set()
        for ld in self.loads:
            for t in ld.threads:
                t.join(timeout=30 * TIME_SCALE)
        for n in self.nodes:
            if n.alive() and n.paused:
                n.proc.send_signal(signal.SIGCONT)
                n.paused = False
        for p in reversed(self._started):
            try:
                if isinstance(p, Node):
                    p.stop(timeout=15)
                else:
                    p.stop()
            except Exception:
                pass
        self._started = []
        for d in self._tmpdirs:
            shutil.rmtree(d, ignore_errors=True)
        self._tmpdirs = []
        if self._own_base and not self.keep_dir:
            shutil.rmtree(self.base, ignore_errors=True)

    # -- managers --

    def active_manager(self):
        for m in self.managers:
            if m.alive() and m.active():
                return m
        return None

    def ctl(self, *args, timeout=20):
        return subprocess.run([CAIRN_BIN, "ctl", "--manager", self.manager_addrs()] + list(args),
                              capture_output=True, text=True, timeout=timeout * TIME_SCALE)

    def mstatus(self):
        """The active manager's CAIRN STATUS (dict); raises if none is active."""
        for m in self.managers:
            if not m.alive():
                continue
            try:
                st = json.loads(m.call("CAIRN", "STATUS"))
            except (redis.RedisError, OSError, ValueError):
                continue
            if st.get("manager", {}).get("active"):
                return st
        raise RuntimeError("no active manager answered CAIRN STATUS")

    def config(self):
        """The shard's configuration as the active manager sees it."""
        shards = self.mstatus()["shards"]
        return shards[0] if shards else None

    # -- nodes --

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

    def status(self, node, timeout=1.0):
        """A node's CAIRN STATUS as a dict, None if it does not answer."""
        if not node.alive() or node.paused:
            return None
        try:
            r = Resp(node.port, timeout=timeout)
            try:
                rep = r.call("CAIRN", "STATUS")
            finally:
                r.close()
        except OSError:
            return None
        if isinstance(rep, (RespError, type(None))):
            return None
        return json.loads(rep)

    def statuses(self):
        return {n.name: self.status(n) for n in self.nodes}

    def describe(self):
        parts = []
        for n in self.nodes:
            st = self.status(n)
            if st is None:
                parts.append(f"{n.name}:down" if not n.alive() else
                             f"{n.name}:paused" if n.paused else f"{n.name}:no-answer")
            else:
                parts.append(f"{n.name}:{st['role']}/v{st['version']}/serving={st['serving']}"
                             f"/lsn={st['last_lsn']}/commit={st['commit_lsn']}")
        return " ".join(parts)

    def primary(self, exclude=()):
        """The node that reports role primary and serving (highest version
        if, wrongly, several do); None if none does."""
        best = None
        for n in self.nodes:
            if n in exclude:
                continue
            st = self.status(n)
            if st and st.get("role") == "primary" and st.get("serving"):
                if best is None or st["version"] > best[1]["version"]:
                    best = (n, st)
        return best[0] if best else None

    def serving_primaries(self):
        out = []
        for n in self.nodes:
            st = self.status(n)
            if st and st.get("role") == "primary" and st.get("serving"):
                out.append((n, st))
        return out

    def wait_primary(self, timeout=10, exclude=()):
        got = []

        def f():
            p = self.primary(exclude=exclude)
            if p is not None:
                got.append(p)
                return True
            return False
        try:
            wait_until(f, timeout=timeout * TIME_SCALE, interval=0.05, what="a serving primary")
        except TimeoutError as e:
            raise TimeoutError(f"{e}: {self.describe()}") from None
        return got[-1]

    def kill(self, node, sig=signal.SIGKILL):
        if node.paused and sig in (signal.SIGKILL, signal.SIGTERM):
            node.proc.send_signal(signal.SIGCONT)
            node.paused = False
        node.kill(sig)

    def restart(self, node, timeout=20):
        if node.alive():
            self.kill(node)
        node.start(timeout=timeout * TIME_SCALE)
        node.paused = False
        if node not in self._started:
            self._started.append(node)
        return node

    def pause(self, node):
        node.proc.send_signal(signal.SIGSTOP)
        node.paused = True

    def resume(self, node):
        node.proc.send_signal(signal.SIGCONT)
        node.paused = False

    # -- data --

    @staticmethod
    def scan_all(port, timeout=10):
        """{key: (type, value)} of everything a node holds, by SCAN."""
        r = Resp(port, timeout=timeout)
        try:
            out = {}
            cursor = b"0"
            for _ in range(100000):
                rep = r.call("SCAN", cursor, "COUNT", 1000)
                if isinstance(rep, RespError):
                    raise RuntimeError(f"SCAN on {port}: {rep}")
                cursor, keys = rep
                for k in keys:
                    t = r.call("TYPE", k)
                    if t == b"string":
                        v = r.call("GET", k)
                    elif t == b"hash":
                        v = r.call("HGETALL", k)
                        v = sorted(zip(v[0::2], v[1::2]))
                    elif t == b"none":
                        continue  # expired between SCAN and TYPE
                    else:
                        v = repr(t)
                    if isinstance(v, RespError):
                        raise RuntimeError(f"reading {k!r} on {port}: {v}")
                    out[k] = (t, v)
                if cursor == b"0":
                    return out
            raise RuntimeError("SCAN did not finish")
        finally:
            r.close()

    @staticmethod
    def hash_data(data):
        h = hashlib.sha256()
        for k in sorted(data):
            t, v = data[k]
            h.update(repr((k, t, v)).encode())
        return h.hexdigest()

    def live_digest(self, node):
        return self.hash_data(self.scan_all(node.port))

    def offline_data(self, node, timeout=20):
        """Copy the node's data dir (quiescent: no load running) and read
        it with a standalone `cairn node` on the copy."""
        tmp = tempfile.mkdtemp(prefix=f"cairn-digest-{node.name}-")
        self._tmpdirs.append(tmp)
        copy = os.path.join(tmp, "data")
        shutil.copytree(node.dir, copy, ignore=shutil.ignore_patterns("LOCK"))
        port = free_port()
        logp = os.path.join(tmp, "node.log")
        with open(logp, "ab") as logf:
            p = subprocess.Popen([CAIRN_BIN, "node", "--port", str(port), "--dir", copy,
                                  "--fsync", "no"], stdout=logf, stderr=subprocess.STDOUT)
        try:
            def up():
                if p.poll() is not None:
                    with open(logp, "rb") as f:
                        raise RuntimeError(f"standalone node on a copy of {node.name}'s dir exited "
                                           f"{p.returncode}:\n{f.read().decode(errors='replace')}")
                r = Resp(port, timeout=1)
                try:
                    return r.call("PING") == b"PONG"
                finally:
                    r.close()
            deadline = time.monotonic() + timeout * TIME_SCALE
            while True:
                try:
                    if up():
                        break
                except RuntimeError:
                    raise
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"standalone node on a copy of {node.name}'s dir did not start")
                time.sleep(0.02)
            data = self.scan_all(port)
            p.terminate()
            p.wait(timeout=30 * TIME_SCALE)
            with open(logp, "rb") as f:
                log = f.read().decode(errors="replace")
            for mark in SANITIZER_MARKS:
                if mark in log:
                    raise RuntimeError(f"sanitizer report from the standalone node reading "
                                       f"{node.name}'s data:\n{log}")
            return data
        finally:
            if p.poll() is None:
                p.kill()
            p.wait()
            shutil.rmtree(tmp, ignore_errors=True)

    def digest(self, node):
        return self.hash_data(self.offline_data(node))

    def members(self, cfg=None):
        cfg = cfg or self.config()
        return [cfg["primary"]] + list(cfg["secondaries"]) + list(cfg.get("learners", []))

    def wait_converged(self, timeout=30, want_members=None):
        """Bounded wait until the active manager's configuration has
        `want_members` (default: every node) as primary + secondaries (no
        learners), each member reports that version, the role it has in
        it, and the same last_lsn = commit_lsn; then the digests of all
        members must be equal.  Returns (config, digest)."""
        want = want_members if want_members is not None else len(self.nodes)
        last = [""]

        def same():
            cfg = self.config()
            if cfg is None:
                last[0] = "no shard"
                return False
            if cfg.get("learners") or 1 + len(cfg["secondaries"]) != want:
                last[0] = f"configuration {cfg}"
                return False
            lsns = set()
            for nid in self.members(cfg):
                n = self.by_id(nid)
                st = self.status(n) if n else None
                if st is None or st["version"] != cfg["version"]:
                    last[0] = f"{nid}: {st} vs configuration v{cfg['version']}"
                    return False
                role = "primary" if nid == cfg["primary"] else "secondary"
                if st["role"] != role:
                    last[0] = f"{n.name} reports {st['role']}, configuration says {role}"
                    return False
                lsns.add((st["last_lsn"], st["commit_lsn"]))
            if len(lsns) != 1 or len({a for a, b in lsns} | {b for a, b in lsns}) != 1:
                last[0] = f"positions differ: {self.describe()}"
                return False
            return True
        try:
            wait_until(same, timeout=timeout * TIME_SCALE, interval=0.1, what="replicas converged")
        except TimeoutError as e:
            raise TimeoutError(f"{e}; last: {last[0]}") from None
        cfg = self.config()
        digests = {}
        for nid in self.members(cfg):
            digests[self.by_id(nid).name] = self.digest(self.by_id(nid))
        assert len(set(digests.values())) == 1, f"replicas hold different data: {digests}"
        p = self.by_id(cfg["primary"])
        live = self.live_digest(p)
        d = next(iter(digests.values()))
        assert live == d, f"primary {p.name}: live SCAN digest {live} != its data dir's {d}"
        return cfg, d

    def logs(self):
        out = {}
        for n in self.nodes:
            out[n.name] = n.log()
        for m in self.managers:
            out[f"manager-{m.id}"] = m.log()
        return out

    def logs_tail(self, n=40):
        """The last n lines of every process's log, for a failure message."""
        out = []
        for name, log in self.logs().items():
            lines = log.splitlines()[-n:]
            out.append(f"---- {name} (last {len(lines)} lines)\n" + "\n".join(lines))
        return "\n".join(out)

    def sanitizer_report(self):
        """The first sanitizer report in any process's log, with context, or None."""
        for name, log in self.logs().items():
            for mark in SANITIZER_MARKS:
                if mark in log:
                    i = log.index(mark)
                    return f"sanitizer report in {name}'s log:\n{log[max(0, i - 200):i + 3000]}"
        return None


# ---- the recording client ------------------------------------------------------

class GaveUp(Exception):
    pass


class ClusterClient:
    """One logical client.  call(op, key, *args) retries until a reply or
    the deadline; every attempt is one op in `history`."""

    def __init__(self, cluster, history, cid, op_timeout=1.5, deadline=10.0, stop=None):
        self.cluster = cluster
        self.history = history
        self.cid = cid
        self.op_timeout = op_timeout * TIME_SCALE
        self.deadline = deadline * TIME_SCALE
        self.stop = stop  # threading.Event: give up early when set
        self.conns = {}
        self.target = None  # port
        self.rr = random.Random(cid)
        self.errors = collections.Counter()
        self.unexpected = []

    def _ports(self):
        return [n.port for n in self.cluster.nodes]

    def _conn(self, port):
        c = self.conns.get(port)
        if c is None:
            c = Resp(port, timeout=self.op_timeout)  # raises OSError if refused
            self.conns[port] = c
        return c

    def _drop(self, port):
        c = self.conns.pop(port, None)
        if c:
            c.close()

    def _rotate(self):
        ports = self._ports()
        if self.target in ports:
            self.target = ports[(ports.index(self.target) + 1) % len(ports)]
        else:
            self.target = self.rr.choice(ports)

    def close(self):
        for p in list(self.conns):
            self._drop(p)

    def call(self, op, key, *args):
        """Returns the reply (bytes/int/None) or raises GaveUp."""
        h = self.history
        start = time.monotonic()
        attempts = 0
        tryagain = 0
        if self.target is None:
            self._rotate()
        while True:
            attempts += 1
            if time.monotonic() - start > self.deadline or attempts > 2000:
                raise GaveUp(f"{op} {key!r}: no reply within {self.deadline:.1f}s / {attempts} attempts")
            if self.stop is not None and self.stop.is_set() and attempts > 1:
                raise GaveUp("stopping")
            port = self.target
            o = h.invoke(self.cid, op, key, *args)
            o.node = port
            try:
                conn = self._conn(port)
            except OSError as e:
                h.fail(o, f"connect: {e}")
                self.errors["connect"] += 1
                self._rotate()
                time.sleep(0.01)
                continue
            try:
                conn.send(_encode(op, key, args))
            except OSError as e:
                # Part of the request may have reached the server.
                h.info(o, f"send: {e}")
                self.errors["send"] += 1
                self._drop(port)
                self._rotate()
                continue
            try:
                rep = conn.read()
            except socket.timeout:
                h.info(o, "timeout")
                self.errors["timeout"] += 1
                self._drop(port)
                self._rotate()
                continue
            except (OSError, ConnectionError) as e:
                h.info(o, f"read: {e}")
                self.errors["reset"] += 1
                self._drop(port)
                self._rotate()
                continue
            if isinstance(rep, RespError):
                msg = str(rep)
                kind = msg.split(" ", 1)[0]
                if kind in REFUSALS:
                    h.fail(o, msg)
                    self.errors[kind] += 1
                    if kind == "NOTPRIMARY":
                        parts = msg.split()
                        n = self.cluster.by_addr(parts[2]) if len(parts) >= 3 else None
                        if n is not None and n.port != port:
                            self.target = n.port
                        else:
                            self._rotate()
                            time.sleep(0.01)
                    else:
                        tryagain += 1
                        if tryagain % 5 == 0:
                            self._rotate()
                        time.sleep(0.02)
                    continue
                h.info(o, msg)
                self.errors["other:" + kind] += 1
                self.unexpected.append((op, key, args, msg))
                raise GaveUp(f"unexpected error {msg}")
            h.ok(o, rep)
            return rep


def _encode(op, key, args):
    from cairnlib import resp_encode
    return resp_encode(op.upper(), key, *args)


# ---- load ------------------------------------------------------------------------

class Load:
    """`clients` threads doing SET/INCR/GET on `keys` keys (half registers
    r<i>, half counters c<i>) until stop(); every attempt goes into
    `history`."""

    def __init__(self, cluster, history, clients=4, keys=20, seed=1, op_timeout=1.5, pace=0.0):
        self.cluster = cluster
        self.history = history
        self.stop_evt = threading.Event()
        self.regs = [f"r{i}" for i in range(keys // 2)]
        self.ctrs = [f"c{i}" for i in range(keys - keys // 2)]
        self.clients = [ClusterClient(cluster, history, cid, op_timeout=op_timeout, stop=self.stop_evt)
                        for cid in range(clients)]
        self.seed = seed
        self.pace = pace
        self.threads = []
        self.done = collections.Counter()
        self.gaveup = []
        self.t_start = None
        self.t_stop = None
        cluster.loads.append(self)

    def _run(self, c):
        rnd = random.Random(self.seed * 1000 + c.cid)
        n = 0
        while not self.stop_evt.is_set():
            n += 1
            if rnd.random() < 0.5:
                key = rnd.choice(self.regs)
                if rnd.random() < 0.5:
                    op, args = "set", (f"{c.cid}-{n}",)
                else:
                    op, args = "get", ()
            else:
                key = rnd.choice(self.ctrs)
                op, args = ("incr", ()) if rnd.random() < 0.6 else ("get", ())
            try:
                c.call(op, key, *args)
                self.done[op] += 1
            except GaveUp as e:
                if not self.stop_evt.is_set():
                    self.gaveup.append(str(e))
            if self.pace:
                time.sleep(self.pace)
        c.close()

    def start(self):
        self.t_start = self.history.now()
        for c in self.clients:
            t = threading.Thread(target=self._run, args=(c,), daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def stop(self, timeout=30):
        self.stop_evt.set()
        for t in self.threads:
            t.join(timeout=timeout * TIME_SCALE)
        stuck = [t for t in self.threads if t.is_alive()]
        self.t_stop = self.history.now()
        assert not stuck, f"{len(stuck)} load threads did not stop"

    @property
    def unexpected(self):
        return [u for c in self.clients for u in c.unexpected]

    def errors(self):
        tot = collections.Counter()
        for c in self.clients:
            tot.update(c.errors)
        return tot

    def write_gaps(self, t0=None, t1=None):
        """Longest span (s) in [t0, t1] without a successful write
        completing, and where it started."""
        t0 = self.t_start if t0 is None else t0
        t1 = self.t_stop if t1 is None else t1
        times = sorted(o.complete for o in self.history.ops
                       if o.status == "ok" and o.op in ("set", "incr") and t0 <= o.complete <= t1)
        pts = [t0] + times + [t1]
        best = (0.0, t0)
        for a, b in zip(pts, pts[1:]):
            if b - a > best[0]:
                best = (b - a, a)
        return best

    def first_write_after(self, t):
        """Completion time of the first acknowledged write invoked at or
        after t (one answered before a fault cannot count as after it)."""
        ts = [o.complete for o in self.history.ops
              if o.status == "ok" and o.op in ("set", "incr") and o.invoke >= t]
        return min(ts) if ts else None

    def stats(self):
        c = self.history.counts()
        gap, at = self.write_gaps()
        return {"ops_attempted": len(self.history), "ok": c["ok"], "fail": c["fail"],
                "info": c["info"], "logical_ops": dict(self.done),
                "gave_up": len(self.gaveup), "errors": dict(self.errors()),
                "longest_write_gap_s": round(gap, 3), "gap_at_s": round(at, 3),
                "duration_s": round((self.t_stop or self.history.now()) - self.t_start, 2)}
