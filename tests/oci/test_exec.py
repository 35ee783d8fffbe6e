"""pycontain-runc exec, called directly beside runc: a process joined to a
running container (its namespaces, cgroup and seccomp filter), from the
bundle's process with exec's flags or from --process, foreground or detached
with --pid-file, with a terminal through --console-socket."""
import json
import os
import shutil
import socket
import subprocess
import time

import pytest
from ocitools import run_runtime
from ocitools import RUNTIME

RUNC = shutil.which("runc")
RUNTIMES = pytest.mark.parametrize("runtime", [RUNC, RUNTIME], ids=["runc", "pycontain-runc"])
# the mkdir family refused by the container's seccomp filter: exec'd processes must get it too
NO_MKDIR = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}


@pytest.fixture
def running(bundle, tmp_path):
    """running(runtime) -> (state root, id): a started `sleep 300` (NO_MKDIR seccomp), deleted after."""
    made = []

    def start(runtime):
        if runtime is None:
            pytest.skip("runc is the reference (apt-get install runc)")
        name = "runc" if runtime == RUNC else "ours"
        b = bundle(["sleep", "300"], name=f"bundle-{name}", edit=lambda s: s["linux"].update(seccomp=NO_MKDIR))
        root = tmp_path / f"state-{name}"
        r = run_runtime(root, "create", "--bundle", str(b), "e1", runtime=runtime)
        assert r.returncode == 0, r.stderr
        made.append((root, runtime))
        assert run_runtime(root, "start", "e1", runtime=runtime).returncode == 0
        return root
    yield start
    for root, runtime in made:
        r = run_runtime(root, "delete", "--force", "e1", runtime=runtime)
        assert r.returncode == 0, r.stderr
        assert not (root / "e1").exists()


def _init_pid(root, runtime):
    return json.loads(run_runtime(root, "state", "e1", runtime=runtime).stdout)["pid"]


def _same_ns(a, b, kinds=("pid", "mnt", "net", "ipc", "uts")):
    return all(os.stat(f"/proc/{a}/ns/{k}").st_ino == os.stat(f"/proc/{b}/ns/{k}").st_ino for k in kinds)


@RUNTIMES
def test_exec_with_flags_output_and_exit_status(running, runtime):
    root = running(runtime)
    r = run_runtime(root, "exec", "-e", "GREETING=hi", "--cwd", "/tmp", "-u", "1000:1001", "e1",
                    "sh", "-c", "echo $GREETING $(pwd) $(id -u):$(id -g); cat /proc/1/cmdline; echo; "
                                "mkdir /tmp/d || echo no-mkdir; umask; echo err >&2; exit 6", runtime=runtime)
    assert r.returncode == 6, r.stderr
    lines = r.stdout.decode().splitlines()
    assert lines[0] == "hi /tmp 1000:1001"
    assert lines[1] == "sleep\x00300\x00"           # pid 1 of the container's own pid namespace
    assert lines[2] == "no-mkdir"                  # the container's seccomp filter
    assert lines[3] == "0022"
    assert r.stderr.endswith(b"Operation not permitted\nerr\n")


@RUNTIMES
def test_exec_process_file_detached_with_a_pid_file(running, runtime, tmp_path):
    root = running(runtime)
    init = _init_pid(root, runtime)
    proc = {"args": ["sh", "-c", "umask > /dev/shm/umask; exec sleep 300"], "cwd": "/", "env": ["PATH=/bin:/usr/bin"],
            "user": {"uid": 0, "gid": 0, "umask": 0o077}}
    (tmp_path / "process.json").write_text(json.dumps(proc))
    pid_file = tmp_path / f"exec-{os.path.basename(runtime)}.pid"
    t0 = time.monotonic()
    r = run_runtime(root, "exec", "--process", str(tmp_path / "process.json"), "--detach", "--pid-file",
                    str(pid_file), "e1", runtime=runtime)
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 < 20                # returned while the process runs
    pid = int(pid_file.read_text())
    try:
        assert _same_ns(pid, init)
        with open(f"/proc/{pid}/cgroup") as a, open(f"/proc/{init}/cgroup") as b:
            assert a.read() == b.read()
        for _ in range(200):
            r = run_runtime(root, "exec", "e1", "cat", "/dev/shm/umask", runtime=runtime)
            if r.stdout:
                break
        # the process's own umask; runc 1.1 applies process.user.umask to the init only
        assert r.stdout == (b"0022\n" if runtime == RUNC else b"0077\n")
    finally:
        os.kill(pid, 9)


@RUNTIMES
def test_exec_with_a_terminal_through_the_console_socket(running, runtime, tmp_path):
    """As containerd's shim calls it: -t --detach, the master from the socket."""
    root = running(runtime)
    sock = tmp_path / f"console-{os.path.basename(runtime)}.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(sock))
    srv.listen(1)
    with srv:
        p = subprocess.Popen([runtime, "--root", str(root), "exec", "-t", "--detach", "--console-socket", str(sock),
                              "e1", "sh", "-c", "tty; exit 4"], stdin=subprocess.DEVNULL)
        try:
            srv.settimeout(30)
            conn, _ = srv.accept()
            with conn:
                _, fds, _, _ = socket.recv_fds(conn, 1024, 1)
            assert p.wait(30) == 0
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
    out = b""
    try:
        while True:
            chunk = os.read(fds[0], 4096)
            if not chunk:
                break
            out += chunk
    except OSError:     # EIO: the terminal's last user closed it
        pass
    os.close(fds[0])
    assert out == b"/dev/pts/0\r\n"      # the container's own devpts (its init has no terminal)


def test_exec_signal_status_and_errors(running, tmp_path, bundle):
    root = running(RUNTIME)
    r = run_runtime(root, "exec", "e1", "sh", "-c", "kill -TERM $$")
    assert r.returncode == 128 + 15
    r = run_runtime(root, "exec", "e1")
    assert (r.returncode, r.stderr) == (1, b"exec: no command given (and no --process)\n")
    (tmp_path / "bad.json").write_text(json.dumps({"args": [], "cwd": "/"}))
    r = run_runtime(root, "exec", "--process", str(tmp_path / "bad.json"), "e1")
    assert (r.returncode, r.stderr) == (1, b"config.json: process.args: must not be empty\n")
    r = run_runtime(root, "exec", "-t", "e1", "true")
    assert (r.returncode, r.stderr) == (1, b"exec with a terminal needs --console-socket\n")
    r = run_runtime(root, "exec", "-u", "nobody", "e1", "true")
    assert r.returncode == 1 and r.stderr.startswith(b"exec: user 'nobody' is not a number")
    r = run_runtime(root, "exec", "e1", "/no/such/command")
    assert r.returncode != 0 and len(r.stderr.splitlines()) == 1, r.stderr
    r = run_runtime(root, "exec", "nosuch", "true")
    assert (r.returncode, r.stderr) == (1, b"container does not exist\n")
    assert run_runtime(root, "kill", "e1", "KILL").returncode == 0
    for _ in range(200):
        if json.loads(run_runtime(root, "state", "e1").stdout)["status"] == "stopped":
            break
    r = run_runtime(root, "exec", "e1", "true")
    assert (r.returncode, r.stderr) == (1, b"cannot exec in a stopped container\n")
