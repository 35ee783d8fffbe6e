"""POST /build: docker's classic builder protocol (DOCKER_BUILDKIT=0 docker
build, docker-py's images.build) over pycontain.build. The body is the
context as a tar (plain or compressed); the answer is docker's JSON message
stream ({"stream": "Step 1/3 : ..."}, {"aux": {"ID": ...}}, "Successfully
built ..."). BuildKit's session protocol (version=2) is refused clearly."""
from __future__ import annotations

import json
import posixpath
import tempfile

from .. import build
from .containers_routes import default_network
from .convert import BadRequest, query_bool
from .images_routes import progress_stream
from .streams import body_to_file

# Query parameters pycontain's builder does not apply: accepted at their zero
# value only (the docker CLI sends most of them, zero, with every build)
_ZERO_ONLY = ("memory", "memswap", "cpushares", "cpusetcpus", "cpusetmems", "cpuperiod", "cpuquota",
              "shmsize", "cachefrom", "extrahosts", "squash", "isolation", "ulimits", "outputs", "session")
_ZEROS = ("", "0", "false", "False", "[]", "{}", "null")


def register(routes):
    routes.add("POST", "/build", build_image)


def _json_map(query, key) -> dict:
    """buildargs, labels: a JSON object of strings (a null value: the argument is left unset)."""
    raw = query.get(key)
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        raise BadRequest(f"{key}: not JSON") from None
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, (str, type(None))) for v in value.values()):
        raise BadRequest(f"{key}: must be a JSON object of strings")
    return {k: v for k, v in value.items() if v is not None}


def build_kwargs(query) -> dict:
    """The request's query as pycontain.build.build()'s arguments."""
    if query.get("version") == "2":
        raise BadRequest("BuildKit is not supported by pycontain: build with DOCKER_BUILDKIT=0 "
                         "(the classic builder protocol)")
    if query.get("remote"):
        raise BadRequest("remote: a build context from a URL or git is not supported by pycontain; "
                         "send the context as the body")
    for key in _ZERO_ONLY:
        if query.get(key, "") not in _ZEROS:
            raise BadRequest(f"{key}: not supported by pycontain's builder (only its zero value)")
    dockerfile = query.get("dockerfile") or "Dockerfile"
    clean = posixpath.normpath(dockerfile)
    if clean.startswith("/") or clean == ".." or clean.startswith("../"):
        raise BadRequest(f"dockerfile {dockerfile!r}: must be a path inside the build context")
    network = query.get("networkmode") or "default"
    return {
        "tag": query.getall("t", []), "dockerfile": clean, "buildargs": _json_map(query, "buildargs"),
        "labels": _json_map(query, "labels"), "target": query.get("target") or None,
        "nocache": query_bool(query, "nocache"), "pull": query_bool(query, "pull"),
        "network": default_network() if network == "default" else network,
        "platform": query.get("platform") or None,
    }


def _stream_messages(event) -> dict | None:
    """A builder event as the classic builder's message."""
    kind = event["type"]
    if kind == "step":
        return {"stream": f"Step {event['n']}/{event['total']} : {event['instruction']}\n"}
    if kind == "output":
        return {"stream": event["line"] + "\n"}
    if kind == "done":   # the classic builder's lines after a step: [Using cache,] its image's short id
        short = (event.get("image") or "").split(":", 1)[-1][:12]
        lines = (" ---> Using cache\n" if event["cached"] else "") + (f" ---> {short}\n" if short else "")
        return {"stream": lines} if lines else None
    if kind == "warning":
        return {"stream": f"[Warning] {event['message']}\n"}
    return None


async def build_image(request):
    kwargs = build_kwargs(request.query)
    quiet = query_bool(request.query, "q")
    with tempfile.TemporaryFile() as context:
        await body_to_file(request, context)

        def work(progress):
            def each(event):
                msg = None if quiet else _stream_messages(event)
                if msg is not None:
                    progress(msg)
            return build.build(context, progress=each, **kwargs)

        def done(image_id):
            short = image_id.split(":", 1)[-1][:12]
            return [{"aux": {"ID": image_id}}, {"stream": f"Successfully built {short}\n"},
                    *({"stream": f"Successfully tagged {t}\n"} for t in kwargs["tag"])]

        return await progress_stream(request, [], work, done, message=lambda m: m)
