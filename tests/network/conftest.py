"""Networking tests run in network namespaces the tests make, never the machine's own.

Every test here gets, automatically, a throwaway network namespace that plays
"the host": the test thread moves into it (setns) for the test's duration,
and the engine makes its bridge, veth pairs and nftables table there. Threads
started by the test inherit it. When the test ends the thread goes back and
the namespace, with anything left in it, disappears; before that the fixture
checks that the engine itself removed what it made.
"""
import os
import socket
import threading
import time

import pytest
from pyroute2 import IPRoute

from pycontain import _launch
from pycontain.network import _netlink, ipam, nat, store


def _netns_inode():
    return os.stat("/proc/thread-self/ns/net").st_ino


class TestHost:
    """The throwaway "host" namespace of one test."""

    def __init__(self, fd):
        self.fd = fd

    @staticmethod
    def links():
        return sorted(name for _, name in socket.if_nameindex())

    @staticmethod
    def veths():
        # veth<id>: a container's first network; vc<id><net>: one connected later
        return [n for n in TestHost.links() if n.startswith(("veth", "vc"))]

    def wait_no_veths(self, timeout=5.0):
        end = time.monotonic() + timeout
        while self.veths() and time.monotonic() < end:
            time.sleep(0.01)
        return self.veths()

    @staticmethod
    def published_entries():
        """Elements of the engine's published-port maps here."""
        out = []
        for obj in nat.list_table():
            m = obj.get("map")
            if m and m["name"].startswith("pub_"):
                out += m.get("elem", [])
        return out


def all_leases(root):
    return [lease for net in store.list_networks(root) for lease in ipam.all_leases(net, root)]


@pytest.fixture(autouse=True)
def test_host(store_root):
    original = _netns_inode()
    fd = _launch.new_namespace_fd(_launch.CLONE_NEWNET)
    try:
        with _netlink.inside_netns(fd):
            # the guard every networking test relies on
            assert _netns_inode() != original, "not in a test network namespace"
            with IPRoute() as ipr:
                ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
            host = TestHost(fd)
            yield host
            assert host.wait_no_veths() == [], "veth interfaces leaked"
            assert host.published_entries() == [], "published-port entries leaked"
            assert all_leases(store_root) == [], "address leases leaked"
        assert _netns_inode() == original
    finally:
        os.close(fd)


@pytest.fixture
def python_mounts():
    """Read-only binds that make the host's python3 run inside a busybox
    container (busybox nc speaks TCP only; the UDP tests need a client)."""
    from pycontain import Mount

    if not os.path.exists("/usr/bin/python3"):
        pytest.fail("the UDP tests need /usr/bin/python3 on the host (Debian: python3)")
    mounts = [Mount("/usr", "/usr", read_only=True), Mount("/usr/lib", "/lib", read_only=True)]
    if os.path.isdir("/usr/lib64"):   # x86_64's dynamic loader lives there
        mounts.append(Mount("/usr/lib64", "/lib64", read_only=True))
    return mounts


@pytest.fixture
def outside(test_host):
    """A second test namespace standing for "the internet": reachable from the
    test host over a veth pair (host 192.0.2.1, outside 192.0.2.2, TEST-NET-1),
    with no route back to any container subnet, so only NAT'ed traffic returns."""
    fd = _launch.new_namespace_fd(_launch.CLONE_NEWNET)
    with IPRoute() as ipr:
        ipr.link("add", ifname="out0", kind="veth", peer={"ifname": "eth0", "net_ns_fd": fd})
        idx = ipr.link_lookup(ifname="out0")[0]
        ipr.addr("add", index=idx, address="192.0.2.1", prefixlen=24)
        ipr.link("set", index=idx, state="up")
    with _netlink.inside_netns(fd):
        with IPRoute() as ipr:
            idx = ipr.link_lookup(ifname="eth0")[0]
            ipr.addr("add", index=idx, address="192.0.2.2", prefixlen=24)
            ipr.link("set", index=idx, state="up")
            ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
    yield Outside(fd)
    with IPRoute() as ipr:
        ipr.link("del", index=ipr.link_lookup(ifname="out0")[0])
    os.close(fd)


class Outside:
    address = "192.0.2.2"

    def __init__(self, fd):
        self.fd = fd

    def tcp_server(self, port):
        """A listening socket made inside the outside namespace (a socket stays
        in the namespace it was made in); returns (socket, accepted list)."""
        with _netlink.inside_netns(self.fd):
            srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((self.address, port))
        srv.listen(4)
        srv.settimeout(10)
        accepted = []

        def serve():
            try:
                conn, peer = srv.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(10)
                data = conn.recv(1024)
                accepted.append((peer, data))
                conn.sendall(b"hello from outside\n")

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        return srv, t, accepted


@pytest.fixture
def network_factory(test_host):
    """Creates user-defined networks and removes them after the test."""
    made = []

    def make(name, **kw):
        from pycontain.network import create_network

        net = create_network(name, **kw)
        made.append(name)
        return net

    yield make
    from pycontain.network import remove_network

    for name in made:
        try:
            remove_network(name)
        except Exception:
            pass
