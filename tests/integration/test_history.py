"""Unit tests of history.py's checker on synthetic histories (no processes).

  registers       sequential and overlapping SET/GET pass; a stale read after
                  an acknowledged write fails; a read of a never-written value
                  fails; concurrent SETs seen in either order pass; two reads
                  disagreeing on the order of concurrent writes fail
  counters        INCR results and GETs consistent pass; a duplicated INCR
                  result fails; a GET going backwards fails
  fail / info     'fail' ops are ignored; an 'info' SET may be seen or never
                  seen (both pass), but not seen then unseen; an info INCR may
                  or may not count
  keys            keys are checked independently; the violation names its key
  effort bound    a tiny max_steps raises CheckerGaveUp instead of hanging
  acked present   lost acknowledged SET / INCR fails, overwritten or info
                  writes are handled, counters bounded by acked and acked+info
  recorder        thread-safe History from many threads; pending = info
  random          2,000-op random histories generated from a sequential model
                  with random overlaps (single key and several keys, with info
                  and fail ops mixed in) pass within a few seconds; a single
                  corrupted read in them is caught
"""
import random
import threading
import time

import pytest

from history import (FAIL, INFO, OK, CheckerGaveUp, History, check_acknowledged_present,
                     check_linearizable, step)


def H(*ops):
    """ops: (client, op, key, args, invoke, complete, status, result)."""
    h = History()
    for c, op, key, args, t0, t1, st, res in ops:
        h.add(c, op, key, args, t0, t1, st, res)
    return h


# ---- registers -----------------------------------------------------------------

def test_sequential_register_passes():
    h = H((1, "set", "k", ["a"], 0, 1, OK, "OK"),
          (2, "get", "k", [], 2, 3, OK, "a"),
          (1, "set", "k", ["b"], 4, 5, OK, "OK"),
          (2, "get", "k", [], 6, 7, OK, "b"))
    assert check_linearizable(h)


def test_read_before_any_write_is_none():
    assert check_linearizable(H((1, "get", "k", [], 0, 1, OK, None),
                                (1, "set", "k", ["a"], 2, 3, OK, "OK")))
    assert not check_linearizable(H((1, "get", "k", [], 0, 1, OK, "a"),
                                    (1, "set", "k", ["a"], 2, 3, OK, "OK")))


def test_stale_read_after_acknowledged_write_fails():
    h = H((1, "set", "k", ["a"], 0, 1, OK, "OK"),
          (1, "set", "k", ["b"], 2, 3, OK, "OK"),
          (2, "get", "k", [], 4, 5, OK, "a"))
    res = check_linearizable(h)
    assert not res
    assert "b'k'" in res.message and "GET" in res.message


def test_read_of_never_written_value_fails():
    assert not check_linearizable(H((1, "set", "k", ["a"], 0, 1, OK, "OK"),
                                    (2, "get", "k", [], 2, 3, OK, "zzz")))


def test_lost_acknowledged_write_fails():
    # The write was acknowledged, a later read finds the key absent.
    h = H((1, "set", "k", ["a"], 0, 1, OK, "OK"),
          (2, "get", "k", [], 5, 6, OK, None))
    assert not check_linearizable(h)


@pytest.mark.parametrize("seen", ["a", "b"])
def test_concurrent_sets_either_order_passes(seen):
    h = H((1, "set", "k", ["a"], 0, 3, OK, "OK"),
          (2, "set", "k", ["b"], 1, 4, OK, "OK"),
          (3, "get", "k", [], 5, 6, OK, seen))
    assert check_linearizable(h)


@pytest.mark.parametrize("seen", [None, "a"])
def test_read_concurrent_with_write_sees_old_or_new(seen):
    h = H((1, "set", "k", ["a"], 0, 4, OK, "OK"),
          (2, "get", "k", [], 1, 2, OK, seen))
    assert check_linearizable(h)


def test_reads_disagreeing_on_order_fail():
    # a and b concurrent; one reader then sees b then a, another a then b,
    # all reads after both writes completed: impossible.
    h = H((1, "set", "k", ["a"], 0, 3, OK, "OK"),
          (2, "set", "k", ["b"], 1, 4, OK, "OK"),
          (3, "get", "k", [], 5, 6, OK, "b"),
          (3, "get", "k", [], 7, 8, OK, "a"))
    assert not check_linearizable(h)


def test_read_order_within_overlap_is_respected():
    # Reader sees new value, then a later (non-overlapping) read sees the old.
    h = H((1, "set", "k", ["a"], 0, 1, OK, "OK"),
          (1, "set", "k", ["b"], 2, 10, OK, "OK"),
          (2, "get", "k", [], 3, 4, OK, "b"),
          (2, "get", "k", [], 5, 6, OK, "a"))
    assert not check_linearizable(h)


