"""pycontain-runc update beside runc update (containerd 1.6's ctr has no
`tasks update`, so the runtimes are called directly, on the same bundle):
the flags and `--resources -` change the live cgroup, an error changes
nothing; systemd's slice:prefix:name cgroupsPath; the resources kinds this
runtime added (memory reservation, IOPS, hugepage limits, unified)."""
import json
import os
import shutil
import subprocess

import pytest
from ocitools import RUNTIME, own_cgroup_dirs, run_runtime

from pycontain.cgroups import layout, running

pytestmark = pytest.mark.cgroupv2     # also in the VM lane: the v2 driver's update
RUNC = shutil.which("runc")
V2 = layout().driver == "v2"
MB = 1 << 20


def runtimes():
    return [RUNTIME] + ([RUNC] if RUNC and not V2 else [])


def started(state_root, bundle_dir, cid, runtime=RUNTIME):
    r = run_runtime(state_root, "create", "--bundle", str(bundle_dir), cid, runtime=runtime)
    assert r.returncode == 0, r.stderr
    assert run_runtime(state_root, "start", cid, runtime=runtime).returncode == 0
    return json.loads(run_runtime(state_root, "state", cid, runtime=runtime).stdout)["pid"]


def cgroup_file(pid, name) -> str:
    for _ctrls, d in running.own_cgroups(pid):
        if os.path.exists(f"{d}/{name}"):
            with open(f"{d}/{name}") as f:
                return f.read().strip()
    raise AssertionError(f"no {name} in the cgroups of {pid}")


def update(state_root, cid, *args, runtime=RUNTIME, stdin=None):
    if stdin is None:
        return run_runtime(state_root, "update", *args, cid, runtime=runtime)
    return subprocess.run([runtime, "--root", str(state_root), "update", *args, cid], input=stdin.encode(),
                          capture_output=True, timeout=60)


def limits_v1(pid):
    return {name: cgroup_file(pid, name) for name in (
        "memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.soft_limit_in_bytes", "pids.max",
        "cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.shares", "cpuset.cpus")}


@pytest.mark.skipif(RUNC is None or V2, reason="runc on this machine's v1 hierarchies is the reference")
def test_update_flags_and_resources_as_runc(bundle, state_root, tmp_path):
    b = bundle(["sleep", "60"])
    got = {}
    for runtime in runtimes():
        root = state_root if runtime == RUNTIME else tmp_path / "runc-state"
        cid = "upd-" + os.path.basename(runtime)
        pid = started(root, b, cid, runtime)
        try:
            r = update(root, cid, "--memory", "64m", "--memory-swap", "128m", "--memory-reservation", "32m",
                       "--pids-limit", "20", "--cpu-quota", "50000", "--cpu-period", "100000", "--cpu-share", "512",
                       "--cpuset-cpus", "0", runtime=runtime)
            assert (r.returncode, r.stdout) == (0, b""), r.stderr
            first = limits_v1(pid)
            r = update(root, cid, "-r", "-", runtime=runtime, stdin=json.dumps(
                {"memory": {"limit": 96 * MB, "swap": 192 * MB}, "pids": {"limit": 30}, "cpu": {"quota": -1}}))
            assert r.returncode == 0, r.stderr
            second = limits_v1(pid)
            # shrinking: memory first, then memsw (the kernel keeps memory <= memsw)
            r = update(root, cid, "--memory", "64m", "--memory-swap", "64m", runtime=runtime)
            assert r.returncode == 0, r.stderr
            got[runtime] = first, second, limits_v1(pid)
        finally:
            run_runtime(root, "delete", "--force", cid, runtime=runtime)
    first, second, third = got[RUNTIME]
    assert first["memory.limit_in_bytes"] == str(64 * MB) and first["memory.memsw.limit_in_bytes"] == str(128 * MB)
    assert first["memory.soft_limit_in_bytes"] == str(32 * MB)
    assert (first["pids.max"], first["cpu.cfs_quota_us"], first["cpu.shares"], first["cpuset.cpus"]) == (
        "20", "50000", "512", "0")
    assert second["memory.limit_in_bytes"] == str(96 * MB) and second["pids.max"] == "30"
    assert second["cpu.cfs_quota_us"] == "-1" and second["cpu.shares"] == "512"    # absent: unchanged
    assert third["memory.limit_in_bytes"] == str(64 * MB)
    assert got[RUNTIME] == got[RUNC]


