"""Where pycontain keeps its state: one root for images and containers.

Root: /var/lib/pycontain. Others: $XDG_DATA_HOME/pycontain (default
~/.local/share/pycontain). $PYCONTAIN_ROOT overrides both; the API takes a
root= argument where it matters.
"""
import os
from pathlib import Path


def default_root() -> Path:
    env = os.environ.get("PYCONTAIN_ROOT")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/pycontain")
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(data) / "pycontain"


def containers_dir(root: Path | None = None) -> Path:
    return (root or default_root()) / "containers"
