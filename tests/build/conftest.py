"""Fixtures for the builder tests: a base image in pycontain's store, and
(for the comparisons) a real dockerd 20.10 holding the same image."""
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "image"))

from buildtools import BASE  # noqa: E402
from regtools import layer_of_dir, skopeo, write_oci_layout  # noqa: E402


@pytest.fixture(scope="session")
def base_layout(workdir, busybox):
    """An OCI layout of the busybox rootfs (one layer, Env PATH, Cmd sh)."""
    return write_oci_layout(workdir / "build-base-layout", [("amd64", [layer_of_dir(busybox)], {})])


@pytest.fixture(scope="session")
def base_image(base_layout, store_root):
    from pycontain import image

    loaded = image.load(str(base_layout), root=store_root)
    image.tag(loaded[0] if loaded[0].startswith("sha256:") else loaded[0], BASE, root=store_root)
    return BASE


class Dockerd:
    """dockerd 20.10 in private network and mount namespaces with its own
    data root; stopped by pid. Its docker client gets a private config dir."""

    def __init__(self, base: Path):
        self.dir = base
        self.name = f"pyc-build-{os.getpid()}"
        self.sock = base / "docker.sock"
        args = (f"dockerd --data-root {base}/root --exec-root {base}/exec --pidfile {base}/pid "
                f"-H unix://{self.sock} --iptables=false --ip-forward=false --ip-masq=false --bridge=none "
                f"--exec-opt native.cgroupdriver=cgroupfs --cgroup-parent=/{self.name} "
                f"--containerd-namespace {self.name} --storage-driver overlay2")
        self.log = open(base / "dockerd.log", "wb")
        self.proc = subprocess.Popen(
            ["unshare", "--net", "--mount", "--propagation", "private", "sh", "-c",
             "ip link set lo up && mount -t tmpfs none /sys/fs/cgroup/unified && exec " + args],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.env = dict(os.environ, DOCKER_CONFIG=str(base / "client"), DOCKER_BUILDKIT="0",
                        DOCKER_HOST=f"unix://{self.sock}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.sock.exists() and self.docker("version", check=False).returncode == 0:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        self.stop()
        pytest.fail("dockerd did not start: " + (base / "dockerd.log").read_text()[-2000:])

    def docker(self, *args, check=True, stdin_data=None, cwd=None):
        r = subprocess.run(["docker", *args], env=self.env, capture_output=True, input=stdin_data, cwd=cwd,
                           timeout=300)
        if check and r.returncode:
            raise AssertionError(f"docker {' '.join(args)} failed: {r.stderr.decode()[-2000:]}")
        return r

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        # dockerd leaves empty cgroup directories named after --cgroup-parent
        for ctrl in os.listdir("/sys/fs/cgroup"):
            d = f"/sys/fs/cgroup/{ctrl}/{self.name}"
            if os.path.isdir(d):
                for sub, _dirs, _ in sorted(os.walk(d), key=lambda x: -len(x[0])):
                    try:
                        os.rmdir(sub)
                    except OSError:
                        pass


@pytest.fixture(scope="session")
def dockerd(workdir, base_layout):
    if not shutil.which("dockerd") or not shutil.which("docker") or not shutil.which("skopeo"):
        pytest.fail("the comparison tests need dockerd, docker and skopeo: apt-get install docker.io skopeo")
    d = workdir / "dockerd"
    d.mkdir()
    daemon = Dockerd(d)
    try:
        archive = workdir / "build-base.tar"
        skopeo("copy", f"oci:{base_layout}:multi", f"docker-archive:{archive}:{BASE}")
        daemon.docker("load", "-i", str(archive))
        yield daemon
    finally:
        daemon.stop()
