"""A fork server for a starter with threads (the Engine API service).

cmonitor.start forks: the child launches the container in process and
becomes the C monitor. A process with threads must not fork (a lock
another thread holds, SQLite's or the import lock, would stay held in the
child), so without this it starts a new interpreter for every start (~150 ms).

Instead, the service forks one single-threaded "starter" process at start-up,
before its event loop or any thread exists. The starter has the launcher
imported and the monitor program sealed, and serves start requests on a
SOCK_SEQPACKET socketpair: a request is one JSON message with, by
SCM_RIGHTS, the socket its answer goes to (and an attach socket, when one
is given). For each, the starter forks a worker that calls cmonitor.start
exactly as a single-threaded library caller does (fork, launch, exec the C
monitor, wait for its report) and sends that report back. The containers are
never the starter's: the monitors are double-forked as always, and the
workers end with their answer.

The starter dies with the service: PR_SET_PDEATHSIG, and the end of its
socket (read as the service's end). A starter that crashed is started again
as a new interpreter (`python -m pycontain.managed.starter FD PID`: no fork
from a process with threads); if that fails too, cmonitor takes its own
threaded path. An answer that never came (a worker that died) falls back the
same way: the record's claim refuses a second monitor, so a start that did
happen is then reported as already running.
"""
from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import traceback

from .. import _launch, _netns
from ..state import Store
from . import cmonitor
from .monitor import START_FAILED

MAX_MESSAGE = 64 << 10
MAX_RESTARTS = 5           # a starter that keeps crashing is given up: cmonitor's own path then
ANSWER_MARGIN = 10.0       # seconds beyond the start's own timeout before its answer counts as lost
# PYCONTAIN_STARTER=0: no fork server (each start with threads through a new interpreter, as before)
STARTER_ENV = "PYCONTAIN_STARTER"
_PR_SET_PDEATHSIG = 1
_PR_SET_NAME = 15
NAME = b"pycontain-start"   # a process name holds 15 bytes

_server: ForkServer | None = None


class ForkServer:
    """The service's side of its starter: start requests, thread-safe."""

    def __init__(self, ctl: socket.socket, pid: int, process: subprocess.Popen | None = None):
        self._ctl = ctl
        self.pid = pid
        self._process = process      # a restarted starter (a new interpreter); None: the forked one
        self._lock = threading.Lock()
        self.restarts = 0

    def start(self, root, cid: str, timeout: float, attach_sock=None) -> dict | None:
        """cmonitor.start's report, from a worker of the starter; None when
        the starter could not answer (the caller takes its own path)."""
        request = {"op": "start", "root": str(root), "id": cid, "timeout": timeout}
        return self._ask(request, attach_sock, timeout + ANSWER_MARGIN, retry=True)

    def stats(self) -> dict | None:
        """{"pid": the starter's, "starts": workers it forked, "restarts": ...}; None if it is gone."""
        answer = self._ask({"op": "stats"}, None, 5.0, retry=False)
        if answer is not None:
            answer["restarts"] = self.restarts
        return answer

    def _ask(self, request, attach_sock, wait, retry):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            fds = [theirs.fileno()] + ([attach_sock.fileno()] if attach_sock is not None else [])
            message = json.dumps(request).encode()
            try:
                while True:
                    ctl = self._ctl
                    if ctl is None:
                        return None
                    try:
                        socket.send_fds(ctl, [message], fds)
                        break
                    except OSError:   # EPIPE, ECONNRESET: the starter is gone
                        if not (retry and self._restart(ctl)):
                            return None
            finally:
                theirs.close()   # the worker's now, or nobody's: its end is our EOF
            ours.settimeout(wait)   # (poll: the service may hold descriptors past select's 1024)
            try:
                data = ours.recv(MAX_MESSAGE)
            except TimeoutError:
                if request["op"] == "start":
                    return {"error": "the container's starter did not report in time", "exit_status": 125,
                            "kind": START_FAILED}
                return None
            if not data:   # a worker (or the starter) ended without an answer
                self._restart_if_gone()
                return None
            return json.loads(data)
        finally:
            ours.close()

    def _alive(self) -> bool:
        if self._process is not None:
            return self._process.poll() is None
        try:
            return os.waitpid(self.pid, os.WNOHANG) == (0, 0)   # reaps it when it ended
        except ChildProcessError:
            return False

    def _restart_if_gone(self):
        ctl = self._ctl
        if ctl is not None and not self._alive():
            self._restart(ctl)

    def _restart(self, dead_ctl) -> bool:
        """A new starter in place of the one that listened on dead_ctl (if no
        other thread replaced it already); False: none, from now on."""
        with self._lock:
            if self._ctl is not dead_ctl:
                return self._ctl is not None
            self._alive()   # reaped, if it was our child and ended
            dead_ctl.close()
            self._ctl = None
            if self.restarts >= MAX_RESTARTS:
                return False
            self.restarts += 1
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            try:
                env = dict(os.environ, PYCONTAIN_NETNS_POOL="0")
                self._process = subprocess.Popen(
                    [sys.executable, "-m", "pycontain.managed.starter", str(theirs.fileno()), str(os.getpid())],
                    stdin=subprocess.DEVNULL, pass_fds=(theirs.fileno(),), start_new_session=True, env=env,
                    cwd="/")   # `python -m` imports from its working directory first
            except OSError:
                ours.close()
                return False
            finally:
                theirs.close()
            self.pid = self._process.pid
            self._ctl = ours
            return True

    def close(self, wait: float = 2.0) -> None:
        """The starter's end: it reads EOF and exits (its workers finish their starts)."""
        with self._lock:
            ctl, self._ctl = self._ctl, None
        if ctl is None:
            return
        ctl.close()
        if self._process is not None:
            try:
                self._process.wait(wait)
            except subprocess.TimeoutExpired:
                pass
            return
        end_fd = None
        try:
            end_fd = os.pidfd_open(self.pid)
            ended = select.poll()
            ended.register(end_fd, select.POLLIN)
            ended.poll(wait * 1000)
            os.waitpid(self.pid, os.WNOHANG)
        except (OSError, ChildProcessError):
            pass
        finally:
            if end_fd is not None:
                os.close(end_fd)


