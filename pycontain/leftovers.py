"""What a killed program's containers leave behind, and its sweeping.

A Container in a Python program makes things outside the program: its
cgroup directories (one per v1 hierarchy, under the caller's own cgroup)
and its directory under <root>/containers/ (a disk writable layer, files
the host keeps for it). Its cleanup removes them; `kill -9` of the program
skips the cleanup (its container dies with it: pdeathsig). Managed
containers have their record for this (state.remove_leftover_cgroups);
the containers of a program have its owner log instead:

    <root>/owners/<pid>.<start time>.<boot id>   one line per event:
        + <container id> <its directory>     before the container makes anything
        c <container id> <cgroup directory>  as each is made
        - <container id>                     after its cleanup

One file per process, only appended to (one write() per line: kill -9
cannot split it; a new file or a rename per container would cost ext4
0.1-0.4 ms of directory work at every start). The next Container
start (and system df/prune) sweeps the logs whose process is gone (pid and
start time, as records tell their monitor): of the containers added and not
removed, only the paths named, only cgroups named for that container.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import threading
from pathlib import Path

from . import rootless
from ._paths import private_dir
from .state import boot_id, process_alive, process_start_time, remove_cgroup_dirs

OWNERS = "owners"
_REWIND_AT = 1 << 20   # a log with no container open is emptied past this size

_open: dict = {}       # (owners dir, pid) -> containers open: this process's
_lock = threading.Lock()


def _log_name(pid: int) -> str:
    return f"{pid}.{process_start_time(pid)}.{boot_id()[:8]}"


def _write(root, line: str, opened: int) -> None:
    """One line appended (opened and closed each time: a library keeps no
    descriptor in its user's process, nor in the children it forks)."""
    d = Path(root) / OWNERS
    key = (str(d), os.getpid())
    with _lock:
        if key not in _open:
            private_dir(d)
            _open[key] = 0
        fd = os.open(d / _log_name(os.getpid()), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, line.encode("utf-8", "surrogateescape"))
            _open[key] += opened
            if _open[key] == 0 and opened < 0 and os.fstat(fd).st_size > _REWIND_AT:
                os.ftruncate(fd, 0)
        finally:
            os.close(fd)


@atexit.register
def _remove_log() -> None:
    """A process that ends with no container open leaves no log behind."""
    with _lock:
        for (d, pid), open_ in list(_open.items()):
            if pid == os.getpid() and open_ == 0:
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(d, _log_name(pid)))


def claim(root, cid: str, layer_dir: str | None) -> None:
    """This process owns container cid (and layer_dir) from now on."""
    _write(root, f"+ {cid} {layer_dir or '-'}\n", 1)


def claim_cgroups(root, cid: str, cgroup_dirs) -> None:
    """The cgroup directories just made for container cid."""
    _write(root, "".join(f"c {cid} {c}\n" for c in cgroup_dirs), 0)


def release(root, cid: str) -> None:
    """Container cid's cleanup is done."""
    _write(root, f"- {cid}\n", -1)


def _open_containers(text: str) -> dict:
    """id -> {"dir", "cgroups"} of the containers a log added and did not remove."""
    out: dict = {}
    for line in text.split("\n"):
        kind, _, rest = line.partition(" ")
        cid, _, arg = rest.partition(" ")
        if kind == "+":
            out[cid] = {"dir": None if arg in ("", "-") else arg, "cgroups": []}
        elif kind == "c" and cid in out:
            out[cid]["cgroups"].append(arg)
        elif kind == "-":
            out.pop(cid, None)
    return out


def _dead_logs(d: Path):
    """(path, open containers) of each owner log whose process is gone."""
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        return
    for name in names:
        parts = name.split(".")
        if len(parts) != 3 or not parts[0].isdigit():
            continue
        pid, start, boot = int(parts[0]), parts[1], parts[2]
        if boot == boot_id()[:8] and start.isdigit() and process_alive(pid, int(start)):
            continue
        try:
            text = (d / name).read_text("utf-8", "surrogateescape")
        except OSError:
            continue
        yield d / name, _open_containers(text)


def dead_dirs(root) -> list:
    """The containers/<id> directories of dead owners, not swept yet (system df counts them)."""
    return [c["dir"] for _, open_ in _dead_logs(Path(root) / OWNERS) for cid, c in open_.items()
            if c["dir"] and os.path.basename(c["dir"]) == cid and os.path.isdir(c["dir"])]


def sweep(root) -> list:
    """Removes what dead owners left; returns those containers' ids (their
    image marks are the image store's to drop)."""
    swept = []
    for path, open_ in list(_dead_logs(Path(root) / OWNERS)):
        for cid, c in open_.items():
            remove_cgroup_dirs([g for g in c["cgroups"] if cid in os.path.basename(g)])
            if c["dir"] and os.path.basename(c["dir"]) == cid:
                rootless.remove_tree(c["dir"], ignore_errors=True)
            swept.append(cid)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    return swept
