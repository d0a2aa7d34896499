"""Helpers for the differential tests (imported by the test modules; not a conftest).

Contents
  * RESP: ``encode_command`` (RESP2 array of bulk strings) and ``RespReader``
    (reads exactly one reply, returning its raw bytes and a parsed form).
  * Corpus: ``split_args`` (redis-cli-like tokenizer) and ``load_corpus``
    (one ``CorpusLine`` per command / directive, with per-line annotations).
  * Comparison: ``compare_replies`` applies the annotations (``#~ttl``,
    ``#~unordered``, ``#~pairs``, ``#~scan``, ``#~scanpairs``, ``#~type``).
  * Servers: ``free_port``, ``Server`` (start, wait for PING with a bounded
    timeout, stop only the process it started) and the module-scoped
    ``servers`` fixture yielding ``(reference, candidate)`` connections.

Corpus line syntax
  ``CMD arg "quoted arg" 'single quoted'   #~annotation #~other``
  - Double quotes accept \\n \\r \\t \\b \\a \\\\ \\" and \\xHH escapes; single
    quotes accept only \\'.  Unquoted words are taken literally (a backslash
    in an unquoted word is a plain backslash, handy for KEYS patterns).
  - A line whose first non-blank character is ``#`` is a comment, except
    ``#!sleep MS`` which pauses both sides for MS milliseconds.
  - Trailing words starting with ``#~`` are annotations:
      #~ttl        integer replies: any value > 0 becomes "positive"
                   (-1 / -2 / 0 / errors compared exactly)
      #~unordered  array reply compared as a multiset of elements
      #~pairs      array reply compared as a multiset of (field, value) pairs
      #~scan       [cursor, [elements]]: cursor exact, elements as multiset
      #~scanpairs  [cursor, [f, v, ...]]: cursor exact, pairs as multiset
      #~type       only the reply type is compared (e.g. "bulk" vs "nil")
"""

import os
import pathlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

HERE = pathlib.Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
CORPUS_DIR = HERE / "corpus"

READY_TIMEOUT = 10.0      # seconds to wait for a server to answer PING
REPLY_TIMEOUT = 10.0      # seconds to wait for one reply


# --------------------------------------------------------------------- RESP

def _to_bytes(a):
    if isinstance(a, bytes):
        return a
    if isinstance(a, str):
        return a.encode("utf-8")
    if isinstance(a, int):
        return str(a).encode()
    raise TypeError(f"cannot encode {a!r}")


def encode_command(args):
    """Encode a command as a RESP2 array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = _to_bytes(a)
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class ProtocolError(Exception):
    pass


class RespReader:
    """Reads RESP replies from a socket.  ``read_reply`` returns
    ``(raw_bytes, parsed)`` where parsed is one of
      ("simple", str) ("error", str) ("int", int) ("bulk", bytes)
      ("nil", None) ("array", [parsed...]) ("nilarray", None)
    plus a few RESP3 types, should a server ever send them."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.pos = 0

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ProtocolError("connection closed by server")
        self.buf += chunk

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n", self.pos)
            if i >= 0:
                line = bytes(self.buf[self.pos:i])
                self.pos = i + 2
                return line
            self._fill()

    def _exact(self, n):
        while len(self.buf) - self.pos < n + 2:
            self._fill()
        data = bytes(self.buf[self.pos:self.pos + n])
        if self.buf[self.pos + n:self.pos + n + 2] != b"\r\n":
            raise ProtocolError("bulk string not terminated by CRLF")
        self.pos += n + 2
        return data

    def _parse(self):
        line = self._line()
        if not line:
            raise ProtocolError("empty reply line")
        t, rest = line[:1], line[1:]
        if t == b"+":
            return ("simple", rest.decode("utf-8", "replace"))
        if t == b"-":
            return ("error", rest.decode("utf-8", "replace"))
        if t == b":":
            return ("int", int(rest))
        if t in (b"$", b"="):
            n = int(rest)
            if n < 0:
                return ("nil", None)
            return ("bulk", self._exact(n))
        if t in (b"*", b"~", b">"):
            n = int(rest)
            if n < 0:
                return ("nilarray", None)
            return ("array", [self._parse() for _ in range(n)])
        if t == b"%":
            n = int(rest)
            return ("map", [self._parse() for _ in range(2 * n)])
        if t == b"_":
            return ("nil", None)
        if t == b",":
            return ("double", rest.decode())
        if t == b"#":
            return ("bool", rest == b"t")
        if t == b"(":
            return ("int", int(rest))
        raise ProtocolError(f"unknown reply type byte {t!r} in line {line!r}")

    def read_reply(self):
        # drop what earlier replies consumed; never during a parse, so that
        # the raw bytes of this reply stay at buf[start:pos]
        if self.pos:
            del self.buf[:self.pos]
            self.pos = 0
        start = self.pos
        parsed = self._parse()
        raw = bytes(self.buf[start:self.pos])
        return raw, parsed


