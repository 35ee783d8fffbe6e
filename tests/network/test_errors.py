"""Bad input and half-done starts: one clear error, nothing left behind."""
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest
from pyroute2 import IPRoute

from pycontain import CommandNotFound, ConfigError, Container
from pycontain.errors import NetworkNotFound, PortAlreadyAllocated
from pycontain.network import create_network, ipam, prune_networks, remove_network, store


def test_published_port_in_use_by_a_host_program(busybox, test_host, leakcheck):
    holder = socket.socket()
    holder.bind(("0.0.0.0", 8081))
    holder.listen(1)
    try:
        with pytest.raises(PortAlreadyAllocated, match=r"0\.0\.0\.0:8081/tcp.*already allocated"):
            Container(rootfs=busybox, command=["true"], network="bridge", ports=["8081:80"]).run()
    finally:
        holder.close()


def test_published_port_in_use_by_another_container(busybox, test_host, leakcheck):
    with Container(rootfs=busybox, command=["sleep", "30"], network="bridge", ports=["8082:80"]) as first:
        first.start()
        with pytest.raises(PortAlreadyAllocated, match="8082"):
            Container(rootfs=busybox, command=["true"], network="bridge", ports=["127.0.0.1:8082:80"]).run()
        # the failed start took nothing from the first container
        assert len(test_host.published_entries()) == 2 and len(test_host.veths()) == 1


def test_unknown_network(busybox, leakcheck):
    with pytest.raises(NetworkNotFound, match="network 'nosuchnet' not found"):
        Container(rootfs=busybox, command=["true"], network="nosuchnet").run()


def test_subnet_overlapping_a_host_route(test_host):
    with IPRoute() as ipr:
        ipr.link("add", ifname="ovl0", kind="veth", peer={"ifname": "ovl1"})
        idx = ipr.link_lookup(ifname="ovl0")[0]
        ipr.addr("add", index=idx, address="10.123.0.1", prefixlen=16)
        ipr.link("set", index=idx, state="up")
    with pytest.raises(ConfigError, match=r"subnet 10\.123\.5\.0/24 overlaps the host's route to 10\.123\.0\.0/16 on ovl0"):
        create_network("overlap", subnet="10.123.5.0/24")
    assert "overlap" not in [n.name for n in store.list_networks()]


def test_subnet_overlapping_another_network(network_factory):
    network_factory("one", subnet="10.66.0.0/24")
    with pytest.raises(ConfigError, match="overlaps network 'one'"):
        create_network("two", subnet="10.66.0.0/16")


@pytest.mark.parametrize("spec, message", [
    ("80/sctp", "invalid protocol"),
    ("99999:80", "out of range"),
    ("abc", "invalid port"),
    ("1.2.3:80:80", "invalid host address"),
    ("8000-8010:80", "port ranges"),
])
def test_bad_publish_specs(busybox, spec, message):
    with pytest.raises(ConfigError, match=message):
        Container(rootfs=busybox, command=["true"], network="bridge", ports=[spec])


@pytest.mark.parametrize("kw, message", [
    ({"network": "host", "ports": ["80"]}, "need a bridge network"),
    ({"network": "none", "ports": ["80"]}, "need a bridge network"),
    ({"network": "bad name!"}, "invalid network"),
    ({"network": "container:"}, "needs a container"),
    ({"network": "bridge", "dns": ["not-an-ip"]}, "invalid DNS server"),
    ({"network": "bridge", "add_hosts": ["nohost"]}, "expected NAME:IP"),
    ({"network": "bridge", "name": "bad/name"}, "invalid container name"),
])
def test_bad_network_options(busybox, kw, message):
    with pytest.raises(ConfigError, match=message):
        Container(rootfs=busybox, command=["true"], **kw)


@pytest.mark.parametrize("kw, message", [
    ({"subnet": "10.0.0.0/33"}, "invalid subnet"),
    ({"subnet": "10.0.0.1/24"}, "invalid subnet"),
    ({"subnet": "10.55.0.0/30"}, "too small"),
    ({"subnet": "10.55.0.0/24", "gateway": "10.56.0.1"}, "not a host address"),
    ({"subnet": "127.0.0.0/16"}, "cannot be used"),
])
def test_bad_network_definitions(test_host, kw, message):
    with pytest.raises(ConfigError, match=message):
        create_network("badnet", **kw)
    assert "badnet" not in [n.name for n in store.list_networks()]


def test_container_mode_needs_a_running_container(busybox, leakcheck):
    with pytest.raises(ConfigError, match="no such container"):
        Container(rootfs=busybox, command=["true"], network="container:ghost").run()


def test_failed_launch_releases_the_network(busybox, test_host, leakcheck):
    with pytest.raises(CommandNotFound):
        Container(rootfs=busybox, command=["/no/such/program"], network="bridge", ports=["8083:80"]).run()
    assert test_host.wait_no_veths() == [] and test_host.published_entries() == []
    # the port is free again
    s = socket.socket()
    s.bind(("0.0.0.0", 8083))
    s.close()


def test_network_in_use_cannot_be_removed(busybox, network_factory, leakcheck):
    network_factory("busy")
    with Container(rootfs=busybox, command=["sleep", "30"], network="busy", name="user1") as c:
        c.start()
        with pytest.raises(ConfigError, match="in use by container"):
            remove_network("busy")
    remove_network("busy")
    with pytest.raises(NetworkNotFound):
        store.get("busy")


