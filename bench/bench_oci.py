"""pycontain-runc beside runc, side by side in one run: each OCI operation's
wall time (exec: `exec ID true` to its exit) on the same busybox bundle, and a whole `ctr run --rm` through
containerd 1.6's runc shim.

    unshare --mount --propagation private .venv/bin/python bench/bench_oci.py [ROUNDS]

Rounds interleave the runtimes so a noisy machine slows both alike; medians
in ms and pycontain-runc's ratio to runc. create/start/state/kill/delete are
timed as separate commands (each a process start), as a shim calls them.
"""
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "oci"))

from ocitools import IMAGE, RUNTIME, Containerd, busybox_archive  # noqa: E402
from pycontain.oci.ops import default_spec  # noqa: E402
from tests.conftest import make_busybox_rootfs  # noqa: E402

RUNTIMES = {"runc": shutil.which("runc") or "/usr/sbin/runc", "pycontain-runc": RUNTIME}
OPS = ("create", "start", "state", "exec", "kill", "delete")


def timed(cmd) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - t) * 1000


def main(rounds: int):
    work = Path(tempfile.mkdtemp(prefix="pycontain-bench-oci-"))
    try:
        bundle = work / "bundle"
        make_busybox_rootfs(bundle / "rootfs")
        spec = default_spec()
        spec["process"].update(terminal=False, args=["sleep", "60"])
        (bundle / "config.json").write_text(json.dumps(spec))
        times = {(rt, op): [] for rt in RUNTIMES for op in OPS + ("ctr run --rm",)}
        for i in range(rounds):
            for name, rt in RUNTIMES.items():
                base = [rt, "--root", str(work / f"state-{name}")]
                cid = f"b{i}"
                times[(name, "create")].append(timed(base + ["create", "--bundle", str(bundle), cid]))
                times[(name, "start")].append(timed(base + ["start", cid]))
                times[(name, "state")].append(timed(base + ["state", cid]))
                times[(name, "exec")].append(timed(base + ["exec", cid, "true"]))   # foreground, to its exit
                times[(name, "kill")].append(timed(base + ["kill", cid, "KILL"]))
                time.sleep(0.05)   # the kill lands (the caller, init here, reaps it)
                times[(name, "delete")].append(timed(base + ["delete", "--force", cid]))
        c = Containerd(work / "containerd")
        try:
            c.ctr("images", "import", str(busybox_archive(bundle / "rootfs", work)))
            for i in range(rounds):
                for name, rt in RUNTIMES.items():
                    times[(name, "ctr run --rm")].append(timed(["ctr", "-a", c.sock, "run", "--rm", *c.run_args(rt),
                                                                IMAGE, f"r{i}", "true"]))
        finally:
            c.stop()
        print(f"{'operation':<14} {'runc ms':>9} {'pycontain-runc ms':>18} {'ratio':>6}   (medians of {rounds})")
        for op in OPS + ("ctr run --rm",):
            a = statistics.median(times[("runc", op)])
            b = statistics.median(times[("pycontain-runc", op)])
            print(f"{op:<14} {a:>9.1f} {b:>18.1f} {b / a:>6.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
