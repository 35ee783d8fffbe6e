"""containerd 1.6 runs pycontain-runc through its io.containerd.runc.v2 shim
(the one Kubernetes' CRI plugin uses): `ctr run --runc-binary`, beside runc."""
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from ocitools import IMAGE, RUNTIME, Containerd, busybox_archive

pytestmark = pytest.mark.skipif(shutil.which("containerd") is None or shutil.which("runc") is None,
                                reason="needs containerd and runc (apt-get install containerd)")


@pytest.fixture(scope="module")
def containerd(busybox, tmp_path_factory):
    d = tmp_path_factory.mktemp("containerd")
    archive = busybox_archive(busybox, d)
    c = Containerd(d / "daemon")
    try:
        c.ctr("images", "import", str(archive))
        yield c
    finally:
        c.stop()


@pytest.mark.parametrize("runtime", ["/usr/sbin/runc", RUNTIME], ids=["runc", "pycontain-runc"])
def test_ctr_run_output_and_exit_status(containerd, runtime):
    r = containerd.ctr("run", "--rm", *containerd.run_args(runtime), IMAGE, "run1", "sh", "-c",
                       "echo hello from pid $$; echo to-stderr >&2; exit 7", check=False)
    assert (r.returncode, r.stdout, r.stderr) == (7, b"hello from pid 1\n", b"to-stderr\n")
    assert containerd.ctr("containers", "ls", "-q").stdout == b""


def test_ctr_detached_task_kill_and_delete(containerd):
    containerd.ctr("run", "-d", *containerd.run_args(RUNTIME), IMAGE, "det1", "sleep", "60")
    try:
        tasks = containerd.ctr("tasks", "ls").stdout.decode()
        assert "det1" in tasks and "RUNNING" in tasks
        pid = tasks.split("det1")[1].split()[0]
        assert pid in containerd.ctr("tasks", "ps", "det1").stdout.decode().split()    # runc ps --format json
        containerd.ctr("tasks", "pause", "det1")
        assert "PAUSED" in containerd.ctr("tasks", "ls").stdout.decode()
        containerd.ctr("tasks", "resume", "det1")
        assert "RUNNING" in containerd.ctr("tasks", "ls").stdout.decode()
        containerd.ctr("tasks", "kill", "--signal", "SIGKILL", "det1")
        r = containerd.ctr("tasks", "ls").stdout.decode()
        for _ in range(100):
            if "STOPPED" in r:
                break
            r = containerd.ctr("tasks", "ls").stdout.decode()
        assert "STOPPED" in r
    finally:
        containerd.ctr("tasks", "delete", "--force", "det1", check=False)
        containerd.ctr("containers", "delete", "det1", check=False)
    assert containerd.ctr("containers", "ls", "-q").stdout == b""


@pytest.mark.parametrize("runtime", ["/usr/sbin/runc", RUNTIME], ids=["runc", "pycontain-runc"])
def test_ctr_run_with_a_terminal(containerd, runtime):
    """ctr run -t: the shim takes the terminal's master from --console-socket.
    ctr wants a terminal of its own: script(1) gives it one."""
    cmd = " ".join(["ctr", "-a", containerd.sock, "run", "--rm", "-t", *containerd.run_args(runtime), IMAGE, "tty1",
                    "sh", "-c", "'tty; exit 3'"])
    r = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, timeout=60)
    assert r.returncode == 3, r.stdout
    assert r.stdout.endswith(b"/dev/pts/0\r\r\n")


@pytest.mark.parametrize("runtime", ["/usr/sbin/runc", RUNTIME], ids=["runc", "pycontain-runc"])
def test_ctr_task_exec(containerd, runtime):
    """ctr task exec: the shim calls `exec --process F --detach --pid-file`
    and reaps the process itself; its output and exit status reach ctr."""
    name = "ex-" + ("runc" if runtime.endswith("/runc") else "ours")
    containerd.ctr("run", "-d", *containerd.run_args(runtime), IMAGE, name, "sleep", "60")
    try:
        fifo = ["--fifo-dir", str(containerd.dir / "fifo")]
        r = containerd.ctr("task", "exec", *fifo, "--exec-id", "x1", name, "sh", "-c",
                           "echo exec in $(cat /proc/1/cmdline | tr '\\0' ' ')as $$; echo e >&2; exit 5", check=False)
        assert (r.returncode, r.stderr) == (5, b"e\n"), r
        assert r.stdout.startswith(b"exec in sleep 60 as ") and r.stdout != b"exec in sleep 60 as 1\n"
        cmd = " ".join(["ctr", "-a", containerd.sock, "task", "exec", *fifo, "-t", "--exec-id", "x2", name,
                        "sh", "-c", "'tty; exit 3'"])
        r = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, timeout=60)
        assert r.returncode == 3, r.stdout
        assert b"/dev/pts/" in r.stdout
    finally:
        containerd.ctr("tasks", "kill", "--signal", "SIGKILL", name, check=False)
        for _ in range(100):
            if containerd.ctr("tasks", "delete", name, check=False).returncode == 0:
                break
        containerd.ctr("tasks", "delete", "--force", name, check=False)
        containerd.ctr("containers", "delete", name, check=False)
    assert containerd.ctr("containers", "ls", "-q").stdout == b""


@pytest.fixture(scope="module")
def open_containerd(busybox):
    """A containerd whose directories the mapped root of a user namespace may
    walk through (pytest's own are 0700, closed to host uid 300000)."""
    d = Path(tempfile.mkdtemp(prefix="pc-ctrd-userns-", dir="/tmp"))
    d.chmod(0o755)
    c = None
    try:
        c = Containerd(d / "daemon")
        for sub in ("root", "state"):
            (d / "daemon" / sub).mkdir(exist_ok=True)
            (d / "daemon" / sub).chmod(0o755)
        c.ctr("images", "import", str(busybox_archive(busybox, d)))
        yield c
    finally:
        if c is not None:
            c.stop()
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("runtime", ["/usr/sbin/runc", RUNTIME], ids=["runc", "pycontain-runc"])
def test_ctr_run_in_a_user_namespace(open_containerd, runtime):
    """ctr run --uidmap/--gidmap: containerd chowns a snapshot to the mapped
    ids and the bundle asks for a user namespace with those maps."""
    name = "userns-" + ("runc" if runtime.endswith("/runc") else "ours")
    r = open_containerd.ctr("run", "--rm", "--uidmap", "0:300000:65536", "--gidmap", "0:300000:65536",
                            *open_containerd.run_args(runtime), IMAGE, name, "sh", "-c",
                            "id -u; cat /proc/self/uid_map; stat -c %u /bin/busybox", check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split() == ["0", "0", "300000", "65536", "0"]
    assert open_containerd.ctr("containers", "ls", "-q").stdout == b""
