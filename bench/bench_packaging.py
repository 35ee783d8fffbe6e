"""Packaging numbers, side by side in one run (this machine is noisy: compare
the ratios, not absolute times from another day).

    .venv/bin/python bench/bench_packaging.py [--builds N] [--starts N]

Prints:
  - wheel and sdist sizes, and `python -m build` time (sdist, then wheel from it)
  - `pip install .` time into a fresh venv (build isolation, compiling the C)
  - start-to-exit of the static programs as shipped (no libc) against the same
    programs linked with static glibc (the previous build, from git history)
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
IGNORE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "_bin", "*.so")
GLIBC_INIT_COMMIT = "623fe4d"  # the last src/init.c and src/hello.c built with static glibc


def timed(cmd, **kw):
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
    return time.perf_counter() - start


def median_ms(samples):
    return statistics.median(samples) * 1000


def bench_build(tmp, n):
    times, wheel = [], None
    for i in range(n):
        src = tmp / f"src{i}"
        shutil.copytree(REPO, src, ignore=IGNORE)
        out = tmp / f"dist{i}"
        times.append(timed([sys.executable, "-m", "build", "--outdir", out, src]))
        wheel, sdist = next(out.glob("*.whl")), next(out.glob("*.tar.gz"))
    print(f"python -m build (sdist + wheel from it), median of {n}: {statistics.median(times):.1f} s")
    print(f"wheel {wheel.name}: {wheel.stat().st_size / 1024:.0f} KiB; sdist: {sdist.stat().st_size / 1024:.0f} KiB")
    return wheel


def bench_pip_install(tmp, n):
    times = []
    for i in range(n):
        venv = tmp / f"venv{i}"
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        src = tmp / f"pipsrc{i}"
        shutil.copytree(REPO, src, ignore=IGNORE)
        times.append(timed([venv / "bin/pip", "install", "--no-cache-dir", src]))
        subprocess.run([venv / "bin/python", "-c", "import pycontain._nsexec"], check=True)
    print(f"pip install . into a fresh venv (gcc + Python headers only), median of {n}: "
          f"{statistics.median(times):.1f} s")


TO_DEVNULL = [(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)]


def start_times(argv, n):
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=TO_DEVNULL)
        os.waitpid(pid, 0)
        samples.append(time.perf_counter() - start)
    return samples


def bench_starts(tmp, n):
    from importlib import resources
    bin_dir = resources.files("pycontain") / "_bin"
    shipped = {"init": str(bin_dir / "pycontain-init"), "hello": str(bin_dir / "hello-world/hello")}
    glibc = {}
    for name in ("init", "hello"):
        src = tmp / f"{name}-glibc.c"
        src.write_text(subprocess.run(["git", "-C", REPO, "show", f"{GLIBC_INIT_COMMIT}:src/{name}.c"],
                                      capture_output=True, text=True, check=True).stdout)
        glibc[name] = str(tmp / f"{name}-glibc")
        subprocess.run(["gcc", "-static", "-Os", "-s", "-o", glibc[name], src], check=True)
    true = shutil.which("true")
    cases = {
        "hello": ([shipped["hello"]], [glibc["hello"]]),
        "init -- true": ([shipped["init"], "--", true], [glibc["init"], "--", true]),
    }
    print(f"start to exit, median of {n} (posix_spawn + waitpid), interleaved:")
    for label, (ours, theirs) in cases.items():
        a, b = [], []
        for _ in range(5):  # interleave so drift hits all alike
            a += start_times(ours, n // 5)
            b += start_times(theirs, n // 5)
        print(f"  {label:14} no libc {median_ms(a):6.3f} ms  static glibc {median_ms(b):6.3f} ms  "
              f"ratio {median_ms(b) / median_ms(a):.2f}x  (sizes {os.path.getsize(ours[0])} vs "
              f"{os.path.getsize(theirs[0])} bytes)")



def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--builds", type=int, default=3)
    ap.add_argument("--starts", type=int, default=500)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="pycontain-bench-") as d:
        tmp = Path(d)
        bench_starts(tmp, args.starts)
        if args.builds > 0:
            bench_build(tmp, args.builds)
            bench_pip_install(tmp, args.builds)


if __name__ == "__main__":
    main()
