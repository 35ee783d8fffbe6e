"""Cgroups for rootless containers: only inside a cgroup delegated to the user.

A user who is not root may make cgroups only where the owner of the tree
handed a subtree over: systemd does it for a unit with Delegate= (the user's
own manager, user@UID.service, and every scope or slice below it) by giving
the user the directory and its cgroup.procs, cgroup.subtree_control and
cgroup.threads. The kernel then lets the user make children there, enable
the controllers the parent offers, and move its own processes between
cgroups of that subtree (cgroup-v2.rst, "Delegation Containment": the writer
needs write access to cgroup.procs of the source's and destination's common
ancestor).

Where the container's cgroup goes: the calling process sits in a leaf L. The
"no internal processes" rule forbids enabling controllers in a cgroup that
holds processes, so the container's cgroup is made beside L, in its parent
P, when P is delegated (the layout systemd keeps itself: under
user@UID.service/app.slice each unit is a leaf beside the others, all the
user's), with P's missing controllers enabled if P offers them. pycontain never moves the
caller (podman's MoveUnderCgroupSubtree does): a library must not change its
caller's cgroup behind its back. A cgroup_parent goes below P.

cgroup v1 has no safe delegation (a v1 directory owned by a user still sits
in a hierarchy whose limits only root may set; runc refuses rootless v1 limits,
podman drops them with a warning): refuse_v1() says so before anything is made.
"""
from __future__ import annotations

import errno
import os

from .base import CgroupNotDelegated, Layout, hierarchy_path, own_cgroups
from . import _files as F
from .limits import Limits

# Of what systemd's delegation hands the user (systemd.resource-control(5),
# Delegate=), what pycontain needs: cgroup.threads (threaded subtrees) it does not use.
DELEGATED_FILES = ("cgroup.procs", "cgroup.subtree_control")
HOW_TO_DELEGATE = ("e.g. run it under systemd-run --user -p Delegate=yes, with the controllers listed in "
                   "Delegate= of /etc/systemd/system/user@.service.d/delegate.conf")


def refuse_v1(limits: Limits):
    """The one-line error for a rootless container that wants a cgroup on v1."""
    asked = limits.asked()
    raise CgroupNotDelegated(
        errno.EPERM,
        "rootless containers cannot use cgroup limits on cgroup v1: the kernel cannot hand a v1 cgroup to a "
        f"user safely{' (asked for: ' + ', '.join(asked) + ')' if asked else ''}; drop them, or run on a "
        "cgroup v2 machine with a cgroup delegated to you (systemd: Delegate=yes)")


def is_delegated(path: str) -> bool:
    """True when this user may make children of cgroup `path`, enable its
    controllers for them and move processes into them."""
    return all(os.access(p, os.W_OK, effective_ids=True)
               for p in (path, *(path + "/" + f for f in DELEGATED_FILES)))


def delegated_cgroup(lay: Layout) -> str:
    """The delegated cgroup a rootless container's cgroup is made in: the
    parent of the caller's. Raises CgroupNotDelegated saying why there is none."""
    mountpoint = lay.v2[0]
    own = hierarchy_path(lay.v2, own_cgroups().get("", "/"))
    uid = os.geteuid()
    top = os.path.dirname(own) if len(own) > len(mountpoint) else None
    if top is not None and is_delegated(top):
        return top
    if is_delegated(own):
        raise CgroupNotDelegated(
            errno.EBUSY,
            f"the cgroup delegated to uid {uid}, {own}, holds this process, and cgroup v2 lets a cgroup with "
            "processes give no controller to a child: start pycontain in a leaf cgroup inside it (as systemd "
            "puts a service's processes in a scope below it)")
    raise CgroupNotDelegated(
        errno.EACCES,
        f"rootless containers get a cgroup only inside one delegated to the user, and uid {uid} may not "
        f"manage {top or own}, the parent of its cgroup {own}: delegate it ({HOW_TO_DELEGATE}), or drop the limits")


def describe(lay: Layout) -> str:
    """One line for `pycontain info`, run by a user who is not root."""
    if lay.driver != "v2":
        return "no (rootless containers get cgroups only on cgroup v2, inside a cgroup delegated to the user)"
    try:
        top = delegated_cgroup(lay)
    except CgroupNotDelegated as e:
        return f"no ({e})"
    return f"yes, in {top} (controllers: {_offered(top) or 'none'})"


def _offered(cgroup: str) -> str:
    return " ".join(sorted((F.read(cgroup + "/cgroup.controllers") or "").split()))


def container_parent(limits: Limits, required: set, lay: Layout) -> tuple:
    """(directory to make the container's cgroup in, the delegated cgroup it is
    under: the highest one pycontain may write). Raises CgroupNotDelegated when
    there is none, or a controller the limits need is not delegated."""
    top = delegated_cgroup(lay)
    uid = os.geteuid()
    offered = set(_offered(top).split())
    missing = sorted(required - offered)
    if missing:
        raise CgroupNotDelegated(
            errno.EOPNOTSUPP,
            f"the {', '.join(missing)} controller{'s are' if len(missing) > 1 else ' is'} not delegated to uid "
            f"{uid} ({top} offers {' '.join(sorted(offered)) or 'none'}): add {' '.join(missing)} to the "
            f"delegation ({HOW_TO_DELEGATE}), or drop the limits that need {'them' if len(missing) > 1 else 'it'}")
    parent = limits.cgroup_parent
    if parent is None:
        return top, top
    if parent.startswith("/"):
        under = hierarchy_path(lay.v2, parent)
        if not under.startswith(top + "/"):
            raise CgroupNotDelegated(errno.EACCES, f"cgroup_parent {parent} is outside the cgroup delegated to "
                                                   f"uid {uid} ({top}): give one inside it, or a relative one")
        return under, top
    return top + "/" + parent, top
