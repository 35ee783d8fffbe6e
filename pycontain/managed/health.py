"""Health checks of managed containers, docker's way.

A container's health check is docker's Healthcheck: {"Test": ["CMD", arg...]
| ["CMD-SHELL", "command"] | ["NONE"], "Interval", "Timeout", "StartPeriod"
(nanoseconds), "Retries"}, given at create or taken from the image (a given
one's zero fields take the image's values, as docker merges them). The
record keeps the result in its config ("healthcheck").

One probe (probe()) runs the check's command in the running container
through the exec path (managed/execute.py) with its timeout, and updates the
container's health, kept beside its record in `health.json` of its
directory: Status starting|healthy|unhealthy, FailingStreak, and the Log of
the last 5 results (Start, End, ExitCode, Output). docker's rules: a success
is healthy; failures count only once the start period is over (or the
container was healthy once), and `Retries` failures in a row are unhealthy.
A change of status is a "health_status: STATUS" event.

The monitor runs a probe every Interval while its container runs: the
Python monitor in a thread (Prober), a monitor in another language with

    python -m pycontain.managed.health STORE_ROOT ID
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

from .. import events
from .._paths import containers_dir
from ..errors import ConfigError, ContainerError, ContainerTimeout
from ..logs import rfc3339nano
from ..state import NoSuchContainer, Store, process_alive, shared_store

SECOND = 1_000_000_000
DEFAULT_INTERVAL = 30 * SECOND     # docker's defaults for a zero field
DEFAULT_TIMEOUT = 30 * SECOND
DEFAULT_START_PERIOD = 0
DEFAULT_RETRIES = 3
MIN_DURATION = 1_000_000           # docker refuses a non-zero duration under 1 ms
LOG_ENTRIES = 5
MAX_OUTPUT = 4096
FILE_NAME = "health.json"

STARTING, HEALTHY, UNHEALTHY = "starting", "healthy", "unhealthy"
_DURATIONS = ("Interval", "Timeout", "StartPeriod", "StartInterval")


def check(hc) -> dict | None:
    """A Healthcheck dict as given (library, API, CLI), checked: its keys
    and types, docker's limits. Returns it with only its non-zero fields."""
    if hc is None:
        return None
    if not isinstance(hc, dict):
        raise ConfigError("healthcheck must be a dict in docker's Healthcheck shape (Test, Interval, ...)")
    unknown = set(hc) - {"Test", "Retries", *_DURATIONS}
    if unknown:
        raise ConfigError(f"healthcheck: unknown field {sorted(unknown)[0]!r} "
                          "(Test, Interval, Timeout, StartPeriod, StartInterval, Retries)")
    out = {}
    test = hc.get("Test")
    if test:
        if not isinstance(test, list) or not all(isinstance(a, str) for a in test):
            raise ConfigError("healthcheck Test must be a list of strings")
        if test[0] not in ("NONE", "CMD", "CMD-SHELL"):
            raise ConfigError(f"healthcheck Test must start with CMD, CMD-SHELL or NONE, not {test[0]!r}")
        if test[0] != "NONE" and len(test) < 2:
            raise ConfigError(f"healthcheck Test {test[0]} needs a command")
        if test[0] == "CMD-SHELL" and len(test) != 2:
            raise ConfigError("healthcheck Test CMD-SHELL takes one string, the shell command")
        out["Test"] = list(test)
    for key in _DURATIONS:
        value = hc.get(key) or 0
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"healthcheck {key} must be a whole number of nanoseconds")
        if value < 0:
            raise ConfigError(f"{key} in Healthcheck cannot be negative")
        if 0 < value < MIN_DURATION:
            raise ConfigError(f"{key} in Healthcheck cannot be less than 1ms")
        if value:
            out[key] = value
    retries = hc.get("Retries") or 0
    if not isinstance(retries, int) or isinstance(retries, bool):
        raise ConfigError("healthcheck Retries must be a whole number")
    if retries < 0:
        raise ConfigError("Retries in Healthcheck cannot be negative")
    if retries:
        out["Retries"] = retries
    return out


def merge(given: dict | None, image: dict | None) -> dict | None:
    """docker's merge of the container's Healthcheck with the image's: none
    given, the image's; else each zero field of the given one takes the image's."""
    if not image:
        return given
    if given is None:
        return dict(image)
    out = dict(given)
    for key in ("Test", "Retries", *_DURATIONS):
        if not out.get(key) and image.get(key):
            out[key] = image[key]
    return out


def active(hc: dict | None) -> bool:
    """True when the check runs: a Test other than NONE."""
    return bool(hc and hc.get("Test") and hc["Test"][0] != "NONE")


def command(hc: dict) -> list:
    test = hc["Test"]
    return ["/bin/sh", "-c", test[1]] if test[0] == "CMD-SHELL" else list(test[1:])


def interval_seconds(hc: dict) -> float:
    return (hc.get("Interval") or DEFAULT_INTERVAL) / SECOND


def healthcheck_of(rec) -> dict | None:
    return rec.config.get("healthcheck")


# ---- the recorded health --------------------------------------------------------------------


def _path(root, cid: str):
    return containers_dir(Path(root) if root else None) / cid / FILE_NAME


