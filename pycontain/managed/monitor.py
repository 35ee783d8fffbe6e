"""The monitor: the one process that looks after a managed container.

It launches the container through pycontain.Container (the one launcher),
is the parent that reaps its init, copies its stdout/stderr into the
json-file log, records start, exit status, time and OOM, and applies the
restart policy. The container dies with it (the launcher's pdeathsig), so a
record whose monitor is gone is known to be stopped (state.py).

A detached container gets a monitor of its own: `python -m pycontain.managed.monitor
ID FD` started in a new session with its stdio on /dev/null, which forks once
more at once so that it is nobody's child (the CLI or the Python program that
started it may end, and never has to reap it). It reports on FD whether the
container started, then closes it. A foreground `run` uses this same class in
its own process.
"""
from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import termios
import time
import traceback

from .. import events
from ..attach import AttachServer, write_all
from ..container import DEVNULL, PIPE, Container
from ..errors import AlreadyRunning
from ..logs import JsonFileWriter
from ..state import Store, boot_id, dropped_lines_error, process_alive, process_start_time, remove_exit_file
from . import health
from .record import container_arguments, discard, should_restart

# docker's restart delay: 100 ms, doubled after each restart, at most a
# minute, back to 100 ms after a run of 10 s or more
RESTART_DELAY_START = 0.1
RESTART_DELAY_MAX = 60.0
RESTART_RESET_AFTER = 10.0

# What a monitor tells its starter when the container did not start: the
# "kind" of its report, so that the starter decides on a kind, not on a text.
START_FAILED = "start-failed"          # the launch failed: "error" says why
ALREADY_RUNNING = "already-running"    # another monitor looks after it (a concurrent start won)


def exit_status(returncode: int) -> int:
    """Container.wait()'s -N (killed by signal N) as a shell/docker status 128+N."""
    return returncode if returncode >= 0 else 128 - returncode


def exec_profile(plan) -> dict:
    """What `exec` must copy from the container's init: same user, same
    privileges, same environment (state.ContainerRecord.exec_profile)."""
    return {
        "uid": plan.uid, "gid": plan.gid, "groups": list(plan.groups),
        "capabilities": sorted(plan.capabilities), "no_new_privs": bool(plan.no_new_privs),
        "seccomp": plan.seccomp_bpf.hex() if plan.seccomp_bpf else None,
        "env": list(plan.envp), "path_env": plan.path_env, "cwd": plan.cwd,
        "set_groups": bool(plan.set_groups),
    }


