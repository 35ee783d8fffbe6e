"""Attaching, side by side with dockerd 20.10 under a real pseudo-terminal:
the detach keys (ctrl-p ctrl-q, --detach-keys) from `run -it`, `attach`,
`start -ai` and `exec -it`; `run -a`; `start -i`. The same keys go to both
CLIs; what a user sees is compared: the exit status, what is printed on
detach, that the container runs on."""
import sys
import time

import pytest

from terminals import Term, prompt as _prompt, type_keys as _keys

from pycontain import containers

from .conftest import DOCKER_CLIENT, pycontain

pytestmark = pytest.mark.usefixtures("clean_both")


def _sides(dockerd):
    return (("docker", [DOCKER_CLIENT, "-H", f"unix://{dockerd.sock}"], dockerd.docker),
            ("pycontain", [sys.executable, "-m", "pycontain"], pycontain))


def _status(side, name) -> str:
    r = side("inspect", "-f", "{{.State.Status}}", name)
    return r.stdout.strip()


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
