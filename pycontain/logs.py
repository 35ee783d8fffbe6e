"""Container logs in docker's json-file format, with size-based rotation.

One JSON object per line: {"log": "text\\n", "stream": "stdout", "time":
"2024-05-01T10:00:00.123456789Z"}. The current file is <id>-json.log; when it
reaches max-size it becomes .1 (older ones shift up, the oldest beyond
max-file is dropped), as docker's json-file driver does.
"""
from __future__ import annotations

import errno
import json
import os
import re
import time
from datetime import datetime, timezone

from .errors import ConfigError

# docker keeps a partial line until it grows to this size
MAX_LINE = 16 * 1024
_SIZE_RE = re.compile(r"^(\d+)([kmg]?)b?$", re.I)


def parse_log_opts(opts) -> dict:
    """--log-opt max-size=10m / max-file=3 → {"max-size": bytes, "max-file": n}."""
    out = {}
    for o in opts or ():
        key, sep, val = o.partition("=")
        if not sep:
            raise ConfigError(f"invalid log option {o!r}: expected KEY=VALUE")
        if key == "max-size":
            m = _SIZE_RE.match(val.strip())
            if not m or int(m.group(1)) <= 0:
                raise ConfigError(f"invalid max-size {val!r}: expected a positive size like 10k, 10m or 1g")
            out[key] = int(m.group(1)) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[m.group(2).lower()]
        elif key == "max-file":
            if not val.isdigit() or int(val) < 1:
                raise ConfigError(f"invalid max-file {val!r}: expected a positive number")
            out[key] = int(val)
        else:
            raise ConfigError(f"unknown log option {key!r} for the json-file log driver (max-size, max-file)")
    if "max-file" in out and out["max-file"] > 1 and "max-size" not in out:
        raise ConfigError("max-file cannot be set without max-size")
    return out


def rfc3339nano(ns: int) -> str:
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def parse_time(text: str) -> float:
    """RFC 3339 (nanoseconds allowed) → seconds since the epoch."""
    main, _, rest = text.rstrip("Z").partition(".")
    t = datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    return t + (float("0." + rest) if rest else 0.0)


def parse_since(value: str, now: float | None = None) -> float:
    """docker's --since: a Unix timestamp, an RFC 3339 time or a duration (10s, 5m, 2h)."""
    now = time.time() if now is None else now
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", value)
    if m:
        return now - float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return parse_time(value)
    except ValueError:
        raise ConfigError(f"invalid --since {value!r}: a duration (10m), a Unix time or RFC 3339") from None


def _incomplete_utf8_tail(data: bytes) -> int:
    """How many bytes at the end of data begin a UTF-8 character not yet whole."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 != 0x80:   # a lead byte (or ASCII): how long its character is
            need = 2 if byte & 0xE0 == 0xC0 else 3 if byte & 0xF0 == 0xE0 else 4 if byte & 0xF8 == 0xF0 else 1
            return back if need > back else 0
    return 0


class JsonFileWriter:
    """Written by the container's monitor only (one writer per file)."""

    def __init__(self, path: str, max_size: int | None = None, max_file: int = 1):
        self.path = path
        self.max_size = max_size
        self.max_file = max_file
        self.f = open(path, "ab", buffering=0)
        self.size = self.f.tell()
        self.partial = {"stdout": b"", "stderr": b""}
        self.dropped = 0         # lines lost to a full disk since the last one written
        self.dropped_total = 0

    def write(self, stream: str, data: bytes):
        buf = self.partial[stream] + data
        lines = buf.split(b"\n")
        rest = lines.pop()
        for line in lines:
            self._entry(stream, line + b"\n")
        while len(rest) >= MAX_LINE:
            self._entry(stream, rest[:MAX_LINE])
            rest = rest[MAX_LINE:]
        self.partial[stream] = rest

    def flush_partial(self, whole_characters=False):
        """What is left of each stream's line becomes an entry. With
        whole_characters a trailing incomplete UTF-8 sequence waits for its
        next bytes (a terminal's prompt is logged at once, an é is not cut)."""
        for stream, rest in self.partial.items():
            keep = _incomplete_utf8_tail(rest) if whole_characters else 0
            if len(rest) > keep:
                self._entry(stream, rest[:len(rest) - keep])
                self.partial[stream] = rest[len(rest) - keep:]

    def _entry(self, stream, data: bytes):
        if self.dropped:   # space is back: say first what was lost (docker's logs would show nothing)
            note = f"pycontain: {self.dropped} log lines dropped: no space left on device\n".encode()
            if not self._write_line("stderr", note):
                self.dropped += 1
                self.dropped_total += 1
                return
            self.dropped = 0
        if not self._write_line(stream, data):
            self.dropped += 1
            self.dropped_total += 1

    def _write_line(self, stream, data: bytes) -> bool:
        """One entry, whole or not at all. A full disk (or quota) drops the
        line instead of stopping the container that logs it."""
        line = json.dumps({"log": data.decode("utf-8", "replace"), "stream": stream,
                           "time": rfc3339nano(time.time_ns())}, ensure_ascii=False).encode() + b"\n"
        try:
            n = self.f.write(line)
            if n != len(line):
                raise OSError(errno.ENOSPC, "short write")
        except OSError as e:
            if e.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                raise
            try:   # no half entry stays behind (truncating needs no space)
                os.ftruncate(self.f.fileno(), self.size)
            except OSError:
                pass
            return False
        self.size += len(line)
        if self.max_size and self.size >= self.max_size:
            self._rotate()
        return True

    def _rotate(self):
        self.f.close()
        if self.max_file <= 1:
            self.f = open(self.path, "wb", buffering=0)
        else:
            for n in range(self.max_file - 1, 0, -1):
                older = f"{self.path}.{n}"
                if os.path.exists(older):
                    if n + 1 < self.max_file:
                        os.replace(older, f"{self.path}.{n + 1}")
                    else:
                        os.unlink(older)
            os.replace(self.path, f"{self.path}.1")
            self.f = open(self.path, "ab", buffering=0)
        self.size = 0

    def close(self):
        self.flush_partial()
        self.f.close()


