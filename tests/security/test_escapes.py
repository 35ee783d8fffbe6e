"""Escape attempts that must fail in a container with the default settings.

Each attempt is a real syscall made inside a real container (namespaces,
overlay root, docker's default capabilities, no_new_privs, the default
seccomp profile); the kernel's answer is what is checked. Where a failure
could come from more than one layer (seccomp, capabilities, namespaces,
masked paths), the test says which answer docker gives.
"""
import errno
import os
import socket

import pytest

from sechelpers import probe, run

EPERM = f"ERR {errno.EPERM}"
ENOSYS = f"ERR {errno.ENOSYS}"

pytestmark = pytest.mark.usefixtures("leakcheck")


# ---- mounts and namespaces ----------------------------------------------------


@pytest.mark.parametrize("what", ["mount_tmpfs", "mount_proc", "remount_root_rw"])
def test_mount_is_refused(rootfs, what):
    assert probe(rootfs, what) == EPERM


def test_mount_command_fails(rootfs):
    r = run(rootfs, "sh", "-c", "mkdir -p /mnt/x && mount -t tmpfs none /mnt/x; echo rc=$?; grep -c ' /mnt/x ' /proc/mounts")
    assert "rc=0" not in r.stdout
    assert r.stdout.strip().endswith("0")  # nothing mounted there


def test_unshare_user_namespace_is_refused(rootfs):
    # Without seccomp the kernel allows this to anyone (max_user_namespaces > 0).
    assert probe(rootfs, "unshare_user") == EPERM


def test_unshare_user_namespace_then_mount_is_refused(rootfs):
    assert probe(rootfs, "unshare_user_mount") == EPERM


def test_unshare_command_then_remount_fails(rootfs):
    r = run(rootfs, "sh", "-c", "unshare -U -r -m mount -t tmpfs none /tmp; echo rc=$?")
    assert "rc=0" not in r.stdout


def test_clone_with_namespace_flags_is_refused(rootfs):
    assert probe(rootfs, "clone_newns") == EPERM


def test_unshare_mount_namespace_is_refused(rootfs):
    assert probe(rootfs, "unshare_mount") == EPERM


def test_setns_is_refused(rootfs):
    assert probe(rootfs, "setns") == EPERM


def test_clone3_returns_enosys_so_libc_falls_back(rootfs):
    assert probe(rootfs, "clone3") == ENOSYS


# ---- other processes -------------------------------------------------------------


def test_ptrace_of_a_host_process_fails(rootfs, host_sleep):
    result = probe(rootfs, "ptrace_attach", host_sleep.pid)
    # The host's pid does not exist in the container's pid namespace.
    assert result in (f"ERR {errno.ESRCH}", EPERM)
    assert host_sleep.poll() is None
    with open(f"/proc/{host_sleep.pid}/status") as f:
        assert "TracerPid:\t0" in f.read()


def test_killing_a_host_process_fails(rootfs, host_sleep):
    assert probe(rootfs, "kill", host_sleep.pid) == f"ERR {errno.ESRCH}"
    r = run(rootfs, "sh", "-c", f"kill -9 {host_sleep.pid}; echo rc=$?")
    assert "rc=0" not in r.stdout
    assert host_sleep.poll() is None, "the host's sleep was killed from inside the container"


def test_pid_namespace_shows_only_the_container(rootfs, host_sleep):
    r = run(rootfs, "sh", "-c",
            f"echo self=$$; ls /proc | grep -E '^[0-9]+$' | tr '\\n' ' '; echo; "
            f"test -e /proc/{host_sleep.pid} && echo visible || echo invisible; "
            "cat /proc/1/cmdline | tr '\\0' ' '")
    lines = r.stdout.splitlines()
    assert lines[0] == "self=1"
    pids = [int(p) for p in lines[1].split()]
    assert pids and max(pids) < 100, f"host processes visible: {pids}"
    if host_sleep.pid >= 100:
        assert lines[2] == "invisible"
    assert lines[3].startswith("sh -c")  # pid 1 is the container's own command


def test_host_hostname_cannot_change(rootfs):
    before = socket.gethostname()
    assert probe(rootfs, "sethostname") == EPERM
    r = run(rootfs, "sh", "-c", "hostname pycontain-escaped; echo rc=$?; hostname")
    assert "rc=0" not in r.stdout
    assert socket.gethostname() == before


# ---- the host's filesystem ----------------------------------------------------------


def test_proc_1_root_is_the_containers_root(rootfs, host_marker):
    r = run(rootfs, "sh", "-c", f"cat /proc/1/root{host_marker}; echo rc=$?; cat /proc/1/root/etc/hostname",
            hostname="inside")
    assert "host secret" not in r.stdout
    assert "rc=0" not in r.stdout
    assert r.stdout.strip().endswith("inside")


def test_proc_self_cwd_does_not_lead_out(rootfs, host_marker):
    r = run(rootfs, "sh", "-c",
            f"cd /proc/self/cwd/../../../..; pwd -P; cat .{host_marker}; echo rc=$?; "
            f"cat /proc/self/cwd/../../..{host_marker}; echo rc=$?")
    assert r.stdout.splitlines()[0] == "/"
    assert "host secret" not in r.stdout
    assert "rc=0" not in r.stdout


def test_dotdot_stops_at_the_root(rootfs, host_marker):
    r = run(rootfs, "sh", "-c",
            f"stat -c %i / /.. /../../..; cat /../../..{host_marker}; echo rc=$?; cd /../..; pwd -P")
    lines = r.stdout.split()
    assert lines[0] == lines[1] == lines[2]
    assert "host secret" not in r.stdout
    assert "rc=0" not in r.stdout
    assert lines[-1] == "/"


