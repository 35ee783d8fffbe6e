"""What cgroup set-up adds to a container start, measured side by side in one run.

    .venv/bin/python bench/bench_cgroups.py [ROUNDS]        # this machine: v1 driver (hybrid layout)
    tests/vm/run-v2.sh --bench [ROUNDS]                      # the cgroup v2 VM: v2 driver

Start to exit of `true` in a busybox rootfs (Container.run()), variants
interleaved round by round so that a noisy machine slows all of them alike:

  none        no cgroup at all: the launcher's floor (Container._make_cgroup skipped)
  default     the cgroup every container gets (stats, OOM flag, pause, device rules:
              v1's devices controller, v2's eBPF filter)
  limits      memory=64m, cpus=0.5, pids_limit=100
  limits-noview   the same without the /sys/fs/cgroup view mounted inside
  limits-join     the same joined by a cgroup.procs write after clone: on v2 the
                  way before clone3(CLONE_INTO_CGROUP), kept as the fallback
                  (on v1 `limits` already takes it)

and, without a container, cgroups.create + join_fds + destroy with those limits,
and what v2's eBPF device filter (pycontain/cgroups/devices.py) costs on its
own: the kernel's load (once per process and rule list: the program is kept)
and an attach to a fresh cgroup (on a hybrid layout, one in its cgroup2 tree).
Prints wall-time medians (ms) and each variant's difference to `none`, and the
mean CPU time (this process and its children), which a loaded machine disturbs less.
"""
import itertools
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pycontain import Container, cgroups  # noqa: E402
from pycontain.cgroups import devices  # noqa: E402
from tests.conftest import make_busybox_rootfs  # noqa: E402

LIMITS = dict(memory="64m", cpus=0.5, pids_limit=100)
_names = itertools.count()


def run_container(rootfs, variant):
    c = Container(rootfs=rootfs, command=["true"], **({} if variant in ("none", "default") else LIMITS))
    if variant == "none":
        c._make_cgroup = lambda **_: None
    elif variant == "limits-noview":
        make = c._make_cgroup

        def make_without_view(**kw):
            cg = make(**kw)
            cg.mount_specs = lambda read_only=True: []
            return cg
        c._make_cgroup = make_without_view
    elif variant == "limits-join":
        plan = c._plan

        def plan_joined_after_clone():
            p = plan()
            p.cgroup_dir_fd = -1
            return p
        c._plan = plan_joined_after_clone
    cpu = _cpu_ns()
    t = time.perf_counter_ns()
    c.run()
    return time.perf_counter_ns() - t, _cpu_ns() - cpu


