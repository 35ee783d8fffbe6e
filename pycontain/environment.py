"""A container's environment as a list of "K=V": what a caller gives, and
layers merged key by key. Apart from config.py so that exec (the CLI's, the
API's, the OCI runtime's) does not load the configuration's validation."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from .errors import ConfigError


def normalize_env(env) -> list[str]:
    """A dict or a sequence of "K=V" becomes a list of "K=V"."""
    if env is None:
        return []
    items = env.items() if isinstance(env, Mapping) else None
    out = []
    if items is not None:
        for k, v in items:
            out.append(f"{k}={v}")
    else:
        for e in env:
            if not isinstance(e, str) or "=" not in e:
                raise ConfigError(f"environment entry {e!r} is not of the form KEY=VALUE")
            out.append(e)
    for e in out:
        k = e.split("=", 1)[0]
        if not k or "\0" in e:
            raise ConfigError(f"invalid environment entry {e!r}")
    return out


def merge_env(*layers: Sequence[str]) -> list[str]:
    """Later layers override earlier ones, key by key, keeping first-seen order."""
    merged: dict[str, str] = {}
    for layer in layers:
        for e in layer:
            k, _, v = e.partition("=")
            merged[k] = v
    return [f"{k}={v}" for k, v in merged.items()]
