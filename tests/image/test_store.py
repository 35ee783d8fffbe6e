"""The store: import, resolve for run, names, removal with garbage collection,
commit and export, concurrency between processes, a killed writer."""
import inspect
import io
import os
import signal
import subprocess
import sys
import tarfile
import textwrap
import time

import pytest

from pycontain import ConfigError, Container, ContainerError, ImageNotFound, image
from pycontain.image.unpack import LayerError

from imgtools import make_tar, member, store_leftovers


@pytest.fixture
def root(tmp_path):
    """A store of its own per test, so that counts are exact."""
    return tmp_path / "root"


def store_files(root):
    d = root / "images"
    return sorted(os.listdir(d / "blobs" / "sha256")), sorted(os.listdir(d / "layers"))


def test_import_resolve_and_run(root, busybox_tar, leakcheck):
    image_id = image.import_(busybox_tar, "example.com/bb:1", changes=["CMD echo imported", "ENV A=1"], root=root)
    assert image_id.startswith("sha256:")
    ri = image.resolve_for_run("example.com/bb:1", root=root, pull="never")
    assert len(ri.layers) == 1 and os.path.isfile(os.path.join(ri.layers[0], "bin/busybox"))
    assert ri.config["Cmd"] == ["/bin/sh", "-c", "echo imported"]
    assert ri.config["Env"] == ["A=1"]
    # the core resolves names through the store: a container runs from the imported image
    r = Container("example.com/bb:1", root=root).run(capture_output=True)
    assert (r.returncode, r.stdout) == (0, b"imported\n")
    # users come from the image's own /etc/passwd, read from the unpacked layers
    r = Container("example.com/bb:1", user="user", command=["sh", "-c", "id -u; id -g; ls /bin/busybox"],
                  root=root).run(capture_output=True)
    assert r.stdout == b"1000\n1000\n/bin/busybox\n", r.stderr
    # by id and id prefix too
    assert image.get(image_id[7:19], root=root).id == image_id
    assert image.get(image_id, root=root).names == ("example.com/bb:1",)


def test_layer_shared_and_unpacked_once(root, busybox_tar):
    a = image.import_(busybox_tar, "a", root=root)
    blobs, layers = store_files(root)
    ino = os.stat(root / "images" / "layers" / layers[0]).st_ino
    b = image.import_(busybox_tar, "b", root=root)
    assert a != b  # two imports: two images (their creation times differ), one shared layer
    assert store_files(root)[1] == layers
    assert os.stat(root / "images" / "layers" / layers[0]).st_ino == ino


def test_unknown_images_and_bad_names(root):
    with pytest.raises(ImageNotFound):
        image.resolve_for_run("nothing-here", root=root, pull="never")
    with pytest.raises(ImageNotFound):
        image.get("sha256:" + "0" * 64, root=root)
    with pytest.raises(ConfigError, match="invalid reference format"):
        image.get("UPPER/case", root=root)
    with pytest.raises(ConfigError, match="pull policy"):
        image.resolve_for_run("busybox", root=root, pull="sometimes")


def test_tag_rmi_and_gc(root, busybox_tar):
    image_id = image.import_(busybox_tar, "one", root=root)
    assert image.tag("one", "localhost:5000/two:v2", root=root) == "localhost:5000/two:v2"
    assert sorted(image.get(image_id, root=root).names) == ["docker.io/library/one:latest", "localhost:5000/two:v2"]
    with pytest.raises(image.ImageInUse, match="referenced in multiple repositories"):
        image.remove(image_id[7:19], root=root)
    assert image.remove("one", root=root) == [("Untagged", "one:latest")]
    assert store_files(root) != ([], [])
    image.store.ImageStore(root).hold(image_id, "c1")
    with pytest.raises(image.ImageInUse, match="used by container c1"):
        image.remove("localhost:5000/two:v2", root=root)
    image.release("c1", root=root)
    out = image.remove("localhost:5000/two:v2", root=root)
    assert out == [("Untagged", "localhost:5000/two:v2"), ("Deleted", image_id)]
    assert store_files(root) == ([], [])
    assert image.list(root=root) == []


