"""Networking for rootless containers: slirp4netns, a user-mode TCP/IP stack.

A user who is not root cannot make veth pairs or bridges on the host. Like
podman, a rootless container with network "bridge" (the CLI's default) or
"slirp4netns" gets its own network namespace with a tap device whose traffic
slirp4netns, an ordinary process of the user's, forwards through sockets of
its own: 10.0.2.100/24 inside, gateway 10.0.2.2, DNS 10.0.2.3.
The host's loopback is not reachable from the container unless asked for
("slirp4netns:allow_host_loopback=true", podman's option).
Published ports (-p) are forwarded by slirp4netns itself: it listens on the
host port and connects to the container's address, asked through its API
socket (add_hostfwd), as podman's port_handler=slirp4netns does.
"""
from __future__ import annotations

import json
import os
import select
import shutil
import socket
import subprocess
import tempfile
import time

from ..errors import ConfigError, NetworkError, PortAlreadyAllocated
from .ports import PortMapping, PortReservation, parse_publish

ADDRESS, GATEWAY, DNS = "10.0.2.100", "10.0.2.2", "10.0.2.3"
READY_TIMEOUT = 10.0


def is_slirp_mode(mode: str) -> bool:
    return mode == "slirp4netns" or mode.startswith("slirp4netns:")


def parse_mode(mode: str) -> dict:
    """slirp4netns[:allow_host_loopback=true|false] -> options."""
    opts = {"allow_host_loopback": False}
    _, _, rest = mode.partition(":")
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        if key != "allow_host_loopback" or value not in ("true", "false"):
            raise ConfigError(f"invalid slirp4netns option {item!r}: allow_host_loopback=true|false")
        opts[key] = value == "true"
    return opts


class Slirp:
    """One slirp4netns process serving one container's network namespace.
    It exits when stop() closes its exit pipe, or when this process dies."""

    def __init__(self, mode: str, ports=()):
        self.options = parse_mode(mode)
        self.wanted_ports = [parse_publish(p) for p in ports]
        self.ports = []          # PortMapping with the actual host ports, once started
        self._api_dir = None
        self.binary = shutil.which("slirp4netns")
        if not self.binary:
            raise ConfigError("rootless networking needs slirp4netns (Debian: apt-get install slirp4netns), "
                              "or use network='none'")
        self.proc = None
        self._exit_w = None

    def start(self, pid: int) -> None:
        """Attaches to the network namespace of `pid` (called while the child
        waits at its sync point, after its id maps are written)."""
        ready_r, ready_w = os.pipe()
        exit_r, exit_w = os.pipe()
        argv = [self.binary, "--configure", "--mtu=65520", f"--ready-fd={ready_w}", f"--exit-fd={exit_r}"]
        if not self.options["allow_host_loopback"]:
            argv.append("--disable-host-loopback")
        if self.wanted_ports:
            # a short path of its own: a unix socket's path must fit in 108 bytes
            self._api_dir = tempfile.mkdtemp(prefix="pycontain-slirp-")
            argv.append(f"--api-socket={self._api_dir}/api.sock")
        argv += [str(pid), "tap0"]
        try:
            self.proc = subprocess.Popen(argv, pass_fds=(ready_w, exit_r), stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        except OSError as e:
            for fd in (ready_r, ready_w, exit_r, exit_w):
                os.close(fd)
            self._remove_api_dir()
            raise NetworkError(f"cannot start slirp4netns: {e.strerror}") from None
        os.close(ready_w)
        os.close(exit_r)
        self._exit_w = exit_w
        try:
            ready, _, _ = select.select([ready_r], [], [], READY_TIMEOUT)
            ok = bool(ready) and os.read(ready_r, 1) == b"1"
        finally:
            os.close(ready_r)
        if not ok:
            os.close(self._exit_w)
            self._exit_w = None
            try:
                _, err = self.proc.communicate(timeout=2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                _, err = self.proc.communicate()
            self.proc = None
            self._remove_api_dir()
            last = (err or b"").decode(errors="replace").strip().splitlines()[-1:]
            raise NetworkError(f"slirp4netns did not come up: {last[0] if last else 'no answer'}")
        try:
            for m in self.wanted_ports:
                self.ports.append(self._publish(m))
        except BaseException:
            self.stop()
            raise

    def _publish(self, m: PortMapping) -> PortMapping:
        host_port = m.host_port
        if host_port == 0:  # a free one: found by binding, then handed to slirp4netns
            hold = PortReservation()
            host_port = hold.reserve([m])[0].host_port
            hold.release()
        where = f"{m.host_ip or '0.0.0.0'}:{host_port}/{m.proto}"
        reply = self._api({"execute": "add_hostfwd", "arguments": {
            "proto": m.proto, "host_addr": m.host_ip or "0.0.0.0", "host_port": host_port,
            "guest_addr": ADDRESS, "guest_port": m.container_port}})
        if "error" in reply:
            desc = reply["error"].get("desc", reply["error"]) if isinstance(reply["error"], dict) else reply["error"]
            raise PortAlreadyAllocated(f"cannot publish {where}: slirp4netns says {desc} "
                                       "(is the port already allocated?)")
        return PortMapping(m.host_ip, host_port, m.container_port, m.proto)

    def _api(self, request: dict) -> dict:
        """One request on slirp4netns' API socket (one JSON request and reply
        per connection)."""
        path = f"{self._api_dir}/api.sock"
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            try:
                s.settimeout(READY_TIMEOUT)
                try:
                    s.connect(path)
                except (FileNotFoundError, ConnectionRefusedError):
                    if time.monotonic() > deadline:
                        raise NetworkError("slirp4netns's API socket did not appear") from None
                    time.sleep(0.005)
                    continue
                s.sendall(json.dumps(request).encode())
                s.shutdown(socket.SHUT_WR)
                data = b""
                while chunk := s.recv(4096):
                    data += chunk
            except OSError as e:
                raise NetworkError(f"slirp4netns's API: {e}") from None
            finally:
                s.close()
            try:
                return json.loads(data)
            except ValueError:
                raise NetworkError(f"slirp4netns's API answered {data[:200]!r}") from None

    def _remove_api_dir(self):
        if self._api_dir is not None:
            shutil.rmtree(self._api_dir, ignore_errors=True)
            self._api_dir = None

    def resolv_conf(self) -> str:
        return f"nameserver {DNS}\n"

    def stop(self) -> None:
        if self._exit_w is not None:
            os.close(self._exit_w)
            self._exit_w = None
        if self.proc is not None:
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            if self.proc.stderr is not None:
                self.proc.stderr.close()
            self.proc = None
        self._remove_api_dir()
