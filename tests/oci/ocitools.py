"""The real callers of an OCI runtime, run here as FIELD-NOTES says: containerd
1.6 in a private network and mount namespace (the hybrid cgroup2 tree hidden
under a tmpfs, the CRI plugin off), with its own root, state and socket; and
a busybox image made from the suite's rootfs, imported as a docker archive."""
import gzip
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNTIME = str(Path(sys.executable).parent / "pycontain-runc")
IMAGE = "docker.io/library/busybox:oci"


def busybox_archive(rootfs: Path, dest_dir: Path) -> Path:
    """A docker archive of the busybox rootfs (an OCI layout, converted by skopeo)."""
    layout = dest_dir / "layout"
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    raw = subprocess.run(["tar", "--numeric-owner", "--sort=name", "--mtime=@1700000000", "-c", "-C",
                          str(rootfs), "."], check=True, capture_output=True).stdout
    layer = gzip.compress(raw, mtime=0)

    def put(data: bytes) -> dict:
        d = hashlib.sha256(data).hexdigest()
        (blobs / d).write_bytes(data)
        return {"digest": f"sha256:{d}", "size": len(data)}

    cfg = {"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
           "config": {"Cmd": ["sh"], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]},
           "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]}}
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **put(json.dumps(cfg).encode())},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **put(layer)}]}
    mdesc = put(json.dumps(manifest).encode())
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", **mdesc,
         "annotations": {"org.opencontainers.image.ref.name": "oci"}}]}))
    archive = dest_dir / "busybox.tar"
    subprocess.run(["skopeo", "copy", "-q", f"oci:{layout}:oci", f"docker-archive:{archive}:{IMAGE}"],
                   check=True, capture_output=True)
    return archive


class Containerd:
    """containerd 1.6, its own directories and socket, stopped by pid."""

    def __init__(self, d: Path):
        self.dir = d
        d.mkdir(exist_ok=True)
        self.sock = str(d / "c.sock")
        cfg = d / "config.toml"
        cfg.write_text(f"""version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{self.sock}"
[ttrpc]
  address = "{self.sock}.ttrpc"
""")
        # runc makes containerd's cgroupsPath (/default/ID) from each hierarchy's
        # root and leaves /default behind: removed at stop() if it was not there
        self.cgroup_dirs_before = set(_default_cgroup_dirs())
        self.log = open(d / "containerd.log", "wb")
        # /run/containerd (the shims' sockets, runc's --root) is a tmpfs of its own:
        # other containerds on the machine use the host's
        script = ("ip link set lo up && mount -t tmpfs none /sys/fs/cgroup/unified && "
                  f"mkdir -p /run/containerd && mount -t tmpfs none /run/containerd && "
                  f"exec containerd --config {cfg}")
        self.proc = subprocess.Popen(["unshare", "--net", "--mount", "--propagation", "private", "sh", "-c", script],
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        end = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"containerd ended: {(d / 'containerd.log').read_text()[-2000:]}")
            if os.path.exists(self.sock) and self.ctr("version", check=False).returncode == 0:
                break
            if time.monotonic() > end:
                self.stop()
                raise AssertionError("containerd did not answer within 20 s")
            time.sleep(0.05)

    def ctr(self, *args, check=True, timeout=60, **kw) -> subprocess.CompletedProcess:
        r = subprocess.run(["ctr", "-a", self.sock, *args], capture_output=True, timeout=timeout, **kw)
        if check and r.returncode != 0:
            raise AssertionError(f"ctr {' '.join(args)}: {r.returncode} {r.stderr.decode()}")
        return r

    def run_args(self, runtime) -> list:
        """ctr run's flags for a runtime: its state and the IO fifos in our directory
        (containerd sees its own /run/containerd; ctr and the shim share these)."""
        name = os.path.basename(runtime)
        return ["--runc-binary", runtime, "--runc-root", str(self.dir / f"{name}-state"),
                "--fifo-dir", str(self.dir / "fifo")]

    def stop(self):
        """containerd and its shims (each in a session of its own, children of init)."""
        shims = [p for p in _pids() if _cmdline(p).startswith(b"/usr/bin/containerd-shim")
                 and self.sock.encode() in _cmdline(p)]
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for p in shims:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.log.close()
        for cg in set(_default_cgroup_dirs()) - self.cgroup_dirs_before:
            try:
                os.rmdir(cg)
            except OSError:
                pass     # in use after all: not ours to remove
        # its snapshots are mounted in its own mount namespace, gone with it
        shutil.rmtree(self.dir / "root", ignore_errors=True)


def _default_cgroup_dirs() -> list:
    return [str(p) for p in Path("/sys/fs/cgroup").glob("*/default") if p.is_dir()]


def _pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _cmdline(pid) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ")
    except OSError:
        return b""


def run_runtime(root, *args, runtime=RUNTIME, **kw):
    """The runtime's output through files, not pipes: a created container
    holds create's stdio (as with runc), so a pipe would not end with create.
    stdin an empty file of our own, never /dev/null: crun 1.8 chowns its stdio
    to the container's root, which in a user namespace would give the host's
    /dev/null to uid 100000."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as nothing:
        r = subprocess.run([runtime, "--root", str(root), *args], stdin=nothing, stdout=out,
                           stderr=err, timeout=60, **kw)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(r.args, r.returncode, out.read(), err.read())


def own_cgroup_dirs(name: str) -> list:
    """The directories a container's cgroup `name` would have under ours."""
    found = []
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctls, path = line.rstrip("\n").split(":", 2)
            for ctl in ctls.split(","):
                if ctl and not ctl.startswith("name="):
                    d = f"/sys/fs/cgroup/{ctl}{path.rstrip('/')}/{name}"
                    if os.path.isdir(d):
                        found.append(d)
    return found


CRUN = shutil.which("crun")


def crun_wrapper(d: Path) -> str | None:
    """A crun command as FIELD-NOTES says it runs here: in a private mount
    namespace with the hybrid cgroup2 tree hidden (crun refuses the hybrid
    layout); cgroups under the caller's own. None without crun."""
    if CRUN is None:
        return None
    path = d / "crun"
    path.write_text("#!/bin/sh\nexec unshare --mount --propagation private sh -c "
                    f"'mount -t tmpfs none /sys/fs/cgroup/unified && exec {CRUN} \"$@\"' sh \"$@\"\n")
    path.chmod(0o755)
    return str(path)
