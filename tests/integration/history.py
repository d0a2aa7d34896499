"""Operation histories and a linearizability checker for cairn's failover tests.

What this module covers:

  History             thread-safe recorder.  Each operation is an Op: client id,
                      op ("set" | "get" | "incr" | "del"), key, args, invoke time
                      and completion time (time.monotonic(), taken before the
                      request is sent and after the reply is read), and an
                      outcome:
                        ok    the reply was received; `result` holds it
                        fail  definitely not applied (refused before execution:
                              -NOTPRIMARY, -TRYAGAIN, -CLUSTERDOWN, connect
                              refused, ...)
                        info  unknown outcome (timeout, connection reset after
                              the request was sent); completion time is +inf
                      An op still pending when the history is checked counts
                      as info.

  check_linearizable  Wing & Gong's search with Lowe's memoization (the
                      algorithm of Knossos' "linear" checker and of porcupine):
                      keys are independent (P-compositionality), so each key's
                      sub-history is checked on its own against a sequential
                      model of one Redis string:
                        SET k v -> OK, state := v
                        GET k   -> state (None if absent)
                        INCR k  -> int(state or 0) + 1, state := that
                        DEL k   -> 1 if present else 0, state := None
                      so registers (SET/GET), counters (INCR/GET) and mixes of
                      the two are all covered.  The search memoizes on
                      (set of ops linearized so far, model state); it is
                      bounded by `max_steps` per key and raises CheckerGaveUp
                      when the bound is hit, rather than hanging.  'fail' ops
                      are dropped; 'info' ops may or may not have taken effect
                      (their output is unconstrained and their completion is at
                      +inf, so "never took effect" = "took effect after
                      everything else").  A violation is reported with the ops
                      around the point where the search got stuck.

  check_acknowledged_present
                      durability against the state read back at the end: an
                      acknowledged SET that no other write can have followed is
                      the final value; otherwise the final value is the value
                      of some write not strictly followed by an acknowledged
                      write; a key with an acknowledged write is not absent;
                      every counter's final value is >= the number of
                      acknowledged INCRs and <= acknowledged + info INCRs.

Values are compared as bytes: str/int results are normalized with _b().
"""
import math
import threading
import time

OK, FAIL, INFO, PENDING = "ok", "fail", "info", "pending"
WRITES = ("set", "incr", "del")


def _b(v):
    """Normalize a value/result to bytes (None stays None)."""
    if v is None or isinstance(v, bytes):
        return v
    if isinstance(v, bytearray):
        return bytes(v)
    if isinstance(v, (int, str)):
        return str(v).encode()
    return v


class Op:
    __slots__ = ("id", "client", "op", "key", "args", "invoke", "complete",
                 "status", "result", "error", "node")

    def __init__(self, oid, client, op, key, args, invoke):
        self.id = oid
        self.client = client
        self.op = op
        self.key = _b(key)
        self.args = tuple(_b(a) for a in args)
        self.invoke = invoke
        self.complete = math.inf
        self.status = PENDING
        self.result = None
        self.error = None
        self.node = None  # which node answered (set by the caller; for messages)

    @property
    def value(self):
        return self.args[0] if self.args else None

    def __repr__(self):
        out = f"#{self.id} c{self.client} {self.op.upper()} {self.key!r}"
        if self.args:
            out += " " + " ".join(repr(a) for a in self.args)
        end = "inf" if self.complete == math.inf else f"{self.complete:.4f}"
        out += f" [{self.invoke:.4f}, {end}] {self.status}"
        if self.status == OK:
            out += f" -> {self.result!r}"
        elif self.error:
            out += f" ({self.error})"
        if self.node:
            out += f" @{self.node}"
        return out


class History:
    """Thread-safe operation recorder.

        op = h.invoke(client, "set", key, value)   # before sending
        h.ok(op, reply) | h.fail(op, err) | h.info(op, err)   # after

    Times are time.monotonic() relative to the history's creation."""

    def __init__(self):
        self._lock = threading.Lock()
        self._ops = []
        self.t0 = time.monotonic()

    def now(self):
        return time.monotonic() - self.t0

    def invoke(self, client, op, key, *args):
        op = op.lower()
        if op not in ("set", "get", "incr", "del"):
            raise ValueError(f"unsupported op {op!r}")
        with self._lock:
            o = Op(len(self._ops), client, op, key, args, self.now())
            self._ops.append(o)
        return o

    def ok(self, o, result):
        o.result = _b(result)
        o.complete = self.now()
        o.status = OK
        return o

    def fail(self, o, error=None):
        o.error = None if error is None else str(error)
        o.complete = self.now()
        o.status = FAIL
        return o

    def info(self, o, error=None):
        o.error = None if error is None else str(error)
        o.complete = math.inf
        o.status = INFO
        return o

    def add(self, client, op, key, args, invoke, complete, status, result=None):
        """Append a finished op with explicit times (synthetic histories)."""
        with self._lock:
            o = Op(len(self._ops), client, op, key, args, invoke)
            self._ops.append(o)
        o.status = status
        o.result = _b(result)
        o.complete = math.inf if status == INFO else complete
        return o

    @property
    def ops(self):
        with self._lock:
            return list(self._ops)

    def __len__(self):
        with self._lock:
            return len(self._ops)

    def counts(self):
        c = {OK: 0, FAIL: 0, INFO: 0, PENDING: 0}
        for o in self.ops:
            c[o.status] += 1
        return c


