"""A warm pool: containers made ahead, up to the moment their command runs.

    with pycontain.Pool(rootfs="/srv/rootfs", size=4, memory="256m") as pool:
        r = pool.run(["sh", "-c", "echo hi"], capture_output=True)

Each container of the pool is made by Container.create(before_exec=True)
(namespaces, root and its mounts, cgroup and limits, working directory, user,
capabilities, seccomp filter: every step but the exec) with pipes for its
stdin, stdout and stderr, and waits there. run() takes one, gives it the command (Container.replace_command:
the argv is written into the plan the waiting child reads), releases it and
returns what Container.run returns. A container runs one command and is gone;
a thread of the pool makes the next one once that command ended (so that it
does not slow the command's start down), and at most `size` wait at any time.
When commands come faster than that, run() makes its container itself.

The pool's thread is the parent of every container it made (the launcher
kills a container whose parent thread ends: prctl PR_SET_PDEATHSIG), so it
lives until close(); close() (or the with block's end, or the interpreter's
exit) removes the waiting containers and ends the thread. A process killed
outright takes its containers with it the same way; a cgroup asked for by a
limit is then left to the next pycontain cleanup, as for any container.
"""
from __future__ import annotations

import atexit
import dataclasses
import os
import sys
import threading
import weakref

from .container import PIPE, Container, ContainerResult
from .errors import ConfigError, ContainerError

# the command a prepared container is created with; run() replaces it before it can run
_PLACEHOLDER = ["true"]


class Pool:
    """N containers of one image (or root filesystem) and one set of options,
    kept ready; run() gives each command a fresh one. Options are
    Container's, except command and remove (each command is passed to run();
    a pool's containers are always removed after their command)."""

    def __init__(self, image=None, *, rootfs=None, size=2, **options):
        for bad in ("command", "remove", "tty", "name", "id"):
            if bad in options:
                raise ConfigError(f"Pool does not take {bad}=: "
                                  + ("give the command to run()" if bad == "command" else
                                     "each of its containers is a fresh, anonymous, removed one"))
        if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= 256:
            raise ConfigError(f"size must be a whole number from 1 to 256, not {size!r}")
        self.size = size
        self._image, self._rootfs, self._options = image, rootfs, options
        # checked here, once: a bad option is the caller's error, not the thread's
        Container(image, _PLACEHOLDER, rootfs=rootfs, **options)
        self._ready = []                  # created containers, oldest first
        self._cond = threading.Condition()
        self._closed = False
        self._error = None                # what stopped the thread from making the next one
        self._thread = threading.Thread(target=self._fill, name="pycontain-pool", daemon=True)
        self._thread.start()
        # a pool left open goes with the interpreter; weakly, so that the pool itself can be collected
        self._atexit = _close_at_exit(self)
        atexit.register(self._atexit)
        with self._cond:   # the first container, or why there is none
            while not self._ready and self._error is None:
                self._cond.wait()
            if self._error is not None and not self._ready:
                err = self._error
                self.close()
                raise err

    # ---- the thread that makes containers ---------------------------------------------

    def _make(self) -> Container:
        c = Container(self._image, _PLACEHOLDER, rootfs=self._rootfs, **self._options)
        c.create(stdin=PIPE, stdout=PIPE, stderr=PIPE, before_exec=True)
        return c

    def _fill(self):
        while True:
            with self._cond:
                while not self._closed and len(self._ready) >= self.size:
                    self._cond.wait()
                if self._closed:
                    return
            try:
                c = self._make()
            except BaseException as e:   # noqa: BLE001 - handed to run(), which raises it
                with self._cond:
                    self._error = e
                    self._cond.notify_all()
                    # a failure is not retried in a loop: the next run() asks again
                    while not self._closed and self._error is not None:
                        self._cond.wait()
                    if self._closed:
                        return
                continue
            with self._cond:
                if self._closed:
                    _discard(c)
                    return
                self._ready.append(c)
                self._cond.notify_all()

    def _take(self) -> Container:
        """A ready container, or, when none is (commands come faster than the
        thread makes them), one made here and now: waiting for the thread would
        cost more than making it."""
        with self._cond:
            if self._closed:
                raise ContainerError("the pool is closed")
            if self._ready:
                # the thread makes the next one once this command ended (run()):
                # meanwhile it would take the CPU and the GIL from the command's start
                return self._ready.pop(0)
            self._error = None    # the thread tries again after a failure; ours is raised here
        return self._make()

    @property
    def ready(self) -> int:
        """How many containers wait for a command right now."""
        with self._cond:
            return len(self._ready)

    # ---- running a command --------------------------------------------------------------

    def run(self, command, *, input=None, capture_output=False, timeout=None, check=False,  # noqa: A002
            text=False) -> ContainerResult:
        """Runs command in a fresh container of the pool, like subprocess.run:
        returns a ContainerResult (returncode, and stdout and stderr with
        capture_output); input is sent to its stdin (which is otherwise at
        EOF); timeout kills it and raises ContainerTimeout; check raises
        ContainerExitError on a non-zero status. Without capture_output its
        output goes to this process's stdout and stderr once it has ended."""
        c = self._take()
        try:
            c.replace_command(command)
            data = input.encode() if text and isinstance(input, str) else input
            result = c.run(input=data, timeout=timeout)
        except BaseException:
            _discard(c)
            raise
        finally:
            with self._cond:
                self._cond.notify_all()    # room for the next one
        if not capture_output:
            for data, stream in ((result.stdout, sys.stdout), (result.stderr, sys.stderr)):
                if data:
                    stream.flush()
                    os.write(stream.fileno(), data)
            result = dataclasses.replace(result, stdout=None, stderr=None)
        elif text:
            result = dataclasses.replace(result, stdout=result.stdout.decode(errors="replace"),
                                         stderr=result.stderr.decode(errors="replace"))
        if check:
            result.check_returncode()
        return result

    # ---- the end --------------------------------------------------------------------------

    def close(self):
        """Removes the containers still waiting and ends the pool's thread;
        a command running meanwhile in another thread is killed with it."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
            ready, self._ready = self._ready, []
        for c in ready:
            _discard(c)
        if self._thread is not threading.current_thread():
            self._thread.join()
        atexit.unregister(self._atexit)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if not getattr(self, "_closed", True):
            self.close()


def _discard(c: Container):
    for f in (c.stdin, c.stdout, c.stderr):
        if f is not None:
            f.close()
    c.remove()


def _close_at_exit(pool: Pool):
    ref = weakref.ref(pool)

    def close():
        p = ref()
        if p is not None:
            p.close()
    return close
