"""Scale (issue 17, item 5): many detached containers with limits at once,
and `ps -a` over many records. A script; one run prints a table (a noisy
shared machine: compare within one run only).

    .venv/bin/python bench/bench_scale.py [--containers 100] [--exited 100] [--ps-runs 30]

Re-executes itself once in a private mount namespace (the leak check
compares mount tables, which other processes on the machine change too).

- start: --containers detached containers (containers.run, memory 64 MiB,
  0.5 CPU, 64 pids, network none) started one after another through the
  library and all left running, each start timed until run() returns (the
  container runs); the 10th beside the last, and the medians of the first
  and last ten, also of the CPU time the calling process spent (the rest of
  a start's wall-clock time is the monitor process starting)
- monitors: resident (VmRSS) and anonymous (RssAnon) memory of the
  containers' monitors, all running at once
- ps: `pycontain ps -a` as a user runs it (a whole process, the venv's
  interpreter) over the running ones plus --exited containers that ran
  `true` and exited, beside `python -c pass` (the floor) and `ps -a` over
  no records, interleaved round by round; wall-clock and CPU time
- teardown: rm -f of every container, then what is left: records,
  container directories, pycontain mounts, monitors and container
  processes, the containers' cgroup directories
"""
import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

WORKER_ENV = "PYCONTAIN_BENCH_SCALE_WORKER"
LIMITS = {"memory": "64m", "cpus": 0.5, "pids_limit": 64}


def become_worker():
    """Re-executes this script in a private mount namespace, once."""
    if os.environ.get(WORKER_ENV):
        return
    os.environ[WORKER_ENV] = "1"
    os.execv("/usr/bin/unshare", ["unshare", "--mount", "--propagation", "private", "--",
                                  sys.executable, *sys.argv])


def pycontain_mounts() -> list:
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if "pycontain" in line]


def start_time(pid) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, TypeError):
        return None


