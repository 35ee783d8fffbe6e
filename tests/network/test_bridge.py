"""Bridge networking end to end: real veth pairs, bridges, nftables, traffic."""
import os
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest

from nettools import tcp_request

from pycontain import PIPE, Container

SLEEP = ["sleep", "30"]


def run(busybox, script, **kw):
    return Container(rootfs=busybox, command=["sh", "-c", script], **kw).run(capture_output=True, text=True, timeout=30)


def test_bridge_container_has_address_route_and_etc_files(busybox, test_host, leakcheck):
    r = run(busybox, "ip -4 -o addr show eth0; ip route; cat /etc/hosts /etc/resolv.conf; hostname",
            network="bridge", dns=["192.0.2.53"], add_hosts=["db.example:192.0.2.7"])
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "inet 10.88." in out and "default via 10.88.0.1 dev eth0" in out
    hostname = out.strip().splitlines()[-1]
    addr = out.split("inet ")[1].split("/")[0]
    assert f"{addr}\t{hostname}" in out                  # own name in /etc/hosts
    assert "192.0.2.7\tdb.example" in out                # --add-host
    assert "nameserver 192.0.2.53" in out                # --dns
    assert "pycontain0" in test_host.links()             # the bridge stays, as docker0 does


def test_two_containers_exchange_tcp(busybox, network_factory, leakcheck):
    network_factory("tcpnet")
    # busybox nc ends at EOF on either side: the server's stdin stays open
    # (and silent) so that only the client's data and close end it.
    server = "sleep 30 | nc -l -p 5000"
    with Container(rootfs=busybox, command=["sh", "-c", server], network="tcpnet", name="server") as srv:
        srv.start(stdout=PIPE)
        client = run(busybox, "for i in $(seq 100); do echo hello-tcp | nc -w 2 server 5000 && exit 0; "
                              "sleep 0.05; done; exit 1", network="tcpnet")
        assert client.returncode == 0, client.stderr
        assert srv.stdout.readline() == b"hello-tcp\n"


UDP_SERVER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
data, peer = s.recvfrom(100)
s.sendto(b"ack:" + data, peer)
print(data.decode(), flush=True)
"""
UDP_CLIENT = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.1)
for _ in range(100):
    s.sendto(b"hello-udp", (sys.argv[1], int(sys.argv[2])))
    try:
        print(s.recvfrom(100)[0].decode(), flush=True)
        break
    except socket.timeout:
        pass
else:
    sys.exit(1)
"""


def test_two_containers_exchange_udp(busybox, network_factory, python_mounts, leakcheck):
    network_factory("udpnet")
    with Container(rootfs=busybox, command=["python3", "-c", UDP_SERVER, "5001"], network="udpnet",
                   name="udpsrv", mounts=python_mounts) as srv:
        srv.start(stdout=PIPE)
        client = Container(rootfs=busybox, command=["python3", "-c", UDP_CLIENT, srv.ip_address, "5001"],
                           network="udpnet", mounts=python_mounts).run(capture_output=True, text=True, timeout=30)
        assert client.returncode == 0, client.stderr
        assert client.stdout == "ack:hello-udp\n"
        assert srv.stdout.read() == b"hello-udp\n"
        assert srv.wait(10) == 0


def test_published_port_answers_on_host_address_and_loopback(busybox, outside, leakcheck):
    server = "while true; do echo pong | nc -l -p 80; done"
    with Container(rootfs=busybox, command=["sh", "-c", server], network="bridge", ports=["8080:80"]) as c:
        c.start()
        assert [str(p) for p in c.published_ports] == ["8080->80/tcp"]
        assert tcp_request("192.0.2.1", 8080) == b"pong\n"       # a host address
        assert tcp_request("127.0.0.1", 8080) == b"pong\n"       # the host's loopback


