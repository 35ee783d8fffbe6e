"""Processes a test waits for or could leave behind: fuse-overlayfs, monitors. (A module of its own:
each test directory's conftest.py is a module named conftest, so none can be
imported by name from everywhere.)"""
import os
import time


def fuse_processes(path) -> list:
    """fuse-overlayfs processes (anyone's child) working on layers under path."""
    found = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if argv[0].endswith(b"/fuse-overlayfs") and str(path).encode() in b" ".join(argv):
                found.append(int(p))
    return found


def monitor_pids(store_root) -> set:
    """Monitors working for store_root: Python's (python -m pycontain.managed.monitor) and C's
    (pycontain-monitor, and the `python -m pycontain.managed.cmonitor finish` it becomes)."""
    found = set()
    want = f"PYCONTAIN_ROOT={store_root}".encode()
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmdline = f.read()
            if not (b"pycontain.managed.monitor" in cmdline or cmdline.startswith(b"pycontain-monitor\0")
                    or b"pycontain.managed.cmonitor" in cmdline):
                continue
            with open(f"/proc/{p}/environ", "rb") as f:
                if want in f.read().split(b"\0"):
                    found.add(int(p))
        except OSError:
            pass
    return found


def wait_for(predicate, timeout=10.0, interval=0.02):
    """predicate()'s first true value within timeout, else its last value."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()
