"""Shared helpers for cairn's integration tests: start real processes on
127.0.0.1, wait for them with bounded timeouts, and stop only what we started.

    node = Node(tmp_path, fsync="always").start()
    r = node.client()            # redis-py client (decode_responses=False)
    node.kill()                  # SIGKILL;  node.stop() = SIGTERM + wait
    node.start()                 # restart on the same port and dir
"""
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

import redis

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CAIRN_BIN = os.environ.get("CAIRN_BIN", os.path.join(ROOT, "build", "cairn"))


def free_port():
    """A port that was free a moment ago (bind to 0, read it, close)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout=10.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return True
        except Exception:
            pass
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


class Node:
    """One `cairn node` process with its own data dir under `base`."""

    def __init__(self, base, port=None, fsync="everysec", args=(), name="node"):
        self.dir = os.path.join(str(base), name)
        self.port = port or free_port()
        self.fsync = fsync
        self.args = list(args)
        self.proc = None
        self.log_path = os.path.join(str(base), name + ".log")

    def cmdline(self):
        return [CAIRN_BIN, "node", "--port", str(self.port), "--dir", self.dir,
                "--fsync", self.fsync] + self.args

    def start(self, wait=True, timeout=20.0):
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.cmdline(), stdout=self.logf, stderr=subprocess.STDOUT)
        if wait:
            def up():
                if self.proc.poll() is not None:
                    raise RuntimeError(f"cairn node exited with {self.proc.returncode}:\n{self.log()}")
                return self.client(timeout=1).ping()
            deadline = time.monotonic() + timeout
            while True:
                try:
                    if up():
                        break
                except RuntimeError:
                    raise
                except Exception:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"node on {self.port} did not answer PING:\n{self.log()}")
                time.sleep(0.02)
        return self

    def client(self, timeout=10, **kw):
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=timeout, **kw)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL):
        if self.alive():
            self.proc.send_signal(sig)
            if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
                self.proc.wait(timeout=30)
        self._close_log()

    def stop(self, timeout=30):
        """SIGTERM and wait; returns the exit code."""
        if not self.alive():
            self._close_log()
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self._close_log()
        return rc

    def _close_log(self):
        f = getattr(self, "logf", None)
        if f and not f.closed:
            f.close()


class RedisServer:
    """A redis-server for side-by-side comparisons."""

    def __init__(self, base, port=None, args=()):
        self.port = port or free_port()
        self.dir = os.path.join(str(base), f"redis-{self.port}")
        os.makedirs(self.dir, exist_ok=True)
        self.args = list(args)
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir] + self.args,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: self.client(timeout=1).ping(), what=f"redis-server on {self.port}")
        return self

    def client(self, timeout=10, **kw):
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=timeout, **kw)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ---- raw RESP, for byte-exact checks and fast bulk loading -----------------

class RespError(Exception):
    """An error reply ('-' or '!'), returned (not raised) by Resp.read()."""


def resp_encode(*args):
    """One command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Resp:
    """A bare socket speaking RESP2/RESP3.  read() parses one reply: simple
    strings and bulk strings -> bytes, errors -> RespError instance, integers
    -> int, arrays/sets/pushes -> list, maps -> dict, nulls -> None, doubles
    -> float, booleans -> bool, verbatim -> bytes without the "txt:" prefix.
    `last_type` holds the type byte of the last top-level reply."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.last_type = None

    def send(self, data):
        self.sock.sendall(data)

    def call(self, *args):
        self.send(resp_encode(*args))
        return self.read()

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("connection closed by the server")
        self.buf += chunk

    def readline(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            self._fill()

    def readexact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read(self):
        line = self.readline()
        self.last_type = line[:1]
        return self._parse(line)

    def _parse(self, line):
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest
        if t == b"-":
            return RespError(rest.decode(errors="replace"))
        if t in (b":", b"("):
            return int(rest)
        if t in (b"$", b"=", b"!"):
            n = int(rest)
            if n < 0:
                return None
            data = self.readexact(n + 2)[:-2]
            if t == b"=":
                return data[4:]
            if t == b"!":
                return RespError(data.decode(errors="replace"))
            return data
        if t in (b"*", b"~", b">"):
            n = int(rest)
            if n < 0:
                return None
            return [self._parse(self.readline()) for _ in range(n)]
        if t == b"%":
            n = int(rest)
            out = {}
            for _ in range(n):
                k = self._parse(self.readline())
                out[k] = self._parse(self.readline())
            return out
        if t == b"_":
            return None
        if t == b",":
            return float(rest)
        if t == b"#":
            return rest == b"t"
        if t == b"|":  # attribute: skip it, return the reply it annotates
            n = int(rest)
            for _ in range(2 * n):
                self._parse(self.readline())
            return self.read()
        raise ValueError(f"unexpected RESP line {line!r}")

    def closed_within(self, timeout):
        """True if the server closes the connection within `timeout` seconds
        (any bytes it sends first are kept in self.buf)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not chunk:
                return True
            self.buf += chunk
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def bulk_load(port, n, prefix=b"key:", value=b"v", batch=1000, host="127.0.0.1"):
    """SET prefix0..prefix<n-1> to `value` with pipelined MSETs on a raw
    socket (far faster than building the commands through redis-py)."""
    prefix = prefix if isinstance(prefix, bytes) else prefix.encode()
    value = value if isinstance(value, bytes) else value.encode()
    vpart = b"$%d\r\n%s\r\n" % (len(value), value)
    conn = Resp(port, host=host, timeout=120)
    try:
        sent = 0
        cmds = 0
        chunks = []
        while sent < n:
            m = min(batch, n - sent)
            parts = [b"*%d\r\n$4\r\nMSET\r\n" % (1 + 2 * m)]
            for i in range(sent, sent + m):
                k = prefix + str(i).encode()
                parts.append(b"$%d\r\n%s\r\n" % (len(k), k))
                parts.append(vpart)
            chunks.append(b"".join(parts))
            sent += m
            cmds += 1
            if len(chunks) == 50:
                conn.send(b"".join(chunks))
                chunks = []
        if chunks:
            conn.send(b"".join(chunks))
        for _ in range(cmds):
            rep = conn.read()
            if rep != b"OK":
                raise RuntimeError(f"bulk_load: MSET replied {rep!r}")
    finally:
        conn.close()


