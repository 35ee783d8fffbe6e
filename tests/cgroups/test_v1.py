"""What only the v1 driver does: the per-hierarchy cgroup view, blkio
throttling with its byte counters. (Device rules: test_devices.py, both layouts.)"""
import os
import time

import pytest

from pycontain import Container

from .conftest import read, v1_only
from .test_validation import _root_block_device

pytestmark = v1_only


def test_limits_land_in_the_v1_files(busybox, cgroup_leakcheck):
    with Container(rootfs=busybox, command=["sleep", "10"], memory="64m", cpus=0.5, cpu_shares=512,
                   pids_limit=33, cpuset_cpus="0") as c:
        c.start()
        d = c._cgroup.dirs
        assert read(d["memory"] + "/memory.limit_in_bytes") == str(64 << 20)
        assert read(d["memory"] + "/memory.memsw.limit_in_bytes") == str(128 << 20)
        assert read(d["cpu"] + "/cpu.cfs_quota_us") == "50000"
        assert read(d["cpu"] + "/cpu.cfs_period_us") == "100000"
        assert read(d["cpu"] + "/cpu.shares") == "512"
        assert read(d["pids"] + "/pids.max") == "33"
        assert read(d["cpuset"] + "/cpuset.cpus") == "0"
        # no cpu/cpuset/blkio limit, no directory in those hierarchies
    with Container(rootfs=busybox, command=["true"], memory="64m") as c:
        c.create()
        assert not {"cpu", "cpuset", "blkio"} & set(c._cgroup.dirs)


def test_device_read_bps_throttles_direct_reads_and_io_stats_count_them(busybox, store_root, cgroup_leakcheck):
    # Reads, not writes: a container's exit unmounts its overlay, which syncs the
    # host filesystem from inside the container's cgroup; under a write limit
    # that sync crawls (found here: 11 s at 512 KiB/s on a shared disk).
    dev = _root_block_device()
    if dev is None or os.stat(busybox).st_dev != os.stat("/").st_dev:
        pytest.skip("the test rootfs is not on a block device here")
    # 1 MiB at 512 KiB/s: well over a second once throttled (v1 throttles direct I/O)
    script = "dd if=/bin/busybox of=/dev/null bs=128k count=8 iflag=direct 2>/dev/null && echo read"
    c = Container(rootfs=busybox, command=["sh", "-c", script], device_read_bps=[f"{dev}:512kb"], remove=False)
    t0 = time.monotonic()
    c.start(stdout=-1)
    assert c.stdout.read() == b"read\n"
    c.stdout.close()
    elapsed = time.monotonic() - t0
    assert c.wait(timeout=30) == 0
    stats = c.stats()          # the cgroup outlives the process until remove()
    c.remove()
    assert elapsed >= 1.2, f"1 MiB took {elapsed:.2f}s under a 512 KiB/s limit"
    assert stats.io_read_bytes >= 1 << 20


def test_the_cgroup_view_has_one_read_only_mount_per_hierarchy(busybox, cgroup_leakcheck):
    r = Container(rootfs=busybox, command=["sh", "-c", "ls /sys/fs/cgroup; grep ' /sys/fs/cgroup' /proc/self/mountinfo"],
                  memory="32m", cpus=1).run(capture_output=True, text=True)
    lines = r.stdout.splitlines()
    assert {"memory", "cpu", "pids", "cpuacct", "freezer", "devices"} <= set(lines)
    mounts = [line for line in lines if " /sys/fs/cgroup" in line]
    assert mounts and all(" ro," in line for line in mounts), mounts