# ---- the sequential model ---------------------------------------------------

def _as_int(state):
    if state is None:
        return 0
    try:
        return int(state)
    except (TypeError, ValueError):
        return None


def step(state, o, check_output):
    """Apply op `o` to `state`: returns (allowed, new_state).  With
    check_output False (info ops) any output is accepted."""
    kind = o.op
    if kind == "set":
        return (not check_output or o.result in (b"OK", b"True", True)), o.value
    if kind == "get":
        return (not check_output or o.result == state), state
    if kind == "incr":
        n = _as_int(state)
        if n is None:  # not an integer: Redis errors, nothing changes
            return (not check_output), state
        new = str(n + 1).encode()
        return (not check_output or o.result == new), new
    if kind == "del":
        out = b"0" if state is None else b"1"
        return (not check_output or o.result == out), None
    raise ValueError(kind)


# ---- Wing & Gong / Lowe search ------------------------------------------------

class CheckerGaveUp(RuntimeError):
    """The search exceeded its step bound: the result is unknown."""


class Result:
    def __init__(self, ok, key=None, message="", steps=0, per_key=None):
        self.ok = ok
        self.key = key
        self.message = message
        self.steps = steps
        self.per_key = per_key or {}

    def __bool__(self):
        return self.ok

    def __repr__(self):
        return f"Result(ok={self.ok}, steps={self.steps}, key={self.key!r})"


class _Entry:
    __slots__ = ("op", "idx", "is_call", "time", "match", "prev", "next")

    def __init__(self, op, idx, is_call, t):
        self.op = op
        self.idx = idx
        self.is_call = is_call
        self.time = t
        self.match = None
        self.prev = None
        self.next = None


def _check_key(ops, init, max_steps):
    """Linearizability of one key's ops (no 'fail' ops).  Returns
    (ok, steps, message)."""
    n = len(ops)
    if n == 0:
        return True, 0, ""
    events = []
    for i, o in enumerate(ops):
        c = _Entry(o, i, True, o.invoke)
        r = _Entry(o, i, False, o.complete)
        c.match = r
        events.append(c)
        events.append(r)
    # Sort by time; at equal times calls come first (treat as concurrent:
    # the permissive choice, so clock ties never cause a false violation).
    events.sort(key=lambda e: (e.time, 0 if e.is_call else 1, e.idx))
    head = _Entry(None, -1, False, -math.inf)
    prev = head
    for e in events:
        prev.next = e
        e.prev = prev
        prev = e

    definite = [o.status == OK for o in ops]
    # Symmetry reduction: identical info ops (same op and args: e.g. the
    # INCRs of a counter) are interchangeable -- they have no deadline and
    # no checked output -- so only orders that linearize them in invoke
    # order are searched (any linearization can be rearranged into one).
    # Without this, k pending info INCRs cost 2^k configurations.
    before = [-1] * n
    last_of = {}
    for i in sorted(range(n), key=lambda i: (ops[i].invoke, i)):
        if not definite[i]:
            sig = (ops[i].op, ops[i].args)
            before[i] = last_of.get(sig, -1)
            last_of[sig] = i
    remaining_definite = sum(definite)
    state = init
    linearized = 0
    cache = set()
    calls = []  # stack of (entry, state before)
    steps = 0
    best_depth = -1
    best_info = None
    entry = head.next

    def lift(e):
        e.prev.next = e.next
        if e.next:
            e.next.prev = e.prev
        m = e.match
        m.prev.next = m.next
        if m.next:
            m.next.prev = m.prev

    def unlift(e):
        m = e.match
        m.prev.next = m
        if m.next:
            m.next.prev = m
        e.prev.next = e
        if e.next:
            e.next.prev = e

    while True:
        if remaining_definite == 0:
            return True, steps, ""
        steps += 1
        if steps > max_steps:
            raise CheckerGaveUp(
                f"linearizability search on key {ops[0].key!r} exceeded {max_steps} steps "
                f"({n} ops, {len(calls)} linearized at the time)")
        if entry is None:  # cannot happen: a definite op's return is ahead
            return False, steps, "internal: ran off the end of the history"
        if entry.is_call:
            o = entry.op
            b = before[entry.idx]
            if b >= 0 and not (linearized >> b) & 1:
                entry = entry.next
                continue
            allowed, new_state = step(state, o, definite[entry.idx])
            if allowed:
                new_lin = linearized | (1 << entry.idx)
                k = (new_lin, new_state)
                if k not in cache:
                    cache.add(k)
                    calls.append((entry, state))
                    state = new_state
                    linearized = new_lin
                    if definite[entry.idx]:
                        remaining_definite -= 1
                    lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
        else:
            # A return whose op is not yet linearized: undo the last choice.
            if len(calls) > best_depth:
                best_depth = len(calls)
                best_info = (entry.op, state, [c[0].op for c in calls])
            if not calls:
                return False, steps, _explain(ops, best_info)
            e, state = calls.pop()
            linearized &= ~(1 << e.idx)
            if definite[e.idx]:
                remaining_definite += 1
            unlift(e)
            entry = e.next


