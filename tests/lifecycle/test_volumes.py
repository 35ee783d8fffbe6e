"""Volumes (pycontain/volumes.py): docker's named and anonymous volumes, with
real mounts and real containers, from Python and from the command line."""
import io
import json
import os
import stat
import subprocess
import sys
import tarfile

import pytest

from pycontain import Container, Mount, containers, image, volumes
from pycontain.errors import ConfigError, ContainerError
from pycontain.image.merged import merged_dir, merged_entries

from .conftest import pycontain, wait_for

pytestmark = pytest.mark.usefixtures("managed")


def _member(name, type=tarfile.REGTYPE, data=None, **kw):  # noqa: A002  (TarInfo.type)
    ti = tarfile.TarInfo(name)
    ti.type = type
    for k, v in kw.items():
        setattr(ti, k, v)
    if data is not None:
        ti.size = len(data)
    return ti, (io.BytesIO(data) if data is not None else None)


def image_tar(busybox, dest):
    """busybox plus a /data directory of several owners and modes, a setuid
    file, a symlink and a hard link, and /cache for the image's VOLUME."""
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as t:
        t.add(busybox, arcname=".")
        for ti, f in (
            _member("data", tarfile.DIRTYPE, mode=0o750, uid=1000, gid=50),
            _member("data/conf", data=b"from-image\n", mode=0o640, uid=1000, gid=1000),
            _member("data/su", data=b"#!/bin/sh\n", mode=0o4755, uid=7, gid=0),
            _member("data/link", tarfile.SYMTYPE, linkname="conf", uid=1000, gid=1000),
            _member("data/hard", tarfile.LNKTYPE, linkname="data/conf", mode=0o640, uid=1000, gid=1000),
            _member("data/sub", tarfile.DIRTYPE, mode=0o700, uid=2, gid=3),
            _member("data/sub/deep", data=b"deep\n", mode=0o600, uid=2, gid=3),
            _member("cache", tarfile.DIRTYPE, mode=0o755),
            _member("cache/seed", data=b"seed\n"),
        ):
            t.addfile(ti, f)
    return dest


@pytest.fixture
def vol_image(busybox, tmp_path, store_root):
    ref = "local/volumes:1"
    image.import_(str(image_tar(busybox, tmp_path / "rootfs.tar")), ref, changes=["VOLUME /cache"],
                  root=store_root)
    yield ref
    image.remove(ref, force=True, root=store_root)
    image.prune(all_images=True, root=store_root)


def run(*args, **kw):
    kw.setdefault("command", ["true"])
    r = Container(*args, **kw).run(capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


def names():
    return [v.name for v in volumes.list()]


# ---- the API ---------------------------------------------------------------------------


def test_data_persists_across_two_containers(busybox, leakcheck):
    m = Mount("keep", "/data", type="volume")
    run(rootfs=str(busybox), mounts=[m], command=["sh", "-c", "echo first > /data/f"])
    assert names() == ["keep"]   # made on first use, kept after the container
    out = run(rootfs=str(busybox), mounts=[m], command=["sh", "-c", "cat /data/f; echo second >> /data/f"])
    assert out == "first\n"
    v = volumes.get("keep")
    with open(os.path.join(v.mountpoint, "f")) as f:
        assert f.read() == "first\nsecond\n"
    assert v.mountpoint == str(leakcheck.store / "volumes" / "keep" / "_data")
    volumes.remove("keep")
    assert names() == []


def test_copy_up_of_the_image_content_on_first_use_only(vol_image, leakcheck):
    script = ("stat -c '%u:%g %a %n' /data /data/conf /data/su /data/sub /data/sub/deep; "
              "readlink /data/link; stat -c %h /data/conf; cat /data/hard")
    out = run(vol_image, mounts=[Mount.parse("appdata:/data")], command=["sh", "-c", script + "; rm /data/conf"])
    assert out.splitlines() == [
        "1000:50 750 /data", "1000:1000 640 /data/conf", "7:0 4755 /data/su", "2:3 700 /data/sub",
        "2:3 600 /data/sub/deep", "conf", "2", "from-image"]
    data = volumes.get("appdata").mountpoint
    st = os.stat(data)   # the volume's own directory took the image directory's owner and mode
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 50, 0o750)
    # the second use finds the volume as the first left it: no second copy
    out = run(vol_image, mounts=[Mount.parse("appdata:/data")], command=["ls", "/data"])
    assert out.split() == ["hard", "link", "su", "sub"]
    # nocopy, and a volume that is not empty on its first use, get nothing from the image
    out = run(vol_image, mounts=[Mount.parse("empty:/data:nocopy")], command=["ls", "-A", "/data"])
    assert out == ""
    pre = volumes.create("prefilled")
    with open(os.path.join(pre.mountpoint, "mine"), "w") as f:
        f.write("x")
    assert run(vol_image, mounts=[Mount.parse("prefilled:/data")], command=["ls", "/data"]) == "mine\n"
    for n in ("appdata", "empty", "prefilled"):
        volumes.remove(n)


