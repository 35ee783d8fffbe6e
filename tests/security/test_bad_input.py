"""Bad security settings: one clear ConfigError, raised before anything
exists, and nothing left behind (the leakcheck fixture checks mounts,
processes, descriptors and container directories)."""
import json
import subprocess
import sys

import pytest

from pycontain import Container
from pycontain.errors import ConfigError

pytestmark = pytest.mark.usefixtures("leakcheck")


def start(rootfs, **kwargs):
    return Container(rootfs=rootfs, command=["true"], **kwargs).run()


def test_malformed_json_file(rootfs, tmp_path):
    f = tmp_path / "broken.json"
    f.write_text('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [')
    with pytest.raises(ConfigError, match=r"broken.json is not valid JSON"):
        start(rootfs, seccomp=str(f))
    with pytest.raises(ConfigError, match=r"not valid JSON"):
        start(rootfs, security_opt=[f"seccomp={f}"])


def test_hostile_json_file(rootfs, tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(ConfigError, match="deep.json is nested too deeply"):
        start(rootfs, seccomp=str(deep))
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="binary.json is not valid JSON"):
        start(rootfs, seccomp=str(binary))
    with pytest.raises(ConfigError, match="not a JSON-like profile"):
        start(rootfs, seccomp={"defaultAction": "SCMP_ACT_ALLOW", "x": object()})


def test_missing_profile_file(rootfs, tmp_path):
    with pytest.raises(ConfigError, match=r"cannot read seccomp profile .*nope.json: No such file"):
        start(rootfs, seccomp=str(tmp_path / "nope.json"))


@pytest.mark.parametrize("profile, message", [
    ([], "a path or a dict, not list"),
    ({"syscalls": []}, "defaultAction is missing"),
    ({"defaultAction": "SCMP_ACT_MAYBE"}, "unknown action 'SCMP_ACT_MAYBE'"),
    ({"defaultAction": "SCMP_ACT_NOTIFY"}, "SCMP_ACT_NOTIFY is not supported"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": {}}, "syscalls must be a list"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"action": "SCMP_ACT_ALLOW"}]}, r"syscalls\[0\]: names"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"]}]}, "action is missing"),
    ({"defaultAction": "SCMP_ACT_ERRNO",
      "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 6, "op": "SCMP_CMP_EQ"}]}]},
     "argument index must be 0 to 5"),
    ({"defaultAction": "SCMP_ACT_ERRNO",
      "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "op": "EQ", "value": 1}]}]},
     "unknown operator 'EQ'"),
    ({"defaultAction": "SCMP_ACT_ERRNO",
      "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                    "args": [{"index": 0, "op": "SCMP_CMP_EQ", "value": -1}]}]},
     "value must be a number"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": "EPERM"}, "defaultErrnoRet must be a number"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_Z80"]}, "unknown architecture"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_NEW_LISTENER"]}, "unsupported flag"),
    ({"defaultAction": "SCMP_ACT_ERRNO",
      "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_FLY"]}}]},
     "unknown capability 'CAP_FLY'"),
])
def test_invalid_profile(rootfs, profile, message):
    with pytest.raises(ConfigError, match=message):
        Container(rootfs=rootfs, command=["true"], seccomp=profile)


def test_invalid_profile_file_is_named_in_the_error(rootfs, tmp_path):
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": "read"}]}))
    with pytest.raises(ConfigError, match=r"seccomp profile .*p.json: syscalls\[0\]: names must be"):
        start(rootfs, seccomp=str(f))


@pytest.mark.parametrize("kwargs", [
    {"cap_add": ["CAP_FLY"]}, {"cap_drop": ["sys_nothing"]}, {"cap_add": ["NET_ADMIN", ""]},
])
def test_unknown_capability(rootfs, kwargs):
    with pytest.raises(ConfigError, match="unknown capability"):
        Container(rootfs=rootfs, command=["true"], **kwargs)


@pytest.mark.parametrize("opt, message", [
    ("seccomp", "needs a value"),
    ("seccomp=", "needs a value"),
    ("no-new-privileges:maybe", "invalid value 'maybe' for no-new-privileges"),
    ("apparmor=unconfined", "apparmor is not supported"),
    ("turbo=on", "invalid security option 'turbo=on'"),
])
def test_invalid_security_opt(rootfs, opt, message):
    with pytest.raises(ConfigError, match=message):
        Container(rootfs=rootfs, command=["true"], security_opt=[opt])


def test_unknown_user_in_the_image(rootfs):
    with pytest.raises(ConfigError, match="unable to find user nosuchuser"):
        start(rootfs, user="nosuchuser")


def test_unknown_group_add(rootfs):
    with pytest.raises(ConfigError, match="unable to find group nosuchgroup"):
        start(rootfs, group_add=["nosuchgroup"])
    with pytest.raises(ConfigError, match="invalid group_add"):
        start(rootfs, group_add=["wheel:10"])


def test_cli_reports_one_line_and_exit_125(rootfs, tmp_path):
    f = tmp_path / "broken.json"
    f.write_text("{nope")
    r = subprocess.run([sys.executable, "-c", "import sys; from pycontain.cli import entry; entry()",
                        "run", "--rm", "--security-opt", f"seccomp={f}", "--rootfs", str(rootfs), "true"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 125
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "is not valid JSON" in lines[0], r.stderr