class Conn:
    """One client connection: ``call(args) -> (raw, parsed)``."""

    def __init__(self, port, host="127.0.0.1", timeout=REPLY_TIMEOUT):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.reader = RespReader(self.sock)

    def call(self, *args):
        if len(args) == 1 and isinstance(args[0], (list, tuple)):
            args = args[0]
        self.sock.sendall(encode_command(list(args)))
        return self.reader.read_reply()

    def pipeline(self, commands):
        """Send many commands at once, return their replies in order."""
        self.sock.sendall(b"".join(encode_command(list(c)) for c in commands))
        return [self.reader.read_reply() for _ in commands]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def show(parsed):
    """Human-readable rendering of a parsed reply (for failure messages)."""
    kind, val = parsed
    if kind == "simple":
        return "+" + val
    if kind == "error":
        return "(error) " + val
    if kind == "int":
        return f"(integer) {val}"
    if kind == "bulk":
        return repr(val)
    if kind in ("nil", "nilarray"):
        return "(nil)"
    if kind in ("array", "map"):
        return "[" + ", ".join(show(x) for x in val) + "]"
    return f"({kind}) {val!r}"


# ------------------------------------------------------------------- corpus

_ESC = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "a": "\a",
        "\\": "\\", '"': '"'}


class CorpusSyntaxError(ValueError):
    pass


def split_args(line):
    """Split a line like redis-cli (sdssplitargs) does; returns (args, notes)
    where args is a list of bytes and notes the ``#~`` annotations."""
    args, notes = [], []
    i, n = 0, len(line)
    while True:
        while i < n and line[i].isspace():
            i += 1
        if i >= n:
            break
        if line.startswith("#~", i):
            rest = line[i:].split()
            for w in rest:
                if not w.startswith("#~"):
                    raise CorpusSyntaxError(f"junk after annotations: {w!r}")
                notes.append(w[2:])
            break
        cur = bytearray()
        if line[i] == '"':
            i += 1
            while True:
                if i >= n:
                    raise CorpusSyntaxError("unterminated double quote")
                c = line[i]
                if c == "\\" and i + 1 < n:
                    e = line[i + 1]
                    if (e == "x" and i + 3 < n
                            and all(h in "0123456789abcdefABCDEF" for h in line[i + 2:i + 4])):
                        cur.append(int(line[i + 2:i + 4], 16))
                        i += 4
                        continue
                    cur += _ESC.get(e, e).encode("utf-8")
                    i += 2
                    continue
                if c == '"':
                    i += 1
                    if i < n and not line[i].isspace():
                        raise CorpusSyntaxError("closing quote must be followed by a space")
                    break
                cur += c.encode("utf-8")
                i += 1
        elif line[i] == "'":
            i += 1
            while True:
                if i >= n:
                    raise CorpusSyntaxError("unterminated single quote")
                c = line[i]
                if c == "\\" and i + 1 < n and line[i + 1] == "'":
                    cur += b"'"
                    i += 2
                    continue
                if c == "'":
                    i += 1
                    if i < n and not line[i].isspace():
                        raise CorpusSyntaxError("closing quote must be followed by a space")
                    break
                cur += c.encode("utf-8")
                i += 1
        else:
            while i < n and not line[i].isspace():
                cur += line[i].encode("utf-8")
                i += 1
        args.append(bytes(cur))
    return args, notes


