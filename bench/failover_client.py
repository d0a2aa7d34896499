#!/usr/bin/python3
"""bench/failover_client.py — the write load, the kill and the checks behind
bench/failover.sh (and the health waits of bench/replication.sh).

Subcommands (all addresses are 127.0.0.1 ports; every wait is bounded):

  load   N threads each doing SET <prefix>:<thread>:<n> v<n> for n = 0, 1, ...
         against one system, recording the monotonic time of every
         acknowledged write (a +OK) and of every failed attempt.  After
         --pre seconds it sends SIGKILL to --kill-pid (the primary, started by
         the calling script) and notes the time; it keeps writing until writes
         have been acknowledged by another server for --post seconds (or
         --max-after seconds have passed), stops the threads, then reads every
         acknowledged key back from the current primary and counts the ones
         missing or different.  Prints one JSON object:
           gap        the largest gap (s) between consecutive acknowledged
                      writes (all threads merged) from 1 s before the kill on
                      - "seconds without successful writes"
           to_first   kill -> first write acknowledged by another server (s)
           acked, lost, wrong, unknown (sent, connection lost or timed out
           before the reply: neither acknowledged nor counted), failures
           (refusals / errors, by kind), read_from (the primary read back).
         --system cairn: the client starts at a node, follows -NOTPRIMARY
           <version> <host:port> redirects, retries -TRYAGAIN / -CLUSTERDOWN /
           refused connections after 5 ms sleeps, rotating among --nodes when
           there is no usable redirect.
         --system redis: the client asks the Sentinels (SENTINEL
           get-master-addr-by-name) for the master at start and after every
           error, sleeping 5 ms between attempts.

  cairn-health   wait until the shard is healthy: the manager's configuration
                 has a primary and 2 secondaries (no learners), every node
                 reports that version and its role in it, the primary serves,
                 all three report the same last_lsn, and a SET through the
                 primary succeeds; prints the primary's port.
  cairn-primary  print the port of the node reporting role primary + serving.
  redis-health   wait until all Sentinels name the same master, it reports
                 role master with 2 online replicas whose links are up, and
                 every Sentinel knows 2 replicas and 2 other Sentinels, none
                 flagged down; prints the master's port.
  redis-replicas wait (no Sentinels) until one of --servers is master and all
                 the others are its replicas, online, links up (--synced: at
                 the master's replication offset); prints its port.
  report FILE    the per-run table, the summary and the goals of failover.sh
                 from the JSON lines that `load` printed.
"""
import argparse
import json
import os
import signal
import socket
import sys
import threading
import time

HOST = "127.0.0.1"


class RespError(Exception):
    pass


