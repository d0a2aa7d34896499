"""Self-checks of the differential-test helpers (no server needed).

What is covered
  * RESP encoder output, and the reader returning exact raw bytes and the
    parsed form, also when the bytes arrive one at a time or several replies
    arrive in one chunk.
  * The corpus tokenizer: quoting, escapes, annotations, syntax errors.
  * compare_replies under each annotation (and that it still catches
    differences).
"""

import pytest

from diffkit import (CorpusSyntaxError, RespReader, compare_replies, encode_command,
                     split_args)


class FakeSock:
    def __init__(self, data, step):
        self.data, self.step = data, step

    def recv(self, n):
        chunk, self.data = self.data[:min(n, self.step)], self.data[min(n, self.step):]
        return chunk


REPLIES = [
    (b"+OK\r\n", ("simple", "OK")),
    (b"-ERR bad thing\r\n", ("error", "ERR bad thing")),
    (b":-42\r\n", ("int", -42)),
    (b"$-1\r\n", ("nil", None)),
    (b"$0\r\n\r\n", ("bulk", b"")),
    (b"$4\r\na\r\nb\r\n", ("bulk", b"a\r\nb")),
    (b"*-1\r\n", ("nilarray", None)),
    (b"*0\r\n", ("array", [])),
    (b"*3\r\n$1\r\n0\r\n*2\r\n$1\r\nx\r\n$-1\r\n:5\r\n",
     ("array", [("bulk", b"0"), ("array", [("bulk", b"x"), ("nil", None)]), ("int", 5)])),
]


@pytest.mark.parametrize("step", [1, 2, 3, 7, 65536])
def test_reader_raw_and_parsed(step):
    stream = b"".join(r for r, _ in REPLIES)
    rd = RespReader(FakeSock(stream, step))
    for raw, parsed in REPLIES:
        got_raw, got = rd.read_reply()
        assert got_raw == raw
        assert got == parsed


def test_encoder():
    assert encode_command(["SET", b"k\x00", 12]) == b"*3\r\n$3\r\nSET\r\n$2\r\nk\x00\r\n$2\r\n12\r\n"
    assert encode_command([""]) == b"*1\r\n$0\r\n\r\n"


@pytest.mark.parametrize("line,args,notes", [
    ("SET a b", [b"SET", b"a", b"b"], []),
    ('SET "a b" "x\\ny\\x00\\xff\\"\\\\"', [b"SET", b"a b", b"x\ny\x00\xff\"\\"], []),
    ("SET 'it\\'s' ''", [b"SET", b"it's", b""], []),
    ('KEYS h\\?llo   #~unordered', [b"KEYS", b"h\\?llo"], ["unordered"]),
    ('TTL k #~ttl #~type', [b"TTL", b"k"], ["ttl", "type"]),
    ('ECHO "#~notanote"', [b"ECHO", b"#~notanote"], []),
    ('ECHO #hash', [b"ECHO", b"#hash"], []),
    ('ECHO "\\xzz"', [b"ECHO", b"xzz"], []),
    ("   ", [], []),
])
def test_split_args(line, args, notes):
    assert split_args(line) == (args, notes)


@pytest.mark.parametrize("line", ['ECHO "abc', "ECHO 'abc", 'ECHO "a"b', "TTL k #~ttl junk"])
def test_split_args_errors(line):
    with pytest.raises(CorpusSyntaxError):
        split_args(line)


def R(raw):
    return RespReader(FakeSock(raw, 65536)).read_reply()


@pytest.mark.parametrize("a,b,notes,same", [
    (b":5\r\n", b":5\r\n", set(), True),
    (b":5\r\n", b":6\r\n", set(), False),
    (b":999\r\n", b":1000\r\n", {"ttl"}, True),
    (b":-1\r\n", b":1000\r\n", {"ttl"}, False),
    (b":-2\r\n", b":-1\r\n", {"ttl"}, False),
    (b"*2\r\n$1\r\na\r\n$1\r\nb\r\n", b"*2\r\n$1\r\nb\r\n$1\r\na\r\n", {"unordered"}, True),
    (b"*2\r\n$1\r\na\r\n$1\r\nb\r\n", b"*2\r\n$1\r\nb\r\n$1\r\na\r\n", set(), False),
    (b"*2\r\n$1\r\na\r\n$1\r\na\r\n", b"*1\r\n$1\r\na\r\n", {"unordered"}, False),
    (b"*4\r\n$1\r\nf\r\n$1\r\n1\r\n$1\r\ng\r\n$1\r\n2\r\n",
     b"*4\r\n$1\r\ng\r\n$1\r\n2\r\n$1\r\nf\r\n$1\r\n1\r\n", {"pairs"}, True),
    (b"*4\r\n$1\r\nf\r\n$1\r\n1\r\n$1\r\ng\r\n$1\r\n2\r\n",
     b"*4\r\n$1\r\nf\r\n$1\r\n2\r\n$1\r\ng\r\n$1\r\n1\r\n", {"pairs"}, False),
    (b"*2\r\n$1\r\n0\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n",
     b"*2\r\n$1\r\n0\r\n*2\r\n$1\r\nb\r\n$1\r\na\r\n", {"scan"}, True),
    (b"*2\r\n$1\r\n0\r\n*0\r\n", b"*2\r\n$1\r\n7\r\n*0\r\n", {"scan"}, False),
    (b"$1\r\na\r\n", b"$2\r\nbb\r\n", {"type"}, True),
    (b"$1\r\na\r\n", b"$-1\r\n", {"type"}, False),
    (b"-ERR x\r\n", b"-ERR y\r\n", {"type"}, False),
    (b"-ERR x\r\n", b"-ERR x\r\n", {"unordered"}, True),
])
def test_compare(a, b, notes, same):
    assert compare_replies(R(a), R(b), notes) is same