def test_prune_removes_dangling(root, busybox_tar):
    kept = image.import_(busybox_tar, "kept", root=root)
    dangling = image.import_(busybox_tar, None, changes=["CMD other"], root=root)
    out, reclaimed = image.prune(root=root)
    assert reclaimed > 0  # its config and manifest blobs
    assert out == [("Deleted", dangling)]
    assert [i.id for i in image.list(root=root)] == [kept]


def test_hostile_import_leaves_nothing(root, tmp_path):
    bad = tmp_path / "bad.tar"
    bad.write_bytes(make_tar([member("ok", data=b"x"), member("../../evil", data=b"x")], "gzip"))
    with pytest.raises(LayerError, match="'../../evil'"):
        image.import_(bad, "bad", root=root)
    assert store_files(root)[1] == []
    assert store_leftovers(root) == []
    assert image.list(root=root) == []
    with pytest.raises(ConfigError, match="unsupported change"):
        image.import_(bad, "bad", changes=["RUN rm -rf /"], root=root)


def test_commit_and_export(root, busybox_tar, tmp_path, leakcheck):
    """A container's changes (new file, deleted file, deleted and replaced
    directory, hardlink) become a layer with whiteouts; export shows the merge."""
    image.import_(busybox_tar, "base", root=root)
    ri = image.resolve_for_run("base", root=root)
    # the upper dir of a real overlay mount, changed by a real container
    script = ("echo new > /new && rm /etc/group && rm -r /home/user && mkdir -p /home/fresh && "
              "rm -rf /tmp && mkdir /tmp && touch /tmp/only && ln /new /new-link")
    # the core keeps a container's writable layer on disk only when asked (writable_layer="disk")
    disk = {"writable_layer": "disk"} if "writable_layer" in inspect.signature(Container).parameters else {}
    c = Container("base", command=["sh", "-c", script], root=root, remove=False, **disk)
    r = c.run()
    assert r.returncode == 0
    exported = io.BytesIO()
    c.export(exported)  # docker export: the container's merged filesystem
    new_id = c.commit("derived:1", changes=["CMD cat /new"], message="test")
    c.remove()
    with pytest.raises(ContainerError, match="no filesystem"):
        c.commit("again:1")
    derived = image.resolve_for_run("derived:1", root=root)
    assert len(derived.layers) == 2 and derived.layers[1] == ri.layers[0]
    top = derived.layers[0]
    assert os.path.exists(os.path.join(top, "etc/group")) and os.lstat(os.path.join(top, "etc/group")).st_rdev == 0
    assert os.getxattr(os.path.join(top, "tmp"), "trusted.overlay.opaque") == b"y"
    out = Container("derived:1", command=["sh", "-c", "cat /new; ls /tmp; test -e /etc/group || echo gone; ls /home; stat -c %h /new"],
                    root=root).run(capture_output=True, text=True)
    assert out.stdout == "new\nonly\ngone\nfresh\n2\n"
    cfg = image.inspect("derived:1", root=root)
    assert cfg["Config"]["Cmd"] == ["/bin/sh", "-c", "cat /new"] and len(cfg["RootFS"]["diff_ids"]) == 2
    assert image.get(new_id, root=root).id == new_id

    buf = io.BytesIO()
    image.export(derived.layers, buf)
    for b in (buf, exported):
        b.seek(0)
    with tarfile.open(fileobj=exported) as tf:
        assert sorted(tf.getnames()) == sorted(tarfile.open(fileobj=buf).getnames())
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tf:
        names = set(tf.getnames())
        assert {"new", "new-link", "tmp/only", "home/fresh", "bin/busybox", "etc/passwd"} <= names
        assert not names & {"etc/group", "home/user", ".wh.group"}
        assert not any(".wh." in n for n in names)
        assert tf.getmember("new-link").islnk() or tf.getmember("new").islnk()


CONCURRENT = textwrap.dedent("""
    import os, sys
    from pycontain import ImageNotFound, image
    root, tar, name, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    holder = f"proc-{os.getpid()}"
    for i in range(rounds):
        image.import_(tar, name, root=root)
        try:
            ri = image.resolve_for_run(name, root=root, pull="never", holder=holder)
        except ImageNotFound:
            continue  # the other process removed the name in between: fine, as in docker
        # held: no concurrent rmi or prune may collect its layers now
        assert os.path.isfile(os.path.join(ri.layers[0], "bin/busybox"))
        image.release(holder, root=root)
        if i % 2:
            try:
                image.remove(name, root=root)
            except (ImageNotFound, image.ImageInUse):
                pass  # removed or held by the other process
""")


