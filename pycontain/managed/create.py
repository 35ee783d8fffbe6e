"""Creating a managed container: its options checked, its image pinned and
held, its volumes made and its record written, or nothing at all."""
from __future__ import annotations

import dataclasses
import os
import shutil

from .. import events, names, volumes
from ..container import Container, with_image_volumes
from ..errors import ConfigError
from ..logs import parse_log_opts
from ..state import ContainerRecord, NoSuchContainer, boot_id, process_start_time, shared_store
from . import health
from .handle import ManagedContainer
from .record import image_holder, parse_restart_policy, record_config, release_image, resolve_image, signal_number


def _exposed_ports(specs) -> list:
    """docker's --expose: PORT[/PROTO] or a range FIRST-LAST[/PROTO], as "PORT/PROTO" each."""
    if isinstance(specs, str):
        specs = [specs]
    out = []
    for spec in specs:
        ports, _, proto = str(spec).partition("/")
        first, _, last = ports.partition("-")
        proto = proto or "tcp"
        if not (first.isdigit() and (not last or last.isdigit()) and proto in ("tcp", "udp", "sctp")
                and 0 < int(first) <= int(last or first) <= 65535):
            raise ConfigError(f"invalid port to expose {spec!r}: PORT[/tcp|udp|sctp] or FIRST-LAST[/PROTO]")
        out += [f"{n}/{proto}" for n in range(int(first), int(last or first) + 1)]
    return out


def create(image=None, command=None, *, name=None, restart_policy="no", log_opts=(), tty=False,
           stop_signal=None, auto_remove=False, stdin_open=False, root=None,
           labels=None, stop_timeout=None, healthcheck=None, monitor_here=False, expose=(),
           network_aliases=(), **container_kwargs) -> "ManagedContainer":
    """Makes a container record and its writable layer on disk; start() runs it.
    Takes pycontain.Container's keyword arguments (docker run's options);
    auto_remove: the monitor removes the container when it exits (--rm);
    labels: {key: value} kept on the record (docker's Config.Labels, ps --filter label=);
    network_aliases: more names on its user-defined network (docker's --network-alias);
    stop_timeout: stop()'s default seconds before SIGKILL (--stop-timeout);
    healthcheck: docker's Healthcheck dict ({"Test": ["CMD-SHELL", "curl -f
    localhost"], "Interval": ns, "Timeout": ns, "StartPeriod": ns, "Retries": n};
    {"Test": ["NONE"]}: not even the image's), merged with the image's HEALTHCHECK;
    expose: ports it listens on without publishing them ("80", "53/udp",
    "7000-7002"; docker's --expose), kept with the image's and the published
    ones as docker's Config.ExposedPorts;
    monitor_here: this process will be its monitor (a foreground run): the
    record says so from the start, so that if this process is killed before
    the container starts, the record is recognised as lost (and a --rm one
    removed) like one whose monitor died later."""
    if name is not None:
        names.check("container", name.lstrip("/") if isinstance(name, str) else name)
    if labels is not None and not isinstance(labels, dict):
        raise ConfigError("labels must be a {key: value} dict")
    labels = dict(labels or {})
    if not all(isinstance(k, str) and k and isinstance(v, str) for k, v in labels.items()):
        raise ConfigError("labels must map non-empty strings to strings")
    healthcheck = health.check(healthcheck)
    exposed = set(_exposed_ports(expose))
    parse_restart_policy(restart_policy)
    if auto_remove and parse_restart_policy(restart_policy)[0] != "no":
        raise ConfigError("conflicting options: a restart policy and auto-remove (--rm)")
    if stop_signal is not None:
        signal_number(stop_signal)
    if stop_timeout is not None and (not isinstance(stop_timeout, int) or isinstance(stop_timeout, bool)):
        raise ConfigError(f"invalid stop timeout {stop_timeout!r}: a whole number of seconds")
    opts = log_opts if isinstance(log_opts, dict) else parse_log_opts(log_opts)
    network_aliases = _check_aliases(network_aliases, container_kwargs.get("network", "none"))
    for bad in ("remove", "root", "id", "layer_dir", "writable_layer", "config"):
        if bad in container_kwargs:
            raise ConfigError(f"{bad}= is decided by the managed container, it cannot be given")
    # docker gives every container a cgroup: pause, stats and exec's
    # accounting need it (Container makes one only when asked). Rootless, it
    # gets one where the user's cgroup is delegated and runs without one
    # elsewhere (cgroup v1), as podman does; limits without one fail.
    container_kwargs.setdefault("cgroup", True)
    # Validates everything Container checks, before anything exists: the
    # record keeps the configuration it made (ContainerConfig), not the arguments.
    probe = Container(image, command, **container_kwargs)
    config, pull, cid = probe.config, probe.pull, probe.id
    store = shared_store(root)
    cdir = store.container_dir(cid)
    made_volumes = []
    try:
        image_config = {}
        if image is not None:
            # held for as long as the container exists: rmi refuses it, as docker's does
            resolved = resolve_image(image, root, holder=image_holder(cid), pull=pull)
            image_config = resolved.config or {}
            if getattr(resolved, "id", None):
                # docker's rule: the container runs the image it was created
                # from, whatever happens to the name later (a tag moved or
                # removed, a pull policy of "always"): every start uses this id.
                config, pull = dataclasses.replace(config, image=resolved.id), "never"
        if stop_signal is None:
            stop_signal = image_config.get("StopSignal") or "SIGTERM"
            signal_number(stop_signal)
        healthcheck = health.merge(healthcheck, image_config.get("Healthcheck"))
        managed = {"healthcheck": healthcheck} if healthcheck else {}
        with volumes.locked(root) as reservation:
            config = dataclasses.replace(config, mounts=_record_volumes(
                config.mounts, image_config.get("Volumes"), reservation, made_volumes))
            exposed.update(image_config.get("ExposedPorts") or {})
            exposed.update(f"{p.container_port}/{p.proto}" for p in config.ports)
            data = record_config(
                config, tty=bool(tty), stop_signal=stop_signal, auto_remove=bool(auto_remove),
                exposed_ports=sorted(exposed),
                stdin_open=bool(stdin_open),  # -i: a detached container's stdin stays open for attach
                labels=labels, stop_timeout=stop_timeout, network_aliases=network_aliases,
                # --cpus as given: the config keeps only the quota it became, which
                # inspect cannot tell from --cpu-quota/--cpu-period (docker's NanoCpus)
                nano_cpus=int(round(float(container_kwargs["cpus"]) * 1e9)) if container_kwargs.get("cpus") else 0,
                cgroup=probe.want_cgroup, pull=pull,
                # $PYCONTAIN_STORAGE_DRIVER as it is now, not as a later start's environment has it
                storage_driver=probe.storage_driver, **managed)
            rec = ContainerRecord(id=cid, name=(name or "").lstrip("/"), image=image or config.rootfs,
                                  config=data, restart_policy=restart_policy or "no", log_opts=opts,
                                  log_path=str(cdir / f"{cid}-json.log"))
            if monitor_here:
                rec.monitor_pid, rec.monitor_start = os.getpid(), process_start_time(os.getpid())
                rec.boot_id = boot_id()
            os.mkdir(cdir, 0o700)
            for d in ("upper", "work", "merged"):
                os.mkdir(cdir / d, 0o755)
            store.insert(rec)
    except BaseException:
        shutil.rmtree(cdir, ignore_errors=True)
        for v in made_volumes:
            volumes.remove(v, force=True, root=root)
        if image is not None:
            release_image(cid, root)
        raise
    events.container_event(store.root, rec, "create")
    return ManagedContainer(store, rec)


