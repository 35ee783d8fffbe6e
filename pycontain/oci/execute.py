"""pycontain-runc exec: one more process in a running container.

The process is the OCI process object of `--process F` as it stands (as
runc), or the bundle's own process with the command and exec's flags
(-e, --cwd, -u, -g, --cap, --no-new-privs, -t) put in. It is converted once
(config.process_from_oci) and started through the library's one join path
(bundle.spawn_in -> _launch.spawn_joined): the container's namespaces and
own cgroups, the container's seccomp filter (kept in the state at create).

The process is our child. Without --detach we wait for it and exit with its
status (128+N when a signal N ended it), passing on the signals a caller
sends us; with --detach we exit once it runs, and it is re-parented to the
caller's subreaper (containerd's shim reads its pid from --pid-file).
"""
from __future__ import annotations

import json
import os
import signal

from ..bundle import spawn_in
from ..config import merge_env, normalize_env, process_from_oci
from ..errors import ConfigError
from . import state as S
from .create import _send_console, _write_pid_file
from .ops import Log
from .state import OciError, StateDir

FORWARDED = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2,
             signal.SIGWINCH)


def _read_json(path: str, what: str):
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except OSError as e:
        raise OciError(f"{what} {path}: {e.strerror}") from None
    except (ValueError, RecursionError) as e:
        raise OciError(f"{what} {path}: not valid JSON: {e}") from None


def _id(text: str, what: str) -> int:
    if not text.isdigit() or int(text) > (1 << 32) - 2:
        raise OciError(f"exec: {what} {text!r} is not a number (names are not looked up)")
    return int(text)


def process_for(args, st: dict):
    """The exec'd process (config.BundleProcess) from exec's arguments."""
    if args.process:
        return process_from_oci(_read_json(args.process, "--process"))
    if not args.argv:
        raise OciError("exec: no command given (and no --process)")
    spec = _read_json(os.path.join(st["bundle"], "config.json"), "the bundle's config")
    proc = dict(spec.get("process") or {}) if isinstance(spec, dict) else {}
    proc["args"] = list(args.argv)
    proc["terminal"] = bool(args.tty)
    proc.pop("consoleSize", None)
    if args.cwd:
        proc["cwd"] = args.cwd
    if args.env:
        base = proc.get("env") if isinstance(proc.get("env"), list) else []
        proc["env"] = merge_env(base, normalize_env(args.env))
    user = dict(proc.get("user") or {})
    if args.user:
        uid, _, gid = args.user.partition(":")
        user["uid"] = _id(uid, "user")
        if gid:
            user["gid"] = _id(gid, "group")
    if args.additional_gids:
        user["additionalGids"] = [_id(g, "group") for g in args.additional_gids]
    proc["user"] = user
    if args.no_new_privs:
        proc["noNewPrivileges"] = True
    if args.cap:
        caps = dict(proc.get("capabilities") or {})
        for key in ("bounding", "effective", "permitted"):
            caps[key] = list(caps.get(key) or []) + list(args.cap)
        proc["capabilities"] = caps
    return process_from_oci(proc)


def exec_process(args, log: Log) -> int:
    if args.preserve_fds:
        raise OciError("--preserve-fds is not supported")
    if args.process_label or args.apparmor:
        raise OciError("exec: --process-label and --apparmor need an LSM, and none is in use here")
    with StateDir(args.root, args.id) as sd:
        st = sd.load()
        status = S.status(st)
        if status == "stopped":
            raise OciError("cannot exec in a stopped container")
        if status == "paused":
            raise OciError("cannot exec in a paused container")
        try:
            proc = process_for(args, st)
        except ConfigError as e:
            raise OciError(str(e)) from None
        if proc.terminal and not args.console_socket:
            raise OciError("exec with a terminal needs --console-socket")
        # as with runc, the process outlives us (detached: the caller's subreaper reaps it)
        child = spawn_in(st["pid"], st["pid_start"], proc, seccomp_bpf=bytes.fromhex(st.get("seccomp") or "") or None,
                         survive_parent=True)
    try:
        if child.tty_master is not None:
            try:
                _send_console(args.console_socket, child.tty_master)
            except OSError as e:
                raise OciError(f"console socket {args.console_socket}: {e.strerror}") from None
            finally:
                os.close(child.tty_master)
        if args.pid_file:
            _write_pid_file(args.pid_file, child.pid)
    except BaseException:
        os.kill(child.pid, signal.SIGKILL)
        os.waitpid(child.pid, 0)
        raise
    if child.pidfd is not None:
        os.close(child.pidfd)
    log.debug(f"exec in {args.id}: pid {child.pid}")
    if args.detach:
        return 0
    for sig in FORWARDED:
        signal.signal(sig, lambda n, _f: os.kill(child.pid, n))
    _, wstatus = os.waitpid(child.pid, 0)
    code = os.waitstatus_to_exitcode(wstatus)
    return 128 - code if code < 0 else code
