"""Differential test of the cursor commands, compared as sets.

Cursor values and the batching of SCAN/HSCAN replies are implementation
details, so these tests iterate each command to cursor 0 on both servers and
compare what was returned as a set (HSCAN: as a field -> value map), never the
individual replies.  The keyspace holds ~1000 keys: strings and hashes under
several prefixes, plus keys with glob metacharacters and binary bytes.

What is covered
  * test_scan_full[...]      SCAN with no option, COUNT 1/7/100/5000, MATCH
                             (prefix, suffix, ?, [a-c], [^x], escaped *),
                             TYPE string/hash/none/unknown, and combinations.
                             Also checks every reply is [bulk cursor, array of
                             bulks] and the set equals KEYS <pattern> on the
                             same server.
  * test_keys_patterns[...]  KEYS <pattern> over the same keyspace, as sets.
  * test_hscan_full[...]     HSCAN over a 1000-field hash and a 5-field hash,
                             with MATCH and COUNT, as field -> value maps.
  * test_scan_exact[...]     deterministic SCAN/HSCAN replies compared
                             byte-for-byte: errors (bad cursor, COUNT 0, syntax)
                             and scans of an empty database / missing key.
  * test_dbsize              both servers hold the same number of keys.
Candidate selection (cairn / DIFF_SELFTEST=1) is the same as test_diff.py.
"""

import pytest

from diffkit import servers, show  # noqa: F401  (servers is a fixture)

MAX_SCAN_CALLS = 20000     # bound on any cursor loop

STRING_KEYS = [f"user:{i:04d}" for i in range(400)] + \
              [f"item:{i:03d}:name" for i in range(200)] + \
              [f"a{c}{i}" for c in "abcxyz" for i in range(10)]
HASH_KEYS = [f"hash:{i:04d}" for i in range(250)] + \
            [f"item:{i:03d}:meta" for i in range(90)]
ODD_KEYS = ["star*key", "q?key", "br[ack]et", "back\\slash", "sp ace", "",
            "bin\x00key", "\xff\xfe", "ünï"]
BIG_HASH = "bighash"
SMALL_HASH = "smallhash"


def _b(s):
    return s.encode("utf-8") if isinstance(s, str) else s


def _populate(conn):
    cmds = [["SET", k, f"v-{k}"] for k in STRING_KEYS + ODD_KEYS]
    cmds += [["HSET", k, "f1", "x", "f2", k] for k in HASH_KEYS]
    cmds += [["HSET", BIG_HASH] + sum(([f"field:{i:04d}", f"val{i}"] for i in range(1000)), [])]
    cmds += [["HSET", SMALL_HASH, "a", "1", "b", "2", "c", "3", "ab", "4", "zz", "5"]]
    for i in range(0, len(cmds), 200):
        for raw, parsed in conn.pipeline(cmds[i:i + 200]):
            assert parsed[0] != "error", f"populate failed: {show(parsed)}"


# runs first: it flushes, the `loaded` fixture below populates afterwards
def test_scan_empty_db(servers):
    servers.reset()
    servers.flushall()
    for cmd in (["SCAN", "0"], ["SCAN", "0", "MATCH", "*", "COUNT", "10", "TYPE", "string"]):
        ref, cand = servers.both(*cmd)
        assert ref[0] == cand[0] == b"*2\r\n$1\r\n0\r\n*0\r\n", \
            f"{cmd}: redis {ref[0]!r} vs {servers.cand_name} {cand[0]!r}"


@pytest.fixture(scope="module")
def loaded(servers):
    servers.reset()
    servers.flushall()
    _populate(servers.ref)
    _populate(servers.cand)
    return servers


def _scan_all(conn, cmd, key=None, options=()):
    """Iterate SCAN/HSCAN to cursor 0; return (items, calls)."""
    cursor = b"0"
    items = []
    for calls in range(1, MAX_SCAN_CALLS + 1):
        args = [cmd] + ([key] if key is not None else []) + [cursor] + list(options)
        raw, parsed = conn.call(args)
        assert parsed[0] == "array" and len(parsed[1]) == 2, \
            f"{cmd} {options}: bad reply shape {show(parsed)}"
        (ck, cval), (ek, elems) = parsed[1]
        assert ck == "bulk" and cval.isdigit(), f"{cmd}: cursor not a decimal bulk: {show(parsed)}"
        assert ek == "array" and all(e[0] == "bulk" for e in elems), \
            f"{cmd}: elements not an array of bulks: {show(parsed)}"
        items.extend(e[1] for e in elems)
        cursor = cval
        if cursor == b"0":
            return items, calls
    pytest.fail(f"{cmd} {options}: cursor did not return to 0 within {MAX_SCAN_CALLS} calls")


