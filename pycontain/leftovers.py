"""What a killed program's containers leave behind, and its sweeping.

A Container in a Python program makes things outside the program: its
cgroup directories (one per v1 hierarchy, under the caller's own cgroup)
and its directory under <root>/containers/ (a disk writable layer, files
the host keeps for it). Its cleanup removes them; `kill -9` of the program
skips the cleanup (its container dies with it: pdeathsig). Managed
containers have their record for this (state.remove_leftover_cgroups);
a Container of a program has an owner file instead:

    <root>/owners/<container id>   {"pid", "start", "boot", "dir", "cgroups"}

written before it makes anything and removed when its cleanup is done. The
next Container start (and system df/prune) sweeps the files whose process
is gone (pid and start time, as records tell their monitor): only the paths
the file names, only cgroups named for that container, nothing else.
"""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from . import rootless
from ._paths import private_dir
from .state import boot_id, process_alive, process_start_time, remove_cgroup_dirs

OWNERS = "owners"


def claim(root, cid: str, layer_dir: str | None, cgroup_dirs=()) -> None:
    """Says this process owns container cid's layer_dir and cgroup_dirs
    (again, with more, as they are made)."""
    d = private_dir(Path(root) / OWNERS)
    me = os.getpid()
    data = json.dumps({"pid": me, "start": process_start_time(me), "boot": boot_id(),
                       "dir": layer_dir, "cgroups": [str(c) for c in cgroup_dirs]})
    tmp = d / f".{cid}.{me}"
    with open(tmp, "w") as f:
        f.write(data)
    os.rename(tmp, d / cid)


def release(root, cid: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(Path(root) / OWNERS / cid)


def _dead_owners(d: Path):
    """(container id, owner) of each owner file whose process is gone."""
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        return
    for name in names:
        if name.startswith("."):
            continue
        try:
            owner = json.loads((d / name).read_text())
        except (OSError, ValueError):
            continue
        if not (owner.get("boot") == boot_id() and process_alive(owner.get("pid"), owner.get("start"))):
            yield name, owner


def dead_dirs(root) -> list:
    """The containers/<id> directories of dead owners, not swept yet (system df counts them)."""
    return [o["dir"] for n, o in _dead_owners(Path(root) / OWNERS)
            if o.get("dir") and os.path.basename(o["dir"]) == n and os.path.isdir(o["dir"])]


def sweep(root) -> list:
    """Removes what dead owners left; returns those containers' ids (their
    image marks are the image store's to drop)."""
    d = Path(root) / OWNERS
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        return []
    swept = []
    for name in names:
        path = d / name
        if name.startswith("."):   # a claim being written: dead writer's only if its pid is gone
            pid = name.rsplit(".", 1)[-1]
            if pid.isdigit() and process_start_time(int(pid)) is None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            continue
        try:
            owner = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if owner.get("boot") == boot_id() and process_alive(owner.get("pid"), owner.get("start")):
            continue
        remove_cgroup_dirs([c for c in owner.get("cgroups", ()) if name in os.path.basename(c)])
        layer = owner.get("dir")
        if layer and os.path.basename(layer) == name:
            rootless.remove_tree(layer, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        swept.append(name)
    return swept
