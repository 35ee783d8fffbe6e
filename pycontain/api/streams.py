"""Docker's streams: the hijacked connection of attach and exec start,
the multiplexed framing of stdout/stderr, and blocking iterators (the
library's log follower) turned into async ones.

docker's clients send `Connection: Upgrade`, `Upgrade: tcp` and expect
`101 UPGRADED`, then raw bytes both ways on the same connection. aiohttp
knows the tcp upgrade: after the 101 it hands us the bytes that follow as
they arrive (the same path its websockets take).
"""
from __future__ import annotations

import asyncio
import os
import struct
import threading

from aiohttp import web

STDIN, STDOUT, STDERR = 0, 1, 2
_FRAME = struct.Struct(">BxxxL")
RAW_STREAM = "application/vnd.docker.raw-stream"
MULTIPLEXED_STREAM = "application/vnd.docker.multiplexed-stream"


def frame(stream: int, data: bytes) -> bytes:
    """docker's 8-byte header: the stream (1 stdout, 2 stderr), three zero bytes, the length."""
    return _FRAME.pack(stream, len(data)) + data


class _RawParser:
    """What aiohttp feeds the bytes after the upgrade to (a websocket's parser has this shape)."""

    def __init__(self, queue: asyncio.Queue):
        self.queue = queue

    def feed_data(self, data):
        if data:
            self.queue.put_nowait(bytes(data))
        return False, b""

    def feed_eof(self):
        self.queue.put_nowait(b"")


class _KeepOpenOnEof(asyncio.Protocol):
    """Stands between the transport and aiohttp's protocol on a hijacked
    connection: a client that closed only its writing half (its stdin
    ended) still reads our output, where aiohttp would close the connection."""

    def __init__(self, inner, parser):
        self.inner = inner
        self.parser = parser

    def data_received(self, data):
        self.inner.data_received(data)

    def eof_received(self):
        self.parser.feed_eof()
        return True

    def connection_lost(self, exc):
        self.inner.connection_lost(exc)

    def pause_writing(self):
        self.inner.pause_writing()

    def resume_writing(self):
        self.inner.resume_writing()


class Hijacked:
    """One taken-over connection: write() output, read() the client's input
    (b"" once the client closed its writing half)."""

    def __init__(self, request: web.Request, response: web.StreamResponse, upgraded: bool):
        self.request = request
        self.response = response
        self.upgraded = upgraded
        self.input: asyncio.Queue = asyncio.Queue()
        self.closed = False

    @classmethod
    async def start(cls, request: web.Request, content_type: str, headers=None) -> "Hijacked":
        upgraded = bool(request.headers.get("Upgrade"))
        resp = web.StreamResponse(status=101 if upgraded else 200, reason="UPGRADED" if upgraded else "OK")
        resp.content_type = content_type
        for k, v in (headers or {}).items():
            resp.headers[k] = v
        if upgraded:
            resp.headers["Connection"] = "Upgrade"
            resp.headers["Upgrade"] = "tcp"
        resp.force_close()
        self = cls(request, resp, upgraded)
        await resp.prepare(request)
        if upgraded:
            parser = _RawParser(self.input)
            request.protocol.set_parser(parser)
            request.transport.set_protocol(_KeepOpenOnEof(request.protocol, parser))
        else:
            self.input.put_nowait(b"")
        return self

    async def write(self, data: bytes) -> bool:
        """False once the client is gone."""
        if self.closed or not data:
            return not self.closed
        transport = self.request.transport
        if transport is None or transport.is_closing():
            self.closed = True
            return False
        try:
            if self.upgraded:
                transport.write(data)
                if transport.get_write_buffer_size() > 1 << 20:
                    await self.request.protocol._drain_helper()
            else:
                await self.response.write(data)
        except (ConnectionError, RuntimeError):
            self.closed = True
            return False
        return True

    async def read(self) -> bytes:
        return await self.input.get()

    async def finish(self):
        """Ends our side: the client sees EOF once everything was sent."""
        transport = self.request.transport
        if transport is not None and not transport.is_closing():
            if self.upgraded:
                try:
                    transport.write_eof()
                except (OSError, RuntimeError):
                    pass
            else:
                await self.response.write_eof()


async def thread_iter(make_iterator, stop: threading.Event):
    """Runs a blocking iterator in a thread of its own (a follower may run for
    hours: it must not hold one of the worker pool's threads) and yields its
    items here. Leaving the loop early sets `stop`: the iterator's owner ends it."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    done = object()

    def worker():
        try:
            for item in make_iterator():
                loop.call_soon_threadsafe(queue.put_nowait, (None, item))
                if stop.is_set():
                    break
        except BaseException as e:  # handed over to the event loop, raised there
            loop.call_soon_threadsafe(queue.put_nowait, (e, None))
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, (None, done))

    threading.Thread(target=worker, name="pycontain-api-stream", daemon=True).start()
    try:
        while True:
            error, item = await queue.get()
            if error is not None:
                raise error
            if item is done:
                return
            yield item
    finally:
        stop.set()


async def _ready(fd, add, remove):
    """Until the event loop sees fd ready (add/remove: its add_reader or add_writer pair)."""
    ready = asyncio.get_running_loop().create_future()
    add(fd, lambda: ready.done() or ready.set_result(None))
    try:
        await ready
    finally:
        remove(fd)


async def wait_readable(fd: int):
    loop = asyncio.get_running_loop()
    await _ready(fd, loop.add_reader, loop.remove_reader)


async def read_fd(fd: int) -> bytes:
    """One read of a non-blocking descriptor, waiting in the event loop."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            return os.read(fd, 65536)
        except BlockingIOError:
            pass
        except OSError:  # EIO: a terminal whose other side closed
            return b""
        await _ready(fd, loop.add_reader, loop.remove_reader)


async def write_fd(fd: int, data: bytes) -> bool:
    loop = asyncio.get_running_loop()
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
            continue
        except BlockingIOError:
            pass
        except OSError:
            return False
        await _ready(fd, loop.add_writer, loop.remove_writer)
    return True


class WebSocketConnection:
    """Hijacked's interface over a websocket (docker's attach/ws): each
    write() one binary message, read() a client message's bytes (b"" once
    the client closed)."""

    def __init__(self, ws: web.WebSocketResponse):
        self.ws = ws
        self.response = ws

    @classmethod
    async def start(cls, request: web.Request) -> "WebSocketConnection":
        ws = web.WebSocketResponse(max_msg_size=1 << 20)
        await ws.prepare(request)
        return cls(ws)

    async def write(self, data: bytes) -> bool:
        if self.ws.closed:
            return False
        if not data:
            return True
        try:
            await self.ws.send_bytes(data)
        except (ConnectionError, RuntimeError):
            return False
        return True

    async def read(self) -> bytes:
        while True:
            msg = await self.ws.receive()
            if msg.type not in (web.WSMsgType.BINARY, web.WSMsgType.TEXT):
                return b""   # closed, or an error: the input ended
            data = msg.data if msg.type == web.WSMsgType.BINARY else msg.data.encode()
            if data:         # an empty message is not the end of the input
                return data

    async def finish(self):
        await self.ws.close()
