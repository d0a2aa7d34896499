import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cairnlib import CAIRN_BIN, Node  # noqa: E402
from cluster import Cluster  # noqa: E402

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def assert_no_sanitizer_report(n):
    """Under `make check-asan` a sanitizer writes its report to the node's
    log; any report fails the test that ran the node."""
    log = n.log()
    for mark in SANITIZER_MARKS:
        if mark in log:
            i = log.index(mark)
            pytest.fail(f"sanitizer report in {n.log_path}:\n{log[max(0, i - 200):i + 3000]}")


@pytest.fixture
def node(tmp_path):
    """A fresh node (fsync everysec) in a temp dir, stopped afterwards."""
    if not os.path.exists(CAIRN_BIN):
        pytest.skip(f"{CAIRN_BIN} not built")
    n = Node(tmp_path).start()
    yield n
    n.stop()
    assert_no_sanitizer_report(n)


@pytest.fixture
def make_node(tmp_path):
    """Factory: make_node(fsync=..., args=[...], name=...) -> started Node;
    every node made is stopped at teardown."""
    made = []

    def make(start=True, **kw):
        n = Node(tmp_path, **kw)
        made.append(n)
        return n.start() if start else n

    yield make
    for n in made:
        if n.alive():
            n.stop()
        n._close_log()
    for n in made:
        assert_no_sanitizer_report(n)


@pytest.fixture
def make_cluster(tmp_path):
    """Factory: make_cluster(manager_args=(), **Cluster kwargs) -> a started
    replicated cluster (cluster.py); every one made is stopped at teardown
    and its logs checked for sanitizer reports."""
    made = []

    def make(manager_args=(), **kw):
        c = Cluster(base=tmp_path, **kw)
        for m in c.managers:
            m.args += list(manager_args)
        made.append(c)
        try:
            return c.start()
        except BaseException:
            print(c.logs_tail())
            raise

    yield make
    for c in made:
        c.stop_all()
    for c in made:
        report = c.sanitizer_report()
        if report:
            pytest.fail(report)
