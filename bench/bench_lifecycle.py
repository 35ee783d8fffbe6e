"""Managed containers: what the lifecycle verbs cost. A script; one run
prints medians (a noisy shared machine: compare within one run only).

    .venv/bin/python bench/bench_lifecycle.py [ROUNDS]

- run -d: containers.run() until the record says running (a monitor process
  started, the container launched by it), and the same through the CLI
- run --rm true through the CLI: without -t (the CLI is the monitor) and
  with -t (a monitor of its own, the CLI attached to it as a client)
- exec: exec_run(["/bin/true"]) into a running container (setns + fork in C),
  next to a fresh Container(...).run() of the same command for scale
- stop: stop() of a container whose init acts on SIGTERM, until the exit is
  recorded by the monitor
- monitor memory: resident (RSS) and proportional (PSS) size of idle monitors
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def median_ms(samples):
    return statistics.median(samples) * 1000


def timed(fn, rounds, setup=None):
    out = []
    for _ in range(rounds):
        if setup:
            setup()
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def kb(path, key):
    with open(path) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def wait_init_forked(c):
    pid = c.reload().record.pid
    for _ in range(1000):
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            if f.read().strip():
                return
        time.sleep(0.001)


def main(rounds):
    from conftest import make_busybox_rootfs

    work = Path(tempfile.mkdtemp(prefix="pycontain-bench-"))
    os.environ["PYCONTAIN_ROOT"] = str(work / "store")
    busybox = str(make_busybox_rootfs(work / "busybox"))
    from pycontain import Container, containers

    made = []
    try:
        run_d = timed(lambda: made.append(containers.run(rootfs=busybox, command=["sleep", "600"])), rounds)
        cli = [sys.executable, "-m", "pycontain", "run", "-d", "--network", "none", "--rootfs", busybox, "sleep", "600"]
        run_d_cli = timed(lambda: subprocess.run(cli, check=True, stdout=subprocess.DEVNULL), rounds)
        rm = [sys.executable, "-m", "pycontain", "run", "--rm", "--network", "none", "--rootfs", busybox, "true"]
        run_rm = timed(lambda: subprocess.run(rm, check=True, stdout=subprocess.DEVNULL), rounds)
        run_rm_t = timed(lambda: subprocess.run(rm[:4] + ["-t"] + rm[4:], check=True, stdout=subprocess.DEVNULL),
                         rounds)
        c = made[0]
        exec_ = timed(lambda: c.exec_run(["/bin/true"]), rounds * 5)
        fresh = timed(lambda: Container(rootfs=busybox, command=["/bin/true"]).run(), rounds * 5)
        s = containers.run(rootfs=busybox, command=["sleep", "600"], init=True)

        def restart():
            if s.reload().status != "running":
                s.start()
            wait_init_forked(s)

        stop = timed(lambda: s.stop(timeout=10), rounds, setup=restart)
        assert s.record.exit_code == 143
        monitors = [m.record.monitor_pid for m in containers.list()]
        rss = [kb(f"/proc/{p}/status", "VmRSS") for p in monitors]
        pss = [kb(f"/proc/{p}/smaps_rollup", "Pss") for p in monitors]
        print(f"rounds: {rounds}")
        print(f"run -d to running (API)        median {median_ms(run_d):7.1f} ms")
        print(f"run -d to running (CLI)        median {median_ms(run_d_cli):7.1f} ms")
        print(f"run --rm true (CLI)            median {median_ms(run_rm):7.1f} ms")
        print(f"run --rm -t true (CLI)         median {median_ms(run_rm_t):7.1f} ms")
        print(f"exec /bin/true                 median {median_ms(exec_):7.2f} ms")
        print(f"  vs Container.run /bin/true   median {median_ms(fresh):7.2f} ms "
              f"(exec/run ratio {statistics.median(exec_) / statistics.median(fresh):.2f})")
        print(f"stop (SIGTERM handled)         median {median_ms(stop):7.1f} ms")
        print(f"monitor memory over {len(monitors)} monitors: RSS median {statistics.median(rss) / 1024:.1f} MiB, "
              f"PSS median {statistics.median(pss) / 1024:.1f} MiB")
    finally:
        for m in containers.list(all=True):
            m.remove(force=True)
        import shutil
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
