"""The merged view of overlay layers (an upper dir and lower dirs, top
first): walking it (whiteouts and opaque directories honoured) and writing it
as a tar stream (docker export, a flattened lower dir). What commit, the
store, volumes' copy-up and the builder to come read layers with."""
from __future__ import annotations

import os
import stat
import tarfile

from .. import rootless
from ..errors import ConfigError
from .unpack import OPAQUE_XATTR, OVERLAY_XATTR_PREFIXES, USER_OPAQUE_XATTR


def is_whiteout(st) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path) -> bool:
    for name in (OPAQUE_XATTR, USER_OPAQUE_XATTR):  # root's store, a rootless user's
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            pass
    return False


def tarinfo(tf: tarfile.TarFile, path: str, arcname: str) -> tarfile.TarInfo:
    ti = tf.gettarinfo(path, arcname)
    ti.uname = ti.gname = ""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        names = []
    for n in names:
        if n.startswith(OVERLAY_XATTR_PREFIXES):
            continue
        try:
            ti.pax_headers[f"SCHILY.xattr.{n}"] = os.getxattr(path, n, follow_symlinks=False).decode("utf-8", "surrogateescape")
        except OSError:
            pass
    return ti


def add_member(tf, ti, path, rel):
    if ti.isreg():
        with os.fdopen(_open_beneath(path[:-len(rel) - 1], rel), "rb") as f:
            tf.addfile(ti, f)
    else:
        tf.addfile(ti)


def _open_beneath(base: str, rel: str) -> int:
    """Opens base/rel for reading without following any symlink on the way:
    a running container can swap a file or a directory of its upper layer
    for a symlink between our lstat and this open (docker's CVE-2018-15664),
    which must not make an export read the host's files."""
    fd = os.open(base, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        *dirs, last = rel.split("/")
        for name in dirs:
            nxt = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = nxt
        file_fd = os.open(last, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=fd)
    except OSError as e:
        raise ConfigError(f"{rel!r} changed while it was being exported ({e.strerror})") from None
    finally:
        os.close(fd)
    if not stat.S_ISREG(os.fstat(file_fd).st_mode):
        os.close(file_fd)
        raise ConfigError(f"{rel!r} changed while it was being exported (not a regular file any more)")
    return file_fd


def merged_entries(sources, rel=""):
    """Yields (relpath, abspath) of the overlay view of `sources` (top first,
    each a real directory for rel), parents before children."""
    seen = {}
    for idx, src in enumerate(sources):
        try:
            names = os.listdir(src)
        except OSError:
            continue
        for name in names:
            if name in seen:
                continue
            p = os.path.join(src, name)
            st = os.lstat(p)
            seen[name] = None if is_whiteout(st) else (idx, p, st)
        if is_opaque(src):
            break
    for name in sorted(seen):
        e = seen[name]
        if e is None:
            continue
        idx, p, st = e
        r = f"{rel}/{name}" if rel else name
        yield r, p
        if stat.S_ISDIR(st.st_mode):
            yield from merged_entries(_dir_sources(sources, idx, name), r)


def _dir_sources(sources, idx, name) -> list:
    """The directories that make up directory `name`, found first in
    sources[idx]: that one and those of the lower sources it does not hide."""
    below = [os.path.join(sources[idx], name)]
    if not is_opaque(below[0]):
        for lower in sources[idx + 1:]:
            q = os.path.join(lower, name)
            try:
                qst = os.lstat(q)
            except FileNotFoundError:
                continue
            if not stat.S_ISDIR(qst.st_mode):
                break  # a file or whiteout below hides everything under it
            below.append(q)
            if is_opaque(q):
                break
    return below


def merged_dir(layers_top_first, path: str) -> list:
    """The directories that make up the directory at `path` of the overlay
    view of the layers (top first; for merged_entries), resolving symlinks
    within the view as the container will see them (an absolute link
    starts again at the view's root); [] when it is missing or not a directory."""
    layers = [os.fspath(d) for d in layers_top_first]
    todo = [p for p in path.split("/") if p not in ("", ".")]
    done: list = []
    sources = layers
    hops = 0
    while todo:
        name = todo.pop(0)
        if name == "..":
            done = done[:-1]
            sources = merged_dir(layers, "/".join(done)) if done else layers
            continue
        found = None
        for idx, src in enumerate(sources):
            try:
                st = os.lstat(os.path.join(src, name))
            except (FileNotFoundError, NotADirectoryError):
                continue
            found = None if is_whiteout(st) else (idx, st)
            break
        if found is None:
            return []
        idx, st = found
        if stat.S_ISLNK(st.st_mode):
            hops += 1
            if hops > 40:  # the kernel's own limit (ELOOP)
                return []
            target = os.readlink(os.path.join(sources[idx], name))
            if target.startswith("/"):
                done = []
            todo = [p for p in target.split("/") if p not in ("", ".")] + todo
            sources = merged_dir(layers, "/".join(done)) if done else layers
            continue
        if not stat.S_ISDIR(st.st_mode):
            return []
        sources = _dir_sources(sources, idx, name)
        done.append(name)
    return sources


def export(layers_top_first, fileobj) -> None:
    """docker export: writes the merged filesystem of the given directories
    (a container's upper dir first, then its image layers top first) to
    fileobj as a tar stream."""
    rootless.write_as_container_root(_export, fileobj, layers_top_first)


def _export(fileobj, layers_top_first) -> None:
    tf = tarfile.open(fileobj=fileobj, mode="w|", format=tarfile.PAX_FORMAT, encoding="utf-8", errors="surrogateescape")
    for rel, path in merged_entries([os.fspath(d) for d in layers_top_first]):
        st = os.lstat(path)
        if stat.S_ISSOCK(st.st_mode):
            continue
        add_member(tf, tarinfo(tf, path, rel), path, rel)
    tf.close()



def layer_changes(upper, lowers_top_first) -> list:
    """docker diff: [(kind, path)] of what the writable layer `upper` changes
    in the view of its lower layers, sorted by path: "A" added, "C" changed
    (a directory: something in it), "D" deleted (a whiteout). Nothing is
    followed: every name is looked at with lstat in a directory that is one."""
    out = []
    _changes_in(os.fspath(upper), "", [os.fspath(d) for d in lowers_top_first], out)
    return out


def _changes_in(udir, rel, lower_dirs, out):
    for name in sorted(os.listdir(udir)):
        path = os.path.join(udir, name)
        st = os.lstat(path)
        where = f"{rel}/{name}"
        if is_whiteout(st):
            out.append(("D", where))
            continue
        below = None
        for src in lower_dirs:
            try:
                below = os.lstat(os.path.join(src, name))
            except (FileNotFoundError, NotADirectoryError):
                continue
            if is_whiteout(below):
                below = None
            break
        out.append(("C" if below is not None else "A", where))
        if stat.S_ISDIR(st.st_mode):
            # the lower directories that show through this one (none under an opaque one)
            dirs = [] if is_opaque(path) or below is None or not stat.S_ISDIR(below.st_mode) else \
                _lower_dirs(lower_dirs, name)
            _changes_in(path, where, dirs, out)


def _lower_dirs(lower_dirs, name) -> list:
    found = []
    for src in lower_dirs:
        q = os.path.join(src, name)
        try:
            qst = os.lstat(q)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if not stat.S_ISDIR(qst.st_mode):
            break  # a file or whiteout hides everything under it
        found.append(q)
        if is_opaque(q):
            break
    return found
