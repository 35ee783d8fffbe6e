"""/volumes/... over pycontain.volumes and /networks/... over pycontain.network."""
from __future__ import annotations

import time

from aiohttp import web

from .. import containers, network, volumes
from ..errors import NetworkNotFound
from .containers_routes import body_of
from .streams import in_thread
from .convert import BadRequest, endpoint_options, has_label, json_response, query_bool, query_filters

# docker lists these two as networks too; pycontain has them as modes
_MODES = ("host", "none")


def register(routes):
    routes.add("GET", "/volumes", list_volumes)
    routes.add("POST", "/volumes/create", create_volume)
    routes.add("POST", "/volumes/prune", prune_volumes)
    routes.add("GET", "/volumes/{name}", inspect_volume)
    routes.add("DELETE", "/volumes/{name}", remove_volume)
    routes.add("GET", "/networks", list_networks)
    routes.add("POST", "/networks/create", create_network)
    routes.add("POST", "/networks/prune", prune_networks)
    routes.add("GET", "/networks/{id}", inspect_network)
    routes.add("DELETE", "/networks/{id}", remove_network)
    routes.add("POST", "/networks/{id}/connect", connect_container)
    routes.add("POST", "/networks/{id}/disconnect", disconnect_container)


# ---- volumes --------------------------------------------------------------------------------


async def list_volumes(request):
    filters = query_filters(request.query)
    dangling = None
    for key, values in filters.items():
        if key not in ("dangling", "label"):
            raise BadRequest(f"invalid filter {key!r} (dangling, label)")
        if key == "dangling":
            dangling = values[-1].lower() in ("1", "true")
    found = await in_thread(volumes.list_volumes, None, dangling)
    found = [v for v in found if all(has_label(v.labels, w) for w in filters.get("label", ()))]
    return json_response({"Volumes": [v.attrs for v in found], "Warnings": []})


async def create_volume(request):
    body = await body_of(request) or {}
    if not isinstance(body, dict):
        raise BadRequest("the volume config must be a JSON object")
    unknown = sorted(set(body) - {"Name", "Driver", "DriverOpts", "Labels", "ClusterVolumeSpec"})
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]}")
    if body.get("Driver") not in (None, "", "local"):
        raise BadRequest(f"volume driver {body['Driver']!r} is not supported by pycontain (local)")
    if body.get("DriverOpts") or body.get("ClusterVolumeSpec"):
        raise BadRequest("DriverOpts are not supported by pycontain")
    labels = body.get("Labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise BadRequest("Labels: an object of strings")
    name = body.get("Name") or None
    if name is not None and not isinstance(name, str):
        raise BadRequest("Name: expected a string")
    v = await in_thread(volumes.create, name, labels)
    return json_response(v.attrs, status=201)


async def inspect_volume(request):
    return json_response((await in_thread(volumes.get, request.match_info["name"])).attrs)


async def remove_volume(request):
    await in_thread(volumes.remove, request.match_info["name"], query_bool(request.query, "force"))
    return web.Response(status=204)


async def prune_volumes(request):
    filters = query_filters(request.query)
    every = filters.get("all", ["false"])[-1].lower() in ("1", "true")
    return json_response(await in_thread(volumes.prune, every))


# ---- networks -----------------------------------------------------------------------------------


def _network_doc(info: dict) -> dict:
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(info.get("created") or 0))
    return {
        "Name": info["name"], "Id": info["id"], "Created": created, "Scope": "local",
        "Driver": info.get("driver", "bridge"), "EnableIPv6": False, "Internal": bool(info.get("internal")),
        "Attachable": False, "Ingress": False, "ConfigFrom": {"Network": ""}, "ConfigOnly": False,
        "IPAM": {"Driver": "default", "Options": None,
                 "Config": [{"Subnet": info["subnet"], "Gateway": info["gateway"]}]},
        "Containers": {c["id"]: {"Name": c["name"], "IPv4Address": c["address"], "IPv6Address": "",
                                 "MacAddress": "", "EndpointID": ""} for c in info.get("containers", ())},
        "Options": {"com.docker.network.bridge.name": info.get("bridge", "")}, "Labels": info.get("labels") or {},
    }


def _mode_doc(mode: str) -> dict:
    return {"Name": mode, "Id": mode, "Created": "0001-01-01T00:00:00Z", "Scope": "local", "Driver": mode,
            "EnableIPv6": False, "Internal": False, "Attachable": False, "Ingress": False,
            "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "IPAM": {"Driver": "default", "Options": None,
                                                                         "Config": []},
            "Containers": {}, "Options": {}, "Labels": {}}


