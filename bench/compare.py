"""pycontain beside the other runtimes, every row of issue 17's table, in one run.

    .venv/bin/python bench/compare.py [--runs 300] [--cli-runs 30] [--only start,cli,detached,monitor]

Every command's argv is bound to its own lambda (a default argument): the
script this replaced closed over one reused variable, so that every runtime's
row ran the last command it set up (util-linux unshare).

Fairness: every runtime is timed the same way, from one worker process. The
script re-executes itself once in a private mount and network namespace (the
worker) and there hides the hybrid cgroup2 tree under a tmpfs, which crun 1.8
needs on this machine; no runtime pays that set-up per run any more (crun used
to go through `unshare ... sh -c` each time). pycontain's library rows are
timed in the worker's own process (what a Python program pays); every command
(crun, runc, bubblewrap, the pycontain CLI, python) is started by the worker
with posix_spawn and waited for. Runtimes are interleaved round by round, in a
new random order each round, so a noisy machine hurts them all alike, and
ratios are taken within this run.

Rows (sections):
- start: start->exit of busybox `true` in a busybox root, in process, beside
  crun and runc `run` of the same root, bubblewrap and util-linux unshare;
  the same command through a warm pool (Pool.run: the container made ahead);
  with memory+cpu+pids limits (pycontain and crun); on pycontain's bridge
  network (made inside the worker's network namespace).
- cli: `pycontain run --rm --network none --rootfs DIR true`, whole process,
  paired with `runc run` of the same bundle; `python -c "import pycontain"`
  beside `python -c pass`.
- detached: `pycontain run -d` until it returns (the container runs),
  `pycontain exec ID true`, `pycontain rm -f ID`, under the C monitor and
  (PYCONTAIN_MONITOR=python) the Python one, beside runc's and crun's
  `run -d`, `exec`, `delete -f`; and the library's `containers.run()`
  (detached) and `remove(force=True)` from one process, for both monitors.
- monitor: resident memory (VmRSS, and RssAnon: what is the monitor's own)
  of a detached container's monitor, C and Python, beside conmon's running
  the same container with crun (Debian's conmon; skipped with a message when absent).

Needs root, a static busybox; crun, runc, bubblewrap and conmon are used when
installed (`apt-get install crun runc bubblewrap conmon`).
"""
import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from conftest import make_busybox_rootfs  # noqa: E402

from pycontain import Container, Pool  # noqa: E402

POOLS = []   # the warm pools start_cases made, closed before the work directory is removed

WORKER_ENV = "PYCONTAIN_BENCH_WORKER"
PYTHON = sys.executable
DEVNULL = os.open(os.devnull, os.O_RDWR)


# ---- the worker ------------------------------------------------------------------


def become_worker():
    """Re-executes this script in a private mount and network namespace,
    once; returns only in the worker."""
    if os.environ.get(WORKER_ENV):
        if os.path.ismount("/sys/fs/cgroup/unified"):
            # crun 1.8 refuses this machine's hybrid layout unless the cgroup2 tree is hidden
            subprocess.run(["mount", "-t", "tmpfs", "none", "/sys/fs/cgroup/unified"], check=True)
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        return
    os.environ[WORKER_ENV] = "1"
    os.execv("/usr/bin/unshare", ["unshare", "--mount", "--net", "--propagation", "private", "--",
                                  PYTHON, *sys.argv])


def spawn_and_wait(argv, stdout=DEVNULL, env=None):
    pid = os.posix_spawn(argv[0], argv, os.environ if env is None else env,
                         file_actions=[(os.POSIX_SPAWN_DUP2, DEVNULL, 0), (os.POSIX_SPAWN_DUP2, stdout, 1)])
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise RuntimeError(f"{argv[0]} exited with status {status}: {' '.join(argv)}")


def spawn_output(argv, env=None) -> str:
    r, w = os.pipe()
    try:
        spawn_and_wait(argv, stdout=w, env=env)
    finally:
        os.close(w)
    with os.fdopen(r, "rb") as f:
        return f.read().decode()


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


