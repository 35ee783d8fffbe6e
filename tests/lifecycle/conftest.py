"""Fixtures for the lifecycle tests: the CLI as a separate process, and a
check that every managed container, monitor, mount and record made by a test
is gone when it ends."""
import os
import subprocess
import sys
import time

import pytest

from pycontain import containers


def pycontain(*args, timeout=60, **kw):
    """The CLI as a user runs it: its own process, our store root."""
    return subprocess.run([sys.executable, "-m", "pycontain", *args], capture_output=True, text=True,
                          timeout=timeout, **kw)


def monitor_pids(store_root) -> set:
    """Monitors (python -m pycontain.managed.monitor) working for our store root."""
    found = set()
    want = f"PYCONTAIN_ROOT={store_root}".encode()
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read()
            if b"pycontain.managed.monitor" not in cmd:
                continue
            with open(f"/proc/{p}/environ", "rb") as f:
                if want in f.read().split(b"\0"):
                    found.add(int(p))
        except OSError:
            pass
    return found


def wait_for(predicate, timeout=10.0, interval=0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


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
