"""The fuse-overlayfs storage driver: rootless containers whose root is served
by fuse-overlayfs (what kernels before 5.11 need; forced here, on a newer
kernel), the choice between it and native overlay, and its failures."""
import os
import stat
import subprocess
import sys

import pytest

from nobody import NOBODY, NobodysCopy, as_nobody
from pycontain import Container, fuse_overlayfs
from pycontain.errors import ConfigError
from processes import fuse_processes

FUSE = "fuse-overlayfs"


@pytest.fixture(scope="module")
def user_rootfs(busybox, workdir):
    copy = NobodysCopy(busybox, workdir / "rootless-fuse")
    yield copy
    copy.remove()


def leftovers(store) -> dict:
    """What a container could leave behind in its store: container
    directories, scratch entries. (Its processes: fuse_processes.)"""
    containers = store / "containers"
    scratch = store / "scratch"
    return {"containers": sorted(os.listdir(containers)) if containers.exists() else [],
            "scratch": sorted(os.listdir(scratch)) if scratch.exists() else []}


def as_nobody_with(copy, fn, **kw):
    """Runs fn(Container kwargs) as nobody; adds what was left behind."""
    def wrapped():
        result = fn(dict(rootfs=str(copy.rootfs), root=str(copy.store), storage_driver=FUSE))
        return {"result": result, "left": leftovers(copy.store)}

    out = as_nobody(wrapped, **kw)
    assert fuse_processes(copy.store) == [], "a fuse-overlayfs process outlived its container"
    assert "ok" in out, out
    return out["ok"]


# ---- the choice -------------------------------------------------------------------------


def test_auto_prefers_native_overlay_where_the_kernel_allows_it():
    choose = fuse_overlayfs.choose_driver
    kw = dict(binary="/usr/bin/fuse-overlayfs")
    assert choose("auto", rootless=False, kernel=(4, 18), **kw) == "overlay"     # root: always overlay
    assert choose("auto", rootless=True, kernel=(5, 11), **kw) == "overlay"
    assert choose("auto", rootless=True, kernel=(6, 18), **kw) == "overlay"
    assert choose("auto", rootless=True, kernel=(5, 10), **kw) == FUSE
    assert choose("auto", rootless=True, kernel=(4, 18), **kw) == FUSE
    assert choose(FUSE, rootless=False, kernel=(6, 18), **kw) == FUSE           # asked for: given
    assert choose("overlay", rootless=True, kernel=(5, 4), binary=None) == "overlay"  # the user knows best


def test_auto_without_fuse_overlayfs_names_the_package():
    with pytest.raises(ConfigError, match=r"rootless overlayfs needs Linux 5\.11 \(this is 5\.10\).*"
                                          r"apt-get install fuse-overlayfs"):
        fuse_overlayfs.choose_driver("auto", rootless=True, kernel=(5, 10), binary=None)
    with pytest.raises(ConfigError, match=r"^the fuse-overlayfs storage driver needs the fuse-overlayfs program"):
        fuse_overlayfs.choose_driver(FUSE, rootless=True, kernel=(6, 1), binary=None)
    with pytest.raises(ConfigError, match="needs /dev/fuse"):
        fuse_overlayfs.choose_driver(FUSE, rootless=True, kernel=(6, 1), binary="/x", fuse_device=False)


def test_driver_names_and_environment(monkeypatch):
    monkeypatch.delenv(fuse_overlayfs.ENV, raising=False)
    assert fuse_overlayfs.requested_driver(None) == "auto"
    assert fuse_overlayfs.requested_driver("overlay2") == "overlay"   # docker's name
    monkeypatch.setenv(fuse_overlayfs.ENV, FUSE)
    assert fuse_overlayfs.requested_driver(None) == FUSE
    assert fuse_overlayfs.requested_driver("overlay") == "overlay"    # the argument wins
    with pytest.raises(ConfigError, match="unknown storage driver 'zfs': one of auto, overlay, fuse-overlayfs"):
        Container(rootfs="/", command=["true"], storage_driver="zfs")
    assert fuse_overlayfs.kernel_version("5.10.0-28-amd64") == (5, 10)
    assert fuse_overlayfs.kernel_version("6.18.44-fc") == (6, 18)


