"""The OCI runtime door: `pycontain-runc`, runc's command line for
containerd's shim, conmon (podman) and dockerd (cli.py), with each
container's state in its --root (state.py)."""
