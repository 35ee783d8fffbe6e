"""What a managed container's record holds and what goes with it: the
restart policy, the Container arguments as JSON, the hold on its image, and
the removal of everything it owns (rm, --rm, a lost --rm container)."""
from __future__ import annotations

import dataclasses
import re
import signal as _signal

from .. import events, rootless, volumes
from ..resolved_image import builtin_image
from ..errors import ConfigError, ContainerError
from .._paths import default_root
from ..state import MONITOR_LOST_BEFORE_START, ContainerRecord, NoSuchContainer, Store


def parse_restart_policy(policy: str | None) -> tuple[str, int]:
    policy = policy or "no"
    name, _, count = policy.partition(":")
    if name not in ("no", "on-failure", "always", "unless-stopped"):
        raise ConfigError(f"invalid restart policy {policy!r}: no, on-failure[:N], always or unless-stopped")
    if count:
        if name != "on-failure":
            raise ConfigError(f"invalid restart policy {policy!r}: only on-failure takes a maximum retry count")
        if not count.isdigit():
            raise ConfigError(f"invalid restart policy {policy!r}: the retry count must be a number")
    return name, int(count or 0)


def should_restart(policy: str, code: int, restart_count: int, stop_requested: bool) -> bool:
    if stop_requested:
        return False
    name, max_retries = parse_restart_policy(policy)
    if name in ("always", "unless-stopped"):
        return True
    if name == "on-failure":
        return code != 0 and (max_retries == 0 or restart_count < max_retries)
    return False


# A record's config: ContainerConfig.to_json() plus what the managed container
# decides (below); CONFIG_VERSION marks it. Records written before it held
# Container(...)'s keyword arguments as JSON: they still start.
CONFIG_VERSION = 2
MANAGED_KEYS = ("tty", "stop_signal", "auto_remove", "stdin_open",    # the monitor's, not Container's
                "labels", "stop_timeout", "nano_cpus", "healthcheck", "networks", "network_aliases",
                "exposed_ports")
CONTAINER_KEYS = ("cgroup", "pull", "storage_driver")                # Container's, beside its config


def record_config(config, **managed) -> dict:
    """What a record keeps: the validated configuration (a config.ContainerConfig)
    and the managed options."""
    return dict(config.to_json(), config_version=CONFIG_VERSION, **managed)


def container_arguments(rec: ContainerRecord) -> dict:
    """Keyword arguments for Container(...) that start the container of rec:
    its ContainerConfig, named as the record is now (the network's DNS name,
    as docker's: a rename shows at the next start)."""
    # Imported here: only a start needs the configuration's validation, whose
    # module brings seccomp, the cgroups' device rules and networking (~12 ms
    # of imports) to the verbs that only read records (ps, inspect, stop, rm).
    from ..config import ContainerConfig

    data = rec.config
    if data.get("config_version") == CONFIG_VERSION:
        config = dataclasses.replace(ContainerConfig.from_json(data), name=rec.name)
        return dict(config=config, **{k: data[k] for k in CONTAINER_KEYS if k in data})
    kwargs = _legacy_kwargs_from_json(data)
    for k in MANAGED_KEYS:
        kwargs.pop(k, None)
    kwargs["name"] = rec.name
    return kwargs


def _legacy_kwargs_from_json(data: dict) -> dict:
    """A record of before CONFIG_VERSION: Container(...)'s keyword arguments."""
    from ..config import Mount  # see container_arguments

    kw = dict(data)
    kw["mounts"] = [Mount(m["source"], m["target"], read_only=m["read_only"], type=m["type"],
                          options=tuple(m["options"])) for m in data.get("mounts", ())]
    if kw.get("ulimits"):
        kw["ulimits"] = [tuple(u) if isinstance(u, list) else u for u in kw["ulimits"]]
    return kw


def image_holder(cid: str) -> str:
    """The name a managed container holds its image by in the image store.
    Not the container's id: each run's Container holds and releases that one."""
    return f"managed:{cid}"


def resolve_image(ref, root, holder=None, pull="missing"):
    """The image ref ready to run: pycontain's built-in hello-world, else the
    store's image (image.RunImage: id, layers, config), pulled per the policy."""
    # Imported here: only containers of images need the image package, which costs
    # every other verb (ps, stop, logs, a rootfs= container) ~11 ms of imports.
    from .. import image

    return builtin_image(ref) or image.resolve_for_run(ref, root or default_root(), pull=pull, holder=holder)


