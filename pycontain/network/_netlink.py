"""A small synchronous rtnetlink client for the container start path.

The start path sends four requests per container (veth pair; eth0 up,
address, default route). pyroute2's IPRoute costs about a millisecond per
request here (its asyncio core) and its message classes ~0.1-0.4 ms of CPU
to encode each one, which is a fifth of the whole budget of a bridged start.
So these few fixed messages are packed with struct, sent several per send on
a plain netlink socket and acknowledged together. tests/network/test_netlink.py
checks every one byte for byte against pyroute2's encoding of the same
request; pyroute2 remains the library for everything else (route dumps,
tests), where time does not matter.
"""
from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct

from .. import _launch
from ..errors import NetworkError

NETLINK_ROUTE = 0
RTM_NEWLINK, RTM_DELLINK, RTM_NEWADDR, RTM_NEWROUTE = 16, 17, 20, 24
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
NLMSG_ERROR = 2
IFF_UP = 0x1
AF_INET = socket.AF_INET
RT_TABLE_MAIN, RTPROT_STATIC, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 4, 0, 1
# attribute numbers (linux/if_link.h, if_addr.h, rtnetlink.h, veth.h)
IFLA_IFNAME, IFLA_MASTER, IFLA_LINKINFO, IFLA_NET_NS_FD = 3, 10, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST = 1, 2, 4
RTA_OIF, RTA_GATEWAY = 4, 5

_NLMSGHDR = struct.Struct("=IHHII")
_IFINFOMSG = struct.Struct("=BxHiII")     # family, type, index, flags, change
_IFADDRMSG = struct.Struct("=BBBBI")      # family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")      # family, dst_len, src_len, tos, table, protocol, scope, type, flags


def _attr(kind: int, data: bytes) -> bytes:
    n = 4 + len(data)
    return struct.pack("=HH", n, kind) + data + b"\0" * ((4 - n % 4) % 4)


def _str(kind, text):
    return _attr(kind, text.encode() + b"\0")


def _u32(kind, value):
    return _attr(kind, struct.pack("=I", value))


def _ip(kind, address):
    return _attr(kind, socket.inet_aton(address))


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

    def transact(self, requests, what):
        """Sends [((payload, type, flags), label)] in one datagram and waits for
        every ack. Raises NetworkError naming the first request refused."""
        seqs, chunks = {}, []
        for (payload, msg_type, flags), label in requests:
            self._seq += 1
            seqs[self._seq] = label
            chunks.append(_NLMSGHDR.pack(_NLMSGHDR.size + len(payload), msg_type,
                                         NLM_F_REQUEST | NLM_F_ACK | flags, self._seq, 0) + payload)
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


def link_msg(ifname=None, index=0, flags=0, change=0, attrs=b"") -> bytes:
    """An ifinfomsg with an optional name and already-packed attributes."""
    return (_IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, flags, change)
            + (_str(IFLA_IFNAME, ifname) if ifname else b"") + attrs)


def veth_msg(host_name, peer_name, peer_netns_fd, master_index) -> bytes:
    """A veth pair: `host_name`, up, on the bridge `master_index` here, and
    `peer_name` created directly inside the namespace `peer_netns_fd`. The peer
    cannot be brought up in the same message (the kernel opens it before the
    pair is linked: ENOTCONN); that is done inside its namespace."""
    peer = link_msg(peer_name, attrs=_u32(IFLA_NET_NS_FD, peer_netns_fd) if peer_netns_fd is not None else b"")
    linkinfo = _str(IFLA_INFO_KIND, "veth") + _attr(IFLA_INFO_DATA, _attr(VETH_INFO_PEER, peer))
    attrs = (_u32(IFLA_MASTER, master_index) if master_index else b"") + _attr(IFLA_LINKINFO, linkinfo)
    return link_msg(host_name, flags=IFF_UP, change=IFF_UP, attrs=attrs)


def bridge_msg(name) -> bytes:
    return link_msg(name, flags=IFF_UP, change=IFF_UP, attrs=_attr(IFLA_LINKINFO, _str(IFLA_INFO_KIND, "bridge")))


def addr_msg(index, address, prefixlen, broadcast=None) -> bytes:
    return (_IFADDRMSG.pack(AF_INET, prefixlen, 0, 0, index) + _ip(IFA_LOCAL, address) + _ip(IFA_ADDRESS, address)
            + (_ip(IFA_BROADCAST, broadcast) if broadcast else b""))


def default_route_msg(gateway, index) -> bytes:
    return (_RTMSG.pack(AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_STATIC, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0)
            + _ip(RTA_GATEWAY, gateway) + _u32(RTA_OIF, index))


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

