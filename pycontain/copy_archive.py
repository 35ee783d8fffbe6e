"""docker cp as tar streams: what the Engine API's /containers/{id}/archive
(GET, HEAD, PUT) and docker-py's get_archive/put_archive move.

The tar is written and read on the host, in a private temporary directory
of this process, never inside the container: copy.py moves the files
between that directory and the container's root by descriptors (no chroot,
no join, no name lookup with the container's files at hand), and the tar
reader is the image layers' one (image/unpack.py: relative names only, no
"..", never through a link, sizes within the free space).
"""
from __future__ import annotations

import os
import posixpath
import stat
import tarfile
import tempfile
from dataclasses import dataclass

from . import copy, rootless
from .errors import ConfigError, ContainerError
from .image.unpack import LayerError, unpack_layer


class NoSuchPath(ContainerError):
    """The path is not in the container."""


class BadArchive(ConfigError):
    """A tar sent for a container is malformed or refused, or its extraction point is not a directory."""


@dataclass(frozen=True)
class PathStat:
    """A path in a container, as docker's archive header reports it."""
    name: str          # the name its tar gives it: the last element ("." for a path ending in /.)
    mode: int          # st_mode, a link not followed
    size: int
    mtime_ns: int
    link_target: str   # a link's target as written ("" for anything else)

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)


def archive_name(path: str) -> str:
    """The name docker gives path in its tar and its stat (Go's filepath.Base):
    "/etc/" -> "etc", "/etc/." -> "." (the directory's content), "/" -> "/"."""
    trimmed = path.rstrip("/")
    return posixpath.basename(trimmed) if trimmed else "/"


def path_stat(c, path: str) -> PathStat:
    """The container's path (running or not), a link not followed."""
    found = copy.stat_in_container(c, path)
    if found is None:
        raise NoSuchPath(f"Could not find the file {path} in container {c.name or c.id[:12]}")
    return PathStat(archive_name(path), found["mode"], found["size"], found["mtime_ns"], found["link_target"])


def get_archive(c, path: str, fileobj) -> PathStat:
    """Writes the container's path (a file, link or directory tree) as a tar
    stream to fileobj, under its archive_name; returns its stat. Owners are
    the container's numeric ids (root: a rootless service's copy is its own,
    and says 0)."""
    st = path_stat(c, path)
    as_root = os.geteuid() == 0
    tmp = tempfile.mkdtemp(prefix="pycontain-cp-")   # 0700: nobody else sees the copy
    try:
        copy.copy_from_container(c, path, tmp, archive=as_root)
        (copied,) = os.listdir(tmp)

        def numeric(ti):
            ti.uname = ti.gname = ""
            if not as_root:
                ti.uid = ti.gid = 0
            return ti

        name = st.name if st.name != "/" else "."
        with tarfile.open(fileobj=fileobj, mode="w|", format=tarfile.PAX_FORMAT, encoding="utf-8",
                          errors="surrogateescape") as tf:
            tf.add(os.path.join(tmp, copied), arcname=name, filter=numeric)
    finally:
        rootless.remove_tree(tmp, ignore_errors=True)
    return st


def put_archive(c, path: str, fileobj, keep_owners: bool = False) -> None:
    """Extracts a tar stream (plain, gzip or zstd) into the container's
    directory path, running or not. The owners are the container's root,
    as docker's; keep_owners (docker cp -a): the tar's numeric ids (a root
    service only). Names beginning .wh. are overlay whiteouts, as in layers."""
    st = path_stat(c, path)
    if not st.is_dir:
        raise BadArchive(f"extraction point is not a directory: {path}")
    tmp = tempfile.mkdtemp(prefix="pycontain-cp-")    # 0700; the unpack sets its own root's mode
    try:
        content = os.path.join(tmp, "content")
        os.mkdir(content, 0o700)
        try:
            unpack_layer(fileobj, content)
        except LayerError as e:
            raise BadArchive(f"invalid archive: {e}") from None
        dest = path.rstrip("/") + "/"
        for name in sorted(os.listdir(content)):
            copy.copy_into_container(c, os.path.join(content, name), dest,
                                     archive=keep_owners and os.geteuid() == 0)
    finally:
        rootless.remove_tree(tmp, ignore_errors=True)
