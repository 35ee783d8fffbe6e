"""docker diff: what a container's writable layer changed in its image."""
from __future__ import annotations

import os
import stat

# what the engine itself puts in every container (docker keeps these in an
# init layer below the container's own, so its diff never lists them)
_ENGINE_MADE = {"dev", "proc", "sys", "etc/hostname", "etc/hosts", "etc/resolv.conf", ".pycontain"}


def layer_changes(upper, lowers) -> list:
    """[(kind, path)], kind A (added), C (changed) or D (deleted), from the
    overlay upper directory against the lower directories below it."""
    out = []

    def below(rel):
        return any(os.path.lexists(os.path.join(low, rel)) for low in lowers)

    for dirpath, dirnames, filenames in os.walk(upper):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, upper)
            if rel in _ENGINE_MADE or rel.split("/", 1)[0] in ("dev", "proc", "sys"):
                continue
            st = os.lstat(full)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:   # an overlay whiteout
                out.append(("D", "/" + rel))
            else:
                out.append(("C" if below(rel) else "A", "/" + rel))
    return sorted(out, key=lambda e: e[1])