def test_copy_up_sees_the_merged_view_of_several_layers(vol_image, store_root, leakcheck):
    c = Container(vol_image, command=["sh", "-c", "rm /data/conf /data/hard; echo top > /data/new"],
                  writable_layer="disk", remove=False)
    assert c.run().returncode == 0
    c.commit("local/volumes:2")
    c.remove()
    try:
        out = run("local/volumes:2", mounts=[Mount.parse("merged:/data")], command=["ls", "/data"])
        assert out.split() == ["link", "new", "su", "sub"]   # the whiteouts hide the lower files
        volumes.remove("merged")
    finally:
        image.remove("local/volumes:2", force=True, root=store_root)


def test_merged_dir_follows_symlinks_whiteouts_and_opaque_dirs(tmp_path):
    low, top = tmp_path / "low", tmp_path / "top"
    for d in ("a", "b", "x/y"):
        os.makedirs(low / d)
    (low / "a" / "gone").write_text("")
    (low / "a" / "kept").write_text("")
    (low / "b" / "old").write_text("")
    os.symlink("/a", low / "abs")
    os.symlink("../../a", low / "x" / "y" / "rel")
    os.symlink("loop", low / "loop")
    (low / "file").write_text("")
    os.makedirs(top / "a")
    os.makedirs(top / "b")
    os.mknod(top / "a" / "gone", stat.S_IFCHR, os.makedev(0, 0))   # overlay's whiteout
    os.setxattr(top / "b", "trusted.overlay.opaque", b"y")
    (top / "b" / "new").write_text("")
    layers = [str(top), str(low)]

    def view(path):
        return [rel for rel, _ in merged_entries(merged_dir(layers, path))]
    assert view("/a") == ["kept"]
    assert view("/abs") == ["kept"] == view("/x/y/rel") == view("/x/../abs/")
    assert view("/b") == ["new"]
    assert merged_dir(layers, "/loop") == [] == merged_dir(layers, "/file") == merged_dir(layers, "/a/gone")
    assert merged_dir(layers, "/missing/dir") == []


def test_read_only_volume_refuses_writes(busybox, leakcheck):
    r = Container(rootfs=str(busybox), mounts=[Mount.parse("ro-vol:/data:ro")],
                  command=["sh", "-c", "touch /data/f"]).run(capture_output=True)
    assert r.returncode != 0 and b"Read-only file system" in r.stderr
    assert os.listdir(volumes.get("ro-vol").mountpoint) == []
    volumes.remove("ro-vol")


def test_anonymous_volumes_go_with_the_container(vol_image, busybox, leakcheck):
    # -v /dst and the image's VOLUME /cache (filled from the image): gone with the container
    out = run(vol_image, mounts=[Mount.parse("/scratch")],
              command=["sh", "-c", "cat /cache/seed; grep -c ' /scratch \\| /cache ' /proc/self/mountinfo"])
    assert out == "seed\n2\n"
    assert names() == []
    # one that a mount covers is not made
    run(vol_image, mounts=[Mount.parse("mine:/cache")])
    assert names() == ["mine"]
    volumes.remove("mine")
    # remove=False: kept until remove()
    c = Container(rootfs=str(busybox), command=["true"], mounts=[Mount(None, "/x", type="volume")], remove=False)
    c.run()
    [anon] = volumes.list()
    assert anon.anonymous and len(anon.name) == 64
    c.remove()
    assert names() == []


