"""pycontain: a daemonless Linux container engine for Python.

    >>> import pycontain
    >>> pycontain.Container("hello-world").run().returncode
    0
"""
__version__ = "0.1.0"

from importlib.util import find_spec  # noqa: E402

# A checkout whose C extension was never built (python started in the source
# tree, or pycontain installed elsewhere with `pip install .`) would otherwise
# fail deep in _launch with a misleading "circular import".
if find_spec(f"{__name__}._nsexec") is None:
    raise ImportError(f"pycontain's C extension (_nsexec) is not built in {__path__[0]}: "
                      "run `pip install -e .` in the checkout (it needs a C compiler and the Python headers)")

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
from .config import ContainerConfig, Mount  # noqa: E402
from .container import Container, ContainerResult  # noqa: E402
from .pool import Pool  # noqa: E402

PIPE = -1
DEVNULL = -3

__all__ = [
    "Container", "ContainerResult", "Pool", "ContainerConfig", "Mount", "PIPE", "DEVNULL",
    "ContainerError", "ConfigError", "ImageNotFound", "LaunchError", "CommandNotFound",
    "CommandNotExecutable", "ContainerTimeout", "ContainerExitError", "NetworkError", "PortAlreadyAllocated",
]


def __getattr__(name):
    # pycontain.containers (managed containers: records, monitors, the
    # docker-like lifecycle) and pycontain.volumes are imported on first
    # use: they bring SQLite along
    if name in ("containers", "volumes"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'pycontain' has no attribute {name!r}")
