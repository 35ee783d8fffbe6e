"""Container records: one SQLite database (WAL) under the store root.

Several pycontain processes (CLIs, monitors, Python programs) read and write
these records at once with no daemon between them. SQLite's transactions
keep every record whole: writers take the database lock with BEGIN IMMEDIATE
and wait for each other (busy timeout) instead of failing.

A record also says who looks after the container: its monitor's pid and the
start time of that pid (from /proc/PID/stat, so a reused pid is not taken
for the monitor). A record whose monitor is gone (SIGKILL, reboot) while the
record still says running is marked exited the next time anyone reads it.
"""
from __future__ import annotations

import json
import os
import random
import sqlite3
import threading
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

from ._paths import default_root, private_dir, private_file, tighten_if_present
from ._sqlite import database_error, open_read_only_when_full
from .errors import ContainerError, NoSpace, StoreDamaged
from .names import quoted

STATES = ("created", "running", "paused", "restarting", "exited", "dead")
# States in which a live monitor must exist.
MONITORED = ("running", "paused", "restarting")

# The status the kernel gives a process killed by SIGKILL: what a container
# gets when its monitor dies (the launcher's pdeathsig kills it).
EXIT_MONITOR_LOST = 137
# The error of a created container whose monitor (or foreground run) died before it started it.
MONITOR_LOST_BEFORE_START = "the container's monitor ended before it started the container"
# What the C monitor (src/monitor.c) writes into the container's directory
# when the container ended, before its teardown: {"exit_code", "finished_ns",
# "oom_killed", "log_lines_dropped"}. Readers merge it into the record at once
# (the records are SQLite's, written by Python only), as podman reads conmon's.
EXIT_FILE = "exit"


def read_exit_file(container_dir) -> dict | None:
    try:
        with open(os.path.join(container_dir, EXIT_FILE), "rb") as f:
            ended = json.loads(f.read())
    except (OSError, ValueError):
        return None
    return ended if isinstance(ended, dict) and isinstance(ended.get("exit_code"), int) else None


def dropped_lines_error(dropped: int) -> str:
    """The record's word on log lines a full disk made the monitor drop."""
    return f"{dropped} log lines dropped: no space left on device"


def remove_exit_file(container_dir) -> None:
    try:
        os.unlink(os.path.join(container_dir, EXIT_FILE))
    except FileNotFoundError:
        pass


def _exit_of(rec) -> dict | None:
    """The exit file of rec's current run, if its C monitor wrote one and
    nothing else follows the exit that its monitor decides and records: a
    restart, or --rm's removal (a waiter sees the exit and the removal at
    once, as from the Python monitor)."""
    if not rec.log_path or rec.config.get("auto_remove") or (
            rec.restart_policy.partition(":")[0] not in ("", "no") and not rec.stop_requested):
        return None
    return read_exit_file(os.path.dirname(rec.log_path))


class NoSuchContainer(ContainerError, LookupError):
    def __init__(self, ref):
        super().__init__(f"no such container: {quoted(ref)}")


class AmbiguousContainer(ContainerError, LookupError):
    def __init__(self, ref, matches):
        super().__init__(f"multiple containers match {quoted(ref)!r}: {', '.join(m[:12] for m in matches)}")


class NameInUse(ContainerError):
    def __init__(self, name, cid):
        super().__init__(f'the container name "/{quoted(name)}" is already in use by container "{cid}". '
                         "You have to remove (or rename) that container to be able to reuse that name.")


