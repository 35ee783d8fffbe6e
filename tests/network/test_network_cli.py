"""The network verbs and run's network flags, through the CLI entry point."""
import json

from pycontain.cli import main


def test_network_create_ls_inspect_rm(capsys, test_host):
    assert main(["network", "create", "--subnet", "10.91.0.0/24", "clinet"]) == 0
    net_id = capsys.readouterr().out.strip()
    assert len(net_id) == 64
    assert main(["network", "ls"]) == 0
    out = capsys.readouterr().out
    assert "clinet" in out and "10.91.0.0/24" in out and "bridge" in out
    assert main(["network", "inspect", "clinet"]) == 0
    (info,) = json.loads(capsys.readouterr().out)
    assert info["id"] == net_id and info["gateway"] == "10.91.0.1" and info["containers"] == []
    assert main(["network", "create", "clinet"]) == 125
    assert "already exists" in capsys.readouterr().err
    assert main(["network", "rm", "clinet"]) == 0
    assert main(["network", "inspect", "clinet"]) == 125
    assert "network 'clinet' not found" in capsys.readouterr().err


def test_network_prune_keeps_the_default(capsys, test_host):
    assert main(["network", "create", "unused1"]) == 0
    capsys.readouterr()
    assert main(["network", "prune", "-f"]) == 0
    out = capsys.readouterr().out
    assert "unused1" in out and "\nbridge" not in out
    assert main(["network", "ls", "-q"]) == 0
    assert capsys.readouterr().out.split() == ["bridge"]


def _devnull_fds():
    import os

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
