"""A build context: the directory (or tar) a Dockerfile's COPY and ADD read
from, seen through its .dockerignore, and docker's content hashes of it.

    ctx = BuildContext.open("/src")          # or a tar path / binary file object
    ctx.read_dockerfile("Dockerfile")
    ctx.resolve("sub/link")                  # a path inside, symlinks followed in scope
    ctx.hash_of("sub")                       # "dir:..." as docker's classic builder writes it

The hashes are the classic builder's (builder/remotecontext): per file the
sha256 of tarsum v1's header fields (name, mode, uid, gid, size, type, link
target, owner names, device numbers; not the mtime) followed by the content;
a directory is "dir:" + sha256 of its files' sums sorted and joined by ",".
The docker CLI sends the context with every owner 0:0 (root), so those are
the owners hashed here. They are both the cache key of a COPY and the text
its history entry records.
"""
from __future__ import annotations

import grp
import hashlib
import os
import pwd
import re
import stat
import tempfile

from .. import rootless
from ..errors import ConfigError
from ..image.store import opened_source
from ..image.unpack import LayerError, unpack_layer


class ContextError(ConfigError):
    """A path the Dockerfile names is missing from, or outside, the context."""


# ---- .dockerignore (Go filepath.Match patterns, **, ! exceptions) ----------------------


def _glob_regex(pattern: str) -> str:
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            if pattern.startswith("**", i):
                i += 2
                if pattern.startswith("/", i):
                    out.append("(?:.*/)?")
                    i += 1
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = pattern.find("]", i + 1)
            if j < 0:
                raise ConfigError(f".dockerignore: syntax error in pattern {pattern!r}")
            body = pattern[i + 1:j]
            if body.startswith("^"):
                body = "!" + body[1:]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body).replace("\\", "\\\\") + "]")
            i = j
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


class IgnoreRules:
    """docker's .dockerignore: each line a pattern relative to the context
    root; a leading ! re-includes; the last matching line wins; a pattern
    matching a directory excludes everything under it."""

    def __init__(self, text: str = ""):
        self.rules = []
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            exclude = not line.startswith("!")
            if not exclude:
                line = line[1:].strip()
            line = os.path.normpath(line).lstrip("/") if line not in ("", ".") else line
            if not line:
                continue
            depth = line.count("/") + 1
            self.rules.append((re.compile(_glob_regex(line) + r"\Z"), exclude, depth))
        self.has_exceptions = any(not ex for _, ex, _ in self.rules)

    def excluded(self, rel: str) -> bool:
        if not self.rules or rel in ("", "."):
            return False
        parts = rel.split("/")
        verdict = False
        for rx, exclude, depth in self.rules:
            hit = rx.match(rel) is not None
            if not hit and len(parts) > depth:
                hit = rx.match("/".join(parts[:depth])) is not None
            if hit:
                verdict = exclude
        return verdict


# ---- tarsum v1 header hashing --------------------------------------------------------------

_TYPEFLAG = {stat.S_IFREG: "0", stat.S_IFLNK: "2", stat.S_IFCHR: "3", stat.S_IFBLK: "4", stat.S_IFDIR: "5",
             stat.S_IFIFO: "6"}


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return ""


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return ""


def file_sum(path: str, name: str, st: os.stat_result, owner: tuple | None = None, image: bool = False) -> str:
    """The hex sum docker's classic builder gives one file: tarsum v1 headers
    then the content. owner=(uid, gid) stands in for the file's own.

    Two flavours, as measured against dockerd 20.10: a context file is summed
    from the tar the docker CLI sent (permission bits only, no owner names);
    a file of an image (COPY --from) from the file itself through docker's
    archive.FileInfoHeader (the file type bits in the mode, owner names
    looked up on the host)."""
    uid, gid = owner if owner is not None else (st.st_uid, st.st_gid)
    fmt = stat.S_IFMT(st.st_mode)
    is_dir = fmt == stat.S_IFDIR
    link = os.readlink(path) if fmt == stat.S_IFLNK else ""
    size = st.st_size if fmt == stat.S_IFREG else 0
    mode = stat.S_IMODE(st.st_mode) if fmt != stat.S_IFLNK else 0o777
    if image:
        mode |= fmt
    uname, gname = (_user_name(uid), _group_name(gid)) if image else ("", "")
    major = os.major(st.st_rdev) if fmt in (stat.S_IFCHR, stat.S_IFBLK) else 0
    minor = os.minor(st.st_rdev) if fmt in (stat.S_IFCHR, stat.S_IFBLK) else 0
    h = hashlib.sha256()
    for key, value in (("name", name + "/" if is_dir and not name.endswith("/") else name), ("mode", str(mode)),
                       ("uid", str(uid)), ("gid", str(gid)), ("size", str(size)),
                       ("typeflag", _TYPEFLAG.get(fmt, "0")), ("linkname", link),
                       ("uname", uname), ("gname", gname),
                       ("devmajor", str(major)), ("devminor", str(minor))):
        h.update(key.encode() + value.encode("utf-8", "surrogateescape"))
    if fmt == stat.S_IFREG and size:
        with open(path, "rb") as f:
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                h.update(chunk)
    return h.hexdigest()


