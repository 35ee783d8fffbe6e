"""A detached container under the C monitor (src/monitor.c, pycontain-monitor),
as podman's containers are under conmon.

The starting process (CLI, API service, a Python program) forks; the child
launches the container in process, as a foreground run does (no new
interpreter to start: that was ~150 ms of every `run -d`), and then
executes pycontain-monitor from a sealed memfd in its own place, which
tells the starter that the container runs. exec keeps children: the
monitor is the container's init's parent and reaper, with the pid and
start time the record names as its monitor. The starter forks twice, so
it never reaps the monitor. A starter with threads does not fork (a lock
another thread holds would stay held in the child): a new interpreter
launches the container instead, and becomes the C monitor the same way.

The monitor copies the output into the json-file log, serves attach and
forwards signals; when the container ends it writes the exit file (status,
time, OOM) into the container's directory, which record readers merge at
once (state.py), and executes `python -m pycontain.managed.cmonitor finish`
in its own place again: the teardown (cgroup, image hold, attach socket),
the final record and --rm. Only that rare end pays a Python start.

A restart (the record's policy) is that Python process's too: it waits out
docker's backoff, launches the container again in process and executes the
C monitor again, still with the same pid. Health checks: the C monitor runs
`python -m pycontain.managed.health STORE ID` every interval.

What the C monitor does not do yet stays with the Python monitor
(monitor.py): network container:NAME, rootless containers (slirp4netns)
and fuse-overlayfs roots.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

from .. import _launch, _netns, cgroups, fuse_overlayfs
from ..attach import SOCKET_NAME, AttachServer
from ..container import release_image
from ..network.connect import release_container
from ..state import EXIT_MONITOR_LOST, Store, dropped_lines_error, read_exit_file, remove_exit_file
from .monitor import (RESTART_DELAY_MAX, RESTART_DELAY_START, RESTART_RESET_AFTER,
                      START_FAILED, Monitor, claim_or_report, read_report)
from . import health
from .record import on_networks, should_restart

PROGRAM = "pycontain-monitor"
# PYCONTAIN_MONITOR=python keeps every detached container under the Python monitor.
MONITOR_ENV = "PYCONTAIN_MONITOR"
# A process with threads that forked a starter before its first thread (the
# Engine API service: managed/starter.py sets this) starts through it:
# (store root, id, timeout, attach socket or None) -> the report,
# or None when the starter could not answer.
threaded_starter = None


def eligible(rec) -> bool:
    """Whether the C monitor can look after this container from start to end."""
    if os.environ.get(MONITOR_ENV) == "python":
        return False
    cfg = rec.config
    return (not cfg.get("network", "none").startswith("container:")   # joins a NetworkAttachment of this process
            and os.geteuid() == 0                  # rootless: slirp4netns and fuse-overlayfs processes
            and fuse_overlayfs.driver_for(fuse_overlayfs.requested_driver(cfg.get("storage_driver")),
                                          rootless=False) != "fuse-overlayfs")


def start(store: Store, cid: str, timeout: float = 60.0, attach_sock=None) -> dict:
    """Starts the container under a C monitor; returns the report
    ({"ok": True, "pid": N} or {"error": ..., "kind": ...}) as monitor.start_detached.
    A process with threads does not fork (another thread may hold a lock
    the child would need: SQLite's, the import lock...): a new interpreter
    launches the container instead, then becomes the C monitor all the same
    (unless a fork server, threaded_starter, forks for it).
    attach_sock: a client attached from the start (run -t, start -ai), as
    monitor.start_detached's."""
    if threaded_starter is not None and threading.active_count() > 1:
        result = threaded_starter(store.root, cid, timeout, attach_sock)
        if result is not None:
            return result
    client = attach_sock.fileno() if attach_sock is not None else None
    r, w = os.pipe()
    launcher = None
    try:
        _launch.program_fd(PROGRAM)   # sealed once per process: every fork inherits it
        if threading.active_count() > 1:
            launcher = _spawn_launcher(store, cid, w, client)
        else:
            first = os.fork()
            if first == 0:   # never returns
                os.close(r)
                _first_child(store.root, cid, w, client)
    except BaseException:
        os.close(r)
        raise
    finally:
        os.close(w)
    try:
        # the first process forks the launcher and ends at once: reaped here
        if launcher is not None:
            launcher.wait()
        else:
            os.waitpid(first, 0)
        return read_report(r, timeout)
    finally:
        os.close(r)


def _spawn_launcher(store, cid, w, client) -> subprocess.Popen:
    """`python -m pycontain.managed.cmonitor start ID FD [CLIENT_FD]`, in a session of its own."""
    env = dict(os.environ, PYCONTAIN_ROOT=str(store.root), PYCONTAIN_NETNS_POOL="0")
    extra = (client,) if client is not None else ()
    return subprocess.Popen(
        [sys.executable, "-m", "pycontain.managed.cmonitor", "start", cid, str(w), *map(str, extra)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        pass_fds=(w, *extra), start_new_session=True, env=env, close_fds=True,
        cwd="/",  # `python -m` imports from its working directory first: the caller's may be a container's
    )


def _first_child(root, cid, report_fd, client=None):
    code = 125
    try:
        if os.fork() == 0:   # the monitor-to-be: nobody's child once its parent ended
            _monitor_child(root, cid, report_fd, client)
        code = 0
    finally:
        os._exit(code)


def _report(fd, msg):
    try:
        os.write(fd, json.dumps(msg).encode())
    except OSError:
        pass


def _monitor_child(root, cid, report_fd, client):
    """Launches the container and becomes its C monitor. Never returns."""
    store = mon = None
    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):   # the starter's terminal or pipe is not ours to hold
            os.dup2(null, fd)
        os.close(null)
        os.chdir("/")
        # the starter's spare network namespaces are the starter's: this child
        # launches one container, and starts no thread to make more
        _netns.pool.enabled = False
        store = Store(root)   # a connection of our own: the starter's is not for a forked child
        rec = claim_or_report(store, cid, report_fd)
        mon = Monitor(store, cid, report_fd=report_fd)
        _become_monitor(store, rec, mon, report_fd, RESTART_DELAY_START, client)
    except BaseException as e:
        _report(report_fd, {"error": f"the container's monitor failed: {e}", "exit_status": 125,
                            "kind": START_FAILED})
        if mon is not None and mon.container is not None:
            try:   # launched, and nobody to look after it: it goes, with what it holds
                mon.container.remove()
            except Exception:
                pass
        try:
            if store is not None:
                store.update(cid, error=f"the monitor failed: {e!r}", pid=None, pid_start=None,
                             monitor_pid=None, monitor_start=None, finished=time.time(),
                             state="exited" if mon is not None and mon.container is not None else "created")
        except Exception:
            pass
    os._exit(1)


def _become_monitor(store, rec, mon, report_fd, restart_delay, client=None):
    """Launches the container of rec (this process is its monitor already)
    and executes the C monitor in this process's place, with client (a
    connected attach socket's descriptor) attached from the start. Returns
    only when the container could not start (recorded; --rm done)."""
    program = _launch.program_fd(PROGRAM)
    attach = AttachServer(store.container_dir(rec.id))   # attach works as soon as `run -d` returned
    try:
        c = mon._plug_networks(mon._launch(rec), rec)
    except Exception as e:   # as Monitor.run: the record says why, --rm removes it
        status = getattr(e, "exit_status", 125)
        store.update(rec.id, state="exited", exit_code=status, error=str(e), finished=time.time(),
                     pid=None, pid_start=None, monitor_pid=None, monitor_start=None)
        attach.close()
        if report_fd is not None:
            _report(report_fd, {"error": str(e), "exit_status": status, "kind": START_FAILED})
        if rec.config.get("auto_remove"):
            mon._remove()
        return
    argv, keep = _monitor_argv(store, rec, c, attach, restart_delay)
    if client is not None:
        argv[1:1] = ["--client", str(client)]
        keep.append(client)
    if report_fd is not None:   # the monitor reports {"ok": true, "pid": N} once it runs
        argv[1:1] = ["--report", str(report_fd)]
        keep.append(report_fd)
    close_all_but(keep + [program])
    for fd in keep:
        os.set_inheritable(fd, True)
    env = dict(os.environ, PYCONTAIN_ROOT=str(store.root), PYCONTAIN_NETNS_POOL="0")
    os.execve(program, argv, env)


def _monitor_argv(store, rec, c, attach, restart_delay) -> tuple[list, list]:
    """The monitor's command line and the descriptors it inherits."""
    net = c._network
    if (net is not None and net.target is not None) or c._slirp is not None or c._fuse is not None:
        raise RuntimeError("the C monitor cannot tear down this container's network or root filesystem")
    cdir = str(store.container_dir(rec.id))
    keep = []
    argv = [PROGRAM, "--pid", str(c.pid), "--dir", cdir, "--log", rec.log_path]
    if rec.log_opts.get("max-size"):
        argv += ["--max-size", str(rec.log_opts["max-size"]), "--max-file", str(rec.log_opts.get("max-file", 1))]
    if c.tty_master is not None:
        argv += ["--tty", str(c.tty_master)]
        keep.append(c.tty_master)
    else:
        argv += ["--stdout", str(c.stdout.fileno()), "--stderr", str(c.stderr.fileno())]
        keep += [c.stdout.fileno(), c.stderr.fileno()]
        if c.stdin is not None:
            argv += ["--stdin", str(c.stdin.fileno())]
            keep.append(c.stdin.fileno())
    argv += ["--attach", str(attach.fileno())]
    keep.append(attach.fileno())
    cg = c._cgroup
    oom = _oom_file(cg)
    if oom:
        argv += ["--oom", oom]
    argv += ["--events", str(store.root / "events.jsonl"), "--id", rec.id, "--name", rec.name,
             "--image", rec.image or ""]
    hc = health.healthcheck_of(rec)
    if health.active(hc):
        argv += ["--health-interval", str(round(health.interval_seconds(hc) * health.SECOND)), "--python", sys.executable, "--root", str(store.root)]
    # volumes stay held (a shared flock on each) for as long as the monitor lives
    volume_fds = [v._fd for v in c._volumes if v._fd is not None]
    # and the published host ports (a bound socket each) until their rules are gone
    port_fds = [s.fileno() for s in net._reservation.sockets] if net is not None and net._reservation else []
    keep += volume_fds + port_fds
    handoff = {"cgroup": cg.record() if cg is not None else None, "image_held": bool(c._image_held),
               "volume_fds": volume_fds + port_fds, "restart_delay": restart_delay}
    argv += ["--", sys.executable, "-m", "pycontain.managed.cmonitor", "finish", rec.id, json.dumps(handoff)]
    return argv, keep


def _oom_file(cg) -> str | None:
    """The cgroup file whose oom_kill counter says the kernel killed for memory."""
    if cg is None:
        return None
    rec = cg.record()
    if rec.get("version") == 2:
        return rec["path"] + "/memory.events"
    mem = rec.get("dirs", {}).get("memory")
    return mem + "/memory.oom_control" if mem else None


def close_all_but(keep):
    """Closes every descriptor above stderr but those in keep (the starter's too)."""
    keep = set(keep)
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


# ---- the end: executed by the monitor in its own place --------------------------------------


def finish(cid: str, handoff: dict) -> None:
    """The container ended (the exit file says how): its cgroup, its image
    hold and its volumes let go, the record made final, --rm done."""
    store = Store()
    cdir = store.container_dir(cid)
    ended = read_exit_file(cdir) or {}
    oom = bool(ended.get("oom_killed"))
    rec = store.load(cid)
    try:
        if handoff.get("cgroup"):
            cg = cgroups.reopen(handoff["cgroup"])
            try:
                cg.destroy()
            finally:
                try:
                    oom = oom or cg.oom_killed()
                except OSError:
                    pass
        if handoff.get("image_held"):
            release_image(cid, store.root)
        if rec is None or on_networks(rec):
            # every network's lease (the first one's published ports too),
            # and the other members' hosts files
            release_container(cid, root=store.root)
    finally:
        for fd in handoff.get("volume_fds", ()):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            os.unlink(cdir / SOCKET_NAME)
        except OSError:
            pass
    rec = store.load(cid)
    if rec is None:   # removed under us (rm -f): nothing left to record
        return
    code = ended.get("exit_code", EXIT_MONITOR_LOST)
    finished = ended["finished_ns"] / 1e9 if "finished_ns" in ended else time.time()
    dropped = ended.get("log_lines_dropped")
    mon = Monitor(store, cid)
    mon.detached = True   # a relaunch: stdin stays open for attach (-i), as at the first start
    if should_restart(rec.restart_policy, code, rec.restart_count, rec.stop_requested):
        # docker's backoff, as the Python monitor's: doubled after each
        # restart, back to the start after a run of RESTART_RESET_AFTER
        ran = finished - (rec.started or finished)
        delay = RESTART_DELAY_START if ran >= RESTART_RESET_AFTER else handoff.get("restart_delay", RESTART_DELAY_START)
        rec = store.update(cid, _check=lambda _rec: remove_exit_file(cdir), state="restarting", exit_code=code,
                           oom_killed=oom, finished=finished, pid=None, pid_start=None,
                           restart_count=rec.restart_count + 1)
        if rec is None:
            return
        if mon._sleep_unless_stopped(delay):
            rec = store.load(cid)
            if rec is not None:
                _become_monitor(store, rec, mon, None, min(delay * 2, RESTART_DELAY_MAX))
            return   # it could not start: recorded
        store.update(cid, state="exited", pid=None, pid_start=None, monitor_pid=None, monitor_start=None)
        return
    changes = {"state": "exited", "exit_code": code, "finished": finished, "oom_killed": oom, "pid": None,
               "pid_start": None, "monitor_pid": None, "monitor_start": None}
    if dropped:
        changes["error"] = dropped_lines_error(dropped)
    rec = store.update(cid, _check=lambda _rec: remove_exit_file(cdir), **changes)
    if rec is not None and rec.config.get("auto_remove"):
        mon._remove()


def main(argv):
    if len(argv) == 3 and argv[0] == "finish":
        finish(argv[1], json.loads(argv[2]))
        return 0
    if len(argv) in (3, 4) and argv[0] == "start":   # from a starter with threads (start())
        _first_child(Store().root, argv[1], int(argv[2]), int(argv[3]) if len(argv) == 4 else None)
    print("usage: python -m pycontain.managed.cmonitor finish ID HANDOFF | start ID FD [CLIENT_FD]",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
