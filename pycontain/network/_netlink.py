"""A small synchronous rtnetlink client for the container start path.

Messages are built and parsed with pyroute2's netlink message classes
(ifinfmsg, ifaddrmsg, rtmsg). They are sent on a plain netlink socket of our
own, several per send and acknowledged together, because pyroute2's IPRoute
object costs about a millisecond per request (its asyncio core) and a
container start can only afford a few hundred microseconds for all of it.
pyroute2's IPRoute is still used where time does not matter (route dumps).
"""
from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct

from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from .. import _launch
from ..errors import NetworkError

NETLINK_ROUTE = 0
RTM_NEWLINK, RTM_DELLINK, RTM_NEWADDR, RTM_NEWROUTE = 16, 17, 20, 24
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
NLMSG_ERROR = 2
IFF_UP = 0x1
AF_INET = socket.AF_INET
RT_TABLE_MAIN, RTPROT_STATIC, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 4, 0, 1

_NLMSGHDR = struct.Struct("=IHHII")


class Rtnl:
    """One NETLINK_ROUTE socket, bound to the network namespace it was made in."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self._seq = 0

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _encode(self, msg, msg_type, flags):
        self._seq += 1
        msg["header"]["type"] = msg_type
        msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_ACK | flags
        msg["header"]["sequence_number"] = self._seq
        msg.encode()
        return self._seq, bytes(msg.data)

    def transact(self, requests, what):
        """Sends [(msg, type, flags)] in one datagram and waits for every ack.
        Raises NetworkError naming the first request the kernel refused."""
        seqs, chunks = {}, []
        for (msg, msg_type, flags), label in requests:
            seq, data = self._encode(msg, msg_type, flags)
            seqs[seq] = label
            chunks.append(data)
        self.sock.send(b"".join(chunks))
        first_error = None
        while seqs:
            data = self.sock.recv(65536)
            off = 0
            while off + _NLMSGHDR.size <= len(data):
                length, mtype, _, seq, _ = _NLMSGHDR.unpack_from(data, off)
                if mtype == NLMSG_ERROR and seq in seqs:
                    (code,) = struct.unpack_from("=i", data, off + _NLMSGHDR.size)
                    label = seqs.pop(seq)
                    if code and first_error is None:
                        first_error = (label, -code)
                off += (length + 3) & ~3 if length else len(data)
        if first_error:
            label, err = first_error
            raise NetworkError(f"{what}: {label}: {os.strerror(err)}")


def link_msg(ifname=None, index=0, flags=0, change=0, attrs=()):
    m = ifinfmsg()
    m["family"] = socket.AF_UNSPEC
    m["index"] = index
    m["flags"], m["change"] = flags, change
    m["attrs"] = ([("IFLA_IFNAME", ifname)] if ifname else []) + list(attrs)
    return m


def veth_msg(host_name, peer_name, peer_netns_fd, master_index, mtu=None):
    """A veth pair: `host_name`, up, on the bridge `master_index` here, and
    `peer_name` created directly inside the namespace `peer_netns_fd`. The peer
    cannot be brought up in the same message (the kernel opens it before the
    pair is linked: ENOTCONN); that is done inside its namespace."""
    extra = [("IFLA_MTU", mtu)] if mtu else []
    peer = {"attrs": [("IFLA_IFNAME", peer_name), ("IFLA_NET_NS_FD", peer_netns_fd)] + extra if peer_netns_fd is not None else [("IFLA_IFNAME", peer_name)],
            "flags": 0, "change": 0}
    linkinfo = {"attrs": [("IFLA_INFO_KIND", "veth"),
                          ("IFLA_INFO_DATA", {"attrs": [("VETH_INFO_PEER", peer)]})]}
    return link_msg(host_name, flags=IFF_UP, change=IFF_UP,
                    attrs=([("IFLA_MASTER", master_index)] if master_index else []) + [("IFLA_LINKINFO", linkinfo)] + extra)


def bridge_msg(name):
    linkinfo = {"attrs": [("IFLA_INFO_KIND", "bridge")]}
    return link_msg(name, flags=IFF_UP, change=IFF_UP, attrs=[("IFLA_LINKINFO", linkinfo)])


def addr_msg(index, address, prefixlen, broadcast=None):
    m = ifaddrmsg()
    m["family"] = AF_INET
    m["prefixlen"] = prefixlen
    m["index"] = index
    attrs = [("IFA_LOCAL", address), ("IFA_ADDRESS", address)]
    if broadcast:
        attrs.append(("IFA_BROADCAST", broadcast))
    m["attrs"] = attrs
    return m


def default_route_msg(gateway, index):
    m = rtmsg()
    m["family"] = AF_INET
    m["table"] = RT_TABLE_MAIN
    m["proto"] = RTPROT_STATIC
    m["scope"] = RT_SCOPE_UNIVERSE
    m["type"] = RTN_UNICAST
    m["dst_len"] = 0
    m["attrs"] = [("RTA_GATEWAY", gateway), ("RTA_OIF", index)]
    return m


# ---- network namespaces of the calling thread -----------------------------------

_ffi, _lib = _launch.ffi, _launch.lib


def _setns(fd, what):
    err = _ffi.new("struct pc_error *")
    if _lib.pc_setns(fd, _launch.CLONE_NEWNET, err) < 0:
        raise NetworkError(f"setns into {what}: {os.strerror(err.err)}")


@contextlib.contextmanager
def inside_netns(netns_fd):
    """Runs the block with this thread in another network namespace. Sockets
    made inside stay bound to it after the thread went back."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(netns_fd, "the container's network namespace")
        try:
            yield
        finally:
            # A thread left in the wrong namespace would configure the wrong
            # machine from then on: failing to go back is fatal.
            _setns(own, "the original network namespace")
    finally:
        os.close(own)


def if_index(name) -> int:
    """Index of an interface of the calling thread's namespace, 0 if none."""
    try:
        return socket.if_nametoindex(name)
    except OSError as e:
        if e.errno in (errno.ENODEV, errno.ENXIO) or "no interface" in str(e).lower():
            return 0
        raise