def log_files(path: str) -> list[str]:
    """Rotated files oldest first, then the current one."""
    rotated = []
    n = 1
    while os.path.exists(f"{path}.{n}"):
        rotated.append(f"{path}.{n}")
        n += 1
    return list(reversed(rotated)) + ([path] if os.path.exists(path) else [])


def parse_entry(line: bytes):
    try:
        e = json.loads(line)
        return e["stream"], e["log"], e["time"]
    except (ValueError, KeyError, TypeError):
        return None


def _entries(lines, since):
    for line in lines:
        if line.endswith(b"\n"):
            e = parse_entry(line)
            if e and (since is None or parse_time(e[2]) >= since):
                yield e


def read_entries(path: str, since: float | None = None, tail: int | None = None):
    """The (stream, text, time) entries written so far."""
    entries = []
    for name in log_files(path):
        try:
            with open(name, "rb") as f:
                entries.extend(_entries(f, since))
        except FileNotFoundError:  # rotated away while we read
            continue
    if tail is not None:
        entries = entries[-tail:] if tail > 0 else []
    return entries


def follow_entries(path: str, still_running, since: float | None = None, tail: int | None = None,
                   poll: float = 0.05):
    """The entries so far, then new ones as they are written, until
    still_running() says the container ended and everything was read.
    A rotation (the file replaced by a new one) is noticed by its inode.

    The current file is opened now, before the first entry is asked for,
    and made if the container has not written yet: nothing written after
    this call is missed, even when the container then ends and is removed
    (docker run --rm) before the caller reads."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o640)
    except FileNotFoundError:  # its directory is gone: removed
        f = None
    else:
        f = os.fdopen(fd, "rb")
    return _follow(f, path, still_running, since, tail, poll)


def _follow(f, path, still_running, since, tail, poll):
    try:
        entries = []
        for name in log_files(path):
            if name == path:
                continue
            try:
                with open(name, "rb") as old:
                    entries.extend(_entries(old, since))
            except FileNotFoundError:
                continue
        pending = b""
        if f is not None:
            *lines, pending = f.read().split(b"\n")
            entries.extend(_entries((line + b"\n" for line in lines), since))
        if tail is not None:
            entries = entries[-tail:] if tail > 0 else []
        yield from entries
        while True:
            running = still_running()
            got = False
            if f is not None:
                chunk = f.read()
                if chunk:
                    got = True
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    yield from _entries((line + b"\n" for line in lines), since)
            try:
                st = os.stat(path)
                if f is None or st.st_ino != os.fstat(f.fileno()).st_ino:
                    if f is not None and not got:
                        f.close()
                        f, pending = open(path, "rb"), b""
                        continue
                    if f is None:
                        f, pending = open(path, "rb"), b""
                        continue
            except FileNotFoundError:
                pass
            if not got:
                if not running:
                    return
                time.sleep(poll)
    finally:
        if f is not None:
            f.close()
