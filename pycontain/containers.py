"""Managed containers: docker's lifecycle from Python, with no daemon.

    import pycontain.containers as containers
    c = containers.run(rootfs="/srv/busybox", command=["sleep", "60"], name="web")
    c.exec_run(["hostname"]).stdout
    c.stop(timeout=1); c.remove()

A managed container has a record (state.py) that outlives the process that
made it; a monitor process (monitor.py) launches it through
pycontain.Container, reaps it and writes its logs. Every verb here works from
any process: it reads the record, acts on the container's processes by pid
(checked against their start time) and lets the record's transactions order
concurrent callers. The in-process, subprocess-like pycontain.Container is
unchanged; this builds on it.
"""
from __future__ import annotations

import builtins
import os
import re
import select
import shutil
import signal as _signal
import stat
import time

from . import _launch, rootless, volumes
from .container import Container, ContainerResult, builtin_image
from .errors import ConfigError, ContainerError, ContainerTimeout
from .logs import follow_entries, parse_log_opts, parse_since, read_entries
from .monitor import (Monitor, _claim, container_kwargs_to_json,
                      parse_restart_policy, start_detached)
from .state import MONITORED, ContainerRecord, NoSuchContainer, Store, process_alive, process_start_time
from .users import resolve_user

_list = builtins.list  # this module has its own list() (docker-py's name)
NAME_RE = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
DEFAULT_STOP_TIMEOUT = 10


class ContainerStateError(ContainerError):
    """The verb does not apply to the container's state (docker's 409 Conflict)."""


class StartFailed(ContainerError):
    """The container's monitor could not start it; exit_status follows docker (125, 126, 127)."""

    def __init__(self, message, exit_status=125):
        super().__init__(message)
        self.exit_status = exit_status


_stores: dict = {}


def close_stores():
    """Closes this process's record database connections (they reopen on use)."""
    while _stores:
        _stores.popitem()[1].close()


def cached_store(root=None) -> Store | None:
    """This process's open Store for the root, if it has one. (SQLite keeps
    the descriptor of a closed connection while another connection of the
    process holds a lock on the same file: reuse beats open-and-close.)"""
    from ._paths import default_root

    return _stores.get((str(root or default_root()), os.getpid()))


def _store(root=None) -> Store:
    """One Store (one SQLite connection) per store root and process."""
    from ._paths import default_root

    key = (str(root or default_root()), os.getpid())
    st = _stores.get(key)
    if st is None:
        st = _stores[key] = Store(root)
    return st


# ---- module-level API ------------------------------------------------------------


def create(image=None, command=None, *, name=None, restart_policy="no", log_opts=(), tty=False,
           stop_signal=None, auto_remove=False, stdin_open=False, root=None, labels=None, stop_timeout=None,
           **container_kwargs) -> "ManagedContainer":
    """Makes a container record and its writable layer on disk; start() runs it.
    Takes pycontain.Container's keyword arguments (docker run's options);
    auto_remove: the monitor removes the container when it exits (--rm);
    labels: {key: value} kept on the record (docker's Config.Labels);
    stop_timeout: stop()'s default seconds before SIGKILL (--stop-timeout)."""
    if name is not None and not NAME_RE.match(name):
        raise ConfigError(f'invalid container name "{name}", only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed')
    parse_restart_policy(restart_policy)
    opts = log_opts if isinstance(log_opts, dict) else parse_log_opts(log_opts)
    for bad in ("remove", "root", "id", "layer_dir", "writable_layer"):
        if bad in container_kwargs:
            raise ConfigError(f"{bad}= is decided by the managed container, it cannot be given")
    kwargs = dict(container_kwargs, image=image, command=command)
    # docker gives every container a cgroup: pause, stats and exec's
    # accounting need it (Container makes one only when asked). Rootless, it
    # gets one where the user's cgroup is delegated and runs without one
    # elsewhere (cgroup v1), as podman does; limits without one fail.
    kwargs.setdefault("cgroup", True)
    # Validates everything Container checks, before anything exists.
    probe = Container(**kwargs)
    # $PYCONTAIN_STORAGE_DRIVER as it is now, not as a later start's environment has it
    kwargs["storage_driver"] = probe.storage_driver
    image_config = {}
    cid = probe.id
    if image is not None:
        # held for as long as the container exists: rmi refuses it, as docker's does
        resolved = _resolve_image(image, root, holder=_image_holder(cid), pull=probe.pull)
        image_config = resolved.config or {}
    if stop_signal is None:
        stop_signal = image_config.get("StopSignal") or "SIGTERM"
    _signal_number(stop_signal)
    kwargs = container_kwargs_to_json(kwargs)
    kwargs["tty"] = bool(tty)
    kwargs["stop_signal"] = stop_signal
    kwargs["auto_remove"] = bool(auto_remove)
    kwargs["stdin_open"] = bool(stdin_open)  # -i: a detached container's stdin stays open for attach
    kwargs["labels"] = {str(k): str(v) for k, v in (labels or {}).items()}
    if stop_timeout is not None:
        if not isinstance(stop_timeout, int) or isinstance(stop_timeout, bool):
            raise ConfigError(f"invalid stop timeout {stop_timeout!r}: a whole number of seconds")
        kwargs["stop_timeout"] = stop_timeout
    if auto_remove and parse_restart_policy(restart_policy)[0] != "no":
        raise ConfigError("conflicting options: a restart policy and auto-remove (--rm)")
    store = _store(root)
    cdir = store.container_dir(cid)
    rec = ContainerRecord(id=cid, name=(name or "").lstrip("/"), image=image or probe.config.rootfs,
                          config=kwargs, restart_policy=restart_policy or "no", log_opts=opts,
                          log_path=str(cdir / f"{cid}-json.log"))
    made_volumes = []
    try:
        with volumes.locked(root) as reservation:
            rec.config["mounts"] = _record_volumes(rec.config["mounts"], image_config.get("Volumes"),
                                                   reservation, made_volumes)
            os.mkdir(cdir, 0o700)
            for d in ("upper", "work", "merged"):
                os.mkdir(cdir / d, 0o755)
            store.insert(rec)
    except BaseException:
        shutil.rmtree(cdir, ignore_errors=True)
        for v in made_volumes:
            volumes.remove(v, force=True, root=root)
        if image is not None:
            _release_image(cid, root)
        raise
    return ManagedContainer(store, rec)


