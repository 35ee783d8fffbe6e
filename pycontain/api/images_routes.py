"""/images/...: docker's image endpoints over pycontain.image."""
from __future__ import annotations

import asyncio
import base64
import fnmatch
import json
import tempfile

from aiohttp import web

from .. import image
from ..errors import ContainerError, ImageNotFound
from ..logs import parse_time
from .streams import body_to_file, in_thread, send_file
from .convert import BadRequest, has_label, json_response, query_bool, query_filters


def register(routes):
    routes.add("GET", "/images/json", list_images)
    routes.add("POST", "/images/create", create)
    routes.add("GET", "/images/search", search)
    routes.add("POST", "/images/prune", prune)
    routes.add("GET", "/images/{name:.+}/json", inspect)
    routes.add("GET", "/images/{name:.+}/history", history)
    routes.add("POST", "/images/{name:.+}/tag", tag)
    routes.add("GET", "/images/get", save)
    routes.add("POST", "/images/load", load)
    routes.add("GET", "/images/{name:.+}/get", save)
    routes.add("POST", "/images/{name:.+}/push", push)
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
    # the filters applied, never ignored: a client that removes what it lists
    # (testcontainers' reaper: label=SESSION) must not get every image
    filters = query_filters(request.query)
    for key, values in filters.items():
        if key not in ("label", "dangling", "reference"):
            raise BadRequest(f"invalid filter {key!r} (label, dangling, reference)")
        if key == "dangling" and values[-1].lower() not in ("true", "false", "1", "0"):
            raise BadRequest(f"invalid filter 'dangling={values[-1]}'")

    def wanted(tags, labels) -> bool:
        if "dangling" in filters and (not tags) != (filters["dangling"][-1].lower() in ("true", "1")):
            return False
        if "reference" in filters and not any(
                fnmatch.fnmatchcase(tag if ":" in pattern else tag.rpartition(":")[0], pattern)
                for pattern in filters["reference"] for tag in tags):
            return False
        return all(has_label(labels, want) for want in filters.get("label", ()))

    def listing():
        out = []
        for img in image.list_images():
            labels = (image.inspect(img.id).get("Config") or {}).get("Labels") or {}
            if not wanted(_tags(img), labels):
                continue
            out.append({"Id": img.id, "ParentId": "", "RepoTags": _tags(img), "RepoDigests": _digests(img),
                        "Created": _unix(img.created), "Size": img.size, "VirtualSize": img.size,
                        "SharedSize": -1, "Labels": labels, "Containers": -1})
        return out
    return json_response(await in_thread(listing))


async def inspect(request):
    name = request.match_info["name"]
    try:
        doc = await in_thread(image.inspect, name)
    except ImageNotFound:
        raise ImageNotFound(f"No such image: {name}") from None
    rootfs = doc.get("RootFS") or {}
    doc = dict(doc, Parent="", Comment="", Container="", DockerVersion="", VirtualSize=doc.get("Size", 0),
               Metadata={"LastTagTime": "0001-01-01T00:00:00Z"},
               RootFS={"Type": rootfs.get("type", "layers"), "Layers": list(rootfs.get("diff_ids") or [])},
               ContainerConfig={"Hostname": "", "Domainname": "", "User": "", "AttachStdin": False,
                                "AttachStdout": False, "AttachStderr": False, "Tty": False, "OpenStdin": False,
                                "StdinOnce": False, "Env": None, "Cmd": None, "Image": "", "Volumes": None,
                                "WorkingDir": "", "Entrypoint": None, "OnBuild": None, "Labels": None})
    doc["Created"] = doc.get("Created") or "0001-01-01T00:00:00Z"
    return json_response(doc)


async def history(request):
    doc = await in_thread(image.inspect, request.match_info["name"])
    rows = []
    for h in reversed(doc.get("History") or []):
        rows.append({"Id": "<missing>", "Created": _unix(h.get("created")), "CreatedBy": h.get("created_by", ""),
                     "Tags": None, "Size": 0, "Comment": h.get("comment", "")})
    if rows:
        rows[0]["Id"] = doc["Id"]
        rows[0]["Tags"] = doc["RepoTags"]
    return json_response(rows)


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
    return json_response([{kind: what} for kind, what in done])


async def prune(request):
    filters = query_filters(request.query)
    dangling = filters.get("dangling", ["true"])
    done, reclaimed = await in_thread(image.prune, all_images=dangling == ["false"])
    return json_response({"ImagesDeleted": [{kind: what} for kind, what in done] or None,
                              "SpaceReclaimed": reclaimed})


