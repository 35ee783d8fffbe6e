"""The escape attempts again, from a container started by an unprivileged
user (nobody) through a user namespace: root inside is nobody outside, and
the same attempts fail the same way."""
import errno
import subprocess

import pytest

from nobody import NobodysCopy, as_nobody

EPERM, ESRCH, ENOSYS = (f"ERR {e}" for e in (errno.EPERM, errno.ESRCH, errno.ENOSYS))


@pytest.fixture(scope="module")
def nobody_rootfs(rootfs, workdir):
    """The security rootfs, owned by nobody (root inside), and nobody's store root."""
    copy = NobodysCopy(rootfs, workdir / "rootless-security")
    yield copy.rootfs, copy.store
    copy.remove()


def rootless(nobody_rootfs, *command, **kwargs):
    rootfs, store = nobody_rootfs

    def fn():
        from pycontain import Container
        r = Container(rootfs=str(rootfs), command=list(command), root=str(store), **kwargs).run(
            capture_output=True, text=True, timeout=60)
        return [r.returncode, r.stdout, r.stderr]

    out = as_nobody(fn)
    assert "ok" in out, out
    return out["ok"]


ATTEMPTS = [
    ("mount_tmpfs", EPERM), ("remount_root_rw", EPERM), ("unshare_user", EPERM),
    ("unshare_user_mount", EPERM), ("clone_newns", EPERM), ("setns", EPERM), ("clone3", ENOSYS),
    ("init_module", EPERM), ("finit_module", EPERM), ("mknod_block", EPERM), ("mknod_mem", EPERM),
    ("keyctl", EPERM), ("bpf", EPERM), ("perf_event_open", EPERM), ("kexec_load", EPERM),
    ("open_by_handle_at", EPERM), ("sethostname", EPERM),
]


@pytest.mark.parametrize("what, expected", ATTEMPTS, ids=[a for a, _ in ATTEMPTS])
def test_rootless_attempt_fails(nobody_rootfs, what, expected):
    code, stdout, stderr = rootless(nobody_rootfs, "/t/probe", what)
    assert stdout.strip() == expected, (code, stdout, stderr)


def test_rootless_host_process_out_of_reach(nobody_rootfs):
    sleep = subprocess.Popen(["sleep", "300"])
    try:
        _, stdout, _ = rootless(nobody_rootfs, "sh", "-c",
                                f"/t/probe kill {sleep.pid}; /t/probe ptrace_attach {sleep.pid}; "
                                f"test -e /proc/{sleep.pid} && echo visible; echo $$")
        assert stdout.split() == ["ERR", str(errno.ESRCH), "ERR", str(errno.ESRCH), "1"] or \
            (sleep.pid < 100 and "visible" in stdout)
        assert sleep.poll() is None
    finally:
        sleep.kill()
        sleep.wait()


def test_rootless_filesystem_and_proc_protections(nobody_rootfs):
    _, stdout, _ = rootless(nobody_rootfs, "sh", "-c",
                            "echo h > /proc/sysrq-trigger && echo SYSRQ; "
                            "v=$(cat /proc/sys/kernel/printk_ratelimit); "
                            "echo $v > /proc/sys/kernel/printk_ratelimit && echo PROCSYS; "
                            "echo 0 > /sys/kernel/rcu_expedited && echo SYS; "
                            "cat /proc/keys | wc -c; stat -c %i / /..; "
                            "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status")
    assert "SYSRQ" not in stdout and "PROCSYS" not in stdout and "SYS\n" not in stdout
    lines = stdout.split()
    assert lines[0] == "0"          # /proc/keys is masked
    assert lines[1] == lines[2]     # / and /.. are the same directory
    assert sorted(lines[3:]) == sorted(["Seccomp:", "2", "NoNewPrivs:", "1"])


def test_rootless_unconfined_lets_keyctl_through(nobody_rootfs):
    # the control: the refusals above come from the filter, not from the user namespace
    _, stdout, _ = rootless(nobody_rootfs, "/t/probe", "keyctl", seccomp="unconfined")
    assert stdout.strip() == "OK"
