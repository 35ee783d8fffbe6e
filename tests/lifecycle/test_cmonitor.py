"""The C monitor (src/monitor.c, pycontain-monitor) of detached containers:
what it is (the init's parent, conmon's size), and each of its jobs — the
json-file log and its rotation, the exit file and the record, OOM, events,
signals, attach, restarts — and a monitor killed mid-run."""
import ctypes
import json
import os
import signal
import socket
import struct
import threading
import time

import pytest

from pycontain import attach, containers
from pycontain.config import Mount
from pycontain.logs import JsonFileWriter, log_files, read_entries
from pycontain.state import EXIT_MONITOR_LOST

from .conftest import wait_for

pytestmark = pytest.mark.usefixtures("managed")


def cmdline(pid) -> list:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().split(b"\0")[:-1]


def status_kib(pid, key) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def parent_of(pid) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def alive(pid) -> bool:
    """pid runs (a zombie, not yet reaped by whoever adopted it, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def run_d(busybox, script, **kw):
    return containers.run(rootfs=str(busybox), command=["sh", "-c", script], **kw)


def test_the_init_is_the_c_monitors_child_and_the_monitor_is_small(busybox):
    c = run_d(busybox, "sleep 60", init=True)
    rec = c.record
    assert parent_of(rec.pid) == rec.monitor_pid
    assert cmdline(rec.monitor_pid)[0] == b"pycontain-monitor"
    # conmon here: VmRSS 2.1 MiB, RssAnon 0.3 MiB (bench/compare.py measures both side by side)
    assert status_kib(rec.monitor_pid, "VmRSS") < 1024
    assert status_kib(rec.monitor_pid, "RssAnon") < 300
    # it holds nothing of the starter's: its stdio is /dev/null, not our pipes or terminal
    for fd in (0, 1, 2):
        assert os.readlink(f"/proc/{rec.monitor_pid}/fd/{fd}") == "/dev/null"
    c.stop(timeout=5)
    assert c.record.exit_code == 143


def test_python_monitor_when_asked(busybox, monkeypatch):
    monkeypatch.setenv("PYCONTAIN_MONITOR", "python")
    c = run_d(busybox, "sleep 60", init=True)
    assert b"pycontain.managed.monitor" in cmdline(c.record.monitor_pid)
    c.remove(force=True)


def test_log_lines_are_the_python_writers(busybox, tmp_path):
    # quotes, backslashes, control characters, invalid UTF-8, a line without its newline at the end
    data = b'plain\n"quoted" \\ back\n\ttab\x01\x1f\x7f\n\xff\xfe bad \xe2\x82 cut\n\xe2\x82\xac euro \xf0\x9f\x98\x80\nend'
    (tmp_path / "data").write_bytes(data)
    c = containers.run(rootfs=str(busybox), command=["cat", "/data"],
                       mounts=[Mount(str(tmp_path / "data"), "/data", read_only=True)])
    assert c.wait(timeout=10) == 0
    got = [(s, t) for s, t, _ in read_entries(c.record.log_path)]
    w = JsonFileWriter(str(tmp_path / "py.log"))
    w.write("stdout", data)
    w.close()
    assert got == [(s, t) for s, t, _ in read_entries(str(tmp_path / "py.log"))]
    # byte for byte the same lines but for the time
    mine = [json.loads(line) for line in open(c.record.log_path, "rb")]
    assert all(list(e) == ["log", "stream", "time"] for e in mine)
    with open(c.record.log_path, "rb") as f:
        first = f.readline()
    assert first.startswith(b'{"log": "plain\\n", "stream": "stdout", "time": "')
    t = mine[0]["time"]
    assert len(t) == 30 and t.endswith("Z") and abs(time.time() - time.mktime(
        time.strptime(t[:19], "%Y-%m-%dT%H:%M:%S")) + time.timezone) < 60
    c.remove()


def test_a_long_line_is_cut_at_16k(busybox):
    c = run_d(busybox, "head -c 40000 /dev/zero | tr '\\0' a; echo")
    assert c.wait(timeout=10) == 0
    entries = [t for _, t, _ in read_entries(c.record.log_path)]
    assert "".join(entries) == "a" * 40000 + "\n"
    assert all(len(t) <= 16384 for t in entries) and len(entries) == 3
    c.remove()


def test_log_rotation_max_size_and_max_file(busybox):
    c = run_d(busybox, "i=0; while [ $i -lt 300 ]; do echo line $i; i=$((i+1)); done",
              log_opts=["max-size=1k", "max-file=3"])
    assert c.wait(timeout=10) == 0
    path = c.record.log_path
    files = log_files(path)
    assert files == [f"{path}.2", f"{path}.1", path]
    assert not os.path.exists(f"{path}.3")
    for f in files[:-1]:
        # rotated once it reached max-size: over by less than one line
        assert 1024 <= os.path.getsize(f) < 1024 + 100
    texts = [t for _, t, _ in read_entries(path)]
    n = len(texts)
    assert 0 < n < 300 and texts == [f"line {i}\n" for i in range(300 - n, 300)]
    # `logs` reads the rotated files as the Python writer's
    assert c.logs().decode().splitlines()[-1] == "line 299"
    c.remove()


def test_max_file_1_truncates(busybox):
    c = run_d(busybox, "i=0; while [ $i -lt 200 ]; do echo line $i; i=$((i+1)); done",
              log_opts=["max-size=1k"])
    assert c.wait(timeout=10) == 0
    assert log_files(c.record.log_path) == [c.record.log_path]
    assert os.path.getsize(c.record.log_path) < 1024
    c.remove()


def test_exit_status_time_and_events(busybox, store_root):
    before = time.time()
    c = run_d(busybox, "echo out; exit 7")
    assert c.wait(timeout=10) == 7
    rec = c.reload().record
    assert rec.state == "exited" and rec.exit_code == 7 and not rec.oom_killed
    assert before <= rec.started <= rec.finished <= time.time()
    # the monitor is gone once its teardown is done, and it leaves no exit file behind
    assert wait_for(lambda: c.reload().record.monitor_pid is None)
    assert not os.path.exists(os.path.join(c.container_dir, "exit"))
    die = [e for e in map(json.loads, open(store_root / "events.jsonl"))
           if e["Actor"]["ID"] == c.id and e["Action"] == "die"]
    assert len(die) == 1
    e = die[0]
    assert e["Type"] == "container" and e["scope"] == "local"
    assert e["Actor"]["Attributes"] == {"name": c.name, "image": str(busybox), "exitCode": "7"}
    assert e["timeNano"] // 1_000_000_000 == e["time"] and abs(e["time"] - rec.finished) < 1
    c.remove()


def test_the_exit_is_recorded_before_the_teardown_ends(busybox):
    """The exit file is merged by whoever reads the record: `wait` and
    `stop` do not wait for the Python teardown that follows."""
    c = run_d(busybox, "sleep 60", init=True)
    pid = c.record.monitor_pid
    os.kill(pid, signal.SIGSTOP)   # the monitor stops after its exit file (below), as if slow to tear down
    try:
        cdir = c.container_dir
        with open(os.path.join(cdir, "exit.tmp"), "w") as f:
            f.write('{"exit_code": 42, "finished_ns": %d, "oom_killed": false, "log_lines_dropped": 0}'
                    % time.time_ns())
        os.rename(os.path.join(cdir, "exit.tmp"), os.path.join(cdir, "exit"))
        rec = containers.get(c.id).record
        assert rec.state == "exited" and rec.exit_code == 42 and rec.monitor_pid == pid
        assert containers.get(c.id).wait(timeout=1) == 42
        # rm does not wait for that teardown (here: forever): it ends it and does what is left
        cgroups = c.record.exec_profile["cgroups"]
        t = time.monotonic()
        c.remove()
        assert time.monotonic() - t < 5
        assert not alive(pid)
        assert not any(os.path.isdir(d) for d in cgroups)
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_oom_is_recorded_with_its_event(busybox, store_root):
    c = run_d(busybox, "x=$(head -c 64m /dev/zero | tr '\\0' a); echo never", memory="8m", memory_swap="8m")
    code = c.wait(timeout=30)
    rec = c.reload().record
    assert rec.oom_killed, (code, rec)
    actions = [e["Action"] for e in map(json.loads, open(store_root / "events.jsonl")) if e["Actor"]["ID"] == c.id]
    assert actions[-2:] == ["oom", "die"]
    c.remove()


def test_signals_to_the_monitor_go_to_the_container(busybox):
    c = run_d(busybox, "trap 'echo got TERM; exit 9' TERM; echo ready; while :; do sleep 0.05; done")
    assert wait_for(lambda: b"ready" in c.logs())
    os.kill(c.record.monitor_pid, signal.SIGTERM)
    assert c.wait(timeout=10) == 9
    assert b"got TERM" in c.logs()
    c.remove()


def test_attach_input_output_and_end_of_input(busybox):
    c = run_d(busybox, "cat; echo cat-ended", stdin_open=True)
    s = c.attach_socket()
    try:
        s.sendall(attach.frame("d", b"hello monitor\n"))
        got = b""
        s.settimeout(10)
        while b"hello monitor\n" not in got:
            got += s.recv(4096)
        s.sendall(attach.frame("e", b""))
        while b"cat-ended" not in got:
            data = s.recv(4096)
            if not data:
                break
            got += data
        assert b"cat-ended" in got
        # the container ended: the monitor closes the connection
        while s.recv(4096):
            pass
    finally:
        s.close()
    assert c.wait(timeout=10) == 0
    assert c.logs() == b"hello monitor\ncat-ended\n"
    c.remove()


def test_attach_resizes_the_terminal(busybox):
    c = run_d(busybox, "read line; stty size; sleep 0.2", tty=True, stdin_open=True)
    s = c.attach_socket()
    try:
        s.sendall(attach.frame("w", struct.pack("HHHH", 33, 111, 0, 0)))
        s.sendall(attach.frame("d", b"go\r"))
        assert c.wait(timeout=10) == 0
    finally:
        s.close()
    assert b"33 111" in c.logs()
    c.remove()


def test_only_the_owner_may_attach(busybox):
    c = run_d(busybox, "sleep 60", init=True)
    os.chmod(c.container_dir, 0o711)
    os.chmod(os.path.join(c.container_dir, attach.SOCKET_NAME), 0o777)
    # the store root's directories are 0700: another user reaches the socket through our descriptor
    dfd = os.open(c.container_dir, os.O_RDONLY | os.O_DIRECTORY)
    pid = os.fork()
    if pid == 0:   # another user connects: the monitor closes at once
        code = 1
        try:
            os.setgid(65534)
            os.setuid(65534)
            ctypes.CDLL(None).prctl(4, 1)   # PR_SET_DUMPABLE: /proc/self/fd stays ours after setuid
            s = socket.socket(socket.AF_UNIX)
            s.connect(f"/proc/self/fd/{dfd}/{attach.SOCKET_NAME}")
            s.settimeout(5)
            code = 0 if s.recv(1) == b"" else 2
        finally:
            os._exit(code)
    os.close(dfd)
    _, status = os.waitpid(pid, 0)
    os.chmod(c.container_dir, 0o700)
    assert os.waitstatus_to_exitcode(status) == 0
    # the owner is served
    s = c.attach_socket()
    s.sendall(attach.frame("d", b""))
    s.close()
    assert c.reload().record.state == "running"
    c.remove(force=True)


def test_a_killed_monitor_takes_the_container_with_it(busybox, store_root):
    c = run_d(busybox, "sleep 60", init=True)
    rec = c.record
    cgroups = rec.exec_profile["cgroups"]
    assert cgroups and all(os.path.isdir(d) for d in cgroups)
    os.kill(rec.monitor_pid, signal.SIGKILL)
    assert wait_for(lambda: not alive(rec.pid))   # pdeathsig
    rec = c.reload().record
    assert rec.state == "exited" and rec.exit_code == EXIT_MONITOR_LOST and rec.monitor_pid is None
    assert "monitor ended unexpectedly" in rec.error
    assert wait_for(lambda: not any(os.path.isdir(d) for d in cgroups))
    c.remove()


def test_restarts_keep_the_same_monitor_with_dockers_backoff(busybox):
    start = time.monotonic()
    c = run_d(busybox, "echo run; exit 3", restart_policy="on-failure:3")
    monitor = c.record.monitor_pid
    assert c.wait(timeout=10) == 3
    assert wait_for(lambda: c.reload().record.state == "exited" and c.record.restart_count == 3, 20)
    # 0.1 + 0.2 + 0.4 s of backoff at least
    assert time.monotonic() - start >= 0.7
    assert c.logs() == b"run\n" * 4
    rec = c.record
    assert rec.exit_code == 3 and rec.monitor_pid is None
    c.remove()
    # the same pid ran all four: checked while it restarts
    c = run_d(busybox, "sleep 0.2; exit 1", restart_policy="always")
    monitor = c.record.monitor_pid
    pids = set()
    for _ in range(3):
        assert wait_for(lambda: c.reload().record.state == "running" and c.record.pid not in pids, 10)
        pids.add(c.record.pid)
        assert c.record.monitor_pid == monitor and parent_of(c.record.pid) == monitor
    c.stop(timeout=5)
    assert c.record.state == "exited"
    c.remove()


def test_rm_flag_removes_the_container_after_its_exit(busybox, store_root):
    c = run_d(busybox, "exit 0", auto_remove=True)
    cid = c.id
    assert wait_for(lambda: not (store_root / "containers" / cid).exists(), 10)
    with pytest.raises(containers.NoSuchContainer):
        containers.get(cid)


def test_stop_start_rm_f_and_restart_under_the_c_monitor(busybox):
    c = run_d(busybox, "sleep 60", init=True)
    c.stop(timeout=5)
    assert c.record.state == "exited" and c.record.exit_code == 143
    # started again at once, while the last monitor may still tear down
    c.start()
    assert c.record.state == "running" and cmdline(c.record.monitor_pid)[0] == b"pycontain-monitor"
    c.restart(timeout=5)
    assert c.record.state == "running"
    c.remove(force=True)
    with pytest.raises(containers.NoSuchContainer):
        containers.get(c.id)


def test_a_starter_with_threads_does_not_fork_and_still_gets_a_c_monitor(busybox):
    """Forking a threaded Python process is not safe (a lock another thread
    holds stays held in the child): a new interpreter launches instead."""
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        c = run_d(busybox, "echo from-threaded; sleep 60", init=True)
        rec = c.record
        assert cmdline(rec.monitor_pid)[0] == b"pycontain-monitor" and parent_of(rec.pid) == rec.monitor_pid
        assert wait_for(lambda: c.logs() == b"from-threaded\n")
        c.remove(force=True)
    finally:
        stop.set()
        t.join()


def test_health_checks_run_every_interval(busybox, store_root):
    """The monitor runs `python -m pycontain.managed.health STORE ID` (one
    probe, which records itself) every Interval while the container runs: a
    real check turns healthy, then unhealthy once it fails Retries times."""
    c = containers.run(rootfs=str(busybox), command=["sh", "-c", "touch /ok; sleep 60"], init=True,
                       healthcheck={"Test": ["CMD-SHELL", "test -e /ok"], "Interval": 200_000_000, "Retries": 2})
    monitor = c.record.monitor_pid
    assert cmdline(monitor)[0] == b"pycontain-monitor"
    probes = set()

    def probing():
        with open(f"/proc/{monitor}/task/{monitor}/children") as f:
            for pid in f.read().split():
                try:
                    argv = cmdline(int(pid))
                except OSError:
                    continue
                if argv[1:] == [b"-m", b"pycontain.managed.health", str(store_root).encode(), c.id.encode()]:
                    probes.add(int(pid))
        return len(probes) >= 2
    assert wait_for(probing, 10, interval=0.005)
    assert wait_for(lambda: (c.reload().health or {}).get("Status") == "healthy", 15), c.health
    c.exec_run(["rm", "/ok"])
    assert wait_for(lambda: c.reload().health["Status"] == "unhealthy", 15), c.health
    assert c.health["FailingStreak"] >= 2 and c.health["Log"][-1]["ExitCode"] == 1
    assert c.record.monitor_pid == monitor   # the same C monitor all along
    c.remove(force=True)


def test_a_client_attached_before_the_start_sees_the_first_output(busybox):
    """run -t, start -ai: the CLI hands start() one end of a socketpair, the
    C monitor serves it as an attach client from the start (input too), and
    closes it at the exit."""
    c = containers.create(rootfs=str(busybox), command=["sh", "-c", "echo first; read line; echo got $line"],
                          stdin_open=True)
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        c.start(attach_sock=theirs)
    finally:
        theirs.close()
    assert cmdline(c.record.monitor_pid)[0] == b"pycontain-monitor"
    mine.settimeout(10)
    got = b""
    while b"first\n" not in got:
        data = mine.recv(4096)
        assert data, got
        got += data
    mine.sendall(attach.frame("d", b"hello\n"))
    while True:
        data = mine.recv(4096)
        if not data:
            break
        got += data
    mine.close()
    assert got == b"first\ngot hello\n"
    assert c.wait(timeout=10) == 0
    c.remove()


def test_a_terminals_prompt_is_logged_at_once(busybox):
    """A terminal's line without its newline (a shell's prompt) is in the
    log as soon as it is written, as the Python monitor's flush_partial;
    a character cut between two writes is not split."""
    c = run_d(busybox, "printf 'prompt> '; printf '\\303'; sleep 0.3; printf '\\251!'; sleep 60", tty=True)
    assert wait_for(lambda: b"prompt> " in c.logs(), 10)
    assert wait_for(lambda: "é!" in c.logs().decode("utf-8", "replace"), 10)
    assert "\ufffd" not in c.logs().decode("utf-8", "replace")
    c.remove(force=True)


def test_a_restarted_container_keeps_its_open_stdin(busybox):
    c = run_d(busybox, "read line; echo got $line; exit 1", stdin_open=True, restart_policy="on-failure:1")
    for n in (0, 1):
        assert wait_for(lambda n=n: c.reload().record.state == "running" and c.record.restart_count == n, 10)
        s = c.attach_socket()
        s.sendall(attach.frame("d", f"run{n}\n".encode()))
        s.settimeout(10)
        got = b""
        while f"got run{n}".encode() not in got:
            data = s.recv(4096)
            assert data, got
            got += data
        s.close()
    assert wait_for(lambda: c.reload().record.state == "exited", 10)
    assert c.logs() == b"got run0\ngot run1\n"
    c.remove()


def test_a_container_that_closed_its_output_still_gets_signals_and_attach(busybox):
    c = run_d(busybox, "echo ready; exec >/dev/null 2>&1; trap 'exit 9' TERM; while :; do sleep 0.05; done")
    assert wait_for(lambda: c.logs() == b"ready\n")
    time.sleep(0.2)   # its output is closed now: the monitor waits for its end
    s = c.attach_socket()
    try:
        os.kill(c.record.monitor_pid, signal.SIGTERM)
        assert c.wait(timeout=10) == 9
        s.settimeout(10)
        assert s.recv(4096) == b""   # the monitor closes the attached at the end
    finally:
        s.close()
    c.remove()
