"""Cgroup.update(): a running container's limits change in place, on the v1
driver here and (marked cgroupv2) on the v2 driver in the VM lane; a write the
kernel refuses puts back everything written before it."""
import dataclasses
import os
import time

import pytest

from pycontain import Container, cgroups
from pycontain.cgroups import CgroupError, DeviceRate, Limits

from .conftest import DRIVER

pytestmark = pytest.mark.cgroupv2
MB = 1 << 20


def read(c, v1_name, v2_name):
    cg = c._cgroup
    if DRIVER == "v2":
        path = f"{cg.path}/{v2_name}"
    else:
        ctl = v1_name.split(".")[0]
        path = f"{cg.dirs['cpu' if ctl == 'cpu' else ctl]}/{v1_name}"
    with open(path) as f:
        return f.read().strip()


def test_limits_change_while_it_runs(busybox, cgroup_leakcheck):
    old = Limits.from_docker(memory="64m", pids_limit=50)
    with Container(rootfs=busybox, command=["sleep", "30"], memory="64m", pids_limit=50, cgroup=True) as c:
        c.start()
        new = Limits.from_docker(memory="128m", memory_swap="256m", memory_reservation="32m", cpus=0.25,
                                 cpu_shares=300, cpuset_cpus="0", pids_limit=None)
        c._cgroup.update(old, new)
        assert read(c, "memory.limit_in_bytes", "memory.max") == str(128 * MB)
        assert read(c, "memory.soft_limit_in_bytes", "memory.low") == str(32 * MB)
        assert read(c, "pids.max", "pids.max") == "max"
        assert read(c, "cpuset.cpus", "cpuset.cpus") == "0"
        if DRIVER == "v2":
            assert read(c, "", "cpu.max") == "25000 100000"
            assert read(c, "", "cpu.weight") == str(cgroups.v2.shares_to_weight(300))
        else:
            assert read(c, "memory.memsw.limit_in_bytes", "") == str(256 * MB)
            assert read(c, "cpu.cfs_quota_us", "") == "25000"
            assert read(c, "cpu.shares", "") == "300"
        # back to nothing: the kernel's defaults
        c._cgroup.update(new, Limits())
        assert read(c, "pids.max", "pids.max") == "max"
        assert read(c, "memory.limit_in_bytes", "memory.max") in ("max", str(cgroups.v1.UNLIMITED))
        assert read(c, "cpu.cfs_quota_us", "cpu.max") in ("-1", "max 100000")


def test_a_refused_write_puts_back_what_was_written(busybox, cgroup_leakcheck):
    old = Limits.from_docker(memory="64m", pids_limit=50)
    with Container(rootfs=busybox, command=["sleep", "30"], memory="64m", pids_limit=50, cgroup=True) as c:
        c.start()
        # memory and pids are written first; a throttle on a block device that
        # does not exist (major 4000) is refused by the kernel after them
        bad = dataclasses.replace(Limits.from_docker(memory="96m", memory_swap="96m", pids_limit=10),
                                  device_read_bps=(DeviceRate("/dev/none", 4000, 0, 1 << 20),))
        with pytest.raises(CgroupError):
            c._cgroup.update(old, bad)
        assert read(c, "memory.limit_in_bytes", "memory.max") == str(64 * MB)
        assert read(c, "pids.max", "pids.max") == "50"


def test_memory_below_its_use_is_refused(busybox, cgroup_leakcheck):
    old = Limits.from_docker(memory="64m", memory_swap="64m")
    with Container(rootfs=busybox, memory="64m", memory_swap="64m", cgroup=True, command=[
            "sh", "-c", "head -c 25165824 /dev/zero > /dev/shm/f && touch /dev/shm/ok && sleep 30"]) as c:
        c.start()
        for _ in range(400):
            if os.path.exists(f"/proc/{c.pid}/root/dev/shm/ok"):
                break
            time.sleep(0.02)
        with pytest.raises(CgroupError, match=r"unable to set memory limit to 10485760 \(current usage: \d+"):
            c._cgroup.update(old, Limits.from_docker(memory="10m", memory_swap="10m"))
        assert read(c, "memory.limit_in_bytes", "memory.max") == str(64 * MB)
        assert c.poll() is None     # not OOM-killed on the way


def test_a_controller_it_was_made_without_is_one_line(busybox, cgroup_leakcheck):
    """Container's cgroup without cgroup=True has only what its limits need:
    update() names what is missing instead of writing elsewhere."""
    with Container(rootfs=busybox, command=["sleep", "30"], memory="64m") as c:
        c.start()
        if (DRIVER == "v1" and "cpuset" in c._cgroup.dirs) or (
                DRIVER == "v2" and os.path.exists(f"{c._cgroup.path}/cpuset.cpus")):
            pytest.skip("the container has a cpuset cgroup all the same (co-mounted, or enabled by the parent)")
        with pytest.raises(CgroupError, match="cpuset"):
            c._cgroup.update(Limits.from_docker(memory="64m"), Limits.from_docker(memory="64m", cpuset_cpus="0"))