# ---- counters -------------------------------------------------------------------

def test_counter_concurrent_incrs_pass():
    h = H((1, "incr", "c", [], 0, 3, OK, 2),
          (2, "incr", "c", [], 1, 2, OK, 1),
          (3, "get", "c", [], 4, 5, OK, "2"),
          (1, "incr", "c", [], 6, 7, OK, 3))
    assert check_linearizable(h)


def test_counter_duplicate_result_fails():
    h = H((1, "incr", "c", [], 0, 3, OK, 1),
          (2, "incr", "c", [], 1, 2, OK, 1))
    assert not check_linearizable(h)


def test_counter_going_backwards_fails():
    h = H((1, "incr", "c", [], 0, 1, OK, 1),
          (1, "incr", "c", [], 2, 3, OK, 2),
          (2, "get", "c", [], 4, 5, OK, "1"))
    assert not check_linearizable(h)


def test_counter_lost_increment_fails():
    h = H((1, "incr", "c", [], 0, 1, OK, 1),
          (2, "incr", "c", [], 2, 3, OK, 2),
          (1, "incr", "c", [], 4, 5, OK, 2))
    assert not check_linearizable(h)


# ---- fail / info ----------------------------------------------------------------

def test_fail_ops_are_ignored():
    h = H((1, "set", "k", ["a"], 0, 1, OK, "OK"),
          (2, "set", "k", ["b"], 2, 3, FAIL, None),
          (3, "get", "k", [], 4, 5, OK, "a"))
    assert check_linearizable(h)
    # ... and a read of a refused write's value is a violation.
    h2 = H((1, "set", "k", ["a"], 0, 1, OK, "OK"),
           (2, "set", "k", ["b"], 2, 3, FAIL, None),
           (3, "get", "k", [], 4, 5, OK, "b"))
    assert not check_linearizable(h2)


@pytest.mark.parametrize("seen", ["a", "b"])
def test_info_write_may_or_may_not_have_happened(seen):
    h = H((1, "set", "k", ["a"], 0, 1, OK, "OK"),
          (2, "set", "k", ["b"], 2, 3, INFO, None),
          (3, "get", "k", [], 4, 5, OK, seen),
          (3, "get", "k", [], 6, 7, OK, seen))
    assert check_linearizable(h)


def test_info_write_cannot_appear_then_disappear():
    h = H((1, "set", "k", ["a"], 0, 1, OK, "OK"),
          (2, "set", "k", ["b"], 2, 3, INFO, None),
          (3, "get", "k", [], 4, 5, OK, "b"),
          (3, "get", "k", [], 6, 7, OK, "a"))
    assert not check_linearizable(h)


def test_info_write_can_take_effect_late():
    # Its connection broke at 3, but it may take effect any time after 2,
    # even after later ops (e.g. a delayed replicated write).
    h = H((2, "set", "k", ["b"], 2, 3, INFO, None),
          (1, "set", "k", ["a"], 4, 5, OK, "OK"),
          (3, "get", "k", [], 6, 7, OK, "a"),
          (3, "get", "k", [], 8, 9, OK, "b"))
    assert check_linearizable(h)


def test_info_write_cannot_take_effect_before_invocation():
    h = H((3, "get", "k", [], 0, 1, OK, "b"),
          (2, "set", "k", ["b"], 2, 3, INFO, None))
    assert not check_linearizable(h)


@pytest.mark.parametrize("final", ["1", "2"])
def test_info_incr_counts_or_not(final):
    h = H((1, "incr", "c", [], 0, 1, OK, 1),
          (2, "incr", "c", [], 2, 3, INFO, None),
          (3, "get", "c", [], 4, 5, OK, final))
    assert check_linearizable(h)


def test_info_incr_and_acked_incr_result():
    # With an info INCR before it, a later acked INCR may return 2 or 3.
    for r in (2, 3):
        h = H((1, "incr", "c", [], 0, 1, OK, 1),
              (2, "incr", "c", [], 2, 3, INFO, None),
              (1, "incr", "c", [], 4, 5, OK, r))
        assert check_linearizable(h)
    h = H((1, "incr", "c", [], 0, 1, OK, 1),
          (2, "incr", "c", [], 2, 3, INFO, None),
          (1, "incr", "c", [], 4, 5, OK, 4))
    assert not check_linearizable(h)


