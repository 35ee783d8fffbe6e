"""pycontain-runc called directly: the OCI lifecycle, the process model a
shim relies on, errors, and runc beside it as the reference."""
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from ocitools import own_cgroup_dirs, run_runtime
from ocitools import RUNTIME

RUNC = shutil.which("runc")
SUBREAPER = str(Path(__file__).parent / "subreaper.py")


def test_run_gives_the_exit_status_and_output(bundle, state_root):
    b = bundle(["sh", "-c", "echo out $(hostname); echo err >&2; exit 3"])
    r = run_runtime(state_root, "run", "--bundle", str(b), "r1")
    assert (r.returncode, r.stdout, r.stderr) == (3, b"out runc\n", b"err\n")
    assert own_cgroup_dirs("pycontain-r1") == []


def test_run_killed_by_a_signal_exits_128_plus_it(bundle, state_root):
    b = bundle(["sleep", "60"])
    run = subprocess.Popen([RUNTIME, "--root", str(state_root), "run", "--bundle", str(b), "r2"])
    try:
        for _ in range(500):
            r = run_runtime(state_root, "state", "r2")
            if r.returncode == 0 and json.loads(r.stdout)["status"] == "running":
                break
        assert run_runtime(state_root, "kill", "r2", "SIGKILL").returncode == 0
        assert run.wait(30) == 137
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()


@pytest.mark.cgroupv2   # also in the VM lane: record()/reopen() of a v2 cgroup
def test_create_start_the_caller_reaps_the_container(bundle, state_root, tmp_path):
    """The shim's model: create returns with the container waiting, start runs
    it, and the container's exit status reaches the subreaper that called us."""
    b = bundle(["sh", "-c", "echo started as $$; exit 7"])
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, SUBREAPER, RUNTIME, str(state_root), str(b), "c1", str(out)],
                       capture_output=True, timeout=60)
    seen = json.loads(r.stdout)
    assert seen["create"] == [0, ""]
    assert seen["state_created"]["status"] == "created"
    assert seen["state_created"]["pid"] == seen["pid"]
    assert seen["start"] == [0, ""]
    assert seen["exit"] == 7                      # reaped by the caller, not by us
    assert seen["state_after"]["status"] == "stopped"
    assert seen["delete"] == [0, ""]
    assert out.read_bytes() == b"started as 1\n"  # pid 1 of its own namespace; our stdio
    assert own_cgroup_dirs("pycontain-c1") == []


@pytest.mark.cgroupv2   # also in the VM lane: record()/reopen() of a v2 cgroup
def test_lifecycle_states_and_wrong_state_errors(bundle, state_root, tmp_path):
    b = bundle(["sleep", "60"])
    pid_file = tmp_path / "pid"
    r = run_runtime(state_root, "create", "--bundle", str(b), "--pid-file", str(pid_file), "l1")
    assert r.returncode == 0, r.stderr
    pid = int(pid_file.read_text())
    st = json.loads(run_runtime(state_root, "state", "l1").stdout)
    assert (st["status"], st["pid"], st["id"], st["bundle"]) == ("created", pid, "l1", str(b))
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert b"sleep" not in f.read()           # the command waits for start
    again = run_runtime(state_root, "create", "--bundle", str(b), "l1")
    assert again.returncode == 1 and again.stderr == b"container with given ID already exists\n"
    assert run_runtime(state_root, "start", "l1").returncode == 0
    assert json.loads(run_runtime(state_root, "state", "l1").stdout)["status"] == "running"
    r = run_runtime(state_root, "start", "l1")
    assert (r.returncode, r.stderr) == (1, b"cannot start an already running container\n")
    r = run_runtime(state_root, "delete", "l1")
    assert (r.returncode, r.stderr) == (1, b"cannot delete container l1 that is not stopped: running\n")
    assert run_runtime(state_root, "pause", "l1").returncode == 0
    assert json.loads(run_runtime(state_root, "state", "l1").stdout)["status"] == "paused"
    assert run_runtime(state_root, "resume", "l1").returncode == 0
    ps = json.loads(run_runtime(state_root, "ps", "--format", "json", "l1").stdout)
    assert ps == [pid]
    assert run_runtime(state_root, "kill", "l1", "KILL").returncode == 0
    r = run_runtime(state_root, "delete", "l1")       # the zombie counts as stopped
    assert r.returncode == 0, r.stderr
    r = run_runtime(state_root, "state", "l1")
    assert (r.returncode, r.stderr) == (1, b"container does not exist\n")
    assert own_cgroup_dirs("pycontain-l1") == []