def test_published_port_on_one_address_and_a_chosen_port(busybox, leakcheck):
    server = "while true; do echo pong | nc -l -p 80; done"
    with Container(rootfs=busybox, command=["sh", "-c", server], network="bridge",
                   ports=["127.0.0.1::80"]) as c:
        c.start()
        (p,) = c.published_ports
        assert p.host_ip == "127.0.0.1" and p.host_port > 0
        assert tcp_request("127.0.0.1", p.host_port) == b"pong\n"


def test_published_udp_port(busybox, python_mounts, leakcheck):
    with Container(rootfs=busybox, command=["python3", "-c", UDP_SERVER, "53"], network="bridge",
                   ports=["127.0.0.1:5353:53/udp"], mounts=python_mounts) as c:
        c.start(stdout=PIPE)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.1)
        reply = None
        for _ in range(100):
            s.sendto(b"q", ("127.0.0.1", 5353))
            try:
                reply = s.recvfrom(100)[0]
                break
            except socket.timeout:
                pass
        s.close()
        assert reply == b"ack:q"
        assert c.stdout.read() == b"q\n"
        c.wait(10)


def test_outbound_traffic_is_masqueraded(busybox, outside, leakcheck):
    srv, thread, accepted = outside.tcp_server(7000)
    try:
        r = run(busybox, f"echo out | nc -w 5 {outside.address} 7000", network="bridge")
        thread.join(10)
    finally:
        srv.close()
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello from outside\n"
    (peer, data), = accepted
    assert data == b"out\n"
    assert peer[0] == "192.0.2.1"    # the host's address, not the container's 10.88.x.y


def test_names_resolve_on_a_user_defined_network(busybox, network_factory, leakcheck):
    network_factory("names")
    with Container(rootfs=busybox, command=SLEEP, network="names", name="first") as first:
        first.start()
        with Container(rootfs=busybox, command=SLEEP, network="names", name="second") as second:
            second.start()
            # the later container is known to the earlier one too (its hosts file was rewritten)
            r = run(busybox, "ping -c 1 -W 2 first && ping -c 1 -W 2 second", network="names")
            assert r.returncode == 0, r.stdout + r.stderr
            assert f"({first.ip_address})" in r.stdout and f"({second.ip_address})" in r.stdout
            with open(first._rootfs.dir / "hosts") as f:
                assert f"{second.ip_address}\tsecond" in f.read()
        # and forgets it when it is gone
        with open(first._rootfs.dir / "hosts") as f:
            assert "second" not in f.read()


def test_default_bridge_does_not_resolve_names(busybox, leakcheck):
    with Container(rootfs=busybox, command=SLEEP, network="bridge", name="anon") as c:
        c.start()
        # a loopback nameserver refuses at once: the lookup fails fast instead of timing out
        r = run(busybox, "ping -c 1 -W 1 anon", network="bridge", dns=["127.0.0.1"])
        assert r.returncode != 0     # docker: names resolve on user-defined networks only


def test_container_mode_shares_interfaces(busybox, leakcheck):
    with Container(rootfs=busybox, command=SLEEP, network="bridge", name="owner") as owner:
        owner.start()
        for ref in ("container:owner", f"container:{owner.id[:12]}", owner):
            r = run(busybox, "ip -4 -o addr show eth0", network=ref)
            assert r.returncode == 0, r.stderr
            assert f"inet {owner.ip_address}/" in r.stdout


def test_thirty_parallel_containers_get_distinct_addresses(busybox, network_factory, leakcheck):
    network_factory("par", subnet="10.77.0.0/24")

    def one(_):
        r = run(busybox, "ip -4 -o addr show eth0", network="par")
        assert r.returncode == 0, r.stderr
        return r.stdout.split("inet ")[1].split("/")[0]

    with ThreadPoolExecutor(30) as pool:
        addresses = list(pool.map(one, range(30)))
    assert len(set(addresses)) == 30
    assert all(a.startswith("10.77.0.") and a != "10.77.0.1" for a in addresses)


