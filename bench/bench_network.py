"""What bridge networking adds to a container start.

    sudo .venv/bin/python bench/bench_network.py [-n 200]

Runs in a throwaway network namespace of its own (the machine's network is
never touched) and compares, interleaved, with medians from this one run:

  none       own network namespace, loopback only (the library's default)
  bridge     + veth pair on the default bridge, address lease, route
  bridge -p  + one published port (nftables map entries, port held)

for start() (until the command has been exec'd) and for a whole run()
(start, `true`, exit, teardown). It also times the pieces of the bridge path.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pycontain import Container, _launch  # noqa: E402
from pycontain.network import _netlink  # noqa: E402


def busybox_rootfs(dest: Path) -> str:
    bb = shutil.which("busybox") or "/bin/busybox"
    (dest / "bin").mkdir(parents=True)
    shutil.copy2(bb, dest / "bin" / "busybox")
    for a in subprocess.run([bb, "--list"], capture_output=True, text=True).stdout.split():
        if a != "busybox":
            (dest / "bin" / a).symlink_to("busybox")
    (dest / "etc").mkdir()
    return str(dest)


def ms(samples):
    return statistics.median(samples) * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=200)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pycontain-bench-net-"))
    os.environ["PYCONTAIN_ROOT"] = str(tmp / "store")
    rootfs = busybox_rootfs(tmp / "rootfs")
    netns = _launch.new_namespace_fd(_launch.CLONE_NEWNET)
    try:
        with _netlink.inside_netns(netns):
            with _netlink.Rtnl() as rt:   # a new namespace's loopback starts down
                rt.transact([((_netlink.link_msg(index=_netlink.if_index("lo"), flags=_netlink.IFF_UP,
                                                 change=_netlink.IFF_UP), _netlink.RTM_NEWLINK, 0), "lo up")], "lo")
            kinds = {"none": {"network": "none"}, "bridge": {"network": "bridge"},
                     "bridge -p": {"network": "bridge", "ports": ["127.0.0.1:9000:80"]}}
            starts = {k: [] for k in kinds}
            runs = {k: [] for k in kinds}
            for _kind, kw in kinds.items():   # warm up: imports, the bridge, the nftables table
                Container(rootfs=rootfs, command=["true"], **kw).run()
            for _ in range(args.n):
                for k, kw in kinds.items():
                    c = Container(rootfs=rootfs, command=["true"], **kw)
                    t0 = time.perf_counter()
                    c.start()
                    t1 = time.perf_counter()
                    c.wait()
                    c.remove()
                    t2 = time.perf_counter()
                    starts[k].append(t1 - t0)
                    runs[k].append(t2 - t0)
            base_s, base_r = ms(starts["none"]), ms(runs["none"])
            print(f"medians of {args.n} interleaved runs each (ms)")
            print(f"{'mode':<12}{'start()':>10}{'added':>9}{'run()':>10}{'added':>9}")
            for k in kinds:
                s, r = ms(starts[k]), ms(runs[k])
                print(f"{k:<12}{s:>10.2f}{s - base_s:>+9.2f}{r:>10.2f}{r - base_r:>+9.2f}")
            pieces(rootfs, args.n)
    finally:
        os.close(netns)
        shutil.rmtree(tmp, ignore_errors=True)


def pieces(rootfs, n):
    """The bridge path's own steps, wall and CPU time of this thread (CPU time
    includes the kernel's work in our syscalls and is far less disturbed by a
    busy machine). A new network namespace is made in both modes: by clone()
    for none, here in the parent for bridge; its cost is shown apart."""
    from pycontain.network.attach import NetworkAttachment

    # Each release lets the kernel tear the last namespace down in the
    # background, holding the rtnl lock the next veth creation needs: a short
    # pause gives the numbers of one start on a quiet machine.
    rows = {"new network namespace (both modes)": [], "prepare (bridge, all steps)": [],
            "prepare - namespace = added by bridge": [], "release (lease, ports; veth goes with netns)": []}
    for _ in range(n):
        w0, c0 = time.perf_counter(), time.thread_time()
        os.close(_launch.new_namespace_fd(_launch.CLONE_NEWNET))
        w1, c1 = time.perf_counter(), time.thread_time()
        cid = os.urandom(32).hex()
        att = NetworkAttachment.prepare("bridge", container_id=cid, hostname=cid[:12])
        w2, c2 = time.perf_counter(), time.thread_time()
        att.release()
        w3, c3 = time.perf_counter(), time.thread_time()
        rows["new network namespace (both modes)"].append((w1 - w0, c1 - c0))
        rows["prepare (bridge, all steps)"].append((w2 - w1, c2 - c1))
        rows["prepare - namespace = added by bridge"].append(((w2 - w1) - (w1 - w0), (c2 - c1) - (c1 - c0)))
        rows["release (lease, ports; veth goes with netns)"].append((w3 - w2, c3 - c2))
        time.sleep(0.03)
    print(f"\n{'bridge path, medians (ms)':<48}{'wall':>8}{'cpu':>8}")
    for k, v in rows.items():
        print(f"{k:<48}{ms([w for w, _ in v]):>8.2f}{ms([c for _, c in v]):>8.2f}")


if __name__ == "__main__":
    main()
