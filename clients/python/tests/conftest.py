"""Fixtures: a fresh nats-server + hub per test (see hub.py)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from hub import Stack  # noqa: E402


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Records each phase's report on the test, so that a fixture can tell a failure."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture
def stack(request):
    s = Stack()
    try:
        s.start()
    except BaseException:
        s.close(failed=True)
        raise
    yield s
    report = getattr(request.node, "report_call", None)
    s.close(failed=report is not None and report.failed)