def test_delete_force_and_delete_of_a_created_container(bundle, state_root):
    b = bundle(["sleep", "60"])
    assert run_runtime(state_root, "create", "--bundle", str(b), "d1").returncode == 0
    assert run_runtime(state_root, "delete", "d1").returncode == 0        # runc deletes created ones
    assert run_runtime(state_root, "create", "--bundle", str(b), "d2").returncode == 0
    assert run_runtime(state_root, "start", "d2").returncode == 0
    assert run_runtime(state_root, "delete", "--force", "d2").returncode == 0
    assert own_cgroup_dirs("pycontain-d1") == own_cgroup_dirs("pycontain-d2") == []


@pytest.mark.parametrize("edit, words", [
    (lambda s: s["linux"].update(intelRdt={"closID": "x"}), "config.json: linux.intelRdt: Intel RDT is not supported"),
    (lambda s: s["process"].update(args=[]), "config.json: process.args: must not be empty"),
    (lambda s: s["root"].update(path="nowhere"), "config.json: root.path:"),
    (lambda s: s["linux"].update(sysctl={"kernel.panic": "1"}), "config.json: linux.sysctl.kernel.panic:"),
    (lambda s: s["process"]["capabilities"].update(bounding=["CAP_NOPE"]), "unknown capability 'CAP_NOPE'"),
    (lambda s: s["mounts"].append({"destination": "/x", "type": "bind", "source": "/no/such"}), "mounts[7].source"),
])
def test_bad_config_one_line_error_nothing_left(bundle, state_root, tmp_path, edit, words):
    b = bundle(["true"], edit=edit)
    log = tmp_path / "log.json"
    r = subprocess.run([RUNTIME, "--root", str(state_root), "--log", str(log), "--log-format", "json",
                        "create", "--bundle", str(b), "--pid-file", str(tmp_path / "pid"), "bad"],
                       capture_output=True, timeout=60)
    assert r.returncode == 1
    lines = r.stderr.decode().splitlines()
    assert len(lines) == 1 and words in lines[0], r.stderr
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(entries) == 1 and entries[0]["level"] == "error" and entries[0]["msg"] == lines[0]
    assert set(entries[0]) == {"level", "msg", "time"}
    assert not (tmp_path / "pid").exists() and not (state_root / "bad").exists()
    assert own_cgroup_dirs("pycontain-bad") == []


def test_not_json_and_unsupported_commands(bundle, state_root):
    b = bundle(["true"])
    (b / "config.json").write_text("{")
    r = run_runtime(state_root, "create", "--bundle", str(b), "j")
    assert r.returncode == 1 and r.stderr.startswith(b"config.json: not valid JSON")
    r = run_runtime(state_root, "checkpoint", "j")
    assert (r.returncode, r.stderr) == (1, b"checkpoint is not supported by pycontain-runc\n")