def _check_aliases(aliases, network) -> list:
    if isinstance(aliases, str) or not all(isinstance(a, str) and a for a in aliases):
        raise ConfigError("network aliases must be a list of names")
    if aliases and (network in ("none", "host", "bridge") or not isinstance(network, str)
                    or network.startswith(("container:", "slirp4netns"))):
        raise ConfigError("network-scoped aliases are only supported for user-defined networks")
    return list(dict.fromkeys(aliases))


def _record_volumes(mounts, image_volumes, reservation, made) -> tuple:
    """The mounts a record keeps: every volume named, so that each start
    (restarts, start after stop) mounts the same one. Volumes are made now,
    as docker's create does: an anonymous one (random name) for a volume
    mount without a source and for each of the image's VOLUMEs no mount
    covers. made: the names this call made, for its caller to undo."""
    out = []
    for m in with_image_volumes(mounts, image_volumes):
        if m.type == "volume":
            vol, new = reservation.create(m.source)
            m = dataclasses.replace(m, source=vol.name)
            if new:
                made.append(vol.name)
        out.append(m)
    return tuple(out)


def run(image=None, command=None, *, detach=True, **kwargs) -> "ManagedContainer":
    """create() then start(). detach=False runs the container with this
    process as its monitor and returns once it exited (echo=False)."""
    c = create(image, command, monitor_here=not detach, **kwargs)
    try:
        if detach:
            c.start()
        else:
            c.run_attached(echo=False)
    except BaseException:
        try:
            c.remove(force=True, volumes=bool(kwargs.get("auto_remove")))
        except NoSuchContainer:
            pass
        raise
    return c

