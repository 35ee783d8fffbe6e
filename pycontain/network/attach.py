"""A container's network: made before the container process, undone after it.

NetworkAttachment.prepare() runs in the parent before clone: it makes a
network namespace (_launch.new_namespace_fd), plugs it into the network's
bridge, leases the address, publishes the ports, and apply() has the launcher
join that namespace instead of unsharing one. So netlink work is never on
the child's path, and `container:NAME` is the same mechanism with another
container's namespace. release() undoes every step, whichever were done; it
is what Container._cleanup() calls, at the end and after a failed start.
"""
from __future__ import annotations

import os
from pathlib import Path

from .. import _launch
from ..errors import ConfigError, ContainerError
from . import registry
from .etcfiles import hosts_text, resolv_conf_text

NETNS_PATH = "/proc/thread-self/ns/net"


def _read(path) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def host_resolv_conf() -> str:
    """The host's resolv.conf; with systemd-resolved's stub (127.0.0.53, not
    reachable from a container) the real upstream servers it lists, as docker does."""
    text = _read("/etc/resolv.conf")
    servers = [line.split()[1] for line in text.splitlines()
               if line.startswith("nameserver") and len(line.split()) > 1]
    if servers and all(s.startswith("127.") for s in servers):
        upstream = _read("/run/systemd/resolve/resolv.conf")
        if upstream:
            return upstream
    return text


