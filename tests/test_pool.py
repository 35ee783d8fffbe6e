"""pycontain.Pool: containers made ahead, one fresh container per command,
and nothing left behind when the pool closes or its process ends."""
import ctypes
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pycontain import (
    CommandNotFound, ConfigError, ContainerError, ContainerExitError, ContainerResult, ContainerTimeout, Pool,
)
from pycontain.security import seccomp

PR_GET_DUMPABLE = 3


def child_pids(parent=None) -> set:
    """The processes whose parent is this process (or `parent`)."""
    me = str(parent or os.getpid())
    kids = set()
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[1] == me:
                        kids.add(int(p))
            except OSError:
                pass
    return kids


def waiting_children(before, want, deadline=10.0):
    """The pool's containers waiting at "created": our children, once the
    pool's thread has made `want` of them."""
    end = time.monotonic() + deadline
    while True:
        kids = child_pids() - before
        if len(kids) == want or time.monotonic() > end:
            return kids
        time.sleep(0.01)


def own_memory_cgroup() -> Path:
    """Where this process's containers' memory cgroups are made (v1 here):
    under its own, which other processes on the machine do not share."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return Path("/sys/fs/cgroup/memory" + path)
    pytest.skip("no cgroup v1 memory controller here")


def test_run_is_subprocess_shaped(busybox, leakcheck):
    with Pool(rootfs=busybox, size=2) as pool:
        r = pool.run(["sh", "-c", "echo out; echo err >&2; cat; exit 3"], input=b"in", capture_output=True)
        assert isinstance(r, ContainerResult)
        assert (r.args, r.returncode, r.stdout, r.stderr) == (["sh", "-c", "echo out; echo err >&2; cat; exit 3"],
                                                              3, b"out\nin", b"err\n")
        r = pool.run(["echo", "héllo"], capture_output=True, text=True)
        assert (r.returncode, r.stdout, r.stderr) == (0, "héllo\n", "")
        # stdin is at EOF without input: cat ends at once
        assert pool.run(["cat"], capture_output=True).stdout == b""
        with pytest.raises(ContainerExitError) as e:
            pool.run(["false"], check=True)
        assert e.value.returncode == 1
        with pytest.raises(ContainerTimeout):
            pool.run(["sleep", "30"], timeout=0.3)


def test_output_without_capture_goes_to_our_stdout(busybox, leakcheck, capfd):
    with Pool(rootfs=busybox, size=1) as pool:
        r = pool.run(["sh", "-c", "echo to-out; echo to-err >&2"])
    assert (r.stdout, r.stderr) == (None, None)
    out, err = capfd.readouterr()
    assert ("to-out\n", "to-err\n") == (out, err)


def test_every_command_gets_a_fresh_container(busybox, leakcheck):
    with Pool(rootfs=busybox, size=2) as pool:
        first = pool.run(["sh", "-c", "echo secret > /tmp/left; hostname"], capture_output=True, text=True)
        second = pool.run(["sh", "-c", "cat /tmp/left; hostname"], capture_output=True, text=True)
        assert "No such file" in second.stderr
        assert first.stdout != second.stdout and first.id != second.id
        # the defaults stay a container's: root with Docker's capabilities, seccomp, pid 1, no network
        r = pool.run(["sh", "-c", "grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status; echo $$; "
                      "ls /sys/class/net"], capture_output=True, text=True)
        assert r.stdout.split() == ["CapEff:", "00000000a80425fb", "NoNewPrivs:", "1", "Seccomp:", "2",
                                    "1", "lo"]


def test_options_apply_and_the_entrypoint_stays(busybox, leakcheck):
    with Pool(rootfs=busybox, size=1, env=["WHO=pool"], workdir="/tmp", user="1000:1000",
              entrypoint=["sh", "-c"], read_only=True) as pool:
        r = pool.run(['echo $WHO $(pwd) $(id -u); touch /x'], capture_output=True, text=True)
    assert r.stdout == "pool /tmp 1000\n"
    assert "Read-only file system" in r.stderr


def test_the_pool_keeps_size_containers_ready_and_closing_leaves_nothing(busybox, store_root, leakcheck):
    before = child_pids()
    # only the pool's own: what other tests of the session left is not this test's to judge
    others = {p for p in own_memory_cgroup().rglob("pycontain-*") if p.is_dir()}
    pool = Pool(rootfs=busybox, size=3, memory="64m", pids_limit=50)
    try:
        kids = waiting_children(before, 3)
        assert len(kids) == 3
        for _ in range(5):
            assert pool.run(["true"]).returncode == 0
        time.sleep(0.3)
        assert len(waiting_children(before, 3)) == 3, "the pool is bounded and refilled"
        cgroups = [p for p in own_memory_cgroup().rglob("pycontain-*") if p.is_dir() and p not in others]
        assert len(cgroups) >= 3
    finally:
        pool.close()
    assert child_pids() - before == set()
    assert not [p for p in cgroups if p.exists()], "cgroups leaked"
    with pytest.raises(ContainerError, match="closed"):
        pool.run(["true"])
    pool.close()  # twice is fine


def test_bad_commands_and_options(busybox, leakcheck):
    with pytest.raises(ConfigError, match="command"):
        Pool(rootfs=busybox, command=["true"])
    with pytest.raises(ConfigError, match="size"):
        Pool(rootfs=busybox, size=0)
    with pytest.raises(ConfigError):
        Pool(rootfs=busybox, memory="lots")
    with Pool(rootfs=busybox, size=1) as pool:
        with pytest.raises(CommandNotFound):
            pool.run(["no-such-command"])
        with pytest.raises(ConfigError):
            pool.run("echo a string")
        with pytest.raises(ConfigError):
            pool.run(["echo", "nul\0"])
        assert pool.run(["true"]).returncode == 0, "the pool goes on after a bad command"


def cgroup_dirs(pids) -> list:
    """Every v1 hierarchy's directory of these processes that pycontain made."""
    dirs = set()
    for pid in pids:
        for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if "pycontain-" in path and controllers and not controllers.startswith("name="):
                dirs.add(Path("/sys/fs/cgroup", controllers.split(",")[0], path.lstrip("/")))
    return sorted(dirs)


