"""Escapes at start, from a malicious image alone (issue 21).

Each image is built here from the security rootfs and holds nothing but what
an image can: files, a WORKDIR, an ENTRYPOINT, an ENV, VOLUMEs. The launching
process (this one) has volumes and other host directories open, as a real
launcher does. Every attempt must fail, and the marker outside the container
must be untouched.

- leaked descriptors: WORKDIR, ENTRYPOINT or PATH through /proc/self/fd/N
  (runc's CVE-2024-21626)
- masked paths bound from a /dev/null the container controls (CVE-2025-31133)
- device nodes in a volume or a bind with the library's defaults (no cgroup)
- --user 4294967295, (uid_t)-1: "unchanged" to setresuid, so still root
and what every start must give the container whatever the launcher has:
umask 0022, and the parent-death signal after the change of ids.
"""
import io
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tarfile
import time

import pytest

from nobody import NobodysCopy, as_nobody
from pycontain import Container, Mount, containers, image, volumes
from pycontain.errors import CommandNotExecutable, CommandNotFound, ConfigError, LaunchError
from sechelpers import probe, run

pytestmark = pytest.mark.usefixtures("leakcheck")

HOST_FD = 200   # where the launching process keeps a host directory open


def _member(name, kind=tarfile.REGTYPE, data=None, **kw):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    for k, v in kw.items():
        setattr(ti, k, v)
    if data is not None:
        ti.size = len(data)
    return ti, (io.BytesIO(data) if data is not None else None)


@pytest.fixture
def make_image(rootfs, tmp_path, store_root):
    """make_image(changes, extra members) -> a reference in the test's store,
    the security rootfs plus the members, with docker-import changes."""
    refs = []

    def make(changes, members=()):
        ref = f"local/start-escape:{len(refs)}"
        tar = tmp_path / f"image-{len(refs)}.tar"
        with tarfile.open(tar, "w", format=tarfile.PAX_FORMAT) as t:
            t.add(rootfs, arcname=".")
            for ti, f in members:
                t.addfile(ti, f)
        image.import_(str(tar), ref, changes=list(changes), root=store_root)
        refs.append(ref)
        return ref

    yield make
    for ref in refs:
        image.remove(ref, force=True, root=store_root)
    image.prune(all_images=True, root=store_root)


@pytest.fixture
def host_dir(workdir, probe_binary):
    """A host directory the container must never reach, kept open at HOST_FD
    by this (the launching) process: a marker file and a program."""
    d = workdir / f"host-only-{os.getpid()}"
    d.mkdir()
    (d / "marker").write_text("host secret\n")
    shutil.copy2(probe_binary, d / "host-only-probe")
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    os.dup2(fd, HOST_FD, inheritable=False)
    os.close(fd)
    before = sorted(os.listdir(d))
    yield d
    os.close(HOST_FD)
    try:
        assert sorted(os.listdir(d)) == before, "the container wrote into the host directory"
        assert (d / "marker").read_text() == "host secret\n"
    finally:
        shutil.rmtree(d)


def _run(ref, command=None, **kw):
    return Container(ref, command=command, **kw).run(capture_output=True, text=True, timeout=60)


# ---- 1. the launcher's descriptors ---------------------------------------------------------


@pytest.mark.parametrize("workdir_", [f"/proc/self/fd/{HOST_FD}", f"/proc/1/fd/{HOST_FD}",
                                      f"/proc/thread-self/fd/{HOST_FD}", f"/dev/fd/{HOST_FD}/."])
def test_workdir_through_a_launcher_descriptor_does_not_lead_out(make_image, host_dir, workdir_):
    ref = make_image(["VOLUME /data", f"WORKDIR {workdir_}"])
    with pytest.raises(LaunchError) as exc:
        r = _run(ref, ["sh", "-c", "pwd; cat marker; ls ../../..; echo pwned > escaped"])
        pytest.fail(f"started in {workdir_}: {r.stdout!r} {r.stderr!r}")
    # the descriptor is gone (ENOENT, and /proc is no place to make it) and
    # a magic link is not followed (ELOOP): either way, no start
    assert exc.value.stage in ("chdir", "mkdir"), exc.value


