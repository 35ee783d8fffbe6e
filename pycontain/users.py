"""Resolving docker's --user (name|uid[:group|gid]) against the image's own
/etc/passwd and /etc/group, read safely from the image's layers."""
from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass

from .errors import ConfigError

# setresuid(2) and friends read (uid_t)-1 as "leave unchanged": a container
# asked to run as 4294967295 would stay root
ID_UNCHANGED = 0xFFFFFFFF


def check_id(value: str | int, what: str) -> None:
    """A numeric user, group or supplementary group id fits uid_t and is not (uid_t)-1."""
    n = int(value)
    if n == ID_UNCHANGED:
        raise ConfigError(f"{what} {n} is not a valid id: setuid and setgid read it as 'leave unchanged'")
    if not 0 <= n < ID_UNCHANGED:
        raise ConfigError(f"{what} {n}: id out of range")


@dataclass(frozen=True)
class User:
    uid: int
    gid: int
    groups: tuple  # supplementary gids
    home: str
    name: str | None


def read_in_layers(layers, path: str, limit: int = 1 << 20) -> bytes | None:
    """Contents of `path` as the container would see it, from layer dirs listed
    top first, or None. Never follows a symlink (a hostile image could point
    /etc/passwd at a host file): a link counts as absent."""
    parts = [p for p in path.split("/") if p]
    for layer in layers:
        try:
            fd = os.open(layer, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            # Overlay rules: a whiteout (char 0/0, or an unconverted .wh. name)
            # or a non-directory hides everything below it; an opaque
            # directory hides the lower layers' contents of that directory.
            opaque = False
            for i, part in enumerate(parts):
                if _exists_at(fd, ".wh." + part):
                    return None
                last = i == len(parts) - 1
                try:
                    st = os.stat(part, dir_fd=fd, follow_symlinks=False)
                except OSError:
                    if opaque:
                        return None
                    break  # not in this layer: look lower
                if last:
                    if not stat.S_ISREG(st.st_mode):
                        return None  # whiteout, link, FIFO, device: never opened
                elif not stat.S_ISDIR(st.st_mode):
                    return None
                flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | (0 if last else os.O_DIRECTORY)
                try:
                    nfd = os.open(part, flags, dir_fd=fd)
                except OSError as e:
                    if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                        return None  # changed under us
                    raise
                os.close(fd)
                fd = nfd
                if last:
                    if not stat.S_ISREG(os.fstat(fd).st_mode):
                        return None
                    return os.read(fd, limit)
                try:
                    opaque = opaque or os.getxattr(fd, "trusted.overlay.opaque") == b"y"
                except OSError:
                    pass
        finally:
            os.close(fd)
    return None


def _exists_at(dirfd, name) -> bool:
    try:
        os.stat(name, dir_fd=dirfd, follow_symlinks=False)
        return True
    except OSError:
        return False


def _parse_db(data: bytes | None, fields: int):
    rows = []
    if not data:
        return rows
    for line in data.decode("utf-8", "replace").splitlines():
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) >= fields:
            rows.append(parts)
    return rows


_cache: dict = {}


def _fingerprint(layers) -> tuple:
    """What the answer depends on: each layer's passwd and group (and /etc),
    by inode and change time. Cheap enough to check on every start."""
    out = []
    for layer in layers:
        for rel in ("etc", "etc/passwd", "etc/group"):
            try:
                st = os.stat(os.path.join(layer, rel), follow_symlinks=False)
                out.append((st.st_ino, st.st_ctime_ns, st.st_size))
            except OSError:
                out.append(None)
    return tuple(out)


def resolve_user(spec: str | None, layers) -> User:
    """Like _resolve_user, remembered while the image's files stay the same."""
    key = (spec, tuple(layers))
    fp = _fingerprint(layers)
    hit = _cache.get(key)
    if hit is not None and hit[0] == fp:
        return hit[1]
    user = _resolve_user(spec, layers)
    if len(_cache) > 1024:
        _cache.clear()
    _cache[key] = (fp, user)
    return user


def _resolve_user(spec: str | None, layers) -> User:
    """docker semantics: default root; a name must exist in the image; a
    numeric uid need not (then gid 0 and home /). Supplementary groups are the
    image's groups that list the user."""
    spec = spec or "0"
    user_part, _, group_part = spec.partition(":")
    if not user_part:
        raise ConfigError(f"invalid user {spec!r}")
    passwd = _parse_db(read_in_layers(layers, "/etc/passwd"), 7)
    groups = _parse_db(read_in_layers(layers, "/etc/group"), 4)

    entry = None
    if user_part.isdigit():
        uid = int(user_part)
        entry = next((p for p in passwd if p[2] == user_part), None)
    else:
        entry = next((p for p in passwd if p[0] == user_part), None)
        if entry is None:
            raise ConfigError(f"unable to find user {user_part}: no matching entries in passwd file")
        if not entry[2].isdigit():
            raise ConfigError(f"user {user_part}: invalid uid {entry[2]!r} in the image's passwd file")
        uid = int(entry[2])
    gid = int(entry[3]) if entry and entry[3].isdigit() else 0
    home = entry[5] if entry and entry[5] else ("/root" if uid == 0 else "/")
    name = entry[0] if entry else None

    if group_part:
        if group_part.isdigit():
            gid = int(group_part)
        else:
            g = next((g for g in groups if g[0] == group_part), None)
            if g is None:
                raise ConfigError(f"unable to find group {group_part}: no matching entries in group file")
            gid = int(g[2])
    # the image's passwd and group files may name 4294967295 too: (uid_t)-1,
    # "leave unchanged" to setresuid, which would keep the container root
    check_id(uid, f"user {spec!r}: uid")
    check_id(gid, f"user {spec!r}: gid")

    supplementary = [gid]
    if name and not group_part:
        for g in groups:
            members = g[3].split(",") if g[3] else []
            if name in members and g[2].isdigit() and int(g[2]) not in supplementary:
                supplementary.append(int(g[2]))
    return User(uid, gid, tuple(supplementary), home, name)


def resolve_group_add(specs, layers) -> tuple:
    """docker's --group-add: each a group name from the image's /etc/group, or a
    numeric gid (which need not exist there). Returns the gids, in order."""
    if not specs:
        return ()
    groups = _parse_db(read_in_layers(layers, "/etc/group"), 4)
    gids = []
    for spec in specs:
        if spec.isdigit():
            gid = int(spec)
        else:
            g = next((g for g in groups if g[0] == spec and g[2].isdigit()), None)
            if g is None:
                raise ConfigError(f"unable to find group {spec}: no matching entries in group file")
            gid = int(g[2])
        check_id(gid, f"group {spec!r}: gid")
        if gid not in gids:
            gids.append(gid)
    return tuple(gids)
