"""The handle of a managed container: every verb (start, stop, kill, pause,
wait, logs, exec, export, commit, rename, rm) from any process. It reads the
record, acts on the container's processes by pid (checked against their
start time) and lets the record's transactions order concurrent callers."""
from __future__ import annotations

import dataclasses
import os
import select
import signal as _signal
import tempfile
import threading
import time

from .. import attach, events, names
from ..result import ContainerResult
from ..errors import ConfigError, ContainerError, ContainerStateError, ContainerTimeout, StartFailed
from ..logs import follow_entries, parse_since, read_entries
from ..state import (MONITORED, ContainerRecord, NameInUse, NoSuchContainer, Store, process_alive, process_start_time,
                     remove_leftover_cgroups)
from . import proc
from . import health
from .inspect import inspect_dict
from .record import CONFIG_VERSION, discard, look, on_networks, parse_restart_policy, signal_number

DEFAULT_STOP_TIMEOUT = 10



# What every start makes in the writable layer: mount points the image may
# lack and the generated network files. docker keeps them in an "init" layer
# under the container's own, so docker diff never lists them.
INIT_PATHS = frozenset(("/dev", "/proc", "/sys", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf"))


def _running_cgroup():
    """pycontain.cgroups.running, imported by the verbs that act on a cgroup
    (stop, kill, pause, stats, update) and exec: the cgroups package brings
    its drivers and ctypes (~10 ms of imports) that ps and logs do not use."""
    from ..cgroups import running

    return running


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

    @property
    def health(self) -> dict | None:
        """docker's State.Health (Status, FailingStreak, Log), None without a health check."""
        return health.state(self._store.root, self._rec)

    @property
    def container_dir(self):
        """The directory of its writable layer, logs and attach socket."""
        return self._store.container_dir(self._rec.id)

    def reload(self):
        self._rec = look(self._store, self._rec.id)
        return self

    def _fresh(self):
        try:
            return self.reload()._rec
        except NoSuchContainer:
            raise NoSuchContainer(self._rec.id[:12]) from None

    # ---- start, run -----------------------------------------------------------

    def start(self, attach_sock=None):
        """Starts a created or exited container under a detached monitor.
        attach_sock: one end of a socketpair that is attached from the start
        (attach.run_client on the other end): run -it, start -ai."""
        rec = self._fresh()
        if rec.state == "paused":
            raise ContainerStateError(f"cannot start a paused container {rec.name}, try unpause instead")
        if rec.state in ("running", "restarting"):
            return self  # docker: starting a running container is not an error
        rec = self._finished(rec)
        # Imported here and in run_attached: the monitor runs the container
        # through pycontain.Container (the launcher, cffi, the configuration,
        # seccomp: ~35 ms of imports) that the verbs which only read or signal
        # a container (ps, inspect, stop, rm) never use.
        from . import cmonitor
        from .monitor import ALREADY_RUNNING, start_detached

        if cmonitor.eligible(rec):
            result = cmonitor.start(self._store, rec.id, attach_sock=attach_sock)
        else:
            result = start_detached(self._store, rec.id, attach_sock=attach_sock)
        try:
            self.reload()
        except NoSuchContainer:  # auto-removed already
            self._rec.state = "removed"
        if "error" in result:
            if result.get("kind") == ALREADY_RUNNING:
                return self  # a concurrent start won
            raise StartFailed(result["error"], result.get("exit_status", 125))
        return self

    def _finished(self, rec, timeout=30.0):
        """rec with nothing of its last run left. A C monitor tears the
        container down in Python after its exit was recorded (the exit
        file): whoever wants the container next (start, rm) does not wait
        ~0.2 s for that interpreter to start, but kills it and removes what
        it would have (its cgroups and network lease; the image hold and the
        volumes' locks go with the record or the process). An --rm one is
        left to finish its removal."""
        if rec.state in MONITORED or rec.state == "created" or not rec.monitor_pid:
            return rec
        if rec.config.get("auto_remove"):
            end = time.monotonic() + timeout
            while process_alive(rec.monitor_pid, rec.monitor_start) and time.monotonic() < end:
                time.sleep(0.005)
        else:
            fd = self._pidfd_of(rec.monitor_pid, rec.monitor_start)
            if fd is not None:
                try:
                    _signal.pidfd_send_signal(fd, _signal.SIGKILL)
                    select.select([fd], [], [], timeout)
                except ProcessLookupError:
                    pass
                finally:
                    os.close(fd)
            remove_leftover_cgroups(rec)
            if on_networks(rec):
                # Imported here: the network code (~5 ms, and the launcher
                # its netlink helper loads) for a container on a network only.
                from ..network.connect import release_container

                release_container(rec.id, root=self._store.root)
        monitor = rec.monitor_pid

        def same_monitor(cur):
            if cur.monitor_pid != monitor or process_alive(cur.monitor_pid, cur.monitor_start):
                raise _MonitorChanged

        try:
            cur = self._store.update(rec.id, _check=same_monitor, monitor_pid=None, monitor_start=None)
        except _MonitorChanged:
            cur = self._store.load(rec.id)
        if cur is None:
            raise NoSuchContainer(rec.id[:12])
        self._rec = cur
        return cur

    def run_attached(self, stdin_fd=None, echo=True, tty_handler=None) -> int:
        """Runs the container with this process as its monitor (foreground
        `run`): output goes to the log and, with echo, to our stdout/stderr
        (echo a tuple: only to those named, "stdout" or "stderr")."""
        from .monitor import Monitor, claim  # see start

        claim(self._store, self.id)
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
        return self._pidfd_of(rec.pid, rec.pid_start)

    @staticmethod
    def _pidfd_of(pid, start):
        """A pidfd of process pid if it still is the one that started at start."""
        if not pid:
            return None
        try:
            fd = os.pidfd_open(pid)
        except (ProcessLookupError, OSError):
            return None
        if process_start_time(pid) != start:
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
        sig = signal_number(signal)
        rec = self._fresh()
        if rec.state not in ("running", "paused"):
            raise ContainerStateError(f"container {rec.short_id} is not running")
        if sig in (_signal.SIGKILL, signal_number(rec.config.get("stop_signal", "SIGTERM"))):
            rec = self._store.update(rec.id, stop_requested=True) or rec
        # logged first: the monitor's "die" may follow the signal at once
        events.container_event(self._store.root, rec, "kill", signal=sig)
        if not self._send(rec, sig):
            raise ContainerStateError(f"container {rec.short_id} is not running")
        if rec.state == "paused" and sig == _signal.SIGKILL:
            _running_cgroup().thaw(rec)
        return self

    def stop(self, timeout=None, signal=None):
        """The stop signal (the image's StopSignal, else SIGTERM), SIGKILL
        after `timeout` seconds; returns once the exit is recorded. A stopped
        container is not restarted by its policy."""
        if timeout is None:   # the container's own (--stop-timeout), else docker's 10 s
            timeout = self._rec.config.get("stop_timeout")
            timeout = DEFAULT_STOP_TIMEOUT if timeout is None else timeout
        try:
            rec = self._store.update(self._fresh().id, stop_requested=True)
        except NoSuchContainer:
            raise
        if rec is None:
            raise NoSuchContainer(self._rec.id[:12])
        if rec.state not in MONITORED:
            self._rec = rec
            return self
        sig = signal_number(signal or rec.config.get("stop_signal") or "SIGTERM")
        fd = self._pidfd(rec)
        if fd is not None:
            try:
                try:
                    events.container_event(self._store.root, rec, "kill", signal=sig)
                    _signal.pidfd_send_signal(fd, sig)
                except ProcessLookupError:
                    pass
                if rec.state == "paused":
                    _running_cgroup().thaw(rec)  # a frozen process cannot act on a signal
                if not select.select([fd], [], [], max(0, timeout))[0]:
                    try:
                        events.container_event(self._store.root, rec, "kill", signal=int(_signal.SIGKILL))
                        _signal.pidfd_send_signal(fd, _signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            finally:
                os.close(fd)
        self._wait_recorded(rec)
        if on_networks(rec):
            # a C monitor's teardown gives the leases back after the exit is
            # recorded: done here, so that the addresses and the network are
            # free once stop returns, as with docker (network rm, --ip)
            try:
                self._finished(self._fresh())
            except NoSuchContainer:
                pass
        events.container_event(self._store.root, rec, "stop")
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
        self.start()
        events.container_event(self._store.root, self._rec, "restart")
        return self

    # ---- pause --------------------------------------------------------------------------

    def pause(self):
        rec = self._fresh()
        if rec.state == "paused":
            raise ContainerStateError(f"container {rec.short_id} is already paused")
        if rec.state != "running":
            raise ContainerStateError(f"container {rec.short_id} is not running")
        _running_cgroup().freeze(rec)
        self._rec = self._store.update(rec.id, state="paused") or rec
        events.container_event(self._store.root, rec, "pause")
        return self

    def unpause(self):
        rec = self._fresh()
        if rec.state != "paused":
            raise ContainerStateError(f"container {rec.short_id} is not paused")
        _running_cgroup().thaw(rec)
        self._rec = self._store.update(rec.id, state="running") or rec
        events.container_event(self._store.root, rec, "unpause")
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
                _running_cgroup().thaw(rec)
            if rec.state in ("running", "paused"):
                events.container_event(self._store.root, rec, "kill", signal=int(_signal.SIGKILL))
            self._send(rec, _signal.SIGKILL)
            self._wait_recorded(rec)
            rec = self._fresh()
        rec = self._finished(rec)

        def still_stopped(cur):
            if cur.state in MONITORED or cur.monitor_pid:
                raise ContainerStateError(f"cannot remove container {cur.short_id}: it was started meanwhile")

        # "dead" (docker's state for a removal that did not finish) first,
        # the record last: an rm killed half way leaves a listed dead
        # container that the next rm finishes, never an unlisted directory
        if self._store.update(rec.id, _check=still_stopped, state="dead") is None:
            raise NoSuchContainer(rec.id[:12])
        discard(self._store, rec, with_volumes=volumes)  # docker's rm -v: its anonymous volumes too
        if self._store.delete(rec.id) is None:   # a concurrent rm finished first
            raise NoSuchContainer(rec.id[:12])
        events.container_event(self._store.root, rec, "destroy")
        self._rec.state = "removed"

    # ---- wait -------------------------------------------------------------------------------

    def _wait_condition(self, start_rec):
        """True once the run that was current at start_rec has ended."""
        try:
            cur = self._store.get(start_rec.id)
        except NoSuchContainer:
            # removed (--rm) before we looked: the status its record left behind
            code = self._store.removed_exit_code(start_rec.id)
            return True, dataclasses.replace(start_rec, state="removed",
                                             exit_code=start_rec.exit_code if code is None else code)
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
            loop.add_reader(fd, lambda ready=ready: ready.done() or ready.set_result(None))
            try:
                # the exit is recorded by the monitor just after the init ends
                await asyncio.wait_for(ready, 0.5)
            except asyncio.TimeoutError:
                pass
            finally:
                loop.remove_reader(fd)
                os.close(fd)
            await asyncio.sleep(0)

    async def removed_async(self, poll=0.02):
        """Until the container is gone (docker's wait condition "removed"):
        its record, and the monitor that removes the rest after it (--rm:
        the image it held, its anonymous volumes)."""
        import asyncio  # only here: importing it costs the CLI ~0.1 s

        monitor = None
        while True:
            try:
                rec = self._store.get(self.id)
            except NoSuchContainer:
                break
            if rec.monitor_pid:
                monitor = (rec.monitor_pid, rec.monitor_start)
            await asyncio.sleep(poll)
        while monitor is not None and process_alive(*monitor):
            await asyncio.sleep(poll)
        self._rec.state = "removed"

    # ---- logs --------------------------------------------------------------------------------

    def _still_running(self):
        try:
            cur = self._store.get(self.id)
        except NoSuchContainer:
            return False
        return cur.state in MONITORED or bool(cur.monitor_pid)

    def _started_since(self, rec) -> bool:
        """Whether the container started after `rec` was read (and has not stopped again)."""
        try:
            cur = self._store.get(self.id)
        except NoSuchContainer:
            return False
        return cur.state in MONITORED or bool(cur.monitor_pid) or cur.started == rec.started

    def log_entries(self, follow=False, tail=None, since=None, *, next_run=False, stop=None, poll=0.05):
        """(stream, text, RFC 3339 time) tuples; with follow, an endless
        iterator until the container stops. next_run: a container not
        running yet is followed through its next run, from the first byte
        (docker's attach before start). stop (a threading.Event): set, the
        iterator ends at its next look."""
        rec = self._fresh()
        since_t = parse_since(since) if isinstance(since, str) else since
        if follow:
            if next_run and not self._still_running():
                def running():
                    return self._started_since(rec)
            else:
                running = self._still_running
            if stop is not None:
                keep_going = running

                def running():
                    return not stop.is_set() and keep_going()
            return follow_entries(rec.log_path, running, since_t, tail, poll)
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

    def attach_socket(self):
        """A socket to the running container's monitor: what the container
        writes comes out of it, pycontain.attach frames go to its stdin."""
        return attach.connect(self._store.container_dir(self.id))

    # ---- exec ----------------------------------------------------------------------------------

    def exec_start(self, cmd, *, env=(), user=None, workdir=None, tty=False, stdio=(-1, -1, -1)):
        """Starts cmd inside the running container (its namespaces and cgroups,
        its init's user, capabilities, no_new_privs and seccomp filter).
        Returns the launcher's Child: pid (our own child), pidfd, tty_master."""
        from .execute import spawn_in   # see _running_cgroup

        return spawn_in(self._fresh(), cmd, env=env, user=user, workdir=workdir, tty=tty, stdio=stdio)

    def exec_run(self, cmd, *, env=(), user=None, workdir=None, stdin=None, timeout=None,
                 text=False) -> ContainerResult:
        """Runs cmd in the container to completion; stdout and stderr captured."""
        from .execute import run_in   # see _running_cgroup

        return run_in(self._fresh(), cmd, env=env, user=user, workdir=workdir, stdin=stdin, timeout=timeout,
                      text=text)

    # ---- inspection ------------------------------------------------------------------------------

    def processes(self) -> list:
        rec = self._fresh()
        if rec.state not in ("running", "paused"):
            raise ContainerStateError(f"container {rec.short_id} is not running")
        return proc.pid_namespace_members(rec.pid)

    def top(self, ps_args=None) -> dict:
        """docker top: UID PID PPID C STIME TTY TIME CMD for each process;
        with ps_args, the host's ps with those options, for its processes."""
        if ps_args:
            return proc.ps_rows(self.processes(), ps_args)
        rows = []
        tick = os.sysconf("SC_CLK_TCK")
        for pid in self.processes():
            info = proc.proc_info(pid)
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
                    "memory_limit": proc.mem_total(), "pids": 0}

        def sample():
            pids = proc.pid_namespace_members(rec.pid)
            cpu = rss = 0
            for pid in pids:
                info = proc.proc_info(pid)
                if info:
                    cpu += info["utime"] + info["stime"]
                    rss += info["rss"]
            return cpu, rss, len(pids)

        cg = _running_cgroup().figures(rec.pid)
        c0, _, _ = sample()
        cpu0 = cg.get("cpu_ns")
        t0 = time.monotonic()
        time.sleep(interval)
        c1, rss, npids = sample()
        dt = time.monotonic() - t0
        cg1 = _running_cgroup().figures(rec.pid)
        if cpu0 is not None and cg1.get("cpu_ns") is not None and dt > 0:
            cpu_pct = 100.0 * (cg1["cpu_ns"] - cpu0) / 1e9 / dt
        else:
            cpu_pct = 100.0 * (c1 - c0) / os.sysconf("SC_CLK_TCK") / dt if dt > 0 else 0.0
        # the container's own cgroup when it has one (docker's figures), else /proc's sums
        return {"id": rec.id, "name": rec.name, "cpu_percent": cpu_pct,
                "memory_usage": cg1.get("memory_usage", rss),
                "memory_limit": min(cg1.get("memory_limit") or proc.mem_total(), proc.mem_total()),
                "pids": cg1.get("pids", npids)}

    # ---- its filesystem as an image or a tar stream (docker export, commit) -----

    def io_counters(self) -> dict:
        """docker stats' NET I/O (the container's interfaces but lo) and
        BLOCK I/O (its cgroups), in bytes; zeros when it is not running."""
        rec = self._fresh()
        if rec.state not in ("running", "paused") or not rec.pid:
            return {"net_rx": 0, "net_tx": 0, "block_read": 0, "block_write": 0}
        rx, tx = proc.net_bytes(rec.pid)
        read, written = _running_cgroup().block_io(rec.pid)
        return {"net_rx": rx, "net_tx": tx, "block_read": read, "block_write": written}

    def _filesystem(self):
        """(upper dir, lower dirs top first, base image ref or None)."""
        # Imported here: only containers of images need the image package, which costs
        # every other verb (ps, stop, logs, a rootfs= container) ~11 ms of imports.
        from .. import image

        cfg = self.record.config
        upper = self.container_dir / "upper"
        if cfg.get("rootfs"):
            return upper, [cfg["rootfs"]], None
        # the image pinned at create (records before pinning: the name given)
        img = image.resolve_for_run(cfg["image"], self._store.root, pull="never")
        return upper, list(img.layers), cfg["image"]

    def changes(self) -> list:
        """docker diff: [(kind, path)], "A" added, "C" changed, "D" deleted,
        what the container's writable layer changes in its image, less what
        every start makes there (INIT_PATHS)."""
        from ..image.merged import layer_changes  # see _filesystem

        upper, lowers, _ = self._filesystem()
        found = layer_changes(upper, lowers)
        kept = [(kind, path) for kind, path in found if path not in INIT_PATHS]
        # a directory changed only by what is left out is left out too
        # (docker's init layer holds that copy of /etc, not the container's)
        dropped = {path for _, path in found} - {path for _, path in kept}
        parents = {path.rpartition("/")[0] for path in dropped}
        return [(kind, path) for kind, path in kept
                if not (kind == "C" and path in parents
                        and not any(p.startswith(path + "/") for _, p in kept))]

    def export(self, fileobj) -> None:
        """docker export: the container's filesystem (its image and its
        changes, running or not) as a tar stream."""
        from .. import image  # see _filesystem

        upper, lowers, _ = self._filesystem()
        image.export([str(upper), *lowers], fileobj)

    def commit(self, ref=None, *, changes=(), message=None, author=None) -> str:
        """docker commit: the container's changes (deletions as whiteouts) become
        a new layer on top of its image. Returns the new image's id."""
        from .. import image  # see _filesystem

        upper, lowers, base = self._filesystem()
        if base is None:
            # a rootfs= container has no image below its changes: the whole
            # filesystem becomes a one-layer image
            with tempfile.TemporaryFile(dir=self._store.root) as f:
                image.export([str(upper), *lowers], f)
                f.seek(0)
                return image.import_(f, ref, changes=changes, message=message, root=self._store.root)
        return image.commit(str(upper), base, ref, changes, message, author, root=self._store.root)

    def update(self, *, restart_policy=None, **limits):
        """docker update: new limits for a created, running, paused or stopped
        container, and/or a new restart policy. Takes docker's options
        (memory, memory_swap, memory_reservation, cpus, cpu_shares, cpu_quota,
        cpu_period, cpuset_cpus, cpuset_mems, pids_limit (-1: unlimited),
        blkio_weight); 0 or None leaves one as it is. A running or paused
        container's cgroup changes at once; the record keeps the new values
        (inspect, the next start). ConfigError (docker's words) or CgroupError
        (the kernel refused, e.g. below the memory in use): nothing changed."""
        # Imported here: the new limits go through the configuration's
        # validation (seccomp, networking: ~12 ms of imports), which the
        # verbs that only read or signal a container never use (see start).
        from ..config import limits_from_record, limits_json
        from .update import LIMIT_OPTIONS, changed_limits, given_options

        if restart_policy is not None:
            parse_restart_policy(restart_policy)
        for _attempt in range(5):
            rec = self._fresh()
            if restart_policy is not None and restart_policy.partition(":")[0] != "no" \
                    and rec.config.get("auto_remove"):
                raise ConfigError("Restart policy cannot be updated because AutoRemove is enabled for the container")
            changes = {}
            if given_options(limits) or set(limits) - set(LIMIT_OPTIONS):
                if rec.config.get("config_version") != CONFIG_VERSION:
                    raise ConfigError(f"container {rec.short_id} was created by an older pycontain: "
                                      "recreate it to change its limits")
                new, nano = changed_limits(rec.config, **limits)
                old = limits_from_record(rec.config.get("resources"))
                live = rec.state in ("running", "paused") and process_alive(rec.pid, rec.pid_start)
                if live and new != old:
                    _running_cgroup().cgroup_of(rec.pid, rec.short_id).update(old, new)
                changes["config"] = dict(rec.config, resources=limits_json(new), nano_cpus=nano)
            if restart_policy is not None:
                changes["restart_policy"] = restart_policy

            def unchanged(cur, seen=rec):
                # a start, restart or another update in between: decide again from the new record
                if (cur.config, cur.pid, cur.state) != (seen.config, seen.pid, seen.state):
                    raise _RecordChanged

            try:
                if changes and self._store.update(self.id, _check=unchanged, **changes) is None:
                    raise NoSuchContainer(self.short_id)
            except _RecordChanged:
                continue
            if changes:
                events.container_event(self._store.root, rec, "update")
            return self.reload()
        raise ContainerError(f"container {self.short_id} kept changing: its update was not applied")

    def set_restart_policy(self, policy: str):
        """docker update --restart: the monitor reads it when the container next exits."""
        return self.update(restart_policy=policy)

    def connect_network(self, network: str, aliases=(), ip=None):
        """docker network connect: plugged in now if it runs, and at each start."""
        from . import networks   # only here: the network code costs every other verb ~5 ms of imports

        self._rec = networks.connect(self._store, self.id, network, aliases=aliases, ip=ip)
        return self

    def disconnect_network(self, network: str, force=False):
        """docker network disconnect (of a network connected after create)."""
        from . import networks   # see connect_network

        self._rec = networks.disconnect(self._store, self.id, network, force=force)
        return self

    def rename(self, new_name: str):
        new_name = names.check("container", new_name.lstrip("/") if isinstance(new_name, str) else new_name)
        with self._store.transaction() as db:
            other = db.execute("SELECT id FROM containers WHERE name = ?", (new_name,)).fetchone()
            if other and other["id"] != self.id:
                raise NameInUse(new_name, other["id"])
            if db.execute("UPDATE containers SET name = ? WHERE id = ?", (new_name, self.id)).rowcount == 0:
                raise NoSuchContainer(self.short_id)
        old_name = self._rec.name
        self.reload()
        events.container_event(self._store.root, self._rec, "rename", oldName="/" + old_name)
        return self


class _MonitorChanged(Exception):
    """Another monitor took the container meanwhile."""


class _RecordChanged(Exception):
    """The record changed between reading it and writing the update."""


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
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self.saved[sig] = _signal.signal(sig, self._forward)
        return self

    def __exit__(self, *exc):
        for sig, handler in self.saved.items():
            _signal.signal(sig, handler)
