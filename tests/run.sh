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
    # the reference engine the CLI is compared with (tests/dockerref): dockerd 20.10 and its client
    docker.io
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

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
# An editable install leaves the package uncompiled, and some machines set
# PYTHONDONTWRITEBYTECODE: every CLI and monitor process the tests start would
# compile ~40 modules again (~0.1-0.3 s each). pip compiles a real install.
.venv/bin/python -m compileall -q pycontain >/dev/null

# The host's suite (cgroup v1/hybrid here), then the cgroup v2 lane in a VM:
# the same v2 tests, one boot. Both run; the script fails if either did.
status=0
.venv/bin/python -m pytest -p no:cacheprovider "$@" || status=$?
bash tests/vm/run-v2.sh -q || status=$((status ? status : $?))
exit $status