@dataclass
class ContainerRecord:
    id: str
    name: str
    image: str
    config: dict                       # the Container(...) keyword arguments (JSON)
    state: str = "created"
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    exit_code: int | None = None
    error: str = ""
    oom_killed: bool = False
    pid: int | None = None             # the container's init, as the host sees it
    pid_start: int | None = None       # its start time (/proc/PID/stat field 22)
    monitor_pid: int | None = None
    monitor_start: int | None = None
    restart_policy: str = "no"
    restart_count: int = 0
    stop_requested: bool = False       # stop/kill asked for: no restart
    log_path: str = ""
    log_opts: dict = field(default_factory=dict)
    exec_profile: dict = field(default_factory=dict)   # what exec copies from init (user, caps, env...)
    boot_id: str = ""                  # the boot the pids belong to: after a reboot none is alive

    @property
    def short_id(self):
        return self.id[:12]

    def to_row(self):
        row = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, dict):
                v = json.dumps(v)
            elif isinstance(v, bool):
                v = int(v)
            row[f.name] = v
        return row

    @classmethod
    def from_row(cls, row):
        kw = dict(row)
        for name in ("config", "log_opts", "exec_profile"):
            kw[name] = json.loads(kw[name] or "{}")
        for name in ("oom_killed", "stop_requested"):
            kw[name] = bool(kw[name])
        return cls(**kw)


_COLUMNS = [f.name for f in fields(ContainerRecord)]
_SCHEMA = """
CREATE TABLE IF NOT EXISTS containers (
    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, image TEXT NOT NULL, config TEXT NOT NULL,
    state TEXT NOT NULL, created REAL NOT NULL, started REAL, finished REAL, exit_code INTEGER,
    error TEXT NOT NULL DEFAULT '', oom_killed INTEGER NOT NULL DEFAULT 0,
    pid INTEGER, pid_start INTEGER, monitor_pid INTEGER, monitor_start INTEGER,
    restart_policy TEXT NOT NULL DEFAULT 'no', restart_count INTEGER NOT NULL DEFAULT 0,
    stop_requested INTEGER NOT NULL DEFAULT 0, log_path TEXT NOT NULL DEFAULT '',
    log_opts TEXT NOT NULL DEFAULT '{}', exec_profile TEXT NOT NULL DEFAULT '{}',
    boot_id TEXT NOT NULL DEFAULT ''
)
"""
# Store.list(exec_profiles=False): every column but exec_profile, of which
# only the network part, picked out by SQLite.
_LISTING = (f"SELECT {', '.join(c for c in _COLUMNS if c != 'exec_profile')}, "
            "json_extract(exec_profile, '$.network') AS network_profile FROM containers ORDER BY created DESC")


def _listed(row) -> dict:
    """A row of _LISTING as ContainerRecord.from_row takes it."""
    kw = dict(row)
    network = kw.pop("network_profile")
    kw["exec_profile"] = f'{{"network": {network}}}' if network is not None else "{}"
    return kw


# The exit status of a removed container, kept a while: whoever waits for
# an auto-removed container (docker run --rm's wait?condition=removed) may
# look only after the monitor removed the record.
_SCHEMA_EXITS = "CREATE TABLE IF NOT EXISTS exits (id TEXT PRIMARY KEY, exit_code INTEGER NOT NULL, removed REAL NOT NULL)"
EXIT_KEPT_SECONDS = 300


def _program_owned(root: Path, cid: str) -> bool:
    """Whether a program's owner log (leftovers.py) names container cid."""
    try:
        logs = os.listdir(root / "owners")
    except OSError:
        return False
    for name in logs:
        try:
            with open(root / "owners" / name, "rb") as f:
                if f"+ {cid} ".encode() in f.read():
                    return True
        except OSError:
            pass
    return False


def process_start_time(pid) -> int | None:
    """The start time of a process in clock ticks since boot, or None if it
    does not exist. (pid, start time) names one process for good."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (OSError, TypeError):
        return None
    fields_ = data.rsplit(b")", 1)[1].split()
    if fields_[0] == b"Z":  # a zombie has finished: only its parent's wait is left
        return None
    return int(fields_[19])


def process_alive(pid, start) -> bool:
    return pid is not None and start is not None and process_start_time(pid) == start


_boot_id = None


def boot_id() -> str:
    """This boot's random id: (pid, start time) pairs of another boot mean nothing."""
    global _boot_id
    if _boot_id is None:
        try:
            with open("/proc/sys/kernel/random/boot_id") as f:
                _boot_id = f.read().strip()
        except OSError:
            _boot_id = ""
    return _boot_id


