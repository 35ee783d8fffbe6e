"""Network namespaces made ahead of time, off the start path.

Creating a network namespace is the most expensive part of clone here
(~375 us of the ~1 ms floor, FIELD-NOTES.md). For network="none" every
container needs a fresh, empty one with loopback up, and nothing about it
depends on the container: a background thread keeps a few ready, and the
launcher joins one with setns (the way CNI hands a prepared namespace to a
runtime). A namespace is used once; when the pool is empty, or disabled with
PYCONTAIN_NETNS_POOL=0, the child simply unshares its own.
"""
from __future__ import annotations

import collections
import fcntl
import os
import socket
import struct
import threading

from . import _launch

POOL_SIZE = 4
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


def _loopback_up():
    """Brings lo up in the calling thread's network namespace."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifr = fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack("16sh22x", b"lo", 0))
        flags = struct.unpack("16sh22x", ifr)[1] | IFF_UP
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sh22x", b"lo", flags))


def new_isolated_netns() -> int:
    """An fd of a new, empty network namespace whose loopback is up."""
    return _launch.new_namespace_fd(_launch.CLONE_NEWNET, inside=_loopback_up)


class NetnsPool:
    def __init__(self, size=POOL_SIZE):
        self.size = size
        self.enabled = os.environ.get("PYCONTAIN_NETNS_POOL", "1") != "0" and size > 0
        self._ready = collections.deque()
        self._wanted = threading.Condition()
        self._pid = None
        self._thread = None

    def take(self) -> int | None:
        """A ready namespace fd (the caller owns and closes it), or None."""
        if not self.enabled:
            return None
        if self._pid != os.getpid():
            self._restart()  # first use, or we are a fork of the process that had the pool
        try:
            fd = self._ready.popleft()
        except IndexError:
            fd = None
        with self._wanted:
            self._wanted.notify()
        return fd

    def _restart(self):
        self._pid = os.getpid()
        self._ready = collections.deque()
        self._thread = threading.Thread(target=self._fill, name="pycontain-netns-pool", daemon=True)
        self._thread.start()

    def _fill(self):
        me = os.getpid()
        while self._pid == me:
            if len(self._ready) < self.size:
                try:
                    self._ready.append(new_isolated_netns())
                except OSError:
                    self.enabled = False  # not permitted here: children unshare their own
                    return
                continue
            with self._wanted:
                self._wanted.wait()


pool = NetnsPool()
