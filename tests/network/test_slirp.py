"""Rootless networking through slirp4netns: the container's own namespace,
its traffic carried by a process of the user's. Traffic goes only to a
server this test runs on the host's loopback (allow_host_loopback)."""
import os
import shutil
import socket
import tempfile
import threading

import pytest
from nettools import tcp_request

from pycontain import ConfigError, Container, PortAlreadyAllocated

from nobody import NobodysCopy, as_nobody

pytestmark = pytest.mark.skipif(not shutil.which("slirp4netns"), reason="needs slirp4netns (tests/run.sh installs it)")


@pytest.fixture
def loopback_server():
    """A one-shot TCP server on 127.0.0.1 that answers 'pong'."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    srv.settimeout(20)

    def serve():
        try:
            conn, _ = srv.accept()
            with conn:
                conn.recv(64)
                conn.sendall(b"pong\n")
        except OSError:
            pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    srv.close()
    t.join(5)


def test_slirp_reaches_the_hosts_loopback_only_when_allowed(busybox, loopback_server, leakcheck):
    script = f"ip -4 -o addr show tap0 | grep -o '10.0.2.100'; cat /etc/resolv.conf; " \
             f"echo ping | nc -w 5 10.0.2.2 {loopback_server}"
    r = Container(rootfs=busybox, command=["sh", "-c", script],
                  network="slirp4netns:allow_host_loopback=true").run(capture_output=True, text=True, timeout=30)
    assert r.stdout.split("\n")[0] == "10.0.2.100", r
    assert "nameserver 10.0.2.3" in r.stdout
    assert r.stdout.rstrip().endswith("pong"), r


def test_slirp_keeps_the_hosts_loopback_out_by_default(busybox, loopback_server, leakcheck):
    r = Container(rootfs=busybox, command=["sh", "-c", f"echo ping | nc -w 2 10.0.2.2 {loopback_server} || echo refused"],
                  network="slirp4netns").run(capture_output=True, text=True, timeout=30)
    assert "pong" not in r.stdout and "refused" in r.stdout


def test_rootless_bridge_means_slirp4netns(busybox, workdir):
    copy = NobodysCopy(busybox, workdir / "rootless-slirp")
    try:
        def fn():
            r = Container(rootfs=str(copy.rootfs), command=["sh", "-c", "ip -4 -o addr show tap0"],
                          network="bridge", root=str(copy.store)).run(capture_output=True, text=True, timeout=30)
            return [r.returncode, r.stdout]

        out = as_nobody(fn)
        assert "ok" in out, out
        assert "10.0.2.100" in out["ok"][1]
        out = as_nobody(lambda: Container(rootfs=str(copy.rootfs), command=["true"], network="mynet",
                                          root=str(copy.store)).run().returncode)
        assert out["error"].startswith("ConfigError: network 'mynet' needs root")
    finally:
        copy.remove()


def test_bad_slirp_options(busybox):
    with pytest.raises(ConfigError, match="allow_host_loopback"):
        Container(rootfs=busybox, command=["true"], network="slirp4netns:mtu=9000")


SERVER = "while true; do echo pong | nc -l -p 80; done"


def test_slirp_publishes_ports(busybox, leakcheck):
    with Container(rootfs=busybox, command=["sh", "-c", SERVER], network="slirp4netns",
                   ports=["127.0.0.1::80"]) as c:
        c.start()
        (p,) = c.published_ports
        assert p.host_ip == "127.0.0.1" and p.host_port > 0 and p.container_port == 80
        api_dir = c._slirp._api_dir
        assert tcp_request("127.0.0.1", p.host_port) == b"pong\n"
        c.kill()
        c.wait(10)
    assert not os.path.exists(api_dir)


def test_slirp_port_already_in_use_is_a_clear_error(busybox, leakcheck):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        c = Container(rootfs=busybox, command=["sleep", "30"], network="slirp4netns", ports=[f"127.0.0.1:{port}:80"])
        with pytest.raises(PortAlreadyAllocated, match=f"cannot publish 127.0.0.1:{port}/tcp"):
            c.start()
        assert c._slirp is None
        assert not [d for d in os.listdir(tempfile.gettempdir()) if d.startswith("pycontain-slirp-")]
    finally:
        taken.close()


def test_rootless_published_port(busybox, workdir):
    copy = NobodysCopy(busybox, workdir / "rootless-ports")
    try:
        def fn():
            with Container(rootfs=str(copy.rootfs), command=["sh", "-c", SERVER], root=str(copy.store),
                           network="bridge", ports=["127.0.0.1::80"]) as c:
                c.start()
                (p,) = c.published_ports
                answer = tcp_request("127.0.0.1", p.host_port).decode()
                c.kill()
                c.wait(10)
                return answer

        assert as_nobody(fn) == {"ok": "pong\n"}
    finally:
        copy.remove()