def _keys(conn, pattern):
    raw, parsed = conn.call("KEYS", pattern)
    assert parsed[0] == "array", f"KEYS {pattern!r}: {show(parsed)}"
    return {e[1] for e in parsed[1]}


def _diff_msg(what, ref, cand, name):
    only_r = sorted(ref - cand)[:20]
    only_c = sorted(cand - ref)[:20]
    return (f"{what}: redis has {len(ref)}, {name} has {len(cand)}\n"
            f"    only in redis : {only_r}\n    only in {name}: {only_c}")


SCAN_CASES = [
    [],
    ["COUNT", "1"],
    ["COUNT", "7"],
    ["COUNT", "100"],
    ["COUNT", "5000"],
    ["MATCH", "user:*"],
    ["MATCH", "*:name"],
    ["MATCH", "item:1?0:*"],
    ["MATCH", "a[a-c]*"],
    ["MATCH", "a[^x]?"],
    ["MATCH", "star\\*key"],
    ["MATCH", "*"],
    ["MATCH", "**"],
    ["MATCH", ""],
    ["MATCH", "nomatch*"],
    ["MATCH", "user:00[0-4]?", "COUNT", "3"],
    ["TYPE", "string"],
    ["TYPE", "hash"],
    ["TYPE", "HASH"],
    ["TYPE", "list"],
    ["TYPE", "nosuchtype"],
    ["MATCH", "item:*", "TYPE", "hash"],
    ["MATCH", "item:*", "TYPE", "string", "COUNT", "50"],
    ["TYPE", "hash", "MATCH", "hash:01*", "COUNT", "20"],
    ["COUNT", "10", "MATCH", "*key*"],
]


@pytest.mark.parametrize("options", SCAN_CASES, ids=lambda o: " ".join(o) or "plain")
def test_scan_full(loaded, options):
    ref_items, _ = _scan_all(loaded.ref, "SCAN", options=options)
    cand_items, _ = _scan_all(loaded.cand, "SCAN", options=options)
    ref_set, cand_set = set(ref_items), set(cand_items)
    assert ref_set == cand_set, _diff_msg(f"SCAN {' '.join(options)}", ref_set, cand_set,
                                          loaded.cand_name)
    # with no TYPE filter, a full SCAN MATCH p returns exactly KEYS p
    if "TYPE" not in [o.upper() for o in options]:
        opts = [o.upper() for o in options]
        pattern = options[opts.index("MATCH") + 1] if "MATCH" in opts else "*"
        cand_keys = _keys(loaded.cand, pattern)
        assert cand_set == cand_keys, _diff_msg(f"{loaded.cand_name}: SCAN vs KEYS {pattern!r}",
                                                cand_keys, cand_set, "SCAN")


KEYS_PATTERNS = ["*", "user:*", "user:01??", "*:meta", "item:0[0-2]?:*", "a[!x]?", "a[^a]?",
                 "a[x-z]1", "a[z-x]1", "star\\*key", "q\\?key", "br\\[ack]et", "back\\\\slash",
                 "sp ace", "", "bin\x00*", "\xff*", "ü*", "*[*", "hash:00[1-3][5-9]", "nomatch"]


@pytest.mark.parametrize("pattern", KEYS_PATTERNS, ids=repr)
def test_keys_patterns(loaded, pattern):
    ref, cand = _keys(loaded.ref, pattern), _keys(loaded.cand, pattern)
    assert ref == cand, _diff_msg(f"KEYS {pattern!r}", ref, cand, loaded.cand_name)


