"""What the settings allow: normal programs under the default profile,
unconfined and privileged containers, custom profiles, capabilities, groups."""
import errno
import json
import subprocess
import sys

import pytest

from pycontain.security import capabilities
from sechelpers import probe, run

EPERM = f"ERR {errno.EPERM}"

pytestmark = pytest.mark.usefixtures("leakcheck")


def status(rootfs, **kwargs) -> dict:
    r = run(rootfs, "cat", "/proc/self/status", **kwargs)
    return dict(line.split(":\t", 1) for line in r.stdout.splitlines() if ":\t" in line)


# ---- the default profile lets ordinary programs work --------------------------------


def test_shell_and_coreutils_work(rootfs):
    r = run(rootfs, "sh", "-c", "ls / >/dev/null && echo a > /tmp/f && cat /tmp/f && mkdir /tmp/d && "
                                "ln -s /tmp/f /tmp/l && rm -r /tmp/d && sleep 0.01 && date +%Y >/dev/null && "
                                "ps >/dev/null && id -u && wc -c < /etc/passwd >/dev/null && echo done")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["a", "0", "done"]


def test_threads_fork_and_plain_clone_work(rootfs):
    assert probe(rootfs, "spawn") == "OK"


def test_allowed_nodes_can_still_be_made(rootfs):
    assert probe(rootfs, "mknod_fifo") == "OK"
    assert probe(rootfs, "mknod_null") == "OK"  # char 1:3 is on docker's device list


def test_pipes_and_unix_sockets_work(rootfs):
    r = run(rootfs, "sh", "-c", "echo hi | cat | tr h H; nc -lU /tmp/s & sleep 0.1; echo x | nc -U /tmp/s -w1; wait")
    assert r.stdout.splitlines()[0] == "Hi"


# ---- turning the filter off ------------------------------------------------------------


def test_unconfined_lets_keyctl_through(rootfs):
    assert probe(rootfs, "keyctl") == EPERM
    assert probe(rootfs, "keyctl", seccomp="unconfined") == "OK"
    assert probe(rootfs, "keyctl", security_opt=["seccomp=unconfined"]) == "OK"
    assert status(rootfs, seccomp="unconfined")["Seccomp"] == "0"


def test_privileged_has_no_filter_and_every_capability(rootfs):
    s = status(rootfs, privileged=True)
    assert s["Seccomp"] == "0"
    assert s["NoNewPrivs"] == "0"
    every = capabilities.mask(capabilities.own())  # all the host lets pycontain hold
    assert int(s["CapEff"], 16) == int(s["CapBnd"], 16) == every
    assert every & (1 << capabilities.NUMBERS["SYS_ADMIN"])
    assert probe(rootfs, "keyctl", privileged=True) == "OK"


def test_privileged_keeps_an_explicit_profile(rootfs):
    deny = {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["keyctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EACCES}]}
    assert probe(rootfs, "keyctl", privileged=True, seccomp=deny) == f"ERR {errno.EACCES}"


# ---- custom profiles ---------------------------------------------------------------------

DENY_MKDIR = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EPERM}],
}


def test_custom_profile_as_dict_denies_mkdir(rootfs):
    assert probe(rootfs, "mkdir", seccomp=DENY_MKDIR) == EPERM
    assert probe(rootfs, "mkdir") == "OK"
    # what the profile does not deny still works, e.g. keyctl the default refuses
    assert probe(rootfs, "keyctl", seccomp=DENY_MKDIR) == "OK"


def test_custom_profile_file_through_security_opt(rootfs, tmp_path):
    f = tmp_path / "deny-mkdir.json"
    f.write_text(json.dumps(DENY_MKDIR))
    assert probe(rootfs, "mkdir", seccomp=str(f)) == EPERM
    r = run(rootfs, "sh", "-c", "mkdir /tmp/x; echo rc=$?", security_opt=[f"seccomp={f}"])
    assert "rc=1" in r.stdout and "Operation not permitted" in r.stderr


