import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from conftest import busybox, store_root, workdir  # noqa: E402,F401  (shared fixtures)
