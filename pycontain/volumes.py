"""Volumes: directories the engine owns that outlive containers (docker's local driver).

    from pycontain import volumes
    volumes.create("pgdata")                       # <root>/volumes/pgdata/_data
    Container("postgres", mounts=[Mount("pgdata", "/var/lib/postgresql/data", type="volume")])
    volumes.remove("pgdata")                       # refused while a container uses it

The layout is docker's /var/lib/docker/volumes: <root>/volumes/NAME/_data
holds the files, NAME/volume.json what inspect shows. A volume is made in a
hidden directory and renamed into place, so it exists whole or not at all.
One lock file (<root>/volumes/.lock) orders creation, first use and removal
between processes. A container that has a volume mounted holds a shared
flock on the volume's directory for as long as it exists (in whichever
process runs it), so removal, which needs it exclusively, sees that it is in
use without any daemon keeping counts; managed containers' records (running
or not) count as users too, as in docker.

On its first use an empty volume receives what the image has at the mount
point, owners and modes included (docker's copy-up), unless the mount says
nocopy. Anonymous volumes (random 64-hex names, docker's label
com.docker.volume.anonymous) are made for `-v /dst` and the image's VOLUMEs;
they go with a container removed by --rm or rm -v.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from . import events, names, rootless, state
from ._paths import default_root, private_dir
from .diskusage import dir_size
from .errors import ContainerError
from .names import NAME_RE

ANONYMOUS_LABEL = "com.docker.volume.anonymous"
DATA = "_data"
META = "volume.json"



class NoSuchVolume(ContainerError, LookupError):
    def __init__(self, name):
        super().__init__(f"no such volume: {name}")


class VolumeInUse(ContainerError):
    def __init__(self, name, users):
        super().__init__(f"remove {name}: volume is in use - [{', '.join(users)}]")


def validate_name(name) -> str:
    """docker's rule for local volume names; its message, too."""
    return names.check_volume(name)


@dataclass(frozen=True)
class Volume:
    name: str
    mountpoint: str
    created_at: str
    labels: dict
    options: dict

    @property
    def anonymous(self) -> bool:
        return ANONYMOUS_LABEL in self.labels

    @property
    def attrs(self) -> dict:
        """docker volume inspect's shape."""
        return {"CreatedAt": self.created_at, "Driver": "local", "Labels": self.labels or None,
                "Mountpoint": self.mountpoint, "Name": self.name, "Options": self.options or None,
                "Scope": "local"}


def volumes_dir(root=None) -> Path:
    return Path(root or default_root()) / "volumes"


