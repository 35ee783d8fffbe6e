"""docker network connect/disconnect of managed containers: real veths and
bridges in the test's network namespace, traffic between containers."""
import pytest
from pyroute2 import IPRoute

from pycontain import containers, events
from pycontain.errors import ConfigError, NetworkError, NetworkNotFound
from pycontain.network import connect as netconnect
from pycontain.network import ipam, store

SLEEP = ["sleep", "300"]


@pytest.fixture
def managed(busybox, store_root, network_factory):
    """Managed containers, removed before the networks they are on."""
    made = []

    def run(name, network, start=True, **kw):
        make = containers.run if start else containers.create
        c = make(rootfs=busybox, command=SLEEP, name=name, network=network, **kw)
        made.append(c)
        return c

    yield run
    for c in made:
        try:
            c.remove(force=True)
        except containers.NoSuchContainer:
            pass


def sh(c, script):
    return c.exec_run(["sh", "-c", script], text=True, timeout=30)


def leases_of(cid, root):
    return [(net.name, lease.address) for net in store.list_networks(root)
            for lease in ipam.all_leases(net, root) if lease.container == cid]


def test_connect_a_running_container_then_disconnect_it(managed, network_factory, test_host, store_root):
    network_factory("n1", subnet="10.201.0.0/24")
    network_factory("n2", subnet="10.202.0.0/24")
    a = managed("ca", "n1")
    b = managed("cb", "n2")
    b.connect_network("n1", aliases=["bee"])
    nets = b.attrs["NetworkSettings"]["Networks"]
    assert set(nets) == {"n1", "n2"}
    ip = nets["n1"]["IPAddress"]
    assert ip.startswith("10.201.0.") and nets["n1"]["Gateway"] == "10.201.0.1" and "bee" in nets["n1"]["Aliases"]
    assert nets["n2"]["IPAddress"].startswith("10.202.0.")
    # the new interface, with no second default route (the first network keeps it)
    r = sh(b, "ip -4 -o addr show eth1; ip route")
    assert f"inet {ip}/24" in r.stdout and "default via 10.202.0.1 dev eth0" in r.stdout, r.stdout
    # both of its names answer from the first container, over the second network
    for name in ("bee", "cb"):
        r = sh(a, f"ping -c 1 -W 2 {name}")
        assert r.returncode == 0 and f"({ip})" in r.stdout, r.stdout + r.stderr
    # and it knows the members of the network it joined
    r = sh(b, "ping -c 1 -W 2 ca")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "bee" in (a.container_dir / "hosts").read_text()
    assert any(n.startswith("vc") for n in test_host.links())

    b.disconnect_network("n1")
    assert set(b.attrs["NetworkSettings"]["Networks"]) == {"n2"}
    assert sh(b, "ip -o link show eth1").returncode != 0
    assert sh(a, f"ping -c 1 -W 1 {ip}").returncode != 0        # no route any more
    assert "bee" not in (a.container_dir / "hosts").read_text()
    assert [n for n, _ in leases_of(b.id, store_root)] == ["n2"]
    assert not any(n.startswith("vc") for n in test_host.links())
    net_events = [(e["Action"], e["Actor"]["Attributes"]["container"]) for e in events.replay(store_root)
                  if e["Type"] == "network" and e["Action"] in ("connect", "disconnect")]
    assert net_events == [("connect", b.id), ("disconnect", b.id)]
    # connected again, then removed while it runs: its monitor gives both leases back
    b.connect_network("n1")
    b.remove(force=True)
    assert leases_of(b.id, store_root) == []
    assert "cb" not in (a.container_dir / "hosts").read_text()


def test_a_connected_network_comes_back_at_each_start(managed, network_factory, test_host, store_root):
    network_factory("n1", subnet="10.201.0.0/24")
    network_factory("n2", subnet="10.202.0.0/24")
    peer = managed("peer", "n2")
    c = managed("late", "n1", start=False)
    c.connect_network("n2", ip="10.202.0.77")
    assert c.attrs["NetworkSettings"]["Networks"]["n2"]["IPAddress"] == ""   # not running
    c.start()
    for _ in range(2):
        r = sh(c, "ip -4 -o addr show eth1; ping -c 1 -W 2 peer")
        assert "inet 10.202.0.77/24" in r.stdout and r.returncode == 0, r.stdout + r.stderr
        assert c.attrs["NetworkSettings"]["Networks"]["n2"]["IPAddress"] == "10.202.0.77"
        assert sh(peer, "ping -c 1 -W 2 late").returncode == 0
        c.restart(timeout=0)
    c.stop(timeout=0)
    # its monitor gave back the second network's lease and interface
    assert leases_of(c.id, store_root) == []
    assert "late" not in (peer.container_dir / "hosts").read_text()