def test_pending_ops_count_as_info():
    h = History()
    h.add(1, "set", "k", ["a"], 0, 1, OK, "OK")
    h.invoke(2, "set", "k", "b")  # never completed
    h.add(3, "get", "k", [], h.now() + 1, h.now() + 2, OK, "b")
    assert check_linearizable(h)


# ---- keys, bound, model ----------------------------------------------------------

def test_keys_are_independent_and_violation_names_key():
    h = H((1, "set", "x", ["a"], 0, 1, OK, "OK"),
          (1, "set", "y", ["a"], 0, 1, OK, "OK"),
          (2, "get", "x", [], 2, 3, OK, "a"),
          (2, "get", "y", [], 2, 3, OK, None))
    res = check_linearizable(h)
    assert not res and res.key == b"y"


def test_effort_bound_raises():
    # Many fully concurrent INCRs with unknown outcome plus a definite read:
    # lots of orders to try; a tiny bound must raise, not hang.
    h = History()
    for i in range(14):
        h.add(i, "set", "k", [str(i)], 0, 100, OK, "OK")
    h.add(99, "get", "k", [], 101, 102, OK, "nope")
    with pytest.raises(CheckerGaveUp):
        check_linearizable(h, max_steps=50)
    # With a real bound it finishes (memoization keeps it small) and fails.
    assert not check_linearizable(h)


def test_model_step():
    class O:
        pass
    o = O()
    o.op, o.args, o.result = "incr", (), b"6"
    assert step(b"5", o, True) == (True, b"6")
    assert step(b"x", o, False) == (True, b"x")
    o.op, o.result = "del", b"1"
    assert step(b"5", o, True) == (True, None)


# ---- durability -----------------------------------------------------------------

def test_acked_present_ok_and_lost():
    h = H((1, "set", "k", ["a"], 0, 1, OK, "OK"),
          (1, "set", "k", ["b"], 2, 3, OK, "OK"),
          (1, "incr", "c", [], 0, 1, OK, 1),
          (1, "incr", "c", [], 2, 3, OK, 2))
    assert check_acknowledged_present(h, {"k": "b", "c": "2"}) == []
    p = check_acknowledged_present(h, {"k": "a", "c": "2"})
    assert len(p) == 1 and "b'b'" in p[0]
    p = check_acknowledged_present(h, {"c": "2"})
    assert len(p) == 1
    p = check_acknowledged_present(h, {"k": "b", "c": "1"})
    assert len(p) == 1 and "counter" in p[0]


def test_acked_present_concurrent_and_info():
    # Concurrent writes: either may be final.  An info write may be final.
    h = H((1, "set", "k", ["a"], 0, 3, OK, "OK"),
          (2, "set", "k", ["b"], 1, 4, OK, "OK"),
          (3, "set", "k", ["c"], 5, 6, INFO, None))
    for v in ("a", "b", "c"):
        assert check_acknowledged_present(h, {"k": v}) == [], v
    assert check_acknowledged_present(h, {"k": "zz"})
    assert check_acknowledged_present(h, {"k": None})
    # A failed write may not be final; an overwritten acked one may not either.
    h2 = H((1, "set", "k", ["a"], 0, 1, OK, "OK"),
           (1, "set", "k", ["b"], 2, 3, OK, "OK"),
           (2, "set", "k", ["c"], 4, 5, FAIL, None))
    assert check_acknowledged_present(h2, {"k": "c"})
    assert check_acknowledged_present(h2, {"k": "a"})


def test_acked_present_counter_bounds():
    h = H((1, "incr", "c", [], 0, 1, OK, 1),
          (2, "incr", "c", [], 2, 3, INFO, None),
          (2, "incr", "c", [], 4, 5, FAIL, None))
    assert check_acknowledged_present(h, {"c": "1"}) == []
    assert check_acknowledged_present(h, {"c": "2"}) == []
    assert check_acknowledged_present(h, {"c": "3"})
    assert check_acknowledged_present(h, {"c": None})


# ---- recorder ---------------------------------------------------------------------