def _record_volumes(mounts, image_volumes, reservation, made) -> list:
    """The mounts a record keeps: every volume named, so that each start
    (restarts, start after stop) mounts the same one. Volumes are made now,
    as docker's create does: an anonymous one (random name) for a volume
    mount without a source and for each of the image's VOLUMEs no mount
    covers. made: the names this call made, for its caller to undo."""
    import dataclasses

    from .container import _with_image_volumes
    from .monitor import container_kwargs_from_json

    out = []
    for m in _with_image_volumes(container_kwargs_from_json({"mounts": mounts})["mounts"], image_volumes):
        if m.type == "volume":
            vol, new = reservation.create(m.source)
            m = dataclasses.replace(m, source=vol.name)
            if new:
                made.append(vol.name)
        out.append(m)
    return container_kwargs_to_json({"mounts": out})["mounts"]


def run(image=None, command=None, *, detach=True, **kwargs) -> "ManagedContainer":
    """create() then start(). detach=False runs the container with this
    process as its monitor and returns once it exited (echo=False)."""
    c = create(image, command, **kwargs)
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


def get(ref: str, root=None) -> "ManagedContainer":
    """A container by name, full id or unambiguous id prefix."""
    store = _store(root)
    return ManagedContainer(store, store.get(ref))


def list(all=False, filters=None, root=None) -> list:  # noqa: A001  (docker-py's name)
    """Running containers (all=True: every container), newest first.
    filters: {"status": ..., "name": ..., "id": ..., "exited": code}."""
    store = _store(root)
    out = []
    for rec in store.list():
        if not all and rec.state not in ("running", "paused", "restarting") and not filters:
            continue
        if filters and not _matches(rec, filters):
            continue
        out.append(ManagedContainer(store, rec))
    return out


def prune(root=None) -> dict:
    """Removes every container that is not running."""
    store = _store(root)
    deleted, space = [], 0
    for rec in store.list():
        if rec.state in ("created", "exited", "dead") and not rec.monitor_pid:
            c = ManagedContainer(store, rec)
            size = _dir_size(store.container_dir(rec.id))
            try:
                c.remove()
            except (NoSuchContainer, ContainerStateError):
                continue
            deleted.append(rec.id)
            space += size
    return {"ContainersDeleted": deleted, "SpaceReclaimed": space}


def _matches(rec, filters) -> bool:
    for key, want in filters.items():
        wants = want if isinstance(want, (tuple, _list)) else [want]
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
        else:
            raise ConfigError(f"invalid filter {key!r} (status, name, id, exited, ancestor)")
    return True


def remove_volumes_of(rec: ContainerRecord, root) -> None:
    """The anonymous volumes of a removed container's record (rm -v, --rm)."""
    volumes.remove_anonymous([m["source"] for m in rec.config.get("mounts", ()) if m.get("type") == "volume"],
                             root)


def _image_holder(cid: str) -> str:
    # not the container's id: each run's Container holds and releases that one
    return f"managed:{cid}"


def _resolve_image(image, root, holder=None, pull="missing"):
    from .container import resolve_image
    from ._paths import default_root
    return builtin_image(image) or resolve_image(image, root or default_root(), holder=holder, pull=pull)


def _release_image(cid, root=None):
    from .container import release_image
    from ._paths import default_root

    try:
        release_image(_image_holder(cid), root or default_root())
    except (ContainerError, OSError):
        pass


def _signal_number(sig) -> int:
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


