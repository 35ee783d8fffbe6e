"""`pycontain info`: what this machine offers containers."""
import os
import platform

from .. import __version__
from ..system import describe


def register(sub):
    p = sub.add_parser("info", help="show what this machine offers containers")
    p.set_defaults(func=cmd_info)


def cmd_info(args):
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