HSCAN_CASES = [
    (BIG_HASH, []),
    (BIG_HASH, ["COUNT", "1"]),
    (BIG_HASH, ["COUNT", "33"]),
    (BIG_HASH, ["COUNT", "2000"]),
    (BIG_HASH, ["MATCH", "field:00*"]),
    (BIG_HASH, ["MATCH", "field:0?9[0-5]", "COUNT", "5"]),
    (BIG_HASH, ["MATCH", "nomatch"]),
    (SMALL_HASH, []),
    (SMALL_HASH, ["COUNT", "1"]),
    (SMALL_HASH, ["MATCH", "a*"]),
    (SMALL_HASH, ["MATCH", "?"]),
    ("hash:0007", []),
    ("missing-hash", []),
    ("missing-hash", ["MATCH", "*", "COUNT", "3"]),
]


@pytest.mark.parametrize("key,options", HSCAN_CASES,
                         ids=lambda v: (" ".join(v) or "plain") if isinstance(v, list) else v)
def test_hscan_full(loaded, key, options):
    maps = []
    for conn in (loaded.ref, loaded.cand):
        items, _ = _scan_all(conn, "HSCAN", key=key, options=options)
        assert len(items) % 2 == 0, f"HSCAN {key} {options}: odd number of elements"
        m = {}
        for f, v in zip(items[0::2], items[1::2]):
            assert m.get(f, v) == v, f"HSCAN {key}: field {f!r} returned with two values"
            m[f] = v
        maps.append(m)
    ref, cand = maps
    assert ref == cand, _diff_msg(f"HSCAN {key} {' '.join(options)}",
                                  set(ref.items()), set(cand.items()), loaded.cand_name)


EXACT_CASES = [
    ["SCAN"],
    ["SCAN", "abc"],
    ["SCAN", "1.5"],
    ["SCAN", "0", "COUNT"],
    ["SCAN", "0", "COUNT", "0"],
    ["SCAN", "0", "COUNT", "-5"],
    ["SCAN", "0", "COUNT", "abc"],
    ["SCAN", "0", "MATCH"],
    ["SCAN", "0", "TYPE"],
    ["SCAN", "0", "NOPE"],
    ["SCAN", "0", "MATCH", "*", "NOPE"],
    ["HSCAN", BIG_HASH],
    ["HSCAN", BIG_HASH, "abc"],
    ["HSCAN", BIG_HASH, "0", "COUNT", "0"],
    ["HSCAN", BIG_HASH, "0", "TYPE", "string"],
    ["HSCAN", "user:0001", "0"],
    ["HSCAN", "missing-hash", "0"],
    ["HSCAN", "missing-hash", "abc"],
]


@pytest.mark.parametrize("cmd", EXACT_CASES, ids=lambda c: " ".join(c))
def test_scan_exact(loaded, cmd):
    ref, cand = loaded.both(*cmd)
    assert ref[0] == cand[0], (f"{' '.join(cmd)}\n    redis : {show(ref[1])}\n"
                               f"    {loaded.cand_name}: {show(cand[1])}")


@pytest.mark.parametrize("cursor", ["", "-1", "-0", "+5", "18446744073709551615", "123456",
                                    " 1", "1 ", "0x10", "18446744073709551616",
                                    "99999999999999999999"])
def test_scan_odd_cursor(loaded, cursor):
    """Redis parses the cursor with strtoul: "", "-1", "+5" are valid cursors,
    a leading space, trailing junk or overflow are "ERR invalid cursor".
    Which keys come back is implementation specific, so only the reply
    shape (array vs error) is compared; errors are compared exactly."""
    bad = []
    for cmd in (["SCAN", cursor], ["HSCAN", BIG_HASH, cursor], ["HSCAN", SMALL_HASH, cursor]):
        ref, cand = loaded.both(*cmd)
        if ref[1][0] != cand[1][0] or (ref[1][0] == "error" and ref[0] != cand[0]):
            bad.append(f"{cmd}\n    redis : {show(ref[1])[:300]}\n"
                       f"    {loaded.cand_name}: {show(cand[1])[:300]}")
    assert not bad, "\n".join(bad)


def test_dbsize(loaded):
    ref, cand = loaded.both("DBSIZE")
    expected = len(STRING_KEYS) + len(HASH_KEYS) + len(ODD_KEYS) + 2
    assert ref[1] == ("int", expected)
    assert cand[0] == ref[0], f"DBSIZE: redis {show(ref[1])} vs {loaded.cand_name} {show(cand[1])}"
