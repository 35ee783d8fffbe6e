"""Docker's JSON in, pycontain's objects out, and back: each body is read
and checked here once, so that handlers only call the library.

A field of docker's that pycontain does not apply is accepted only at its
zero value (what the docker CLI sends for every flag not given); with any
other value the request is refused with a 400 naming it, never silently
ignored. A field docker does not have is refused too.
"""
from __future__ import annotations

import base64
import json
import stat
import time

from aiohttp import web

from .. import __version__
from ..config import Mount
from ..errors import ConfigError, ContainerError
from ..logs import parse_time, rfc3339nano

MAX_JSON_DEPTH = 32
API_VERSION = "1.47"       # docker 27's; newer clients (docker 28) negotiate down to it
MIN_API_VERSION = "1.24"


def api_headers() -> dict:
    """The headers docker's clients negotiate the version from (on /_ping and every answer)."""
    return {"Api-Version": API_VERSION, "Docker-Experimental": "false", "Ostype": "linux",
            "Server": f"pycontain/{__version__} (linux)"}


class BadRequest(ContainerError):
    """The request itself is wrong (400)."""


class NoSuchExec(ContainerError, LookupError):
    def __init__(self, exec_id):
        super().__init__(f"No such exec instance: {exec_id}")


def json_response(obj, status=200) -> web.Response:
    """Content-Type exactly application/json: docker's CLI shows a body raw when a charset follows."""
    return web.Response(body=json.dumps(obj).encode(), status=status, content_type="application/json")


def parse_json(raw: bytes, what="body"):
    if not raw.strip():
        return None
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadRequest(f"invalid JSON in the request {what}: {e}") from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise BadRequest(f"the request {what} nests deeper than {MAX_JSON_DEPTH} levels")
    return value


def _depth(value, level=1):
    stack = [(value, level)]
    deepest = level
    while stack:
        v, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > MAX_JSON_DEPTH:
            return deepest
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v)
    return deepest


def query_bool(query, key, default=False) -> bool:
    value = query.get(key)
    if value is None:
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off", ""):
        return False
    raise BadRequest(f"invalid boolean value for {key!r}: {value!r}")


def query_int(query, key, default=None):
    value = query.get(key)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise BadRequest(f"invalid integer value for {key!r}: {value!r}") from None


def query_filters(query) -> dict:
    """docker's filters: {"key": ["v", ...]} or the older {"key": {"v": true}}."""
    raw = query.get("filters")
    if not raw:
        return {}
    value = parse_json(raw.encode(), "filters")
    if not isinstance(value, dict):
        raise BadRequest("filters must be a JSON object")
    out = {}
    for k, v in value.items():
        if isinstance(v, dict):
            v = [x for x, on in v.items() if on]
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise BadRequest(f"filter {k!r}: expected a list of strings")
        out[k] = v
    return out


def _want(body: dict, key: str, kind, where: str):
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = {str: "a string", bool: "a boolean", int: "an integer", list: "a list", dict: "an object"}
        kinds = kind if isinstance(kind, tuple) else (kind,)
        raise BadRequest(f"{where}{key}: expected {' or '.join(names.get(k, k.__name__) for k in kinds)}")
    return value


def _strings(body, key, where) -> list:
    value = _want(body, key, list, where) or []
    if not all(isinstance(x, str) for x in value):
        raise BadRequest(f"{where}{key}: expected a list of strings")
    return value


# fields whose "not set" is not a zero value
_UNSET = {"MemorySwappiness": -1}


def _zero(key, value) -> bool:
    return value in (None, "", 0, False, [], {}) or value == [0, 0] or _UNSET.get(key, None) == value


def _check_fields(body: dict, applied: set, ignored_at_zero: set, where: str):
    for key, value in body.items():
        if key in applied:
            continue
        if key in ignored_at_zero:
            if not _zero(key, value):
                raise BadRequest(f"{where}{key} is not supported by pycontain")
            continue
        raise BadRequest(f"unknown field {where}{key}")