# ---- OCI bundles ------------------------------------------------------------------


def oci_bundle(runtime, workdir: Path, rootfs: Path, name: str, args=("/bin/true",), limits=False) -> Path:
    bundle = workdir / f"bundle-{name}"
    bundle.mkdir()
    subprocess.run([runtime, "spec"], cwd=bundle, check=True)
    spec = json.loads((bundle / "config.json").read_text())
    spec["process"]["terminal"] = False
    spec["process"]["args"] = list(args)
    spec["root"] = {"path": str(rootfs), "readonly": True}
    spec["linux"]["cgroupsPath"] = f"/pycontain-bench-{name}-{os.getpid()}"
    if limits:
        spec["linux"]["resources"].update({
            "memory": {"limit": 256 << 20}, "cpu": {"quota": 50000, "period": 100000}, "pids": {"limit": 100}})
    (bundle / "config.json").write_text(json.dumps(spec))
    return bundle


# ---- sections ------------------------------------------------------------------------


def interleave(cases, runs):
    """{name: [seconds]}: one warm-up call each (fails early), then `runs`
    rounds with every case once per round, in a new random order each round:
    what one case leaves behind changes the next one's cost (the first
    cgroup attach after a quiet spell waits for an RCU grace period, which
    a second one soon after does not), so no case always follows the same one."""
    for _, fn in cases:
        fn()
    times = {name: [] for name, _ in cases}
    order = random.Random(17)
    for _ in range(runs):
        for name, fn in order.sample(cases, len(cases)):
            times[name].append(timed(fn))
    return times


def start_cases(workdir: Path, rootfs: Path):
    def pyc(**kw):
        return lambda: Container(rootfs=rootfs, command=["/bin/true"], **kw).run(check=True)

    cases = [("pycontain", pyc()),
             # crun's and runc's default specs carry no seccomp filter
             ("pycontain, no seccomp", pyc(seccomp="unconfined")),
             ("pycontain + limits", pyc(memory="256m", cpus=0.5, pids_limit=100))]
    try:
        pyc(network="bridge")()
        cases.append(("pycontain, bridge", pyc(network="bridge")))
    except Exception as e:   # noqa: BLE001 - a row the machine cannot run is reported, not fatal
        print(f"# skipped pycontain, bridge: {e}", file=sys.stderr)
    # a warm pool (pycontain.Pool): its thread makes the next container after each command
    pool = Pool(rootfs=rootfs, size=2)
    POOLS.append(pool)
    cases.append(("pycontain Pool.run", lambda: pool.run(["/bin/true"], check=True)))
    crun, runc, bwrap = shutil.which("crun"), shutil.which("runc"), shutil.which("bwrap")
    if crun:
        for name, limits in (("crun", False), ("crun + limits", True)):
            bundle = oci_bundle(crun, workdir, rootfs, name.replace(" + ", "-"), limits=limits)
            argv = [crun, "--root", str(workdir / "crun-state"), "run", "--bundle", str(bundle), "bench"]
            cases.append((name, lambda argv=argv: spawn_and_wait(argv)))
    else:
        print("# skipped crun: not installed (apt-get install crun)", file=sys.stderr)
    if runc:
        bundle = oci_bundle(runc, workdir, rootfs, "runc")
        argv = [runc, "--root", str(workdir / "runc-state"), "run", "--bundle", str(bundle), "bench"]
        cases.append(("runc", lambda argv=argv: spawn_and_wait(argv)))
    if bwrap:
        argv = [bwrap, "--unshare-all", "--bind", str(rootfs), "/", "--proc", "/proc", "--dev", "/dev", "/bin/true"]
        cases.append(("bubblewrap", lambda argv=argv: spawn_and_wait(argv)))
    unshare = shutil.which("unshare")
    argv_unshare = [unshare, "--fork", "--pid", "--mount", "--uts", "--ipc", "--net", "--mount-proc",
                    "chroot", str(rootfs), "/bin/true"]
    cases.append(("unshare", lambda: spawn_and_wait(argv_unshare)))
    cases.append(("(spawn /bin/true)", lambda: spawn_and_wait(["/bin/true"])))
    return cases


