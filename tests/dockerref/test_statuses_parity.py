"""Failures outside run and create have docker's status: 1 for what its
daemon refuses (a failed pull, load or build context, a name in use, a
missing path in cp), 126 for an exec that cannot start; side by side with
dockerd 20.10, found by trying each verb against both."""
import pytest

from .conftest import pycontain

pytestmark = pytest.mark.usefixtures("clean_both")


@pytest.fixture
def made(dockerd):
    for side in (dockerd.docker, pycontain):
        assert side("create", "--name", "made", "--network", "none", "busybox", "sleep", "30").returncode == 0
        assert side("run", "-d", "--name", "up", "--network", "none", "busybox", "sleep", "30").returncode == 0


@pytest.mark.parametrize("argv", [
    ("pull", "127.0.0.1:1/nosuch"),
    ("load", "-i", "/nonexistent.tar"),
    ("import", "/nonexistent.tar"),
    ("build", "/nonexistentdir"),
    ("network", "create", "none"),
    ("rename", "made", "up"),
    ("create", "--name", "made", "--network", "none", "busybox"),   # a name in use: create's 1 (run's 125)
    ("cp", "up:/nosuchfile", "/tmp/pycontain-nosuch-dest"),
    ("cp", "/nonexistent", "up:/"),
    ("exec", "-u", "nosuchuser", "up", "true"),
    ("exec", "-w", "rel", "up", "true"),
    ("exec", "made", "true"),
    ("start", "nosuch"),
    ("volume", "rm", "nosuchvol"),
])
def test_the_same_failure_has_docker_s_status(dockerd, made, argv):
    d, p = dockerd.docker(*argv), pycontain(*argv)
    assert d.returncode != 0
    assert p.returncode == d.returncode, (p.stderr, d.stderr)
    # one line of error, last (a pull says "Using default tag: latest" first, as docker's)
    assert "Traceback" not in p.stderr and p.stderr.strip().splitlines()[-1].startswith("pycontain: "), p.stderr