def test_a_volume_in_use_is_not_removed(busybox, leakcheck):
    c = Container(rootfs=str(busybox), command=["sleep", "30"], mounts=[Mount.parse("busy:/data")])
    c.start()
    try:
        for force in (False, True):   # a running container's files never vanish under it
            with pytest.raises(volumes.VolumeInUse, match="remove busy: volume is in use"):
                volumes.remove("busy", force=force)
        assert volumes.prune(all=True)["VolumesDeleted"] == []
    finally:
        c.remove()
    volumes.remove("busy")
    # a managed container uses its volumes even when it is not running (docker's rule)
    m = containers.create(rootfs=str(busybox), command=["true"], mounts=[Mount.parse("held:/data")])
    with pytest.raises(volumes.VolumeInUse, match=rf"volume is in use - \[{m.id}\]"):
        volumes.remove("held")
    volumes.remove("held", force=True)   # force: a stopped container's volume goes
    m.remove()
    with pytest.raises(volumes.NoSuchVolume, match="no such volume: held"):
        volumes.remove("held")


@pytest.mark.parametrize("bad", ["a", "-lead", "with space", "a@b", "../up", "x/y", ".hidden"])
def test_bad_names_are_one_clear_line_and_make_nothing(bad, busybox, leakcheck):
    for make in (lambda: volumes.create(bad), lambda: volumes.attach(bad),
                 lambda: Container(rootfs=str(busybox), mounts=[Mount(bad, "/data", type="volume")])):
        with pytest.raises(ConfigError) as e:
            make()
        assert "\n" not in str(e.value) and str(e.value).startswith(f'invalid volume name "{bad}"')
    r = pycontain("volume", "create", "--", bad)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and r.stdout == ""
    assert names() == []


def test_mount_specs():
    assert Mount.parse("/dst") == Mount(None, "/dst", type="volume")
    assert Mount.parse("v1:/d:ro,nocopy") == Mount("v1", "/d", True, "volume", ("nocopy",))
    assert Mount.parse("/host:/d:ro") == Mount("/host", "/d", True)
    assert Mount.parse_mount_flag("type=volume,source=v1,target=/d,readonly") == Mount("v1", "/d", True, "volume")
    assert Mount.parse_mount_flag("type=volume,dst=/d,volume-nocopy") == Mount(None, "/d", False, "volume",
                                                                              ("nocopy",))
    assert Mount.parse_mount_flag("type=bind,src=/h,target=/d,ro=true") == Mount("/h", "/d", True)
    assert Mount.parse_mount_flag("type=tmpfs,target=/t,tmpfs-size=1m") == Mount(None, "/t", type="tmpfs",
                                                                                 options=("size=1m",))
    for bad, msg in (("type=volume,source=v1", "target is required"), ("type=nfs,target=/d", "type must be"),
                     ("type=bind,target=/d,volume-nocopy", "volume-nocopy needs"), ("target=/d,colour=red", "unknown"),
                     ("type=tmpfs,src=x,target=/d", "no source")):
        with pytest.raises(ConfigError, match=msg):
            Mount.parse_mount_flag(bad)
    with pytest.raises(ConfigError, match="only for volumes"):
        Mount.parse("/host:/d:nocopy")