class Monitor:
    """Runs one managed container until it stops for good."""

    def __init__(self, store, cid, report_fd=None, echo=False, stdin_fd=None, tty_handler=None,
                 attach_fd=None):
        self.store = store
        self.cid = cid
        self.report_fd = report_fd    # the starter waits on it: b'{"ok": true}' or an error
        # foreground run: also copy output to our stdout/stderr (True), or
        # to those of them named (run -a stdout)
        self.echo = ("stdout", "stderr") if echo is True else tuple(echo or ())
        self.stdin_fd = stdin_fd      # foreground run -i: our stdin goes to the container
        self.tty_handler = tty_handler  # foreground run -t: (master fd) -> pumps the terminal
        self.container = None
        self.start_error = None       # why the container could not start, if it could not
        self.attach = None            # detached: the AttachServer clients attach through
        self.detached = report_fd is not None
        self.attach_fd = attach_fd    # a client attached before the start (run -it, start -ai)

    # ---- reporting to whoever started us -------------------------------------

    def _report(self, msg: dict):
        if self.report_fd is None:
            return
        try:
            os.write(self.report_fd, json.dumps(msg).encode())
        except OSError:
            pass
        os.close(self.report_fd)
        self.report_fd = None

    # ---- the loop ------------------------------------------------------------------

    def run(self) -> int:
        """Starts, reaps, restarts. Returns the last exit status."""
        rec = self.store.load(self.cid)
        log = JsonFileWriter(rec.log_path, rec.log_opts.get("max-size"), rec.log_opts.get("max-file", 1))
        if self.detached:  # `attach` connects here
            self.attach = AttachServer(self.store.container_dir(self.cid))
            if self.attach_fd is not None:
                self.attach.adopt(socket.socket(fileno=self.attach_fd))
                self.attach_fd = None
        delay = RESTART_DELAY_START
        code = 0
        try:
            while True:
                started = time.monotonic()
                try:
                    c = self._plug_networks(self._launch(rec), rec)
                except Exception as e:  # the container could not start: record why and stop
                    self.start_error = e
                    status = getattr(e, "exit_status", 125)
                    self.store.update(self.cid, state="exited", exit_code=status, error=str(e),
                                      finished=time.time(), pid=None, pid_start=None,
                                      monitor_pid=None, monitor_start=None)
                    self._report({"error": str(e), "exit_status": status, "kind": START_FAILED})
                    if rec.config.get("auto_remove"):
                        self._remove()
                    return status
                self._report({"ok": True, "pid": c.pid})
                hc = health.healthcheck_of(rec)
                prober = health.Prober(self.store, self.cid, hc).start() if health.active(hc) else None
                self._pump(c, log)
                code = exit_status(c.wait())
                if prober is not None:
                    prober.stop()
                oom = _oom_killed(c)
                log.flush_partial()
                rec = self.store.load(self.cid)
                if rec is None or rec.config.get("networks"):
                    _unplug_networks(self.store, self.cid, rec)
                if rec is None:  # removed under us (rm -f): nothing left to record
                    return code
                if oom:
                    events.container_event(self.store.root, rec, "oom")
                events.container_event(self.store.root, rec, "die", exitCode=code)
                ran = time.monotonic() - started
                if should_restart(rec.restart_policy, code, rec.restart_count, rec.stop_requested):
                    delay = RESTART_DELAY_START if ran >= RESTART_RESET_AFTER else delay
                    rec = self.store.update(self.cid, state="restarting", exit_code=code, oom_killed=oom,
                                            finished=time.time(), pid=None, pid_start=None,
                                            restart_count=rec.restart_count + 1)
                    if self.attach is not None:   # their status is this exit's (docker's attach ends here)
                        self.attach.drop_all()
                    if not self._sleep_unless_stopped(delay):
                        break
                    delay = min(delay * 2, RESTART_DELAY_MAX)
                    rec = self.store.load(self.cid) or rec   # limits updated meanwhile (docker update) apply
                    continue
                self.store.update(self.cid, state="exited", exit_code=code, oom_killed=oom,
                                  finished=time.time(), pid=None, pid_start=None,
                                  monitor_pid=None, monitor_start=None, **_log_warning(log))
                if rec.config.get("auto_remove"):
                    self._remove()
                return code
            self.store.update(self.cid, state="exited", pid=None, pid_start=None,
                              monitor_pid=None, monitor_start=None)
            return code
        finally:
            log.close()
            if self.attach is not None:
                self.attach.close()

    def _remove(self):
        """--rm: the record, the container's directory and its anonymous volumes go with its exit."""
        rec = self.store.delete(self.cid)
        shutil.rmtree(self.store.container_dir(self.cid), ignore_errors=True)
        if rec is not None:  # else someone who found it lost removed it: they do the rest
            events.container_event(self.store.root, rec, "destroy")
            discard(self.store, rec, with_volumes=True)   # docker run --rm: anonymous volumes too

    def _sleep_unless_stopped(self, delay) -> bool:
        end = time.monotonic() + delay
        while time.monotonic() < end:
            rec = self.store.load(self.cid)
            if rec is None or rec.stop_requested:
                return False
            time.sleep(min(0.05, max(0, end - time.monotonic())))
        return True

    def _launch(self, rec):
        tty, stdin_open = rec.config.get("tty", False), rec.config.get("stdin_open", False)
        c = Container(**container_arguments(rec), id=rec.id, layer_dir=str(self.store.container_dir(rec.id)),
                      remove=True, tty=tty, root=self.store.root)
        self.container = c
        if self.stdin_fd is not None:
            stdin = self.stdin_fd
        elif stdin_open and self.detached:
            stdin = PIPE  # run -d -i: attached clients write to it
        else:
            stdin = DEVNULL
        if tty:
            c.start()
        else:
            c.start(stdin=stdin, stdout=PIPE, stderr=PIPE)
        cgroup = getattr(c, "_cgroup", None)
        paths = getattr(cgroup, "paths", ()) if cgroup is not None else ()
        cgroup_dirs = [str(d) for d in (paths() if callable(paths) else paths)]
        gateway, prefix_len = getattr(c, "network_gateway", (None, 0))
        network = {
            "ip_address": getattr(c, "ip_address", None), "gateway": gateway, "prefix_len": prefix_len,
            "ports": [p.to_dict() for p in getattr(c, "published_ports", ())],
        }
        rec = self.store.update(self.cid, state="running", pid=c.pid, pid_start=_start_time(c.pid),
                                started=time.time(), exit_code=None, error="", oom_killed=False,
                                exec_profile=dict(exec_profile(c.launch_plan), network=network,
                                                  cgroups=cgroup_dirs)) or rec
        events.container_event(self.store.root, rec, "start")
        return c

    def _plug_networks(self, c, rec):
        """The networks connected after create and the --network-alias'es,
        for the run that just started (its start fails if they cannot be)."""
        if rec.config.get("networks") or rec.config.get("network_aliases"):
            try:
                _plug_networks(self.store, rec.id)
            except BaseException:
                c.kill()
                c.wait()
                _unplug_networks(self.store, rec.id, rec)
                raise
        return c

    def _pump(self, c, log):
        """Copies the container's output into the log (and to our own
        stdout/stderr in the foreground, and to attached clients) until
        every output end closed."""
        if c.tty_master is not None:
            if self.tty_handler is not None:
                self.tty_handler(c.tty_master, lambda data: log.write("stdout", data))
            else:
                self._copy({c.tty_master: "stdout"}, log, c.tty_master, c.tty_master)
            os.close(c.tty_master)
            c.tty_master = None
            return
        streams = {c.stdout.fileno(): "stdout", c.stderr.fileno(): "stderr"}
        self._copy(streams, log, c.stdin.fileno() if c.stdin is not None else None, None)
        c.stdout.close()
        c.stderr.close()
        if c.stdin is not None:
            c.stdin.close()
            c.stdin = None

    def _copy(self, streams, log, input_fd, tty_fd):
        out_fds = {"stdout": 1, "stderr": 2}
        attach = self.attach
        while streams:
            watch = list(streams) + (attach.fds() if attach is not None else [])
            ready, _, _ = select.select(watch, [], [])
            for fd in ready:
                if attach is not None and fd == attach.fileno():
                    attach.accept()
                    continue
                if attach is not None and fd in attach.clients:
                    for kind, payload in attach.read(fd):
                        if kind == "d" and input_fd is not None:
                            _write_all(input_fd, payload)
                        elif kind == "w" and tty_fd is not None and len(payload) == 8:
                            fcntl.ioctl(tty_fd, termios.TIOCSWINSZ, payload)
                        elif kind == "e" and input_fd is not None and tty_fd is None:
                            _end_input(input_fd)
                    continue
                if fd not in streams:
                    continue
                try:
                    data = os.read(fd, 65536)
                except OSError:  # EIO: a terminal whose last slave closed
                    data = b""
                if not data:
                    del streams[fd]
                    continue
                stream = streams[fd]
                log.write(stream, data)
                if fd == tty_fd:   # a terminal's prompt has no newline: logged at once, followers see it
                    log.flush_partial(whole_characters=True)
                if stream in self.echo:
                    _write_all(out_fds[stream], data)
                if attach is not None and attach.clients:
                    attach.broadcast(data)


