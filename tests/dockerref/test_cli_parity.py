"""pycontain's CLI beside docker's (docker.io 20.10 against its own dockerd):
the same command line to each, and what a script relies on compared: exit
status, the first words of an error, JSON keys and value types, table columns,
template output. Where pycontain differs on purpose the test says so (and the
README lists it)."""
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import time

import pytest

from .conftest import first_words, pycontain

pytestmark = pytest.mark.usefixtures("clean_both")


def both(dockerd, *args, **kw):
    return dockerd.docker(*args, **kw), pycontain(*args, **kw)


def run_d(dockerd, *args):
    """The same detached container on both sides: (docker's id, pycontain's id)."""
    d, p = both(dockerd, "run", "-d", "--network", "none", *args)
    assert d.returncode == 0, d.stderr
    assert p.returncode == 0, p.stderr
    return d.stdout.strip(), p.stdout.strip()


def error_words(r, n=3):
    return first_words(r.stderr, n).lower()


# ---- usage errors and statuses ----------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ("run", "--netwrok", "none", "busybox", "true"),
    ("ps", "--al"),                       # no prefix matching: --al is not --all
    ("images", "--bogus"),
    ("volume", "ls", "--nope"),
    ("container", "ls", "--nope"),
    ("inspect", "--formt", "x", "busybox"),
])
def test_an_unknown_flag_is_docker_s_usage_error(dockerd, argv):
    d, p = both(dockerd, *argv)
    assert d.returncode == p.returncode == 125
    flag = next(a for a in argv if a.startswith("--"))
    for r, prog in ((d, "docker"), (p, "pycontain")):
        lines = r.stderr.splitlines()
        assert lines[0] == f"unknown flag: {flag}"
        assert lines[1].startswith(f"See '{prog} {argv[0]}") and lines[1].endswith(" --help'.")


def test_a_container_in_the_wrong_state_is_status_1(dockerd):
    for side in (dockerd.docker, pycontain):
        assert side("create", "--name", "stopped", "--network", "none", "busybox", "true").returncode == 0
    for argv in (("exec", "stopped", "true"), ("top", "stopped"), ("container", "exec", "stopped", "true"),
                 ("unpause", "stopped"), ("pause", "stopped")):
        d, p = both(dockerd, *argv)
        assert d.returncode == p.returncode == 1, (argv, d.stderr, p.stderr)
        assert "not running" in d.stderr.lower() or "not paused" in d.stderr.lower()
        assert "not running" in p.stderr.lower() or "not paused" in p.stderr.lower(), (argv, p.stderr)


def test_a_missing_argument_is_status_1(dockerd):
    run_d(dockerd, "--name", "argweb", "busybox", "sleep", "30")
    d, p = both(dockerd, "exec", "argweb")
    assert d.returncode == p.returncode == 1
    assert "requires at least 2 arguments" in d.stderr and "requires at least 2 arguments" in p.stderr
    d, p = both(dockerd, "run")
    assert d.returncode == p.returncode == 1
    assert d.stderr.startswith('"docker run" requires at least 1 argument')
    assert p.stderr.startswith('"pycontain run" requires at least 1 argument')


@pytest.mark.parametrize("argv", [("inspect", "nosuch"), ("rm", "nosuch"), ("logs", "nosuch"),
                                  ("exec", "nosuch", "true"), ("stop", "nosuch"), ("wait", "nosuch"),
                                  ("diff", "nosuch"), ("container", "inspect", "nosuch"),
                                  ("image", "inspect", "nosuch"), ("volume", "inspect", "nosuch")])
def test_no_such_thing_is_status_1_in_every_verb(dockerd, argv):
    d, p = both(dockerd, *argv)
    assert d.returncode == p.returncode == 1, (d.stderr, p.stderr)
    assert "no such" in d.stderr.lower() and "no such" in p.stderr.lower()


# ---- --format: Go templates ---------------------------------------------------------------

INSPECT_TEMPLATES = [
    "{{.State.Status}} {{.State.Running}} {{.State.ExitCode}}",
    "{{if .State.Running}}up{{else}}down{{end}}",
    '{{index .Config.Labels "a"}}',
    "{{len .Args}} {{join .Args \",\"}}",
    "{{range .Args}}<{{.}}>{{end}}",
    "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}",
    "{{.Name | upper}}",
    "{{json .Config.Labels}} {{json .Config.Cmd}} {{json .Config.Entrypoint}}",
    "{{println .Path}}",
    "{{with .State}}{{.Paused}}{{end}}",
    "{{lower .Config.StopSignal}}",
]