async def search(request):
    return json_response({"message": "searching a registry is not supported by pycontain"}, status=501)


def registry_auth(request):
    """X-Registry-Auth (base64url JSON {username, password}) → (user, password), or None."""
    raw = request.headers.get("X-Registry-Auth")
    if not raw:
        return None
    try:
        doc = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("X-Registry-Auth: not base64 JSON") from None
    if not isinstance(doc, dict) or not doc.get("username"):
        return None
    return str(doc["username"]), str(doc.get("password") or "")


def status_message(event) -> dict:
    """A pull or push progress event as docker's status message."""
    msg = {"status": event.get("status", "")}
    if event.get("id"):
        msg["id"] = event["id"]
    if "current" in event:
        msg["progressDetail"] = {"current": event["current"], "total": event.get("total", 0)}
    return msg


async def progress_stream(request, first: list, work, done_message, message=status_message):
    """docker's JSON message stream: `first` messages, then the library's
    progress events as they come (work(progress) runs in a thread; message()
    makes each docker's), then done_message(result) (a message or a list of
    them), or the error inside the stream (the status line is out already by then)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    def progress(event):
        loop.call_soon_threadsafe(queue.put_nowait, message(event))

    resp = web.StreamResponse(status=200)
    resp.content_type = "application/json"
    await resp.prepare(request)
    for msg in first:
        await resp.write(json.dumps(msg).encode() + b"\r\n")
    task = loop.run_in_executor(None, work, progress)
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
        result = task.result()
    except ContainerError as e:
        await resp.write(json.dumps({"errorDetail": {"message": str(e)}, "error": str(e)}).encode() + b"\r\n")
    else:
        done = done_message(result)
        for msg in done if isinstance(done, list) else [done]:
            await resp.write(json.dumps(msg).encode() + b"\r\n")
    await resp.write_eof()
    return resp


async def create(request):
    """docker pull, with docker's progress stream."""
    q = request.query
    if q.get("fromSrc"):
        return await import_image(request)
    name = q.get("fromImage")
    if not name:
        raise BadRequest("fromImage is required")
    ref = name
    tag_ = q.get("tag")
    if tag_:
        ref = f"{name}@{tag_}" if tag_.startswith("sha256:") else f"{name}:{tag_}"
    platform = q.get("platform") or None
    auth = registry_auth(request)
    return await progress_stream(
        request, [{"status": f"Pulling from {name}", "id": tag_ or "latest"}],
        lambda progress: image.pull(ref, progress=progress, platform=platform, auth=auth),
        lambda _: {"status": f"Status: Downloaded newer image for {ref}"})


async def import_image(request):
    """docker import: the request body (fromSrc=-) is a rootfs tar; a URL source is refused."""
    q = request.query
    if q["fromSrc"] != "-":
        raise BadRequest("import from a URL is not supported by pycontain: send the tar as the body (fromSrc=-)")
    repo, tag_ = q.get("repo"), q.get("tag")
    ref = (f"{repo}:{tag_}" if tag_ else repo) if repo else None
    with tempfile.TemporaryFile() as f:
        await body_to_file(request, f)
        image_id = await in_thread(image.import_, f, ref, q.getall("changes", []), q.get("message") or None)
    return json_response({"status": image_id})


async def push(request):
    name = request.match_info["name"]
    tag_ = request.query.get("tag")
    ref = f"{name}:{tag_}" if tag_ else name
    await in_thread(image.get, ref)   # a 404 before the stream starts
    auth = registry_auth(request)
    return await progress_stream(
        request, [{"status": f"The push refers to repository [{name}]"}],
        lambda progress: image.push(ref, progress=progress, auth=auth),
        lambda digest: {"progressDetail": {}, "aux": {"Tag": tag_ or "latest", "Digest": digest}})


async def save(request):
    """docker save: a docker-save tar of the images (written by the library to a temp file, then sent)."""
    names = request.query.getall("names", []) or ([request.match_info["name"]] if "name" in request.match_info
                                                  else [])
    if not names:
        raise BadRequest("names: at least one image")
    for n in names:
        await in_thread(image.get, n)
    with tempfile.TemporaryFile() as f:
        await in_thread(image.save, names, f)
        return await send_file(request, f)


async def load(request):
    """docker load: the request body (a docker-save tar or an OCI layout tar)."""
    with tempfile.TemporaryFile() as f:
        await body_to_file(request, f)
        names = await in_thread(image.load, f)
    text = "".join(f"Loaded image: {n}\n" if not n.startswith("sha256:") else f"Loaded image ID: {n}\n"
                   for n in names)
    return json_response({"stream": text})
