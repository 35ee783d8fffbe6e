"""What the image side adds to a container start: resolve_for_run() of a
local image (store open, lookup, config, layer dirs), median of many calls.

    python bench/bench_resolve.py [--calls 500]
"""
import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pycontain import image  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=500)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pycontain-bench-resolve-"))
    try:
        rootfs = tmp / "rootfs" / "bin"
        rootfs.mkdir(parents=True)
        shutil.copy(shutil.which("busybox") or "/bin/busybox", rootfs / "busybox")
        subprocess.run(["tar", "-czf", str(tmp / "bb.tgz"), "-C", str(tmp / "rootfs"), "."], check=True)
        root = tmp / "store"
        image.import_(tmp / "bb.tgz", "bench/bb:1", root=root)
        times = []
        for _ in range(args.calls):
            t = time.perf_counter()
            image.resolve_for_run("bench/bb:1", root=root, pull="never")
            times.append(time.perf_counter() - t)
        print(f"resolve_for_run (local image, {args.calls} calls): median {statistics.median(times) * 1e6:.0f} us,"
              f" p90 {sorted(times)[int(len(times) * 0.9)] * 1e6:.0f} us")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
