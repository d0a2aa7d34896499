"""Hostile and malformed client input against the cairn data node, on raw
sockets (127.0.0.1, every read with a timeout).  After each case a fresh
connection must still get +PONG (assert_alive).

What is covered
  * test_protocol_error_closes[...]    malformed RESP answers the exact Redis
        text and closes only that socket: '*2 GET :5' -> expected '$', got ':';
        '*abc' -> invalid multibulk length; '$-5' -> invalid bulk length;
        *99999999999 / $99999999999 -> invalid multibulk / bulk length;
        *1048577 (one over proto-max-multibulk-len) -> invalid multibulk length;
        70,000-digit '*' / '$' headers -> too big mbulk / bulk count string;
        an inline line over 64 KB without newline -> too big inline request;
        unbalanced double / single quotes and a closing quote glued to a word ->
        unbalanced quotes.  The connection beside it is untouched.
  * test_absurd_lengths_do_not_allocate   the absurd headers above (and the
        at-limit '*1048576' with no data), repeated: errors, not allocations;
        used_memory and used_memory_rss stay < 100 MB.
  * test_random_garbage[raw|no-quotes-or-stars]   1 MB of seeded random bytes
        (as is: ends in a protocol error; without quote and '*' bytes: thousands
        of inline lines, each an unknown command): only error replies come
        back, the connection closes, the server is fine.
  * test_byte_at_a_time                 SET/GET (multibulk and inline) sent one
        byte per send() with tiny sleeps.
  * test_50mb_value_in_1kb_chunks       a 50 MB SET value written 1 KB per send;
        read back byte-exact.
  * test_pipeline_10000_pings           10,000 PINGs in one send -> 10,000 PONGs;
        10,000 PING <n> -> the n in order.
  * test_5000_idle_connections          5,000 idle sockets (RLIMIT_NOFILE raised):
        another client's PING < 1 s, INFO connected_clients >= 5000, and back
        down after they close.
  * test_client_that_never_reads        100,000 pipelined 'GET big' (100 KB value)
        and never a read: other clients' PING < 1 s, RSS < 300 MB, and the
        non-reader's held output (CLIENT LIST omem) stays under 2 MB.
  * test_output_buffer_limit_closes_client   --client-output-buffer-limit 1mb and
        GET of a 5 MB value: that client is closed, others fine, 512 KB works.
  * test_proto_max_bulk_len             --proto-max-bulk-len 1mb: a 2 MB bulk ->
        invalid bulk length (answered before the payload); exactly 1 MB works.
"""
import random
import resource
import socket
import threading
import time

import pytest

from cairnlib import connect, ping_time, read_exact, read_until_closed, wait_until

HOST = "127.0.0.1"


# ---------------------------------------------------------------- raw I/O --

def cmd(*args):
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(parts)


def assert_alive(node):
    assert node.alive(), f"node died:\n{node.log()}"
    assert ping_time(node.port) < 1.0


def info(node, section):
    return node.client(timeout=5).info(section)


# ----------------------------------------------------- protocol errors ----

PROTO_ERRORS = {
    "unexpected-colon": (b"*2\r\n$3\r\nGET\r\n:5\r\n", "Protocol error: expected '$', got ':'"),
    "star-abc": (b"*abc\r\n", "Protocol error: invalid multibulk length"),
    "bulk-minus-5": (b"*1\r\n$-5\r\n", "Protocol error: invalid bulk length"),
    "huge-count": (b"*99999999999\r\n", "Protocol error: invalid multibulk length"),
    "huge-bulk": (b"*1\r\n$99999999999\r\n", "Protocol error: invalid bulk length"),
    "count-over-limit": (b"*1048577\r\n", "Protocol error: invalid multibulk length"),
    "count-line-70k": (b"*" + b"9" * 70000, "Protocol error: too big mbulk count string"),
    "bulk-line-70k": (b"*1\r\n$" + b"9" * 70000, "Protocol error: too big bulk count string"),
    "inline-70k-no-newline": (b"a" * 70000, "Protocol error: too big inline request"),
    "unbalanced-double": (b'SET "foo bar\r\n', "Protocol error: unbalanced quotes in request"),
    "unbalanced-single": (b"SET 'foo bar\r\n", "Protocol error: unbalanced quotes in request"),
    "quote-glued": (b'SET "foo"bar x\r\n', "Protocol error: unbalanced quotes in request"),
}