def memory_kib(pid: int) -> tuple:
    """(VmRSS, RssAnon) in KiB from /proc/PID/status."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.split()[0] if value.split() else "0"
    return int(fields["VmRSS"]), int(fields["RssAnon"])


def spawn_and_wait(argv, env) -> float:
    """Runs argv to its end; returns the CPU time it used (user + system),
    which a loaded machine inflates less than the wall-clock time."""
    pid = os.posix_spawn(argv[0], argv, env, file_actions=[
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)])
    _, status, usage = os.wait4(pid, 0)
    if status != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with status {status}")
    return usage.ru_utime + usage.ru_stime


def interleaved(cases: dict, runs: int) -> dict:
    """{name: ([wall seconds], [CPU seconds])}: each case once per round, in
    a new order each round."""
    out = {name: ([], []) for name in cases}
    for fn in cases.values():   # warm-up, and fails early
        fn()
    for _ in range(runs):
        order = list(cases)
        random.shuffle(order)
        for name in order:
            t = time.perf_counter()
            cpu = cases[name]()
            out[name][0].append(time.perf_counter() - t)
            out[name][1].append(cpu)
    return out


def wait_until(predicate, timeout):
    end = time.monotonic() + timeout
    while not predicate() and time.monotonic() < end:
        time.sleep(0.02)
    return predicate()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--containers", type=int, default=100, help="detached containers running at once")
    ap.add_argument("--exited", type=int, default=100, help="more records, of containers that ran and exited")
    ap.add_argument("--ps-runs", type=int, default=30, help="rounds of the ps section")
    args = ap.parse_args()
    become_worker()

    from conftest import make_busybox_rootfs

    work = Path(tempfile.mkdtemp(prefix="pycontain-bench-scale-"))
    store = work / "store"
    os.environ["PYCONTAIN_ROOT"] = str(store)
    os.environ["PYCONTAIN_NETWORK"] = "none"
    busybox = str(make_busybox_rootfs(work / "busybox"))
    from pycontain import containers

    mounts_before = pycontain_mounts()
    made, starts, start_cpu, exited = [], [], [], []
    try:
        for i in range(args.containers):
            t, cpu = time.perf_counter(), time.process_time()
            made.append(containers.run(rootfs=busybox, command=["sleep", "3600"], name=f"scale{i}",
                                       network="none", **LIMITS))
            starts.append(time.perf_counter() - t)
            start_cpu.append(time.process_time() - cpu)
        running = [c.reload() for c in made]
        assert all(c.status == "running" for c in running), "not every container runs"
        procs = [(r.pid, r.pid_start) for r in (c.record for c in running)] + \
                [(r.monitor_pid, r.monitor_start) for r in (c.record for c in running)]
        cgroup_dirs = {d for c in running for d in c.record.exec_profile.get("cgroups", ())}
        memory = [memory_kib(c.record.monitor_pid) for c in running]
        assert len(cgroup_dirs) >= len(running), "a container without a cgroup of its own"

        for i in range(args.exited):
            exited.append(containers.run(rootfs=busybox, command=["true"], name=f"done{i}", network="none"))
        assert wait_until(lambda: all(c.reload().status == "exited" for c in exited), 60), "not all exited"
        records = len(containers.list(all=True))

        env = dict(os.environ)
        ps = [sys.executable, "-m", "pycontain", "ps", "-a"]
        empty_env = dict(env, PYCONTAIN_ROOT=str(work / "empty-store"))
        times = interleaved({
            f"pycontain ps -a, {records} records": lambda: spawn_and_wait(ps, env),
            "pycontain ps -a, no records": lambda: spawn_and_wait(ps, empty_env),
            "python -c pass (the floor)": lambda: spawn_and_wait([sys.executable, "-c", "pass"], env),
        }, args.ps_runs)

        t = time.perf_counter()
        for c in made + exited:
            c.remove(force=True)
        teardown = time.perf_counter() - t
        made, exited = [], []
    finally:
        for c in made + exited:
            try:
                c.remove(force=True)
            except containers.NoSuchContainer:
                pass

    # what is left, once the monitors have gone
    wait_until(lambda: not any(start_time(p) == s for p, s in procs), 20)
    left = {
        "records": len(containers.shared_store().list()),
        "container directories": len(os.listdir(store / "containers")),
        "pycontain mounts": len([m for m in pycontain_mounts() if m not in mounts_before]),
        "monitor and container processes": sum(1 for p, s in procs if start_time(p) == s),
        "cgroup directories": sum(1 for d in cgroup_dirs if os.path.isdir(d)),
    }

    n = len(starts)
    k = min(10, n)
    print(f"## scale: {n} detached containers with limits ({LIMITS}), network none, one after another")
    print("| what | figure |")
    print("|---|---|")
    print(f"| start of the 10th / the {n}th (containers.run until running) | "
          f"{starts[k - 1] * 1e3:.1f} / {starts[-1] * 1e3:.1f} ms |")
    first, last = statistics.median(starts[:k]), statistics.median(starts[-k:])
    print(f"| median start, first {k} / last {k} | {first * 1e3:.1f} / {last * 1e3:.1f} ms "
          f"(last/first {last / first:.2f}) |")
    print(f"| median start, all {n} | {statistics.median(starts) * 1e3:.1f} ms |")
    print(f"| the caller's CPU time per start, median of the first {k} / last {k} | "
          f"{statistics.median(start_cpu[:k]) * 1e3:.2f} / {statistics.median(start_cpu[-k:]) * 1e3:.2f} ms |")
    rss, anon = [m[0] for m in memory], [m[1] for m in memory]
    print(f"| monitor memory, median of {n} running at once: RSS / anonymous | "
          f"{statistics.median(rss) / 1024:.1f} / {statistics.median(anon) / 1024:.1f} MiB |")
    print(f"| all {n} monitors: RSS / anonymous | {sum(rss) / 1024:.0f} / {sum(anon) / 1024:.0f} MiB |")
    print(f"| rm -f of all {records} containers, one after another | {teardown:.1f} s |")
    for name, (ts, cpu) in times.items():
        print(f"| {name}, median of {len(ts)} (p10-p90); CPU time | {statistics.median(ts) * 1e3:.1f} ms "
              f"({sorted(ts)[len(ts) // 10] * 1e3:.1f}-{sorted(ts)[len(ts) * 9 // 10] * 1e3:.1f}); "
              f"CPU {statistics.median(cpu) * 1e3:.1f} ms |")
    for what, count in left.items():
        print(f"| left after removal: {what} | {count} |")
    shutil.rmtree(work, ignore_errors=True)
    if any(left.values()):
        sys.exit("leaked: " + ", ".join(f"{w} {c}" for w, c in left.items() if c))


if __name__ == "__main__":
    main()
