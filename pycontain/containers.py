"""Managed containers: docker's lifecycle from Python, with no daemon.

    import pycontain.containers as containers
    c = containers.run(rootfs="/srv/busybox", command=["sleep", "60"], name="web")
    c.exec_run(["hostname"]).stdout
    c.stop(timeout=1); c.remove()

A managed container has a record (state.py) that outlives the process that
made it; a monitor process (managed/monitor.py) launches it through
pycontain.Container, reaps it and writes its logs. Every verb works from any
process (managed/handle.py). This module is the public face of managed/:
create, run, get, list, prune (docker-py's names) and the figures of
docker system df. The in-process, subprocess-like pycontain.Container is
unchanged; this builds on it.
"""
from __future__ import annotations

from . import leftovers, volumes
from .diskusage import dir_size
from .errors import AlreadyRunning, ConfigError, ContainerError, ContainerStateError, StartFailed
from .managed import health
from .managed.handle import DEFAULT_STOP_TIMEOUT, ManagedContainer
from .managed.inspect import inspect_dict, port_lines
from .managed.record import look, look_all, matches_filters, release_image
from .state import MONITORED, NoSuchContainer, cached_store, close_stores, shared_store

__all__ = [
    "create", "run",  # noqa: F822  (bound on first use: __getattr__ below)
    "get", "list", "prune", "ManagedContainer", "ContainerStateError", "StartFailed",
    "AlreadyRunning", "NoSuchContainer", "ConfigError", "ContainerError", "DEFAULT_STOP_TIMEOUT",
    "inspect_dict", "port_lines", "disk_usage", "cached_store", "close_stores", "removed_exit_status",
]

HEALTH_FILTER_VALUES = {"starting", "healthy", "unhealthy", "none"}


def get(ref: str, root=None) -> ManagedContainer:
    """A container by name, full id or unambiguous id prefix."""
    store = shared_store(root)
    return ManagedContainer(store, look(store, ref))


def list_containers(all=False, filters=None, root=None, exec_profiles=True) -> list:  # noqa: A002  (docker-py's argument)
    """Running containers (all=True: every container), newest first.
    filters: {"status": ..., "name": ..., "id": ..., "exited": code, "label": ...,
    "health": starting|healthy|unhealthy|none}.
    exec_profiles=False: the records leave out what exec copies from each
    container's init (its seccomp program, ids, environment: ~16 KB each),
    for a caller that only shows them (ps); every verb of a container reads
    its whole record again anyway."""
    store = shared_store(root)
    filters = dict(filters or {})
    want_health = filters.pop("health", None)
    if isinstance(want_health, str):
        want_health = [want_health]
    if want_health and not set(want_health) <= HEALTH_FILTER_VALUES:
        raise ConfigError(f"invalid health filter {want_health[0]!r} (starting, healthy, unhealthy, none)")
    out = []
    for rec in look_all(store, exec_profiles):
        if not all and rec.state not in ("running", "paused", "restarting") and not filters and not want_health:
            continue
        if filters and not matches_filters(rec, filters):
            continue
        if want_health and (health.status(store.root, rec) or "none") not in want_health:
            continue
        out.append(ManagedContainer(store, rec))
    return out


def removed_exit_status(cid: str, root=None) -> int | None:
    """The last exit status of a container removed in the last few minutes
    (state.EXIT_KEPT_SECONDS), None if it never ran or is not known."""
    return shared_store(root).removed_exit_code(cid)


def __getattr__(name):
    # docker-py's public name is containers.list(); bound lazily (PEP 562) so that
    # no module-level `list` hides the builtin inside this module.
    if name == "list":
        return list_containers
    if name in ("create", "run"):
        # on first use: creating validates the configuration through
        # pycontain.Container (the launcher, seccomp, networking: ~35 ms of
        # imports) that the verbs which only read or signal records never need
        from .managed import create as creating

        value = globals()[name] = getattr(creating, name)
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def prune(root=None) -> dict:
    """Removes every container that is not running."""
    store = shared_store(root)
    deleted, space = [], 0
    for rec in look_all(store):
        # (an exited one's monitor may still tear it down: remove() ends that)
        if rec.state in ("exited", "dead") or (rec.state == "created" and not rec.monitor_pid):
            c = ManagedContainer(store, rec)
            size = dir_size(store.container_dir(rec.id))
            try:
                c.remove()
            except (NoSuchContainer, ContainerStateError):
                continue
            deleted.append(rec.id)
            space += size
    # and what programs killed with their containers left (leftovers.py)
    space += sum(dir_size(d) for d in leftovers.dead_dirs(store.root))
    for cid in leftovers.sweep(store.root):
        release_image(cid, store.root)
    return {"ContainersDeleted": deleted, "SpaceReclaimed": space}


def disk_usage(root=None) -> dict:
    """docker system df's figures for containers (writable layers and logs)."""
    store = shared_store(root)
    total = active = size = reclaimable = 0
    for d in leftovers.dead_dirs(store.root):   # a killed program's container: nothing uses it
        s = dir_size(d)
        size += s
        reclaimable += s
    for rec in store.list():
        s = dir_size(store.container_dir(rec.id))
        total += 1
        size += s
        if rec.state in MONITORED:
            active += 1
        else:
            reclaimable += s
    usage = {"Containers": {"total": total, "active": active, "size": size, "reclaimable": reclaimable},
             "Local Volumes": volumes.disk_usage(root)}
    from . import image   # as the image verbs above do

    return {"Images": image.disk_usage(root), **usage}
