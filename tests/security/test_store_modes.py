"""No other user can read the store: containers' configuration (-e SECRET=...),
logs, records (the SQLite database, its -wal and -shm), credentials or sockets.
Checked as another user (nobody), not only by mode bits."""
import os
import sqlite3
import stat
import subprocess
import sys
import time

import pytest

from nobody import NOBODY, as_nobody
from pycontain.state import Store

SECRET = "SECRET=hunter2-in-the-store"

pytestmark = pytest.mark.usefixtures("leakcheck")


def cli(root, *args):
    env = dict(os.environ, PYCONTAIN_ROOT=str(root))
    return subprocess.run([sys.executable, "-m", "pycontain", *args], capture_output=True, text=True, env=env,
                          timeout=60)


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def everything_under(root):
    found = [str(root)]
    for d, dirs, files in os.walk(root):
        found += [os.path.join(d, n) for n in dirs + files]
    return found


def _readable_by_nobody(paths):
    """The paths nobody can list (directories) or open for reading (the rest)."""
    def fn():
        readable = []
        for p in paths:
            try:
                if os.path.isdir(p) and not os.path.islink(p):
                    os.listdir(p)
                else:
                    os.close(os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW))
                readable.append(p)
            except OSError:
                pass
        return readable
    return fn


@pytest.fixture
def open_dir(workdir, request):
    """A directory every user may reach and list (checked as nobody): only
    the store's own modes keep nobody out of a store in it."""
    d = workdir / request.node.name
    d.mkdir(mode=0o777)
    os.chmod(d, 0o777)
    os.chmod(workdir, 0o755)
    assert as_nobody(lambda: os.listdir(d)) == {"ok": []}
    yield d
    subprocess.run(["rm", "-rf", str(d)], check=True)


@pytest.fixture
def fresh_root(open_dir):
    root = open_dir / "store"
    yield root
    cli(root, "rm", "-f", "secretive")


def test_nobody_reads_nothing_of_a_store_with_a_running_container(fresh_root, busybox):
    r = cli(fresh_root, "run", "-d", "--name", "secretive", "-e", SECRET, "--rootfs", str(busybox),
            "sh", "-c", "echo logged-line; sleep 60")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    end = time.monotonic() + 10
    while "logged-line" not in cli(fresh_root, "logs", "secretive").stdout and time.monotonic() < end:
        time.sleep(0.05)
    db = fresh_root / "containers.db"
    # the database as while any pycontain process has it open (the C monitor
    # keeps no connection): SQLite gives its -wal and -shm the database's mode
    reader = sqlite3.connect(db)
    reader.execute("SELECT count(*) FROM containers").fetchone()
    assert os.path.exists(f"{db}-wal") and os.path.exists(f"{db}-shm")
    paths = everything_under(fresh_root)
    assert any(p.endswith("-json.log") for p in paths) and any(p.endswith(".sock") for p in paths)
    assert as_nobody(_readable_by_nobody(paths)) == {"ok": []}
    assert mode(fresh_root) == 0o700
    assert mode(fresh_root / "containers") == 0o700
    assert mode(fresh_root / "containers" / cid) == 0o700
    for f in (db, f"{db}-wal", f"{db}-shm"):
        assert mode(f) == 0o600, f
    # and with the store root opened up by hand, what holds records stays shut
    os.chmod(fresh_root, 0o755)
    private = [str(db), f"{db}-wal", f"{db}-shm", str(fresh_root / "containers")]
    assert as_nobody(_readable_by_nobody(private)) == {"ok": []}
    reader.close()


def test_an_older_store_is_tightened_on_first_use(open_dir):
    root = open_dir / "old-store"
    old = os.umask(0o022)
    try:
        (root / "containers").mkdir(parents=True)
        con = sqlite3.connect(root / "containers.db")
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("CREATE TABLE t (x)")
        con.execute("INSERT INTO t VALUES ('secret')")
        con.commit()
        keep_open = sqlite3.connect(root / "containers.db")   # the -wal and -shm stay while one is open
        keep_open.execute("SELECT * FROM t").fetchall()
    finally:
        os.umask(old)
    assert mode(root) == 0o755 and mode(root / "containers.db") == 0o644
    assert mode(f"{root}/containers.db-wal") == 0o644
    s = Store(root)
    try:
        assert mode(root) == 0o700 and mode(root / "containers") == 0o700
        for f in ("containers.db", "containers.db-wal", "containers.db-shm"):
            assert mode(root / f) == 0o600, f
        assert as_nobody(_readable_by_nobody(everything_under(root))) == {"ok": []}
    finally:
        s.close()
        keep_open.close()
        con.close()


def test_a_rootless_store_is_private(open_dir):
    root = open_dir / "nobodys-store"

    def fn():
        Store(root).close()
        return [oct(mode(p)) for p in (root, root / "containers", root / "containers.db")]
    assert as_nobody(fn) == {"ok": ["0o700", "0o700", "0o600"]}
    assert os.stat(root).st_uid == NOBODY
