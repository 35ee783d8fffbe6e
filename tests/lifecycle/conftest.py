"""Fixtures for the lifecycle tests: the CLI as a separate process, and a
check that every managed container, monitor, mount and record made by a test
is gone when it ends."""
import subprocess
import sys

import pytest

from pycontain import containers
from processes import monitor_pids, wait_for  # noqa: F401  (the tests import them from here)


def pycontain(*args, timeout=60, **kw):
    """The CLI as a user runs it: its own process, our store root."""
    return subprocess.run([sys.executable, "-m", "pycontain", *args], capture_output=True, text=True,
                          timeout=timeout, **kw)


@pytest.fixture
def warm_store(store_root):
    """The process's one record database connection, opened before the leak
    check takes its snapshot of our file descriptors."""
    return containers.shared_store()


@pytest.fixture
def managed(warm_store, leakcheck, store_root):
    """Removes whatever containers a test left (failed tests too), then
    checks that no record, monitor, container directory or mount is left."""
    yield
    for c in containers.list(all=True):
        try:
            c.remove(force=True)
        except containers.NoSuchContainer:
            pass
    assert containers.shared_store().list() == []
    assert wait_for(lambda: not monitor_pids(store_root), 10), f"monitors left: {monitor_pids(store_root)}"
