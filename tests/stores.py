"""The store root the tests' library calls and CLIs use. (A module of its
own: each test directory's conftest.py is a module named conftest, so none
can be imported by name from everywhere.)"""
import contextlib
import os
from pathlib import Path


@contextlib.contextmanager
def store_root_at(root: Path):
    """PYCONTAIN_ROOT set to a new directory `root` for as long as it lasts."""
    root.mkdir()
    old = os.environ.get("PYCONTAIN_ROOT")
    os.environ["PYCONTAIN_ROOT"] = str(root)
    try:
        yield root
    finally:
        if old is None:
            os.environ.pop("PYCONTAIN_ROOT", None)
        else:
            os.environ["PYCONTAIN_ROOT"] = old
