"""Containers for users who are not root: a user namespace and its id maps.

The container's root is the calling user. With a subordinate id range for the
user in /etc/subuid and /etc/subgid and the setuid helpers newuidmap and
newgidmap (Debian: uidmap), ids 1..N of the container map onto that range, so
images with several users work. Without them, the calling user alone is
mapped (to 0) and setgroups is denied, as the kernel requires.

Images are stored the same way: a layer's files owned by container id N>0
are owned on the host by the subordinate id that N maps to, so they show up
right inside (podman does the same). The user cannot chown to or remove such
files directly; `in_user_namespace` runs that work as root of a user
namespace with the full mapping, as `podman unshare` does.
"""
from __future__ import annotations

import os
import pickle
import pwd
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass

from .errors import ConfigError, LaunchError


@dataclass(frozen=True)
class IdMapping:
    uid: int
    gid: int
    sub_uids: tuple | None   # (start, count) from /etc/subuid, with newuidmap
    sub_gids: tuple | None

    @property
    def allows_setgroups(self) -> bool:
        return self.sub_gids is not None

    def covers(self, uid: int, gid: int) -> bool:
        max_uid = self.sub_uids[1] if self.sub_uids else 0
        max_gid = self.sub_gids[1] if self.sub_gids else 0
        return uid <= max_uid and gid <= max_gid

    def write(self, pid: int) -> None:
        """Runs in the parent while the child waits (LaunchPlan.on_cloned)."""
        try:
            if self.sub_uids and self.sub_gids:
                _helper("newuidmap", pid, self.uid, self.sub_uids)
                _helper("newgidmap", pid, self.gid, self.sub_gids)
                return
            with open(f"/proc/{pid}/setgroups", "w") as f:
                f.write("deny")
            with open(f"/proc/{pid}/uid_map", "w") as f:
                f.write(f"0 {self.uid} 1")
            with open(f"/proc/{pid}/gid_map", "w") as f:
                f.write(f"0 {self.gid} 1")
        except OSError as e:
            raise LaunchError(e.errno or 1, "id map", f"/proc/{pid}") from None


def _helper(name, pid, own, sub):
    r = subprocess.run([name, str(pid), "0", str(own), "1", "1", str(sub[0]), str(sub[1])],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise LaunchError(1, name, r.stderr.strip() or f"exit status {r.returncode}")


def _subordinate(path: str, uid: int, name: str | None):
    try:
        with open(path) as f:
            for line in f:
                parts = line.strip().split(":")
                if len(parts) == 3 and parts[0] in (str(uid), name) and parts[1].isdigit() and parts[2].isdigit():
                    return int(parts[1]), int(parts[2])
    except OSError:
        pass
    return None


_mapping = None


def mapping() -> IdMapping:
    """The calling user's id mapping (computed once per process)."""
    global _mapping
    uid, gid = os.getuid(), os.getgid()
    if _mapping is None or (_mapping.uid, _mapping.gid) != (uid, gid):
        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:
            name = None
        subu = _subordinate("/etc/subuid", uid, name)
        subg = _subordinate("/etc/subgid", uid, name)
        if not (subu and subg and shutil.which("newuidmap") and shutil.which("newgidmap")):
            subu = subg = None
        _mapping = IdMapping(uid, gid, subu, subg)
    return _mapping


def check_user(m: IdMapping, uid: int, gid: int) -> None:
    if not m.covers(uid, gid):
        if m.sub_uids is None:
            raise ConfigError(
                f"user {uid}:{gid} is not mapped: without a subordinate id range for this user in "
                "/etc/subuid and /etc/subgid (and newuidmap from the uidmap package), a rootless "
                "container can only run as root (0:0)")
        raise ConfigError(f"user {uid}:{gid} is outside the subordinate id range of this user")


def in_user_namespace(fn, *args, after_fork=None):
    """fn(*args) in a forked child that is root of a new user namespace with
    the calling user's full id mapping (subordinate ids included), where it
    may chown to, read and remove anything owned by mapped ids. Returns fn's
    result; raises what fn raised. Needs a subordinate id range.
    after_fork() runs in the parent once the child exists."""
    from . import _launch

    m = mapping()
    if m.sub_uids is None:
        raise ConfigError("no subordinate id range for this user (/etc/subuid, /etc/subgid and newuidmap)")
    to_parent_r, to_parent_w = os.pipe()
    to_child_r, to_child_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller's code
        # one byte first: "u" (in its user namespace, waiting for the maps)
        # or "x" (could not make it); then the pickled outcome
        told = False
        try:
            os.close(to_parent_r)
            os.close(to_child_w)
            err = _launch.ffi.new("struct pc_error *")
            if _launch.lib.pc_unshare(_launch.CLONE_NEWUSER, err) < 0:
                raise OSError(err.err, f"cannot make a user namespace: {os.strerror(err.err)}")
            os.write(to_parent_w, b"u")
            told = True
            if os.read(to_child_r, 1) != b"m":
                os._exit(1)
            out = ("ok", fn(*args))
        except BaseException as e:  # reported to the parent, never raised here
            out = ("error", e)
        if not told:
            os.write(to_parent_w, b"x")
        try:
            data = pickle.dumps(out)
        except Exception as e:
            data = pickle.dumps(("error", RuntimeError(f"{out[1]!r} ({e})")))
        view = memoryview(data)
        while view:
            view = view[os.write(to_parent_w, view):]
        os._exit(0)
    os.close(to_parent_w)
    os.close(to_child_r)
    try:
        if after_fork is not None:
            after_fork()
        if os.read(to_parent_r, 1) == b"u":   # else "x" or nothing: no namespace to map
            m.write(pid)
            os.write(to_child_w, b"m")
        os.close(to_child_w)
        to_child_w = -1
        data = b""
        while chunk := os.read(to_parent_r, 1 << 16):
            data += chunk
    finally:
        if to_child_w >= 0:
            os.close(to_child_w)  # the child sees EOF and exits
        os.close(to_parent_r)
        os.waitpid(pid, 0)
    if not data:
        raise LaunchError(1, "user namespace", "the helper process failed")
    kind, value = pickle.loads(data)
    if kind == "error":
        raise value
    return value


def _rmtree(path) -> None:
    """shutil.rmtree, where what another process removed meanwhile (a monitor
    tidying up the same directory) is not an error; the rest is."""
    def unless_vanished(_func, _path, exc):
        exc = exc[1] if isinstance(exc, tuple) else exc
        if not isinstance(exc, FileNotFoundError):
            raise exc
    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=unless_vanished)
    else:
        shutil.rmtree(path, onerror=unless_vanished)