def _plug_networks(store, cid):
    # Imported here: the network code (~5 ms) serves connected containers only.
    from .networks import plug_recorded

    plug_recorded(store, cid)


def _unplug_networks(store, cid, rec):
    from .networks import unplug_all   # see _plug_networks

    unplug_all(store, cid, rec)


def _log_warning(log) -> dict:
    """The record's word on log lines a full disk made the monitor drop."""
    return {"error": dropped_lines_error(log.dropped_total)} if log.dropped_total else {}


def _oom_killed(c) -> bool:
    """Container.oom_killed (the cgroups branch: read from the container's
    memory cgroup as it is removed); False where there is none."""
    value = getattr(c, "oom_killed", False)
    try:
        return bool(value() if callable(value) else value)
    except OSError:
        return False


def _end_input(fd):
    """The container's stdin ends (docker run -i: the client's input ended):
    /dev/null takes the pipe's place, so the descriptor stays ours to close."""
    null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.dup2(null, fd)
    finally:
        os.close(null)


def _write_all(fd, data):
    write_all(fd, data, peer_may_leave=True)


def _start_time(pid):
    return process_start_time(pid)


# ---- starting a detached monitor ----------------------------------------------------


def start_detached(store, cid: str, timeout: float = 60.0, attach_sock=None) -> dict:
    """Starts the monitor of a detached container and waits until it says
    whether the container started ({"ok": True, "pid": N} or {"error": ...}).
    attach_sock: one end of a socketpair, an attached client from before the
    start (the other end is the caller's): no output is missed."""
    r, w = os.pipe()
    extra = (attach_sock.fileno(),) if attach_sock is not None else ()
    # A monitor launches one container at a time: no pool of spare network
    # namespaces (and no thread making them) in each of possibly hundreds.
    env = dict(os.environ, PYCONTAIN_ROOT=str(store.root), PYCONTAIN_NETNS_POOL="0")
    try:
        # the first process forks the monitor and ends at once: reaped here,
        # so the monitor is never our child
        first = subprocess.Popen(
            [sys.executable, "-m", "pycontain.managed.monitor", cid, str(w), *map(str, extra)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(w, *extra), start_new_session=True, env=env, close_fds=True,
            cwd="/",  # `python -m` imports from its working directory first: the caller's may be a container's
        )
    finally:
        os.close(w)
    try:
        first.wait()
        return read_report(r, timeout)
    finally:
        os.close(r)


def read_report(r, timeout: float) -> dict:
    """What a starting monitor reports on the pipe r, read until it closes."""
    chunks = []
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0 or not select.select([r], [], [], left)[0]:
            return {"error": "the container's monitor did not report in time", "exit_status": 125,
                    "kind": START_FAILED}
        data = os.read(r, 65536)
        if not data:
            break
        chunks.append(data)
    if not chunks:
        return {"error": "the container's monitor ended before it started the container", "exit_status": 125,
                "kind": START_FAILED}
    return json.loads(b"".join(chunks))


def claim(store, cid):
    """Takes charge of the container, under the database lock: refused
    (AlreadyRunning) if another monitor already looks after it."""
    me, my_start = os.getpid(), process_start_time(os.getpid())

    def check(rec):
        if rec.state in ("running", "paused", "restarting") or (
                rec.monitor_pid and (rec.monitor_pid, rec.monitor_start) != (me, my_start)   # create(monitor_here)
                and process_alive(rec.monitor_pid, rec.monitor_start)):
            raise AlreadyRunning(f"container {rec.short_id} is already running")

    rec = store.update(cid, _check=check, monitor_pid=me, monitor_start=my_start, stop_requested=False,
                       boot_id=boot_id())
    # the last run's exit file (the C monitor's) says nothing of this run
    remove_exit_file(store.container_dir(cid))
    return rec


def claim_or_report(store, cid, report_fd):
    """The container's record, claimed for this monitor (see claim); or, when
    it cannot be (gone, or another monitor won), why, told to the starter
    waiting on report_fd, and this process ends."""
    try:
        rec = claim(store, cid)
        if rec is None:
            raise LookupError(f"no such container: {cid}")
        return rec
    except Exception as e:
        kind = ALREADY_RUNNING if isinstance(e, AlreadyRunning) else START_FAILED
        try:
            os.write(report_fd, json.dumps({"error": str(e), "exit_status": 125, "kind": kind}).encode())
        except OSError:
            pass
        os._exit(1)


def main(argv):
    cid, report_fd = argv[0], int(argv[1])
    attach_fd = int(argv[2]) if len(argv) > 2 else None
    # Leave the starter: it reaps this process, the monitor goes on in the child.
    if os.fork() != 0:
        os._exit(0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    store = Store()
    claim_or_report(store, cid, report_fd)
    mon = Monitor(store, cid, report_fd=report_fd, attach_fd=attach_fd)
    try:
        mon.run()
    except BaseException as e:  # nobody sees our stderr: the record keeps why
        store.update(cid, error=f"the monitor failed: {e!r}",
                     state="exited" if mon.container is not None else "created",
                     pid=None, pid_start=None, monitor_pid=None, monitor_start=None,
                     finished=time.time())
        traceback.print_exc()
        if mon.container is not None:
            mon.container.kill()
        os._exit(1)
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