def test_inspect_templates_print_what_docker_s_print(dockerd):
    run_d(dockerd, "--name", "tplweb", "-l", "a=b", "-l", "c=d", "--stop-signal", "SIGUSR1",
          "busybox", "sh", "-c", "sleep 30")
    for template in INSPECT_TEMPLATES:
        d, p = both(dockerd, "inspect", "-f", template, "tplweb")
        assert d.returncode == p.returncode == 0, (template, d.stderr, p.stderr)
        assert p.stdout == d.stdout, template


def test_a_template_that_cannot_run_is_an_error_with_docker_s_status(dockerd):
    run_d(dockerd, "--name", "badtpl", "busybox", "sleep", "30")
    for argv, status, words in [
            (("ps", "--format", "{{.Nope}}"), 1, "failed to execute template:"),
            (("ps", "--format", "{{range .Names}}"), 1, "failed to parse template:"),
            (("inspect", "-f", "{{.Nope}}", "badtpl"), 1, "template parsing error:"),
            (("inspect", "-f", "{{range}}", "badtpl"), 64, "template parsing error:"),
            (("inspect", "-f", "{{nofunc .Name}}", "badtpl"), 64, "template parsing error:")]:
        d, p = both(dockerd, *argv)
        assert d.returncode == p.returncode == status, (argv, d.stderr, p.stderr)
        assert d.stderr.startswith(words) and p.stderr.startswith("pycontain: " + words), (argv, p.stderr)
        assert p.stdout.strip() in ("", "[]") and "{{" not in p.stdout   # never printed back


def test_ps_formats_tables_and_json_rows(dockerd):
    run_d(dockerd, "--name", "psweb", "-l", "a=b", "busybox", "sh", "-c", "sleep 30; echo a long command line")
    for template in ["{{.Names}} {{.Image}} {{.State}} {{.Labels}} {{.Networks}} {{.Command}}", '{{.Label "a"}}',
                     "table {{.Names}}\t{{.Image}}\t{{.Label \"a\"}}", "table {{.Names}}\\t{{.State}}"]:
        d, p = both(dockerd, "ps", "--format", template)
        assert d.returncode == p.returncode == 0
        assert p.stdout == d.stdout, template
    d, p = both(dockerd, "ps", "--format", "{{json .}}")
    drow, prow = json.loads(d.stdout), json.loads(p.stdout)
    assert sorted(prow) == sorted(drow) and all(isinstance(v, str) for v in prow.values())
    d, p = both(dockerd, "ps")   # the same columns (their widths follow the times in them)
    assert re.split(r"\s{2,}", p.stdout.splitlines()[0]) == re.split(r"\s{2,}", d.stdout.splitlines()[0])
    d, p = both(dockerd, "ps", "-s")
    assert re.split(r"\s{2,}", p.stdout.splitlines()[0]) == re.split(r"\s{2,}", d.stdout.splitlines()[0])
    assert " (virtual " in p.stdout.splitlines()[1]
    d, p = both(dockerd, "ps", "-aq", "-n", "1")
    assert len(d.stdout.split()) == len(p.stdout.split()) == 1
    d, p = both(dockerd, "ps", "-l", "--format", "{{.Names}}")
    assert d.stdout == p.stdout == "psweb\n"


