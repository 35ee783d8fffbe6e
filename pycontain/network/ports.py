"""Published ports: docker's -p forms, and holding the host port while published.

    "8080:80"                 host port 8080 (any address) -> container port 80/tcp
    "127.0.0.1:8080:80/udp"   only on 127.0.0.1, UDP
    "80"                      a free host port chosen by the kernel -> 80/tcp
    "127.0.0.1::80"           the same on one address

A published host port is held with a bound (never listening) socket for as
long as it is published, the way docker-proxy holds it: another container,
another pycontain process or a host program binding it afterwards fails, and
publishing a port some program already uses fails with a clear error instead
of silently taking its traffic. Incoming packets are DNAT'ed before they
would reach that socket.
"""
from __future__ import annotations

import errno
import ipaddress
import socket
from dataclasses import dataclass

from ..errors import ConfigError, PortAlreadyAllocated


@dataclass(frozen=True)
class PortMapping:
    host_ip: str | None          # None: every address of the host
    host_port: int               # 0: choose a free one at publish time
    container_port: int
    proto: str = "tcp"

    def __str__(self):
        ip = f"{self.host_ip}:" if self.host_ip else ""
        return f"{ip}{self.host_port}->{self.container_port}/{self.proto}"

    def to_dict(self):
        return {"host_ip": self.host_ip, "host_port": self.host_port,
                "container_port": self.container_port, "proto": self.proto}

    @classmethod
    def from_dict(cls, d):
        return cls(d["host_ip"], d["host_port"], d["container_port"], d["proto"])


def _port(text, spec, allow_zero=False):
    if not text.isdigit():
        raise ConfigError(f"invalid port {text!r} in published port {spec!r}")
    n = int(text)
    if not (0 if allow_zero else 1) <= n <= 65535:
        raise ConfigError(f"port {n} out of range (1-65535) in published port {spec!r}")
    return n


def parse_publish(spec) -> PortMapping:
    """One -p value (or a PortMapping) -> PortMapping; ConfigError saying what is wrong."""
    if isinstance(spec, PortMapping):
        return spec
    if isinstance(spec, int):
        spec = str(spec)
    if not isinstance(spec, str) or not spec:
        raise ConfigError(f"invalid published port {spec!r}: expected [IP:][HOSTPORT:]PORT[/tcp|udp]")
    body, _, proto = spec.partition("/")
    proto = proto or "tcp"
    if proto not in ("tcp", "udp"):
        raise ConfigError(f"invalid protocol {proto!r} in published port {spec!r} (tcp or udp)")
    if "-" in body:
        raise ConfigError(f"port ranges are not supported yet: {spec!r}")
    parts = body.rsplit(":", 2)
    host_ip = None
    if len(parts) == 3:
        ip_text = parts[0].strip("[]")
        try:
            ip = ipaddress.ip_address(ip_text)
        except ValueError:
            raise ConfigError(f"invalid host address {parts[0]!r} in published port {spec!r}") from None
        if ip.version != 4:
            raise ConfigError(f"IPv6 host addresses are not supported yet: {spec!r}")
        host_ip = None if ip.is_unspecified else str(ip)
        parts = parts[1:]
    if len(parts) == 2:
        host_port = _port(parts[0], spec) if parts[0] else 0
        container_port = _port(parts[1], spec)
    else:
        host_port, container_port = 0, _port(parts[0], spec)
    return PortMapping(host_ip, host_port, container_port, proto)


class PortReservation:
    """The bound sockets that hold a container's published host ports."""

    def __init__(self):
        self.sockets = []

    def reserve(self, mappings) -> list:
        """Binds each host port (choosing free ones for port 0). Returns the
        mappings with their actual host ports; on failure nothing stays held."""
        out = []
        try:
            for m in mappings:
                kind = socket.SOCK_STREAM if m.proto == "tcp" else socket.SOCK_DGRAM
                s = socket.socket(socket.AF_INET, kind | socket.SOCK_CLOEXEC)
                self.sockets.append(s)
                try:
                    s.bind((m.host_ip or "0.0.0.0", m.host_port))
                except OSError as e:
                    where = f"{m.host_ip or '0.0.0.0'}:{m.host_port}/{m.proto}"
                    if e.errno == errno.EADDRINUSE:
                        raise PortAlreadyAllocated(
                            f"cannot publish {where}: the port is already allocated "
                            "(by another container or a program on the host)") from None
                    if e.errno == errno.EADDRNOTAVAIL:
                        raise ConfigError(f"cannot publish {where}: the host has no address {m.host_ip}") from None
                    raise PortAlreadyAllocated(f"cannot publish {where}: {e.strerror}") from None
                out.append(PortMapping(m.host_ip, s.getsockname()[1], m.container_port, m.proto))
            seen = set()
            for m in out:
                key = (m.host_ip, m.host_port, m.proto)
                if key in seen:
                    raise ConfigError(f"host port {m.host_port}/{m.proto} is published twice")
                seen.add(key)
        except BaseException:
            self.release()
            raise
        return out

    def release(self):
        for s in self.sockets:
            s.close()
        self.sockets = []