def pycontain_cli():
    script = Path(PYTHON).parent / "pycontain"
    return [str(script)] if script.exists() else [PYTHON, "-m", "pycontain"]


def cli_cases(workdir: Path, rootfs: Path):
    cli = pycontain_cli()
    run_rm = [*cli, "run", "--rm", "--network", "none", "--rootfs", str(rootfs), "true"]
    cases = [("pycontain run --rm", lambda: spawn_and_wait(run_rm))]
    runc = shutil.which("runc")
    if runc:
        bundle = oci_bundle(runc, workdir, rootfs, "runc-cli")
        argv = [runc, "--root", str(workdir / "runc-state"), "run", "--bundle", str(bundle), "cli"]
        cases.append(("runc run", lambda argv=argv: spawn_and_wait(argv)))
    imp = [PYTHON, "-c", "import pycontain"]
    bare = [PYTHON, "-c", "pass"]
    cases += [("python -c 'import pycontain'", lambda: spawn_and_wait(imp)),
              ("python -c pass", lambda: spawn_and_wait(bare))]
    # verbs that start nothing: what the command line's own start-up costs
    for verb in (["--help"], ["ps", "-a"]):
        cases.append((f"pycontain {' '.join(verb)}", lambda argv=[*cli, *verb]: spawn_and_wait(argv)))
    return cases


def detached_rounds(workdir: Path, rootfs: Path, runs: int):
    """{row: [seconds]} for run -d, exec, inspect (OCI: state), rm -f: pycontain's CLI, runc, crun,
    interleaved round by round."""
    cli = pycontain_cli()
    engines = []

    def pycontain_round(i):
        t = time.perf_counter()
        cid = spawn_output([*cli, "run", "-d", "--network", "none", "--rootfs", str(rootfs),
                            "sleep", "1000"]).strip()
        t_run = time.perf_counter() - t
        t_exec = timed(lambda: spawn_and_wait([*cli, "exec", cid, "true"]))
        t_inspect = timed(lambda: spawn_and_wait([*cli, "inspect", cid]))
        t_rm = timed(lambda: spawn_and_wait([*cli, "rm", "-f", cid]))
        return {"run -d": t_run, "exec true": t_exec, "inspect": t_inspect, "rm -f": t_rm}

    engines.append(("pycontain", pycontain_round))
    python_monitor = dict(os.environ, PYCONTAIN_MONITOR="python")

    def python_monitor_round(i):
        t = time.perf_counter()
        cid = spawn_output([*cli, "run", "-d", "--network", "none", "--rootfs", str(rootfs),
                            "sleep", "1000"], env=python_monitor).strip()
        t_run = time.perf_counter() - t
        t_exec = timed(lambda: spawn_and_wait([*cli, "exec", cid, "true"]))
        t_rm = timed(lambda: spawn_and_wait([*cli, "rm", "-f", cid]))
        return {"run -d": t_run, "exec true": t_exec, "rm -f": t_rm}

    engines.append(("pycontain, Python monitor", python_monitor_round))
    for rt in ("runc", "crun"):
        exe = shutil.which(rt)
        if not exe:
            continue
        bundle = oci_bundle(exe, workdir, rootfs, f"{rt}-detached", args=("/bin/sleep", "1000"))
        state = str(workdir / f"{rt}-state")

        def oci_round(i, exe=exe, bundle=bundle, state=state, rt=rt):
            cid = f"bench-d-{i}"
            t_run = timed(lambda: spawn_and_wait([exe, "--root", state, "run", "-d", "--bundle", str(bundle), cid]))
            t_exec = timed(lambda: spawn_and_wait([exe, "--root", state, "exec", cid, "/bin/true"]))
            t_state = timed(lambda: spawn_and_wait([exe, "--root", state, "state", cid]))
            t_rm = timed(lambda: spawn_and_wait([exe, "--root", state, "delete", "-f", cid]))
            return {"run -d": t_run, "exec true": t_exec, "state (inspect)": t_state, "rm -f": t_rm}

        engines.append((rt, oci_round))
    times = {}
    for i in range(runs + 1):
        for name, fn in engines:
            verbs = fn(i)
            if i == 0:
                continue    # warm-up
            for verb, t in verbs.items():
                times.setdefault(f"{name} {verb}", []).append(t)
    return times


