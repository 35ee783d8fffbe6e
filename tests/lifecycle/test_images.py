"""Managed containers of images from the image store."""
import io
import subprocess
import sys
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


def cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "pycontain", *args], capture_output=True, **kw)


def test_export_commit_and_cp_of_a_container_made_from_an_image(busybox_image, tmp_path, store_root):
    """docker export $(docker create IMAGE) > f.tar: the image's layers plus the container's changes."""
    c = containers.create(busybox_image, ["sh", "-c", "echo made > /new; rm /etc/group"])
    c.start()
    assert c.wait(timeout=10) == 0
    r = cli("export", c.id)
    assert r.returncode == 0, r.stderr
    with tarfile.open(fileobj=io.BytesIO(r.stdout)) as t:
        names = {n.lstrip("./") for n in t.getnames()}
        new = t.extractfile(next(m for m in t.getmembers() if m.name.lstrip("./") == "new")).read()
    assert new == b"made\n"
    assert "bin/busybox" in names and "etc/passwd" in names and "etc/group" not in names
    r = cli("commit", c.id, "local/committed-from-image:1")
    assert r.returncode == 0, r.stderr
    try:
        d = containers.run("local/committed-from-image:1", ["sh", "-c", "cat /new; test -e /etc/group || echo gone"])
        assert d.wait(timeout=10) == 0
        assert d.logs() == b"made\ngone\n"
        d.remove()
    finally:
        image.remove("local/committed-from-image:1", root=store_root)
    c.remove()


# cp's helper extracts with tarfile's filter=, which Debian's Python 3.11.2 lacks (3.11.4
# added it): issue 20 makes copy.py work there; then this marker goes.
def test_cp_into_and_out_of_a_container_made_from_an_image(busybox_image, tmp_path):
    c = containers.create(busybox_image, ["sh", "-c", "echo made > /new"])
    try:
        c.start()
        assert c.wait(timeout=10) == 0
        r = cli("cp", f"{c.id}:/new", str(tmp_path / "out"))
        assert r.returncode == 0, r.stderr
        assert (tmp_path / "out").read_bytes() == b"made\n"
        (tmp_path / "in").write_text("copied in\n")
        r = cli("cp", str(tmp_path / "in"), f"{c.id}:/etc/copied")   # into the image's /etc
        assert r.returncode == 0, r.stderr
        r = cli("export", c.id)
        with tarfile.open(fileobj=io.BytesIO(r.stdout)) as t:
            member = next(m for m in t.getmembers() if m.name.lstrip("./") == "etc/copied")
            assert t.extractfile(member).read() == b"copied in\n"
    finally:
        c.remove()


def test_the_image_is_pinned_at_create(busybox, busybox_image, tmp_path, store_root):
    """docker's rule: a container runs the image it was created from, whatever
    happens to the name later; inspect shows the id and the name as given."""
    first = image.get(busybox_image, root=store_root).id
    c = containers.create(busybox_image, ["sh", "-c", "cat /marker 2>/dev/null || echo first"])
    assert c.attrs["Image"] == first
    assert c.attrs["Config"]["Image"] == busybox_image
    # the tag moves to another image with other content
    tar = tmp_path / "other.tar"
    marker = tmp_path / "marker"
    marker.write_text("second\n")
    with tarfile.open(tar, "w") as t:
        t.add(busybox, arcname=".")
        t.add(marker, arcname="marker")
    second = image.import_(str(tar), busybox_image, root=store_root)
    assert second != first
    try:
        c.start()
        assert c.wait(timeout=10) == 0
        assert c.logs() == b"first\n"
        assert c.attrs["Image"] == first
        # removing the last name of the image it runs (forced: a container
        # uses it) untags it and keeps the image for the container, as docker does
        image.tag(first, "local/pinned-alias:1", root=store_root)
        image.remove("local/pinned-alias:1", force=True, root=store_root)
        image.remove(busybox_image, force=True, root=store_root)
        c.start()
        assert c.wait(timeout=10) == 0
        assert c.logs() == b"first\nfirst\n"
        assert containers.list(all=True, filters={"ancestor": busybox_image})[0].id == c.id
    finally:
        c.remove()
        for ref in (first, second):
            try:
                image.remove(ref, force=True, root=store_root)
            except ContainerError:
                pass
