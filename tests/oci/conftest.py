"""Fixtures for the OCI runtime door: bundles made from the suite's busybox
rootfs, a state root of the test's own, runc beside it as the reference."""
import json
import os
import shutil

import pytest

from pycontain.oci.ops import default_spec as make_default_spec


def default_spec(args, terminal=False) -> dict:
    """runc spec's config.json with args and no terminal (the reference layout)."""
    spec = make_default_spec()
    spec["process"]["terminal"] = terminal
    spec["process"]["args"] = list(args)
    return spec


@pytest.fixture
def bundle(busybox, tmp_path):
    """make(args, **changes) -> a bundle dir whose rootfs is a copy of busybox."""
    def make(args, edit=None, name="bundle"):
        d = tmp_path / name
        d.mkdir()
        shutil.copytree(busybox, d / "rootfs", symlinks=True)
        spec = default_spec(args)
        if edit is not None:
            edit(spec)
        (d / "config.json").write_text(json.dumps(spec))
        return d
    return make


@pytest.fixture
def state_root(tmp_path):
    root = tmp_path / "state"
    yield root
    left = sorted(os.listdir(root)) if root.exists() else []
    assert left == [], f"state directories left behind: {left}"