def test_four_processes_import_resolve_remove(root, busybox_tar):
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT, str(root), str(busybox_tar), n, "4"])
             for n in ("shared", "shared", "p3", "p4")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    image.import_(busybox_tar, "after", root=root)
    ri = image.resolve_for_run("after", root=root, pull="never")
    assert os.path.isfile(os.path.join(ri.layers[0], "bin/busybox"))
    # re-imports under the same name left dangling images, as in docker
    image.prune(all_images=True, root=root)
    assert store_files(root) == ([], [])
    assert store_leftovers(root) == []


def test_killed_writer_leaves_nothing_in_the_way(root, busybox_tar, tmp_path):
    """A process killed while importing (mid-unpack) leaves tmp entries; the next
    writer that finds the store idle clears them and imports cleanly."""
    fifo = tmp_path / "slow.fifo"
    os.mkfifo(fifo)
    p = subprocess.Popen([sys.executable, "-c",
                          "import sys; from pycontain import image; image.import_(sys.argv[1], 'slow', root=sys.argv[2])",
                          str(fifo), str(root)])
    with open(fifo, "wb") as w:
        w.write(open(busybox_tar, "rb").read()[:300000])
        w.flush()
        deadline = time.time() + 10
        while not store_leftovers(root) and time.time() < deadline:
            time.sleep(0.02)
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
    assert store_leftovers(root) != []
    image.import_(busybox_tar, "slow", root=root)
    assert store_leftovers(root) == []
    assert image.resolve_for_run("slow", root=root).layers


def test_image_with_too_many_layers_for_one_mount(root, busybox, tmp_path, leakcheck):
    """150 layers do not fit in one overlay option page: the bottom ones are
    merged once into a flat directory (whiteouts applied) and the image runs."""
    from regtools import _ti, _tar_gz, layer_of_dir, write_oci_layout

    layers = [layer_of_dir(busybox)]
    for i in range(1, 150):
        members = [_ti(f"l{i}", data=f"{i}\n".encode())]
        if i == 100:
            members.append(_ti(".wh.l5", data=b""))
        layers.append(_tar_gz(members))
    layout = write_oci_layout(tmp_path / "tall", [("amd64", layers, {})])
    (image_id,) = image.load(layout, root=root)
    ri = image.resolve_for_run(image_id, root=root)
    assert len(ri.layers) < 150 and "/flat/" in ri.layers[-1]
    assert len(":".join(ri.layers)) < 4095
    r = Container(image_id, command=["sh", "-c", "cat /l1 /l99 /l149; test -e /l5 || echo no-l5; ls / | grep -c '^l'"],
                  root=root).run(capture_output=True, text=True)
    assert r.stdout == "1\n99\n149\nno-l5\n148\n", r.stderr
    # the flat directory is reused, and collected with the image
    assert image.resolve_for_run(image_id, root=root).layers == ri.layers
    image.remove(image_id, root=root)
    assert os.listdir(root / "images" / "flat") == []


def test_symlink_planted_by_an_earlier_layer_cannot_escape(root, busybox, tmp_path, leakcheck):
    """Layer 1 plants evil -> <a host dir>; layer 2 writes evil/pwned. Each layer
    unpacks into its own directory, so nothing reaches the host directory; in
    the container, layer 2's directory covers the symlink (overlayfs rules)."""
    import tarfile as tf_mod

    from regtools import _ti, _tar_gz, layer_of_dir, write_oci_layout

    host_dir = tmp_path / "host-target"
    host_dir.mkdir()
    layers = [layer_of_dir(busybox),
              _tar_gz([_ti("evil", tf_mod.SYMTYPE, linkname=str(host_dir))]),
              _tar_gz([_ti("evil/", tf_mod.DIRTYPE, mode=0o755), _ti("evil/pwned", data=b"x")])]
    (image_id,) = image.load(write_oci_layout(tmp_path / "evil", [("amd64", layers, {})]), root=root)
    assert os.listdir(host_dir) == []
    r = Container(image_id, command=["sh", "-c", "test -L /evil || echo dir; ls /evil"], root=root).run(capture_output=True)
    assert r.stdout == b"dir\npwned\n" and os.listdir(host_dir) == []