KNOWN_NOTES = {"ttl", "unordered", "pairs", "scan", "scanpairs", "type"}


class CorpusLine:
    def __init__(self, path, lineno, text, args=None, notes=(), sleep_ms=None):
        self.path = pathlib.Path(path)
        self.lineno = lineno
        self.text = text
        self.args = args
        self.notes = set(notes)
        self.sleep_ms = sleep_ms

    @property
    def where(self):
        return f"{self.path.name}:{self.lineno}"


def load_corpus(path):
    """Parse one corpus file into a list of CorpusLine (commands and sleeps)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            text = raw.rstrip("\r\n")
            s = text.strip()
            if not s:
                continue
            if s.startswith("#!"):
                words = s[2:].split()
                if len(words) == 2 and words[0] == "sleep" and words[1].isdigit():
                    out.append(CorpusLine(path, lineno, text, sleep_ms=int(words[1])))
                    continue
                raise CorpusSyntaxError(f"{path}:{lineno}: unknown directive {s!r}")
            if s.startswith("#"):
                continue
            try:
                args, notes = split_args(text)
            except CorpusSyntaxError as e:
                raise CorpusSyntaxError(f"{path}:{lineno}: {e}") from None
            bad = set(notes) - KNOWN_NOTES
            if bad:
                raise CorpusSyntaxError(f"{path}:{lineno}: unknown annotation(s) {sorted(bad)}")
            if not args:
                raise CorpusSyntaxError(f"{path}:{lineno}: annotation without a command")
            out.append(CorpusLine(path, lineno, text, args=args, notes=notes))
    return out


def corpus_files():
    return sorted(CORPUS_DIR.glob("*.txt"))


def count_commands(path):
    return sum(1 for l in load_corpus(path) if l.args is not None)


# --------------------------------------------------------------- comparison

def _ser(p):
    """Canonical hashable/sortable form of a parsed reply."""
    kind, val = p
    if kind in ("array", "map"):
        return (kind, tuple(_ser(x) for x in val))
    if kind == "bulk":
        return (kind, val)
    return (kind, repr(val))


def _normalise(parsed, notes):
    kind, val = parsed
    if kind == "error":
        return ("error", val)          # errors are always compared exactly
    if "type" in notes:
        return (kind,)
    if "ttl" in notes:
        if kind == "int" and val > 0:
            return ("int", "positive")
        return _ser(parsed)
    if "unordered" in notes and kind == "array":
        return ("array-multiset", tuple(sorted(_ser(x) for x in val)))
    if "pairs" in notes and kind == "array":
        if len(val) % 2:
            return ("odd-pairs", _ser(parsed))
        pairs = [(_ser(val[i]), _ser(val[i + 1])) for i in range(0, len(val), 2)]
        return ("pair-multiset", tuple(sorted(pairs)))
    if ("scan" in notes or "scanpairs" in notes) and kind == "array" \
            and len(val) == 2 and val[1][0] == "array":
        inner = _normalise(val[1], {"pairs"} if "scanpairs" in notes else {"unordered"})
        return ("scan", _ser(val[0]), inner)
    return _ser(parsed)


def compare_replies(ref, cand, notes):
    """ref/cand are (raw, parsed).  Returns True when they match under notes."""
    if not notes:
        return ref[0] == cand[0]
    return _normalise(ref[1], notes) == _normalise(cand[1], notes)


# ------------------------------------------------------------------ servers

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server process started by us in its own temp dir."""

    def __init__(self, name, argv_fn):
        self.name = name
        self.tmp = tempfile.mkdtemp(prefix=f"cairn-diff-{name}-")
        self.port = free_port()
        self.argv = argv_fn(self.port, self.tmp)
        self.log_path = os.path.join(self.tmp, "server.log")
        self.proc = None

    def start(self):
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.argv, cwd=self.tmp, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + READY_TIMEOUT
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} "
                                   f"before answering PING: {self.argv}\n{self.log_tail()}")
            try:
                c = Conn(self.port, timeout=1.0)
                try:
                    raw, _ = c.call("PING")
                finally:
                    c.close()
                if raw == b"+PONG\r\n":
                    return self
                last = raw
            except (OSError, ProtocolError) as e:
                last = e
            time.sleep(0.05)
        tail = self.log_tail()
        self.stop()
        raise RuntimeError(f"{self.name} did not answer PING within {READY_TIMEOUT}s "
                           f"(last: {last!r}): {self.argv}\n{tail}")

    def log_tail(self, n=4000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        shutil.rmtree(self.tmp, ignore_errors=True)


def redis_argv(port, tmp):
    return ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no",
            "--bind", "127.0.0.1", "--dir", tmp, "--daemonize", "no"]


