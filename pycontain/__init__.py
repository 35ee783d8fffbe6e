"""pycontain: a daemonless Linux container engine for Python.

    >>> import pycontain
    >>> pycontain.Container("hello-world").run().returncode
    0
"""
__version__ = "0.1.0"

import os  # noqa: E402
from importlib.machinery import EXTENSION_SUFFIXES  # noqa: E402

# A checkout whose C extension was never built (python started in the source
# tree, or pycontain installed elsewhere with `pip install .`) would otherwise
# fail deep in _launch with a misleading "circular import". Looked for as the
# file a build puts beside this one: importlib.util.find_spec would cost
# `import pycontain` contextlib and collections (~3 ms).
if not any(os.path.exists(os.path.join(d, f"_nsexec{suffix}")) for d in __path__ for suffix in EXTENSION_SUFFIXES):
    raise ImportError(f"pycontain's C extension (_nsexec) is not built in {__path__[0]}: "
                      "run `pip install -e .` in the checkout (it needs a C compiler and the Python headers)")

from .errors import (  # noqa: E402
    CommandNotExecutable,
    CommandNotFound,
    ConfigError,
    ContainerError,
    ImageNotFound,
    LaunchError,
    NetworkError,
    PortAlreadyAllocated,
)

PIPE = -1
DEVNULL = -3

__all__ = [
    "Container", "ContainerResult", "Pool", "ContainerConfig", "Mount", "PIPE", "DEVNULL",
    "ContainerError", "ConfigError", "ImageNotFound", "LaunchError", "CommandNotFound",
    "CommandNotExecutable", "ContainerTimeout", "ContainerExitError", "NetworkError", "PortAlreadyAllocated",
]


# Imported on first use: the container modules (~0.1 s of imports) are not
# needed by a command that only reads state (pycontain-runc state, kill,
# delete). Plain `from .module import` statements, which tests/unit/
# test_import_graph.py sees (`from . import x` would call this again).
def __getattr__(name):
    if name == "Container":
        from .container import Container as value
    elif name == "ContainerResult":
        from .result import ContainerResult as value
    elif name == "ContainerConfig":
        from .config import ContainerConfig as value
    elif name == "Mount":
        from .config import Mount as value
    elif name == "Pool":
        from .pool import Pool as value
    elif name == "ContainerTimeout":    # they bring subprocess (pycontain/errors.py)
        from .errors import ContainerTimeout as value
    elif name == "ContainerExitError":
        from .errors import ContainerExitError as value
    elif name in ("containers", "volumes", "image", "network", "build"):
        # the public subpackages, reachable as attributes the way they were
        # before the lazy imports (pycontain.containers and volumes bring
        # SQLite along, image the registry client)
        import importlib

        return importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'pycontain' has no attribute {name!r}")
    globals()[name] = value
    return value