def test_open_descriptors_are_not_inherited(rootfs, host_marker):
    # A descriptor of a host directory, inheritable, open in the launching process.
    fd = os.open(host_marker.parent, os.O_RDONLY | os.O_DIRECTORY)
    os.set_inheritable(fd, True)
    try:
        r = run(rootfs, "sh", "-c",
                f"ls /proc/self/fd | tr '\\n' ' '; echo; cat /proc/self/fd/{fd}/{host_marker.name}; echo rc=$?")
    finally:
        os.close(fd)
    fds = {int(x) for x in r.stdout.splitlines()[0].split()}
    assert fds <= {0, 1, 2, 3}, f"descriptors leaked into the container: {fds}"
    assert "host secret" not in r.stdout
    assert "rc=0" not in r.stdout


def test_writing_proc_sys_fails(rootfs):
    with open("/proc/sys/kernel/printk_ratelimit") as f:
        before = f.read()
    # Writes the current value back: harmless even if the protection failed.
    r = run(rootfs, "sh", "-c", "v=$(cat /proc/sys/kernel/printk_ratelimit); "
                                "echo $v > /proc/sys/kernel/printk_ratelimit; echo rc=$?")
    assert "rc=0" not in r.stdout
    assert "Read-only file system" in r.stderr
    with open("/proc/sys/kernel/printk_ratelimit") as f:
        assert f.read() == before


def test_writing_sys_fails(rootfs):
    r = run(rootfs, "sh", "-c", "v=$(cat /sys/kernel/rcu_expedited); echo $v > /sys/kernel/rcu_expedited; "
                                "echo rc=$?; touch /sys/pycontain-probe; echo rc=$?")
    assert "rc=0" not in r.stdout
    assert "Read-only file system" in r.stderr


def test_writing_sysrq_trigger_fails(rootfs):
    # 'h' only prints help to the kernel log, should the protection fail.
    r = run(rootfs, "sh", "-c", "echo h > /proc/sysrq-trigger; echo rc=$?")
    assert "rc=0" not in r.stdout


def test_proc_kcore_is_absent_or_empty(rootfs):
    r = run(rootfs, "sh", "-c", "test -e /proc/kcore && head -c 64 /proc/kcore | wc -c || echo absent")
    assert r.stdout.strip() in ("0", "absent")


def test_proc_keys_reads_nothing(rootfs):
    # docker masks /proc/keys with /dev/null.
    r = run(rootfs, "sh", "-c", "cat /proc/keys | wc -c")
    assert r.stdout.strip() == "0"


# ---- kernel interfaces --------------------------------------------------------------


@pytest.mark.parametrize("what", ["init_module", "finit_module", "delete_module"])
def test_loading_a_kernel_module_is_refused(rootfs, what):
    assert probe(rootfs, what) == EPERM


@pytest.mark.parametrize("what", ["mknod_block", "mknodat_block", "mknod_mem"])
def test_mknod_of_a_device_outside_dockers_list_is_refused(rootfs, what):
    assert probe(rootfs, what) == EPERM


def test_mknod_command_of_a_block_device_fails(rootfs):
    r = run(rootfs, "sh", "-c", "mknod /tmp/sda b 8 0; echo rc=$?; test -b /tmp/sda && echo created")
    assert "rc=0" not in r.stdout and "created" not in r.stdout


@pytest.mark.parametrize("what", ["keyctl", "add_key"])
def test_keyring_syscalls_are_refused(rootfs, what):
    assert probe(rootfs, what) == EPERM


def test_bpf_is_refused(rootfs):
    assert probe(rootfs, "bpf") == EPERM


def test_perf_event_open_is_refused(rootfs):
    assert probe(rootfs, "perf_event_open") == EPERM


def test_kexec_load_is_refused(rootfs):
    assert probe(rootfs, "kexec_load") == EPERM


def test_open_by_handle_at_shocker_is_refused(rootfs):
    assert probe(rootfs, "open_by_handle_at") == EPERM


def test_vsock_sockets_are_refused(rootfs):
    assert probe(rootfs, "socket_vsock") == EPERM
    assert probe(rootfs, "socket_unix") == "OK"


def test_personality_is_limited_to_dockers_values(rootfs):
    assert probe(rootfs, "personality_bad") == EPERM
    assert probe(rootfs, "personality_query") == "OK"


# ---- privileges ---------------------------------------------------------------------


def test_setuid_binary_gains_nothing_under_no_new_privs(rootfs):
    r = run(rootfs, "/t/suid-probe", "caps", user="1000")
    assert r.stdout.split() == ["euid=1000", "CapEff=0000000000000000"]


def test_setuid_binary_does_gain_root_without_no_new_privs(rootfs):
    # The control for the test above: the binary really is setuid root.
    r = run(rootfs, "/t/suid-probe", "caps", user="1000", security_opt=["no-new-privileges:false"])
    assert r.stdout.split()[0] == "euid=0"


def test_default_status_has_filter_and_no_new_privs(rootfs):
    r = run(rootfs, "grep", "-E", "^(Seccomp|NoNewPrivs|CapEff|CapBnd):", "/proc/self/status")
    fields = dict(line.split(":\t") for line in r.stdout.splitlines())
    assert fields["Seccomp"] == "2"
    assert fields["NoNewPrivs"] == "1"
    # docker's 14 default capabilities
    assert fields["CapEff"] == fields["CapBnd"] == "00000000a80425fb"
