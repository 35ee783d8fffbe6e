"""Where pycontain keeps its state: one root for images and containers.

Root: /var/lib/pycontain. Others: $XDG_DATA_HOME/pycontain (default
~/.local/share/pycontain). $PYCONTAIN_ROOT overrides both; the API takes a
root= argument where it matters.

The store holds every container's configuration (its environment, -e
SECRET=... included), logs and sockets: no other user may read or even
traverse it. Its directories are 0700 and its files 0600, as docker keeps
/var/lib/docker (0710, content 0700/0600); a store an older version made
with the default modes is tightened the first time it is used.
"""
import os
import stat
from pathlib import Path


def default_root() -> Path:
    env = os.environ.get("PYCONTAIN_ROOT")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/pycontain")
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(data) / "pycontain"


def containers_dir(root: Path | None = None) -> Path:
    return (root or default_root()) / "containers"


def private_dir(path) -> Path:
    """The directory `path` (made if missing, its parents as usual) with
    group and other access taken away."""
    path = Path(path)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.makedirs(path, 0o700, exist_ok=True)
    _tighten(os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
    return path


def private_file(path) -> Path:
    """The file `path` (made empty if missing) readable by its owner only.
    Made before SQLite opens a database: SQLite gives the database's -wal
    and -shm files the database file's own mode."""
    try:
        # a new file: no SQLite connection of this process has it open yet
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
    except FileExistsError:
        tighten_if_present(path)
    return Path(path)


def tighten_if_present(path) -> None:
    """Group and other access taken from an existing file. Through an O_PATH
    descriptor only: closing any other descriptor of a database file drops
    every POSIX lock this process holds on it, SQLite's included (a second
    store opened in a process would break the first one's locking)."""
    try:
        fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o077 and st.st_uid == os.geteuid():
            os.chmod(f"/proc/self/fd/{fd}", stat.S_IMODE(st.st_mode) & ~0o077)
    finally:
        os.close(fd)


def _tighten(fd: int) -> None:
    try:
        st = os.fstat(fd)
        if st.st_mode & 0o077 and st.st_uid == os.geteuid():
            os.fchmod(fd, stat.S_IMODE(st.st_mode) & ~0o077)
    finally:
        os.close(fd)