def write_as_container_root(write, out, *args) -> None:
    """write(out, *args) writes a tar stream of files in the store. A rootless
    user with a subordinate id range runs it in_user_namespace, where files of
    any container owner are readable and stat shows their ids inside the
    container (what an exported or committed tar must carry); the bytes come
    back through a pipe into out."""
    if os.geteuid() == 0 or mapping().sub_uids is None:
        write(out, *args)
        return
    import threading

    r, w = os.pipe()
    copy_error = []

    def copy():
        try:
            with os.fdopen(r, "rb") as src:
                while chunk := src.read(1 << 16):
                    out.write(chunk)
        except BaseException as e:  # noqa: BLE001 - re-raised below
            copy_error.append(e)

    def in_child():
        with os.fdopen(w, "wb") as dst:
            write(dst, *args)

    copier = threading.Thread(target=copy, daemon=True)

    def parent_side():
        os.close(w)
        copier.start()

    try:
        in_user_namespace(in_child, after_fork=parent_side)
    finally:
        if copier.ident is not None:
            copier.join()
        else:  # the fork failed: nothing reads r
            os.close(r)
            os.close(w)
    if copy_error:
        raise copy_error[0]


def remove_tree(path, ignore_errors=False) -> None:
    """shutil.rmtree that also removes what a rootless user's containers and
    images own through subordinate ids."""
    try:
        try:
            _rmtree(path)
            return
        except PermissionError:
            if os.geteuid() == 0 or mapping().sub_uids is None:
                raise
        in_user_namespace(_rmtree, str(path))
    except (OSError, ConfigError, LaunchError):
        if not ignore_errors:
            raise


def chown_tree(root: str, owners: dict) -> None:
    """Gives the files of a rootless user's freshly unpacked layer their image
    owners. owners: {path relative to root: (uid, gid, mode to set again after
    chown (which clears setuid bits) or None)}. The tree is walked without
    following symlinks, so a name the layer later turned into a symlink
    cannot redirect a chown outside it."""
    if not owners:
        return
    m = mapping()
    if m.sub_uids is None:
        return  # only the user's own id is mapped: everything stays root's inside
    max_uid = max(u for u, _g, _m in owners.values())
    max_gid = max(g for _u, g, _m in owners.values())
    if not m.covers(max_uid, max_gid):
        raise ConfigError(f"the image has files owned by {max_uid}:{max_gid}, outside this user's subordinate "
                          f"id range ({m.sub_uids[1]} uids, {m.sub_gids[1]} gids in /etc/subuid, /etc/subgid)")
    in_user_namespace(_chown_walk, root, owners)


def _chown_walk(root, owners):
    if "" in owners:
        uid, gid, _mode = owners[""]
        os.chown(root, uid, gid)
    for top, dirs, files, dirfd in os.fwalk(root):
        prefix = os.path.relpath(top, root)
        prefix = "" if prefix == "." else prefix + "/"
        for name in dirs + files:
            want = owners.get(prefix + name)
            if want is not None:
                uid, gid, mode = want
                os.chown(name, uid, gid, dir_fd=dirfd, follow_symlinks=False)
                if mode is not None and stat.S_ISREG(os.stat(name, dir_fd=dirfd, follow_symlinks=False).st_mode):
                    os.chmod(name, mode, dir_fd=dirfd)
