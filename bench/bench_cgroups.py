"""What cgroup set-up adds to a container start, measured side by side in one run.

    .venv/bin/python bench/bench_cgroups.py [ROUNDS]        # this machine: v1 driver (hybrid layout)
    tests/vm/run-v2.sh --bench [ROUNDS]                      # the cgroup v2 VM: v2 driver

Start to exit of `true` in a busybox rootfs (Container.run()), variants
interleaved round by round so that a noisy machine slows all of them alike:

  none        no cgroup at all: the launcher's floor (Container._make_cgroup skipped)
  default     the cgroup every container gets (stats, OOM flag, pause; v1: device rules)
  limits      memory=64m, cpus=0.5, pids_limit=100
  limits-noview   the same without the /sys/fs/cgroup view mounted inside

and, without a container, cgroups.create + join_fds + destroy with those limits.
Prints medians (ms) and each variant's difference to `none`.
"""
import itertools
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pycontain import Container, cgroups  # noqa: E402
from tests.conftest import make_busybox_rootfs  # noqa: E402

LIMITS = dict(memory="64m", cpus=0.5, pids_limit=100)
_names = itertools.count()


def run_container(rootfs, variant):
    c = Container(rootfs=rootfs, command=["true"], **({} if variant in ("none", "default") else LIMITS))
    if variant == "none":
        c._make_cgroup = lambda: None
    elif variant == "limits-noview":
        make = c._make_cgroup

        def make_without_view():
            cg = make()
            cg.mount_specs = lambda read_only=True: []
            return cg
        c._make_cgroup = make_without_view
    t = time.perf_counter_ns()
    c.run()
    return time.perf_counter_ns() - t


def bare_cgroup(limits):
    t = time.perf_counter_ns()
    cg = cgroups.create(f"pycontain-bench-{os.getpid()}-{next(_names)}", limits)
    cg.join_fds()
    cg.close_fds()
    cg.destroy()
    return time.perf_counter_ns() - t


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    work = Path(tempfile.mkdtemp(prefix="pycontain-bench-"))
    try:
        os.environ["PYCONTAIN_ROOT"] = str(work / "store")
        rootfs = make_busybox_rootfs(work / "busybox")
        limits = cgroups.Limits.from_docker(**LIMITS)
        variants = ("none", "default", "limits", "limits-noview")
        samples = {v: [] for v in variants + ("bare",)}
        for _ in range(max(5, rounds // 10)):       # warm caches, the allocator, the dentry cache
            for v in variants:
                run_container(rootfs, v)
        for _ in range(rounds):
            for v in variants:
                samples[v].append(run_container(rootfs, v))
            samples["bare"].append(bare_cgroup(limits))
        med = {k: statistics.median(v) / 1e6 for k, v in samples.items()}
        print(f"cgroups: {cgroups.layout().describe()}")
        print(f"kernel {os.uname().release}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
              f"{rounds} interleaved rounds; medians in ms, difference to 'none'")
        for v in variants:
            diff = "" if v == "none" else f"   {med[v] - med['none']:+.3f}  (x{med[v] / med['none']:.3f})"
            print(f"  run() {v:<14} {med[v]:8.3f}{diff}")
        print(f"  create+join_fds+destroy, no container ({'+'.join(LIMITS)}): {med['bare']:.3f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
