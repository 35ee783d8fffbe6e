"""Fixtures for the image tests."""
import pytest

from imgtools import tar_of_dir


@pytest.fixture(scope="session")
def busybox_tar(busybox, workdir):
    return tar_of_dir(busybox, workdir / "busybox-rootfs.tar.gz", "gzip")
