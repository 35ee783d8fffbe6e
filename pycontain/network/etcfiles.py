"""/etc/hosts and /etc/resolv.conf for a container on a network.

Names on a user-defined network resolve through /etc/hosts: every member's
file lists the other live members (by container name and hostname), and is
rewritten in place (the file is bind-mounted, so its inode must stay) when a
member joins or leaves. This needs no DNS server process, costs a few file
writes per start, and covers what docker's embedded DNS does for plain name
lookups; it does not give round-robin aliases or answer for containers that
live under another store root.
"""
from __future__ import annotations

import ipaddress

from ..errors import ConfigError

LOCALHOST = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
# docker's fallback when the host only has loopback nameservers.
FALLBACK_NAMESERVERS = ("8.8.8.8", "8.8.4.4")


def parse_add_host(spec) -> tuple:
    """docker's --add-host NAME:IP (or a (name, ip) pair) -> (name, ip)."""
    if isinstance(spec, (tuple, list)) and len(spec) == 2:
        name, ip = spec
    elif isinstance(spec, str) and ":" in spec:
        name, ip = spec.split(":", 1)
    else:
        raise ConfigError(f"invalid add-host {spec!r}: expected NAME:IP")
    try:
        ip = str(ipaddress.ip_address(ip.strip("[]")))
    except ValueError:
        raise ConfigError(f"invalid address {ip!r} in add-host {spec!r}") from None
    if not name or any(c.isspace() for c in name) or "#" in name:
        raise ConfigError(f"invalid host name {name!r} in add-host {spec!r}")
    return (name, ip)


def parse_dns(server) -> str:
    try:
        return str(ipaddress.ip_address(server))
    except ValueError:
        raise ConfigError(f"invalid DNS server address {server!r}") from None


def hosts_text(own_address, own_names, peers=(), extra_hosts=()) -> str:
    lines = [LOCALHOST]
    if own_address:
        lines.append(f"{own_address}\t{' '.join(own_names)}\n")
    for address, names in peers:
        lines.append(f"{address}\t{' '.join(names)}\n")
    for name, ip in extra_hosts:
        lines.append(f"{ip}\t{name}\n")
    return "".join(lines)


def resolv_conf_text(host_text: str, dns=()) -> str:
    """The host's resolv.conf without loopback nameservers (unreachable from
    another namespace; docker's rule), or with `dns` as the nameservers."""
    kept, servers = [], []
    for line in host_text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            ip = parts[1]
            if not (ip.startswith("127.") or ip == "::1"):
                servers.append(ip)
            continue
        kept.append(line)
    if dns:
        servers = list(dns)
    elif not servers:
        servers = list(FALLBACK_NAMESERVERS)
    return "\n".join([line for line in kept if line.strip()] + [f"nameserver {s}" for s in servers]) + "\n"


def rewrite_in_place(path: str, text: str):
    """Replaces a bind-mounted file's content, keeping its inode."""
    try:
        with open(path, "r+") as f:
            f.write(text)
            f.truncate()
    except FileNotFoundError:
        pass