@pytest.mark.skipif(RUNC is None, reason="runc is the reference (apt-get install runc)")
def test_state_matches_runc_side_by_side(bundle, state_root, tmp_path):
    """The same bundle under runc and under pycontain-runc: the same state keys
    and statuses through the lifecycle, the same exit status from run."""
    b = bundle(["sleep", "60"])
    runc_root = tmp_path / "runc-state"
    states = {}
    for name, rt, root in (("runc", RUNC, runc_root), ("ours", RUNTIME, state_root)):
        seen = []
        assert run_runtime(root, "create", "--bundle", str(b), "s1", runtime=rt).returncode == 0
        seen.append(json.loads(run_runtime(root, "state", "s1", runtime=rt).stdout))
        assert run_runtime(root, "start", "s1", runtime=rt).returncode == 0
        seen.append(json.loads(run_runtime(root, "state", "s1", runtime=rt).stdout))
        assert run_runtime(root, "kill", "s1", "9", runtime=rt).returncode == 0
        r = run_runtime(root, "delete", "--force", "s1", runtime=rt)
        assert r.returncode == 0, r.stderr
        states[name] = seen
    for theirs, ours in zip(states["runc"], states["ours"], strict=True):
        assert set(theirs) - {"annotations"} == set(ours) - {"annotations"}
        assert theirs["status"] == ours["status"]
    exits = [run_runtime(root, "run", "--bundle", str(bundle(["sh", "-c", "exit 5"], name=f"b-{n}")), "x",
                         runtime=rt).returncode
             for n, rt, root in (("runc", RUNC, runc_root), ("ours", RUNTIME, state_root))]
    assert exits == [5, 5]


def _console_server(path):
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen(1)
    return srv


@pytest.mark.parametrize("runtime", [RUNC, RUNTIME], ids=["runc", "pycontain-runc"])
def test_terminal_master_through_the_console_socket(bundle, tmp_path, runtime):
    """create sends the terminal's master over --console-socket (one
    SCM_RIGHTS descriptor); the container's stdio is that terminal."""
    if runtime is None:
        pytest.skip("runc is the reference (apt-get install runc)")
    b = bundle(["sh", "-c", "tty; stty size; echo on-the-terminal; exit 4"],
               edit=lambda s: s["process"].update(terminal=True, consoleSize={"height": 30, "width": 100}))
    root = tmp_path / "state-tty"
    srv = _console_server(tmp_path / "console.sock")
    with srv:
        r = run_runtime(root, "create", "--bundle", str(b), "--console-socket", str(tmp_path / "console.sock"),
                        "--pid-file", str(tmp_path / "pid"), "t1", runtime=runtime)
        assert r.returncode == 0, r.stderr
        conn, _ = srv.accept()
        with conn:
            _, fds, _, _ = socket.recv_fds(conn, 1024, 1)
    assert len(fds) == 1
    master = fds[0]
    try:
        assert run_runtime(root, "start", "t1", runtime=runtime).returncode == 0
        out = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:        # EIO: the terminal's last user closed it
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(master)
    assert out == b"/dev/pts/0\r\n30 100\r\non-the-terminal\r\n"
    pid = int((tmp_path / "pid").read_text())
    for _ in range(200):   # not our child: it is a zombie of init's now, or gone
        if json.loads(run_runtime(root, "state", "t1", runtime=runtime).stdout)["status"] == "stopped":
            break
    assert run_runtime(root, "delete", "t1", runtime=runtime).returncode == 0
    assert pid > 0


def test_sysctls_land_in_the_container_namespaces(bundle, state_root):
    b = bundle(["sh", "-c", "cat /proc/sys/net/ipv4/ping_group_range /proc/sys/kernel/shmmni"],
               edit=lambda s: s["linux"].update(sysctl={"net.ipv4.ping_group_range": "0 0", "kernel.shmmni": "1234"}))
    with open("/proc/sys/net/ipv4/ping_group_range") as f:
        host_before = f.read()
    r = run_runtime(state_root, "run", "--bundle", str(b), "sy1")
    assert (r.returncode, r.stdout.split(b"\n")[:2]) == (0, [b"0\t0", b"1234"]), r.stderr
    with open("/proc/sys/net/ipv4/ping_group_range") as f:
        assert f.read() == host_before


def test_sysctl_outside_the_container_namespaces_is_refused(bundle, state_root):
    b = bundle(["true"], edit=lambda s: s["linux"].update(sysctl={"vm.swappiness": "10"}))
    r = run_runtime(state_root, "run", "--bundle", str(b), "sy2")
    assert r.returncode == 1
    assert r.stderr == (b"config.json: linux.sysctl.vm.swappiness: is not in a namespace of the container's "
                        b"own (net.*, IPC ones)\n")