# ---- rootless containers on fuse-overlayfs --------------------------------------------------


def test_rootless_container_on_fuse_overlayfs(user_rootfs, leakcheck):
    def fn(kw):
        c = Container(command=["sh", "-c",
                               "echo $$; id -u; grep ' / ' /proc/mounts; "
                               "echo hi > /new && mkdir /newdir && stat -c '%u %g %s' /new /newdir /bin/busybox; "
                               "echo more >> /etc/passwd && tail -1 /etc/passwd; rm /bin/ls && ls /bin/ls; "
                               "cat /etc/hostname"], hostname="fusebox", **kw)
        c.start(stdout=-1, stderr=-1)
        fuse = c._fuse
        out, err = c.communicate(timeout=30)
        return [c.returncode, out.decode(), err.decode(), fuse.returncode]

    out = as_nobody_with(user_rootfs, fn)
    code, stdout, stderr, fuse_status = out["result"]
    lines = stdout.splitlines()
    assert code == 0, (stdout, stderr)
    assert lines[0] == "1" and lines[1] == "0"         # busybox is pid 1, root inside
    assert lines[2].startswith("fuse-overlayfs / fuse.fuse-overlayfs ")
    assert lines[3] == "0 0 3"                         # written, root's
    assert lines[4].split()[:2] == ["0", "0"]          # the new directory too
    assert lines[5].split()[:2] == ["0", "0"]          # nobody's image files: root's inside
    assert lines[6] == "more"
    assert "No such file" in stderr
    assert lines[-1] == "fusebox"                      # generated /etc files reach the memory layer
    assert fuse_status == 0                            # it exited by itself when the container ended
    # the image is untouched
    root = user_rootfs.rootfs
    assert not (root / "new").exists() and not (root / "newdir").exists()
    assert (root / "bin" / "ls").is_symlink() and "more" not in (root / "etc" / "passwd").read_text()
    assert os.stat(root / "bin" / "busybox").st_uid == NOBODY
    assert out["left"] == {"containers": [], "scratch": []}


def test_rootless_create_start_and_a_disk_layer(user_rootfs, leakcheck):
    def fn(kw):
        c = Container(command=["sh", "-c", "echo kept > /root/file; cat /root/file"], writable_layer="disk",
                      remove=False, **kw)
        c.create(stdout=-1)
        c.start()
        out, _ = c.communicate(timeout=30)
        upper = c._rootfs.upper
        kept = open(os.path.join(upper, "root", "file")).read()
        st = os.stat(os.path.join(upper, "root", "file"))
        c.remove()
        return [c.returncode, out.decode(), kept, st.st_uid, os.path.exists(upper)]

    out = as_nobody_with(user_rootfs, fn)
    assert out["result"] == [0, "kept\n", "kept\n", NOBODY, False], out
    assert out["left"] == {"containers": [], "scratch": []}


@pytest.mark.skipif(not os.path.exists("/usr/bin/newuidmap"), reason="needs newuidmap (Debian: uidmap)")
def test_rootless_subordinate_ids_through_fuse_overlayfs(user_rootfs, leakcheck):
    # fuse-overlayfs is root of the container's user namespace: it creates
    # and chowns files as the container's users, mapped into nobody's range
    sub_start = 300000

    def fn(kw):
        c = Container(command=["sh", "-c", "touch /tmp/mine; mkdir /data; chown 1000:1000 /data; "
                                           "su -s /bin/sh user -c 'touch /data/theirs'; "
                                           "stat -c '%u:%g %n' /tmp/mine /data /data/theirs"],
                      writable_layer="disk", remove=False, **kw)
        r = c.run(capture_output=True, text=True, timeout=30)
        upper = c._rootfs.upper
        host = [os.lstat(os.path.join(upper, p)).st_uid for p in ("tmp/mine", "data", "data/theirs")]
        c.remove()   # files of subordinate ids: removed from inside a user namespace
        return [r.returncode, r.stdout, r.stderr, host, os.path.exists(upper)]

    out = as_nobody_with(user_rootfs, fn, subids=(str(user_rootfs.base), sub_start, 65536))
    code, stdout, stderr, host, upper_left = out["result"]
    assert code == 0, stderr
    assert stdout.splitlines() == ["0:0 /tmp/mine", "1000:1000 /data", "1000:1000 /data/theirs"]
    assert host == [NOBODY, sub_start + 999, sub_start + 999]
    assert not upper_left
    assert out["left"] == {"containers": [], "scratch": []}


