"""Resource limits for real: the kernel enforces them, pycontain reports them.

Runs on this machine with the v1 driver and (marked cgroupv2) in the VM lane
with the v2 driver: the same assertions on both layouts.
"""
import os
import re
import time

import pytest

from pycontain import CommandNotFound, Container, cgroups

from .conftest import DRIVER, LAYOUT

pytestmark = pytest.mark.cgroupv2

BUSY = ["sh", "-c", "while :; do :; done"]


def cpu_seconds(c):
    return c.stats().cpu_usage_ns / 1e9


def wait_for_cpu(c, since, seconds, timeout=10.0):
    """Polls until the container used `seconds` of CPU more than `since`: a busy
    loop gets there quickly on an idle machine and still does on a loaded one."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        now = cpu_seconds(c)
        if now - since >= seconds:
            return now
        time.sleep(0.02)
    return cpu_seconds(c)


def test_busy_loop_under_20_percent_quota_gets_about_20_percent(busybox, cgroup_leakcheck):
    with Container(rootfs=busybox, command=BUSY, cpus=0.2) as c:
        c.start()
        time.sleep(0.3)                    # past the first period's burst
        cpu0, t0 = cpu_seconds(c), time.monotonic()
        time.sleep(2.0)
        cpu1, t1 = cpu_seconds(c), time.monotonic()
    share = (cpu1 - cpu0) / (t1 - t0)
    # The quota is a ceiling the kernel enforces per 100 ms period; a busy
    # machine can only push the share down, so the lower bound is loose.
    assert 0.10 <= share <= 0.24, f"busy loop got {share:.1%} of a CPU under a 20% quota"


def test_memory_past_the_limit_is_oom_killed_and_reported(busybox, cgroup_leakcheck):
    # dd's 64 MiB buffer is filled from /dev/zero: every page is touched
    r = Container(rootfs=busybox, command=["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
                  memory="16m", memory_swap="16m").run(capture_output=True)
    assert r.returncode == -9
    assert r.oom_killed is True


def test_a_kill_that_is_not_the_oom_killer_is_not_reported_as_oom(busybox, cgroup_leakcheck):
    c = Container(rootfs=busybox, command=["sleep", "30"], memory="16m")
    c.start()
    c.kill()
    assert c.wait(timeout=10) == -9
    assert c.oom_killed is False
    r = Container(rootfs=busybox, command=["dd", "if=/dev/zero", "of=/dev/null", "bs=4M", "count=1"],
                  memory="16m").run(capture_output=True)
    assert (r.returncode, r.oom_killed) == (0, False)


def test_oom_killed_on_the_container_after_wait(busybox, cgroup_leakcheck):
    c = Container(rootfs=busybox, command=["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
                  memory="16m", memory_swap="16m", remove=False)
    c.start(stdout=-3, stderr=-3)
    assert c.wait(timeout=30) == -9
    assert c.oom_killed                     # cgroup still there (remove=False): read live
    c.remove()
    assert c.oom_killed                     # and remembered after its removal


def test_pids_limit_stops_a_fork_bomb(busybox, cgroup_leakcheck):
    limit = 16
    bomb = "bomb() { bomb | bomb & }; bomb; while :; do sleep 1; done"
    with Container(rootfs=busybox, command=["sh", "-c", bomb], pids_limit=limit) as c:
        # Joined and limited before the command runs: check before letting a fork bomb loose.
        c.create(stdout=-3, stderr=-3)
        assert c.stats().pids_limit == limit
        assert c.pid in c._cgroup.pids()
        c.start()
        peak = 0
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            peak = max(peak, c.stats().pids_current)
            time.sleep(0.02)
        stats = c.stats()
        assert stats.pids_limit_hits > 0, "the fork bomb never ran into the limit"
        assert peak <= limit
        if stats.pids_peak is not None:     # kernel 6.13+ (v1 here); the v2 VM's 6.1 has none
            assert stats.pids_peak == limit
    # leaving the with block removed the container: every process of the bomb is gone


def test_cpuset_pins_the_container(busybox, cgroup_leakcheck):
    cpu = max(cgroups.limits.online_cpus())
    r = Container(rootfs=busybox, command=["sh", "-c", "grep Cpus_allowed_list /proc/self/status"],
                  cpuset_cpus=str(cpu)).run(capture_output=True, text=True)
    assert r.returncode == 0
    assert r.stdout.split() == ["Cpus_allowed_list:", str(cpu)]


def test_stats_move(busybox, cgroup_leakcheck):
    with Container(rootfs=busybox, command=BUSY, memory="64m") as c:
        c.start()
        s0 = c.stats()
        wait_for_cpu(c, s0.cpu_usage_ns / 1e9, 0.1)
        s1 = c.stats()
    assert s1.cpu_usage_ns - s0.cpu_usage_ns >= 0.1e9
    assert s1.memory_current > 0
    assert s1.memory_limit == 64 << 20
    assert s1.pids_current >= 1
    if s1.memory_peak is not None:
        assert s1.memory_peak >= s1.memory_current


def test_pause_stops_progress_and_unpause_resumes_it(busybox, cgroup_leakcheck):
    with Container(rootfs=busybox, command=BUSY, cgroup=True) as c:
        c.start()
        time.sleep(0.2)
        c.pause()
        frozen0 = cpu_seconds(c)
        time.sleep(0.5)
        frozen1 = cpu_seconds(c)
        c.unpause()
        running = wait_for_cpu(c, frozen1, 0.1)
    assert frozen1 - frozen0 < 0.01, "the container ran while paused"
    assert running - frozen1 >= 0.1, "the container did not resume"


def test_removing_a_paused_container_leaves_nothing(busybox, cgroup_leakcheck):
    c = Container(rootfs=busybox, command=["sh", "-c", "sleep 60 & sleep 60 & wait"], cgroup=True)
    c.start()
    time.sleep(0.1)
    c.pause()
    c.remove()
    assert c.returncode == -9


def test_two_hundred_containers_leave_no_cgroup(busybox, cgroup_leakcheck):
    for _ in range(200):
        r = Container(rootfs=busybox, command=["true"], memory="32m", cpus=1, pids_limit=64).run()
        assert r.returncode == 0


def test_failed_launch_leaves_no_cgroup(busybox, cgroup_leakcheck):
    with pytest.raises(CommandNotFound):
        Container(rootfs=busybox, command=["no-such-command"], memory="32m", pids_limit=10).run()
    c = Container(rootfs=busybox, command=["true"], memory="32m")
    c.create()
    c.remove()


def test_the_command_never_runs_outside_its_cgroup(busybox, cgroup_leakcheck):
    with Container(rootfs=busybox, command=["true"], memory="32m") as c:
        c.create()       # stopped before exec: the child has already joined
        with open(f"/proc/{c.pid}/cgroup") as f:
            lines = dict(line.rstrip("\n").split(":", 2)[1:] for line in f)
        name = f"pycontain-{c.id}"
        if DRIVER == "v1":
            for ctl in ("memory", "pids", "cpuacct", "freezer"):
                key = next(k for k in lines if ctl in k.split(","))
                assert lines[key].endswith("/" + name), (ctl, lines[key])
        else:
            assert lines[""].endswith("/" + name)
        c.start()
        assert c.wait(timeout=10) == 0


def test_nested_under_the_callers_own_cgroup(busybox, cgroup_leakcheck):
    own = cgroups.own_cgroups()
    with Container(rootfs=busybox, command=["sleep", "10"], memory="32m", pids_limit=10) as c:
        c.start()
        for path in c._cgroup.paths:
            if DRIVER == "v1":
                ctl = next(k for k, (mnt, _) in LAYOUT.v1.items() if path.startswith(mnt + "/"))
                parent = cgroups.hierarchy_path(LAYOUT.v1[ctl], own[ctl])
            else:
                parent = cgroups.hierarchy_path(LAYOUT.v2, own[""])
            assert path == os.path.join(parent, f"pycontain-{c.id}")


def test_cgroup_parent_is_made_and_removed(busybox, cgroup_leakcheck):
    with Container(rootfs=busybox, command=["sleep", "10"], memory="32m", cgroup_parent="pycontain-test-parent/inner") as c:
        c.start()
        for path in c._cgroup.paths:
            assert path.endswith(f"/pycontain-test-parent/inner/pycontain-{c.id}")
            assert os.path.isdir(path)
    # the leak check asserts that the parents this container made are gone too


def test_inside_the_container_its_cgroup_is_the_root_and_read_only(busybox, cgroup_leakcheck):
    limit_file = "/sys/fs/cgroup/memory/memory.limit_in_bytes" if DRIVER == "v1" else "/sys/fs/cgroup/memory.max"
    script = f"cat /proc/self/cgroup; echo limit $(cat {limit_file}); mkdir /sys/fs/cgroup/x 2>&1; echo 1 > {limit_file}"
    r = Container(rootfs=busybox, command=["sh", "-c", script], memory="48m").run(capture_output=True, text=True)
    lines = r.stdout.splitlines()
    cg_lines = [line for line in lines if re.match(r"^\d+:[^:]*:", line)]
    assert cg_lines and all(line.endswith(":/") for line in cg_lines), lines
    assert f"limit {48 << 20}" in lines
    assert "Read-only file system" in r.stdout + r.stderr
    assert r.returncode != 0        # the write to the limit file failed


def test_kill_all_ends_every_process_of_the_container(busybox, cgroup_leakcheck):
    # v2: one write to cgroup.kill; v1: freeze, SIGKILL each, thaw
    with Container(rootfs=busybox, command=["sh", "-c", "sleep 60 & sleep 60 & sleep 60 & wait"], pids_limit=10) as c:
        c.start()
        deadline = time.monotonic() + 5
        while len(c._cgroup.pids()) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(c._cgroup.pids()) == 4
        c._cgroup.kill_all()
        assert c._cgroup.pids() == []
        assert c.wait(timeout=5) == -9


def test_an_existing_cgroup_of_that_name_is_never_adopted(cgroup_leakcheck):
    limits = cgroups.Limits.from_docker(memory="32m")
    first = cgroups.create("pycontain-test-taken", limits)
    try:
        with pytest.raises(cgroups.CgroupError) as e:
            cgroups.create("pycontain-test-taken", cgroups.Limits.from_docker(memory="16m"))
        assert "already exists" in str(e.value)
        assert all(os.path.isdir(p) for p in first.paths)     # the failed attempt removed nothing of it
        assert first.stats().memory_limit == 32 << 20
    finally:
        first.destroy()


def test_command_line_limits_and_info(busybox, cgroup_leakcheck):
    import subprocess
    import sys
    cli = [sys.executable, "-c", "from pycontain.cli import entry; entry()"]
    pids_max = "/sys/fs/cgroup/pids/pids.max" if DRIVER == "v1" else "/sys/fs/cgroup/pids.max"
    r = subprocess.run(cli + ["run", "--rm", "-m", "32m", "--memory-swap", "64m", "--cpus", "0.5", "-c", "512",
                              "--pids-limit", "12", "--cpuset-cpus", "0", "--rootfs", str(busybox), "cat", pids_max],
                       capture_output=True, text=True, timeout=120)
    assert (r.returncode, r.stdout, r.stderr) == (0, "12\n", "")
    r = subprocess.run(cli + ["info"], capture_output=True, text=True, timeout=120)
    assert f"Cgroups:     {LAYOUT.kind} (" in r.stdout


def test_containers_started_from_many_threads_keep_their_own_limits(busybox, cgroup_leakcheck):
    import threading
    errors, results = [], []

    def worker(n):
        try:
            for i in range(5):
                limit = 10 + n * 5 + i
                pids_max = "/sys/fs/cgroup/pids/pids.max" if DRIVER == "v1" else "/sys/fs/cgroup/pids.max"
                r = Container(rootfs=busybox, command=["cat", pids_max], memory="32m",
                              pids_limit=limit).run(capture_output=True, text=True)
                results.append((limit, r.stdout.strip(), r.returncode))
        except Exception as e:      # reported below, in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(results) == 20
    assert all(out == str(limit) and rc == 0 for limit, out, rc in results), results