@contextlib.contextmanager
def _store_lock(root):
    """Serializes create, first use and removal across processes."""
    private_dir(Path(root or default_root()))   # see _paths: 0700
    d = private_dir(volumes_dir(root))
    fd = os.open(d / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _sweep(d)
        yield d
    finally:
        os.close(fd)


def _sweep(d: Path) -> None:
    """Half-made (.new-*) or half-removed (.rm-*) volumes exist only while
    the lock is held: any seen on taking it were left by a killed process."""
    stale = [n for n in os.listdir(d) if n.startswith((".new-", ".rm-"))]
    if stale:
        for n in stale:
            rootless.remove_tree(d / n, ignore_errors=True)


def _sweep_if_idle(d: Path) -> None:
    """_sweep, when the lock is free now (no writer at work: what is hidden
    is a dead one's); a reader never waits for it. On a full disk or a
    read-only store it is left for the next writer."""
    try:
        fd = os.open(d / ".lock", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _sweep(d)
    except OSError:
        pass
    finally:
        os.close(fd)


def _read(vdir: Path, name: str) -> Volume:
    try:
        with open(vdir / META) as f:
            meta = json.load(f)
    except FileNotFoundError:
        raise NoSuchVolume(name) from None
    return Volume(name, str(vdir / DATA), meta.get("CreatedAt", ""), meta.get("Labels") or {},
                  meta.get("Options") or {})


def _write_meta(vdir: Path, meta: dict) -> None:
    tmp = vdir / (META + ".tmp")
    with open(tmp, "w") as f:
        json.dump(meta, f)
    os.replace(tmp, vdir / META)


def _create_locked(d: Path, name: str, labels: dict) -> Volume:
    """Under the store lock: the volume made whole in a hidden directory, then
    renamed into place. An existing volume is returned as it is (docker's
    create is idempotent)."""
    vdir = d / name
    if (vdir / META).exists():
        return _read(vdir, name)
    tmp = d / f".new-{os.urandom(8).hex()}"
    os.mkdir(tmp, 0o711)
    try:
        os.mkdir(tmp / DATA, 0o755)
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        _write_meta(tmp, {"CreatedAt": created, "Labels": labels, "Options": {}, "CopyUp": True})
        os.rename(tmp, vdir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _read(vdir, name)


def create(name: str | None = None, labels=None, *, root=None) -> Volume:
    """docker volume create: a named volume, or an anonymous one without a name."""
    if name is not None:
        validate_name(name)   # before the store directory is made
    with locked(root) as reservation:
        return reservation.create(name, labels)[0]


class Reservation:
    """volumes.locked(): volumes made while the store lock is held."""

    def __init__(self, d: Path):
        self._dir = d

    def create(self, name: str | None = None, labels=None) -> tuple:
        """(volume, whether this call made it); without a name an anonymous one."""
        labels = dict(labels or {})
        if name is None:
            name = os.urandom(32).hex()
            labels.setdefault(ANONYMOUS_LABEL, "")
        validate_name(name)
        existed = (self._dir / name / META).exists()
        volume = _create_locked(self._dir, name, labels)
        if not existed:
            events.append(self._dir.parent, "volume", "create", name, {"driver": "local"})
        return volume, not existed


@contextlib.contextmanager
def locked(root=None):
    """Holds the store lock while the caller makes volumes and records the
    container that uses them (pycontain.containers.create): a concurrent
    volume rm, which reads the records under the same lock, sees the
    container or finds no volume, never a volume about to be used."""
    with _store_lock(root) as d:
        yield Reservation(d)


def get(name: str, root=None) -> Volume:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise NoSuchVolume(name)
    return _read(volumes_dir(root) / name, name)


def inspect(name: str, root=None) -> dict:
    return get(name, root).attrs


def list_volumes(root=None, dangling: bool | None = None) -> list:
    """Every volume, by name; dangling=True: only those no container uses
    (docker's --filter dangling=true), False: only those in use."""
    d = volumes_dir(root)
    try:
        listing = os.listdir(d)
    except FileNotFoundError:
        return []
    if any(n.startswith((".new-", ".rm-")) for n in listing):
        _sweep_if_idle(d)   # a killed create or rm's: `volume ls` and `system df` clear it
    names = sorted(n for n in listing if NAME_RE.match(n))
    out = []
    for n in names:
        try:
            out.append(_read(d / n, n))
        except (NoSuchVolume, NotADirectoryError):  # removed meanwhile
            pass
    if dangling is not None:
        used = in_use(root)
        out = [v for v in out if (v.name not in used) == dangling]
    return out


def in_use(root=None) -> set:
    """Names of the volumes a container uses: mounted now, or named by a managed container's record."""
    used = set(_record_users(root))
    d = volumes_dir(root)
    for v in list_volumes(root):
        with contextlib.suppress(OSError):
            if _mounted(d / v.name):
                used.add(v.name)
    return used


def disk_usage(root=None) -> dict:
    """docker system df's "Local Volumes" figures."""
    used = in_use(root)
    out = {"total": 0, "active": 0, "size": 0, "reclaimable": 0}
    for v in list_volumes(root):
        size = dir_size(v.mountpoint)
        out["total"] += 1
        out["size"] += size
        if v.name in used:
            out["active"] += 1
        else:
            out["reclaimable"] += size
    return out


# ---- users ------------------------------------------------------------------------


def _record_users(root) -> dict:
    """{volume name: [container ids]} from the managed containers' records."""
    if not (Path(root or default_root()) / "containers.db").exists():
        return {}
    store = state.cached_store(root)
    own = store is None
    if own:
        store = state.Store(root)
    try:
        users: dict = {}
        for rec in store.list():
            if rec.state == "dead":   # being removed: rm marks the record dead, removes its volumes, then it
                continue
            for m in rec.config.get("mounts", ()):
                if m.get("type") == "volume" and m.get("source"):
                    users.setdefault(m["source"], []).append(rec.id)
        return users
    finally:
        if own:
            store.close()


def _mounted(vdir: Path) -> bool:
    """True while a container (of any process) has the volume mounted."""
    fd = os.open(vdir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def _remove_locked(d: Path, name: str, users: dict, force: bool) -> int:
    """Under the store lock: refuses a volume in use, else removes it; the
    bytes it held. A volume mounted by a running container is refused even
    with force (its files would vanish under it)."""
    vdir = d / name
    if not (vdir / META).exists():
        raise NoSuchVolume(name)
    if _mounted(vdir):
        raise VolumeInUse(name, users.get(name) or ["a running container"])
    if users.get(name) and not force:
        raise VolumeInUse(name, users[name])
    size = dir_size(vdir / DATA)
    # out of sight first: the name is free at once, and a half-removed
    # volume is never listed
    trash = d / f".rm-{os.urandom(8).hex()}"
    os.rename(vdir, trash)
    events.append(d.parent, "volume", "destroy", name, {"driver": "local"})
    rootless.remove_tree(trash, ignore_errors=True)
    return size


def remove(name: str, force: bool = False, *, root=None) -> None:
    """docker volume rm. In use by a container: VolumeInUse. force also
    removes a volume that only stopped managed containers refer to."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise NoSuchVolume(name)
    with _store_lock(root) as d:   # the records are read under the lock: see locked()
        _remove_locked(d, name, _record_users(root), force)


def prune(all: bool = False, *, root=None) -> dict:  # noqa: A002 - docker's -a/--all
    """docker volume prune: the anonymous volumes no container uses (all=True:
    every unused volume). {"VolumesDeleted": [names], "SpaceReclaimed": bytes}."""
    deleted, space = [], 0
    with _store_lock(root) as d:
        users = _record_users(root)
        for v in list_volumes(root):
            if (not all and not v.anonymous) or users.get(v.name):
                continue
            try:
                space += _remove_locked(d, v.name, users, False)
            except (NoSuchVolume, VolumeInUse):
                continue
            deleted.append(v.name)
    return {"VolumesDeleted": deleted, "SpaceReclaimed": space}


def remove_anonymous(names, root=None) -> None:
    """The anonymous ones of a removed container's volumes (--rm, rm -v);
    named ones stay, as do any another container still uses."""
    names = [n for n in names if n]
    if not names:
        return
    with _store_lock(root) as d:
        users = _record_users(root)
        for name in names:
            try:
                if get(name, root).anonymous:
                    _remove_locked(d, name, users, False)
            except (NoSuchVolume, VolumeInUse):
                pass


# ---- use by a container -----------------------------------------------------------


class Attachment:
    """A volume mounted by one container: its host directory, and the shared
    lock that says so until release()."""

    def __init__(self, volume: Volume, fd: int, owned: bool, root):
        self.volume = volume
        self.path = volume.mountpoint
        self._fd = fd
        self.owned = owned     # an anonymous volume made for this container alone: removed with it
        self._root = root

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            if self.owned:
                remove_anonymous([self.volume.name], self._root)


def attach(name: str | None, *, root=None, image_layers=(), target: str = "/", copy_up: bool = True) -> Attachment:
    """The volume `name` (made if missing; an anonymous one without a name)
    held for a container that mounts it at target. On the volume's first use,
    when it is empty, the image's content at target (image_layers: its
    directories, top first) is copied in."""
    owned = name is None
    if owned:
        name = os.urandom(32).hex()
    validate_name(name)
    with _store_lock(root) as d:
        vol = _create_locked(d, name, {ANONYMOUS_LABEL: ""} if owned else {})
        vdir = d / name
        fd = os.open(vdir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            with open(vdir / META) as f:
                meta = json.load(f)
            if meta.get("CopyUp"):
                if copy_up and image_layers and not os.listdir(vdir / DATA):
                    try:
                        _copy_up(image_layers, target, vol.mountpoint)
                    except BaseException:
                        _empty(vol.mountpoint)   # a half copy would pass for the volume's content
                        raise
                meta["CopyUp"] = False   # the first use only, as podman's NeedsCopyUp
                _write_meta(vdir, meta)
        except BaseException:
            os.close(fd)
            if owned:
                _remove_locked(d, name, {}, True)
            raise
    return Attachment(vol, fd, owned, root)


def _empty(data: str) -> None:
    for n in os.listdir(data):
        p = os.path.join(data, n)
        if os.path.isdir(p) and not os.path.islink(p):
            rootless.remove_tree(p, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(p)


def _copy_up(image_layers, target: str, data: str) -> None:
    """Copies the image's directory at target into data. A rootless user whose
    layers carry subordinate ids copies as root of a user namespace with
    that mapping, so the owners come along."""
    if os.geteuid() != 0 and rootless.mapping().sub_uids is not None:
        rootless.in_user_namespace(_copy_tree, list(image_layers), target, data)
        return
    _copy_tree(image_layers, target, data)


def _copy_tree(image_layers, target: str, data: str) -> None:
    # Imported here: only copy-up reads image layers, and the image package
    # costs every volume verb and every managed-container command ~11 ms.
    from .image.merged import merged_dir, merged_entries
    from .image.unpack import OVERLAY_XATTR_PREFIXES

    sources = merged_dir(image_layers, target)
    if not sources:
        return   # not in the image, or not a directory there: nothing to copy
    as_root = os.geteuid() == 0   # real root, or root of the user namespace
    links: dict = {}
    dirs = [(sources[0], data)]

    def meta(src, dst, st):
        if as_root:
            os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
        if not stat.S_ISLNK(st.st_mode):
            os.chmod(dst, stat.S_IMODE(st.st_mode))   # again: chown clears setuid bits
        try:
            names = os.listxattr(src, follow_symlinks=False)
        except OSError:
            names = []
        for n in names:
            if not n.startswith(OVERLAY_XATTR_PREFIXES):
                with contextlib.suppress(OSError):
                    os.setxattr(dst, n, os.getxattr(src, n, follow_symlinks=False), follow_symlinks=False)

    meta(sources[0], data, os.lstat(sources[0]))
    for rel, src in merged_entries(sources):
        dst = os.path.join(data, rel)
        st = os.lstat(src)
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            os.mkdir(dst, 0o700)
            dirs.append((src, dst))
        elif st.st_nlink > 1 and not stat.S_ISDIR(mode) and (st.st_dev, st.st_ino) in links:
            os.link(links[(st.st_dev, st.st_ino)], dst, follow_symlinks=False)
            continue
        elif stat.S_ISREG(mode):
            with open(src, "rb") as fi, open(dst, "xb") as fo:
                shutil.copyfileobj(fi, fo, 1 << 20)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(src), dst)
        elif stat.S_ISFIFO(mode):
            os.mkfifo(dst, 0o600)
        else:
            # sockets are not content; device nodes are never copied: made
            # as root here, an image's node would be a live device in any
            # container that mounts the volume (they mount nodev, too)
            continue
        if st.st_nlink > 1:
            links[(st.st_dev, st.st_ino)] = dst
        meta(src, dst, st)
        if not stat.S_ISDIR(mode):
            os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
    for src, dst in reversed(dirs):   # last: creating entries changed them
        st = os.stat(src)
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))


__all__ = ["Volume", "NoSuchVolume", "VolumeInUse", "ANONYMOUS_LABEL", "validate_name", "create", "get",
           "inspect", "list", "list_volumes", "in_use", "disk_usage", "remove", "prune", "remove_anonymous", "attach", "Attachment",
           "locked", "Reservation"]


def __getattr__(name):
    # docker-py's public name is volumes.list(); bound lazily (PEP 562) so that
    # no module-level `list` hides the builtin inside this module.
    if name == "list":
        return list_volumes
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
