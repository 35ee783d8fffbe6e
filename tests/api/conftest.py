"""Fixtures for the Engine API tests: `pycontain system service` as its own
process on a socket in a temp dir, our store root, a busybox image made
here, and a check that each test leaves no container or monitor behind."""
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from apitools import DOCKER, IMAGE, start_service, stop_service

from pycontain import containers, image
from processes import monitor_pids  # noqa: F401  (the tests import them from here)

sys.path.insert(0, str(Path(__file__).parent.parent / "image"))  # regtools: the loopback registry


@pytest.fixture(scope="session")
def api_image(busybox, workdir, store_root):
    tar = workdir / "api-rootfs.tar"
    with tarfile.open(tar, "w") as t:
        t.add(busybox, arcname=".")
    image.import_(str(tar), IMAGE, changes=['CMD ["sh"]'], root=store_root)
    return IMAGE


@pytest.fixture(scope="session")
def service(workdir, store_root, api_image):
    """The socket's path; the service runs for the whole session."""
    d = workdir / "api"
    d.mkdir()
    sock = d / "docker.sock"
    proc = start_service(sock, d / "service.log", "--time", "0")
    yield sock
    stop_service(proc)
    assert not sock.exists(), "the service left its socket behind"


@pytest.fixture
def docker_env(service, tmp_path):
    """The environment the docker CLI runs in: our socket, a config dir of its own."""
    return dict(os.environ, DOCKER_HOST=f"unix://{service}", DOCKER_CONFIG=str(tmp_path / "docker-config"))


@pytest.fixture
def docker(docker_env):
    def run(*args, timeout=60, **kw):
        return subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout, env=docker_env, **kw)
    return run


@pytest.fixture(autouse=True)
def no_containers_left(store_root):
    """Whatever a test made through the API is gone when it ends (a failed test's too)."""
    yield
    left = containers.list_containers(all=True)
    for c in left:
        try:
            c.remove(force=True)
        except containers.NoSuchContainer:
            pass
    deadline = time.monotonic() + 10
    while monitor_pids(store_root) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not monitor_pids(store_root), "monitors left"
    assert not left, f"containers left: {[c.name for c in left]}"
