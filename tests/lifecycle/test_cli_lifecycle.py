"""The lifecycle verbs as a user types them: separate processes, docker's
flags, columns and messages."""
import fcntl
import json
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import time

import pytest

from pycontain import containers

from .conftest import monitor_pids, pycontain, wait_for

pytestmark = pytest.mark.usefixtures("managed")


def run_d(busybox, *args, cmd=("sleep", "60")):
    r = pycontain("run", "-d", "--network", "none", *args, "--rootfs", str(busybox), *cmd)
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    assert len(cid) == 64 and all(c in "0123456789abcdef" for c in cid)
    return cid


def test_detached_container_outlives_the_cli_and_its_exit_is_recorded(busybox, store_root):
    cid = run_d(busybox, "--name", "bg", cmd=("sh", "-c", "sleep 0.7; echo done; exit 4"))
    # the CLI has ended; the container runs on under its monitor
    rec = containers.get("bg").record
    assert rec.state == "running" and os.path.exists(f"/proc/{rec.pid}")
    assert monitor_pids(store_root) == {rec.monitor_pid}
    r = pycontain("wait", "bg")
    assert (r.returncode, r.stdout) == (0, "4\n")
    r = pycontain("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}} {{.Name}}", cid[:6])
    assert r.stdout == "exited 4 /bg\n"
    assert pycontain("logs", "bg").stdout == "done\n"
    assert wait_for(lambda: not monitor_pids(store_root))


