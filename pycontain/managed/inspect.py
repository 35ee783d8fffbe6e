"""docker inspect and docker port for managed containers, from their records."""
from __future__ import annotations

from .. import volumes
from ..logs import rfc3339nano
from ..state import ContainerRecord
from . import health
from .record import parse_restart_policy


def _rfc3339(t) -> str:
    if t is None:
        return "0001-01-01T00:00:00Z"
    return rfc3339nano(int(t * 1e9))


def inspect_dict(rec: ContainerRecord, root=None) -> dict:
    """docker inspect's shape, for the fields pycontain has."""
    cfg = dict(rec.config)
    argv = list(cfg.get("entrypoint") or []) + list(cfg.get("command") or [])
    policy, retries = parse_restart_policy(rec.restart_policy)
    return {
        "Id": rec.id,
        "Created": _rfc3339(rec.created),
        "Path": argv[0] if argv else "",
        "Args": argv[1:],
        "State": {
            "Status": rec.state, "Running": rec.state in ("running", "paused"),
            "Paused": rec.state == "paused", "Restarting": rec.state == "restarting",
            "OOMKilled": rec.oom_killed, "Dead": rec.state == "dead", "Pid": rec.pid or 0,
            "ExitCode": rec.exit_code or 0, "Error": rec.error,
            "StartedAt": _rfc3339(rec.started), "FinishedAt": _rfc3339(rec.finished),
            **({"Health": h} if (h := health.state(root, rec)) is not None else {}),
        },
        # the image id pinned at create (records before pinning: the name given)
        "Image": cfg.get("image") or rec.image,
        "Name": "/" + rec.name,
        "RestartCount": rec.restart_count,
        "LogPath": rec.log_path,
        "HostConfig": _inspect_host_config(cfg, rec, policy, retries),
        "Config": {
            "Hostname": cfg.get("hostname") or rec.id[:12], "User": cfg.get("user") or "",
            "Env": cfg.get("env", []), "Cmd": cfg.get("command"), "Entrypoint": cfg.get("entrypoint"),
            "Domainname": "", "AttachStdin": False, "AttachStdout": False, "AttachStderr": False,
            "OpenStdin": cfg.get("stdin_open", False), "StdinOnce": False, "Volumes": None, "OnBuild": None,
            "Image": rec.image, "WorkingDir": cfg.get("workdir") or "", "Tty": cfg.get("tty", False),
            "StopSignal": cfg.get("stop_signal", "SIGTERM"), "Labels": cfg.get("labels") or {},
            # null when there are none (docker leaves the key out; its templates see null alike)
            "ExposedPorts": {p: {} for p in cfg.get("exposed_ports") or ()} or None,
            **({"StopTimeout": cfg["stop_timeout"]} if cfg.get("stop_timeout") is not None else {}),
            **({"Healthcheck": cfg["healthcheck"]} if cfg.get("healthcheck") else {}),
        },
        "NetworkSettings": {
            "IPAddress": (rec.exec_profile.get("network", {}).get("ip_address") or "")
            if rec.state in ("running", "paused") else "",
            "Ports": {f"{p['container_port']}/{p['proto']}": [{"HostIp": p["host_ip"] or "0.0.0.0",
                                                              "HostPort": str(p["host_port"])}]
                      for p in rec.exec_profile.get("network", {}).get("ports", ())}
            if rec.state in ("running", "paused") else {},
            "Networks": _networks(rec, root),
        },
        "Mounts": [_inspect_mount(m, root) for m in cfg.get("mounts", [])],
    }


def _networks(rec: ContainerRecord, root) -> dict:
    """NetworkSettings.Networks (docker's keys)."""
    mode = rec.config.get("network") or "none"
    if mode in ("none", "host") or mode.startswith("container:"):
        return {mode: _NO_ENDPOINT} if mode in ("none", "host") else {}
    # Imported here: the network store and its netlink code (~5 ms) serve
    # bridge containers only, and every verb imports this module.
    from .networks import endpoint_entries

    return endpoint_entries(rec, root)


_NO_ENDPOINT = {"IPAMConfig": None, "Links": None, "Aliases": None, "NetworkID": "", "EndpointID": "",
                "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
                "GlobalIPv6PrefixLen": 0, "MacAddress": "", "DriverOpts": None}


