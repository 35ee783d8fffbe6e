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
import re

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


_DOMAIN = re.compile(r"^(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])\.)*"
                     r"([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])$")


def parse_dns_search(domain) -> str:
    """docker's --dns-search: a domain name ("." alone: no search line at all)."""
    if not isinstance(domain, str):
        raise ConfigError(f"invalid DNS search domain {domain!r}")
    if domain == ".":
        return domain
    name = domain.removesuffix(".")
    if not _DOMAIN.match(name) or len(name) > 255:
        raise ConfigError(f"{domain} is not a valid domain")
    return name


def resolv_conf_text(host_text: str, dns=(), search=()) -> str:
    """The host's resolv.conf without loopback nameservers (unreachable from
    another namespace; docker's rule), or with `dns` as the nameservers, and
    `search` as its search line ("." : none), as docker writes them."""
    kept, servers = [], []
    for line in host_text.splitlines():
        parts = line.split()
        if search and parts and parts[0] in ("search", "domain"):
            continue
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
    domains = [d for d in search if d != "."]
    head = [f"search {' '.join(domains)}"] if domains else []
    return "\n".join(head + [line for line in kept if line.strip()] + [f"nameserver {s}" for s in servers]) + "\n"


def rewrite_in_place(path: str, text: str):
    """Replaces a bind-mounted file's content, keeping its inode."""
    try:
        with open(path, "r+") as f:
            f.write(text)
            f.truncate()
    except FileNotFoundError:
        pass
