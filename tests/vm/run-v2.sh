#!/bin/bash
# run-v2.sh - the cgroup v2 test lane: boots Debian's own kernel (linux-image-amd64)
# once under QEMU with a pure cgroup v2 hierarchy at /sys/fs/cgroup (every
# controller enabled in the root's cgroup.subtree_control) and runs
#     $PYTHON -m pytest -m cgroupv2 [PYTEST ARGS... (default: tests/cgroups)]
# inside it, from this project's directory (`run-v2.sh --bench [ROUNDS]` runs
# bench/bench_cgroups.py there instead). Exits with pytest's status;
# 124: timed out, 125: the VM could not run the tests (console tail on stderr).
#
# Why a VM: hosts like the CI machines give the memory/cpu/pids/io controllers to
# cgroup v1, and a kernel cannot move them to v2 while v1 uses them.
#
# How: the guest's root is the host's / shared read-only over 9p (cache=loose)
# under a tmpfs overlay, so the host's Python, the project's .venv and its built
# extension work unchanged and every write is thrown away at power-off; /tmp,
# /var/tmp and /run are fresh tmpfs (the tests' overlay mounts need a real
# upper filesystem). /dev/kvm is not usable for stock kernels on these machines,
# so QEMU emulates (TCG): ~3 s to boot, processes ~30x slower than on the host.
#
# Needs (Debian): qemu-system-x86 linux-image-amd64 busybox-static cpio kmod
# Environment: PYTHON (default: the project's .venv/bin/python), VM_TIMEOUT
# (seconds, default 900), VM_MEM (default 2G), VM_CPUS (default 2),
# VM_CACHE (initramfs cache, default ~/.cache/pycontain-vm), VM_VERBOSE=1 (console).
set -euo pipefail

PROJECT=$(cd "$(dirname "$0")/../.." && pwd -P)
PYTHON=${PYTHON:-$PROJECT/.venv/bin/python}
TIMEOUT=${VM_TIMEOUT:-900}
die() { echo "run-v2: $*" >&2; exit 125; }

# ---------------------------------------------------------------- prerequisites
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing (apt-get install qemu-system-x86)"
command -v cpio >/dev/null || die "cpio missing (apt-get install cpio)"
command -v modprobe >/dev/null || die "modprobe missing (apt-get install kmod)"
[ -x "$PYTHON" ] || die "no Python at $PYTHON (set PYTHON, or make the .venv: see README)"
case $PROJECT in
  *[[:space:]]*) die "the project's path must not contain white space (it goes on the kernel command line)";;
  /tmp/*|/var/tmp/*|/run/*) VM_PROJECT=$PROJECT;;   # the guest keeps it across its fresh tmpfs
  *) VM_PROJECT=;;
esac
BUSYBOX=
for b in /bin/busybox /usr/bin/busybox; do
  if [ -x "$b" ] && { ldd "$b" 2>&1 || true; } | grep -q 'not a dynamic'; then BUSYBOX=$b; break; fi
done
[ -n "$BUSYBOX" ] || die "a static busybox is missing (apt-get install busybox-static)"
KERNEL=$(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1 || true)
[ -n "$KERNEL" ] || die "no /boot/vmlinuz-* (apt-get install linux-image-amd64)"
KVER=${KERNEL##*/vmlinuz-}
[ -d "/lib/modules/$KVER" ] || die "/lib/modules/$KVER missing for $KERNEL"

