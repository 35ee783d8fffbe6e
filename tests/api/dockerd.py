"""A reference dockerd (Debian's docker.io, 20.10) in private namespaces, as
FIELD-NOTES.md says: its own network and mount namespace, directories and
socket, the hybrid cgroup2 tree hidden. Used by the API tests (response
shapes) and bench/compare_api.py."""
import os
import shutil
import subprocess
import time
from pathlib import Path

DOCKER = "/usr/local/bin/docker" if os.path.exists("/usr/local/bin/docker") else "docker"


def available() -> bool:
    return shutil.which("dockerd") is not None


def wait_for_socket(sock: Path, proc, what, timeout=30):
    end = time.monotonic() + timeout
    while True:
        if sock.exists():
            r = subprocess.run([DOCKER, "-H", f"unix://{sock}", "version"], capture_output=True)
            if r.returncode == 0:
                return
        if proc.poll() is not None or time.monotonic() > end:
            log = sock.parent / f"{what}.log"
            raise RuntimeError(f"{what} did not start" + (": " + log.read_text()[-2000:] if log.exists() else ""))
        time.sleep(0.1)


def start_dockerd(d: Path, rootfs_tar: Path, name: str):
    """(process, socket path); busybox:latest imported from the tar."""
    sock = d / "dockerd.sock"
    script = ("ip link set lo up && mount -t tmpfs none /sys/fs/cgroup/unified && exec dockerd "
              f"--data-root {d}/root --exec-root {d}/exec --pidfile {d}/dockerd.pid -H unix://{sock} "
              "--iptables=false --ip-forward=false --ip-masq=false --bridge=none "
              f"--exec-opt native.cgroupdriver=cgroupfs --cgroup-parent=/{name} "
              f"--containerd-namespace {name} --storage-driver overlay2")
    with open(d / "dockerd.log", "wb") as log:
        proc = subprocess.Popen(["unshare", "--net", "--mount", "--propagation", "private", "sh", "-c", script],
                                stdout=subprocess.DEVNULL, stderr=log)
    wait_for_socket(sock, proc, "dockerd")
    subprocess.run([DOCKER, "-H", f"unix://{sock}", "import", str(rootfs_tar), "busybox:latest"], check=True,
                   capture_output=True)
    return proc, sock


def stop(proc):
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def remove_cgroups(name: str):
    """dockerd leaves empty cgroup directories named after --cgroup-parent at the v1 roots."""
    for root in Path("/sys/fs/cgroup").iterdir():
        leftover = root / name
        if leftover.is_dir():
            for sub in sorted(leftover.rglob("*"), key=lambda p: -len(str(p))):
                if sub.is_dir():
                    sub.rmdir()
            leftover.rmdir()
