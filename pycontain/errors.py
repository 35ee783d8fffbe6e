"""The one exception hierarchy of pycontain, rooted at ContainerError.

Where a standard exception already means the same thing, ours derives from it
too, so code written for subprocess keeps working: ContainerTimeout is a
subprocess.TimeoutExpired, ContainerExitError a subprocess.CalledProcessError,
LaunchError an OSError carrying the errno of the step that failed.
"""
import _thread
import errno as _errno
import os


class ContainerError(Exception):
    """Base of every error pycontain raises."""


class ConfigError(ContainerError, ValueError):
    """The configuration is invalid; nothing was created."""


class ImageNotFound(ContainerError, LookupError):
    """No image by that name (locally, or in the registry when pulling)."""


class LaunchError(ContainerError, OSError):
    """A step of the container's start failed.

    `stage` names the step (mount, pivot_root, setuid, exec...), `detail` what
    it acted on, `errno` why. str() reads like `pivot_root("/x"): Invalid argument`.
    """

    def __init__(self, err, stage, detail=""):
        self.stage = stage
        self.detail = detail
        msg = f"{stage}({detail!r})" if detail else stage
        super().__init__(err, f"{msg}: {os.strerror(err)}")

    def __str__(self):
        return self.strerror

    # The exit status docker gives a container that could not start.
    exit_status = 125


class CommandNotFound(LaunchError):
    """The command is not in the container (docker: exit status 127)."""

    exit_status = 127

    def __init__(self, command):
        super().__init__(_errno.ENOENT, "exec", command)
        self.strerror = f'exec: "{command}": executable file not found in $PATH'


class CommandNotExecutable(LaunchError):
    """The command exists but cannot be executed (docker: exit status 126)."""

    exit_status = 126

    def __init__(self, command, err=_errno.EACCES):
        super().__init__(err, "exec", command)
        self.strerror = f'exec: "{command}": {os.strerror(err).lower()}'


# ContainerTimeout and ContainerExitError derive from subprocess's exceptions,
# and importing subprocess costs about what Python's own start-up does (~10 ms:
# re, locale, threading, selectors). So they are made on first use (PEP 562's
# module __getattr__, below): `import pycontain`, and a command that never
# waits on a container, do not pay for it. Made once, under a lock, so that
# every `except ContainerTimeout` names the same class.
_subprocess_shaped_lock = _thread.allocate_lock()


def _make_subprocess_shaped() -> dict:
    import subprocess

    class ContainerTimeout(ContainerError, subprocess.TimeoutExpired):
        """The container did not finish in time (it has been killed when raised by run())."""

        def __init__(self, cmd, timeout, output=None, stderr=None):
            subprocess.TimeoutExpired.__init__(self, cmd, timeout, output, stderr)

    class ContainerExitError(ContainerError, subprocess.CalledProcessError):
        """run(check=True) and the command exited with a non-zero status."""

        def __init__(self, returncode, cmd, output=None, stderr=None, result=None):
            subprocess.CalledProcessError.__init__(self, returncode, cmd, output, stderr)
            self.result = result

    made = {"ContainerTimeout": ContainerTimeout, "ContainerExitError": ContainerExitError}
    for name, cls in made.items():
        cls.__qualname__ = name     # pickled, and shown, as pycontain.errors.NAME
    return made


def __getattr__(name):
    if name in ("ContainerTimeout", "ContainerExitError"):
        with _subprocess_shaped_lock:
            if name not in globals():
                globals().update(_make_subprocess_shaped())
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class NetworkError(ContainerError):
    """Setting up or tearing down a container's network failed."""


class NetworkNotFound(ConfigError, LookupError):
    """No network by that name (pycontain network ls lists them)."""


class PortAlreadyAllocated(NetworkError):
    """A published host port is taken (by another container or a host program)."""


class ContainerStateError(ContainerError):
    """The verb does not apply to the container's state (docker's 409 Conflict)."""


class AlreadyRunning(ContainerStateError):
    """Another monitor already looks after the container (a concurrent start won)."""


class StartFailed(ContainerError):
    """The container's monitor could not start it; exit_status follows docker (125, 126, 127)."""

    def __init__(self, message, exit_status=125):
        super().__init__(message)
        self.exit_status = exit_status


class StoreDamaged(ContainerError):
    """A store database is missing, empty or unreadable while the content it
    describes is there: nothing is deleted until `pycontain system check --repair`."""


class NoSpace(ContainerError, OSError):
    """The store's filesystem is full (or failing): the write did not happen, nothing half-written stays."""

    def __init__(self, while_doing: str):
        OSError.__init__(self, _errno.ENOSPC, f"no space left on device while {while_doing}")

    def __str__(self):
        return self.strerror