class NetworkAttachment:
    """What one container holds on a network. Use prepare(); release() always."""

    def __init__(self, mode: str, container_id: str, name: str | None, root: Path | None):
        self.mode = mode
        self.container_id = container_id
        self.container_name = name
        self.root = root
        self.network = None
        self.lease = None
        self.ports = []                  # PortMapping with the actual host ports
        self.netns_fd = None             # the container's namespace, until the launcher joined it
        self.host_netns_fd = None        # where the bridge lives: teardown happens there
        self.veth = None
        self.target = None               # container: mode, the Container joined
        self._reservation = None
        self.joiners = 0                 # containers running in our namespace (container: mode)
        self._extra_hosts = ()
        self._dns = ()
        self._dns_search = ()

    # ---- set up --------------------------------------------------------------

    @classmethod
    def prepare(cls, mode, *, container_id, name=None, hostname=None, ports=(), dns=(), add_hosts=(),
                hosts_file=None, root=None, dns_search=()) -> "NetworkAttachment":
        """Everything before clone for a bridge network or container:NAME.
        On failure nothing stays behind."""
        att = cls(mode, container_id, name, root)
        att._extra_hosts, att._dns, att._dns_search = tuple(add_hosts), tuple(dns), tuple(dns_search)
        try:
            if mode.startswith("container:"):
                if ports:
                    raise ConfigError("published ports are not possible with network container:NAME "
                                      "(publish them on that container)")
                att._join_container(mode[len("container:"):])
            else:
                att._join_bridge(mode, hostname, ports, hosts_file)
        except BaseException:
            att.release()
            raise
        return att

    def _join_container(self, ref):
        target = registry.lookup(ref)
        try:
            self.netns_fd = os.open(f"/proc/{target.pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            raise ConfigError(f"container {ref!r} is not running (network container:{ref})") from None
        self.target = target
        if target.network_attachment is not None:
            target.network_attachment.joiners += 1

    def _join_bridge(self, name, hostname, port_specs, hosts_file):
        # Imported here: the network store, netlink and nftables (~7 ms) serve
        # bridge networks only, and container.py imports this module for every container.
        from . import bridge, ipam, nat, store
        from .ports import PortReservation, parse_publish

        network = store.get(name, self.root)
        self.network = network
        self.host_netns_fd = os.open(NETNS_PATH, os.O_RDONLY | os.O_CLOEXEC)
        if port_specs:
            self._reservation = PortReservation()
            self.ports = self._reservation.reserve([parse_publish(p) for p in port_specs])
        with ipam.network_lock(network, self.root):
            bridge_index = bridge.nl.if_index(network.bridge)
            if not bridge_index:
                bridge_index = bridge.create_bridge(network, self.root)
            # everything a reclaimer needs if we die from here on is in the lease
            self.lease = ipam.allocate(network, {
                "container": self.container_id, "container_name": self.container_name,
                "hostname": hostname, "veth": bridge.host_ifname(self.container_id),
                "ports": [p.to_dict() for p in self.ports],
                "hosts_file": str(hosts_file) if hosts_file and network.user_defined else None,
                "extra_hosts": [list(h) for h in self._extra_hosts],
            }, self.root)
        self.netns_fd = _launch.new_namespace_fd(_launch.CLONE_NEWNET)
        self.veth = bridge.attach_container(self.netns_fd, self.container_id, bridge_index, self.lease.address,
                                            network.prefixlen, None if network.internal else network.gateway)
        if self.ports:
            nat.publish(self.ports, self.lease.address)

    @property
    def address(self) -> str | None:
        return self.lease.address if self.lease else None

    def apply(self, plan: _launch.LaunchPlan):
        """Has the launcher join the prepared namespace instead of a new one."""
        plan.clone_flags &= ~_launch.CLONE_NEWNET
        plan.joins.append((self.netns_fd, _launch.CLONE_NEWNET))
        # a bridge namespace: the C launcher brings lo up; a joined container's is up already
        plan.loopback_up = self.target is None

    def take_netns_fd(self) -> int:
        """Hands the namespace descriptor to the caller, who closes it once the
        launcher has joined (the namespace then lives as long as the container)."""
        fd, self.netns_fd = self.netns_fd, None
        return fd

    # ---- /etc files -------------------------------------------------------------

    def write_etc_files(self, etc_dir: Path, hostname: str) -> dict:
        """hostname, hosts and resolv.conf for the container; on a user-defined
        network, the other members' hosts files learn this container too."""
        files = {"hostname": hostname + "\n"}
        if self.target is not None:
            tdir = self.target.etc_dir
            files["hosts"] = _read(tdir / "hosts") if tdir else hosts_text(None, ())
            files["resolv.conf"] = _read(tdir / "resolv.conf") if tdir else resolv_conf_text(host_resolv_conf())
        else:
            files["resolv.conf"] = resolv_conf_text(host_resolv_conf(), self._dns, self._dns_search)
            files["hosts"] = self._hosts_for(self.lease, self._peers())
        paths = {}
        for name, text in files.items():
            p = etc_dir / name
            p.write_text(text)
            paths[name] = p
        if self.network is not None and self.network.user_defined:
            self._refresh_peers()
        return paths

    def _hosts_for(self, lease, peers):
        from .connect import lease_names   # see _join_bridge

        return hosts_text(lease.address, lease_names(lease),
                          [(p.address, lease_names(p)) for p in peers],
                          [tuple(h) for h in lease.extra_hosts])

    def _peers(self):
        if self.network is None or not self.network.user_defined:
            return []
        from . import ipam

        return [lease for lease in ipam.live_leases(self.network, self.root)
                if lease.container != self.container_id]

    def _refresh_peers(self):
        """Rewrites every member's hosts file from the live leases (this
        container's own too: written before without the lock, it may have
        missed a member that joined meanwhile)."""
        from .connect import refresh_hosts   # see _join_bridge

        refresh_hosts(self.network, self.root)

    # ---- teardown -------------------------------------------------------------------

    def release(self):
        """Undoes whatever prepare() did. Safe to call more than once."""
        errors = []
        if self.netns_fd is not None:
            os.close(self.netns_fd)
            self.netns_fd = None
        if self.network is not None and self.host_netns_fd is not None:
            try:
                self._in_host_netns(self._teardown_host_side)
            except ContainerError as e:
                errors.append(e)
        if self._reservation is not None:
            self._reservation.release()
            self._reservation = None
        if self.host_netns_fd is not None:
            os.close(self.host_netns_fd)
            self.host_netns_fd = None
        if self.target is not None and self.target.network_attachment is not None:
            self.target.network_attachment.joiners -= 1
        self.target = None
        if errors:
            raise errors[0]

    def _teardown_host_side(self):
        from . import ipam

        lease, self.lease = self.lease, None
        try:
            self._teardown_links(lease)
        finally:
            if lease is not None:
                with ipam.network_lock(self.network, self.root):
                    ipam.release(lease, self.root)
                if self.network.user_defined and lease.hosts_file:
                    self._refresh_peers()

    def _teardown_links(self, lease):
        from . import bridge, nat

        if lease is not None and self.ports:
            nat.unpublish(self.ports, lease.address)
        if self.veth is not None:
            # Deleting a veth costs ~35 ms here (the kernel waits for RCU
            # grace periods). The pair dies with the container's namespace
            # anyway, which the kernel tears down off our path once the last
            # process and descriptor are gone (also after a failed launch).
            # Delete it only when that will not happen soon: a container of
            # ours joined this namespace and outlives us (docker, too, takes
            # the network away from container:NAME joiners when NAME stops).
            veth, self.veth = self.veth, None
            if self.joiners:
                bridge.delete_link(veth)

    def _in_host_netns(self, fn):
        """Teardown may run on another thread than set-up (a wait() elsewhere,
        __del__): netlink and nftables work must happen in the host namespace
        the bridge is in, whatever namespace this thread is in."""
        from . import _netlink

        here = os.stat(NETNS_PATH).st_ino
        if here == os.fstat(self.host_netns_fd).st_ino:
            return fn()
        with _netlink.inside_netns(self.host_netns_fd):
            return fn()