def restart_policy(body: dict, where: str) -> str:
    """docker's RestartPolicy {Name, MaximumRetryCount} as pycontain's "on-failure:N"."""
    restart = _want(body, "RestartPolicy", dict, where) or {}
    policy = restart.get("Name") or "no"
    if not isinstance(policy, str):
        raise BadRequest(f"{where}RestartPolicy.Name: expected a string")
    retries = restart.get("MaximumRetryCount") or 0
    if not isinstance(retries, int) or isinstance(retries, bool):
        raise BadRequest(f"{where}RestartPolicy.MaximumRetryCount: expected an integer")
    if policy == "on-failure" and retries:
        policy = f"on-failure:{retries}"
    return policy


# containers/{id}/update: docker's Resources fields pycontain changes, as
# ManagedContainer.update()'s options; the others only at their zero values
_UPDATE_APPLIED = {"Memory": "memory", "MemorySwap": "memory_swap", "MemoryReservation": "memory_reservation",
                   "CpuShares": "cpu_shares", "CpuPeriod": "cpu_period", "CpuQuota": "cpu_quota",
                   "CpusetCpus": "cpuset_cpus", "CpusetMems": "cpuset_mems", "PidsLimit": "pids_limit",
                   "BlkioWeight": "blkio_weight"}
_UPDATE_ZERO = {"KernelMemory", "KernelMemoryTCP", "CpuRealtimePeriod", "CpuRealtimeRuntime", "BlkioWeightDevice",
                "BlkioDeviceReadBps", "BlkioDeviceWriteBps", "BlkioDeviceReadIOps", "BlkioDeviceWriteIOps",
                "Devices", "DeviceCgroupRules", "DeviceRequests", "MemorySwappiness", "OomKillDisable",
                "CgroupParent", "Ulimits", "CpuCount", "CpuPercent", "IOMaximumIOps", "IOMaximumBandwidth"}


