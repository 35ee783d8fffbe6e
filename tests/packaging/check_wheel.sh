#!/bin/sh
# The packaging lane: builds the sdist and the wheel, audits them (auditwheel,
# abi3audit, glibc symbol versions), installs them into fresh virtual
# environments and runs the core tests there, cross-builds for aarch64 and
# runs the aarch64 programs under qemu-aarch64-static.
#
#   tests/packaging/check_wheel.sh [pytest args...]
#
# Needs (as root, like the rest of the suite): pip install -e '.[test]' in
# .venv (or PYTHON=...), and Debian's gcc python3-dev binutils busybox-static
# gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static.
set -eu
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-.venv/bin/python}
exec "$PYTHON" -m pytest -m packaging -v -p no:cacheprovider tests/packaging "$@"
