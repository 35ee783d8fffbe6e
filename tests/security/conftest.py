"""Fixtures for the security suite: a rootfs holding a static probe program,
and a process on the host for the container to try to reach."""
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def probe_binary(workdir):
    """tests/security/probe.c, built static once per session."""
    gcc = shutil.which("gcc")
    if not gcc:
        pytest.fail("the security tests need gcc and a static libc: apt-get install gcc libc6-dev")
    out = workdir / "probe"
    r = subprocess.run([gcc, "-static", "-O1", "-o", str(out), str(HERE / "probe.c"), "-lpthread"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"building probe.c failed:\n{r.stderr}")
    return out


@pytest.fixture(scope="session")
def rootfs(busybox, probe_binary, workdir):
    """The busybox rootfs plus /t/probe and /t/suid-probe (setuid root)."""
    dest = workdir / "security-rootfs"
    shutil.copytree(busybox, dest, symlinks=True)
    (dest / "t").mkdir()
    shutil.copy2(probe_binary, dest / "t" / "probe")
    shutil.copy2(probe_binary, dest / "t" / "suid-probe")
    os.chown(dest / "t" / "suid-probe", 0, 0)
    os.chmod(dest / "t" / "suid-probe", 0o4755)
    return dest


@pytest.fixture
def host_sleep():
    """A `sleep` on the host, started here and ended here by its pid."""
    p = subprocess.Popen(["sleep", "300"])
    yield p
    if p.poll() is None:
        os.kill(p.pid, signal.SIGKILL)
    p.wait()


@pytest.fixture
def host_marker(workdir):
    """A file on the host that no container may read."""
    path = workdir / f"host-secret-{os.getpid()}"
    path.write_text("host secret\n")
    yield path
    path.unlink()
