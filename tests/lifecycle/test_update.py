"""docker update from Python: a managed container's limits change in its live
cgroup (v1 and v2) and in its record (inspect, the next start); a value the
kernel or docker's rules refuse changes nothing."""
import os

import pytest

from pycontain import containers, events
from pycontain.cgroups import CgroupError, running
from pycontain.errors import ConfigError

from .conftest import wait_for

# also in the VM lane (tests/vm/run-v2.sh tests/lifecycle/test_update.py): the v2 driver's update
pytestmark = [pytest.mark.usefixtures("managed"), pytest.mark.cgroupv2]

MB = 1 << 20


def cgroup_file(c, name) -> str:
    """The content of one of the running container's cgroup files, found
    from its init's /proc/PID/cgroup (whichever hierarchy holds it)."""
    pid = c.reload().record.pid
    for _ctrls, d in running.own_cgroups(pid):
        if os.path.exists(f"{d}/{name}"):
            with open(f"{d}/{name}") as f:
                return f.read().strip()
    raise AssertionError(f"no {name} in the cgroups of {pid}")


def v2() -> bool:
    from pycontain.cgroups import layout
    return layout().driver == "v2"


def memory_files(c):
    if v2():
        return cgroup_file(c, "memory.max"), cgroup_file(c, "memory.swap.max")
    return cgroup_file(c, "memory.limit_in_bytes"), cgroup_file(c, "memory.memsw.limit_in_bytes")


def sleeper(busybox, **kw):
    return containers.create(rootfs=str(busybox), command=["sleep", "60"], init=True, **kw)


def test_update_a_running_container_live_and_in_its_record(busybox):
    c = sleeper(busybox, memory="64m").start()
    c.update(memory="96m", memory_swap="200m", memory_reservation="32m", cpus=0.5, cpu_shares=512,
             pids_limit=40, cpuset_cpus="0", restart_policy="on-failure:3")
    if v2():
        assert memory_files(c) == (str(96 * MB), str(104 * MB))
        assert cgroup_file(c, "memory.low") == str(32 * MB)
        assert cgroup_file(c, "cpu.max") == "50000 100000"
    else:
        assert memory_files(c) == (str(96 * MB), str(200 * MB))
        assert cgroup_file(c, "memory.soft_limit_in_bytes") == str(32 * MB)
        assert cgroup_file(c, "cpu.cfs_quota_us") == "50000"
        assert cgroup_file(c, "cpu.shares") == "512"
    assert cgroup_file(c, "pids.max") == "40"
    assert cgroup_file(c, "cpuset.cpus") == "0"
    host = c.attrs["HostConfig"]
    assert (host["Memory"], host["MemorySwap"], host["MemoryReservation"]) == (96 * MB, 200 * MB, 32 * MB)
    assert (host["NanoCpus"], host["CpuShares"], host["PidsLimit"], host["CpusetCpus"]) == (500000000, 512, 40, "0")
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    # unlimited again, and the next start keeps what the record says
    c.update(pids_limit=-1)
    assert cgroup_file(c, "pids.max") == "max"
    assert c.attrs["HostConfig"]["PidsLimit"] is None
    c.stop(timeout=5)
    c.start()
    assert memory_files(c)[0] == str(96 * MB) and cgroup_file(c, "pids.max") == "max"
    assert cgroup_file(c, "cpuset.cpus") == "0"


def test_update_a_paused_container(busybox):
    c = sleeper(busybox).start()
    c.pause()
    c.update(pids_limit=25, cpu_quota=20000)
    assert c.status == "paused"
    assert cgroup_file(c, "pids.max") == "25"
    assert cgroup_file(c, "cpu.max" if v2() else "cpu.cfs_quota_us") == ("20000 100000" if v2() else "20000")
    c.unpause()


def test_update_a_created_container_applies_at_its_start(busybox):
    c = sleeper(busybox)
    c.update(memory="50m", memory_swap="50m", pids_limit=12)
    assert c.status == "created"
    c.start()
    assert memory_files(c)[0] == str(50 * MB)
    assert cgroup_file(c, "pids.max") == "12"


def test_an_update_is_an_event_as_docker_s(busybox, store_root):
    c = sleeper(busybox)
    c.update(pids_limit=12)
    assert [e["Action"] for e in events.replay(store_root) if e["Actor"]["ID"] == c.id] == ["create", "update"]


def test_an_update_during_the_restart_delay_reaches_the_next_run(busybox):
    show = "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max; exit 1"
    c = containers.create(rootfs=str(busybox), command=["sh", "-c", show], restart_policy="always")
    c.start()

    def lines():
        return [line.strip() for line in c.logs().decode().splitlines()]
    # the third restart waits 0.8 s: the update lands while the monitor sleeps
    assert wait_for(lambda: c.reload().record.restart_count >= 3 and c.status == "restarting", 15)
    seen = len(lines())
    c.update(pids_limit=77)
    assert c.reload().status == "restarting"
    assert wait_for(lambda: len(lines()) > seen, 15)
    assert lines()[seen] == "77", lines()     # the very next run, not the one after it


def test_refused_updates_change_nothing(busybox):
    c = sleeper(busybox, memory="64m", pids_limit=50).start()
    before_files, before_host = memory_files(c), c.attrs["HostConfig"]
    refused = [
        (dict(memory="200m"), ConfigError, "Memory limit should be smaller than already set memoryswap limit"),
        (dict(memory="100m", memory_swap="80m"), ConfigError, "memory-swap limit should be larger"),
        (dict(memory="1k", memory_swap="1k"), ConfigError, "minimum memory limit allowed is 6MB"),
        (dict(cpus=99), ConfigError, "range of CPUs"),
        (dict(cpuset_cpus="99"), ConfigError, "requested CPUs are not available"),
        (dict(cpu_shares=1), ConfigError, "cpu-shares must be between"),
        (dict(memory="nonsense"), ConfigError, "invalid memory value"),
        (dict(pids_limit=5, restart_policy="sometimes"), ConfigError, "invalid restart policy"),
    ]
    for kw, kind, words in refused:
        with pytest.raises(kind, match=words):
            c.update(**kw)
    assert memory_files(c) == before_files
    assert cgroup_file(c, "pids.max") == "50"
    assert c.attrs["HostConfig"] == before_host


def test_memory_below_what_the_container_uses_is_refused(busybox):
    # 24 MiB in the container's /dev/shm (tmpfs, charged to its memory cgroup; no swap to push it to)
    c = containers.create(rootfs=str(busybox), init=True, memory="64m", memory_swap="64m", command=[
        "sh", "-c", "head -c 25165824 /dev/zero > /dev/shm/fill && touch /dev/shm/done && sleep 60"]).start()
    assert wait_for(lambda: os.path.exists(f"/proc/{c.reload().record.pid}/root/dev/shm/done"), 10)
    with pytest.raises(CgroupError, match=r"unable to set memory limit to 10485760 \(current usage: \d+"):
        c.update(memory="10m", memory_swap="10m")
    assert memory_files(c) == (str(64 * MB), str(64 * MB) if not v2() else "0")
    assert c.attrs["HostConfig"]["Memory"] == 64 * MB
    assert c.status == "running"


def test_auto_remove_refuses_a_restart_policy(busybox):
    c = sleeper(busybox, auto_remove=True)
    with pytest.raises(ConfigError, match="AutoRemove is enabled"):
        c.update(restart_policy="always")
    c.update(pids_limit=9)
    assert c.attrs["HostConfig"]["PidsLimit"] == 9
