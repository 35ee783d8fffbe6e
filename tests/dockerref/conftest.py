"""A real dockerd 20.10 (Debian's docker.io) beside pycontain, for tests that
compare the two CLIs.

dockerd runs in a network and mount namespace of its own (unshare), with the
hybrid cgroup2 tree hidden under a tmpfs there (it refuses the hybrid layout
otherwise), its data root, exec root, socket and pid file in the session's
temporary directory, no bridge, no iptables, no ip_forward, and containers in
cgroups under --cgroup-parent=/NAME (cgroupfs driver), which the fixture
removes at the end. The busybox image it runs is the suite's own busybox
rootfs, made into an OCI layout and loaded with `docker load` from the archive
skopeo makes of it. It is stopped by its pid.

Without docker.io installed the comparing tests skip (CI installs it).
"""
import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pycontain import containers

DOCKERD = "/usr/sbin/dockerd"
DOCKER_CLIENT = "/usr/bin/docker"   # docker.io's own 20.10 client, not a newer one on PATH
CGROUP_V1_ROOT = Path("/sys/fs/cgroup")


def write_busybox_layout(rootfs: Path, dest: Path, tag: str = "latest") -> Path:
    """A single-image OCI layout of the busybox rootfs, tagged TAG."""
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data):
        d = hashlib.sha256(data).hexdigest()
        (blobs / d).write_bytes(data)
        return {"digest": f"sha256:{d}", "size": len(data)}

    raw = subprocess.run(["tar", "--numeric-owner", "--sort=name", "--mtime=@1700000000", "-c", "-C",
                          str(rootfs), "."], check=True, capture_output=True).stdout
    layer = gzip.compress(raw, mtime=0)
    cfg = {"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
           "config": {"Cmd": ["sh"], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]},
           "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]},
           "history": [{"created_by": "busybox rootfs"}]}
    man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **put(json.dumps(cfg).encode())},
           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **put(layer)}]}
    mdesc = {"mediaType": "application/vnd.oci.image.manifest.v1+json", **put(json.dumps(man).encode()),
             "annotations": {"org.opencontainers.image.ref.name": tag}}
    (dest / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (dest / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [mdesc]}))
    return dest


class Dockerd:
    """One dockerd in its own namespaces; `docker(...)` runs docker.io's client against it."""

    def __init__(self, base: Path, name: str):
        self.base, self.name = base, name
        self.sock = base / "docker.sock"
        self.cgroup_parent = f"/{name}"
        base.mkdir(parents=True)
        script = ("mount -t tmpfs none /sys/fs/cgroup/unified 2>/dev/null; ip link set lo up; exec \"$@\"")
        cmd = ["unshare", "--net", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
               DOCKERD, "--data-root", str(base / "root"), "--exec-root", str(base / "exec"),
               "--pidfile", str(base / "pid"), "-H", f"unix://{self.sock}",
               "--bridge=none", "--iptables=false", "--ip-forward=false", "--ip-masq=false",
               "--exec-opt", "native.cgroupdriver=cgroupfs", f"--cgroup-parent={self.cgroup_parent}",
               "--containerd-namespace", name, "--storage-driver", "overlay2"]
        self.log = open(base / "dockerd.log", "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while self.docker("version").returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("dockerd did not start: " + (base / "dockerd.log").read_text()[-2000:])
            time.sleep(0.2)

    def docker(self, *args, stdin_data=None, timeout=60, env=None):
        return subprocess.run([DOCKER_CLIENT, "-H", f"unix://{self.sock}", *args], capture_output=True,
                              text=stdin_data is None or isinstance(stdin_data, str), input=stdin_data, timeout=timeout,
                              env=dict(env or os.environ, DOCKER_CONFIG=str(self.base / "client")))

    def stop(self):
        if self.proc.poll() is None:
            for cid in self.docker("ps", "-aq").stdout.split():
                self.docker("rm", "-f", cid)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        # the empty cgroup directories named after --cgroup-parent at each v1 root
        for hierarchy in CGROUP_V1_ROOT.iterdir():
            d = hierarchy / self.name
            if d.is_dir():
                for sub in sorted(d.rglob("*"), key=lambda p: len(p.parts), reverse=True):
                    if sub.is_dir():
                        try:
                            sub.rmdir()
                        except OSError:
                            pass
                try:
                    d.rmdir()
                except OSError:
                    pass


@pytest.fixture(scope="session")
def dockerd(workdir, busybox):
    """A running dockerd with the suite's busybox loaded as busybox:latest."""
    if not (os.path.exists(DOCKERD) and os.path.exists(DOCKER_CLIENT)):
        pytest.skip("docker.io is not installed (apt-get install docker.io)")
    # a directory of its own: tests/builder starts its own dockerd in workdir / "dockerd"
    d = Dockerd(workdir / "dockerd-ref", f"pycontain-dockerref-{os.getpid()}")
    try:
        layout = write_busybox_layout(busybox, workdir / "dockerref-layout")
        archive = workdir / "dockerref-busybox.tar"
        subprocess.run(["skopeo", "copy", f"oci:{layout}:latest", f"docker-archive:{archive}:busybox:latest"],
                       check=True, capture_output=True, timeout=120)
        r = d.docker("load", "-i", str(archive))
        assert r.returncode == 0, r.stderr
        yield d
    finally:
        d.stop()


@pytest.fixture(scope="module")
def store_root(workdir, request, store_root_at):
    """A store of the comparisons' own (overriding the suite's, for this
    directory's modules): what other directories leave in the suite's store
    (the builder's images) would show in `images` and `system df`."""
    with store_root_at(workdir / f"store-{request.module.__name__}") as root:
        yield root


@pytest.fixture(scope="module")
def busybox_image(workdir, busybox, store_root):
    """The same busybox, loaded into pycontain's store as busybox:latest."""
    archive = workdir / "dockerref-busybox-pc.tar"
    if not archive.exists():
        layout = write_busybox_layout(busybox, workdir / "dockerref-layout-pc")
        subprocess.run(["skopeo", "copy", f"oci:{layout}:latest", f"docker-archive:{archive}:busybox:latest"],
                       check=True, capture_output=True, timeout=120)
    r = pycontain("load", "-i", str(archive))
    assert r.returncode == 0, r.stderr
    return "busybox:latest"


def pycontain(*args, stdin_data=None, timeout=60, env=None):
    """pycontain's CLI in its own process, with the suite's store root."""
    return subprocess.run([sys.executable, "-m", "pycontain", *args], capture_output=True,
                          text=stdin_data is None or isinstance(stdin_data, str), input=stdin_data, timeout=timeout,
                          env=env)


def first_words(text: str, n: int = 3) -> str:
    """The first words of an error, without the program's name ("Error: ", "pycontain: ")."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    for prefix in ("Error response from daemon: ", "Error: ", "pycontain: ", "docker: ", "Error "):
        if line.startswith(prefix):
            line = line[len(prefix):]
    return " ".join(line.split()[:n])




@pytest.fixture
def warm_store(store_root):
    """The process's record database connection, opened before leakcheck's snapshot."""
    return containers.shared_store()


@pytest.fixture
def clean_both(dockerd, busybox_image, warm_store, leakcheck):
    """Each comparing test ends with no containers on either side (and, on
    pycontain's, no monitor, mount or container directory: leakcheck)."""
    yield
    for cid in dockerd.docker("ps", "-aq").stdout.split():
        dockerd.docker("rm", "-f", cid)
    for c in containers.list(all=True):
        try:
            c.remove(force=True, volumes=True)
        except containers.NoSuchContainer:
            pass