def test_custom_profile_through_the_cli(rootfs, tmp_path):
    f = tmp_path / "deny-mkdir.json"
    f.write_text(json.dumps(DENY_MKDIR))
    cli = [sys.executable, "-c", "import sys; from pycontain.cli import entry; sys.argv[0] = 'pycontain'; entry()",
           "run", "--rm", "--rootfs", str(rootfs)]
    r = subprocess.run(cli + ["--security-opt", f"seccomp={f}", "sh", "-c", "mkdir /tmp/x"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "Operation not permitted" in r.stderr
    r = subprocess.run(cli + ["--security-opt", "seccomp=unconfined", "/t/probe", "keyctl"],
                       capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "OK"


def test_unknown_syscall_names_are_skipped_like_docker(rootfs):
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["no_such_syscall", "mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}
    assert probe(rootfs, "mkdir", seccomp=profile) == EPERM  # errnoRet defaults to EPERM


def test_default_errno_ret_and_argument_rules(rootfs):
    # An allow-list profile: unknown syscalls get defaultErrnoRet; socket only for AF_UNIX (1).
    base = json.loads(json.dumps(__import__("pycontain.security.seccomp", fromlist=["x"]).default_profile().data))
    base["defaultErrnoRet"] = errno.EACCES
    base["syscalls"] = [r for r in base["syscalls"] if r.get("names") != ["socket"]]
    base["syscalls"].append({"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]})
    assert probe(rootfs, "keyctl", seccomp=base) == f"ERR {errno.EACCES}"
    assert probe(rootfs, "socket_unix", seccomp=base) == "OK"
    assert probe(rootfs, "socket_vsock", seccomp=base) == f"ERR {errno.EACCES}"


def test_kill_process_action_ends_the_process(rootfs):
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"}]}
    r = run(rootfs, "/t/probe", "mkdir", seccomp=profile)
    assert r.returncode == -31  # SIGSYS


# ---- capabilities -------------------------------------------------------------------


def test_cap_drop_all(rootfs):
    s = status(rootfs, cap_drop=["ALL"])
    assert s["CapEff"] == s["CapBnd"] == s["CapPrm"] == "0000000000000000"


def test_cap_drop_one_and_its_effect(rootfs):
    s = status(rootfs, cap_drop=["chown"])
    assert int(s["CapBnd"], 16) == capabilities.mask(capabilities.DEFAULT - {"CHOWN"})
    r = run(rootfs, "sh", "-c", "touch /tmp/f && chown 1000 /tmp/f; echo rc=$?", cap_drop=["CAP_CHOWN"])
    assert "rc=1" in r.stdout


def test_cap_add_and_the_filter_follows(rootfs):
    s = status(rootfs, cap_add=["SYS_ADMIN"])
    assert int(s["CapEff"], 16) == capabilities.mask(capabilities.DEFAULT | {"SYS_ADMIN"})
    # docker's profile opens mount and unshare to CAP_SYS_ADMIN
    assert probe(rootfs, "mount_tmpfs", cap_add=["SYS_ADMIN"]) == "OK"
    assert probe(rootfs, "unshare_mount", cap_add=["SYS_ADMIN"]) == "OK"
    assert probe(rootfs, "mknod_mem", cap_add=["SYS_ADMIN"]) == "OK"


def test_cap_add_all_minus_one(rootfs):
    s = status(rootfs, cap_add=["ALL"], cap_drop=["NET_ADMIN"])
    every = capabilities.mask(capabilities.own())
    assert int(s["CapBnd"], 16) == every & ~(1 << capabilities.NUMBERS["NET_ADMIN"])


def test_non_root_user_has_no_effective_capabilities(rootfs):
    s = status(rootfs, user="1000")
    assert s["CapEff"] == s["CapPrm"] == "0000000000000000"
    assert s["CapBnd"] == "00000000a80425fb"


# ---- users and groups ---------------------------------------------------------------------


def test_user_gets_the_images_groups(rootfs):
    r = run(rootfs, "id", user="user")
    uid, gid, groups = r.stdout.split()
    assert (uid, gid) == ("uid=1000(user)", "gid=1000(user)")
    assert sorted(groups[7:].split(",")) == ["1000(user)", "50(staff)"]


def test_group_add_by_name_and_gid(rootfs):
    r = run(rootfs, "sh", "-c", "id -G", user="user", group_add=["wheel", "4242"])
    assert sorted(map(int, r.stdout.split())) == [10, 50, 1000, 4242]
    r = run(rootfs, "sh", "-c", "grep Groups /proc/self/status", group_add=["nogroup"])
    assert sorted(map(int, r.stdout.split()[1:])) == [0, 10, 65534]  # root is in wheel


def test_no_new_privileges_security_opt(rootfs):
    assert status(rootfs)["NoNewPrivs"] == "1"
    assert status(rootfs, security_opt=["no-new-privileges:false"])["NoNewPrivs"] == "0"
    assert status(rootfs, no_new_privileges=False, security_opt=["no-new-privileges"])["NoNewPrivs"] == "1"
    # without no_new_privs the filter is loaded while still root; it still holds
    assert probe(rootfs, "keyctl", user="1000", security_opt=["no-new-privileges=false"]) == EPERM


def test_init_reaper_runs_under_the_default_profile(rootfs):
    r = run(rootfs, "sh", "-c", "sleep 0.01 & wait; grep Seccomp: /proc/self/status", init=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["Seccomp:", "2"]


def test_group_add_and_no_new_privileges_through_the_cli(rootfs):
    cli = [sys.executable, "-m", "pycontain", "run", "--rm", "--rootfs", str(rootfs)]
    r = subprocess.run(cli + ["--user", "user", "--group-add", "wheel", "--group-add", "4242",
                              "--security-opt", "no-new-privileges=false",
                              "sh", "-c", "id -G; grep NoNewPrivs /proc/self/status"],
                       capture_output=True, text=True, timeout=60)
    lines = r.stdout.splitlines()
    assert sorted(map(int, lines[0].split())) == [10, 50, 1000, 4242]
    assert lines[1].split() == ["NoNewPrivs:", "0"]
