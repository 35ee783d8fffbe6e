"""/images/...: docker's image endpoints over pycontain.image."""
from __future__ import annotations

import asyncio
import json

from aiohttp import web

from .. import image
from ..errors import ContainerError, ImageNotFound
from ..logs import parse_time
from .containers_routes import in_thread
from .convert import BadRequest, query_bool, query_filters


def register(routes):
    routes.add("GET", "/images/json", list_images)
    routes.add("POST", "/images/create", create)
    routes.add("GET", "/images/search", search)
    routes.add("POST", "/images/prune", prune)
    routes.add("GET", "/images/{name:.+}/json", inspect)
    routes.add("GET", "/images/{name:.+}/history", history)
    routes.add("POST", "/images/{name:.+}/tag", tag)
    routes.add("DELETE", "/images/{name:.+}", remove)


def _unix(created) -> int:
    try:
        return int(parse_time(created)) if created else 0
    except ValueError:
        return 0


def _tags(img) -> list:
    return [image.build_familiar(n) for n in img.names if "@" not in n]


def _digests(img) -> list:
    return sorted({image.build_familiar(n.split("@")[0]) + "@" + img.manifest_digest
                   for n in img.names if "@" in n})


async def list_images(request):
    def listing():
        out = []
        for img in image.list():
            labels = (image.inspect(img.id).get("Config") or {}).get("Labels") or {}
            out.append({"Id": img.id, "ParentId": "", "RepoTags": _tags(img), "RepoDigests": _digests(img),
                        "Created": _unix(img.created), "Size": img.size, "VirtualSize": img.size,
                        "SharedSize": -1, "Labels": labels, "Containers": -1})
        return out
    return web.json_response(await in_thread(listing))


async def inspect(request):
    name = request.match_info["name"]
    try:
        doc = await in_thread(image.inspect, name)
    except ImageNotFound:
        raise ImageNotFound(f"No such image: {name}") from None
    doc = dict(doc, Parent="", Comment="", Container="", ContainerConfig={}, DockerVersion="",
               VirtualSize=doc.get("Size", 0), Metadata={"LastTagTime": "0001-01-01T00:00:00Z"})
    doc["Created"] = doc.get("Created") or "0001-01-01T00:00:00Z"
    return web.json_response(doc)


async def history(request):
    doc = await in_thread(image.inspect, request.match_info["name"])
    rows = []
    for h in reversed(doc.get("History") or []):
        rows.append({"Id": "<missing>", "Created": _unix(h.get("created")), "CreatedBy": h.get("created_by", ""),
                     "Tags": None, "Size": 0, "Comment": h.get("comment", "")})
    if rows:
        rows[0]["Id"] = doc["Id"]
        rows[0]["Tags"] = doc["RepoTags"]
    return web.json_response(rows)


async def tag(request):
    repo = request.query.get("repo")
    if not repo:
        raise BadRequest("tag: repo is required")
    target = f"{repo}:{request.query['tag']}" if request.query.get("tag") else repo
    await in_thread(image.tag, request.match_info["name"], target)
    return web.Response(status=201)


async def remove(request):
    force = query_bool(request.query, "force")
    name = request.match_info["name"]
    try:
        done = await in_thread(image.remove, name, force)
    except ImageNotFound:
        raise ImageNotFound(f"No such image: {name}") from None
    return web.json_response([{kind: what} for kind, what in done])


async def prune(request):
    filters = query_filters(request.query)
    dangling = filters.get("dangling", ["true"])
    done, reclaimed = await in_thread(image.prune, all_images=dangling == ["false"])
    return web.json_response({"ImagesDeleted": [{kind: what} for kind, what in done] or None,
                              "SpaceReclaimed": reclaimed})


async def search(request):
    return web.json_response({"message": "searching a registry is not supported by pycontain"}, status=501)


async def create(request):
    """docker pull: the library's progress events as docker's JSON message stream."""
    q = request.query
    if q.get("fromSrc"):
        return web.json_response({"message": "import (fromSrc) is not implemented by pycontain's API yet"},
                                 status=501)
    name = q.get("fromImage")
    if not name:
        raise BadRequest("fromImage is required")
    ref = name
    tag_ = q.get("tag")
    if tag_:
        ref = f"{name}@{tag_}" if tag_.startswith("sha256:") else f"{name}:{tag_}"
    platform = q.get("platform") or None
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    def progress(event):
        msg = {"status": event.get("status", "")}
        if event.get("id"):
            msg["id"] = event["id"]
        if "current" in event:
            msg["progressDetail"] = {"current": event["current"], "total": event.get("total", 0)}
        loop.call_soon_threadsafe(queue.put_nowait, msg)

    def pull():
        return image.pull(ref, progress=progress, platform=platform)

    resp = web.StreamResponse(status=200)
    resp.content_type = "application/json"
    await resp.prepare(request)
    await resp.write(json.dumps({"status": f"Pulling from {name}", "id": tag_ or "latest"}).encode() + b"\r\n")
    task = loop.run_in_executor(None, pull)
    while True:
        getter = asyncio.ensure_future(queue.get())
        done, _ = await asyncio.wait([getter, task], return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            await resp.write(json.dumps(getter.result()).encode() + b"\r\n")
            continue
        getter.cancel()
        while not queue.empty():
            await resp.write(json.dumps(queue.get_nowait()).encode() + b"\r\n")
        break
    try:
        task.result()
    except ContainerError as e:
        # the status line is out already: docker reports a failed pull inside the stream
        await resp.write(json.dumps({"errorDetail": {"message": str(e)}, "error": str(e)}).encode() + b"\r\n")
    else:
        await resp.write(json.dumps({"status": f"Status: Downloaded newer image for {ref}"}).encode() + b"\r\n")
    await resp.write_eof()
    return resp