# ---- this process's connections ------------------------------------------------------

_stores: dict = {}


def shared_store(root=None) -> "Store":
    """This process's Store (one SQLite connection) for the store root,
    opened on first use. (SQLite keeps the descriptor of a closed connection
    while another connection of the process holds a lock on the same file:
    reuse beats open-and-close.) A forked child opens its own."""
    key = (str(root or default_root()), os.getpid())
    st = _stores.get(key)
    if st is None:
        st = _stores[key] = Store(root)
    return st


def cached_store(root=None) -> "Store | None":
    """This process's open Store for the root, if it has one."""
    return _stores.get((str(root or default_root()), os.getpid()))


def close_stores():
    """Closes this process's record database connections (they reopen on use)."""
    while _stores:
        _stores.popitem()[1].close()


class Store:
    """The container records of one store root."""

    def __init__(self, root: Path | None = None):
        self.root = private_dir(Path(root) if root else default_root())  # see _paths: 0700, 0600
        self.dir = private_dir(self.root / "containers")
        path = self.root / "containers.db"
        if (not path.exists() or path.stat().st_size == 0) and not os.path.exists(f"{path}-wal") \
                and any(len(n) == 64 and not _program_owned(self.root, n) for n in os.listdir(self.dir)):
            # records gone while their containers' directories are there (a
            # program's Container is in its owner log instead: leftovers.py)
            raise StoreDamaged(f"the container database {path} is {'empty' if path.exists() else 'missing'} "
                               "while containers exist: nothing was changed; "
                               "`pycontain system check --repair` starts a new one")
        self.path = private_file(path)
        for journal in ("-wal", "-shm"):
            tighten_if_present(f"{self.path}{journal}")
        try:
            self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as e:
            raise database_error(e, self.path, "opening the container records") from None
        self.full = False   # opened read-only on a full disk: every write is refused
        try:
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA busy_timeout = 60000")
            if self.db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = NORMAL")
            self.db.execute(_SCHEMA)
            self.db.execute(_SCHEMA_EXITS)
        except sqlite3.Error as e:
            self.db.close()
            self.db = open_read_only_when_full(self.path, e)
            if self.db is None:
                raise database_error(e, self.path, "opening the container records") from None
            self.db.row_factory = sqlite3.Row
            self.full = True
        # one connection, shared by this process's threads one at a time
        self.lock = threading.RLock()
        self.json_in_sql = None   # see _json_in_sql

    def close(self):
        self.db.close()

    def container_dir(self, cid: str) -> Path:
        return self.dir / cid

    # ---- transactions ---------------------------------------------------------

    class _Tx:
        def __init__(self, db, lock, path, full):
            self.db = db
            self.lock = lock
            self.path = path
            self.full = full

        def __enter__(self):
            if self.full:
                raise NoSpace("writing a container record")
            self.lock.acquire()
            try:
                self.db.execute("BEGIN IMMEDIATE")
            except BaseException as e:
                self.lock.release()
                if isinstance(e, sqlite3.Error):
                    raise database_error(e, self.path, "writing a container record") from None
                raise
            return self.db

        def __exit__(self, exc_type, exc, _tb):
            try:
                self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
            except sqlite3.Error as e:
                if exc_type is None:
                    try:
                        self.db.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                    raise database_error(e, self.path, "writing a container record") from None
            finally:
                self.lock.release()
            if isinstance(exc, sqlite3.Error):
                raise database_error(exc, self.path, "writing a container record") from None

    def transaction(self):
        """A write transaction: the whole read-check-write happens under the
        database's write lock, so two processes never interleave."""
        return Store._Tx(self.db, self.lock, self.path, self.full)

    def _read(self, sql, params=()):
        with self.lock:
            try:
                return self.db.execute(sql, params).fetchall()
            except sqlite3.Error as e:
                raise database_error(e, self.path, "reading the container records") from None

    # ---- records ----------------------------------------------------------------

    def insert(self, rec: ContainerRecord) -> ContainerRecord:
        with self.transaction() as db:
            if not rec.name:
                rec.name = self._free_name(db)
            other = db.execute("SELECT id FROM containers WHERE name = ?", (rec.name,)).fetchone()
            if other:
                raise NameInUse(rec.name, other["id"])
            row = rec.to_row()
            db.execute(f"INSERT INTO containers ({','.join(_COLUMNS)}) VALUES ({','.join('?' * len(_COLUMNS))})",
                       [row[c] for c in _COLUMNS])
        return rec

    def _free_name(self, db) -> str:
        for attempt in range(100):
            name = generate_name(attempt)
            if not db.execute("SELECT 1 FROM containers WHERE name = ?", (name,)).fetchone():
                return name
        raise ContainerError("could not generate a free container name")

    def resolve_id(self, ref: str) -> str:
        """A full id from a name, a full id or an unambiguous id prefix."""
        if not ref:
            raise NoSuchContainer(ref)
        ref = ref.lstrip("/")
        rows = self._read("SELECT id FROM containers WHERE name = ? OR id = ?", (ref, ref))
        if rows:
            return rows[0]["id"]
        if all(c in "0123456789abcdef" for c in ref):
            rows = self._read("SELECT id FROM containers WHERE id >= ? AND id < ? ORDER BY id", (ref, ref + "g"))
            if len(rows) == 1:
                return rows[0]["id"]
            if len(rows) > 1:
                raise AmbiguousContainer(ref, [r["id"] for r in rows])
        raise NoSuchContainer(ref)

    def get(self, ref: str) -> ContainerRecord:
        """The record of a container by name, id or id prefix, its state made true first."""
        cid = self.resolve_id(ref)
        rec = self.load(cid)
        if rec is None:
            raise NoSuchContainer(ref)
        if self._needs_recovery(rec):
            rec = self.update(cid, _recover=True) or rec
        return rec

    def load(self, cid, db=None) -> ContainerRecord | None:
        """The record of the full id cid as stored (no recovery), or None."""
        rows = self._read("SELECT * FROM containers WHERE id = ?", (cid,))
        return ContainerRecord.from_row(rows[0]) if rows else None

    def list(self, exec_profiles: bool = True) -> list[ContainerRecord]:
        """Every record, newest first, their states made true first.
        exec_profiles=False: each record's exec_profile holds only its
        "network" part (published ports, addresses): enough to show and
        filter containers (ps). The rest (the seccomp program alone is ~15 KB
        a record) is what exec copies from the init: reading and decoding
        it was half of what ps spent on each record."""
        if exec_profiles or not self._json_in_sql():
            rows = self._read("SELECT * FROM containers ORDER BY created DESC")
        else:
            rows = [_listed(row) for row in self._read(_LISTING)]
        out = []
        for row in rows:
            rec = ContainerRecord.from_row(row)
            if self._needs_recovery(rec):
                rec = self.update(rec.id, _recover=True) or rec
            out.append(rec)
        return out

    def _json_in_sql(self) -> bool:
        """Whether this SQLite has its JSON functions (built in since 3.38;
        an older library may lack them)."""
        if self.json_in_sql is None:
            with self.lock:
                try:
                    self.db.execute("SELECT json_extract('{}', '$.a')")
                    self.json_in_sql = True
                except sqlite3.OperationalError:   # no such function
                    self.json_in_sql = False
        return self.json_in_sql

    def update(self, cid: str, _recover=False, _check=None, **changes) -> ContainerRecord | None:
        """Changes fields of one record in a transaction. `_check(rec)` runs
        first, under the lock, and may raise to refuse the change. Returns
        the new record (None if it is gone)."""
        with self.transaction() as db:
            rec = self.load(cid, db)
            if rec is None:
                return None
            if _recover:
                if not self._needs_recovery(rec):
                    return rec
                changes = self._recovery_changes(rec)
            if _check is not None:
                _check(rec)
            for k, v in changes.items():
                setattr(rec, k, v)
            row = rec.to_row()
            cols = [c for c in changes]
            if cols:
                db.execute(f"UPDATE containers SET {', '.join(c + ' = ?' for c in cols)} WHERE id = ?",
                           [row[c] for c in cols] + [cid])
            return rec

    def delete(self, cid: str, _check=None) -> ContainerRecord | None:
        with self.transaction() as db:
            rec = self.load(cid, db)
            if rec is None:
                return None
            if _check is not None:
                _check(rec)
            db.execute("DELETE FROM containers WHERE id = ?", (cid,))
            now = time.time()
            db.execute("DELETE FROM exits WHERE removed < ?", (now - EXIT_KEPT_SECONDS,))
            if rec.exit_code is not None and rec.state not in MONITORED:
                db.execute("INSERT OR REPLACE INTO exits (id, exit_code, removed) VALUES (?, ?, ?)",
                           (cid, rec.exit_code, now))
            return rec

    def removed_exit_code(self, cid: str) -> int | None:
        """The last exit status of a container removed in the last minutes."""
        rows = self._read("SELECT exit_code FROM exits WHERE id = ?", (cid,))
        return rows[0]["exit_code"] if rows else None

    # ---- recovery -----------------------------------------------------------------

    @staticmethod
    def _needs_recovery(rec: ContainerRecord) -> bool:
        if rec.state in MONITORED or (rec.state == "created" and rec.monitor_pid):
            if rec.boot_id and rec.boot_id != boot_id():
                return True  # the machine restarted since: nothing of it runs
            if rec.state in MONITORED and _exit_of(rec) is not None:
                return True  # it ended: its C monitor said so and tears it down now
            return not process_alive(rec.monitor_pid, rec.monitor_start)
        return False

    @staticmethod
    def _recovery_changes(rec: ContainerRecord) -> dict:
        """Nobody watches this container any more. Its init died with its
        monitor (pdeathsig); should it still live (a monitor that lost it
        some other way), it is killed so the record tells the truth.
        A C monitor's exit file says how it ended: merged, the monitor kept
        while it lives (it finishes the teardown and clears itself)."""
        ended = _exit_of(rec) if rec.state in MONITORED and rec.boot_id == boot_id() else None
        if ended is not None:
            changes = {"state": "exited", "exit_code": ended["exit_code"], "oom_killed": bool(ended.get("oom_killed")),
                       "finished": ended.get("finished_ns", 0) / 1e9 or time.time(), "pid": None, "pid_start": None}
            if ended.get("log_lines_dropped"):   # said at once, as the exit code (not after the teardown)
                changes["error"] = dropped_lines_error(ended["log_lines_dropped"])
            if not process_alive(rec.monitor_pid, rec.monitor_start):   # it died before its teardown
                remove_leftover_cgroups(rec)
                changes.update(monitor_pid=None, monitor_start=None)
            return changes
        if rec.boot_id == boot_id() and process_alive(rec.pid, rec.pid_start):
            try:
                os.kill(rec.pid, 9)
            except ProcessLookupError:
                pass
        remove_leftover_cgroups(rec)
        was_started = rec.state != "created"
        return {
            "state": "exited" if was_started else "created",
            "exit_code": EXIT_MONITOR_LOST if was_started else rec.exit_code,
            "finished": _last_sign_of_life(rec) if was_started else rec.finished,
            "error": "the container's monitor ended unexpectedly" if was_started else MONITOR_LOST_BEFORE_START,
            "pid": None, "pid_start": None, "monitor_pid": None, "monitor_start": None,
        }


