"""Attaching, side by side with dockerd 20.10 under a real pseudo-terminal:
the detach keys (ctrl-p ctrl-q, --detach-keys) from `run -it`, `attach`,
`start -ai` and `exec -it`; `run -a`; `start -i`. The same keys go to both
CLIs; what a user sees is compared: the exit status, what is printed on
detach, that the container runs on."""
import fcntl
import os
import select
import struct
import subprocess
import sys
import termios
import time
import pty

import pytest

from pycontain import containers

from .conftest import DOCKER_CLIENT, pycontain

pytestmark = pytest.mark.usefixtures("clean_both")


def _sides(dockerd):
    return (("docker", [DOCKER_CLIENT, "-H", f"unix://{dockerd.sock}"], dockerd.docker),
            ("pycontain", [sys.executable, "-m", "pycontain"], pycontain))


class Term:
    """A CLI with a pseudo-terminal as its stdin, stdout and stderr."""

    def __init__(self, argv, env=None, rows=24, cols=80):
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                                     env=env)
        os.close(slave)
        self.seen = b""

    def read_until(self, needle: bytes, then: bytes = b"", timeout=15) -> bytes:
        """Reads until needle shows (and `then` after it), answering busybox
        ash's cursor-position query as a terminal does; returns what was read."""
        end = time.monotonic() + timeout
        start = len(self.seen)

        def found():
            at = self.seen.find(needle, start)
            return at >= 0 and self.seen.find(then, at + len(needle)) >= 0

        while not found():
            left = end - time.monotonic()
            if left <= 0 or not select.select([self.master], [], [], left)[0]:
                raise AssertionError(f"{needle!r} not seen in {self.seen[start:]!r}")
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                break
            if not chunk:
                break
            if b"\x1b[6n" in chunk:
                os.write(self.master, b"\x1b[1;1R")
            self.seen += chunk
        return self.seen[start:]

    def write(self, data: bytes):
        os.write(self.master, data)

    def finish(self, timeout=15) -> tuple:
        """(exit status, what it printed until it ended)."""
        start = len(self.seen)
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                self.close()
                raise AssertionError(f"still running; printed {self.seen[start:]!r}")
            if select.select([self.master], [], [], min(left, 0.1))[0]:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:
                    chunk = b""
                self.seen += chunk
                if chunk:
                    continue
            if self.proc.poll() is not None:
                break
        return self.proc.wait(), self.seen[start:]

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.master is not None:
            os.close(self.master)
            self.master = None


def _prompt(t: Term):
    """An empty line and the shell's prompt (a shell started before anyone
    attached printed its first prompt to nobody)."""
    for _ in range(30):   # until the client is attached: a line typed before may go nowhere
        time.sleep(0.2)
        t.write(b"\r")
        try:
            t.read_until(b"# ", timeout=0.5)
            return
        except AssertionError:
            continue
    raise AssertionError(f"no prompt: {t.seen!r}")


def _status(side, name) -> str:
    r = side("inspect", "-f", "{{.State.Status}}", name)
    return r.stdout.strip()


def _keys(t: Term, *keys):
    """Keys typed one after another, as a user types them (docker's CLI
    spots the detach keys only when each comes in a read of its own)."""
    for k in keys:
        t.write(k)
        time.sleep(0.2)


def _detach_and_reattach(dockerd, run_argv, keys=(b"\x10", b"\x11"), name="dk"):
    """run_argv (it names the container NAME) detached by keys on each side:
    {side: (status, what was printed on detach)}; the container runs on, a
    new attach ends it, and its status is attach's."""
    printed = {}
    for label, argv, side in _sides(dockerd):
        t = Term([*argv, *run_argv])
        try:
            _prompt(t)
            t.write(b"echo one$((1+1))\r")
            t.read_until(b"one2", then=b"# ")
            _keys(t, *keys)
            code, out = t.finish()
        finally:
            t.close()
        printed[label] = (code, out)
        assert _status(side, name) == "running", label
        t = Term([*argv, "attach", name])
        try:
            _prompt(t)
            t.write(b"exit 4\r")
            code, _ = t.finish()
        finally:
            t.close()
        assert code == 4, label
    return printed


def test_run_it_detaches_with_ctrl_p_ctrl_q_and_the_container_runs_on(dockerd):
    printed = _detach_and_reattach(dockerd, ("run", "-it", "--name", "dk", "--network", "none", "busybox", "sh"))
    # docker's run says nothing on detach and ends with 0
    for code, out in printed.values():
        assert code == 0 and b"escape" not in out, printed
    for label, _, side in _sides(dockerd):
        assert _status(side, "dk") == "exited", label


def test_run_rm_it_detached_is_removed_when_it_exits(dockerd):
    _detach_and_reattach(dockerd, ("run", "--rm", "-it", "--name", "dk", "--network", "none", "busybox", "sh"))
    for label, _, side in _sides(dockerd):
        deadline = time.monotonic() + 10
        while side("inspect", "dk").returncode == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert side("inspect", "dk").returncode == 1, label
    # and its directory goes with it (the monitor removes it just after the record)
    containers_dir = containers.shared_store().dir
    deadline = time.monotonic() + 10
    while any(containers_dir.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)


def test_detach_keys_flag(dockerd):
    for spec, keys in (("ctrl-x,y", (b"\x18", b"y")), ("ctrl-a", (b"\x01",))):
        printed = _detach_and_reattach(
            dockerd, ("run", "-it", "--detach-keys", spec, "--name", "dk", "--network", "none", "busybox", "sh"),
            keys)
        assert printed["docker"][0] == printed["pycontain"][0] == 0
        for _, _, side in _sides(dockerd):
            side("rm", "-f", "dk")


