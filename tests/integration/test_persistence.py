"""Durability of a cairn node across restarts: the write-ahead log, snapshots,
the data-dir lock and the config file.

What this file covers (every node is started by `make_node` and killed at
teardown if still running):

  test_restart_after_sigterm[always|everysec|no]
                              every write command's effect (strings, hashes, counters,
                              deletes, renames, TTLs) survives a clean SIGTERM: exit
                              code 0, the log says it is exiting; and a second
                              restart with nothing written in between
  test_restart_after_shutdown SHUTDOWN (and SHUTDOWN NOSAVE) exit 0 and keep the data
  test_ttl_is_absolute        TTLs set every way (SET PX/EX/KEEPTTL, PSETEX, SETEX,
                              EXPIRE, PEXPIRE LT, GETEX, RENAME...) survive restart as
                              absolute times: keys whose time passed while the node
                              was down are gone, others keep their remaining time
                              (from the log and from a snapshot)
  test_save_blocks_only_caller SAVE of 500,000 keys replies OK; another client's
                              PING is answered while it runs; commands pipelined
                              behind a SAVE answer after it, in order
  test_kill_client_blocked_in_save
                              CLIENT KILL of a client blocked in SAVE: the node
                              survives and no one else gets its reply
  test_bgsave_lastsave        BGSAVE replies "Background saving started", a second
                              BGSAVE during one is refused, LASTSAVE advances
  test_bgsave_schedule_runs_later
                              BGSAVE SCHEDULE during a snapshot ("scheduled") really
                              takes another snapshot afterwards
  test_snapshot_drops_old_segments_and_replays
                              after a snapshot the covered wal-*.log segments are
                              deleted; a restart loads the snapshot and replays only
                              the later records
  test_wal_snapshot_size_triggers_snapshot
                              wal-snapshot-size 1mb: writing a few MB takes a
                              snapshot by itself and trims the log
  test_shutdown_save          SHUTDOWN SAVE leaves snapshot.cairn (and an empty log);
                              a restart loads it; the log continues after it (write,
                              SIGKILL, restart)
  test_second_node_same_dir   a second node on the same --dir refuses to start,
                              naming the lock; the first is unharmed
  test_config_file_*          a good file works (and INFO shows it), an unknown
                              setting or a malformed value fails at start-up naming
                              file and line, a flag overrides the file, a missing
                              file is named
"""
import os
import re
import subprocess
import threading
import time

import pytest

from cairnlib import Node, Resp, bulk_load, wait_until


def wal_segments(d):
    return sorted(f for f in os.listdir(d) if re.fullmatch(r"wal-\d+\.log", f))


def seg_lsn(name):
    return int(name[4:-4])


def write_sample(r):
    """Every write command, in a mix; returns what the keyspace should hold."""
    r.set("doomed", "x")
    r.flushall()
    r.set("s:plain", "hello")
    r.set("s:bin", b"\x00\r\n\xff")
    r.set("s:empty", "")
    r.set("s:overwritten", "old")
    r.set("s:overwritten", "new")
    r.append("s:plain", " world")
    r.setrange("s:plain", 0, "J")
    r.setnx("s:nx", "first")
    r.setnx("s:nx", "second")
    r.getset("s:gs", "a")
    r.getset("s:gs", "b")
    r.set("s:gd", "x")
    r.getdel("s:gd")
    r.msetnx({"s:mnx1": "1", "s:mnx2": "2"})
    r.incrby("n:counter", 41)
    r.incr("n:counter")
    r.decr("n:down")
    r.decrby("n:down", 9)
    r.incrbyfloat("n:float", "2.5")
    r.incrbyfloat("n:float", "0.1")
    r.hset("h:obj", mapping={"a": "1", "b": "2", "c": "3"})
    r.hdel("h:obj", "b")
    r.hincrby("h:obj", "a", 10)
    r.hincrbyfloat("h:obj", "f", "1.25")
    r.hsetnx("h:obj", "c", "ignored")
    r.hsetnx("h:obj", "d", "4")
    r.hset("h:gone", "x", "y")
    r.hdel("h:gone", "x")
    r.set("d:gone", "x")
    r.delete("d:gone")
    r.set("d:unlinked", "x")
    r.unlink("d:unlinked")
    r.set("d:renamed", "moved", ex=1000)
    r.rename("d:renamed", "d:target")
    r.set("d:rnx", "v")
    r.renamenx("d:rnx", "d:rnx2")
    r.set("t:ttl", "v", ex=1000)
    r.setex("t:setex", 1000, "v")
    r.psetex("t:psetex", 1_000_000, "v")
    r.set("t:expireat", "v")
    r.expireat("t:expireat", int(time.time()) + 1000)
    r.set("t:pexpireat", "v")
    r.pexpireat("t:pexpireat", int(time.time() * 1000) + 1_000_000)
    r.set("t:getex", "v")
    r.getex("t:getex", ex=1000)
    r.set("t:persisted", "v", ex=1000)
    r.persist("t:persisted")
    r.set("t:getexpersist", "v", ex=1000)
    r.getex("t:getexpersist", persist=True)
    r.set("t:keepttl", "v", ex=1000)
    r.set("t:keepttl", "w", keepttl=True)
    r.set("t:past", "v")
    r.expire("t:past", -1)
    r.mset({f"m:{i}": i for i in range(100)})
    r.getdel("m:99")
    return snapshot_of(r)


