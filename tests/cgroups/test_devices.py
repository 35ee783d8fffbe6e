"""Device access: docker's default device list and --device's r/w/m, enforced
by the cgroup: v1's devices controller here, v2's eBPF device filter in the VM
lane (tests/vm/run-v2.sh). The same container tests run on both layouts."""
import os

import pytest

from pycontain import ConfigError, Container, cgroups
from pycontain.cgroups import devices
from pycontain.config import Device

from .conftest import v2_only

pytestmark = pytest.mark.cgroupv2

EPERM_TEXT = "Operation not permitted"


def _disk() -> tuple:
    """The host's root disk (major, minor) when / is on one, else sda's numbers."""
    st = os.stat("/")
    if os.major(st.st_dev) and os.path.exists(f"/sys/dev/block/{os.major(st.st_dev)}:{os.minor(st.st_dev)}"):
        return os.major(st.st_dev), os.minor(st.st_dev)
    return 8, 0


def _passthrough_device() -> str:
    """A host device off docker's list that opens read-write harmlessly (no ioctl, no data)."""
    for dev in ("/dev/loop-control", "/dev/cpu_dma_latency"):
        if os.path.exists(dev):
            return dev
    pytest.skip("neither /dev/loop-control nor /dev/cpu_dma_latency here")


# ---- the program and the rules, no container ------------------------------------------


def test_the_kernel_verifies_the_assembled_program():
    """BPF_PROG_LOAD runs the kernel's verifier: every kind of rule (types,
    wildcards, access subsets) in one program. Works on a v1 host too (as root)."""
    rules = devices.default_rules() + [devices.rule("b", 8, 0, "r"), devices.rule("a", None, 3, "w"),
                                       devices.rule("c", 10, None, "rw"), devices.rule("b", 7, 2, "mwr")]
    program = devices.assemble(rules)
    assert len(program) % 8 == 0
    fd = devices.load(program)
    os.close(fd)
    # a refusal says why, in the verifier's words
    with pytest.raises(cgroups.CgroupError, match="refused the cgroup v2 device filter.*verifier: .*exit"):
        devices.load(program[:-8])


def test_rules_parse_and_bad_rules_are_config_errors():
    assert [str(r) for r in devices.default_rules()] == list(devices.DEVICE_RULES)
    assert str(devices.rule("c", 10, 200, "wr")) == "c 10:200 rw"
    for args, msg in [(("x", 1, 3, "r"), "type"), (("c", 4096, 0, "r"), "major 4096"),
                      (("c", 1, 1 << 20, "r"), "minor"), (("c", 1, 3, "rx"), "access"),
                      (("c", 1, 3, ""), "access"), (("c", -1, 3, "r"), "major -1")]:
        with pytest.raises(ConfigError, match=msg):
            devices.rule(*args)
    with pytest.raises(ConfigError, match="expected"):
        devices.DeviceRule.parse("c 1:3")


# ---- in containers (both layouts) -------------------------------------------------------


def test_devices_off_the_list_are_refused_even_with_mknod(busybox, cgroup_leakcheck):
    # CAP_MKNOD is a docker default and the root is not nodev: the device rules
    # are what protect the host (the default seccomp profile refuses a
    # block-device mknod too: off here, to test the cgroup alone).
    # EPERM is the device rules' answer (nodev would be EACCES, a missing device ENXIO).
    major, minor = _disk()
    script = (f"mknod /tmp/disk b {major} {minor} && echo made; (exec 3</tmp/disk) 2>&1; "
              "mknod /tmp/kmsg c 1 11 && (exec 3>/tmp/kmsg) 2>&1; "       # write-only kmsg: no CAP_SYSLOG needed
              "dd if=/dev/zero of=/dev/null bs=512 count=1 2>&1 && echo devzero-ok")
    r = Container(rootfs=busybox, command=["sh", "-c", script], seccomp="unconfined", cgroup=True).run(
        capture_output=True, text=True)
    lines = r.stdout.splitlines()
    assert lines[0] == "made", r
    assert EPERM_TEXT in lines[1] and "/tmp/disk" in lines[1], r
    assert EPERM_TEXT in lines[2] and "/tmp/kmsg" in lines[2], r
    assert "devzero-ok" in r.stdout