def test_refused_updates_change_nothing(bundle, state_root, tmp_path):
    b = bundle(["sh", "-c", "head -c 25165824 /dev/zero > /dev/shm/fill && touch /dev/shm/ok && sleep 60"],
               edit=lambda s: s["linux"].setdefault("resources", {}).update(
                   memory={"limit": 64 * MB, "swap": 64 * MB}, pids={"limit": 50}))
    pid = started(state_root, b, "ref")
    try:
        for _ in range(200):
            if os.path.exists(f"/proc/{pid}/root/dev/shm/ok"):
                break
            subprocess.run(["sleep", "0.05"])
        mem = "memory.max" if V2 else "memory.limit_in_bytes"
        before = (cgroup_file(pid, mem), cgroup_file(pid, "pids.max"))
        cases = [
            (("--memory", "10m", "--memory-swap", "10m", "--pids-limit", "5"), None,
             "unable to set memory limit to 10485760 (current usage:"),
            (("--pids-limit", "x"), None, "invalid value for --pids-limit"),
            (("--kernel-memory", "10m"), None, "--kernel-memory is not supported"),
            (("-r", "-"), "[1]", "expected a JSON object"),
            (("-r", "-"), '{"pids": {"limit": 7}, "memory": {"swappiness": 10}}', "resources.memory.swappiness"),
            (("-r", "-"), '{"pids": {"limit": "7"}}', "resources.pids.limit"),
            (("-r", "-"), '{"pids": {"limit": 7}, "unified": {"cgroup.procs": "1"}}', "unified"),
            (("-r", "/no/such/file",), None, "--resources /no/such/file"),
        ]
        if not V2:
            cases.append((("-r", "-"), '{"pids": {"limit": 7}, "unified": {"memory.high": "max"}}',
                          "linux.resources.unified: cgroup v2 files cannot be set"))
        for args, stdin, words in cases:
            r = update(state_root, "ref", *args, stdin=stdin)
            assert r.returncode == 1, (args, r.stderr)
            assert len(r.stderr.splitlines()) == 1 and words in r.stderr.decode(), (args, r.stderr)
            assert (cgroup_file(pid, mem), cgroup_file(pid, "pids.max")) == before, args
        r = update(state_root, "nosuch", "--pids-limit", "3")
        assert r.returncode == 1
    finally:
        assert run_runtime(state_root, "delete", "--force", "ref").returncode == 0
    assert run_runtime(state_root, "create", "--bundle", str(b), "gone").returncode == 0
    assert run_runtime(state_root, "kill", "gone", "KILL").returncode == 0
    for _ in range(200):
        if json.loads(run_runtime(state_root, "state", "gone").stdout)["status"] == "stopped":
            break
        subprocess.run(["sleep", "0.05"])
    r = update(state_root, "gone", "--pids-limit", "3")
    assert (r.returncode, r.stderr) == (1, b"container not running\n")
    assert run_runtime(state_root, "delete", "gone").returncode == 0


def test_the_state_keeps_the_limits_in_force(bundle, state_root):
    """A second update starts from the first's values, not from config.json's."""
    b = bundle(["sleep", "60"], edit=lambda s: s["linux"].setdefault("resources", {}).update(pids={"limit": 50}))
    pid = started(state_root, b, "keep")
    try:
        assert update(state_root, "keep", "--pids-limit", "40").returncode == 0
        assert update(state_root, "keep", "--cpu-share", "300").returncode == 0
        assert cgroup_file(pid, "pids.max") == "40"
        assert update(state_root, "keep", "--pids-limit", "-1").returncode == 0
        assert cgroup_file(pid, "pids.max") == "max"
    finally:
        run_runtime(state_root, "delete", "--force", "keep")


