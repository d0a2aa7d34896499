"""Crash and damaged-data tests for the cairn data node (real processes, 127.0.0.1).

What is covered
  * test_kill9_fsync_always_loses_no_ack     fsync always: 8 writer threads (one
        connection each) SET k<round>:<thread>:<i> and INCR counter:<thread>;
        kill -9 mid-load; restart; every acknowledged SET is there with its value
        and every counter is >= its acknowledged INCRs and <= acked + in-flight.
        Three rounds (restart, load, kill) in one test; each check covers all
        rounds so far.
  * test_kill9_during_snapshots   the same load with --wal-snapshot-size 1mb, so
        snapshots (fork, segment rotation and deletion) run during it; kill -9;
        every acknowledged write is present.
  * test_kill9_fsync_everysec_loses_at_most_last_second   fsync everysec: same
        load, kill -9; any acknowledged write that is missing was acknowledged
        in the last 1.5 s before the kill (the count is printed).
  * test_flipped_byte_mid_segment_refuses_start[...]   one byte flipped in a
        record that is not the last (payload; header length / LSN / checksum
        fields), or 30 non-zero bytes after the last record (wal.h documents
        that as corruption): start-up exits non-zero within 10 s, the log names
        the segment file and "at offset <record offset>", the node never
        answers, and the damaged file is left untouched.
  * test_damaged_last_record_of_earlier_segment_refuses_start   the last record
        of a segment that is followed by another segment is damaged: that is
        damage before the tail of the log, so start-up must refuse and name
        the file and offset (and must not cut the file).
  * test_torn_tail_is_truncated[...]   last record cut in half, its header cut
        short, its payload zeroed, or 4 KB of zeros appended: the node starts,
        logs that it truncated, keeps every earlier record, and the repaired
        log keeps working (a later write survives kill -9).
  * test_torn_tail_in_newest_segment[...]   the newest segment's 32-byte header
        cut short, or its only record cut in half: start, keep everything
        earlier, and a write made after the repair survives kill -9 + restart.
  * test_truncated_snapshot_refuses_start   SAVE, cut snapshot.cairn in half:
        start-up exits non-zero, names the snapshot, never answers.
  * test_sigterm_during_load   SIGTERM under write load (fsync everysec): exit
        code 0 within 10 s; after restart every acknowledged write is present.

Every loop is bounded in count and time; every node is stopped at teardown
(make_node fixture).
"""
import os
import signal
import struct
import threading
import time

import pytest
import redis

N_WRITERS = 8
SEG_HDR = 32
REC_HDR = 24
START_FAIL_TIMEOUT = 10.0


# ---------------------------------------------------------------- load ----

class Writer(threading.Thread):
    """One connection doing SET k<round>:<tid>:<i> v... then INCR counter:<tid>,
    recording each acknowledged write with its time.monotonic()."""

    def __init__(self, port, rnd, tid, stop, max_seconds, pad=0):
        super().__init__(daemon=True)
        self.pad = pad
        self.port, self.rnd, self.tid = port, rnd, tid
        self.stop, self.max_seconds = stop, max_seconds
        self.sets = []          # (key, value, ack_time)
        self.incr_acks = []     # ack times
        self.incr_inflight = 0  # 1 if an INCR was sent and never answered
        self.error = None

    def run(self):
        r = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5,
                        socket_connect_timeout=2)
        deadline = time.monotonic() + self.max_seconds
        i = 0
        try:
            while not self.stop.is_set() and time.monotonic() < deadline and i < 1_000_000:
                key = f"k{self.rnd}:{self.tid}:{i}"
                val = f"v{self.rnd}:{self.tid}:{i}:" + "x" * (i % 50 + self.pad)
                r.set(key, val)
                self.sets.append((key, val.encode(), time.monotonic()))
                self.incr_inflight = 1
                r.incr(f"counter:{self.tid}")
                self.incr_inflight = 0
                self.incr_acks.append(time.monotonic())
                i += 1
        except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
            self.error = e
        finally:
            r.close()


