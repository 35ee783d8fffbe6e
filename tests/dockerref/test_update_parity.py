"""`pycontain update` beside `docker update` (docker.io 20.10 against its own
dockerd): the same command lines on a container of each, compared by exit
status, the words of the error, what inspect shows after, and what the
container's own cgroup files read from inside it.

Deliberate difference: dockerd drops --blkio-weight when its root blkio
cgroup has no weight file ("Weight discarded", as on this kernel, where only
non-root cgroups have blkio.bfq.weight); pycontain writes the container's own."""
import pytest

from .conftest import pycontain

pytestmark = pytest.mark.usefixtures("clean_both")

FIELDS = "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.MemoryReservation}} " \
         "{{.HostConfig.NanoCpus}} {{.HostConfig.CpuShares}} {{.HostConfig.CpusetCpus}} " \
         "{{.HostConfig.CpuQuota}} {{.HostConfig.RestartPolicy.Name}}"


def sides(dockerd):
    return (("docker", dockerd.docker), ("pycontain", pycontain))


def started(dockerd, name, *args, command=("sleep", "600")):
    for _, side in sides(dockerd):
        r = side("run", "-d", "--name", name, "--network", "none", *args, "busybox", *command)
        assert r.returncode == 0, r.stderr


def compare(dockerd, *argv, status, words=None, out=None):
    """The same command on both sides: the same status, the error naming the
    same thing (words, case aside), the same stdout when given."""
    for who, side in sides(dockerd):
        r = side(*argv)
        assert r.returncode == status, (who, argv, r.stdout, r.stderr)
        if words is not None:
            assert words.lower() in r.stderr.lower(), (who, argv, r.stderr)
        if out is not None:
            assert r.stdout.split() == out, (who, argv, r.stdout)


def same_inspect(dockerd, name):
    got = {who: side("inspect", "-f", FIELDS, name).stdout.strip() for who, side in sides(dockerd)}
    assert got["docker"] == got["pycontain"], got
    return got["docker"]


def inside(dockerd, name, path):
    got = {who: side("exec", name, "cat", path).stdout.strip() for who, side in sides(dockerd)}
    assert got["docker"] == got["pycontain"], (path, got)
    return got["docker"]


def test_update_a_running_container_as_docker_does(dockerd):
    started(dockerd, "up")
    compare(dockerd, "update", "--memory", "64m", "up", status=1, words="update the memoryswap at the same time")
    compare(dockerd, "update", "--memory", "200m", "--memory-swap", "300m", "up", status=0, out=["up"])
    compare(dockerd, "update", "--memory-reservation", "50m", "up", status=0, out=["up"])
    compare(dockerd, "update", "--cpus", "0.5", "up", status=0, out=["up"])
    compare(dockerd, "update", "--cpu-quota", "20000", "up", status=1, words="NanoCPUs has already been set")
    compare(dockerd, "update", "--pids-limit", "50", "--cpu-shares", "512", "--cpuset-cpus", "0",
            "--restart", "on-failure:2", "up", status=0, out=["up"])
    assert same_inspect(dockerd, "up") == f"{200 << 20} {300 << 20} {50 << 20} 500000000 512 0 0 on-failure"
    assert inside(dockerd, "up", "/sys/fs/cgroup/memory/memory.limit_in_bytes") == str(200 << 20)
    assert inside(dockerd, "up", "/sys/fs/cgroup/memory/memory.soft_limit_in_bytes") == str(50 << 20)
    assert inside(dockerd, "up", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us") == "50000"
    assert inside(dockerd, "up", "/sys/fs/cgroup/cpu/cpu.shares") == "512"
    assert inside(dockerd, "up", "/sys/fs/cgroup/pids/pids.max") == "50"
    assert inside(dockerd, "up", "/sys/fs/cgroup/cpuset/cpuset.cpus") == "0"
    compare(dockerd, "update", "--pids-limit", "-1", "up", status=0, out=["up"])
    assert inside(dockerd, "up", "/sys/fs/cgroup/pids/pids.max") == "max"
    compare(dockerd, "pause", "up", status=0)
    compare(dockerd, "update", "--pids-limit", "30", "up", status=0, out=["up"])
    compare(dockerd, "unpause", "up", status=0)
    assert inside(dockerd, "up", "/sys/fs/cgroup/pids/pids.max") == "30"
    # kept across a restart
    compare(dockerd, "restart", "-t", "1", "up", status=0)
    assert inside(dockerd, "up", "/sys/fs/cgroup/memory/memory.limit_in_bytes") == str(200 << 20)
    assert inside(dockerd, "up", "/sys/fs/cgroup/pids/pids.max") == "30"


@pytest.mark.parametrize("argv,status,words", [
    (("--memory", "4m", "--memory-swap", "8m"), 1, "6MB"),
    (("--cpus", "9"), 1, "range of cpus is from 0.01"),
    (("--cpuset-cpus", "9"), 1, "are not available"),
    (("--cpu-shares", "1"), 1, "cpu-shares"),
    (("--memory", "100m", "--memory-swap", "50m"), 1, None),
    ((), 1, "you must provide one or more flags"),
    (("--bogus",), 125, "unknown flag: --bogus"),
    (("--memory", "abc"), 125, "--memory"),
    (("--pids-limit", "x"), 125, "--pids-limit"),
])
def test_refused_updates_change_nothing(dockerd, argv, status, words):
    started(dockerd, "ref", "--memory", "64m")
    before = same_inspect(dockerd, "ref")
    compare(dockerd, "update", *argv, "ref", status=status, words=words)
    assert same_inspect(dockerd, "ref") == before
    assert inside(dockerd, "ref", "/sys/fs/cgroup/memory/memory.limit_in_bytes") == str(64 << 20)


def test_memory_below_what_the_container_uses(dockerd):
    started(dockerd, "full", command=("sh", "-c", "head -c 30000000 /dev/zero > /dev/shm/f; touch /dev/shm/ok; sleep 600"))
    for _, side in sides(dockerd):
        assert side("exec", "full", "sh", "-c", "while [ ! -e /dev/shm/ok ]; do sleep 0.05; done").returncode == 0
    compare(dockerd, "update", "--memory", "10m", "--memory-swap", "10m", "full", status=1,
            words="unable to set memory limit to 10485760 (current usage:")
    assert same_inspect(dockerd, "full").split()[:2] == ["0", "0"]


def test_several_containers_a_missing_one_and_a_created_one(dockerd):
    for _, side in sides(dockerd):
        assert side("create", "--name", "made", "--network", "none", "busybox", "sleep", "600").returncode == 0
    compare(dockerd, "update", "--memory", "20m", "--memory-swap", "40m", "--cpus", "0.3", "made", "nosuch",
            status=1, words="no such container: nosuch", out=["made"])
    assert same_inspect(dockerd, "made").split()[:4] == [str(20 << 20), str(40 << 20), "0", "300000000"]
    compare(dockerd, "start", "made", status=0)
    assert inside(dockerd, "made", "/sys/fs/cgroup/memory/memory.limit_in_bytes") == str(20 << 20)
    assert inside(dockerd, "made", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us") == "30000"
    compare(dockerd, "container", "update", "--restart", "always", "made", status=0, out=["made"])


def test_run_with_a_memory_reservation(dockerd):
    started(dockerd, "soft", "--memory", "64m", "--memory-reservation", "20m")
    assert same_inspect(dockerd, "soft").split()[:3] == [str(64 << 20), str(128 << 20), str(20 << 20)]
    assert inside(dockerd, "soft", "/sys/fs/cgroup/memory/memory.soft_limit_in_bytes") == str(20 << 20)