class Conn:
    """A minimal blocking RESP2 connection (enough for SET/GET/INFO/SENTINEL)."""

    def __init__(self, port, timeout=2.0, host=HOST):
        self.addr = (host, int(port))
        self.sock = socket.create_connection(self.addr, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    @staticmethod
    def encode(args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if not isinstance(a, bytes):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed by server")
        self.buf += chunk

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return line
            self._fill()

    def read(self):
        """One reply; an error reply is returned as a RespError instance."""
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest
        if t == b"-":
            return RespError(rest.decode(errors="replace"))
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill()
            v = bytes(self.buf[:n])
            del self.buf[:n + 2]
            return v
        if t == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self.read() for _ in range(n)]
        raise ConnectionError(f"bad RESP type byte {line[:20]!r}")

    def call(self, *args):
        self.send(self.encode(args))
        return self.read()

    def pipeline(self, cmds):
        self.send(b"".join(self.encode(c) for c in cmds))
        return [self.read() for _ in cmds]


def call_once(port, *args, timeout=1.0):
    """One command on a fresh connection; None if unreachable."""
    try:
        c = Conn(port, timeout=timeout)
    except OSError:
        return None
    try:
        return c.call(*args)
    except OSError:
        return None
    finally:
        c.close()


# ---- cairn ---------------------------------------------------------------------

def cairn_status(port, timeout=1.0):
    rep = call_once(port, "CAIRN", "STATUS", timeout=timeout)
    if not isinstance(rep, bytes):
        return None
    try:
        return json.loads(rep)
    except ValueError:
        return None


def cairn_primary(ports):
    best = None
    for p in ports:
        st = cairn_status(p)
        if st and st.get("role") == "primary" and st.get("serving"):
            if best is None or st.get("version", 0) > best[1].get("version", 0):
                best = (p, st)
    return best[0] if best else None


def manager_config(mport):
    rep = call_once(mport, "CAIRN", "STATUS", timeout=2.0)
    if not isinstance(rep, bytes):
        return None, f"manager :{mport} replied {rep!r}"
    try:
        st = json.loads(rep)
    except ValueError:
        return None, f"manager STATUS is not JSON: {rep[:200]!r}"
    shards = st.get("shards") or []
    if not shards:
        return None, "manager has no shard"
    return shards[0], None


def cairn_health(ports, mport, want=3):
    """(primary port, None) when healthy, else (None, reason)."""
    cfg, why = manager_config(mport)
    if cfg is None:
        return None, why
    members = [cfg.get("primary")] + list(cfg.get("secondaries") or [])
    if cfg.get("learners") or len(members) != want:
        return None, f"configuration {json.dumps(cfg)}"
    sts = {p: cairn_status(p) for p in ports}
    by_id = {st["id"]: (p, st) for p, st in sts.items() if st}
    lsns = set()
    prim = None
    for i, nid in enumerate(members):
        if nid not in by_id:
            return None, f"member {nid} does not answer CAIRN STATUS"
        p, st = by_id[nid]
        role = "primary" if i == 0 else "secondary"
        if st.get("version") != cfg.get("version") or st.get("role") != role:
            return None, (f":{p} reports {st.get('role')} v{st.get('version')}, configuration "
                          f"v{cfg.get('version')} says {role}")
        lsns.add(st.get("last_lsn"))
        if i == 0:
            if not st.get("serving"):
                return None, f"primary :{p} not serving"
            prim = p
    if len(lsns) != 1:
        return None, "last_lsn differ: " + " ".join(
            f":{p}={st.get('last_lsn') if st else 'down'}" for p, st in sts.items())
    rep = call_once(prim, "SET", "__bench_probe__", "1", timeout=2.0)
    if rep != b"OK":
        return None, f"SET through primary :{prim} replied {rep!r}"
    return prim, None


# ---- redis + sentinel ----------------------------------------------------------

def sentinel_master(sports, name, timeout=0.5):
    for sp in sports:
        rep = call_once(sp, "SENTINEL", "get-master-addr-by-name", name, timeout=timeout)
        if isinstance(rep, list) and len(rep) == 2 and rep[0] is not None:
            return rep[0].decode(), int(rep[1])
    return None


def _kv_list(rep):
    """SENTINEL replicas/sentinels reply -> list of dicts."""
    out = []
    for item in rep or []:
        if isinstance(item, list):
            d = {}
            for k, v in zip(item[0::2], item[1::2]):
                d[k.decode() if isinstance(k, bytes) else k] = (
                    v.decode() if isinstance(v, bytes) else v)
            out.append(d)
    return out


def info_dict(port, section):
    rep = call_once(port, "INFO", section)
    if not isinstance(rep, bytes):
        return None
    d = {}
    for line in rep.decode(errors="replace").splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            d[k] = v
    return d


def redis_replicas(ports, want_replicas=2, synced=False):
    """Without Sentinels: (master port, None) once one of `ports` is master
    with `want_replicas` online replicas whose links are up (and, with
    `synced`, whose replication offsets equal the master's)."""
    masters = [p for p in ports if (info_dict(p, "replication") or {}).get("role") == "master"]
    if len(masters) != 1:
        return None, f"{len(masters)} of {ports} report role master"
    mport = masters[0]
    inf = info_dict(mport, "replication")
    online = [k for k, v in inf.items() if k.startswith("slave") and "state=online" in v]
    if len(online) != want_replicas:
        return None, f"master :{mport} has {len(online)} online replicas"
    for p in ports:
        if p == mport:
            continue
        rinf = info_dict(p, "replication") or {}
        if rinf.get("master_link_status") != "up" or int(rinf.get("master_port", 0)) != mport:
            return None, f"replica :{p} link {rinf.get('master_link_status')}"
        if synced and rinf.get("slave_repl_offset") != inf.get("master_repl_offset"):
            return None, (f"replica :{p} offset {rinf.get('slave_repl_offset')}, master "
                          f"{inf.get('master_repl_offset')}")
    return mport, None


def redis_health(sports, name, want_replicas=2):
    masters = set()
    for sp in sports:
        rep = call_once(sp, "SENTINEL", "get-master-addr-by-name", name)
        if not (isinstance(rep, list) and len(rep) == 2):
            return None, f"sentinel :{sp} replied {rep!r}"
        masters.add((rep[0].decode(), int(rep[1])))
    if len(masters) != 1:
        return None, f"sentinels disagree on the master: {sorted(masters)}"
    host, mport = masters.pop()
    inf = info_dict(mport, "replication")
    if inf is None or inf.get("role") != "master":
        return None, f"master :{mport} INFO replication role {inf and inf.get('role')}"
    online = [k for k, v in inf.items() if k.startswith("slave") and "state=online" in v]
    if len(online) != want_replicas:
        return None, f"master :{mport} has {len(online)} online replicas"
    for k in online:
        rport = int(dict(x.split("=", 1) for x in inf[k].split(","))["port"])
        rinf = info_dict(rport, "replication")
        if not rinf or rinf.get("master_link_status") != "up" or \
                int(rinf.get("master_port", 0)) != mport:
            return None, f"replica :{rport} link {rinf and rinf.get('master_link_status')}"
    for sp in sports:
        reps = _kv_list(call_once(sp, "SENTINEL", "replicas", name))
        sents = _kv_list(call_once(sp, "SENTINEL", "sentinels", name))
        bad = [r for r in reps if "s_down" in r.get("flags", "") or
               "disconnected" in r.get("flags", "")]
        if len(reps) - len(bad) != want_replicas or bad:
            return None, (f"sentinel :{sp} sees replicas "
                          f"{[(r.get('port'), r.get('flags')) for r in reps]}")
        bads = [s for s in sents if "s_down" in s.get("flags", "")]
        if len(sents) != len(sports) - 1 or bads:
            return None, (f"sentinel :{sp} sees sentinels "
                          f"{[(s.get('port'), s.get('flags')) for s in sents]}")
        mst = call_once(sp, "SENTINEL", "master", name)
        md = _kv_list([mst])[0] if isinstance(mst, list) else {}
        if "s_down" in md.get("flags", "") or "failover" in md.get("flags", ""):
            return None, f"sentinel :{sp} master flags {md.get('flags')}"
    return mport, None


def wait_for(fn, timeout, what):
    deadline = time.monotonic() + timeout
    why = None
    while time.monotonic() < deadline:
        res, why = fn()
        if res is not None:
            return res
        time.sleep(0.1)
    sys.stderr.write(f"timeout after {timeout:.0f}s waiting for {what}; last: {why}\n")
    sys.exit(1)


# ---- the load ------------------------------------------------------------------

class Worker(threading.Thread):
    def __init__(self, tid, args, shared):
        super().__init__(daemon=True)
        self.tid = tid
        self.a = args
        self.s = shared
        self.acks = []          # (time, key index) per acknowledged SET
        self.ack_port = []      # server port of each ack (parallel list)
        self.fails = []         # (time, kind)
        self.unknown = 0
        self.conn = None
        self.port = None
        self.rot = tid
        self.crash = None

    # connection management
    def _drop(self):
        if self.conn:
            self.conn.close()
        self.conn = None

    def _pick(self):
        a = self.a
        if a.system == "redis":
            m = sentinel_master(a.sentinels, a.master_name)
            return m[1] if m else None
        if self.port is None:
            self.rot = (self.rot + 1) % len(a.nodes)
            return a.nodes[self.rot]
        return self.port

    def _fail(self, kind, t):
        self.fails.append((t, kind))
        time.sleep(0.005)

    def run(self):
        try:
            self._run()
        except Exception as e:          # a bug here must fail the run, loudly
            self.crash = f"{type(e).__name__}: {e}"
            self.s["stop"].set()
            raise

    def _run(self):
        a, s = self.a, self.s
        n = 0
        prefix = f"{a.prefix}:{self.tid}:"
        while not s["stop"].is_set():
            if self.conn is None:
                port = self._pick()
                if port is None:
                    self._fail("no-master", time.monotonic())
                    continue
                try:
                    self.conn = Conn(port, timeout=a.op_timeout)
                    self.port = port
                except OSError:
                    self._fail("connect", time.monotonic())
                    self.port = None
                    continue
            key = prefix + str(n)
            try:
                self.conn.send(Conn.encode(("SET", key, "v" + str(n))))
            except OSError:
                self.unknown += 1     # part of it may have reached the server
                self._drop()
                self.port = None
                self._fail("send", time.monotonic())
                n += 1
                continue
            try:
                rep = self.conn.read()
            except (OSError, ValueError):
                t = time.monotonic()
                self.unknown += 1
                self._drop()
                self.port = None
                self._fail("lost-reply", t)
                n += 1                # never reuse a key whose write may have happened
                continue
            t = time.monotonic()
            if rep == b"OK":
                self.acks.append((t, n))
                self.ack_port.append(self.port)
                tk = s.get("t_kill")
                if tk is not None and t > tk and self.port != a.kill_port and \
                        "resumed" not in s:
                    s["resumed"] = t     # detection only; the exact first is computed later
                n += 1
                continue
            if not isinstance(rep, RespError):
                self._fail("unexpected-reply", t)
                n += 1
                continue
            msg = str(rep)
            kind = msg.split(" ", 1)[0]
            n += 1   # a refused write did not happen, but keep keys unique anyway
            if a.system == "cairn" and kind == "NOTPRIMARY":
                parts = msg.split()
                addr = parts[2] if len(parts) >= 3 else ""
                host, _, p = addr.rpartition(":")
                self._drop()
                if p.isdigit() and int(p) != self.port and int(p) in a.nodes:
                    self.port = int(p)
                    self.fails.append((t, kind))   # follow at once
                else:
                    self.port = None
                    self._fail(kind, t)
            elif a.system == "cairn" and kind == "TRYAGAIN":
                self._fail(kind, t)                # same node, after 5 ms
            elif a.system == "cairn":
                self._drop()                       # CLUSTERDOWN, LOADING, ...
                self.port = None
                self._fail(kind, t)
            else:
                self._drop()                       # READONLY, LOADING, ... -> ask Sentinel
                self._fail(kind, t)
        self._drop()


def read_back(port, workers, timeout):
    """(missing, wrong, checked): every acknowledged key GET from `port`."""
    keys = []
    for w in workers:
        prefix = f"{w.a.prefix}:{w.tid}:"
        keys.extend((prefix + str(n), b"v%d" % n) for _, n in w.acks)
    missing = wrong = 0
    deadline = time.monotonic() + timeout
    i = 0
    conn = Conn(port, timeout=5.0)
    try:
        while i < len(keys):
            batch = keys[i:i + 1000]
            reps = conn.pipeline([("GET", k) for k, _ in batch])
            retry = any(isinstance(r, RespError) for r in reps)
            if retry:
                errs = {str(r) for r in reps if isinstance(r, RespError)}
                if time.monotonic() > deadline:
                    raise RuntimeError(f"read-back from :{port} kept failing: {sorted(errs)[:3]}")
                time.sleep(0.05)
                continue
            for (k, v), r in zip(batch, reps):
                if r is None:
                    missing += 1
                elif r != v:
                    wrong += 1
            i += len(batch)
    finally:
        conn.close()
    return missing, wrong, len(keys)


def cmd_load(a):
    shared = {"stop": threading.Event(), "t_kill": None}
    workers = [Worker(i, a, shared) for i in range(a.threads)]
    t0 = time.monotonic()
    for w in workers:
        w.start()
    time.sleep(a.pre)
    t_kill = time.monotonic()
    os.kill(a.kill_pid, signal.SIGKILL)
    shared["t_kill"] = t_kill
    # Keep writing until another server has acknowledged writes for --post s.
    while time.monotonic() - t_kill < a.max_after:
        r = shared.get("resumed")
        if r is not None and time.monotonic() - r >= a.post:
            break
        time.sleep(0.02)
    shared["stop"].set()
    for w in workers:
        w.join(timeout=a.op_timeout + 2)
    t_end = time.monotonic()
    if any(w.is_alive() for w in workers):
        sys.stderr.write("warning: a load thread did not stop\n")
    crashes = [w.crash for w in workers if w.crash]
    if crashes:
        sys.stderr.write(f"load thread crashed: {crashes[0]}\n")
        sys.exit(2)

    acks = sorted(t for w in workers for t, _ in w.acks)
    after = [t for w in workers for (t, _), p in zip(w.acks, w.ack_port)
             if t > t_kill and p != a.kill_port]
    resumed = min(after) if after else None
    window = [t for t in acks if t >= t_kill - 1.0]
    # The gap also runs to the end of the load when writes never resumed.
    pts = window + [t_end] if resumed is None else window
    gap = max((b - x for x, b in zip(pts, pts[1:])), default=t_end - t_kill)
    if not window:
        gap = t_end - t_kill
    fails = {}
    for w in workers:
        for _, k in w.fails:
            fails[k] = fails.get(k, 0) + 1

    # Read back from the current primary.
    if a.system == "cairn":
        deadline = time.monotonic() + a.settle
        prim = None
        while time.monotonic() < deadline and prim is None:
            prim = cairn_primary(a.nodes)
            if prim is None:
                time.sleep(0.05)
    else:
        m = sentinel_master(a.sentinels, a.master_name)
        prim = m[1] if m else None
        if prim is not None:
            inf = info_dict(prim, "replication")
            if not inf or inf.get("role") != "master":
                prim = None
    out = {
        "system": a.system, "run": a.run, "kill_port": a.kill_port, "acked": len(acks), "unknown": sum(w.unknown for w in workers),
        "failures": fails, "gap": round(gap, 3),
        "to_first": round(resumed - t_kill, 3) if resumed is not None else None,
        "resumed": resumed is not None, "load_s": round(t_end - t0, 2),
        "acked_before_kill": sum(1 for t in acks if t <= t_kill),
    }
    if prim is None:
        out.update(lost=None, wrong=None, read_from=None, error="no primary to read back from")
    else:
        try:
            missing, wrong, checked = read_back(prim, workers, timeout=a.settle)
            out.update(lost=missing, wrong=wrong, checked=checked, read_from=prim)
        except (OSError, RuntimeError) as e:
            out.update(lost=None, wrong=None, read_from=prim, error=f"read-back: {e}")
    print(json.dumps(out))


def median(xs):
    xs = sorted(xs)
    if not xs:
        return None
    m = len(xs) // 2
    return xs[m] if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2


def fmt(x, nd=3):
    return "-" if x is None else (f"{x:.{nd}f}" if isinstance(x, float) else str(x))


def cmd_report(a):
    runs = {"cairn": [], "redis": []}
    with open(a.results) as f:
        for line in f:
            line = line.strip()
            if line:
                r = json.loads(line)
                runs[r["system"]].append(r)
    print()
    print(f"{'system':<16} {'run':>3} {'gap s':>7} {'kill->1st ack':>13} {'acked':>7} "
          f"{'lost':>5} {'wrong':>5} {'unknown':>7}  failed attempts by kind")
    label = {"cairn": "cairn", "redis": "redis+sentinel"}
    for sysname in ("cairn", "redis"):
        for r in runs[sysname]:
            fails = ", ".join(f"{k} {v}" for k, v in sorted(r.get("failures", {}).items()))
            note = f"  ERROR: {r['error']}" if r.get("error") else ""
            if not r.get("resumed", True):
                note += "  (writes never resumed)"
            print(f"{label[sysname]:<16} {r['run']:>3} {fmt(r.get('gap')):>7} "
                  f"{fmt(r.get('to_first')):>13} {r.get('acked', '-'):>7} {fmt(r.get('lost')):>5} "
                  f"{fmt(r.get('wrong')):>5} {r.get('unknown', '-'):>7}  {fails or '-'}{note}")
    print()
    summ = {}
    for sysname in ("cairn", "redis"):
        rs = runs[sysname]
        gaps = [r["gap"] for r in rs if r.get("gap") is not None]
        lost = [r["lost"] for r in rs]
        known = [x for x in lost if x is not None]
        summ[sysname] = {
            "n": len(rs), "median": median(gaps), "max": max(gaps) if gaps else None,
            "lost": sum(known) if known else None, "unchecked": len(lost) - len(known),
            "acked": sum(r.get("acked", 0) for r in rs),
            "lost_runs": sum(1 for x in known if x > 0),
            "wrong": sum(r.get("wrong") or 0 for r in rs),
        }
    print(f"{'system':<16} {'runs':>4} {'median gap s':>12} {'max gap s':>9} "
          f"{'acked':>8} {'lost':>6} {'runs losing':>11}")
    for sysname in ("cairn", "redis"):
        m = summ[sysname]
        extra = f"  ({m['unchecked']} run(s) not checked)" if m["unchecked"] else ""
        if m["wrong"]:
            extra += f"  ({m['wrong']} read back with a different value)"
        print(f"{label[sysname]:<16} {m['n']:>4} {fmt(m['median']):>12} {fmt(m['max']):>9} "
              f"{m['acked']:>8} {fmt(m['lost']):>6} {m['lost_runs']:>11}{extra}")
    c, r = summ["cairn"], summ["redis"]
    ratio = (c["median"] / r["median"]) if c["median"] is not None and r["median"] else None
    print(f"\nratio cairn/sentinel (median gap): {fmt(ratio, 2)}")
    print("\ngoals:")

    def goal(ok, text):
        print(f"  [{'PASS' if ok else 'FAIL' if ok is not None else 'n/a '}] {text}")
    goal(None if c["median"] is None else c["median"] <= 1.0,
         f"cairn median gap <= 1.0 s: {fmt(c['median'])} s (worst run {fmt(c['max'])} s)")
    goal(None if ratio is None else ratio <= 0.5,
         f"cairn median gap <= half of Sentinel's: ratio {fmt(ratio, 2)}")
    goal(None if not c["n"] or c["unchecked"] else c["lost"] == 0 and c["wrong"] == 0,
         f"0 acknowledged writes lost in every cairn run: {fmt(c['lost'])} lost in total, "
         f"{c['lost_runs']} of {c['n']} run(s) lost any")
    print(f"  [info] redis+sentinel (asynchronous replication): {fmt(r['lost'])} acknowledged "
          f"writes lost in total, {r['lost_runs']} of {r['n']} run(s) lost any")


def ports(s):
    return [int(x.rpartition(":")[2]) for x in s.split(",") if x]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    ld = sub.add_parser("load")
    ld.add_argument("--system", choices=("cairn", "redis"), required=True)
    ld.add_argument("--nodes", type=ports, default=[], help="cairn node ports")
    ld.add_argument("--sentinels", type=ports, default=[])
    ld.add_argument("--master-name", default="m")
    ld.add_argument("--threads", type=int, default=4)
    ld.add_argument("--prefix", required=True)
    ld.add_argument("--run", type=int, default=1)
    ld.add_argument("--pre", type=float, default=2.0)
    ld.add_argument("--post", type=float, default=2.0)
    ld.add_argument("--max-after", type=float, default=30.0)
    ld.add_argument("--kill-pid", type=int, required=True)
    ld.add_argument("--kill-port", type=int, required=True)
    ld.add_argument("--op-timeout", type=float, default=2.0)
    ld.add_argument("--settle", type=float, default=20.0)
    ch = sub.add_parser("cairn-health")
    ch.add_argument("--nodes", type=ports, required=True)
    ch.add_argument("--manager", type=ports, required=True)
    ch.add_argument("--timeout", type=float, default=60)
    cp = sub.add_parser("cairn-primary")
    cp.add_argument("--nodes", type=ports, required=True)
    cp.add_argument("--timeout", type=float, default=20)
    rh = sub.add_parser("redis-health")
    rh.add_argument("--sentinels", type=ports, required=True)
    rh.add_argument("--master-name", default="m")
    rh.add_argument("--timeout", type=float, default=60)
    rr = sub.add_parser("redis-replicas")
    rr.add_argument("--servers", type=ports, required=True)
    rr.add_argument("--timeout", type=float, default=60)
    rr.add_argument("--synced", action="store_true")
    rp = sub.add_parser("report")
    rp.add_argument("results")
    a = ap.parse_args()

    if a.cmd == "load":
        if a.system == "cairn" and not a.nodes:
            ap.error("--nodes is required for cairn")
        if a.system == "redis" and not a.sentinels:
            ap.error("--sentinels is required for redis")
        cmd_load(a)
    elif a.cmd == "redis-replicas":
        print(wait_for(lambda: redis_replicas(a.servers, len(a.servers) - 1, a.synced), a.timeout,
                       "a Redis master with its replicas online"))
    elif a.cmd == "report":
        cmd_report(a)
    elif a.cmd == "cairn-health":
        print(wait_for(lambda: cairn_health(a.nodes, a.manager[0], want=len(a.nodes)),
                       a.timeout, "a healthy 3-replica cairn shard"))
    elif a.cmd == "cairn-primary":
        print(wait_for(lambda: (cairn_primary(a.nodes), "no node is primary + serving"),
                       a.timeout, "a serving cairn primary"))
    elif a.cmd == "redis-health":
        print(wait_for(lambda: redis_health(a.sentinels, a.master_name), a.timeout,
                       "a healthy Redis master + 2 replicas + 3 Sentinels"))


if __name__ == "__main__":
    main()
