import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cairnlib import CAIRN_BIN, Node  # noqa: E402


@pytest.fixture
def node(tmp_path):
    """A fresh node (fsync everysec) in a temp dir, stopped afterwards."""
    if not os.path.exists(CAIRN_BIN):
        pytest.skip(f"{CAIRN_BIN} not built")
    n = Node(tmp_path).start()
    yield n
    n.stop()


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
            n.kill()
        n._close_log()