def test_entrypoint_through_a_launcher_descriptor_is_refused(make_image, host_dir):
    ref = make_image(["VOLUME /data", f'ENTRYPOINT ["/proc/self/fd/{HOST_FD}/host-only-probe"]', 'CMD ["caps"]'])
    with pytest.raises((CommandNotFound, CommandNotExecutable)):
        r = _run(ref)
        pytest.fail(f"ran the host's program: {r.stdout!r} {r.stderr!r}")


def test_path_through_a_launcher_descriptor_is_skipped(make_image, host_dir):
    ref = make_image(["VOLUME /data", f"ENV PATH=/proc/self/fd/{HOST_FD}:/bin"])
    with pytest.raises(CommandNotFound):
        r = _run(ref, ["host-only-probe", "caps"])
        pytest.fail(f"ran the host's program: {r.stdout!r} {r.stderr!r}")


@pytest.fixture(scope="module", autouse=True)
def warm_store(store_root):
    """The process's record database, opened before the leak checks look."""
    return containers.shared_store()


def test_exec_workdir_through_a_launcher_descriptor_does_not_lead_out(rootfs, host_dir):
    # exec runs the same start path, in the running container's namespaces
    c = containers.run(rootfs=str(rootfs), command=["sleep", "60"])
    try:
        with pytest.raises(LaunchError):
            r = c.exec_run(["sh", "-c", "pwd; cat marker; echo pwned > escaped"], workdir=f"/proc/self/fd/{HOST_FD}")
            pytest.fail(f"exec ran in the host's directory: {r.stdout!r}")
        assert c.exec_run(["pwd"], workdir="/tmp").stdout == b"/tmp\n"
    finally:
        c.remove(force=True)


def test_a_working_directory_through_a_symlink_stays_inside(make_image, host_dir):
    # the control: an image's own symlink resolves inside its root, and a
    # missing directory is made for the user it runs as
    ref = make_image(["WORKDIR /link/made"],
                     [_member("real", tarfile.DIRTYPE, mode=0o777), _member("link", tarfile.SYMTYPE, linkname="/real")])
    r = _run(ref, ["sh", "-c", "pwd -P; stat -c %u /real/made"], user="1000")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["/real/made", "1000"]


def test_the_launchers_descriptors_are_closed_at_clone(make_image, host_dir):
    # at "created" the container's process has not exec'd yet: every
    # descriptor it holds is one it could follow until then
    c = Container(make_image(["VOLUME /data"]), command=["true"])
    try:
        c.create()
        held = {n: os.readlink(f"/proc/{c.pid}/fd/{n}") for n in os.listdir(f"/proc/{c.pid}/fd")}
    finally:
        c.remove()
    assert str(host_dir) not in held.values(), held
    assert not [t for t in held.values() if "/volumes/" in t], held


def test_only_stdio_reaches_the_command(make_image, host_dir):
    ref = make_image(["VOLUME /data", "VOLUME /cache"])
    r = _run(ref, ["ls", "/proc/self/fd"])
    assert {int(x) for x in r.stdout.split()} <= {0, 1, 2, 3}, r.stdout


# ---- 2. masked paths and /dev/null -----------------------------------------------------------


@pytest.mark.parametrize("where", ["/dev", "/proc/sys", "/sys/kernel"])
def test_an_image_volume_over_the_kernel_filesystems_is_refused(make_image, where):
    # /dev/null a symlink to the host's core_pattern, in a volume over /dev:
    # every masked file would have been a bind of it (only ever read here)
    ref = make_image([f"VOLUME {where}"], [_member("dev", tarfile.DIRTYPE, mode=0o755),
                                           _member("dev/null", tarfile.SYMTYPE,
                                                   linkname="/proc/sys/kernel/core_pattern")])
    before = volumes.list()
    with pytest.raises(ConfigError, match=where):
        r = _run(ref, ["cat", "/proc/keys"])
        pytest.fail(f"started with a VOLUME at {where}: {r.stdout!r}")
    assert volumes.list() == before


