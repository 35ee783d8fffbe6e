"""Reference normalisation like docker's."""
import pytest

from pycontain import ConfigError
from pycontain.image.reference import is_insecure, parse

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize("ref,expected,familiar", [
    ("busybox", "docker.io/library/busybox:latest", "busybox"),
    ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox"),
    ("user/app", "docker.io/user/app:latest", "user/app"),
    ("docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox"),
    ("index.docker.io/user/app:v1", "docker.io/user/app:v1", "user/app"),
    ("localhost/app", "localhost/app:latest", "localhost/app"),
    ("localhost:5000/team/app:1.0", "localhost:5000/team/app:1.0", "localhost:5000/team/app"),
    ("127.0.0.1:5000/app", "127.0.0.1:5000/app:latest", "127.0.0.1:5000/app"),
    ("quay.io/org/app@" + DIGEST, "quay.io/org/app@" + DIGEST, "quay.io/org/app"),
    ("app:tag@" + DIGEST, "docker.io/library/app:tag@" + DIGEST, "app"),
])
def test_normalised(ref, expected, familiar):
    r = parse(ref)
    assert str(r) == expected
    assert r.familiar == familiar


@pytest.mark.parametrize("bad", ["", "Busybox", "app:", "app@sha256:123", "a//b", "-app", "app:-x", " app", "app:" + "t" * 129])
def test_refused(bad):
    with pytest.raises(ConfigError, match="invalid reference format"):
        parse(bad)


def test_plain_http_only_for_loopback_and_marked(monkeypatch):
    assert is_insecure("localhost:5000") and is_insecure("127.0.0.1:1234") and is_insecure("localhost")
    assert not is_insecure("registry.example.com") and not is_insecure("docker.io")
    monkeypatch.setenv("PYCONTAIN_INSECURE_REGISTRIES", "registry.lan:5000")
    assert is_insecure("registry.lan:5000") and not is_insecure("registry.lan")
    assert is_insecure("other.lan", extra=["other.lan"])
