"""A hostile image must never get its code run on the host (docker's
CVE-2019-14271 and its relatives).

The image built here ships /etc/nsswitch.conf naming its own module and
that module (evil_nss.c) in every library directory. A privileged process
that looks up a user or group name while the image's files are its root
loads the module, and the module's constructor leaves the chroot and writes
a marker file on the host. The fixture first proves the trap works (a
chrooted lookup does write the marker); then cp in both directions (created,
running, and a running container that plants the files itself), export,
commit, volume copy-up and exec --user are done against the image, and the
marker must never appear.
"""
import io
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from pycontain import Container, Mount, containers, image, volumes
from nobody import NOBODY, as_nobody
from pycontain import copy as pc_copy

HERE = Path(__file__).parent
REF = "local/evil-nss:1"
UNKNOWN_ID = 4321   # an owner no passwd file names: its lookup goes through every NSS module

pytestmark = pytest.mark.usefixtures("store_connection", "leakcheck")


@pytest.fixture
def store_connection(store_root):
    """The process's one record database connection (containers.get opens
    it), opened before the leak check takes its snapshot of descriptors."""
    return containers.shared_store()


def cli(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "pycontain", *args], capture_output=True, text=True,
                          timeout=timeout)


def _lib_dirs():
    arch = subprocess.run(["gcc", "-print-multiarch"], capture_output=True, text=True).stdout.strip()
    dirs = ["lib", "usr/lib", "lib64"]
    if arch:
        dirs += [f"lib/{arch}", f"usr/lib/{arch}"]
    return dirs


def _chrooted_lookup(root: Path) -> None:
    """What the old cp helper did: a fresh process chroots into the image's
    files as root, then looks up an owner's name. (Fresh: glibc keeps the
    name-service configuration it had before a chroot once it has made any
    lookup, so a fork of this test process would prove nothing.)"""
    code = ("import os, pwd, sys\n"
            "os.chroot(sys.argv[1]); os.chdir('/')\n"
            "try:\n    pwd.getpwuid(%d)\nexcept KeyError:\n    pass\n" % UNKNOWN_ID)
    subprocess.run([sys.executable, "-S", "-c", code, str(root)], check=True, timeout=30)


class Trap:
    def __init__(self, base: Path):
        self.base = base
        self.host_side = base / "host-side"
        self.marker = self.host_side / "image-code-ran"
        self.rootfs = base / "rootfs"
        self.module = base / "libnss_evil.so.2"

    def ran(self) -> str:
        """What the module wrote on the host ('' if it never ran)."""
        return self.marker.read_text() if self.marker.exists() else ""