LIBRARY_DETACHED = """
import json, os, sys, time
from pycontain import containers
rootfs, runs = sys.argv[1], int(sys.argv[2])
times = {}
for i in range(runs + 1):
    for who, monitor in (("C monitor", "c"), ("Python monitor", "python")):
        os.environ["PYCONTAIN_MONITOR"] = monitor
        t = time.perf_counter()
        c = containers.run(rootfs=rootfs, command=["sleep", "1000"], network="none")
        t_run = time.perf_counter() - t
        t = time.perf_counter()
        c.remove(force=True)
        t_rm = time.perf_counter() - t
        if i:
            times.setdefault(f"library run(detach=True), {who}", []).append(t_run)
            times.setdefault(f"library remove(force=True), {who}", []).append(t_rm)
print(json.dumps(times))
"""


def library_detached_rounds(rootfs: Path, runs: int):
    """{row: [seconds]}: containers.run(detach=True) until it returns (the
    container runs) and remove(force=True), from one Python process, under
    the C monitor and the Python monitor, interleaved."""
    return json.loads(spawn_output([PYTHON, "-c", LIBRARY_DETACHED, str(rootfs), str(runs)]))


# ---- memory of a monitor -----------------------------------------------------------


def rss_kib(pid: int) -> tuple:
    """(VmRSS, RssAnon) in KiB from /proc/PID/status."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.split()[0] if value.split() else "0"
    return int(fields["VmRSS"]), int(fields["RssAnon"])


def find_process(*words) -> int:
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().decode(errors="replace")
        except OSError:
            continue
        if all(w in cmd for w in words):
            return int(entry)
    raise RuntimeError(f"no process with {words} in its command line")


def monitor_rows(workdir: Path, rootfs: Path, samples: int = 3):
    """{who: [(rss KiB, anon KiB)]}: pycontain's monitor of a detached
    container, and conmon running the same container with crun."""
    out = {}
    cli = pycontain_cli()
    for who, env, words in (("pycontain monitor (C)", None, ("pycontain-monitor",)),
                            ("pycontain monitor (Python)", dict(os.environ, PYCONTAIN_MONITOR="python"),
                             ("pycontain.managed.monitor",))):
        for _ in range(samples):
            cid = spawn_output([*cli, "run", "-d", "--network", "none", "--rootfs", str(rootfs),
                                "sleep", "1000"], env=env).strip()
            try:
                time.sleep(0.5)  # let it settle: the figure of a monitor at rest
                out.setdefault(who, []).append(rss_kib(find_process(*words, cid)))
            finally:
                spawn_and_wait([*cli, "rm", "-f", cid])
    conmon, crun = shutil.which("conmon"), shutil.which("crun")
    if not (conmon and crun):
        print("# skipped conmon: needs conmon and crun (apt-get install conmon crun)", file=sys.stderr)
        return out
    bundle = oci_bundle(crun, workdir, rootfs, "conmon", args=("/bin/sleep", "1000"))
    state = workdir / "conmon-crun-state"
    for i in range(samples):
        cid = f"bench-conmon-{i}"
        d = workdir / f"conmon-{i}"
        d.mkdir()
        pidfile = d / "conmon.pid"
        argv = [conmon, "--api-version", "1", "-c", cid, "-u", cid, "-n", cid, "-r", crun, "-b", str(bundle),
                "-p", str(d / "pid"), "--exit-dir", str(d), "--socket-dir-path", str(d),
                "-l", f"k8s-file:{d / 'log'}", "--runtime-arg", f"--root={state}",
                "--conmon-pidfile", str(pidfile), "--syslog=false"]
        spawn_and_wait(argv)   # conmon daemonizes, and may do so before crun created the container
        try:
            deadline = time.monotonic() + 10
            while not (d / "pid").exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            spawn_and_wait([crun, f"--root={state}", "start", cid])
            time.sleep(0.5)
            out.setdefault("conmon (crun)", []).append(rss_kib(int(pidfile.read_text())))
        finally:
            subprocess.run([crun, f"--root={state}", "delete", "-f", cid], stderr=subprocess.DEVNULL)
            try:
                os.kill(int(pidfile.read_text()), signal.SIGTERM)
            except (OSError, ValueError):
                pass
    return out


# ---- report ------------------------------------------------------------------------


def print_times(title, times, base):
    base_med = statistics.median(times[base])
    print(f"\n## {title} (medians of {len(times[base])} rounds, interleaved)")
    print(f"| {'what':34s} | {'median ms':>9s} | {'p10 ms':>7s} | {'p90 ms':>7s} | {'x ' + base:>22s} |")
    print(f"|{'-' * 36}|{'-' * 11}:|{'-' * 8}:|{'-' * 8}:|{'-' * 23}:|")
    for name, ts in times.items():
        ts = sorted(ts)
        med = statistics.median(ts)
        print(f"| {name:34s} | {med * 1e3:9.2f} | {ts[len(ts) // 10] * 1e3:7.2f} | "
              f"{ts[len(ts) * 9 // 10] * 1e3:7.2f} | {med / base_med:22.2f} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=300, help="rounds of the in-process start section")
    ap.add_argument("--cli-runs", type=int, default=30, help="rounds of the command-line sections")
    ap.add_argument("--only", default="start,cli,detached,monitor")
    args = ap.parse_args()
    become_worker()
    sections = set(args.only.split(","))
    workdir = Path(tempfile.mkdtemp(prefix="pycontain-bench-"))
    os.environ["PYCONTAIN_ROOT"] = str(workdir / "store")
    os.environ["PYCONTAIN_NETWORK"] = "none"
    try:
        rootfs = make_busybox_rootfs(workdir / "rootfs")
        print(f"# {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; "
              f"one worker in a private mount+net namespace spawns every runtime")
        if "start" in sections:
            times = interleave(start_cases(workdir, rootfs), args.runs)
            print_times("start -> exit of busybox true", times, "pycontain")
            if "crun" in times:
                med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
                print(f"limits cost: pycontain +{med['pycontain + limits'] - med['pycontain']:.2f} ms, "
                      f"crun +{med['crun + limits'] - med['crun']:.2f} ms")
                if "pycontain, bridge" in med:
                    print(f"bridge network costs pycontain +{med['pycontain, bridge'] - med['pycontain']:.2f} ms")
        if "cli" in sections:
            print_times("whole processes", interleave(cli_cases(workdir, rootfs), args.cli_runs),
                        "pycontain run --rm")
        if "detached" in sections:
            times = detached_rounds(workdir, rootfs, args.cli_runs)
            print_times("detached containers, whole CLI processes", times, "pycontain run -d")
            print_times("detached containers from the library, one process", library_detached_rounds(rootfs, args.cli_runs),
                        "library run(detach=True), C monitor")
        if "monitor" in sections:
            print("\n## memory of the process that looks after a detached container (KiB, median of samples)")
            print("| who | VmRSS | RssAnon |\n|---|---:|---:|")
            for who, samples in monitor_rows(workdir, rootfs).items():
                print(f"| {who} | {statistics.median(s[0] for s in samples):.0f} | "
                      f"{statistics.median(s[1] for s in samples):.0f} |")
    finally:
        for pool in POOLS:      # before the store under workdir goes (its close writes there)
            pool.close()
        subprocess.run(["umount", "-R", str(workdir)], stderr=subprocess.DEVNULL)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