def tree_hash(root: str, rel: str, owner=None, visible=None, resolve=None) -> str:
    """docker's "file:<sum>" for a file, "dir:<sum of the sorted sums>" for a
    directory (itself and everything under it), rel relative to root. A
    symlink inside counts as the sum of what it points to, resolve(rel)
    (None: dangling, and then left out), as dockerd 20.10 does."""
    path = os.path.join(root, rel) if rel not in ("", ".") else root
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        return "file:" + file_sum(path, rel, st, owner)
    sums = []
    if rel not in ("", "."):
        sums.append(file_sum(path, rel, st, owner))
    for dirpath, dirnames, filenames in os.walk(path):
        base = os.path.relpath(dirpath, root)
        base = "" if base == "." else base + "/"
        for name in dirnames + filenames:
            r = base + name
            if visible is not None and not visible(r):
                continue
            p = os.path.join(dirpath, name)
            st_p = os.lstat(p)
            if resolve is not None and stat.S_ISLNK(st_p.st_mode):
                r = resolve(r)
                if r is None:
                    continue
                p = os.path.join(root, r)
                st_p = os.lstat(p)
            sums.append(file_sum(p, r, st_p, owner))
        if visible is not None:
            dirnames[:] = [d for d in dirnames if visible(base + d, walking=True)]
    sums.sort()
    return "dir:" + hashlib.sha256(",".join(sums).encode()).hexdigest()


def multi_hash(hashes: list) -> str:
    if len(hashes) == 1:
        return hashes[0]
    return "multi:" + hashlib.sha256(",".join(hashes).encode()).hexdigest()


# ---- the context itself --------------------------------------------------------------------


class BuildContext:
    """The files a build may read. From a tar, they are unpacked into a
    temporary directory that close() removes."""

    def __init__(self, root: str, owned_dir: str | None = None):
        self.root = os.path.realpath(root)
        self._owned = owned_dir
        self.ignore = IgnoreRules()

    @classmethod
    def open(cls, source, tmp_parent: str) -> "BuildContext":
        if isinstance(source, (str, os.PathLike)) and os.path.isdir(source):
            return cls(os.fspath(source))
        if isinstance(source, (str, os.PathLike)) and not os.path.exists(source):
            raise ContextError(f"unable to prepare context: path {os.fspath(source)!r} not found")
        tmp = tempfile.mkdtemp(dir=tmp_parent, prefix="context-")
        try:
            with opened_source(source) as f:
                unpack_layer(f, tmp)
        except (LayerError, ValueError) as e:   # unpack_layer lets a garbled number header through as ValueError
            rootless.remove_tree(tmp, ignore_errors=True)
            raise ContextError(f"the build context is not a valid tar: {e}") from None
        except BaseException:
            rootless.remove_tree(tmp, ignore_errors=True)
            raise
        return cls(tmp, owned_dir=tmp)

    def close(self) -> None:
        if self._owned:
            rootless.remove_tree(self._owned, ignore_errors=True)
            self._owned = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def load_ignore(self, dockerfile_path: str | None) -> None:
        """<Dockerfile>.dockerignore beside the Dockerfile wins over the
        context's .dockerignore (as BuildKit reads them)."""
        candidates = []
        if dockerfile_path:
            candidates.append(dockerfile_path + ".dockerignore")
        candidates.append(os.path.join(self.root, ".dockerignore"))
        for c in candidates:
            try:
                with open(c, encoding="utf-8", errors="surrogateescape") as f:
                    self.ignore = IgnoreRules(f.read())
                return
            except (FileNotFoundError, NotADirectoryError):
                continue

    def visible(self, rel: str, walking: bool = False) -> bool:
        """Not excluded by .dockerignore (a walk still enters an excluded
        directory when an exception could bring something under it back)."""
        if not self.ignore.excluded(rel):
            return True
        return walking and self.ignore.has_exceptions

    def resolve(self, rel: str) -> str:
        """A context path (symlinks followed, never out of the context),
        relative to the root; ContextError when it is missing or excluded."""
        parts = [p for p in rel.replace("\\", "/").split("/") if p not in ("", ".")]
        done: list = []
        hops = 0
        while parts:
            name = parts.pop(0)
            if name == "..":
                if not done:
                    raise ContextError(f"forbidden path outside the build context: {rel}")
                done.pop()
                continue
            p = os.path.join(self.root, *done, name)
            try:
                st = os.lstat(p)
            except (FileNotFoundError, NotADirectoryError):
                raise ContextError(f"file not found in build context or excluded by .dockerignore: {rel}") from None
            if stat.S_ISLNK(st.st_mode):
                hops += 1
                if hops > 40:
                    raise ContextError(f"too many levels of symbolic links: {rel}")
                target = os.readlink(p)
                if target.startswith("/"):
                    done = []
                parts = [x for x in target.split("/") if x not in ("", ".")] + parts
                continue
            done.append(name)
        out = "/".join(done)
        if out and not self.visible(out):
            raise ContextError(f"file not found in build context or excluded by .dockerignore: {rel}")
        return out

    def glob(self, pattern: str) -> list:
        """The context paths a wildcard source matches (Go filepath.Match
        per path element), sorted."""
        parts = [p for p in pattern.split("/") if p not in ("", ".")]
        found = [""]
        for part in parts:
            rx = re.compile(_glob_regex(part) + r"\Z")
            nxt = []
            for base in found:
                d = os.path.join(self.root, base) if base else self.root
                try:
                    names = sorted(os.listdir(d))
                except (NotADirectoryError, FileNotFoundError):
                    continue
                for name in names:
                    if rx.match(name):
                        r = f"{base}/{name}" if base else name
                        if self.visible(r):
                            nxt.append(r)
            found = nxt
        return found

    def hash_of(self, rel: str) -> str:
        return tree_hash(self.root, rel, owner=(0, 0), visible=self.visible, resolve=self._resolve_or_none)

    def _resolve_or_none(self, rel: str) -> str | None:
        try:
            return self.resolve(rel)
        except ContextError:
            return None


def has_wildcards(path: str) -> bool:
    return any(c in path for c in "*?[")


__all__ = ["BuildContext", "ContextError", "IgnoreRules", "file_sum", "tree_hash", "multi_hash", "has_wildcards"]