def test_inspect_json_keys_and_types_match_where_pycontain_has_them(dockerd):
    run_d(dockerd, "--name", "keyweb", "-l", "a=b", "-e", "X=1", "-m", "64m", "--cpus", "0.5", "--pids-limit", "50",
          "-v", "/tmp:/host:ro", "--tmpfs", "/run:size=1m", "--dns", "192.0.2.53", "--add-host", "a.test:192.0.2.7",
          "--cap-add", "NET_ADMIN", "--security-opt", "no-new-privileges", "--restart", "on-failure:2",
          "--ulimit", "nofile=100:200", "busybox", "sleep", "30")
    d, p = both(dockerd, "inspect", "keyweb")
    (dinfo,), (pinfo,) = json.loads(d.stdout), json.loads(p.stdout)

    # keys docker leaves out while they are unset (Go's omitempty)
    omitted_when_unset = {".HostConfig.Init", ".Config.StopTimeout", ".Config.StopSignal", ".Config.ExposedPorts"}

    def same_shape(mine, theirs, path):
        for key, value in mine.items():
            if f"{path}.{key}" in omitted_when_unset and key not in theirs:
                continue
            assert key in theirs, f"{path}.{key} is not docker's"
            if isinstance(value, dict) and isinstance(theirs[key], dict):
                same_shape(value, theirs[key], f"{path}.{key}")
            elif value is not None and theirs[key] is not None:
                assert type(value) is type(theirs[key]), f"{path}.{key}: {value!r} vs {theirs[key]!r}"

    same_shape(pinfo, dinfo, "")
    for key in ("Id", "Created", "Path", "Args", "State", "Image", "Name", "HostConfig", "Config", "Mounts"):
        assert key in pinfo
    assert pinfo["Config"]["Labels"] == dinfo["Config"]["Labels"] == {"a": "b"}
    for key in ("Binds", "NetworkMode", "RestartPolicy", "CapAdd", "CapDrop", "Dns", "ExtraHosts", "SecurityOpt",
                "Tmpfs", "Memory", "NanoCpus", "MemorySwap", "PidsLimit", "Ulimits", "PortBindings", "AutoRemove",
                "Privileged", "ReadonlyRootfs", "CpuShares", "CpuQuota", "CpuPeriod", "CgroupParent", "GroupAdd"):
        assert pinfo["HostConfig"][key] == dinfo["HostConfig"][key], key
    assert len(pinfo["HostConfig"]) >= 35
    (dmount,), (pmount,) = dinfo["Mounts"], [m for m in pinfo["Mounts"] if m["Type"] == "bind"]
    for key in ("Type", "Source", "Destination", "Mode", "RW"):
        assert pmount[key] == dmount[key], key


