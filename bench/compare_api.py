"""docker's own clients against `pycontain system service` and a warm dockerd, side by side.

    .venv/bin/python bench/compare_api.py [--runs 20]          (as root; dockerd: apt-get install docker.io)

Both engines get the same busybox image (imported from the same rootfs tar)
and run in one measurement loop, round by round, so a noisy machine slows
both alike. dockerd (Debian's 20.10) runs in a private network and mount
namespace with its own directories, as FIELD-NOTES.md says; pycontain's
service in a private mount namespace with a store of its own. Timed:

  docker run --rm --network none busybox true       the docker CLI, whole process
  docker-py create + start + wait + remove           one Python client, in process

Prints medians (ms) and pycontain / dockerd ratios.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.append(str(Path(__file__).resolve().parent.parent / "tests" / "api"))  # dockerd.py
from conftest import make_busybox_rootfs  # noqa: E402
from dockerd import DOCKER, remove_cgroups, start_dockerd, stop, wait_for_socket  # noqa: E402

import docker as dockerpy  # noqa: E402

CGROUP_PARENT = "pycontain-bench-dockerd"


def start_pycontain(d: Path, tar: Path):
    env = dict(os.environ, PYCONTAIN_ROOT=str(d / "store"), PYCONTAIN_NETWORK="none")
    subprocess.run([sys.executable, "-c", "import sys; from pycontain import image; "
                    "image.import_(sys.argv[1], 'busybox:latest')", str(tar)], env=env, check=True)
    sock = d / "pycontain.sock"
    proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", sys.executable, "-m", "pycontain",
                             "system", "service", "--socket", f"unix://{sock}", "--time", "0"], env=env,
                            stdout=subprocess.DEVNULL, stderr=open(d / "pycontain.log", "wb"))
    wait_for_socket(sock, proc, "pycontain system service")
    return proc, sock


def time_cli(sock):
    t = time.perf_counter()
    r = subprocess.run([DOCKER, "-H", f"unix://{sock}", "run", "--rm", "--network", "none", "busybox", "true"],
                       capture_output=True)
    dt = time.perf_counter() - t
    if r.returncode:
        raise RuntimeError(r.stderr.decode())
    return dt


def time_docker_py(client):
    t = time.perf_counter()
    c = client.containers.create("busybox", ["true"], network_mode="none")
    c.start()
    c.wait()
    c.remove()
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    d = Path(tempfile.mkdtemp(prefix="pycontain-bench-api-"))
    procs = []
    try:
        rootfs = make_busybox_rootfs(d / "busybox")
        tar = d / "busybox.tar"
        with tarfile.open(tar, "w") as t:
            t.add(rootfs, arcname=".")
        engines = {}
        for name, start in (("pycontain", start_pycontain),
                            ("dockerd", lambda d, tar: start_dockerd(d, tar, CGROUP_PARENT))):
            proc, sock = start(d, tar)
            procs.append(proc)
            engines[name] = (sock, dockerpy.DockerClient(base_url=f"unix://{sock}", timeout=60))
        results = {(e, w): [] for e in engines for w in ("cli", "docker-py")}
        for sock, client in engines.values():   # warm both
            time_cli(sock)
            time_docker_py(client)
        for _ in range(args.runs):
            for name, (sock, client) in engines.items():
                results[(name, "cli")].append(time_cli(sock))
                results[(name, "docker-py")].append(time_docker_py(client))
        print(f"medians of {args.runs} rounds, interleaved (ms)")
        print(f"{'what':52} {'pycontain':>10} {'dockerd':>10} {'ratio':>7}")
        for what, label in (("cli", "docker run --rm --network none busybox true"),
                            ("docker-py", "docker-py create + start + wait + remove")):
            p = statistics.median(results[("pycontain", what)]) * 1000
            k = statistics.median(results[("dockerd", what)]) * 1000
            print(f"{label:52} {p:10.1f} {k:10.1f} {p / k:7.2f}")
        for _, client in engines.values():
            client.close()
    finally:
        for proc in procs:
            stop(proc)
        remove_cgroups(CGROUP_PARENT)
        subprocess.run(["umount", "-R", str(d)], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