def test_umask(bundle, state_root):
    b = bundle(["sh", "-c", "umask"], edit=lambda s: s["process"]["user"].update(umask=0o027))
    r = run_runtime(state_root, "run", "--bundle", str(b), "um1")
    assert (r.returncode, r.stdout) == (0, b"0027\n"), r.stderr


def test_a_launch_failure_at_create_leaves_nothing(bundle, state_root, tmp_path):
    """config.json is fine but the kernel refuses a mount: one line, exit 1,
    no state, no cgroup, no process waiting."""
    b = bundle(["true"], edit=lambda s: s["mounts"].append({"destination": "/x", "type": "nosuchfs",
                                                             "source": "none"}))
    r = run_runtime(state_root, "create", "--bundle", str(b), "--pid-file", str(tmp_path / "pid"), "lf1")
    assert r.returncode == 1
    assert r.stderr.count(b"\n") == 1 and b"mount" in r.stderr and b"No such device" in r.stderr, r.stderr
    assert not (tmp_path / "pid").exists() and not (state_root / "lf1").exists()
    assert own_cgroup_dirs("pycontain-lf1") == []



def _hook(tmp_path, name, body):
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return str(path)


def test_hooks_run_in_order_with_the_state_on_stdin(bundle, state_root, tmp_path):
    log = tmp_path / "hooks.log"
    hooks = {kind: [{"path": _hook(tmp_path, kind, f'echo "{kind} $(cat)" >> {log}')}]
             for kind in ("prestart", "createRuntime", "poststart", "poststop")}
    b = bundle(["sleep", "60"], edit=lambda s: s.update(hooks=hooks))
    assert run_runtime(state_root, "create", "--bundle", str(b), "h1").returncode == 0
    assert run_runtime(state_root, "start", "h1").returncode == 0
    assert run_runtime(state_root, "kill", "h1", "KILL").returncode == 0
    assert run_runtime(state_root, "delete", "--force", "h1").returncode == 0
    lines = log.read_text().splitlines()
    kinds = [line.split(" ", 1)[0] for line in lines]
    assert kinds == ["prestart", "createRuntime", "poststart", "poststop"]
    states = [json.loads(line.split(" ", 1)[1]) for line in lines]
    assert [st["status"] for st in states] == ["creating", "creating", "running", "stopped"]   # as runc
    assert {st["id"] for st in states} == {"h1"} and states[0]["pid"] > 0 and states[0]["bundle"] == str(b)


def test_a_failing_prestart_hook_fails_create_and_leaves_nothing(bundle, state_root, tmp_path):
    hooks = {"prestart": [{"path": _hook(tmp_path, "bad", "echo no network for you; exit 3")}]}
    b = bundle(["sleep", "60"], edit=lambda s: s.update(hooks=hooks))
    r = run_runtime(state_root, "create", "--bundle", str(b), "--pid-file", str(tmp_path / "pid"), "h2")
    assert r.returncode == 1
    assert r.stderr == f"prestart hook {tmp_path}/bad: exited with status 3: no network for you\n".encode()
    assert not (tmp_path / "pid").exists() and not (state_root / "h2").exists()
    assert own_cgroup_dirs("pycontain-h2") == []