def test_inspect_type_and_the_management_forms(dockerd):
    d_id, p_id = run_d(dockerd, "--name", "mgmt", "busybox", "sleep", "30")
    for argv in [("inspect", "--type", "image", "-f", "{{.Id}}", "busybox"),
                 ("image", "inspect", "-f", "{{.Id}} {{.Os}}", "busybox"),
                 ("image", "ls", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"),
                 ("image", "list", "-q"), ("images", "-q"),
                 ("container", "inspect", "-f", "{{.Name}}", "mgmt"),
                 ("container", "ls", "--format", "{{.Names}}"), ("container", "ps", "--format", "{{.Names}}"),
                 ("container", "list", "-a", "--format", "{{.Names}}")]:
        d, p = both(dockerd, *argv)
        assert d.returncode == p.returncode == 0, (argv, d.stderr, p.stderr)
        assert p.stdout == d.stdout, argv
    d, p = both(dockerd, "inspect", "--type", "volume", "busybox")
    assert d.returncode == p.returncode == 1 and error_words(d) == error_words(p) == "no such volume:"
    d, p = both(dockerd, "inspect", "--type", "bogus", "busybox")
    assert d.returncode == p.returncode == 1
    assert "is not a valid value for --type" in d.stderr and "is not a valid value for --type" in p.stderr
    d, p = both(dockerd, "container", "logs", "mgmt")
    assert d.returncode == p.returncode == 0
    d, p = both(dockerd, "container", "rm", "-f", "mgmt")
    assert d.returncode == p.returncode == 0 and d.stdout == p.stdout == "mgmt\n"


def test_images_format_filter_digests(dockerd):
    for argv in [("images", "--format", "{{.Repository}} {{.Tag}} {{.ID}} {{.Size}}"),
                 ("images", "--filter", "dangling=true", "-q"), ("images", "-f", "reference=busy*", "-q"),
                 ("images", "-f", "reference=nothing*", "-q"), ("images", "--format", "table {{.Repository}}\t{{.Tag}}")]:
        d, p = both(dockerd, *argv)
        assert d.returncode == p.returncode == 0, (argv, p.stderr)
        assert p.stdout == d.stdout, argv
    d, p = both(dockerd, "images", "--format", "{{json .}}")
    assert sorted(json.loads(p.stdout)) == sorted(json.loads(d.stdout))
    for argv in [("images",), ("images", "--digests")]:
        d, p = both(dockerd, *argv)
        assert re.split(r"\s{2,}", p.stdout.splitlines()[0]) == re.split(r"\s{2,}", d.stdout.splitlines()[0])


def test_network_and_volume_listings(dockerd, tmp_path):
    # `network ls` writes the default bridge network's definition, its subnet
    # chosen from the routes seen here: a store of its own, so that the
    # network tests' store keeps the subnet they expect
    own_store = dict(os.environ, PYCONTAIN_ROOT=str(tmp_path / "store"))
    d, p = dockerd.docker("network", "ls"), pycontain("network", "ls", env=own_store)
    assert p.stdout.splitlines()[0] == d.stdout.splitlines()[0] == "NETWORK ID     NAME      DRIVER    SCOPE"
    drows = {tuple(line.split()[1:]) for line in d.stdout.splitlines()[1:]}
    prows = {tuple(line.split()[1:]) for line in p.stdout.splitlines()[1:]}
    assert drows == {("host", "host", "local"), ("none", "null", "local")}
    # deliberate: pycontain lists its default bridge network, which docker here runs without (--bridge=none)
    assert prows == drows | {("bridge", "bridge", "local")}
    d = dockerd.docker("network", "ls", "--format", "{{json .}}")
    p = pycontain("network", "ls", "--format", "{{json .}}", env=own_store)
    assert sorted(json.loads(p.stdout.splitlines()[-1])) <= sorted(json.loads(d.stdout.splitlines()[-1])) + \
        ["Bridge", "Subnet"]
    for side in (dockerd.docker, pycontain):
        assert side("volume", "create", "parvol").returncode == 0
    try:
        for argv in [("volume", "ls", "--format", "{{.Driver}} {{.Name}}"), ("volume", "ls"),
                     ("volume", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Scope}}", "parvol")]:
            d, p = both(dockerd, *argv)
            assert p.stdout == d.stdout, argv
        d, p = both(dockerd, "volume", "ls", "--format", "{{json .}}")
        assert sorted(json.loads(p.stdout)) == sorted(json.loads(d.stdout))
    finally:
        both(dockerd, "volume", "rm", "parvol")


# ---- run / create / exec flags ------------------------------------------------------------

def test_env_file_env_without_value_labels_cidfile_stop_timeout(dockerd, tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text("FOO=bar\n# a comment\n\n  SPACED=1\nFROM_CALLER\nNOT_SET_ANYWHERE\n")
    label_file = tmp_path / "labels"
    label_file.write_text("team=core\n# c\nempty\n")
    env = dict(os.environ, FROM_CALLER="caller", ALSO="also")
    argv = ("run", "--rm", "--network", "none", "--env-file", str(env_file), "-e", "ALSO", "-e", "UNSET_VAR_X",
            "-e", "Z=1", "busybox", "env")
    d, p = dockerd.docker(*argv, env=env), pycontain(*argv, env=env)
    assert d.returncode == p.returncode == 0, p.stderr

    def wanted(out):
        return sorted(line for line in out.splitlines() if line.split("=")[0] in
                      ("FOO", "SPACED", "FROM_CALLER", "NOT_SET_ANYWHERE", "ALSO", "UNSET_VAR_X", "Z", "TERM"))
    assert wanted(p.stdout) == wanted(d.stdout) == ["ALSO=also", "FOO=bar", "FROM_CALLER=caller", "SPACED=1", "Z=1"]

    for side, name in ((dockerd.docker, "docker"), (pycontain, "pycontain")):
        cidfile = tmp_path / f"{name}.cid"
        r = side("run", "-d", "--network", "none", "--name", f"lab{name}", "-l", "a=b", "--label-file",
                 str(label_file), "--stop-timeout", "1", "--cidfile", str(cidfile), "busybox",
                 "sh", "-c", "trap '' TERM; while :; do sleep 0.1; done")
        assert r.returncode == 0, r.stderr
        assert cidfile.read_text() == r.stdout.strip()
        again = side("run", "-d", "--network", "none", "--cidfile", str(cidfile), "busybox", "true")
        assert again.returncode == 125 and "container id file found" in again.stderr.lower()
        r = side("inspect", "-f", "{{json .Config.Labels}} {{.Config.StopTimeout}}", f"lab{name}")
        # a label file's line without "=" is an env file's: no such variable, no label
        assert json.loads(r.stdout.split()[0]) == {"a": "b", "team": "core"}
        assert r.stdout.split()[1] == "1"
        start = time.monotonic()   # the container ignores SIGTERM: killed after its 1 s, not stop's 10
        assert side("stop", f"lab{name}").returncode == 0
        assert time.monotonic() - start < 6


def test_tty_flags(dockerd):
    d, p = both(dockerd, "run", "--rm", "-it", "--network", "none", "busybox", "true", stdin_data="")
    assert d.returncode == p.returncode == 1
    assert error_words(d, 7) == error_words(p, 7) == "the input device is not a tty"
    d, p = both(dockerd, "run", "--rm", "-t", "--network", "none", "busybox", "sh", "-c", "echo $TERM")
    assert d.stdout.strip() == p.stdout.strip() == "xterm"
    run_d(dockerd, "--name", "ttyweb", "busybox", "sleep", "30")
    d, p = both(dockerd, "exec", "-t", "ttyweb", "sh", "-c", "echo $TERM")
    assert d.stdout.strip() == p.stdout.strip() == "xterm"
    d, p = both(dockerd, "exec", "ttyweb", "sh", "-c", "echo ${TERM:-unset}")
    assert d.stdout.strip() == p.stdout.strip() == "unset"
    d, p = both(dockerd, "exec", "-it", "ttyweb", "true", stdin_data="")
    assert d.returncode == p.returncode == 1 and "not a TTY" in d.stderr and "not a TTY" in p.stderr


def test_exec_detach_env_and_env_file(dockerd, tmp_path):
    run_d(dockerd, "--name", "execweb", "busybox", "sleep", "30")
    (tmp_path / "env").write_text("FROM_FILE=1\n")
    env = dict(os.environ, FROM_CALLER="c")
    argv = ("exec", "-e", "FROM_CALLER", "--env-file", str(tmp_path / "env"), "execweb", "env")
    d, p = dockerd.docker(*argv, env=env), pycontain(*argv, env=env)
    for r in (d, p):
        assert "FROM_CALLER=c" in r.stdout.splitlines() and "FROM_FILE=1" in r.stdout.splitlines()
    started = time.monotonic()
    d, p = both(dockerd, "exec", "-d", "execweb", "sh", "-c", "sleep 1; echo done > /tmp/detached")
    assert d.returncode == p.returncode == 0 and d.stdout == p.stdout == ""
    assert time.monotonic() - started < 5
    time.sleep(1.5)   # the command outlived the CLI that started it
    d, p = both(dockerd, "exec", "execweb", "cat", "/tmp/detached")
    assert d.stdout == p.stdout == "done\n"


def test_cp_tar_streams(dockerd, tmp_path):
    run_d(dockerd, "--name", "cpweb", "busybox", "sleep", "30")
    d, p = both(dockerd, "cp", "cpweb:/etc/passwd", "-", stdin_data=b"")
    assert d.returncode == p.returncode == 0, p.stderr
    for r in (d, p):
        with tarfile.open(fileobj=io.BytesIO(r.stdout)) as tar:
            (member,) = tar.getmembers()
            assert member.name == "passwd" and tar.extractfile(member).read().startswith(b"root:x:0:0:")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = b"from a tar on stdin\n"
        info = tarfile.TarInfo("dir/in.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    d, p = both(dockerd, "cp", "-", "cpweb:/tmp", stdin_data=buf.getvalue())
    assert d.returncode == p.returncode == 0, p.stderr
    d, p = both(dockerd, "exec", "cpweb", "cat", "/tmp/dir/in.txt")
    assert d.stdout == p.stdout == "from a tar on stdin\n"


def test_system_df_tables(dockerd):
    run_d(dockerd, "--name", "dfweb", "-v", "dfvol:/data", "busybox", "sleep", "30")
    try:
        d, p = both(dockerd, "system", "df")
        dlines, plines = d.stdout.splitlines(), p.stdout.splitlines()
        assert plines[0] == dlines[0] == "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE"
        # deliberate: no "Build Cache" row (pycontain's builder keeps no separate cache)
        assert [line.split()[:3] for line in plines[1:]] == [line.split()[:3] for line in dlines[1:4]]
        d, p = both(dockerd, "system", "df", "-v")
        assert d.returncode == p.returncode == 0
        def layout(out):   # section titles and the column names under them (widths follow the data)
            return [re.split(r"\s{2,}", line) for line in out.splitlines() if line.endswith(":") or line.isupper()]
        assert layout(p.stdout) == layout(d.stdout)[:6]   # deliberate: no build cache section
        assert "dfvol         1         0B" in p.stdout and "dfvol         1         0B" in d.stdout
    finally:
        both(dockerd, "rm", "-f", "dfweb")
        both(dockerd, "volume", "rm", "dfvol")


def test_version_search_wait_diff(dockerd):
    d, p = both(dockerd, "version", "--format",
                "{{.Client.APIVersion}} {{.Server.APIVersion}} {{.Server.MinAPIVersion}} {{.Client.Os}}/{{.Client.Arch}}")
    assert d.returncode == p.returncode == 0 and d.stdout == p.stdout == "1.41 1.41 1.12 linux/amd64\n"
    d, p = both(dockerd, "version", "--format", "{{json .}}")
    dv, pv = json.loads(d.stdout), json.loads(p.stdout)
    assert sorted(pv) == sorted(dv) == ["Client", "Server"]
    assert set(pv["Client"]) <= set(dv["Client"]) and set(pv["Server"]) <= set(dv["Server"])
    d, p = both(dockerd, "version")
    assert [line.split(":")[0] for line in p.stdout.splitlines() if not line.startswith(" ")] == \
        [line.split(":")[0] for line in d.stdout.splitlines() if not line.startswith(" ")]
    # deliberate: docker asks Docker Hub (unreachable here); pycontain has no search at all
    d, p = both(dockerd, "search", "busybox")
    assert d.returncode == p.returncode == 1 and "not supported" in p.stderr
    for name, code in (("w0", 0), ("w3", 3)):
        run_d(dockerd, "--name", name, "busybox", "sh", "-c", f"sleep 0.5; exit {code}")
    d, p = both(dockerd, "wait", "w0", "w3")
    assert d.returncode == p.returncode == 0 and d.stdout == p.stdout == "0\n3\n"
    run_d(dockerd, "--name", "diffweb", "busybox", "sh", "-c",
          "echo x > /tmp/new; rm /etc/group; echo >> /etc/passwd; mkdir /newdir; sleep 30")
    time.sleep(0.5)
    d, p = both(dockerd, "diff", "diffweb")
    assert d.returncode == p.returncode == 0
    assert sorted(p.stdout.splitlines()) == sorted(d.stdout.splitlines()) == \
        ["A /newdir", "A /tmp/new", "C /etc", "C /etc/passwd", "C /tmp", "D /etc/group"]


def test_completion_scripts_complete_verbs_flags_and_names(dockerd, tmp_path):
    run_d(dockerd, "--name", "compweb", "busybox", "sleep", "30")
    bash = pycontain("completion", "bash")
    assert bash.returncode == 0
    assert subprocess.run(["bash", "-n"], input=bash.stdout, text=True).returncode == 0
    (tmp_path / "comp.sh").write_text(bash.stdout)
    shim = tmp_path / "bin" / "pycontain"
    shim.parent.mkdir()
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} -m pycontain \"$@\"\n")
    shim.chmod(0o755)

    def complete(*lines, root=os.environ["PYCONTAIN_ROOT"]):
        """What bash offers for each command line (the last word being completed)."""
        script = ('source comp.sh; c(){ COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); COMPREPLY=(); '
                  '_pycontain; echo "${COMPREPLY[*]}"; }; ' + "; ".join(f"c pycontain {line}" for line in lines))
        env = dict(os.environ, PATH=f"{shim.parent}:{os.environ['PATH']}", PYCONTAIN_ROOT=str(root))
        r = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env)
        return r.stdout.splitlines()

    assert complete("ins", "container l", "run --netw", "stop comp", "rmi busy") == \
        ["inspect", "ls list logs", "--network --network-alias", "compweb", "busybox:latest"]
    # network names, from a store of its own (see test_network_and_volume_listings)
    assert complete("network rm no", root=tmp_path / "store") == ["none"]
    zsh = pycontain("completion", "zsh")
    assert zsh.returncode == 0 and zsh.stdout.startswith("#compdef pycontain")