def snapshot_of(r):
    """Every key's type and value (and whether it has a TTL)."""
    out = {}
    for k in r.scan_iter(count=1000):
        t = r.type(k)
        v = r.get(k) if t == b"string" else r.hgetall(k)
        out[k] = (t, v, r.ttl(k) > 0)
    return out


@pytest.mark.parametrize("fsync", ["always", "everysec", "no"])
def test_restart_after_sigterm(make_node, fsync):
    n = make_node(fsync=fsync)
    r = n.client()
    want = write_sample(r)
    assert want[b"s:plain"] == (b"string", b"Jello world", False)
    assert want[b"n:counter"][1] == b"42"
    assert want[b"h:obj"][1] == {b"a": b"11", b"c": b"3", b"d": b"4", b"f": b"1.25"}
    assert want[b"n:float"][1] == b"2.6"
    assert b"d:gone" not in want and b"d:target" in want and b"doomed" not in want
    assert want[b"t:keepttl"] == (b"string", b"w", True)
    assert want[b"t:getexpersist"] == (b"string", b"v", False)
    ttl_before = r.pttl("t:ttl")
    r.close()

    rc = n.stop()
    assert rc == 0, n.log()
    log = n.log()
    assert "received SIGTERM, shutting down" in log, log
    assert "ready to exit" in log, log

    n.start()
    r = n.client()
    assert snapshot_of(r) == want
    assert 0 < r.pttl("t:ttl") <= ttl_before
    assert r.ttl("t:persisted") == -1
    assert r.dbsize() == len(want)
    r.close()
    # and again with nothing written in between
    assert n.stop() == 0
    n.start()
    assert snapshot_of(n.client()) == want


def test_restart_after_shutdown(make_node):
    n = make_node(fsync="everysec")
    r = n.client()
    want = write_sample(r)
    r.shutdown()  # redis-py swallows the expected connection drop
    assert n.proc.wait(timeout=30) == 0, n.log()
    assert "SHUTDOWN requested by client" in n.log()
    assert "ready to exit" in n.log()
    n._close_log()

    n.start()
    r = n.client()
    assert snapshot_of(r) == want
    r.set("after", "nosave")
    r.shutdown(nosave=True)
    assert n.proc.wait(timeout=30) == 0
    n._close_log()

    n.start()
    r = n.client()
    # NOSAVE skips the snapshot, not the log: every acknowledged write is kept.
    assert r.get("after") == b"nosave"
    assert r.dbsize() == len(want) + 1
    r.close()


