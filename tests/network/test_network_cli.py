"""The network verbs and run's network flags, through the CLI entry point."""
import json
import os
import pty
import select
import subprocess
import sys
import tarfile

from pycontain import containers
from pycontain.cli import main
from pycontain.network import nat


def test_network_create_ls_inspect_rm(capsys, test_host):
    assert main(["network", "create", "--subnet", "10.91.0.0/24", "clinet"]) == 0
    net_id = capsys.readouterr().out.strip()
    assert len(net_id) == 64
    assert main(["network", "ls"]) == 0
    out = capsys.readouterr().out
    # docker's columns, and its host and none rows
    assert out.split("\n")[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    assert f"{net_id[:12]}   clinet" in out and "   host      host      local" in out and "   none      null" in out
    assert main(["network", "inspect", "clinet"]) == 0
    (info,) = json.loads(capsys.readouterr().out)
    assert info["Id"] == net_id and info["IPAM"]["Config"] == [{"Subnet": "10.91.0.0/24", "Gateway": "10.91.0.1"}]
    assert info["Containers"] == {}
    assert main(["network", "create", "clinet"]) == 1   # docker network create: its daemon refuses, status 1
    assert "already exists" in capsys.readouterr().err
    assert main(["network", "rm", "clinet"]) == 0
    assert main(["network", "inspect", "clinet"]) == 1   # docker's "No such network": 1
    assert "network 'clinet' not found" in capsys.readouterr().err


def test_network_prune_keeps_the_default(capsys, test_host):
    assert main(["network", "create", "unused1"]) == 0
    capsys.readouterr()
    assert main(["network", "prune", "-f"]) == 0
    out = capsys.readouterr().out
    assert "unused1" in out and "\nbridge" not in out
    assert main(["network", "ls", "--format", "{{.Name}}"]) == 0
    assert capsys.readouterr().out.split() == ["bridge", "host", "none"]


def _devnull_fds():
    return sum(1 for fd in os.listdir("/proc/self/fd") if os.path.realpath(f"/proc/self/fd/{fd}") == "/dev/null")


# capfd swaps descriptors 1 and 2, which the leakcheck fixture would report;
# veths, leases and published ports are checked by the test_host fixture.
def test_run_publish_and_network_flags(busybox, capfd, test_host):
    devnull = _devnull_fds()
    code = main(["run", "--rm", "--network", "bridge", "--rootfs", str(busybox), "-p", "127.0.0.1:8090:80",
                 "--add-host", "x.test:192.0.2.9",
                 "--", "sh", "-c", "ip -4 -o addr show eth0; grep x.test /etc/hosts"])
    out = capfd.readouterr().out
    assert code == 0, out
    assert "inet 10.88." in out and "192.0.2.9\tx.test" in out
    assert _devnull_fds() == devnull


def test_run_defaults_to_bridge_and_reports_bad_flags(busybox, capfd, test_host, monkeypatch):
    monkeypatch.delenv("PYCONTAIN_NETWORK")  # the suite's guard; here we are inside our own "host"
    assert main(["run", "--rm", "--rootfs", str(busybox), "--", "ip", "-4", "-o", "addr", "show", "eth0"]) == 0
    assert "inet 10.88." in capfd.readouterr().out
    assert main(["run", "--rm", "--rootfs", str(busybox), "--network", "nope", "--", "true"]) == 125
    assert "network 'nope' not found" in capfd.readouterr().err
    assert main(["run", "--rm", "--rootfs", str(busybox), "-p", "80/sctp", "--", "true"]) == 125
    assert "invalid protocol" in capfd.readouterr().err


FORWARD = "/proc/sys/net/ipv4/ip_forward"


def _read(path):
    with open(path) as f:
        return f.read().strip()


def _reset_on_a_pty(answer: bytes) -> tuple:
    """`pycontain system reset` on a real terminal (its process inherits this
    thread's network namespace, the test's "host"), answering the question."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "pycontain", "system", "reset"], stdin=slave, stdout=slave,
                            stderr=slave, start_new_session=True)
    os.close(slave)
    out = b""
    try:
        while b"[y/N] " not in out:
            assert select.select([master], [], [], 20)[0], out
            out += os.read(master, 4096)
        os.write(master, answer)
        try:
            while chunk := os.read(master, 4096):
                out += chunk
        except OSError:   # EIO: the CLI has ended
            pass
        return proc.wait(timeout=60), out.decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def test_system_reset_undoes_what_the_first_run_did(busybox, tmp_path, monkeypatch, capsys, test_host):
    root = tmp_path / "root"
    monkeypatch.setenv("PYCONTAIN_ROOT", str(root))   # a store of its own: reset removes all of it
    with open(FORWARD, "w") as f:   # the "host" before pycontain: no forwarding
        f.write("0")
    with tarfile.open(tmp_path / "rootfs.tar", "w") as tar:
        tar.add(busybox / "bin" / "busybox", "bin/busybox")
    assert main(["import", str(tmp_path / "rootfs.tar"), "reset/img:1"]) == 0
    assert main(["volume", "create", "resetvol"]) == 0
    assert main(["network", "create", "--subnet", "10.92.0.0/24", "resetnet"]) == 0
    for net in ("bridge", "resetnet"):
        assert main(["run", "-d", "--network", net, "--rootfs", str(busybox), "sleep", "60"]) == 0
    running = [c.record.pid for c in containers.list(root=root)]
    assert len(running) == 2 and all(os.path.exists(f"/proc/{pid}") for pid in running)
    bridges = [n for n in test_host.links() if n not in ("lo",) and not n.startswith("veth")]
    assert "pycontain0" in bridges and len(bridges) == 2 and nat.table_exists() and _read(FORWARD) == "1"
    capsys.readouterr()

    status, shown = _reset_on_a_pty(b"n\r")   # the question first; n keeps everything
    assert status == 0 and "WARNING! This will remove:" in shown and "Removed" not in shown, shown
    assert nat.table_exists() and root.exists() and len(containers.list(root=root)) == 2

    assert main(["system", "reset", "-f"]) == 0
    out = capsys.readouterr().out
    assert "Restored net.ipv4.ip_forward=0" in out and f"Removed the store {root}" in out, out
    assert not root.exists()
    assert [n for n in test_host.links() if not n.startswith("veth")] == ["lo"]
    assert not nat.table_exists() and _read(FORWARD) == "0"
    assert not any(os.path.exists(f"/proc/{pid}") for pid in running)
    assert main(["system", "reset", "-f"]) == 0   # nothing left to do: still fine
