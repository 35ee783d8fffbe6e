"""pycontain-runc update: new limits for a created, running or paused
container, as runc's: `--resources FILE|-` (OCI linux.resources JSON) and/or
the flags, a value absent or 0 leaving one as it is. The limits in force are
in the state directory; the container's cgroup changes all or nothing
(Cgroup.update) and the state keeps the new ones."""
from __future__ import annotations

import json
import sys

from ..cgroups.limits import parse_bytes
from ..config import limits_from_record, limits_json, oci_limits
from ..detached import detached_cgroup
from ..errors import ConfigError
from . import state as S
from .ops import Log
from .state import OciError, StateDir

# resources.X runc takes and this runtime cannot honour: refused by name
_UNSUPPORTED = (("memory", "kernel"), ("memory", "kernelTCP"), ("memory", "swappiness"),
                ("cpu", "realtimeRuntime"), ("cpu", "realtimePeriod"), ("network", None), ("rdma", None),
                ("blockIO", "weightDevice"), ("blockIO", "leafWeight"))

def _read_resources(source: str) -> dict:
    try:
        if source == "-":
            data = json.load(sys.stdin)
        else:
            with open(source, "rb") as f:
                data = json.load(f)
    except OSError as e:
        raise OciError(f"--resources {source}: {e.strerror}") from None
    except (ValueError, RecursionError) as e:
        raise OciError(f"--resources {source}: not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise OciError(f"--resources {source}: expected a JSON object")
    return data


def resources_of(args, flags, refused_flags) -> dict:
    """The resources to apply: the file's, then each flag given on top (runc's
    order). flags: (option, resources object, key, "int"|"str"|"bytes") for each
    flag; refused_flags: the options runc has that this runtime refuses."""
    resources = _read_resources(args.resources) if args.resources else {}
    for option in refused_flags:
        if getattr(args, option) not in (None, "", "0"):
            raise OciError(f"--{option.replace('_', '-')} is not supported")
    for option, obj, key, kind in flags:
        text = getattr(args, option)
        if text is None:
            continue
        try:
            if kind == "bytes":
                value = -1 if text.strip() == "-1" else parse_bytes(text, option.replace("_", "-"))
            else:
                value = int(text) if kind == "int" else text
        except (ValueError, ConfigError):
            raise OciError(f"invalid value for --{option.replace('_', '-')}: {text!r}") from None
        sub = resources.setdefault(obj, {})
        if not isinstance(sub, dict):
            raise OciError(f"resources.{obj}: must be an object")
        sub[key] = value
    for obj, key in _UNSUPPORTED:
        sub = resources.get(obj)
        value = sub if key is None else (sub.get(key) if isinstance(sub, dict) else None)
        if value not in (None, 0, "", [], {}):
            raise OciError(f"resources.{obj}{'.' + key if key else ''}: updating it is not supported")
    return resources


def update(args, log: Log, flags, refused_flags) -> int:
    resources = resources_of(args, flags, refused_flags)
    with StateDir(args.root, args.id) as sd:
        st = sd.load()
        if S.status(st) == "stopped":
            raise OciError("container not running")
        old = limits_from_record(st.get("resources"))
        try:
            new = oci_limits(resources, old, where="resources.")
        except ConfigError as e:
            raise OciError(str(e).removeprefix("config.json: ")) from None
        cg = detached_cgroup(st["held"])
        if cg is None:
            raise OciError(f"container {sd.id} has no cgroup")
        if new != old:
            cg.update(old, new)
            st["resources"] = limits_json(new)
            sd.save(st)
    log.debug(f"updated {args.id}")
    return 0
