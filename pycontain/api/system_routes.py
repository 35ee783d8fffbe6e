"""/_ping, /version, /info, /events, /system/df."""
from __future__ import annotations

import asyncio
import json
import os
import platform
import time

from aiohttp import web

from .. import __version__, containers, image, system, volumes
from ..image import registry
from .containers_routes import body_of, in_thread
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
    return json_response(dict(engine, Platform={"Name": f"pycontain {__version__}"},
                                  Components=[{"Name": "Engine", "Version": __version__, "Details": {
                                      k: v for k, v in engine.items() if k != "Version"}}]))


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

def _actions(old, new, removed_status):
    """docker's actions between two looks at a container's record:
    (state, started, finished, ...) tuples, None when absent."""
    actions = []
    if old is None:
        actions.append("create")
        old = ("created", None, None)
    if new is None:   # removed: did it run since the last look?
        if old[0] in ("running", "paused", "restarting"):
            actions.append("die")
        elif removed_status is not None and old[0] == "created":
            actions += ["start", "die"]
        return actions + ["destroy"]
    if new[1] != old[1] and new[1] is not None:
        if old[0] in ("running", "paused") and old[1] is not None:
            actions.append("die")          # it ended and restarted between the looks
        actions.append("start")
    if new[0] == "paused" and old[0] != "paused":
        actions.append("pause")
    if old[0] == "paused" and new[0] == "running":
        actions.append("unpause")
    if new[2] != old[2] and new[2] is not None and new[0] in ("exited", "dead", "restarting"):
        actions.append("die")
    return actions


async def events(request):
    """Container events, from watching the records (every process's
    changes, not only this service's): create, start, die, pause, unpause,
    destroy. Filters: type, container, event; since/until."""
    filters = query_filters(request.query)
    for key in filters:
        if key not in ("type", "container", "event"):
            raise BadRequest(f"invalid filter {key!r} (type, container, event)")
    until = request.query.get("until")
    try:
        until_t = float(until) if until else None
    except ValueError:
        raise BadRequest(f"invalid until {until!r}") from None
    resp = web.StreamResponse(status=200)
    resp.content_type = "application/json"
    await resp.prepare(request)
    if filters.get("type") and "container" not in filters["type"]:
        while until_t is None or time.time() < until_t:
            await asyncio.sleep(1)
        await resp.write_eof()
        return resp

    def snapshot():
        return {c.id: (c.status, c.record.started, c.record.finished, c.name, c.record.image, c.record.exit_code)
                for c in containers.list_containers(all=True)}

    before = await in_thread(snapshot)
    while until_t is None or time.time() < until_t:
        await asyncio.sleep(0.05)
        now = await in_thread(snapshot)
        out = []
        for cid in sorted(set(before) | set(now)):
            old, new = before.get(cid), now.get(cid)
            removed_status = await in_thread(containers.removed_exit_status, cid) if new is None else None
            last = new or old
            for action in _actions(old, new, removed_status):
                if filters.get("event") and action not in filters["event"]:
                    continue
                if filters.get("container") and not any(cid.startswith(f) or f == last[3]
                                                        for f in filters["container"]):
                    continue
                attrs = {"image": last[4], "name": last[3]}
                if action == "die":
                    code = removed_status if new is None and removed_status is not None else last[5]
                    attrs["exitCode"] = str(code if code is not None else 0)
                t = time.time_ns()
                out.append({"status": action, "id": cid, "from": last[4], "Type": "container", "Action": action,
                            "Actor": {"ID": cid, "Attributes": attrs}, "scope": "local",
                            "time": t // 10**9, "timeNano": t})
        before = now
        for e in out:
            await resp.write(json.dumps(e).encode() + b"\n")
    await resp.write_eof()
    return resp