def test_ttl_is_absolute(make_node):
    """Every way of setting a TTL, short ones (gone after the downtime) and
    long ones (remaining time kept), from the log and from a snapshot."""
    n = make_node(fsync="always")
    r = n.client()
    r.set("snap:short", "v")
    r.pexpire("snap:short", 700)
    r.set("snap:long", "v", ex=2000)
    assert r.save() is True  # snap:* come back from the snapshot, the rest from the log
    t_set = time.time()
    r.set("a", "v", px=700)
    r.psetex("b", 700, "v")
    r.set("c", "v")
    r.pexpire("c", 700)
    r.set("d", "v")
    r.getex("d", px=700)
    r.set("e", "v", px=700)
    r.rename("e", "e2")
    r.set("f", "v", px=700)
    r.set("f", "w", keepttl=True)
    r.setex("g", 1, "v")
    r.set("h", "v", ex=1)
    r.set("i", "v")
    r.expire("i", 1)
    r.set("j", "v")
    r.getex("j", ex=1)
    r.hset("k", "f", "v")
    r.pexpire("k", 700)
    r.set("o", "1", px=700)
    r.incr("o")
    r.incrbyfloat("o", 1.5)
    r.append("o", "x")
    r.set("long:px", "v", px=100_000)
    r.pexpire("long:px", 50_000, lt=True)
    r.set("long:getex", "v")
    r.getex("long:getex", ex=1000)
    r.set("long:pxat", "v", pxat=int(time.time() * 1000) + 500_000)
    r.set("long:persist", "v", ex=100)
    r.getex("long:persist", persist=True)
    r.close()
    assert n.stop() == 0

    # Stay down past the short TTLs: counted from the write, not the restart.
    time.sleep(max(0.0, 1.3 - (time.time() - t_set)))
    n.start()
    r = n.client()
    left = sorted(k.decode() for k in r.keys("*"))
    assert left == ["long:getex", "long:persist", "long:px", "long:pxat", "snap:long"], \
        f"keys whose TTL passed while the node was down came back: {left}"
    assert 48_000 <= r.pttl("long:px") <= 50_000
    assert 997 <= r.ttl("long:getex") <= 1000
    assert 497 <= r.ttl("long:pxat") <= 500
    assert r.ttl("long:persist") == -1
    assert 1997 <= r.ttl("snap:long") <= 2000
    r.close()


def test_save_blocks_only_caller(make_node):
    n = make_node(fsync="no")
    bulk_load(n.port, 500_000, prefix=b"big:", value=b"v" * 40)
    r = n.client()
    assert r.dbsize() == 500_000
    result = {}

    def do_save():
        c = n.client(timeout=120)
        t0 = time.monotonic()
        try:
            result["reply"] = c.save()
        except Exception as e:  # surfaced by the assertion below
            result["reply"] = e
        result["secs"] = time.monotonic() - t0
        c.close()

    other = Resp(n.port)
    th = threading.Thread(target=do_save)
    th.start()
    pings_during = 0
    saw_in_progress = False
    worst = 0.0
    try:
        while th.is_alive():
            t0 = time.monotonic()
            assert other.call("PING") == b"PONG"
            worst = max(worst, time.monotonic() - t0)
            if th.is_alive():
                pings_during += 1
                info = other.call("INFO", "persistence").decode()
                if "rdb_bgsave_in_progress:1" in info:
                    saw_in_progress = True
            time.sleep(0.002)
    finally:
        th.join(timeout=120)
        other.close()
    assert result.get("reply") is True, result
    assert saw_in_progress and pings_during >= 1, (
        f"never saw another client served during SAVE (took {result.get('secs'):.3f}s, "
        f"{pings_during} pings)")
    assert worst < 1.0, f"a PING took {worst:.2f}s during SAVE"
    assert os.path.getsize(os.path.join(n.dir, "snapshot.cairn")) > 500_000 * 40
    # Commands pipelined behind a SAVE wait for it and answer in order.
    conn = Resp(n.port)
    try:
        conn.send(b"*1\r\n$4\r\nSAVE\r\n*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$1\r\n1\r\n"
                  b"*2\r\n$3\r\nGET\r\n$1\r\nx\r\n*1\r\n$4\r\nPING\r\n")
        assert [conn.read() for _ in range(4)] == [b"OK", b"OK", b"1", b"PONG"]
    finally:
        conn.close()
    r.close()


