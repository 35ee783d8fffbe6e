"""docker cp: files between the host and a container, in both directions.

No process with host privileges enters the container's files: nothing here
chroots, changes directory or joins a namespace of the container, and no
name-service lookup happens while its files are at hand. (A helper that used
to chroot into the container made glibc read the container's nsswitch.conf
and dlopen its libnss modules as host root when tarfile looked up owner
names: docker's CVE-2019-14271.)

The container's root is held as a directory descriptor instead: /proc/PID/root
of a running container (its mounts included), or, for a stopped one, its
overlay (image layers + the kept writable layer) mounted in a helper's own
private mount namespace, which vanishes with it. Every path inside is resolved
by the kernel from that descriptor with openat2(RESOLVE_IN_ROOT |
RESOLVE_NO_MAGICLINKS) (by a component-wise walk with O_NOFOLLOW where the
kernel lacks openat2), so a symlink (../../etc, /etc/shadow, /proc/1/root)
leads only to the container's own files. Files are then copied descriptor
to descriptor; every name on the way is opened relative to its parent's
descriptor without following symlinks, so a running container that swaps a
directory for a link meanwhile gains nothing. Owners are numbers: as docker,
copies into a container belong to its root and copies out to the caller,
and `archive` keeps the source's numeric ids.
"""
from __future__ import annotations

import ctypes
import errno
import json
import os
import stat
import subprocess
import sys
import tempfile

from . import rootless
from .errors import ConfigError, ContainerError
from .rootfs import RootFS
from .state import process_start_time

CLONE_NEWNS = 0x00020000
MS_REC, MS_PRIVATE = 16384, 1 << 18
SYS_OPENAT2 = 437            # the same number on every architecture (added after the tables were unified)
RESOLVE_NO_MAGICLINKS, RESOLVE_IN_ROOT = 0x02, 0x10
MAX_SYMLINKS = 40            # the kernel's own limit (ELOOP)

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


# None: not tried yet; False: the kernel has no openat2 (before 5.6), walk instead
_have_openat2 = None


def open_in_root(root_fd: int, path: str, flags: int) -> int:
    """Opens `path` as a process chrooted at root_fd would, without entering
    it: symlinks on the way (and the last one unless flags has O_NOFOLLOW)
    are followed as the container sees them, never out of it; ".." stops at
    the root; the kernel never follows a /proc magic link (openat2 refuses
    them, the walk reads them as plain links, inside the root)."""
    global _have_openat2
    if _have_openat2 is not False:
        how = _OpenHow(flags | os.O_CLOEXEC, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
        raw = os.fsencode(path)
        for _ in range(100):  # EAGAIN: a rename raced the walk; the kernel asks us to try again
            fd = _libc.syscall(ctypes.c_long(SYS_OPENAT2), ctypes.c_int(root_fd), ctypes.c_char_p(raw),
                               ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
            if fd >= 0:
                _have_openat2 = True
                return fd
            err = ctypes.get_errno()
            if err != errno.EAGAIN:
                break
        if err != errno.ENOSYS:
            raise OSError(err, os.strerror(err), path)
        _have_openat2 = False
    return walk_in_root(root_fd, path, flags)


def walk_in_root(root_fd: int, path: str, flags: int) -> int:
    """open_in_root without openat2: one component at a time, each opened
    relative to its parent's descriptor with O_NOFOLLOW; a symlink is read
    and its target walked the same way (an absolute one from root_fd); ".."
    goes back to the parent's descriptor, never above root_fd."""
    follow_last = not flags & os.O_NOFOLLOW
    todo = [p for p in path.split("/") if p not in ("", ".")]
    stack = [os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=root_fd)]
    hops = 0
    try:
        while todo:
            name = todo.pop(0)
            if name == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                continue
            last = not todo
            fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=stack[-1])
            st = os.fstat(fd)
            if stat.S_ISLNK(st.st_mode) and (follow_last or not last):
                hops += 1
                if hops > MAX_SYMLINKS:
                    os.close(fd)
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
                try:
                    target = os.readlink("", dir_fd=fd)   # the link just checked, not a new one by that name
                finally:
                    os.close(fd)
                if target.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop())
                todo = [p for p in target.split("/") if p not in ("", ".")] + todo
                continue
            if last:
                os.close(fd)
                break
            if not stat.S_ISDIR(st.st_mode):
                os.close(fd)
                raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
            stack.append(fd)
        else:  # the path (or the last link) ended at a directory already open
            name = "."
        # the last step for real, with the caller's flags: O_NOFOLLOW keeps a
        # name swapped for a link since the check from being followed
        return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=stack[-1])
    finally:
        for fd in stack:
            os.close(fd)


