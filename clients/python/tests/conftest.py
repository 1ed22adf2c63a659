"""Fixtures: a fresh nats-server + hub per test (see hub.py)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from hub import Stack  # noqa: E402


@pytest.fixture
def stack():
    s = Stack()
    try:
        s.start()
        yield s
    finally:
        s.close()