def test_kill_client_blocked_in_save(make_node):
    """CLIENT KILL of a client waiting for its SAVE: when the snapshot ends
    the node must not reply to (or touch) the freed client.  A use-after-free
    shows as a crash (under ASan always) or as a stray "+OK" delivered to
    whichever new connection reused the freed memory."""
    n = make_node(fsync="no")
    bulk_load(n.port, 500_000, prefix=b"big:", value=b"v" * 20)
    admin = Resp(n.port)
    try:
        for trial in range(3):
            saver = Resp(n.port)
            sid = saver.call("CLIENT", "ID")
            saver.send(b"*1\r\n$4\r\nSAVE\r\n")
            wait_until(lambda: b"blocked_clients:1" in admin.call("INFO", "clients"), timeout=10,
                       interval=0.001, what="SAVE to block its client")
            assert admin.call("CLIENT", "KILL", "ID", sid) == 1
            # Connections made while the snapshot runs; one may get the
            # freed client's memory.
            fresh = [Resp(n.port) for _ in range(8)]
            for f in fresh:
                assert f.call("PING") == b"PONG"
            assert saver.closed_within(5)
            saver.close()
            wait_until(lambda: not n.alive() or
                       b"rdb_bgsave_in_progress:0" in admin.call("INFO", "persistence"),
                       timeout=30, what="the snapshot to finish")
            assert n.alive(), f"node died after its SAVE client was killed:\n{n.log()[-3000:]}"
            for i, f in enumerate(fresh):
                rep = f.call("PING")
                assert rep == b"PONG", (
                    f"BUG (trial {trial}): connection {i}, opened after the SAVE client was killed, "
                    f"got a stray {rep!r}: the SAVE reply went to freed client memory")
                f.close()
    finally:
        admin.close()
    assert n.alive()


def persistence_info(r):
    return r.info("persistence")


def test_bgsave_lastsave(make_node):
    n = make_node()
    r = n.client()
    bulk_load(n.port, 200_000, prefix=b"k:", value=b"x" * 20)
    before = r.lastsave()
    # LASTSAVE has one-second resolution: make sure the clock moved on.
    wait_until(lambda: int(time.time()) > before.timestamp(), timeout=2, what="next second")
    # Pipelined so the second BGSAVE surely meets the first still running
    # (200k keys take well over the microseconds between them).
    conn = Resp(n.port)
    try:
        conn.send(b"*1\r\n$6\r\nBGSAVE\r\n*1\r\n$6\r\nBGSAVE\r\n")
        assert conn.read() == b"Background saving started"
        second = conn.read()
        assert str(second) == "ERR Background save already in progress", second
    finally:
        conn.close()
    wait_until(lambda: persistence_info(r)["rdb_bgsave_in_progress"] == 0 and r.lastsave() > before,
               timeout=30, what="BGSAVE to finish and LASTSAVE to advance")
    info = persistence_info(r)
    assert info["rdb_last_bgsave_status"] == "ok"
    assert info["snapshot_lsn"] == info["wal_last_lsn"] == 200
    assert os.path.exists(os.path.join(n.dir, "snapshot.cairn"))
    # redis-py's bgsave() sends BGSAVE SCHEDULE, which starts one when idle
    assert r.bgsave() is True
    wait_until(lambda: persistence_info(r)["rdb_bgsave_in_progress"] == 0, timeout=30)
    r.close()


def test_bgsave_schedule_runs_later(make_node):
    """BGSAVE SCHEDULE while a snapshot runs answers "Background saving
    scheduled" -- and must then take another snapshot when the running one
    ends, so writes made meanwhile get into a snapshot."""
    n = make_node()
    r = n.client()
    bulk_load(n.port, 200_000, prefix=b"k:", value=b"x" * 20)
    conn = Resp(n.port)
    try:
        conn.send(b"*1\r\n$6\r\nBGSAVE\r\n"
                  b"*3\r\n$3\r\nSET\r\n$5\r\nlater\r\n$1\r\n1\r\n"
                  b"*2\r\n$6\r\nBGSAVE\r\n$8\r\nSCHEDULE\r\n")
        assert conn.read() == b"Background saving started"
        assert conn.read() == b"OK"
        assert conn.read() == b"Background saving scheduled"
    finally:
        conn.close()
    last = persistence_info(r)["wal_last_lsn"]
    try:
        wait_until(lambda: persistence_info(r)["snapshot_lsn"] == last and
                   persistence_info(r)["rdb_bgsave_in_progress"] == 0, timeout=5,
                   what="the scheduled snapshot")
    except TimeoutError:
        info = persistence_info(r)
        pytest.fail("BUG: BGSAVE SCHEDULE replied 'Background saving scheduled' but no second "
                    f"snapshot ran: snapshot_lsn={info['snapshot_lsn']}, wal_last_lsn={last}, "
                    f"snapshots started: {n.log().count('snapshot started')}")
    r.close()


