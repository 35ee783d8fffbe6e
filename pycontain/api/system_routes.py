"""/_ping, /version, /info, /events, /system/df."""
from __future__ import annotations

import asyncio
import json
import os
import platform
import threading
import time

from aiohttp import web

from .. import __version__, containers, image, system, volumes
from .. import events as pycontain_events
from .._paths import default_root
from ..image import registry
from ..managed import starter
from .containers_routes import body_of
from .streams import in_thread, thread_iter
from .convert import API_VERSION, MIN_API_VERSION, BadRequest, api_headers, json_response, query_filters


def register(routes):
    routes.add("GET", "/_ping", ping)
    routes.add("HEAD", "/_ping", ping)
    routes.add("GET", "/version", version)
    routes.add("GET", "/info", info)
    routes.add("GET", "/events", events)
    routes.add("GET", "/system/df", disk_usage)
    routes.add("POST", "/auth", auth)


async def ping(request):
    headers = dict(api_headers(), **{"Builder-Version": "1", "Cache-Control": "no-cache, no-store, must-revalidate",
                                     "Pragma": "no-cache"})
    return web.Response(text="OK" if request.method == "GET" else None, headers=headers,
                        content_type="text/plain")


async def version(request):
    kernel = platform.release()
    engine = {"Version": __version__, "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
              "GitCommit": "", "GoVersion": f"python{platform.python_version()}", "Os": "linux",
              "Arch": _arch(), "KernelVersion": kernel, "BuildTime": ""}
    components = [{"Name": "Engine", "Version": __version__, "Details": {
        k: v for k, v in engine.items() if k != "Version"}}]
    forks = starter.current()
    served = await in_thread(forks.stats) if forks is not None else None
    if served is not None:   # the fork server that starts containers (managed/starter.py)
        components.append({"Name": "pycontain-starter", "Version": __version__, "Details": {
            "Pid": str(served["pid"]), "Starts": str(served["starts"]), "Restarts": str(served["restarts"])}})
    return json_response(dict(engine, Platform={"Name": f"pycontain {__version__}"}, Components=components))


def _arch():
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


async def info(request):
    def gather():
        recs = containers.list_containers(all=True)
        states = [c.status for c in recs]
        described = system.describe()
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) * 1024
        return {
            "ID": "pycontain", "Containers": len(states), "ContainersRunning": states.count("running"),
            "ContainersPaused": states.count("paused"),
            "ContainersStopped": len(states) - states.count("running") - states.count("paused"),
            "Images": len(image.list_images()), "Driver": "overlay", "DriverStatus": [],
            "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "none"], "Log": ["json-file"],
                        "Authorization": None},
            "MemoryLimit": True, "SwapLimit": True, "CpuCfsPeriod": True, "CpuCfsQuota": True,
            "CPUShares": True, "CPUSet": True, "PidsLimit": True, "IPv4Forwarding": False,
            "Debug": False, "NFd": len(os.listdir("/proc/self/fd")), "NGoroutines": 0,
            "SystemTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs", "CgroupVersion": "2" if described["cgroup_layout"].startswith("unified")
            else "1", "NEventsListener": 0, "KernelVersion": described["kernel"],
            "OperatingSystem": _os_name(), "OSVersion": "", "OSType": "linux", "Architecture": platform.machine(),
            "NCPU": os.cpu_count() or 1, "MemTotal": mem, "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {"IndexConfigs": {}, "InsecureRegistryCIDRs": ["127.0.0.0/8"], "Mirrors": [],
                               "AllowNondistributableArtifactsCIDRs": [],
                               "AllowNondistributableArtifactsHostnames": []},
            "DockerRootDir": described["root"], "Name": platform.node(), "Labels": [],
            "ExperimentalBuild": False, "ServerVersion": __version__, "Runtimes": {"pycontain": {"path": ""}},
            "DefaultRuntime": "pycontain", "Swarm": {"LocalNodeState": "inactive", "NodeID": "", "NodeAddr": "",
                                                     "ControlAvailable": False, "Error": "", "RemoteManagers": None},
            "LiveRestoreEnabled": True, "Isolation": "", "InitBinary": "", "SecurityOptions":
                ["name=seccomp,profile=builtin"] + (["name=rootless"] if os.geteuid() else []),
            "Warnings": None, "BridgeNfIptables": False, "BridgeNfIp6tables": False, "KernelMemory": False,
            "KernelMemoryTCP": False, "OomKillDisable": False, "GenericResources": None, "HttpProxy": "",
            "HttpsProxy": "", "NoProxy": "", "ContainerdCommit": {"ID": "", "Expected": ""},
            "RuncCommit": {"ID": "", "Expected": ""}, "InitCommit": {"ID": "", "Expected": ""},
        }
    return json_response(await in_thread(gather))


