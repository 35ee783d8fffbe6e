"""Volumes of a user who is not root: under the user's own store root, owned
by the user (root inside); with a subordinate id range the copy-up keeps the
image's owners, mapped into the range, and removal works although the user
does not own those files itself."""
import os
import shutil

import pytest

import pycontain.image  # noqa: F401  (imported here: nobody cannot read the interpreter's files under /root)
import pycontain.image.make  # noqa: F401
import pycontain.image.unpack  # noqa: F401
import pycontain.volumes  # noqa: F401
from nobody import NOBODY, as_nobody

from .test_volumes import image_tar

SUB_START, SUB_COUNT = 300000, 65536
SCRIPT = "stat -c '%u:%g %a %n' /data /data/conf /data/sub/deep; touch /data/new; stat -c '%u:%g %n' /data/new"


@pytest.fixture
def nobody_store(busybox, workdir, request):
    d = workdir / request.node.name
    d.mkdir()
    os.chmod(workdir, 0o755)
    os.chmod(d, 0o755)
    image_tar(busybox, d / "rootfs.tar")
    os.chmod(d / "rootfs.tar", 0o644)
    store = d / "store"
    store.mkdir()
    os.chown(store, NOBODY, NOBODY)
    yield d, store
    shutil.rmtree(d)


def _use_volume(tar, store):
    def fn():
        from pycontain import Container, Mount, image, volumes

        ref = image.import_(str(tar), "local/rootless-volumes:1", root=str(store))
        r = Container(ref, command=["sh", "-c", SCRIPT], root=str(store),
                      mounts=[Mount("rlvol", "/data", type="volume")]).run(capture_output=True, text=True)
        return [r.returncode, r.stdout, r.stderr, volumes.get("rlvol", root=str(store)).mountpoint]
    return fn


def _remove_all(store):
    def fn():
        from pycontain import image, volumes

        volumes.remove("rlvol", root=str(store))
        image.remove("local/rootless-volumes:1", force=True, root=str(store))
        image.prune(all_images=True, root=str(store))
        return sorted(os.listdir(os.path.join(store, "volumes")))
    return fn


def host_owners(data):
    """Owners on the host (read as root: the user may not enter the volume)."""
    return {name: [os.lstat(os.path.join(data, name)).st_uid, os.lstat(os.path.join(data, name)).st_gid]
            for name in (".", "conf", "new")}


def test_subordinate_ids_keep_the_image_owners_in_the_volume(nobody_store, leakcheck):
    if not os.path.exists("/usr/bin/newuidmap"):
        pytest.skip("needs newuidmap (Debian: uidmap)")
    d, store = nobody_store
    subids = (str(d), SUB_START, SUB_COUNT)
    out = as_nobody(_use_volume(d / "rootfs.tar", store), subids=subids)
    assert "ok" in out, out
    code, stdout, stderr, data = out["ok"]
    host = host_owners(data)
    assert code == 0, stderr
    assert stdout.splitlines() == ["1000:50 750 /data", "1000:1000 640 /data/conf", "2:3 600 /data/sub/deep",
                                   "0:0 /data/new"]
    # on the host: image id N > 0 is subordinate id SUB_START + N - 1, root inside is the user
    assert host["."] == [SUB_START + 999, SUB_START + 49]
    assert host["conf"] == [SUB_START + 999, SUB_START + 999]
    assert host["new"] == [NOBODY, NOBODY]
    # removed, although nobody does not own those files itself
    assert as_nobody(_remove_all(store), subids=subids) == {"ok": [".lock"]}


def test_without_subordinate_ids_the_volume_is_the_users_own(nobody_store, leakcheck):
    d, store = nobody_store
    out = as_nobody(_use_volume(d / "rootfs.tar", store))
    assert "ok" in out, out
    code, stdout, stderr, data = out["ok"]
    host = host_owners(data)
    assert code == 0, stderr
    assert stdout.splitlines() == ["0:0 750 /data", "0:0 640 /data/conf", "0:0 600 /data/sub/deep",
                                   "0:0 /data/new"]
    assert host == {".": [NOBODY, NOBODY], "conf": [NOBODY, NOBODY], "new": [NOBODY, NOBODY]}
    assert as_nobody(_remove_all(store)) == {"ok": [".lock"]}