# ---- raw sockets (tests that speak RESP bytes themselves) ----------------------

def connect(port, timeout=5.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_until_closed(s, timeout=5.0, limit=64 << 20):
    """(bytes, closed): everything read until EOF/reset or `timeout`."""
    deadline = time.monotonic() + timeout
    out = bytearray()
    while len(out) < limit:
        left = deadline - time.monotonic()
        if left <= 0:
            return bytes(out), False
        s.settimeout(left)
        try:
            d = s.recv(1 << 16)
        except socket.timeout:
            return bytes(out), False
        except (ConnectionResetError, BrokenPipeError):
            return bytes(out), True
        if not d:
            return bytes(out), True
        out += d
    return bytes(out), False


def read_exact(s, n, timeout=10.0):
    deadline = time.monotonic() + timeout
    out = bytearray()
    while len(out) < n:
        left = deadline - time.monotonic()
        assert left > 0, f"timed out with {len(out)} of {n} bytes: {bytes(out[-200:])!r}"
        s.settimeout(left)
        d = s.recv(min(1 << 20, n - len(out)))
        assert d, f"connection closed after {len(out)} of {n} bytes: {bytes(out[-200:])!r}"
        out += d
    return bytes(out)


def ping_time(port):
    """Seconds a fresh connection takes to get +PONG."""
    t = time.monotonic()
    with connect(port, timeout=2) as s:
        s.sendall(b"PING\r\n")
        assert read_exact(s, 7, timeout=2) == b"+PONG\r\n"
    return time.monotonic() - t


# ---- etcd ----------------------------------------------------------------------

ETCD_BIN = os.environ.get("CAIRN_ETCD_BIN", "/usr/bin/etcd")


class Etcd:
    """A single-member etcd on two free loopback ports.  Its data lives in
    `base`/etcd, or in a temp dir removed at stop() when no base is given."""

    def __init__(self, base=None):
        self.own_dir = base is None
        self.dir = tempfile.mkdtemp(prefix="cairn-etcd-") if base is None else os.path.join(str(base), "etcd")
        os.makedirs(self.dir, exist_ok=True)
        self.port, self.peer = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None
        self.paused = False
        self.log_path = os.path.join(self.dir, "etcd.log")
        self.logf = None

    def start(self, timeout=20):
        peer = f"http://127.0.0.1:{self.peer}"
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [ETCD_BIN, "--name", "t", "--data-dir", os.path.join(self.dir, "data"),
             "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", f"t={peer}"],
            stdout=self.logf, stderr=subprocess.STDOUT)
        wait_until(self.healthy, timeout=timeout, what="etcd health")
        return self

    def healthy(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"etcd exited:\n{self.log()[-2000:]}")
        with urllib.request.urlopen(self.url + "/health", timeout=1) as r:
            return json.load(r)["health"] == "true"

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def get(self, key):
        """The value at key (str) or None, through the v3 JSON gateway."""
        body = json.dumps({"key": base64.b64encode(key.encode()).decode()}).encode()
        req = urllib.request.Request(self.url + "/v3/kv/range", data=body, method="POST")
        resp = json.load(urllib.request.urlopen(req, timeout=5))
        kvs = resp.get("kvs") or []
        return base64.b64decode(kvs[0]["value"]).decode() if kvs else None

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            if self.paused:
                self.resume()
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.logf and not self.logf.closed:
            self.logf.close()
        if self.own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def restart(self, down_for=0.0):
        """Stop, stay down `down_for` seconds, start on the same data and ports."""
        self.stop()
        time.sleep(down_for)
        return self.start()
