"""`pycontain system service`: the Docker Engine API on a unix socket (pycontain.api)."""
import sys


def register(ssub):
    p = ssub.add_parser("service", help="serve the Docker Engine API on a unix socket (docker, docker-py, "
                                        "testcontainers)")
    p.add_argument("--socket", metavar="unix:///PATH",
                   help="where to listen (default: /run/pycontain/docker.sock for root, "
                        "$XDG_RUNTIME_DIR/pycontain/docker.sock otherwise)")
    p.add_argument("-t", "--time", type=float, default=5.0, metavar="SECONDS",
                   help="exit after this long without a request (0: never; default 5, as podman's)")
    p.add_argument("--group", help="group that may use the socket besides its owner (mode 0660)")
    p.set_defaults(func=cmd_service)


def cmd_service(args):
    # Imported here, not at the top: aiohttp is the service's own dependency
    # (pip install 'pycontain[api]') and every other verb starts faster without it.
    try:
        from ..api import server
    except ImportError as e:
        print(f"pycontain: the API service needs aiohttp: pip install 'pycontain[api]' ({e})", file=sys.stderr)
        return 125
    if args.time < 0:
        print("pycontain: --time must be 0 (never exit) or a number of seconds", file=sys.stderr)
        return 125
    server.serve(args.socket, args.time, args.group,
                 ready=lambda: print(f"pycontain: serving the Docker Engine API {server.API_VERSION} "
                                     "(Ctrl-C ends it; containers keep running)", file=sys.stderr, flush=True))
    return 0