def test_missing_fuse_overlayfs_is_a_clear_error(user_rootfs, leakcheck, workdir):
    empty = workdir / "no-fuse-overlayfs"
    empty.mkdir(exist_ok=True)

    def fn(kw):
        os.environ["PATH"] = str(empty)   # this child's only
        try:
            Container(command=["true"], **kw).run()
        except ConfigError as e:
            return str(e)

    out = as_nobody_with(user_rootfs, fn)
    assert out["result"] == ("the fuse-overlayfs storage driver needs the fuse-overlayfs program "
                             "(Debian: apt-get install fuse-overlayfs)")
    assert out["left"] == {"containers": [], "scratch": []}


def test_fuse_overlayfs_failing_at_start_is_a_clear_error(user_rootfs, leakcheck, workdir):
    # a fuse-overlayfs that cannot serve: the kernel aborts the container's
    # connection when it exits, and its own message is what the user reads
    bindir = workdir / "failing-fuse-overlayfs"
    bindir.mkdir(exist_ok=True)
    fake = bindir / "fuse-overlayfs"
    fake.write_text("#!/bin/sh\necho 'fuse-overlayfs: cannot read lower dirs: Permission denied' >&2\nexit 1\n")
    fake.chmod(0o755)
    os.chmod(bindir, 0o755)

    def fn(kw):
        os.environ["PATH"] = f"{bindir}:/usr/bin:/bin"
        try:
            Container(command=["true"], writable_layer="disk", **kw).run()
        except Exception as e:
            return [type(e).__name__, str(e)]

    out = as_nobody_with(user_rootfs, fn)
    assert out["result"] == ["LaunchError", "fuse-overlayfs exited (1): fuse-overlayfs: cannot read lower dirs: "
                                            "Permission denied"], out
    assert out["left"] == {"containers": [], "scratch": []}


# ---- as root, when asked for -------------------------------------------------------------


def test_root_container_on_fuse_overlayfs_and_the_cli(busybox, leakcheck, store_root, monkeypatch):
    r = Container(rootfs=str(busybox), command=["sh", "-c", "grep ' / ' /proc/mounts; touch /x; ls -ln /x"],
                  storage_driver=FUSE).run(capture_output=True, text=True, timeout=30, check=True)
    assert r.stdout.startswith("fuse-overlayfs / fuse.fuse-overlayfs ")
    assert " 0        0 " in r.stdout.splitlines()[1]
    assert not (busybox / "x").exists()
    monkeypatch.setenv(fuse_overlayfs.ENV, FUSE)
    cli = subprocess.run([sys.executable, "-m", "pycontain", "run", "--rm", "--rootfs", str(busybox),
                          "grep", " / ", "/proc/mounts"], capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0 and cli.stdout.startswith("fuse-overlayfs / fuse.fuse-overlayfs "), cli
    cli = subprocess.run([sys.executable, "-m", "pycontain", "run", "--rm", "--storage-driver", "overlay",
                          "--rootfs", str(busybox), "grep", " / ", "/proc/mounts"],
                         capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0 and cli.stdout.startswith("overlay / overlay "), cli
    info = subprocess.run([sys.executable, "-m", "pycontain", "info"], capture_output=True, text=True, timeout=60)
    assert "Storage:     fuse-overlayfs\n" in info.stdout
    assert fuse_processes(store_root) == []
    assert stat.S_ISDIR(os.stat(store_root / "scratch").st_mode) and os.listdir(store_root / "scratch") == []


def test_writes_through_fuse_overlayfs_are_charged_to_the_container(busybox, leakcheck):
    # fuse-overlayfs writes the memory layer, not the container: it runs in
    # the container's cgroup, or a memory limit would not hold
    r = Container(rootfs=str(busybox), command=["sh", "-c", "dd if=/dev/zero of=/big bs=1M count=100; ls -l /big"],
                  storage_driver=FUSE, memory="32m", memory_swap="32m").run(capture_output=True, text=True,
                                                                            timeout=60)
    assert r.oom_killed, r
    assert "104857600" not in r.stdout