def test_recorder_thread_safe():
    h = History()

    def worker(c):
        for i in range(500):
            o = h.invoke(c, "incr", "c")
            h.ok(o, c * 1000 + i)
    ts = [threading.Thread(target=worker, args=(c,)) for c in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    ops = h.ops
    assert len(ops) == 4000 and sorted(o.id for o in ops) == list(range(4000))
    assert all(o.status == OK and o.complete >= o.invoke for o in ops)
    assert h.counts()[OK] == 4000


# ---- random histories ------------------------------------------------------------

def random_history(n, keys, seed, clients=6, info_p=0.0, fail_p=0.0, spread=3.0):
    """Ops linearized at t=1..n against a sequential model, each op's
    interval [t - U(0,spread), t + U(0,spread)]; ops are dealt to clients
    so that a client's ops never overlap (new clients as needed).  Info
    ops keep their effect (applied) or lose it (randomly); fail ops have
    no effect."""
    rnd = random.Random(seed)
    state = {}
    raw = []
    for i in range(n):
        t = float(i + 1)
        k = rnd.choice(keys)
        kind = rnd.choice(["set", "get", "get", "incr"]) if k.startswith("c") else \
            rnd.choice(["set", "get", "get"])
        if k.startswith("c") and kind == "set":
            kind = "incr"
        roll = rnd.random()
        status = INFO if roll < info_p else FAIL if roll < info_p + fail_p else OK
        applied = status == OK or (status == INFO and kind != "get" and rnd.random() < 0.5)
        args, res = [], None
        cur = state.get(k)
        if kind == "set":
            args = [f"v{i}"]
            res = "OK"
            if applied:
                state[k] = args[0].encode()
        elif kind == "get":
            res = cur
        else:
            new = str(int(cur or 0) + 1).encode()
            res = new
            if applied:
                state[k] = new
        t0 = t - rnd.uniform(0, spread)
        t1 = t + rnd.uniform(0, spread)
        if status == INFO and not applied:
            # never took effect: fine to place anywhere; and its reply is lost
            pass
        raw.append((t0, t1, kind, k, args, status, res))
    raw.sort()
    busy = []  # client -> completion of its last op
    h = History()
    for t0, t1, kind, k, args, status, res in raw:
        for c, end in enumerate(busy):
            if end < t0:
                break
        else:
            c = len(busy)
            busy.append(0)
        busy[c] = t1
        h.add(c, kind, k, args, t0, t1, status, res if status == OK else None)
    return h, state


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_2000_single_key_passes_fast(seed):
    h, _ = random_history(2000, ["r"], seed)
    t = time.monotonic()
    res = check_linearizable(h)
    took = time.monotonic() - t
    assert res, res.message
    assert took < 5, f"checker took {took:.2f}s"


@pytest.mark.parametrize("seed", [4, 5])
def test_random_2000_counter_with_info_and_fail_passes(seed):
    h, final = random_history(2000, ["c1"], seed, info_p=0.03, fail_p=0.05)
    t = time.monotonic()
    res = check_linearizable(h)
    took = time.monotonic() - t
    assert res, res.message
    assert took < 5, f"checker took {took:.2f}s"
    assert check_acknowledged_present(h, final) == []


def test_random_2000_many_keys_passes_and_final_state_matches():
    keys = [f"r{i}" for i in range(10)] + [f"c{i}" for i in range(10)]
    h, final = random_history(2000, keys, 7, clients=4, info_p=0.02, fail_p=0.05)
    t = time.monotonic()
    res = check_linearizable(h)
    took = time.monotonic() - t
    assert res, res.message
    assert took < 5, f"checker took {took:.2f}s"
    assert check_acknowledged_present(h, final) == []


@pytest.mark.parametrize("seed", [8, 9])
def test_random_history_with_one_bad_read_fails(seed):
    h, _ = random_history(2000, ["r"], seed)
    rnd = random.Random(seed)
    reads = [o for o in h.ops if o.op == "get" and o.status == OK and o.result is not None]
    victim = rnd.choice(reads[len(reads) // 2:])
    victim.result = b"never-written"
    res = check_linearizable(h)
    assert not res
    assert "never-written" in res.message


@pytest.mark.parametrize("seed", [10, 11])
def test_random_2000_register_with_info_and_fail_passes(seed):
    h, final = random_history(2000, ["r"], seed, info_p=0.05, fail_p=0.05)
    t = time.monotonic()
    res = check_linearizable(h)
    took = time.monotonic() - t
    assert res, res.message
    assert took < 5, f"checker took {took:.2f}s"
    assert check_acknowledged_present(h, final) == []


@pytest.mark.parametrize("seed", [12, 13])
def test_random_counter_with_info_and_one_bad_result_fails(seed):
    h, _ = random_history(2000, ["c1"], seed, info_p=0.03, fail_p=0.05)
    rnd = random.Random(seed)
    incrs = [o for o in h.ops if o.op == "incr" and o.status == OK]
    victim = rnd.choice(incrs[len(incrs) // 2:])
    victim.result = str(int(victim.result) + 1000).encode()
    t = time.monotonic()
    res = check_linearizable(h)
    took = time.monotonic() - t
    assert not res
    assert took < 10, f"checker took {took:.2f}s"