@pytest.mark.parametrize("target", ["/dev", "/proc/keys", "/sys"])
def test_user_mounts_over_the_kernel_filesystems_are_refused(rootfs, host_marker, target):
    with pytest.raises(ConfigError):
        Container(rootfs=rootfs, command=["true"], mounts=[Mount(str(host_marker.parent), target)])
    with pytest.raises(ConfigError):
        Container(rootfs=rootfs, command=["true"], mounts=[Mount("vol-kernel", target, type="volume")])


def test_lxcfs_style_proc_binds_stay_allowed(rootfs, host_marker):
    r = run(rootfs, "cat", "/proc/uptime", mounts=[Mount(str(host_marker), "/proc/uptime", read_only=True)])
    assert r.stdout == "host secret\n"


def test_masked_paths_use_the_hosts_dev_null(rootfs, host_marker):
    # the container's /dev/null is whatever is bound there (here a host
    # file): masking must not bind it over /proc/keys and the others
    r = run(rootfs, "sh", "-c", "cat /proc/keys /proc/timer_list; echo pwned > /proc/keys; echo rc=$?",
            mounts=[Mount(str(host_marker), "/dev/null")])
    assert "host secret" not in r.stdout
    assert r.stdout.strip() == "rc=0"     # written into the real /dev/null
    assert host_marker.read_text() == "host secret\n"


# ---- 3. device nodes with the library's defaults (no cgroup, no device rules) ----------------


LOOP0 = os.makedev(7, 0)


def test_an_images_device_node_is_not_copied_into_its_volume(make_image):
    ref = make_image(["VOLUME /data"], [_member("data", tarfile.DIRTYPE, mode=0o755),
                                        _member("data/loop0", tarfile.BLKTYPE, mode=0o666, devmajor=7, devminor=0),
                                        _member("data/file", data=b"kept\n")])
    r = _run(ref, ["sh", "-c", "cat /data/file; /t/probe open /data/loop0"])
    assert r.stdout.split("\n")[0] == "kept"
    assert r.stdout.split("\n")[1].startswith("ERR"), r.stdout


def test_a_device_node_in_a_volume_is_inert(rootfs):
    # as a container whose device rules allowed mknod would leave it
    vol = volumes.create("devnode-vol")
    try:
        os.mknod(os.path.join(vol.mountpoint, "loop0"), stat.S_IFBLK | 0o666, LOOP0)
        out = probe(rootfs, "open", "/v/loop0", mounts=[Mount("devnode-vol", "/v", type="volume")])
    finally:
        volumes.remove("devnode-vol")
    assert out == "ERR 13"    # EACCES: mounted nodev


def test_a_device_node_in_a_bind_is_inert_without_device_rules(rootfs, tmp_path):
    os.mknod(tmp_path / "loop0", stat.S_IFBLK | 0o666, LOOP0)
    assert probe(rootfs, "open", "/b/loop0", mounts=[Mount(str(tmp_path), "/b")]) == "ERR 13"


# ---- 4. (uid_t)-1 --------------------------------------------------------------------------------


@pytest.mark.parametrize("kw", [{"user": "4294967295"}, {"user": "0:4294967295"}, {"user": "1000:4294967295"},
                                {"group_add": ["4294967295"]}, {"user": "4294967296"}])
def test_id_4294967295_is_refused(rootfs, kw):
    with pytest.raises(ConfigError, match="4294967295|4294967296"):
        r = run(rootfs, "id", **kw)
        pytest.fail(f"ran as {r.stdout!r}")


