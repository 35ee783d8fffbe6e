"""aarch64, checked on this x86_64 machine: the wheel cross-built from the
sdist with Debian's gcc-aarch64-linux-gnu, its static programs run under
qemu-aarch64-static, and the launcher's C compiled against kernel headers
too old to know the newer system calls (as on the manylinux2014 images)."""
import json
import os
import signal
import subprocess
import sys

import pytest

from wheel_helpers import (CROSS_CC, QEMU_AARCH64, REPO, compiler_warnings, grafts_nothing, run, tool_env,
                           unpack_wheel)
from test_wheel_build import assert_runs_on_old_glibc

pytestmark = pytest.mark.packaging

# What build_nsexec.py compiles the extension with, warnings made errors.
EXTENSION_FLAGS = ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fno-strict-aliasing", "-Werror", "-fPIC"]

# Everything the kernel headers of Linux 3.10 / glibc 2.17 (manylinux2014's
# CentOS 7) lack that the launcher might use. The shim headers below remove
# them after the real header defined them, so _nsexec.c must carry an #ifndef
# fallback for each one it uses, or this compile fails.
NEWER_THAN_OLD_HEADERS = """
SYS_seccomp SYS_getrandom SYS_memfd_create SYS_bpf SYS_execveat SYS_userfaultfd SYS_membarrier
SYS_mlock2 SYS_copy_file_range SYS_preadv2 SYS_pwritev2 SYS_statx SYS_rseq SYS_renameat2
SYS_sched_setattr SYS_sched_getattr SYS_pidfd_send_signal SYS_io_uring_setup SYS_open_tree
SYS_move_mount SYS_fsopen SYS_fsconfig SYS_fsmount SYS_fspick SYS_pidfd_open SYS_clone3
SYS_close_range SYS_openat2 SYS_pidfd_getfd SYS_faccessat2 SYS_mount_setattr
SYS_landlock_create_ruleset SYS_landlock_add_rule SYS_landlock_restrict_self
CLONE_NEWCGROUP CLONE_PIDFD CLONE_INTO_CGROUP CLONE_CLEAR_SIGHAND CLONE_NEWTIME
CLOSE_RANGE_UNSHARE CLOSE_RANGE_CLOEXEC
PR_CAP_AMBIENT PR_CAP_AMBIENT_IS_SET PR_CAP_AMBIENT_RAISE PR_CAP_AMBIENT_LOWER PR_CAP_AMBIENT_CLEAR_ALL
SECCOMP_SET_MODE_STRICT SECCOMP_SET_MODE_FILTER SECCOMP_GET_ACTION_AVAIL SECCOMP_FILTER_FLAG_TSYNC
SECCOMP_FILTER_FLAG_LOG SECCOMP_FILTER_FLAG_SPEC_ALLOW SECCOMP_FILTER_FLAG_NEW_LISTENER
SECCOMP_RET_KILL_PROCESS SECCOMP_RET_LOG SECCOMP_RET_USER_NOTIF
RESOLVE_NO_XDEV RESOLVE_NO_MAGICLINKS RESOLVE_NO_SYMLINKS RESOLVE_BENEATH RESOLVE_IN_ROOT
MOUNT_ATTR_RDONLY MOUNT_ATTR_NOSUID MOUNT_ATTR_NODEV MOUNT_ATTR_NOEXEC MOUNT_ATTR_IDMAP
MS_LAZYTIME MS_NOSYMFOLLOW MFD_CLOEXEC AT_RECURSIVE OPEN_TREE_CLONE
""".split()
SHIMMED_HEADERS = ("sys/syscall.h", "sched.h", "linux/sched.h", "sys/prctl.h", "linux/prctl.h", "fcntl.h",
                   "linux/fcntl.h", "sys/mount.h", "linux/mount.h", "linux/seccomp.h", "sys/mman.h",
                   "linux/capability.h", "linux/filter.h", "sys/stat.h", "unistd.h")


def old_headers_shim(dest):
    """Headers that include the real ones, then forget the newer names."""
    undef = "".join(f"#undef {name}\n#undef __NR_{name[4:]}\n" if name.startswith("SYS_") else f"#undef {name}\n"
                    for name in NEWER_THAN_OLD_HEADERS)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "pc_forget_new_names.h").write_text(undef)  # no include guard: applied after every header
    for header in SHIMMED_HEADERS:
        shim = dest / header
        shim.parent.mkdir(parents=True, exist_ok=True)
        shim.write_text(f"#include_next <{header}>\n#include \"pc_forget_new_names.h\"\n")
    return dest


@pytest.fixture(scope="module")
def aarch64_root(aarch64_wheel, tmp_path_factory):
    return unpack_wheel(aarch64_wheel.wheel, tmp_path_factory.mktemp("aarch64-wheel"))


def elf_machine(path):
    out = run(["readelf", "-hlW", path]).stdout
    machine = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.strip().startswith("Machine:"))
    return machine, ("INTERP" in out or "DYNAMIC" in out)


def test_cross_build_follows_cc_to_aarch64_without_warnings(aarch64_wheel, aarch64_root):
    assert aarch64_wheel.wheel.name.endswith("-cp310-abi3-linux_aarch64.whl"), aarch64_wheel.wheel.name
    assert elf_machine(aarch64_root / "pycontain/_nsexec.abi3.so") == ("AArch64", True)
    for prog in ("pycontain/_bin/pycontain-init", "pycontain/_bin/hello-world/hello", "pycontain/_bin/pycontain-join",
                 "pycontain/_bin/pycontain-monitor"):
        assert elf_machine(aarch64_root / prog) == ("AArch64", False), f"{prog} is not a static aarch64 program"
    assert compiler_warnings(aarch64_wheel.log) == []


