"""Managed containers of images from the image store."""
import tarfile

import pytest

from pycontain import containers, image
from pycontain.errors import ContainerError

pytestmark = pytest.mark.usefixtures("managed")


@pytest.fixture
def busybox_image(busybox, tmp_path, store_root):
    tar = tmp_path / "rootfs.tar"
    with tarfile.open(tar, "w") as t:
        t.add(busybox, arcname=".")
    ref = "local/lifecycle:1"
    image.import_(str(tar), ref, changes=["CMD echo from-image", "STOPSIGNAL SIGUSR1"], root=store_root)
    yield ref
    try:
        image.remove(ref, force=True, root=store_root)
    except ContainerError:
        pass


def test_container_of_an_image_holds_it_until_removed(busybox_image, store_root):
    c = containers.create(busybox_image)
    assert c.attrs["Config"]["StopSignal"] == "SIGUSR1"   # the image's StopSignal
    with pytest.raises(ContainerError):
        image.remove(busybox_image, root=store_root)        # in use by a container, as in docker
    c.start()
    assert c.wait(timeout=10) == 0
    assert c.logs() == b"from-image\n"
    assert containers.list(filters={"ancestor": busybox_image})[0].id == c.id
    c.remove()
    image.remove(busybox_image, root=store_root)            # released with the container