def _last_sign_of_life(rec: ContainerRecord) -> float:
    """When a container whose monitor died was last known alive: its last
    log line, else its start. The monitor is gone, and the container died
    with it; the time of the look that found it says nothing."""
    t = rec.started or rec.created
    try:
        t = max(t, os.stat(rec.log_path).st_mtime)
    except (OSError, TypeError, ValueError):
        pass
    return min(t, time.time())


def remove_leftover_cgroups(rec: ContainerRecord, timeout: float = 2.0):
    """The cgroup directories of a container whose monitor died before it
    could remove them (they would block the next start under the same id).
    Only directories the monitor recorded, and only those named for this
    container, are touched; anything still in them is killed first."""
    remove_cgroup_dirs([d for d in rec.exec_profile.get("cgroups", ()) if rec.id in os.path.basename(d)], timeout)


def remove_cgroup_dirs(dirs, timeout: float = 2.0):
    """Removes cgroup directories whose owner is gone, deepest first,
    killing what is still in them."""
    for d in sorted(dirs, key=len, reverse=True):
        end = time.monotonic() + timeout
        while os.path.isdir(d):
            try:
                os.rmdir(d)
                break
            except OSError:
                try:
                    with open(os.path.join(d, "cgroup.procs")) as f:
                        for pid in f.read().split():
                            try:
                                os.kill(int(pid), 9)
                            except ProcessLookupError:
                                pass
                except OSError:
                    pass
                if time.monotonic() > end:
                    break
                time.sleep(0.01)


