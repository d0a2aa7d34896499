"""Differential test: cairn's data node must answer byte-for-byte like Redis 7.0.

What is covered
  * test_corpus[<file>]    one test per tests/diff/corpus/*.txt: FLUSHALL both
                           servers, send every command as RESP, compare the raw
                           replies (or their normalised form when the line
                           carries a ``#~`` annotation, see diffkit.py).  All
                           mismatches of a file are listed with file:line,
                           the command and both replies.
  * test_corpus_size       the corpus holds >= 300 commands.
  * test_corpus_parses     every corpus line tokenizes, annotations are known.
  * test_reply_type[...]   nondeterministic commands (RANDOMKEY with several
                           keys, TIME, CLIENT ID, INFO) compared by reply type
                           only.
Reference: redis-server 7.0 started by the fixture.  Candidate: the cairn node
(``$CAIRN_BIN node --port P --dir TMP --fsync no``; CAIRN_BIN defaults to
build/cairn, relative paths resolve against the repo root) or, with
DIFF_SELFTEST=1, a second redis-server (proves the corpus is deterministic).
The tests skip when the cairn binary does not exist.

Run:   /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/diff
Self:  DIFF_SELFTEST=1 /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/diff
"""

import time

import pytest

from diffkit import (ProtocolError, compare_replies, corpus_files, count_commands,
                     load_corpus, servers, show)  # noqa: F401  (servers is a fixture)

MIN_COMMANDS = 300
MAX_REPORTED = 60


def _describe(line, ref, cand, cand_name):
    return (f"{line.where}: {line.text.strip()}\n"
            f"    redis : {show(ref[1])}   raw={ref[0]!r}\n"
            f"    {cand_name:6}: {show(cand[1])}   raw={cand[0]!r}")


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.name)
def test_corpus(servers, path):
    servers.reset()
    servers.flushall()
    mismatches = []
    for line in load_corpus(path):
        if line.sleep_ms is not None:
            time.sleep(line.sleep_ms / 1000.0)
            continue
        try:
            ref = servers.ref.call(line.args)
        except (OSError, ProtocolError) as e:
            pytest.fail(f"{line.where}: {line.text.strip()}\n    redis (reference) failed: {e!r}")
        try:
            cand = servers.cand.call(line.args)
        except (OSError, ProtocolError) as e:
            alive = "alive" if servers.candidate_alive() else "DEAD"
            head = "\n".join(mismatches[:MAX_REPORTED])
            if servers.candidate_alive():
                servers.reset()
            pytest.fail(f"{line.where}: {line.text.strip()}\n"
                        f"    redis : {show(ref[1])}\n"
                        f"    {servers.cand_name}: no reply ({e!r}); process {alive}\n"
                        f"{servers.cand_srv.log_tail(2000)}\n"
                        f"earlier mismatches in this file:\n{head}")
        if not compare_replies(ref, cand, line.notes):
            mismatches.append(_describe(line, ref, cand, servers.cand_name))
    if mismatches:
        shown = "\n".join(mismatches[:MAX_REPORTED])
        more = len(mismatches) - MAX_REPORTED
        tail = f"\n... and {more} more" if more > 0 else ""
        pytest.fail(f"{len(mismatches)} mismatching replies in {path.name}:\n{shown}{tail}",
                    pytrace=False)


def test_corpus_parses():
    files = corpus_files()
    assert files, "no corpus files found"
    for p in files:
        load_corpus(p)   # raises CorpusSyntaxError with file:line on a bad line


def test_corpus_size():
    counts = {p.name: count_commands(p) for p in corpus_files()}
    total = sum(counts.values())
    assert total >= MIN_COMMANDS, f"corpus has only {total} commands: {counts}"


def _setup_keys(pair):
    pair.flushall()
    for k in ("rk:a", "rk:b", "rk:c", "rk:d"):
        pair.both("SET", k, "v")


NONDET = [
    pytest.param(["RANDOMKEY"], id="RANDOMKEY"),
    pytest.param(["TIME"], id="TIME"),
    pytest.param(["CLIENT", "ID"], id="CLIENT-ID"),
    pytest.param(["INFO"], id="INFO"),
]


@pytest.mark.parametrize("cmd", NONDET)
def test_reply_type(servers, cmd):
    """Nondeterministic replies: same reply type (and array length) only."""
    servers.reset()
    _setup_keys(servers)
    ref, cand = servers.both(*cmd)
    rk, ck = ref[1][0], cand[1][0]
    assert rk == ck, (f"{' '.join(cmd)}: reply types differ\n    redis : {show(ref[1])}\n"
                      f"    {servers.cand_name}: {show(cand[1])}")
    if rk == "array":
        assert len(ref[1][1]) == len(cand[1][1]), f"{cmd}: array lengths differ"
        assert [e[0] for e in ref[1][1]] == [e[0] for e in cand[1][1]]
    if cmd == ["RANDOMKEY"]:
        assert cand[1][1] in (b"rk:a", b"rk:b", b"rk:c", b"rk:d")
