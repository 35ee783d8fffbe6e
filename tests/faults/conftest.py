"""Fixtures for the fault lane: each test gets a store of its own (it may
damage it, fill it or kill things in it), an image in it, and a CLI that
runs as a user's would.

PYCONTAIN_FAULT_ROUNDS sets how many random kills each operation takes
(default: a few, sized for CI; raise it for a longer campaign).
PYCONTAIN_FAULT_SEED fixes the seed (default: random, printed)."""
import os
import random
import subprocess
import sys
import tarfile

from pathlib import Path

import pytest

from pycontain import state

sys.path.insert(0, str(Path(__file__).parent.parent / "image"))
from regtools import Registry  # noqa: E402  (tests/image's real docker-registry on loopback)

from .leaks import figures  # noqa: E402
from processes import wait_for  # noqa: F401  (the tests import them from here)

SEED: list = []   # the session's seed, for the summary
ROUNDS = int(os.environ.get("PYCONTAIN_FAULT_ROUNDS", "3"))


def pycontain(*args, root, timeout=60, **kw):
    env = dict(os.environ, PYCONTAIN_ROOT=str(root), PYCONTAIN_NETWORK="none")
    return subprocess.run([sys.executable, "-m", "pycontain", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, **kw)


def start_cli(*args, root, **kw):
    env = dict(os.environ, PYCONTAIN_ROOT=str(root), PYCONTAIN_NETWORK="none")
    return subprocess.Popen([sys.executable, "-m", "pycontain", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **kw)


def one_line_error(r, *words):
    """The run failed with one line on stderr, no traceback, naming words."""
    assert r.returncode != 0, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def root(tmp_path, monkeypatch):
    """A store root of the test's own; the library and CLIs use it."""
    r = tmp_path / "store"
    r.mkdir()
    monkeypatch.setenv("PYCONTAIN_ROOT", str(r))
    yield r
    state.close_stores()
    # whatever the test left running in its store is stopped
    subprocess.run([sys.executable, "-m", "pycontain", "rm", "-f", *_ids(r)], capture_output=True,
                   env=dict(os.environ, PYCONTAIN_ROOT=str(r)))


def _ids(root):
    d = root / "containers"
    return [n for n in os.listdir(d) if len(n) == 64] if d.is_dir() else []


@pytest.fixture(scope="session")
def rootfs_tar(busybox, workdir):
    tar = workdir / "faults-rootfs.tar"
    if not tar.exists():
        with tarfile.open(tar, "w") as t:
            t.add(busybox, arcname=".")
    return tar


@pytest.fixture
def image_ref(root, rootfs_tar):
    """A one-layer busybox image in the test's store."""
    r = pycontain("import", str(rootfs_tar), "local/faults:1", root=root)
    assert r.returncode == 0, r.stderr
    return "local/faults:1"


@pytest.fixture(scope="session")
def seed():
    s = int(os.environ.get("PYCONTAIN_FAULT_SEED") or random.SystemRandom().randrange(1 << 32))
    print(f"\nfault seed: {s} (PYCONTAIN_FAULT_SEED={s} repeats it)")
    SEED.append(s)
    return s


@pytest.fixture(scope="session")
def registry(workdir):
    d = workdir / "faults-registry"
    d.mkdir()
    reg = Registry(d, None)
    yield reg
    reg.stop()


def pytest_terminal_summary(terminalreporter):
    lines = figures()   # the kill lane's tally, filled as its tests ran
    if lines:
        terminalreporter.section("fault lane")
        if SEED:
            terminalreporter.write_line(f"seed: {SEED[0]} (PYCONTAIN_FAULT_SEED={SEED[0]} repeats it), "
                                        f"rounds per operation: {ROUNDS}")
        for line in lines:
            terminalreporter.write_line(line)
