"""What the Engine API tests share (a module of its own name: every test
directory has a conftest.py, and which one `import conftest` finds depends
on what the run collected before)."""
import os
import subprocess
import sys
import time
from pathlib import Path

IMAGE = "apitest/busybox:latest"
DOCKER = "/usr/local/bin/docker" if os.path.exists("/usr/local/bin/docker") else "docker"


def start_service(sock: Path, log: Path, *extra, wrap=()):
    with open(log, "wb") as out:
        proc = subprocess.Popen([*wrap, sys.executable, "-m", "pycontain", "system", "service",
                                 "--socket", f"unix://{sock}", *extra], stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while not sock.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise RuntimeError("the service did not start: " + log.read_text())
        time.sleep(0.02)
    return proc


def stop_service(proc):
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