def test_an_images_user_4294967295_is_refused(make_image):
    passwd = (b"root:x:0:0:root:/root:/bin/sh\n"
              b"evil:x:4294967295:4294967295:evil:/:/bin/sh\n")
    ref = make_image([], [_member("etc/passwd", data=passwd, mode=0o644)])
    with pytest.raises(ConfigError, match="4294967295"):
        r = _run(ref, ["id"], user="evil")
        pytest.fail(f"ran as {r.stdout!r}")


# ---- the process the command starts as --------------------------------------------------------


@pytest.fixture
def umask_077():
    old = os.umask(0o077)
    yield
    os.umask(old)


UMASK_PROBE = "umask; stat -c %a / /etc /etc/hosts /tmp; touch /tmp/f; mkdir /tmp/d; stat -c %a /tmp/f /tmp/d"
UMASK_EXPECTED = ["0022", "755", "755", "644", "1777", "644", "755"]


@pytest.mark.parametrize("user, layer", [(None, "memory"), ("1000", "memory"), ("1000", "disk")])
def test_the_launchers_umask_does_not_leak_in(rootfs, umask_077, user, layer):
    r = run(rootfs, "sh", "-c", UMASK_PROBE, user=user, writable_layer=layer)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == UMASK_EXPECTED


@pytest.fixture(scope="module")
def nobody_rootfs(rootfs, workdir):
    copy = NobodysCopy(rootfs, workdir / "rootless-start")
    yield copy.rootfs, copy.store
    copy.remove()


def _rootless(nobody_rootfs, *command, umask=None):
    rootfs, store = nobody_rootfs

    def fn():
        if umask is not None:
            os.umask(umask)
        r = Container(rootfs=str(rootfs), command=list(command), root=str(store)).run(
            capture_output=True, text=True, timeout=60)
        return [r.returncode, r.stdout, r.stderr]

    out = as_nobody(fn)
    assert "ok" in out, out
    return out["ok"]


def test_the_launchers_umask_does_not_leak_in_rootless(nobody_rootfs):
    code, stdout, stderr = _rootless(nobody_rootfs, "sh", "-c", UMASK_PROBE, umask=0o077)
    assert code == 0, stderr
    assert stdout.split() == UMASK_EXPECTED


@pytest.mark.parametrize("user", [None, "1000", "1000:1000"])
def test_pdeathsig_survives_the_change_of_ids(rootfs, user):
    assert probe(rootfs, "pdeathsig", user=user) == str(int(signal.SIGKILL))


def test_pdeathsig_rootless(nobody_rootfs):
    code, stdout, stderr = _rootless(nobody_rootfs, "/t/probe", "pdeathsig")
    assert stdout.strip() == str(int(signal.SIGKILL)), (code, stdout, stderr)


def test_a_container_of_another_user_dies_with_its_launcher(rootfs):
    code = ("import sys\nfrom pycontain import Container\n"
            f"c = Container(rootfs={str(rootfs)!r}, command=['sleep', '300'], user='1000')\n"
            "c.start()\nprint(c.pid, flush=True)\nsys.stdin.read()\n")
    launcher = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        pid = int(launcher.stdout.readline())
    finally:
        launcher.kill()
        launcher.wait()
        launcher.stdin.close()
        launcher.stdout.close()
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{pid}") and _state(pid) != "Z" and time.monotonic() < deadline:
        time.sleep(0.02)
    alive = os.path.exists(f"/proc/{pid}") and _state(pid) != "Z"
    if alive:
        os.kill(pid, signal.SIGKILL)    # our launcher's container: ended here
    assert not alive, "the container outlived its launcher"


def _state(pid) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


# ---- binds made fd onto fd -----------------------------------------------------------------------


