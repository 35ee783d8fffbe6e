"""An OCI bundle's hooks (config.json's prestart, createRuntime, poststart,
poststop; config.BundleHook), run in the runtime's namespaces with the
container's state on stdin. Light on purpose: pycontain-runc's start and
delete run the poststart and poststop hooks without the launcher loaded."""
from __future__ import annotations

import json
import subprocess

from .errors import ContainerError


class HookError(ContainerError):
    """A hook failed or outlived its timeout."""


OCI_VERSION = "1.0.2"       # the runtime spec version implemented (the state's ociVersion)


def state_around_pid(state: dict) -> tuple:
    """(head, tail): the state JSON of a hook the container's own process
    runs (createContainer, startContainer), split where its pid goes: that
    process writes the pid it has in the container, as runc does."""
    rest = {k: v for k, v in state.items() if k != "pid"}
    return json.dumps(rest)[:-1] + (", " if rest else "") + '"pid": ', "}"


def run_hooks(hooks, kind: str, state: dict) -> None:
    """Runs the hooks of one kind, in order. hooks: mappings with the fields
    of config.BundleHook (kind, path, args, env, timeout). Raises HookError
    naming the first that fails."""
    data = json.dumps(state).encode()
    for h in hooks:
        if h["kind"] != kind:
            continue
        env = dict(e.split("=", 1) for e in h["env"])
        try:
            r = subprocess.run(list(h["args"]) or [h["path"]], executable=h["path"], input=data, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=h["timeout"],
                               check=False)
        except subprocess.TimeoutExpired:
            raise HookError(f"{kind} hook {h['path']}: did not finish within {h['timeout']} s") from None
        except OSError as e:
            raise HookError(f"{kind} hook {h['path']}: {e.strerror}") from None
        if r.returncode != 0:
            out = r.stdout.decode(errors="replace").strip().replace("\n", " ")[-300:]
            raise HookError(f"{kind} hook {h['path']}: exited with status {r.returncode}" + (f": {out}" if out else ""))
