"""/containers/...: docker's container endpoints over pycontain.containers."""
from __future__ import annotations

import asyncio
import json
import os
import struct
import tempfile
import threading

from aiohttp import web

from .. import containers, copy_archive
from ..attach import frame as attach_frame, parse_detach_keys, split_detach_keys
from ..errors import ConfigError, ContainerError, ImageNotFound
from ..logs import parse_time
from . import convert, streams
from .convert import BadRequest, json_response, query_bool, query_int
from .streams import in_thread


def register(routes):
    routes.add("POST", "/containers/create", create)
    routes.add("GET", "/containers/json", list_containers)
    routes.add("POST", "/containers/prune", prune)
    routes.add("GET", "/containers/{id}/json", inspect)
    routes.add("POST", "/containers/{id}/start", start)
    routes.add("POST", "/containers/{id}/stop", stop)
    routes.add("POST", "/containers/{id}/restart", restart)
    routes.add("POST", "/containers/{id}/kill", kill)
    routes.add("POST", "/containers/{id}/pause", pause)
    routes.add("POST", "/containers/{id}/unpause", unpause)
    routes.add("POST", "/containers/{id}/rename", rename)
    routes.add("POST", "/containers/{id}/update", update)
    routes.add("POST", "/containers/{id}/wait", wait)
    routes.add("GET", "/containers/{id}/logs", logs)
    routes.add("POST", "/containers/{id}/attach", attach)
    routes.add("GET", "/containers/{id}/attach/ws", attach_websocket)
    routes.add("GET", "/containers/{id}/top", top)
    routes.add("GET", "/containers/{id}/stats", stats)
    routes.add("GET", "/containers/{id}/export", export)
    routes.add("POST", "/containers/{id}/resize", resize)
    routes.add("GET", "/containers/{id}/changes", changes)
    routes.add("HEAD", "/containers/{id}/archive", archive_stat)
    routes.add("GET", "/containers/{id}/archive", get_archive)
    routes.add("PUT", "/containers/{id}/archive", put_archive)
    routes.add("DELETE", "/containers/{id}", remove)
    routes.add("POST", "/commit", commit)


async def body_of(request):
    return convert.parse_json(await request.read())


async def container_of(request) -> containers.ManagedContainer:
    return await in_thread(containers.get, request.match_info["id"])


def default_network() -> str:
    """What NetworkMode "default" means: the CLI's default ($PYCONTAIN_NETWORK, else bridge)."""
    return os.environ.get("PYCONTAIN_NETWORK") or "bridge"


# ---- create, list, inspect ---------------------------------------------------------------------


async def create(request):
    name = request.query.get("name") or None
    body = await body_of(request)
    kwargs = convert.create_kwargs(body, name, default_network())
    kwargs["pull"] = "never"  # docker's clients pull (with progress) when create says 404
    _, more_networks = convert.endpoints(body, kwargs.get("network", "none"))

    def make():
        try:
            c = containers.create(**kwargs)
        except ImageNotFound:
            raise ImageNotFound(f"No such image: {kwargs['image']}") from None
        try:
            for net, aliases, ip in more_networks:
                c.connect_network(net, aliases=aliases, ip=ip)
        except BaseException:
            c.remove(force=True)
            raise
        return c

    c = await in_thread(make)
    return json_response({"Id": c.id, "Warnings": []}, status=201)


async def list_containers(request):
    filters = convert.query_filters(request.query)
    all_ = query_bool(request.query, "all")
    limit = query_int(request.query, "limit", -1)
    lib_filters = {}
    for key, values in filters.items():
        if key == "name":
            lib_filters["name"] = values
        elif key in ("id", "status", "exited", "ancestor", "label", "health"):
            lib_filters[key] = values
        else:
            raise BadRequest(f"invalid filter {key!r}")

    def listing():
        found = containers.list_containers(all=all_ or bool(lib_filters.get("status")) or bool(lib_filters.get("exited")),
                                filters=lib_filters or None,
                                exec_profiles=False)   # the summary shows only their network part, as ps
        if not all_ and "status" not in lib_filters:
            found = [c for c in found if c.status in ("running", "paused", "restarting")]
        if limit is not None and limit > 0:
            found = found[:limit]
        return [convert.container_summary(inspect_doc(c)) for c in found]

    return json_response(await in_thread(listing))