def test_a_read_only_bind_is_read_only_in_its_submounts_too(rootfs, tmp_path):
    # the flags are set on the detached clone, each of its mounts (docker 25's
    # recursive read-only): a host mount under a read-only bind is not a way
    # to write to the host
    sub = tmp_path / "sub"
    sub.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "rosub", str(sub)], check=True)
    try:
        r = run(rootfs, "sh", "-c", "touch /b/top; echo rc=$?; touch /b/sub/x; echo rc=$?",
                mounts=[Mount(str(tmp_path), "/b", read_only=True)])
        assert r.stdout.split() == ["rc=1", "rc=1"], (r.stdout, r.stderr)
        assert os.listdir(sub) == [] and not (tmp_path / "top").exists()
    finally:
        subprocess.run(["umount", str(sub)], check=True)


def test_a_container_killed_before_its_command_ran_did_not_start(rootfs):
    c = Container(rootfs=rootfs, command=["true"])
    c.create()
    os.kill(c.pid, signal.SIGKILL)      # still in the launcher's code, waiting at "created"
    with pytest.raises(LaunchError, match="killed before it ran its command"):
        c.start()
    c.remove()


# ---- the ways kept for older kernels -------------------------------------------------------------


OLD_KERNEL = r'''
import ctypes, json, sys
from pycontain import Container, Mount
from pycontain.security import seccomp

# the launcher (and so its child) as on Linux 5.1: no open_tree, move_mount,
# mount_setattr (5.12) or close_range (5.9); the container's own filter is
# loaded after all of them ran
old = seccomp.load_profile({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
    {"names": ["open_tree", "move_mount", "mount_setattr", "close_range"],
     "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]})
bpf = seccomp.filter_for(old, frozenset())


class Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]


libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(22, 2, ctypes.byref(Prog(len(bpf) // 8, bpf)), 0, 0) != 0:   # PR_SET_SECCOMP, FILTER
    sys.exit(f"seccomp: {ctypes.get_errno()}")
if libc.syscall(436, 1000, 1000, 0) != -1 or ctypes.get_errno() != 38:       # close_range
    sys.exit("close_range is still there")
rootfs, host_dir, marker = sys.argv[1:4]
fd = __import__("os").open(host_dir, 0o200000)     # O_DIRECTORY, a descriptor to leak
r = Container(rootfs=rootfs, command=["sh", "-c",
              "ls /proc/self/fd | tr '\n' ' '; echo; cat /proc/keys | wc -c; "
              "echo 0 > /proc/sys/kernel/printk_ratelimit || echo ro; touch /b/x || echo rob; "
              f"ls /proc/self/fd/{fd}/ 2>&1 | grep -c {marker}; true"],
              mounts=[Mount(host_dir, "/b", read_only=True)]).run(capture_output=True, text=True)
c = Container(rootfs=rootfs, command=["true"])
c.create()      # waits at "created": what descriptors does it hold?
held = [__import__("os").readlink(f"/proc/{c.pid}/fd/{n}") for n in __import__("os").listdir(f"/proc/{c.pid}/fd")]
c.remove()
if any(h == host_dir for h in held):
    sys.exit(f"the created container holds the host directory: {held}")
try:
    escaped = Container(rootfs=rootfs, command=["cat", marker], workdir=f"/proc/self/fd/{fd}").run(
        capture_output=True, text=True).stdout
except Exception as e:
    escaped = type(e).__name__
print(json.dumps([r.returncode, r.stdout, r.stderr, escaped]))
'''


def test_the_ways_for_older_kernels(rootfs, host_marker):
    # masks bound through /proc/self/fd paths, read-only paths and binds
    # remounted by path, descriptors closed one by one from /proc/self/fd
    out = subprocess.run([sys.executable, "-c", OLD_KERNEL, str(rootfs), str(host_marker.parent), host_marker.name],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    code, stdout, stderr, escaped = json.loads(out.stdout)
    assert code == 0, stderr
    assert escaped == "LaunchError"
    lines = stdout.split("\n")
    assert {int(x) for x in lines[0].split()} <= {0, 1, 2, 3}, lines[0]
    assert lines[1:5] == ["0", "ro", "rob", "0"], (stdout, stderr)
    assert not (host_marker.parent / "x").exists()