@pytest.mark.parametrize("case", list(PROTO_ERRORS))
def test_protocol_error_closes(node, case):
    data, msg = PROTO_ERRORS[case]
    bystander = connect(node.port)
    bystander.sendall(cmd("SET", "bystander", "1"))
    assert read_exact(bystander, 5) == b"+OK\r\n"
    with connect(node.port) as s:
        s.sendall(data)
        got, closed = read_until_closed(s, timeout=5)
    assert got == b"-ERR " + msg.encode() + b"\r\n", f"{case}: got {got[:300]!r}"
    assert closed, f"{case}: the server did not close the connection after a protocol error"
    # Only that connection was closed.
    bystander.sendall(cmd("GET", "bystander"))
    assert read_exact(bystander, 7) == b"$1\r\n1\r\n"
    bystander.close()
    assert_alive(node)


def test_absurd_lengths_do_not_allocate(node):
    absurd = [b"*99999999999\r\n", b"*1\r\n$99999999999\r\n", b"*9223372036854775807\r\n",
              b"*1\r\n$9223372036854775807\r\n", b"*1048577\r\n"]
    for _ in range(20):
        for data in absurd:
            with connect(node.port) as s:
                s.sendall(data)
                got, closed = read_until_closed(s, timeout=5)
            assert got.startswith(b"-ERR Protocol error: invalid ") and closed, (data, got)
    # At the limit: accepted, waits for bulks that never come; costs nothing.
    held = []
    for _ in range(50):
        s = connect(node.port)
        s.sendall(b"*1048576\r\n")
        held.append(s)
    time.sleep(0.3)
    for s in held:
        got, closed = read_until_closed(s, timeout=0.01)
        assert got == b"" and not closed
    mem = info(node, "memory")
    for s in held:
        s.close()
    assert mem["used_memory"] < 100 << 20, mem["used_memory"]
    assert mem["used_memory_rss"] < 100 << 20, mem["used_memory_rss"]
    assert_alive(node)


@pytest.mark.parametrize("kind", ["raw", "no-quotes-or-stars"])
def test_random_garbage(node, kind):
    garbage = random.Random(20240601).randbytes(1 << 20)
    if kind != "raw":
        # Without quote and '*' bytes no line is a protocol error, so all of
        # the 1 MB is parsed as inline requests (thousands of unknown commands).
        garbage = garbage.translate(bytes.maketrans(b"\"'*", b"xyz"))
    s = connect(node.port)
    replies = []

    def reader():
        replies.append(read_until_closed(s, timeout=20))

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        s.sendall(garbage)
        s.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # the server may close first (protocol error): fine
    t.join(timeout=25)
    assert not t.is_alive()
    s.close()
    got, closed = replies[0]
    assert closed, "the server kept a half-closed garbage connection open"
    lines = got.split(b"\r\n")
    assert lines[-1] == b"", f"reply does not end in CRLF: {got[-200:]!r}"
    bad = [ln for ln in lines[:-1] if not ln.startswith(b"-ERR ")]
    assert not bad, f"non-error replies to random garbage: {bad[:5]!r}"
    if kind != "raw":
        assert len(lines) > 1000, f"only {len(lines) - 1} replies to 1 MB of inline garbage"
        assert not any(b"Protocol error" in ln for ln in lines), lines[-2][:200]
    assert_alive(node)


def test_byte_at_a_time(node):
    req = (cmd("SET", "slow", "hello world") + cmd("GET", "slow")
           + b"SET slow2 \"quoted value\"\r\nGET slow2\r\n")
    with connect(node.port) as s:
        for i in range(len(req)):
            s.send(req[i:i + 1])
            time.sleep(0.001)
        want = b"+OK\r\n$11\r\nhello world\r\n+OK\r\n$12\r\nquoted value\r\n"
        assert read_exact(s, len(want)) == want
    assert_alive(node)


def test_50mb_value_in_1kb_chunks(node):
    n_chunks = 50 * 1024
    blocks = [bytes((k + j) % 256 for j in range(1024)) for k in range(251)]
    with connect(node.port, timeout=30) as s:
        s.sendall(b"*3\r\n$3\r\nSET\r\n$4\r\nhuge\r\n$%d\r\n" % (n_chunks * 1024))
        for i in range(n_chunks):
            s.sendall(blocks[i % 251])
        s.sendall(b"\r\n")
        assert read_exact(s, 5, timeout=30) == b"+OK\r\n"
        s.sendall(cmd("STRLEN", "huge"))
        assert read_exact(s, 11) == b":%d\r\n" % (n_chunks * 1024)
        s.sendall(cmd("GET", "huge"))
        head = b"$%d\r\n" % (n_chunks * 1024)
        got = read_exact(s, len(head) + n_chunks * 1024 + 2, timeout=30)
    assert got[:len(head)] == head
    body = memoryview(got)[len(head):len(head) + n_chunks * 1024]
    for i in range(0, n_chunks, 97):
        assert body[i * 1024:(i + 1) * 1024] == blocks[i % 251], f"chunk {i} differs"
    assert body == b"".join(blocks[i % 251] for i in range(n_chunks))
    assert got.endswith(b"\r\n")
    node.client().delete("huge")
    assert_alive(node)


