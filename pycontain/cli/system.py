"""`pycontain info`, `version`, `search` (not supported) and `completion`."""
import os
import platform

from .. import __version__
from ..system import describe
from . import build_parser
from ._errors import CliError
from ._format import format_each
from .completion import script as completion_script

# The Engine API version whose shapes pycontain's doors follow (docker 20.10's).
API_VERSION = "1.41"


def register(sub):
    p = sub.add_parser("info", help="show what this machine offers containers")
    p.add_argument("-f", "--format", help="Go template over docker info's keys, e.g. '{{.KernelVersion}}'")
    p.set_defaults(func=cmd_info)
    p = sub.add_parser("version", help="show the client's and the engine's versions")
    p.add_argument("-f", "--format", help="Go template, e.g. '{{.Server.Version}}' or json")
    p.set_defaults(func=cmd_version)
    p = sub.add_parser("search", help="search a registry for images (not supported)")
    p.add_argument("--limit", type=int)
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("--format")
    p.add_argument("term", metavar="TERM")
    p.set_defaults(func=cmd_search)
    p = sub.add_parser("completion", help="print a shell completion script: bash or zsh")
    p.add_argument("shell", choices=("bash", "zsh"))
    p.set_defaults(func=cmd_completion)


def info_dict() -> dict:
    """docker info's keys (the ones pycontain has), for --format."""
    from .. import containers, image

    info = describe()
    found = containers.list(all=True)
    states = [c.record.state for c in found]
    return {
        "Containers": len(found),
        "ContainersRunning": sum(s in ("running", "restarting") for s in states),
        "ContainersPaused": states.count("paused"),
        "ContainersStopped": sum(s not in ("running", "restarting", "paused") for s in states),
        "Images": len(image.list()),
        "Driver": info["storage_driver"],
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": "2" if info["cgroup_layout"] == "v2" else "1",
        "KernelVersion": info["kernel"],
        "OperatingSystem": _os_name(),
        "OSType": "linux",
        "Architecture": info["arch"],
        "NCPU": os.cpu_count(),
        "MemTotal": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
        "DockerRootDir": info["root"],
        "Name": platform.node(),
        "ServerVersion": __version__,
        "SecurityOptions": ["name=seccomp,profile=default"],
        "Rootless": os.geteuid() != 0,
    }


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            fields = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
        return fields.get("PRETTY_NAME", "Linux").strip('"')
    except OSError:
        return "Linux"


def cmd_info(args):
    if args.format:
        print(format_each(args.format, [info_dict()]), end="")
        return 0
    info = describe()
    print(f"pycontain:   {__version__}")
    print(f"Python:      {platform.python_version()}")
    print(f"Kernel:      {info['kernel']} ({info['arch']})")
    print(f"Cgroups:     {info['cgroup_layout']}")
    print("Namespaces:  " + ", ".join(f"{n} {'yes' if ok else 'no'}" for n, ok in info["namespaces"].items()))
    print(f"Overlayfs:   {'yes' if info['overlay'] else 'no'}")
    print(f"Storage:     {info['storage_driver']}")
    print(f"Rootless:    {'yes' if os.geteuid() != 0 else 'no'} (uid {os.geteuid()})")
    if os.geteuid() != 0:
        print(f"Rootless cgroups: {info['rootless_cgroups']}")
    print(f"Store:       {info['root']}")
    return 0


def version_dict() -> dict:
    """docker version's two blocks and keys. pycontain has no daemon: the
    "Server" is the library this same process runs, so both carry one version;
    GoVersion names the Python that runs it."""
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    py = f"python{platform.python_version()}"
    client = {"Platform": {"Name": "pycontain"}, "Version": __version__, "ApiVersion": API_VERSION,
              "DefaultAPIVersion": API_VERSION, "GitCommit": "", "GoVersion": py, "Os": "linux", "Arch": arch,
              "BuildTime": "", "Context": "default", "Experimental": False}
    details = {"ApiVersion": API_VERSION, "Arch": arch, "BuildTime": "", "Experimental": "false", "GitCommit": "",
               "GoVersion": py, "KernelVersion": platform.release(), "MinAPIVersion": "1.12", "Os": "linux"}
    server = {"Platform": {"Name": "pycontain"},
              "Components": [{"Name": "Engine", "Version": __version__, "Details": details}],
              "Version": __version__, "ApiVersion": API_VERSION, "MinAPIVersion": "1.12", "GitCommit": "",
              "GoVersion": py, "Os": "linux", "Arch": arch, "KernelVersion": platform.release(), "BuildTime": ""}
    # docker's templates see Go's field names (APIVersion), its JSON other ones
    # (ApiVersion): the Go names are methods here, which {{json .}} leaves out
    for block in (client, server):
        block["APIVersion"] = lambda: API_VERSION
    return {"Client": client, "Server": server}


_VERSION_TEXT = """Client:{{if .Client.Platform.Name}} {{.Client.Platform.Name}}{{end}}
 Version:           {{.Client.Version}}
 API version:       {{.Client.APIVersion}}
 Python version:    {{.Client.GoVersion}}
 OS/Arch:           {{.Client.Os}}/{{.Client.Arch}}
 Context:           {{.Client.Context}}

Server:{{if .Server.Platform.Name}} {{.Server.Platform.Name}}{{end}}
{{- range .Server.Components}}
 {{.Name}}:
  Version:          {{.Version}}
  API version:      {{index .Details "ApiVersion"}} (minimum version {{index .Details "MinAPIVersion"}})
  Python version:   {{index .Details "GoVersion"}}
  OS/Arch:          {{index .Details "Os"}}/{{index .Details "Arch"}}
  Kernel version:   {{index .Details "KernelVersion"}}
{{- end}}"""


def cmd_version(args):
    print(format_each(args.format or _VERSION_TEXT, [version_dict()]), end="")
    return 0


def cmd_search(args):
    raise CliError("search is not supported: pycontain pulls and pushes by reference and has no registry "
                   "search (docker's searches Docker Hub's index)")


def cmd_completion(args):
    print(completion_script(build_parser(), args.shell), end="")
    return 0
