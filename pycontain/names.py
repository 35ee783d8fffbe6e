"""docker's rule for the names users give containers, volumes and networks.

One rule, written once: a letter or digit, then at least one more letter,
digit, '_', '.' or '-' (docker's RestrictedNamePattern).
"""
from __future__ import annotations

import re

from .errors import ConfigError

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


def is_valid(name) -> bool:
    return isinstance(name, str) and bool(NAME_RE.match(name))


def check(kind: str, name) -> str:
    """name, if it follows the rule; else ConfigError in docker's words."""
    if not is_valid(name):
        raise ConfigError(f'invalid {kind} name "{name}", only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed')
    return name


def check_volume(name) -> str:
    """The same rule for a local volume, in docker's words for volumes (a
    relative path given as a -v source lands here)."""
    if not is_valid(name):
        raise ConfigError(f'invalid volume name "{name}": only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed '
                          "(at least two characters). If you intended to pass a host directory, "
                          "use an absolute path")
    return name
