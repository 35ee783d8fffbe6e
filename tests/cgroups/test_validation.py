"""Bad limits are refused before anything exists; docker's conversions hold."""
import os
import subprocess
import sys

import pytest

from pycontain import ConfigError, Container
from pycontain.cgroups import Limits, format_cpu_list, parse_bytes, parse_cpu_list
from pycontain.cgroups.v2 import blkio_weight_to_io_weight, shares_to_weight

from .conftest import CgroupLeakCheck


def _root_block_device():
    st = os.stat("/")
    for name in os.listdir("/sys/dev/block"):
        if name == f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}":
            dev = "/dev/" + os.path.basename(os.readlink(f"/sys/dev/block/{name}"))
            if os.path.exists(dev):
                return dev
    return None


BAD = [
    (dict(memory=-5), "memory"),
    (dict(memory="lots"), "memory"),
    (dict(memory="12q"), "memory"),
    (dict(memory="1k"), "minimum memory"),
    (dict(memory="5m"), "minimum memory"),
    (dict(memory_swap="64m"), "memory limit"),
    (dict(memory="64m", memory_swap="32m"), "memory-swap"),
    (dict(cpus=-1), "CPUs"),
    (dict(cpus="half"), "cpus"),
    (dict(cpus=10_000), "CPUs"),
    (dict(cpus="nan"), "CPUs"),
    (dict(cpus=0.5, cpu_quota=50000), "conflicting"),
    (dict(cpu_shares=1), "cpu-shares"),
    (dict(cpu_shares=-3), "cpu-shares"),
    (dict(cpu_shares=300000), "cpu-shares"),
    (dict(cpu_quota=10), "cpu-quota"),
    (dict(cpu_period=10), "cpu-period"),
    (dict(cpu_period=2_000_000), "cpu-period"),
    (dict(cpuset_cpus="9999"), "not available"),
    (dict(cpuset_cpus="a-b"), "cpuset-cpus"),
    (dict(cpuset_cpus="1-0"), "backwards"),
    (dict(cpuset_mems="77"), "not available"),
    (dict(pids_limit=-5), "pids-limit"),
    (dict(pids_limit="many"), "pids-limit"),
    (dict(blkio_weight=5), "blkio-weight"),
    (dict(blkio_weight=2000), "blkio-weight"),
    (dict(device_read_bps=["/nonexistent:1mb"]), "No such file"),
    (dict(device_read_bps=["/dev/null:1mb"]), "not a block device"),
    (dict(device_write_bps=["nocolon"]), "DEVICE:RATE"),
    (dict(device_write_bps=["relative:1mb"]), "absolute"),
    (dict(cgroup_parent="../escape"), "'..'"),
    (dict(cgroup_parent="/"), "root"),
]


@pytest.mark.cgroupv2
@pytest.mark.parametrize("kwargs,message", BAD, ids=[str(k) for k, _ in BAD])
def test_bad_limits_are_refused_with_nothing_created(busybox, store_root, leakcheck, kwargs, message):
    check = CgroupLeakCheck()
    with pytest.raises(ConfigError) as e:
        Container(rootfs=busybox, command=["true"], **kwargs)
    assert message in str(e.value)
    assert "\n" not in str(e.value)
    check.assert_clean()


@pytest.mark.cgroupv2
def test_bad_limit_on_the_command_line_is_one_line_and_status_125(busybox, leakcheck):
    check = CgroupLeakCheck()
    r = subprocess.run([sys.executable, "-c", "from pycontain.cli import entry; entry()", "run", "--rm", "--memory", "lots", "--rootfs", str(busybox), "true"],
                       capture_output=True, text=True)
    assert r.returncode == 125
    assert r.stderr.strip().splitlines() == ["pycontain: invalid memory value 'lots': expected a size like 512k, 64m or 1g"]
    check.assert_clean()


def test_docker_memory_sizes():
    assert parse_bytes("64m") == 64 << 20
    assert parse_bytes("1g") == 1 << 30
    assert parse_bytes("1GB") == 1 << 30
    assert parse_bytes("512k") == 512 << 10
    assert parse_bytes("1.5g") == 3 << 29
    assert parse_bytes("4096") == 4096
    assert parse_bytes(7 << 20) == 7 << 20


def test_cpu_lists_round_trip():
    assert parse_cpu_list("0-2,5", "x") == {0, 1, 2, 5}
    assert format_cpu_list({0, 1, 2, 5, 7, 8}) == "0-2,5,7-8"


def test_docker_conversions():
    lim = Limits.from_docker(cpus=0.2)
    assert (lim.cpu_quota, lim.cpu_period) == (20000, 100000)
    lim = Limits.from_docker(cpu_quota=50000)
    assert lim.cpu_period == 100000
    # docker: a memory limit without --memory-swap allows as much swap again; -1: unlimited
    assert Limits.from_docker(memory="64m").swap_total == 128 << 20
    assert Limits.from_docker(memory="64m", memory_swap=-1).swap_total == -1
    assert Limits.from_docker(memory="64m", memory_swap="100m").swap_total == 100 << 20
    # 0 and -1 mean "unlimited" / "default" in docker
    assert not Limits.from_docker(pids_limit=-1, cpu_shares=0, memory=0)
    # runc's cgroup v2 conversions
    assert [shares_to_weight(s) for s in (2, 1024, 262144)] == [1, 39, 10000]
    assert [blkio_weight_to_io_weight(w) for w in (10, 500, 1000)] == [1, 4950, 10000]


def test_device_rates_resolve_the_device_number():
    dev = _root_block_device()
    if dev is None:
        pytest.skip("no block device node for / here")
    lim = Limits.from_docker(device_read_bps=[f"{dev}:1mb"])
    st = os.stat(dev)
    assert (lim.device_read_bps[0].major, lim.device_read_bps[0].minor) == (os.major(st.st_rdev), os.minor(st.st_rdev))
    assert lim.device_read_bps[0].rate == 1 << 20
