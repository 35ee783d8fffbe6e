"""The user's terminal joined to a container's terminal (run -it, exec -it,
attach, start -ai).

Raw mode on our side (the container's terminal does the line editing and
echo), our window size copied to the container's terminal at start and on
every SIGWINCH, bytes copied both ways until the container's side closes or
the user types the detach keys (docker's ctrl-p ctrl-q; the CLI watches for
them, never the monitor).
"""
from __future__ import annotations

import fcntl
import os
import select
import signal
import struct
import termios
import tty

from .. import attach, containers
from ..attach import split_detach_keys, write_all


def copy_window_size(src_fd: int, master_fd: int):
    try:
        size = fcntl.ioctl(src_fd, termios.TIOCGWINSZ, b"\0" * 8)
    except OSError:
        return
    rows, cols = struct.unpack("HHHH", size)[:2]
    if rows and cols:
        fcntl.ioctl(master_fd, termios.TIOCSWINSZ, size)


class TerminalPump:
    def __init__(self, interactive=True, stdin_fd=0, stdout_fd=1, detach_keys=b""):
        self.interactive = interactive
        self.detach_keys = detach_keys
        self.stdin_fd = stdin_fd
        self.stdout_fd = stdout_fd

    def run(self, master: int, on_output=None) -> str:
        """Copies until the container's terminal closes ("ended") or the user
        types the detach keys ("detached"). on_output(data): also given
        every byte the container writes (the log)."""
        is_tty = os.isatty(self.stdin_fd)
        saved = termios.tcgetattr(self.stdin_fd) if is_tty and self.interactive else None
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        old_handler = None
        if is_tty:
            copy_window_size(self.stdin_fd, master)

            def on_winch(_signum, _frame):
                try:
                    os.write(wake_w, b"w")
                except OSError:
                    pass
            old_handler = signal.signal(signal.SIGWINCH, on_winch)
        pending = b""   # a possible start of the detach keys, held back
        try:
            if saved is not None:
                tty.setraw(self.stdin_fd)
            watch = [master, wake_r] + ([self.stdin_fd] if self.interactive else [])
            while True:
                try:
                    ready, _, _ = select.select(watch, [], [])
                except InterruptedError:
                    continue
                if wake_r in ready:
                    os.read(wake_r, 64)
                    copy_window_size(self.stdin_fd, master)
                if self.stdin_fd in ready:
                    data = os.read(self.stdin_fd, 4096)
                    if data:
                        data, pending, detached = split_detach_keys(pending + data, self.detach_keys)
                        if data:
                            write_all(master, data)
                        if detached:
                            return "detached"
                    else:  # our stdin ended: the container's terminal gets EOF (^D)
                        watch.remove(self.stdin_fd)
                        write_all(master, b"\x04")
                if master in ready:
                    try:
                        data = os.read(master, 65536)
                    except OSError:  # EIO: the last process holding the terminal ended
                        data = b""
                    if not data:
                        return "ended"
                    write_all(self.stdout_fd, data)
                    if on_output is not None:
                        on_output(data)
        finally:
            if saved is not None:
                termios.tcsetattr(self.stdin_fd, termios.TCSADRAIN, saved)
            if old_handler is not None:
                signal.signal(signal.SIGWINCH, old_handler)
            os.close(wake_r)
            os.close(wake_w)


def attach_terminal(sock, stdin_fd, detach_keys, input_end=None) -> str:
    """attach.run_client with our terminal in raw mode (when stdin is one)
    and the window size followed; returns "ended" or "detached"."""
    is_tty = stdin_fd is not None and os.isatty(stdin_fd)
    saved = termios.tcgetattr(stdin_fd) if is_tty else None
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)

    def on_winch(_signum, _frame):
        try:
            os.write(wake_w, b"w")
        except OSError:
            pass
    old = signal.signal(signal.SIGWINCH, on_winch)
    try:
        if saved is not None:
            tty.setraw(stdin_fd)
        return attach.run_client(sock, stdin_fd, 1, detach_keys, wake_r, input_end=input_end)
    finally:
        if saved is not None:
            termios.tcsetattr(stdin_fd, termios.TCSADRAIN, saved)
        signal.signal(signal.SIGWINCH, old)
        sock.close()
        os.close(wake_r)
        os.close(wake_w)


def attached_exit_status(c) -> int:
    """The status of the run an attached client saw end: the monitor records
    it (or, --rm, keeps it for the removed container) before the client's
    connection closes."""
    try:
        rec = c.reload().record
    except containers.NoSuchContainer:
        code = containers.removed_exit_status(c.id)
        return 0 if code is None else code
    if rec.state in ("exited", "restarting") and rec.exit_code is not None:
        return rec.exit_code
    return c.wait()