def test_snapshot_drops_old_segments_and_replays(make_node):
    n = make_node(fsync="always")
    r = n.client()
    with r.pipeline(transaction=False) as p:
        for i in range(1000):
            p.set(f"a:{i}", f"before-{i}")
        p.execute()
    segs = wal_segments(n.dir)
    assert segs and seg_lsn(segs[0]) == 1, segs
    assert r.save() is True
    snap_lsn = r.info("persistence")["snapshot_lsn"]
    assert snap_lsn >= 1000
    segs_after = wal_segments(n.dir)
    assert all(seg_lsn(s) > snap_lsn for s in segs_after), (snap_lsn, segs_after)
    assert [seg_lsn(s) for s in segs_after] == [snap_lsn + 1], segs_after
    assert os.path.exists(os.path.join(n.dir, "snapshot.cairn"))

    # Records after the snapshot: overwrite, delete, add.
    later = 0
    with r.pipeline(transaction=False) as p:
        for i in range(0, 1000, 10):
            p.set(f"a:{i}", f"after-{i}")
            later += 1
        for i in range(5, 1000, 10):
            p.delete(f"a:{i}")
            later += 1
        for i in range(300):
            p.hset("b:hash", f"f{i}", i)
            later += 1
        p.execute()
    want = snapshot_of(r)
    r.close()
    n.kill()  # SIGKILL: only snapshot + log can bring this back

    n.start()
    log = n.log()
    m = re.findall(r"recovered (\d+) keys .*snapshot LSN (\d+), (\d+) log records replayed", log)
    assert m, log
    keys, lsn, replayed = map(int, m[-1])
    assert lsn == snap_lsn and replayed == later, (m[-1], snap_lsn, later)
    r = n.client()
    assert snapshot_of(r) == want
    assert r.get("a:10") == b"after-10" and r.get("a:11") == b"before-11" and r.exists("a:15") == 0
    assert r.hlen("b:hash") == 300
    r.close()


def test_wal_snapshot_size_triggers_snapshot(make_node):
    n = make_node(fsync="everysec", args=["--wal-snapshot-size", "1mb"])
    r = n.client()
    assert r.config_get("wal-snapshot-size") == {"wal-snapshot-size": str(1 << 20)}
    value = b"z" * 1000
    with r.pipeline(transaction=False) as p:
        for i in range(4000):  # ~4 MB of log
            p.set(f"w:{i % 1500}", value)
        p.execute()
    wait_until(lambda: os.path.exists(os.path.join(n.dir, "snapshot.cairn")), timeout=10,
               what="an automatic snapshot")
    wait_until(lambda: r.info("persistence")["snapshot_lsn"] > 0, timeout=10)
    wait_until(lambda: r.info("persistence")["wal_bytes_since_snapshot"] <= (1 << 20) + 64 * 1024,
               timeout=10, what="the log to be trimmed below wal-snapshot-size")
    assert "log grew past wal-snapshot-size" in n.log()
    total = sum(os.path.getsize(os.path.join(n.dir, s)) for s in wal_segments(n.dir))
    assert total < 3 * (1 << 20), f"{total} bytes of log left after automatic snapshots"
    want = snapshot_of(r)
    r.close()
    assert n.stop() == 0
    n.start()
    r = n.client()
    assert snapshot_of(r) == want
    assert r.dbsize() == 1500
    r.close()


def test_shutdown_save(make_node):
    n = make_node(fsync="everysec")
    r = n.client()
    want = write_sample(r)
    snap = os.path.join(n.dir, "snapshot.cairn")
    assert not os.path.exists(snap)
    r.shutdown(save=True)
    assert n.proc.wait(timeout=30) == 0, n.log()
    n._close_log()
    assert os.path.exists(snap) and os.path.getsize(snap) > 0
    assert "written at shutdown" in n.log()
    # the log left behind holds no records
    assert all(os.path.getsize(os.path.join(n.dir, s)) < 64 for s in wal_segments(n.dir)), \
        [(s, os.path.getsize(os.path.join(n.dir, s))) for s in wal_segments(n.dir)]

    n.start()
    assert re.search(r"loaded snapshot .*snapshot\.cairn", n.log()), n.log()
    assert re.search(r", 0 log records replayed", n.log()), n.log()
    r = n.client()
    assert snapshot_of(r) == want
    # The log continues after the snapshot: a write then SIGKILL comes back.
    r.set("after-snapshot", "kept")
    r.close()
    n.kill()
    n.start()
    r = n.client()
    assert r.get("after-snapshot") == b"kept"
    assert r.dbsize() == len(want) + 1
    r.close()


