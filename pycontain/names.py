"""docker's rule for the names users give containers, volumes and networks.

One rule, written once: a letter or digit, then at least one more letter,
digit, '_', '.' or '-' (docker's RestrictedNamePattern). Like docker, no
length limit: a name is not the hostname (that is the id's first 12
characters), and every length that passes here starts. Errors quote a
short prefix of what was given (quoted(): a 10,000-character name is not
repeated back).
"""
from __future__ import annotations

import re

from .errors import ConfigError

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


def is_valid(name) -> bool:
    return isinstance(name, str) and bool(NAME_RE.match(name))


QUOTE_MAX = 64


def quoted(name) -> str:
    """name for an error message: whole when short, else a prefix and its length."""
    text = name if isinstance(name, str) else repr(name)
    if len(text) <= QUOTE_MAX:
        return text
    return f"{text[:QUOTE_MAX]}... ({len(text)} characters)"


def check(kind: str, name) -> str:
    """name, if it follows the rule; else ConfigError in docker's words."""
    if not is_valid(name):
        raise ConfigError(f'invalid {kind} name "{quoted(name)}", only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed')
    return name


def check_volume(name) -> str:
    """The same rule for a local volume, in docker's words for volumes (a
    relative path given as a -v source lands here)."""
    if not is_valid(name):
        raise ConfigError(f'invalid volume name "{quoted(name)}": only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed '
                          "(at least two characters). If you intended to pass a host directory, "
                          "use an absolute path")
    return name