def inspect_doc(c) -> dict:
    """docker inspect's document: the library's (NetworkSettings.Networks included)."""
    return convert.container_inspect(c.attrs)


async def inspect(request):
    c = await container_of(request)
    return json_response(await in_thread(inspect_doc, c))


async def prune(request):
    convert.query_filters(request.query)
    return json_response(await in_thread(containers.prune))


# ---- lifecycle ------------------------------------------------------------------------------------


async def start(request):
    c = await container_of(request)
    if c.status in ("running", "restarting"):
        return web.Response(status=304)
    try:
        await in_thread(c.start)
    except containers.StartFailed as e:
        # docker's CLI reads the exit status (126, 127) from the message; 400 like dockerd's
        return convert_error(400 if e.exit_status in (126, 127) else 500, str(e))
    return web.Response(status=204)


def convert_error(status, message):
    return json_response({"message": message}, status=status)


def _timeout(request):
    t = query_int(request.query, "t")
    if t is None:
        t = query_int(request.query, "timeout")
    return t


async def stop(request):
    c = await container_of(request)
    if c.status not in ("running", "paused", "restarting"):
        return web.Response(status=304)
    timeout = _timeout(request)
    sig = request.query.get("signal") or None
    await in_thread(c.stop, timeout if timeout is None or timeout >= 0 else 3600 * 24, sig)
    return web.Response(status=204)


async def restart(request):
    c = await container_of(request)
    timeout = _timeout(request)
    await in_thread(c.restart, timeout)
    return web.Response(status=204)


async def kill(request):
    c = await container_of(request)
    sig = request.query.get("signal") or "SIGKILL"
    try:
        await in_thread(c.kill, sig)
    except containers.ContainerStateError:
        return convert_error(409, f"Cannot kill container: {request.match_info['id']}: "
                                  f"Container {c.id} is not running")
    return web.Response(status=204)


async def pause(request):
    c = await container_of(request)
    await in_thread(c.pause)
    return web.Response(status=204)


async def unpause(request):
    c = await container_of(request)
    await in_thread(c.unpause)
    return web.Response(status=204)


async def rename(request):
    c = await container_of(request)
    new = request.query.get("name")
    if not new:
        raise BadRequest("rename: the new name is required (?name=)")
    await in_thread(c.rename, new)
    return web.Response(status=204)


async def remove(request):
    c = await container_of(request)
    force = query_bool(request.query, "force")
    volumes = query_bool(request.query, "v")
    try:
        await in_thread(c.remove, force=force, volumes=volumes)
    except containers.NoSuchContainer:
        if not force:
            raise
    return web.Response(status=204)


async def wait(request):
    """The headers go out before the container can exit (docker run sends
    wait before start): the status follows in the body when it is known."""
    condition = request.query.get("condition") or "not-running"
    if condition not in ("not-running", "next-exit", "removed"):
        raise BadRequest(f"invalid condition {condition!r}: not-running, next-exit or removed")
    c = await container_of(request)
    resp = web.StreamResponse(status=200)
    resp.content_type = "application/json"
    await resp.prepare(request)
    error = None
    # watched from now: the monitor that removes an --rm container is seen while it lives
    removed = asyncio.ensure_future(c.removed_async()) if condition == "removed" else None
    try:
        if condition == "not-running" and c.status not in ("running", "paused", "restarting"):
            code = c.record.exit_code or 0
        else:
            code = await c.wait_async()
        if removed is not None:
            await removed
    except ContainerError as e:
        code, error = -1, {"Message": str(e)}
    finally:
        if removed is not None:
            removed.cancel()
    await resp.write(json.dumps({"StatusCode": code, "Error": error}).encode() + b"\n")
    await resp.write_eof()
    return resp


