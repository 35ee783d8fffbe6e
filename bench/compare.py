"""The same container started by pycontain and by the other runtimes, side by side.

    .venv/bin/python bench/compare.py [--runs 300]

Every runtime starts busybox `true` in a busybox root filesystem with new
mount, pid, uts, ipc and net namespaces, /proc and /dev, interleaved round by
round so that a noisy machine hurts them all alike. pycontain is timed in
process (Container(...).run(), what a Python program pays); the others are
started with posix_spawn and waited for, as a Python program would start them;
the table also shows what spawning a plain /bin/true costs, for reference.
Prints medians and ratios to pycontain. pycontain runs twice: with its
defaults (Docker's seccomp profile included) and without the seccomp filter,
which neither `crun spec` nor `runc spec` puts in their default config.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from conftest import make_busybox_rootfs  # noqa: E402

from pycontain import Container  # noqa: E402


def spawn_and_wait(argv):
    pid = os.posix_spawn(argv[0], argv, os.environ)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise RuntimeError(f"{argv[0]} exited with status {status}: {' '.join(argv)}")


def oci_bundle(runtime, workdir: Path, rootfs: Path) -> Path:
    bundle = workdir / f"bundle-{Path(runtime).name}"
    bundle.mkdir()
    subprocess.run([runtime, "spec"], cwd=bundle, check=True)
    spec = json.loads((bundle / "config.json").read_text())
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["/bin/true"]
    spec["root"] = {"path": str(rootfs), "readonly": True}
    spec["linux"]["cgroupsPath"] = f"/pycontain-bench-{Path(runtime).name}"
    (bundle / "config.json").write_text(json.dumps(spec))
    return bundle


def runtimes(workdir: Path, rootfs: Path):
    yield "pycontain", lambda: Container(rootfs=rootfs, command=["/bin/true"]).run()
    # the "standard set-up" (namespaces, mounts, masked paths, capabilities), without the
    # seccomp filter: crun's and runc's default specs here carry none either
    yield "pycontain, no seccomp", lambda: Container(rootfs=rootfs, command=["/bin/true"], seccomp="unconfined").run()
    crun, runc = shutil.which("crun"), shutil.which("runc")
    if crun:
        bundle = oci_bundle(crun, workdir, rootfs)
        state = workdir / "crun-state"
        # crun 1.8 refuses this machine's hybrid cgroup layout unless it sees no
        # cgroup2 tree: give it a private mount namespace with that hidden.
        argv = ["/usr/bin/unshare", "--mount", "--propagation", "private", "sh", "-c",
                "mount -t tmpfs none /sys/fs/cgroup/unified && exec \"$@\"", "sh",
                crun, "--root", str(state), "run", "--bundle", str(bundle), "bench"]
        yield "crun", lambda: spawn_and_wait(argv)
    if runc:
        bundle = oci_bundle(runc, workdir, rootfs)
        argv = [runc, "--root", str(workdir / "runc-state"), "run", "--bundle", str(bundle), "bench"]
        yield "runc", lambda: spawn_and_wait(argv)
    bwrap = shutil.which("bwrap")
    if bwrap:
        argv = [bwrap, "--unshare-all", "--bind", str(rootfs), "/", "--proc", "/proc", "--dev", "/dev", "/bin/true"]
        yield "bubblewrap", lambda: spawn_and_wait(argv)
    unshare = shutil.which("unshare")
    if unshare:
        argv = [unshare, "--fork", "--pid", "--mount", "--uts", "--ipc", "--net", "--mount-proc",
                "chroot", str(rootfs), "/bin/true"]
        yield "unshare", lambda: spawn_and_wait(argv)
    yield "(spawn /bin/true)", lambda: spawn_and_wait(["/bin/true"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=300)
    args = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="pycontain-bench-"))
    os.environ["PYCONTAIN_ROOT"] = str(workdir / "store")
    try:
        rootfs = make_busybox_rootfs(workdir / "rootfs")
        cases = list(runtimes(workdir, rootfs))
        times = {name: [] for name, _ in cases}
        for _name, fn in cases:  # warm up, and fail early
            fn()
        for _ in range(args.runs):
            for name, fn in cases:
                t = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t)
        base = statistics.median(times["pycontain"])
        print(f"{'runtime':20s} {'median ms':>10s} {'p10 ms':>8s} {'p90 ms':>8s} {'x pycontain':>12s}")
        for name, ts in times.items():
            ts.sort()
            med = statistics.median(ts)
            print(f"{name:20s} {med * 1e3:10.2f} {ts[len(ts) // 10] * 1e3:8.2f} "
                  f"{ts[len(ts) * 9 // 10] * 1e3:8.2f} {med / base:12.2f}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