def test_pipeline_10000_pings(node):
    with connect(node.port) as s:
        s.sendall(b"PING\r\n" * 10000)
        assert read_exact(s, 7 * 10000) == b"+PONG\r\n" * 10000
        s.sendall(b"".join(cmd("PING", i) for i in range(10000)))
        want = b"".join(b"$%d\r\n%d\r\n" % (len(str(i)), i) for i in range(10000))
        assert read_exact(s, len(want)) == want
    assert_alive(node)


def test_5000_idle_connections(node):
    n = 5000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 1000
    if hard != resource.RLIM_INFINITY and hard < want:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {want}")
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    socks = []
    try:
        deadline = time.monotonic() + 60
        for i in range(n):
            assert time.monotonic() < deadline, f"only {i} connections in 60 s"
            socks.append(socket.create_connection((HOST, node.port), timeout=5))
        wait_until(lambda: info(node, "clients")["connected_clients"] >= n, timeout=15,
                   what="5000 connected clients")
        for _ in range(3):
            assert ping_time(node.port) < 1.0
        r = node.client()
        assert r.set("with-5000", "ok") and r.get("with-5000") == b"ok"
        r.close()
    finally:
        for s in socks:
            s.close()
        if soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    wait_until(lambda: info(node, "clients")["connected_clients"] <= 2, timeout=15,
               what="connected_clients back down")
    assert_alive(node)


def test_client_that_never_reads(node):
    r = node.client()
    r.set("big", b"b" * 100_000)
    rss0 = info(node, "memory")["used_memory_rss"]
    greedy = connect(node.port, timeout=30)
    payload = cmd("GET", "big") * 100_000

    def sender():
        try:
            greedy.sendall(payload)
        except OSError:
            pass

    t = threading.Thread(target=sender, daemon=True)
    t.start()
    try:
        time.sleep(0.5)
        worst_ping, worst_rss = 0.0, 0
        for _ in range(8):
            worst_ping = max(worst_ping, ping_time(node.port))
            worst_rss = max(worst_rss, info(node, "memory")["used_memory_rss"])
            time.sleep(0.2)
        assert worst_ping < 1.0, f"PING took {worst_ping:.3f}s beside a client that never reads"
        assert worst_rss < 300 << 20, f"used_memory_rss {worst_rss} (was {rss0}) beside a non-reader"
        # The server holds about 1 MB of replies for it (backpressure), not 10 GB.
        lines = [ln for ln in node.client().execute_command("CLIENT", "LIST").decode().splitlines()
                 if "cmd=get" in ln]
        assert len(lines) == 1, lines
        omem = int(dict(kv.split("=", 1) for kv in lines[0].split())["omem"])
        assert omem < 2 << 20, f"{omem} bytes of replies held for a client that never reads"
    finally:
        greedy.close()
        t.join(timeout=35)
    assert not t.is_alive()
    wait_until(lambda: info(node, "clients")["connected_clients"] <= 2, timeout=10,
               what="the non-reader to be gone")
    assert r.get("big") == b"b" * 100_000
    r.close()
    assert_alive(node)


def test_output_buffer_limit_closes_client(make_node):
    node = make_node(args=["--client-output-buffer-limit", "1mb"])
    r = node.client()
    assert r.set("five", b"5" * (5 << 20))
    assert r.set("half", b"h" * (512 << 10))
    other = connect(node.port)
    with connect(node.port) as s:
        s.sendall(cmd("GET", "five"))
        got, closed = read_until_closed(s, timeout=10)
    assert closed, "client not closed although one reply exceeds client-output-buffer-limit"
    assert len(got) < 5 << 20, "the whole 5 MB reply was delivered despite the 1 MB limit"
    assert "output buffer" in node.log()
    other.sendall(cmd("GET", "half"))
    assert read_exact(other, len(b"$524288\r\n") + (512 << 10) + 2)[-4:] == b"hh\r\n"
    other.close()
    assert r.get("half") == b"h" * (512 << 10)
    r.close()
    assert_alive(node)


def test_proto_max_bulk_len(make_node):
    node = make_node(args=["--proto-max-bulk-len", "1mb"])
    with connect(node.port) as s:
        s.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n" % (2 << 20))
        got, closed = read_until_closed(s, timeout=5)  # before any payload is sent
    assert got == b"-ERR Protocol error: invalid bulk length\r\n" and closed, got
    with connect(node.port) as s:
        s.sendall(cmd("SET", "k", b"m" * (1 << 20)))
        assert read_exact(s, 5) == b"+OK\r\n"
        s.sendall(cmd("STRLEN", "k"))
        assert read_exact(s, 10) == b":1048576\r\n"
    assert_alive(node)
