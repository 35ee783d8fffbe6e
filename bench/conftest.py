import importlib.util
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests"

# The test suite's fixtures, loaded under a name of their own: a plain
# `from conftest import ...` finds this very module (also named conftest).
_spec = importlib.util.spec_from_file_location(
    "pycontain_tests_conftest", TESTS / "conftest.py")
_tests_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_tests_conftest)
busybox, store_root, workdir = _tests_conftest.busybox, _tests_conftest.store_root, _tests_conftest.workdir
# the benchmarks' `from conftest import make_busybox_rootfs` finds this module
make_busybox_rootfs = _tests_conftest.make_busybox_rootfs
