"""A container's root filesystem: read-only lower layers under a writable
upper layer of its own, joined by overlayfs.

Python only decides paths and options here; the launcher mounts the overlay
inside the container's new mount namespace, so the mount never exists on the
host and disappears with the container, even when the launching process is
killed. The writable layer lives in one of two places:

- "memory" (the default for containers that are removed when they end): a
  tmpfs that the launcher mounts on a shared, always-empty host directory
  inside the container's own mount namespace. Nothing is created on the host
  per container, so there is nothing to clean up, and starts avoid the disk.
  Writes use memory (charged to the container's memory cgroup).
- "disk": upper/ and work/ in a directory of the container under the store
  root; kept until remove(), so the changes can be inspected or committed.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

from . import rootless
from .errors import ConfigError

# The kernel copies mount options into one page.
MAX_MOUNT_DATA = 4095
LAYER_KINDS = ("memory", "disk")


def _escape(path: str) -> str:
    """overlayfs splits options on ',' and lowerdir on ':'; a backslash escapes both."""
    return path.replace("\\", "\\\\").replace(",", "\\,").replace(":", "\\:")


def lowerdir_option(lower_dirs) -> str:
    return ":".join(_escape(str(d)) for d in lower_dirs)


class RootFS:
    """The root filesystem of one container and the small files made for it
    (/etc/hostname, /etc/hosts, /etc/resolv.conf)."""

    def __init__(self, lower_dirs, kind: str, store_root: Path, container_id: str, keep_dir=None):
        if kind not in LAYER_KINDS:
            raise ConfigError(f"writable_layer must be one of {', '.join(LAYER_KINDS)}, not {kind!r}")
        self.lower_dirs = [str(d) for d in lower_dirs]  # top layer first
        if not self.lower_dirs:
            raise ConfigError("an image needs at least one layer")
        self.kind = kind
        self._store_root, self._id = store_root, container_id
        self.files = []        # (host path, bytes or None for a directory, mode): made by the launcher
        self.dir = None        # the container's directory on disk ("disk" only)
        # keep_dir: a "disk" layer in a directory its caller owns (a managed
        # container's, kept across restarts): made if missing, never removed here
        self.keep_dir = keep_dir
        if kind == "memory":
            base = self.scratch = scratch_dir(store_root)
            for name in ("upper", "work", "root"):
                self.files.append((f"{base}/{name}", None, 0o755))
        elif keep_dir is not None:
            base = str(keep_dir)
            self.scratch = None
        else:
            base = os.path.join(store_root, "containers", container_id)
            self.dir = Path(base)
            self.scratch = None
        self.base = base
        self.upper = f"{base}/upper"
        self.work = f"{base}/work"
        self.root_path = f"{base}/root" if kind == "memory" else f"{base}/merged"

    def prepare(self) -> None:
        if self.keep_dir is not None:
            for d in (self.upper, self.work, self.root_path):
                os.makedirs(d, 0o755, exist_ok=True)
                os.chmod(d, 0o755)  # the upper dir is the container's "/": not the launcher's umask
            return
        if self.dir is None:
            return
        self.dir.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(self.dir, 0o700)  # ids are random: a clash is a bug, not a case
        try:
            for d in (self.upper, self.work, self.root_path):
                os.mkdir(d, 0o755)
                os.chmod(d, 0o755)  # the upper dir is the container's "/": not the launcher's umask
        except BaseException:
            self.remove()
            raise

    def host_dir(self) -> Path:
        """A directory of this container's on the host (the container's
        directory under the store root), for files the host must reach while
        it runs; made on first use and removed with the container."""
        if self.keep_dir is not None:  # the owner's directory: it stays
            return Path(self.keep_dir)
        if self.dir is None:
            self.dir = Path(os.path.join(self._store_root, "containers", self._id))
            self.dir.parent.mkdir(parents=True, exist_ok=True)
            os.mkdir(self.dir, 0o700)
        return self.dir

    def add_etc_files(self, files: dict) -> bool:
        """Writes files into /etc of a memory-backed writable layer, where
        nothing else can see them and they vanish with it. Refused (False)
        for a disk layer, which commit and export must not see them in, and
        when the image's /etc is not a plain directory."""
        if self.kind != "memory" or not _etc_is_plain_dir(self.lower_dirs):
            return False
        self.files.append((f"{self.upper}/etc", None, 0o755))
        for name, text in files.items():
            self.files.append((f"{self.upper}/etc/{name}", text.encode(), 0o644))
        return True

    def add_file(self, name: str, content: str) -> str:
        """A small file for the container (bind-mounted by the caller's plan)."""
        path = f"{self.base}/{name}"
        data = content.encode()
        if self.kind == "memory":
            self.files.append((path, data, 0o644))
        else:
            with open(path, "wb") as f:
                os.fchmod(f.fileno(), 0o644)    # whatever the launcher's umask
                f.write(data)
        return path

    def layer_options(self) -> str:
        """The layers as overlayfs and fuse-overlayfs both take them."""
        return f"lowerdir={lowerdir_option(self.lower_dirs)},upperdir={_escape(self.upper)},workdir={_escape(self.work)}"

    def overlay_options(self) -> str:
        data = self.layer_options()
        if os.geteuid() != 0:
            # overlayfs in a user namespace cannot use trusted.* xattrs: its
            # whiteout markers live in user.overlay.* (unpack.USER_OPAQUE_XATTR)
            data += ",userxattr"
        if len(data) > MAX_MOUNT_DATA:
            raise ConfigError(
                f"the image has too many layers for one overlay mount ({len(self.lower_dirs)} layers)"
            )
        return data

    def remove(self) -> None:
        if self.dir is not None:
            rootless.remove_tree(self.dir, ignore_errors=True)
            self.dir = None


def _etc_is_plain_dir(lower_dirs) -> bool:
    """True when the topmost layer that has /etc has it as a directory (a
    symlinked /etc must be followed by binds, not shadowed by a new dir)."""
    for layer in lower_dirs:
        try:
            st = os.lstat(os.path.join(layer, "etc"))
        except FileNotFoundError:
            continue
        except OSError:
            return False
        return stat.S_ISDIR(st.st_mode)
    return True


def scratch_dir(store_root) -> str:
    """The one empty directory every memory-backed container mounts its own
    tmpfs on (each in its own mount namespace, so they never see each other)."""
    d = os.path.join(store_root, "scratch")
    try:
        os.mkdir(d, 0o700)
    except FileExistsError:
        pass
    except FileNotFoundError:
        os.makedirs(d, 0o700, exist_ok=True)
    return d