def test_the_first_detach_key_then_another_passes_both_through(dockerd):
    for label, argv, _ in _sides(dockerd):
        t = Term([*argv, "run", "--rm", "-it", "--network", "none", "busybox", "sh", "-c",
                  "stty -icanon -echo; head -c 2 | od -An -tx1"])
        try:
            time.sleep(1)
            _keys(t, b"\x10", b"x")
            code, out = t.finish()
        finally:
            t.close()
        assert code == 0 and b"10 78" in out, (label, out)


def test_attach_detaches_with_docker_s_line_and_status(dockerd):
    printed = {}
    for label, argv, side in _sides(dockerd):
        assert side("run", "-dit", "--name", "at", "--network", "none", "busybox", "sh").returncode == 0
        t = Term([*argv, "attach", "at"])
        try:
            _prompt(t)
            _keys(t, b"\x10", b"\x11")
            code, out = t.finish()
        finally:
            t.close()
        # the last line, after what the shell echoed
        printed[label] = (code, out.replace(b"\r", b"").endswith(b"read escape sequence\n"))
        assert _status(side, "at") == "running", label
    # docker 20.10: "read escape sequence" and status 1
    assert printed["docker"] == printed["pycontain"] == (1, True), printed


def test_start_ai_detaches_and_runs_on(dockerd):
    printed = {}
    for label, argv, side in _sides(dockerd):
        assert side("create", "-it", "--name", "st", "--network", "none", "busybox", "sh").returncode == 0
        t = Term([*argv, "start", "-ai", "st"])
        try:
            _prompt(t)
            t.write(b"echo two$((1+2))\r")
            t.read_until(b"two3", then=b"# ")
            _keys(t, b"\x10", b"\x11")
            code, out = t.finish()
        finally:
            t.close()
        printed[label] = (code, b"escape" in out)
        assert _status(side, "st") == "running", label
    assert printed["docker"] == printed["pycontain"] == (0, False), printed


def _both(dockerd, *argv, **kw):
    return dockerd.docker(*argv, **kw), pycontain(*argv, **kw)


def test_run_attach_names_the_streams(dockerd):
    script = ("run", "--rm", "--network", "none")
    cmd = ("busybox", "sh", "-c", "cat; echo out; echo err >&2; exit 2")
    for flags, stdin in ((("-a", "stdout"), None), (("-a", "STDERR"), None), (("-i", "-a", "stdout"), "IN"),
                         (("-a", "stdin", "-a", "stdout"), "IN"), (("-a", "stdout", "-a", "stderr"), None)):
        d, p = _both(dockerd, *script, *flags, *cmd, stdin_data=stdin or "")
        assert (p.returncode, p.stdout, p.stderr) == (d.returncode, d.stdout, d.stderr), flags
    # only stdin: docker prints the container's id and ends with 0
    d, p = _both(dockerd, *script, "-a", "stdin", *cmd, stdin_data="")
    assert d.returncode == p.returncode == 0
    assert len(d.stdout.strip()) == len(p.stdout.strip()) == 64
    # a stream docker does not know, and -a with -d: docker's errors and statuses
    d, p = _both(dockerd, *script, "-a", "bogus", "busybox", "true")
    assert d.returncode == p.returncode == 125
    assert d.stderr.splitlines()[0] == p.stderr.splitlines()[0]
    d, p = _both(dockerd, "run", "-d", "-a", "stdout", "--network", "none", "busybox", "true")
    assert d.returncode == p.returncode == 1
    assert d.stderr.strip() == p.stderr.strip().removeprefix("pycontain: ") == "Conflicting options: -a and -d"


def test_start_interactive_feeds_stdin_and_returns_the_status(dockerd):
    for side in (dockerd.docker, pycontain):
        assert side("create", "-i", "--name", "si", "--network", "none", "busybox", "sh", "-c",
                    "cat; echo e >&2; exit 3").returncode == 0
        assert side("create", "--name", "sn", "--network", "none", "busybox", "true").returncode == 0
    for argv, data in ((("start", "-i", "si"), "hello"), (("start", "-ai", "si"), "again"),
                       (("start", "-i", "sn"), "x")):
        d, p = _both(dockerd, *argv, stdin_data=data)
        assert (p.returncode, p.stdout, p.stderr) == (d.returncode, d.stdout, d.stderr), argv


def test_exec_it_detaches_and_the_command_runs_on(dockerd):
    printed = {}
    for label, argv, side in _sides(dockerd):
        assert side("run", "-d", "--name", "ex", "--network", "none", "busybox", "sleep", "60").returncode == 0
        t = Term([*argv, "exec", "-it", "ex", "sh"])
        try:
            _prompt(t)
            _keys(t, b"\x10", b"\x11")
            code, out = t.finish()
        finally:
            t.close()
        printed[label] = (code, out.replace(b"\r", b"").endswith(b"read escape sequence\n"))
        # the shell goes on in the container
        r = side("exec", "ex", "ps", "-o", "comm")
        assert r.stdout.split().count("sh") == 1, (label, r.stdout)
        # another exec -it with its own keys, ended by its command: its status
        t = Term([*argv, "exec", "-it", "--detach-keys", "ctrl-x", "ex", "sh"])
        try:
            _prompt(t)
            t.write(b"exit 6\r")
            code, _ = t.finish()
        finally:
            t.close()
        assert code == 6, label
    assert printed["docker"] == printed["pycontain"] == (1, True), printed
