"""docker cp: files between the host and a container, in both directions.

Paths inside the container are resolved by a helper process that chroots
into the container's root first, so a symlink in the container (../../etc,
/etc/shadow) can only lead to the container's own files, never the host's.
The root is /proc/PID/root of a running container (with its mounts), or, for
a stopped one, its overlay (image layers + the kept writable layer) mounted
in the helper's own private mount namespace, which vanishes with it. The
files travel as a tar stream between the helper and the caller.
"""
from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

from .errors import ContainerError

MS_REC, MS_PRIVATE = 16384, 1 << 18


def _helper_args(c, mode, path):
    rec = c.reload().record
    if rec.state in ("running", "paused") and rec.pid:
        return [sys.executable, "-m", "pycontain.copy", mode, "proc", str(rec.pid), str(rec.pid_start), path]
    from .rootfs import lowerdir_option

    layers = _lower_dirs(rec)
    cdir = c._store.container_dir(rec.id)
    data = f"lowerdir={lowerdir_option(layers)},upperdir={cdir}/upper,workdir={cdir}/work"
    return [sys.executable, "-m", "pycontain.copy", mode, "overlay", data, str(cdir / "merged"), path]


def _lower_dirs(rec):
    cfg = rec.config
    if cfg.get("rootfs"):
        return [cfg["rootfs"]]
    from .containers import _resolve_image

    return list(_resolve_image(cfg["image"], None).layers)


def copy_from_container(c, src: str, dest: str):
    """Copies the container's src (file or directory) to the host path dest,
    docker-style: into dest if it is a directory, else as dest."""
    args = _helper_args(c, "out", src)
    dest_is_dir = os.path.isdir(dest)
    parent = dest if dest_is_dir else (os.path.dirname(os.path.abspath(dest)) or ".")
    if not os.path.isdir(parent):
        raise ContainerError(f"destination directory {parent} does not exist")
    tmp = tempfile.mkdtemp(prefix=".pycontain-cp-", dir=parent)
    try:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
                tar.extractall(tmp, filter="tar")
        except tarfile.TarError:
            pass
        err = proc.stderr.read().decode(errors="replace").strip()
        proc.stdout.close()
        proc.stderr.close()
        if proc.wait() != 0:
            raise ContainerError(err or f"could not copy {src} from the container")
        (name,) = os.listdir(tmp)
        target = os.path.join(dest, name) if dest_is_dir else dest
        if os.path.isdir(target) and not os.path.islink(target):
            shutil.rmtree(target)
        os.replace(os.path.join(tmp, name), target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def copy_into_container(c, src: str, dest: str):
    """Copies the host's src into the container at dest (into it when it is
    a directory, else as dest)."""
    if not os.path.lexists(src):
        raise ContainerError(f"could not find the file {src} in the host")
    args = _helper_args(c, "in", dest)
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        with tarfile.open(fileobj=proc.stdin, mode="w|") as tar:
            tar.add(src, arcname=os.path.basename(os.path.normpath(src)))
    except BrokenPipeError:
        pass
    finally:
        try:
            proc.stdin.close()
        except BrokenPipeError:
            pass
    err = proc.stderr.read().decode(errors="replace").strip()
    proc.stderr.close()
    if proc.wait() != 0:
        raise ContainerError(err or f"could not copy {src} into the container")


def tar_stream_from_container(c, src: str, out_fd: int):
    """docker cp CONTAINER:SRC -: the helper's tar stream of src, written straight to out_fd."""
    _stream(_helper_args(c, "out", src), dict(stdout=out_fd), f"could not copy {src} from the container")


def tar_stream_into_container(c, in_fd: int, dest: str):
    """docker cp - CONTAINER:DEST: a tar stream read from in_fd, unpacked by the helper at dest."""
    _stream(_helper_args(c, "in", dest), dict(stdin=in_fd), f"could not copy into {dest} in the container")


def _stream(args, fds, fallback):
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, **fds)
    err = proc.stderr.read().decode(errors="replace").strip()
    proc.stderr.close()
    if proc.wait() != 0:
        raise ContainerError(err or fallback)


# ---- the helper (runs as its own process) --------------------------------------------------


def _enter_root(kind, a, b):
    libc = ctypes.CDLL(None, use_errno=True)
    if kind == "proc":
        pid, start = int(a), int(b)
        from .state import process_start_time

        root = os.open(f"/proc/{pid}/root", os.O_RDONLY | os.O_DIRECTORY)
        if process_start_time(pid) != start:
            raise ContainerError("the container is not running any more")
        os.fchdir(root)
        os.chroot(".")
        os.chdir("/")
        return
    data, merged = a, b
    if libc.unshare(0x00020000) != 0:  # CLONE_NEWNS: the overlay exists for this process only
        raise OSError(ctypes.get_errno(), "unshare")
    if libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        raise OSError(ctypes.get_errno(), "mount private")
    if libc.mount(b"overlay", merged.encode(), b"overlay", 0, data.encode()) != 0:
        raise OSError(ctypes.get_errno(), f"mount overlay on {merged}")
    os.chroot(merged)
    os.chdir("/")


def _helper(argv):
    mode, kind, a, b, path = argv
    try:
        _enter_root(kind, a, b)
        if mode == "out":
            if not os.path.lexists(path):
                raise ContainerError(f"could not find the file {path} in the container")
            with tarfile.open(fileobj=sys.stdout.buffer, mode="w|") as tar:
                tar.add(path, arcname=os.path.basename(os.path.normpath(path)) or "root")
        else:
            into = os.path.isdir(path) and not os.path.islink(path)
            parent = path if into else (os.path.dirname(path.rstrip("/")) or "/")
            if not os.path.isdir(parent):
                raise ContainerError(f"destination directory {parent} does not exist in the container")
            with tarfile.open(fileobj=sys.stdin.buffer, mode="r|") as tar:
                for member in tar:
                    if not into:  # the top entry takes dest's name
                        top, _, rest = member.name.partition("/")
                        member.name = os.path.basename(path.rstrip("/")) + ("/" + rest if rest else "")
                    tar.extract(member, parent, filter="tar")
    except (ContainerError, OSError, tarfile.TarError) as e:
        print(str(e), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    _helper(sys.argv[1:])