def run_load_then(node, rnd, after_s, action, max_seconds=4.0, pad=0):
    """Start N_WRITERS writers, wait `after_s`, call action() (which kills or
    stops the node) and return (writers, action_time)."""
    stop = threading.Event()
    ws = [Writer(node.port, rnd, t, stop, max_seconds, pad) for t in range(N_WRITERS)]
    for w in ws:
        w.start()
    time.sleep(after_s)
    t_action = time.monotonic()
    result = action()
    stop.set()
    for w in ws:
        w.join(timeout=15)
        assert not w.is_alive(), "writer thread did not finish"
    return ws, t_action, result


def fetch(client, keys, chunk=1000):
    out = {}
    for s in range(0, len(keys), chunk):
        part = keys[s:s + chunk]
        for k, v in zip(part, client.mget(part)):
            out[k] = v
    return out


def missing_sets(client, writers):
    """[(key, expected, got, ack_time)] for acknowledged SETs not read back."""
    sets = [s for w in writers for s in w.sets]
    got = fetch(client, [k for k, _, _ in sets])
    return [(k, v, got[k], t) for k, v, t in sets if got[k] != v]


# ---------------------------------------------------------------- files ---

def seg_files(d):
    return sorted(f for f in os.listdir(d) if f.startswith("wal-") and f.endswith(".log"))


