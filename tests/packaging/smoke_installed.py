"""Smoke test of an installed pycontain wheel that needs no namespaces: run
by cibuildwheel inside its build container (where unshare and mount are not
allowed), so it checks what can be checked there.

    python tests/packaging/smoke_installed.py

Exits non-zero with a one-line reason on the first failure.
"""
import os
import platform
import subprocess
import sys
from importlib import resources


def fail(why):
    sys.exit(f"smoke test failed: {why}")


def main():
    import pycontain
    import pycontain._nsexec  # the cffi extension loads on this interpreter

    here = os.path.dirname(os.path.abspath(__file__))
    if os.path.dirname(pycontain.__file__).startswith(os.path.dirname(os.path.dirname(here)) + os.sep):
        fail(f"imported the source tree, not the wheel: {pycontain.__file__}")

    bin_dir = resources.files("pycontain") / "_bin"
    init, hello = str(bin_dir / "pycontain-init"), str(bin_dir / "hello-world" / "hello")
    for prog in (init, hello):
        with open(prog, "rb") as f:
            if f.read(4) != b"\x7fELF":
                fail(f"{prog} is not an ELF program")
        if not os.access(prog, os.X_OK):
            fail(f"{prog} is not executable")

    r = subprocess.run([hello], capture_output=True, text=True)
    if r.returncode != 0 or "Hello from pycontain!" not in r.stdout:
        fail(f"hello-world program: status {r.returncode}, output {r.stdout[:80]!r}")
    r = subprocess.run([init, "--", sys.executable, "-c", "raise SystemExit(3)"])
    if r.returncode != 3:
        fail(f"pycontain-init did not pass the exit status through: {r.returncode}")

    r = subprocess.run([str(bin_dir / "pycontain-monitor")], capture_output=True, text=True)
    if r.returncode != 125 or "pycontain-monitor: --pid, --dir and --log are required" not in r.stderr:
        fail(f"pycontain-monitor without arguments: status {r.returncode}, {r.stderr[:80]!r}")

    print(f"ok: pycontain {pycontain.__file__} on Python {platform.python_version()} {platform.machine()}")


if __name__ == "__main__":
    main()