# ---- output ----------------------------------------------------------------------------------------


def _since(value):
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        try:
            return parse_time(value)
        except ValueError:
            raise BadRequest(f"invalid since/until value {value!r}") from None


def _tail(value):
    if value in (None, "", "all"):
        return None
    try:
        return max(0, int(value))
    except ValueError:
        raise BadRequest(f"invalid tail value {value!r}: a number or all") from None


def _entry_bytes(entry, tty, timestamps):
    stream, text, t = entry
    data = ((t + " ") if timestamps else "").encode() + text.encode()
    return data if tty else streams.frame(streams.STDERR if stream == "stderr" else streams.STDOUT, data)


async def logs(request):
    q = request.query
    want_out, want_err = query_bool(q, "stdout"), query_bool(q, "stderr")
    if not (want_out or want_err):
        raise BadRequest("Bad parameters: you must choose at least one stream")
    follow, timestamps = query_bool(q, "follow"), query_bool(q, "timestamps")
    since, until, tail = _since(q.get("since")), _since(q.get("until")), _tail(q.get("tail"))
    c = await container_of(request)
    tty = bool(c.record.config.get("tty"))
    stop_event = threading.Event()
    entries = await in_thread(c.log_entries, follow, tail, since, stop=stop_event)
    resp = web.StreamResponse(status=200)
    resp.content_type = streams.RAW_STREAM if tty else streams.MULTIPLEXED_STREAM
    await resp.prepare(request)
    try:
        async for entry in streams.thread_iter(lambda: entries, stop_event):
            if until is not None and parse_time(entry[2]) > until:
                break
            if (entry[0] == "stderr" and not want_err) or (entry[0] != "stderr" and not want_out):
                continue
            await resp.write(_entry_bytes(entry, tty, timestamps))
        await resp.write_eof()
    except (ConnectionError, asyncio.CancelledError):
        stop_event.set()
        raise
    return resp


async def attach(request):
    """docker attach / docker run's attach: output from the container's log
    as it is written (followed from the first byte when the container has
    not started yet), on the hijacked connection."""
    c = await container_of(request)
    tty = bool(c.record.config.get("tty"))
    stop_event = threading.Event()
    entries = await _attach_entries(c, request.query, stop_event)
    conn = await streams.Hijacked.start(
        request, streams.RAW_STREAM if tty else streams.MULTIPLEXED_STREAM)
    return await _attached(c, request.query, conn, entries, stop_event, raw=tty)


async def attach_websocket(request):
    """docker's attach over a websocket: the same, the output raw in binary
    messages (a message is the framing, as docker's), messages in to stdin."""
    c = await container_of(request)
    stop_event = threading.Event()
    entries = await _attach_entries(c, request.query, stop_event)
    conn = await streams.WebSocketConnection.start(request)
    return await _attached(c, request.query, conn, entries, stop_event, raw=True)


async def _attach_entries(c, q, stop_event):
    """The log entries an attach sends; made before the answer, so that no output is missed."""
    if query_bool(q, "stream"):
        return await in_thread(c.log_entries, True, None if query_bool(q, "logs") else 0, None,
                               next_run=True, stop=stop_event, poll=0.01)
    return await in_thread(c.log_entries, False) if query_bool(q, "logs") else iter(())


def _detach_keys(q) -> bytes:
    """docker's detachKeys (its daemon's default: ctrl-p,ctrl-q)."""
    try:
        return parse_detach_keys(q.get("detachKeys", "ctrl-p,ctrl-q"))
    except ConfigError as e:
        raise BadRequest(str(e)) from None


