"""Shared test fixtures: real root filesystems, a private store root, leak checks.

The suite runs as root on a real kernel. Everything it creates lives under a
temporary directory it owns (the store root, the rootfs copies) and is checked
for leaks: mounts, child processes, file descriptors, container directories.
"""
import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

BUSYBOX = shutil.which("busybox") or "/bin/busybox"


def _is_static(path):
    out = subprocess.run(["file", "-L", path], capture_output=True, text=True).stdout if shutil.which("file") else ""
    if out:
        return "statically linked" in out or "static-pie" in out
    ldd = subprocess.run(["ldd", path], capture_output=True, text=True)
    return "not a dynamic" in (ldd.stdout + ldd.stderr)


def make_busybox_rootfs(dest: Path) -> Path:
    """A minimal root filesystem: static busybox, its applets as symlinks, and
    /etc/passwd and /etc/group with root, a normal user and nobody."""
    if not os.path.exists(BUSYBOX) or not _is_static(BUSYBOX):
        pytest.fail("the tests need a static busybox: apt-get install busybox-static")
    (dest / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, dest / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for a in applets:
        if a != "busybox":
            (dest / "bin" / a).symlink_to("busybox")
    (dest / "etc").mkdir()
    (dest / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\n"
        "user:x:1000:1000:user:/home/user:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
    )
    (dest / "etc" / "group").write_text("root:x:0:\nwheel:x:10:root\nuser:x:1000:\nstaff:x:50:user\nnogroup:x:65534:\n")
    for d in ("root", "tmp", "home/user"):
        (dest / d).mkdir(parents=True)
    os.chmod(dest / "tmp", 0o1777)
    os.chown(dest / "home/user", 1000, 1000)
    return dest


@pytest.fixture(scope="session")
def workdir():
    d = Path(tempfile.mkdtemp(prefix="pycontain-test-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def cli_default_network_none():
    """The CLI's default network is bridge, as in docker: it would change the
    host's network. Every CLI the suite starts defaults to none instead; the
    networking tests that want a bridge ask for it inside their own namespaces."""
    old = os.environ.get("PYCONTAIN_NETWORK")
    os.environ["PYCONTAIN_NETWORK"] = "none"
    yield
    if old is None:
        os.environ.pop("PYCONTAIN_NETWORK", None)
    else:
        os.environ["PYCONTAIN_NETWORK"] = old


@contextlib.contextmanager
def _store_root_at(root: Path):
    """PYCONTAIN_ROOT set to a new directory `root` for as long as it lasts."""
    root.mkdir()
    old = os.environ.get("PYCONTAIN_ROOT")
    os.environ["PYCONTAIN_ROOT"] = str(root)
    try:
        yield root
    finally:
        if old is None:
            os.environ.pop("PYCONTAIN_ROOT", None)
        else:
            os.environ["PYCONTAIN_ROOT"] = old


@pytest.fixture(scope="session")
def store_root_at():
    """_store_root_at, for a directory's own store (tests/dockerref). A
    fixture, not an import: the packaging lane runs this conftest with
    --import-mode=importlib, where nothing beside it is importable."""
    return _store_root_at


@pytest.fixture(scope="session", autouse=True)
def store_root(workdir):
    """Every test uses a store root of its own, never /var/lib/pycontain."""
    with _store_root_at(workdir / "store") as root:
        yield root


@pytest.fixture(scope="session")
def busybox(workdir):
    """Path of a busybox root filesystem (containers must never modify it)."""
    return make_busybox_rootfs(workdir / "busybox")


# ---- leak checks ----------------------------------------------------------


def pycontain_mounts() -> list:
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if "pycontain" in line]


def child_pids() -> set:
    me = str(os.getpid())
    kids = set()
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if fields[1] == me:
                    kids.add(int(p))
            except OSError:
                pass
    return kids


def open_fds() -> set:
    fds = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # the listing's own descriptor, already closed
        # the netns pool's namespaces and the loaded device filters (cgroups/devices.py) stay
        if not target.endswith("/fd") and not target.startswith(("net:[", "anon_inode:bpf-prog")):
            fds.add((fd, target))
    return fds


class LeakCheck:
    def __init__(self, store):
        self.store = store
        # Only mounts that name the project's paths (store root, test dirs,
        # rootfs copies, all under "pycontain-..."): other processes on a
        # shared machine may mount and unmount their own things meanwhile.
        self.mounts = pycontain_mounts()
        self.kids = child_pids()
        self.fds = open_fds()
        self.volumes = self.volumes_left()

    def containers_left(self):
        d = self.store / "containers"
        return sorted(os.listdir(d)) if d.exists() else []

    def volumes_left(self):
        """Volumes and half-made or half-removed volume directories (.new-*, .rm-*)."""
        d = self.store / "volumes"
        return sorted(n for n in os.listdir(d) if n != ".lock") if d.exists() else []

    def assert_clean(self):
        assert pycontain_mounts() == self.mounts, "mounts leaked: " + "".join(pycontain_mounts())
        assert child_pids() - self.kids == set(), "child processes leaked"
        # the netns pool's thread opens descriptors for a moment: a leak is
        # one that stays
        for _ in range(40):
            leaked = open_fds() - self.fds
            if not leaked:
                break
            time.sleep(0.025)
        assert not leaked, f"file descriptors leaked: {leaked}"
        assert self.containers_left() == [], f"container directories leaked: {self.containers_left()}"
        assert self.volumes_left() == self.volumes, f"volumes leaked: {self.volumes_left()}"


@pytest.fixture
def leakcheck(store_root):
    from pycontain import _launch

    _launch.seal_programs()  # made once per process, on purpose (sealed memfd copies)
    check = LeakCheck(store_root)
    yield check
    check.assert_clean()