def test_ps_columns_quiet_filter_and_format(busybox):
    cid = run_d(busybox, "--name", "web")
    assert pycontain("create", "--name", "idle", "--rootfs", str(busybox), "true").returncode == 0
    out = pycontain("ps").stdout.splitlines()
    assert out[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    assert len(out) == 2 and out[1].startswith(cid[:12]) and out[1].endswith("web")
    assert '"sleep 60"' in out[1] and "Up " in out[1]
    assert pycontain("ps", "-q").stdout == cid[:12] + "\n"
    assert len(pycontain("ps", "-aq").stdout.split()) == 2
    assert pycontain("ps", "-a", "--filter", "status=created", "--format", "{{.Names}}").stdout == "idle\n"
    assert pycontain("ps", "--no-trunc", "--format", "{{.ID}}\\t{{.State}}").stdout == f"{cid}\trunning\n"
    table = pycontain("ps", "-a", "--format", "table {{.Names}}\t{{.Status}}").stdout.splitlines()
    assert table[0].split() == ["NAMES", "STATUS"] and sorted(ln.split()[0] for ln in table[1:]) == ["idle", "web"]
    j = json.loads(pycontain("ps", "--json").stdout)
    assert j[0]["Id"] == cid and j[0]["State"]["Running"] is True


def test_invalid_transitions_give_dockers_errors(busybox):
    run_d(busybox, "--name", "up")
    assert pycontain("create", "--name", "down", "--rootfs", str(busybox), "true").returncode == 0
    cases = [
        (("start", "nothere"), "pycontain: no such container: nothere"),
        (("unpause", "up"), "is not paused"),
        (("exec", "down", "true"), "is not running"),
        (("kill", "down"), "is not running"),
        (("rm", "up"), "container is running: stop the container before removing or force remove"),
        (("run", "--name", "up", "--rootfs", str(busybox), "true"), 'the container name "/up" is already in use'),
    ]
    for args, message in cases:
        r = pycontain(*args)
        assert r.returncode != 0 and message in r.stderr, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1
    assert pycontain("start", "up").returncode == 0  # already running: fine, as in docker
    assert pycontain("stop", "down").returncode == 0  # not running: fine, as in docker
    assert containers.get("up").status == "running"


def test_stop_kill_restart_rm(busybox):
    run_d(busybox, "--name", "s1", cmd=("sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"))
    run_d(busybox, "--name", "s2")
    time.sleep(0.2)
    r = pycontain("stop", "-t", "5", "s1", "s2")
    assert (r.returncode, r.stdout) == (0, "s1\ns2\n")
    assert containers.get("s1").record.exit_code == 0      # it handled SIGTERM
    r = pycontain("restart", "-t", "1", "s2")
    assert r.returncode == 0 and containers.get("s2").status == "running"
    assert pycontain("kill", "-s", "KILL", "s2").returncode == 0
    assert pycontain("wait", "s2").stdout == "137\n"
    r = pycontain("rm", "s1", "s2", "nope")
    assert r.returncode == 1 and r.stdout == "s1\ns2\n" and "no such container: nope" in r.stderr
    assert containers.list(all=True) == []


def test_rm_force_a_running_container(busybox, store_root):
    cid = run_d(busybox)
    pid = containers.get(cid).record.pid
    assert pycontain("rm", "-f", cid[:12]).returncode == 0
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    assert not (store_root / "containers" / cid).exists()


def test_two_clis_stop_and_remove_the_same_container_at_once(busybox, store_root):
    for round_ in range(3):
        cid = run_d(busybox, "--name", f"race{round_}")
        procs = [subprocess.Popen([sys.executable, "-m", "pycontain", "stop", "-t", "1", cid],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        results = [p.communicate(timeout=30) + (p.returncode,) for p in procs]
        assert all(code == 0 for _, _, code in results), results
        assert containers.get(cid).status == "exited"
        procs = [subprocess.Popen([sys.executable, "-m", "pycontain", "rm", "-f", cid],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        results = [p.communicate(timeout=30) + (p.returncode,) for p in procs]
        codes = sorted(code for _, _, code in results)
        assert codes in ([0, 0], [0, 1]), results
        for _out, err, code in results:
            if code:
                assert "no such container" in err
        assert containers.list(all=True) == []
        assert not (store_root / "containers" / cid).exists()


def test_logs_follow_tail_timestamps_since(busybox):
    run_d(busybox, "--name", "talk", cmd=("sh", "-c", "for i in 1 2 3 4; do echo line$i; sleep 0.25; done; echo bye >&2"))
    follow = subprocess.Popen([sys.executable, "-m", "pycontain", "logs", "-f", "talk"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = follow.stdout.readline()
    assert first == "line1\n"
    out, err = follow.stdout.read(), follow.stderr.read()  # EOF: it ended by itself with the container
    assert follow.wait(timeout=20) == 0
    assert first + out == "line1\nline2\nline3\nline4\n" and err == "bye\n"
    assert pycontain("logs", "--tail", "2", "talk").stdout == "line4\n"
    assert pycontain("logs", "--tail", "2", "talk").stderr == "bye\n"
    stamped = pycontain("logs", "-t", "talk").stdout.splitlines()
    assert len(stamped) == 4 and stamped[0].split(" ", 1)[1] == "line1" and stamped[0][10] == "T"
    assert pycontain("logs", "--since", "1h", "talk").stdout.count("line") == 4
    assert pycontain("logs", "--since", str(time.time() + 60), "talk").stdout == ""


def test_exec_flags(busybox):
    run_d(busybox, "--name", "ex", "-h", "exhost", "-e", "A=1")
    r = pycontain("exec", "-e", "B=2", "-u", "user", "-w", "/tmp", "ex", "sh", "-c",
                  "echo $A$B; id -u; pwd; hostname; cat /proc/1/cmdline")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:4] == ["12", "1000", "/tmp", "exhost"] and "sleep" in r.stdout
    assert pycontain("exec", "ex", "sh", "-c", "exit 7").returncode == 7
    r = pycontain("exec", "ex", "nope")
    assert r.returncode == 127 and "executable file not found" in r.stderr
    r = pycontain("exec", "-i", "ex", "cat", input="through stdin")
    assert r.stdout == "through stdin"


def _pty_run(args, rows=30, cols=100):
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "pycontain", *args], stdin=slave, stdout=slave, stderr=slave,
                            start_new_session=True)
    os.close(slave)
    return proc, master


def _read_until(master, needle, timeout=10):
    """Reads the terminal until needle shows, answering busybox ash's
    cursor-position query as a real terminal does."""
    import select

    buf = b""
    end = time.monotonic() + timeout
    while needle not in buf:
        left = end - time.monotonic()
        if left <= 0 or not select.select([master], [], [], left)[0]:
            raise AssertionError(f"{needle!r} not seen in {buf!r}")
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if b"\x1b[6n" in chunk:
            os.write(master, b"\x1b[1;1R")
        buf += chunk
    return buf


def test_run_it_through_a_real_pty_with_window_size(busybox):
    proc, master = _pty_run(["run", "-it", "--rm", "--network", "none", "--rootfs", str(busybox), "sh"])
    try:
        _read_until(master, b"# ")  # the prompt
        os.write(master, b"stty size; tty; echo marker$((40+2))\r")
        out = _read_until(master, b"marker42")
        assert b"30 100" in out
        assert b"/dev/pts/0" in out  # a terminal of the container's own devpts
        # the user's terminal is resized: the container's follows (SIGWINCH)
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        os.kill(proc.pid, signal.SIGWINCH)
        time.sleep(0.2)
        os.write(master, b"stty size; echo again$((1+1))\r")
        assert b"40 120" in _read_until(master, b"again2")
        os.write(master, b"exit 5\r")
        assert proc.wait(timeout=10) == 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def test_exec_it_through_a_real_pty(busybox):
    run_d(busybox, "--name", "tt", "-h", "ttyhost")
    proc, master = _pty_run(["exec", "-it", "tt", "sh"], rows=24, cols=80)
    try:
        _read_until(master, b"# ")
        os.write(master, b"hostname; stty size; tty; echo $((6*7))x\r")
        out = _read_until(master, b"42x")
        assert b"ttyhost" in out and b"24 80" in out and b"/dev/pts/" in out
        os.write(master, b"exit 3\r")
        assert proc.wait(timeout=10) == 3
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def test_run_rm_and_detached_rm(busybox, store_root):
    r = pycontain("run", "--rm", "--rootfs", str(busybox), "sh", "-c", "echo fg; exit 2")
    assert (r.returncode, r.stdout) == (2, "fg\n")
    r = pycontain("run", "--rootfs", str(busybox), "no-such")
    assert r.returncode == 127
    assert pycontain("ps", "-a", "--format", "{{.Status}}").stdout.startswith("Exited (127) ")
    cid = run_d(busybox, "--rm", cmd=("true",))
    assert wait_for(lambda: not (store_root / "containers" / cid).exists())
    assert pycontain("ps", "-aq", "--filter", f"id={cid}").stdout == ""


def test_restart_policy_flag(busybox):
    run_d(busybox, "--name", "flaky", "--restart", "on-failure:1", cmd=("sh", "-c", "exit 1"))
    assert wait_for(lambda: containers.get("flaky").record.restart_count == 1
                    and containers.get("flaky").status == "exited", 10)
    r = pycontain("inspect", "-f", "{{.RestartCount}} {{.HostConfig.RestartPolicy.Name}} "
                  "{{.HostConfig.RestartPolicy.MaximumRetryCount}}", "flaky")
    assert r.stdout == "1 on-failure 1\n"
    r = pycontain("run", "-d", "--restart", "maybe", "--rootfs", str(busybox), "true")
    assert r.returncode == 125 and "invalid restart policy" in r.stderr


def test_cp_both_directions(busybox, tmp_path):
    run_d(busybox, "--name", "files", cmd=("sh", "-c", "echo inside > /tmp/in.txt; ln -s /etc/shadow /tmp/link; sleep 60"))
    assert wait_for(lambda: containers.get("files").exec_run(["cat", "/tmp/in.txt"]).stdout == b"inside\n")
    assert pycontain("cp", "files:/tmp/in.txt", str(tmp_path)).returncode == 0
    assert (tmp_path / "in.txt").read_text() == "inside\n"
    host = tmp_path / "h.txt"
    host.write_text("from host\n")
    assert pycontain("cp", str(host), "files:/root/").returncode == 0
    assert containers.get("files").exec_run(["cat", "/root/h.txt"]).stdout == b"from host\n"
    # a symlink in the container is copied as a link, never followed to the host's file
    assert pycontain("cp", "files:/tmp/link", str(tmp_path / "link")).returncode == 0
    assert os.readlink(tmp_path / "link") == "/etc/shadow"
    # a stopped container: through its kept writable layer
    assert pycontain("stop", "-t", "0", "files").returncode == 0
    assert pycontain("cp", str(host), "files:/root/renamed.txt").returncode == 0
    assert pycontain("cp", "files:/root/renamed.txt", str(tmp_path / "back.txt")).returncode == 0
    assert (tmp_path / "back.txt").read_text() == "from host\n"
    r = pycontain("cp", "files:/missing", str(tmp_path))
    assert r.returncode != 0 and "could not find the file /missing" in r.stderr
    assert not (busybox / "root" / "renamed.txt").exists()


def test_inspect_top_stats_port_rename_prune_df(busybox):
    cid = run_d(busybox, "--name", "box")
    info = json.loads(pycontain("inspect", "box").stdout)
    assert info[0]["Id"] == cid and info[0]["State"]["Status"] == "running" and info[0]["Name"] == "/box"
    top = pycontain("top", "box").stdout.splitlines()
    assert top[0].split() == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert top[1].endswith("sleep 60")
    stats = pycontain("stats", "--no-stream").stdout.splitlines()
    assert stats[0].startswith("CONTAINER ID") and "box" in stats[1] and stats[1].split()[-1] == "1"
    assert pycontain("port", "box").stdout == ""
    assert pycontain("rename", "box", "crate").returncode == 0
    assert pycontain("ps", "--format", "{{.Names}}").stdout == "crate\n"
    df = pycontain("system", "df").stdout.splitlines()
    assert df[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    assert [line.split()[0] for line in df[1:]] == ["Images", "Containers", "Local"]   # docker's order
    assert df[2].split()[:3] == ["Containers", "1", "1"]
    assert pycontain("create", "--rootfs", str(busybox), "true").returncode == 0
    r = pycontain("container", "prune", "-f")
    assert r.stdout.startswith("Deleted Containers:") and "Total reclaimed space" in r.stdout
    assert pycontain("ps", "-aq").stdout.split() == [cid[:12]]
    assert pycontain("system", "prune", "-f").returncode == 0
    assert pycontain("ps", "-aq").stdout.split() == [cid[:12]]  # running ones stay


def _answer_on_a_pty(args, answer: bytes):
    """Runs the CLI on a real terminal, waits for docker's question, types answer."""
    proc, master = _pty_run(args)
    try:
        shown = _read_until(master, b"Are you sure you want to continue? [y/N] ")
        os.write(master, answer)
        rest = b""
        try:
            while chunk := os.read(master, 4096):
                rest += chunk
        except OSError:   # EIO: the CLI has ended and closed the terminal
            pass
        return proc.wait(timeout=30), shown.decode(), rest.decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


@pytest.mark.parametrize("verb", [("container", "prune"), ("system", "prune")])
def test_prune_verbs_ask_first_as_docker_does(busybox, verb):
    def ids():
        return set(pycontain("ps", "-aq").stdout.split())

    made = {pycontain("create", "--rootfs", str(busybox), "true").stdout.strip()[:12] for _ in range(2)}
    assert ids() == made
    # a terminal: n, an empty answer and docker's "yes" (only y counts for docker) keep everything
    for answer in (b"n\r", b"\r", b"yes\r"):
        status, shown, rest = _answer_on_a_pty(list(verb), answer)
        assert status == 0 and "Deleted" not in rest and ids() == made, (answer, shown, rest)
    if verb == ("container", "prune"):
        assert shown.endswith("WARNING! This will remove all stopped containers.\r\n"
                              "Are you sure you want to continue? [y/N] ")
    else:
        assert "WARNING! This will remove:\r\n  - all stopped containers\r\n" in shown
    # stdin not a terminal: docker still reads it; end of input or n is no, y is yes
    for stdin in ({"stdin": subprocess.DEVNULL}, {"input": "n\n"}):
        r = pycontain(*verb, **stdin)
        assert r.returncode == 0 and r.stdout.endswith("[y/N] ") and ids() == made, r
    status, _, rest = _answer_on_a_pty(list(verb), b"y\r")
    assert status == 0 and "Deleted Containers:" in rest and ids() == set()
    made = {pycontain("create", "--rootfs", str(busybox), "true").stdout.strip()[:12]}
    r = pycontain(*verb, input="y\n")
    assert r.returncode == 0 and "Deleted Containers:" in r.stdout and ids() == set()
    pycontain("create", "--rootfs", str(busybox), "true")
    r = pycontain(*verb, "-f", stdin=subprocess.DEVNULL)   # -f: no question
    assert r.stdout.startswith("Deleted Containers:") and ids() == set()


def test_a_reader_that_goes_away_ends_the_cli_quietly(busybox):
    """`ps | head`, `stats | head`: the reader is gone before the CLI writes
    (its end of the pipe is closed here first, so the write fails for sure)."""
    run_d(busybox, "--name", "piped")
    for args in (("ps", "--format", "{{.ID}} {{.Names}}"), ("stats",), ("stats", "--no-stream"), ("images",)):
        read_end, write_end = os.pipe()
        os.close(read_end)
        try:
            r = subprocess.run([sys.executable, "-m", "pycontain", *args], stdout=write_end, stderr=subprocess.PIPE,
                               text=True, timeout=30)
        finally:
            os.close(write_end)
        # a program SIGPIPE ended, as `docker ps | head` in a shell: 141, and not a word on stderr
        assert (r.returncode, r.stderr) == (141, ""), (args, r)


def test_foreground_run_proxies_signals_and_records_the_exit(busybox):
    proc = subprocess.Popen([sys.executable, "-m", "pycontain", "run", "--name", "fg", "--rootfs", str(busybox),
                             "sh", "-c", "trap 'echo got-term; exit 9' TERM; echo ready; while true; do sleep 0.05; done"],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "ready\n"
    assert containers.get("fg").status == "running"  # ps, exec, stop work from elsewhere meanwhile
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 9
    assert proc.stdout.read() == "got-term\n"
    rec = containers.get("fg").record
    assert (rec.state, rec.exit_code) == ("exited", 9)
    assert containers.get("fg").logs() == b"ready\ngot-term\n"


def test_attach_with_a_pty_resize_and_the_detach_keys(busybox):
    run_d(busybox, "-i", "-t", "--name", "att", cmd=("sh",))
    proc, master = _pty_run(["attach", "att"], rows=33, cols=90)
    try:
        # the shell started with nobody attached (its cursor-position query
        # went unanswered): an empty line first gets a fresh prompt
        time.sleep(0.3)
        os.write(master, b"\r")
        _read_until(master, b"# ")
        os.write(master, b"stty size; echo $((2+3))x\r")
        assert b"33 90" in _read_until(master, b"5x")
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 44, 111, 0, 0))
        os.kill(proc.pid, signal.SIGWINCH)
        time.sleep(0.2)
        os.write(master, b"stty size; echo $((3+3))y\r")
        assert b"44 111" in _read_until(master, b"6y")
        os.write(master, b"\x10\x11")  # ctrl-p ctrl-q: leave it running
        assert b"read escape sequence" in _read_until(master, b"read escape sequence")
        assert proc.wait(timeout=10) == 1   # docker 20.10's attach (tests/dockerref/test_attach_parity.py)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert containers.get("att").status == "running"
    assert b"5x" in containers.get("att").logs()  # a terminal's output is logged too
    proc, master = _pty_run(["attach", "att"])
    try:
        time.sleep(0.3)
        os.write(master, b"\r")
        _read_until(master, b"# ")
        os.write(master, b"exit 4\r")
        assert proc.wait(timeout=10) == 4  # the container ended: attach returns its status
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert containers.get("att").record.exit_code == 4
