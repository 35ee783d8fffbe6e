"""The events log: docker's event messages, one JSON object a line, in
`<store root>/events.jsonl`.

Every process that changes something (a CLI verb, a monitor, the Engine API
service, the C monitor) appends its own lines: the file is opened O_APPEND
and each line goes out in one write(), so lines of concurrent writers never
mix. A line is docker's message without its legacy fields:

    {"Type": "container", "Action": "die", "Actor": {"ID": cid, "Attributes":
     {"name": .., "image": .., "exitCode": ".."}}, "scope": "local",
     "time": SEC, "timeNano": NS}

The file is bounded: past MAX_BYTES the next writer renames it to
events.jsonl.1 (the one older file kept), under a lock so that two writers
never rotate twice. Readers (`pycontain events`, the Engine API's /events)
replay both files and then follow the current one.
"""
from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path

FILE_NAME = "events.jsonl"
MAX_BYTES = 4 * 1024 * 1024      # then rotated: at most twice this on disk
FOLLOW_POLL = 0.05               # seconds between looks at the file while following

# docker's event types and the legacy fields ("status", "id", "from") its API
# still sends for containers and images
TYPES = ("container", "image", "volume", "network", "daemon", "plugin", "service", "node", "secret", "config")


def log_path(root) -> Path:
    return Path(root) / FILE_NAME