PROGRAM = textwrap.dedent("""
    import sys, time
    from pycontain import Pool
    pool = Pool(rootfs=sys.argv[1], size=2, pids_limit=50)
    end = time.monotonic() + 10
    while pool.ready < 2 and time.monotonic() < end:
        time.sleep(0.01)
    print("ready", flush=True)
    sys.stdin.readline()  # until the test has seen the containers; then exit without close()
""")


@pytest.mark.parametrize("how", ["exit", "killed"])
def test_the_process_ending_ends_its_pool(busybox, store_root, how, leakcheck):
    """An exit without close() (atexit closes the pool) and a SIGKILL (the
    launcher's pdeathsig) both take the waiting containers along; the exit
    removes their cgroups too."""
    p = subprocess.Popen([sys.executable, "-c", PROGRAM, str(busybox)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "ready\n"
    kids = child_pids(p.pid)
    assert len(kids) == 2
    their_cgroups = cgroup_dirs(kids)
    assert their_cgroups and all(c.name.startswith("pycontain-") for c in their_cgroups)
    if how == "killed":
        p.send_signal(signal.SIGKILL)
    p.stdin.close()
    assert p.wait(20) == (-signal.SIGKILL if how == "killed" else 0)
    end = time.monotonic() + 5
    while any(os.path.exists(f"/proc/{k}") for k in kids) and time.monotonic() < end:
        time.sleep(0.02)
    assert not [k for k in kids if os.path.exists(f"/proc/{k}")], "the pool's containers outlived their process"
    left = [c for c in their_cgroups if c.exists()]
    for c in left:   # a SIGKILL leaves them, as for any container
        c.rmdir()
    if how == "exit":   # closed at exit: their cgroups went too
        assert not left, "cgroups leaked"
    assert not (store_root / "containers").exists() or not os.listdir(store_root / "containers")


def status_of(pid) -> dict:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def test_containers_wait_with_every_step_but_the_exec_done(busybox, leakcheck):
    """A waiting container already runs as its user, with its capabilities,
    no_new_privs and the seccomp filter: the start of a command pays only the exec."""
    before = child_pids()
    with Pool(rootfs=busybox, size=1, user="1000:1000") as pool:
        (kid,) = waiting_children(before, 1)
        st = status_of(kid)
        assert (st["Seccomp"], st["NoNewPrivs"], st["CapEff"], st["Uid"].split()[0]) == ("2", "1", "0" * 16, "1000")
        assert pool.run(["id", "-u"], capture_output=True).stdout == b"1000\n"


def test_a_profile_of_the_callers_waits_at_created(busybox, tmp_path, leakcheck):
    """A profile of the caller's may deny the read and write of the late wait:
    its containers wait at "created" (no filter yet) and get it before the exec."""
    profile = json.loads((Path(seccomp.__file__).parent / seccomp.DEFAULT_PROFILE_FILE).read_text())
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(profile))
    before = child_pids()
    with Pool(rootfs=busybox, size=1, seccomp=str(path)) as pool:
        (kid,) = waiting_children(before, 1)
        assert status_of(kid)["Seccomp"] == "0"
        r = pool.run(["grep", "Seccomp:", "/proc/self/status"], capture_output=True, text=True)
        assert r.stdout.split() == ["Seccomp:", "2"]


def test_with_an_init(busybox, leakcheck):
    """init=True: pycontain-init is pid 1 and runs the command it is given."""
    with Pool(rootfs=busybox, size=1, init=True) as pool:
        r = pool.run(["sh", "-c", "echo $$; cat /proc/1/cmdline | tr '\\0' ' '"], capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout.split()[0] != "1"
        assert r.stdout.split("\n", 1)[1].startswith("pycontain-init -- sh -c echo $$; cat /proc/1/cmdline")
        with pytest.raises(CommandNotFound):
            pool.run(["missing"])


# A host process that tries the waiting container: opens its memory, then
# tries to trace it (PTRACE_SEIZE, which does not stop it). Prints what it got.
_ATTACK = textwrap.dedent("""
    import ctypes, errno, os, sys
    pid = int(sys.argv[1])
    try:
        os.close(os.open(f"/proc/{pid}/mem", os.O_RDWR))
        print("mem opened")
    except OSError as e:
        print("mem", errno.errorcode[e.errno])
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    if libc.ptrace(0x4206, pid, None, None) == 0:
        print("ptrace attached")
    else:
        print("ptrace", errno.errorcode[ctypes.get_errno()])
""")


@pytest.mark.parametrize("user,attacker", [
    # root like the container's user, every capability but CAP_SYS_PTRACE (a
    # superset of the container's): passes the uid and capability checks
    (None, ["--bounding-set=-sys_ptrace", "--inh-caps=-all"]),
    ("1000:1000", ["--reuid=1000", "--regid=1000", "--clear-groups", "--bounding-set=-all", "--inh-caps=-all"]),
], ids=["root", "uid1000"])
def test_a_waiting_container_cannot_be_traced_by_its_uid(busybox, leakcheck, user, attacker):
    """A waiting container shares this process's memory (CLONE_VM) with its
    ids and capabilities already narrowed: were it dumpable, a host process
    of its uid could ptrace it or write /proc/PID/mem, i.e. this root
    process's memory. It is not; this process's own flag comes back once
    the pool is closed."""
    libc = ctypes.CDLL(None)
    assert libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 1
    before = child_pids()
    with Pool(rootfs=busybox, size=1, **({"user": user} if user else {})) as pool:
        (kid,) = waiting_children(before, 1)
        r = subprocess.run(["setpriv", *attacker, "/usr/bin/python3", "-c", _ATTACK, str(kid)],
                           capture_output=True, text=True, cwd="/", timeout=30)
        assert r.returncode == 0, r.stderr
        assert r.stdout.split("\n") == ["mem EACCES", "ptrace EPERM", ""]
        assert pool.run(["true"]).returncode == 0
    assert libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 1
