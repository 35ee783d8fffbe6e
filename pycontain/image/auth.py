"""Registry credentials: pycontain login's own file, then docker's config.json.

Both use docker's format: {"auths": {"HOST": {"auth": base64("user:password")}}}.
pycontain's file: $PYCONTAIN_AUTH_FILE, else $XDG_CONFIG_HOME/pycontain/auth.json
(~/.config/pycontain/auth.json), written 0600. Docker's: $DOCKER_CONFIG/config.json
or ~/.docker/config.json, only read (credential helpers are not supported).
"""
from __future__ import annotations

import base64
import json
import os
import tempfile
from pathlib import Path

from ..errors import ConfigError

DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")


def auth_file() -> Path:
    env = os.environ.get("PYCONTAIN_AUTH_FILE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "pycontain" / "auth.json"


def docker_config_file() -> Path:
    base = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return Path(base) / "config.json"


def _keys(registry: str):
    return DOCKER_HUB_KEYS if registry in DOCKER_HUB_KEYS else (registry, f"https://{registry}", f"http://{registry}")


def _read(path: Path) -> dict:
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read credentials from {path}: {e}") from None
    return data if isinstance(data, dict) else {}


def lookup(registry: str):
    """(user, password) for registry, or None."""
    for path in (auth_file(), docker_config_file()):
        auths = _read(path).get("auths") or {}
        for k in _keys(registry):
            entry = auths.get(k)
            if entry and entry.get("auth"):
                try:
                    user, _, pw = base64.b64decode(entry["auth"]).decode().partition(":")
                except (ValueError, UnicodeDecodeError):
                    raise ConfigError(f"malformed credentials for {registry} in {path}") from None
                return user, pw
            if entry and entry.get("username"):
                return entry["username"], entry.get("password", "")
    return None


def _write(data: dict):
    path = auth_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".auth-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def save(registry: str, user: str, password: str):
    data = _read(auth_file())
    key = DOCKER_HUB_KEYS[0] if registry in DOCKER_HUB_KEYS else registry
    data.setdefault("auths", {})[key] = {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
    _write(data)


def remove(registry: str) -> bool:
    data = _read(auth_file())
    auths = data.get("auths") or {}
    gone = [k for k in _keys(registry) if k in auths]
    for k in gone:
        del auths[k]
    if gone:
        _write(data)
    return bool(gone)