def test_aarch64_wheel_audits_clean(aarch64_wheel, aarch64_root):
    r = run([sys.executable, "-m", "abi3audit", "--strict", "--summary", aarch64_wheel.wheel])
    assert "0 ABI version mismatches and 0 ABI violations found" in " ".join((r.stdout + r.stderr).split())
    out = " ".join(run([sys.executable, "-m", "auditwheel", "show", aarch64_wheel.wheel]).stdout.split())
    assert 'following platform tag: "manylinux_2_' in out and '_aarch64"' in out, out
    assert "system-provided shared libraries: libc.so.6 with versions" in out, out
    assert grafts_nothing(out), out
    assert_runs_on_old_glibc(aarch64_root / "pycontain/_nsexec.abi3.so", CROSS_CC)


def qemu(*args, **kw):
    return subprocess.run([QEMU_AARCH64, *map(str, args)], capture_output=True, text=True, timeout=60, **kw)


def test_aarch64_hello_world_runs_under_qemu(aarch64_root):
    r = qemu(aarch64_root / "pycontain/_bin/hello-world/hello")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("\nHello from pycontain!\n") and r.stdout.endswith("busybox sh\n\n")


def test_aarch64_init_runs_a_command_and_passes_its_status_under_qemu(aarch64_root):
    init = aarch64_root / "pycontain/_bin/pycontain-init"
    hello = aarch64_root / "pycontain/_bin/hello-world/hello"
    # qemu-user hands an execve to the host kernel, which has no binfmt entry
    # for aarch64 here: the command init runs is qemu running hello.
    r = qemu(init, "--", QEMU_AARCH64, hello)
    assert r.returncode == 0, r.stderr
    assert "Hello from pycontain!" in r.stdout
    assert qemu(init, "--", "/bin/sh", "-c", "exit 7").returncode == 7
    assert qemu(init, "--", "/bin/sh", "-c", "kill -KILL $$").returncode == 128 + signal.SIGKILL
    r = qemu(init, "--", "no-such-command-here")
    assert (r.returncode, r.stderr) == (127, 'pycontain-init: exec "no-such-command-here": No such file or directory\n')
    r = qemu(init)
    assert (r.returncode, r.stderr) == (125, "pycontain-init: no command given\n")


def test_aarch64_init_forwards_signals_under_qemu(aarch64_root):
    init = aarch64_root / "pycontain/_bin/pycontain-init"
    p = subprocess.Popen([QEMU_AARCH64, init, "--", "/bin/sh", "-c",
                          "trap 'exit 9' USR1; echo ready; while :; do sleep 0.05; done"], stdout=subprocess.PIPE)
    try:
        assert p.stdout.readline() == b"ready\n"
        p.send_signal(signal.SIGUSR1)
        assert p.wait(timeout=30) == 9
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()


@pytest.mark.parametrize("compiler", ["gcc", CROSS_CC])
def test_launcher_c_compiles_warning_free_against_old_kernel_headers(compiler, tmp_path):
    shim = old_headers_shim(tmp_path / "old-headers")
    # The shim must really hide the new names, or this test proves nothing.
    probe = tmp_path / "probe.c"
    probe.write_text("#include <sys/syscall.h>\n#include <linux/sched.h>\nlong a = SYS_openat2, b = CLONE_PIDFD;\n")
    r = run([compiler, "-I", shim, "-c", probe, "-o", tmp_path / "probe.o"], check=False)
    assert r.returncode != 0 and "SYS_openat2" in r.stderr, "the old-headers shim hides nothing"

    for headers in ([], ["-I", shim]):
        run([compiler, *EXTENSION_FLAGS, *headers, "-I", REPO / "src", "-c", REPO / "src/_nsexec.c",
             "-o", tmp_path / "nsexec.o"], env=tool_env())


@pytest.mark.parametrize("compiler", ["gcc", CROSS_CC])
def test_static_programs_need_no_libc_headers(compiler, tmp_path):
    # -nostdinc: not even the kernel's or libc's headers; a bare compiler will do.
    for src in ("init.c", "hello.c"):
        run([compiler, "-nostdinc", "-DPC_NOLIBC", "-nostdlib", "-ffreestanding", "-fno-stack-protector", "-static",
             "-fno-pie", "-no-pie", "-Os", "-Wall", "-Wextra", "-Werror", "-o", tmp_path / src[:-2], REPO / "src" / src])


def test_aarch64_monitor_logs_and_records_the_exit_under_qemu(aarch64_root, tmp_path):
    """pycontain-monitor's own system calls on aarch64 (its syscall numbers
    are per architecture): bash (dash takes one-digit descriptors only)
    starts the command and executes the monitor in its place, so the
    command is the monitor's child, as a container's init is."""
    monitor = aarch64_root / "pycontain/_bin/pycontain-monitor"
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    script = (f'sh -c "echo hello; echo err >&2; exit 5" >&{out_w} 2>&{err_w} & '
              f'exec {out_w}>&- {err_w}>&-; exec "$0" "$@" --pid $!')
    p = subprocess.Popen(["bash", "-c", script, QEMU_AARCH64, monitor, "--dir", tmp_path, "--log", tmp_path / "log",
                          "--stdout", str(out_r), "--stderr", str(err_r)], pass_fds=(out_r, out_w, err_r, err_w),
                         stderr=subprocess.PIPE, text=True)
    for fd in (out_r, out_w, err_r, err_w):
        os.close(fd)
    assert p.wait(timeout=60) == 5, p.stderr.read()
    entries = [json.loads(line) for line in (tmp_path / "log").read_text().splitlines()]
    assert [(e["stream"], e["log"]) for e in entries] == [("stdout", "hello\n"), ("stderr", "err\n")]
    assert json.loads((tmp_path / "exit").read_text())["exit_code"] == 5
