"""Images pulled by a user who is not root: with a subordinate id range
(newuidmap, /etc/subuid) a layer's files get their image owners, mapped into
the user's range, and show up right inside a rootless container; without one
they all belong to the user (root inside). Overlay markers live in
user.overlay.* (the rootless overlay is mounted with userxattr), device
nodes are skipped, and removal works although the user does not own the files."""
import os
import stat
import tarfile

import pytest
import pycontain.image  # noqa: F401  (imported here: nobody cannot read the interpreter's files under /root)
import pycontain.image.layout  # noqa: F401
from imgtools import member, store_leftovers
from nobody import NOBODY, as_nobody
from regtools import base_extra_layer, layer_of_dir, write_oci_layout, _tar_gz

SUB_START, SUB_COUNT = 200000, 65536

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/bin/newuidmap"), reason="needs newuidmap (Debian: uidmap)")


def _owned_layer(outside):
    """Files of several owners, a setgid file, an owned symlink, a device node,
    an opaque directory, and a name that a later member turns into a symlink
    to a directory outside (its earlier file's owner must not follow it)."""
    members = [
        member("home/", tarfile.DIRTYPE, mode=0o755),
        member("home/app/", tarfile.DIRTYPE, mode=0o750, uid=1000, gid=1000),
        member("home/app/f", data=b"app data\n", uid=1000, gid=1000, mode=0o640),
        member("usr/", tarfile.DIRTYPE, mode=0o755),
        member("usr/sg", data=b"#!/bin/sh\n", uid=0, gid=42, mode=0o2755),
        member("usr/su", data=b"#!/bin/sh\n", uid=7, gid=0, mode=0o4755),
        member("link", tarfile.SYMTYPE, linkname="home", uid=7, gid=8),
        member("dev/", tarfile.DIRTYPE, mode=0o755),
        member("dev/mydevice", tarfile.CHRTYPE, devmajor=1, devminor=5, mode=0o666),
        member("var/", tarfile.DIRTYPE, mode=0o755),
        member("var/opaque/", tarfile.DIRTYPE, mode=0o755),
        member("var/opaque/.wh..wh..opq", data=b""),
        member("var/opaque/new", data=b"new\n"),
        member("esc/", tarfile.DIRTYPE, mode=0o755),
        member("esc/victim", data=b"x", uid=5, gid=5),
        member("esc", tarfile.SYMTYPE, linkname=str(outside)),
    ]
    for ti, data in members:
        if data is not None:
            ti.size = len(data)
    return _tar_gz(members)


@pytest.fixture
def layout(busybox, workdir, request):
    tmp_path = workdir / request.node.name
    tmp_path.mkdir()
    os.chmod(workdir, 0o755)
    os.chmod(tmp_path, 0o755)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("host file\n")
    os.chown(outside, NOBODY, NOBODY)
    os.chown(outside / "victim", NOBODY, NOBODY)
    lay = write_oci_layout(tmp_path / "layout", [
        ("amd64", [layer_of_dir(busybox), base_extra_layer(), _owned_layer(outside)], {})])
    for d, _dirs, files in os.walk(lay):
        os.chmod(d, 0o755)
        for f in files:
            os.chmod(os.path.join(d, f), 0o644)
    store = tmp_path / "store"
    store.mkdir()
    os.chown(store, NOBODY, NOBODY)
    return lay, store, outside


def _pull_and_run(lay, store, script):
    def fn():
        import pycontain.image
        from pycontain import Container
        [ref] = pycontain.image.load(str(lay), root=str(store))
        r = Container(ref, command=["sh", "-c", script], root=str(store)).run(capture_output=True, text=True)
        return [ref, r.returncode, r.stdout, r.stderr]
    return fn


def _remove_all(store):
    def fn():
        import pycontain.image
        for img in pycontain.image.list(root=str(store)):
            pycontain.image.remove(img.id, force=True, root=str(store))
        pycontain.image.prune(all_images=True, root=str(store))
        return sorted(os.listdir(os.path.join(store, "images", "layers")))
    return fn


SCRIPT = ("stat -c '%u:%g %a %n' /home/app /home/app/f /usr/sg /usr/su; stat -c '%u:%g %n' /link; "
          "ls /var/opaque; cat /home/app/f; ls /dev | grep -c mydevice; ls -l /esc 2>&1 | head -1")


