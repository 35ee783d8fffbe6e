"""--dns-search, Config.ExposedPorts and NetworkSettings.Networks, side by
side with dockerd 20.10: the same command line to each, the results compared."""
import json

import pytest

from .conftest import pycontain

pytestmark = pytest.mark.usefixtures("clean_both")


def both(dockerd, *args, **kw):
    return dockerd.docker(*args, **kw), pycontain(*args, **kw)


@pytest.mark.parametrize("network", ["none", "host"])
def test_dns_search_writes_the_search_line(dockerd, network):
    for flags, want in ((("--dns-search", "example.com", "--dns-search", "b.example."), "search example.com b.example\n"),
                        (("--dns-search", "."), "")):
        d, p = both(dockerd, "run", "--rm", "--network", network, *flags, "busybox", "sh", "-c",
                    "grep ^search /etc/resolv.conf; true")
        assert d.returncode == p.returncode == 0, p.stderr
        assert p.stdout == d.stdout == want, flags
    d, p = both(dockerd, "create", "--network", "none", "--dns-search", "example.com", "busybox", "true")
    for side, cid in ((dockerd.docker, d.stdout.strip()), (pycontain, p.stdout.strip())):
        r = side("inspect", "-f", "{{json .HostConfig.DnsSearch}}", cid)
        assert r.stdout.strip() == '["example.com"]'


def test_dns_search_refuses_what_is_not_a_domain(dockerd):
    d, p = both(dockerd, "run", "--rm", "--network", "none", "--dns-search", "a b", "busybox", "true")
    assert d.returncode == p.returncode == 125
    assert d.stderr.splitlines()[0] == p.stderr.splitlines()[0]


def test_exposed_ports_and_networks_in_inspect(dockerd):
    fmt = "{{json .Config.ExposedPorts}}|{{json .NetworkSettings.Networks}}"
    for argv in (("--expose", "80", "--expose", "90/udp", "--expose", "7000-7001"), ()):
        d, p = both(dockerd, "create", "--network", "none", *argv, "busybox", "true")
        assert d.returncode == p.returncode == 0, p.stderr
        dout = dockerd.docker("inspect", "-f", fmt, d.stdout.strip()).stdout.strip()
        pout = pycontain("inspect", "-f", fmt, p.stdout.strip()).stdout.strip()
        dports, dnets = dout.split("|")
        pports, pnets = pout.split("|")
        assert json.loads(pports) == json.loads(dports), argv
        assert json.loads(pnets) == json.loads(dnets), argv
    # host: the network's name, the same keys
    d, p = both(dockerd, "run", "-d", "--network", "host", "busybox", "sleep", "30")
    dnets = json.loads(dockerd.docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", d.stdout.strip()).stdout)
    pnets = json.loads(pycontain("inspect", "-f", "{{json .NetworkSettings.Networks}}", p.stdout.strip()).stdout)
    assert list(pnets) == list(dnets) == ["host"]
    assert sorted(pnets["host"]) == sorted(dnets["host"])
