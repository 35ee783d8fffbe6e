"""Fixtures for the builder tests: a base image in pycontain's store, and
(for the comparisons) a real dockerd 20.10 holding the same image."""
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "image"))

from buildtools import BASE, Dockerd  # noqa: E402
from regtools import layer_of_dir, skopeo, write_oci_layout  # noqa: E402


@pytest.fixture(scope="session")
def base_layout(workdir, busybox):
    """An OCI layout of the busybox rootfs (one layer, Env PATH, Cmd sh)."""
    return write_oci_layout(workdir / "build-base-layout", [("amd64", [layer_of_dir(busybox)], {})])


@pytest.fixture(scope="session")
def base_image(base_layout, store_root):
    from pycontain import image

    loaded = image.load(str(base_layout), root=store_root)
    image.tag(loaded[0] if loaded[0].startswith("sha256:") else loaded[0], BASE, root=store_root)
    return BASE


@pytest.fixture(scope="session")
def dockerd(workdir, base_layout):
    if not shutil.which("dockerd") or not shutil.which("docker") or not shutil.which("skopeo"):
        pytest.fail("the comparison tests need dockerd, docker and skopeo: apt-get install docker.io skopeo")
    d = workdir / "dockerd"
    d.mkdir()
    daemon = Dockerd(d)
    try:
        archive = workdir / "build-base.tar"
        skopeo("copy", f"oci:{base_layout}:multi", f"docker-archive:{archive}:{BASE}")
        daemon.docker("load", "-i", str(archive))
        yield daemon
    finally:
        daemon.stop()