def test_subordinate_ids_give_files_their_image_owners(layout, leakcheck):
    lay, store, outside = layout
    out = as_nobody(_pull_and_run(lay, store, SCRIPT), subids=(str(lay.parent), SUB_START, SUB_COUNT))
    assert "ok" in out, out
    ref, code, stdout, stderr = out["ok"]
    assert code == 0, stderr
    lines = stdout.splitlines()
    assert lines[0] == "1000:1000 750 /home/app"
    assert lines[1] == "1000:1000 640 /home/app/f"
    assert lines[2] == "0:42 2755 /usr/sg"       # set again after the chown that cleared it
    assert lines[3] == "7:0 4755 /usr/su"
    assert lines[4] == "7:8 /link"
    assert lines[5:7] == ["new", "app data"], stdout + stderr  # the opaque directory hides the lower layer's "old"
    assert lines[7] == "0"                     # the device node was skipped (a user cannot make one)

    # on the host: image id N > 0 is subordinate id SUB_START + N - 1, root is nobody
    layers = store / "images" / "layers"
    [top] = [d for d in layers.iterdir() if (d / "home/app").exists()]
    st = os.lstat(top / "home/app/f")
    assert (st.st_uid, st.st_gid) == (SUB_START + 999, SUB_START + 999)
    assert os.lstat(top / "usr/sg").st_gid == SUB_START + 41
    assert os.lstat(top / "usr").st_uid == NOBODY
    assert os.getxattr(top / "var/opaque", "user.overlay.opaque") == b"y"
    assert stat.S_ISLNK(os.lstat(top / "esc").st_mode)
    st = os.stat(outside / "victim")  # the chown did not follow the symlink the layer made
    assert (st.st_uid, st.st_gid) == (NOBODY, NOBODY)

    # export (and commit, which writes its layer the same way) reads them as
    # root of a user namespace: the tar carries the owners inside
    export = store / "export.tar"

    def export_image():
        import pycontain.image
        layers = pycontain.image.resolve_for_run(ref, str(store), pull="never").layers
        with open(export, "wb") as f:
            pycontain.image.export(layers, f)
        return True
    assert as_nobody(export_image, subids=(str(lay.parent), SUB_START, SUB_COUNT)) == {"ok": True}
    with tarfile.open(export) as tf:
        f = tf.getmember("home/app/f")
        assert (f.uid, f.gid, f.mode) == (1000, 1000, 0o640)
        assert tf.extractfile(f).read() == b"app data\n"
        sg = tf.getmember("usr/sg")
        assert (sg.uid, sg.gid, sg.mode) == (0, 42, 0o2755)
        assert tf.getmember("bin/busybox").uid == 0
        names = tf.getnames()
        assert "var/opaque/new" in names and "var/opaque/old" not in names

    # nobody cannot delete these files itself: the store does it in a user namespace
    left = as_nobody(_remove_all(store), subids=(str(lay.parent), SUB_START, SUB_COUNT))
    assert left == {"ok": []}
    assert store_leftovers(store) == []


def test_ids_beyond_the_range_are_a_clear_error(layout, leakcheck):
    lay, store, _ = layout
    out = as_nobody(_pull_and_run(lay, store, "true"), subids=(str(lay.parent), SUB_START, 100))
    assert out["error"] == ("ConfigError: the image has files owned by 1000:1000, outside this user's "
                            "subordinate id range (100 uids, 100 gids in /etc/subuid, /etc/subgid)")
    assert store_leftovers(store) == []
    assert os.listdir(store / "images" / "layers") == [] or all(
        not (d / "home/app").exists() for d in (store / "images" / "layers").iterdir())


def test_without_subordinate_ids_everything_is_root_inside(layout, leakcheck):
    lay, store, _ = layout
    out = as_nobody(_pull_and_run(lay, store, SCRIPT))
    assert "ok" in out, out
    _, code, stdout, stderr = out["ok"]
    assert code == 0, stderr
    lines = stdout.splitlines()
    assert lines[0] == "0:0 750 /home/app"
    assert lines[2] == "0:0 2755 /usr/sg"
    assert lines[5:7] == ["new", "app data"]
    assert as_nobody(_remove_all(store)) == {"ok": []}
