"""What seccomp costs: compiling the default profile, loading it into the
kernel, a filtered syscall, and a whole container start, each with
libseccomp's binary tree (what containers get) and its linear list.

    .venv/bin/python bench/bench_seccomp.py [--rounds N]

prints medians and ratios measured side by side in one run (the machines are
shared and noisy: compare within a run, not across days); the same starts as
pytest-benchmark tests:

    .venv/bin/python -m pytest bench/bench_seccomp.py --benchmark-columns=median,min,max,rounds

Needs root, a static busybox and libseccomp.so.2.
"""
import argparse
import ctypes
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from pycontain import Container
from pycontain.security import capabilities, seccomp

TREE, LINEAR = seccomp.OPTIMIZE_TREE, seccomp.OPTIMIZE_LINEAR
SYS_PERSONALITY = {"x86_64": 135, "aarch64": 92}[seccomp.native_arch()]


def median_us(samples_ns):
    return statistics.median(samples_ns) / 1000


def compile_once(optimize):
    eff = seccomp.effective_rules(seccomp.default_profile(), capabilities.DEFAULT)
    t = time.perf_counter_ns()
    seccomp.compile_rules(eff, optimize)
    return time.perf_counter_ns() - t


def in_child(bpf, calls):
    """Forks; the child loads bpf (timed) then makes `calls` filtered syscalls
    (timed). Returns (load ns, ns per syscall)."""
    libc = ctypes.CDLL(None, use_errno=True)
    syscall = libc.syscall
    nr, arg = ctypes.c_long(SYS_PERSONALITY), ctypes.c_ulong(0xFFFFFFFF)  # query: an argument-checked rule
    sys_seccomp = ctypes.c_long(seccomp._SYS_SECCOMP[seccomp.native_arch()])
    if bpf is not None:
        buf = ctypes.create_string_buffer(bpf, len(bpf))
        prog = seccomp._SockFprog(len(bpf) // 8, ctypes.cast(buf, ctypes.c_void_p))
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            load = 0
            if bpf is not None:
                libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
                os.getpid()  # fault in the call path before timing
                t = time.perf_counter_ns()
                rc = syscall(sys_seccomp, ctypes.c_ulong(1), ctypes.c_ulong(0), ctypes.byref(prog))
                load = time.perf_counter_ns() - t
                if rc != 0:
                    raise OSError(ctypes.get_errno(), "seccomp")
            t = time.perf_counter_ns()
            for _ in range(calls):
                syscall(nr, arg)
            per = (time.perf_counter_ns() - t) / calls
            os.write(w, f"{load} {per}".encode())
        finally:
            os._exit(0)
    os.close(w)
    out = os.read(r, 100).decode().split()
    os.close(r)
    os.waitpid(pid, 0)
    return int(out[0]), float(out[1])


def busybox_rootfs(dest: Path) -> Path:
    bb = shutil.which("busybox") or "/bin/busybox"
    (dest / "bin").mkdir(parents=True)
    shutil.copy2(bb, dest / "bin" / "busybox")
    for a in ("sh", "true"):
        (dest / "bin" / a).symlink_to("busybox")
    (dest / "etc").mkdir()
    (dest / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    return dest


def start_ns(rootfs, **kwargs):
    t = time.perf_counter_ns()
    r = Container(rootfs=str(rootfs), command=["/bin/true"], **kwargs).run()
    elapsed = time.perf_counter_ns() - t
    assert r.returncode == 0
    return elapsed


def main(root):
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=200)
    args = ap.parse_args()
    n = args.rounds
    print(f"libseccomp {'.'.join(map(str, seccomp.libseccomp_version()))}, kernel {os.uname().release}, "
          f"{n} rounds, medians")

    bpf = {o: seccomp.compile_rules(seccomp.effective_rules(seccomp.default_profile(), capabilities.DEFAULT), o)
           for o in (TREE, LINEAR)}
    print(f"filter size: tree {len(bpf[TREE]) // 8} instructions, linear {len(bpf[LINEAR]) // 8}")

    comp = {o: [] for o in (TREE, LINEAR)}
    for _ in range(max(10, n // 10)):
        for o in (TREE, LINEAR):
            comp[o].append(compile_once(o))
    print(f"compile (once per profile+caps, then cached): tree {median_us(comp[TREE]):.0f} us, "
          f"linear {median_us(comp[LINEAR]):.0f} us")

    # For the record: the same tree without the 32-bit sub-architecture(s),
    # which docker keeps (i386 binaries in amd64 containers) and pycontain too.
    eff = seccomp.effective_rules(seccomp.default_profile(), capabilities.DEFAULT)
    eff["arches"] = eff["arches"][:1]
    bpf["native"] = seccomp.compile_rules(eff, TREE)
    kinds = ("none", TREE, LINEAR, "native")
    load = {k: [] for k in kinds}
    per = {k: [] for k in kinds}
    for _ in range(n):  # interleaved, so noise hits all alike
        for k in kinds:
            lo, pe = in_child(None if k == "none" else bpf[k], 2000)
            load[k].append(lo)
            per[k].append(pe)
    lt, ll, ln = median_us(load[TREE]), median_us(load[LINEAR]), median_us(load["native"])
    print(f"load into the kernel (seccomp(2)): tree {lt:.1f} us, linear {ll:.1f} us, linear/tree {ll / lt:.2f}x; "
          f"tree for {eff['arch']} alone ({len(bpf['native']) // 8} instructions) {ln:.1f} us")
    pn, pt, pl = (statistics.median(per[k]) for k in ("none", TREE, LINEAR))
    print(f"personality(query) via ctypes, per call: no filter {pn:.0f} ns, tree {pt:.0f} ns (+{pt - pn:.0f}), "
          f"linear {pl:.0f} ns (+{pl - pn:.0f})")

    rootfs = busybox_rootfs(Path(root) / "rootfs")
    starts = {k: [] for k in ("unconfined", TREE, LINEAR)}
    for k in starts:  # warm: compile and cache each variant once
        seccomp.DEFAULT_OPTIMIZE = TREE if k == "unconfined" else k
        start_ns(rootfs, seccomp="unconfined" if k == "unconfined" else "default")
    for _ in range(n):
        for k in starts:
            seccomp.DEFAULT_OPTIMIZE = TREE if k == "unconfined" else k
            starts[k].append(start_ns(rootfs, seccomp="unconfined" if k == "unconfined" else "default"))
    seccomp.DEFAULT_OPTIMIZE = TREE
    su, st, sl = (median_us(starts[k]) / 1000 for k in ("unconfined", TREE, LINEAR))
    print(f"container start to exit (`true`, cached filter): unconfined {su:.2f} ms, "
          f"default tree {st:.2f} ms (+{(st - su) * 1000:.0f} us), default linear {sl:.2f} ms (+{(sl - su) * 1000:.0f} us)")

    cold = []
    for _ in range(max(5, n // 20)):
        seccomp.clear_memory_cache()
        shutil.rmtree(Path(os.environ["PYCONTAIN_ROOT"]) / "cache", ignore_errors=True)
        cold.append(start_ns(rootfs))
    disk = []
    for _ in range(max(5, n // 20)):
        seccomp.clear_memory_cache()
        disk.append(start_ns(rootfs))
    print(f"first start of a process: nothing cached {median_us(cold) / 1000:.2f} ms, "
          f"filter from the disk cache {median_us(disk) / 1000:.2f} ms")


# ---- the same starts for pytest-benchmark -------------------------------------------


@pytest.fixture(params=["unconfined", "tree", "linear"])
def seccomp_mode(request):
    seccomp.DEFAULT_OPTIMIZE = LINEAR if request.param == "linear" else TREE
    yield "unconfined" if request.param == "unconfined" else "default"
    seccomp.DEFAULT_OPTIMIZE = TREE


def test_start_seccomp(benchmark, busybox, seccomp_mode):
    def run():
        assert Container(rootfs=busybox, command=["/bin/true"], seccomp=seccomp_mode).run().returncode == 0

    benchmark.pedantic(run, rounds=200, warmup_rounds=10)


# The kernel's load cost alone needs a forked process timing one syscall (in_child):
# the script above measures it; a pytest-benchmark round would time the fork.


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("bench_seccomp.py needs root (it starts containers)")
    root = tempfile.mkdtemp(prefix="pycontain-bench-seccomp-")
    os.environ["PYCONTAIN_ROOT"] = str(Path(root) / "store")
    try:
        main(root)
    finally:
        subprocess.run(["rm", "-rf", root])
