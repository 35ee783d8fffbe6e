"""dockerd 20.10 runs pycontain-runc as an added runtime (`--add-runtime`,
`docker run --runtime pycontain`), beside runc: dockerd and its containerd in
a private network and mount namespace with their own directories."""
import shutil
import subprocess
import tempfile

import pytest
from ocitools import IMAGE, RUNTIME, busybox_archive

pytestmark = pytest.mark.skipif(shutil.which("dockerd") is None or shutil.which("runc") is None,
                                reason="needs dockerd and runc (apt-get install docker.io)")


@pytest.fixture(scope="module")
def archive(busybox, tmp_path_factory):
    return busybox_archive(busybox, tmp_path_factory.mktemp("docker-image"))


def test_docker_run_with_the_added_runtime(archive):
    d = tempfile.mkdtemp(prefix="pc-dkr-", dir="/tmp")
    # containerd's namespaces start with a letter or digit: mkdtemp's suffix may start with "_"
    name = "pcdkr" + d.rsplit("/", 1)[1][len("pc-dkr-"):].replace("_", "0").lower()
    dk = f"docker -H unix://{d}/docker.sock"
    run = f"{dk} run --rm --network none {IMAGE} sh -c 'echo hello from $$; exit 5'"
    script = f"""
ip link set lo up && mount -t tmpfs none /sys/fs/cgroup/unified && mount -t tmpfs none /run || exit 99
dockerd --data-root {d}/root --exec-root {d}/exec --pidfile {d}/pid -H unix://{d}/docker.sock \\
  --iptables=false --ip-forward=false --ip-masq=false --bridge=none --exec-opt native.cgroupdriver=cgroupfs \\
  --cgroup-parent=/{name} --containerd-namespace {name} --storage-driver overlay2 \\
  --add-runtime pycontain={RUNTIME} > {d}/log 2>&1 &
for i in $(seq 1 200); do {dk} version >/dev/null 2>&1 && break; sleep 0.05; done
{dk} load -q -i {archive} >/dev/null
{run.replace("run --rm", "run --runtime pycontain --rm")}; echo "pycontain-runc $?"
{run.replace("run --rm", "run --runtime runc --rm")}; echo "runc $?"
for rt in pycontain runc; do
  {dk} run -d --runtime $rt --network none --name ex-$rt {IMAGE} sleep 60 >/dev/null
  {dk} exec -e WHO=$rt ex-$rt sh -c 'echo exec as $WHO; exit 3'; echo "$rt exec $?"
  {dk} rm -f ex-$rt >/dev/null
done
kill $(cat {d}/pid); while kill -0 $(cat {d}/pid) 2>/dev/null; do sleep 0.05; done
"""
    try:
        r = subprocess.run(["unshare", "--mount", "--net", "--propagation", "private", "sh", "-c", script],
                           capture_output=True, timeout=120)
    finally:
        shutil.rmtree(d, ignore_errors=True)   # its mounts went with the namespace
        for cg in subprocess.run(["find", "/sys/fs/cgroup", "-maxdepth", "2", "-type", "d", "-name", name],
                                 capture_output=True, text=True).stdout.split():
            subprocess.run(["rmdir", cg], capture_output=True)   # dockerd leaves its empty --cgroup-parent
    assert r.stdout == (b"hello from 1\npycontain-runc 5\nhello from 1\nrunc 5\n"
                        b"exec as pycontain\npycontain exec 3\nexec as runc\nrunc exec 3\n"), r.stderr
