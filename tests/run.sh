#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian/Ubuntu machine and
# runs the whole suite. Run as root (the tests create namespaces, mounts and
# cgroups): `bash tests/run.sh [pytest args]`.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: a C compiler for the extension, a static busybox for the
# test images, and the other runtimes and tools the tests and benchmarks use.
DEBIAN_PACKAGES=(
    gcc libc6-dev python3-dev python3-venv file iproute2 procps
    busybox-static
    buildah  # the builder is compared with dockerd 20.10 (docker.io, below) and buildah (bench)
    libseccomp2     # seccomp filters are compiled by the system libseccomp (pycontain/security/seccomp.py)
    nftables        # bridge networking: NAT and published ports (pycontain/network/nft.py)
    slirp4netns     # rootless networking (pycontain/network/slirp.py)
    uidmap          # newuidmap/newgidmap: rootless id maps over /etc/subuid ranges (pycontain/rootless.py)
    fuse-overlayfs  # the rootless root on kernels before 5.11 (pycontain/fuse_overlayfs.py)
    python3         # the UDP network tests run the host's /usr/bin/python3 inside containers
    # the packaging lane (tests/packaging): aarch64 cross build, run under qemu-user
    binutils gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static
    # images (tests/image): a real registry, skopeo to cross-check, bcrypt htpasswd, zstd
    # layers, and a Debian minbase layer made with debootstrap (cached in ~/.cache)
    docker-registry skopeo apache2-utils zstd debootstrap umoci
    # the OCI runtime door (tests/oci): its callers containerd 1.6, dockerd 20.10 and podman 4.3 (with
    # conmon), and runc, the reference; script(1) (bsdutils) gives ctr run -t a terminal. docker.io also
    # gives the Engine API tests (tests/api) docker's client where the machine has none and a reference
    # dockerd for response shapes; systemd brings systemd-socket-activate
    containerd podman conmon docker.io runc bsdutils systemd
    # the cgroup v2 lane (tests/vm/run-v2.sh): Debian's kernel under QEMU
    qemu-system-x86 linux-image-amd64 cpio kmod
)
missing=()
for p in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    INITRD=No apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The README's interpreter: Debian's own (3.11.2 on Debian 12), not whatever
# python3 comes first on PATH (a newer one hid that cp failed on 3.11.2).
# PYTHON=... picks another; a .venv made by a different one is made anew.
PYTHON=${PYTHON:-/usr/bin/python3}
real_python() { "$1" -c 'import os, sys; print(os.path.realpath(getattr(sys, "_base_executable", sys.executable)))'; }
if [ ! -x .venv/bin/python ] || [ "$(real_python .venv/bin/python)" != "$(real_python "$PYTHON")" ]; then
    "$PYTHON" -m venv --clear .venv
fi
echo "tests/run.sh: $(.venv/bin/python -c 'import sys; print(sys.version.split()[0])') from $PYTHON"
# Debian's venv brings pip 23.0, which cannot drive a 3.12+ interpreter (the
# packaging lane installs the wheel into newer Pythons with this pip's --python);
# before 26, which no longer drives a 3.9 (the lane checks 3.9 is refused).
.venv/bin/python -m pip install -q --disable-pip-version-check -U 'pip>=24,<26'
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
# An editable install leaves the package uncompiled, and some machines set
# PYTHONDONTWRITEBYTECODE: every CLI and monitor process the tests start would
# compile ~40 modules again (~0.1-0.3 s each). pip compiles a real install.
.venv/bin/python -m compileall -q pycontain >/dev/null

# The host's suite (cgroup v1/hybrid here), then the cgroup v2 lane in a VM:
# the same v2 tests, one boot. Both run; the script fails if either did.
status=0
# The lint first (pyproject's [tool.ruff]): a name that does not exist, a
# builtin shadowed, a loop variable captured late.
.venv/bin/ruff check pycontain tests bench || status=$?
.venv/bin/python -m pytest -p no:cacheprovider "$@" || status=$?
# the VM lane runs the venv's interpreter, never a PYTHON given for the venv
PYTHON="$PWD/.venv/bin/python" bash tests/vm/run-v2.sh -q || status=$((status ? status : $?))
# The oldest claimed Python (3.10), where the machine has one: Debian 12 has
# no package for it (nor PyPI an interpreter), so on a fresh machine this lane
# does not run and tests/test_python_versions.py checks the source instead.
# PYTHON310=/path/to/python3.10 (or python3.10 on PATH) turns it on.
# A pyenv shim answers `command -v` without having the version: only an
# interpreter that runs and says 3.10 counts.
is_py310() { [ -n "$1" ] && "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; }
if [ -z "${PYTHON310:-}" ]; then
    for cand in "$(command -v python3.10 || true)" \
                $( command -v pyenv >/dev/null && ls -d "$(pyenv root)"/versions/3.10*/bin/python3.10 2>/dev/null ); do
        if is_py310 "$cand"; then PYTHON310=$cand; break; fi
    done
fi
if [ -n "${PYTHON310:-}" ]; then
    bash tests/py310.sh "$PYTHON310" || status=$((status ? status : $?))
else
    echo "tests/run.sh: no python3.10 here (PYTHON310=...): the 3.10 lane did not run" >&2
fi
exit $status