# docker's generated names: adjective_surname
_ADJECTIVES = (
    "admiring", "brave", "busy", "clever", "cool", "dazzling", "eager", "elastic", "festive", "focused",
    "gallant", "happy", "hopeful", "jolly", "keen", "kind", "loving", "modest", "nifty", "optimistic",
    "peaceful", "quirky", "relaxed", "serene", "sharp", "stoic", "tender", "upbeat", "vibrant", "zealous",
)
_NAMES = (
    "allen", "babbage", "bohr", "curie", "darwin", "dijkstra", "einstein", "euler", "fermi", "franklin",
    "gauss", "goodall", "hopper", "hypatia", "johnson", "kepler", "knuth", "lovelace", "mccarthy", "meitner",
    "newton", "noether", "pascal", "ritchie", "shannon", "thompson", "torvalds", "turing", "wozniak", "yalow",
)


def generate_name(attempt: int = 0) -> str:
    """docker's style; after clashes a number is added, as docker does."""
    name = f"{random.choice(_ADJECTIVES)}_{random.choice(_NAMES)}"
    if attempt >= 10:
        name += str(random.randint(0, 99))
    return name


def check_records(root=None, repair: bool = False) -> tuple[list, list]:
    """(problems, repairs) of the container database: whether it reads
    whole; with repair a damaged one is moved to <root>/quarantine/ and a
    new one started (the records in it are lost: their containers'
    directories stay, named in the report)."""
    root = Path(root or default_root())
    path = root / "containers.db"
    problems, repairs = [], []
    try:
        st = Store(root)
        try:
            with st.lock:
                result = st.db.execute("PRAGMA quick_check").fetchone()[0]
            if result != "ok":
                problems.append(f"the container database {path} is damaged: {result}")
        except sqlite3.Error as e:
            problems.append(f"the container database {path} is damaged: {e}")
        finally:
            st.close()
    except ContainerError as e:
        problems.append(str(e))
    if problems and repair:
        close_stores()
        aside = root / "quarantine" / time.strftime("%Y%m%dT%H%M%S")
        aside.mkdir(parents=True, exist_ok=True, mode=0o700)
        for suffix in ("", "-wal", "-shm"):
            p = Path(f"{path}{suffix}")
            if p.exists():
                os.rename(p, aside / p.name)
        orphans = [n for n in os.listdir(root / "containers") if len(n) == 64]
        repairs.append(f"moved the container database to {aside} and started a new one"
                       + (f"; container directories without a record: {', '.join(o[:12] for o in orphans)}"
                          if orphans else ""))
        for o in orphans:   # else the new database is refused as damaged in turn
            os.rename(root / "containers" / o, aside / o)
    return problems, repairs
