"""The bottom of pycontain.network: the network record (Network), where
networks live under the store root, and the file locks and atomic writes that
bridge, ipam, nat and the network store all use."""
from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from .._paths import default_root
from ..errors import NetworkError

DEFAULT_NETWORK = "bridge"


@dataclass(frozen=True)
class Network:
    name: str
    id: str
    subnet: str
    gateway: str
    bridge: str
    driver: str = "bridge"
    internal: bool = False
    created: float = 0.0
    labels: dict = field(default_factory=dict, hash=False)   # docker's network labels

    @property
    def user_defined(self) -> bool:
        """docker resolves container names on user-defined networks only."""
        return self.name != DEFAULT_NETWORK

    @property
    def prefixlen(self) -> int:
        return ipaddress.ip_network(self.subnet).prefixlen


def networks_dir(root: Path | None = None) -> Path:
    return Path(root or default_root()) / "networks"


@contextlib.contextmanager
def file_lock(path: Path):
    """An exclusive flock on `path` (per open file: safe between threads and
    processes, released by the kernel if the holder dies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def write_atomic(path: Path, text: str):
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


_cache: dict = {}   # path -> ((inode, mtime_ns), Network): one stat per start instead of a parse


def load_network(path: Path) -> Network | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        _cache.pop(str(path), None)
        return None
    key = (st.st_ino, st.st_mtime_ns)
    hit = _cache.get(str(path))
    if hit is not None and hit[0] == key:
        return hit[1]
    try:
        with open(path) as f:
            network = Network(**json.load(f))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as e:
        raise NetworkError(f"network definition {path} is damaged: {e}") from None
    _cache[str(path)] = (key, network)
    return network