def _explain(ops, best_info):
    op, state, order = best_info
    lines = [f"not linearizable: key {op.key!r}, {len(ops)} ops"]
    lines.append(f"  longest linearizable prefix: {len(order)} ops, ending in state {state!r}")
    for o in order[-8:]:
        lines.append(f"    ... {o!r}")
    lines.append(f"  then no op order explains: {op!r}")
    lo, hi = op.invoke, op.complete
    around = [o for o in ops if o.invoke <= hi and o.complete >= lo - 0.5 and o is not op]
    around.sort(key=lambda o: o.invoke)
    lines.append(f"  ops overlapping it or completed within 0.5 s before it ({len(around)}):")
    for o in around[:30]:
        lines.append(f"    {o!r}")
    return "\n".join(lines)


def check_linearizable(history, max_steps=2_000_000, init=None):
    """Check every key's sub-history.  `history` is a History or a list of
    Op.  Returns a Result (truthy if linearizable); raises CheckerGaveUp if
    one key's search exceeds `max_steps`.  `init` is the state of every key
    before the history (None: absent)."""
    ops = history.ops if isinstance(history, History) else list(history)
    by_key = {}
    for o in ops:
        if o.status == FAIL:
            continue
        if o.status != OK and o.op == "get":
            continue  # a read with unknown outcome constrains nothing
        if o.status == PENDING:
            o = _as_info(o)
        by_key.setdefault(o.key, []).append(o)
    for key, kops in by_key.items():
        by_key[key] = _drop_unobserved_info_sets(kops)
    total = 0
    per_key = {}
    for key in sorted(by_key):
        ok, steps, msg = _check_key(by_key[key], init, max_steps)
        total += steps
        per_key[key] = steps
        if not ok:
            return Result(False, key, msg, total, per_key)
    return Result(True, None, "", total, per_key)


def _drop_unobserved_info_sets(ops):
    """On a key with only SET and GET, an info SET whose value no read
    returned can be dropped: in any linearization it is followed by another
    write or by nothing, so leaving it out changes no output (and "never took
    effect" is allowed for it).  This keeps unknown-outcome writes from
    multiplying the search."""
    if any(o.op not in ("set", "get") for o in ops):
        return ops
    seen = {o.result for o in ops if o.op == "get" and o.status == OK}
    return [o for o in ops if o.status == OK or o.op != "set" or o.value in seen]


def _as_info(o):
    c = Op(o.id, o.client, o.op, o.key, o.args, o.invoke)
    c.status = INFO
    c.node = o.node
    return c


def assert_linearizable(history, **kw):
    res = check_linearizable(history, **kw)
    assert res.ok, res.message
    return res


# ---- durability against the final state -------------------------------------

def check_acknowledged_present(history, final_state):
    """`final_state`: {key: value or None} as read from the cluster at the
    end.  Returns a list of problems (empty = fine).  Keys of the history
    missing from final_state are treated as absent."""
    ops = history.ops if isinstance(history, History) else list(history)
    final = {_b(k): _b(v) for k, v in final_state.items()}
    by_key = {}
    for o in ops:
        if o.op in WRITES and o.status != FAIL:
            by_key.setdefault(o.key, []).append(o)
    problems = []
    for key, ws in sorted(by_key.items()):
        val = final.get(key)
        kinds = {o.op for o in ws}
        acked = [o for o in ws if o.status == OK]
        maybe = [o for o in ws if o.status != OK]  # info or pending
        if kinds == {"incr"}:
            lo, hi = len(acked), len(acked) + len(maybe)
            n = _as_int(val)
            if n is None:
                problems.append(f"counter {key!r}: final value {val!r} is not an integer")
            elif not lo <= n <= hi:
                problems.append(f"counter {key!r}: final value {n}, expected between {lo} "
                                f"(acknowledged INCRs) and {hi} (+ unknown-outcome INCRs)")
            continue
        if kinds != {"set"}:
            continue  # mixed writes: covered by the linearizability check only
        # An acked SET that no other write can follow must be the final value.
        for s in acked:
            if all(w is s or w.complete <= s.invoke for w in ws):
                if val != s.value:
                    problems.append(f"key {key!r}: acknowledged {s!r} is the last write, "
                                    f"but the final value is {val!r}")
                break
        else:
            # Otherwise the final value must come from a write that no
            # acknowledged write strictly follows.
            cands = [w for w in ws
                     if not any(a.invoke > w.complete for a in acked if a is not w)]
            if acked and val is None:
                problems.append(f"key {key!r}: {len(acked)} acknowledged SETs but the key is absent")
            elif acked and val not in {w.value for w in cands}:
                problems.append(f"key {key!r}: final value {val!r} is not the value of any write "
                                f"that could be last: {cands[:10]!r}")
    return problems