async def _attached(c, q, conn, entries, stop_event, raw):
    want_out, want_err = query_bool(q, "stdout"), query_bool(q, "stderr")
    # as docker's daemon, the keys are looked for in a terminal's input only
    keys = _detach_keys(q) if c.record.config.get("tty") else b""
    if query_bool(q, "stdin") and c.record.config.get("stdin_open"):
        # attached before start (docker run -i): the input's end is the container's (StdinOnce)
        reader = asyncio.ensure_future(_forward_input(c, conn, stop_event, once=c.status == "created",
                                                      detach_keys=keys))
    else:
        reader = asyncio.ensure_future(_discard_input(conn))
    try:
        async for entry in streams.thread_iter(lambda: entries, stop_event):
            if (entry[0] == "stderr" and not want_err) or (entry[0] != "stderr" and not want_out):
                continue
            if not await conn.write(_entry_bytes(entry, raw, False)):
                break
    finally:
        stop_event.set()
        reader.cancel()
    # the reader is done first: a websocket's close reads the client's answer itself
    await asyncio.gather(reader, return_exceptions=True)
    await conn.finish()
    return conn.response


async def _discard_input(conn):
    """Input of a client that did not ask for stdin (or a container without -i): dropped."""
    while await conn.read():
        pass


async def _forward_input(c, conn, stop_event, once, detach_keys=b""):
    """The client's input to the container's stdin, through its monitor's
    attach socket, once the container runs (input sent before waits). The
    detach keys end the attach (stop_event), the container runs on."""
    loop = asyncio.get_running_loop()
    while not stop_event.is_set():
        try:
            await in_thread(c.reload)
        except containers.NoSuchContainer:
            return
        if c.status == "running":
            break
        if c.status not in ("created", "restarting") or not once:
            return
        await asyncio.sleep(0.01)
    else:
        return
    sock = await in_thread(c.attach_socket)
    sock.setblocking(False)
    # the monitor also sends us the output (we read it from the log): drained, or it would block
    drain = asyncio.ensure_future(_drain_socket(loop, sock))
    pending = b""
    try:
        while True:
            data = await conn.read()
            if not data:
                if once:
                    await loop.sock_sendall(sock, attach_frame("e", b""))
                return
            data, pending, detached = split_detach_keys(pending + data, detach_keys)
            if data:
                await loop.sock_sendall(sock, attach_frame("d", data))
            if detached:
                stop_event.set()
                return
    except OSError:
        return
    finally:
        drain.cancel()
        sock.close()


async def _drain_socket(loop, sock):
    while await loop.sock_recv(sock, 65536):
        pass


async def top(request):
    c = await container_of(request)
    return json_response(await in_thread(c.top))


async def stats(request):
    c = await container_of(request)
    stream = query_bool(request.query, "stream", True)
    resp = web.StreamResponse(status=200)
    resp.content_type = "application/json"
    await resp.prepare(request)
    previous = None
    while True:
        s = await in_thread(c.stats, 0.1 if previous is None else 1.0)
        doc = _stats_doc(s, previous)
        previous = doc
        await resp.write(json.dumps(doc).encode() + b"\n")
        if not stream or c.status not in ("running", "paused"):
            break
    await resp.write_eof()
    return resp


def _stats_doc(s, previous):
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    cpu_total = int(s.get("cpu_percent", 0.0) * 1e7)
    doc = {
        "read": now, "id": s["id"], "name": "/" + s["name"],
        "pids_stats": {"current": s.get("pids", 0)},
        "memory_stats": {"usage": s.get("memory_usage", 0), "limit": s.get("memory_limit", 0)},
        "cpu_stats": {"cpu_usage": {"total_usage": cpu_total}, "system_cpu_usage": 0,
                      "online_cpus": os.cpu_count() or 1},
    }
    doc["precpu_stats"] = previous["cpu_stats"] if previous else {"cpu_usage": {"total_usage": 0},
                                                                  "system_cpu_usage": 0}
    return doc


