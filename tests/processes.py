"""fuse-overlayfs processes a test could leave behind. (A module of its own:
each test directory's conftest.py is a module named conftest, so none can be
imported by name from everywhere.)"""
import os


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