@pytest.mark.parametrize("systemd_flag", [True, False])
def test_systemd_cgroups_path_maps_below_our_cgroup(bundle, state_root, systemd_flag):
    """No systemd runs here to ask for a unit: the slice:prefix:name form is
    mapped to the path systemd would use (runc's mapping), below our own cgroup."""
    b = bundle(["sleep", "60"], edit=lambda s: s["linux"].update(cgroupsPath="machine-test.slice:pyc:abc"))
    flags = ["--systemd-cgroup"] if systemd_flag else []
    r = run_runtime(state_root, *flags, "create", "--bundle", str(b), "sd")
    assert r.returncode == 0, r.stderr
    try:
        pid = json.loads(run_runtime(state_root, "state", "sd").stdout)["pid"]
        with open("/proc/self/cgroup") as f:
            ours = {line.split(":")[1]: line.rstrip("\n").split(":", 2)[2] for line in f}
        with open(f"/proc/{pid}/cgroup") as f:
            theirs = {line.split(":")[1]: line.rstrip("\n").split(":", 2)[2] for line in f}
        key = "" if V2 else "memory"
        assert theirs[key] == ours[key].rstrip("/") + "/machine.slice/machine-test.slice/pyc-abc.scope"
        assert update(state_root, "sd", "--pids-limit", "9").returncode == 0
        assert cgroup_file(pid, "pids.max") == "9"
    finally:
        assert run_runtime(state_root, "delete", "--force", "sd").returncode == 0
    assert own_cgroup_dirs("machine.slice") == []


@pytest.mark.parametrize("path, words", [
    ("/plain/path", 'expected cgroupsPath to be of format "slice:prefix:name"'),
    ("bad:pyc:x", "invalid slice name 'bad'"),
    ("a--b.slice:pyc:x", "invalid slice name 'a--b.slice'"),
])
def test_a_bad_systemd_cgroups_path_is_one_line(bundle, state_root, path, words):
    b = bundle(["true"], edit=lambda s: s["linux"].update(cgroupsPath=path))
    r = run_runtime(state_root, "--systemd-cgroup", "create", "--bundle", str(b), "bad")
    assert r.returncode == 1 and len(r.stderr.splitlines()) == 1 and words in r.stderr.decode(), r.stderr
    assert not (state_root / "bad").exists()


def test_create_with_iops_reservation_and_the_v1_refusals(bundle, state_root):
    dev = os.stat("/dev/loop0").st_rdev if os.path.exists("/dev/loop0") else None
    if dev is None:
        pytest.skip("no /dev/loop0 to throttle")
    major, minor = os.major(dev), os.minor(dev)
    b = bundle(["sleep", "60"], edit=lambda s: s["linux"].setdefault("resources", {}).update(
        memory={"limit": 64 * MB, "reservation": 16 * MB},
        blockIO={"throttleReadIOPSDevice": [{"major": major, "minor": minor, "rate": 120}],
                 "throttleWriteBpsDevice": [{"major": major, "minor": minor, "rate": 1 << 20}]}))
    pid = started(state_root, b, "io")
    try:
        if V2:
            assert cgroup_file(pid, "memory.low") == str(16 * MB)
            assert f"{major}:{minor} rbps=max wbps=1048576 riops=120 wiops=max" in cgroup_file(pid, "io.max")
        else:
            assert cgroup_file(pid, "memory.soft_limit_in_bytes") == str(16 * MB)
            assert cgroup_file(pid, "blkio.throttle.read_iops_device") == f"{major}:{minor} 120"
            assert cgroup_file(pid, "blkio.throttle.write_bps_device") == f"{major}:{minor} 1048576"
        # a rate of 0 takes a device's limit away
        r = update(state_root, "io", "-r", "-", stdin=json.dumps(
            {"blockIO": {"throttleReadIOPSDevice": [{"major": major, "minor": minor, "rate": 0}]}}))
        assert r.returncode == 0, r.stderr
        assert cgroup_file(pid, "io.max" if V2 else "blkio.throttle.read_iops_device") in (
            "", f"{major}:{minor} rbps=max wbps=1048576 riops=max wiops=max")
    finally:
        run_runtime(state_root, "delete", "--force", "io")
    if not V2:
        for edit, words in [
            (lambda s: s["linux"].setdefault("resources", {}).update(unified={"memory.high": "max"}),
             "linux.resources.unified: cgroup v2 files cannot be set"),
            (lambda s: s["linux"].setdefault("resources", {}).update(
                hugepageLimits=[{"pageSize": "2MB", "limit": 1 << 21}]), "hugetlb cgroup controller is not mounted"),
        ]:
            nb = bundle(["true"], edit=edit, name=f"b{len(words)}")
            r = run_runtime(state_root, "create", "--bundle", str(nb), "v1x")
            assert r.returncode == 1 and len(r.stderr.splitlines()) == 1 and words in r.stderr.decode(), r.stderr
            assert not (state_root / "v1x").exists() and own_cgroup_dirs("pycontain-v1x") == []