def test_dockers_default_devices_work(busybox, cgroup_leakcheck):
    script = ("for d in null zero full random urandom ptmx; do (exec 3<>/dev/$d) && echo $d-ok; done; "
              "head -c 16 /dev/urandom | wc -c; "
              "(exec 3</dev/tty) 2>&1; "                        # no controlling terminal: ENXIO, not EPERM
              "(exec 3<>/dev/ptmx; exec 4<>/dev/pts/0) 2>&1; "  # a locked pty: EIO, not EPERM
              # the root is not nodev any more: a node made on it works when the rules allow it
              "mknod /tmp/null c 1 3 && echo x > /tmp/null && echo rootnode-ok")
    r = Container(rootfs=busybox, command=["sh", "-c", script], cgroup=True).run(capture_output=True, text=True)
    lines = r.stdout.splitlines()
    assert lines[:7] == ["null-ok", "zero-ok", "full-ok", "random-ok", "urandom-ok", "ptmx-ok", "16"], r
    assert "/dev/tty" in lines[7] and EPERM_TEXT not in lines[7], r
    assert "/dev/pts/0" in lines[8] and EPERM_TEXT not in lines[8], r
    assert lines[9:] == ["rootnode-ok"], r
    assert r.returncode == 0


def test_device_passthrough_allows_only_what_was_asked(busybox, cgroup_leakcheck):
    """--device HOST:/dev/pass[:rwm] with a device off docker's list: bound in
    and allowed with the permissions asked for, no more."""
    dev = _passthrough_device()
    script = ("ls -l /dev/pass | cut -c1; (exec 3<>/dev/pass) 2>/dev/null && echo rw-ok || echo rw-denied; "
              "(exec 3</dev/pass) 2>/dev/null && echo r-ok || echo r-denied; "
              "(exec 3>/dev/pass) 2>&1 | grep -q 'not permitted' && echo w-eperm; true")
    for perms, expected in [("rwm", ["c", "rw-ok", "r-ok"]), ("rw", ["c", "rw-ok", "r-ok"]),
                            ("r", ["c", "rw-denied", "r-ok", "w-eperm"])]:
        r = Container(rootfs=busybox, command=["sh", "-c", script], devices=[f"{dev}:/dev/pass:{perms}"]).run(
            capture_output=True, text=True)
        assert r.stdout.split() == expected, (perms, r)
    r = Container(rootfs=busybox, command=["sh", "-c", "ls /dev/pass 2>&1 || true"]).run(capture_output=True, text=True)
    assert "No such file" in r.stdout  # not asked for: not there


def test_privileged_gets_every_device(busybox, cgroup_leakcheck):
    script = "mknod /tmp/kmsg c 1 11 && (exec 3>/tmp/kmsg) && echo kmsg-ok"
    r = Container(rootfs=busybox, command=["sh", "-c", script], privileged=True, cgroup=True).run(
        capture_output=True, text=True)
    assert r.stdout.split() == ["kmsg-ok"], r


def test_bad_devices_are_config_errors(busybox, cgroup_leakcheck):
    for spec, msg in [("/dev/nonexistent-dev", "No such file"), ("/etc/passwd", "not a device"),
                      ("/dev/null:/dev/n:rx", "permissions"), ("relative", "absolute")]:
        with pytest.raises(ConfigError, match=msg):
            Container(rootfs=busybox, command=["true"], devices=[spec])


def test_a_bad_device_rule_fails_the_start_and_leaves_no_cgroup(busybox, cgroup_leakcheck):
    # A Device built by hand skips Device.parse: the cgroup's rule check catches it
    bad = Device("/dev/null", "/dev/n", "rwx", "c", 1, 3)
    with pytest.raises(ConfigError, match="invalid device rule 'c 1:3 rwx'"):
        Container(rootfs=busybox, command=["true"], devices=[bad]).run()
    bad = Device("/dev/null", "/dev/n", "rw", "c", 5000, 3)
    with pytest.raises(ConfigError, match="major 5000"):
        Container(rootfs=busybox, command=["true"], devices=[bad]).run()


# ---- v2: the filter itself -------------------------------------------------------------


@v2_only
def test_one_filter_per_container_none_when_privileged(busybox, cgroup_leakcheck):
    for privileged, expected in [(False, 1), (True, 0)]:
        with Container(rootfs=busybox, command=["sleep", "10"], cgroup=True, privileged=privileged,
                       devices=["/dev/null:/dev/n2:r"]) as c:
            c.start()
            path = c._cgroup.path
            assert c._cgroup.restricts_devices is not privileged
            assert devices.attached_filters(path) == expected
        assert not os.path.exists(path)     # the attachment went with the cgroup


@v2_only
def test_rules_are_fixed_once_the_cgroup_is_handed_out(cgroup_leakcheck):
    cg = cgroups.create("pycontain-test-devrules", cgroups.Limits())
    try:
        cg.allow_device("c", 10, 200, "rw")
        with pytest.raises(ConfigError, match="access"):
            cg.allow_device("c", 10, 200, "q")
        assert devices.attached_filters(cg.path) == 0
        cg.join_fds()               # the filter goes on here
        assert devices.attached_filters(cg.path) == 1
        with pytest.raises(cgroups.CgroupError, match="attached"):
            cg.allow_device("c", 10, 201, "rw")
        cg.dir_fd()                 # not twice
        assert devices.attached_filters(cg.path) == 1
    finally:
        cg.destroy()
    assert not os.path.exists(cg.path)