def append(root, type_: str, action: str, actor_id: str, attributes: dict | None = None) -> None:
    """Appends one event. Never raises for the log's sake: an event that
    cannot be written (a full disk, a removed store) is dropped, the action
    it reports stands."""
    t = time.time_ns()
    line = json.dumps({"Type": type_, "Action": action,
                       "Actor": {"ID": actor_id, "Attributes": {k: str(v) for k, v in (attributes or {}).items()}},
                       "scope": "local", "time": t // 10**9, "timeNano": t}, separators=(",", ":")) + "\n"
    path = log_path(root)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return
    try:
        if os.fstat(fd).st_size >= MAX_BYTES:
            fd = _rotate(path, fd)
        os.write(fd, line.encode())
    except OSError:
        pass
    finally:
        os.close(fd)


def _rotate(path: Path, fd: int) -> int:
    """Moves a full log aside (one writer does it: the lock, and the check
    that the path still names the file we opened) and returns a descriptor
    of the current file."""
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        st = os.fstat(fd)
        try:
            same = os.stat(path).st_ino == st.st_ino
        except FileNotFoundError:
            same = False
        if same and st.st_size >= MAX_BYTES:
            os.replace(path, str(path) + ".1")
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)


def container_event(root, rec, action: str, **extra) -> None:
    """A container's event, with docker's attributes: its name, its image
    as given, its labels, and extra (exitCode, signal, oldName...)."""
    attrs = dict(rec.config.get("labels") or {})
    attrs.update(image=rec.image, name=rec.name)
    attrs.update(extra)
    append(root, "container", action, rec.id, attrs)


# ---- reading ------------------------------------------------------------------------------


def with_legacy_fields(event: dict) -> dict:
    """docker's API message: the legacy status/id/from of container and image events first."""
    if event.get("Type") not in ("container", "image"):
        return event
    actor = event.get("Actor") or {}
    legacy = {"status": event.get("Action"), "id": actor.get("ID")}
    if event.get("Type") == "container":
        legacy["from"] = (actor.get("Attributes") or {}).get("image", "")
    return dict(legacy, **event)


class Filter:
    """docker's event filters: container (id, id prefix or name), event
    (health_status, exec_create, exec_start match as prefixes), type, label
    (KEY or KEY=VALUE), image, volume, network. Values of one key: any;
    different keys: all."""

    KEYS = ("container", "event", "type", "label", "image", "volume", "network")

    def __init__(self, filters: dict | None = None):
        self.filters = {k: list(v) if isinstance(v, (list, tuple)) else [v] for k, v in (filters or {}).items()}
        for key in self.filters:
            if key not in self.KEYS:
                raise ValueError(f"invalid filter '{key}'")

    def __call__(self, event: dict) -> bool:
        actor = event.get("Actor") or {}
        attrs = actor.get("Attributes") or {}
        aid = actor.get("ID") or ""
        for key, wants in self.filters.items():
            if key == "type":
                ok = event.get("Type") in wants
            elif key == "event":
                action = event.get("Action") or ""
                ok = any(action == w or (w in ("health_status", "exec_create", "exec_start")
                                         and action.startswith(w + ":")) for w in wants)
            elif key == "label":
                ok = all(_label_matches(attrs, w) for w in wants)
            elif key == "image":
                ok = any(_image_matches(event, w) for w in wants)
            else:   # container, volume, network: that type's events of that actor
                ok = event.get("Type") == key and any(
                    w and (aid == w or aid.startswith(w) or attrs.get("name") == w) for w in wants)
            if not ok:
                return False
        return True


def _label_matches(attrs: dict, want: str) -> bool:
    key, sep, value = want.partition("=")
    return key in attrs and (not sep or attrs[key] == value)


def _image_matches(event: dict, want: str) -> bool:
    actor = event.get("Actor") or {}
    names = {actor.get("ID") or ""} if event.get("Type") == "image" else set()
    names.add((actor.get("Attributes") or {}).get("image", ""))
    names.discard("")
    bare = want.rsplit(":", 1)[0] if ":" in want.rsplit("/", 1)[-1] else want
    return any(n == want or n.rsplit(":", 1)[0] == bare and ":" not in want for n in names)


def _lines(path) -> list:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    return data.split(b"\n")[:-1]   # a last line without its newline is still being written


def _decode(line: bytes):
    try:
        event = json.loads(line)
    except ValueError:
        return None   # a torn or foreign line: skipped, the log is not the reader's to repair
    return event if isinstance(event, dict) and isinstance(event.get("timeNano"), int) else None


def replay(root, since_ns: int | None = None, until_ns: int | None = None, match=None) -> list:
    """The logged events (the rotated file's, then the current's) with
    since_ns <= timeNano <= until_ns that match, oldest first."""
    path = log_path(root)
    found = []
    for p in (str(path) + ".1", path):
        for line in _lines(p):
            event = _decode(line)
            if event is None:
                continue
            t = event["timeNano"]
            if (since_ns is not None and t < since_ns) or (until_ns is not None and t > until_ns):
                continue
            if match is None or match(event):
                found.append(event)
    # a writer that opened the file before a rotation finishes its line in the older one
    found.sort(key=lambda e: e["timeNano"])
    return found


def follow(root, since_ns: int | None = None, until_ns: int | None = None, match=None, poll=FOLLOW_POLL,
           stop=None):
    """Yields the logged events since since_ns (None: from now on), then the
    new ones as they are written, until until_ns (None: for ever) or until
    stop() says so. Between events it yields None every `poll` seconds, so
    that a caller can notice its client went away."""
    path = log_path(root)
    # the file's end is taken first, the replay after: an event logged in
    # between is in both, and the tail leaves out what the replay had
    start_ns = time.time_ns()
    f, inode, pending = _open_at_end(path), None, b""
    try:
        if f is not None:
            inode = os.fstat(f.fileno()).st_ino
        if since_ns is not None:
            last = start_ns - 1 if until_ns is None else min(until_ns, start_ns - 1)
            for event in replay(root, since_ns, last, match):
                yield event
        if until_ns is not None and until_ns < start_ns:
            return
        while until_ns is None or time.time_ns() <= until_ns:
            if stop is not None and stop():
                return
            chunk = f.read() if f is not None else b""
            if chunk:
                pending += chunk
                *complete, pending = pending.split(b"\n")
                for line in complete:
                    event = _decode(line)
                    if event is None or (since_ns is not None and event["timeNano"] < start_ns):
                        continue
                    if until_ns is not None and event["timeNano"] > until_ns:
                        return
                    if match is None or match(event):
                        yield event
                continue
            try:
                now_inode = os.stat(path).st_ino
            except FileNotFoundError:
                now_inode = None
            if now_inode is not None and now_inode != inode:   # rotated (or made): the new file from its start
                if f is not None:
                    f.close()
                f, inode, pending = open(path, "rb"), now_inode, b""
                continue
            yield None
            time.sleep(poll)
    finally:
        if f is not None:
            f.close()


def _open_at_end(path):
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return None
    f.seek(0, os.SEEK_END)
    return f