def _inspect_host_config(cfg: dict, rec: ContainerRecord, policy: str, retries: int) -> dict:
    """docker inspect's HostConfig: its keys and types, from the record's
    ContainerConfig (0, "", [] or None where docker has them unset)."""
    # Imported here: the cgroups package (its drivers, ctypes: ~10 ms of
    # imports) for a cpuset's text; ps imports this module, and shows a
    # HostConfig only with --json.
    from ..cgroups.limits import format_cpu_list

    res = cfg.get("resources") or {}
    mounts = cfg.get("mounts") or []
    ports = {}
    for p in cfg.get("ports") or []:
        if isinstance(p, dict):   # records of before config_version 2 kept docker's -p strings
            ports.setdefault(f"{p['container_port']}/{p['proto']}", []).append(
                {"HostIp": p["host_ip"] or "", "HostPort": str(p["host_port"] or "")})
    memory = res.get("memory") or 0
    quota, period = res.get("cpu_quota"), res.get("cpu_period")
    return {
        "Binds": [f"{m['source']}:{m['target']}" + (":ro" if m["read_only"] else "")
                  for m in mounts if m["type"] in ("bind", "volume") and m["source"]] or None,
        "ContainerIDFile": "",
        "LogConfig": {"Type": "json-file", "Config": {k: str(v) for k, v in rec.log_opts.items()}},
        "NetworkMode": cfg.get("network", "none"),
        "PortBindings": ports,
        "RestartPolicy": {"Name": policy, "MaximumRetryCount": retries},
        "AutoRemove": bool(cfg.get("auto_remove", False)),
        "CapAdd": cfg.get("cap_add") or None, "CapDrop": cfg.get("cap_drop") or None,
        "Dns": list(cfg.get("dns") or []), "DnsOptions": [], "DnsSearch": list(cfg.get("dns_search") or []),
        "ExtraHosts": [f"{h[0]}:{h[1]}" if not isinstance(h, str) else h for h in cfg.get("add_hosts") or []] or None,
        "GroupAdd": [str(g) for g in cfg.get("group_add") or []] or None,
        "IpcMode": "private", "PidMode": "", "UTSMode": "", "UsernsMode": "", "CgroupnsMode": "host",
        "Privileged": bool(cfg.get("privileged", False)), "PublishAllPorts": False,
        "ReadonlyRootfs": bool(cfg.get("read_only", False)),
        "SecurityOpt": list(cfg.get("security_opt") or []) or None,
        "Tmpfs": {m["target"]: ",".join(m.get("options") or []) for m in mounts if m["type"] == "tmpfs"} or None,
        "Init": bool(cfg.get("init", False)),
        "CpuShares": res.get("cpu_shares") or 0,
        "Memory": memory,
        "NanoCpus": cfg.get("nano_cpus") or 0,
        "CgroupParent": res.get("cgroup_parent") or "",
        "BlkioWeight": res.get("blkio_weight") or 0,
        # --cpus became a quota per period in the config; docker shows only NanoCpus then
        "CpuPeriod": 0 if cfg.get("nano_cpus") else period or 0,
        "CpuQuota": 0 if cfg.get("nano_cpus") else quota or 0,
        "CpusetCpus": format_cpu_list(res["cpuset_cpus"]) if res.get("cpuset_cpus") else "",
        "CpusetMems": format_cpu_list(res["cpuset_mems"]) if res.get("cpuset_mems") else "",
        "Devices": [{"PathOnHost": d["host_path"], "PathInContainer": d["container_path"],
                     "CgroupPermissions": d.get("permissions") or "rwm"}
                    for d in cfg.get("devices") or [] if isinstance(d, dict)],
        # docker: twice the memory limit when a limit is set without --memory-swap
        "MemorySwap": res.get("memory_swap") or (2 * memory if memory else 0),
        "MemoryReservation": res.get("memory_reservation") or 0,
        "PidsLimit": res.get("pids_limit") or None,
        "Ulimits": [_inspect_ulimit(u) for u in cfg.get("ulimits") or []] or None,
    }


def _inspect_ulimit(spec) -> dict:
    """A (name, soft, hard) triple (or a NAME=SOFT[:HARD] string) as docker's {"Name", "Soft", "Hard"}."""
    if isinstance(spec, str):
        name, _, limits = spec.partition("=")
        soft, _, hard = limits.partition(":")
        return {"Name": name, "Soft": int(soft), "Hard": int(hard or soft)}
    name, soft, hard = spec
    return {"Name": name, "Soft": soft, "Hard": hard}


def _inspect_mount(m: dict, root) -> dict:
    out = {"Type": m["type"], "Source": m["source"] or "", "Destination": m["target"],
           "Mode": "ro" if m["read_only"] else "", "RW": not m["read_only"], "Propagation": "rprivate"}
    if m["type"] == "volume":   # docker names the volume and gives its directory as the source
        out.update(Name=m["source"], Source=str(volumes.volumes_dir(root) / m["source"] / volumes.DATA),
                   Driver="local")
    return out


def port_lines(c) -> list:
    """docker port's lines ("80/tcp -> 0.0.0.0:8080") for the ports the
    monitor published at the last start (the host ports actually used)."""
    rec = c.reload().record
    if rec.state not in ("running", "paused"):
        return []
    out = []
    for p in rec.exec_profile.get("network", {}).get("ports", ()):
        out.append(f"{p['container_port']}/{p['proto']} -> {p['host_ip'] or '0.0.0.0'}:{p['host_port']}")
    return out
