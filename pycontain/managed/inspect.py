"""docker inspect and docker port for managed containers, from their records."""
from __future__ import annotations

from .. import volumes
from ..logs import rfc3339nano
from ..state import ContainerRecord
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
        },
        # the image id pinned at create (records before pinning: the name given)
        "Image": cfg.get("image") or rec.image,
        "Name": "/" + rec.name,
        "RestartCount": rec.restart_count,
        "LogPath": rec.log_path,
        "HostConfig": {
            "RestartPolicy": {"Name": policy, "MaximumRetryCount": retries},
            "LogConfig": {"Type": "json-file", "Config": {k: str(v) for k, v in rec.log_opts.items()}},
            "NetworkMode": cfg.get("network", "none"), "Privileged": cfg.get("privileged", False),
            "ReadonlyRootfs": cfg.get("read_only", False), "Init": cfg.get("init", False),
            "CapAdd": cfg.get("cap_add", []), "CapDrop": cfg.get("cap_drop", []),
            "AutoRemove": cfg.get("auto_remove", False),
        },
        "Config": {
            "Hostname": cfg.get("hostname") or rec.id[:12], "User": cfg.get("user") or "",
            "Env": cfg.get("env", []), "Cmd": cfg.get("command"), "Entrypoint": cfg.get("entrypoint"),
            "Image": rec.image, "WorkingDir": cfg.get("workdir") or "", "Tty": cfg.get("tty", False),
            "StopSignal": cfg.get("stop_signal", "SIGTERM"), "Labels": cfg.get("labels") or {},
            "OpenStdin": cfg.get("stdin_open", False),
        },
        "NetworkSettings": {
            "IPAddress": (rec.exec_profile.get("network", {}).get("ip_address") or "")
            if rec.state in ("running", "paused") else "",
            "Ports": {f"{p['container_port']}/{p['proto']}": [{"HostIp": p["host_ip"] or "0.0.0.0",
                                                              "HostPort": str(p["host_port"])}]
                      for p in rec.exec_profile.get("network", {}).get("ports", ())}
            if rec.state in ("running", "paused") else {},
        },
        "Mounts": [_inspect_mount(m, root) for m in cfg.get("mounts", [])],
    }


def _inspect_mount(m: dict, root) -> dict:
    out = {"Type": m["type"], "Source": m["source"], "Destination": m["target"], "RW": not m["read_only"]}
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
