"""A program under a pseudo-terminal of its own, driven as a user at a
keyboard would (run -it, attach, exec -it, the detach keys), for the CLI
comparisons and the Engine API tests alike."""
import fcntl
import os
import pty
import select
import struct
import subprocess
import termios
import time


class Term:
    """A CLI with a pseudo-terminal as its stdin, stdout and stderr."""

    def __init__(self, argv, env=None, rows=24, cols=80):
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                                     env=env)
        os.close(slave)
        self.seen = b""

    def read_until(self, needle: bytes, then: bytes = b"", timeout=15) -> bytes:
        """Reads until needle shows (and `then` after it), answering busybox
        ash's cursor-position query as a terminal does; returns what was read."""
        end = time.monotonic() + timeout
        start = len(self.seen)

        def found():
            at = self.seen.find(needle, start)
            return at >= 0 and self.seen.find(then, at + len(needle)) >= 0

        while not found():
            left = end - time.monotonic()
            if left <= 0 or not select.select([self.master], [], [], left)[0]:
                raise AssertionError(f"{needle!r} not seen in {self.seen[start:]!r}")
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                break
            if not chunk:
                break
            if b"\x1b[6n" in chunk:
                os.write(self.master, b"\x1b[1;1R")
            self.seen += chunk
        return self.seen[start:]

    def write(self, data: bytes):
        os.write(self.master, data)

    def finish(self, timeout=15) -> tuple:
        """(exit status, what it printed until it ended)."""
        start = len(self.seen)
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                self.close()
                raise AssertionError(f"still running; printed {self.seen[start:]!r}")
            if select.select([self.master], [], [], min(left, 0.1))[0]:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:
                    chunk = b""
                self.seen += chunk
                if chunk:
                    continue
            if self.proc.poll() is not None:
                break
        return self.proc.wait(), self.seen[start:]

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.master is not None:
            os.close(self.master)
            self.master = None


def prompt(t: Term):
    """An empty line and the shell's prompt (a shell started before anyone
    attached printed its first prompt to nobody)."""
    for _ in range(30):   # until the client is attached: a line typed before may go nowhere
        time.sleep(0.2)
        t.write(b"\r")
        try:
            t.read_until(b"# ", timeout=0.5)
            return
        except AssertionError:
            continue
    raise AssertionError(f"no prompt: {t.seen!r}")


def type_keys(t: Term, *keys):
    """Keys typed one after another, as a user types them (docker's CLI
    spots the detach keys only when each comes in a read of its own)."""
    for k in keys:
        t.write(k)
        time.sleep(0.2)