def release_image(cid, root=None):
    from .. import image  # see resolve_image

    try:
        # every mark of the container: its record's and its last run's (a
        # killed monitor's Container never released its own)
        image.release(image_holder(cid), root or default_root(), also=(cid,))
    except (ContainerError, OSError):
        pass


def remove_volumes_of(rec: ContainerRecord, root) -> None:
    """The anonymous volumes of a removed container's record (rm -v, --rm)."""
    volumes.remove_anonymous([m["source"] for m in rec.config.get("mounts", ()) if m.get("type") == "volume"],
                             root)


def on_networks(rec: ContainerRecord) -> bool:
    """Whether the container holds (or held) leases on bridge networks: its
    first network, or one connected later (network/connect.py)."""
    mode = rec.config.get("network") or "none"
    return bool(rec.config.get("networks")) or not (
        mode in ("none", "host") or mode.startswith(("container:", "slirp4netns")))


def signal_number(sig) -> int:
    if isinstance(sig, int):
        return sig
    s = str(sig).upper()
    if s.isdigit():
        return int(s)
    if not s.startswith("SIG"):
        s = "SIG" + s
    try:
        return int(_signal.Signals[s])
    except KeyError:
        raise ConfigError(f"invalid signal: {sig}") from None


def discard(store: Store, rec: ContainerRecord, with_volumes: bool) -> None:
    """What a deleted record's container owned: its directory (writable
    layer, logs), its hold on its image and, with_volumes, its anonymous
    volumes (docker's rm -v and --rm). Named volumes stay."""
    rootless.remove_tree(store.container_dir(rec.id), ignore_errors=True)
    if with_volumes:
        remove_volumes_of(rec, store.root)
    if rec.config.get("image"):
        release_image(rec.id, store.root)


def matches_filters(rec: ContainerRecord, filters: dict) -> bool:
    """docker ps --filter: status, name (a regular expression), id prefix, exited, ancestor, label."""
    for key, want in filters.items():
        wants = want if isinstance(want, (tuple, list)) else [want]
        if key == "status":
            if rec.state not in wants:
                return False
        elif key == "name":
            if not any(re.search(w, rec.name) for w in wants):
                return False
        elif key == "id":
            if not any(rec.id.startswith(w) for w in wants):
                return False
        elif key == "exited":
            if rec.state != "exited" or str(rec.exit_code) not in [str(w) for w in wants]:
                return False
        elif key == "ancestor":
            if rec.image not in wants:
                return False
        elif key == "label":   # "KEY" or "KEY=VALUE", every one must match
            have = rec.config.get("labels") or {}
            for w in wants:
                k, sep, v = w.partition("=")
                if k not in have or (sep and have[k] != v):
                    return False
        else:
            raise ConfigError(f"invalid filter {key!r} (status, name, id, exited, ancestor, label)")
    return True


# ---- looking at records: a lost --rm container goes ---------------------------------


def _lost_auto_remove(rec: ContainerRecord) -> bool:
    """A --rm container that ended with nobody left to remove it (its
    monitor was killed, also before it started it): docker removes such a
    container when it finds it stopped after a restart."""
    return bool(rec.config.get("auto_remove")) and not rec.monitor_pid and (
        rec.state in ("exited", "dead") or (rec.state == "created" and rec.error == MONITOR_LOST_BEFORE_START))


def settle(store: Store, rec: ContainerRecord) -> ContainerRecord | None:
    """rec, or None when it was a lost --rm container, now removed."""
    if not _lost_auto_remove(rec):
        return rec

    def still_lost(cur):
        if not _lost_auto_remove(cur):
            raise _StillWanted

    try:
        gone = store.delete(rec.id, _check=still_lost)
    except _StillWanted:
        return store.get(rec.id)
    if gone is not None:  # whoever deleted the record removes the rest
        discard(store, gone, with_volumes=True)
        events.container_event(store.root, gone, "destroy")
    return None


class _StillWanted(Exception):
    """The record changed under the lock: it is not a lost --rm container any more."""


def look(store: Store, ref: str) -> ContainerRecord:
    """store.get(ref), a lost --rm container removed first (NoSuchContainer then)."""
    rec = settle(store, store.get(ref))
    if rec is None:
        raise NoSuchContainer(ref)
    return rec


def look_all(store: Store, exec_profiles: bool = True) -> list:
    """store.list(exec_profiles), the lost --rm containers removed."""
    return [rec for rec in (settle(store, r) for r in store.list(exec_profiles)) if rec is not None]
