"""A container's root filesystem: read-only lower layers under a writable
upper layer of its own, joined by overlayfs.

Python only makes the directories and the option string here; the launcher
mounts the overlay inside the container's new mount namespace, so the mount
never exists on the host and disappears with the container, even when the
launching process is killed.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from .errors import ConfigError

# The kernel copies mount options into one page.
MAX_MOUNT_DATA = 4095


def _escape(path: str) -> str:
    """overlayfs splits options on ',' and lowerdir on ':'; a backslash escapes both."""
    return path.replace("\\", "\\\\").replace(",", "\\,").replace(":", "\\:")


class RootFS:
    """The writable layer of one container, in container_dir:
    upper/ (what the container wrote), work/ (overlayfs' scratch), merged/
    (where the launcher mounts the overlay). remove() deletes all three."""

    def __init__(self, lower_dirs, container_dir: Path):
        self.lower_dirs = [str(d) for d in lower_dirs]  # top layer first
        if not self.lower_dirs:
            raise ConfigError("an image needs at least one layer")
        self.dir = Path(container_dir)
        self.upper = self.dir / "upper"
        self.work = self.dir / "work"
        self.merged = self.dir / "merged"

    def prepare(self) -> None:
        self.dir.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(self.dir, 0o700)  # fails on a clash: ids are random, never reused
        try:
            for d in (self.upper, self.work, self.merged):
                os.mkdir(d, 0o755)
        except BaseException:
            self.remove()
            raise

    def overlay_options(self) -> str:
        data = "lowerdir={},upperdir={},workdir={}".format(
            ":".join(_escape(d) for d in self.lower_dirs), _escape(str(self.upper)), _escape(str(self.work))
        )
        if len(data) > MAX_MOUNT_DATA:
            raise ConfigError(
                f"the image has too many layers for one overlay mount ({len(self.lower_dirs)} layers)"
            )
        return data

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