def _cpu_ns():
    """CPU time of this process and its reaped children: unlike wall time, it
    barely moves when other work on a busy machine takes the CPUs away."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        r = resource.getrusage(who)
        total += r.ru_utime + r.ru_stime
    return int(total * 1e9)


def bare_cgroup(limits):
    t = time.perf_counter_ns()
    cg = cgroups.create(f"pycontain-bench-{os.getpid()}-{next(_names)}", limits)
    cg.join_fds()
    cg.close_fds()
    cg.destroy()
    return time.perf_counter_ns() - t


def attach(limits):
    """(ns of the first cgroup.procs write, ns of the others) of a fresh
    process joining a cgroup with these limits, as the launcher's child does.
    A migration takes cgroup_threadgroup_rwsem for writing; after a quiet
    spell the first one waits for an RCU grace period (rcu_sync), the next
    ones in the same spell do not. Only a process already in its cgroup (a
    Pool's container) or v2's CLONE_INTO_CGROUP skips it."""
    cg = cgroups.create(f"pycontain-bench-{os.getpid()}-{next(_names)}", limits)
    fds = cg.join_fds()
    r, w = os.pipe()
    try:
        pid = os.fork()
        if pid == 0:
            took = []
            for fd in fds:
                t = time.perf_counter_ns()
                os.write(fd, b"0")
                took.append(time.perf_counter_ns() - t)
            os.write(w, f"{took[0]} {sum(took[1:])}".encode())
            os._exit(0)
        os.waitpid(pid, 0)
        os.close(w)
        w = -1
        first, rest = (int(x) for x in os.read(r, 100).split())
        return first, rest
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
        cg.close_fds()
        cg.destroy()


def device_filter_load():
    """ns for loading docker's device program, as the first start of a process does."""
    program = devices.assemble(devices.default_rules())
    t = time.perf_counter_ns()
    os.close(devices.load(program))
    return time.perf_counter_ns() - t


def device_filter():
    """ns for attaching the (loaded, kept) v2 device filter to a fresh cgroup
    that has none. v1 driver: in a directory of the hybrid layout's cgroup2
    tree (the kernel attaches there too); a legacy layout: nothing (None)."""
    rules = devices.default_rules()
    lay = cgroups.layout()
    if lay.driver == "v2":
        cg = cgroups.create(f"pycontain-bench-{os.getpid()}-{next(_names)}", cgroups.Limits(),
                            devices_restricted=False)
        path, remove = cg.path, cg.destroy
    elif lay.v2:
        path = cgroups.hierarchy_path(lay.v2, cgroups.own_cgroups().get("", "/")) + \
            f"/pycontain-bench-{os.getpid()}-{next(_names)}"
        os.mkdir(path)
        remove = lambda: os.rmdir(path)  # noqa: E731
    else:
        return None
    try:
        t = time.perf_counter_ns()
        devices.attach_filter(path, rules)
        return time.perf_counter_ns() - t
    finally:
        remove()


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    work = Path(tempfile.mkdtemp(prefix="pycontain-bench-"))
    try:
        os.environ["PYCONTAIN_ROOT"] = str(work / "store")
        rootfs = make_busybox_rootfs(work / "busybox")
        limits = cgroups.Limits.from_docker(**LIMITS)
        variants = ("none", "default", "limits", "limits-noview", "limits-join")
        samples = {v: [] for v in variants + ("bare", "devices", "devices-load", "attach-first", "attach-rest")}
        cpu = {v: [] for v in variants}
        for _ in range(max(5, rounds // 10)):       # warm caches, the allocator, the dentry cache
            for v in variants:
                run_container(rootfs, v)  # the result is not what is measured
        for _ in range(rounds):
            for v in variants:
                wall, used = run_container(rootfs, v)
                samples[v].append(wall)
                cpu[v].append(used)
            samples["bare"].append(bare_cgroup(limits))
            first, rest = attach(limits)
            samples["attach-first"].append(first)
            samples["attach-rest"].append(rest)
            samples["devices-load"].append(device_filter_load())
            if (ns := device_filter()) is not None:
                samples["devices"].append(ns)
        med = {k: statistics.median(v) / 1e6 for k, v in samples.items() if v}
        mcpu = {k: statistics.mean(v) / 1e6 for k, v in cpu.items()}
        print(f"cgroups: {cgroups.layout().describe()}")
        print(f"kernel {os.uname().release}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
              f"{rounds} interleaved rounds; medians in ms, difference to 'none'")
        print(f"  {'':20} {'wall':>8} {'diff':>8} {'ratio':>7}   {'cpu':>7} {'diff':>8}   (cpu: mean of this process + children)")
        for v in variants:
            print(f"  run() {v:<14} {med[v]:8.3f} {med[v] - med['none']:+8.3f} {med[v] / med['none']:7.3f}"
                  f"   {mcpu[v]:7.3f} {mcpu[v] - mcpu['none']:+8.3f}")
        print(f"  create+join_fds+destroy, no container ({'+'.join(LIMITS)}): {med['bare']:.3f}")
        print(f"  a process joining it: first cgroup.procs write {med['attach-first']:.3f}, "
              f"the other hierarchies' together {med['attach-rest']:.3f}")
        print(f"  v2 device filter: load (first start of a process) {med['devices-load'] * 1000:.0f} us"
              + (f", attach (every start) {med['devices'] * 1000:.0f} us" if "devices" in med else ""))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