def records(path):
    """[(offset, payload_len)] of the whole records of a segment."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"CAIRNWAL", f"{path} is not a segment"
    out, off = [], SEG_HDR
    while off + REC_HDR <= len(data):
        ln = struct.unpack_from("<I", data, off + 4)[0]
        if off + REC_HDR + ln > len(data):
            break
        out.append((off, ln))
        off += REC_HDR + ln
    return out


def populated_segment(make_node, n_keys=200, fsync="always"):
    """A node that wrote key:i -> value:i (one record each) and was stopped
    cleanly; returns (node, path of the segment holding the records)."""
    node = make_node(fsync=fsync)
    r = node.client()
    for i in range(n_keys):
        assert r.set(f"key:{i}", f"value:{i}:" + "p" * 40)
    r.close()
    assert node.stop() == 0
    segs = [s for s in seg_files(node.dir) if len(records(os.path.join(node.dir, s))) > 0]
    assert len(segs) == 1, f"expected one non-empty segment, got {seg_files(node.dir)}"
    path = os.path.join(node.dir, segs[0])
    assert len(records(path)) == n_keys
    return node, path


def flip(path, off, mask=0x5A):
    with open(path, "r+b") as f:
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([b[0] ^ mask]))


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def expect_start_refused(node, *needles):
    """Start `node`, which must exit non-zero within START_FAIL_TIMEOUT without
    ever answering PING; one ERROR line of its log that refuses to start must
    contain every needle."""
    node.start(wait=False)
    deadline = time.monotonic() + START_FAIL_TIMEOUT
    served = False
    while node.proc.poll() is None and time.monotonic() < deadline:
        try:
            if node.client(timeout=0.2, socket_connect_timeout=0.2).ping():
                served = True
        except redis.RedisError:
            pass
        time.sleep(0.02)
    rc = node.proc.poll()
    log = node.log()
    if rc is None:
        node.kill()
        pytest.fail(f"node still running {START_FAIL_TIMEOUT}s after start on damaged data:\n{log}")
    assert rc != 0, f"node exited 0 on damaged data:\n{log}"
    assert not served, f"node answered PING on damaged data:\n{log}"
    # The refusal itself (an ERROR line saying it refuses) names what is damaged.
    refusals = [ln for ln in log.splitlines() if " ERROR " in ln and "refusing" in ln]
    assert refusals, f"no ERROR line refusing to start:\n{log}"
    assert any(all(s in ln for s in needles) for ln in refusals), (
        f"no refusal line names all of {needles}:\n{log}")
    node._close_log()
    return log


def check_keys(client, n_keys, present):
    got = fetch(client, [f"key:{i}" for i in range(n_keys)])
    for i in range(n_keys):
        want = f"value:{i}:".encode() + b"p" * 40 if i in present else None
        assert got[f"key:{i}"] == want, f"key:{i}: expected {want!r}, got {got[f'key:{i}']!r}"


# ---------------------------------------------------------------- tests ---

def test_kill9_fsync_always_loses_no_ack(make_node):
    node = make_node(fsync="always")
    all_writers = []
    incr_acked = [0] * N_WRITERS
    incr_inflight = [0] * N_WRITERS
    for rnd, after in enumerate((1.0, 1.3, 0.8)):
        ws, t_kill, _ = run_load_then(node, rnd, after, lambda: node.kill(signal.SIGKILL), max_seconds=2.5)
        acked = sum(len(w.sets) for w in ws)
        assert acked > 50, f"round {rnd}: only {acked} acknowledged SETs; load too small to mean anything"
        # Every writer was writing when the node died: it saw the connection
        # break, or (its last reply came just before the kill and the stop
        # flag beat its next request) it had an acknowledgement shortly before.
        idle = [w.tid for w in ws if w.error is None and
                not any(t > t_kill - 0.5 for t in w.incr_acks[-1:] + [s[2] for s in w.sets[-1:]])]
        assert not idle, f"round {rnd}: writers {idle} had stopped writing before the kill"
        for w in ws:
            incr_acked[w.tid] += len(w.incr_acks)
            incr_inflight[w.tid] += w.incr_inflight
        all_writers += ws

        node.start()
        r = node.client()
        missing = missing_sets(r, all_writers)
        assert not missing, (f"round {rnd}: {len(missing)} acknowledged SETs lost with fsync always, "
                             f"first: {missing[:5]}\n{node.log()}")
        for t in range(N_WRITERS):
            v = r.get(f"counter:{t}")
            v = int(v) if v is not None else 0
            assert incr_acked[t] <= v <= incr_acked[t] + incr_inflight[t], (
                f"round {rnd}: counter:{t} = {v}, acknowledged INCRs {incr_acked[t]}, "
                f"in flight {incr_inflight[t]}")
        r.close()


def test_kill9_during_snapshots(make_node):
    # wal-snapshot-size 1mb: snapshots (fork, segment rotation, old segments
    # deleted) happen all through the load; kill -9 lands among them.
    node = make_node(fsync="always", args=["--wal-snapshot-size", "1mb"])
    ws, _, _ = run_load_then(node, 0, 2.0, lambda: node.kill(signal.SIGKILL), max_seconds=3.0,
                             pad=2000)
    acked = sum(len(w.sets) for w in ws)
    log = node.log()
    node.start()
    r = node.client()
    missing = missing_sets(r, ws)
    assert not missing, (f"{len(missing)} of {acked} acknowledged SETs lost (snapshots during load), "
                         f"first: {missing[:5]}\n{node.log()}")
    for w in ws:
        v = r.get(f"counter:{w.tid}")
        v = int(v) if v is not None else 0
        assert len(w.incr_acks) <= v <= len(w.incr_acks) + w.incr_inflight, (w.tid, v)
    r.close()
    assert "snapshot at LSN" in log, f"no snapshot was taken during the load ({acked} SETs)"


def test_kill9_fsync_everysec_loses_at_most_last_second(make_node):
    node = make_node(fsync="everysec")
    ws, t_kill, _ = run_load_then(node, 0, 1.5, lambda: node.kill(signal.SIGKILL), max_seconds=3.0)
    acked = sum(len(w.sets) for w in ws)
    assert acked > 50, f"only {acked} acknowledged SETs"
    node.start()
    r = node.client()
    missing = missing_sets(r, ws)
    print(f"\n[everysec kill -9] {acked} acknowledged SETs, {len(missing)} missing after restart")
    old = [m for m in missing if m[3] < t_kill - 1.5]
    assert not old, (f"{len(old)} SETs acknowledged more than 1.5 s before kill -9 are missing: "
                     f"{[(k, round(t_kill - t, 3)) for k, _, _, t in old[:5]]}")
    for w in ws:
        v = r.get(f"counter:{w.tid}")
        v = int(v) if v is not None else 0
        must = sum(1 for t in w.incr_acks if t < t_kill - 1.5)
        assert must <= v <= len(w.incr_acks) + w.incr_inflight, (
            f"counter:{w.tid} = {v}; acked {len(w.incr_acks)} ({must} older than 1.5 s), "
            f"in flight {w.incr_inflight}")
    r.close()


FLIPS = {
    # where, relative to the chosen record's offset and payload length
    "payload": lambda off, ln: off + REC_HDR + ln // 2,
    "header-length": lambda off, ln: off + 4,
    "header-lsn": lambda off, ln: off + 8,
    "header-checksum": lambda off, ln: off + 1,
    "header-type": lambda off, ln: off + 20,
}


@pytest.mark.parametrize("where", list(FLIPS) + ["garbage-after-last"])
def test_flipped_byte_mid_segment_refuses_start(make_node, where):
    n_keys = 200
    node, path = populated_segment(make_node, n_keys)
    recs = records(path)
    if where == "garbage-after-last":
        # wal.h: a bad header followed by non-zero bytes is corruption, not a torn tail.
        off = os.path.getsize(path)
        with open(path, "ab") as f:
            f.write(bytes(range(1, 31)))
    else:
        off, ln = recs[n_keys // 2]
        flip(path, FLIPS[where](off, ln))
    before = read_bytes(path)
    expect_start_refused(node, os.path.basename(path), f"at offset {off}")
    assert read_bytes(path) == before, "start-up modified a damaged segment it refused"


def test_damaged_last_record_of_earlier_segment_refuses_start(make_node):
    # Segment 1 holds key:0..99, segment 2 key:100..199 (a restart in between).
    node = make_node(fsync="always")
    r = node.client()
    for i in range(100):
        r.set(f"key:{i}", f"value:{i}:" + "p" * 40)
    r.close()
    assert node.stop() == 0
    node.start()
    r = node.client()
    for i in range(100, 200):
        r.set(f"key:{i}", f"value:{i}:" + "p" * 40)
    r.close()
    assert node.stop() == 0
    full = [s for s in seg_files(node.dir) if records(os.path.join(node.dir, s))]
    assert len(full) == 2, seg_files(node.dir)
    first = os.path.join(node.dir, full[0])
    off, ln = records(first)[-1]
    flip(first, off + REC_HDR + ln // 2)
    before = read_bytes(first)
    problems = []
    try:
        expect_start_refused(node, os.path.basename(first), f"at offset {off}")
    except AssertionError as e:
        problems.append(str(e))
    after = read_bytes(first)
    if after != before:
        problems.append(f"start-up cut {os.path.basename(first)} from {len(before)} to {len(after)} "
                        f"bytes (dropping the damaged record at offset {off}) although a later "
                        f"segment follows it")
    assert not problems, "\n".join(problems)


def _tear(path, how):
    recs = records(path)
    off, ln = recs[-1]
    size = os.path.getsize(path)
    if how == "half":
        os.truncate(path, off + (REC_HDR + ln) // 2)
    elif how == "header-cut":
        os.truncate(path, off + REC_HDR // 2)
    elif how == "payload-zeroed":
        with open(path, "r+b") as f:
            f.seek(off + REC_HDR)
            f.write(b"\0" * ln)
    elif how == "zeros-appended":
        with open(path, "ab") as f:
            f.write(b"\0" * 4096)
        return size  # every record is whole: nothing is lost
    return off


@pytest.mark.parametrize("how", ["half", "header-cut", "payload-zeroed", "zeros-appended"])
def test_torn_tail_is_truncated(make_node, how):
    n_keys = 200
    node, path = populated_segment(make_node, n_keys)
    valid_end = _tear(path, how)
    node.start()
    log = node.log()
    assert "torn" in log and "truncat" in log, f"no truncation logged:\n{log}"
    assert os.path.basename(path) in log
    assert os.path.getsize(path) == valid_end, "the torn tail was not truncated to the last whole record"
    r = node.client()
    kept = set(range(n_keys)) if how == "zeros-appended" else set(range(n_keys - 1))
    check_keys(r, n_keys, kept)
    # The repaired log keeps working: a new write survives kill -9.
    assert r.set("after-repair", "yes")
    r.close()
    node.kill(signal.SIGKILL)
    node.start()
    r = node.client()
    check_keys(r, n_keys, kept)
    assert r.get("after-repair") == b"yes"
    r.close()


@pytest.mark.parametrize("how", ["segment-header-cut", "only-record-half"])
def test_torn_tail_in_newest_segment(make_node, how):
    """The newest segment holds nothing whole: its 32-byte header is cut short
    (wal.h: "valid_end == 0 ... the file holds nothing and the caller deletes
    it"), or its only record is cut in half.  The node starts with every
    earlier record, and writes made after the repair survive kill -9 and a
    second restart (the repaired segment must be a valid segment)."""
    n_keys = 200
    node, path = populated_segment(make_node, n_keys)
    newest = os.path.join(node.dir, "wal-%020d.log" % (n_keys + 1))
    if how == "segment-header-cut":
        with open(path, "rb") as f:
            hdr = f.read(SEG_HDR)
        with open(newest, "wb") as f:
            f.write(hdr[:16])
    else:
        node.start()
        r = node.client()
        assert r.set("lonely", "x")
        r.close()
        node.kill(signal.SIGKILL)
        assert os.path.exists(newest), seg_files(node.dir)
        off, ln = records(newest)[-1]
        os.truncate(newest, off + (REC_HDR + ln) // 2)
    node.start()
    assert "torn" in node.log()
    r = node.client()
    check_keys(r, n_keys, set(range(n_keys)))
    assert r.set("after-repair", "yes")
    r.close()
    node.kill(signal.SIGKILL)
    try:
        node.start(timeout=10)
    except (RuntimeError, TimeoutError):
        node.kill()
        pytest.fail(f"node does not start again after writing to the repaired segment "
                    f"({[(f, os.path.getsize(os.path.join(node.dir, f))) for f in seg_files(node.dir)]}):"
                    f"\n{node.log()}")
    r = node.client()
    check_keys(r, n_keys, set(range(n_keys)))
    assert r.get("after-repair") == b"yes"
    r.close()


def test_truncated_snapshot_refuses_start(make_node):
    node = make_node(fsync="always")
    r = node.client()
    for i in range(500):
        r.set(f"key:{i}", f"value:{i}:" + "p" * 40)
    assert r.save()
    r.close()
    assert node.stop() == 0
    snap = os.path.join(node.dir, "snapshot.cairn")
    size = os.path.getsize(snap)
    assert size > 1000
    os.truncate(snap, size // 2)
    before = read_bytes(snap)
    log = expect_start_refused(node, "snapshot.cairn")
    assert "snapshot" in log and ("damaged" in log or "corrupt" in log or "truncated" in log), log
    assert read_bytes(snap) == before


def test_sigterm_during_load(make_node):
    node = make_node(fsync="everysec")

    def term():
        node.proc.send_signal(signal.SIGTERM)
        try:
            return node.proc.wait(timeout=10)
        except Exception:
            return None

    ws, _, rc = run_load_then(node, 0, 1.0, term, max_seconds=3.0)
    log = node.log()
    node._close_log()
    assert rc is not None, f"node did not exit within 10 s of SIGTERM:\n{log}"
    assert rc == 0, f"SIGTERM exit code {rc}:\n{log}"
    acked = sum(len(w.sets) for w in ws)
    assert acked > 50
    node.start()
    r = node.client()
    missing = missing_sets(r, ws)
    assert not missing, f"{len(missing)} acknowledged SETs lost across SIGTERM: {missing[:5]}"
    for w in ws:
        v = r.get(f"counter:{w.tid}")
        v = int(v) if v is not None else 0
        assert len(w.incr_acks) <= v <= len(w.incr_acks) + w.incr_inflight, (w.tid, v)
    r.close()
