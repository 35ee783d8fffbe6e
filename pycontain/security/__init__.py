"""Security settings of a container: capabilities, seccomp, masked paths."""