# ---------------------------------------------------------------- guest, stage 1
# initramfs /init: the modules to reach the host, host / (9p, read-only) under a
# tmpfs overlay, fresh tmpfs for /tmp /var/tmp /run, then switch_root to stage 2.
read -r -d '' INIT <<'EOF_INIT' || true
#!/bin/busybox sh
B=/bin/busybox
$B mount -t proc proc /proc; $B mount -t sysfs sys /sys; $B mount -t devtmpfs dev /dev
fail() { echo "run-v2 init: $*"; $B poweroff -f; }
for m in $($B cat /modules.order); do $B insmod "/mods/$m.ko" || echo "run-v2 init: insmod $m failed"; done
$B mkdir -p /lower /rw /newroot
$B mount -t 9p -o ro,cache=loose,trans=virtio,version=9p2000.L,msize=512000 hostroot /lower || fail "9p mount of the host root failed"
$B mount -t tmpfs -o mode=755 tmpfs /rw && $B mkdir -p /rw/upper /rw/work
$B mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot || fail "overlay root failed"
proj=; for w in $($B cat /proc/cmdline); do case $w in vm.project=*) proj=${w#vm.project=};; esac; done
# a project under /tmp, /var/tmp or /run would vanish under their fresh tmpfs: keep it aside, put it back
if [ -n "$proj" ]; then $B mkdir -p /rw/project && $B mount --bind "/newroot$proj" /rw/project || fail "cannot keep $proj"; fi
for d in /tmp /var/tmp; do $B mount -t tmpfs -o mode=1777 tmpfs /newroot$d; done
$B mount -t tmpfs -o mode=755 tmpfs /newroot/run
if [ -n "$proj" ]; then $B mkdir -p "/newroot$proj" && $B mount --move /rw/project "/newroot$proj" || fail "cannot mount $proj"; fi
$B mkdir -p /newroot/run/vm && $B cp /stage2 /bin/busybox /newroot/run/vm/
job=; for w in $($B cat /proc/cmdline); do case $w in vm.job=*) job=${w#vm.job=};; esac; done
$B cp "/lower$job" /newroot/run/vm/job.sh || fail "cannot read the job script $job"
$B umount /proc /sys /dev
exec $B switch_root /newroot /run/vm/busybox sh /run/vm/stage2
EOF_INIT

# ---------------------------------------------------------------- guest, stage 2
# pid 1 in the host's tree: kernel filesystems, cgroup2 alone at /sys/fs/cgroup
# with every controller delegated from the root, the job; its status goes to
# the host over a virtio port.
read -r -d '' STAGE2 <<'EOF_STAGE2' || true
B=/run/vm/busybox
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
$B mount -t proc proc /proc; $B mount -t sysfs sys /sys; $B mount -t devtmpfs dev /dev
$B mkdir -p /dev/pts /dev/shm /dev/mqueue
$B mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts; $B ln -sf pts/ptmx /dev/ptmx
$B mount -t tmpfs -o mode=1777 tmpfs /dev/shm; $B mount -t mqueue mqueue /dev/mqueue 2>/dev/null
$B mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
$B ln -sf /proc/self/fd /dev/fd
$B hostname cgroupv2-vm; $B ip link set lo up 2>/dev/null
for c in $($B cat /sys/fs/cgroup/cgroup.controllers); do echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control; done
port() { for p in /sys/class/virtio-ports/*; do [ "$($B cat "$p/name")" = "$1" ] && echo "/dev/${p##*/}"; done; }
OUT=$(port vm.out); ERR=$(port vm.err); RET=$(port vm.ret)
/bin/bash /run/vm/job.sh < /dev/null > "$OUT" 2> "$ERR"
echo "$?" > "$RET"
$B sync
$B poweroff -f
EOF_STAGE2

# ---------------------------------------------------------------- initramfs (cached)
CACHE=${VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pycontain-vm}
mkdir -p "$CACHE"
KEY=$( { echo "$KVER"; stat -c %s.%Y "$KERNEL"; echo "$INIT$STAGE2"; md5sum < "$BUSYBOX"; } | md5sum | cut -c1-12)
IMG=$CACHE/$KVER-$KEY
if [ ! -s "$IMG/initrd.cpio" ]; then
  BUILD=$(mktemp -d "$CACHE/.build.XXXXXX")
  ( set -e
    cd "$BUILD"; mkdir -p root/bin root/mods root/proc root/sys root/dev
    cp "$BUSYBOX" root/bin/busybox
    printf '%s\n' "$INIT" > root/init; chmod 755 root/init
    printf '%s\n' "$STAGE2" > root/stage2
    : > root/modules.order
    for m in virtio_pci 9pnet_virtio 9p overlay virtio_console; do
      modprobe -S "$KVER" --show-depends "$m" | awk '$1=="insmod"{print $2}'
    done | awk '!seen[$0]++' | while read -r ko; do
      name=$(basename "$ko"); name=${name%%.ko*}
      case $ko in *.ko.xz) xz -dc "$ko" > "root/mods/$name.ko";; *.ko.zst) zstd -qdc "$ko" > "root/mods/$name.ko";;
                  *) cp "$ko" "root/mods/$name.ko";; esac
      echo "$name" >> root/modules.order
    done
    (cd root && find . | cpio -o -H newc --quiet) > initrd.cpio
    # An uncompressed ELF vmlinux boots through PVH: ~2 s less of decompression under TCG.
    "$PYTHON" - "$KERNEL" vmlinux <<'PY' || cp "$KERNEL" vmlinux
