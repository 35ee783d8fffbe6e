"""Python started in a source tree whose C extension was never built says
what is wrong and what to do, instead of a misleading "circular import"."""
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "pycontain"


def test_an_unbuilt_checkout_says_to_run_pip_install_e(tmp_path):
    shutil.copytree(PACKAGE, tmp_path / "pycontain",
                    ignore=shutil.ignore_patterns("*.so", "_bin", "__pycache__"))
    # -S: no site-packages, so no installed or editable pycontain can answer
    # for the copy; the copy's directory first, as a checkout's root is for `python -c`
    r = subprocess.run([sys.executable, "-S", "-c", f"import sys; sys.path.insert(0, {str(tmp_path)!r}); "
                        "import pycontain"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "circular import" not in r.stderr
    assert r.stderr.splitlines()[-1] == (
        f"ImportError: pycontain's C extension (_nsexec) is not built in {tmp_path / 'pycontain'}: "
        "run `pip install -e .` in the checkout (it needs a C compiler and the Python headers)")