def test_dns_and_add_host_with_network_none(dockerd):
    argv = ("run", "--rm", "--network", "none", "--dns", "192.0.2.53", "--add-host", "db.test:192.0.2.7",
            "busybox", "sh", "-c", "grep nameserver /etc/resolv.conf; grep db.test /etc/hosts")
    d, p = both(dockerd, *argv)
    assert d.returncode == p.returncode == 0, p.stderr
    assert p.stdout == d.stdout == "nameserver 192.0.2.53\n192.0.2.7\tdb.test\n"


def test_top_with_ps_options(dockerd):
    run_d(dockerd, "--name", "topweb", "busybox", "sleep", "30")
    d, p = both(dockerd, "top", "topweb", "-o", "pid,comm")
    assert d.returncode == p.returncode == 0
    for r in (d, p):
        titles, row = (line.split() for line in r.stdout.splitlines())
        assert titles == ["PID", "COMMAND"] and row[1] == "sleep"
    d, p = both(dockerd, "top", "topweb")
    assert d.stdout.splitlines()[0].split() == p.stdout.splitlines()[0].split()
    d, p = both(dockerd, "top", "topweb", "--bogus")
    assert d.returncode == p.returncode == 1 and "unknown gnu long option" in p.stderr


def test_logs_until_and_details(dockerd):
    both(dockerd, "run", "--name", "logweb", "--network", "none", "busybox", "sh", "-c", "echo one; echo two")
    for argv in [("logs", "--details", "logweb"), ("logs", "--until", "2100-01-01T00:00:00Z", "-n", "1", "logweb"),
                 ("logs", "--until", "2000-01-01T00:00:00Z", "logweb")]:
        d, p = both(dockerd, *argv)
        assert d.returncode == p.returncode == 0
        assert p.stdout == d.stdout, argv


