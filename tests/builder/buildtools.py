"""Helpers of the builder tests: the base image's name, contexts, progress events."""
import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

BASE = "bbase:1"   # the tests' base image, the same in pycontain's store and in dockerd


def make_ctx(path, files, dockerfile=None):
    path.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        p = path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content if isinstance(content, bytes) else content.encode())
    if dockerfile is not None:
        (path / "Dockerfile").write_text(textwrap.dedent(dockerfile))
    return path


class Events(list):
    """A progress callback that keeps the events."""

    def __call__(self, e):
        self.append(e)

    def cached(self):
        """[(instruction, cached)] of the steps after FROM."""
        steps = {e["id"]: e for e in self if e["type"] == "step"}
        return [(steps[e["id"]]["instruction"], e["cached"]) for e in self
                if e["type"] == "done" and not steps[e["id"]]["instruction"].startswith("FROM")]

    def output(self):
        return [e["line"] for e in self if e["type"] == "output"]


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
