"""What one exec into a running container costs in this process, and what
the ways of making the joining process cost next to it. A script; one run
prints medians (a noisy shared machine: compare within one run only).

    unshare --mount --propagation private .venv/bin/python bench/bench_exec.py [ROUNDS]

- exec /bin/true: exec_run(["/bin/true"]) into a running busybox container,
  start to exit, as the library does it (the join path, _launch.spawn_joined)
- exec_start only: the same until the command runs (no wait for its exit)
- the alternatives for the process that joins, each until a child has exited:
  a plain fork of this Python process (copies its page tables), with a
  64 MiB heap on top; vfork+exec of a static program (no copy at all)
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


def timed(fn, rounds):
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def fork_and_reap():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)


def main(rounds):
    from conftest import make_busybox_rootfs

    work = Path(tempfile.mkdtemp(prefix="pycontain-bench-"))
    os.environ["PYCONTAIN_ROOT"] = str(work / "store")
    busybox = str(make_busybox_rootfs(work / "busybox"))
    from pycontain import containers

    try:
        c = containers.run(rootfs=busybox, command=["sleep", "600"])
        c.exec_run(["/bin/true"])  # the first one pays for the one-time set-up

        def start_only():
            child = c.exec_start(["/bin/true"])
            os.waitpid(child.pid, 0)
            if child.pidfd is not None:
                os.close(child.pidfd)

        exec_ = timed(lambda: c.exec_run(["/bin/true"]), rounds)
        start = timed(start_only, rounds)
        fork = timed(fork_and_reap, rounds)
        ballast = bytearray(64 << 20)
        ballast[::4096] = b"x" * len(ballast[::4096])
        fork64 = timed(fork_and_reap, rounds)
        del ballast
        static = "/bin/busybox"
        spawn = timed(lambda: os.waitpid(os.posix_spawn(static, [static, "true"], {}), 0), rounds)
        print(f"rounds: {rounds}")
        print(f"exec_run /bin/true                  median {median_ms(exec_):6.2f} ms")
        print(f"exec_start until the command runs   median {median_ms(start):6.2f} ms")
        print(f"fork+exit of this process           median {median_ms(fork):6.2f} ms")
        print(f"  the same with 64 MiB more heap    median {median_ms(fork64):6.2f} ms")
        print(f"posix_spawn static busybox true     median {median_ms(spawn):6.2f} ms")
    finally:
        for m in containers.list(all=True):
            m.remove(force=True)
        subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