def _all_networks() -> list:
    out = [_network_doc(network.inspect_network(n.name)) for n in network.list_networks()]
    return out + [_mode_doc(m) for m in _MODES]


def _find(ref: str) -> dict:
    """A network by name, id or unambiguous id prefix, as docker looks them up."""
    docs = _all_networks()
    for d in docs:
        if ref in (d["Name"], d["Id"]):
            return d
    matches = [d for d in docs if d["Id"].startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    raise NetworkNotFound(f"network {ref} not found")


async def list_networks(request):
    filters = query_filters(request.query)
    docs = await in_thread(_all_networks)
    for key, values in filters.items():
        if key == "name":
            docs = [d for d in docs if any(v in d["Name"] for v in values)]
        elif key == "id":
            docs = [d for d in docs if any(d["Id"].startswith(v) for v in values)]
        elif key == "driver":
            docs = [d for d in docs if d["Driver"] in values]
        elif key == "label":
            docs = [d for d in docs if all(has_label(d["Labels"], v) for v in values)]
        else:
            raise BadRequest(f"invalid filter {key!r} (name, id, driver, label)")
    return json_response(docs)


async def inspect_network(request):
    return json_response(await in_thread(_find, request.match_info["id"]))


async def create_network(request):
    body = await body_of(request)
    if not isinstance(body, dict) or not isinstance(body.get("Name"), str) or not body["Name"]:
        raise BadRequest("the network config must be a JSON object with a Name")
    known = {"Name", "CheckDuplicate", "Driver", "Internal", "IPAM", "Labels", "Options", "EnableIPv6",
             "EnableIPv4", "Attachable", "Ingress", "Scope", "ConfigOnly", "ConfigFrom"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]}")
    if body.get("Driver") not in (None, "", "bridge"):
        raise BadRequest(f"network driver {body['Driver']!r} is not supported by pycontain (bridge)")
    for key in ("EnableIPv6", "Attachable", "Ingress", "ConfigOnly", "Options", "ConfigFrom"):
        if body.get(key):
            raise BadRequest(f"{key} is not supported by pycontain")
    configs = (body.get("IPAM") or {}).get("Config") or []
    if not isinstance(configs, list) or len(configs) > 1:
        raise BadRequest("IPAM.Config: at most one subnet")
    subnet = configs[0].get("Subnet") if configs else None
    gateway = configs[0].get("Gateway") if configs else None
    labels = body.get("Labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise BadRequest("Labels: an object of strings")
    net = await in_thread(network.create_network, body["Name"], subnet, gateway, bool(body.get("Internal")),
                          None, labels)
    return json_response({"Id": net.id, "Warning": ""}, status=201)


async def remove_network(request):
    doc = await in_thread(_find, request.match_info["id"])
    if doc["Name"] in _MODES or doc["Name"] == "bridge":
        return json_response({"message": f"{doc['Name']} is a pre-defined network and cannot be removed"},
                                 status=403)
    await in_thread(network.remove_network, doc["Name"])
    return web.Response(status=204)


async def prune_networks(request):
    query_filters(request.query)
    return json_response({"NetworksDeleted": await in_thread(network.prune_networks)})


def _container_ref(body) -> str:
    if not isinstance(body, dict) or not isinstance(body.get("Container"), str) or not body["Container"]:
        raise BadRequest("the body must be a JSON object with a Container")
    return body["Container"]


async def connect_container(request):
    body = await body_of(request)
    ref = _container_ref(body)
    unknown = sorted(set(body) - {"Container", "EndpointConfig"})
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]}")
    aliases, ip = endpoint_options(body.get("EndpointConfig"), "EndpointConfig")

    def connect():
        name = _find(request.match_info["id"])["Name"]
        containers.get(ref).connect_network(name, aliases=aliases, ip=ip)

    await in_thread(connect)
    return web.Response(status=200)


async def disconnect_container(request):
    body = await body_of(request)
    ref = _container_ref(body)
    unknown = sorted(set(body) - {"Container", "Force"})
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]}")
    if not isinstance(body.get("Force", False), bool):
        raise BadRequest("Force: true or false")

    def disconnect():
        name = _find(request.match_info["id"])["Name"]
        containers.get(ref).disconnect_network(name, force=body.get("Force", False))

    await in_thread(disconnect)
    return web.Response(status=200)