def test_refusals_are_docker_s_and_leave_nothing(managed, network_factory, test_host, store_root):
    network_factory("n1", subnet="10.201.0.0/24")
    network_factory("n2", subnet="10.202.0.0/24")
    a = managed("ca", "n1")
    b = managed("cb", "n2")
    none = managed("cnone", "none")
    host = managed("chost", "host")
    joiner = managed("cjoin", "container:ca")
    cases = [
        (lambda: b.connect_network("n2"), ConfigError, "endpoint with name cb already exists in network n2"),
        (lambda: b.connect_network("nope"), NetworkNotFound, "network 'nope' not found"),
        (lambda: none.connect_network("n1"), ConfigError, "private (none) mode"),
        (lambda: host.connect_network("n1"), ConfigError, "cannot be connected to any other network"),
        (lambda: joiner.connect_network("n1"), ConfigError, "cannot be connected to any other network"),
        (lambda: b.connect_network("host"), ConfigError, "connected to host network"),
        (lambda: b.connect_network("none"), ConfigError, "private (none) mode"),
        (lambda: b.connect_network("n1", ip="10.201.0.300"), ConfigError, "Invalid IPv4 address"),
        (lambda: b.connect_network("n1", ip="10.9.9.9"), ConfigError, "does not belong to any of this network's"),
        (lambda: b.disconnect_network("n1"), ConfigError, f"container {b.id} is not connected to network n1"),
        (lambda: b.disconnect_network("nope"), NetworkNotFound, "not found"),
    ]
    for call, kind, words in cases:
        with pytest.raises(kind, match=words.replace("(", r"\(").replace(")", r"\)")):
            call()
    # an address in use: refused once the record said yes; the record goes back, nothing is held
    taken = a.attrs["NetworkSettings"]["Networks"]["n1"]["IPAddress"]
    with pytest.raises(NetworkError, match="Address already in use"):
        b.connect_network("n1", ip=taken)
    assert set(b.attrs["NetworkSettings"]["Networks"]) == {"n2"}
    assert leases_of(b.id, store_root) == [("n2", b.attrs["NetworkSettings"]["Networks"]["n2"]["IPAddress"])]
    assert not any(n.startswith("vc") for n in test_host.links())
    with pytest.raises(containers.NoSuchContainer):
        containers.get("nosuch")


def test_a_failed_plug_in_leaves_no_veth_or_lease(managed, network_factory, test_host, store_root):
    n1 = network_factory("n1", subnet="10.201.0.0/24")
    network_factory("n2", subnet="10.202.0.0/24")
    b = managed("cb", "n2")
    # the bridge's name taken by a veth: the kernel refuses to plug a veth
    # into it, after the address was leased
    with IPRoute() as ipr:
        ipr.link("add", ifname=n1.bridge, kind="veth", peer="xpeer0")
    try:
        with pytest.raises(NetworkError):
            b.connect_network("n1")
        assert [n for n, _ in leases_of(b.id, store_root)] == ["n2"]
        assert not any(n.startswith("vc") for n in test_host.links())
        assert sh(b, "ip -o link show eth1").returncode != 0
        assert set(b.attrs["NetworkSettings"]["Networks"]) == {"n2"}
        assert "networks" not in b.record.config or not b.record.config["networks"]
    finally:
        with IPRoute() as ipr:
            ipr.link("del", ifname=n1.bridge)
    # a leftover veth of its own name (a dead run's) is taken away first
    with IPRoute() as ipr:
        ipr.link("add", ifname=netconnect.extra_veth_name(b.id, n1), kind="veth", peer="xpeer1")
    b.connect_network("n1")
    assert sh(b, "ip -o link show eth1").returncode == 0 and "xpeer1" not in test_host.links()
    b.disconnect_network("n1")


def test_network_aliases_at_create(managed, network_factory, test_host):
    network_factory("n1", subnet="10.201.0.0/24")
    db = managed("db1", "n1", network_aliases=["db", "primary"])
    client = managed("client", "n1")
    for _ in range(2):
        for name in ("db", "primary", "db1"):
            r = sh(client, f"ping -c 1 -W 2 {name}")
            assert r.returncode == 0, r.stdout + r.stderr
        assert {"db", "primary"} <= set(db.attrs["NetworkSettings"]["Networks"]["n1"]["Aliases"])
        db.restart(timeout=0)      # a start gives the first network's lease its aliases again
    with pytest.raises(ConfigError, match="only supported for user-defined networks"):
        managed("nope", "bridge", network_aliases=["x"])
