"""What the two store databases (containers.db, images/images.db) share
about failing: SQLite's errors turned into the library's (a full disk, a
damaged file), and a way to keep reading on a full disk."""
from __future__ import annotations

import os
import sqlite3

from .errors import ContainerError, NoSpace, StoreDamaged


def disk_full(e: Exception) -> bool:
    """Whether an sqlite3 error is the filesystem's being full (or failing)."""
    return "disk is full" in str(e) or "disk I/O error" in str(e)


def database_error(e: Exception, path, while_doing: str) -> ContainerError:
    """The library's error for an sqlite3 error on the store database at path."""
    msg = str(e)
    if disk_full(e):
        return NoSpace(while_doing)
    if "locked" in msg or "busy" in msg:
        return ContainerError(f"{path}: {msg} (another pycontain process holds it too long)")
    return StoreDamaged(f"the store database {path} is damaged ({msg}): nothing was changed; "
                        "`pycontain system check` says what is wrong, `--repair` mends it")


def open_read_only_when_full(path, e: Exception):
    """A connection that reads the database at path without writing a byte
    (SQLite's immutable mode: no -shm, no WAL), so that read-only commands
    answer on a full disk (opening in WAL mode must create the -shm file).
    None when e is not a full disk, or when the WAL holds changes not yet
    in the file (they would be missed)."""
    wal = f"{path}-wal"
    if not disk_full(e) or (os.path.exists(wal) and os.path.getsize(wal) > 0):
        return None
    return sqlite3.connect(f"file:{path}?immutable=1", uri=True, isolation_level=None, check_same_thread=False)
