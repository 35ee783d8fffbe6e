"""What only the v2 driver does: its files and conversions, CLONE_INTO_CGROUP
with Cgroup.dir_fd(), controller delegation. Runs in the VM lane (tests/vm/run-v2.sh)."""
import ctypes
import os
import signal
import struct
import subprocess

import pytest

from pycontain import Container, cgroups

from .conftest import read, v2_only

pytestmark = [pytest.mark.cgroupv2, v2_only]

SYS_clone3 = 435
CLONE_INTO_CGROUP = 0x200000000


def test_limits_land_in_the_v2_files_with_runcs_conversions(busybox, cgroup_leakcheck):
    with Container(rootfs=busybox, command=["sleep", "10"], memory="64m", memory_swap="96m", cpus=0.5,
                   cpu_shares=512, pids_limit=33, cpuset_cpus="0") as c:
        c.start()
        p = c._cgroup.path
        assert read(p + "/memory.max") == str(64 << 20)
        if os.path.exists(p + "/memory.swap.max"):
            assert read(p + "/memory.swap.max") == str(32 << 20)
        assert read(p + "/cpu.max") == "50000 100000"
        assert read(p + "/cpu.weight") == "20"          # 1 + (512 - 2) * 9999 / 262142
        assert read(p + "/pids.max") == "33"
        assert read(p + "/cpuset.cpus") == "0"


