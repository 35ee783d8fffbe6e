"""Storage drivers: what a start costs with fuse-overlayfs next to the
kernel's overlayfs. A script; one run prints medians (a noisy shared machine:
compare within one run only). Run as root: the rootless rows run as nobody
(tests/nobody.py), the way a user's program would.

    .venv/bin/python bench/bench_storage.py [ROUNDS]

Each row starts busybox `true` (then `ls -lR` of the image's directories,
which reads every entry and symlink through the driver) with
Container(...).run(), the two drivers interleaved round by round.
"""
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from conftest import make_busybox_rootfs  # noqa: E402
from nobody import NobodysCopy, as_nobody  # noqa: E402

DRIVERS = ("overlay", "fuse-overlayfs")
COMMANDS = {"true": ["/bin/true"], "ls -lR": ["ls", "-lR", "/bin", "/etc", "/home", "/root", "/tmp"]}


def measure(rootfs, store, rounds):
    from pycontain import Container
    from pycontain.container import DEVNULL

    times = {(cmd, d): [] for cmd in COMMANDS for d in DRIVERS}
    for cmd, argv in COMMANDS.items():
        for d in DRIVERS:  # warm up: imports, caches, the seccomp filter
            Container(rootfs=str(rootfs), command=argv, root=str(store), storage_driver=d).run(stdout=DEVNULL)
        for _ in range(rounds):
            for d in DRIVERS:
                t = time.perf_counter()
                r = Container(rootfs=str(rootfs), command=argv, root=str(store), storage_driver=d).run(stdout=DEVNULL)
                times[(cmd, d)].append(time.perf_counter() - t)
                if r.returncode != 0:
                    raise RuntimeError(f"{d}: {argv} exited with {r.returncode}")
    return {f"{cmd}|{d}": statistics.median(ts) * 1000 for (cmd, d), ts in times.items()}


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    work = Path(tempfile.mkdtemp(prefix="pycontain-bench-storage-"))
    try:
        busybox = make_busybox_rootfs(work / "busybox")
        store = work / "store"
        store.mkdir()
        rows = {"root": measure(busybox, store, rounds)}
        copy = NobodysCopy(busybox, work / "rootless")
        out = as_nobody(lambda: measure(copy.rootfs, copy.store, rounds))
        if "ok" not in out:
            raise RuntimeError(out["error"])
        rows["rootless"] = out["ok"]
        print(f"{'who':9s} {'command':10s} {'overlay ms':>11s} {'fuse-overlayfs ms':>18s} {'ratio':>6s}")
        for who, meds in rows.items():
            for cmd in COMMANDS:
                o, f = meds[f"{cmd}|overlay"], meds[f"{cmd}|fuse-overlayfs"]
                print(f"{who:9s} {cmd:10s} {o:11.2f} {f:18.2f} {f / o:6.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("run as root (the rootless rows run as nobody)")
    main()
