"""Small, fast file operations on cgroupfs shared by both drivers.

os.open/os.write instead of open(): a container start writes a handful of
these files and Python's buffered file objects cost several times more.
"""
from __future__ import annotations

import errno
import os
import signal
import time

from .base import CgroupError

O_WRITE = os.O_WRONLY | os.O_CLOEXEC
O_READ = os.O_RDONLY | os.O_CLOEXEC


def write(path: str, value) -> None:
    data = value if isinstance(value, bytes) else str(value).encode()
    try:
        fd = os.open(path, O_WRITE)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    except OSError as e:
        raise CgroupError(e.errno, f"cannot write {data.decode(errors='replace').strip()!r} to {path}: {e.strerror}") from None


def write_all(writes, busy=None) -> None:
    """Writes each (file, value[, undo value]) in order, or none of them: when
    one fails, those written so far get back what they held (or their undo
    value). busy(file, value): the message for an EBUSY on that file, or None."""
    done = []
    try:
        for entry in writes:
            path, value = entry[0], entry[1]
            undo = entry[2] if len(entry) > 2 else (read(path) or "").strip()
            try:
                write(path, value)
            except CgroupError as e:
                message = busy(path, value) if busy is not None and e.errno == errno.EBUSY else None
                if message:
                    raise CgroupError(e.errno, message) from None
                raise
            done.append((path, undo))
    except BaseException:
        for path, undo in reversed(done):
            try:
                write(path, undo)
            except CgroupError:
                pass
        raise


def read(path: str) -> str | None:
    """The file's text, or None when it does not exist (a kernel without that feature)."""
    try:
        fd = os.open(path, O_READ)
    except FileNotFoundError:
        return None
    try:
        chunks = []
        while True:
            b = os.read(fd, 65536)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks).decode()
    finally:
        os.close(fd)


def read_int(path: str) -> int | None:
    text = read(path)
    if text is None:
        return None
    text = text.strip()
    if text == "max":
        return -1
    try:
        return int(text)
    except ValueError:
        return None


def read_keyed(path: str) -> dict:
    """'key value' lines (memory.events, cpu.stat, memory.oom_control) -> {key: int}."""
    out = {}
    for line in (read(path) or "").splitlines():
        k, _, v = line.partition(" ")
        try:
            out[k] = int(v)
        except ValueError:
            pass
    return out


def read_pids(path: str) -> list:
    text = read(path)
    return [int(p) for p in text.split()] if text else []


def mkdir_chain(leaf: str, stop: str, made: list, on_new_dir=None, leaf_exists_ok=False) -> None:
    """mkdir -p leaf, never above `stop` (the hierarchy's mount point); records
    each directory it made in `made` (parents first). on_new_dir(path) runs for
    each new directory before its children are made (v1 cpuset needs that).
    An existing leaf is an error (someone else's cgroup) unless leaf_exists_ok."""
    try:                # the common case: the parent exists, one syscall
        os.mkdir(leaf, 0o755)
    except FileNotFoundError:
        pass
    except FileExistsError:
        if leaf_exists_ok:
            return
        raise CgroupError(errno.EEXIST, f"cgroup {leaf} already exists") from None
    except OSError as e:
        raise CgroupError(e.errno, f"cannot create cgroup {leaf}: {e.strerror}") from None
    else:
        made.append(leaf)
        if on_new_dir is not None:
            on_new_dir(leaf)
        return
    missing = []
    d = leaf
    while d != stop and not os.path.isdir(d):
        missing.append(d)
        d = os.path.dirname(d)
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o755)
        except FileExistsError:
            if d == leaf and not leaf_exists_ok:   # someone else's cgroup by that name: never adopt it
                raise CgroupError(errno.EEXIST, f"cgroup {d} already exists") from None
            continue        # a shared parent made concurrently: not ours to remove
        except OSError as e:
            raise CgroupError(e.errno, f"cannot create cgroup {d}: {e.strerror}") from None
        made.append(d)
        if on_new_dir is not None:
            on_new_dir(d)


def rmdir_all(made: list, leaves: set, timeout: float) -> None:
    """Removes `made` (children before parents). A leaf can be briefly busy while
    its last task finishes exiting; a parent that is busy has other users (a
    shared cgroup_parent) and is left to them."""
    end = time.monotonic() + timeout
    for d in reversed(made):
        delay = 0.0002
        while True:
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError as e:
                if d not in leaves and e.errno in (errno.EBUSY, errno.ENOTEMPTY):
                    break
                if e.errno != errno.EBUSY or time.monotonic() > end:
                    raise CgroupError(e.errno, f"cannot remove cgroup {d}: {e.strerror}") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.02)


def kill_pids(pids) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_until(predicate, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    delay = 0.0001
    while not predicate():
        if time.monotonic() > end:
            raise CgroupError(errno.ETIMEDOUT, f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.01)
