"""pycontain-init and the hello-world program, as built (without libc) for this machine.

Both are the package's own static programs (src/init.c, src/hello.c on top of
src/rawsys.h). These tests run them for real: as pid 1 of a container, and
directly on the host (where init is a child subreaper instead of pid 1).
"""
import os
import signal
import subprocess
from importlib import resources

import pytest

from pycontain import Container
from pycontain._launch import init_program_fd

BIN = resources.files("pycontain") / "_bin"
INIT = str(BIN / "pycontain-init")
HELLO = str(BIN / "hello-world" / "hello")


@pytest.fixture(scope="module", autouse=True)
def init_program_opened():
    """The launcher opens pycontain-init once per process and keeps the
    descriptor; open it before the leak checks take their snapshot."""
    init_program_fd()


def elf_is_static_without_libc(path):
    """No interpreter and no dynamic section: nothing for a loader to find."""
    out = subprocess.run(["readelf", "-lW", path], capture_output=True, text=True, check=True).stdout
    return "INTERP" not in out and "DYNAMIC" not in out


def test_programs_are_static_and_small():
    for path in (INIT, HELLO):
        assert os.access(path, os.X_OK), f"{path} is not executable"
        assert elf_is_static_without_libc(path), f"{path} is not a static program"
        # A static glibc program is ~700 KB; without libc these stay tiny.
        assert os.path.getsize(path) < 64 * 1024, f"{path} is {os.path.getsize(path)} bytes"


def test_init_is_pid_1_and_passes_the_exit_status(busybox, leakcheck):
    r = Container(rootfs=busybox, init=True,
                  command=["sh", "-c", "echo $$ $PPID; cat /proc/1/cmdline | tr '\\0' ' '; exit 7"]
                  ).run(capture_output=True, text=True)
    assert r.returncode == 7, r.stderr
    ids, cmdline = r.stdout.splitlines()
    assert ids == "2 1"  # the command is init's only child
    assert cmdline.startswith("pycontain-init -- sh -c ")


def test_init_reports_a_signal_death_as_128_plus_n(busybox, leakcheck):
    r = Container(rootfs=busybox, init=True, command=["sh", "-c", "kill -KILL $$"]).run()
    assert r.returncode == 128 + signal.SIGKILL


def test_init_reaps_orphans(busybox, leakcheck):
    # The grandchildren end while their parent is gone: init must reap them,
    # else they stay zombies (state Z) until the container ends.
    script = "sh -c 'sleep 0.1 & sleep 0.1 & exit 0'; sleep 0.6; ps -o stat,comm | grep -c '^Z' || true"
    r = Container(rootfs=busybox, init=True, command=["sh", "-c", script]).run(capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "0", f"zombies left: {r.stdout}"


def test_init_forwards_signals_to_the_command(busybox, leakcheck):
    # Without init, SIGTERM to pid 1 with no handler does nothing; with it the
    # command gets the signal and its trap runs.
    c = Container(rootfs=busybox, init=True,
                  command=["sh", "-c", "trap 'echo got TERM; exit 42' TERM; echo ready; while :; do sleep 0.05; done"])
    c.start(stdout=subprocess.PIPE)
    try:
        assert c.stdout.readline() == b"ready\n"
        c.terminate()
        assert c.wait(timeout=10) == 42
        assert c.stdout.read() == b"got TERM\n"
    finally:
        c.remove()
        c.stdout.close()


def test_init_says_what_was_wrong_with_the_command():
    r = subprocess.run([INIT, "--", "no-such-command-here"], capture_output=True, text=True)
    assert r.returncode == 127
    assert r.stderr == 'pycontain-init: exec "no-such-command-here": No such file or directory\n'
    r = subprocess.run([INIT, "--", "/etc/passwd"], capture_output=True, text=True)
    assert (r.returncode, r.stderr) == (126, 'pycontain-init: exec "/etc/passwd": Permission denied\n')
    r = subprocess.run([INIT], capture_output=True, text=True)
    assert (r.returncode, r.stderr) == (125, "pycontain-init: no command given\n")


def test_init_searches_path_and_runs_scripts_without_a_shebang(tmp_path):
    script = tmp_path / "plain-script"
    script.write_text("echo from a script: $1\n")  # no #!: execvp's rule runs it with /bin/sh
    script.chmod(0o755)
    env = {"PATH": f"/nonexistent:{tmp_path}:/usr/bin:/bin"}
    r = subprocess.run([INIT, "--", "plain-script", "arg1"], capture_output=True, text=True, env=env)
    assert (r.returncode, r.stdout) == (0, "from a script: arg1\n"), r.stderr


def test_init_on_the_host_forwards_signals_and_exits(tmp_path):
    # Not pid 1 here: init becomes a child subreaper and still forwards.
    p = subprocess.Popen([INIT, "--", "sh", "-c", "trap 'exit 9' USR1; echo ready; while :; do sleep 0.05; done"],
                         stdout=subprocess.PIPE)
    try:
        assert p.stdout.readline() == b"ready\n"
        p.send_signal(signal.SIGUSR1)
        assert p.wait(timeout=10) == 9
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()


def test_hello_world_program_prints_the_whole_message():
    r = subprocess.run([HELLO], capture_output=True, text=True)
    assert r.returncode == 0
    assert r.stdout.startswith("\nHello from pycontain!\n")
    assert r.stdout.endswith(" $ pycontain run -it busybox sh\n\n")


def test_hello_world_reports_a_failed_write():
    # stdout closed: write() fails with EBADF and the status says so.
    r = subprocess.run(f"exec {HELLO} >&-", shell=True)
    assert r.returncode == 1


def test_init_skips_path_entries_too_long_for_its_buffer(tmp_path):
    # 4 KiB is init's path buffer: a command name that fills it exactly with an
    # empty PATH entry ("." + "/" + name + NUL) must be skipped, not overflow.
    name = "x" * (4096 - 3 + 1)
    env = {"PATH": ":/bin"}
    r = subprocess.run([INIT, "--", name], capture_output=True, text=True, env=env)
    assert r.returncode == 127 and "No such file or directory" in r.stderr


def test_a_signal_right_after_start_reaches_the_command(busybox, leakcheck):
    """SIGTERM sent the moment start() returns: init takes over with signals
    blocked, so it is forwarded, not lost to a pid 1 without default actions."""
    from pycontain import Container

    c = Container(rootfs=busybox, command=["sleep", "60"], init=True)
    c.start()
    c.terminate()
    assert c.wait(timeout=10) == 128 + 15