def launch() -> ForkServer | None:
    """Forks the starter and makes cmonitor.start use it in this process
    whenever threads exist. Call it before the first thread: a process
    that has threads already gets None (cmonitor's own path stays), as
    does one with PYCONTAIN_STARTER=0 in its environment."""
    global _server
    if _server is not None:
        return _server
    if threading.active_count() > 1 or os.environ.get(STARTER_ENV) == "0":
        return None
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            ours.close()
            serve(theirs, parent)
            code = 0
        except BaseException:
            traceback.print_exc()   # into the service's log; its next start finds the starter gone
        finally:
            os._exit(code)
    theirs.close()
    _server = ForkServer(ours, pid)
    cmonitor.threaded_starter = _server.start
    return _server


def current() -> ForkServer | None:
    """This process's fork server, if launch() made one."""
    return _server


def shutdown() -> None:
    """Ends this process's starter; cmonitor takes its own path again."""
    global _server
    if _server is None:
        return
    cmonitor.threaded_starter = None
    _server.close()
    _server = None


# ---- the starter ----------------------------------------------------------------------------


def _die_with(parent: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != parent:   # it ended before the signal was armed
        os._exit(0)
    libc.prctl(_PR_SET_NAME, ctypes.c_char_p(NAME), 0, 0, 0)   # what ps and top call it


def serve(ctl: socket.socket, parent: int) -> None:
    """The starter's loop, until the service's end of ctl closes. Every
    descriptor but ctl and the standard ones is closed: the caller forks it
    before it holds any of its own (the service: first thing)."""
    _die_with(parent)
    try:
        os.setsid()   # the service's terminal signals (Ctrl-C) are the service's to handle
    except PermissionError:
        pass          # started as a session leader already (a restarted starter)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.chdir("/")
    # one thread, always: no pool of spare network namespaces (a thread) here
    _netns.pool.enabled = False
    program = _launch.program_fd(cmonitor.PROGRAM)   # sealed once: every worker inherits it
    cmonitor.close_all_but({ctl.fileno(), program})   # the service's listening socket, its log files...
    starts = 0
    workers = set()
    while True:
        _reap(workers)
        if not select.select([ctl], [], [], 0.1 if workers else None)[0]:
            continue
        try:
            message, fds, _flags, _addr = socket.recv_fds(ctl, MAX_MESSAGE, 2, socket.MSG_CMSG_CLOEXEC)
        except InterruptedError:
            continue
        if not message:
            return   # the service ended
        socks = [socket.socket(fileno=fd) for fd in fds]
        try:
            request = json.loads(message)
            if not socks or not isinstance(request, dict):
                continue
            reply = socks[0]
            if request.get("op") == "stats":
                _send(reply, {"pid": os.getpid(), "starts": starts, "workers": len(workers)})
            elif request.get("op") == "start":
                pid = os.fork()
                if pid == 0:
                    _work(ctl, request, reply, socks[1] if len(socks) > 1 else None)
                starts += 1
                workers.add(pid)
        except (ValueError, OSError):   # not JSON; no fork (EAGAIN): the closed reply is the service's EOF
            continue
        finally:
            for s in socks:
                s.close()


def _reap(workers) -> None:
    for pid in list(workers):
        try:
            done, _status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            workers.discard(pid)


def _send(reply, answer) -> None:
    try:
        reply.send(json.dumps(answer).encode())
    except OSError:
        pass   # the service gave up on it


def _work(ctl, request, reply, attach_sock) -> None:
    """A worker: one cmonitor.start, as a single-threaded library caller. Never returns."""
    try:
        ctl.close()   # the end of the service's requests is the starter's alone to read
        answer = cmonitor.start(Store(request["root"]), request["id"], request["timeout"], attach_sock=attach_sock)
    except BaseException as e:
        answer = {"error": f"the container's starter failed: {e}", "exit_status": 125, "kind": START_FAILED}
    _send(reply, answer)
    os._exit(0)


def main(argv) -> int:
    if len(argv) != 2:
        print("usage: python -m pycontain.managed.starter FD PARENT_PID", file=sys.stderr)
        return 2
    serve(socket.socket(fileno=int(argv[0])), int(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
