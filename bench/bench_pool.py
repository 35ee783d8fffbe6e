"""The warm pool: a command in a container made ahead, start to exit.

    .venv/bin/python bench/bench_pool.py [--rounds 200]

prints medians measured side by side in one run, interleaved: pool.run of
busybox `true` with the pool full (its thread has made the next container
before each round: the latency a caller sees when commands come no faster
than the pool refills), the same command by Container.run, a static program
without libc in the pool (what the exec itself costs here: a glibc or busybox
start pays ~0.5 ms of CPUID traps on these VMs, FIELD-NOTES), and posix_spawn
of the host's /bin/true. Then back to back, commands as fast as they come:
the pool's thread and the caller share the machine, and each command costs
about what a container start costs.

    .venv/bin/python -m pytest bench/bench_pool.py --benchmark-columns=median,min,max,rounds
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

from pycontain import PIPE, Container, Pool

STATIC_HELLO = Path(str(resources.files("pycontain") / "_bin" / "hello-world" / "hello"))


class PoolWaitingAtCreated(Pool):
    """The pool as it was first built: containers waiting at "created", so
    that the user, capabilities and seccomp filter came after the release
    (the before/after of Container.create(before_exec=True))."""

    def _make(self):
        c = Container(self._image, ["true"], rootfs=self._rootfs, **self._options)
        c.create(stdin=PIPE, stdout=PIPE, stderr=PIPE)
        return c


def wait_full(pool, deadline=5.0):
    end = time.monotonic() + deadline
    while pool.ready < pool.size and time.monotonic() < end:
        time.sleep(0.001)


def with_static_hello(rootfs: Path) -> Path:
    shutil.copy2(STATIC_HELLO, rootfs / "hello")
    return rootfs


def test_pool_run_true(benchmark, busybox):
    with Pool(rootfs=busybox, size=2) as pool:
        def run():
            assert pool.run(["/bin/true"]).returncode == 0
        benchmark.pedantic(run, setup=lambda: wait_full(pool), rounds=200, warmup_rounds=10)


def test_container_run_true(benchmark, busybox):
    def run():
        assert Container(rootfs=busybox, command=["/bin/true"]).run().returncode == 0
    benchmark.pedantic(run, rounds=200, warmup_rounds=10)


def spawn_true():
    pid = os.posix_spawn("/bin/true", ["/bin/true"], os.environ)
    os.waitpid(pid, 0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=200)
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from conftest import make_busybox_rootfs

    workdir = Path(tempfile.mkdtemp(prefix="pycontain-bench-"))
    os.environ["PYCONTAIN_ROOT"] = str(workdir / "store")
    try:
        rootfs = with_static_hello(make_busybox_rootfs(workdir / "rootfs"))
        limits = dict(memory="256m", cpus=0.5, pids_limit=100)
        with Pool(rootfs=rootfs, size=2) as pool, \
                Pool(rootfs=rootfs, size=2, seccomp="unconfined") as unconfined, \
                Pool(rootfs=rootfs, size=2, **limits) as limited, \
                PoolWaitingAtCreated(rootfs=rootfs, size=2) as at_created:
            pools = (pool, unconfined, limited, at_created)

            def pooled(argv, p=pool):
                def run():
                    p.run(argv, capture_output=True, check=True)
                return run
            cases = [("pool.run(['/bin/true'])", pooled(["/bin/true"])),
                     ("Container.run, /bin/true", lambda: Container(rootfs=rootfs, command=["/bin/true"]).run()),
                     ("pool.run, static no-libc program", pooled(["/hello"])),
                     ("pool.run, static, no seccomp", pooled(["/hello"], unconfined)),
                     ("pool.run, static, waiting at created", pooled(["/hello"], at_created)),
                     ("pool.run, /bin/true, waiting at created", pooled(["/bin/true"], at_created)),
                     ("pool.run, /bin/true, limits", pooled(["/bin/true"], limited)),
                     ("Container.run, /bin/true, limits",
                      lambda: Container(rootfs=rootfs, command=["/bin/true"], **limits).run()),
                     ("posix_spawn of the host's /bin/true", spawn_true)]
            times = {name: [] for name, _ in cases}
            for i in range(args.rounds + 5):
                for name, fn in cases:
                    for p in pools:
                        wait_full(p)
                    t = time.perf_counter()
                    fn()
                    if i >= 5:
                        times[name].append(time.perf_counter() - t)
            print(f"# start -> exit, medians of {args.rounds} rounds, interleaved; the pool full before each")
            for name, ts in times.items():
                print(f"{name:40s} {statistics.median(ts) * 1e3:7.3f} ms")
            n = args.rounds
            t = time.perf_counter()
            for _ in range(n):
                pool.run(["/bin/true"])
            pooled_rate = (time.perf_counter() - t) / n
            t = time.perf_counter()
            for _ in range(n):
                Container(rootfs=rootfs, command=["/bin/true"]).run()
            plain_rate = (time.perf_counter() - t) / n
            print(f"back to back, {n} commands: pool {pooled_rate * 1e3:.3f} ms each, "
                  f"Container.run {plain_rate * 1e3:.3f} ms each")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
