"""The start path's hand-packed netlink requests equal pyroute2's encoding of the same requests."""
import pytest
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from pycontain.network import _netlink as nl


def _pyroute2(msg):
    msg["header"]["type"] = 16
    msg.encode()
    return bytes(msg.data)[16:]      # without the netlink header


def _ifinfmsg(ifname=None, index=0, flags=0, change=0, attrs=()):
    m = ifinfmsg()
    m["family"], m["index"], m["flags"], m["change"] = 0, index, flags, change
    m["attrs"] = ([("IFLA_IFNAME", ifname)] if ifname else []) + list(attrs)
    return m


@pytest.mark.parametrize("netns_fd, master", [(7, 5), (None, 0), (12, 0)])
def test_veth_request(netns_fd, master):
    peer = {"attrs": [("IFLA_IFNAME", "eth0")] + ([("IFLA_NET_NS_FD", netns_fd)] if netns_fd is not None else []),
            "flags": 0, "change": 0}
    linkinfo = {"attrs": [("IFLA_INFO_KIND", "veth"), ("IFLA_INFO_DATA", {"attrs": [("VETH_INFO_PEER", peer)]})]}
    ref = _ifinfmsg("veth0123456789a", flags=1, change=1,
                    attrs=([("IFLA_MASTER", master)] if master else []) + [("IFLA_LINKINFO", linkinfo)])
    assert nl.veth_msg("veth0123456789a", "eth0", netns_fd, master) == _pyroute2(ref)


def test_link_and_bridge_requests():
    assert nl.link_msg(index=3, flags=1, change=1) == _pyroute2(_ifinfmsg(index=3, flags=1, change=1))
    ref = _ifinfmsg("pc-0123456789ab", flags=1, change=1,
                    attrs=[("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "bridge")]})])
    assert nl.bridge_msg("pc-0123456789ab") == _pyroute2(ref)


@pytest.mark.parametrize("broadcast", [None, "10.88.255.255"])
def test_address_request(broadcast):
    m = ifaddrmsg()
    m["family"], m["prefixlen"], m["index"] = 2, 16, 4
    m["attrs"] = [("IFA_LOCAL", "10.88.0.7"), ("IFA_ADDRESS", "10.88.0.7")] + (
        [("IFA_BROADCAST", broadcast)] if broadcast else [])
    assert nl.addr_msg(4, "10.88.0.7", 16, broadcast) == _pyroute2(m)


def test_default_route_request():
    m = rtmsg()
    m["family"], m["table"], m["proto"], m["scope"], m["type"], m["dst_len"] = 2, 254, 4, 0, 1, 0
    m["attrs"] = [("RTA_GATEWAY", "10.88.0.1"), ("RTA_OIF", 2)]
    assert nl.default_route_msg("10.88.0.1", 2) == _pyroute2(m)