def test_run_of_a_missing_image_says_it_pulls(dockerd):
    # neither side reaches a registry here: the pull fails, after docker's line
    d, p = both(dockerd, "run", "--rm", "--network", "none", "nosuchimage", "true")
    assert d.returncode == p.returncode == 125
    assert d.stderr.splitlines()[0] == p.stderr.splitlines()[0] == "Unable to find image 'nosuchimage:latest' locally"


def test_stats_columns_and_fields(dockerd):
    run_d(dockerd, "--name", "statweb", "busybox", "sleep", "30")
    d, p = both(dockerd, "stats", "--no-stream")
    assert d.returncode == p.returncode == 0
    assert re.split(r"\s{2,}", p.stdout.splitlines()[0]) == re.split(r"\s{2,}", d.stdout.splitlines()[0]) == \
        ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"]
    d, p = both(dockerd, "stats", "--no-stream", "--format", "{{json .}}")
    drow, prow = json.loads(d.stdout), json.loads(p.stdout)
    assert sorted(prow) == sorted(drow)
    assert prow["NetIO"] == drow["NetIO"] == "0B / 0B"   # --network none: only lo, which is not counted
    d, p = both(dockerd, "stats", "--no-stream", "--format", "table {{.Name}}\t{{.PIDs}}")
    assert p.stdout == d.stdout


