"""docker attach: the user's terminal joined to a detached container.

The container's monitor listens on a Unix socket in the container's
directory (mode 0700, root's: only its owner can connect). Everything the
container writes goes to every attached client as it is (and to the log, as
always); what a client sends goes to the container's terminal or stdin in
small frames: b"d" + length + bytes, b"w" + a struct winsize (a resize), or
b"e" (the client's input ended: the container's stdin is closed; without a
terminal only).

The client watches its own input for the detach keys (docker's ctrl-p
ctrl-q): it leaves, the container runs on.
"""
from __future__ import annotations

import fcntl
import os
import select
import socket
import struct
import termios

from .errors import ConfigError, ContainerError

SOCKET_NAME = "attach.sock"
DETACH_KEYS = b"\x10\x11"  # ctrl-p ctrl-q
_HEADER = struct.Struct("!cI")


def _short_path(dir_fd: int, name: str) -> str:
    # A socket path must fit 108 bytes; the store root may be deep.
    return f"/proc/self/fd/{dir_fd}/{name}"


class AttachServer:
    """The monitor's side: accepts clients, fans output out, frames in."""

    def __init__(self, container_dir):
        self.path = os.path.join(str(container_dir), SOCKET_NAME)
        dir_fd = os.open(str(container_dir), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            self.sock.bind(_short_path(dir_fd, SOCKET_NAME))
            os.chmod(self.path, 0o600)
            self.sock.listen(8)
        finally:
            os.close(dir_fd)
        self.clients: dict[int, tuple[socket.socket, bytearray]] = {}

    def fileno(self):
        return self.sock.fileno()

    def fds(self):
        return [self.sock.fileno(), *self.clients]

    def accept(self):
        conn, _ = self.sock.accept()
        # only the user who owns the container may attach (the directory is
        # 0700 already; the peer's uid says it again)
        uid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1]
        if uid not in (0, os.getuid()):
            conn.close()
            return
        self.clients[conn.fileno()] = (conn, bytearray())

    def adopt(self, conn: socket.socket):
        """A client connected before the monitor began (a socketpair end its
        starter passed down): it sees the container's output from the first byte."""
        self.clients[conn.fileno()] = (conn, bytearray())

    def drop_all(self):
        """The container stopped: attached clients are done, as docker's attach
        ends at an exit even when a restart follows."""
        for fd in list(self.clients):
            self.drop(fd)

    def broadcast(self, data: bytes):
        for fd, (conn, _) in list(self.clients.items()):
            try:
                conn.setblocking(True)
                conn.sendall(data)
            except OSError:
                self.drop(fd)

    def read(self, fd) -> list:
        """Frames a client sent: [("d", bytes) | ("w", winsize bytes)]; a
        closed client is dropped."""
        conn, buf = self.clients[fd]
        try:
            data = conn.recv(65536)
        except OSError:
            data = b""
        if not data:
            self.drop(fd)
            return []
        buf += data
        frames = []
        while len(buf) >= _HEADER.size:
            kind, length = _HEADER.unpack_from(buf)
            if len(buf) < _HEADER.size + length:
                break
            frames.append((kind.decode(), bytes(buf[_HEADER.size:_HEADER.size + length])))
            del buf[:_HEADER.size + length]
        return frames

    def drop(self, fd):
        conn, _ = self.clients.pop(fd, (None, None))
        if conn is not None:
            conn.close()

    def close(self):
        self.drop_all()
        self.sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def connect(container_dir) -> socket.socket:
    dir_fd = os.open(str(container_dir), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            s.connect(_short_path(dir_fd, SOCKET_NAME))
        except (FileNotFoundError, ConnectionRefusedError):
            s.close()
            raise ContainerError("the container's monitor does not accept attaching (is it running detached?)") from None
    finally:
        os.close(dir_fd)
    return s


def frame(kind: str, payload: bytes) -> bytes:
    return _HEADER.pack(kind.encode(), len(payload)) + payload


def write_all(fd, data, *, peer_may_leave=False):
    """Writes every byte to a (possibly non-blocking) descriptor. With
    peer_may_leave, a reader that went away (EPIPE, EIO) ends the write quietly."""
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [])
            continue
        except OSError:
            if peer_may_leave:
                return
            raise
        view = view[n:]


def window_size(fd) -> bytes | None:
    try:
        return fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
    except OSError:
        return None


def parse_detach_keys(spec: str) -> bytes:
    """docker's --detach-keys: "ctrl-p,ctrl-q", "a,b", "ctrl-@"... as bytes."""
    if not spec:   # --detach-keys "": no detach keys at all
        return b""
    out = bytearray()
    for key in spec.split(","):
        key = key.strip()
        if key.startswith("ctrl-") and len(key) == 6:
            ch = key[5].lower()
            if "a" <= ch <= "z":
                out.append(ord(ch) - 96)
                continue
            special = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}
            if ch in special:
                out.append(special[ch])
                continue
        elif len(key) == 1:
            out += key.encode()
            continue
        raise ConfigError(f"invalid detach keys {spec!r}: keys like ctrl-p,ctrl-q or single characters")
    return bytes(out)



def split_detach_keys(data: bytes, detach_keys: bytes) -> tuple:
    """(what goes on to the container, a tail held back that may be the start
    of the detach keys, whether the keys were typed). A first key followed by
    another passes both through, as docker's."""
    if detach_keys and detach_keys in data:
        return data[:data.index(detach_keys)], b"", True
    for n in range(len(detach_keys) - 1, 0, -1):
        if data.endswith(detach_keys[:n]):
            return data[:-n], data[-n:], False
    return data, b"", False


def run_client(sock: socket.socket, stdin_fd=0, stdout_fd=1, detach_keys=DETACH_KEYS, wake_fd=None,
               input_end=None) -> str:
    """Copies until the container ends ("ended") or the user types the
    detach keys ("detached"). wake_fd readable: the window size changed.
    stdin_fd None: nothing goes in. When our input ends, input_end (if any)
    is sent: "eof" a ^D to the container's terminal (run -it, docker's stdin
    once), "close" the end of its stdin (an "e" frame)."""
    # the size of our terminal: stdin's, else stdout's (run -t without -i)
    size_fd = next((fd for fd in (stdin_fd, stdout_fd) if fd is not None and os.isatty(fd)), None)
    if size_fd is not None:
        size = window_size(size_fd)
        if size:
            sock.sendall(frame("w", size))
    pending = b""  # a possible start of the detach sequence, held back
    watch = [sock.fileno()] + ([stdin_fd] if stdin_fd is not None else []) + \
        ([wake_fd] if wake_fd is not None else [])
    while True:
        ready, _, _ = select.select(watch, [], [])
        if wake_fd is not None and wake_fd in ready:
            os.read(wake_fd, 64)
            size = window_size(size_fd) if size_fd is not None else None
            if size:
                sock.sendall(frame("w", size))
        if sock.fileno() in ready:
            data = sock.recv(65536)
            if not data:
                return "ended"
            view = memoryview(data)
            while view:
                view = view[os.write(stdout_fd, view):]
        if stdin_fd in ready:
            data = os.read(stdin_fd, 4096)
            if not data:
                watch.remove(stdin_fd)
                if input_end == "eof":
                    sock.sendall(frame("d", pending + b"\x04"))
                elif input_end == "close":
                    sock.sendall(frame("e", b""))
                continue
            data, pending, detached = split_detach_keys(pending + data, detach_keys)
            if data:
                sock.sendall(frame("d", data))
            if detached:
                return "detached"