@pytest.mark.slow
def test_200_runs_leave_nothing_behind(busybox, test_host, store_root, leakcheck):
    from pycontain.network import ipam, store

    assert Container(rootfs=busybox, command=["true"], network="bridge").run().returncode == 0
    test_host.wait_no_veths()
    before = test_host.links()              # the bridge now exists, and stays
    assert before == ["lo", "pycontain0"]
    for i in range(200):
        ports = ["127.0.0.1:9000:80"] if i % 2 else []
        r = Container(rootfs=busybox, command=["true"], network="bridge", ports=ports).run()
        assert r.returncode == 0
    # no veth: each went with its container's namespace (the kernel frees those asynchronously)
    test_host.wait_no_veths()
    assert test_host.links() == before
    assert test_host.published_entries() == []
    assert ipam.all_leases(store.get("bridge")) == []


SPOOF_TO_HOST_LOOPBACK = """
import socket, struct, sys, time
gw, port = sys.argv[1], int(sys.argv[2])
# learn the gateway's MAC address (an ARP exchange, then the kernel's table)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.sendto(b"x", (gw, 9))
time.sleep(0.3)
mac = next(line.split()[3] for line in open("/proc/net/arp") if line.startswith(gw + " "))
me = socket.inet_aton(sys.argv[3])
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff)
    return ~(s + (s >> 16)) & 0xffff
payload = b"secret"
udp = struct.pack("!HHHH", 40000, port, 8 + len(payload), 0) + payload
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, me, socket.inet_aton("127.0.0.1"))
ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
src = open("/sys/class/net/eth0/address").read().strip()
frame = bytes.fromhex(mac.replace(":", "")) + bytes.fromhex(src.replace(":", "")) + b"\\x08\\x00" + ip + udp
for _ in range(5):
    s.send(frame)
    time.sleep(0.05)
print("sent", flush=True)
"""