def _os_name():
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


async def disk_usage(request):
    usage = await in_thread(containers.disk_usage)
    imgs = await in_thread(image.list)
    vols = await in_thread(volumes.list_volumes)
    return json_response({
        "LayersSize": sum(i.size for i in imgs),
        "Images": [{"Id": i.id, "RepoTags": [image.build_familiar(n) for n in i.names if "@" not in n],
                    "Size": i.size, "SharedSize": 0, "Containers": 0, "Created": 0, "ParentId": "",
                    "RepoDigests": [], "Labels": {}, "VirtualSize": i.size} for i in imgs],
        "Containers": [], "Volumes": [{"Name": v.name, "Driver": "local", "Mountpoint": "", "Labels": {},
                                       "Scope": "local", "Options": {}, "UsageData": {"Size": -1, "RefCount": -1}}
                                      for v in vols],
        "BuildCache": [], "_pycontain": usage,
    })


def registry_of(server: str) -> str:
    """docker login's serveraddress as a registry host: "https://index.docker.io/v1/"
    (the CLI's name for Docker Hub) is docker.io; a scheme and a path are dropped."""
    host = server.split("://", 1)[-1].split("/", 1)[0]
    return "docker.io" if host in ("", "index.docker.io", "registry-1.docker.io") else host


async def auth(request):
    """docker login: checks the credentials against the registry and keeps
    nothing (the client saves them, and sends them with each pull and push)."""
    body = await body_of(request)
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    user, password = body.get("username"), body.get("password")
    server = body.get("serveraddress") or ""
    if not all(isinstance(v, str) for v in (user, password, server)) or not user or not password:
        raise BadRequest("username and password (strings) are required"
                         + ("; identity tokens are not supported by pycontain" if body.get("identitytoken") else ""))
    host = registry_of(server)
    try:
        await in_thread(registry.check_login, host, user, password)
    except registry.AuthError as e:
        return json_response({"message": f"login attempt to {host} failed: {e}"}, status=401)
    return json_response({"Status": "Login Succeeded", "IdentityToken": ""})


# ---- events -----------------------------------------------------------------------------------

def _timestamp_ns(request, key):
    """docker's since/until: Unix seconds, with a fraction to the nanosecond."""
    value = request.query.get(key)
    if not value:
        return None
    sec, _, frac = value.partition(".")
    if not sec.lstrip("-").isdigit() or (frac and not frac.isdigit()):
        raise BadRequest(f"invalid {key} {value!r}: Unix seconds expected")
    return int(sec) * 10**9 + int((frac + "000000000")[:9] if frac else 0)


async def events(request):
    """The events log (pycontain/events.py: every process's events, not only
    this service's), replayed from `since`, then followed until `until`
    (for ever without it); docker's filters."""
    try:
        match = pycontain_events.Filter(query_filters(request.query))
    except ValueError as e:
        raise BadRequest(str(e)) from None
    since, until = _timestamp_ns(request, "since"), _timestamp_ns(request, "until")
    resp = web.StreamResponse(status=200)
    resp.content_type = "application/json"
    await resp.prepare(request)   # the headers now: docker's CLI waits for them before it prints anything
    stop = threading.Event()
    root = default_root()
    try:
        async for event in thread_iter(
                lambda: pycontain_events.follow(root, since, until, match, stop=stop.is_set), stop):
            if event is not None:
                await resp.write(json.dumps(pycontain_events.with_legacy_fields(event)).encode() + b"\n")
        await resp.write_eof()
    except (ConnectionError, asyncio.CancelledError):
        stop.set()
        raise
    return resp
