"""What cgroup set-up adds to a container start (start to exit of `true` in a
busybox rootfs), measured side by side in one run: medians and differences.

    .venv/bin/python bench/bench_cgroups.py [ROUNDS]          # this machine (v1 / hybrid)
    tests/vm/run-v2.sh ... cannot run scripts; for v2:
    VM: see tests/vm/README.md (bench lane) -> bench/bench_cgroups.py in the VM

Variants, interleaved round by round so that a noisy machine hits all alike:
  none      no cgroup at all (the launcher's floor; Container._make_cgroup skipped)
  default   the cgroup every container gets (stats, OOM flag, pause; v1 devices rules)
  limits    memory=64m, cpus=0.5, pids_limit=100
  bare      cgroups.create + join_fds + destroy alone, with those limits, no container
"""
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from pycontain import Container, cgroups  # noqa: E402
from tests.conftest import make_busybox_rootfs  # noqa: E402

LIMITS = dict(memory="64m", cpus=0.5, pids_limit=100)


def run_container(rootfs, with_cgroup, **limits):
    c = Container(rootfs=rootfs, command=["true"], **limits)
    if not with_cgroup:
        c._make_cgroup = lambda: None       # the floor: what the launcher costs without cgroups
    t = time.perf_counter_ns()
    c.run()
    return time.perf_counter_ns() - t


def bare_cgroup(limits):
    t = time.perf_counter_ns()
    cg = cgroups.create(f"pycontain-bench-{os.getpid()}", limits)
    cg.join_fds()
    cg.close_fds()
    cg.destroy()
    return time.perf_counter_ns() - t


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    work = Path(tempfile.mkdtemp(prefix="pycontain-bench-"))
    os.environ["PYCONTAIN_ROOT"] = str(work / "store")
    rootfs = make_busybox_rootfs(work / "busybox")
    limits = cgroups.Limits.from_docker(**LIMITS)
    samples = {"none": [], "default": [], "limits": [], "bare": []}
    for _ in range(20):   # warm up caches and the allocator
        run_container(rootfs, True, **LIMITS)
        run_container(rootfs, False)
    for _ in range(rounds):
        samples["none"].append(run_container(rootfs, False))
        samples["default"].append(run_container(rootfs, True))
        samples["limits"].append(run_container(rootfs, True, **LIMITS))
        samples["bare"].append(bare_cgroup(limits))
    med = {k: statistics.median(v) / 1e6 for k, v in samples.items()}
    lay = cgroups.layout()
    print(f"layout: {lay.describe()}")
    print(f"kernel {os.uname().release}, {rounds} interleaved rounds, medians (ms):")
    print(f"  start to exit, no cgroup          {med['none']:.3f}")
    print(f"  start to exit, default cgroup     {med['default']:.3f}   (+{med['default'] - med['none']:.3f})")
    print(f"  start to exit, memory+cpu+pids    {med['limits']:.3f}   (+{med['limits'] - med['none']:.3f}, "
          f"x{med['limits'] / med['none']:.2f})")
    print(f"  create+fds+destroy alone          {med['bare']:.3f}")
    import shutil
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