def test_concurrent_creation_of_one_name_makes_one_volume(leakcheck):
    code = ("import sys; from pycontain import volumes\n"
            "for i in range(40):\n"
            "    v = volumes.create(f'race{i}')\n"
            "    volumes.attach(f'race{i}').release()\n")
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(3)]
    assert [p.wait(60) for p in procs] == [0, 0, 0]
    assert sorted(names()) == sorted(f"race{i}" for i in range(40))
    assert sorted(os.listdir(leakcheck.store / "volumes")) == sorted([".lock"] + names())   # no .new-*
    assert volumes.prune()["VolumesDeleted"] == []      # named: kept by a default prune
    # what a process killed half way leaves is swept by the next one to take the lock
    os.makedirs(leakcheck.store / "volumes" / ".new-0123" / "_data")
    os.makedirs(leakcheck.store / "volumes" / ".rm-4567" / "_data")
    assert len(names()) == 40
    assert len(volumes.prune(all=True)["VolumesDeleted"]) == 40
    assert os.listdir(leakcheck.store / "volumes") == [".lock"]


# ---- managed containers ----------------------------------------------------------------


def test_managed_containers_keep_their_volumes_across_restarts(vol_image):
    c = containers.create(vol_image, command=["sh", "-c", "echo run >> /cache/runs; echo x >> /named/runs"],
                          mounts=[Mount.parse("named:/named")])
    mounts = {m["Destination"]: m for m in c.attrs["Mounts"]}
    anon = mounts["/cache"]["Name"]   # the image's VOLUME, made at create and named in the record
    assert mounts["/named"]["Name"] == "named" and sorted(names()) == sorted([anon, "named"])
    for _ in range(2):
        c.start()
        assert c.wait(timeout=10) == 0
    c.restart()
    assert c.wait(timeout=10) == 0
    with open(os.path.join(volumes.get(anon).mountpoint, "runs")) as f:
        assert f.read() == "run\n" * 3
    assert sorted(os.listdir(volumes.get(anon).mountpoint)) == ["runs", "seed"]   # copied up once
    c.remove()   # without volumes=True: the anonymous volume stays, dangling, as in docker
    assert sorted(names()) == sorted([anon, "named"])
    result = volumes.prune()   # anonymous and unused: pruned; named: kept
    assert result["VolumesDeleted"] == [anon] and result["SpaceReclaimed"] > 0
    assert names() == ["named"]
    c = containers.create(vol_image, mounts=[Mount.parse("named:/named"), Mount.parse("/x")])
    c.remove(volumes=True)   # rm -v: the anonymous ones go, the named one stays
    assert names() == ["named"]
    volumes.remove("named")


def test_failed_create_leaves_no_volume(busybox):
    containers.create(rootfs=str(busybox), name="taken", command=["true"])
    with pytest.raises(ContainerError, match="already in use"):
        containers.create(rootfs=str(busybox), name="taken", command=["true"],
                          mounts=[Mount.parse("fresh:/a"), Mount.parse("/b")])
    assert names() == []


# ---- the command line ------------------------------------------------------------------


