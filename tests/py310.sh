#!/usr/bin/env bash
# The quick tests on the oldest Python the project claims (3.10): every module
# imported, the pure-logic tests and a few real containers, in a venv of its
# own (.venv310). `bash tests/py310.sh /path/to/python3.10`; run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:?usage: tests/py310.sh PYTHON3.10}
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 10), sys.version' || {
    echo "tests/py310.sh: $PY is not a Python 3.10" >&2; exit 2; }
[ -x .venv310/bin/python ] || "$PY" -m venv .venv310
# the extension is abi3 (cp310): the in-place build serves every venv alike
.venv310/bin/pip install -q --disable-pip-version-check -e '.[test]'
.venv310/bin/python - <<'PY'
import importlib, pkgutil, pycontain
for m in pkgutil.walk_packages(pycontain.__path__, "pycontain."):
    if not m.name.endswith("__main__"):
        importlib.import_module(m.name)
print("py310: every module of pycontain imports")
PY
exec unshare --mount --propagation private .venv310/bin/python -m pytest -p no:cacheprovider -q \
    tests/test_python_versions.py tests/unit tests/image/test_unpack.py \
    tests/security/test_seccomp_compile.py tests/security/test_io_uring.py tests/security/test_nss_escape.py \
    tests/security/test_store_modes.py tests/test_smoke.py
