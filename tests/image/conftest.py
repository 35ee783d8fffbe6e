"""Fixtures for the image tests."""
import pytest

from imgtools import tar_of_dir


@pytest.fixture(scope="session")
def busybox_tar(busybox, workdir):
    return tar_of_dir(busybox, workdir / "busybox-rootfs.tar.gz", "gzip")


# ---- registries on loopback -------------------------------------------------------


from regtools import Registry, base_extra_layer, changes_layer, layer_of_dir, skopeo, write_oci_layout  # noqa: E402


def _registry(workdir, name, auth):
    d = workdir / f"registry-{name}"
    d.mkdir()
    reg = Registry(d, auth)
    return reg


@pytest.fixture(scope="session")
def registry(workdir):
    reg = _registry(workdir, "open", None)
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def htpasswd_registry(workdir):
    reg = _registry(workdir, "htpasswd", "htpasswd")
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def token_registry(workdir):
    reg = _registry(workdir, "token", "token")
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def test_layout(workdir, busybox):
    """An OCI layout with an index of two platforms (amd64, arm64), each three
    layers: busybox, a layer adding /var/opaque/old, and one deleting a file and
    a directory, making /var/opaque opaque, adding a hardlink and an arch marker."""
    base = layer_of_dir(busybox)
    extra = base_extra_layer()
    return write_oci_layout(workdir / "layout", [
        ("amd64", [base, extra, changes_layer("amd64")], {}),
        ("arm64", [base, extra, changes_layer("arm64")], {}),
    ])


@pytest.fixture(scope="session")
def pushed_multi(registry, test_layout):
    """The test image index, pushed into the open registry by skopeo."""
    ref = f"{registry.host}/test/multi:1"
    skopeo("copy", "--all", "--dest-tls-verify=false", f"oci:{test_layout}:multi", f"docker://{ref}")
    return ref


@pytest.fixture
def auth_file(tmp_path, monkeypatch):
    """pycontain's credentials file and docker's config dir, private to the test."""
    monkeypatch.setenv("PYCONTAIN_AUTH_FILE", str(tmp_path / "auth.json"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    return tmp_path / "auth.json"