def _read(root, cid: str) -> dict:
    try:
        with open(_path(root, cid)) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write(root, cid: str, data: dict) -> None:
    """Whole or not at all: readers (inspect, ps) never see half a file."""
    path = _path(root, cid)
    tmp = path.with_name(f".{FILE_NAME}.{os.getpid()}.{threading.get_ident()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, json.dumps(data).encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _of_this_run(saved: dict, rec) -> dict:
    """The saved health if it belongs to the container's current run, else
    a fresh start (docker: each start is "starting" again; the log stays)."""
    if saved.get("run") == rec.started and saved.get("Status"):
        return saved
    return {"run": rec.started, "Status": STARTING, "FailingStreak": 0, "Log": list(saved.get("Log") or [])}


def state(root, rec) -> dict | None:
    """docker inspect's State.Health: None without an active check or
    before the first start. As docker's: once the container stops (or is
    paused) and its checks with it, the status is unhealthy."""
    if not active(healthcheck_of(rec)) or rec.started is None:
        return None
    health = _of_this_run(_read(root, rec.id), rec)
    status = health["Status"] if rec.state == "running" else UNHEALTHY
    return {"Status": status, "FailingStreak": health["FailingStreak"], "Log": health["Log"]}


def status(root, rec) -> str | None:
    """The status ps shows and filters on (None: no health check)."""
    h = state(root, rec)
    return h["Status"] if h else None


# ---- one probe -------------------------------------------------------------------------------


def probe(store: Store, cid: str) -> dict | None:
    """Runs the container's health check once and records the result.
    Returns the new State.Health, None when there is nothing to check (no
    active check, the container not running, or gone meanwhile)."""
    try:
        rec = store.get(cid)
    except NoSuchContainer:
        return None
    hc = healthcheck_of(rec)
    if not active(hc) or rec.state != "running":
        return None
    # Imported here: the exec path brings the cgroups package and ctypes
    # (~10 ms of imports) to ps, which only reads a health status.
    from .execute import run_in

    timeout = (hc.get("Timeout") or DEFAULT_TIMEOUT) / SECOND
    start = time.time_ns()
    try:
        result = run_in(rec, command(hc), timeout=timeout)
        code = result.returncode
        output = (result.stdout + result.stderr).decode("utf-8", "replace")
    except ContainerTimeout:
        code, output = -1, f"Health check exceeded timeout ({_go_duration(hc.get('Timeout') or DEFAULT_TIMEOUT)})"
    except ContainerError as e:   # the command could not start (not found...)
        code, output = -1, str(e)
    end = time.time_ns()
    try:
        now = store.get(cid)
    except NoSuchContainer:
        return None
    if now.state != "running" or now.started != rec.started or not _running(rec):
        # it stopped (or restarted) under the probe (its monitor may not have
        # recorded the exit yet): the result is of no run
        return None
    health = _of_this_run(_read(store.root, cid), rec)
    old = health["Status"]
    health["Log"] = (health["Log"] + [{"Start": rfc3339nano(start), "End": rfc3339nano(end), "ExitCode": code,
                                       "Output": output[:MAX_OUTPUT]}])[-LOG_ENTRIES:]
    if code == 0:
        health["FailingStreak"] = 0
        health["Status"] = HEALTHY
    else:
        start_period = hc.get("StartPeriod") or DEFAULT_START_PERIOD
        # failures during the start period do not count while it is starting
        if not (old == STARTING and start - int(rec.started * SECOND) < start_period):
            health["FailingStreak"] += 1
            if health["FailingStreak"] >= (hc.get("Retries") or DEFAULT_RETRIES):
                health["Status"] = UNHEALTHY
    _write(store.root, cid, health)
    if health["Status"] != old:
        events.container_event(store.root, rec, "health_status: " + health["Status"])
    return {"Status": health["Status"], "FailingStreak": health["FailingStreak"], "Log": health["Log"]}


PF_EXITING = 0x4   # include/linux/sched.h: the task is in do_exit()


def _running(rec) -> bool:
    """The container's init is alive and not exiting. (An exiting init waits,
    in the kernel, until the probe's killed process is reaped: it is neither
    gone nor a zombie when the probe comes back, only PF_EXITING says so.)"""
    if not process_alive(rec.pid, rec.pid_start):
        return False
    try:
        with open(f"/proc/{rec.pid}/stat", "rb") as f:
            flags = int(f.read().rsplit(b")", 1)[1].split()[6])
    except (OSError, IndexError, ValueError):
        return False
    return not flags & PF_EXITING


def _go_duration(ns: int) -> str:
    """Go's Duration.String() for the whole seconds and milliseconds health checks use."""
    if ns % SECOND == 0:
        return f"{ns // SECOND}s"
    if ns < SECOND:
        return f"{ns / 1e6:g}ms"
    return f"{ns / SECOND:g}s"


class Prober:
    """The Python monitor's probes: a thread that runs one probe every
    interval while the container runs (start() after the launch, stop()
    once it exited)."""

    def __init__(self, store: Store, cid: str, hc: dict):
        self.store, self.cid, self.interval = store, cid, interval_seconds(hc)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"health {cid[:12]}", daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(self.interval):
            try:
                probe(self.store, self.cid)
            except Exception as e:  # noqa: BLE001  a failed probe must not end the monitor
                print(f"pycontain: health check of {self.cid[:12]}: {e!r}", file=sys.stderr)

    def stop(self):
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()


def main(argv) -> int:
    """python -m pycontain.managed.health STORE_ROOT ID: one probe."""
    if len(argv) != 2:
        print("usage: python -m pycontain.managed.health STORE_ROOT ID", file=sys.stderr)
        return 2
    try:
        probe(shared_store(argv[0]), argv[1])
    except ContainerError as e:
        print(f"pycontain: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