def cairn_bin():
    p = pathlib.Path(os.environ.get("CAIRN_BIN", "build/cairn"))
    if not p.is_absolute():
        p = REPO_ROOT / p
    return p


def selftest():
    return os.environ.get("DIFF_SELFTEST", "") not in ("", "0")


def candidate_spec():
    """(name, argv_fn) of the server under test, or pytest.skip."""
    if selftest():
        return "redis-selftest", redis_argv
    binp = cairn_bin()
    if not (binp.is_file() and os.access(binp, os.X_OK)):
        pytest.skip(f"cairn binary not found at {binp} (set CAIRN_BIN, run `make`, "
                    f"or DIFF_SELFTEST=1 to diff redis-server against itself)")
    return "cairn", lambda port, tmp: [str(binp), "node", "--port", str(port),
                                       "--dir", tmp, "--fsync", "no"]


class Pair:
    """The reference (redis-server) and candidate servers plus one fresh
    connection to each (``reset`` reopens them, e.g. after a timeout)."""

    def __init__(self, ref_srv, cand_srv):
        self.ref_srv, self.cand_srv = ref_srv, cand_srv
        self.cand_name = cand_srv.name
        self.ref = self.cand = None
        self.reset()

    def reset(self):
        self.close()
        if not self.candidate_alive():
            pytest.fail(f"{self.cand_name} is no longer running (exit code "
                        f"{self.cand_srv.proc.returncode}); log tail:\n"
                        f"{self.cand_srv.log_tail(2000)}", pytrace=False)
        self.ref, self.cand = Conn(self.ref_srv.port), Conn(self.cand_srv.port)

    def close(self):
        for c in (self.ref, self.cand):
            if c is not None:
                c.close()
        self.ref = self.cand = None

    def both(self, *args):
        return self.ref.call(*args), self.cand.call(*args)

    def flushall(self):
        for c in (self.ref, self.cand):
            raw, _ = c.call("FLUSHALL")
            assert raw == b"+OK\r\n", f"FLUSHALL failed: {raw!r}"

    def candidate_alive(self):
        p = self.cand_srv.proc
        return p is not None and p.poll() is None


@pytest.fixture(scope="module")
def servers():
    """Module-scoped: start redis-server (reference) and the candidate (cairn,
    or a second redis-server with DIFF_SELFTEST=1); stop both afterwards."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not installed")
    name, argv_fn = candidate_spec()
    started, pair = [], None
    try:
        ref_srv = Server("redis", redis_argv)
        started.append(ref_srv)
        ref_srv.start()
        cand_srv = Server(name, argv_fn)
        started.append(cand_srv)
        cand_srv.start()
        pair = Pair(ref_srv, cand_srv)
        yield pair
    finally:
        if pair is not None:
            pair.close()
        for s in reversed(started):
            s.stop()
