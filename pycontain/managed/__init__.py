"""Managed containers: the record-keeping machinery behind pycontain.containers."""