def test_volume_flag_makes_a_missing_host_directory(dockerd, tmp_path):
    for side, name in ((dockerd.docker, "docker"), (pycontain, "pycontain")):
        src = tmp_path / name / "missing" / "dir"
        r = side("run", "--rm", "--network", "none", "-v", f"{src}:/data", "busybox", "sh", "-c",
                 "echo hi > /data/f")
        assert r.returncode == 0, r.stderr
        assert (src / "f").read_text() == "hi\n"
        # --mount type=bind refuses a missing source, on both sides
        r = side("run", "--rm", "--network", "none", "--mount", f"type=bind,source={src}x,target=/data",
                 "busybox", "true")
        assert r.returncode == 125 and not os.path.exists(f"{src}x")


def test_start_attach_prints_the_output_and_returns_the_status(dockerd):
    for side in (dockerd.docker, pycontain):
        assert side("create", "--name", "startweb", "--network", "none", "busybox", "sh", "-c",
                    "echo out; echo err >&2; exit 3").returncode == 0
    d, p = both(dockerd, "start", "-a", "startweb")
    assert d.returncode == p.returncode == 3
    assert (d.stdout, d.stderr) == (p.stdout, p.stderr) == ("out\n", "err\n")
    d, p = both(dockerd, "start", "-a", "startweb")   # a second run prints only its own output
    assert d.returncode == p.returncode == 3 and d.stdout == p.stdout == "out\n"