CRASHING_OWNER = textwrap.dedent("""
    import os, sys
    os.environ["PYCONTAIN_ROOT"] = sys.argv[1]
    from pycontain.network import ipam, store
    net = store.get(sys.argv[2])
    with ipam.network_lock(net):
        lease = ipam.allocate(net, {"container": "c" * 64, "veth": "vethcrashed0"})
    print(lease.address, flush=True)
    os.kill(os.getpid(), 9)     # dies holding the lease, as a crashed engine would
""")


def test_leases_of_a_crashed_owner_are_reclaimed(network_factory, store_root):
    net = network_factory("tiny", subnet="10.44.0.0/29")   # .2-.6: five addresses
    p = subprocess.run([sys.executable, "-c", CRASHING_OWNER, str(store_root), "tiny"],
                       capture_output=True, text=True)
    assert p.returncode == -signal.SIGKILL, p.stderr
    crashed = p.stdout.strip()
    assert [lease.address for lease in ipam.all_leases(net)] == [crashed]
    assert ipam.live_leases(net) == []
    with ipam.network_lock(net):
        leases = [ipam.allocate(net, {"container": f"{i:064x}"}) for i in range(5)]
    assert sorted(lease.address for lease in leases) == [f"10.44.0.{i}" for i in range(2, 7)]
    with ipam.network_lock(net):
        with pytest.raises(Exception, match="no free address"):
            ipam.allocate(net, {"container": "f" * 64})
        for lease in leases:
            ipam.release(lease)


def test_prune_reclaims_stale_leases_and_unused_networks(store_root, test_host):
    create_network("prunable", subnet="10.45.0.0/24")
    p = subprocess.run([sys.executable, "-c", CRASHING_OWNER, str(store_root), "prunable"],
                       capture_output=True, text=True)
    assert p.returncode == -signal.SIGKILL, p.stderr
    assert "prunable" in prune_networks()
    assert "prunable" not in [n.name for n in store.list_networks()]
    assert "bridge" in [n.name for n in store.list_networks()]     # the default one stays


CONCURRENT_OWNER = textwrap.dedent("""
    import os, sys
    os.environ["PYCONTAIN_ROOT"] = sys.argv[1]
    from pycontain.network import ipam, store
    net = store.get(sys.argv[2])
    leases = []
    for i in range(10):
        with ipam.network_lock(net):
            leases.append(ipam.allocate(net, {"container": f"{os.getpid():032x}{i:032x}"}))
    print(" ".join(lease.address for lease in leases), flush=True)
    sys.stdin.read()                  # hold them until the test has looked
    with ipam.network_lock(net):
        for lease in leases:
            ipam.release(lease)
""")


def test_processes_allocating_at_once_never_share_an_address(network_factory, store_root):
    net = network_factory("shared", subnet="10.46.0.0/24")
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT_OWNER, str(store_root), "shared"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(4)]
    try:
        addresses = [a for p in procs for a in p.stdout.readline().split()]
        assert len(addresses) == 40 and len(set(addresses)) == 40
        assert len(ipam.live_leases(net)) == 40
    finally:
        for p in procs:
            p.communicate("", timeout=30)
    assert [p.returncode for p in procs] == [0, 0, 0, 0]
    assert ipam.all_leases(net) == []


CRASHING_PUBLISHER = textwrap.dedent("""
    import os, sys
    os.environ["PYCONTAIN_ROOT"] = sys.argv[1]
    from pycontain.network.attach import NetworkAttachment
    att = NetworkAttachment.prepare("bridge", container_id=os.urandom(32).hex(), ports=["8095:80"])
    print(att.address, flush=True)
    os.kill(os.getpid(), 9)     # its port socket and namespace die with it; lease and DNAT entries stay
""")


def test_a_crashed_owners_published_port_can_be_taken_over(busybox, store_root, test_host, leakcheck):
    from pycontain.network import nat

    p = subprocess.run([sys.executable, "-c", CRASHING_PUBLISHER, str(store_root)], capture_output=True, text=True)
    assert p.returncode == -signal.SIGKILL, p.stderr
    dead = p.stdout.strip()
    assert [8095, dead] in [e for e in test_host.published_entries() if isinstance(e[0], int)]
    server = "while true; do echo pong | nc -l -p 80; done"
    with Container(rootfs=busybox, command=["sh", "-c", server], network="bridge", ports=["8095:80"]) as c:
        c.start()
        assert [8095, c.ip_address] in test_host.published_entries()      # replaced the dead entry
        # reclaiming the dead lease must not take the live container's entries
        prune_networks()
        assert [8095, c.ip_address] in test_host.published_entries()
        answer = None
        for _ in range(100):    # until the server listens
            try:
                with socket.create_connection(("127.0.0.1", 8095), timeout=5) as s:
                    s.shutdown(socket.SHUT_WR)
                    answer = s.recv(100)
                    if answer:
                        break
            except OSError:
                pass
            time.sleep(0.05)
        assert answer == b"pong\n"
    assert ipam.all_leases(store.get("bridge")) == []
    assert nat.list_table() != []