# ---- one tree, descriptor to descriptor ---------------------------------------------------

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _copy_entry(src_dir: int, src_name: str, dst_dir: int, dst_name: str, archive: bool) -> None:
    """Copies src_dir/src_name (a file, link, directory tree, FIFO or device)
    to dst_dir/dst_name. A directory merges into one already there; anything
    else replaces what is there (made under a temporary name first)."""
    st = os.stat(src_name, dir_fd=src_dir, follow_symlinks=False)
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        _copy_dir(src_dir, src_name, dst_dir, dst_name, st, archive)
        return
    if stat.S_ISSOCK(mode):
        return  # a socket is no content (docker's tar leaves them out too)
    tmp = f".pycontain-cp-{os.urandom(6).hex()}"
    try:
        if stat.S_ISREG(mode):
            _copy_file(src_dir, src_name, dst_dir, tmp, archive)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(src_name, dir_fd=src_dir), tmp, dir_fd=dst_dir)
            if archive:
                os.chown(tmp, st.st_uid, st.st_gid, dir_fd=dst_dir, follow_symlinks=False)
            os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst_dir, follow_symlinks=False)
        else:  # FIFO, character or block device
            os.mknod(tmp, stat.S_IFMT(mode) | 0o600, st.st_rdev, dir_fd=dst_dir)
            fd = os.open(tmp, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dst_dir)
            try:
                _set_meta(fd, st, archive)
            finally:
                os.close(fd)
        os.rename(tmp, dst_name, src_dir_fd=dst_dir, dst_dir_fd=dst_dir)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=dst_dir)
        except OSError:
            pass
        raise


def _copy_file(src_dir, src_name, dst_dir, dst_name, archive):
    # O_NONBLOCK: a name swapped for a FIFO must not hang us; the fstat
    # then refuses anything but the regular file that was there
    fi = os.open(src_name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=src_dir)
    try:
        st = os.fstat(fi)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EAGAIN, "changed while it was being copied", src_name)
        fo = os.open(dst_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                     dir_fd=dst_dir)
        try:
            while True:
                chunk = os.read(fi, 1 << 20)
                if not chunk:
                    break
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fo, view):]
            _set_meta(fo, st, archive)
        finally:
            os.close(fo)
    finally:
        os.close(fi)


def _set_meta(fd, st, archive):
    """Owner (archive only: numeric ids), mode and times on an open descriptor.
    The mode goes after the owner: chown clears setuid bits."""
    path = f"/proc/self/fd/{fd}"  # our own descriptor: works for O_PATH ones too
    if archive:
        os.chown(path, st.st_uid, st.st_gid)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(path, stat.S_IMODE(st.st_mode))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _copy_dir(src_dir, src_name, dst_dir, dst_name, st, archive):
    fi = os.open(src_name, _DIR | os.O_NONBLOCK, dir_fd=src_dir)
    try:
        try:
            os.mkdir(dst_name, 0o700, dir_fd=dst_dir)
        except FileExistsError:
            pass  # a directory merges into one already there (a non-directory fails to open below)
        try:
            fo = os.open(dst_name, _DIR, dir_fd=dst_dir)
        except OSError as e:
            if e.errno in (errno.ENOTDIR, errno.ELOOP):
                raise ContainerError(f"cannot overwrite non-directory {dst_name!r} with a directory") from None
            raise
        try:
            with os.scandir(fi) as it:
                names = sorted(entry.name for entry in it)
            for name in names:
                _copy_entry(fi, name, fo, name, archive)
            _set_meta(fo, st, archive)
        finally:
            os.close(fo)
    finally:
        os.close(fi)


def _split(path: str):
    """A container path, cleaned as docker does: (parent, last name)."""
    clean = os.path.normpath("/" + path.lstrip("/"))   # lstrip: POSIX keeps a leading "//"
    parent, name = os.path.split(clean)
    return parent, name


