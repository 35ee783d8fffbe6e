"""Bridge networks under the C monitor (pycontain-monitor): the published
ports stay held while the container runs, and its lease, veth and port
rules go when it ends, whether its own teardown runs (stop) or rm ends it."""
import errno
import socket

import pytest

from pycontain import containers
from pycontain import network as networks
from pycontain.network import ipam
from pycontain.network import store as netstore
from processes import wait_for



def all_leases(root):
    return [lease for net in netstore.list_networks(root) for lease in ipam.all_leases(net, root)]


def held(port) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
    except OSError as e:
        assert e.errno == errno.EADDRINUSE
        return True
    finally:
        s.close()
    return False


def is_c_monitor(pid) -> bool:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().startswith(b"pycontain-monitor\0")


def wait_gone(c):
    """Until the C monitor's teardown is over (its record says no monitor)."""
    assert wait_for(lambda: c.reload().record.monitor_pid is None, 20)


@pytest.mark.parametrize("network", ["bridge", "cmonnet"])
def test_published_port_held_then_released(busybox, store_root, test_host, network):
    if network != "bridge":
        networks.create_network(network, subnet="10.93.0.0/24", root=store_root)
    c = containers.run(rootfs=str(busybox), command=["sleep", "60"], init=True, network=network,
                       ports=["127.0.0.1:8097:80"], name=f"web-{network}")
    try:
        assert is_c_monitor(c.record.monitor_pid)
        assert held(8097) and len(all_leases(store_root)) == 1 and test_host.published_entries()
        c.stop(timeout=5)
        wait_gone(c)
        assert not held(8097)
        assert all_leases(store_root) == [] and test_host.published_entries() == []
        c.start()
        assert is_c_monitor(c.record.monitor_pid) and held(8097)
    finally:
        c.remove(force=True)   # rm ends the teardown of the monitor and does it itself
        if network != "bridge":
            networks.remove_network(network, root=store_root)
    assert not held(8097)
    assert all_leases(store_root) == [] and test_host.published_entries() == []
    assert test_host.wait_no_veths() == []