import lzma, sys
data = open(sys.argv[1], "rb").read()
i = data.find(b"\xfd7zXZ\x00")
out = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data[i:]) if i >= 0 else b""
sys.exit(1) if out[:4] != b"\x7fELF" else open(sys.argv[2], "wb").write(out)
PY
    rm -rf root
  ) || { rm -rf "$BUILD"; die "building the initramfs failed"; }
  if [ -s "$IMG/initrd.cpio" ]; then rm -rf "$BUILD"; else rm -rf "$IMG"; mv -T "$BUILD" "$IMG" 2>/dev/null || rm -rf "$BUILD"; fi
fi

# ---------------------------------------------------------------- the job
RUN=$(mktemp -d "$CACHE/run.XXXXXX")
QEMU_PID= OUT_PID= ERR_PID=
cleanup() {
  [ -n "$QEMU_PID" ] && { kill "$QEMU_PID" 2>/dev/null || true; wait "$QEMU_PID" 2>/dev/null || true; }
  for p in $OUT_PID $ERR_PID; do kill "$p" 2>/dev/null || true; done
  rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
{
  echo 'export LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1'
  printf 'export HOME=%q PATH=%q\n' "$HOME" "$PATH"
  printf 'cd %q || exit 125\n' "$PROJECT"
  if [ "${1:-}" = --bench ]; then     # the cgroup benchmark, v2 driver
    shift
    printf '%q bench/bench_cgroups.py' "$PYTHON"
  else
    printf '%q -m pytest -m cgroupv2 -p no:cacheprovider' "$PYTHON"
    [ $# -gt 0 ] || set -- tests/cgroups
  fi
  [ $# -gt 0 ] && printf ' %q' "$@"
  echo
} > "$RUN/job.sh"

QARGS=(-nodefaults -no-user-config -display none -no-reboot
  -machine q35 -cpu max -smp "${VM_CPUS:-2}" -m "${VM_MEM:-2G}" -accel tcg,thread=multi
  -kernel "$IMG/vmlinux" -initrd "$IMG/initrd.cpio"
  -serial "file:$RUN/console.log"
  -fsdev "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap"
  -device "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot"
  -device virtio-serial-pci
  -chardev "file,id=cout,path=$RUN/out" -device "virtserialport,chardev=cout,name=vm.out"
  -chardev "file,id=cerr,path=$RUN/err" -device "virtserialport,chardev=cerr,name=vm.err"
  -chardev "file,id=cret,path=$RUN/rc" -device "virtserialport,chardev=cret,name=vm.ret")
APPEND="console=ttyS0 loglevel=4 panic=-1 rdinit=/init mitigations=off modprobe.blacklist=kvm,kvm_amd,kvm_intel vm.job=$RUN/job.sh"
[ -n "$VM_PROJECT" ] && APPEND="$APPEND vm.project=$VM_PROJECT"
[ "${VM_VERBOSE:-0}" = 1 ] && APPEND=${APPEND/loglevel=4/loglevel=7}

# The guest's stdout and stderr arrive through FIFOs: streamed while the tests
# run, and a caller's redirections are appended to, never reopened by qemu.
mkfifo "$RUN/out" "$RUN/err"
cat "$RUN/out" & OUT_PID=$!
cat "$RUN/err" >&2 & ERR_PID=$!
START=$(date +%s.%N)
timeout -k 10 "$TIMEOUT" qemu-system-x86_64 "${QARGS[@]}" -append "$APPEND" </dev/null &
QEMU_PID=$!
QEMU_RC=0; wait "$QEMU_PID" || QEMU_RC=$?; QEMU_PID=
for f in out err; do exec {fd}<>"$RUN/$f"; exec {fd}>&-; done   # unblock cat if qemu never opened them
wait "$OUT_PID" "$ERR_PID" 2>/dev/null || true; OUT_PID= ERR_PID=
[ "${VM_VERBOSE:-0}" = 1 ] && { cat "$RUN/console.log" >&2; echo "run-v2: qemu status $QEMU_RC, $(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $START}") s" >&2; }
RC=$(tr -dc '0-9' < "$RUN/rc" 2>/dev/null || true)
if [ -z "$RC" ]; then
  if [ "$QEMU_RC" = 124 ] || [ "$QEMU_RC" = 137 ]; then echo "run-v2: timed out after ${TIMEOUT}s" >&2; RC=124; else RC=125; fi
  echo "run-v2: no exit status from the guest (qemu status $QEMU_RC); console tail:" >&2
  tail -30 "$RUN/console.log" >&2
fi
exit "$RC"