def copy_out(root_fd: int, src: str, dest: str, archive: bool = False) -> None:
    """The container's src (under root_fd) to the host path dest: into dest if
    it is a directory, else as dest (a link at src is copied as the link)."""
    dest_is_dir = os.path.isdir(dest)
    parent = dest if dest_is_dir else (os.path.dirname(os.path.abspath(dest)) or ".")
    if not os.path.isdir(parent):
        raise ContainerError(f"destination directory {parent} does not exist")
    src_parent, src_name = _split(src)
    try:
        cdir = open_in_root(root_fd, src_parent, _DIR & ~os.O_NOFOLLOW)
        try:
            os.stat(src_name or ".", dir_fd=cdir, follow_symlinks=False)
        except BaseException:
            os.close(cdir)
            raise
    except (FileNotFoundError, NotADirectoryError):
        raise ContainerError(f"could not find the file {src} in the container") from None
    name = src_name or "root"
    tmp = tempfile.mkdtemp(prefix=".pycontain-cp-", dir=parent)
    try:
        tmp_fd = os.open(tmp, _DIR)
        try:
            _copy_entry(cdir, src_name or ".", tmp_fd, name, archive)
        finally:
            os.close(tmp_fd)
        target = os.path.join(dest, name) if dest_is_dir else dest
        if os.path.isdir(target) and not os.path.islink(target):
            rootless.remove_tree(target)
        os.replace(os.path.join(tmp, name), target)
    finally:
        os.close(cdir)
        rootless.remove_tree(tmp, ignore_errors=True)


