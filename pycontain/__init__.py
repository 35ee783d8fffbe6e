"""pycontain: a daemonless Linux container engine for Python.

    >>> import pycontain
    >>> pycontain.Container("hello-world").run().returncode
    0
"""
__version__ = "0.1.0"

from .errors import (  # noqa: E402
    CommandNotExecutable,
    CommandNotFound,
    ConfigError,
    ContainerError,
    ContainerExitError,
    ContainerTimeout,
    ImageNotFound,
    LaunchError,
    NetworkError,
    PortAlreadyAllocated,
)

PIPE = -1
DEVNULL = -3

__all__ = [
    "Container", "ContainerResult", "ContainerConfig", "Mount", "PIPE", "DEVNULL",
    "ContainerError", "ConfigError", "ImageNotFound", "LaunchError", "CommandNotFound",
    "CommandNotExecutable", "ContainerTimeout", "ContainerExitError", "NetworkError", "PortAlreadyAllocated",
]


# Imported on first use: the container modules (~0.1 s of imports) are not
# needed by a command that only reads state (pycontain-runc state, kill,
# delete); pycontain.containers (managed containers: records, monitors, the
# docker-like lifecycle) and pycontain.volumes bring SQLite along.
_LAZY = {"Container": "container", "ContainerResult": "container", "ContainerConfig": "config",
         "Mount": "config"}


def __getattr__(name):
    import importlib

    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    if name in ("containers", "volumes"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'pycontain' has no attribute {name!r}")