async def export(request):
    c = await container_of(request)
    resp = web.StreamResponse(status=200)
    resp.content_type = "application/x-tar"
    await resp.prepare(request)
    loop = asyncio.get_running_loop()
    r, w = os.pipe()

    def produce():
        with os.fdopen(w, "wb") as f:
            try:
                c.export(f)
            except (BrokenPipeError, ContainerError):
                pass

    producer = loop.run_in_executor(None, produce)
    os.set_blocking(r, False)
    try:
        while True:
            data = await streams.read_fd(r)
            if not data:
                break
            await resp.write(data)
    finally:
        os.close(r)
        await producer
    await resp.write_eof()
    return resp


async def update(request):
    """docker update: limits and restart policy (convert.update_options)."""
    options = convert.update_options(await body_of(request))
    c = await container_of(request)
    if options:
        await in_thread(lambda: c.update(**options))
    return json_response({"Warnings": []})


# docker's ChangeType numbers
_CHANGE_KINDS = {"C": 0, "A": 1, "D": 2}


async def changes(request):
    """docker diff: the container's writable layer against its image."""
    c = await container_of(request)
    found = await in_thread(c.changes)
    return json_response([{"Path": path, "Kind": _CHANGE_KINDS[kind]} for kind, path in found])


# ---- archive: docker cp -------------------------------------------------------------------


def _archive_path(request) -> str:
    path = request.query.get("path")
    if not path:
        raise BadRequest("path is required (?path=...)")
    if "\0" in path:
        raise BadRequest("path: a NUL byte is not allowed")
    return path


async def archive_stat(request):
    """HEAD: the path's stat in docker's header (docker cp asks before it copies in)."""
    c = await container_of(request)
    st = await in_thread(copy_archive.path_stat, c, _archive_path(request))
    return web.Response(status=200, headers=convert.path_stat_header(st))


async def get_archive(request):
    """docker cp CONTAINER:PATH -: a tar of the path, its stat in the header.
    The tar is made whole first (a temp file), so that an error is an answer, not a cut stream."""
    c = await container_of(request)
    path = _archive_path(request)
    with tempfile.TemporaryFile() as f:
        st = await in_thread(copy_archive.get_archive, c, path, f)
        return await streams.send_file(request, f, convert.path_stat_header(st))


async def put_archive(request):
    """docker cp - CONTAINER:DIR: the body, a tar, extracted into the directory
    (copyUIDGID: the tar's owners, as docker cp -a)."""
    c = await container_of(request)
    path = _archive_path(request)
    keep_owners = query_bool(request.query, "copyUIDGID")
    with tempfile.TemporaryFile() as f:
        await streams.body_to_file(request, f)
        await in_thread(copy_archive.put_archive, c, path, f, keep_owners)
    return web.Response(status=200)


async def resize(request):
    """The container's terminal takes the client's size (docker run -t),
    through its monitor's attach socket."""
    c = await container_of(request)
    h, w = query_int(request.query, "h", 0), query_int(request.query, "w", 0)
    if c.record.config.get("tty") and c.status == "running" and h and w:
        try:
            sock = await in_thread(c.attach_socket)
        except ContainerError:
            return web.Response(status=200)   # it ended meanwhile
        try:
            await in_thread(sock.sendall, attach_frame("w", struct.pack("HHHH", h, w, 0, 0)))
        except OSError:
            pass
        finally:
            sock.close()
    return web.Response(status=200)


async def commit(request):
    """docker commit: the container's changes as a new image (ManagedContainer.commit)."""
    q = request.query
    ref = q.get("container")
    if not ref:
        raise BadRequest("commit: container is required")
    c = await in_thread(containers.get, ref)
    body = await body_of(request)
    if body not in (None, {}) and any(v not in (None, "", [], {}, False) for v in body.values()):
        raise BadRequest("commit: a config body is not supported by pycontain; use changes=")
    repo, tag_ = q.get("repo"), q.get("tag")
    target = (f"{repo}:{tag_}" if tag_ else repo) if repo else None
    image_id = await in_thread(c.commit, target, changes=q.getall("changes", []),
                               message=q.get("comment") or None, author=q.get("author") or None)
    return json_response({"Id": image_id}, status=201)
