"""The command line, run as a user would: a separate process, docker's exit statuses."""
import subprocess
import sys

import pytest


def pycontain(*args, **kw):
    """The CLI; `run` gets --network none (its default, bridge, would change the host's network)."""
    if args and args[0] == "run":
        args = ("run", "--network", "none") + args[1:]
    return subprocess.run([sys.executable, "-m", "pycontain", *args], capture_output=True, text=True, **kw)


def test_hello_world():
    r = pycontain("run", "--rm", "hello-world")
    assert r.returncode == 0, r.stderr
    assert "Hello from pycontain!" in r.stdout


def test_exit_status_is_the_commands(busybox):
    assert pycontain("run", "--rm", "--rootfs", str(busybox), "sh", "-c", "exit 42").returncode == 42


def test_killed_by_a_signal_is_128_plus_n(busybox):
    # sh as pid 1 cannot be killed from inside; behind --init it can
    assert pycontain("run", "--rm", "--init", "--rootfs", str(busybox), "sh", "-c", "kill -9 $$").returncode == 137


@pytest.mark.parametrize("argv,status,message", [
    (["no-such-command"], 127, 'exec: "no-such-command": executable file not found in $PATH'),
    (["/etc/passwd"], 126, 'exec: "/etc/passwd": permission denied'),
])
def test_exec_failures(busybox, argv, status, message):
    r = pycontain("run", "--rm", "--rootfs", str(busybox), *argv)
    assert r.returncode == status
    assert r.stderr.strip() == f"pycontain: {message}"


def test_engine_failure_is_125(busybox):
    r = pycontain("run", "--rm", "--rootfs", str(busybox), "--user", "ghost", "true")
    assert r.returncode == 125
    assert r.stderr.strip() == "pycontain: unable to find user ghost: no matching entries in passwd file"


def test_flags(busybox, tmp_path):
    (tmp_path / "f").write_text("vol\n")
    tmp_path.chmod(0o755)
    r = pycontain("run", "--rm", "--rootfs", str(busybox), "-e", "A=b", "-h", "hn", "-w", "/tmp", "-u", "1000",
                  "-v", f"{tmp_path}:/v:ro", "--read-only", "--init", "--",
                  "sh", "-c", "echo $A; hostname; pwd; id -u; cat /v/f; touch /x 2>/dev/null || echo ro")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["b", "hn", "/tmp", "1000", "vol", "ro"]


def test_stdin_is_passed_with_i(busybox):
    r = pycontain("run", "--rm", "-i", "--rootfs", str(busybox), "cat", input="through\n")
    assert r.stdout == "through\n"
    r = pycontain("run", "--rm", "--rootfs", str(busybox), "cat", input="through\n")
    assert r.stdout == ""  # like docker without -i: stdin is empty


def test_version_and_info():
    r = pycontain("--version")
    assert r.returncode == 0 and r.stdout.startswith("pycontain ")
    r = pycontain("info")
    assert r.returncode == 0
    assert "Cgroups:" in r.stdout and "Namespaces:" in r.stdout and "Kernel:" in r.stdout
