"""Running containers of this process, by id and name, for `container:NAME` mode.

Container records on disk come later (pycontain/state.py); until then a
container can join the network namespace of a container started by the same
process. Entries are weak: a Container that is gone is simply not found.
"""
from __future__ import annotations

import threading
from pathlib import Path
import weakref

from .. import state
from .._paths import default_root
from ..errors import ConfigError, ContainerError

_by_id: "weakref.WeakValueDictionary" = weakref.WeakValueDictionary()
_by_name: "weakref.WeakValueDictionary" = weakref.WeakValueDictionary()
_lock = threading.Lock()


def register(container):
    with _lock:
        _by_id[container.id] = container
        name = getattr(container, "name", None)
        if name:
            other = _by_name.get(name)
            if other is not None and other is not container and _running(other):
                raise ConfigError(f"the container name {name!r} is already in use by container {other.id[:12]}")
            _by_name[name] = container


def _running(c) -> bool:
    return c.pid is not None and c.returncode is None


def lookup(ref: str):
    """The running container `ref` names (name, id or unique id prefix)."""
    with _lock:
        c = _by_name.get(ref) or _by_id.get(ref)
        if c is None and len(ref) >= 4:
            matches = [v for k, v in list(_by_id.items()) if k.startswith(ref)]
            if len(matches) > 1:
                raise ConfigError(f"container id prefix {ref!r} is ambiguous")
            c = matches[0] if matches else None
    if c is None:
        c = _managed(ref)
    if c is None:
        raise ConfigError(f"no such container: {ref!r} (network container:NAME needs a running container)")
    if not _running(c):
        raise ConfigError(f"container {ref!r} is not running (network container:{ref})")
    return c


class _ManagedTarget:
    """A running managed container (pycontain.containers, any process) as
    container: mode needs it: its init's pid and its directory's /etc files."""

    def __init__(self, rec, container_dir):
        self.id, self.name, self.pid, self.returncode = rec.id, rec.name, rec.pid, None
        self.network_attachment = None    # its monitor's Container counts joiners, not us
        self.etc_dir = Path(container_dir)


def _managed(ref: str):
    """The container record named `ref`, if it runs (pid checked against its start time)."""
    if not (default_root() / "containers.db").exists():
        return None
    # this process's open record connection if it has one; else one of its
    # own, closed here: a lookup leaves no descriptor behind
    store = state.cached_store()
    temporary = store is None
    if temporary:
        store = state.Store()
    try:
        rec = store.get(ref)
    except ContainerError:
        return None
    finally:
        if temporary:
            store.close()
    if rec.state != "running" or not state.process_alive(rec.pid, rec.pid_start):
        raise ConfigError(f"container {ref!r} is not running (network container:{ref})")
    return _ManagedTarget(rec, store.container_dir(rec.id))