@pytest.mark.parametrize("runtime", [RUNC, RUNTIME], ids=["runc", "pycontain-runc"])
def test_create_output_ends_with_create(bundle, tmp_path, runtime):
    """go-runc reads create's combined output to its end when the container
    has a terminal: nothing left running may keep create's stdout open."""
    if runtime is None:
        pytest.skip("runc is the reference (apt-get install runc)")
    b = bundle(["sleep", "60"], edit=lambda s: s["process"].update(terminal=True))
    root = tmp_path / "state-out"
    out = b"(create's output never ended)"
    try:
        with _console_server(tmp_path / "console.sock") as srv:
            create = subprocess.Popen([runtime, "--root", str(root), "create", "--bundle", str(b),
                                       "--console-socket", str(tmp_path / "console.sock"), "o1"],
                                      stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            conn, _ = srv.accept()
            with conn:
                _, fds, _, _ = socket.recv_fds(conn, 1024, 1)
                try:
                    out, _ = create.communicate(timeout=30)    # EOF, not a hang
                except subprocess.TimeoutExpired:
                    create.kill()
                    create.wait()
                finally:
                    for fd in fds:
                        os.close(fd)
    finally:
        deleted = run_runtime(root, "delete", "--force", "o1", runtime=runtime)
    assert (create.returncode, out) == (0, b"")
    assert deleted.returncode == 0


def test_spec_features_version_list(bundle, state_root, tmp_path):
    d = tmp_path / "spec"
    d.mkdir()
    assert run_runtime(state_root, "spec", "--bundle", str(d)).returncode == 0
    ours = json.loads((d / "config.json").read_text())
    r = run_runtime(state_root, "spec", "--bundle", str(d))
    assert (r.returncode, r.stderr) == (1, b"File config.json exists. Remove it first.\n")
    if RUNC is not None:          # the same document as runc spec's, but for the version
        (d / "config.json").unlink()
        subprocess.run([RUNC, "spec"], cwd=d, check=True)
        theirs = json.loads((d / "config.json").read_text())
        assert {**theirs, "ociVersion": ""} == {**ours, "ociVersion": ""}
    features = json.loads(run_runtime(state_root, "features").stdout)
    assert {"ociVersionMin", "ociVersionMax", "hooks", "mountOptions", "linux"} <= set(features)
    assert "CAP_SYS_ADMIN" in features["linux"]["capabilities"]
    assert run_runtime(state_root, "--version").stdout.startswith(b"pycontain-runc version ")
    b = bundle(["sleep", "60"])
    assert run_runtime(state_root, "create", "--bundle", str(b), "ls1").returncode == 0
    listed = json.loads(run_runtime(state_root, "list", "--format", "json").stdout)
    assert [(s["id"], s["status"]) for s in listed] == [("ls1", "created")]
    assert run_runtime(state_root, "list", "-q").stdout == b"ls1\n"
    assert run_runtime(state_root, "delete", "ls1").returncode == 0


@pytest.mark.parametrize("runtime", [RUNC, RUNTIME], ids=["runc", "pycontain-runc"])
def test_operations_in_the_wrong_state_fail_as_with_runc(bundle, tmp_path, runtime):
    """What the runtime-tools validation suite checks of the lifecycle: each
    operation the state does not allow fails (exit 1) and changes nothing; the
    same exit statuses as runc, step by step."""
    if runtime is None:
        pytest.skip("runc is the reference (apt-get install runc)")
    b = bundle(["sh", "-c", "exit 0"])
    root = tmp_path / "state-ws"

    def rc(*args):
        return run_runtime(root, *args, runtime=runtime).returncode

    def status():
        r = run_runtime(root, "state", "ws1", runtime=runtime)
        return json.loads(r.stdout)["status"] if r.returncode == 0 else None
    seen = [("state unknown", rc("state", "nope")), ("kill unknown", rc("kill", "nope", "KILL")),
            ("start unknown", rc("start", "nope")), ("delete unknown", rc("delete", "nope")),
            ("create", rc("create", "--bundle", str(b), "ws1")), ("status", status()),
            ("resume created", rc("resume", "ws1")), ("start", rc("start", "ws1"))]
    for _ in range(200):
        if status() == "stopped":
            break
    seen += [("status", status()), ("start stopped", rc("start", "ws1")), ("pause stopped", rc("pause", "ws1")),
             ("kill stopped", rc("kill", "ws1", "KILL")), ("status", status()), ("delete", rc("delete", "ws1")),
             ("state deleted", rc("state", "ws1")), ("delete again", rc("delete", "ws1")),
             ("delete --force unknown", rc("delete", "--force", "nope"))]
    assert seen == [("state unknown", 1), ("kill unknown", 1), ("start unknown", 1), ("delete unknown", 1),
                    ("create", 0), ("status", "created"), ("resume created", 1), ("start", 0), ("status", "stopped"), ("start stopped", 1), ("pause stopped", 1),
                    ("kill stopped", 1), ("status", "stopped"), ("delete", 0), ("state deleted", 1),
                    ("delete again", 1), ("delete --force unknown", 0)]