def test_containers_cannot_reach_the_hosts_loopback_services(busybox, python_mounts, leakcheck):
    """route_localnet is on for the bridge (published ports on 127.0.0.1 need
    it); a container sending packets for 127.0.0.1 to its gateway (a raw
    socket: CAP_NET_RAW is a default capability) must still not reach a
    service the host keeps on its loopback."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind(("127.0.0.1", 7777))
    srv.settimeout(1)
    try:
        script = ('addr=$(ip -4 -o addr show eth0 | sed "s/.*inet \\([0-9.]*\\).*/\\1/"); '
                  'exec python3 -c "$0" 10.88.0.1 7777 "$addr"')
        c = Container(rootfs=busybox, command=["sh", "-c", script, SPOOF_TO_HOST_LOOPBACK], network="bridge",
                      mounts=python_mounts)
        r = c.run(capture_output=True, text=True, timeout=30)
        try:
            reached = srv.recvfrom(100)
        except socket.timeout:
            reached = None
    finally:
        srv.close()
    assert r.stdout == "sent\n", r.stderr        # the spoofed packets did leave the container
    assert reached is None, f"the host's loopback service was reached: {reached}"


def test_create_then_start_on_a_bridge(busybox, leakcheck):
    with Container(rootfs=busybox, command=["ip", "-4", "-o", "addr", "show", "eth0"], network="bridge") as c:
        c.create(stdout=PIPE)
        assert c.ip_address.startswith("10.88.")
        c.start()
        assert f"inet {c.ip_address}/16" in c.stdout.read().decode()
        assert c.wait(10) == 0


def test_resolv_conf_drops_loopback_nameservers():
    from pycontain.network.etcfiles import resolv_conf_text

    host = "search example.com\nnameserver 127.0.0.53\noptions edns0\n"
    assert resolv_conf_text(host) == "search example.com\noptions edns0\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"
    assert resolv_conf_text("nameserver 192.0.2.53\nnameserver ::1\n") == "nameserver 192.0.2.53\n"
    assert resolv_conf_text(host, ["192.0.2.1"]) == "search example.com\noptions edns0\nnameserver 192.0.2.1\n"


def test_owner_leaving_takes_the_network_from_container_mode_joiners(busybox, test_host, leakcheck):
    owner = Container(rootfs=busybox, command=SLEEP, network="bridge")
    owner.start()
    joiner = Container(rootfs=busybox, command=SLEEP, network=owner)
    joiner.start()
    try:
        assert len(test_host.veths()) == 1
        owner.remove()
        # the joiner keeps the namespace alive, so its veth is deleted at once
        # (not left to the namespace's end) and the freed address is really free
        assert test_host.veths() == []
    finally:
        joiner.remove()
        owner.remove()


def test_networks_are_isolated_from_each_other(busybox, network_factory, leakcheck):
    network_factory("left", subnet="10.71.0.0/24")
    network_factory("right", subnet="10.72.0.0/24")
    server = "sleep 30 | nc -l -p 6000"
    with Container(rootfs=busybox, command=["sh", "-c", server], network="right") as srv:
        srv.start(stdout=PIPE)
        probe = f"for i in 1 2 3; do echo x | nc -w 1 {srv.ip_address} 6000 && exit 0; sleep 0.1; done; exit 1"
        assert run(busybox, probe, network="right").returncode == 0       # same network: reachable
    with Container(rootfs=busybox, command=["sh", "-c", server], network="right") as srv:
        srv.start(stdout=PIPE)
        probe = f"for i in 1 2 3; do echo x | nc -w 1 {srv.ip_address} 6000 && exit 0; sleep 0.1; done; exit 1"
        assert run(busybox, probe, network="left").returncode == 1        # another network: not


def test_internal_network_has_no_way_out(busybox, network_factory, outside, python_mounts, leakcheck):
    from pycontain.network import _netlink

    network_factory("island", subnet="10.73.0.0/24", internal=True)
    assert "default" not in run(busybox, "ip route", network="island").stdout
    # UDP, one way: without the engine's forward rules the datagrams would
    # arrive even though nothing could answer them (no NAT, no route back)
    with _netlink.inside_netns(outside.fd):
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind((outside.address, 7001))
    sink.settimeout(1)
    send = ("import socket, time\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            f"for _ in range(5):\n    s.sendto(b'out', ('{outside.address}', 7001)); time.sleep(0.05)\nprint('sent')")
    try:
        r = Container(rootfs=busybox, command=["sh", "-c", 'ip route add default via 10.73.0.1 && python3 -c "$0"',
                                               send], network="island", cap_add=["NET_ADMIN"],
                      mounts=python_mounts).run(capture_output=True, text=True, timeout=30)
        assert r.stdout == "sent\n", r.stderr          # a container that adds a route itself...
        try:
            got = sink.recvfrom(100)
        except socket.timeout:
            got = None
    finally:
        sink.close()
    assert got is None, f"a datagram left the internal network: {got}"   # ...still gets nowhere


def test_a_container_reaches_another_ones_published_port_through_the_host(busybox, leakcheck):
    # With br_netfilter, bridged answers are un-NAT'ed by conntrack anyway;
    # without it (this namespace's setting only) the engine's rule must do it.
    knob = "/proc/sys/net/bridge/bridge-nf-call-iptables"
    if os.path.exists(knob):
        with open(knob, "w") as f:
            f.write("0")
    server = "while true; do echo pong | nc -l -p 80; done"
    with Container(rootfs=busybox, command=["sh", "-c", server], network="bridge", ports=["8086:80"]) as c:
        c.start()
        r = run(busybox, "for i in $(seq 50); do r=$(echo ping | nc -w 2 10.88.0.1 8086) && "
                         '[ -n "$r" ] && echo "$r" && exit 0; sleep 0.05; done; exit 1', network="bridge")
        assert r.returncode == 0 and r.stdout == "pong\n", r.stdout + r.stderr