def _dir_size(path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_blocks * 512
            except OSError:
                pass
    return total


# ---- the handle -----------------------------------------------------------------------


class ManagedContainer:
    """A container with a record: created, running, paused, restarting, exited."""

    def __init__(self, store: Store, rec: ContainerRecord):
        self._store = store
        self._rec = rec

    def __repr__(self):
        return f"<ManagedContainer {self.short_id} {self.name} {self.status}>"

    @property
    def id(self):
        return self._rec.id

    @property
    def short_id(self):
        return self._rec.id[:12]

    @property
    def name(self):
        return self._rec.name

    @property
    def status(self):
        return self._rec.state

    @property
    def record(self) -> ContainerRecord:
        return self._rec

    @property
    def attrs(self) -> dict:
        return inspect_dict(self._rec, self._store.root)

    def reload(self):
        self._rec = self._store.get(self._rec.id)
        return self

    def _fresh(self):
        try:
            return self.reload()._rec
        except NoSuchContainer:
            raise NoSuchContainer(self._rec.id[:12]) from None

    # ---- start, run -----------------------------------------------------------

    def start(self):
        """Starts a created or exited container under a detached monitor."""
        rec = self._fresh()
        if rec.state == "paused":
            raise ContainerStateError(f"cannot start a paused container {rec.name}, try unpause instead")
        if rec.state in ("running", "restarting"):
            return self  # docker: starting a running container is not an error
        result = start_detached(self._store, rec.id)
        try:
            self.reload()
        except NoSuchContainer:  # auto-removed already
            self._rec.state = "removed"
        if "error" in result:
            if result.get("type") == "ContainerError" and "already running" in result["error"]:
                return self  # a concurrent start won
            raise StartFailed(result["error"], result.get("exit_status", 125))
        return self

    def run_attached(self, stdin_fd=None, echo=True, tty_handler=None) -> int:
        """Runs the container with this process as its monitor (foreground
        `run`): output goes to the log and, with echo, to our stdout/stderr."""
        _claim(self._store, self.id)
        mon = Monitor(self._store, self.id, echo=echo, stdin_fd=stdin_fd, tty_handler=tty_handler)
        with _signals_proxied_to(mon):
            code = mon.run()
        try:
            self.reload()
        except NoSuchContainer:  # auto_remove: the monitor removed it
            self._rec.state = "removed"
        if mon.start_error is not None:
            raise mon.start_error
        return code

    # ---- signals, stop ------------------------------------------------------------

    def _pidfd(self, rec):
        """A pidfd of the container's init if it still is the one recorded."""
        if not rec.pid:
            return None
        try:
            fd = os.pidfd_open(rec.pid)
        except (ProcessLookupError, OSError):
            return None
        if process_start_time(rec.pid) != rec.pid_start:
            os.close(fd)
            return None
        return fd

    def _send(self, rec, sig) -> bool:
        fd = self._pidfd(rec)
        if fd is None:
            return False
        try:
            _signal.pidfd_send_signal(fd, sig)
            return True
        except ProcessLookupError:
            return False
        finally:
            os.close(fd)

    def kill(self, signal=_signal.SIGKILL):
        """Sends a signal to the container's init (SIGKILL by default). Killing
        with SIGKILL or the stop signal means stopped: no restart."""
        sig = _signal_number(signal)
        rec = self._fresh()
        if rec.state not in ("running", "paused"):
            raise ContainerStateError(f"container {rec.short_id} is not running")
        if sig in (_signal.SIGKILL, _signal_number(rec.config.get("stop_signal", "SIGTERM"))):
            rec = self._store.update(rec.id, stop_requested=True) or rec
        if not self._send(rec, sig):
            raise ContainerStateError(f"container {rec.short_id} is not running")
        if rec.state == "paused" and sig == _signal.SIGKILL:
            _thaw(rec)
        return self

    def stop(self, timeout=None, signal=None):
        """The stop signal (the image's StopSignal, else SIGTERM), SIGKILL
        after `timeout` seconds; returns once the exit is recorded. A stopped
        container is not restarted by its policy."""
        if timeout is None:
            timeout = self.record.config.get("stop_timeout", DEFAULT_STOP_TIMEOUT)
        try:
            rec = self._store.update(self._fresh().id, stop_requested=True)
        except NoSuchContainer:
            raise
        if rec is None:
            raise NoSuchContainer(self._rec.id[:12])
        if rec.state not in MONITORED:
            self._rec = rec
            return self
        sig = _signal_number(signal or rec.config.get("stop_signal") or "SIGTERM")
        fd = self._pidfd(rec)
        if fd is not None:
            try:
                try:
                    _signal.pidfd_send_signal(fd, sig)
                except ProcessLookupError:
                    pass
                if rec.state == "paused":
                    _thaw(rec)  # a frozen process cannot act on a signal
                if not select.select([fd], [], [], max(0, timeout))[0]:
                    try:
                        _signal.pidfd_send_signal(fd, _signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            finally:
                os.close(fd)
        self._wait_recorded(rec)
        return self

    def _wait_recorded(self, rec, timeout=30.0):
        """Until the monitor recorded that the container stopped for good."""
        end = time.monotonic() + timeout
        mfd = None
        if rec.monitor_pid:
            try:
                mfd = os.pidfd_open(rec.monitor_pid)
            except OSError:
                mfd = None
        try:
            while True:
                try:
                    cur = self._store.get(rec.id)
                except NoSuchContainer:
                    return
                self._rec = cur
                if cur.state not in MONITORED and not (cur.monitor_pid and cur.state == "created"):
                    return
                if time.monotonic() > end:
                    raise ContainerError(f"container {rec.short_id} did not stop in time")
                if mfd is not None:
                    select.select([mfd], [], [], 0.005)
                else:
                    time.sleep(0.005)
        finally:
            if mfd is not None:
                os.close(mfd)

    def restart(self, timeout=None):
        self.stop(timeout)
        return self.start()

    # ---- pause --------------------------------------------------------------------------

    def pause(self):
        rec = self._fresh()
        if rec.state == "paused":
            raise ContainerStateError(f"container {rec.short_id} is already paused")
        if rec.state != "running":
            raise ContainerStateError(f"container {rec.short_id} is not running")
        _freeze(rec)
        self._rec = self._store.update(rec.id, state="paused") or rec
        return self

    def unpause(self):
        rec = self._fresh()
        if rec.state != "paused":
            raise ContainerStateError(f"container {rec.short_id} is not paused")
        _thaw(rec)
        self._rec = self._store.update(rec.id, state="running") or rec
        return self

    # ---- remove -------------------------------------------------------------------------

    def remove(self, force=False, volumes=False):
        """Deletes the record, the writable layer and the logs. A running
        container needs force=True (it is killed first)."""
        rec = self._fresh()
        if rec.state in MONITORED or (rec.state == "created" and rec.monitor_pid):
            if not force:
                raise ContainerStateError(
                    f"cannot remove container {rec.short_id}: container is {rec.state}: "
                    "stop the container before removing or force remove")
            rec = self._store.update(rec.id, stop_requested=True) or rec
            if rec.state == "paused":
                self._send(rec, _signal.SIGKILL)
                _thaw(rec)
            self._send(rec, _signal.SIGKILL)
            self._wait_recorded(rec)

        def still_stopped(cur):
            if cur.state in MONITORED or cur.monitor_pid:
                raise ContainerStateError(f"cannot remove container {cur.short_id}: it was started meanwhile")

        gone = self._store.delete(rec.id, _check=still_stopped)
        if gone is None:
            raise NoSuchContainer(rec.id[:12])
        rootless.remove_tree(self._store.container_dir(rec.id), ignore_errors=True)
        if volumes:  # docker's rm -v: its anonymous volumes go with it, named ones stay
            remove_volumes_of(rec, self._store.root)
        if rec.config.get("image"):
            _release_image(rec.id, self._store.root)
        self._rec.state = "removed"

    # ---- wait -------------------------------------------------------------------------------

    def _wait_condition(self, start_rec):
        """True once the run that was current at start_rec has ended."""
        try:
            cur = self._store.get(start_rec.id)
        except NoSuchContainer:
            return True, start_rec
        if cur.state in ("exited", "dead"):
            return True, cur
        if start_rec.state in ("running", "paused") and cur.started != start_rec.started:
            return True, cur  # it ended and a restart began
        if start_rec.state in ("running", "paused") and cur.state == "restarting":
            return True, cur
        return False, cur

    def _wait_look(self, start):
        """One look for wait() and wait_async(): (exit status or None, the
        record to keep waiting from, the current record)."""
        done, cur = self._wait_condition(start)
        if done:
            self._rec = cur
            return (cur.exit_code if cur.exit_code is not None else -1), start, cur
        if start.state in ("created", "restarting", "exited"):
            start = cur
        return None, start, cur

    def wait(self, timeout=None) -> int:
        """Blocks until the container exits; returns its exit status."""
        start = self._fresh()
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            status, start, cur = self._wait_look(start)
            if status is not None:
                return status
            left = None if end is None else end - time.monotonic()
            if left is not None and left <= 0:
                raise ContainerTimeout(self.name, timeout)
            fd = self._pidfd(cur)
            if fd is None:
                time.sleep(0.01 if left is None else min(0.01, left))
                continue
            try:
                select.select([fd], [], [], 0.5 if left is None else min(0.5, left))
            finally:
                os.close(fd)

    async def wait_async(self) -> int:
        """wait() for asyncio: the event loop watches the init's pidfd."""
        import asyncio  # only here: importing it costs the CLI ~0.1 s

        loop = asyncio.get_running_loop()
        start = self._fresh()
        while True:
            status, start, cur = self._wait_look(start)
            if status is not None:
                return status
            fd = self._pidfd(cur)
            if fd is None:
                await asyncio.sleep(0.01)
                continue
            ready = loop.create_future()
            loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
            try:
                # the exit is recorded by the monitor just after the init ends
                await asyncio.wait_for(ready, 0.5)
            except asyncio.TimeoutError:
                pass
            finally:
                loop.remove_reader(fd)
                os.close(fd)
            await asyncio.sleep(0)

    # ---- logs --------------------------------------------------------------------------------

    def _still_running(self):
        try:
            cur = self._store.get(self.id)
        except NoSuchContainer:
            return False
        return cur.state in MONITORED or bool(cur.monitor_pid)

    def log_entries(self, follow=False, tail=None, since=None):
        """(stream, text, RFC 3339 time) tuples; with follow, an endless
        iterator until the container stops."""
        rec = self._fresh()
        since_t = parse_since(since) if isinstance(since, str) else since
        if follow:
            return follow_entries(rec.log_path, self._still_running, since_t, tail)
        return iter(read_entries(rec.log_path, since_t, tail))

    def logs(self, stdout=True, stderr=True, follow=False, tail=None, timestamps=False, since=None):
        """The container's output as bytes (follow=True: an iterator of bytes)."""
        def lines():
            for stream, text, t in self.log_entries(follow, tail, since):
                if (stream == "stdout" and stdout) or (stream == "stderr" and stderr):
                    yield ((t + " ") if timestamps else "").encode() + text.encode()
        if follow:
            return lines()
        return b"".join(lines())

    # ---- exec ----------------------------------------------------------------------------------

    def exec_start(self, cmd, *, env=(), user=None, workdir=None, tty=False, stdio=(-1, -1, -1)):
        """Starts cmd inside the running container (its namespaces and cgroups,
        its init's user, capabilities, no_new_privs and seccomp filter).
        Returns the launcher's Child: pid (our own child), pidfd, tty_master."""
        rec = self._fresh()
        if rec.state == "paused":
            raise ContainerStateError(f"container {rec.short_id} is paused, unpause the container before exec")
        if rec.state != "running" or not process_alive(rec.pid, rec.pid_start):
            raise ContainerStateError(f"container {rec.short_id} is not running")
        if isinstance(cmd, str):
            raise ConfigError("exec: the command must be a list of strings")
        cmd = [str(a) for a in cmd]
        if not cmd:
            raise ConfigError("exec: no command specified")
        prof = rec.exec_profile
        from .config import merge_env, normalize_env
        envp = merge_env(prof.get("env", ()), normalize_env(env))
        uid, gid, groups = prof["uid"], prof["gid"], prof["groups"]
        if user:
            u = resolve_user(user, [f"/proc/{rec.pid}/root"])
            uid, gid, groups = u.uid, u.gid, _list(u.groups)
        if workdir is not None and not workdir.startswith("/"):
            raise ConfigError(f"the working directory {workdir!r} is invalid, it needs to be an absolute path")
        joins, fds = _namespace_joins(rec.pid)
        cgroup_fds = _cgroup_procs_fds(rec.pid)
        if process_start_time(rec.pid) != rec.pid_start:  # the init died while we opened its namespaces
            for fd in fds + cgroup_fds:
                os.close(fd)
            raise ContainerStateError(f"container {rec.short_id} is not running")
        plan = _launch.LaunchPlan(
            argv=cmd, envp=envp, path_env=prof.get("path_env"), root_path="", root_source="",
            root_fstype=None, clone_flags=0, joins=joins, fork_after_join=True, loopback_up=False,
            cwd=workdir or prof.get("cwd") or "/", mkdir_cwd=False, uid=uid, gid=gid, groups=groups,
            set_groups=prof.get("set_groups", True),
            capabilities=frozenset(prof["capabilities"]), no_new_privs=prof["no_new_privs"],
            seccomp_bpf=bytes.fromhex(prof["seccomp"]) if prof.get("seccomp") else None,
            stdio=tuple(stdio), tty=tty, cgroup_fds=cgroup_fds, owned_fds=fds + cgroup_fds,
        )
        return _launch.spawn(plan)

    def exec_run(self, cmd, *, env=(), user=None, workdir=None, stdin=None, timeout=None,
                 text=False) -> ContainerResult:
        """Runs cmd in the container to completion; stdout and stderr captured."""
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        in_r = in_w = None
        if stdin is not None:
            in_r, in_w = os.pipe()
        try:
            child = self.exec_start(cmd, env=env, user=user, workdir=workdir,
                                    stdio=(in_r if in_r is not None else -1, out_w, err_w))
        except BaseException:
            for fd in (out_r, err_r, in_w):
                if fd is not None:
                    os.close(fd)
            raise
        finally:
            for fd in (out_w, err_w, in_r):
                if fd is not None:
                    os.close(fd)
        proc = _ExecProcess(child, cmd)
        return proc.communicate(out_r, err_r, in_w, stdin, timeout, text)

    # ---- inspection ------------------------------------------------------------------------------

    def processes(self) -> list:
        rec = self._fresh()
        if rec.state not in ("running", "paused"):
            raise ContainerStateError(f"container {rec.short_id} is not running")
        return _pid_namespace_members(rec.pid)

    def top(self) -> dict:
        """docker top: UID PID PPID C STIME TTY TIME CMD for each process."""
        rows = []
        tick = os.sysconf("SC_CLK_TCK")
        for pid in self.processes():
            info = _proc_info(pid)
            if info is None:
                continue
            t = (info["utime"] + info["stime"]) // tick
            rows.append([str(info["uid"]), str(pid), str(info["ppid"]), "0", "-", "?",
                         f"{t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}", info["cmd"]])
        return {"Titles": ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"], "Processes": rows}

    def stats(self, interval=0.1) -> dict:
        """CPU (over `interval`), memory (resident) and pids of the container's
        processes, read from /proc. The cgroups branch gives the cgroup's own figures."""
        rec = self._fresh()
        if rec.state not in ("running", "paused"):
            return {"id": rec.id, "name": rec.name, "cpu_percent": 0.0, "memory_usage": 0,
                    "memory_limit": _mem_total(), "pids": 0}

        def sample():
            pids = _pid_namespace_members(rec.pid)
            cpu = rss = 0
            for pid in pids:
                info = _proc_info(pid)
                if info:
                    cpu += info["utime"] + info["stime"]
                    rss += info["rss"]
            return cpu, rss, len(pids)

        cg = _cgroup_figures(rec.exec_profile.get("cgroups", ()))
        c0, _, _ = sample()
        cpu0 = cg.get("cpu_ns")
        t0 = time.monotonic()
        time.sleep(interval)
        c1, rss, npids = sample()
        dt = time.monotonic() - t0
        cg1 = _cgroup_figures(rec.exec_profile.get("cgroups", ()))
        if cpu0 is not None and cg1.get("cpu_ns") is not None and dt > 0:
            cpu_pct = 100.0 * (cg1["cpu_ns"] - cpu0) / 1e9 / dt
        else:
            cpu_pct = 100.0 * (c1 - c0) / os.sysconf("SC_CLK_TCK") / dt if dt > 0 else 0.0
        # the container's own cgroup when it has one (docker's figures), else /proc's sums
        return {"id": rec.id, "name": rec.name, "cpu_percent": cpu_pct,
                "memory_usage": cg1.get("memory_usage", rss),
                "memory_limit": min(cg1.get("memory_limit") or _mem_total(), _mem_total()),
                "pids": cg1.get("pids", npids)}

    # ---- its filesystem as an image or a tar stream (docker export, commit) -----

    def _filesystem(self):
        """(upper dir, lower dirs top first, base image ref or None)."""
        from . import image

        cfg = self.record.config
        upper = self._store.container_dir(self.id) / "upper"
        if cfg.get("rootfs"):
            return upper, [cfg["rootfs"]], None
        img = image.resolve_for_run(self.record.image, self._store.root, pull="never")
        return upper, _list(img.layers), self.record.image

    def export(self, fileobj) -> None:
        """docker export: the container's filesystem (its image and its
        changes, running or not) as a tar stream."""
        from . import image

        upper, lowers, _ = self._filesystem()
        image.export([str(upper), *lowers], fileobj)

    def commit(self, ref=None, *, changes=(), message=None, author=None) -> str:
        """docker commit: the container's changes (deletions as whiteouts) become
        a new layer on top of its image. Returns the new image's id."""
        from . import image

        upper, lowers, base = self._filesystem()
        if base is None:
            # a rootfs= container has no image below its changes: the whole
            # filesystem becomes a one-layer image
            import tempfile

            with tempfile.TemporaryFile(dir=self._store.root) as f:
                image.export([str(upper), *lowers], f)
                f.seek(0)
                return image.import_(f, ref, changes=changes, message=message, root=self._store.root)
        return image.commit(str(upper), base, ref, changes, message, author, root=self._store.root)

    def rename(self, new_name: str):
        if not NAME_RE.match(new_name):
            raise ConfigError(f'invalid container name "{new_name}", only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed')
        new_name = new_name.lstrip("/")
        from .state import NameInUse

        with self._store.transaction() as db:
            other = db.execute("SELECT id FROM containers WHERE name = ?", (new_name,)).fetchone()
            if other and other["id"] != self.id:
                raise NameInUse(new_name, other["id"])
            if db.execute("UPDATE containers SET name = ? WHERE id = ?", (new_name, self.id)).rowcount == 0:
                raise NoSuchContainer(self.short_id)
        self.reload()
        return self


class _signals_proxied_to:
    """docker run's --sig-proxy: while this process is the monitor of a
    foreground container, the signals it gets (Ctrl-C, kill) go to the
    container's init instead; the monitor goes on and records the exit."""

    SIGNALS = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT,
               _signal.SIGUSR1, _signal.SIGUSR2)

    def __init__(self, monitor):
        self.monitor = monitor
        self.saved = {}

    def _forward(self, signum, _frame):
        c = self.monitor.container
        if c is not None:
            c.send_signal(signum)

    def __enter__(self):
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self.saved[sig] = _signal.signal(sig, self._forward)
        return self

    def __exit__(self, *exc):
        for sig, handler in self.saved.items():
            _signal.signal(sig, handler)


class _ExecProcess:
    def __init__(self, child, args):
        self.child = child
        self.args = args

    def communicate(self, out_r, err_r, in_w, input_data, timeout, text):
        import selectors

        sel = selectors.DefaultSelector()
        chunks = {out_r: [], err_r: []}
        sel.register(out_r, selectors.EVENT_READ)
        sel.register(err_r, selectors.EVENT_READ)
        view = memoryview(input_data.encode() if isinstance(input_data, str) else (input_data or b""))
        if in_w is not None:
            if view:
                os.set_blocking(in_w, False)
                sel.register(in_w, selectors.EVENT_WRITE)
            else:
                os.close(in_w)
                in_w = None
        end = None if timeout is None else time.monotonic() + timeout
        try:
            while sel.get_map():
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    os.kill(self.child.pid, _signal.SIGKILL)
                    os.waitpid(self.child.pid, 0)
                    raise ContainerTimeout(self.args, timeout)
                for key, _ in sel.select(left):
                    fd = key.fileobj
                    if fd == in_w:
                        try:
                            n = os.write(fd, view[:65536])
                        except BrokenPipeError:
                            n = len(view)
                        view = view[n:]
                        if not view:
                            sel.unregister(fd)
                            os.close(fd)
                            in_w = None
                        continue
                    data = os.read(fd, 65536)
                    if data:
                        chunks[fd].append(data)
                    else:
                        sel.unregister(fd)
                        os.close(fd)
        finally:
            sel.close()
            for fd in (out_r, err_r, in_w):
                if fd is not None:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
        _, status = os.waitpid(self.child.pid, 0)
        if self.child.pidfd is not None:
            os.close(self.child.pidfd)
        code = os.waitstatus_to_exitcode(status)
        code = code if code >= 0 else 128 - code
        out, err = b"".join(chunks[out_r]), b"".join(chunks[err_r])
        if text:
            out, err = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
        return ContainerResult(self.args, code, out, err)


# ---- namespaces, cgroups, /proc -------------------------------------------------------------

_NAMESPACES = (  # the order the launcher joins them: user first, mnt last
    ("user", _launch.CLONE_NEWUSER), ("ipc", _launch.CLONE_NEWIPC), ("uts", _launch.CLONE_NEWUTS),
    ("net", _launch.CLONE_NEWNET), ("pid", _launch.CLONE_NEWPID), ("cgroup", _launch.CLONE_NEWCGROUP),
    ("mnt", _launch.CLONE_NEWNS),
)


def _namespace_joins(pid):
    """The namespaces of `pid` that differ from ours, as (fd, CLONE_NEW*)."""
    joins, fds = [], []
    try:
        for name, flag in _NAMESPACES:
            theirs = os.stat(f"/proc/{pid}/ns/{name}")
            ours = os.stat(f"/proc/self/ns/{name}")
            if (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino):
                continue
            fd = os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)
            fds.append(fd)
            joins.append((fd, flag))
    except (FileNotFoundError, ProcessLookupError):
        for fd in fds:
            os.close(fd)
        raise ContainerStateError("the container is not running") from None
    return joins, fds


def _cgroup_lines(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            for line in f:
                hid, controllers, path = line.rstrip("\n").split(":", 2)
                out[(hid, controllers)] = path
    except OSError:
        pass
    return out


def _cgroup_mounts():
    """{controllers as in /proc/PID/cgroup: mount point} for v1 and v2."""
    mounts = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fstype, _src, opts = (right.split() + ["", "", ""])[:3]
            point = left.split()[4]
            if fstype == "cgroup2":
                mounts.setdefault("", point)
            elif fstype == "cgroup":
                ctrls = [o for o in opts.split(",") if o not in ("rw", "ro", "nosuid", "nodev", "noexec",
                                                                 "relatime", "clone_children")
                         and not o.startswith(("release_agent", "xattr"))]
                mounts.setdefault(",".join(ctrls), point)
    return mounts


def _cgroup_procs_fds(pid) -> list:
    """cgroup.procs of each cgroup the container's init is in and we are not:
    exec'd processes join the container's cgroups (limits, accounting, freezer)."""
    theirs, ours = _cgroup_lines(pid), _cgroup_lines("self")
    mounts = None
    fds = []
    for key, path in theirs.items():
        if ours.get(key) == path:
            continue
        if mounts is None:
            mounts = _cgroup_mounts()
        point = mounts.get(key[1])
        if point is None:
            continue
        try:
            fds.append(os.open(f"{point}{path}/cgroup.procs", os.O_WRONLY | os.O_CLOEXEC))
        except OSError:
            pass
    return fds


def _freezer_state_file(rec) -> str:
    """The container's own v1 freezer cgroup (or v2 cgroup.freeze). Pausing
    needs a cgroup of the container's own: never freeze one we share."""
    theirs, ours = _cgroup_lines(rec.pid), _cgroup_lines("self")
    mounts = _cgroup_mounts()
    for (hid, ctrls), path in theirs.items():
        if "freezer" in ctrls.split(",") and ours.get((hid, ctrls)) != path and ctrls in mounts:
            return f"{mounts[ctrls]}{path}/freezer.state"
        if hid == "0" and ours.get((hid, ctrls)) != path and "" in mounts:
            f = f"{mounts['']}{path}/cgroup.freeze"
            if os.path.exists(f):
                return f
    raise ContainerError(f"container {rec.short_id} has no freezer cgroup of its own: cannot pause it")


def _freeze(rec):
    path = _freezer_state_file(rec)
    with open(path, "w") as f:
        f.write("FROZEN" if path.endswith("freezer.state") else "1")


def _thaw(rec):
    try:
        path = _freezer_state_file(rec)
    except ContainerError:
        return
    with open(path, "w") as f:
        f.write("THAWED" if path.endswith("freezer.state") else "0")


def _pid_namespace_members(init_pid) -> list:
    """Host pids of every process in init_pid's pid namespace."""
    try:
        target = os.stat(f"/proc/{init_pid}/ns/pid").st_ino
    except OSError:
        return []
    members = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if os.stat(f"/proc/{p}/ns/pid").st_ino == target:
                    members.append(int(p))
            except OSError:
                pass
    return sorted(members)


def _proc_info(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")
        uid = os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None
    fields = stat.rsplit(b")", 1)[1].split()
    return {"ppid": int(fields[1]), "utime": int(fields[11]), "stime": int(fields[12]),
            "rss": int(fields[21]) * os.sysconf("SC_PAGE_SIZE"), "uid": uid, "cmd": cmd}


def _read_int(path):
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    if text == "max":
        return None
    try:
        return int(text.split()[0])
    except ValueError:
        return None


def _cgroup_figures(dirs) -> dict:
    """Memory, limit, CPU time and pids from a container's cgroup directories
    (v1: one per hierarchy; v2: one)."""
    out = {}
    for d in dirs:
        if os.path.exists(f"{d}/memory.usage_in_bytes"):          # v1 memory
            out["memory_usage"] = _read_int(f"{d}/memory.usage_in_bytes")
            out["memory_limit"] = _read_int(f"{d}/memory.limit_in_bytes")
        elif os.path.exists(f"{d}/memory.current"):               # v2
            out["memory_usage"] = _read_int(f"{d}/memory.current")
            out["memory_limit"] = _read_int(f"{d}/memory.max")
        if os.path.exists(f"{d}/cpuacct.usage"):
            out["cpu_ns"] = _read_int(f"{d}/cpuacct.usage")
        elif os.path.exists(f"{d}/cpu.stat") and "cpu_ns" not in out:
            try:
                with open(f"{d}/cpu.stat") as f:
                    usage = dict(line.split() for line in f if line.strip())
                out["cpu_ns"] = int(usage["usage_usec"]) * 1000
            except (OSError, KeyError, ValueError):
                pass
        if os.path.exists(f"{d}/pids.current"):
            out["pids"] = _read_int(f"{d}/pids.current")
    return {k: v for k, v in out.items() if v is not None}


def io_counters(c: ManagedContainer) -> dict:
    """docker stats' NET I/O and BLOCK I/O: bytes received and sent on the
    container's interfaces but lo (/proc/PID/net/dev, its network namespace)
    and bytes read and written by its cgroup (v1 blkio, v2 io.stat)."""
    rec = c._fresh()
    out = {"net_rx": 0, "net_tx": 0, "block_read": 0, "block_write": 0}
    if rec.state not in ("running", "paused") or not rec.pid:
        return out
    try:
        with open(f"/proc/{rec.pid}/net/dev") as f:
            for line in f.readlines()[2:]:
                name, _, counters = line.partition(":")
                fields = counters.split()
                if name.strip() != "lo" and len(fields) >= 9:
                    out["net_rx"] += int(fields[0])
                    out["net_tx"] += int(fields[8])
    except (OSError, ValueError):
        pass
    for d in rec.exec_profile.get("cgroups", ()):
        try:
            if os.path.exists(f"{d}/blkio.throttle.io_service_bytes"):      # v1
                with open(f"{d}/blkio.throttle.io_service_bytes") as f:
                    for line in f:
                        parts = line.split()
                        if len(parts) == 3 and parts[1] in ("Read", "Write"):
                            out["block_read" if parts[1] == "Read" else "block_write"] += int(parts[2])
            elif os.path.exists(f"{d}/io.stat"):                             # v2
                with open(f"{d}/io.stat") as f:
                    for line in f:
                        fields = dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
                        out["block_read"] += int(fields.get("rbytes", 0))
                        out["block_write"] += int(fields.get("wbytes", 0))
        except (OSError, ValueError):
            pass
    return out


def _mem_total() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


# ---- inspect ---------------------------------------------------------------------------------


def _rfc3339(t) -> str:
    if t is None:
        return "0001-01-01T00:00:00Z"
    from .logs import rfc3339nano
    return rfc3339nano(int(t * 1e9))


def inspect_dict(rec: ContainerRecord, root=None) -> dict:
    """docker inspect's shape, for the fields pycontain has."""
    cfg = dict(rec.config)
    argv = _list(cfg.get("entrypoint") or []) + _list(cfg.get("command") or [])
    policy, retries = parse_restart_policy(rec.restart_policy)
    return {
        "Id": rec.id,
        "Created": _rfc3339(rec.created),
        "Path": argv[0] if argv else "",
        "Args": argv[1:],
        "State": {
            "Status": rec.state, "Running": rec.state in ("running", "paused"),
            "Paused": rec.state == "paused", "Restarting": rec.state == "restarting",
            "OOMKilled": rec.oom_killed, "Dead": rec.state == "dead", "Pid": rec.pid or 0,
            "ExitCode": rec.exit_code or 0, "Error": rec.error,
            "StartedAt": _rfc3339(rec.started), "FinishedAt": _rfc3339(rec.finished),
        },
        "Image": rec.image,
        "Name": "/" + rec.name,
        "RestartCount": rec.restart_count,
        "LogPath": rec.log_path,
        "HostConfig": _inspect_host_config(cfg, rec, policy, retries),
        "Config": {
            "Hostname": cfg.get("hostname") or rec.id[:12], "User": cfg.get("user") or "",
            "Env": cfg.get("env", []), "Cmd": cfg.get("command"), "Entrypoint": cfg.get("entrypoint"),
            "Domainname": "", "AttachStdin": False, "AttachStdout": False, "AttachStderr": False,
            "OpenStdin": cfg.get("stdin_open", False), "StdinOnce": False, "Volumes": None, "OnBuild": None,
            "Image": rec.image, "WorkingDir": cfg.get("workdir") or "", "Tty": cfg.get("tty", False),
            "StopSignal": cfg.get("stop_signal", "SIGTERM"), "Labels": cfg.get("labels") or {},
            **({"StopTimeout": cfg["stop_timeout"]} if "stop_timeout" in cfg else {}),
        },
        "NetworkSettings": {
            "IPAddress": (rec.exec_profile.get("network", {}).get("ip_address") or "")
            if rec.state in ("running", "paused") else "",
            "Ports": {f"{p['container_port']}/{p['proto']}": [{"HostIp": p["host_ip"] or "0.0.0.0",
                                                              "HostPort": str(p["host_port"])}]
                      for p in rec.exec_profile.get("network", {}).get("ports", ())}
            if rec.state in ("running", "paused") else {},
        },
        "Mounts": [_inspect_mount(m, root) for m in cfg.get("mounts", [])],
    }


def _inspect_host_config(cfg: dict, rec: ContainerRecord, policy: str, retries: int) -> dict:
    """docker inspect's HostConfig: its keys and types, from the record's
    options (0, "", [] or None where docker has them unset)."""
    from .cgroups.limits import parse_bytes
    from .network.ports import parse_publish

    def size(key):
        value = cfg.get(key)
        return 0 if value in (None, "") else (-1 if str(value) == "-1" else parse_bytes(value))

    mounts = cfg.get("mounts") or []
    ports = {}
    for spec in cfg.get("ports") or []:
        p = parse_publish(spec if not isinstance(spec, (_list, tuple)) else ":".join(map(str, spec)))
        ports.setdefault(f"{p.container_port}/{p.proto}", []).append(
            {"HostIp": p.host_ip or "", "HostPort": str(p.host_port or "")})
    memory = size("memory")
    return {
        "Binds": [f"{m['source']}:{m['target']}" + (":ro" if m["read_only"] else "")
                  for m in mounts if m["type"] in ("bind", "volume") and m["source"]] or None,
        "ContainerIDFile": "",
        "LogConfig": {"Type": "json-file", "Config": {k: str(v) for k, v in rec.log_opts.items()}},
        "NetworkMode": cfg.get("network", "none"),
        "PortBindings": ports,
        "RestartPolicy": {"Name": policy, "MaximumRetryCount": retries},
        "AutoRemove": bool(cfg.get("auto_remove", False)),
        "CapAdd": cfg.get("cap_add") or None, "CapDrop": cfg.get("cap_drop") or None,
        "Dns": _list(cfg.get("dns") or []), "DnsOptions": [], "DnsSearch": [],
        "ExtraHosts": _list(cfg.get("add_hosts") or []) or None,
        "GroupAdd": _list(cfg.get("group_add") or []) or None,
        "IpcMode": "private", "PidMode": "", "UTSMode": "", "UsernsMode": "", "CgroupnsMode": "host",
        "Privileged": bool(cfg.get("privileged", False)), "PublishAllPorts": False,
        "ReadonlyRootfs": bool(cfg.get("read_only", False)),
        "SecurityOpt": _list(cfg.get("security_opt") or []) or None,
        "Tmpfs": {m["target"]: ",".join(m.get("options") or []) for m in mounts if m["type"] == "tmpfs"} or None,
        "Init": bool(cfg.get("init", False)),
        "CpuShares": cfg.get("cpu_shares") or 0,
        "Memory": memory,
        "NanoCpus": int(round(float(cfg["cpus"]) * 1e9)) if cfg.get("cpus") else 0,
        "CgroupParent": cfg.get("cgroup_parent") or "",
        "BlkioWeight": cfg.get("blkio_weight") or 0,
        "CpuPeriod": cfg.get("cpu_period") or 0, "CpuQuota": cfg.get("cpu_quota") or 0,
        "CpusetCpus": cfg.get("cpuset_cpus") or "", "CpusetMems": cfg.get("cpuset_mems") or "",
        "Devices": [{"PathOnHost": d.split(":")[0], "PathInContainer": (d.split(":") + [d.split(":")[0]])[1],
                     "CgroupPermissions": (d.split(":") + ["", "rwm"])[2] or "rwm"}
                    if isinstance(d, str) else d for d in cfg.get("devices") or []],
        # docker: twice the memory limit when a limit is set without --memory-swap
        "MemorySwap": size("memory_swap") if cfg.get("memory_swap") else (2 * memory if memory else 0),
        "PidsLimit": cfg.get("pids_limit") or None,
        "Ulimits": [_inspect_ulimit(u) for u in cfg.get("ulimits") or []] or None,
    }


def _inspect_ulimit(spec) -> dict:
    """NAME=SOFT[:HARD] (or a (name, soft, hard) triple) as docker's {"Name", "Soft", "Hard"}."""
    if isinstance(spec, str):
        name, _, limits = spec.partition("=")
        soft, _, hard = limits.partition(":")
        return {"Name": name, "Soft": int(soft), "Hard": int(hard or soft)}
    name, soft, hard = spec
    return {"Name": name, "Soft": soft, "Hard": hard}


def _inspect_mount(m: dict, root) -> dict:
    out = {"Type": m["type"], "Source": m["source"] or "", "Destination": m["target"],
           "Mode": "ro" if m["read_only"] else "", "RW": not m["read_only"], "Propagation": "rprivate"}
    if m["type"] == "volume":   # docker names the volume and gives its directory as the source
        out.update(Name=m["source"], Source=str(volumes.volumes_dir(root) / m["source"] / volumes.DATA),
                   Driver="local")
    return out


# ---- port, disk usage -------------------------------------------------------------------


def port_lines(c: ManagedContainer) -> list:
    """docker port's lines ("80/tcp -> 0.0.0.0:8080") for the ports the
    monitor published at the last start (the host ports actually used)."""
    rec = c.reload().record
    if rec.state not in ("running", "paused"):
        return []
    out = []
    for p in rec.exec_profile.get("network", {}).get("ports", ()):
        out.append(f"{p['container_port']}/{p['proto']} -> {p['host_ip'] or '0.0.0.0'}:{p['host_port']}")
    return out


def top_with_ps(c: ManagedContainer, ps_args) -> dict:
    """docker top CONTAINER [ps OPTIONS]: the host's ps with those options,
    its rows kept for the container's processes (as dockerd does)."""
    import subprocess

    pids = {str(p) for p in c.processes()}
    r = subprocess.run(["ps", *ps_args], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise ContainerError(f"ps: {(r.stderr.strip() or 'failed').splitlines()[0]}")
    lines = r.stdout.splitlines()
    titles = lines[0].split() if lines else []
    if "PID" not in titles:
        raise ContainerError("Couldn't find PID field in ps output")
    at = titles.index("PID")
    rows = []
    for line in lines[1:]:
        fields = line.split(None, len(titles) - 1)
        if len(fields) > at and fields[at] in pids:
            rows.append(fields)
    return {"Titles": titles, "Processes": rows}


def filesystem_changes(c: ManagedContainer) -> list:
    """docker diff: [(kind, path)], kind A (added), C (changed) or D (deleted),
    from the container's writable layer against the layers below it."""
    upper, lowers, _ = c._filesystem()
    out = []
    # what the engine itself puts in every container (docker keeps these in an
    # init layer below the container's own, so its diff never lists them)
    engine_made = {"dev", "proc", "sys", "etc/hostname", "etc/hosts", "etc/resolv.conf", ".pycontain"}

    def below(rel):
        return any(os.path.lexists(os.path.join(low, rel)) for low in lowers)

    for dirpath, dirnames, filenames in os.walk(upper):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, upper)
            if rel in engine_made or rel.split("/", 1)[0] in ("dev", "proc", "sys"):
                continue
            st = os.lstat(full)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:   # an overlay whiteout
                out.append(("D", "/" + rel))
            else:
                out.append(("C" if below(rel) else "A", "/" + rel))
    return sorted(out, key=lambda e: e[1])


def disk_usage(root=None) -> dict:
    """docker system df's figures for containers (writable layers and logs)."""
    store = _store(root)
    total = active = size = reclaimable = 0
    for rec in store.list():
        s = _dir_size(store.container_dir(rec.id))
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