def copy_in(root_fd: int, src: str, dest: str, archive: bool = False) -> None:
    """The host's src into the container (under root_fd) at dest: into dest
    when it is a directory (a link to one, inside the container, counts),
    else as dest."""
    if not os.path.lexists(src):
        raise ContainerError(f"could not find the file {src} in the host")
    host_parent, host_name = os.path.split(os.path.abspath(src))
    host_name = host_name or "."
    cdest = os.path.normpath("/" + dest.lstrip("/"))
    try:
        cdir = open_in_root(root_fd, cdest, _DIR & ~os.O_NOFOLLOW)
        name = os.path.basename(os.path.normpath(src)) if host_name != "." else "root"
    except (FileNotFoundError, NotADirectoryError):
        if dest.endswith("/") or cdest == "/":
            raise ContainerError(f"destination directory {dest} does not exist in the container") from None
        parent, name = _split(dest)
        try:
            cdir = open_in_root(root_fd, parent, _DIR & ~os.O_NOFOLLOW)
        except (FileNotFoundError, NotADirectoryError):
            raise ContainerError(f"destination directory {parent} does not exist in the container") from None
    try:
        hdir = os.open(host_parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            _copy_entry(hdir, host_name, cdir, name, archive)
        finally:
            os.close(hdir)
    finally:
        os.close(cdir)


def stat_out(root_fd: int, src: str, dest: str, archive: bool = False) -> None:
    """The container's src (under root_fd) looked at as docker's archive
    HEAD does (a link is not followed), written as JSON to the host file
    dest: {"mode", "size", "mtime_ns", "link_target"}, or null when there is
    no such file. (A file, not a return value: the root helper below is
    another process.) archive: unused, the signature copy_out's."""
    src_parent, src_name = _split(src)
    found = None
    try:
        cdir = open_in_root(root_fd, src_parent, _DIR & ~os.O_NOFOLLOW)
    except (FileNotFoundError, NotADirectoryError):
        cdir = None
    if cdir is not None:
        try:
            st = os.stat(src_name or ".", dir_fd=cdir, follow_symlinks=False)
            link = os.readlink(src_name, dir_fd=cdir) if stat.S_ISLNK(st.st_mode) else ""
            found = {"mode": st.st_mode, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "link_target": link}
        except (FileNotFoundError, NotADirectoryError):
            pass
        finally:
            os.close(cdir)
    with open(dest, "w") as f:
        json.dump(found, f)


# ---- which root, held by whom --------------------------------------------------------------


def copy_from_container(c, src: str, dest: str, archive: bool = False) -> None:
    """Copies the container's src (file or directory) to the host path dest,
    docker-style: into dest if it is a directory, else as dest."""
    _with_container_root(c, copy_out, src, os.path.abspath(dest), archive)


def copy_into_container(c, src: str, dest: str, archive: bool = False) -> None:
    """Copies the host's src into the container at dest (into it when it is
    a directory, else as dest)."""
    if not os.path.lexists(src):
        raise ContainerError(f"could not find the file {src} in the host")
    _with_container_root(c, copy_in, dest, os.path.abspath(src), archive)


def stat_in_container(c, path: str) -> dict | None:
    """What stat_out says of the container's path (None: no such file),
    the container running or not."""
    with tempfile.TemporaryDirectory(prefix="pycontain-stat-") as tmp:
        out = os.path.join(tmp, "stat.json")
        _with_container_root(c, stat_out, path, out, False)
        with open(out) as f:
            return json.load(f)


def _with_container_root(c, fn, cpath, hpath, archive):
    try:
        _copy_with_root(c, fn, cpath, hpath, archive)
    except ContainerError:
        raise
    except OSError as e:
        raise ContainerError(_oserror_text(e)) from None


def _copy_with_root(c, fn, cpath, hpath, archive):
    rec = c.reload().record
    args = (hpath, cpath) if fn is copy_in else (cpath, hpath)
    if rec.state in ("running", "paused") and rec.pid:
        try:
            root_fd = os.open(f"/proc/{rec.pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            raise ContainerError(f"container {rec.id[:12]} is not running any more") from None
        try:
            if process_start_time(rec.pid) != rec.pid_start:  # the pid is another process's now
                raise ContainerError(f"container {rec.id[:12]} is not running any more")
            _as_container_owner(fn, root_fd, *args, archive)
        finally:
            os.close(root_fd)
        return
    rootfs = RootFS(c._filesystem()[1], "disk", c._store.root, rec.id, keep_dir=c._store.container_dir(rec.id))
    data, merged = rootfs.overlay_options(), rootfs.root_path
    if os.geteuid() != 0:
        _as_container_owner(_in_private_overlay, fn.__name__, data, merged, *args, archive, always=True)
        return
    # root: a helper process of its own for the private mount namespace (no
    # fork of a caller that may have threads); it never enters the overlay.
    # cwd "/": `python -m` puts its working directory first on sys.path, and
    # the caller's may be a container's (a volume's directory, say)
    helper = [sys.executable, "-m", "pycontain.copy", fn.__name__, data, merged, *args, "1" if archive else "0"]
    r = subprocess.run(helper, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd="/")
    if r.returncode != 0:
        raise ContainerError(r.stderr.decode(errors="replace").strip() or "the copy failed")


def _as_container_owner(fn, *args, always=False):
    """fn(*args) as this user's container root: a rootless user with a
    subordinate id range works as root of a user namespace with that mapping
    (files of any of the container's users are its own there); descriptors
    opened before are inherited."""
    if os.geteuid() == 0 or (rootless.mapping().sub_uids is None and not always):
        return fn(*args)
    try:
        return rootless.in_user_namespace(fn, *args)
    except ConfigError as e:
        raise ContainerError(f"cp of a stopped rootless container needs a subordinate id range: {e}") from None


def _in_private_overlay(fn_name, data, merged, a, b, archive):
    """In a mount namespace of this process's own, the stopped container's
    overlay at merged (it vanishes with the process), then the copy with the
    overlay's root as the container's root."""
    if _libc.unshare(CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
    if _libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        raise OSError(ctypes.get_errno(), "mount --make-rprivate /")
    if _libc.mount(b"overlay", os.fsencode(merged), b"overlay", 0, data.encode()) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount overlay on {merged}: {os.strerror(err)}")
    root_fd = os.open(merged, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        {"copy_out": copy_out, "copy_in": copy_in, "stat_out": stat_out}[fn_name](root_fd, a, b, archive)
    finally:
        os.close(root_fd)


def _oserror_text(e: OSError) -> str:
    where = f": {e.filename}" if e.filename else ""
    return f"{e.strerror or e}{where}"


def _helper(argv):
    fn_name, data, merged, a, b, archive = argv
    try:
        _in_private_overlay(fn_name, data, merged, a, b, archive == "1")
    except ContainerError as e:
        print(str(e), file=sys.stderr)
        sys.exit(1)
    except OSError as e:
        print(_oserror_text(e), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    _helper(sys.argv[1:])
