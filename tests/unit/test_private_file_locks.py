"""Making a store file private must not drop the SQLite locks this process
holds on it: closing any descriptor of a file releases every POSIX lock the
process has there. With the shared lock on the database gone, another
process that closes its connection believes it is the last one, checkpoints
and deletes the -wal and -shm files under us: two builds at once ended in
'disk I/O error' that way."""
import sqlite3
import subprocess
import sys

from pycontain._paths import private_file, tighten_if_present

OTHER = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('SELECT count(*) FROM t').fetchall(); c.close()"


def test_a_second_open_keeps_this_process_s_sqlite_locks(tmp_path):
    db = tmp_path / "images.db"
    conn = sqlite3.connect(private_file(db), isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    for f in (db, tmp_path / "images.db-wal", tmp_path / "images.db-shm"):
        f.chmod(0o644)                        # an older store, to be tightened
    private_file(db)                          # a second store opened in this process
    for journal in ("-wal", "-shm"):
        tighten_if_present(f"{db}{journal}")
    assert db.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "images.db-shm").stat().st_mode & 0o777 == 0o600
    subprocess.run([sys.executable, "-c", OTHER, str(db)], check=True, timeout=30)
    assert (tmp_path / "images.db-wal").exists(), "another process took us for gone and removed the WAL"
    conn.execute("INSERT INTO t VALUES (2)")
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (2,)