def test_cli_volume_verbs(busybox):
    r = pycontain("volume", "create", "pgdata")
    assert (r.returncode, r.stdout) == (0, "pgdata\n")
    r = pycontain("volume", "create")
    anon = r.stdout.strip()
    assert len(anon) == 64
    r = pycontain("volume", "ls")
    assert r.stdout.splitlines()[0] == "DRIVER    VOLUME NAME"
    assert sorted(r.stdout.splitlines()[1:]) == sorted([f"local     {anon}", "local     pgdata"])
    assert sorted(pycontain("volume", "ls", "-q").stdout.split()) == sorted([anon, "pgdata"])
    r = pycontain("volume", "inspect", "pgdata")
    [info] = json.loads(r.stdout)
    assert info["Name"] == "pgdata" and info["Driver"] == "local" and info["Scope"] == "local"
    assert info["Mountpoint"].endswith("/volumes/pgdata/_data") and info["CreatedAt"].endswith("Z")
    assert r.stdout.startswith('[\n    {\n        "CreatedAt"')   # docker's 4-space indent
    r = pycontain("volume", "inspect", "nope")
    assert r.returncode == 1 and "no such volume: nope" in r.stderr

    # run -v NAME:DST and --mount, --rm: the anonymous volume goes, the named one stays
    r = pycontain("run", "--rm", "-v", "pgdata:/data", "--mount", "type=volume,target=/anon",
                  "--rootfs", str(busybox), "sh", "-c", "echo hi > /data/f; touch /anon/g")
    assert r.returncode == 0, r.stderr
    assert sorted(pycontain("volume", "ls", "-q").stdout.split()) == sorted([anon, "pgdata"])
    r = pycontain("run", "-d", "--rm", "-v", "/anon", "--rootfs", str(busybox), "true")   # its monitor removes it
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: containers.list(all=True) == [] and len(names()) == 2, 10), names()
    r = pycontain("run", "--rm", "--mount", "type=volume,source=pgdata,target=/data,readonly",
                  "--rootfs", str(busybox), "sh", "-c", "cat /data/f; touch /data/x")
    assert r.stdout == "hi\n" and "Read-only file system" in r.stderr

    r = pycontain("create", "--name", "user", "-v", "pgdata:/data", "--rootfs", str(busybox), "true")
    cid = r.stdout.strip()
    r = pycontain("volume", "rm", "pgdata", anon)
    assert r.returncode == 1 and r.stdout == f"{anon}\n"
    assert r.stderr == f"pycontain: remove pgdata: volume is in use - [{cid}]\n"
    assert pycontain("rm", "user").returncode == 0

    pycontain("volume", "create", "other")
    r = pycontain("volume", "prune", input="n\n")
    assert "WARNING! This will remove anonymous local volumes not used by at least one container." in r.stdout
    assert names() == ["other", "pgdata"]
    r = pycontain("volume", "prune", "-f")
    assert r.stdout == "Total reclaimed space: 0B\n"
    r = pycontain("volume", "prune", "-a", "-f")
    assert r.stdout.startswith("Deleted Volumes:\nother\npgdata\n\nTotal reclaimed space: ")
    assert names() == []


def test_cli_dangling_filter_disk_usage_and_system_prune(busybox):
    r = pycontain("create", "--name", "holder", "-v", "used:/data", "-v", "/anon", "--rootfs", str(busybox), "true")
    assert r.returncode == 0, r.stderr
    pycontain("volume", "create", "free")
    [anon] = [n for n in names() if n not in ("free", "used")]
    assert pycontain("volume", "ls", "-q", "--filter", "dangling=true").stdout.split() == ["free"]
    assert sorted(pycontain("volume", "ls", "-q", "-f", "dangling=false").stdout.split()) == sorted([anon, "used"])
    r = pycontain("volume", "ls", "-f", "colour=red")
    assert r.returncode == 1 and "invalid filter" in r.stderr
    df = pycontain("system", "df").stdout.splitlines()
    assert [line.split()[:4] for line in df if line.startswith("Local Volumes")] == [["Local", "Volumes", "3", "2"]]
    # the container goes first, then its now unused anonymous volume; named ones stay
    r = pycontain("system", "prune", "-f", "--volumes")
    assert f"Deleted Volumes:\n{anon}\n" in r.stdout
    assert names() == ["free", "used"]
    for n in ("free", "used"):
        volumes.remove(n)


def test_a_failed_copy_up_leaves_the_volume_empty_for_the_next_use(vol_image, monkeypatch, leakcheck):
    real = volumes._copy_tree

    def fails_after_copying(*args):   # a fault injected once the files are there: I/O error, disk full
        real(*args)
        raise OSError(5, "injected I/O error")
    monkeypatch.setattr(volumes, "_copy_tree", fails_after_copying)
    with pytest.raises(OSError, match="injected"):
        Container(vol_image, command=["true"], mounts=[Mount.parse("halfway:/data")]).run()
    assert os.listdir(volumes.get("halfway").mountpoint) == []
    monkeypatch.setattr(volumes, "_copy_tree", real)
    out = run(vol_image, mounts=[Mount.parse("halfway:/data")], command=["ls", "/data"])
    assert out.split() == ["conf", "hard", "link", "su", "sub"]   # copied whole on the next use
    volumes.remove("halfway")