def update_options(body) -> dict:
    """containers/{id}/update's body as ManagedContainer.update()'s keyword
    arguments: the limits (0 or null: unchanged, as docker's) and RestartPolicy."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    _check_fields(body, set(_UPDATE_APPLIED) | {"NanoCpus", "RestartPolicy"}, _UPDATE_ZERO, "")
    out = {}
    for key, option in _UPDATE_APPLIED.items():
        value = _want(body, key, str if key.startswith("Cpuset") else int, "")
        if value not in (None, 0, ""):
            out[option] = value
    nano = _want(body, "NanoCpus", int, "")
    if nano:
        out["cpus"] = nano / 1e9
    if body.get("RestartPolicy"):
        out["restart_policy"] = restart_policy(body, "")
    return out


# ---- containers/create -------------------------------------------------------------------

_CONFIG_APPLIED = {
    "Hostname", "User", "Env", "Cmd", "Entrypoint", "Image", "WorkingDir", "Tty", "OpenStdin", "StopSignal",
    "Labels", "ExposedPorts", "Volumes", "AttachStdin", "AttachStdout", "AttachStderr", "StdinOnce",
    "HostConfig", "NetworkingConfig", "StopTimeout", "Healthcheck",
}
_CONFIG_ZERO = {"Domainname", "ArgsEscaped", "NetworkDisabled", "MacAddress", "OnBuild",
                "Shell", "Platform"}
_HOST_APPLIED = {
    "Binds", "NetworkMode", "PortBindings", "RestartPolicy", "AutoRemove", "Mounts", "CapAdd", "CapDrop",
    "Dns", "ExtraHosts", "GroupAdd", "Privileged", "PublishAllPorts", "ReadonlyRootfs", "SecurityOpt",
    "Tmpfs", "Init", "LogConfig", "Memory", "MemorySwap", "MemoryReservation", "NanoCpus", "CpuShares",
    "CpuPeriod", "CpuQuota",
    "CpusetCpus", "CpusetMems", "PidsLimit", "BlkioWeight", "BlkioDeviceReadBps", "BlkioDeviceWriteBps",
    "CgroupParent", "Devices", "Ulimits", "OomScoreAdj", "DnsSearch",
    # the terminal's first size: docker's CLI resizes it (containers/{id}/resize) once it started
    "ConsoleSize",
}
_HOST_ZERO = {
    "ContainerIDFile", "VolumeDriver", "VolumesFrom", "CgroupnsMode", "DnsOptions", "IpcMode",
    "Cgroup", "Links", "PidMode", "UTSMode", "UsernsMode", "ShmSize", "Sysctls", "Runtime",
    "Isolation", "BlkioWeightDevice", "BlkioDeviceReadIOps", "BlkioDeviceWriteIOps",
    "CpuRealtimePeriod", "CpuRealtimeRuntime", "DeviceCgroupRules", "DeviceRequests", "KernelMemory",
    "KernelMemoryTCP", "MemorySwappiness", "OomKillDisable", "CpuCount", "CpuPercent",
    "IOMaximumIOps", "IOMaximumBandwidth", "MaskedPaths", "ReadonlyPaths", "Annotations", "StorageOpt",
}


# EndpointConfig fields a client may send at their zero value; pycontain
# applies Aliases and IPAMConfig.IPv4Address
_ENDPOINT_ZERO_FIELDS = {"Links", "NetworkID", "EndpointID", "Gateway", "IPAddress", "IPPrefixLen",
                         "IPv6Gateway", "GlobalIPv6Address", "GlobalIPv6PrefixLen", "MacAddress", "DriverOpts",
                         "DNSNames", "GwPriority"}


def endpoint_options(config, where: str) -> tuple:
    """(aliases, IPv4 address) from an EndpointConfig (network connect's body,
    each of create's NetworkingConfig.EndpointsConfig)."""
    if config is None:
        return [], None
    if not isinstance(config, dict):
        raise BadRequest(f"{where} must be a JSON object")
    for key, value in config.items():
        if key in ("Aliases", "IPAMConfig"):
            continue
        if key not in _ENDPOINT_ZERO_FIELDS:
            raise BadRequest(f"unknown field {where}.{key}")
        if value:
            raise BadRequest(f"{where}.{key} is not supported by pycontain")
    aliases = config.get("Aliases") or []
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise BadRequest(f"{where}.Aliases: a list of strings")
    ipam = config.get("IPAMConfig") or {}
    if not isinstance(ipam, dict):
        raise BadRequest(f"{where}.IPAMConfig must be a JSON object")
    for key, value in ipam.items():
        if key not in ("IPv4Address", "IPv6Address", "LinkLocalIPs"):
            raise BadRequest(f"unknown field {where}.IPAMConfig.{key}")
        if key != "IPv4Address" and value:
            raise BadRequest(f"{where}.IPAMConfig.{key} is not supported by pycontain")
    ip = ipam.get("IPv4Address") or None
    if ip is not None and not isinstance(ip, str):
        raise BadRequest(f"{where}.IPAMConfig.IPv4Address: a string")
    return aliases, ip


def has_label(labels: dict | None, want: str) -> bool:
    """docker's label filter: "KEY" or "KEY=VALUE"."""
    key, sep, value = want.partition("=")
    return key in (labels or {}) and (not sep or labels[key] == value)


def endpoints(body, network: str) -> tuple:
    """create's NetworkingConfig.EndpointsConfig: (aliases on `network`, the
    container's own, [(other network, aliases, ip)] to connect it to after
    create, as dockerd does with more than one endpoint)."""
    config = _want(body, "NetworkingConfig", dict, "") or {}
    unknown = sorted(set(config) - {"EndpointsConfig"})
    if unknown:
        raise BadRequest(f"unknown field NetworkingConfig.{unknown[0]}")
    own, others = [], []
    for net, endpoint in (_want(config, "EndpointsConfig", dict, "NetworkingConfig.") or {}).items():
        aliases, ip = endpoint_options(endpoint, f"NetworkingConfig.EndpointsConfig.{net}")
        if net == network:
            if ip:
                raise BadRequest(f"IPAMConfig.IPv4Address on {net}: pycontain chooses the address of the "
                                 "first network (connect the container to give one)")
            own = aliases
        elif net in ("none", "host", "bridge", "default") and not (aliases or ip):
            continue
        else:
            others.append((net, aliases, ip))
    return own, others


def create_kwargs(body, name: str | None, default_network: str) -> dict:
    """A POST /containers/create body → pycontain.containers.create() keyword arguments."""
    if not isinstance(body, dict):
        raise BadRequest("the container config must be a JSON object")
    _check_fields(body, _CONFIG_APPLIED, _CONFIG_ZERO, "")
    host = _want(body, "HostConfig", dict, "") or {}
    _check_fields(host, _HOST_APPLIED, _HOST_ZERO, "HostConfig.")
    image = _want(body, "Image", str, "")
    if not image:
        raise BadRequest("config error: no image specified (Image)")
    cmd = _command(body, "Cmd")
    entrypoint = _command(body, "Entrypoint")
    env = _strings(body, "Env", "")
    labels = _want(body, "Labels", dict, "") or {}
    if not all(isinstance(v, str) for v in labels.values()):
        raise BadRequest("Labels: the values must be strings")
    mounts = [_bind(b) for b in _strings(host, "Binds", "HostConfig.")]
    for m in _want(host, "Mounts", list, "HostConfig.") or []:
        mounts.append(_mount(m))
    tmpfs = _want(host, "Tmpfs", dict, "HostConfig.") or {}
    for target, opts in tmpfs.items():
        if not isinstance(opts, str):
            raise BadRequest("HostConfig.Tmpfs: the options must be strings")
        mounts.append(Mount(None, target, type="tmpfs", options=tuple(o for o in opts.split(",") if o)))
    for target in _want(body, "Volumes", dict, "") or {}:
        if not any(m.target == target for m in mounts):
            mounts.append(Mount(None, target, type="volume"))
    network = _want(host, "NetworkMode", str, "HostConfig.") or "default"
    if network == "default":
        network = default_network
    aliases, _ = endpoints(body, network)
    policy = restart_policy(host, "HostConfig.")
    log_config = _want(host, "LogConfig", dict, "HostConfig.") or {}
    if log_config.get("Type") not in (None, "", "json-file"):
        raise BadRequest(f"HostConfig.LogConfig.Type {log_config['Type']!r}: pycontain logs to json-file only")
    log_opts = [f"{k}={v}" for k, v in (log_config.get("Config") or {}).items()]
    nano = _want(host, "NanoCpus", int, "HostConfig.")
    kwargs = dict(
        image=image, command=cmd, entrypoint=entrypoint, env=env, labels=labels, name=name,
        hostname=_want(body, "Hostname", str, "") or None, user=_want(body, "User", str, "") or None,
        workdir=_want(body, "WorkingDir", str, "") or None, tty=bool(_want(body, "Tty", bool, "")),
        stdin_open=bool(_want(body, "OpenStdin", bool, "")),
        stop_signal=_want(body, "StopSignal", str, "") or None,
        stop_timeout=_want(body, "StopTimeout", int, ""),   # stop()'s default, docker's --stop-timeout
        healthcheck=_want(body, "Healthcheck", dict, ""),   # checked by the library (managed/health.py)
        mounts=mounts, network=network, ports=_ports(body, host),
        restart_policy=policy, auto_remove=bool(_want(host, "AutoRemove", bool, "HostConfig.")),
        log_opts=log_opts,
        cap_add=_strings(host, "CapAdd", "HostConfig."), cap_drop=_strings(host, "CapDrop", "HostConfig."),
        expose=list(_want(body, "ExposedPorts", dict, "") or {}),
        dns=_strings(host, "Dns", "HostConfig."), dns_search=_strings(host, "DnsSearch", "HostConfig."),
        add_hosts=_strings(host, "ExtraHosts", "HostConfig."),
        group_add=_strings(host, "GroupAdd", "HostConfig."),
        network_aliases=aliases or None,
        privileged=bool(_want(host, "Privileged", bool, "HostConfig.")),
        read_only=bool(_want(host, "ReadonlyRootfs", bool, "HostConfig.")),
        security_opt=_strings(host, "SecurityOpt", "HostConfig."),
        init=bool(_want(host, "Init", bool, "HostConfig.")),
        oom_score_adj=_want(host, "OomScoreAdj", int, "HostConfig.") or None,
        memory=_want(host, "Memory", int, "HostConfig.") or None,
        memory_swap=_want(host, "MemorySwap", int, "HostConfig.") or None,
        memory_reservation=_want(host, "MemoryReservation", int, "HostConfig.") or None,
        cpus=(nano / 1e9) if nano else None,
        cpu_shares=_want(host, "CpuShares", int, "HostConfig.") or None,
        cpu_period=_want(host, "CpuPeriod", int, "HostConfig.") or None,
        cpu_quota=_want(host, "CpuQuota", int, "HostConfig.") or None,
        cpuset_cpus=_want(host, "CpusetCpus", str, "HostConfig.") or None,
        cpuset_mems=_want(host, "CpusetMems", str, "HostConfig.") or None,
        pids_limit=_want(host, "PidsLimit", int, "HostConfig.") or None,
        blkio_weight=_want(host, "BlkioWeight", int, "HostConfig.") or None,
        device_read_bps=_rates(host, "BlkioDeviceReadBps"), device_write_bps=_rates(host, "BlkioDeviceWriteBps"),
        cgroup_parent=_want(host, "CgroupParent", str, "HostConfig.") or None,
        devices=[_device(d) for d in _want(host, "Devices", list, "HostConfig.") or []],
        ulimits=[_ulimit(u) for u in _want(host, "Ulimits", list, "HostConfig.") or []],
    )
    return {k: v for k, v in kwargs.items() if v is not None}


def _command(body, key):
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        return [value]   # docker-py and older clients send a string
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise BadRequest(f"{key}: expected a list of strings")
    if key == "Entrypoint" and value == [""]:
        return []      # --entrypoint "": no entrypoint, not even the image's
    return value


def _bind(spec: str) -> Mount:
    try:
        return Mount.parse(spec)
    except ConfigError as e:
        raise BadRequest(f"HostConfig.Binds: {e}") from None


def _mount(m) -> Mount:
    if not isinstance(m, dict):
        raise BadRequest("HostConfig.Mounts: each mount must be an object")
    kind = m.get("Type") or "volume"
    target = m.get("Target")
    if not isinstance(target, str):
        raise BadRequest("HostConfig.Mounts: Target (a string) is required")
    options = []
    if kind == "tmpfs":
        t = m.get("TmpfsOptions") or {}
        if t.get("SizeBytes"):
            options.append(f"size={int(t['SizeBytes'])}")
        if t.get("Mode"):
            options.append(f"mode={int(t['Mode']):o}")
    if kind == "volume" and (m.get("VolumeOptions") or {}).get("NoCopy"):
        options.append("nocopy")
    return Mount(m.get("Source") or None, target, read_only=bool(m.get("ReadOnly")), type=kind,
                 options=tuple(options))


def _ports(body, host) -> list:
    """PortBindings (and PublishAllPorts over ExposedPorts) → -p specs."""
    out = []
    bindings = _want(host, "PortBindings", dict, "HostConfig.") or {}
    for port, binds in bindings.items():
        cport, proto = _port_proto(port)
        for b in binds or [{}]:
            if not isinstance(b, dict):
                raise BadRequest("HostConfig.PortBindings: each binding must be an object")
            hip, hport = b.get("HostIp") or "", b.get("HostPort") or ""
            if not isinstance(hip, str) or not isinstance(hport, str):
                raise BadRequest("HostConfig.PortBindings: HostIp and HostPort are strings")
            spec = f"{hip}:{hport}:{cport}" if hip else f"{hport}:{cport}" if hport else str(cport)
            out.append(spec + ("/udp" if proto == "udp" else ""))
    if _want(host, "PublishAllPorts", bool, "HostConfig."):
        for port in _want(body, "ExposedPorts", dict, "") or {}:
            if port not in bindings:
                cport, proto = _port_proto(port)
                out.append(str(cport) + ("/udp" if proto == "udp" else ""))
    return out


def _port_proto(port: str):
    number, _, proto = port.partition("/")
    if not number.isdigit() or proto not in ("", "tcp", "udp"):
        raise BadRequest(f"invalid port {port!r}: expected PORT[/tcp|udp]")
    return int(number), proto or "tcp"


def _rates(host, key) -> list:
    out = []
    for r in _want(host, key, list, "HostConfig.") or []:
        if not isinstance(r, dict) or not isinstance(r.get("Path"), str) or not isinstance(r.get("Rate"), int):
            raise BadRequest(f"HostConfig.{key}: expected [{{\"Path\": ..., \"Rate\": ...}}]")
        out.append(f"{r['Path']}:{r['Rate']}")
    return out


def _device(d) -> str:
    if not isinstance(d, dict) or not isinstance(d.get("PathOnHost"), str):
        raise BadRequest("HostConfig.Devices: each device needs PathOnHost")
    return ":".join([d["PathOnHost"], d.get("PathInContainer") or d["PathOnHost"],
                     d.get("CgroupPermissions") or "rwm"])


def _ulimit(u) -> str:
    if not isinstance(u, dict) or not isinstance(u.get("Name"), str):
        raise BadRequest("HostConfig.Ulimits: each limit needs Name, Soft and Hard")
    return f"{u['Name']}={u.get('Soft', 0)}:{u.get('Hard', u.get('Soft', 0))}"


# ---- containers out ---------------------------------------------------------------------------


def _unix(rfc3339: str | None) -> int:
    if not rfc3339 or rfc3339.startswith("0001-"):
        return 0
    return int(parse_time(rfc3339))


def _ago(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 1:
        return "Less than a second"
    if s < 60:
        return f"{s} seconds"
    if s < 3600:
        return f"{s // 60} minutes"
    if s < 86400:
        return f"{s // 3600} hours"
    return f"{s // 86400} days"


def status_text(attrs: dict) -> str:
    st = attrs["State"]
    now = time.time()
    if st["Status"] in ("running", "paused"):
        text = f"Up {_ago(now - _unix(st['StartedAt']))}"
        if st["Status"] == "paused":
            return text + " (Paused)"
        health = (st.get("Health") or {}).get("Status")
        if health:   # docker's Health.String()
            return text + f" ({'health: starting' if health == 'starting' else health})"
        return text
    if st["Status"] == "restarting":
        return f"Restarting ({st['ExitCode']}) {_ago(now - _unix(st['FinishedAt']))} ago"
    if st["Status"] in ("exited", "dead"):
        return f"Exited ({st['ExitCode']}) {_ago(now - _unix(st['FinishedAt']))} ago"
    return "Created"


def container_summary(attrs: dict) -> dict:
    """GET /containers/json's shape, from the library's inspect dict."""
    cfg = attrs["Config"]
    argv = [attrs["Path"], *attrs["Args"]] if attrs["Path"] else []
    ports = []
    for port, binds in (attrs["NetworkSettings"].get("Ports") or {}).items():
        number, _, proto = port.partition("/")
        for b in binds or []:
            ports.append({"IP": b["HostIp"], "PrivatePort": int(number), "PublicPort": int(b["HostPort"]),
                          "Type": proto})
    return {
        "Id": attrs["Id"], "Names": [attrs["Name"]], "Image": attrs["Image"], "ImageID": attrs.get("ImageID", ""),
        "Command": " ".join(argv), "Created": _unix(attrs["Created"]), "Ports": ports,
        "Labels": cfg.get("Labels") or {}, "State": attrs["State"]["Status"], "Status": status_text(attrs),
        "HostConfig": {"NetworkMode": attrs["HostConfig"]["NetworkMode"]},
        "NetworkSettings": {"Networks": attrs["NetworkSettings"].get("Networks", {})},
        "Mounts": attrs["Mounts"], "SizeRw": None,
    }


def container_inspect(attrs: dict) -> dict:
    """The library's inspect dict with the fields docker clients expect
    present (zero values where pycontain has nothing to say)."""
    out = dict(attrs)
    cfg = dict(out["Config"])
    cfg.setdefault("Labels", {})
    cfg.setdefault("ExposedPorts", {p: {} for p in out["NetworkSettings"].get("Ports") or {}})
    for key, zero in (("AttachStdin", False), ("AttachStdout", False), ("AttachStderr", False),
                      ("OpenStdin", False), ("StdinOnce", False), ("Domainname", ""), ("Volumes", None),
                      ("OnBuild", None)):
        cfg.setdefault(key, zero)
    out["Config"] = cfg
    out.setdefault("ImageID", "")
    out.setdefault("Driver", "overlay2")
    out.setdefault("Platform", "linux")
    out["State"] = dict(out["State"], Dead=out["State"]["Dead"], OOMKilled=out["State"]["OOMKilled"])
    net = dict(out["NetworkSettings"])
    first = next(iter(net["Networks"].values()), {})
    net.setdefault("Gateway", first.get("Gateway", ""))
    net.setdefault("IPPrefixLen", first.get("IPPrefixLen", 0))
    net.setdefault("MacAddress", "")
    net.setdefault("Bridge", "")
    net.setdefault("SandboxID", "")
    net.setdefault("SandboxKey", "")
    out["NetworkSettings"] = net
    host = dict(out["HostConfig"])
    for key, zero in _HOST_CONFIG_ZERO.items():
        host.setdefault(key, zero)
    out["HostConfig"] = host
    for key, zero in (("ResolvConfPath", ""), ("HostnamePath", ""), ("HostsPath", ""), ("MountLabel", ""),
                      ("ProcessLabel", ""), ("AppArmorProfile", ""), ("ExecIDs", None),
                      ("GraphDriver", {"Name": "overlay2", "Data": None})):
        out.setdefault(key, zero)
    for key, zero in (("EndpointID", ""), ("GlobalIPv6Address", ""), ("GlobalIPv6PrefixLen", 0),
                      ("HairpinMode", False), ("IPv6Gateway", ""), ("LinkLocalIPv6Address", ""),
                      ("LinkLocalIPv6PrefixLen", 0), ("SecondaryIPAddresses", None),
                      ("SecondaryIPv6Addresses", None)):
        net.setdefault(key, zero)
    return out


# docker inspect's HostConfig keys, at the values dockerd shows for a flag not given
_HOST_CONFIG_ZERO = {
    "Binds": None, "ContainerIDFile": "", "PortBindings": {}, "AutoRemove": False, "VolumeDriver": "",
    "VolumesFrom": None, "ConsoleSize": [0, 0], "CgroupnsMode": "host", "Dns": [], "DnsOptions": [],
    "DnsSearch": [], "ExtraHosts": None, "GroupAdd": None, "IpcMode": "private", "Cgroup": "", "Links": None,
    "OomScoreAdj": 0, "PidMode": "", "PublishAllPorts": False, "SecurityOpt": None, "UTSMode": "",
    "UsernsMode": "", "ShmSize": 67108864, "Runtime": "pycontain", "Isolation": "", "CpuShares": 0,
    "Memory": 0, "NanoCpus": 0, "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": [],
    "BlkioDeviceReadBps": None, "BlkioDeviceWriteBps": None, "BlkioDeviceReadIOps": None,
    "BlkioDeviceWriteIOps": None, "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0,
    "CpusetCpus": "", "CpusetMems": "", "Devices": [], "DeviceCgroupRules": None, "DeviceRequests": None,
    "KernelMemory": 0, "KernelMemoryTCP": 0, "MemoryReservation": 0, "MemorySwap": 0, "MemorySwappiness": None,
    "OomKillDisable": False, "PidsLimit": None, "Ulimits": None, "CpuCount": 0, "CpuPercent": 0,
    "IOMaximumIOps": 0, "IOMaximumBandwidth": 0, "MaskedPaths": None, "ReadonlyPaths": None,
}


# ---- docker cp's stat header ---------------------------------------------------------------

# Go's os.FileMode type bits, which docker's path stat carries instead of st_mode's
_GO_TYPE = ((stat.S_ISDIR, 1 << 31), (stat.S_ISLNK, 1 << 27), (stat.S_ISFIFO, 1 << 25),
            (stat.S_ISSOCK, 1 << 24), (stat.S_ISBLK, 1 << 26), (stat.S_ISCHR, (1 << 26) | (1 << 21)))
_GO_SPECIAL = ((stat.S_ISUID, 1 << 23), (stat.S_ISGID, 1 << 22), (stat.S_ISVTX, 1 << 20))


def go_file_mode(st_mode: int) -> int:
    mode = st_mode & 0o777
    for is_kind, bits in _GO_TYPE:
        if is_kind(st_mode):
            mode |= bits
    for bit, go_bit in _GO_SPECIAL:
        if st_mode & bit:
            mode |= go_bit
    return mode


def path_stat_header(st) -> dict:
    """X-Docker-Container-Path-Stat: docker's ContainerPathStat, JSON in base64."""
    doc = {"name": st.name, "size": st.size, "mode": go_file_mode(st.mode),
           "mtime": rfc3339nano(st.mtime_ns), "linkTarget": st.link_target}
    return {"X-Docker-Container-Path-Stat": base64.b64encode(json.dumps(doc).encode()).decode()}
