"""Shared helpers for cairn's integration tests: start real processes on
127.0.0.1, wait for them with bounded timeouts, and stop only what we started.

    node = Node(tmp_path, fsync="always").start()
    r = node.client()            # redis-py client (decode_responses=False)
    node.kill()                  # SIGKILL;  node.stop() = SIGTERM + wait
    node.start()                 # restart on the same port and dir
"""
import os
import signal
import socket
import subprocess
import time

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