def _clone3_into_cgroup(cgroup_fd: int, argv: list) -> tuple:
    """Starts argv with clone3(CLONE_INTO_CGROUP): the child is born inside the
    cgroup, there is no moment at which it runs outside. Returns (status, stdout)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    # struct clone_args (CLONE_ARGS_SIZE_VER2): flags pidfd child_tid parent_tid
    # exit_signal stack stack_size tls set_tid set_tid_size cgroup
    args = struct.pack("11Q", CLONE_INTO_CGROUP, 0, 0, 0, signal.SIGCHLD, 0, 0, 0, 0, 0, cgroup_fd)
    buf = ctypes.create_string_buffer(args, len(args))
    r, w = os.pipe()
    pid = libc.syscall(SYS_clone3, buf, ctypes.c_size_t(len(args)))
    if pid == 0:                        # the child: only exec, nothing of Python's state is used
        try:
            os.dup2(w, 1)
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    os.close(w)
    if pid < 0:
        os.close(r)
        err = ctypes.get_errno()
        raise OSError(err, f"clone3: {os.strerror(err)}")
    with os.fdopen(r, "rb") as f:
        out = f.read()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out


def test_clone_into_cgroup_with_the_dir_fd(cgroup_leakcheck):
    cg = cgroups.create("pycontain-test-clone3", cgroups.Limits.from_docker(memory="32m", pids_limit=5))
    try:
        fd = cg.dir_fd()
        status, out = _clone3_into_cgroup(fd, ["/bin/cat", "/proc/self/cgroup"])
        assert status == 0
        assert out.decode().strip().endswith("/pycontain-test-clone3")
        assert cg.pids() == []          # it ran, ended, and was counted there (not here)
    finally:
        cg.destroy()
    assert not os.path.exists(cg.path)


def test_a_controller_the_parent_cannot_delegate_is_a_clear_error(busybox, cgroup_leakcheck):
    # A cgroup with a process in it cannot enable controllers for children
    # (the v2 "no internal processes" rule): the error says what to do.
    root = cgroups.layout().v2[0]
    busy = os.path.join(root, "pycontain-test-busy")
    os.mkdir(busy)
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        with open(busy + "/cgroup.procs", "w") as f:
            f.write(str(sleeper.pid))
        with pytest.raises(cgroups.CgroupError) as e:
            Container(rootfs=busybox, command=["true"], cpus=0.5, cgroup_parent="/pycontain-test-busy").run()
        assert "cgroup_parent" in str(e.value)
        assert os.listdir(busy) == [n for n in os.listdir(busy) if not n.startswith("pycontain-")]
    finally:
        sleeper.kill()
        sleeper.wait()
        os.rmdir(busy)


def _in_forked_child(fn) -> str:
    """repr(fn()) run in a forked child of this test, which may change its own
    cgroup or seccomp filter (never this process's); 'error: ...' if it raised."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:    # pragma: no cover - reports over the pipe, never returns into pytest
        out = "error: nothing"
        try:
            os.close(r)
            out = repr(fn())
        except BaseException as e:
            out = f"error: {e!r}"
        finally:
            os.write(w, out.encode())
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read().decode()
    os.waitpid(pid, 0)
    return out


def _start_in(busybox, launcher_cgroup=None, seccomp_refuses_clone3=False):
    """In a forked child: [seccomp filter: clone3 -> ENOSYS, as docker's default
    profile does], [moves into launcher_cgroup and leaves room for no other
    process there (pids.max = 1)], runs a container with limits. Returns
    repr((exit status, cloned_into_cgroup)) or 'error: ...'."""
    def start():
        if seccomp_refuses_clone3:
            _refuse_clone3()
        if launcher_cgroup is not None:
            with open(launcher_cgroup + "/cgroup.procs", "w") as f:
                f.write("0")
            with open(launcher_cgroup + "/pids.max", "w") as f:
                f.write("1")
        # the host's network: no thread fills a pool of network namespaces here
        c = Container(rootfs=busybox, command=["true"], memory="64m", cpus=0.5, pids_limit=10,
                      cgroup_parent="/pycontain-test-parent", network="host")
        result = c.run()
        return result.returncode, c.launch_plan.cloned_into_cgroup
    return _in_forked_child(start)


def _refuse_clone3():
    """This process's clone3 fails with ENOSYS from now on (seccomp; root needs no no_new_privs)."""
    libc = ctypes.CDLL(None, use_errno=True)
    # ld [nr]; jeq 435, 0, 1; ret ERRNO(ENOSYS); ret ALLOW
    prog = struct.pack("HBBI" * 4, 0x20, 0, 0, 0, 0x15, 0, 1, SYS_clone3,
                       0x06, 0, 0, 0x00050000 | 38, 0x06, 0, 0, 0x7fff0000)
    insns = ctypes.create_string_buffer(prog, len(prog))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
    fprog = SockFprog(4, ctypes.cast(insns, ctypes.c_void_p))
    if libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
        raise OSError(ctypes.get_errno(), "seccomp")


def test_a_container_is_born_in_its_cgroup(busybox, cgroup_leakcheck):
    # clone3(CLONE_INTO_CGROUP): the container's first process never exists in
    # its launcher's cgroup, so a launcher whose cgroup has room for no second
    # process (pids.max = 1) still starts it. A child cloned there and moved
    # afterwards (cgroup.procs) would be refused by fork with EAGAIN.
    launcher = os.path.join(cgroups.layout().v2[0], "pycontain-test-launcher")
    os.mkdir(launcher)
    try:
        out = _start_in(busybox, launcher)
        assert out == "(0, True)", out
        assert read(launcher + "/pids.events").split() == ["max", "0"]    # nothing was refused there
    finally:
        os.rmdir(launcher)


def test_where_clone3_is_refused_the_container_joins_after_clone(busybox, cgroup_leakcheck):
    # A seccomp filter that answers clone3 with ENOSYS (docker's default profile
    # does: pycontain inside a container) leaves the old way in: clone, then
    # the child writes cgroup.procs. The same with room for no second process
    # in the launcher's cgroup fails as a plain clone does.
    assert _start_in(busybox, seccomp_refuses_clone3=True) == "(0, False)"
    launcher = os.path.join(cgroups.layout().v2[0], "pycontain-test-launcher")
    os.mkdir(launcher)
    try:
        out = _start_in(busybox, launcher, seccomp_refuses_clone3=True)
        assert out.startswith("error: ") and "Resource temporarily unavailable" in out, out
    finally:
        os.rmdir(launcher)