def test_second_node_same_dir(make_node, tmp_path):
    first = make_node(name="shared")
    first.client().set("k", "v")
    second = Node(tmp_path, name="shared")  # same dir, new port
    second.log_path = str(tmp_path / "second.log")
    second.start(wait=False)
    try:
        rc = second.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        second.kill()
        pytest.fail("a second node on a locked dir kept running")
    finally:
        second._close_log()
    assert rc != 0
    log = second.log()
    assert "LOCK" in log and "locked" in log, log
    assert first.alive() and first.client().get("k") == b"v"


# --------------------------------------------------------------------------
# config file
# --------------------------------------------------------------------------

def start_and_fail(node, timeout=15):
    node.start(wait=False)
    try:
        rc = node.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        node.kill()
        pytest.fail("node started despite a bad config")
    node._close_log()
    return rc, node.log()


def test_config_file_good(make_node, tmp_path):
    conf = tmp_path / "good.conf"
    conf.write_text(
        "# a cairn node\n"
        "\n"
        "maxclients 77\n"
        "   hz 20\n"
        'requirepass "p w"\n'
        "maxmemory 100mb\n"
        "timeout 0\n"
        "loglevel verbose\n"
        "appendfsync always\n"  # the Redis name works too; --fsync below wins
        "port 1\n"              # --port from the command line wins
    )
    n = make_node(args=["--config", str(conf)], start=False)
    n.start(wait=False)
    wait_until(lambda: n.client(timeout=1, password="p w").ping(), what="node with config file")
    r = n.client(password="p w")
    got = r.config_get("*")
    assert got["maxclients"] == "77"
    assert got["hz"] == "20"
    assert got["requirepass"] == "p w"
    assert got["maxmemory"] == str(100 * 1024 * 1024)
    assert got["loglevel"] == "verbose"
    assert got["port"] == str(n.port)
    assert got["fsync"] == "everysec"
    assert r.info("server")["config_file"] == str(conf)
    r.close()


def test_config_file_flag_overrides(make_node, tmp_path):
    conf = tmp_path / "c.conf"
    conf.write_text("maxclients 77\nhz 20\n")
    n = make_node(args=["--config", str(conf), "--maxclients", "55"])
    r = n.client()
    assert r.config_get("maxclients") == {"maxclients": "55"}
    assert r.config_get("hz") == {"hz": "20"}
    r.close()
    # flag before --config wins too
    n2 = make_node(name="n2", args=["--hz", "30", "--config", str(conf)])
    assert n2.client().config_get("hz") == {"hz": "30"}


def test_config_file_unknown_setting(make_node, tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("maxclients 10\n# comment\nno-such-setting yes\nhz 5\n")
    n = make_node(args=["--config", str(conf)], start=False)
    rc, log = start_and_fail(n)
    assert rc != 0
    assert f"{conf}:3:" in log, log
    assert "no-such-setting" in log and "unknown setting" in log, log


@pytest.mark.parametrize("line,why", [
    ("port abc", "couldn't be parsed into an integer"),
    ("maxmemory lots", "memory value"),
    ("fsync sometimes", "always, everysec, no"),
    ("hz 0", "between"),
    ('requirepass "unterminated', "unbalanced quotes"),
    ("maxclients", "missing value"),
])
def test_config_file_malformed_value(make_node, tmp_path, line, why):
    conf = tmp_path / "bad.conf"
    conf.write_text(f"# header\n{line}\n")
    n = make_node(args=["--config", str(conf)], start=False)
    rc, log = start_and_fail(n)
    assert rc != 0
    assert f"{conf}:2:" in log, log
    assert why in log, log
    assert not os.path.exists(os.path.join(n.dir, "LOCK")), "a bad config got as far as the data dir"


def test_config_file_missing(make_node, tmp_path):
    n = make_node(args=["--config", str(tmp_path / "nope.conf")], start=False)
    rc, log = start_and_fail(n)
    assert rc != 0
    assert "nope.conf" in log and "No such file" in log, log