@pytest.fixture(scope="module")
def trap(workdir, busybox, store_root):
    t = Trap(workdir / "nss-trap")
    t.base.mkdir()
    t.host_side.mkdir()
    r = subprocess.run(["gcc", "-shared", "-fPIC", "-O1", f'-DMARKER="{t.marker}"', f'-DMARKER_DIR="{t.host_side}"',
                        "-o", str(t.module), str(HERE / "evil_nss.c")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    shutil.copytree(busybox, t.rootfs, symlinks=True)
    (t.rootfs / "etc" / "nsswitch.conf").write_text("passwd: evil\ngroup: evil\nshadow: evil\nhosts: evil\n")
    for d in _lib_dirs():
        (t.rootfs / d).mkdir(parents=True, exist_ok=True)
        shutil.copy2(t.module, t.rootfs / d / "libnss_evil.so.2")
    data = t.rootfs / "data"
    data.mkdir()
    (data / "owned").write_text("owned by nobody the image knows\n")
    os.chown(data / "owned", UNKNOWN_ID, UNKNOWN_ID)
    os.chown(data, UNKNOWN_ID, UNKNOWN_ID)
    # armed: the lookup the old helper made runs the module, which gets out
    _chrooted_lookup(t.rootfs)
    assert t.ran().startswith("uid=0 "), "the trap did not go off: the test would prove nothing"
    t.marker.unlink()
    shutil.rmtree(t.rootfs / ".nss-escape", ignore_errors=True)
    os.unlink(t.rootfs / ".nss-ran")
    with tarfile.open(t.base / "rootfs.tar", "w") as tar:
        tar.add(t.rootfs, arcname=".")
    image.import_(str(t.base / "rootfs.tar"), REF, root=store_root)
    yield t
    image.remove(REF, force=True, root=store_root)
    image.prune(all_images=True, root=store_root)


@pytest.fixture(autouse=True)
def fresh_marker(request):
    """Each test starts with no marker, so a failure names its own culprit."""
    if "trap" in request.fixturenames:
        marker = request.getfixturevalue("trap").marker
        if marker.exists():
            marker.unlink()


def cp(trap, name, *args):
    """pycontain cp ARGS with container `name`; the image's code must not
    have run with host privileges meanwhile: neither out on the host nor
    in the container's root (/.nss-ran, where it could not get out)."""
    r = cli("cp", *args)
    assert trap.ran() == "", f"the image's code ran on the host during cp {' '.join(args)}: {trap.ran()}"
    upper = containers.get(name)._store.container_dir(containers.get(name).id) / "upper"
    assert not (upper / ".nss-ran").exists(), f"the image's code ran during cp {' '.join(args)}"
    assert r.returncode == 0, r.stderr
    return r


@pytest.fixture
def names():
    """Container names for one test; removed (with their monitors) after it."""
    made = []

    def name(n):
        made.append(n)
        return n
    yield name
    for n in made:
        cli("rm", "-f", n)


def _wait_running(name, path):
    end = time.monotonic() + 10
    while time.monotonic() < end:
        r = cli("exec", name, "test", "-e", path)
        if r.returncode == 0:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared in {name}")


def _round_trip(trap, name, tmp_path):
    """cp out (a file, a directory of unknown owners, the image's nsswitch.conf)
    and in (a file, a directory), then back out again."""
    out = tmp_path / "out"
    out.mkdir()
    cp(trap, name, f"{name}:/bin/busybox", str(out / "busybox"))
    assert (out / "busybox").read_bytes() == (trap.rootfs / "bin" / "busybox").read_bytes()
    cp(trap, name, f"{name}:/data", str(out))
    assert (out / "data" / "owned").read_text() == "owned by nobody the image knows\n"
    assert os.stat(out / "data" / "owned").st_uid == 0          # docker's default: the caller's
    cp(trap, name, "-a", f"{name}:/data", str(out / "kept"))
    assert os.stat(out / "kept" / "owned").st_uid == UNKNOWN_ID  # -a: the numeric owner, no name looked up
    cp(trap, name, f"{name}:/etc/nsswitch.conf", str(out))

    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f").write_text("from the host\n")
    os.chown(src / "sub" / "f", UNKNOWN_ID + 1, UNKNOWN_ID + 1)
    cp(trap, name, str(src / "sub"), f"{name}:/data/")
    cp(trap, name, "-a", str(src / "sub" / "f"), f"{name}:/etc/passwd-copy")
    back = tmp_path / "back"
    back.mkdir()
    cp(trap, name, "-a", f"{name}:/data/sub", str(back))
    assert (back / "sub" / "f").read_text() == "from the host\n"
    assert os.stat(back / "sub" / "f").st_uid == 0               # made by the container's root
    cp(trap, name, "-a", f"{name}:/etc/passwd-copy", str(back))
    assert os.stat(back / "passwd-copy").st_uid == UNKNOWN_ID + 1


def test_cp_of_a_created_container_runs_nothing_of_the_image(trap, names, tmp_path):
    # the reproduction: create (never started), then cp out
    name = names("nss-created")
    assert cli("create", "--name", name, REF, "true").returncode == 0
    _round_trip(trap, name, tmp_path)
    assert trap.ran() == ""


def test_cp_of_a_running_container_runs_nothing_of_the_image(trap, names, tmp_path):
    name = names("nss-running")
    r = cli("run", "-d", "--name", name, REF, "sh", "-c", "touch /tmp/up; sleep 60")
    assert r.returncode == 0, r.stderr
    _wait_running(name, "/tmp/up")
    _round_trip(trap, name, tmp_path)
    # exec --user resolves the name from the container's files, read from the host side
    r = cli("exec", "-u", "user", name, "id", "-u")
    assert (r.returncode, r.stdout) == (0, "1000\n"), r.stderr
    assert trap.ran() == ""


def test_cp_of_a_container_that_plants_the_module_itself(trap, busybox, names, tmp_path):
    """An innocent image; the running container writes nsswitch.conf and the
    module into its own files, then the host copies from and into it."""
    plant = tmp_path / "plant"
    plant.mkdir()
    shutil.copy2(trap.module, plant / "libnss_evil.so.2")
    (plant / "nsswitch.conf").write_text("passwd: evil\ngroup: evil\n")
    script = "cp /plant/nsswitch.conf /etc/; for d in " + " ".join(f"/{d}" for d in _lib_dirs()) + \
             "; do mkdir -p $d && cp /plant/libnss_evil.so.2 $d/; done; chown 4321:4321 /etc/passwd; " \
             "touch /tmp/planted; sleep 60"
    name = names("nss-planted")
    r = cli("run", "-d", "--name", name, "-v", f"{plant}:/plant:ro", "--rootfs", str(busybox), "sh", "-c", script)
    assert r.returncode == 0, r.stderr
    _wait_running(name, "/tmp/planted")
    cp(trap, name, f"{name}:/etc/passwd", str(tmp_path / "passwd"))
    cp(trap, name, str(plant / "nsswitch.conf"), f"{name}:/tmp/")
    assert cli("stop", "-t", "0", name).returncode == 0
    cp(trap, name, f"{name}:/etc", str(tmp_path / "etc"))   # its kept writable layer
    assert (tmp_path / "etc" / "nsswitch.conf").exists()
    assert trap.ran() == ""
    assert not (busybox / "etc" / "nsswitch.conf").exists()


def test_export_commit_and_volume_copy_up_run_nothing_of_the_image(trap, names, tmp_path, store_root):
    name = names("nss-export")
    r = cli("run", "--name", name, REF, "sh", "-c", "chown 4321 /etc/passwd; echo changed > /data/new")
    assert r.returncode == 0, r.stderr
    r = cli("export", "-o", str(tmp_path / "fs.tar"), name)
    assert r.returncode == 0, r.stderr
    with tarfile.open(tmp_path / "fs.tar") as t:
        assert t.getmember("etc/nsswitch.conf").uname == ""   # numeric owners only
    assert trap.ran() == "", "export"
    r = cli("commit", name, "local/evil-nss:committed")
    assert r.returncode == 0, r.stderr
    assert trap.ran() == "", "commit"
    try:
        # a volume over /etc and one over the module's directory: both copied up from the image
        mounts = [Mount("nss-etc", "/etc", type="volume"),
                  Mount("nss-lib", "/" + _lib_dirs()[-1], type="volume")]
        out = Container("local/evil-nss:committed", command=["cat", "/etc/nsswitch.conf", "/data/new"],
                        mounts=mounts).run(capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith("passwd: evil") and out.stdout.endswith("changed\n")
    finally:
        for v in ("nss-etc", "nss-lib"):
            volumes.remove(v)
        image.remove("local/evil-nss:committed", force=True, root=store_root)
    assert trap.ran() == ""


# ---- resolving paths inside the container, never out of it ---------------------------------


@pytest.fixture
def hostile_root(tmp_path):
    """A directory standing for a container's root, full of links that point
    out of it, and a host file they would reach."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "hostname").write_text("the container's\n")
    (root / "abs").symlink_to("/")
    (root / "up").symlink_to("../../../../../../..")
    (root / "etc" / "file-link").symlink_to("/etc/hostname")
    (root / "selfroot").symlink_to("/proc/self/root")
    (root / "loop").symlink_to("loop")
    return root


@pytest.fixture(params=["openat2", "walk"])
def resolver(request, monkeypatch):
    """open_in_root as the kernel does it (openat2) and as the fallback walk does."""
    if request.param == "walk":
        monkeypatch.setattr(pc_copy, "_have_openat2", False)
    return pc_copy.open_in_root


def _read(resolver, root, path):
    rfd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    try:
        fd = resolver(rfd, path, os.O_RDONLY)
        with os.fdopen(fd) as f:
            return f.read()
    finally:
        os.close(rfd)


@pytest.mark.parametrize("path", ["/abs/etc/hostname", "/up/etc/hostname", "/../../etc/hostname",
                                  "etc/file-link", "/up/up/abs/up/etc/./hostname"])
def test_links_out_of_the_root_stay_inside(resolver, hostile_root, path):
    assert _read(resolver, hostile_root, path) == "the container's\n"


def test_magic_links_and_loops_are_refused(resolver, hostile_root):
    for path, errors in (("/selfroot/etc/hostname", (OSError,)), ("/loop", (OSError,))):
        with pytest.raises(errors):
            _read(resolver, hostile_root, path)


def test_last_link_is_not_followed_with_nofollow(resolver, hostile_root):
    rfd = os.open(hostile_root, os.O_PATH | os.O_DIRECTORY)
    try:
        fd = resolver(rfd, "/etc/file-link", os.O_PATH | os.O_NOFOLLOW)
        try:
            assert os.readlink("", dir_fd=fd) == "/etc/hostname"
        finally:
            os.close(fd)
    finally:
        os.close(rfd)


def test_cp_into_links_that_point_out_writes_inside(busybox, names, tmp_path):
    """cp HOST c:/abs/tmp/ where /abs -> / and c:/up/ where /up -> ../../..:
    both land in the container's root, never the host's."""
    name = names("links-out")
    r = cli("run", "-d", "--name", name, "--rootfs", str(busybox), "sh", "-c",
            "ln -s / /abs; ln -s ../../../../.. /up; ln -s /etc/passwd /pw; touch /tmp/ready; sleep 60")
    assert r.returncode == 0, r.stderr
    _wait_running(name, "/tmp/ready")
    src = tmp_path / "pc-cp-probe-file"
    src.write_text("x\n")
    for running in (True, False):
        if not running:
            assert cli("stop", "-t", "0", name).returncode == 0
        for dest in ("/abs/tmp/", "/up/tmp/", "/up/"):
            r = cli("cp", str(src), f"{name}:{dest}")
            assert r.returncode == 0, r.stderr
        assert not os.path.exists("/tmp/pc-cp-probe-file") and not os.path.exists("/pc-cp-probe-file")
        r = cli("cp", f"{name}:/abs/etc/passwd", str(tmp_path / "passwd"))
        assert r.returncode == 0, r.stderr
        assert (tmp_path / "passwd").read_bytes() == (busybox / "etc" / "passwd").read_bytes()
        # the link itself when it is the last name, as docker
        r = cli("cp", f"{name}:/pw", str(tmp_path / "pw"))
        assert r.returncode == 0 and os.readlink(tmp_path / "pw") == "/etc/passwd"
        os.unlink(tmp_path / "pw")
    r = cli("cp", f"{name}:/tmp/pc-cp-probe-file", str(tmp_path / "back"))
    assert r.returncode == 0, r.stderr
    assert not (busybox / "tmp" / "pc-cp-probe-file").exists()


# ---- rootless: a user's own store, the work done as root of a user namespace ---------------

SUB_START, SUB_COUNT = 400000, 65536


def test_rootless_cp_of_a_created_container_runs_nothing_of_the_image(trap, workdir, request):
    """nobody (with a subordinate id range) imports the image, creates a
    container and copies in and out of it: the copy runs as root of a user
    namespace, the stopped container's overlay in a mount namespace of its own."""
    if not os.path.exists("/usr/bin/newuidmap"):
        pytest.fail("the rootless tests need newuidmap: apt-get install uidmap")
    base = workdir / request.node.name
    base.mkdir(mode=0o755)
    os.chmod(workdir, 0o755)
    store = base / "store"
    store.mkdir()
    os.chown(store, NOBODY, NOBODY)
    out_dir = base / "out"
    out_dir.mkdir()
    os.chown(out_dir, NOBODY, NOBODY)
    src = base / "from-host"
    src.write_text("from nobody's host side\n")
    os.chmod(base / "from-host", 0o644)
    os.chmod(trap.base, 0o755)
    os.chmod(trap.base / "rootfs.tar", 0o644)

    def fn():
        ref = image.import_(str(trap.base / "rootfs.tar"), "local/evil-nss:rootless", root=str(store))
        c = containers.create(ref, ["true"], name="nss-rootless", root=str(store))
        results = []
        for args in (("out", "/bin/busybox", str(out_dir / "busybox")), ("out", "/data", str(out_dir)),
                     ("in", str(src), "/data/"), ("out", "/data/from-host", str(out_dir / "back"))):
            (pc_copy.copy_from_container if args[0] == "out" else pc_copy.copy_into_container)(c, *args[1:])
            results.append(trap.ran())
        # a running one (unmanaged: no monitor to start as nobody): its
        # /proc/PID/root, the copy as root of the user's own user namespace
        running = Container(ref, command=["sleep", "30"], root=str(store), remove=False)
        running.start()
        try:
            root_fd = os.open(f"/proc/{running.pid}/root", os.O_PATH | os.O_DIRECTORY)
            try:
                pc_copy._as_container_owner(pc_copy.copy_out, root_fd, "/data", str(out_dir / "running"), False)
                results.append(trap.ran())
                pc_copy._as_container_owner(pc_copy.copy_in, root_fd, str(src), "/etc/", False)
                results.append(trap.ran())
                pc_copy._as_container_owner(pc_copy.copy_out, root_fd, "/etc/from-host",
                                            str(out_dir / "running-back"), False)
                results.append(trap.ran())
            finally:
                os.close(root_fd)
        finally:
            running.kill()
            running.wait()
            running.remove()
        return results
    try:
        result = as_nobody(fn, subids=(str(base), SUB_START, SUB_COUNT))
        assert "ok" in result, result
        assert result["ok"] == [""] * 7
        assert (out_dir / "busybox").read_bytes() == (trap.rootfs / "bin" / "busybox").read_bytes()
        assert (out_dir / "data" / "owned").read_text() == "owned by nobody the image knows\n"
        assert (out_dir / "back").read_text() == "from nobody's host side\n"
        assert (out_dir / "running-back").read_text() == "from nobody's host side\n"
        assert (out_dir / "running" / "owned").exists()
        assert os.stat(out_dir / "back").st_uid == NOBODY       # the user's own file
        [cdir] = os.listdir(store / "containers")
        assert not os.path.exists(store / "containers" / cdir / "upper" / ".nss-ran")
        assert trap.ran() == ""
    finally:
        subprocess.run(["rm", "-rf", str(base)], check=True)


def test_cp_bad_input_is_one_line_and_leaves_nothing(busybox, names, tmp_path):
    name = names("cp-bad-input")
    assert cli("create", "--name", name, "--rootfs", str(busybox), "true").returncode == 0
    dest = tmp_path / "dest"
    dest.mkdir()
    for args, message in (
        ((f"{name}:/missing", str(dest)), "could not find the file /missing in the container"),
        ((f"{name}:/etc/passwd", str(tmp_path / "no" / "such")), "destination directory"),
        ((str(tmp_path / "absent"), f"{name}:/tmp/"), "could not find the file"),
        ((str(dest), f"{name}:/no/such/dir/"), "does not exist in the container"),
        ((str(dest), f"{name}:/no/such/x"), "destination directory /no/such does not exist in the container"),
        ((f"{name}:/bin", str(tmp_path / "busybox-file")), None),
    ):
        if message is None:   # a directory over an existing file
            (tmp_path / "busybox-file").write_text("a file\n")
            (dest / "x").write_text("")
            r = cli("cp", str(dest), f"{name}:/etc/passwd")
            assert r.returncode != 0 and "cannot overwrite non-directory" in r.stderr, r.stderr
            continue
        r = cli("cp", *args)
        assert r.returncode != 0, args
        assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "Traceback" not in r.stderr
    assert sorted(os.listdir(dest)) == ["x"] and sorted(os.listdir(tmp_path)) == ["busybox-file", "dest"]
    r = cli("cp", "nosuchcontainer:/etc", str(dest))
    assert r.returncode != 0 and "no such container" in r.stderr.lower()


def test_helpers_import_nothing_from_the_callers_directory(busybox, names, tmp_path):
    """`python -m` puts its working directory first on sys.path. A user who
    runs pycontain from a container's directory (a volume's _data, which the
    container writes) must not have the root monitor or cp helper import a
    module planted there."""
    planted = tmp_path / "volume-data"
    planted.mkdir()
    marker = tmp_path / "planted-module-ran"
    (planted / "json.py").write_text(f"open({str(marker)!r}, 'a').write('ran\\n')\nraise ImportError('planted')\n")
    console = os.path.join(os.path.dirname(sys.executable), "pycontain")   # no working directory on its path
    assert os.path.exists(console)

    def run_here(*args):
        return subprocess.run([console, *args], capture_output=True, text=True, timeout=60, cwd=planted)
    name = names("cwd-import")
    r = run_here("run", "-d", "--name", name, "--rootfs", str(busybox), "sleep", "60")
    assert not marker.exists(), "the monitor imported the planted module"
    assert r.returncode == 0, r.stderr
    assert run_here("stop", "-t", "0", name).returncode == 0
    r = run_here("cp", f"{name}:/etc/passwd", str(tmp_path / "passwd"))
    assert not marker.exists(), "the cp helper imported the planted module"
    assert r.returncode == 0, r.stderr


# ---- cp with "-": tar streams (issue 13) -----------------------------------------------------


def cp_stream(*args, data=b""):
    return subprocess.run([sys.executable, "-m", "pycontain", "cp", *args], input=data, capture_output=True,
                          timeout=60)


def _tar(*members) -> bytes:
    """A tar archive of (TarInfo, bytes or None) members."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _member(name, kind=tarfile.REGTYPE, linkname="", uid=0):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.uid, info.gid = kind, linkname, uid, uid
    return info


def test_cp_tar_streams_keep_numeric_owners_and_run_nothing_of_the_image(trap, names, tmp_path, store_root):
    name = names("nss-stream")
    assert cli("create", "--name", name, REF, "true").returncode == 0
    r = cp_stream(f"{name}:/data", "-")
    assert r.returncode == 0, r.stderr
    with tarfile.open(fileobj=io.BytesIO(r.stdout)) as tar:
        owned = tar.getmember("data/owned")
        assert (owned.uid, owned.uname) == (UNKNOWN_ID, "")        # the number, no name looked up
        assert tar.extractfile(owned).read() == b"owned by nobody the image knows\n"
    r = cp_stream("-", f"{name}:/data", data=_tar((_member("in/f", uid=UNKNOWN_ID + 2), b"from a stream\n")))
    assert r.returncode == 0, r.stderr
    assert cli("cp", "-a", f"{name}:/data/in/f", str(tmp_path / "f")).returncode == 0
    assert (tmp_path / "f").read_text() == "from a stream\n"
    assert os.stat(tmp_path / "f").st_uid == UNKNOWN_ID + 2
    assert trap.ran() == ""
    assert not [n for n in os.listdir(store_root) if n.startswith(".pycontain-cp-")]   # staging removed


def test_cp_tar_stream_in_never_writes_outside_the_container(busybox, names, tmp_path, store_root):
    """The archive is unpacked on the host (in a staging directory) before the
    copy into the container: its names and links must never lead out of it."""
    name = names("stream-hostile")
    assert cli("create", "--name", name, "--rootfs", str(busybox), "true").returncode == 0
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    # a link to a host directory, then a file through it
    r = cp_stream("-", f"{name}:/tmp", data=_tar((_member("l", tarfile.SYMTYPE, str(outside)), None),
                                                 (_member("l/probe"), b"escaped\n")))
    assert r.returncode != 0 and b"passes through a link" in r.stderr, r.stderr
    assert os.listdir(outside) == []
    # a link to a host file, then a file of the same name: the link is replaced, not written through
    r = cp_stream("-", f"{name}:/tmp", data=_tar((_member("pw", tarfile.SYMTYPE, str(victim)), None),
                                                 (_member("pw"), b"overwritten\n")))
    assert r.returncode == 0, r.stderr
    assert victim.read_text() == "untouched\n"
    assert cli("cp", f"{name}:/tmp/pw", str(tmp_path / "pw")).returncode == 0
    assert (tmp_path / "pw").read_text() == "overwritten\n"
    # names and hard links that climb out
    for members in ([(_member("../../escaped"), b"x\n")],
                    [(_member("h", tarfile.LNKTYPE, "../../victim"), None)]):
        r = cp_stream("-", f"{name}:/tmp", data=_tar(*members))
        assert r.returncode != 0 and b"outside the destination" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and b"Traceback" not in r.stderr
    assert victim.read_text() == "untouched\n" and os.listdir(outside) == []
    r = cp_stream("-", f"{name}:/tmp", data=b"not a tar archive")
    assert r.returncode != 0 and b"invalid tar archive" in r.stderr and b"Traceback" not in r.stderr
    assert not [n for n in os.listdir(store_root) if n.startswith(".pycontain-cp-")]
